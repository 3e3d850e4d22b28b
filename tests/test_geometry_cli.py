"""``landscape hessian RUN``, ``landscape sharpness``, ``landscape connect`` and what
``landscape train --record-opt-state --track-sharpness`` records: messages, files, and one-line
errors for bad input. The numbers themselves are checked against references in
test_geometry*.py; here the commands must write what they say, consistently with each other."""

import csv
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.data.sine import sine
from landscape.io import curve_h5
from landscape.runs import load_run

WORKLOAD = "test_geometry_cli:tiny_sine"  # this module (pytest puts tests/ on sys.path)


def tiny_sine():
    return sine(num_train=200, num_test=20, hidden=(16, 16))


def invoke(*args):
    return CliRunner().invoke(main, [*args])


def one_error_line(result, message):
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """sgd and adam, 30 steps recorded every 10, optimizer state and λmax every 5 steps."""
    out = tmp_path_factory.mktemp("runs")
    result = invoke("train", "--workload", WORKLOAD, "--optimizer", "sgd", "--optimizer", "adam",
                    "--steps", "30", "--record-every", "10", "--batch-size", "50",
                    "--record-opt-state", "--track-sharpness", "5", "--sharpness-steps", "8",
                    "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    seeded = tmp_path_factory.mktemp("seed1")  # another minimum of the same workload
    result = invoke("train", "--workload", WORKLOAD, "--optimizer", "adam", "--steps", "30",
                    "--record-every", "30", "--seed", "1", "--out", str(seeded), "--quiet")
    assert result.exit_code == 0, result.output
    return {"sgd": str(out / "sgd"), "adam": str(out / "adam"), "adam1": str(seeded / "adam")}


def test_train_records_optimizer_state_and_tracked_sharpness(runs):
    with h5py.File(os.path.join(runs["adam"], "trajectory.h5")) as handle:
        assert handle["opt_state/0/nu/dense0/kernel"].shape == (4, 1, 16)  # steps 0,10,20,30
        assert handle["opt_state/0/count"][()].tolist() == [0, 10, 20, 30]
        np.testing.assert_array_equal(handle["sharpness/step"][()], [0, 5, 10, 15, 20, 25, 30])
        assert "Lanczos" in handle["sharpness"].attrs["what"]
    run = load_run(runs["sgd"])
    assert run.trajectory.sharpness.lambda_max.shape == (7,)
    assert np.all(run.trajectory.sharpness.lambda_max > 0)


def test_hessian_of_a_run_probes_its_final_model(runs, tmp_path):
    result = invoke("hessian", runs["adam"], "--workload", WORKLOAD, "--out", str(tmp_path),
                    "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "hessian.json").read_text())
    assert report["model"]["run"] == runs["adam"] and report["model"]["steps"] == 30
    assert set(report["timings"]) == {"load_s", "eigenvalues_s"}
    assert result.output.splitlines()[-1] == str(tmp_path / "hessian.json")
    assert report["eigenvalues"]["top"]["converged"] == [True]


def test_hessian_along_runs_writes_the_table_and_the_figure(runs, tmp_path):
    result = invoke("hessian", runs["sgd"], runs["adam"], "--workload", WORKLOAD, "--steps", "all",
                    "--bottom-k", "1", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("sgd: λmax ") and "(threshold 2/η = " in lines[0]
    assert lines[1].startswith("adam: λmax ") and "preconditioned λmax max " in lines[1]
    assert lines[2:] == [str(tmp_path / n) for n in ("curvature.json", "curvature.csv",
                                                     "curvature.png")]
    with open(tmp_path / "curvature.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["optimizer"], r["step"]) for r in rows] == [
        (name, str(s)) for name in ("sgd", "adam") for s in (0, 10, 20, 30)]
    for r in rows:
        assert float(r["lambda_max"]) >= float(r["lambda_min"])
        assert r["trace"] == "" and r["converged"] == "True"  # no --trace: left empty
    adam = [r for r in rows if r["optimizer"] == "adam"]
    assert adam[0]["preconditioned_max"] == ""  # no preconditioner before the first step
    assert all(float(r["preconditioned_max"]) > 0 for r in adam[1:])
    assert adam[0]["threshold_formula"] == "(2+2β1)/((1−β1)η)"
    report = json.loads((tmp_path / "curvature.json").read_text())
    assert [r["label"] for r in report["runs"]] == ["sgd", "adam"]
    assert report["runs"][1]["preconditioned"] == "yes"
    assert report["precision"] == "highest" and {r["precision"] for r in rows} == {"highest"}
    assert (tmp_path / "curvature.png").stat().st_size > 20_000


@pytest.mark.parametrize("args, message", [
    (["--steps", "7"], "Invalid value for --steps: step 7 was not recorded in {sgd} "
                       "(recorded: 0, 10, 20, 30; every 10 steps, 0..30)"),
    (["--steps", "ten"], "Invalid value for --steps: (=ten) with RUN must be `all` or a "
                         "comma-separated list of recorded steps"),
    (["--lr", "0.1"], "`--lr` trains a model on the spot; it does not apply to RUN"),
    (["--steps", "all", "--density"], "`--density` probes one model"),
    (["--steps", "all", "--top-k", "2"], "`--top-k` probes one model"),
])
def test_hessian_of_runs_refuses_bad_input_in_one_line(runs, tmp_path, args, message):
    result = invoke("hessian", runs["sgd"], "--workload", WORKLOAD, *args, "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 2, result.output
    one_error_line(result, message.format(**runs))


def test_hessian_without_run_takes_a_number_of_steps(tmp_path):
    result = invoke("hessian", "--steps", "all", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 2
    one_error_line(result, "Invalid value for --steps: (=all) must be a positive number of "
                           "training steps")


def test_sharpness_writes_one_table_per_run(runs, tmp_path):
    result = invoke("sharpness", runs["sgd"], runs["adam"], "--workload", WORKLOAD, "--epsilon",
                    "1e-3", "--samples", "8",
                    "--ascent-steps", "5", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-2:] == [str(tmp_path / "sharpness.json"),
                                               str(tmp_path / "sharpness.csv")]
    with open(tmp_path / "sharpness.csv") as handle:
        rows = list(csv.DictReader(handle))
    measures = ["epsilon_sharpness_0.001", "adaptive_worst_linf", "adaptive_worst_l2",
                "adaptive_average", "lambda_max", "trace"]
    assert [(r["run"], r["measure"]) for r in rows] == [
        (run, m) for run in (runs["sgd"], runs["adam"]) for m in measures]
    for r in rows:
        assert np.isfinite(float(r["value"])) and r["method"] and r["definition"]
    worst = [float(r["value"]) for r in rows if r["measure"].startswith(("epsilon", "adaptive_w"))]
    assert min(worst) >= 0  # the ascent starts at δ = 0 and keeps the largest loss
    report = json.loads((tmp_path / "sharpness.json").read_text())
    assert report["precision"] == "highest" and {r["precision"] for r in rows} == {"highest"}
    entry = report["runs"][0]["measures"]["epsilon_sharpness_0.001"]
    assert entry["value"] == pytest.approx(
        100 * (entry["perturbed_loss"] - entry["base_loss"]) / (1 + entry["base_loss"]))


def test_connect_writes_barriers_curve_and_figure(runs, tmp_path):
    result = invoke("connect", runs["adam"], runs["adam1"], "--workload", WORKLOAD, "--points",
                    "5", "--curve-steps", "20", "--batch-size", "50", "--out", str(tmp_path),
                    "--quiet")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("linear barrier: ") and lines[1].startswith("bezier barrier: ")
    assert lines[2:] == [str(tmp_path / n) for n in ("connect.json", "connect.csv", "curve.h5",
                                                     "connect.png")]
    report = json.loads((tmp_path / "connect.json").read_text())
    with open(tmp_path / "connect.csv") as handle:
        rows = list(csv.DictReader(handle))
    loss = np.array([float(r["linear_train_loss"]) for r in rows])
    assert report["barriers"]["linear"]["train_loss"] == pytest.approx(
        loss.max() - (loss[0] + loss[-1]) / 2)
    curve = curve_h5.read(tmp_path / "curve.h5")
    assert curve.t.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(curve.linear["train_loss"], loss)
    assert curve.curve_loss.shape == (20,) and set(curve.bezier) == set(curve.linear)
    np.testing.assert_allclose(curve.plane["bezier_y"], [0, 0.75, 1, 0.75, 0])
    assert curve.provenance["settings"]["curve_steps"] == 20
    assert report["settings"]["precision"] == curve.provenance["settings"]["precision"] == "highest"
    assert (tmp_path / "connect.png").stat().st_size > 20_000


def test_connect_refuses_runs_of_other_workloads_and_a_run_with_itself(runs, tmp_path):
    other = tmp_path / "other"  # what run.json says is what counts, checked before loading
    other.mkdir()
    with open(os.path.join(runs["sgd"], "run.json")) as handle:
        document = json.load(handle)
    document.pop("workload_source")
    document["workload"] = "spirals"
    (other / "run.json").write_text(json.dumps(document))
    result = invoke("connect", runs["adam"], str(other), "--workload", WORKLOAD,
                    "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    one_error_line(result, f"the runs are of different workloads ('{WORKLOAD}' in "
                           f"{runs['adam']}, 'spirals' in {other})")
    result = invoke("connect", runs["adam"], runs["adam"], "--out", str(tmp_path / "o"))
    assert result.exit_code == 2
    one_error_line(result, "RUN_A and RUN_B are the same run")


def test_connect_into_an_out_in_use_stops_at_once(runs, tmp_path):
    """Issue 25: two connects into one --out both exited 0, the last writer winning file by
    file. Like scan, train and compare, connect holds the lock of its output."""
    from landscape.io.lock import exclusive

    with exclusive(tmp_path / "curve.h5", what="connect"):  # as another connect would
        result = invoke("connect", runs["sgd"], runs["adam"], "--workload", WORKLOAD,
                        "--points", "3", "--curve-steps", "0", "--out", str(tmp_path), "--quiet")
    assert result.exit_code == 1
    one_error_line(result, f"{tmp_path / 'curve.h5'} is in use by another connect (pid "
                           f"{os.getpid()}); wait for it to finish or choose another --out")
    assert os.listdir(tmp_path) == []


def test_connect_as_a_real_subprocess(runs, tmp_path):
    """As a user runs it (one device per core): the summary, then the paths, on stdout."""
    here = os.path.dirname(__file__)
    env = {**os.environ, "XLA_FLAGS": "",
           "PYTHONPATH": here + os.pathsep + os.environ.get("PYTHONPATH", "")}
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    proc = subprocess.run([exe, "connect", runs["sgd"], runs["adam"], "--workload", WORKLOAD,
                           "--points", "3", "--curve-steps", "0", "--out", "o", "-q"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("linear barrier: train_loss ") and len(lines) == 5
    curve = curve_h5.read(tmp_path / "o" / "curve.h5")
    assert curve.bezier is None and curve.control is None
