"""Geometry along training: curvature per recorded step and the edge of stability, sharpness
measures of a minimum, and mode connectivity between two minima.

One concept per module: ``loss`` (the losses every measure takes: an
:class:`~landscape.objective.Objective`, or one expression), ``curvature``
(λmax/λmin/trace along a run, warm-started Lanczos), ``stability`` (edge-of-stability thresholds,
adaptive preconditioners from optimizer state), ``tracking`` (λmax while training),
``sharpness`` (ε-sharpness, adaptive worst- and average-case), ``batch_stats`` (BatchNorm
statistics re-estimated at a new point), ``connect`` (linear and Bezier paths, barriers).
"""

from landscape.geometry.batch_stats import recompute_batch_stats, state_momentum
from landscape.geometry.connect import (
    barrier,
    barriers,
    bezier_point,
    connect_models,
    curve_coordinates,
    curve_plane,
    evaluate_path,
    linear_point,
    train_bezier,
    workload_evaluator,
)
from landscape.geometry.curvature import (
    Curvature,
    RunCurvature,
    curvature_along,
    extreme_eigenvalues,
    hessian_of,
    run_curvature,
)
from landscape.geometry.loss import DataLoss, Loss, problem_of, workload_loss
from landscape.geometry.sharpness import (
    SharpnessValue,
    average_case_sharpness,
    epsilon_sharpness,
    model_sharpness,
    worst_case_sharpness,
)
from landscape.geometry.stability import (
    StabilityThreshold,
    preconditioner,
    stability_threshold,
)

__all__ = [
    "Curvature", "DataLoss", "Loss", "RunCurvature", "SharpnessValue", "StabilityThreshold",
    "average_case_sharpness", "barrier", "barriers", "bezier_point", "connect_models",
    "curvature_along", "curve_coordinates", "curve_plane", "epsilon_sharpness",
    "evaluate_path", "extreme_eigenvalues", "hessian_of", "linear_point", "model_sharpness",
    "preconditioner", "problem_of", "recompute_batch_stats", "run_curvature", "stability_threshold",
    "state_momentum", "train_bezier", "workload_evaluator", "workload_loss",
    "worst_case_sharpness",
]
