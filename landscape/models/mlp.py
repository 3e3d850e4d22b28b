"""Multi-layer perceptrons."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx

from landscape.workload import Params


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


def mlp_after_stem(params: Params, pre: jax.Array) -> jax.Array:
    """An :class:`MLP`'s output computed from its first layer's pre-activation ``pre``
    (``x @ dense0.kernel + dense0.bias``); the same arithmetic as ``MLP.__call__``, in plain jnp
    so the grid evaluator can share the first layer across grid points (see ``LinearStem``)."""
    h = pre
    for i in range(1, len(params)):
        layer = params[f"dense{i}"]
        h = jax.nn.relu(h) @ layer["kernel"] + layer["bias"]
    return h
