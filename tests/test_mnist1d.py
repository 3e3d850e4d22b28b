"""The generated MNIST-1D data and the ``mnist1d-mse`` workload, and the edge-of-stability
example's quick mode (the full example takes minutes and is not run here)."""

import builtins
import importlib.util
import io
import os
import pickle
import random
import re
from pathlib import Path

import jax
import numpy as np
import pytest

from landscape.data import get_workload, names
from landscape.data.mnist1d import mnist1d_arrays, mnist1d_mse
from landscape.workload import Batch

ROOT = Path(__file__).resolve().parents[1]

# Printed from the `mnist1d` package 0.0.2.post1 itself (PyPI wheel, run once outside the
# suite with a stub `requests` module, which it imports and which is no dependency here):
#   d = mnist1d.data.make_dataset(mnist1d.data.get_dataset_args())
UPSTREAM = {
    "x[1234, ::8]": [0.8009429801283566, 0.8195450404146196, 0.38004295421723855,
                     -1.7543675221219333, -0.7896626404695605],
    "x_test[999, ::8]": [-0.5193287078205188, -0.13949271059302198, -0.6893183078535029,
                         -0.32793801500521963, -0.5400119928423919],
    "y[:20]": [2, 6, 4, 5, 6, 6, 6, 0, 3, 1, 6, 9, 4, 3, 4, 5, 1, 9, 0, 3],
    "y_test[-20:]": [0, 6, 6, 9, 6, 7, 8, 3, 3, 9, 8, 3, 3, 6, 1, 2, 5, 9, 6, 4],
    "x.sum()": -51.78746787509559,
    "(x**2).sum()": 159248.2538653486,
    "|x_test|.sum()": 29977.877540866408,
    "bincount(y)": [398, 396, 411, 394, 394, 402, 401, 404, 402, 398],
}


@pytest.fixture(scope="module")
def arrays():
    return mnist1d_arrays()


@pytest.fixture(scope="module")
def workload():
    return get_workload("mnist1d-mse")


def test_the_generator_gives_the_mnist1d_packages_arrays(arrays):
    x, y, x_test, y_test = arrays
    assert x.shape == (4000, 40) and x_test.shape == (1000, 40)
    np.testing.assert_allclose(x[1234, ::8], UPSTREAM["x[1234, ::8]"], rtol=1e-12)
    np.testing.assert_allclose(x_test[999, ::8], UPSTREAM["x_test[999, ::8]"], rtol=1e-12)
    assert y[:20].tolist() == UPSTREAM["y[:20]"]
    assert y_test[-20:].tolist() == UPSTREAM["y_test[-20:]"]
    assert np.bincount(y).tolist() == UPSTREAM["bincount(y)"]
    assert x.sum() == pytest.approx(UPSTREAM["x.sum()"], rel=1e-9)
    assert (x ** 2).sum() == pytest.approx(UPSTREAM["(x**2).sum()"], rel=1e-12)
    assert np.abs(x_test).sum() == pytest.approx(UPSTREAM["|x_test|.sum()"], rel=1e-12)


def test_generation_is_deterministic_and_leaves_global_random_state_alone(arrays):
    # The package reseeds numpy's and Python's global generators; this one draws from its own.
    np.random.seed(7)
    random.seed(7)
    numpy_before, python_before = np.random.get_state()[1].copy(), random.getstate()
    again = mnist1d_arrays()
    assert np.array_equal(np.random.get_state()[1], numpy_before)
    assert random.getstate() == python_before
    for a, b in zip(arrays, again):
        assert np.array_equal(a, b)


def test_building_the_workload_opens_no_file_and_loads_no_pickle(tmp_path, monkeypatch):
    opened = []

    def refuse(name):
        def call(*args, **kwargs):
            opened.append((name, args[:2]))
            raise AssertionError(f"{name}{args[:2]} during data generation")
        return call

    monkeypatch.chdir(tmp_path)
    for module, attr in ((builtins, "open"), (io, "open"), (os, "open"), (pickle, "load"),
                         (pickle, "loads"), (pickle, "dump")):
        monkeypatch.setattr(module, attr, refuse(f"{module.__name__}.{attr}"))
    workload = mnist1d_mse()
    monkeypatch.undo()
    assert opened == [] and list(tmp_path.iterdir()) == []
    assert len(workload.train) == 1000 and len(workload.test) == 1000


def test_the_workload_is_registered_and_standardized(arrays, workload):
    assert "mnist1d-mse" in names() and workload.name == "mnist1d-mse"
    x = np.asarray(workload.train.inputs)
    assert x.dtype == np.float32 and x.shape == (1000, 40)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(0), 1, rtol=1e-4)
    assert workload.batch_size == 1000 and workload.task == "classification"
    raw, labels, raw_test, _ = arrays
    assert np.array_equal(workload.train.targets, labels[:1000])
    # The test signals are standardized with the training signals' statistics.
    mean, std = raw[:1000].mean(0), raw[:1000].std(0)
    np.testing.assert_allclose(workload.test.inputs, (raw_test - mean) / std, atol=1e-5)


def test_the_loss_is_half_the_squared_distance_to_one_hot_targets(workload):
    params, state = workload.init(jax.random.key(3))
    kernel = np.asarray(params["dense1"]["kernel"], np.float64)
    assert kernel.std() == pytest.approx(1 / np.sqrt(100), rel=0.1)  # LeCun: variance 1/fan_in
    x = np.asarray(workload.train.inputs[:64], np.float64)
    labels = np.asarray(workload.train.targets[:64])
    with jax.default_matmul_precision("highest"):
        loss, metrics = jax.jit(workload.loss)(params, state,
                                               Batch(workload.train.inputs[:64], labels))
    h = x
    for i in range(3):
        layer = params[f"dense{i}"]
        h = h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        h = np.tanh(h) if i < 2 else h
    expected = 0.5 * np.mean(np.sum((h - np.eye(10)[labels]) ** 2, axis=1))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["acc"]) == pytest.approx(np.mean(h.argmax(1) == labels))


def _example():
    spec = importlib.util.spec_from_file_location(
        "edge_of_stability", ROOT / "examples" / "edge_of_stability.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_counts_a_run_at_its_edge_by_the_median_of_its_second_half():
    from landscape.geometry.stability import stability_threshold

    example = _example()
    threshold = stability_threshold("sgd", 0.1)  # 2/η = 20
    step = np.arange(0, 1001, 100)
    rising = {"eta": 0.1, "step": step, "threshold": threshold, "steps": 1000,
              "diverged": False,
              "sharpness": np.array([12, 13, 14, 15, 16, 17, 18, 19, 23, 24, 25.0])}
    line, hovers = example.summary(rising, "λmax")
    # Steps 500..1000: 17, 18, 19, 23, 24, 25 -> median 21, +5 % of 20.
    assert hovers and "λmax at step 0 = 12" in line and "= 21 (+5.0% of 2/η)" in line
    below = dict(rising, sharpness=rising["sharpness"] - 6)  # median 15: -25 %
    assert not example.summary(below, "λmax")[1]
    assert not example.summary(dict(rising, diverged=True), "λmax")[1]


LINE = re.compile(r"  η = [0-9.]+: 2/η = [0-9.]+, λmax at step 0 = [0-9.]+, median λmax over "
                  r"steps 100–200 = [0-9.]+ \([+-][0-9.]+% of 2/η\)")


@pytest.mark.slow
def test_the_example_runs_in_quick_mode(capsys):
    _example().main(["--quick"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "gradient descent"
    assert LINE.fullmatch(lines[1]), lines
    assert re.fullmatch(r"edge of stability: [01]/1 step sizes hover within 20 % of 2/η",
                        lines[-1]) and len(lines) == 3
