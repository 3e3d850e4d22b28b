"""Hessian probes of the full-dataset mean loss: HVPs, Lanczos eigenpairs, Hutchinson and
Hutch++ traces, the diagonal, stochastic-Lanczos-quadrature spectral densities, eigen maps over
a grid, eigenvector planes and mini-batch spectra, each in the memory of one batch whatever the
data set's size — of the Hessian, the Gauss–Newton matrix or the empirical Fisher, whole or
restricted to blocks of parameters.

One concept per module, each importing only those above it: ``linear`` (an operator as the
algorithms take it), ``products`` (the per-batch products of the Hessian, GGN and Fisher),
``operator`` (the matrix of a data set: per-batch products summed), ``lanczos`` (the
algorithm, compiled loops), ``host_loop`` (the same stepped from the host), ``eigen`` (extreme
eigenpairs, eigenvector planes), ``trace``, ``diagonal``, ``density``, ``maps``, ``minibatch``
(each mini-batch's own Hessian), ``blocks`` (parameter blocks and their curvature).
"""

from landscape.curvature.blocks import (
    BlockSummary,
    ParameterBlock,
    block_summaries,
    parameter_blocks,
)
from landscape.curvature.diagonal import (
    DiagonalBlock,
    DiagonalEstimate,
    hutchinson_diagonal,
)
from landscape.curvature.density import (
    SpectralDensity,
    gaussian_density,
    slq_density,
    slq_nodes,
)
from landscape.curvature.eigen import (
    Eigenpairs,
    ExtremeEigenpairs,
    hessian_eigenpairs,
    hessian_plane,
    lanczos_extremes,
)
from landscape.curvature.lanczos import (
    LanczosState,
    TopRitzPair,
    lanczos_top,
    lanczos_tridiagonal,
    ritz_values,
    tridiagonal_matrix,
)
from landscape.curvature.maps import (
    EIGEN_MAP_NAMES,
    eigen_map_data,
    eigen_point_fn,
    evaluate_eigen_map,
)
from landscape.curvature.linear import LinearOperator
from landscape.curvature.minibatch import MinibatchSpectra, minibatch_eigenvalues
from landscape.curvature.operator import (
    HessianProblem,
    dataset_problem,
    hessian_problem,
    loss_problem,
)
from landscape.curvature.products import OPERATORS, CurvatureSpec, curvature_spec
from landscape.curvature.trace import (
    TRACE_METHODS,
    TraceEstimate,
    estimate_trace,
    hutchinson_trace,
    hutchpp_trace,
)

__all__ = [
    "BlockSummary",
    "CurvatureSpec",
    "DiagonalBlock",
    "DiagonalEstimate",
    "EIGEN_MAP_NAMES",
    "Eigenpairs",
    "ExtremeEigenpairs",
    "HessianProblem",
    "LinearOperator",
    "LanczosState",
    "MinibatchSpectra",
    "OPERATORS",
    "ParameterBlock",
    "SpectralDensity",
    "TRACE_METHODS",
    "TopRitzPair",
    "TraceEstimate",
    "block_summaries",
    "curvature_spec",
    "dataset_problem",
    "eigen_map_data",
    "eigen_point_fn",
    "estimate_trace",
    "evaluate_eigen_map",
    "gaussian_density",
    "hessian_eigenpairs",
    "hessian_plane",
    "hessian_problem",
    "hutchinson_diagonal",
    "hutchinson_trace",
    "hutchpp_trace",
    "lanczos_extremes",
    "lanczos_top",
    "lanczos_tridiagonal",
    "loss_problem",
    "minibatch_eigenvalues",
    "parameter_blocks",
    "ritz_values",
    "slq_density",
    "slq_nodes",
    "tridiagonal_matrix",
]

