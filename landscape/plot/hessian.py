"""Hessian views: maps of the extreme eigenvalues over a plane and the spectral density.

Li et al. (2018, §6) read convexity off |λmin/λmax|: near 0 the surface is locally convex along
every direction that matters, large values mean strong negative curvature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import CenteredNorm, Normalize

from landscape.grid import Grid
from landscape.plot.surface import masked, plot_curve, plot_heatmap


def eigen_ratio(max_eig: np.ndarray, min_eig: np.ndarray) -> np.ndarray:
    """|λmin/λmax|, NaN where λmax is 0 or either value is not finite."""
    max_eig, min_eig = np.asarray(max_eig, np.float64), np.asarray(min_eig, np.float64)
    ok = np.isfinite(max_eig) & np.isfinite(min_eig) & (max_eig != 0)
    return np.where(ok, np.abs(min_eig / np.where(ok, max_eig, 1.0)), np.nan)


def plot_eigen_maps(axes: Sequence[Axes], grid: Grid, max_eig: np.ndarray, min_eig: np.ndarray
                    ) -> list:
    """λmax, λmin and |λmin/λmax| as heat maps on three axes (1D grids: three curves).
    λmin uses a diverging map centred on 0 so negative curvature stands out."""
    ratio = eigen_ratio(max_eig, min_eig)
    if grid.y is None:
        drawn = [plot_curve(axes[0], grid, max_eig, label="λmax"),
                 plot_curve(axes[1], grid, min_eig, label="λmin"),
                 plot_curve(axes[2], grid, ratio, label="|λmin/λmax|")]
        for ax, name in zip(axes, ("λmax", "λmin", "|λmin/λmax|")):
            ax.set_ylabel(name)
        return drawn
    low = masked(min_eig).compressed()
    centred = CenteredNorm(0.0, float(np.abs(low).max()) if low.size and np.abs(low).max() > 0
                           else 1.0)
    finite_ratio = masked(ratio).compressed()
    ratio_norm = Normalize(0.0, float(finite_ratio.max()) if finite_ratio.size and
                           finite_ratio.max() > 0 else 1.0)
    drawn = [
        plot_heatmap(axes[0], grid, max_eig, cmap="viridis"),
        plot_heatmap(axes[1], grid, min_eig, cmap="RdBu_r", norm=centred),
        plot_heatmap(axes[2], grid, ratio, cmap="magma", norm=ratio_norm),
    ]
    for ax, title in zip(axes, ("λmax", "λmin", "|λmin / λmax|")):
        ax.set_title(title)
    return drawn


def plot_spectral_density(ax: Axes, eigenvalues: np.ndarray, density: np.ndarray, *,
                          log: bool = True):
    """The Hessian's spectral density over an eigenvalue grid (log density axis by default;
    zero or negative densities are gaps there)."""
    x = np.asarray(eigenvalues, np.float64)
    y = masked(density, log=log).filled(np.nan)
    (line,) = ax.plot(x, y, color="C0", linewidth=1.4)
    ax.fill_between(x, y, np.nanmin(y) if np.isfinite(y).any() else 0.0, color="C0", alpha=0.2)
    if log:
        ax.set_yscale("log")
    ax.set_xlim(x[0], x[-1])
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density")
    return line
