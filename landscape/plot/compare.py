"""The figure of ``landscape compare``: several optimizers' paths on one surface.

Three panels: contours with every path (and the known minima), the 3D surface with the paths
lifted onto it, and the true loss against the step — on a network also the surface's value at
each projected point (dashed), which shows how much of a path the plane holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from landscape.compare import ComparedPath
from landscape.grid import Grid, interpolate
from landscape.plot.overlay import mark_points, plot_trajectories, start_end_handles
from landscape.plot.surface import fit_3d_inside, log_levels, plot_contour, plot_surface_3d

# tab10, then four more that stay apart from it (the suite has 14 optimizers).
COLORS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "black", "gold", "navy",
          "lime")


def path_colors(names: Sequence[str]) -> dict[str, str]:
    """One colour per path, in the order compared."""
    return {name: COLORS[k % len(COLORS)] for k, name in enumerate(names)}


def comparison_figure(
    grid: Grid,
    z: np.ndarray,  # (ny, nx) train loss, or f on a test function
    paths: Sequence[ComparedPath],
    *,
    function: bool,
    log: bool,
    threshold: float = math.nan,
    minima: Sequence[Sequence[float]] = (),
    saddles: Sequence[Sequence[float]] = (),
    residuals: Mapping[str, float] | None = None,
    labels: tuple[str, str] = ("x", "y"),
    title: str = "",
) -> Figure:
    """Every path on one surface, with one legend.

    ``function``: the surface is a test function (contour lines with log-spaced levels and a
    linear 3D view, as the seed article's Figure 1; steps on a log axis) rather than a network's
    plane (filled contours, log10 heights, the surface at the projection dashed). ``residuals``
    (path name → relative residual) are added to the legend entries; ``threshold`` is drawn as a
    dotted line on the loss axis.
    """
    colors = path_colors([p.name for p in paths])
    fig = Figure(figsize=(18, 5.6), layout="constrained")
    ax = fig.add_subplot(1, 3, 1)
    levels: int | np.ndarray = 30
    if log and function:  # the seed's Figure 1: contour lines over its usual decades
        levels = log_levels(z, 25)
    # (a network's filled contours take levels down to its lowest loss: levels cut at 1e-5 of
    # the largest filled everything below them with one colour, under a bar that went lower)
    contours = plot_contour(ax, grid, z, levels=levels, log=log, filled=not function,
                            mark_origin=not function)
    fig.colorbar(ScalarMappable(norm=contours.norm, cmap=contours.cmap), ax=ax,
                 label=("f(x, y)" if function else "train loss") + (" (log scale)" if log else ""))
    by_name = {p.name: {"x": p.x, "y": p.y} for p in paths}
    drawn = plot_trajectories(ax, by_name, colors=[colors[name] for name in sorted(by_name)])
    lines = sorted(drawn, key=lambda line: list(colors).index(line.get_label()))  # as compared
    for line in lines:
        if residuals is not None:
            name = line.get_label()
            line.set_label(f"{name} (residual {residuals[name]:.0%})")
    marks = [mark_points(ax, minima, label="global minimum"),
             mark_points(ax, saddles, label="saddle point", marker="X", color="orange", size=11)]
    ax.set_xlim(grid.x[0], grid.x[-1])
    ax.set_ylim(grid.y[0], grid.y[-1])
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    if function:
        ax.set_aspect("equal")

    ax3d = fig.add_subplot(1, 3, 2, projection="3d", computed_zorder=False)
    log3d = log and not function  # a function's 3D view is linear, as the seed's Figure 1
    plot_surface_3d(ax3d, grid, z, log=log3d)
    for path in paths:
        heights = interpolate(grid, z, path.x, path.y)  # NaN off the grid: gaps in the line
        if log3d:
            heights = np.log10(np.where(heights > 0, heights, np.nan))
        on = np.isfinite(heights)
        ax3d.plot(np.where(on, path.x, np.nan), np.where(on, path.y, np.nan), heights,
                  color=colors[path.name], linewidth=1.6, zorder=10)
    ax3d.set_xlim(grid.x[0], grid.x[-1])
    ax3d.set_ylim(grid.y[0], grid.y[-1])
    ax3d.set_xlabel(labels[0].split(" (")[0])
    ax3d.set_ylabel(labels[1].split(" (")[0])
    # a title rather than a z label, which constrained layout would let run into the next panel
    ax3d.set_title("log10 train loss" if log3d else "f(x, y)", fontsize=10)
    ax3d.view_init(elev=35, azim=-70)

    axl = fig.add_subplot(1, 3, 3)
    for path in paths:
        axl.plot(path.step, path.loss, color=colors[path.name], linewidth=1.2)
        if not function and path.projected_loss is not None:
            axl.plot(path.step, path.projected_loss, color=colors[path.name], linewidth=1.0,
                     linestyle="--")
    if any((p.loss[np.isfinite(p.loss)] < 0).any() for p in paths):
        axl.set_yscale("symlog")
    else:
        axl.set_yscale("log", nonpositive="mask")  # a loss of exactly 0 is a gap
    if function:  # runs of 1000 to 20000 steps: the early steps need room too
        axl.set_xscale("symlog", linthresh=10)
        axl.set_xlim(0, None)
    if math.isfinite(threshold):
        axl.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    axl.set_xlabel("step")
    axl.set_ylabel("f(x, y)" if function else "train loss")
    axl.set_title("loss against step" + ("" if function else
                                         " (dashed: the surface at the projected point)"),
                  fontsize=10)
    handles = lines + start_end_handles() + [mark for mark in marks if mark is not None]
    if not function:
        handles += [Line2D([], [], color="grey", label="true loss"),
                    Line2D([], [], color="grey", linestyle="--", label="surface at projection")]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, framealpha=0.85)
    if title:
        fig.suptitle(title)
    fit_3d_inside(fig)
    return fig
