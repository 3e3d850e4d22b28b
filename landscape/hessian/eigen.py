"""Extreme Hessian eigenpairs of a workload, and the plane its top eigenvectors span."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from landscape.directions import Plane, normalize_direction
from landscape.errors import InputError
from landscape.hessian.lanczos import ExtremeEigenpairs, lanczos_extremes
from landscape.hessian.operator import HessianProblem, hessian_problem
from landscape.workload import Params, State, Workload


def hessian_eigenpairs(
    problem: HessianProblem,
    *,
    top_k: int = 1,
    bottom_k: int = 0,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    seed: int = 0,
    return_vectors: bool = False,
) -> ExtremeEigenpairs:
    """Top-k (largest algebraic) and bottom-k (smallest algebraic) eigenpairs of the Hessian of
    the full-dataset mean loss, by Lanczos with full reorthogonalization from a Gaussian start.

    Unlike power iteration (PyHessian) this finds the largest *algebraic* eigenvalues and the
    most negative ones in the same run, without shifts (Li et al. shift by 0.51·λ_max and rerun).
    See :func:`landscape.hessian.lanczos.lanczos_extremes` for ``tol``, ``atol``, ``stop``
    (``"residual"``: each value within ``tol`` of an eigenvalue, guaranteed; ``"relative-change"``:
    PyHessian's rule, fewer HVPs, no guarantee) and ``max_iter``.
    Vectors, when returned, are flat (k, n); ``problem.unravel`` turns one into a params pytree.
    """
    v0, restart_key = _start_vector(seed, problem.params.shape, problem.params.dtype)
    return lanczos_extremes(
        problem.matvec, problem.operands, v0, top_k=top_k, bottom_k=bottom_k, tol=tol,
        atol=atol, stop=stop, max_iter=max_iter, key=restart_key, return_vectors=return_vectors,
    )


@functools.partial(jax.jit, static_argnums=(1, 2))
def _start_vector(seed: int, shape: tuple[int, ...], dtype) -> tuple[jax.Array, jax.Array]:
    """A Gaussian start vector and a key for restart vectors (one compiled call)."""
    start_key, restart_key = jax.random.split(jax.random.key(seed))
    return jax.random.normal(start_key, shape, dtype), restart_key


def _fix_sign(v: jax.Array) -> jax.Array:
    """Eigenvectors are defined up to sign: make the largest-magnitude entry positive, so the
    same model gives the same plane on every run."""
    return v * jnp.sign(v[jnp.argmax(jnp.abs(v))])


def hessian_plane(
    workload: Workload,
    params: Params,
    state: State,
    *,
    dims: int = 2,
    split: str = "train",
    normalization: str = "none",
    ignore: str = "none",
    tol: float = 1e-4,
    max_iter: int = 200,
    seed: int = 0,
    problem: HessianProblem | None = None,
) -> Plane:
    """A plane through ``params`` spanned by the Hessian's top-2 eigenvectors (top-1 if
    ``dims=1``), unit vectors in the flat parameter space, unflattened to the params pytree.

    ``d1`` belongs to λ₁ ≥ ``d2``'s λ₂ (largest algebraic); each is signed so that its
    largest-magnitude entry is positive. With ``normalization``/``ignore`` other than "none",
    the eigenvectors are rescaled as random directions are (they are then no longer
    eigenvectors); with ``ignore="none"`` alone, 1-D leaves would copy the weights (Li et al.'s
    rule), so leave both at "none" to keep true eigenvectors.

    ``problem``: the Hessian at ``params`` if already built (its compiled loops are reused);
    ``workload``, ``state`` and ``split`` then go unused.

    Raises:
      InputError: if the eigenvectors did not converge to ``tol`` within ``max_iter`` steps.
    """
    if dims not in (1, 2):
        raise InputError(f"`dims` (={dims}) must be 1 or 2")
    problem = problem or hessian_problem(workload, params, state, split=split)
    pairs = hessian_eigenpairs(problem, top_k=dims, tol=tol, max_iter=max_iter, seed=seed,
                               return_vectors=True)
    if not pairs.top.converged.all():
        raise InputError(
            f"the top-{dims} Hessian eigenvectors did not converge to `tol` (={tol}) in "
            f"{pairs.iterations} Lanczos steps (residuals {pairs.top.residuals.tolist()}); "
            "raise `max_iter` or `tol`"
        )
    directions = []
    for vector in pairs.top.vectors:
        direction = problem.unravel(_fix_sign(vector))
        if normalization != "none" or ignore != "none":
            direction = normalize_direction(direction, params, normalization=normalization,
                                            ignore=ignore)
        directions.append(jax.tree.map(np.asarray, direction))
    return Plane(
        jax.tree.map(np.asarray, params), directions[0], directions[1] if dims == 2 else None,
        kind="hessian", normalization=normalization, ignore=ignore, seed=seed,
    )
