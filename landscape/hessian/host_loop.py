"""Lanczos driven from the host, one compiled call per step, for operators that XLA:CPU runs
slowly inside a compiled loop.

On the CPU backend a convolution's gradient inside a ``while_loop``/``fori_loop``/``scan`` body
runs far slower than the same computation compiled on its own (jax-ml/jax#12868: the loop body
keeps layouts that the fast convolution kernels do not take). Measured here with jax 0.10.2 on
the ``digits-cnn`` Hessian (9,930 parameters, 1,437 images): one HVP 0.12 s alone, 4.4 s per
step inside a ``fori_loop`` (a gradient: 0.08 s against 2.2 s; the forward pass is unaffected).
For such operators the loop runs on the host instead: each step is one dispatch of a compiled
Lanczos step, the convergence test its own compiled call every ``check_every`` steps, and the
host reads one flag per test — milliseconds against the HVP's tenths of a second.

:func:`slow_in_compiled_loops` decides: a convolution anywhere in the operator's jaxpr, on the
CPU backend.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from landscape.hessian.lanczos import (
    LanczosState,
    Progress,
    TopRitzPair,
    convergence_test,
    lanczos_init,
    lanczos_step,
    start_progress,
    top_ritz_pair,
)
from landscape.hessian.operator import Matvec

_CONVOLUTIONS = ("conv_general_dilated",)


def _has_convolution(jaxpr: Any) -> bool:
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in _CONVOLUTIONS:
            return True
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr -> Jaxpr
                if hasattr(sub, "eqns") and _has_convolution(sub):
                    return True
    return False


@functools.lru_cache(maxsize=64)
def _matvec_has_convolution(matvec: Matvec, shapes: Any) -> bool:
    v0, operands = jax.tree.unflatten(shapes[0], [jax.ShapeDtypeStruct(s, d)
                                                  for s, d in shapes[1]])
    return _has_convolution(jax.make_jaxpr(matvec)(v0, operands).jaxpr)


def slow_in_compiled_loops(matvec: Matvec, operands: Any, v0: jax.Array) -> bool:
    """Whether ``matvec`` should be looped over from the host: it contains a convolution and
    runs on the CPU backend. Traced once per operator and argument layout."""
    leaves, treedef = jax.tree.flatten((v0, operands))
    if not all(hasattr(leaf, "shape") for leaf in leaves):
        return False
    devices = {d.platform for leaf in leaves if isinstance(leaf, jax.Array)
               for d in leaf.devices()} or {jax.default_backend()}
    if devices != {"cpu"}:
        return False
    shapes = (treedef, tuple((tuple(leaf.shape), jnp.result_type(leaf)) for leaf in leaves))
    return _matvec_has_convolution(matvec, shapes)


@functools.partial(jax.jit, static_argnames=("matvec",), donate_argnums=(1,))
def dispatched_step(j, state: LanczosState, operands, key, *, matvec) -> LanczosState:
    """One Lanczos step as its own compiled call (``state`` is donated)."""
    return lanczos_step(j, state, matvec, operands, key)


@functools.partial(jax.jit, static_argnames=("top_k", "bottom_k", "num_steps", "stop"))
def _test(p: Progress, tol, atol, *, top_k, bottom_k, num_steps, stop) -> Progress:
    return convergence_test(p, tol, atol, top_k=top_k, bottom_k=bottom_k, num_steps=num_steps,
                            stop=stop)


@jax.jit
def _vectors(coefficients, basis):
    return coefficients.T @ basis[: coefficients.shape[0]]


def extremes_on_host(v0, operands, key, tol, atol, min_steps, *, matvec, num_steps, top_k,
                     bottom_k, stop, check_every, return_vectors):
    """What ``lanczos._extremes_on_device`` computes, with the loop on the host."""
    k = top_k + bottom_k
    first = max(k, int(min_steps))
    p = start_progress(v0, num_steps, k)
    state = p.state
    for j in range(num_steps):
        state = dispatched_step(jnp.asarray(j, jnp.int32), state, operands, key, matvec=matvec)
        count = j + 1
        if count >= first and ((count - first) % check_every == 0 or count == num_steps):
            p = _test(p._replace(state=state, count=jnp.asarray(count, jnp.int32)), tol, atol,
                      top_k=top_k, bottom_k=bottom_k, num_steps=num_steps, stop=stop)
            state = p.state
            if bool(np.all(jax.device_get(p.converged))):
                break
    vectors = _vectors(p.coefficients, state.basis) if return_vectors else None
    return p.count, p.values, p.residuals, p.converged, vectors


def lanczos_tridiagonal_on_host(matvec: Matvec, operands: Any, v0: jax.Array, num_steps: int,
                                key: jax.Array) -> LanczosState:
    """:func:`landscape.hessian.lanczos.lanczos_tridiagonal` with one dispatched call per step
    and no host wait (the step count is fixed)."""
    state = lanczos_init(v0, num_steps)
    for j in range(num_steps):
        state = dispatched_step(jnp.asarray(j, jnp.int32), state, operands, key, matvec=matvec)
    return state


def lanczos_top_on_host(matvec: Matvec, operands: Any, v0: jax.Array, num_steps: int,
                        key: jax.Array) -> TopRitzPair:
    """:func:`landscape.hessian.lanczos.lanczos_top`, stepped from the host."""
    state = lanczos_tridiagonal_on_host(matvec, operands, v0, num_steps, key)
    return _top(state, num_steps=num_steps)


@functools.partial(jax.jit, static_argnames=("num_steps",))
def _top(state: LanczosState, *, num_steps: int) -> TopRitzPair:
    return top_ritz_pair(state, num_steps)
