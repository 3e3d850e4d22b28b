"""Training that diverges stops at the step where the loss stopped being finite and keeps the
run; training killed with SIGKILL leaves a run directory that loads and scans."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import optax
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.errors import TrainingDiverged
from landscape.io import journal
from landscape.runs import JOURNAL, load_run
from landscape.train_loop import train


def _finite(tree) -> bool:
    import jax

    return all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(tree))


@pytest.mark.parametrize("check_every", [1, 1000])
def test_divergence_stops_at_the_first_nonfinite_loss(small_sine, check_every):
    """check_every=1: caught at the minibatch loss, step exact; 1000: only the records see it."""
    run = train(small_sine, optax.sgd(3.0), steps=60, batch_size=32, record_every=5,
                check_every=check_every)
    assert run.status == "diverged" and run.divergence is not None
    assert run.divergence.kind == ("minibatch" if check_every == 1 else "train")
    assert not np.isfinite(run.divergence.loss)
    steps = run.trajectory.step
    assert len(steps) >= 1 and (steps < run.divergence.step).all()
    assert np.isfinite(run.trajectory.train_loss).all() and _finite(run.trajectory.params)
    last = run.trajectory.params_at(int(steps[-1]))
    assert _finite(run.params)
    for a, b in zip(*(np.asarray(x) for x in (run.params["dense0"]["kernel"],
                                               last["dense0"]["kernel"]))):
        np.testing.assert_array_equal(a, b)
    if check_every == 1:  # the exact step: the losses before it are finite
        losses = []
        train(small_sine, optax.sgd(3.0), steps=run.divergence.step, batch_size=32,
              record_every=1000, check_every=1000,
              callback=lambda step, loss: losses.append(float(loss)))
        assert np.isfinite(losses[:-1]).all() and not np.isfinite(losses[-1])


def test_a_loss_that_is_never_finite_is_an_error(small_sine):
    import dataclasses

    def nan_loss(params, state, batch):
        return np.nan * params["dense0"]["kernel"].sum(), {}

    broken = dataclasses.replace(small_sine, loss=nan_loss)
    with pytest.raises(TrainingDiverged, match="initial parameters"):
        train(broken, optax.sgd(0.1), steps=3)


def test_cli_keeps_a_diverged_run_and_exits_1(tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["train", "--workload", "sine", "--optimizer", "sgd",
                                       "--lr", "30", "--steps", "200", "--record-every", "5",
                                       "--quiet", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    match = re.search(r"sgd diverged at step (\d+) \((minibatch|train) loss (nan|inf|-inf)\); "
                      rf"run kept in {re.escape(str(out / 'sgd'))} with (\d+) records? up to "
                      r"step (\d+)", result.output)
    assert match, result.output
    step, records, last = int(match[1]), int(match[4]), int(match[5])
    assert last < step
    document = json.loads((out / "sgd" / "run.json").read_text())
    assert document["status"] == "diverged" and document["diverged_at_step"] == step
    assert sorted(os.listdir(out / "sgd")) == ["final", "run.json", "trajectory.h5"]
    run = load_run(out / "sgd")
    assert run.status == "diverged" and run.divergence.step == step
    assert len(run.trajectory) == records and int(run.trajectory.step[-1]) == last
    assert np.isfinite(run.trajectory.train_loss).all() and _finite(run.params)


def test_scan_that_trains_on_the_spot_refuses_a_diverged_model(tmp_path):
    # The diverged run's params would be its starting point: scanning them would mislead.
    out = tmp_path / "scan"
    result = CliRunner().invoke(main, ["scan", "--lr", "1e9", "--steps", "30", "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert re.search(r"training `sine` with Adam \(`--lr`=[^)]+\) diverged at step \d+ ",
                     result.output), result.output
    assert not (out / "surface.h5").exists()


def test_a_completed_run_leaves_no_journal(tmp_path):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["train", "--workload", "sine", "--optimizer", "adam",
                                       "--steps", "20", "--record-every", "10", "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(out / "adam")) == ["final", "run.json", "trajectory.h5"]
    assert json.loads((out / "adam" / "run.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_killed_training_leaves_a_run_that_loads_and_scans(tmp_path):
    out = tmp_path / "runs"
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    proc = subprocess.Popen([exe, "train", "--workload", "sine", "--optimizer", "adam",
                             "--steps", "1000000", "--record-every", "20", "--quiet",
                             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    path = out / "adam" / JOURNAL
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(journal.read(path).records) >= 4:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    assert json.loads((out / "adam" / "run.json").read_text())["status"] == "running"
    run = load_run(out / "adam")
    n = len(run.trajectory)
    assert run.status == "running" and n >= 4
    np.testing.assert_array_equal(run.trajectory.step, np.arange(n) * 20)
    np.testing.assert_array_equal(run.params["dense0"]["kernel"],
                                  run.trajectory.params["dense0"]["kernel"][-1])
    assert run.final_metrics["train_loss"] == run.trajectory.train_loss[-1]

    result = CliRunner().invoke(main, ["scan", str(out / "adam"), "--directions", "pca",
                                       "--grid", "5", "--quiet", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["train", "--workload", "sine", "--optimizer", "adam",
                                       "--steps", "5", "--quiet", "--out", str(out)])
    assert result.exit_code == 2 and "already holds a run" in result.output
