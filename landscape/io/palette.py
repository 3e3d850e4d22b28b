"""The colour of each trajectory, the same in every view: matplotlib's default cycle
(``C1``, ``C2``, ... — ``C0`` is left to the surface's own lines) in trajectory-name order, as
:func:`landscape.plot.overlay.plot_trajectories` draws them; used by the VTK/ParaView and HTML
exports."""

from __future__ import annotations

TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#7f7f7f", "#bcbd22", "#17becf")  # matplotlib's "tab10", its default colour cycle


def trajectory_color(k: int) -> str:
    """The hex colour of the ``k``-th trajectory in name order (``C{k + 1}`` in matplotlib)."""
    return TAB10[(k + 1) % len(TAB10)]


def trajectory_rgb(k: int) -> tuple[float, float, float]:
    """:func:`trajectory_color` as RGB in [0, 1]."""
    value = trajectory_color(k).lstrip("#")
    return tuple(int(value[i:i + 2], 16) / 255 for i in (0, 2, 4))
