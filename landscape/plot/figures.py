"""Whole figures, built on ``matplotlib.figure.Figure`` (no pyplot state); :mod:`landscape.views`
saves them.

One figure per view, sized for a paper column, colour bars labelled with the metric and its
scale, the plane's axes labelled with what its directions are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, SymLogNorm
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure

from landscape.grid import Grid, interpolate
from landscape.plot.hessian import (
    plot_block_densities,
    plot_eigen_maps,
    plot_spectral_density,
)
from landscape.plot.overlay import (
    mark_points,
    plane_axis_labels,
    plot_trajectories,
    start_end_handles,
)
from landscape.plot.surface import (
    Levels,
    fit_3d_inside,
    log_levels,
    symmetric_log_levels,
    plot_contour,
    plot_curves,
    plot_heatmap,
    plot_surface_3d,
)

KINDS_2D = ("contour", "filled", "heatmap", "surface3d")


def completion_note(done: np.ndarray) -> str:
    """``"412 of 2601 points"`` for a surface whose ``done`` mask is not all true, else "":
    what a partial scan's figures say in their titles."""
    done = np.asarray(done, bool)
    count = int(done.sum())
    return "" if count == done.size else f"{count} of {done.size} points"


def metric_label(metric: str, log: bool, *, symmetric: bool = False) -> str:
    if symmetric:
        return f"{metric} (symmetric log scale)"
    return f"{metric} (log scale)" if log else metric


def colorbar(fig: Figure, drawn, ax, *, label: str, **kwargs):
    """A colour bar; for contours on a log scale a continuous one, so that its ticks are decades
    rather than the (arbitrary) level values."""
    if isinstance(drawn, ContourSet) and isinstance(drawn.norm, (LogNorm, SymLogNorm)):
        drawn = ScalarMappable(norm=drawn.norm, cmap=drawn.cmap)
    return fig.colorbar(drawn, ax=ax, label=label, **kwargs)


def surface_figure(grid: Grid, z: np.ndarray, *, title: str = "", log: bool = False,
                   metric: str = "loss", attrs: Mapping[str, Any] | None = None) -> Figure:
    """Filled contours and a 3D surface side by side (2D grids), or a curve (1D grids), of
    ``metric``; the axes named by :func:`plane_axis_labels` of the file's ``attrs``."""
    xlabel, ylabel = plane_axis_labels(attrs or {})
    if grid.ndim == 1:
        return curves_figure(grid, {metric: z}, log=log, title=title, xlabel=xlabel)
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    contours = plot_contour(ax, grid, z, log=log)
    colorbar(fig, contours, ax, label=metric_label(metric, log))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax3d = fig.add_subplot(1, 2, 2, projection="3d")
    plot_surface_3d(ax3d, grid, z, log=log)
    ax3d.set_xlabel(xlabel.split(" (")[0])
    ax3d.set_ylabel(ylabel.split(" (")[0])
    ax3d.set_zlabel(f"log10 {metric}" if log else metric)
    if title:
        fig.suptitle(title)
    fit_3d_inside(fig)
    return fig


def kind_figure(
    kind: str,
    grid: Grid,
    z: np.ndarray,  # (ny, nx)
    *,
    metric: str = "train_loss",
    attrs: Mapping[str, Any] | None = None,
    trajectories: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    levels: Levels = 30,
    vmin: float | None = None,
    vmax: float | None = None,
    log: bool = False,
    title: str = "",
) -> Figure:
    """One view of a 2D surface: ``contour``, ``filled``, ``heatmap`` or ``surface3d``, with the
    trajectories (if any) drawn over the 2D views and a legend naming them."""
    if kind not in KINDS_2D:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS_2D)}")
    xlabel, ylabel = plane_axis_labels(attrs or {})
    if kind == "surface3d":
        fig = Figure(figsize=(6.4, 5.2), layout="constrained")
        ax = fig.add_subplot(projection="3d")
        drawn = plot_surface_3d(ax, grid, z, log=log, vmin=vmin, vmax=vmax)
        ax.set_zlabel(f"log10 {metric}" if log else metric)
        fig.colorbar(drawn, ax=ax, shrink=0.6, pad=0.1,
                     label=f"log10 {metric}" if log else metric)
        ax.view_init(elev=35, azim=-60)
    else:
        fig = Figure(figsize=(5.6, 4.6), layout="constrained")
        ax = fig.add_subplot()
        if kind == "heatmap":
            drawn = plot_heatmap(ax, grid, z, vmin=vmin, vmax=vmax, log=log)
        else:
            drawn = plot_contour(ax, grid, z, levels=levels, vmin=vmin, vmax=vmax, log=log,
                                 filled=kind == "filled")
            if kind == "contour":
                ax.clabel(drawn, inline=True, fontsize=7, fmt="%.3g",
                          levels=drawn.levels[:: max(1, len(drawn.levels) // 6)])
        colorbar(fig, drawn, ax, label=metric_label(metric, log))
        if trajectories:
            lines = plot_trajectories(ax, trajectories)
            ax.legend(handles=lines + start_end_handles(), loc="best", fontsize=8,
                      framealpha=0.85)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fit_3d_inside(fig)
    return fig


def curves_figure(grid: Grid, values: Mapping[str, np.ndarray], *, log: bool = False,
                  title: str = "", xlabel: str = "α (direction 1)") -> Figure:
    """1D surfaces: losses on the left axis, accuracies (percent) on the right, one legend."""
    fig = Figure(figsize=(5.6, 4.0), layout="constrained")
    ax = fig.add_subplot()
    lines = plot_curves(ax, grid, values, log=log)
    ax.set_xlabel(xlabel)
    ax.legend(lines, [line.get_label() for line in lines], loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def hessian_figure(grid: Grid, max_eig: np.ndarray, min_eig: np.ndarray, *,
                   attrs: Mapping[str, Any] | None = None, title: str = "") -> Figure:
    """λmax, λmin and |λmin/λmax| side by side, each with its colour bar."""
    fig = Figure(figsize=(15, 4.4), layout="constrained")
    axes = [fig.add_subplot(1, 3, k + 1) for k in range(3)]
    drawn = plot_eigen_maps(axes, grid, max_eig, min_eig)
    xlabel, ylabel = plane_axis_labels(attrs or {})
    for ax, artist in zip(axes, drawn):
        ax.set_xlabel(xlabel)
        if grid.ndim == 2:
            ax.set_ylabel(ylabel)
            fig.colorbar(artist, ax=ax)
    if title:
        fig.suptitle(title)
    return fig


def density_figure(eigenvalues: np.ndarray, density: np.ndarray, *, log: bool = True,
                   title: str = "Hessian spectral density") -> Figure:
    fig = Figure(figsize=(5.6, 4.0), layout="constrained")
    ax = fig.add_subplot()
    plot_spectral_density(ax, eigenvalues, density, log=log)
    if title:
        ax.set_title(title)
    return fig


def block_density_figure(densities: Sequence[tuple[str, np.ndarray, np.ndarray]], *,
                         title: str = "Hessian spectral density by block") -> Figure:
    """Parameter blocks' spectral densities on one axis (:func:`plot_block_densities`)."""
    fig = Figure(figsize=(7.6 if len(densities) <= 12 else 9.2, 4.2), layout="constrained")
    ax = fig.add_subplot()
    plot_block_densities(ax, densities)
    if title:
        ax.set_title(title)
    return fig


def function_figure(
    grid: Grid,
    z: np.ndarray,  # (ny, nx)
    *,
    minima: Sequence[Sequence[float]] = (),
    saddles: Sequence[Sequence[float]] = (),
    path: np.ndarray | None = None,  # (steps + 1, 2)
    path_label: str = "gradient descent",
    log: bool = True,
    levels: Levels = 25,
    title: str = "",
) -> Figure:
    """The seed article's Figure 1 layout: contour lines (log-spaced levels when ``log``) with
    the known minima starred and an optional descent path, and the 3D surface beside them.

    ``log`` on a function that takes negative values (a saddle) is a symmetric log scale
    (:func:`~landscape.plot.surface.symmetric_log_levels`): a log scale would drop them."""
    fig = Figure(figsize=(12, 5), layout="constrained")
    ax = fig.add_subplot(1, 2, 1)
    finite = np.asarray(z)[np.isfinite(z)]
    symmetric = log and bool((finite < 0).any()) and isinstance(levels, int)
    norm = None
    if symmetric:
        norm, levels = symmetric_log_levels(z, levels)
    elif log and isinstance(levels, int):
        levels = log_levels(z, levels)
    contours = plot_contour(ax, grid, z, levels=levels, log=log and not symmetric, filled=False,
                            mark_origin=False, norm=norm)
    colorbar(fig, contours, ax, label=metric_label("f(x, y)", log, symmetric=symmetric))
    mark_points(ax, minima, label="global minimum")
    mark_points(ax, saddles, label="saddle point", marker="X", color="orange", size=11)
    if path is not None:
        plot_trajectories(ax, {path_label: {"x": path[:, 0], "y": path[:, 1]}}, colors=["C3"])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal")
    if len(minima) or len(saddles) or path is not None:
        handles, _ = ax.get_legend_handles_labels()
        extra = start_end_handles() if path is not None else []
        ax.legend(handles=handles + extra, loc="upper left", fontsize=8, framealpha=0.85)
    ax3d = fig.add_subplot(1, 2, 2, projection="3d", computed_zorder=False)
    plot_surface_3d(ax3d, grid, z, log=False)
    if path is not None and len(path):
        heights = interpolate(grid, z, path[:, 0], path[:, 1])  # NaN off the grid
        ax3d.plot(path[:, 0], path[:, 1], heights, color="C3", linewidth=2, zorder=10)
    ax3d.set_xlabel("x")
    ax3d.set_ylabel("y")
    ax3d.set_zlabel("f(x, y)")
    ax3d.view_init(elev=35, azim=-70)
    if title:
        fig.suptitle(title)
    fit_3d_inside(fig)
    return fig

