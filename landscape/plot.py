"""Matplotlib figures of surfaces. Functions take an ``ax`` and return what they drew; only the
CLI saves figures. Figures are built with ``matplotlib.figure.Figure`` (no pyplot state)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from landscape.grid import Grid


def _masked(z: np.ndarray, log: bool) -> np.ma.MaskedArray:
    """NaN/inf (and non-positive values on a log scale) become gaps."""
    z = np.asarray(z, np.float64)
    bad = ~np.isfinite(z)
    if log:
        bad |= z <= 0
        z = np.where(bad, np.nan, np.log10(np.where(bad, 1.0, z)))
    return np.ma.masked_array(z, mask=bad)


def plot_contour(
    ax: Axes,
    grid: Grid,
    z: np.ndarray,  # (ny, nx)
    *,
    levels: int = 30,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    filled: bool = True,
):
    """Contour lines (or filled contours) of ``z`` over the grid, the origin marked."""
    zm = _masked(z, log)
    kwargs = dict(levels=levels, vmin=vmin, vmax=vmax, cmap="viridis")
    drawn = (ax.contourf if filled else ax.contour)(grid.x, grid.y, zm, **kwargs)
    ax.plot([0], [0], marker="*", color="white" if filled else "black", markersize=10)
    ax.set_xlabel("α (direction 1)")
    ax.set_ylabel("β (direction 2)")
    ax.set_aspect("auto")
    return drawn


def plot_surface_3d(ax, grid: Grid, z: np.ndarray, *, log: bool = False, zmax: float | None = None):
    """A 3D surface of ``z``; ``ax`` must be a 3D axes (``projection="3d"``)."""
    zm = _masked(z, log).filled(np.nan)
    if zmax is not None:
        zm = np.where(zm > zmax, np.nan, zm)
    xx, yy = np.meshgrid(grid.x, grid.y)
    finite = zm[np.isfinite(zm)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    drawn = ax.plot_surface(xx, yy, zm, cmap="viridis", vmin=lo, vmax=hi, linewidth=0, antialiased=True)
    ax.set_xlabel("α")
    ax.set_ylabel("β")
    ax.set_zlabel("log10 loss" if log else "loss")
    return drawn


def plot_curve(ax: Axes, grid: Grid, z: np.ndarray, *, label: str = "loss", log: bool = False):
    """A 1D curve of ``z`` over ``grid.x`` (NaN points are gaps)."""
    (line,) = ax.plot(grid.x, _masked(z, False).filled(np.nan), label=label)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("α")
    ax.set_ylabel(label)
    return line


def surface_figure(grid: Grid, z: np.ndarray, *, title: str = "", log: bool = False) -> Figure:
    """Contour and 3D surface side by side (2D grids), or a curve (1D grids)."""
    if grid.ndim == 1:
        fig = Figure(figsize=(6, 4), layout="constrained")
        plot_curve(fig.add_subplot(), grid, z, log=log)
    else:
        fig = Figure(figsize=(12, 5), layout="constrained")
        ax = fig.add_subplot(1, 2, 1)
        contours = plot_contour(ax, grid, z, log=log)
        fig.colorbar(contours, ax=ax, label="log10 loss" if log else "loss")
        plot_surface_3d(fig.add_subplot(1, 2, 2, projection="3d"), grid, z, log=log)
    if title:
        fig.suptitle(title)
    return fig
