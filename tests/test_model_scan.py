"""`landscape.scan_model`: the pipeline of `landscape scan`, from Python — the same file as the
command, the checks before training, a finished file returned as it is, the estimate line."""

import os

import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape.cli import main
from landscape.engine import Plan
from landscape.errors import InputError, ResumeMismatch
from landscape.grid import Grid
from landscape.io import surface_h5
from landscape.model_scan import ModelToTrain, adam_model, estimate_line, scan_model
from landscape.scan import finished_surface


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(main, ["train", "--workload", "sine", "--optimizer", "sgd",
                                       "--optimizer", "adam", "--steps", "20", "--record-every",
                                       "5", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _cli(args, out):
    result = CliRunner().invoke(main, ["scan", *map(str, args), "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("kind", ["pca", "interp"])
def test_a_run_scanned_from_python_is_the_file_of_the_command(runs, tmp_path, kind):
    """Same arguments, same file: the default (covering) grid, the values, the path and the
    spec the file is resumed under."""
    to = [runs / "sgd"] if kind == "interp" else []
    _cli([runs / "adam", "--directions", kind, *sum((["--to", t] for t in to), []),
          "--grid", "5"], tmp_path / "cli")
    model, run = landscape.open_run(str(runs / "adam"))
    result = landscape.scan_model(model, run, out=tmp_path / "py", kind=kind,
                                  to=[str(t) for t in to], num=5)
    assert result.files == [str(tmp_path / "py" / "surface.h5"),
                            str(tmp_path / "py" / "surface.png")]
    assert not result.finished and all(os.path.exists(f) for f in result.files)
    a, b = surface_h5.read(tmp_path / "cli" / "surface.h5"), result.surface
    np.testing.assert_array_equal(a.grid.x, b.grid.x)
    np.testing.assert_array_equal(a.grid.y, b.grid.y)
    np.testing.assert_array_equal(a.values["train_loss"], b.values["train_loss"])
    np.testing.assert_array_equal(a.trajectories["adam"]["x"], b.trajectories["adam"]["x"])
    assert a.attrs["spec_hash"] == b.attrs["spec_hash"]
    assert result.checks and all(isinstance(line, str) for line in result.checks)


def test_a_model_to_train_is_checked_first_and_a_finished_file_returned(tmp_path):
    trained = []

    def count_steps():
        trained.append(1)

    model = adam_model("sine", steps=3, lr=1e-2, seed=0, on_step=count_steps)
    grid = Grid.from_specs("-1:1:3", "-1:1:3")
    result = scan_model(model, out=tmp_path, grid=grid, strategy="vmap")
    assert len(trained) == 3 and not result.finished
    # the same scan as `landscape scan --steps 3 --x -1:1:3` (trained on the spot alike)
    _cli(["--steps", "3", "--lr", "0.01", "--x", "-1:1:3", "--strategy", "vmap"],
         tmp_path / "cli")
    cli = surface_h5.read(tmp_path / "cli" / "surface.h5")
    np.testing.assert_array_equal(cli.values["train_loss"], result.surface.values["train_loss"])
    assert cli.attrs["spec_hash"] == result.surface.attrs["spec_hash"]

    def refuse(precision):
        raise AssertionError("trained before the checks")

    before = (tmp_path / "surface.h5").read_bytes()
    (tmp_path / "surface.png").unlink()
    unchanged = ModelToTrain(model.workload, model.description, refuse)
    again = scan_model(unchanged, out=tmp_path, grid=grid, strategy="vmap")
    assert again.finished and os.path.exists(tmp_path / "surface.png")
    assert (tmp_path / "surface.h5").read_bytes() == before
    other = ModelToTrain(model.workload, {**model.description, "seed": 1}, refuse)
    with pytest.raises(ResumeMismatch, match="made with other arguments"):
        scan_model(other, out=tmp_path, grid=grid, strategy="vmap")
    with pytest.raises(InputError, match="`samples`"):
        scan_model(other, out=tmp_path / "b", grid=grid, samples=10**6)
    with pytest.raises(InputError, match="needs a trained model and its run"):
        scan_model(other, out=tmp_path / "b", kind="pca")


def test_finished_surface_and_a_finished_file_left_as_it_is(tmp_path):
    """`finished_surface` says whether a scan has anything left to do, and `scan_surface` on a
    finished file neither computes nor rewrites it."""
    from landscape.scan import scan_spec

    model = landscape.trained_model("sine", steps=2, lr=1e-2)
    objective = model.workload.objective(model.state)
    plane = landscape.random_plane(model.params, seed=0)
    grid = Grid.from_specs("-1:1:3", "-1:1:2")
    path = tmp_path / "s.h5"
    spec = scan_spec({"p": 1}, grid, metrics=["loss"], splits=["train"], precision="highest")
    assert finished_surface(path, spec, ["train_loss"]) is None  # no file yet
    landscape.scan_surface(objective, plane, grid, out=path, provenance={"p": 1})
    before = path.read_bytes()
    surface = finished_surface(path, spec, ["train_loss"])
    assert surface is not None and surface.done.all()
    with pytest.raises(Exception, match="lacks the dataset `train_acc`"):
        finished_surface(path, spec, ["train_loss", "train_acc"])
    calls = []
    landscape.scan_surface(objective, plane, grid, out=path, provenance={"p": 1},
                           on_plan=calls.append)
    assert calls == [] and path.read_bytes() == before


def test_the_estimate_line():
    from landscape.engine.strategy import label

    plan = Plan(strategy="map", chunk=16, source="probe", devices=2,
                rates={label("map", 2): 1 / 0.31})
    assert estimate_line(2601, plan) == ("2,601 points × 0.31 s ≈ 13 min on 2 devices "
                                         "(map, chunk 16, probe)")
    assert estimate_line(10, plan).startswith("10 points × 0.31 s ≈ 3 s on 2 devices")
