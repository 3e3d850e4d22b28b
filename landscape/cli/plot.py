"""``landscape plot FILE``: publication figures of a surface file (PNG or PDF)."""

from __future__ import annotations

import os

import click
import numpy as np
from click.core import ParameterSource

from landscape.cli.options import (
    MAX_DPI,
    MAX_LEVELS,
    FiniteFloat,
    echo_outputs,
    library_errors,
    make_out_dir,
    surface_file,
)
from landscape.io.atomic import save_figure
from landscape.errors import FormatError, InputError

ANIMATION_DPI = 80  # tens of frames: at print resolution a GIF would be tens of MB
KINDS = ("contour", "filled", "heatmap", "surface3d", "curve", "hessian", "density", "all")

EXAMPLES = """
\b
Examples:
  landscape plot landscape-out/surface.h5                      # every view the file allows
  landscape plot surface.h5 --kind contour --log --levels 40 --format pdf
  landscape plot surface.h5 --kind heatmap --metric train_acc --vmin 50 --vmax 100
  landscape plot cmp-digits/surface.h5 --animate --log    # the paths step by step (GIF)
  landscape plot cmp-digits/surface.h5 --animate --format mp4 --fps 24 --frames 120
"""


def save_animation(surface, path: str, *, file: str, metric: str, log: bool, levels: int,
                   frames: int, fps: int, dpi: int) -> str:
    """The trajectories of ``surface`` step by step, as a GIF (Pillow) or an MP4 (ffmpeg),
    written under a temporary name and renamed."""
    from matplotlib import animation as mpl_animation

    from landscape.io.atomic import atomic_path
    from landscape.plot.animation import path_animation

    if surface.grid.ndim != 2:
        raise InputError(f"`--animate` needs a 2D surface; {file} is 1D")
    if not surface.trajectories:
        raise InputError(f"`--animate` draws trajectories; {file} has none (a scan of a run, "
                         "`landscape scan RUN`, or `landscape compare` stores them)")
    if path.endswith(".mp4"):
        if not mpl_animation.writers.is_available("ffmpeg"):
            raise InputError("`--format mp4` needs ffmpeg on PATH (not found); use `--format "
                             "gif`")
        writer = mpl_animation.FFMpegWriter(fps=fps)
    else:
        writer = mpl_animation.PillowWriter(fps=fps)
    title = surface.attrs.get("workload")
    anim = path_animation(surface.grid, surface.values[metric], surface.trajectories,
                          metric=metric, attrs=surface.attrs, log=log, levels=levels,
                          frames=frames, fps=fps, title=title if isinstance(title, str) else "")
    with atomic_path(path) as tmp:  # OSError -> WriteError: a one-line CLI error
        anim.save(tmp, writer=writer, dpi=dpi)
    return path


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
    from landscape.io import surface_h5
    from landscape.plot import (
        KINDS_2D,
        completion_note,
        curves_figure,
        density_figure,
        hessian_figure,
        kind_figure,
        plane_axis_labels,
    )

    fmt = fmt or ("gif" if animate else "png")
    if animate and fmt not in ("gif", "mp4"):
        raise click.UsageError(f"`--animate` writes gif or mp4, not `--format {fmt}`")
    if not animate and fmt in ("gif", "mp4"):
        raise click.UsageError(f"`--format {fmt}` is for `--animate`; still figures are png or pdf")
    if animate and no_trajectories:
        raise click.UsageError("`--animate` draws the trajectories: drop `--no-trajectories`")
    if vmin is not None and vmax is not None and not vmin < vmax:
        raise click.BadParameter(f"(={vmin}) must be below --vmax (={vmax})", param_hint="--vmin")
    for name, bound in (("--vmin", vmin), ("--vmax", vmax)):
        if log and bound is not None and not bound > 0:
            raise InputError(f"`{name}` (={bound}) must be > 0 with `--log`: a log scale holds "
                             "positive values only")
    surface = surface_h5.read(file)
    density = surface_h5.read_density(file)
    grid, attrs = surface.grid, surface.attrs
    for axis_name, axis in (("xcoordinates", grid.x), ("ycoordinates", grid.y)):
        if axis is not None and not np.isfinite(axis).all():
            raise FormatError(f"{file}: `{axis_name}` holds NaN/inf coordinates; cannot draw")
    if grid.ndim == 2 and min(grid.shape) < 2 and kind != "density":
        raise FormatError(f"{file}: a 2D surface needs at least 2 points per axis to draw, "
                          f"it has {len(grid.x)} x {len(grid.y)}")
    has_hessian = {"max_eig", "min_eig"} <= set(surface.values)
    if kind in (*KINDS_2D, "curve", "all") and metric not in surface.values:
        raise InputError(f"`--metric` (={metric!r}) is not in {file}; it holds "
                         f"{', '.join(sorted(surface.values)) or 'no metric'}")
    if kind in KINDS_2D and grid.ndim == 1:
        raise InputError(f"`--kind {kind}` needs a 2D surface; {file} is 1D (use --kind curve)")
    if kind == "curve" and grid.ndim == 2:
        raise InputError(f"`--kind curve` needs a 1D surface; {file} is 2D (use --kind "
                         f"{', '.join(KINDS_2D[:-1])} or {KINDS_2D[-1]})")
    if kind == "hessian" and not has_hessian:
        raise InputError(f"`--kind hessian` needs datasets max_eig and min_eig; {file} has none")
    if kind == "density" and density is None:
        raise InputError(f"`--kind density` needs a `density/` group; {file} has none")

    if animate:
        folder = make_out_dir(out if out is not None else os.path.dirname(file) or ".")
        stem = os.path.join(folder, os.path.splitext(os.path.basename(file))[0])
        if click.get_current_context().get_parameter_source("dpi") != ParameterSource.COMMANDLINE:
            dpi = ANIMATION_DPI
        echo_outputs([save_animation(surface, f"{stem}_{metric}_paths.{fmt}", file=file,
                                     metric=metric, log=log, levels=levels, frames=frames,
                                     fps=fps, dpi=dpi)])
        return
    if kind in (*KINDS_2D, "curve", "all") and not np.isfinite(surface.values[metric]).any():
        click.echo(f"warning: `{metric}` has no finite value in {file} (scan not started?); "
                   "its figures will be empty", err=True)
    folder = make_out_dir(out if out is not None else os.path.dirname(file) or ".")
    stem = os.path.join(folder, os.path.splitext(os.path.basename(file))[0])
    workload = attrs.get("workload")
    title = f"{workload}: {metric}" if workload else metric
    note = completion_note(surface.done)
    partial = f" — {note} (scan incomplete)" if note else ""  # in every grid figure's title
    own = completion_note(surface.done_of(metric))  # the metric's own: it may be complete
    title += f" — {own} (scan incomplete)" if own else ""
    figures = []
    if kind == "curve" or (kind == "all" and grid.ndim == 1):
        curves = {name: v for name, v in surface.values.items() if name not in ("max_eig", "min_eig")}
        figures.append((f"{stem}_curves", curves_figure(
            grid, curves, log=log, title=(workload or "") + partial,
            xlabel=plane_axis_labels(attrs)[0])))
    if grid.ndim == 2:
        trajectories = None if no_trajectories else surface.trajectories
        for view in (KINDS_2D if kind == "all" else [kind] if kind in KINDS_2D else []):
            figures.append((f"{stem}_{metric}_{view}", kind_figure(
                view, grid, surface.values[metric], metric=metric, attrs=attrs,
                trajectories=trajectories, levels=levels, vmin=vmin, vmax=vmax, log=log,
                title=title)))
    if kind == "hessian" or (kind == "all" and has_hessian):
        figures.append((f"{stem}_hessian", hessian_figure(
            grid, surface.values["max_eig"], surface.values["min_eig"], attrs=attrs,
            title="Hessian eigenvalues" + partial)))
    if kind == "density" or (kind == "all" and density is not None):
        figures.append((f"{stem}_density", density_figure(*density)))
    echo_outputs([save_figure(figure, f"{path}.{fmt}", dpi=dpi) for path, figure in figures])
