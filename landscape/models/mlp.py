"""Multi-layer perceptrons."""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx


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
