"""Small convolutional networks, and the kernel initializer the convolutional models share."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def flat_kernel_init(base: nnx.Initializer) -> nnx.Initializer:
    """``base`` drawn as a 2-D (fan_in, out) matrix and reshaped to the conv kernel's shape.

    The same distribution for fan-in scaled initializers (fan_in = kh · kw · in either way), but
    XLA on CPU compiles random draws of 4-D shapes several times slower than 2-D ones, and
    ``init`` is one compiled program.
    """

    def init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        fan_in = 1
        for size in shape[:-1]:
            fan_in *= size
        return base(key, (fan_in, shape[-1]), dtype).reshape(shape)

    return init


class SmallCNN(nnx.Module):
    """Two 3×3 convolutions (ReLU), a 2×2 average pool and a dense classifier, for small images
    such as the 8×8 digits: ``conv0 → conv1 → pool → dense``. Inputs are NHWC."""

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        *,
        channels: tuple[int, int] = (16, 32),
        rngs: nnx.Rngs,
    ):
        height, width, depth = input_shape
        kernel_init = flat_kernel_init(nnx.initializers.lecun_normal())
        self.conv0 = nnx.Conv(depth, channels[0], kernel_size=(3, 3), padding="SAME",
                              kernel_init=kernel_init, rngs=rngs)
        self.conv1 = nnx.Conv(channels[0], channels[1], kernel_size=(3, 3), padding="SAME",
                              kernel_init=kernel_init, rngs=rngs)
        features = (height // 2) * (width // 2) * channels[1]
        self.dense = nnx.Linear(features, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.conv0(x))
        x = jax.nn.relu(self.conv1(x))
        x = nnx.avg_pool(x, window_shape=(2, 2), strides=(2, 2))
        return self.dense(x.reshape(x.shape[0], -1))
