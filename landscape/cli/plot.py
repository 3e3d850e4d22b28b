"""``landscape plot FILE``: publication figures of a surface file (PNG or PDF)."""

from __future__ import annotations

import click
from click.core import ParameterSource

from landscape.cli.options import (FiniteFloat, MAX_DPI, MAX_LEVELS, echo_outputs, library_errors,
                                   surface_file)
from landscape.views import ANIMATION_DPI, KINDS

EXAMPLES = """
\b
Examples:
  landscape plot landscape-out/surface.h5                      # every view the file allows
  landscape plot surface.h5 --kind contour --log --levels 40 --format pdf
  landscape plot surface.h5 --kind heatmap --metric train_acc --vmin 50 --vmax 100
  landscape plot cmp-digits/surface.h5 --animate --log    # the paths step by step (GIF)
  landscape plot cmp-digits/surface.h5 --animate --format mp4 --fps 24 --frames 120
"""


@click.command(epilog=EXAMPLES)
@surface_file
@click.option("--kind", type=click.Choice(KINDS), default="all", show_default=True,
              help="Which view; `all`: every view the file allows (2D: contour, filled, heatmap, "
                   "surface3d; 1D: curve; plus hessian maps and density when present).")
@click.option("--metric", default="train_loss", show_default=True,
              help="Dataset to draw in the 2D views.")
@click.option("--log", is_flag=True, help="Log colour scale with log-spaced levels (log10 heights "
                                          "in 3D, log y axis for curves).")
@click.option("--vmin", type=FiniteFloat(), default=None, help="Lower end of the colour scale.")
@click.option("--vmax", type=FiniteFloat(), default=None, help="Upper end of the colour scale.")
@click.option("--levels", type=click.IntRange(2, MAX_LEVELS), default=30, show_default=True,
              help="Number of contour levels.")
@click.option("--format", "fmt", type=click.Choice(["png", "pdf", "gif", "mp4"]), default=None,
              help="Image format: png (default) or pdf; with --animate gif (default) or mp4 "
                   "(needs ffmpeg).")
@click.option("--dpi", type=click.IntRange(50, MAX_DPI), default=200, show_default=True,
              help=f"Resolution of PNG output (of an animation: {ANIMATION_DPI} unless given).")
@click.option("--no-trajectories", is_flag=True,
              help="Do not draw the file's trajectories over the 2D views.")
@click.option("--animate", is_flag=True,
              help="Instead of the still views: the file's trajectories drawn step by step on "
                   "the filled contours and the 3D surface, OUT/<name>_<metric>_paths.gif (or "
                   ".mp4).")
@click.option("--frames", type=click.IntRange(2, 2000), default=60, show_default=True,
              help="With --animate: frames, evenly spaced in step from the first recorded step "
                   "to the last (fewer if the paths record fewer steps).")
@click.option("--fps", type=click.IntRange(1, 60), default=12, show_default=True,
              help="With --animate: frames per second.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the figures (created if missing)  [default: FILE's folder].")
@library_errors
def plot(file, kind, metric, log, vmin, vmax, levels, fmt, dpi, no_trajectories, animate,
         frames, fps, out):
    """Draw a surface file: contour lines, filled contours, heat map, 3D surface (2D files) or
    loss/accuracy curves (1D files), with trajectories and legends, Hessian eigenvalue maps
    (datasets max_eig/min_eig) and the spectral density (group density/).

    Writes OUT/<name>_<metric>_<kind>.<format> (and <name>_curves, <name>_hessian,
    <name>_density) and prints their paths; OUT is FILE's folder unless --out is given (as for
    `export`), so the figures of two files never overwrite each other. NaN/inf points are drawn
    as gaps. With --animate it writes OUT/<name>_<metric>_paths.gif (or .mp4) instead: the
    trajectories step by step.
    """
    from landscape.views import animate_file, plot_file

    fmt = fmt or ("gif" if animate else "png")
    if animate and fmt not in ("gif", "mp4"):
        raise click.UsageError(f"`--animate` writes gif or mp4, not `--format {fmt}`")
    if not animate and fmt in ("gif", "mp4"):
        raise click.UsageError(f"`--format {fmt}` is for `--animate`; still figures are png or pdf")
    if animate and no_trajectories:
        raise click.UsageError("`--animate` draws the trajectories: drop `--no-trajectories`")
    if vmin is not None and vmax is not None and not vmin < vmax:
        raise click.BadParameter(f"(={vmin}) must be below --vmax (={vmax})", param_hint="--vmin")
    if animate:  # an animation's own resolution unless --dpi is given
        source = click.get_current_context().get_parameter_source("dpi")
        echo_outputs([animate_file(file, out, metric=metric, fmt=fmt, log=log, levels=levels,
                                   frames=frames, fps=fps,
                                   dpi=dpi if source == ParameterSource.COMMANDLINE else None)])
        return
    echo_outputs(plot_file(file, out, kind=kind, metric=metric, log=log, vmin=vmin, vmax=vmax,
                           levels=levels, fmt=fmt, dpi=dpi, trajectories=not no_trajectories,
                           on_note=lambda line: click.echo(line, err=True)))
