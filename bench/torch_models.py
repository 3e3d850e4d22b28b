"""PyTorch twins of the built-in models, for benchmarks and tests (torch is never imported by the
package): the same architectures written in ``torch.nn`` the way Li et al.'s code writes them
(NCHW, ``padding=1``, ``F.scaled_dot_product_attention``), and a copy of OUR parameters and
state into them.

Layouts: ours are Flax's — conv kernels HWIO, dense kernels (in, out), NHWC inputs, features
flattened in (height, width, channel) order; torch's are OIHW, (out, in), NCHW, flattened
(channel, height, width). BatchNorm runs in eval mode on our running statistics. Module names
follow ours (``stage0_block0.conv1`` = ``params["stage0_block0"]["conv1"]``), so that one rule
maps every leaf (:func:`torch_tensors`).

Li et al.'s per-point method (:class:`PointLoop`): copy θ + αd1 + βd2 into the model, one
forward pass over the data per point, the loss summed over batches and divided by the count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------------- layouts


def _conv_kernel(kernel: np.ndarray) -> np.ndarray:  # HWIO -> OIHW
    return kernel.transpose(3, 2, 0, 1)


def _flattened_dense_kernel(kernel: np.ndarray, hwc: tuple[int, int, int]) -> np.ndarray:
    """A dense kernel fed NHWC features flattened (h, w, c), for features flattened (c, h, w)."""
    h, w, c = hwc
    return kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1).T


_RENAME = {"kernel": "weight", "scale": "weight", "embedding": "weight", "bias": "bias",
           "mean": "running_mean", "var": "running_var"}


def torch_tensors(model: nn.Module, params, state=None) -> dict[str, torch.Tensor]:
    """OUR ``params`` (and ``state``, if given) as tensors keyed by ``model``'s state_dict
    names, in torch's layouts. ``params`` may be any params-shaped tree (a direction)."""
    overrides: dict[str, Callable[[np.ndarray], np.ndarray]] = getattr(model, "overrides", {})
    out = {}
    for tree in (params, state or {}):
        for path, leaf in _leaves(tree):
            *modules, last = path
            name = ".".join([*modules, _RENAME.get(last, last)])
            value = np.asarray(leaf, np.float32)
            if name in overrides:
                value = overrides[name](value)
            elif last == "kernel":
                value = _conv_kernel(value) if value.ndim == 4 else value.T
            out[name] = torch.from_numpy(np.array(value, np.float32, order="C"))  # a writable copy
    return out


def load_ours(model: nn.Module, params, state) -> nn.Module:
    """Copy OUR params and state into ``model`` (every tensor: a strict load) and set eval mode."""
    tensors = torch_tensors(model, params, state)
    for name, buffer in model.state_dict().items():
        if name.endswith("num_batches_tracked"):  # torch's own counter; unused in eval mode
            tensors[name] = buffer
    model.load_state_dict(tensors, strict=True)
    return model.eval()


def _leaves(tree, prefix=()):
    if isinstance(tree, dict):
        for key in sorted(tree):
            yield from _leaves(tree[key], (*prefix, str(key)))
    else:
        yield prefix, tree


# ------------------------------------------------------------------------- models


class SmallCNN(nn.Module):
    """``landscape.models.SmallCNN``: conv0 → relu → conv1 → relu → 2×2 avg pool → dense."""

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int,
                 channels: tuple[int, int] = (16, 32)):
        super().__init__()
        height, width, depth = input_shape
        self.conv0 = nn.Conv2d(depth, channels[0], 3, padding=1)
        self.conv1 = nn.Conv2d(channels[0], channels[1], 3, padding=1)
        self.dense = nn.Linear((height // 2) * (width // 2) * channels[1], num_classes)
        hwc = (height // 2, width // 2, channels[1])
        self.overrides = {"dense.weight": lambda k: _flattened_dense_kernel(k, hwc)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(F.relu(self.conv0(x))))
        return self.dense(F.avg_pool2d(x, 2).flatten(1))


class BasicBlock(nn.Module):
    """Li et al.'s ``BasicBlock`` (``"projection"``), ``BasicBlock_noshortcut`` (``"none"``), or
    He et al.'s option A (``"zero-pad"``)."""

    def __init__(self, n_in: int, n_out: int, stride: int, shortcut: str):
        super().__init__()
        self.conv1 = nn.Conv2d(n_in, n_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(n_out)
        self.conv2 = nn.Conv2d(n_out, n_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(n_out)
        self.shortcut, self.stride, self.pad = shortcut, stride, n_out - n_in
        self.project = shortcut == "projection" and (stride != 1 or n_in != n_out)
        if self.project:
            self.shortcut_conv = nn.Conv2d(n_in, n_out, 1, stride, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut == "none":
            return F.relu(out)
        if self.project:
            return F.relu(out + self.shortcut_bn(self.shortcut_conv(x)))
        short = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            short = F.pad(short, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))
        return F.relu(out + short)


class ResNet(nn.Module):
    """``landscape.models.ResNet`` (Li et al.'s ``ResNet_cifar``)."""

    def __init__(self, depth: int = 20, width: int = 16, num_classes: int = 10,
                 shortcut: str = "zero-pad", input_channels: int = 3):
        super().__init__()
        self.stem_conv = nn.Conv2d(input_channels, width, 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(width)
        self.block_names = []
        n_in = width
        for stage in range(3):
            n_out = width * 2**stage
            for block in range((depth - 2) // 6):
                stride = 2 if stage > 0 and block == 0 else 1
                name = f"stage{stage}_block{block}"
                self.add_module(name, BasicBlock(n_in, n_out, stride, shortcut))
                self.block_names.append(name)
                n_in = n_out
        self.head = nn.Linear(n_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        for name in self.block_names:
            x = getattr(self, name)(x)
        return self.head(F.avg_pool2d(x, x.shape[-1]).flatten(1))


class VGG9(nn.Module):
    """Li et al.'s ``VGG('VGG9')`` with ``width`` (64 in theirs) as the first stage's channels."""

    def __init__(self, width: int = 64, num_classes: int = 10, image: int = 32):
        super().__init__()
        self.layers = []
        n_in, conv = 3, 0
        for item in (1, 1, "M", 2, 2, "M", 4, 4, 4, "M"):
            if item == "M":
                self.layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
                continue
            n_out = item * width
            self.add_module(f"conv{conv}", nn.Conv2d(n_in, n_out, 3, padding=1))
            self.add_module(f"bn{conv}", nn.BatchNorm2d(n_out))
            self.layers += [getattr(self, f"conv{conv}"), getattr(self, f"bn{conv}"), nn.ReLU()]
            n_in, conv = n_out, conv + 1
        side = image // 8
        self.fc = nn.Linear(n_in * side * side, n_in)
        self.fc_bn = nn.BatchNorm1d(n_in)
        self.classifier = nn.Linear(n_in, num_classes)
        self.overrides = {"fc.weight": lambda k: _flattened_dense_kernel(k, (side, side, n_in))}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.classifier(F.relu(self.fc_bn(self.fc(x.flatten(1)))))


class Block(nn.Module):
    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(d_model, 3 * d_model)
        self.attn.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.fc_out = nn.Linear(4 * d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, d_model = x.shape
        qkv = self.attn.qkv(self.ln1(x)).view(batch, time, 3, self.heads, d_model // self.heads)
        q, k, v = (qkv[:, :, i].transpose(1, 2) for i in range(3))  # (batch, heads, time, head)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn.proj(y.transpose(1, 2).reshape(batch, time, d_model))
        return x + self.fc_out(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    """``landscape.models.GPT``: pre-LayerNorm decoder, learned positions, untied head."""

    def __init__(self, vocab: int = 256, context: int = 64, d_model: int = 64, layers: int = 2,
                 heads: int = 4):
        super().__init__()
        self.token_embed = nn.Embedding(vocab, d_model)
        self.position_embed = nn.Parameter(torch.zeros(context, d_model))
        self.num_layers = layers
        for i in range(layers):
            self.add_module(f"block{i}", Block(d_model, heads))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.token_embed(tokens) + self.position_embed[: tokens.shape[1]]
        for i in range(self.num_layers):
            x = getattr(self, f"block{i}")(x)
        return self.head(self.ln_f(x))


# ------------------------------------------------------------------------- data and the loop


def nchw(images: np.ndarray) -> torch.Tensor:
    """NHWC float images as an NCHW float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(images, np.float32).transpose(0, 3, 1, 2)))


def cifar_standardized(train_images: np.ndarray, images: np.ndarray) -> np.ndarray:
    """uint8 NHWC ``images`` standardized per channel with ``train_images``' mean and std
    (computed here in float64), as the CIFAR workloads do inside their loss."""
    pixels = train_images.reshape(-1, 3) / 255.0
    mean, std = pixels.mean(axis=0), pixels.std(axis=0)
    return ((images / 255.0 - mean) / np.maximum(std, 1e-6)).astype(np.float32)


def mean_cross_entropy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                       batch_size: int) -> tuple[float, float]:
    """Li et al.'s ``eval_loss``: mean cross-entropy and accuracy (fraction) over every target
    (every position, for sequences), batch by batch, no gradients."""
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            logits = model(inputs[start : start + batch_size])
            logits = logits.reshape(-1, logits.shape[-1])
            target = targets[start : start + batch_size].reshape(-1)
            total += float(F.cross_entropy(logits, target, reduction="sum"))
            correct += int((logits.argmax(1) == target).sum())
            count += len(target)
    return total / count, correct / count


class PointLoop:
    """Li et al.'s per-point evaluation of a plane: for each (α, β), copy θ + αd1 + βd2 into the
    model's parameters (the buffers — BatchNorm statistics — stay ours), then one pass over the
    data (:func:`mean_cross_entropy`)."""

    def __init__(self, model: nn.Module, origin, d1, d2, state, inputs: torch.Tensor,
                 targets: torch.Tensor, batch_size: int):
        self.model = load_ours(model, origin, state)
        self.params = dict(model.named_parameters())
        self.origin, self.d1, self.d2 = (torch_tensors(model, tree) for tree in (origin, d1, d2))
        if set(self.origin) != set(self.params):
            raise ValueError(f"direction leaves {sorted(self.origin)} do not match the torch "
                             f"model's parameters {sorted(self.params)}")
        self.inputs, self.targets, self.batch_size = inputs, targets, batch_size

    def evaluate(self, alpha: float, beta: float) -> tuple[float, float]:
        with torch.no_grad():
            for name, param in self.params.items():
                param.copy_(self.origin[name] + alpha * self.d1[name] + beta * self.d2[name])
        return mean_cross_entropy(self.model, self.inputs, self.targets, self.batch_size)

    def run(self, coords: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
        return [self.evaluate(float(a), float(b)) for a, b in coords]


def gpt_flops_per_token(d_model: int, layers: int, context: int, vocab: int) -> int:
    """2·MACs of one token's forward pass (matmuls and attention, causal half counted full as
    the dense computation does it); for cross-checking a jaxpr count."""
    per_layer = d_model * 3 * d_model + d_model * d_model + 2 * d_model * 4 * d_model
    attention = 2 * context * d_model  # scores and weighted values over the whole context
    return 2 * (layers * (per_layer + attention) + d_model * vocab)

