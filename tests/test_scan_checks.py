"""`landscape scan` refuses what it would silently ignore or find out only after training, and a
finished scan returns at once (issue #18's scan items; each test fails on the code before)."""

import importlib
import json

import jax

import h5py
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.io import surface_h5

FAST = ["--steps", "5", "--x", "-1:1:3", "--y", "-1:1:3", "--strategy", "vmap", "--quiet"]


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line_error(result, *fragments, code):
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = invoke(["train", "--workload", "sine", "--optimizer", "sgd", "--optimizer", "adam",
                     "--steps", "3", "--record-every", "1", "--quiet", "--out", out])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was trained before the check")

    monkeypatch.setattr(importlib.import_module("landscape.train_loop"), "train", refuse)


def test_interpolation_to_the_run_itself_is_refused(runs, tmp_path):
    one_line_error(invoke(["scan", runs / "sgd", "--directions", "interp", "--to", runs / "sgd",
                           "--quiet", "--out", tmp_path]), "is SOURCE itself", code=2)


def test_a_plane_through_the_same_run_twice_is_refused(runs, tmp_path):
    one_line_error(invoke(["scan", runs / "sgd", "--directions", "interp", "--to", runs / "adam",
                           "--to", runs / "adam", "--quiet", "--out", tmp_path]),
                   "the same run", code=2)


@pytest.mark.parametrize("option, fragment", [
    (["--steps", "5"], "`--steps` trains a model on the spot"),
    (["--lr", "0.5"], "`--lr` trains a model on the spot"),
    (["--workload", "spirals"], "`--workload spirals` differs from the run's workload `sine`"),
])
def test_training_options_beside_a_run_are_refused(runs, tmp_path, option, fragment):
    one_line_error(invoke(["scan", runs / "adam", *option, "--quiet", "--out", tmp_path]),
                   fragment, code=2)


def test_other_arguments_on_an_existing_file_are_refused_before_training(tmp_path, monkeypatch):
    assert invoke(["scan", *FAST, "--out", tmp_path]).exit_code == 0
    monkeypatch.setattr(importlib.import_module("landscape.train_loop"), "train",
                        lambda *a, **k: pytest.fail("trained before the check"))
    one_line_error(invoke(["scan", *FAST, "--seed", "1", "--out", tmp_path]),
                   "made with other arguments", "--overwrite", code=1)


def test_a_finished_scan_returns_at_once(tmp_path, monkeypatch):
    assert invoke(["scan", *FAST, "--out", tmp_path]).exit_code == 0
    before = (tmp_path / "surface.h5").read_bytes()
    (tmp_path / "surface.png").unlink()  # drawn again from the file, still without training
    monkeypatch.setattr(importlib.import_module("landscape.train_loop"), "train",
                        lambda *a, **k: pytest.fail("a finished scan trained again"))
    result = invoke(["scan", *FAST, "--out", tmp_path])
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(tmp_path / "surface.h5"), str(tmp_path / "surface.png")]
    assert (tmp_path / "surface.h5").read_bytes() == before and (tmp_path / "surface.png").exists()


def test_a_resumed_file_missing_train_loss(tmp_path, monkeypatch):
    assert invoke(["scan", *FAST, "--out", tmp_path]).exit_code == 0
    path = tmp_path / "surface.h5"
    with h5py.File(path, "r+") as f:
        del f["train_loss"]
    monkeypatch.setattr(importlib.import_module("landscape.train_loop"), "train",
                        lambda *a, **k: pytest.fail("trained before the check"))
    one_line_error(invoke(["scan", *FAST, "--out", tmp_path]), "lacks the dataset `train_loss`",
                   "--overwrite", code=1)


def test_a_long_scan_records_the_probed_strategy(tmp_path, monkeypatch):
    from landscape.engine import strategy

    monkeypatch.setattr(strategy, "PROBE_WORTH_S", 0.0)  # this scan takes a second: probe anyway
    result = invoke(["scan", "--steps", "5", "--x", "-1:1:16", "--y", "-1:1:16", "--chunk", "8",
                     "--quiet", "--out", tmp_path])
    assert result.exit_code == 0, result.output
    plan = json.loads(surface_h5.read(tmp_path / "surface.h5").attrs["strategy"])
    assert plan["source"] in ("probe", "cache") and plan["strategy"] in ("vmap", "map")
    assert plan["chunk"] > 0 and plan["devices"] in (1, jax.device_count())
    if plan["source"] == "probe":  # every candidate was timed
        assert set(plan["rates"]) == {f"{s}/{n}" for s in ("vmap", "map")
                                      for n in {1, jax.device_count()}}
    info = invoke(["info", tmp_path / "surface.h5"]).output
    evaluated = next(line for line in info.splitlines() if line.startswith("evaluated"))
    assert plan["strategy"] in evaluated and ("probe" in evaluated or "earlier probe" in evaluated)


def test_samples_scan_a_fixed_recorded_subset(tmp_path):
    args = ["scan", "--workload", "digits", "--steps", "2", "--x", "-1:1:3", "--y", "-1:1:2",
            "--metrics", "loss,acc", "--samples", "100", "--quiet"]
    assert invoke([*args, "--out", tmp_path / "a"]).exit_code == 0
    assert invoke([*args, "--out", tmp_path / "b"]).exit_code == 0
    a = surface_h5.read(tmp_path / "a" / "surface.h5")
    b = surface_h5.read(tmp_path / "b" / "surface.h5")
    assert a.values["train_loss"].tobytes() == b.values["train_loss"].tobytes()
    # Accuracy over 100 samples: a multiple of 1 %.
    acc = a.values["train_acc"]
    assert abs(acc * 1 - (acc * 1).round()).max() < 1e-4
    assert '"num": 100' in a.attrs["samples"] and '"stratified": true' in a.attrs["samples"]
    one_line_error(invoke([*args[:-2], "100000", "--quiet", "--out", tmp_path / "c"]),
                   "--samples", "(=100000) must be at most the 1437", code=2)
