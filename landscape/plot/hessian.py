"""Hessian views: maps of the extreme eigenvalues over a plane, the spectral density, and
the spectral densities of parameter blocks side by side.

Li et al. (2018, §6) read convexity off |λmin/λmax|: near 0 the surface is locally convex along
every direction that matters, large values mean strong negative curvature.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib import colormaps
from matplotlib.colors import Colormap, ListedColormap, Normalize

from landscape.grid import Grid
from landscape.plot.surface import masked, plot_curve, plot_heatmap

DIVERGING = "RdBu_r"  # λmin: blue below 0, white at 0, red above
DENSITY_FLOOR = 1e-6  # of the peak: the lowest spectral density drawn on a log axis


def eigen_ratio(max_eig: np.ndarray, min_eig: np.ndarray) -> np.ndarray:
    """|λmin/λmax|, NaN where λmax is 0 or either value is not finite."""
    max_eig, min_eig = np.asarray(max_eig, np.float64), np.asarray(min_eig, np.float64)
    ok = np.isfinite(max_eig) & np.isfinite(min_eig) & (max_eig != 0)
    return np.where(ok, np.abs(min_eig / np.where(ok, max_eig, 1.0)), np.nan)


def zero_white_scale(values: np.ndarray, cmap: str = DIVERGING
                     ) -> tuple[Normalize, Colormap]:
    """A linear scale over the data's range [min, max] with the diverging ``cmap`` cut to match:
    0 stays at the map's white middle and ±h at its ends (h = max |value|), as on the symmetric
    scale, but the colour bar spans only the values there are — a λmin that is mostly negative
    does not leave the positive half of the bar empty."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (-1.0, 1.0)
    if not hi > lo:  # one value: a small range around it
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    half = max(abs(lo), abs(hi))
    base = colormaps[cmap]
    # the part of the symmetric map [-h, h] → [0, 1] that [lo, hi] covers
    cut = ListedColormap(base(np.linspace(0.5 + 0.5 * lo / half, 0.5 + 0.5 * hi / half, 256)),
                         name=f"{cmap}[{lo:.3g}, {hi:.3g}]")
    return Normalize(lo, hi), cut


def plot_eigen_maps(axes: Sequence[Axes], grid: Grid, max_eig: np.ndarray, min_eig: np.ndarray
                    ) -> list:
    """λmax, λmin and |λmin/λmax| as heat maps on three axes (1D grids: three curves).
    λmin uses a diverging map with 0 white so negative curvature stands out, over the range of
    its values (:func:`zero_white_scale`)."""
    ratio = eigen_ratio(max_eig, min_eig)
    if grid.y is None:
        drawn = [plot_curve(axes[0], grid, max_eig, label="λmax"),
                 plot_curve(axes[1], grid, min_eig, label="λmin"),
                 plot_curve(axes[2], grid, ratio, label="|λmin/λmax|")]
        for ax, name in zip(axes, ("λmax", "λmin", "|λmin/λmax|")):
            ax.set_ylabel(name)
        return drawn
    low_norm, low_cmap = zero_white_scale(masked(min_eig).compressed())
    finite_ratio = masked(ratio).compressed()
    ratio_norm = Normalize(0.0, float(finite_ratio.max()) if finite_ratio.size and
                           finite_ratio.max() > 0 else 1.0)
    drawn = [
        plot_heatmap(axes[0], grid, max_eig, cmap="viridis"),
        plot_heatmap(axes[1], grid, min_eig, cmap=low_cmap, norm=low_norm),
        plot_heatmap(axes[2], grid, ratio, cmap="magma", norm=ratio_norm),
    ]
    for ax, title in zip(axes, ("λmax", "λmin", "|λmin / λmax|")):
        ax.set_title(title)
    return drawn


def plot_spectral_density(ax: Axes, eigenvalues: np.ndarray, density: np.ndarray, *,
                          log: bool = True, floor: float = DENSITY_FLOOR):
    """The Hessian's spectral density over an eigenvalue grid (log density axis by default;
    zero or negative densities are gaps there).

    On the log axis, densities below ``floor`` × the peak are gaps too, and the axis starts
    there: the stored density is floored (``landscape hessian`` keeps the Gaussian tails 7
    decades under the peak), and drawn that floor is a flat line that reads as density. A note
    on the axes says so whenever something was left out."""
    x = np.asarray(eigenvalues, np.float64)
    y = masked(density, log=log).filled(np.nan)
    bottom = None
    if log and np.isfinite(y).any():
        bottom = float(np.nanmax(y)) * floor
        clipped = np.isfinite(y) & (y < bottom)
        if clipped.any():
            y = np.where(clipped, np.nan, y)
            ax.text(0.99, 0.02, f"density below {floor:g} × its peak not drawn",
                    transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="0.35")
    (line,) = ax.plot(x, y, color="C0", linewidth=1.4)
    base = bottom if bottom is not None else (np.nanmin(y) if np.isfinite(y).any() else 0.0)
    ax.fill_between(x, y, base, color="C0", alpha=0.2)
    if log:
        ax.set_yscale("log")
        if bottom is not None:
            ax.set_ylim(bottom=bottom)
    # a margin: the top eigenvalue's peak sits 5σ from the grid's end, and against the spine
    # its right half could not be seen
    pad = 0.03 * (x[-1] - x[0])
    ax.set_xlim(x[0] - pad, x[-1] + pad)
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density")
    return line


def plot_block_densities(ax: Axes, densities: Sequence[tuple[str, np.ndarray, np.ndarray]], *,
                         floor: float = DENSITY_FLOOR) -> list:
    """The spectral densities of parameter blocks, ``(name, eigenvalues, density)`` each, as
    lines on one log density axis (Zhang et al. 2024, Fig. 3: how the blocks' spectra differ).
    Each is drawn down to ``floor`` × its own peak (see :func:`plot_spectral_density`)."""
    cmap = colormaps["tab10" if len(densities) <= 10 else "tab20"]
    lines, bottom, lo, hi = [], np.inf, np.inf, -np.inf
    for i, (name, grid, density) in enumerate(densities):
        x = np.asarray(grid, np.float64)
        y = masked(density, log=True).filled(np.nan)
        if not np.isfinite(y).any():
            continue
        cut = float(np.nanmax(y)) * floor
        y = np.where(y < cut, np.nan, y)
        bottom = min(bottom, cut)
        lo, hi = min(lo, float(x[0])), max(hi, float(x[-1]))
        (line,) = ax.plot(x, y, color=cmap(i % cmap.N), linewidth=1.3, label=name)
        lines.append(line)
    ax.set_yscale("log")
    if np.isfinite(bottom):
        ax.set_ylim(bottom=bottom)
        pad = 0.03 * (hi - lo)
        ax.set_xlim(lo - pad, hi + pad)
    ax.set_xlabel("eigenvalue λ")
    ax.set_ylabel("density")
    if lines:
        ax.legend(fontsize=7 if len(lines) > 8 else 8, ncol=2 if len(lines) > 12 else 1,
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                  frameon=False)
    return lines
