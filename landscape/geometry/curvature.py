"""Curvature along a training run: λmax (and λmin, the trace, the preconditioned sharpness) of
the Hessian (or of the GGN or the empirical Fisher: ``operator``) at every recorded step, each
Lanczos run warm-started from the previous step's eigenvector.

Warm start: consecutive recorded steps have nearby Hessians, so the previous top eigenvector
is a good start. Not a pure one: Lanczos from an exact eigenvector stops at once with a zero
residual on *that* eigenvalue, and when the top two eigenvalues cross between steps the old
top vector belongs to the new second one. The start is therefore
v₀ = u_prev/‖u_prev‖ + ``WARM_MIX``·g/‖g‖ (g Gaussian; 80 % of the energy on u_prev), and the
stopping test waits ``WARM_MIN_STEPS`` steps, so the Krylov space sees the rest of the spectrum
before the residual rule may accept a value.

The measures take any loss of :mod:`landscape.geometry.loss` (an objective, or a
``loss_fn(params) -> scalar``);
:func:`run_curvature` is the glue from a run directory and its workload.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from landscape.errors import InputError
from landscape.geometry.loss import Loss, placed, problem_of, workload_loss
from landscape.geometry.stability import (
    StabilityThreshold,
    preconditioner,
    stability_threshold,
)
from landscape.curvature.eigen import ExtremeEigenpairs, lanczos_extremes
from landscape.curvature.operator import HessianProblem
from landscape.curvature.products import CurvatureSpec, workload_curvature
from landscape.curvature.trace import hutchinson_trace
from landscape.workload import Params

WARM_MIX = 0.5  # weight of the fresh Gaussian part of a warm start (unit vectors both)
WARM_MIN_STEPS = 4  # Lanczos steps before the first convergence test of a warm start


def hessian_of(loss: Loss, params: Params, *, preconditioner: Params | None = None,
               operator: str | CurvatureSpec = "hessian") -> HessianProblem:
    """The Hessian of ``loss`` at ``params`` as a matrix-free problem; with a diagonal
    ``preconditioner`` P (pytree like ``params``, entries > 0), P^{-1/2} H P^{-1/2} instead;
    ``operator``: the GGN or the empirical Fisher in place of H."""
    scale = None
    if preconditioner is not None:
        scale = jax.tree.map(lambda p: 1.0 / np.sqrt(np.asarray(p, np.float64)), preconditioner)
        if not all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(scale)):
            raise InputError("the preconditioner must be positive and finite everywhere")
    return problem_of(loss, params, scale=scale, operator=operator)


@functools.partial(jax.jit, static_argnums=(2, 3))
def warm_start(previous: jax.Array | None, key: jax.Array, size: int, dtype) -> jax.Array:
    """The start vector: Gaussian, or ``previous`` (rows: previous eigenvectors, summed) plus
    ``WARM_MIX`` of a Gaussian (see the module docstring)."""
    fresh = jax.random.normal(key, (size,), dtype)
    fresh = fresh / jnp.linalg.norm(fresh)
    if previous is None:
        return fresh
    old = jnp.sum(jnp.atleast_2d(previous), axis=0).astype(dtype)
    return old / jnp.linalg.norm(old) + WARM_MIX * fresh


def extreme_eigenvalues(
    loss: Loss,
    params: Params,
    *,
    preconditioner: Params | None = None,
    start: jax.Array | None = None,
    top_k: int = 1,
    bottom_k: int = 0,
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    operator: str | CurvatureSpec = "hessian",
) -> ExtremeEigenpairs:
    """The ``top_k`` largest and ``bottom_k`` smallest eigenvalues of the Hessian of ``loss`` at
    ``params`` (of P^{-1/2} H P^{-1/2} with ``preconditioner`` P; of the GGN or the empirical
    Fisher with ``operator``), by Lanczos to the residual rule ‖Hx − θx‖ ≤ tol·|θ|, with their
    unit eigenvectors (flat, in the scaled coordinates for a preconditioned Hessian).
    ``start``: previous eigenvectors (k, n) for a warm start."""
    problem = hessian_of(loss, params, preconditioner=preconditioner, operator=operator)
    return _eigenpairs(problem, start, top_k=top_k, bottom_k=bottom_k, tol=tol,
                       max_iter=max_iter, seed=seed)


def _eigenpairs(problem: HessianProblem, start, *, top_k, bottom_k, tol, max_iter, seed,
                atol=0.0, stop="residual") -> ExtremeEigenpairs:
    start_key, restart_key = jax.random.split(jax.random.key(seed))
    v0 = warm_start(start, start_key, problem.num_params, problem.params.dtype)
    v0 = jax.device_put(v0, problem.params.sharding)  # one placement, one compilation
    return lanczos_extremes(problem.operator, None, v0, top_k=top_k, bottom_k=bottom_k,
                            tol=tol, atol=atol, stop=stop, max_iter=max_iter, key=restart_key,
                            return_vectors=True,
                            min_steps=WARM_MIN_STEPS if start is not None else 1)


@dataclasses.dataclass(frozen=True)
class Curvature:
    """Curvature at a sequence of points (recorded steps); every array is (num_points,), NaN
    where a value was not asked for or does not apply."""

    step: np.ndarray  # int64
    lambda_max: np.ndarray
    lambda_max_residual: np.ndarray  # ‖Hx − θx‖: some eigenvalue lies this close
    lambda_min: np.ndarray
    lambda_min_residual: np.ndarray
    trace: np.ndarray
    trace_stderr: np.ndarray
    preconditioned_max: np.ndarray  # λmax(P^{-1/2} H P^{-1/2})
    preconditioned_residual: np.ndarray
    converged: np.ndarray  # bool: every Lanczos value at this point met the tolerance
    lanczos_steps: np.ndarray  # int64: HVPs of the Lanczos runs at this point

    def columns(self) -> dict[str, np.ndarray]:
        return {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}


def curvature_along(
    losses: Loss | Sequence[Loss],
    points: Sequence[Params],
    *,
    steps: Sequence[int] | None = None,
    preconditioners: Sequence[Params | None] | None = None,
    lambda_min: bool = False,
    trace_samples: int = 0,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    warm: bool = True,
    seed: int = 0,
    on_point: Callable[[int], None] | None = None,
    operator: str | CurvatureSpec = "hessian",
) -> Curvature:
    """λmax (optionally λmin and a Hutchinson trace ± standard error) of the Hessian of the
    loss at each of ``points``, and λmax(P^{-1/2} H P^{-1/2}) where ``preconditioners`` gives a
    P; each Lanczos run starts from the previous point's eigenvector(s) (``warm``).

    ``losses``: one loss for every point, or one per point (e.g. a BatchNorm state per step).
    ``operator``: the GGN or the empirical Fisher in place of the Hessian throughout (a
    :class:`~landscape.curvature.products.CurvatureSpec` for the GGN: :func:`run_curvature` makes
    it from the workload).
    ``tol``, ``atol``, ``stop``, ``max_iter``: as in
    :func:`landscape.curvature.lanczos.lanczos_extremes`. ``on_point(i)`` is called after each
    point (progress bars).
    """
    count = len(points)
    if count == 0:
        raise InputError("no points to measure")
    # One loss may itself be a tuple (a DataLoss is a NamedTuple): only a plain list or tuple
    # is one loss per point.
    losses = list(losses) if type(losses) in (list, tuple) else [losses] * count
    preconditioners = list(preconditioners) if preconditioners is not None else [None] * count
    if len(losses) != count or len(preconditioners) != count:
        raise InputError(f"{count} points but {len(losses)} losses and {len(preconditioners)} "
                         "preconditioners")
    if trace_samples == 1 or trace_samples < 0:
        raise InputError(f"`trace_samples` (={trace_samples}) must be 0 (no trace) or >= 2")
    nan = np.full(count, np.nan)
    out = {name: nan.copy() for name in ("lambda_max", "lambda_max_residual", "lambda_min",
                                          "lambda_min_residual", "trace", "trace_stderr",
                                          "preconditioned_max", "preconditioned_residual")}
    converged = np.ones(count, bool)
    hvps = np.zeros(count, np.int64)
    lanczos = {"tol": tol, "atol": atol, "stop": stop, "max_iter": max_iter}
    previous = previous_scaled = None
    for i, (loss, params, p) in enumerate(zip(losses, points, preconditioners)):
        problem = hessian_of(loss, params, operator=operator)
        loss = placed(loss, problem)  # the preconditioned problem reuses the placed data
        pairs = _eigenpairs(problem, previous if warm else None, top_k=1,
                            bottom_k=int(lambda_min), seed=seed + i, **lanczos)
        out["lambda_max"][i], out["lambda_max_residual"][i] = pairs.top.values[0], \
            pairs.top.residuals[0]
        if lambda_min:
            out["lambda_min"][i], out["lambda_min_residual"][i] = pairs.bottom.values[0], \
                pairs.bottom.residuals[0]
        converged[i] = pairs.top.converged.all() and pairs.bottom.converged.all()
        hvps[i] = pairs.iterations
        previous = jnp.concatenate([pairs.top.vectors, pairs.bottom.vectors])
        if trace_samples:
            trace = hutchinson_trace(problem, num_samples=trace_samples, seed=seed + i)
            out["trace"][i], out["trace_stderr"][i] = trace.estimate, trace.stderr
        if p is not None:
            scaled = _eigenpairs(hessian_of(loss, params, preconditioner=p, operator=operator),
                                 previous_scaled if warm else None, top_k=1, bottom_k=0,
                                 seed=seed + i, **lanczos)
            out["preconditioned_max"][i] = scaled.top.values[0]
            out["preconditioned_residual"][i] = scaled.top.residuals[0]
            converged[i] &= bool(scaled.top.converged.all())
            hvps[i] += scaled.iterations
            previous_scaled = scaled.top.vectors
        if on_point is not None:
            on_point(i)
    step = np.arange(count) if steps is None else np.asarray(steps, np.int64)
    return Curvature(step=step.astype(np.int64), converged=converged, lanczos_steps=hvps, **out)


@dataclasses.dataclass(frozen=True)
class RunCurvature:
    """A run's curvature along its recorded steps, with what it is compared against."""

    name: str  # the optimizer's name
    optimizer: dict[str, Any]  # run.json's {"name", "learning_rate", "hyperparams"}
    curvature: Curvature
    threshold: StabilityThreshold | None
    preconditioned: str  # "yes", or why not: "not adaptive", "no optimizer state recorded"


def run_curvature(
    run: Any,
    workload: Any,
    *,
    steps: Sequence[int] | None = None,
    split: str = "train",
    preconditioned: bool = True,
    operator: str | CurvatureSpec = "hessian",
    **options: Any,
) -> RunCurvature:
    """:func:`curvature_along` at recorded ``steps`` (default: all) of ``run`` (a
    :class:`landscape.train_loop.Run`, e.g. from ``load_run``) on ``workload``'s mean ``split`` loss
    in evaluation mode, each step with its own model state. For an adaptive optimizer whose
    state was recorded (``landscape train --record-opt-state``), also the preconditioned
    sharpness with P from that state. ``operator``: the GGN (the workload's ``apply`` and
    ``output_loss``) or the empirical Fisher in place of the Hessian. ``options`` go to
    :func:`curvature_along`."""

    operator = workload_curvature(workload, operator)  # a GGN without outputs: refused first
    trajectory = run.trajectory
    steps = [int(s) for s in (trajectory.step if steps is None else steps)]
    indices = [trajectory.index(s) for s in steps]
    base = workload_loss(workload, run.state, split=split)
    base = placed(base, hessian_of(base, run.params))  # the data placed once for every step
    losses, points, scales = [], [], []
    name, hyper = run.optimizer.get("name"), run.optimizer.get("hyperparams", {})
    opt_state = getattr(trajectory, "opt_state", None)
    adaptive = name in ("adam", "rmsprop")
    reason = ("yes" if adaptive and opt_state is not None and preconditioned else
              "not asked" if not preconditioned else
              "not an adaptive optimizer" if not adaptive else
              "no optimizer state recorded (train with --record-opt-state)")
    for i in indices:
        at = lambda tree, i=i: jax.tree.map(lambda leaf: leaf[i], tree)  # noqa: E731
        state, params = at(trajectory.state), at(trajectory.params)
        losses.append(base.replace(state=state))
        points.append(params)
        p = None
        if reason == "yes":
            try:
                p = preconditioner(name, hyper, at(opt_state), params)
            except ValueError as exc:
                raise InputError(f"run {run.path}: {exc}") from exc
        scales.append(p)
    curvature = curvature_along(losses, points, steps=steps, preconditioners=scales,
                                operator=operator, **options)
    threshold = stability_threshold(name, run.optimizer.get("learning_rate"), hyper)
    return RunCurvature(name, dict(run.optimizer), curvature, threshold, reason)
