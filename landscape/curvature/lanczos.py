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
from landscape.curvature.linear import Matvec

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
    return lanczos_update(j, state, matvec(state.basis[j], operands), key)


def lanczos_update(j: jax.Array, state: LanczosState, aq: jax.Array, key: jax.Array
                   ) -> LanczosState:
    """Step j given ``aq`` = A q_j (computed elsewhere: from the host, batch by batch)."""
    basis, alphas, betas = state
    q = basis[j]
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


STOP_RULES = ("residual", "relative-change")


def _eigh_sizes(num_steps: int) -> tuple[int, ...]:
    """Sizes of the padded T whose eigendecomposition tests convergence: powers of four from
    16, then ``num_steps``, so that early tests (when the top eigenvalue is usually found) cost a
    few microseconds rather than an eigh of the whole ``num_steps`` × ``num_steps`` buffer. Each
    size is one more branch to compile (about 0.4 s each here): powers of two from 8 made the
    first ``landscape hessian`` call 4.3 s instead of 3.3 s."""
    sizes, size = [], 16
    while size < num_steps:
        sizes.append(size)
        size *= 4
    return (*sizes, num_steps)


def _extreme_ritz_pairs(
    alphas: jax.Array, betas: jax.Array, count: jax.Array, *, size: int, top_k: int,
    bottom_k: int, num_steps: int,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The ``top_k`` largest then ``bottom_k`` smallest Ritz values of T_count (the leading
    ``count`` × ``count`` block of T, ``count`` ≤ ``size``), their coefficient vectors padded to
    (num_steps, k), their last components Y_{count-1,i}, and max |θ| over all Ritz values.

    T is cut to a static ``size`` and rows from ``count`` on become a decoupled diagonal block
    at −3‖T_count‖ (a Gershgorin bound): those pads sort first, below every Ritz value, so the
    wanted pairs sit at known indices, and their eigenvectors are exactly zero in the pad rows.
    """
    a, b = alphas[:size], betas[: size - 1]
    rows = jnp.arange(size)
    real, coupled = rows < count, rows[:-1] < count - 1
    bound = (jnp.max(jnp.where(real, jnp.abs(a), 0), initial=0.0)
             + 2 * jnp.max(jnp.where(coupled, jnp.abs(b), 0), initial=0.0))
    pad = jnp.where(bound > 0, -3 * bound, -1.0).astype(a.dtype)
    a = jnp.where(real, a, pad)
    b = jnp.where(coupled, b, 0)
    theta, y = jnp.linalg.eigh(jnp.diag(a) + jnp.diag(b, 1) + jnp.diag(b, -1))  # ascending
    first = size - count  # index of the smallest Ritz value
    wanted = jnp.concatenate([size - 1 - jnp.arange(top_k), first + jnp.arange(bottom_k)])
    coefficients = jnp.zeros((num_steps, top_k + bottom_k), y.dtype).at[:size].set(y[:, wanted])
    scale = jnp.maximum(jnp.abs(theta[size - 1]), jnp.abs(theta[first]))
    return theta[wanted], coefficients, y[count - 1, wanted], scale


class Progress(NamedTuple):
    """A Lanczos run with its convergence tests: the state and the last test's verdict."""

    state: LanczosState
    count: jax.Array  # steps done
    values: jax.Array  # (k,) wanted Ritz values at the last test (NaN before it)
    residuals: jax.Array  # (k,)
    converged: jax.Array  # (k,) bool
    coefficients: jax.Array  # (num_steps, k)


def convergence_test(p: Progress, tol, atol, *, top_k: int, bottom_k: int, num_steps: int,
                     stop: str) -> Progress:
    """``p`` with the wanted Ritz pairs of T_count, their residuals and the stopping rule's
    verdict (jit-able; the device loop runs it inside, the host loop as its own program)."""
    sizes = _eigh_sizes(num_steps)
    branches = [functools.partial(_extreme_ritz_pairs, size=s, top_k=top_k, bottom_k=bottom_k,
                                  num_steps=num_steps) for s in sizes]
    branch = jnp.sum(jnp.asarray(sizes) < p.count)  # the smallest size that holds T_count
    values, coefficients, last, scale = jax.lax.switch(
        branch, branches, p.state.alphas, p.state.betas, p.count)
    # Nothing is known better than the arithmetic's precision (LAPACK can return exact
    # zeros in y), so a residual never goes below eps·max|θ|.
    residuals = jnp.maximum(jnp.abs(p.state.betas[p.count - 1] * last),
                            jnp.finfo(p.values.dtype).eps * scale)
    bound = jnp.maximum(tol * jnp.abs(values), atol)
    converged = residuals <= bound
    if stop == "relative-change":  # NaN before the first test: never converged there
        converged |= jnp.abs(values - p.values) <= bound
    return Progress(p.state, p.count, values, residuals, converged, coefficients)


def start_progress(v0: jax.Array, num_steps: int, k: int) -> Progress:
    dtype = v0.dtype
    return Progress(
        lanczos_init(v0, num_steps), jnp.zeros((), jnp.int32), jnp.full(k, jnp.nan, dtype),
        jnp.full(k, jnp.inf, dtype), jnp.zeros(k, bool), jnp.zeros((num_steps, k), dtype))


@functools.partial(
    jax.jit,
    static_argnames=("matvec", "num_steps", "top_k", "bottom_k", "stop", "check_every",
                     "return_vectors"),
)
def extremes_on_device(
    v0, operands, key, tol, atol, min_steps, *, matvec, num_steps, top_k, bottom_k, stop,
    check_every, return_vectors,
):
    """Lanczos steps and convergence tests in one ``while_loop``: no host round trip per step
    (with ~2 ms HVPs, per-step dispatch and syncs cost as much as a step on small models)."""
    k = top_k + bottom_k
    test = functools.partial(convergence_test, tol=tol, atol=atol, top_k=top_k,
                             bottom_k=bottom_k, num_steps=num_steps, stop=stop)

    def body(p: Progress) -> Progress:
        state = lanczos_step(p.count, p.state, matvec, operands, key)
        p = p._replace(state=state, count=p.count + 1)
        first = jnp.maximum(k, min_steps)  # traced: warm and cold starts share one program
        due = (p.count >= first) & (((p.count - first) % check_every == 0)
                                    | (p.count == num_steps))
        return jax.lax.cond(due, test, lambda p: p, p)

    def more(p: Progress) -> jax.Array:
        return (p.count < num_steps) & ~jnp.all(p.converged)

    p = jax.lax.while_loop(more, body, start_progress(v0, num_steps, k))
    vectors = p.coefficients.T @ p.state.basis[:num_steps] if return_vectors else None
    return p.count, p.values, p.residuals, p.converged, vectors


class TopRitzPair(NamedTuple):
    """The largest Ritz pair after a fixed number of Lanczos steps."""

    value: jax.Array  # θ_max, a lower bound on λ_max (Ritz values lie inside the spectrum)
    vector: jax.Array  # (n,) unit Ritz vector Q y
    residual: jax.Array  # ‖A x − θ x‖ = β_{m-1} |y_{m-1}|: some eigenvalue lies this close to θ


def lanczos_top(
    matvec: Matvec, operands: Any, v0: jax.Array, num_steps: int, key: jax.Array
) -> TopRitzPair:
    """The top Ritz pair after exactly ``num_steps`` Lanczos steps from ``v0`` (jit-able: no
    data-dependent control flow, one fixed program; ``num_steps`` ≤ n). Cheap enough to run
    during training with a warm start (the previous call's ``vector``)."""
    return top_ritz_pair(lanczos_tridiagonal(matvec, operands, v0, num_steps, key), num_steps)


def top_ritz_pair(state: LanczosState, num_steps: int) -> TopRitzPair:
    """The largest Ritz pair of a Lanczos state after ``num_steps`` steps."""
    theta, y = jnp.linalg.eigh(tridiagonal_matrix(state.alphas, state.betas))  # ascending
    top = y[:, -1]
    vector = top @ state.basis[:num_steps]
    # As in lanczos_extremes: nothing is known better than the arithmetic's precision.
    residual = jnp.maximum(jnp.abs(state.betas[num_steps - 1] * top[num_steps - 1]),
                           jnp.finfo(theta.dtype).eps * jnp.max(jnp.abs(theta)))
    return TopRitzPair(theta[-1], vector / jnp.linalg.norm(vector), residual)


def check_basis_fits(num_steps: int, n: int, dtype: Any, *, count: int = 1,
                     param: str = "max_iter") -> None:
    """Refuse up front a Lanczos basis (``count`` runs of ``num_steps`` rows of n numbers) that
    would not fit in half the memory free now (:func:`landscape.engine.sizing.
    device_memory_budget`: the host's on a CPU, the device's on an accelerator)."""
    rows = -(-num_steps // _BLOCK) * _BLOCK
    needed = count * rows * n * np.dtype(dtype).itemsize
    available = _available_bytes()
    if needed > available // 2:
        runs = f"{count:,} runs of " if count > 1 else ""
        raise InputError(
            f"`{param}` (={num_steps:,}) needs a Lanczos basis of {runs}{num_steps:,} × {n:,} "
            f"{np.dtype(dtype).name} numbers ({needed / 2**30:,.1f} GiB); "
            f"{available / 2**30:,.1f} GiB is available: lower `{param}`", param=param)


def _available_bytes() -> int:
    from landscape.engine.sizing import device_memory_budget

    return device_memory_budget(jax.local_devices()[0])
