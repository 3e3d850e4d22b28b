"""Lanczos driven from the host: each step applies the operator from the host (for a Hessian of
a data set, one compiled call per batch) and then one compiled update.

For operators that cannot, or should not, sit inside a compiled loop (see
:mod:`landscape.curvature.linear`): data streamed batch by batch, and convolutions on the CPU.
The host reads one flag per convergence test, every ``check_every`` steps: milliseconds
against an HVP's tenths of a second. Same steps, same start vector as the device loops of
:mod:`landscape.curvature.lanczos`: the same values up to float rounding.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from landscape.curvature.lanczos import (
    LanczosState,
    Progress,
    TopRitzPair,
    convergence_test,
    lanczos_init,
    lanczos_update,
    start_progress,
    top_ritz_pair,
)
from landscape.curvature.linear import LinearOperator


@functools.partial(jax.jit, donate_argnums=(1,))
def dispatched_update(j, state: LanczosState, aq, key) -> tuple[LanczosState, jax.Array]:
    """One Lanczos update given A q_j as its own compiled call (``state`` is donated), and the
    next basis vector q_{j+1}."""
    state = lanczos_update(j, state, aq, key)
    return state, state.basis[jnp.minimum(j + 1, state.basis.shape[0] - 1)]


@functools.partial(jax.jit, static_argnames=("top_k", "bottom_k", "num_steps", "stop"))
def _test(p: Progress, tol, atol, *, top_k, bottom_k, num_steps, stop) -> Progress:
    return convergence_test(p, tol, atol, top_k=top_k, bottom_k=bottom_k, num_steps=num_steps,
                            stop=stop)


def settled(x: jax.Array) -> jax.Array:
    """``x``, waited for where it spans several CPU devices.

    There XLA runs every device's part of every program on one pool of threads (one per
    core). A step dispatched while the last one still runs can deadlock: one device's part of
    the product's all-reduce waits in a pool thread for the other device's part, which is
    queued behind that device's part of the last update, which waits for a pool thread (seen:
    a 40 s rendezvous timeout, then an abort, in SLQ on a parameter block with 2 devices on 2
    cores). A wait per step costs microseconds against a product.
    """
    devices = x.devices() if isinstance(x, jax.Array) else ()
    if len(devices) > 1 and all(d.platform == "cpu" for d in devices):
        x.block_until_ready()
    return x


# The starting buffers made by a compiled call, so that they are placed (committed) as the
# update's outputs are: made eagerly, some are uncommitted and the first update compiles a
# second program for them (1.7 s for a 65-parameter operator on a loaded 2-core machine).
_start_progress = jax.jit(start_progress, static_argnums=(1, 2))
_lanczos_init = jax.jit(lanczos_init, static_argnums=(1,))


@jax.jit
def _vectors(coefficients, basis):
    return coefficients.T @ basis[: coefficients.shape[0]]


def extremes_on_host(op: LinearOperator, v0, key, tol, atol, min_steps, *, num_steps, top_k,
                     bottom_k, stop, check_every, return_vectors):
    """What ``lanczos._extremes_on_device`` computes, with the loop on the host."""
    k = top_k + bottom_k
    first = max(k, int(min_steps))
    p = _start_progress(v0, num_steps, k)
    state, q = p.state, p.state.basis[0]
    for j in range(num_steps):
        state, q = dispatched_update(jnp.asarray(j, jnp.int32), state, op.apply(q), key)
        q = settled(q)
        count = j + 1
        if count >= first and ((count - first) % check_every == 0 or count == num_steps):
            p = _test(p._replace(state=state, count=jnp.asarray(count, jnp.int32)), tol, atol,
                      top_k=top_k, bottom_k=bottom_k, num_steps=num_steps, stop=stop)
            state = p.state
            if bool(np.all(jax.device_get(p.converged))):
                break
    vectors = _vectors(p.coefficients, state.basis) if return_vectors else None
    return p.count, p.values, p.residuals, p.converged, vectors


def lanczos_tridiagonal_on_host(op: LinearOperator, v0: jax.Array, num_steps: int,
                                key: jax.Array) -> LanczosState:
    """:func:`landscape.curvature.lanczos.lanczos_tridiagonal` stepped from the host, with no
    host wait (the step count is fixed)."""
    state = _lanczos_init(v0, num_steps)
    q = state.basis[0]
    for j in range(num_steps):
        state, q = dispatched_update(jnp.asarray(j, jnp.int32), state, op.apply(q), key)
        q = settled(q)
    return state


def lanczos_top_on_host(op: LinearOperator, v0: jax.Array, num_steps: int,
                        key: jax.Array) -> TopRitzPair:
    """:func:`landscape.curvature.lanczos.lanczos_top`, stepped from the host."""
    return _top(lanczos_tridiagonal_on_host(op, v0, num_steps, key), num_steps=num_steps)


@functools.partial(jax.jit, static_argnames=("num_steps",))
def _top(state: LanczosState, *, num_steps: int) -> TopRitzPair:
    return top_ritz_pair(state, num_steps)
