"""Matplotlib figures of surfaces. Plot functions take an ``ax`` and return what they drew;
figure builders return a ``matplotlib.figure.Figure`` (no pyplot state); :mod:`landscape.views`
writes the figures of a surface file.

- :mod:`landscape.plot.surface` — contour, filled contour, heat map, 3D surface, 1D curves;
- :mod:`landscape.plot.overlay` — trajectories, marked points, PCA / direction axis labels;
- :mod:`landscape.plot.hessian` — λmax, λmin, |λmin/λmax| maps, the spectral density and
  parameter blocks' densities on one axis;
- :mod:`landscape.plot.spectra` — mini-batch eigenvalues beside the full data's;
- :mod:`landscape.plot.figures` — whole figures (one per view) built from the above;
- :mod:`landscape.plot.animation` — trajectories drawn step by step (a ``FuncAnimation``).
"""

from landscape.plot.figures import (
    KINDS_2D,
    block_density_figure,
    completion_note,
    curves_figure,
    density_figure,
    function_figure,
    hessian_figure,
    kind_figure,
    surface_figure,
)
from landscape.plot.hessian import (
    eigen_ratio,
    plot_block_densities,
    plot_eigen_maps,
    plot_spectral_density,
)
from landscape.plot.spectra import minibatch_spectra_figure, plot_minibatch_spectra
from landscape.plot.overlay import (
    explained_variance,
    mark_points,
    plane_axis_labels,
    plot_trajectories,
)
from landscape.plot.surface import (
    masked,
    plot_contour,
    plot_curve,
    plot_curves,
    plot_heatmap,
    plot_surface_3d,
)

__all__ = [
    "KINDS_2D", "block_density_figure", "completion_note", "curves_figure", "density_figure", "eigen_ratio", "explained_variance",
    "function_figure", "hessian_figure", "kind_figure", "mark_points", "masked",
    "minibatch_spectra_figure", "plane_axis_labels", "plot_block_densities", "plot_contour",
    "plot_curve", "plot_curves", "plot_eigen_maps", "plot_heatmap", "plot_minibatch_spectra",
    "plot_spectral_density", "plot_surface_3d", "plot_trajectories",
    "surface_figure",
]
