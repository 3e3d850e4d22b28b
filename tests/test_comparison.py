"""`landscape.compare_on_function` and `compare_on_workload`: the pipelines of `landscape
compare`, from Python — the same files as the command, and their checks."""

import json
import os

import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape.cli import main
from landscape.comparison import reference_run
from landscape.errors import InputError
from landscape.io import surface_h5

OUTPUTS = ["surface.h5", "summary.csv", "summary.json", "compare.png", "surface.vts"]


def _same_files(a, b):
    sa, sb = surface_h5.read(a / "surface.h5"), surface_h5.read(b / "surface.h5")
    np.testing.assert_array_equal(sa.grid.x, sb.grid.x)
    np.testing.assert_array_equal(sa.grid.y, sb.grid.y)
    np.testing.assert_array_equal(sa.values["train_loss"], sb.values["train_loss"])
    assert sorted(sa.trajectories) == sorted(sb.trajectories)
    assert (a / "summary.csv").read_text() == (b / "summary.csv").read_text()
    assert json.loads((a / "summary.json").read_text()) == json.loads(
        (b / "summary.json").read_text())


def test_a_function_compared_from_python_is_the_command(tmp_path):
    args = ["--function", "himmelblau", "--optimizer", "sgd", "--optimizer", "adam",
            "--steps", "30", "--grid", "11", "--lr", "adam=0.05"]
    result = CliRunner().invoke(main, ["compare", *args, "-q", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    done = []
    py = landscape.compare_on_function("himmelblau", out=tmp_path / "py",
                                       optimizers=["sgd", "adam"], rates={"adam": 0.05},
                                       steps=30, num=11, on_progress=lambda *n: done.append(n))
    assert done == [(1, 2), (2, 2)]
    assert [os.path.basename(f) for f in py.files][:5] == OUTPUTS
    assert [row["optimizer"] for row in py.rows] == ["sgd", "adam"]
    assert py.table.splitlines()[0].startswith("optimizer")
    _same_files(tmp_path / "cli", tmp_path / "py")
    with pytest.raises(InputError, match="`lr` .* not compared"):
        landscape.compare_on_function(out=tmp_path / "x", optimizers=["sgd"], rates={"adam": 1})
    with pytest.raises(InputError, match="`start`"):
        landscape.compare_on_function("rosenbrock", out=tmp_path / "x", start=(1e30, 1e30))


def test_a_workload_compared_from_python_is_the_command(tmp_path):
    args = ["--workload", "sine", "--optimizer", "sgd", "--optimizer", "adam", "--steps", "8",
            "--record-every", "2", "--batch-size", "32", "--grid", "5"]
    result = CliRunner().invoke(main, ["compare", *args, "-q", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    trained, warnings = [], []
    py = landscape.compare_on_workload(
        "sine", out=tmp_path / "py", optimizers=["sgd", "adam"], steps=8, record_every=2,
        batch_size=10**6, num=5, on_training=lambda *a: trained.append(a),
        on_warning=lambda text, param: warnings.append((text, param)))
    assert trained[-1] == ("adam", 8, 8) and len(trained) == 16
    assert warnings[0][1] == "batch_size" and "`batch_size` (=1000000)" in warnings[0][0]
    assert py.files[:2] == [str(tmp_path / "py" / "runs" / n) for n in ("sgd", "adam")]
    # the whole training set per step differs from the command's 32: another run
    again = landscape.compare_on_workload("sine", out=tmp_path / "py2",
                                          optimizers=["sgd", "adam"], steps=8, record_every=2,
                                          batch_size=32, num=5)
    _same_files(tmp_path / "cli", tmp_path / "py2")
    assert again.table == landscape.compare_on_workload(
        "sine", out=tmp_path / "py2", optimizers=["sgd", "adam"], steps=8, record_every=2,
        batch_size=32, num=5, on_training=lambda *a: pytest.fail("trained again")).table
    with pytest.raises(InputError, match="holds a run made with other arguments"):
        landscape.compare_on_workload("sine", out=tmp_path / "py2", optimizers=["sgd", "adam"],
                                      steps=9, record_every=2, batch_size=32, num=5)


def test_the_reference_of_a_comparison():
    assert reference_run(None, ["sgd", "adam"]) == "sgd"
    assert reference_run("init", ["sgd", "adam"]) is None
    assert reference_run("final:adam", ["sgd", "adam"]) == "adam"
    with pytest.raises(InputError, match="`reference` \\(=final:x\\) must be init or final:NAME"):
        reference_run("final:x", ["sgd"])
