"""Hessian probes of the full-dataset mean loss: HVPs, Lanczos eigenpairs, Hutchinson traces,
stochastic-Lanczos-quadrature spectral densities, eigen maps over a grid and eigenvector planes.

One concept per module: ``operator`` (HVP on flat vectors), ``lanczos`` (the algorithm),
``eigen`` (extreme eigenpairs, eigenvector planes), ``trace``, ``density``, ``maps``.
"""

from landscape.hessian.density import (
    SpectralDensity,
    gaussian_density,
    slq_density,
    slq_nodes,
)
from landscape.hessian.eigen import hessian_eigenpairs, hessian_plane
from landscape.hessian.lanczos import (
    Eigenpairs,
    ExtremeEigenpairs,
    LanczosState,
    TopRitzPair,
    lanczos_extremes,
    lanczos_top,
    lanczos_tridiagonal,
    ritz_values,
    tridiagonal_matrix,
)
from landscape.hessian.maps import (
    EIGEN_MAP_NAMES,
    eigen_map_data,
    eigen_point_fn,
    evaluate_eigen_map,
)
from landscape.hessian.operator import (
    HessianProblem,
    hessian_problem,
    hvp_of,
    loss_problem,
    quadratic_form_of,
)
from landscape.hessian.trace import TraceEstimate, hutchinson_trace

__all__ = [
    "EIGEN_MAP_NAMES",
    "Eigenpairs",
    "ExtremeEigenpairs",
    "HessianProblem",
    "LanczosState",
    "SpectralDensity",
    "TopRitzPair",
    "TraceEstimate",
    "eigen_map_data",
    "eigen_point_fn",
    "evaluate_eigen_map",
    "gaussian_density",
    "hessian_eigenpairs",
    "hessian_plane",
    "hessian_problem",
    "hutchinson_trace",
    "hvp_of",
    "lanczos_extremes",
    "lanczos_top",
    "lanczos_tridiagonal",
    "loss_problem",
    "quadratic_form_of",
    "ritz_values",
    "slq_density",
    "slq_nodes",
    "tridiagonal_matrix",
]

