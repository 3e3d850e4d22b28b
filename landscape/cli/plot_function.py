"""``landscape plot-function NAME``: a classic 2D test function as contour + 3D surface,
optionally with a gradient-descent path (the seed article's Figure 1 for Rosenbrock)."""

from __future__ import annotations

import click
import numpy as np

from landscape.cli.options import (FiniteFloat, MAX_DPI, MAX_FUNCTION_GRID, MAX_LEVELS,
                                   echo_outputs, library_errors, out_option, printable)

EXAMPLES = """
\b
Examples:
  landscape plot-function rosenbrock --out figures          # the seed article's Figure 1
  landscape plot-function rosenbrock --path-from -1.2,1 --steps 5000 --lr 0.0015
  landscape plot-function himmelblau --format pdf
"""


def parse_point(ctx, param, value: str | None) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        x, y = (float(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"(={printable(value)}) must look like X,Y, e.g. -1.5,2"
                                 ) from None
    if not (np.isfinite(x) and np.isfinite(y)):
        raise click.BadParameter(f"(={printable(value)}) must be finite numbers")
    return x, y


@click.command(epilog=EXAMPLES)
@click.argument("name", metavar="FUNCTION")
@click.option("--grid", "num", type=click.IntRange(10, MAX_FUNCTION_GRID), default=301, show_default=True,
              help="Grid points per axis over the function's usual box.")
@click.option("--levels", type=click.IntRange(2, MAX_LEVELS), default=25, show_default=True,
              help="Number of contour levels.")
@click.option("--scale", type=click.Choice(["auto", "log", "linear"]), default="auto",
              show_default=True,
              help="Contour level spacing; auto: log-spaced when the function is >= 0; log on a "
                   "function with negative values (saddle): a symmetric log scale (sign · log |f|).")
@click.option("--path-from", "start", callback=parse_point, default=None, metavar="X,Y",
              help="Overlay a gradient-descent path starting here.")
@click.option("--steps", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Gradient-descent steps for --path-from.")
@click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1.5e-3,
              show_default=True, help="Gradient-descent learning rate for --path-from.")
@click.option("--format", "fmt", type=click.Choice(["png", "pdf"]), default="png",
              show_default=True, help="Image format.")
@click.option("--dpi", type=click.IntRange(50, MAX_DPI), default=200, show_default=True,
              help="Resolution of PNG output.")
@out_option
@library_errors
def plot_function(name, num, levels, scale, start, steps, lr, fmt, dpi, out):
    """Draw a classic 2D test function: contour lines with its known minima starred, and its
    3D surface. FUNCTION is one of: beale, himmelblau, noisy_quadratic, rastrigin, rosenbrock,
    saddle.

    Writes OUT/<FUNCTION>.<format> and prints its path.
    """
    from landscape.views import plot_function_file

    echo_outputs([plot_function_file(name, out, grid=num, levels=levels, scale=scale,
                                     path_from=start, steps=steps, lr=lr, fmt=fmt, dpi=dpi,
                                     on_note=lambda line: click.echo(line, err=True))])
