"""Trajectory files: exact write-then-read round trips, the documented layout, typed errors."""

import h5py
import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landscape.errors import ReadError, WriteError
from landscape.io import trajectory_h5
from landscape.train_loop import METRIC_NAMES, Trajectory

RNG = np.random.default_rng(0)


def make_trajectory(n=4, *, with_state=True, dtype=np.float32, classification=True):
    params = {
        "dense0": {"kernel": RNG.normal(size=(n, 3, 5)).astype(dtype),
                   "bias": RNG.normal(size=(n, 5)).astype(dtype)},
        "head": {"kernel": RNG.normal(size=(n, 5, 2)).astype(dtype)},
    }
    state = {"bn": {"mean": RNG.normal(size=(n, 5)).astype(np.float32),
                    "var": RNG.random((n, 5)).astype(np.float32)}} if with_state else {}
    acc = RNG.random(n) if classification else np.full(n, np.nan)
    return Trajectory(
        step=np.arange(n, dtype=np.int64) * 10,
        epoch=np.arange(n, dtype=np.int64) // 2,
        train_loss=RNG.random(n), test_loss=RNG.random(n), train_acc=acc, test_acc=acc[::-1].copy(),
        params=params, state=state,
    )


def assert_trajectories_equal(a, b):
    for name in ("step", "epoch", *METRIC_NAMES):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for tree_a, tree_b in ((a.params, b.params), (a.state, b.state)):
        assert jax.tree.structure(tree_a) == jax.tree.structure(tree_b)
        for x, y in zip(jax.tree.leaves(tree_a), jax.tree.leaves(tree_b)):
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("classification", [True, False])
def test_round_trip_is_exact(tmp_path, with_state, dtype, classification):
    trajectory = make_trajectory(with_state=with_state, dtype=dtype, classification=classification)
    before = {k: v.copy() for k, v in trajectory.params["dense0"].items()}
    path = tmp_path / "trajectory.h5"
    trajectory_h5.write(path, trajectory)
    back = trajectory_h5.read(path)
    assert_trajectories_equal(trajectory, back)
    for step in trajectory.step:
        np.testing.assert_array_equal(back.params_at(int(step))["head"]["kernel"],
                                      trajectory.params["head"]["kernel"][trajectory.index(step)])
    np.testing.assert_array_equal(trajectory.params["dense0"]["kernel"], before["kernel"])


def test_layout_is_the_documented_one(tmp_path):
    path = tmp_path / "t.h5"
    trajectory_h5.write(path, make_trajectory(n=3))
    with h5py.File(path, "r") as handle:
        assert handle.attrs["format"] == "landscape-trajectory" and handle.attrs["acc_unit"] == "fraction"
        assert handle["params/dense0/kernel"].shape == (3, 3, 5)
        assert handle["state/bn/mean"].shape == (3, 5)
        assert handle["step"].dtype == np.int64 and handle["train_loss"].dtype == np.float64
        assert {"step", "epoch", "train_loss", "test_loss", "train_acc", "test_acc"} <= set(handle)


def test_read_like_gives_the_reference_structure(tmp_path):
    path = tmp_path / "t.h5"
    trajectory = make_trajectory(n=2)
    trajectory_h5.write(path, trajectory)
    like = {"head": {"kernel": np.zeros((5, 2))}, "dense0": {"bias": np.zeros(5), "kernel": np.zeros((3, 5))}}
    back = trajectory_h5.read(path, like=like, like_state={"bn": {"mean": np.zeros(5), "var": np.ones(5)}})
    np.testing.assert_array_equal(back.params["head"]["kernel"], trajectory.params["head"]["kernel"])
    with pytest.raises(ReadError, match="shape"):
        trajectory_h5.read(path, like={"head": {"kernel": np.zeros((4, 2))}})


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 5), width=st.integers(1, 4))
def test_any_size_round_trips(tmp_path_factory, n, width):
    trajectory = Trajectory(
        step=np.arange(n, dtype=np.int64), epoch=np.zeros(n, np.int64),
        **{name: RNG.random(n) for name in METRIC_NAMES},
        params={"w": RNG.normal(size=(n, width))}, state={},
    )
    path = tmp_path_factory.mktemp("h5") / "t.h5"
    trajectory_h5.write(path, trajectory)
    assert_trajectories_equal(trajectory, trajectory_h5.read(path))


def test_errors_are_typed_and_name_the_file(tmp_path):
    with pytest.raises(ReadError, match="missing.h5"):
        trajectory_h5.read(tmp_path / "missing.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["x"] = 1
    with pytest.raises(ReadError, match="not a trajectory file"):
        trajectory_h5.read(other)
    truncated = tmp_path / "cut.h5"
    trajectory_h5.write(truncated, make_trajectory())
    truncated.write_bytes(truncated.read_bytes()[:1000])
    with pytest.raises(ReadError, match="cut.h5"):
        trajectory_h5.read(truncated)
    bad = make_trajectory(n=3)
    bad = Trajectory(**{**bad.__dict__, "train_loss": np.zeros(2)})
    with pytest.raises(WriteError, match="3 recorded steps"):
        trajectory_h5.write(tmp_path / "bad.h5", bad)
    with pytest.raises(WriteError, match="cannot write"):
        trajectory_h5.write(tmp_path / "no" / "such" / "dir.h5", make_trajectory())
