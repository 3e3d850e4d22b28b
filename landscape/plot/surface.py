"""Surfaces on matplotlib axes: contour lines, filled contours, heat maps, 3D surfaces, 1D curves.

Every function takes an ``ax``, draws on it and returns what it drew. NaN/inf (and, on a log
scale, values ≤ 0) are gaps: masked, never replaced by a made-up value. ``log=True`` means a
logarithmic colour scale with log-spaced levels on the 2D kinds, and ``log10`` heights in 3D
(matplotlib's 3D axes have no log scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.colors import LogNorm, Normalize, SymLogNorm
from matplotlib.contour import QuadContourSet
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from landscape.grid import Grid

CMAP = "viridis"
Levels = int | Sequence[float]


def masked(z: np.ndarray, *, log: bool = False) -> np.ma.MaskedArray:
    """``z`` with NaN/inf (and values ≤ 0 when ``log``) masked."""
    z = np.asarray(z, np.float64)
    bad = ~np.isfinite(z)
    if log:
        bad |= ~(z > 0)
    return np.ma.masked_array(np.where(bad, np.nan, z), mask=bad)


def color_range(z: np.ma.MaskedArray, vmin: float | None, vmax: float | None, *,
                log: bool = False) -> tuple[float, float]:
    """``(vmin, vmax)``: the given bounds, else the finite data range (never empty). On a log
    scale (``log``) a given bound must be > 0: ValueError otherwise."""
    for name, bound in (("vmin", vmin), ("vmax", vmax)):
        if log and bound is not None and not bound > 0:
            raise ValueError(f"`{name}` (={bound}) must be > 0 on a log scale")
    data = z.compressed()
    lo = vmin if vmin is not None else (float(data.min()) if data.size else 0.0)
    hi = vmax if vmax is not None else (float(data.max()) if data.size else 1.0)
    if not hi > lo:
        hi = lo + (abs(lo) if lo else 1.0)
    return lo, hi


def norm_and_levels(z: np.ma.MaskedArray, *, levels: Levels = 30, vmin: float | None = None,
                    vmax: float | None = None, log: bool = False
                    ) -> tuple[Normalize, np.ndarray]:
    """A colour norm and contour levels: ``levels`` log-spaced values over (vmin, vmax) when
    ``log``, else about ``levels`` round values spanning them."""
    lo, hi = color_range(z, vmin, vmax, log=log)
    if log:
        lo = max(lo, hi * 1e-12)
        norm: Normalize = LogNorm(lo, hi)
        bounds = np.geomspace(lo, hi, levels) if isinstance(levels, int) else levels
    else:
        norm = Normalize(lo, hi)
        # round level values (as matplotlib picks them), so colour bars and labels read well
        bounds = MaxNLocator(levels).tick_values(lo, hi) if isinstance(levels, int) else levels
    return norm, np.asarray(bounds, np.float64)


def log_levels(z: np.ndarray, count: int, *, span: float = 1e-5) -> np.ndarray:
    """``count`` log-spaced levels from the smallest positive finite value of ``z`` (but at
    most ``span`` below the largest) to the largest; a decade above a single value (one level
    repeated would not be increasing, which matplotlib refuses)."""
    finite = np.asarray(z, np.float64)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    hi = float(finite.max()) if finite.size else 1.0
    lo = max(float(finite.min()) if finite.size else hi, hi * span)
    if not hi > lo:
        hi = lo * 10.0
    return np.geomspace(lo, hi, count)


SYMLOG_LINEAR = 0.02  # a symmetric log scale is linear within this fraction of the largest |z|


def symmetric_log_levels(z: np.ndarray, count: int) -> tuple[SymLogNorm, np.ndarray]:
    """A symmetric log scale for values of both signs (a log scale would drop the negative
    ones): log |z| with its sign, linear within ±``SYMLOG_LINEAR`` of the largest |z|, and
    ``count`` levels symmetric about 0 (0 itself included), log-spaced in magnitude."""
    finite = np.abs(np.asarray(z, np.float64))
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    linear = top * SYMLOG_LINEAR
    magnitudes = np.geomspace(linear, top, max(1, (count - 1) // 2))
    norm = SymLogNorm(linthresh=linear, vmin=-top, vmax=top)
    return norm, np.concatenate([-magnitudes[::-1], [0.0], magnitudes])


def _check_2d(grid: Grid, z: np.ndarray) -> None:
    if grid.y is None or np.shape(z) != grid.shape:
        raise ValueError(f"a 2D grid and values shaped (ny, nx) = {grid.shape} are needed, "
                         f"got a {grid.ndim}D grid and values {np.shape(z)}")


def plot_contour(
    ax: Axes,
    grid: Grid,
    z: np.ndarray,  # (ny, nx)
    *,
    levels: Levels = 30,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    filled: bool = True,
    cmap: str = CMAP,
    mark_origin: bool = True,
    norm: Normalize | None = None,
) -> QuadContourSet:
    """Contour lines (``filled=False``) or filled contours of ``z``; the origin starred.
    ``norm`` (with ``levels`` a sequence) replaces the scale ``log``/``vmin``/``vmax`` make,
    e.g. :func:`symmetric_log_levels`'."""
    _check_2d(grid, z)
    zm = masked(z, log=log)
    if norm is None:
        norm, bounds = norm_and_levels(zm, levels=levels, vmin=vmin, vmax=vmax, log=log)
    else:
        bounds = np.asarray(levels, np.float64)
    if filled:
        drawn = ax.contourf(grid.x, grid.y, zm, levels=bounds, norm=norm, cmap=cmap, extend="both")
    else:
        drawn = ax.contour(grid.x, grid.y, zm, levels=bounds, norm=norm, cmap=cmap,
                           linewidths=0.9)
    if mark_origin:
        ax.plot([0], [0], marker="*", linestyle="none", markersize=11,
                color="white" if filled else "black", markeredgecolor="black", zorder=4)
    ax.set_xlim(grid.x[0], grid.x[-1])
    ax.set_ylim(grid.y[0], grid.y[-1])
    return drawn


def plot_heatmap(
    ax: Axes,
    grid: Grid,
    z: np.ndarray,  # (ny, nx)
    *,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    cmap: str = CMAP,
    norm: Normalize | None = None,
) -> QuadMesh:
    """One cell per grid point, centred on it (gaps where ``z`` is not finite)."""
    _check_2d(grid, z)
    zm = masked(z, log=log)
    if norm is None:
        lo, hi = color_range(zm, vmin, vmax, log=log)
        norm = LogNorm(max(lo, hi * 1e-12), hi) if log else Normalize(lo, hi)
    return ax.pcolormesh(grid.x, grid.y, zm, shading="nearest", norm=norm, cmap=cmap,
                         rasterized=True)


def plot_surface_3d(
    ax: Axes,
    grid: Grid,
    z: np.ndarray,  # (ny, nx)
    *,
    log: bool = False,
    zmax: float | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = CMAP,
    max_facets: int = 100,
):
    """A 3D surface of ``z`` (``log10 z`` when ``log``) on a ``projection="3d"`` axes.

    ``vmin``/``vmax`` (and ``zmax``) are in the metric's units; heights beyond them are clipped
    to the box so the surface stays whole, and non-finite points are holes."""
    _check_2d(grid, z)
    zm = masked(z, log=log)
    lo, hi = color_range(zm, vmin, None if vmax is None and zmax is None else
                         min(v for v in (vmax, zmax) if v is not None), log=log)
    if log:
        lo = max(lo, hi * 1e-12)
    heights = np.clip(zm.filled(np.nan), lo, hi)
    if log:
        heights, lo, hi = np.log10(heights), np.log10(lo), np.log10(hi)
    xx, yy = np.meshgrid(grid.x, grid.y)
    drawn = ax.plot_surface(
        xx, yy, heights, cmap=cmap, vmin=lo, vmax=hi, linewidth=0, antialiased=False,
        rcount=min(len(grid.y), max_facets), ccount=min(len(grid.x), max_facets),
    )
    ax.set_zlim(lo, hi)
    for axis in (ax.xaxis, ax.yaxis):  # 3D tick labels collide sooner than 2D ones
        axis.set_major_locator(MaxNLocator(5))
    return drawn


def plot_curve(ax: Axes, grid: Grid, z: np.ndarray, *, label: str = "loss", log: bool = False,
               **style) -> Line2D:
    """A 1D curve of ``z`` over ``grid.x``; NaN points (and ≤ 0 with ``log``) are gaps."""
    (line,) = ax.plot(grid.x, masked(z, log=log).filled(np.nan), label=label, **style)
    if log:
        ax.set_yscale("log")
    ax.set_xlim(grid.x[0], grid.x[-1])
    return line


def plot_curves(ax: Axes, grid: Grid, values: Mapping[str, np.ndarray], *, log: bool = False
                ) -> list[Line2D]:
    """Li et al.'s 1D plot: every ``*_loss`` on ``ax`` (solid), every ``*_acc`` (percent) on a
    twin axis on the right (dashed). Returns the lines, losses first."""
    losses = [name for name in sorted(values) if not name.endswith("_acc")]
    accuracies = [name for name in sorted(values) if name.endswith("_acc")]
    lines = [plot_curve(ax, grid, values[name], label=name, log=log, color=f"C{k}")
             for k, name in enumerate(losses)]
    ax.set_ylabel("loss")
    if accuracies:
        twin = ax.twinx()
        lines += [plot_curve(twin, grid, values[name], label=name, linestyle="--",
                             color=f"C{k + len(losses)}") for k, name in enumerate(accuracies)]
        twin.set_ylabel("accuracy (%)")
    return lines


def fit_3d_inside(fig, *, margin: float = 2.0, shrink: float = 0.9, min_zoom: float = 0.5
                  ) -> None:
    """Shrink each 3D axes' box until its tick and axis labels lie inside ``fig`` (``margin``
    pixels in): layout engines place a 3D axes by its box and let the labels stick out (a
    "log10 los" cut at the right edge, an α label under the bottom one). Costs a layout pass
    without rendering per step; 2D axes are left alone."""
    axes = [ax for ax in fig.axes if getattr(ax, "name", "") == "3d"]
    zoom = {ax: 1.0 for ax in axes}
    for _ in range(12):
        if not axes:
            return
        fig.draw_without_rendering()
        box = fig.bbox
        outside = []
        for ax in axes:
            tight = ax.get_tightbbox()
            if (tight.x0 < box.x0 + margin or tight.y0 < box.y0 + margin
                    or tight.x1 > box.x1 - margin or tight.y1 > box.y1 - margin):
                outside.append(ax)
        for ax in outside:
            zoom[ax] *= shrink
            ax.set_box_aspect(None, zoom=zoom[ax])
        axes = [ax for ax in outside if zoom[ax] * shrink >= min_zoom]
