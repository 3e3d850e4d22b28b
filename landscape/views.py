"""The figures of a surface file, written to disk: what ``landscape plot`` and ``landscape
plot-function`` write, one call each.

- :func:`plot_file` — the still views a surface file allows (PNG or PDF): contours, filled
  contours, heat map and 3D surface of a plane, curves of a line, Hessian eigenvalue maps, the
  spectral density;
- :func:`animate_file` — the file's trajectories drawn step by step (GIF, or MP4 with ffmpeg);
- :func:`plot_function_file` — a 2D test function, with a gradient-descent path if asked.

Each checks what it is asked against the file before anything is written, writes every file
under a temporary name and renames it (:mod:`landscape.io.atomic`) and returns the paths.
Matplotlib is imported when a figure is drawn, not with this module. Remarks for the user (a
metric with no finite value, a diverged descent) go to ``on_note`` if given, one line each.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from landscape.errors import FormatError, InputError
from landscape.io.atomic import save_figure
from landscape.io.folders import make_output_folder

KINDS = ("contour", "filled", "heatmap", "surface3d", "curve", "hessian", "density", "all")
ANIMATION_DPI = 80  # tens of frames: at print resolution a GIF would be tens of MB

Note = Callable[[str], None]


def _stem(path: str, out: str | os.PathLike | None) -> str:
    """``out/<name of path without its extension>``; ``out`` (default: the file's own folder)
    is created if missing."""
    folder = make_output_folder((os.path.dirname(path) or ".") if out is None else out)
    return os.path.join(folder, os.path.splitext(os.path.basename(path))[0])


def _read_drawable(path: str, kind: str, metric: str):
    """``(surface, density)`` of the file at ``path``, refused unless ``kind`` can be drawn of
    ``metric`` there."""
    from landscape.io import surface_h5
    from landscape.plot.figures import KINDS_2D

    if kind not in KINDS:
        raise InputError(f"`kind` (={kind!r}) must be one of {', '.join(KINDS)}", param="kind")
    surface = surface_h5.read(path)
    density = surface_h5.read_density(path)
    grid = surface.grid
    for axis_name, axis in (("xcoordinates", grid.x), ("ycoordinates", grid.y)):
        if axis is not None and not np.isfinite(axis).all():
            raise FormatError(f"{path}: `{axis_name}` holds NaN/inf coordinates; cannot draw")
    if grid.ndim == 2 and min(grid.shape) < 2 and kind != "density":
        raise FormatError(f"{path}: a 2D surface needs at least 2 points per axis to draw, "
                          f"it has {len(grid.x)} x {len(grid.y)}")
    if kind in (*KINDS_2D, "curve", "all") and metric not in surface.values:
        raise InputError(f"`metric` (={metric!r}) is not in {path}; it holds "
                         f"{', '.join(sorted(surface.values)) or 'no metric'}", param="metric")
    if kind in KINDS_2D and grid.ndim == 1:
        raise InputError(f"`--kind {kind}` needs a 2D surface; {path} is 1D (use --kind curve)")
    if kind == "curve" and grid.ndim == 2:
        raise InputError(f"`--kind curve` needs a 1D surface; {path} is 2D (use --kind "
                         f"{', '.join(KINDS_2D[:-1])} or {KINDS_2D[-1]})")
    if kind == "hessian" and not {"max_eig", "min_eig"} <= set(surface.values):
        raise InputError(f"`--kind hessian` needs datasets max_eig and min_eig; {path} has none")
    if kind == "density" and density is None:
        raise InputError(f"`--kind density` needs a `density/` group; {path} has none")
    return surface, density


def plot_file(path: str | os.PathLike, out: str | os.PathLike | None = None, *,
              kind: str = "all", metric: str = "train_loss", log: bool = False,
              vmin: float | None = None, vmax: float | None = None, levels: int = 30,
              fmt: str = "png", dpi: int = 200, trajectories: bool = True,
              on_note: Note | None = None) -> list[str]:
    """Draw the surface file at ``path``; returns the paths written.

    ``kind``: one of ``KINDS``; ``all`` draws every view the file allows (2D: contour, filled,
    heatmap, surface3d of ``metric``; 1D: the curves of every metric; plus the Hessian maps of
    ``max_eig``/``min_eig`` and the ``density/`` group where present). Writes
    ``out/<name>_<metric>_<kind>.<fmt>`` (``<name>_curves``, ``<name>_hessian``,
    ``<name>_density``), ``out`` being the file's folder unless given (created if missing).
    ``log``: log colour scale and levels (``vmin``/``vmax`` must then be > 0);
    ``trajectories``: draw the file's paths over the 2D views. A figure of a partial scan says
    so in its title; NaN/inf points are gaps. ``on_note`` gets a warning for a ``metric`` with
    no finite value (its figures are empty).
    """
    from landscape.plot import (
        KINDS_2D,
        completion_note,
        curves_figure,
        density_figure,
        hessian_figure,
        kind_figure,
        plane_axis_labels,
    )

    for name, bound in (("vmin", vmin), ("vmax", vmax)):
        if log and bound is not None and not bound > 0:
            raise InputError(f"`{name}` (={bound}) must be > 0 with `log`: a log scale holds "
                             "positive values only", param=(name, "log"))
    path = os.fspath(path)
    surface, density = _read_drawable(path, kind, metric)
    grid, attrs = surface.grid, surface.attrs
    if (kind in (*KINDS_2D, "curve", "all") and on_note is not None
            and not np.isfinite(surface.values[metric]).any()):
        on_note(f"warning: `{metric}` has no finite value in {path} (scan not started?); its "
                "figures will be empty")
    stem = _stem(path, out)
    workload = attrs.get("workload")
    title = f"{workload}: {metric}" if workload else metric
    note = completion_note(surface.done)
    partial = f" — {note} (scan incomplete)" if note else ""  # in every grid figure's title
    own = completion_note(surface.done_of(metric))  # the metric's own: it may be complete
    title += f" — {own} (scan incomplete)" if own else ""
    figures = []
    if kind == "curve" or (kind == "all" and grid.ndim == 1):
        curves = {name: v for name, v in surface.values.items()
                  if name not in ("max_eig", "min_eig")}
        figures.append((f"{stem}_curves", curves_figure(
            grid, curves, log=log, title=(workload or "") + partial,
            xlabel=plane_axis_labels(attrs)[0])))
    if grid.ndim == 2:
        paths = surface.trajectories if trajectories else None
        for view in (KINDS_2D if kind == "all" else [kind] if kind in KINDS_2D else []):
            figures.append((f"{stem}_{metric}_{view}", kind_figure(
                view, grid, surface.values[metric], metric=metric, attrs=attrs,
                trajectories=paths, levels=levels, vmin=vmin, vmax=vmax, log=log,
                title=title)))
    has_hessian = {"max_eig", "min_eig"} <= set(surface.values)
    if kind == "hessian" or (kind == "all" and has_hessian):
        figures.append((f"{stem}_hessian", hessian_figure(
            grid, surface.values["max_eig"], surface.values["min_eig"], attrs=attrs,
            title="Hessian eigenvalues" + partial)))
    if kind == "density" or (kind == "all" and density is not None):
        figures.append((f"{stem}_density", density_figure(*density)))
    return [save_figure(figure, f"{name}.{fmt}", dpi=dpi) for name, figure in figures]


def animate_file(path: str | os.PathLike, out: str | os.PathLike | None = None, *,
                 metric: str = "train_loss", fmt: str = "gif", log: bool = False,
                 levels: int = 30, frames: int = 60, fps: int = 12, dpi: int | None = None
                 ) -> str:
    """The trajectories of the 2D surface file at ``path`` drawn step by step on the filled
    contours and the 3D surface of ``metric``: ``out/<name>_<metric>_paths.<fmt>``, a GIF
    (Pillow) or an MP4 (``fmt="mp4"``, needs ffmpeg on PATH), ``frames`` frames evenly spaced
    in step at ``fps`` per second, ``dpi`` (default ``ANIMATION_DPI``); returns its path."""
    from matplotlib import animation as mpl_animation

    from landscape.io.atomic import atomic_path
    from landscape.plot.animation import path_animation

    path = os.fspath(path)
    if fmt not in ("gif", "mp4"):
        raise InputError(f"`fmt` (={fmt!r}) must be gif or mp4", param="fmt")
    surface, _ = _read_drawable(path, "all", metric)
    if surface.grid.ndim != 2:
        raise InputError(f"`--animate` needs a 2D surface; {path} is 1D")
    if not surface.trajectories:
        raise InputError(f"`--animate` draws trajectories; {path} has none (a scan of a run, "
                         "`landscape scan RUN`, or `landscape compare` stores them)")
    if fmt == "mp4":
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
    target = f"{_stem(path, out)}_{metric}_paths.{fmt}"
    with atomic_path(target) as tmp:  # OSError -> WriteError
        anim.save(tmp, writer=writer, dpi=ANIMATION_DPI if dpi is None else dpi)
    return target


def plot_function_file(name: str, out: str | os.PathLike = "landscape-out", *,
                       grid: int = 301, levels: int = 25, scale: str = "auto",
                       path_from: tuple[float, float] | None = None, steps: int = 5000,
                       lr: float = 1.5e-3, fmt: str = "png", dpi: int = 200,
                       on_note: Note | None = None) -> str:
    """The 2D test function ``name`` (:mod:`landscape.data.functions`) on ``grid`` × ``grid``
    points of its usual box: contour lines with its known minima (and saddles) starred beside
    its 3D surface, with the plain gradient-descent path from ``path_from`` (``steps`` steps of
    ``lr``) when given. ``scale``: contour level spacing, ``log``, ``linear`` or ``auto`` (log
    when the function is >= 0; on a function with negative values ``log`` is a symmetric log
    scale). Writes ``out/<name>.<fmt>`` and returns its path."""
    from landscape.compare import check_start
    from landscape.data.functions import descent_path, get_function
    from landscape.grid import Grid
    from landscape.plot import function_figure
    from landscape.plot.surface import symmetric_log_levels

    note = on_note or (lambda line: None)
    function = get_function(name)
    (x0, x1), (y0, y1) = function.box
    axes = Grid(np.linspace(x0, x1, grid), np.linspace(y0, y1, grid))
    z = function.on_grid(axes.x, axes.y)
    log = scale == "log" or (scale == "auto" and function.min_value >= 0)
    if log and (z[np.isfinite(z)] < 0).any():  # drawn on a symmetric log scale: say so
        linear = symmetric_log_levels(z, levels)[0].linthresh
        note(f"note: {function.name} takes negative values on its box: `--scale log` draws a "
             f"symmetric log scale (the sign of f times log |f|, linear within ±{linear:.2g})")
    path, label = None, "gradient descent"
    if path_from is not None:
        try:
            check_start(function.fn, path_from)
        except InputError as exc:
            raise InputError(f"`path_from` (={path_from[0]:g},{path_from[1]:g}): {exc}",
                             param="path_from") from None
        path = descent_path(function.fn, path_from, steps=steps, lr=lr)
        label = f"gradient descent (lr {lr:g}, {steps} steps)"
        end = path[-1]
        if not np.isfinite(path).all():
            note(f"warning: gradient descent diverged (lr {lr:g} too large?)")
        else:
            note(f"gradient descent: ({path_from[0]:g}, {path_from[1]:g}) → ({end[0]:.4g}, "
                 f"{end[1]:.4g}) after {steps} steps, f = {float(function.fn(end)):.3g}")
    figure = function_figure(axes, z, minima=function.minima, saddles=function.saddles,
                             path=path, path_label=label, log=log, levels=levels,
                             title=f"{function.name}: f(x, y) = {function.formula}")
    return save_figure(figure, os.path.join(make_output_folder(out), f"{function.name}.{fmt}"),
                       dpi=dpi)
