"""Eigen maps: λ_max and λ_min of the Hessian (or of the GGN or the empirical Fisher:
``operator``, :mod:`landscape.curvature.products`) at every point of a grid on a plane.

Li et al. (2018, §6 and Fig. 7) map |λ_min/λ_max| over a loss surface to show where it is convex.
Each point runs a *fixed* number m of Lanczos steps (full reorthogonalization) from one shared
Gaussian start vector and takes the extreme Ritz values of T; with no data-dependent control flow
the point function vmaps over a chunk of points, and :func:`landscape.engine.evaluate_points`
shards, pads and resumes it exactly as it does loss surfaces. Ritz values lie inside the
spectrum, so λ_max is approached from below and λ_min from above as m grows; with m = n they are
exact.

Every HVP sums the batches' products (:mod:`landscape.curvature.operator`): a chunk of points
holds one batch's activations per point, whatever the data set's size. On the CPU, for models
with convolutions, the points run one at a time with each Lanczos step dispatched from the host
instead (:mod:`landscape.curvature.host_loop`): XLA:CPU runs a convolution's gradient 20-40x
slower inside a compiled loop, and a point's whole Lanczos run is one. Same steps, same start
vector: the same values up to float rounding.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh

from landscape.directions import Plane
from landscape.errors import InputError
from landscape.engine import evaluate_points
from landscape.engine.chunks import point_params, run_chunks, todo_points
from landscape.grid import Grid
from landscape.curvature.host_loop import lanczos_tridiagonal_on_host
from landscape.curvature.lanczos import (
    LanczosState,
    check_basis_fits,
    lanczos_tridiagonal,
    ritz_values,
)
from landscape.curvature.linear import Matvec
from landscape.curvature.operator import hessian_problem, kernels
from landscape.curvature.sums import Stacked, device_mean
from landscape.curvature.products import CurvatureSpec, workload_curvature
from landscape.objective import Params, State
from landscape.workload import Workload

EIGEN_MAP_NAMES = ("max_eig", "min_eig")  # the dataset names of Li et al.'s surface files


def eigen_point_fn(workload: Workload, *, num_steps: int = 20,
                   operator: str | CurvatureSpec = "hessian",
                   ) -> Callable[[Params, Any], dict[str, jax.Array]]:
    """``point_fn(theta, data) -> {"max_eig", "min_eig"}`` for :func:`evaluate_points`.

    ``data`` is what :func:`eigen_map_data` returns: the state, the batches and the start vector.
    """
    _check_steps(num_steps)
    curvature = workload_curvature(workload, operator)

    def point_fn(theta: Params, data: dict[str, Any]) -> dict[str, jax.Array]:
        w, _ = ravel_pytree(theta)
        v0 = data["start"].astype(w.dtype)
        restart_key = jax.random.wrap_key_data(data["restart_key"])
        state = lanczos_tridiagonal(_matvec(workload, theta, curvature), (w, data), v0,
                                    min(num_steps, w.size), restart_key)
        return _extremes(state)

    return point_fn


def _check_steps(num_steps: int) -> None:
    if num_steps < 2:
        raise InputError(f"`num_steps` (={num_steps}) must be >= 2")


def _matvec(workload: Workload, theta: Params, curvature: CurvatureSpec) -> Matvec:
    """``matvec(v, (w, data)) = H v`` of the mean loss over ``data``'s batches at ``w``, summed
    batch by batch in a device loop (G v or F v for the GGN or the Fisher)."""
    k = kernels(workload.loss, _layout(theta), curvature)

    def matvec(v, operands):
        w, data = operands
        return device_mean(k.hvp, (w, v, data["state"]), Stacked(*data["batches"]))

    return matvec


def _layout(theta: Params) -> tuple:
    return (jax.tree.structure(theta),
            tuple((np.shape(leaf), jnp.result_type(leaf)) for leaf in jax.tree.leaves(theta)))


def _extremes(state: LanczosState) -> dict[str, jax.Array]:
    theta_ritz = ritz_values(state)
    return {"max_eig": jnp.max(theta_ritz), "min_eig": jnp.min(theta_ritz)}


def eigen_map_data(
    workload: Workload, params: Params, state: State, *, split: str = "train", seed: int = 0
) -> dict[str, Any]:
    """The ``data`` argument of the eigen-map point function: state, batches of ``split``, a
    Gaussian start vector shaped like the flat params and a key for restart vectors."""
    flat, _ = ravel_pytree(params)
    start_key, restart_key = jax.random.split(jax.random.key(seed))
    return {
        "state": state,
        "batches": workload.dataset(split).split_batches(workload.batch_size),
        "start": np.asarray(jax.random.normal(start_key, flat.shape, flat.dtype)),
        "restart_key": np.asarray(jax.random.key_data(restart_key)),  # raw: data must be arrays
    }


def evaluate_eigen_map(
    workload: Workload,
    state: State,
    plane: Plane,
    grid: Grid,
    *,
    num_steps: int = 20,
    split: str = "train",
    seed: int = 0,
    chunk: int | None = None,
    mesh: Mesh | None = None,
    done: np.ndarray | None = None,
    on_chunk: Callable[[np.ndarray, dict[str, np.ndarray]], None] | None = None,
    operator: str | CurvatureSpec = "hessian",
) -> dict[str, np.ndarray]:
    """λ_max and λ_min of the Hessian of the mean ``split`` loss at every grid point of ``plane``
    (of its GGN or empirical Fisher with ``operator``).

    Returns ``{"max_eig": ..., "min_eig": ...}``, each shaped ``grid.shape`` (NaN where not
    evaluated). ``num_steps`` Lanczos steps per point (capped at the parameter count); ``chunk``,
    ``mesh``, ``done``, ``on_chunk`` as in :func:`landscape.engine.evaluate_points` (a chunk runs
    ``chunk × num_steps`` HVPs side by side: keep it modest for large models).
    """
    data = eigen_map_data(workload, plane.origin, state, split=split, seed=seed)
    n = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(plane.origin))
    check_basis_fits(min(num_steps, n), n, jnp.result_type(jax.tree.leaves(plane.origin)[0]),
                     param="num_steps")
    if mesh is None and jax.process_count() == 1:
        problem = hessian_problem(workload, plane.origin, state, split=split,
                                  operator=operator)
        if problem.on_host:
            return _host_map(problem, data, plane, grid, num_steps=num_steps, done=done,
                             on_chunk=on_chunk)
    return evaluate_points(eigen_point_fn(workload, num_steps=num_steps, operator=operator),
                           data, plane, grid, chunk=chunk, mesh=mesh, done=done,
                           on_chunk=on_chunk)


@jax.jit
def _flat_point(plane: Plane, ab: jax.Array) -> jax.Array:
    return ravel_pytree(point_params(plane, ab[0], ab[1]))[0]


@jax.jit
def _extremes_of_one(state: LanczosState) -> dict[str, jax.Array]:
    return {name: value[None] for name, value in _extremes(state).items()}  # a chunk of 1


def _host_map(problem, data: dict[str, Any], plane: Plane, grid: Grid, *, num_steps: int,
              done: np.ndarray | None, on_chunk) -> dict[str, np.ndarray]:
    """The eigen map with each point's Lanczos steps dispatched from the host, one point at a
    time, each HVP summed over the problem's batches from the host."""
    if plane.ndim != grid.ndim:
        raise InputError(f"a {plane.ndim}D plane cannot be scanned over a {grid.ndim}D grid")
    _check_steps(num_steps)
    grid.checked_size(len(EIGEN_MAP_NAMES))
    plane = jax.device_put(plane, problem.params.sharding)
    w0 = problem.params
    v0 = jax.device_put(jnp.asarray(data["start"], w0.dtype), w0.sharding)
    key = jax.random.wrap_key_data(data["restart_key"])
    steps = min(num_steps, w0.size)

    def dispatch(coords: np.ndarray) -> dict[str, jax.Array]:
        w = _flat_point(plane, jnp.asarray(coords[0]))
        op = problem.at(w).operator
        return _extremes_of_one(lanczos_tridiagonal_on_host(op, v0, steps, key))

    return run_chunks(dispatch, 1, EIGEN_MAP_NAMES, grid, todo_points(grid, done),
                      on_chunk=on_chunk)
