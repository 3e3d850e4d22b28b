"""Multi-layer perceptrons."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
from flax import nnx


class MLP(nnx.Module):
    """Dense layers ``dense0 ... denseK`` with ``activation`` (ReLU by default) between them
    (none after the last). Kernels start LeCun-normal and biases at zero (``nnx.Linear``'s
    defaults)."""

    def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs,
                 activation: Callable[[jax.Array], jax.Array] = jax.nn.relu):
        self.num_layers = len(sizes) - 1
        self.activation = activation
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            setattr(self, f"dense{i}", nnx.Linear(n_in, n_out, rngs=rngs))

    def __call__(self, x: jax.Array) -> jax.Array:
        for i in range(self.num_layers):
            x = getattr(self, f"dense{i}")(x)
            if i < self.num_layers - 1:
                x = self.activation(x)
        return x
