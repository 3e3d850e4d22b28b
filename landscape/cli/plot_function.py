"""``landscape plot-function NAME``: a classic 2D test function as contour + 3D surface,
optionally with a gradient-descent path (the seed article's Figure 1 for Rosenbrock)."""

from __future__ import annotations

import os

import click
import numpy as np

from landscape.cli.options import (
    MAX_DPI,
    MAX_FUNCTION_GRID,
    MAX_LEVELS,
    FiniteFloat,
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
    printable,
)
from landscape.io.atomic import save_figure

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


def descent_path(fn, start: tuple[float, float], *, steps: int, lr: float) -> np.ndarray:
    """Plain gradient descent θ ← θ − lr ∇f(θ): the (steps + 1, 2) visited points, start first."""
    import jax
    import jax.numpy as jnp

    grad = jax.grad(fn)

    def step(theta, _):
        theta = theta - lr * grad(theta)
        return theta, theta

    start_point = jnp.asarray(start, jnp.float32)
    _, points = jax.jit(lambda t: jax.lax.scan(step, t, None, length=steps))(start_point)
    return np.concatenate([np.asarray(start_point)[None], np.asarray(points)], axis=0)


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
    from landscape.data.functions import get_function
    from landscape.grid import Grid
    from landscape.plot import function_figure

    function = get_function(name)
    (x0, x1), (y0, y1) = function.box
    grid = Grid(np.linspace(x0, x1, num), np.linspace(y0, y1, num))
    z = function.on_grid(grid.x, grid.y)
    log = scale == "log" or (scale == "auto" and function.min_value >= 0)
    if log and (z[np.isfinite(z)] < 0).any():  # drawn on a symmetric log scale: say so
        from landscape.plot.surface import symmetric_log_levels

        linear = symmetric_log_levels(z, levels)[0].linthresh
        click.echo(f"note: {function.name} takes negative values on its box: `--scale log` draws "
                   f"a symmetric log scale (the sign of f times log |f|, linear within "
                   f"±{linear:.2g})", err=True)
    path, label = None, "gradient descent"
    if start is not None:
        from landscape.compare import check_start
        from landscape.errors import InputError

        try:
            check_start(function.fn, start)
        except InputError as exc:
            raise InputError(f"`--path-from` (={start[0]:g},{start[1]:g}): {exc}") from None
        path = descent_path(function.fn, start, steps=steps, lr=lr)
        label = f"gradient descent (lr {lr:g}, {steps} steps)"
        end = path[-1]
        value = float(function.fn(end))
        if not np.isfinite(path).all():
            click.echo(f"warning: gradient descent diverged (lr {lr:g} too large?)", err=True)
        else:
            click.echo(f"gradient descent: ({start[0]:g}, {start[1]:g}) → ({end[0]:.4g}, "
                       f"{end[1]:.4g}) after {steps} steps, f = {value:.3g}", err=True)
    figure = function_figure(grid, z, minima=function.minima, saddles=function.saddles,
                             path=path, path_label=label, log=log, levels=levels,
                             title=f"{function.name}: f(x, y) = {function.formula}")
    path_out = os.path.join(make_out_dir(out), f"{function.name}.{fmt}")
    echo_outputs([save_figure(figure, path_out, dpi=dpi)])
