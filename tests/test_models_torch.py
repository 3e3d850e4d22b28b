"""The built-in models against their PyTorch twins (bench/torch_models.py), written the way
Li et al.'s code writes them: the same loss from the same parameters, after our Flax layouts
(HWIO kernels, (in, out) dense, NHWC, (h, w, c) flattening) are copied into torch's.

Every scale, bias and BatchNorm statistic is drawn at random first (init leaves them 1, 0, 0, 1,
which would hide a swapped or untransposed leaf), and BatchNorm runs on our running statistics.
"""

import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from landscape.data.cifar import cifar_workload
from landscape.data.digits import digits_cnn
from landscape.data.text import text_gpt
from landscape.models import VGG9, ResNet, pure_modes
from landscape.workload import dataset_mean

torch = pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import torch_models  # noqa: E402

RTOL = 1e-5


def random_weights(workload, seed):
    """(params, state) shaped like ``workload.init``'s (shapes only: no init compiled), every
    leaf drawn at random: kernels fan-in scaled, scales and variances positive."""
    rng = np.random.default_rng(seed)

    def draw(path, leaf):
        name, shape = path[-1].key, leaf.shape
        if name in ("scale", "var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name in ("bias", "mean"):
            value = rng.normal(0, 0.2, shape)
        elif name == "kernel":
            value = rng.normal(0, np.sqrt(2 / np.prod(shape[:-1])), shape)
        else:  # embeddings
            value = rng.normal(0, 0.5, shape)
        return value.astype(np.float32)

    shapes = jax.eval_shape(workload.init, jax.random.key(0))
    return jax.tree_util.tree_map_with_path(draw, shapes)


def ours_and_torch(workload, twin, torch_inputs, seed=0):
    params, state = random_weights(workload, seed)
    full, rest = workload.train.split_batches(workload.batch_size)
    ours = jax.jit(lambda p, s: dataset_mean(workload.loss, p, s, full, rest))(params, state)
    model = torch_models.load_ours(twin, params, state)
    targets = torch.from_numpy(np.asarray(workload.train.targets, np.int64))
    loss, acc = torch_models.mean_cross_entropy(model, torch_inputs, targets, workload.batch_size)
    return ours, loss, acc


def assert_same(ours, loss, acc, count):
    assert float(ours["loss"]) == pytest.approx(loss, rel=RTOL)
    # Accuracy may differ only where a logit pair ties to float rounding: at most one sample.
    assert abs(float(ours["acc"]) - acc) <= 1 / count + 1e-9


@pytest.fixture(scope="module")
def digits():
    return digits_cnn(channels=(4, 8))


def test_small_cnn_twin(digits):
    workload = digits
    twin = torch_models.SmallCNN((8, 8, 1), 10, channels=(4, 8))
    ours, loss, acc = ours_and_torch(workload, twin, torch_models.nchw(workload.train.inputs))
    assert_same(ours, loss, acc, len(workload.train))


@pytest.fixture(scope="module")
def cifar_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    return images, (np.arange(24) % 10).astype(np.int32)


@pytest.mark.parametrize("shortcut", ["zero-pad", "projection", "none"])
def test_resnet_twin_with_batchnorm_statistics(cifar_images, shortcut):
    images, labels = cifar_images
    model = pure_modes(lambda rngs: ResNet(8, 4, 10, shortcut=shortcut, rngs=rngs))
    # batch 16: a full batch and a short one, so the mean's weighting is checked too.
    workload = cifar_workload("resnet", model, images, labels, batch_size=16)
    twin = torch_models.ResNet(8, 4, 10, shortcut=shortcut)
    inputs = torch_models.nchw(torch_models.cifar_standardized(images, images))
    ours, loss, acc = ours_and_torch(workload, twin, inputs)
    assert_same(ours, loss, acc, len(images))


def test_vgg9_twin(cifar_images):
    images, labels = cifar_images
    model = pure_modes(lambda rngs: VGG9(4, 10, rngs=rngs))
    workload = cifar_workload("vgg", model, images, labels, batch_size=16)
    inputs = torch_models.nchw(torch_models.cifar_standardized(images, images))
    ours, loss, acc = ours_and_torch(workload, torch_models.VGG9(4, 10), inputs)
    assert_same(ours, loss, acc, len(images))


def test_gpt_twin_on_the_stdlib_text():
    # The workload's own sizes (d_model 64, 2 layers, 4 heads, context 64) on 12 windows.
    workload = text_gpt(num_train=12, num_test=0, batch_size=8)
    tokens = torch.from_numpy(np.asarray(workload.train.inputs, np.int64))
    ours, loss, acc = ours_and_torch(workload, torch_models.GPT(256, 64, 64, 2, 4), tokens)
    assert_same(ours, loss, acc, workload.train.targets.size)


def test_point_loop_moves_the_parameters_along_the_plane(digits):
    # Li et al.'s loop at θ + αd1 + βd2 equals our loss at that point (the bench's check).
    workload = digits
    params, state = random_weights(workload, 0)
    d1, d2 = (random_weights(workload, seed)[0] for seed in (1, 2))
    alpha, beta = 0.7, -0.4
    point = jax.tree.map(lambda o, a, b: o + alpha * a + beta * b, params, d1, d2)
    full, rest = workload.train.split_batches(500)  # three full batches and a short one
    ours = jax.jit(lambda p: dataset_mean(workload.loss, p, state, full, rest))(point)
    targets = torch.from_numpy(workload.train.targets.astype(np.int64))
    loop = torch_models.PointLoop(torch_models.SmallCNN((8, 8, 1), 10, (4, 8)), params, d1, d2,
                                  state, torch_models.nchw(workload.train.inputs), targets, 500)
    loss, acc = loop.evaluate(alpha, beta)
    assert_same(ours, loss, acc, len(workload.train))
