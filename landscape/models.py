"""Built-in Flax NNX models, reduced to pure functions over plain dict pytrees.

Parameters leave NNX as plain nested dicts (``nnx.to_pure_dict``) so that directions, checkpoints
and file formats see ordinary pytrees; ``apply`` merges them back into the module graph inside
the trace, which costs nothing at run time under ``jit``.

Every ``nnx.Param`` is a parameter; every other variable (BatchNorm running statistics) is the
model's ``state``, kept beside the params and never mixed into them. :func:`pure_modes` gives
both modes: evaluation (running averages, state untouched) and training (batch statistics,
returns the updated state).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from landscape.workload import Params, State

InitFn = Callable[[jax.Array], tuple[Params, State]]
ApplyFn = Callable[[Params, State, jax.Array], jax.Array]
TrainApplyFn = Callable[[Params, State, jax.Array], tuple[jax.Array, State]]


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


class PureModel(NamedTuple):
    """A model as pure functions over plain dicts (see :func:`pure_modes`)."""

    init: InitFn  # init(key) -> (params, state)
    apply: ApplyFn  # evaluation mode: apply(params, state, x) -> y
    apply_train: TrainApplyFn  # training mode: apply_train(params, state, x) -> (y, new_state)


def pure_modes(build: Callable[[nnx.Rngs], nnx.Module]) -> PureModel:
    """Turn an NNX module constructor into ``init``, an evaluation-mode ``apply`` and a
    training-mode ``apply_train``.

    Evaluation mode sets ``use_running_average=True, deterministic=True`` on the modules that
    have them (BatchNorm uses its running statistics, the state is not changed); training mode
    sets ``use_running_average=False`` (batch statistics; ``apply_train`` returns the updated
    running statistics as the new state). Both graphs are fixed here, once, with ``nnx.view``,
    so nothing about the mode is decided inside a trace.
    """
    template = nnx.eval_shape(lambda: build(nnx.Rngs(0)))  # structure only: no compute
    eval_graph, *_ = nnx.split(
        nnx.view(template, use_running_average=True, deterministic=True, raise_if_not_found=False),
        nnx.Param, ...,
    )
    train_graph, *_ = nnx.split(
        nnx.view(template, use_running_average=False, deterministic=True, raise_if_not_found=False),
        nnx.Param, ...,
    )

    @jax.jit  # one compiled program instead of one eager dispatch per initializer
    def init(key: jax.Array) -> tuple[Params, State]:
        _, params, state = nnx.split(build(nnx.Rngs(key)), nnx.Param, ...)
        return nnx.to_pure_dict(params), nnx.to_pure_dict(state)

    def apply(params: Params, state: State, x: jax.Array) -> jax.Array:
        return nnx.merge(eval_graph, params, state)(x)

    def apply_train(params: Params, state: State, x: jax.Array) -> tuple[jax.Array, State]:
        module = nnx.merge(train_graph, params, state)
        y = module(x)
        _, _, new_state = nnx.split(module, nnx.Param, ...)
        return y, nnx.to_pure_dict(new_state)

    return PureModel(init, apply, apply_train)


def pure_model(build: Callable[[nnx.Rngs], nnx.Module]) -> tuple[InitFn, ApplyFn]:
    """``init(key) -> (params, state)`` and the evaluation-mode ``apply(params, state, x) -> y``
    of an NNX module constructor (see :func:`pure_modes` for the training mode too)."""
    model = pure_modes(build)
    return model.init, model.apply


def mlp_after_stem(params: Params, pre: jax.Array) -> jax.Array:
    """An :class:`MLP`'s output computed from its first layer's pre-activation ``pre``
    (``x @ dense0.kernel + dense0.bias``); the same arithmetic as ``MLP.__call__``, in plain jnp
    so the grid evaluator can share the first layer across grid points (see ``LinearStem``)."""
    h = pre
    for i in range(1, len(params)):
        layer = params[f"dense{i}"]
        h = jax.nn.relu(h) @ layer["kernel"] + layer["bias"]
    return h
