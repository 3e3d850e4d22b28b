"""VGG-9 as Li et al. 2018 define it (``cifar10/models/vgg.py``, ``'VGG9'``), with BatchNorm."""

from __future__ import annotations

import jax
from flax import nnx

from landscape.models.cnn import flat_kernel_init
from landscape.models.resnet import PAD_1, batch_norm

# Li et al.'s cfg['VGG9'] in units of ``width`` (64 in theirs); "M" is a 2×2 max pool.
VGG9_LAYERS: tuple[int | str, ...] = (1, 1, "M", 2, 2, "M", 4, 4, 4, "M")


class VGG9(nnx.Module):
    """Seven 3×3 conv (with bias) + BatchNorm + ReLU layers in three stages of ``width``,
    ``2·width`` and ``4·width`` channels, each stage ended by a 2×2 max pool; then a dense layer of
    ``4·width`` units + BatchNorm + ReLU and a dense classifier: 9 weight layers. ``width=64`` is
    Li et al.'s (2.8 M parameters on 32×32 inputs). Inputs are NHWC; the flattened features
    are in (height, width, channel) order (a PyTorch twin flattens (channel, height, width))."""

    def __init__(self, width: int = 64, num_classes: int = 10, *,
                 input_shape: tuple[int, int, int] = (32, 32, 3), rngs: nnx.Rngs):
        height, breadth, channels = input_shape
        if height % 8 or breadth % 8:
            # Li et al. pool with ceil_mode=True; on sizes divisible by 8 that is the plain pool.
            raise ValueError(f"`input_shape` (={input_shape}) must have height and width "
                             "divisible by 8 (three 2×2 pools)")
        kernel_init = flat_kernel_init(nnx.initializers.kaiming_normal())
        self.layers: list[str] = []
        n_in = channels
        for item in VGG9_LAYERS:
            if item == "M":
                self.layers.append("M")
                continue
            i = len(self.layers) - self.layers.count("M")  # conv0 ... conv6
            n_out = int(item) * width
            setattr(self, f"conv{i}", nnx.Conv(n_in, n_out, kernel_size=(3, 3), padding=PAD_1,
                                               kernel_init=kernel_init, rngs=rngs))
            setattr(self, f"bn{i}", batch_norm(n_out, rngs))
            self.layers.append(str(i))
            n_in = n_out
        features = (height // 8) * (breadth // 8) * n_in
        self.fc = nnx.Linear(features, n_in, rngs=rngs)
        self.fc_bn = batch_norm(n_in, rngs)
        self.classifier = nnx.Linear(n_in, num_classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            if layer == "M":
                x = nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2))
            else:
                x = jax.nn.relu(getattr(self, f"bn{layer}")(getattr(self, f"conv{layer}")(x)))
        x = jax.nn.relu(self.fc_bn(self.fc(x.reshape(x.shape[0], -1))))
        return self.classifier(x)
