import h5py
import numpy as np
import pytest

from landscape.directions import random_plane
from landscape.errors import ReadError, ResumeMismatch
from landscape.grid import Grid
from landscape.io import surface_h5

PARAMS = {"dense0": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3) + 1, "bias": np.ones(3, np.float32)}}


@pytest.mark.parametrize("y", [None, np.linspace(0, 1, 3)])
def test_write_then_read_round_trip(tmp_path, y):
    grid = Grid(np.linspace(-1, 1, 4), y)
    plane = random_plane(PARAMS, dims=grid.ndim)
    path = tmp_path / "s.h5"
    values, done = surface_h5.create(path, grid, ["train_loss", "train_acc"], plane,
                                     {"spec_hash": "abc", "workload": "toy"})
    assert np.isnan(values["train_loss"]).all() and not done.any()
    rng = np.random.default_rng(0)
    want = {k: rng.normal(size=grid.shape) for k in ("train_loss", "train_acc")}
    index = np.unique([0, 1, 2, grid.num_points - 2, grid.num_points - 1])
    surface_h5.write_points(path, index, {k: v.ravel()[index] for k, v in want.items()})
    got = surface_h5.read(path)
    assert got.grid.shape == grid.shape and got.attrs["workload"] == "toy"
    flat_done = got.done.ravel()
    assert flat_done[index].all() and flat_done.sum() == index.size
    for k in want:
        np.testing.assert_array_equal(got.values[k].ravel()[index], want[k].ravel()[index])
        assert np.isnan(np.delete(got.values[k].ravel(), index)).all()
    np.testing.assert_array_equal(got.directions["d1"]["dense0"]["kernel"], plane.d1["dense0"]["kernel"])
    np.testing.assert_array_equal(got.directions["origin"]["dense0"]["kernel"], PARAMS["dense0"]["kernel"])


def test_li_et_al_layout(tmp_path):
    grid = Grid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 3))
    path = tmp_path / "s.h5"
    surface_h5.create(path, grid, ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})
    with h5py.File(path) as f:
        assert f["xcoordinates"].dtype == np.float64 and f["xcoordinates"].shape == (5,)
        assert f["ycoordinates"].shape == (3,)
        assert f["train_loss"].shape == (3, 5)  # (ny, nx)


def test_reopen_same_spec_resumes_other_spec_refuses(tmp_path):
    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    path = tmp_path / "s.h5"
    plane = random_plane(PARAMS)
    surface_h5.create(path, grid, ["train_loss"], plane, {"spec_hash": "one"})
    surface_h5.write_points(path, np.array([4]), {"train_loss": np.array([1.5])})
    values, done = surface_h5.create(path, grid, ["train_loss"], plane, {"spec_hash": "one"})
    assert done.sum() == 1 and values["train_loss"][1, 1] == 1.5
    with pytest.raises(ResumeMismatch, match="--overwrite"):
        surface_h5.create(path, grid, ["train_loss"], plane, {"spec_hash": "two"})
    _, done = surface_h5.create(path, grid, ["train_loss"], plane, {"spec_hash": "two"}, overwrite=True)
    assert not done.any()


def test_reading_garbage_raises_read_error(tmp_path):
    path = tmp_path / "bad.h5"
    path.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(ReadError, match="bad.h5"):
        surface_h5.read(path)
    with pytest.raises(ReadError, match="missing.h5"):
        surface_h5.read(tmp_path / "missing.h5")


def test_trajectory_round_trip_and_replace(tmp_path):
    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3))
    path = tmp_path / "s.h5"
    surface_h5.create(path, grid, ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})
    surface_h5.write_trajectory(path, "adam", x=np.arange(4.0), y=-np.arange(4.0),
                                loss=np.ones(4), step=np.arange(4) * 10)
    surface_h5.write_trajectory(path, "adam", x=np.arange(2.0), y=np.zeros(2), loss=np.ones(2),
                                step=np.arange(2))
    got = surface_h5.read(path).trajectories
    assert list(got) == ["adam"]
    np.testing.assert_array_equal(got["adam"]["x"], [0.0, 1.0])
    with pytest.raises(Exception, match="one common shape"):
        surface_h5.write_trajectory(path, "bad", x=np.arange(3.0), y=None, loss=np.ones(2), step=np.arange(2))


def test_writing_no_points_is_a_no_op(tmp_path):
    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 2))
    path = tmp_path / "s.h5"
    surface_h5.create(path, grid, ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})
    surface_h5.write_points(path, np.array([], int), {"train_loss": np.array([])})
    assert not surface_h5.read(path).done.any()
