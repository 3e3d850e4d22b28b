"""Mini-batch spectra: the top eigenvalues of N mini-batch Hessians, one violin per λ_i, beside
the full-data Hessian's (as studies of vision transformers show them, looping PyHessian over a
data loader's batches)."""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

FULL_COLOR = "C3"


def plot_minibatch_spectra(ax: Axes, values: np.ndarray, full: np.ndarray | None = None
                           ) -> dict:
    """``values`` (N, k): each batch's top-k eigenvalues. One violin per λ_i over the N batches
    (with two or more), the batches' values as dots, their median as a line, and ``full`` (k,)
    — the full-data Hessian's λ_i — as a red bar across each violin. Returns the drawn artists
    by name."""
    values = np.atleast_2d(np.asarray(values, np.float64))
    num_batches, k = values.shape
    positions = np.arange(1, k + 1)
    drawn = {}
    finite = [column[np.isfinite(column)] for column in values.T]
    if num_batches >= 2 and all(len(c) >= 2 and np.ptp(c) > 0 for c in finite):
        parts = ax.violinplot(finite, positions=positions, widths=0.7, showmedians=True,
                              showextrema=False)
        for body in parts["bodies"]:
            body.set_facecolor("C0")
            body.set_alpha(0.35)
        parts["cmedians"].set_color("C0")
        parts["cmedians"].set_label("median of the batches")
        drawn["violins"] = parts
    # the batches themselves, spread sideways so that equal values stay visible
    jitter = np.random.default_rng(0).uniform(-0.12, 0.12, size=values.shape)
    drawn["batches"] = ax.scatter((positions + jitter).ravel(), values.ravel(), s=12,
                                  color="0.15", alpha=0.7, zorder=3,
                                  label=f"mini-batches ({num_batches})")
    if full is not None:
        full = np.asarray(full, np.float64)[:k]
        drawn["full"] = ax.hlines(full, positions[:len(full)] - 0.38, positions[:len(full)] + 0.38,
                                  color=FULL_COLOR, linewidth=2.5, zorder=4, label="full data")
    ax.set_xticks(positions, [f"λ{i}" for i in positions])
    ax.set_xlim(0.4, k + 0.6)
    ax.set_ylabel("eigenvalue")
    ax.legend(loc="best", fontsize=8)
    return drawn


def minibatch_spectra_figure(values: np.ndarray, full: np.ndarray | None = None, *,
                             batch_size: int | None = None,
                             title: str = "Top Hessian eigenvalues of mini-batches") -> Figure:
    values = np.atleast_2d(np.asarray(values, np.float64))
    fig = Figure(figsize=(max(4.2, 1.3 * values.shape[1] + 2.6), 4.2), layout="constrained")
    ax = fig.add_subplot()
    plot_minibatch_spectra(ax, values, full)
    size = f", {batch_size} samples each" if batch_size else ""
    ax.set_title(f"{title}\n{values.shape[0]} batches{size}", fontsize=10)
    return fig
