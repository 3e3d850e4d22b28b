"""Optimizers' paths drawn step by step over a surface (as loss-landscape-anim does): filled
contours on the left, the 3D surface on the right, every path growing to the current step with
a marker at its head.

:func:`path_animation` returns a ``matplotlib.animation.FuncAnimation`` over a
``matplotlib.figure.Figure`` (no pyplot state); the CLI saves it (GIF through
``PillowWriter``, MP4 through ``FFMpegWriter`` when ffmpeg is installed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure

from landscape.grid import Grid, interpolate
from landscape.plot.overlay import plane_axis_labels, start_end_handles
from landscape.plot.figures import colorbar, metric_label
from landscape.plot.surface import (
    fit_3d_inside,
    plot_contour,
    plot_surface_3d,
)

DEFAULT_FRAMES = 60


def frame_steps(trajectories: Mapping[str, Mapping[str, np.ndarray]], frames: int
                ) -> np.ndarray:
    """The step each frame shows: ``frames`` values evenly spaced from the first recorded step
    to the last (fewer when the paths record fewer distinct steps: one frame per step then)."""
    steps = np.unique(np.concatenate([np.asarray(t["step"], np.float64).ravel()
                                      for t in trajectories.values()]))
    if len(steps) <= frames:
        return steps
    return np.linspace(steps[0], steps[-1], frames)


def path_animation(
    grid: Grid,
    z: np.ndarray,  # (ny, nx)
    trajectories: Mapping[str, Mapping[str, np.ndarray]],
    *,
    metric: str = "train_loss",
    attrs: Mapping[str, Any] | None = None,
    log: bool = False,
    levels: int = 30,
    frames: int = DEFAULT_FRAMES,
    fps: int = 12,
    title: str = "",
) -> FuncAnimation:
    """The animation of ``trajectories`` (``{name: {"x", "y", "step", ...}}``) on a 2D surface:
    frame k shows every path up to step :func:`frame_steps`\\ [k]. Its ``frame_count`` and
    ``steps`` attributes say what it holds."""
    if grid.ndim != 2:
        raise ValueError("an animation needs a 2D surface")
    if not trajectories:
        raise ValueError("an animation needs at least one trajectory")
    steps = frame_steps(trajectories, frames)
    names = sorted(trajectories)
    fig = Figure(figsize=(11.5, 5.2), layout="constrained")
    cells = fig.add_gridspec(1, 2, width_ratios=[1.0, 1.15])  # the 3D box shrinks to fit labels
    ax = fig.add_subplot(cells[0])
    function = (attrs or {}).get("direction_kind") == "parameters"  # no model at (0, 0)
    contours = plot_contour(ax, grid, z, levels=levels, log=log, mark_origin=not function)
    colorbar(fig, contours, ax, label=metric_label(metric, log))
    xlabel, ylabel = plane_axis_labels(attrs or {})
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax3d = fig.add_subplot(cells[1], projection="3d", computed_zorder=False)
    plot_surface_3d(ax3d, grid, z, log=log)
    ax3d.set_xlabel(xlabel.split(" (")[0])
    ax3d.set_ylabel(ylabel.split(" (")[0])
    ax3d.set_zlabel(f"log10 {metric}" if log else metric)
    ax3d.view_init(elev=35, azim=-60)

    drawn = []
    for k, name in enumerate(names):
        entry = trajectories[name]
        x = np.asarray(entry["x"], np.float64)
        y = np.asarray(entry["y"], np.float64)
        step = np.asarray(entry["step"], np.float64)
        height = interpolate(grid, z, x, y)
        if log:
            height = np.log10(np.where(height > 0, height, np.nan))
        color = f"C{(k + 1) % 10}"  # as plot_trajectories (and io.palette) colour them
        (line,) = ax.plot([], [], color=color, linewidth=1.8, label=name, zorder=5)
        (head,) = ax.plot([], [], marker="D", color=color, markeredgecolor="white",
                          linestyle="none", markersize=6, zorder=6)
        ax.plot(x[:1], y[:1], marker="o", color=color, markeredgecolor="white",
                linestyle="none", markersize=6, zorder=6)  # where it starts
        (line3d,) = ax3d.plot([], [], [], color=color, linewidth=2.0, zorder=10)
        (head3d,) = ax3d.plot([], [], [], marker="D", color=color, markeredgecolor="white",
                              linestyle="none", markersize=6, zorder=11)
        drawn.append((x, y, step, height, line, head, line3d, head3d))
    ax.set_xlim(grid.x[0], grid.x[-1])
    ax.set_ylim(grid.y[0], grid.y[-1])
    handles = [d[4] for d in drawn] + start_end_handles(end="current step")
    # below the panels: a legend placed "best" would jump about as the paths grow
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 8),
               fontsize=8, frameon=False)
    heading = fig.suptitle("")

    def update(frame: int) -> list:
        upto = steps[frame]
        for x, y, step, height, line, head, line3d, head3d in drawn:
            shown = step <= upto
            line.set_data(x[shown], y[shown])
            head.set_data(x[shown][-1:], y[shown][-1:])
            on = shown & np.isfinite(height)  # off the grid: no height to lift it to
            line3d.set_data_3d(x[on], y[on], height[on])
            head3d.set_data_3d(x[on][-1:], y[on][-1:], height[on][-1:])
        heading.set_text(f"{title} — step {upto:.0f}" if title else f"step {upto:.0f}")
        return []

    update(len(steps) - 1)  # the last frame, for the layout to fit its labels
    fit_3d_inside(fig)
    animation = FuncAnimation(fig, update, frames=len(steps), interval=1000 / fps, blit=False,
                              repeat=False)
    animation.frame_count = len(steps)
    animation.steps = steps
    return animation
