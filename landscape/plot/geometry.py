"""Figures of geometry along training: λmax against step with each optimizer's stability
threshold, and the loss along the paths between two minima with their barriers.

Plot functions take an ``ax`` and return what they drew; figure builders return a
``matplotlib.figure.Figure`` (no pyplot state); only the CLI saves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def plot_sharpness(ax: Axes, step: np.ndarray, values: np.ndarray, *, label: str, color: str,
                   threshold: float | None = None, threshold_label: str | None = None,
                   style: str = "-", marker: str | None = "o") -> list:
    """One optimizer's sharpness against step, with its threshold as a dashed line of the same
    colour (labelled ``threshold_label``)."""
    step, values = np.asarray(step), np.asarray(values, np.float64)
    ok = np.isfinite(values)
    drawn = ax.plot(step[ok], values[ok], style, color=color, label=label, marker=marker,
                    markersize=3, linewidth=1.5)
    if threshold is not None and np.isfinite(threshold):
        drawn.append(ax.axhline(threshold, color=color, linestyle="--", linewidth=1.2,
                                label=threshold_label))
    return drawn


def _log_if_wide(ax: Axes, values: Sequence[float]) -> None:
    finite = np.asarray([v for v in values if np.isfinite(v) and v > 0])
    if finite.size and finite.max() / finite.min() > 30:
        ax.set_yscale("log")


def curvature_figure(series: Sequence[Mapping[str, Any]], *, title: str = "") -> Figure:
    """λmax(H) against step for every run (left), with 2/η-type thresholds for the methods
    whose threshold is on H; and, when any run has one, the preconditioned sharpness
    λmax(P^{-1/2} H P^{-1/2}) of adaptive methods against theirs (right).

    Each entry of ``series``: ``label``, ``step``, ``lambda_max``, ``preconditioned_max``,
    ``threshold`` (a :class:`~landscape.geometry.stability.StabilityThreshold` or None) and
    optionally ``tracked`` (``(step, lambda_max)`` measured during training).
    """
    adaptive = [s for s in series if np.isfinite(np.asarray(s["preconditioned_max"],
                                                            np.float64)).any()]
    fig = Figure(figsize=(12 if adaptive else 7, 4.8), layout="constrained")
    axes = fig.subplots(1, 2 if adaptive else 1, squeeze=False)[0]
    shown: list[float] = []
    for i, s in enumerate(series):
        color = f"C{i % 10}"
        th = s.get("threshold")
        on_h = th is not None and not th.preconditioned
        plot_sharpness(axes[0], s["step"], s["lambda_max"], label=f"{s['label']}", color=color,
                       threshold=th.value if on_h else None,
                       threshold_label=f"{th.formula} = {th.value:.4g} ({s['label']})"
                       if on_h else None)
        shown += list(np.asarray(s["lambda_max"], np.float64)) + ([th.value] if on_h else [])
        tracked = s.get("tracked")
        if tracked is not None and len(tracked[0]):
            axes[0].plot(tracked[0], tracked[1], ":", color=color, linewidth=1,
                         label=f"{s['label']}, tracked in training")
    axes[0].set_title("sharpness λmax(H)")
    axes[0].set_ylabel("λmax of the training-loss Hessian")
    _log_if_wide(axes[0], shown)
    if adaptive:
        shown = []
        for i, s in enumerate(series):
            if s not in adaptive:
                continue
            th = s.get("threshold")
            on_p = th is not None and th.preconditioned
            plot_sharpness(axes[1], s["step"], s["preconditioned_max"], label=s["label"],
                           color=f"C{i % 10}", threshold=th.value if on_p else None,
                           threshold_label=f"{th.formula} = {th.value:.4g} ({s['label']})"
                           if on_p else None)
            shown += list(np.asarray(s["preconditioned_max"], np.float64))
            shown += [th.value] if on_p else []
        axes[1].set_title("preconditioned sharpness λmax(P⁻¹ᐟ² H P⁻¹ᐟ²)")
        axes[1].set_ylabel("λmax of the preconditioned Hessian")
        _log_if_wide(axes[1], shown)
    for ax in axes:
        ax.set_xlabel("training step")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_path(ax: Axes, t: np.ndarray, values: np.ndarray, *, label: str, color: str,
              style: str = "-", annotate: bool = True, min_arrow: float = 0.0) -> list:
    """A metric along a path, with its barrier (max − mean of the endpoints) drawn as a vertical
    arrow from the endpoints' mean to the maximum (when it is at least ``min_arrow`` tall: a
    smaller one would be a mark, not an arrow)."""
    t, values = np.asarray(t, np.float64), np.asarray(values, np.float64)
    height = float(np.max(values) - (values[0] + values[-1]) / 2)
    drawn = ax.plot(t, values, style, color=color, marker="o", markersize=3,
                    label=f"{label} (barrier {height:.3g})")
    if annotate and height >= min_arrow:
        top = int(np.argmax(values))
        base = (values[0] + values[-1]) / 2
        drawn.append(ax.annotate("", xy=(t[top], values[top]), xytext=(t[top], base),
                                 arrowprops={"arrowstyle": "<->", "color": color, "lw": 1}))
        drawn.append(ax.hlines(base, t[0], t[-1], colors=color, linestyles=":", linewidth=1))
    return drawn


def connect_figure(t: np.ndarray, linear: Mapping[str, np.ndarray],
                   bezier: Mapping[str, np.ndarray] | None, *, title: str = "") -> Figure:
    """Loss (left) and, for classifiers, error in percent (right) along the linear path and the
    Bezier curve from model A (t = 0) to model B (t = 1); train solid, test dashed; each
    barrier drawn as an arrow from the endpoints' mean (dotted) to the path's maximum."""
    has_acc = any(name.endswith("_acc") for name in linear)
    fig = Figure(figsize=(12 if has_acc else 6.5, 4.6), layout="constrained")
    axes = fig.subplots(1, 2 if has_acc else 1, squeeze=False)[0]
    paths = [("linear", linear, "C0")] + ([("Bezier", bezier, "C3")] if bezier else [])
    for ax, kind in zip(axes, ("loss", "error")):
        shown = [np.asarray(m[k], np.float64) for _, m, _ in paths for k in m
                 if k.endswith("_loss" if kind == "loss" else "_acc")]
        span = float(np.ptp(np.concatenate(shown))) if shown else 0.0
        for name, metrics, color in paths:
            for split, style in (("train", "-"), ("test", "--")):
                key = f"{split}_{'loss' if kind == 'loss' else 'acc'}"
                if key not in metrics:
                    continue
                values = np.asarray(metrics[key], np.float64)
                if kind == "error":
                    values = 100.0 - values
                plot_path(ax, t, values, label=f"{name}, {split}", color=color, style=style,
                          annotate=split == "train", min_arrow=0.03 * span)
        ax.set_xlabel("t (0: model A, 1: model B)")
        ax.set_ylabel("mean loss" if kind == "loss" else "error (%)")
        ax.set_title(f"{kind} along the paths")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig
