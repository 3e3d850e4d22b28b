"""The CIFAR ResNets of He et al. 2016 (§4.2), with BatchNorm."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from landscape.models.cnn import flat_kernel_init


def _conv3x3(n_in: int, n_out: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(n_in, n_out, kernel_size=(3, 3), strides=(stride, stride), padding="SAME",
                    use_bias=False, kernel_init=flat_kernel_init(nnx.initializers.kaiming_normal()),
                    rngs=rngs)


def _batch_norm(features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    # PyTorch's BatchNorm defaults (momentum 0.1 of the new batch = Flax momentum 0.9).
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=rngs)


class BasicBlock(nnx.Module):
    """Two 3×3 conv + BatchNorm layers with a parameter-free shortcut (He et al. 2016, option A:
    subsample by the stride and zero-pad the new channels)."""

    def __init__(self, n_in: int, n_out: int, stride: int, *, rngs: nnx.Rngs):
        self.conv1 = _conv3x3(n_in, n_out, stride, rngs)
        self.bn1 = _batch_norm(n_out, rngs)
        self.conv2 = _conv3x3(n_out, n_out, 1, rngs)
        self.bn2 = _batch_norm(n_out, rngs)
        self.stride = stride
        self.pad = n_out - n_in

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x[:, :: self.stride, :: self.stride, :]
        if self.pad:
            half = self.pad // 2
            shortcut = jnp.pad(shortcut, ((0, 0), (0, 0), (0, 0), (half, self.pad - half)))
        return jax.nn.relu(y + shortcut)


class ResNet(nnx.Module):
    """The CIFAR ResNet of He et al. 2016 (§4.2): a 3×3 conv, three stages of ``(depth − 2) / 6``
    basic blocks with ``width``, ``2·width``, ``4·width`` channels (stride 2 between stages),
    global average pooling and a dense classifier. ``depth=20, width=16`` is ResNet-20
    (0.27 M parameters). Inputs are NHWC."""

    def __init__(self, depth: int = 20, width: int = 16, num_classes: int = 10, *,
                 input_channels: int = 3, rngs: nnx.Rngs):
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"`depth` (={depth}) must be 6n + 2 with n >= 1 (8, 14, 20, 32 ...)")
        blocks_per_stage = (depth - 2) // 6
        self.stem_conv = _conv3x3(input_channels, width, 1, rngs)
        self.stem_bn = _batch_norm(width, rngs)
        self.block_names = []
        n_in = width
        for stage in range(3):
            n_out = width * 2**stage
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                name = f"stage{stage}_block{block}"
                setattr(self, name, BasicBlock(n_in, n_out, stride, rngs=rngs))
                self.block_names.append(name)
                n_in = n_out
        self.head = nnx.Linear(n_in, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.stem_bn(self.stem_conv(x)))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.head(jnp.mean(x, axis=(1, 2)))
