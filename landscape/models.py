"""Built-in Flax NNX models, reduced to pure ``(init, apply)`` pairs over plain dict pytrees.

Parameters leave NNX as plain nested dicts (``nnx.to_pure_dict``) so that directions, checkpoints
and file formats see ordinary pytrees; ``apply`` merges them back into the module graph inside
the trace, which costs nothing at run time under ``jit``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from flax import nnx

from landscape.workload import Params, State


class MLP(nnx.Module):
    """Dense layers ``dense0 ... denseK`` with ReLU between them (none after the last)."""

    def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs):
        self.num_layers = len(sizes) - 1
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            setattr(self, f"dense{i}", nnx.Linear(n_in, n_out, rngs=rngs))

    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.num_layers):
            x = getattr(self, f"dense{i}")(x)
            if i < self.num_layers - 1:
                x = jax.nn.relu(x)
        return x


def pure_model(
    build: Callable[[nnx.Rngs], nnx.Module],
) -> tuple[Callable[[jax.Array], tuple[Params, State]], Callable[[Params, State, jax.Array], jax.Array]]:
    """Turn an NNX module constructor into ``init(key) -> (params, state)`` and
    ``apply(params, state, x) -> y`` over plain dicts.

    Parameters are the ``nnx.Param`` variables; every other variable (BatchNorm statistics ...)
    is the state. ``apply`` runs the model in evaluation mode and does not update the state.
    """
    graphdef, *_ = nnx.split(build(nnx.Rngs(0)), nnx.Param, ...)

    def init(key: jax.Array) -> tuple[Params, State]:
        _, params, state = nnx.split(build(nnx.Rngs(key)), nnx.Param, ...)
        return nnx.to_pure_dict(params), nnx.to_pure_dict(state)

    def apply(params: Params, state: State, x: jax.Array) -> jax.Array:
        return nnx.merge(graphdef, params, state)(x)

    return init, apply


def mlp_after_stem(params: Params, pre: jax.Array) -> jax.Array:
    """An :class:`MLP`'s output computed from its first layer's pre-activation ``pre``
    (``x @ dense0.kernel + dense0.bias``); the same arithmetic as ``MLP.__call__``, in plain jnp
    so the grid evaluator can share the first layer across grid points (see ``LinearStem``)."""
    h = pre
    for i in range(1, len(params)):
        layer = params[f"dense{i}"]
        h = jax.nn.relu(h) @ layer["kernel"] + layer["bias"]
    return h
