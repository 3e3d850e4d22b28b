"""The CIFAR ResNets of He et al. 2016 (§4.2), with BatchNorm, and the variants Li et al. 2018
study: projection shortcuts (their code's ``BasicBlock``) and no shortcuts at all (their
``resnet56_noshort``: the same network with the residual addition removed).

Padding follows PyTorch's ``padding=1`` (one pixel on every side), as He et al.'s and Li et al.'s
code do, not XLA's ``"SAME"``: for a 3×3 stride-2 convolution on an even size, ``"SAME"`` pads
only the bottom/right, which centres the kernel on odd pixels while the option-A shortcut keeps
the even ones, and which no PyTorch twin reproduces.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from landscape.models.cnn import flat_kernel_init

Shortcut = Literal["zero-pad", "projection", "none"]
SHORTCUTS: tuple[str, ...] = ("zero-pad", "projection", "none")
PAD_1 = ((1, 1), (1, 1))  # PyTorch's padding=1


def _conv(n_in: int, n_out: int, size: int, stride: int, rngs: nnx.Rngs) -> nnx.Conv:
    return nnx.Conv(n_in, n_out, kernel_size=(size, size), strides=(stride, stride),
                    padding=PAD_1 if size == 3 else "VALID", use_bias=False,
                    kernel_init=flat_kernel_init(nnx.initializers.kaiming_normal()), rngs=rngs)


def batch_norm(features: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    """BatchNorm with PyTorch's defaults (momentum 0.1 of the new batch = Flax momentum 0.9,
    ε = 1e-5), so that running statistics mean the same in a PyTorch twin."""
    return nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=rngs)


class BasicBlock(nnx.Module):
    """Two 3×3 conv + BatchNorm layers and a shortcut around them:

    - ``"zero-pad"``: parameter-free (He et al. 2016, option A: subsample by the stride and
      zero-pad the new channels);
    - ``"projection"``: a 1×1 conv + BatchNorm where the shape changes, identity elsewhere
      (option B; Li et al.'s ``cifar10/models/resnet.py``);
    - ``"none"``: no shortcut, ``relu(bn2(conv2(...)))`` alone (Li et al.'s
      ``BasicBlock_noshortcut``).
    """

    def __init__(self, n_in: int, n_out: int, stride: int, *, shortcut: Shortcut = "zero-pad",
                 rngs: nnx.Rngs):
        if shortcut not in SHORTCUTS:
            raise ValueError(f"`shortcut` (={shortcut!r}) must be one of {', '.join(SHORTCUTS)}")
        self.conv1 = _conv(n_in, n_out, 3, stride, rngs)
        self.bn1 = batch_norm(n_out, rngs)
        self.conv2 = _conv(n_out, n_out, 3, 1, rngs)
        self.bn2 = batch_norm(n_out, rngs)
        self.stride = stride
        self.pad = n_out - n_in
        self.shortcut = shortcut
        self.project = shortcut == "projection" and (stride != 1 or n_in != n_out)
        if self.project:
            self.shortcut_conv = _conv(n_in, n_out, 1, stride, rngs)
            self.shortcut_bn = batch_norm(n_out, rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.nn.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        if self.shortcut == "none":
            return jax.nn.relu(y)
        if self.project:
            return jax.nn.relu(y + self.shortcut_bn(self.shortcut_conv(x)))
        shortcut = x[:, :: self.stride, :: self.stride, :]
        if self.pad:
            half = self.pad // 2
            shortcut = jnp.pad(shortcut, ((0, 0), (0, 0), (0, 0), (half, self.pad - half)))
        return jax.nn.relu(y + shortcut)


class ResNet(nnx.Module):
    """The CIFAR ResNet of He et al. 2016 (§4.2): a 3×3 conv, three stages of ``(depth − 2) / 6``
    basic blocks with ``width``, ``2·width``, ``4·width`` channels (stride 2 between stages),
    global average pooling and a dense classifier. ``depth=20, width=16`` is ResNet-20
    (0.27 M parameters), ``depth=56`` ResNet-56 (0.85 M). ``shortcut`` as in
    :class:`BasicBlock`. Inputs are NHWC."""

    def __init__(self, depth: int = 20, width: int = 16, num_classes: int = 10, *,
                 input_channels: int = 3, shortcut: Shortcut = "zero-pad", rngs: nnx.Rngs):
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"`depth` (={depth}) must be 6n + 2 with n >= 1 (8, 14, 20, 32 ...)")
        blocks_per_stage = (depth - 2) // 6
        self.stem_conv = _conv(input_channels, width, 3, 1, rngs)
        self.stem_bn = batch_norm(width, rngs)
        self.block_names = []
        n_in = width
        for stage in range(3):
            n_out = width * 2**stage
            for block in range(blocks_per_stage):
                stride = 2 if stage > 0 and block == 0 else 1
                name = f"stage{stage}_block{block}"
                setattr(self, name, BasicBlock(n_in, n_out, stride, shortcut=shortcut, rngs=rngs))
                self.block_names.append(name)
                n_in = n_out
        self.head = nnx.Linear(n_in, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.nn.relu(self.stem_bn(self.stem_conv(x)))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.head(jnp.mean(x, axis=(1, 2)))
