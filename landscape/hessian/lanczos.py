"""Lanczos tridiagonalization with full reorthogonalization, and extreme eigenpairs from it.

For a symmetric operator A (n × n) and a unit start vector q₀, m steps build an orthonormal basis
Q = [q₀ … q_{m-1}] of the Krylov space span{q₀, A q₀, …, A^{m-1} q₀} and the tridiagonal
T = Qᵀ A Q:

.. math::

    A q_j = \\beta_{j-1} q_{j-1} + \\alpha_j q_j + \\beta_j q_{j+1}, \\qquad
    T = \\operatorname{tridiag}(\\beta, \\alpha, \\beta).

Every new vector is orthogonalized against the whole basis, twice ("twice is enough", Parlett,
*The Symmetric Eigenvalue Problem*, §6.9), so no spurious copies of converged eigenvalues appear.
If β_j vanishes (an invariant subspace was found), the next vector is a fresh random one
orthogonal to the basis and β_j is stored as 0: T becomes block diagonal and stays = Qᵀ A Q.

With T = Y diag(θ) Yᵀ, the Ritz pairs (θ_i, Q y_i) satisfy
‖A Q y_i − θ_i Q y_i‖ = β_{m-1} |Y_{m-1,i}|, and some eigenvalue of A lies within that residual of
θ_i (Parlett §11.5): this is the stopping test of :func:`lanczos_extremes`.

Everything takes ``matvec(v, operands)`` with array ``operands`` passed through ``jit``;
:func:`lanczos_tridiagonal` has a fixed step count and no data-dependent Python control flow, so it
can be vmapped (eigen maps, SLQ probes).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import eigh_tridiagonal

from landscape.errors import InputError
from landscape.hessian.operator import Matvec

_BREAKDOWN = 100.0  # β ≤ 100 ε ‖A q_j‖ counts as an invariant subspace (then restart)
_BLOCK = 16  # basis rows orthogonalized against at a time


class LanczosState(NamedTuple):
    """Lanczos after some steps (buffers sized for the maximum step count m)."""

    basis: jax.Array  # (≥ m, n): rows q_0 … q_{m-1}; rows not reached yet are zero
    alphas: jax.Array  # (m,): diagonal of T
    betas: jax.Array  # (m,): betas[j] couples q_j and q_{j+1}; betas[m-1] is the residual norm


def lanczos_init(v0: jax.Array, num_steps: int) -> LanczosState:
    """Buffers for ``num_steps`` steps started at ``v0`` (normalized here); the basis has
    ``num_steps`` rows rounded up to whole blocks of ``_BLOCK``."""
    rows = -(-num_steps // _BLOCK) * _BLOCK
    basis = jnp.zeros((rows, v0.size), v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    return LanczosState(basis, jnp.zeros(num_steps, v0.dtype), jnp.zeros(num_steps, v0.dtype))


def _orthogonalize(v: jax.Array, basis: jax.Array, count: jax.Array) -> jax.Array:
    """Gram–Schmidt against the first ``count`` rows of ``basis``, block by block, twice.

    Only the blocks in use are read: sweeping the whole preallocated buffer every step would
    cost as much memory traffic as the HVP itself on small models.
    """

    def one_block(b, v):
        rows = jax.lax.dynamic_slice_in_dim(basis, b * _BLOCK, _BLOCK)
        return v - rows.T @ (rows @ v)

    num_blocks = (count + _BLOCK - 1) // _BLOCK
    v = jax.lax.fori_loop(0, num_blocks, one_block, v)
    return jax.lax.fori_loop(0, num_blocks, one_block, v)


def lanczos_step(
    j: jax.Array, state: LanczosState, matvec: Matvec, operands: Any, key: jax.Array
) -> LanczosState:
    """Step j: α_j, β_j and q_{j+1} (not stored when j is the last step)."""
    basis, alphas, betas = state
    q = basis[j]
    aq = matvec(q, operands)
    alpha = jnp.vdot(q, aq)
    beta_prev = jnp.where(j > 0, betas[j - 1], 0.0)
    r = aq - alpha * q - beta_prev * basis[j - 1]  # β_prev = 0 when j = 0
    r = _orthogonalize(r, basis, j + 1)
    beta = jnp.linalg.norm(r)
    tiny = jnp.finfo(r.dtype).tiny
    breakdown = beta <= _BREAKDOWN * jnp.finfo(r.dtype).eps * jnp.linalg.norm(aq)

    def restart(_):
        fresh = jax.random.normal(jax.random.fold_in(key, j), r.shape, r.dtype)
        fresh = _orthogonalize(fresh, basis, j + 1)
        return fresh / jnp.maximum(jnp.linalg.norm(fresh), tiny)

    # A cond, not a where: unbatched it skips the restart work (under vmap both sides run).
    q_next = jax.lax.cond(breakdown, restart, lambda _: r / jnp.maximum(beta, tiny), None)
    return LanczosState(
        basis.at[j + 1].set(q_next, mode="drop"),
        alphas.at[j].set(alpha),
        betas.at[j].set(jnp.where(breakdown, 0.0, beta)),
    )


def lanczos_tridiagonal(
    matvec: Matvec, operands: Any, v0: jax.Array, num_steps: int, key: jax.Array
) -> LanczosState:
    """``num_steps`` Lanczos steps from ``v0`` (jit- and vmap-able; ``num_steps`` ≤ n).

    ``key`` seeds the restart vectors used after a breakdown.
    """
    state = lanczos_init(v0, num_steps)
    step = lambda j, s: lanczos_step(j, s, matvec, operands, key)  # noqa: E731
    return jax.lax.fori_loop(0, num_steps, step, state)


def tridiagonal_matrix(alphas: jax.Array, betas: jax.Array) -> jax.Array:
    """Dense T (m, m) from its diagonal ``alphas`` (m,) and the first m − 1 ``betas``."""
    off = betas[: alphas.shape[-1] - 1]
    return jnp.diag(alphas) + jnp.diag(off, 1) + jnp.diag(off, -1)


def ritz_values(state: LanczosState) -> jax.Array:
    """Eigenvalues of T (m,), by bisection: jit- and vmap-able.

    Not ``jnp.linalg.eigvalsh``: batched LAPACK eigh kernels on CPU split the batch over XLA's
    intra-op thread pool and wait on it from inside it; with one device per core, every pool
    thread then waits and the program deadlocks (seen with jax 0.10.2 on 2 cores).
    """
    return eigh_tridiagonal(state.alphas, state.betas[:-1], eigvals_only=True)


_init = jax.jit(lanczos_init, static_argnums=(1,))


@functools.partial(jax.jit, static_argnames=("matvec",), donate_argnums=(0,))
def _extend(state, operands, key, start, stop, *, matvec):
    step = lambda j, s: lanczos_step(j, s, matvec, operands, key)  # noqa: E731
    return jax.lax.fori_loop(start, stop, step, state)


@jax.jit
def _ritz_vectors(basis: jax.Array, coefficients: jax.Array) -> jax.Array:
    return coefficients.T @ basis  # (k, m) @ (m, n)


class Eigenpairs(NamedTuple):
    """Converged (or best) Ritz pairs at one end of the spectrum."""

    values: np.ndarray  # (k,): top: descending; bottom: ascending
    vectors: jax.Array | None  # (k, n) unit vectors, or None when not requested
    residuals: np.ndarray  # (k,): ‖A x − θ x‖, a bound on the distance to an eigenvalue
    converged: np.ndarray  # (k,) bool


class ExtremeEigenpairs(NamedTuple):
    """The top-k and bottom-k eigenpairs from one Lanczos run."""

    top: Eigenpairs
    bottom: Eigenpairs
    iterations: int  # matrix-vector products used


def lanczos_extremes(
    matvec: Matvec,
    operands: Any,
    v0: jax.Array,
    *,
    top_k: int = 1,
    bottom_k: int = 0,
    tol: float = 1e-3,
    atol: float = 0.0,
    max_iter: int = 100,
    check_every: int = 1,
    key: jax.Array | None = None,
    return_vectors: bool = False,
) -> ExtremeEigenpairs:
    """The ``top_k`` largest and ``bottom_k`` smallest eigenpairs of a symmetric operator.

    Lanczos (full reorthogonalization) from ``v0`` until every wanted Ritz pair has residual

    .. math:: \\|A x_i - \\theta_i x_i\\| = \\beta_{m-1} |Y_{m-1,i}| \\le \\max(\\mathrm{tol}\\,
              |\\theta_i|, \\mathrm{atol}),

    so each θ_i is within ``tol`` (relative) of an eigenvalue of A, or until ``max_iter`` steps
    (capped at n, where the Krylov space is the whole space and the pairs are exact). The basis
    buffer holds ``max_iter`` × n numbers. Eigenvalues near zero relative to the spectrum converge
    slowly under a relative ``tol``; ``atol`` gives them an absolute floor.

    Args:
      matvec, operands: the operator, ``matvec(v, operands)``; ``matvec`` is a static argument
        of the compiled loop (pass the same object to reuse the compilation).
      check_every: steps between convergence tests (each test syncs with the host).
      key: seeds restart vectors after a breakdown (default: key 0).
    """
    n = int(v0.size)
    for name, k in (("top_k", top_k), ("bottom_k", bottom_k)):
        if k < 0:
            raise InputError(f"`{name}` (={k}) must be >= 0")
    if top_k + bottom_k < 1:
        raise InputError("ask for at least one eigenvalue: `top_k` + `bottom_k` must be >= 1")
    if top_k + bottom_k > n:
        raise InputError(
            f"`top_k` + `bottom_k` (={top_k + bottom_k}) must be <= the operator size ({n})"
        )
    if not tol >= 0 or not atol >= 0 or tol + atol == 0:
        raise InputError(f"`tol` (={tol}) and `atol` (={atol}) must be >= 0, not both 0")
    if max_iter < top_k + bottom_k:
        raise InputError(
            f"`max_iter` (={max_iter}) must be >= top_k + bottom_k ({top_k + bottom_k})"
        )
    if check_every < 1:
        raise InputError(f"`check_every` (={check_every}) must be >= 1")
    key = jax.random.key(0) if key is None else key
    num_steps = min(max_iter, n)
    state = _init(v0, num_steps)
    done = 0
    while True:
        stop = min(max(done + check_every, top_k + bottom_k), num_steps)
        state = _extend(state, operands, key, done, stop, matvec=matvec)
        done = stop
        # Whole buffers to the host, sliced there: a device slice per step would compile each time.
        alphas = np.asarray(state.alphas, np.float64)[:done]
        betas = np.asarray(state.betas, np.float64)[:done]
        off = betas[:-1]
        theta, y = np.linalg.eigh(np.diag(alphas) + np.diag(off, 1) + np.diag(off, -1))
        # LAPACK deflation can leave exact zeros in y; nothing is known better than the
        # arithmetic's precision, so the reported residual never goes below it.
        floor = np.finfo(state.basis.dtype).eps * np.abs(theta).max()
        residuals = np.maximum(np.abs(betas[-1] * y[-1]), floor)
        wanted = np.r_[np.arange(done - 1, done - 1 - top_k, -1), np.arange(bottom_k)].astype(int)
        converged = residuals[wanted] <= np.maximum(tol * np.abs(theta[wanted]), atol)
        if converged.all() or done == num_steps:
            break
    vectors = None
    if return_vectors:
        coefficients = jnp.asarray(y[:, wanted], state.basis.dtype)
        vectors = _ritz_vectors(state.basis[:done], coefficients)

    def end(sl: slice) -> Eigenpairs:
        return Eigenpairs(
            theta[wanted[sl]], None if vectors is None else vectors[sl],
            residuals[wanted[sl]], converged[sl],
        )

    return ExtremeEigenpairs(end(slice(0, top_k)), end(slice(top_k, None)), done)
