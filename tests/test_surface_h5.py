import os

import h5py
import numpy as np
import pytest
from test_vtk import fill, full_disk  # noqa: F401 - a fixture

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
    monkeypatch.setattr(surface_h5, "_rewrite",
                        lambda *a, **k: (rewrites.append(1), original(*a, **k)))
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


# --- files that must be refused with the reason (issue: silently accepted or a traceback) ----

def _good_file(path, *, spec=True):
    grid = Grid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3))
    attrs = {"spec_hash": "x"}
    if spec:
        attrs["grid"] = {"x": [-1.0, 1.0, 4], "y": [-1.0, 1.0, 3]}
    surface_h5.create(path, grid, ["train_loss"], random_plane(PARAMS), attrs)
    surface_h5.write_trajectory(path, "adam", x=np.arange(3.0), y=np.zeros(3), loss=np.ones(3),
                                step=np.arange(3))
    return path


def _edit(f, name, value):
    del f[name]
    f[name] = value


@pytest.mark.parametrize("edit, words", [
    (lambda f: _edit(f, "trajectories/adam/loss", np.ones(5)),
     "trajectory `adam`: its arrays must have one length, found"),
    (lambda f: (f.__delitem__("trajectories/adam"), f.__setitem__("trajectories/adam", np.ones(3))),
     "trajectory `adam` must be a group of 1-D arrays (x, y, loss, step), found a dataset"),
    (lambda f: _edit(f, "trajectories/adam/x", np.ones((3, 2))),
     "trajectory `adam`: `x` must be a 1-D array, found shape (3, 2)"),
    (lambda f: _edit(f, "trajectories/adam/y", np.array([b"a", b"b", b"c"])),
     "trajectory `adam`: `y` holds |S1 values, not real numbers"),
    (lambda f: [f.__delitem__(f"trajectories/adam/{k}") for k in ("y", "loss", "step")],
     "trajectory `adam` has no `y`, `loss`, `step` (it needs x, y, loss, step)"),
    (lambda f: _edit(f, "trajectories/adam/step", np.array([0.0, np.nan, 2.0])),
     "trajectory `adam`: `step` holds NaN/inf"),
    (lambda f: (f.__delitem__("trajectories"), f.__setitem__("trajectories", np.ones(2))),
     "`trajectories` must be a group (one group per path)"),
    (lambda f: f.attrs.__setitem__("explained_variance", "[" * 100000 + "]" * 100000),
     "attribute `explained_variance` is nested too deeply"),
    (lambda f: f.attrs.__setitem__("grid", "[" * 100000 + "]" * 100000),
     "attribute `grid` is nested too deeply"),
    (lambda f: _edit(f, "train_loss", np.ones((3, 4)) * (1 + 1j)),
     "dataset `train_loss` holds complex values; a metric must be real"),
    (lambda f: _edit(f, "xcoordinates", np.linspace(1, -1, 4)),
     "`xcoordinates` must be strictly increasing; point 1 (0.333333) follows 1"),
    (lambda f: _edit(f, "ycoordinates", np.array([-1.0, 0.0, 0.0])),
     "`ycoordinates` must be strictly increasing; point 2 (0) follows 0"),
    (lambda f: _edit(f, "xcoordinates", np.array([-1.0, -0.5, 0.5, 1.0])),
     "`xcoordinates` does not match the recorded grid spec x = -1:1:4: point 1 is -0.5, the "
     "spec gives -0.333333"),
    (lambda f: f.attrs.__setitem__("grid", '{"x": [-1, 1, 5]}'),
     "`xcoordinates` has 4 points, the recorded grid spec x = -1:1:5 has 5"),
    (lambda f: f.attrs.__setitem__("grid", '{"x": [-1, 1, 4], "y": null}'),
     "the file has `ycoordinates`, but its `grid` attribute records a line"),
])
def test_inconsistent_files_are_refused_with_the_reason(tmp_path, edit, words):
    path = _good_file(tmp_path / "s.h5")
    with h5py.File(path, "r+") as f:
        edit(f)
    with pytest.raises(ReadError) as info:
        surface_h5.read(path)
    assert f"{path}: {words}" in str(info.value)
    # a resuming scan refuses it too, before anything is computed
    with pytest.raises(ReadError, match="use --overwrite to start the scan again"):
        surface_h5.create(path, Grid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3)),
                          ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})


def test_a_file_without_a_grid_spec_needs_only_increasing_axes(tmp_path):
    path = _good_file(tmp_path / "s.h5", spec=False)
    with h5py.File(path, "r+") as f:
        _edit(f, "xcoordinates", np.array([-1.0, -0.5, 0.5, 1.0]))
    np.testing.assert_array_equal(surface_h5.read(path).grid.x, [-1.0, -0.5, 0.5, 1.0])


def test_a_deeply_nested_attribute_of_no_meaning_is_shown_not_parsed(tmp_path):
    from click.testing import CliRunner

    from landscape.cli import main

    path = _good_file(tmp_path / "s.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["notes"] = "[" * 100000 + "]" * 100000
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 0, result.output
    assert "notes" in result.output and "[[[[" in result.output


def test_a_bug_in_the_reader_is_not_reported_as_a_damaged_file(tmp_path, monkeypatch):
    from landscape.io import surface_layout

    path = _good_file(tmp_path / "s.h5")

    def buggy(*args, **kwargs):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(surface_layout, "read_trajectories", buggy)
    with pytest.raises(TypeError, match="a bug of ours"):
        surface_h5.read(path)


def test_unknown_datasets_are_kept_and_values_follow_the_done_mask(tmp_path):
    path = _good_file(tmp_path / "s.h5")
    surface_h5.write_points(path, np.array([0, 5]), {"train_loss": np.array([1.0, 2.0])})
    surface_h5.compact(path)
    with h5py.File(path, "r+") as f:
        f["note"] = "made by hand"
        f["extra"] = np.arange(40.0)
        f["train_loss"][0, 1] = 7.0  # a value where `done` says not computed
    got = surface_h5.read(path)
    assert got.others["note"].value == "made by hand"
    assert got.others["extra"].shape == (40,) and got.others["extra"].value is None
    assert got.done.sum() == 2 and np.isnan(got.values["train_loss"][0, 1])
    assert got.done_rule == "mask"


def test_a_trajectory_name_with_a_slash_is_refused_on_writing(tmp_path):
    from landscape.errors import WriteError

    path = _good_file(tmp_path / "s.h5")
    with pytest.raises(WriteError, match="cannot name an HDF5 group"):
        surface_h5.write_trajectory(path, "a/b", x=np.zeros(2), y=np.zeros(2), loss=np.ones(2),
                                    step=np.arange(2))


def test_a_full_disk_is_one_line_when_creating_a_surface_file(full_disk):
    from landscape.errors import WriteError

    fill(full_disk)  # (h5py can crash when the disk fills during a close; here it is full)
    grid = Grid(np.linspace(-1, 1, 40), np.linspace(-1, 1, 40))
    with pytest.raises(WriteError) as info:
        surface_h5.create(full_disk / "s.h5", grid, ["train_loss"], random_plane(PARAMS),
                          {"spec_hash": "x"})
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"cannot write surface file {full_disk}")
    assert "No space left on device" in text
    assert os.listdir(full_disk) == ["filler"]
