"""Projection onto a plane: recorded parameters (a training run's path) in a plane's coordinates.

The projection solves the least-squares problem min_c ‖[d1 d2] c − (θ − origin)‖ for each
recorded θ (exact for points on the plane; for PCA planes, whose directions are orthonormal, it
equals Li et al.'s dot-product projection) and reports the residual ‖θ − origin − [d1 d2] c‖:
how far the path leaves the plane.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from jax.flatten_util import ravel_pytree

from landscape.directions import Plane
from landscape.errors import InputError
from landscape.objective import Params


class Projection(NamedTuple):
    x: np.ndarray  # (num_steps,) coordinate along d1
    y: np.ndarray | None  # (num_steps,) coordinate along d2 (None on a line)
    residual: np.ndarray  # (num_steps,) distance from the plane, in parameter units
    relative_residual: np.ndarray  # residual / ‖θ − origin‖ (0 where θ = origin)


def _flat(tree: Params) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0], np.float64)


def project_onto_plane(trajectory: list[Params], plane: Plane) -> Projection:
    """Coordinates of every recorded θ on ``plane`` by least squares, with residuals."""
    if not trajectory:
        raise InputError("the trajectory is empty")
    origin = _flat(plane.origin)
    basis = [_flat(plane.d1)] + ([] if plane.d2 is None else [_flat(plane.d2)])
    a = np.stack(basis, axis=1)  # (num_params, 1 or 2)
    offsets = np.stack([_flat(theta) - origin for theta in trajectory], axis=1)  # (P, steps)
    if offsets.shape[0] != a.shape[0]:
        raise InputError(
            f"trajectory has {offsets.shape[0]} parameters, the plane {a.shape[0]}"
        )
    coeffs, *_ = np.linalg.lstsq(a, offsets, rcond=None)  # (1 or 2, steps)
    residual = np.linalg.norm(offsets - a @ coeffs, axis=0)
    norms = np.linalg.norm(offsets, axis=0)
    relative = np.divide(residual, norms, out=np.zeros_like(residual), where=norms > 0)
    return Projection(coeffs[0], coeffs[1] if plane.d2 is not None else None, residual, relative)


def project_run(run: Any, plane: Plane) -> dict[str, np.ndarray | None]:
    """A training run's recorded path on ``plane``, as a surface file stores it: projected ``x``,
    ``y``, the recorded full-train-set ``loss``, ``step``, and the residuals (``run``: a
    :class:`landscape.train_loop.Run` or anything with its ``trajectory``)."""
    trajectory = run.trajectory
    points = [trajectory.params_at(int(step)) for step in trajectory.step]
    projection = project_onto_plane(points, plane)
    return {"x": projection.x, "y": projection.y, "loss": trajectory.train_loss,
            "step": trajectory.step, "residual": projection.residual,
            "relative_residual": projection.relative_residual}
