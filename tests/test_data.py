"""Built-in workloads and the data readers behind them (IDX, CIFAR-10 binary), on tiny files that
the tests write themselves in the official formats."""

import gzip
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

import landscape
from landscape.data import cifar, mnist
from landscape.data.idx import read_idx, write_idx
from landscape.errors import InputError, ReadError
from landscape.models import MLP, ResNet, SmallCNN, pure_model, pure_modes
from landscape.workload import Batch

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------------------------- registry


def test_unknown_workload_lists_the_built_in_ones():
    with pytest.raises(InputError) as info:
        landscape.get_workload("digitz")
    for name in ("sine", "spirals", "digits", "digits-cnn", "mnist", "fashion-mnist", "cifar10",
                 "cifar10-resnet56", "cifar10-resnet56-noshort", "cifar10-vgg9", "text-gpt"):
        assert name in str(info.value)


# ---------------------------------------------------------------------------------- spirals


def test_spirals_is_seeded_balanced_and_a_classifier():
    from landscape.data.spirals import spirals

    a, b, c = spirals(), spirals(), spirals(seed=1)
    np.testing.assert_array_equal(a.train.inputs, b.train.inputs)
    assert not np.array_equal(a.train.inputs, c.train.inputs)
    assert a.train.inputs.shape == (1000, 2) and a.train.inputs.dtype == np.float32
    assert np.bincount(a.train.targets).tolist() == [500, 500]
    assert not np.array_equal(a.train.inputs[:500], a.test.inputs)  # test drawn separately
    assert (a.task, a.metrics, a.input_shape) == ("classification", ("acc",), (2,))
    assert a.train_loss is None


# ---------------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return landscape.get_workload("digits")


def test_digits_split_and_standardization(digits):
    from sklearn.datasets import load_digits

    assert (len(digits.train), len(digits.test)) == (1437, 360)
    assert digits.train.inputs.shape == (1437, 64) and digits.train.inputs.dtype == np.float32
    # Standardized with the training set's statistics (constant pixels only centred).
    np.testing.assert_allclose(digits.train.inputs.mean(axis=0), 0, atol=1e-5)
    std = digits.train.inputs.std(axis=0)
    assert np.all((np.abs(std - 1) < 1e-4) | (std < 1e-6))
    # Stratified: every class in both splits, in proportion.
    assert np.bincount(digits.test.targets).min() >= 35
    total = np.bincount(load_digits().target)
    np.testing.assert_array_equal(np.bincount(digits.train.targets) + np.bincount(digits.test.targets),
                                  total)
    assert (digits.task, digits.metrics) == ("classification", ("acc",))


def test_digits_loss_is_cross_entropy_and_acc_a_fraction(digits):
    params, state = digits.init(jax.random.key(0))
    assert [params["dense0"]["kernel"].shape, params["dense2"]["kernel"].shape] == [(64, 256), (256, 10)]
    batch = Batch(digits.test.inputs[:50], digits.test.targets[:50])
    loss, metrics = jax.jit(digits.loss)(params, state, batch)
    logits = np.asarray(jax.jit(digits.apply)(params, state, batch.inputs), np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    reference = -log_softmax[np.arange(50), batch.targets].mean()
    np.testing.assert_allclose(loss, reference, rtol=1e-5)
    np.testing.assert_allclose(metrics["acc"], np.mean(logits.argmax(1) == batch.targets))
    assert 0.0 <= float(metrics["acc"]) <= 1.0


def test_digits_cnn_takes_images():
    wl = landscape.get_workload("digits-cnn")
    assert wl.train.inputs.shape == (1437, 8, 8, 1) and wl.input_shape == (8, 8, 1)
    params, state = wl.init(jax.random.key(0))
    assert params["conv0"]["kernel"].shape == (3, 3, 1, 16) and state == {}
    loss, metrics = jax.jit(wl.loss)(params, state, Batch(wl.train.inputs[:4], wl.train.targets[:4]))
    assert np.isfinite(loss) and "acc" in metrics


# ---------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path, dtype, suffix):
    array = (RNG.normal(size=(3, 4, 5)) * 50).astype(dtype)
    path = tmp_path / f"a-idx3{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)


def test_idx_magic_number_is_the_standard_one(tmp_path):
    write_idx(tmp_path / "labels", np.arange(7, dtype=np.uint8))
    raw = (tmp_path / "labels").read_bytes()
    assert raw[:8] == bytes([0, 0, 0x08, 1, 0, 0, 0, 7]) and raw[8:] == bytes(range(7))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=3), st.integers(0, 50))
def test_idx_reader_never_accepts_a_cut_file(tmp_path_factory, shape, cut):
    path = tmp_path_factory.mktemp("idx") / "x"
    write_idx(path, np.ones(shape, np.uint8))
    raw = path.read_bytes()
    path.write_bytes(raw[: max(0, len(raw) - 1 - cut)])
    with pytest.raises(ReadError) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_idx_bad_magic_is_a_read_error(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"\x12\x34\x08\x01\x00\x00\x00\x01\x00")
    with pytest.raises(ReadError, match="not an IDX file"):
        read_idx(path)


def write_mnist_folder(folder, num_train=12, num_test=5, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": RNG.integers(0, 256, (num_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(num_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": RNG.integers(0, 256, (num_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(num_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / (name + suffix), array)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_a_local_folder(tmp_path, gz):
    arrays = write_mnist_folder(tmp_path / "mnist", gz=gz)
    wl = mnist.mnist(tmp_path / "mnist", hidden=(8,))
    assert (len(wl.train), len(wl.test), wl.input_shape) == (12, 5, (784,))
    np.testing.assert_array_equal(wl.train.targets, arrays["train-labels-idx1-ubyte"])
    pixels = arrays["train-images-idx3-ubyte"].reshape(12, -1) / 255.0
    expected = (pixels - pixels.mean()) / pixels.std()
    np.testing.assert_allclose(wl.train.inputs, expected, atol=1e-5)
    assert (wl.name, wl.task, wl.metrics) == ("mnist", "classification", ("acc",))


def test_fashion_mnist_found_through_the_environment(tmp_path, monkeypatch):
    write_mnist_folder(tmp_path / "fashion-mnist")
    monkeypatch.setenv("LANDSCAPE_DATA", str(tmp_path))
    wl = landscape.get_workload("fashion-mnist")
    assert wl.name == "fashion-mnist" and len(wl.train) == 12


def test_missing_mnist_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_DATA", str(tmp_path))
    with pytest.raises(ReadError) as info:
        landscape.get_workload("mnist")
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "mnist") in message
    assert "LANDSCAPE_DATA" in message and "\n" not in message


@pytest.mark.parametrize("gz", [True, False])
def test_truncated_mnist_file_is_a_one_line_error_naming_it(tmp_path, gz):
    write_mnist_folder(tmp_path, gz=gz)
    path = tmp_path / ("t10k-images-idx3-ubyte" + (".gz" if gz else ""))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ReadError) as info:
        mnist.mnist(tmp_path)
    assert str(path) in str(info.value) and "truncated" in str(info.value)
    assert "\n" not in str(info.value)


def test_mnist_label_count_must_match(tmp_path):
    write_mnist_folder(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(ReadError, match="expected 12 labels"):
        mnist.mnist(tmp_path)


# ---------------------------------------------------------------------------------- CIFAR-10


def write_cifar_folder(folder, per_file=3):
    folder.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, (6 * per_file, 32, 32, 3), dtype=np.uint8)
    labels = (np.arange(6 * per_file) % 10).astype(np.uint8)
    for i, name in enumerate((*cifar.TRAIN_FILES, cifar.TEST_FILE)):
        part = slice(i * per_file, (i + 1) * per_file)
        cifar.write_cifar_batch(folder / name, images[part], labels[part])
    return images, labels


def test_cifar_binary_record_layout(tmp_path):
    # One record written byte by byte from the spec: label, then the R, G, B planes row-major.
    red, green, blue = (RNG.integers(0, 256, (32, 32), dtype=np.uint8) for _ in range(3))
    path = tmp_path / "one.bin"
    path.write_bytes(bytes([7]) + red.tobytes() + green.tobytes() + blue.tobytes())
    images, labels = cifar.read_cifar_batch(path)
    assert images.shape == (1, 32, 32, 3) and labels.tolist() == [7]
    np.testing.assert_array_equal(images[0, :, :, 0], red)
    np.testing.assert_array_equal(images[0, :, :, 2], blue)
    np.testing.assert_array_equal(images[0, 5, 9], [red[5, 9], green[5, 9], blue[5, 9]])


def test_cifar_reads_the_extracted_tarball_folder(tmp_path):
    images, labels = write_cifar_folder(tmp_path / "cifar10" / "cifar-10-batches-bin")
    x_train, y_train, x_test, y_test = cifar.read_cifar10(tmp_path / "cifar10")
    np.testing.assert_array_equal(x_train, images[:15])
    np.testing.assert_array_equal(y_test, labels[15:])


def test_truncated_cifar_file_is_a_one_line_error_naming_it(tmp_path):
    write_cifar_folder(tmp_path)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ReadError) as info:
        cifar.read_cifar10(tmp_path)
    assert str(path) in str(info.value) and "truncated" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_cifar_file_names_the_binary_version(tmp_path):
    with pytest.raises(ReadError) as info:
        cifar.read_cifar10(tmp_path)
    assert "data_batch_1.bin" in str(info.value) and "binary version" in str(info.value)


def test_cifar_bad_label(tmp_path):
    path = tmp_path / "b.bin"
    cifar.write_cifar_batch(path, np.zeros((2, 32, 32, 3), np.uint8), np.array([1, 12]))
    with pytest.raises(ReadError, match="record 1 has label 12"):
        cifar.read_cifar_batch(path)


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cifar")
    write_cifar_folder(folder, per_file=4)
    return cifar.cifar10(folder, depth=8, width=4)


def test_cifar10_workload_has_batchnorm_state_beside_the_params(tiny_cifar):
    wl = tiny_cifar
    assert (len(wl.train), len(wl.test), wl.input_shape) == (20, 4, (32, 32, 3))
    assert wl.train.inputs.dtype == np.uint8  # standardized inside the loss
    params, state = wl.init(jax.random.key(0))
    assert set(state["stem_bn"]) == {"mean", "var"} and set(params["stem_bn"]) == {"scale", "bias"}
    assert wl.train_loss is not None
    batch = Batch(wl.train.inputs[:8], wl.train.targets[:8])
    loss, (metrics, new_state) = jax.jit(wl.train_loss)(params, state, batch)
    eval_loss, _ = jax.jit(wl.loss)(params, state, batch)
    assert np.isfinite(loss) and 0 <= float(metrics["acc"]) <= 1
    assert not np.allclose(new_state["stem_bn"]["mean"], state["stem_bn"]["mean"])
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert float(loss) != float(eval_loss)  # batch statistics vs running averages


def test_resnet20_has_the_papers_size():
    # He et al. 2016 Table 6: ResNet-20 has 0.27 M parameters (shapes only: nothing computed).
    model = nnx.eval_shape(lambda: ResNet(20, 16, 10, rngs=nnx.Rngs(0)))
    count = sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param)))
    assert 265_000 < count < 275_000
    with pytest.raises(ValueError, match="6n"):
        ResNet(21, rngs=nnx.Rngs(0))


# ---------------------------------------------------------------------------------- models


class LinearBN(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(3, 4, rngs=rngs)
        self.bn = nnx.BatchNorm(4, momentum=0.9, epsilon=1e-5, rngs=rngs)

    def __call__(self, x):
        return self.bn(self.dense(x))


def test_pure_modes_batchnorm_against_the_formulas():
    model = pure_modes(LinearBN)
    params, state = model.init(jax.random.key(1))
    state = {"bn": {"mean": jnp.full(4, 0.5), "var": jnp.full(4, 2.0)}}
    x = jnp.asarray(RNG.normal(size=(6, 3)), jnp.float32)
    h = np.asarray(x) @ np.asarray(params["dense"]["kernel"]) + np.asarray(params["dense"]["bias"])
    scale, bias = np.asarray(params["bn"]["scale"]), np.asarray(params["bn"]["bias"])
    # Evaluation: running averages, state untouched.
    expected = (h - 0.5) / np.sqrt(2.0 + 1e-5) * scale + bias
    np.testing.assert_allclose(jax.jit(model.apply)(params, state, x), expected, rtol=1e-5,
                               atol=1e-6)
    # Training: batch statistics (biased variance), running averages moved 10 % toward them.
    y, new_state = jax.jit(model.apply_train)(params, state, x)
    mean, var = h.mean(0), h.var(0)
    np.testing.assert_allclose(y, (h - mean) / np.sqrt(var + 1e-5) * scale + bias, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new_state["bn"]["mean"], 0.9 * 0.5 + 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(new_state["bn"]["var"], 0.9 * 2.0 + 0.1 * var, rtol=1e-5)
    assert "mean" not in params["bn"]


def test_pure_model_keeps_its_two_function_form():
    init, apply = pure_model(lambda rngs: MLP((2, 3, 1), rngs=rngs))
    params, state = init(jax.random.key(0))
    assert state == {} and jax.jit(apply)(params, state, jnp.ones((5, 2))).shape == (5, 1)
    cnn = pure_modes(lambda rngs: SmallCNN((8, 8, 1), 3, channels=(2, 4), rngs=rngs))
    p, s = cnn.init(jax.random.key(0))
    y, s2 = jax.jit(cnn.apply_train)(p, s, jnp.ones((2, 8, 8, 1)))
    assert y.shape == (2, 3) and s2 == {}


def test_gzip_corruption_is_a_read_error(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"\x00" * 1000)
    path.write_bytes(path.read_bytes()[:15])
    with pytest.raises(ReadError, match="gzip"):
        read_idx(path)


# ---------------------------------------------------------------------------------- Li et al.'s nets


def _param_count(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def _vgg9_param_count(width=64, classes=10):
    # Li et al.'s VGG9: 7 conv3x3 (+bias) with BatchNorm, Linear(4w·4·4, 4w) + BatchNorm1d, Linear.
    channels = [3, width, width, 2 * width, 2 * width, 4 * width, 4 * width, 4 * width]
    convs = sum(9 * a * b + b + 2 * b for a, b in zip(channels[:-1], channels[1:]))
    return convs + (16 * 4 * width + 1) * 4 * width + 2 * 4 * width + (4 * width + 1) * classes


@pytest.mark.parametrize("name, count, projections", [
    ("cifar10-resnet20", None, 2), ("cifar10-resnet20-noshort", None, 0),
    ("cifar10-resnet56", (850_000, 860_000), 2), ("cifar10-resnet56-noshort", None, 0),
    ("cifar10-vgg9", _vgg9_param_count(), 0),
])
def test_li_et_al_cifar_workloads_read_the_cifar10_folder(tmp_path_factory, monkeypatch, name,
                                                          count, projections):
    root = tmp_path_factory.mktemp("data")
    write_cifar_folder(root / "cifar10", per_file=2)
    monkeypatch.setenv("LANDSCAPE_DATA", str(root))
    wl = landscape.get_workload(name)
    assert (wl.name, len(wl.train), len(wl.test), wl.input_shape) == (name, 10, 2, (32, 32, 3))
    assert wl.train_loss is not None  # BatchNorm: training mode updates the state
    params, state = jax.eval_shape(wl.init, jax.random.key(0))  # shapes only
    paths = ["/".join(k.key for k in path) for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    # Li et al.'s BasicBlock projects (1×1 conv + BN) where the shape changes: 2 stage entries.
    assert sum(p.endswith("shortcut_conv/kernel") for p in paths) == projections
    assert set(jax.tree.leaves(jax.tree.map(lambda s: s.dtype.name, state))) == {"float32"}
    if isinstance(count, tuple):  # He et al. Table 6: ResNet-56 has 0.85 M parameters
        assert count[0] < _param_count(params) < count[1]
    elif count is not None:
        assert _param_count(params) == count


def test_resnet_without_shortcuts_has_the_same_parameters_as_option_a():
    def shapes(shortcut):
        model = nnx.eval_shape(lambda: ResNet(8, 4, 10, shortcut=shortcut, rngs=nnx.Rngs(0)))
        return jax.tree.map(lambda v: v.shape, nnx.to_pure_dict(nnx.state(model, nnx.Param)))

    assert shapes("none") == shapes("zero-pad")  # only the addition differs
    with pytest.raises(ValueError, match="shortcut"):
        ResNet(8, 4, shortcut="identity", rngs=nnx.Rngs(0))


# ---------------------------------------------------------------------------------- text-gpt


@pytest.fixture(scope="module")
def text():
    from landscape.data.text import text_gpt

    return text_gpt(num_train=40, num_test=8)


def test_text_gpt_windows_are_the_stdlib_bytes_shifted_by_one(text):
    import os

    from landscape.data.text import STDLIB_FILES

    first = (Path(os.path.dirname(os.__file__)) / STDLIB_FILES[0]).read_bytes()
    stream = np.frombuffer(first[: 48 * 64 + 1], np.uint8)
    x, y = text.train.inputs, text.train.targets
    assert x.shape == y.shape == (40, 64) and x.dtype == np.int32
    np.testing.assert_array_equal(x.ravel(), stream[: 40 * 64])
    np.testing.assert_array_equal(y.ravel(), stream[1 : 40 * 64 + 1])
    np.testing.assert_array_equal(text.test.inputs.ravel(), stream[40 * 64 : 48 * 64])
    assert (text.name, text.input_shape, text.metrics) == ("text-gpt", (64,), ("acc",))


def test_text_gpt_loss_is_per_byte_cross_entropy_and_the_model_is_causal(text):
    # Random weights of init's shapes (no init compiled: the suite stays fast).
    shapes = jax.eval_shape(text.init, jax.random.key(0))
    rng = np.random.default_rng(3)
    params, state = jax.tree.map(lambda s: rng.normal(0, 0.3, s.shape).astype(np.float32), shapes)
    batch = Batch(text.train.inputs[:4], text.train.targets[:4])
    loss, metrics = jax.jit(text.loss)(params, state, batch)
    logits = np.asarray(jax.jit(text.apply)(params, state, batch.inputs), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(logp, batch.targets[..., None], -1).mean()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(float(metrics["acc"]), np.mean(logits.argmax(-1) == batch.targets))
    # Changing byte t changes no logit before t.
    changed = batch.inputs.copy()
    changed[:, 40] = (changed[:, 40] + 1) % 256
    other = np.asarray(jax.jit(text.apply)(params, state, changed), np.float64)
    np.testing.assert_allclose(other[:, :40], logits[:, :40], rtol=1e-6, atol=1e-6)
    assert not np.allclose(other[:, 40], logits[:, 40])


def test_text_gpt_missing_source_file_is_a_read_error_naming_it(tmp_path):
    from landscape.data.text import text_gpt

    (tmp_path / "a.py").write_bytes(b"x = 1\n" * 100)  # 600 bytes
    wl = text_gpt(num_train=4, num_test=1, context=8, folder=tmp_path, files=("a.py", "b.py"))
    assert len(wl.train) == 4  # b.py is never needed, never opened
    with pytest.raises(ReadError) as info:
        text_gpt(num_train=80, num_test=0, context=8, folder=tmp_path, files=("a.py", "b.py"))
    assert str(tmp_path / "b.py") in str(info.value) and "\n" not in str(info.value)
    (tmp_path / "b.py").write_bytes(b"y")
    with pytest.raises(ReadError, match="601 bytes, fewer than the 641"):
        text_gpt(num_train=80, num_test=0, context=8, folder=tmp_path, files=("a.py", "b.py"))


def test_predicts_is_argmax_equals_label_ties_included():
    import jax.numpy as jnp

    from landscape.data.classification import predicts

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 7)).astype(np.float32)
    logits[:40] = 0.0  # every class tied: argmax is class 0
    logits[40:80, 2] = logits[40:80, 5] = 9.0  # a tie between 2 and 5: argmax is 2
    logits[80:90, 0] = np.nan
    labels = rng.integers(0, 7, 200)
    labels[:10], labels[40:50], labels[50:60] = 0, 2, 5
    want = np.argmax(logits, -1) == labels
    got = np.asarray(predicts(jnp.asarray(logits), jnp.asarray(labels)))
    np.testing.assert_array_equal(got[:80], want[:80])
    np.testing.assert_array_equal(got[90:], want[90:])
    assert not got[80:90].any()  # a NaN logit: wrong (argmax would take the NaN for the class)
    # (3-D logits, as the GPT's next-byte predictions)
    got3 = predicts(jnp.asarray(logits[90:].reshape(10, 11, 7)), jnp.asarray(labels[90:].reshape(10, 11)))
    np.testing.assert_array_equal(np.asarray(got3).ravel(), want[90:])
