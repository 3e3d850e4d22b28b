import h5py
import numpy as np
import pytest

from landscape.directions import random_plane
from landscape.errors import ReadError, ResumeMismatch
from landscape.grid import Grid
from landscape.io import stored_directions, surface_h5

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
    with pytest.raises(ResumeMismatch, match="made with other arguments"):
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


def test_several_trajectories_in_one_write(tmp_path, monkeypatch):
    grid = Grid(np.linspace(-1, 1, 3))
    path = tmp_path / "s.h5"
    surface_h5.create(path, grid, ["train_loss"], random_plane(PARAMS, dims=1), {"spec_hash": "x"})
    rewrites = []
    original = surface_h5._rewrite
    monkeypatch.setattr(surface_h5, "_rewrite", lambda *a: (rewrites.append(1), original(*a)))
    surface_h5.write_trajectories(path, {
        "sgd": {"x": np.arange(3.0), "y": None, "loss": np.ones(3), "step": np.arange(3)},
        "adam": {"x": -np.arange(2.0), "y": None, "loss": np.zeros(2), "step": np.arange(2),
                 "residual": np.full(2, 0.5)}})
    assert len(rewrites) == 1
    got = surface_h5.read(path).trajectories
    assert sorted(got) == ["adam", "sgd"] and "y" not in got["sgd"]
    np.testing.assert_array_equal(got["adam"]["x"], [0.0, -1.0])
    np.testing.assert_array_equal(got["adam"]["residual"], [0.5, 0.5])

def test_writing_no_points_is_a_no_op(tmp_path):
    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 2))
    path = tmp_path / "s.h5"
    surface_h5.create(path, grid, ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})
    surface_h5.write_points(path, np.array([], int), {"train_loss": np.array([])})
    assert not surface_h5.read(path).done.any()


@pytest.mark.parametrize("dims", [1, 2])
def test_stored_directions_round_trip(tmp_path, dims):
    import jax

    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3) if dims == 2 else None)
    plane = random_plane(PARAMS, dims=dims, seed=5)
    path = tmp_path / "s.h5"
    surface_h5.create(path, grid, ["train_loss"], plane, {"spec_hash": "x", "workload": "toy"})
    stored = stored_directions.read_stored_directions(path)
    assert stored.ndim == dims and stored.workload == "toy"
    assert sorted(stored.d1) == ["dense0/bias", "dense0/kernel"]
    # the shapes alone (jax.eval_shape, no arrays) are enough to check the fit
    stored.check_fit(jax.eval_shape(lambda: PARAMS))
    d1, d2 = stored.fit(PARAMS)
    for got, want in ((d1, plane.d1), (d2, plane.d2)):
        if want is None:
            assert got is None
            continue
        for name in ("kernel", "bias"):
            np.testing.assert_array_equal(got["dense0"][name], want["dense0"][name])


def _edit_directions(edit):
    def make(path):
        surface_h5.create(path, Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3)),
                          ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})
        with h5py.File(path, "r+") as f:
            edit(f)
    return make


def _replace_leaf(key, value):
    def edit(f):
        del f[f"directions/{key}/dense0/kernel"]
        f[f"directions/{key}/dense0/kernel"] = value
    return edit


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b"GIF89a" * 100),
     "cannot read directions from s.h5: not an HDF5 file"),
    (_edit_directions(lambda f: f.__delitem__("directions")),
     "s.h5: no `directions/d1` group; a surface file without stored directions"),
    (_edit_directions(lambda f: f.__delitem__("xcoordinates") or f.__delitem__("directions")),
     "s.h5: no `directions/d1` group; not a surface file of `landscape scan`"),
    (_edit_directions(lambda f: (f.__delitem__("directions/d1"),
                                 f.__setitem__("directions/d1", np.ones(3)))),
     "s.h5: `directions/d1` must be a group (one dataset per parameter), found Dataset"),
    (_edit_directions(lambda f: (f.__delitem__("directions/d1"),
                                 f.create_group("directions/d1"))),
     "s.h5: `directions/d1` holds no arrays"),
    (_edit_directions(_replace_leaf("d1", "text")),
     "s.h5: `directions/d1/dense0/kernel` holds |S4 values, not numbers"),
    (_edit_directions(_replace_leaf("d2", np.full((2, 3), np.inf, np.float32))),
     "s.h5: `directions/d2/dense0/kernel` holds NaN/inf values"),
    (_edit_directions(_replace_leaf("d2", np.ones((3, 2), np.float32))),
     "s.h5: `directions/d2` does not match `directions/d1`: leaf `dense0/kernel` is (2, 3) in "
     "d1, (3, 2) in d2"),
])
def test_stored_directions_that_cannot_be_reused_are_refused(tmp_path, make, words):
    path = tmp_path / "s.h5"
    make(path)
    with pytest.raises(ReadError) as info:
        stored_directions.read_stored_directions(path)
    assert str(path) in str(info.value)
    assert words in str(info.value).replace(str(path), "s.h5")


@pytest.mark.parametrize("like, words", [
    ({"dense0": {"kernel": np.ones((2, 4)), "bias": np.ones(3)}},
     "leaf `dense0/kernel` is (2, 3) in the file, (2, 4) in the model"),
    ({"dense0": {"kernel": np.ones((2, 3))}},  # the file has a leaf the model lacks
     "leaf `dense0/bias` is (3,) in the file, absent in the model"),
    ({**PARAMS, "dense1": {"kernel": np.ones((3, 1))}},  # the model has a leaf the file lacks
     "leaf `dense1/kernel` is absent in the file, (3, 1) in the model"),
])
def test_stored_directions_of_another_model_are_refused(tmp_path, like, words):
    path = tmp_path / "s.h5"
    surface_h5.create(path, Grid(np.linspace(-1, 1, 3), None), ["train_loss"],
                      random_plane(PARAMS, dims=1), {"spec_hash": "x", "workload": "toy"})
    for check in (stored_directions.read_stored_directions(path).check_fit,
                  lambda like: stored_directions.read_directions(path, like)):
        with pytest.raises(ReadError) as info:
            check(like)
        assert f"{path}: the stored directions do not fit the model: {words} (the file is a scan " \
               f"of workload `toy`); use a surface file of this model" in str(info.value)
