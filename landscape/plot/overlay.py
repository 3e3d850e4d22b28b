"""What is drawn over a surface: trajectories, marked points, and axis labels saying what the
plane's directions are (PCA components with their explained variance, or random directions)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.lines import Line2D

_OUTLINE = [patheffects.withStroke(linewidth=3.5, foreground="white")]


def plot_trajectories(ax: Axes, trajectories: Mapping[str, Mapping[str, np.ndarray]], *,
                      colors: Sequence[str] | None = None) -> list[Line2D]:
    """Each trajectory's projected (x, y) path as a line with a white outline (visible on any
    colour map), a circle at its first recorded step and a filled marker at its last.
    The lines are labelled by trajectory name for a legend; returns them in name order."""
    lines = []
    for k, name in enumerate(sorted(trajectories)):
        entry = trajectories[name]
        x = np.asarray(entry["x"], np.float64)
        y = np.asarray(entry["y"], np.float64) if "y" in entry else np.zeros_like(x)
        color = colors[k % len(colors)] if colors else f"C{(k + 1) % 10}"
        (line,) = ax.plot(x, y, color=color, linewidth=1.8, label=name, zorder=5,
                          path_effects=_OUTLINE)
        ax.plot(x[:1], y[:1], marker="o", color=color, markeredgecolor="white", linestyle="none",
                markersize=6, zorder=6)
        ax.plot(x[-1:], y[-1:], marker="D", color=color, markeredgecolor="white",
                linestyle="none", markersize=6, zorder=6)
        lines.append(line)
    return lines


def start_end_handles(*, end: str = "last recorded step") -> list[Line2D]:
    """Legend entries for the markers :func:`plot_trajectories` puts on every path: a circle at
    its first recorded step, a diamond at its last (grey: they stand for every path)."""
    style = dict(color="0.45", markeredgecolor="white", linestyle="none", markersize=6)
    return [Line2D([], [], marker="o", label="first recorded step", **style),
            Line2D([], [], marker="D", label=end, **style)]


def mark_points(ax: Axes, points: Sequence[Sequence[float]], *, label: str, marker: str = "*",
                color: str = "red", size: float = 15.0) -> Line2D | None:
    """Mark points (e.g. known minima) with one labelled marker style; None if no point."""
    if not len(points):
        return None
    xy = np.asarray(points, np.float64).reshape(-1, 2)
    (drawn,) = ax.plot(xy[:, 0], xy[:, 1], marker=marker, color=color, markeredgecolor="black",
                       linestyle="none", markersize=size, label=label, zorder=7)
    return drawn


def explained_variance(attrs: Mapping[str, Any]) -> list[float] | None:
    """The ``explained_variance`` attribute (a JSON list, or a list) as floats, if present."""
    value = attrs.get("explained_variance")
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    try:
        return [float(v) for v in np.ravel(value)]
    except (TypeError, ValueError):
        return None


def interpolation_axis_labels(attrs: Mapping[str, Any]) -> tuple[str, str]:
    """``α (0: runs/sgd, 1: runs/adam)``: which model each end of an interpolation axis is,
    from the scan's spec (``run``: the origin's run, ``to``: the end runs; generic names
    where the spec has none, as from the Python API)."""
    spec = attrs.get("grid")
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except ValueError:
            spec = None
    spec = spec if isinstance(spec, Mapping) else {}
    start = spec.get("run") if isinstance(spec.get("run"), str) else "the scanned model"
    ends = [e for e in spec.get("to") or [] if isinstance(e, str)] if isinstance(
        spec.get("to"), list) else []
    ends += ["the end model", "the second end model"][len(ends):]
    return f"α (0: {start}, 1: {ends[0]})", f"β (0: {start}, 1: {ends[1]})"


def plane_axis_labels(attrs: Mapping[str, Any]) -> tuple[str, str]:
    """Axis labels for a surface file: ``PC1 (71.3 % of variance)`` when the plane is a PCA plane
    with ``explained_variance``, ``α (0: runs/sgd, 1: runs/adam)`` on an interpolation, ``x``,
    ``y`` on a test function, else ``α (direction 1)`` (with the direction kind if known).
    Fractions (all ≤ 1) are shown as percentages, other values as variances."""
    if attrs.get("direction_kind") == "parameters":  # a 2D test function: the plane itself
        return "x", "y"
    if attrs.get("direction_kind") == "interpolation":
        return interpolation_axis_labels(attrs)
    variance = explained_variance(attrs)
    if variance and len(variance) >= 1:
        ratio = all(0 <= v <= 1 for v in variance)
        labels = [f"PC{k + 1} ({100 * v:.1f} % of variance)" if ratio
                  else f"PC{k + 1} (variance {v:.3g})" for k, v in enumerate(variance[:2])]
        while len(labels) < 2:
            labels.append("PC2")
        return labels[0], labels[1]
    kind = attrs.get("direction_kind")
    kind = f"{kind} " if isinstance(kind, str) and kind else ""
    return f"α ({kind}direction 1)", f"β ({kind}direction 2)"
