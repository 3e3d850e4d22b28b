"""Cases (d)-(f) of ``grid_throughput.py``: built-in networks beside their PyTorch twins
(``torch_models.py``), each with Li et al.'s per-point loop on the same weights and data.

- (d) ``digits-cnn``: SmallCNN on the 1437 training digits (the built-in workload itself);
- (e) ResNet-20 (BatchNorm, eval mode; ``cifar10``'s model) on random CIFAR-shaped uint8 images;
- (f) the ``text-gpt`` GPT (2 layers, d_model 64, context 64) on 64 windows = 4096 tokens of the
  standard library's bytes.

Useful FLOPs are counted from the loss's jaxpr: 2·MACs of every ``dot_general`` and
``conv_general_dilated`` of one sample's forward pass (shapes only, so exact for these models),
times the number of samples; elementwise work, softmax and BatchNorm are not counted.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import numpy as np
import torch
import torch_models

from landscape.data.cifar import cifar_workload
from landscape.data.digits import digits_cnn
from landscape.data.text import text_gpt
from landscape.models import ResNet, pure_modes
from landscape.workload import Batch, Workload


@dataclasses.dataclass
class NetCase:
    name: str
    workload: Workload
    params: dict
    state: dict
    make_loop: Callable[[object], torch_models.PointLoop]  # plane -> Li et al.'s loop
    flops_per_point: float
    side: tuple[int, int]  # grid points along x, y
    chunk: int  # points per engine call (>= 3 calls per grid)
    torch_points: int  # points per timed torch round


def forward_flops(loss, params, state, batch: Batch) -> int:
    """2·MACs of the matrix products and convolutions in ``loss(params, state, batch)``."""
    jaxpr = jax.make_jaxpr(lambda p: loss(p, state, batch))(params)
    return 2 * _macs(jaxpr.jaxpr)


def _macs(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            lhs, rhs = (v.aval.shape for v in eqn.invars)
            (_, rhs_contract), (_, rhs_batch) = eqn.params["dimension_numbers"]
            rhs_free = [d for i, d in enumerate(rhs) if i not in (*rhs_contract, *rhs_batch)]
            total += math.prod(lhs) * math.prod(rhs_free)
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            out_features = rhs[eqn.params["dimension_numbers"].rhs_spec[0]]
            total += math.prod(eqn.outvars[0].aval.shape) * math.prod(rhs) // out_features
        times = eqn.params.get("length", 1) if name == "scan" else 1
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    total += times * _macs(inner)
    return total


def _per_point_flops(workload, params, state) -> float:
    one = Batch(workload.train.inputs[:1], workload.train.targets[:1])
    return forward_flops(workload.loss, params, state, one) * len(workload.train)


def _loop_factory(twin, state, inputs, targets, batch_size):
    def make(plane):
        return torch_models.PointLoop(twin, plane.origin, plane.d1, plane.d2, state, inputs,
                                      targets, batch_size)
    return make


def digits_cnn_case(quick: bool) -> NetCase:
    workload = digits_cnn()
    params, state = workload.init(jax.random.key(0))
    twin = torch_models.SmallCNN((8, 8, 1), 10, (16, 32))
    targets = torch.from_numpy(workload.train.targets.astype(np.int64))
    make = _loop_factory(twin, state, torch_models.nchw(workload.train.inputs), targets,
                         workload.batch_size)
    return NetCase("d: digits-cnn SmallCNN, 1437 images", workload, params, state, make,
                   _per_point_flops(workload, params, state), (6, 4) if quick else (16, 16),
                   8 if quick else 32, 10 if quick else 100)


def resnet20_case(quick: bool, images: int = 512) -> NetCase:
    images = 128 if quick else images
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (images, 32, 32, 3), dtype=np.uint8)
    y = rng.integers(0, 10, images).astype(np.int32)
    model = pure_modes(lambda rngs: ResNet(20, 16, 10, rngs=rngs))
    workload = cifar_workload("resnet20", model, x, y, batch_size=min(images, 500))
    params, state = workload.init(jax.random.key(0))
    # Running statistics away from (0, 1), as after training (only the values change).
    state = jax.tree_util.tree_map_with_path(
        lambda path, v: np.asarray(rng.uniform(0.5, 1.5, v.shape) if path[-1].key == "var"
                                   else rng.normal(0, 0.1, v.shape), np.float32), state)
    twin = torch_models.ResNet(20, 16, 10)
    inputs = torch_models.nchw(torch_models.cifar_standardized(x, x))
    make = _loop_factory(twin, state, inputs, torch.from_numpy(y.astype(np.int64)),
                         workload.batch_size)
    name = f"e: ResNet-20 BatchNorm, {images} CIFAR images"
    return NetCase(name, workload, params, state, make, _per_point_flops(workload, params, state),
                   (3, 2) if quick else (4, 4), 2 if quick else 4, 2 if quick else 8)


def gpt_case(quick: bool, windows: int = 64) -> NetCase:
    workload = text_gpt(num_train=windows, num_test=0, batch_size=windows)
    params, state = workload.init(jax.random.key(0))
    tokens = torch.from_numpy(workload.train.inputs.astype(np.int64))
    targets = torch.from_numpy(workload.train.targets.astype(np.int64))
    make = _loop_factory(torch_models.GPT(256, 64, 64, 2, 4), state, tokens, targets,
                         workload.batch_size)
    name = f"f: GPT 2x64, {windows * 64} tokens"
    return NetCase(name, workload, params, state, make, _per_point_flops(workload, params, state),
                   (6, 4) if quick else (16, 16), 8 if quick else 32, 10 if quick else 100)


CASES = {"d": digits_cnn_case, "e": resnet20_case, "f": gpt_case}
