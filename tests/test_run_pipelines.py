"""The pipelines behind ``landscape train``, ``sharpness`` and ``connect``, called from Python:
``landscape.train_runs``, ``landscape.sharpness_report``, ``landscape.connect_runs``. They write
what the commands write (the commands are one call to them), take progress through callbacks,
and refuse what the commands refuse, with typed errors."""

import json
import os

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape.cli import main
from landscape.connectivity import check_same_workload
from landscape.errors import FileInUse, InputError
from landscape.io import curve_h5
from landscape.train_loop import OptimizerSpec
from landscape.training import divergence_note, run_summary

WORKLOAD = "test_run_pipelines:tiny_sine"  # this module (pytest puts tests/ on sys.path)


def tiny_sine():
    from landscape.data.sine import sine

    return sine(num_train=40, num_test=10, hidden=(4,))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """sgd at the suite's default rate and adam at a rate of its own, 6 steps, from Python."""
    out = tmp_path_factory.mktemp("runs")
    events = []
    trained = landscape.train_runs(
        WORKLOAD, ["sgd", OptimizerSpec("adam", 0.01)], out, steps=6, batch_size=20,
        record_every=3, on_run=lambda name: events.append(("run", name)),
        on_step=lambda step, loss: events.append(("step", step)),
        on_record=lambda metrics: events.append(("record", metrics["step"])))
    return out, trained, events


def test_train_runs_makes_run_directories_that_open_run_loads(runs):
    out, trained, events = runs
    assert [run.path for run in trained] == [str(out / "sgd"), str(out / "adam")]
    for run in trained:
        model, loaded = landscape.open_run(run.path, workload=WORKLOAD)
        assert loaded.status == "complete" and loaded.trajectory.step.tolist() == [0, 3, 6]
        for left, right in zip(jax_leaves(model.params), jax_leaves(run.params)):
            np.testing.assert_array_equal(left, right)
        assert model.description["workload"] == WORKLOAD
    document = json.loads((out / "adam" / "run.json").read_text())
    assert document["optimizer"]["learning_rate"] == 0.01  # its own rate
    assert document["workload_source"] == WORKLOAD and document["batch_size"] == 20
    sgd = json.loads((out / "sgd" / "run.json").read_text())["optimizer"]["learning_rate"]
    import optimizers

    assert sgd == optimizers.default_learning_rate("sgd")
    steps = [value for kind, value in events if kind == "step"]
    assert [e for e in events if e[0] == "run"] == [("run", "sgd"), ("run", "adam")]
    assert steps == [1, 2, 3, 4, 5, 6] * 2
    assert [v for kind, v in events if kind == "record"] == [0, 3, 6] * 2
    assert run_summary(trained[1]).startswith("adam: step 6, epoch 3, train_loss ")
    assert divergence_note(trained[1]) is None
    # the same initial params for both optimizers
    first = [landscape.load_run(run.path).params_at(0) for run in trained]
    for left, right in zip(*map(jax_leaves, first)):
        np.testing.assert_array_equal(left, right)


def test_train_runs_refuses_a_taken_directory_and_repeated_optimizers(runs, tmp_path):
    out, _, _ = runs
    with pytest.raises(InputError, match="already holds a run; choose another `out`") as info:
        landscape.train_runs(WORKLOAD, ["sgd"], out, steps=1)
    assert info.value.param == ("out", "overwrite")
    with pytest.raises(InputError, match="must name each optimizer once"):
        landscape.train_runs(WORKLOAD, ["sgd", OptimizerSpec("sgd", 0.1)], tmp_path, steps=1)
    with pytest.raises(InputError, match="`steps` \\(=0\\)"):
        landscape.train_runs(WORKLOAD, ["sgd"], tmp_path, steps=0)
    assert os.listdir(tmp_path) == []  # refused before anything was written


def test_train_runs_says_when_the_batch_is_cut_and_replaces_with_overwrite(tmp_path):
    cuts = []
    (run,) = landscape.train_runs(WORKLOAD, ["adam"], tmp_path, steps=2, batch_size=1000,
                                  record_every=2, on_batch_cut=lambda *cut: cuts.append(cut))
    assert cuts == [(1000, 40)] and run.batch_size == 40
    (again,) = landscape.train_runs(WORKLOAD, ["adam"], tmp_path, steps=3, record_every=3,
                                    batch_size=40, overwrite=True)
    assert landscape.load_run(again.path).num_steps == 3


def test_sharpness_report_writes_what_the_command_writes(runs, tmp_path):
    out, trained, _ = runs
    paths = [run.path for run in trained]
    settings = dict(epsilons=(1e-3,), ascent_steps=3, samples=4, seed=2)
    models = [model for model, _ in landscape.open_runs(paths, workload=WORKLOAD)]
    measured = []
    report = landscape.sharpness_report(models, tmp_path / "api", **settings,
                                        on_measure=measured.append)
    assert report.paths == [str(tmp_path / "api" / n) for n in ("sharpness.json",
                                                                "sharpness.csv")]
    assert measured == list(report.runs[0]["measures"]) * 2 and len(measured) == 12
    assert [(r["run"], r["measure"]) for r in report.rows][:2] == [
        (paths[0], "epsilon_sharpness_0.001"), (paths[0], "adaptive_worst_linf")]
    result = CliRunner().invoke(main, [
        "sharpness", *paths, "--workload", WORKLOAD, "--epsilon", "1e-3", "--ascent-steps", "3",
        "--samples", "4", "--seed", "2", "--out", str(tmp_path / "cli"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:-2] == report.lines()
    ours = json.loads((tmp_path / "api" / "sharpness.json").read_text())
    theirs = json.loads((tmp_path / "cli" / "sharpness.json").read_text())
    for run in (ours, theirs):
        for entry in run["runs"]:
            entry.pop("seconds")
    assert ours == theirs
    assert ((tmp_path / "api" / "sharpness.csv").read_text()
            == (tmp_path / "cli" / "sharpness.csv").read_text())
    alone = landscape.sharpness_report(models[:1], **settings)  # no out: numbers only
    assert alone.paths == [] and not (tmp_path / "sharpness.json").exists()
    assert [(r["measure"], r["value"]) for r in alone.rows] == [
        (r["measure"], r["value"]) for r in report.rows[:6]]


def test_connect_runs_writes_the_curve_file_of_the_command(runs, tmp_path):
    out, trained, _ = runs
    (a, _), (b, _) = landscape.open_runs([run.path for run in trained], workload=WORKLOAD)
    stages = []
    connection = landscape.connect_runs(a, b, tmp_path / "api", points=3, curve_steps=4,
                                        batch_size=20, seed=1,
                                        on_progress=lambda *stage: stages.append(stage))
    assert stages == [("curve", i) for i in range(1, 5)] + [
        (path, i) for path in ("linear", "bezier") for i in (1, 2, 3)]
    assert connection.paths == [str(tmp_path / "api" / n) for n in (
        "connect.json", "connect.csv", "curve.h5", "connect.png")]
    assert connection.t.tolist() == [0.0, 0.5, 1.0] and connection.curve_loss.shape == (4,)
    assert set(connection.barriers) == {"linear", "bezier"}
    result = CliRunner().invoke(main, [
        "connect", trained[0].path, trained[1].path, "--workload", WORKLOAD, "--points", "3",
        "--curve-steps", "4", "--batch-size", "20", "--seed", "1", "--out", str(tmp_path / "cli"),
        "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[:2] == connection.barrier_lines()
    ours, theirs = (curve_h5.read(tmp_path / name / "curve.h5") for name in ("api", "cli"))
    for path in ("linear", "bezier"):
        for metric, values in getattr(ours, path).items():
            np.testing.assert_array_equal(values, getattr(theirs, path)[metric])
    np.testing.assert_array_equal(ours.curve_loss, theirs.curve_loss)
    for left, right in zip(*(jax_leaves(c.control) for c in (ours, theirs))):
        np.testing.assert_array_equal(left, right)
    assert ours.provenance == theirs.provenance
    with h5py.File(tmp_path / "api" / "curve.h5") as handle:
        assert handle.attrs["curve"] == "quadratic-bezier"
    assert ((tmp_path / "api" / "connect.csv").read_text()
            == (tmp_path / "cli" / "connect.csv").read_text())


def test_connect_runs_refuses_other_workloads_and_an_out_in_use(runs, tmp_path):
    from landscape.io.lock import exclusive

    out, trained, _ = runs
    (a, _), (b, _) = landscape.open_runs([run.path for run in trained], workload=WORKLOAD)
    other = landscape.ModelSource(b.workload, b.params, b.state, b.train_loss,
                                  {**b.description, "workload": "sine"})
    with pytest.raises(InputError, match="different workloads"):
        landscape.connect_runs(a, other, tmp_path, points=3, curve_steps=0)
    with pytest.raises(InputError, match="`splits`"):
        landscape.connect_runs(a, b, tmp_path, points=3, curve_steps=0, splits=("val",))
    with exclusive(tmp_path / "curve.h5", what="connect"), pytest.raises(FileInUse):
        landscape.connect_runs(a, b, tmp_path, points=3, curve_steps=0)
    assert os.listdir(tmp_path) == []
    spirals = tmp_path / "spirals"
    spirals.mkdir()
    (spirals / "run.json").write_text(json.dumps({"workload": "spirals"}))
    with pytest.raises(InputError, match=f"different workloads \\('{WORKLOAD}' in "):
        check_same_workload(trained[0].path, spirals)
    check_same_workload(trained[0].path, trained[1].path)


def jax_leaves(tree):
    import jax

    return jax.tree.leaves(tree)
