"""``landscape compare``: every optimizer on Rosenbrock (each stored path equals a plain optax
loop), three optimizers on a small network (one common plane, residuals, run directories reused),
the outputs (surface file, figure, VTK files opened in ParaView, summary CSV/JSON), the lock on
OUT/surface.h5 held over every write, and one-line errors for bad input."""

import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap

import h5py
import jax
import numpy as np
import optax
import pytest
from click.testing import CliRunner
from jax.flatten_util import ravel_pytree

import optimizers
from landscape.cli import main
from landscape.data.functions import get_function
from landscape.errors import FileInUse
from landscape.io import surface_h5
from landscape.io import vtk as vtk_io
from landscape.io.lock import check_free, exclusive, lock_path
from landscape.io.palette import trajectory_rgb
from test_compare import plain_loop

STEPS = 100
NETWORK = ("sgd", "adam", "rangerlars")


def tiny_spirals():
    """The spirals task, small enough to train three times in a few seconds."""
    from landscape.data.spirals import spirals

    return spirals(num_train=200, num_test=100, hidden=(16, 16))


def invoke(*args):
    return CliRunner().invoke(main, ["compare", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def rosenbrock_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("rosenbrock")
    result = invoke("--function", "rosenbrock", "--optimizer", "all", "--start", "-1.5,2",
                    "--steps", str(STEPS), "--grid", "41", "--out", str(out), "-q")
    assert result.exit_code == 0, result.output
    return out, result


@pytest.fixture(scope="module")
def network_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("network")
    args = ["--workload", "test_cli_compare:tiny_spirals",
            *sum((["--optimizer", n] for n in NETWORK), []), "--steps", "40",
            "--record-every", "4", "--batch-size", "50", "--grid", "9", "--eval-batch-size", "60",
            "--out", str(out), "-q"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return out, result, args


def _plain_loop(name, start, steps):
    """Optimizer ``name`` with its tuned Rosenbrock setting, in the optax tutorial's loop."""
    setting = optimizers.ROSENBROCK[name]
    rate = (optax.cosine_decay_schedule(setting.learning_rate, steps) if setting.cosine_decay
            else setting.learning_rate)
    transformation = optimizers.get(name, learning_rate=rate, **setting.hyperparams)
    return plain_loop(transformation, get_function("rosenbrock").fn, start, steps)


@pytest.mark.parametrize("name", optimizers.names())
def test_each_stored_rosenbrock_path_is_the_optimizer_run_directly(rosenbrock_out, name):
    out, _ = rosenbrock_out
    with h5py.File(out / "surface.h5") as f:
        entry = {key: f[f"trajectories/{name}/{key}"][()] for key in ("x", "y", "loss", "step")}
    stored = np.stack([entry["x"], entry["y"]], axis=1)
    direct = _plain_loop(name, (-1.5, 2.0), STEPS)
    # Rounding differs between one compiled scan and a loop of compiled steps; on Rosenbrock
    # some optimizers (LARS at lr 20) are chaotic, so the bound at each step is how far a direct
    # run started one float32 ulp away has drifted by then.
    nudged = _plain_loop(name, (np.nextafter(np.float32(-1.5), np.float32(0)), 2.0), STEPS)
    bound = 1e-5 + np.abs(nudged - direct).max(axis=1)
    assert (np.abs(stored - direct).max(axis=1) <= bound).all()
    x, y = direct[:, 0], direct[:, 1]
    np.testing.assert_allclose(entry["loss"], (1 - x) ** 2 + 100 * (y - x**2) ** 2,
                               rtol=1e-4, atol=1e-5 + 1e3 * bound.max())
    np.testing.assert_array_equal(entry["step"], np.arange(STEPS + 1))


def test_rosenbrock_outputs_figure_vtk_and_summary(rosenbrock_out):
    out, result = rosenbrock_out
    names = optimizers.names()
    printed = result.stdout.splitlines()
    expected = ["surface.h5", "summary.csv", "summary.json", "compare.png", "surface.vts",
                *[f"surface_{n}.vtp" for n in names], "surface.pvd", "surface_paraview.py",
                "surface.html"]
    assert printed == [str(out / name) for name in expected]
    table = result.stderr.splitlines()
    assert table[0].split()[:4] == ["optimizer", "lr", "steps", "final"]
    assert "steps to 0.0001" in table[0] and "residual" not in table[0]
    assert [line.split()[0] for line in table[1:]] == list(names)

    surface = surface_h5.read(out / "surface.h5")
    assert surface.grid.shape == (41, 41) and surface.done.all()
    assert (surface.grid.x[0], surface.grid.x[-1], surface.grid.y[0], surface.grid.y[-1]) == (
        -2.0, 2.0, -1.0, 3.0)
    xx, yy = np.meshgrid(surface.grid.x, surface.grid.y)
    np.testing.assert_allclose(surface.values["train_loss"],
                               (1 - xx) ** 2 + 100 * (yy - xx**2) ** 2, rtol=1e-5)
    assert sorted(surface.trajectories) == sorted(names)
    assert surface.attrs["function"] == "rosenbrock"
    assert surface.attrs["direction_kind"] == "parameters"

    with open(out / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["threshold"] == 1e-4 and summary["start"] == [-1.5, 2.0]
    assert [row["optimizer"] for row in rows] == [row["optimizer"] for row in summary["summary"]]
    for row, entry in zip(rows, summary["summary"]):
        stored = surface.trajectories[row["optimizer"]]
        assert float(row["final_loss"]) == pytest.approx(stored["loss"][-1])
        assert entry["max_residual"] == 0.0
        steps = np.diff(np.stack([stored["x"], stored["y"]], 1), axis=0)
        length = np.linalg.norm(steps, axis=1).sum()
        assert entry["path_length"] == pytest.approx(length)
        assert entry["learning_rate"] == optimizers.ROSENBROCK[row["optimizer"]].learning_rate

    assert vtk_io.read_pvd(out / "surface.pvd") == ["surface.vts",
                                                    *[f"surface_{n}.vtp" for n in names]]
    line = vtk_io.read_vtp(out / "surface_adam.vtp")
    assert [len(cell) for cell in line["lines"]] == [STEPS + 1]
    np.testing.assert_allclose(line["points"][:, :2],
                               np.stack([surface.trajectories["adam"][k] for k in "xy"], 1))
    from matplotlib.image import imread

    pixels = imread(out / "compare.png")
    assert pixels.shape[1] > 2 * pixels.shape[0] and pixels[..., :3].std() > 0.1


def test_network_paths_share_one_plane_with_their_residuals(network_out):
    from landscape import load_run

    out, result, _ = network_out
    surface = surface_h5.read(out / "surface.h5")
    assert surface.attrs["direction_kind"] == "pca" and surface.done.all()
    assert set(surface.values) == {"train_loss", "train_acc"}
    assert json.loads(surface.attrs["strategy"])["eval_batch"] == 60
    origin = ravel_pytree(surface.directions["origin"])[0]
    basis = np.stack([ravel_pytree(surface.directions[k])[0] for k in ("d1", "d2")], 1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reference"] == "final:sgd" and summary["plane"] == "pca"
    rows = {row["optimizer"]: row for row in summary["summary"]}
    for name in NETWORK:
        run = load_run(out / "runs" / name)
        params = run.trajectory.params
        flat = np.stack([ravel_pytree(jax.tree.map(lambda leaf, i=i: leaf[i], params))[0]
                         for i in range(len(run.trajectory))]).astype(np.float64)
        offsets = flat - np.asarray(origin, np.float64)
        coeffs = np.linalg.lstsq(basis, offsets.T, rcond=None)[0]
        residual = np.linalg.norm(offsets.T - basis @ coeffs, axis=0)
        stored = surface.trajectories[name]
        np.testing.assert_allclose(stored["x"], coeffs[0], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(stored["y"], coeffs[1], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(stored["residual"], residual, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(stored["loss"], run.trajectory.train_loss)
        np.testing.assert_array_equal(stored["step"], np.arange(0, 41, 4))
        assert np.isfinite(stored["projected_loss"]).all()  # every point lies on the grid
        assert rows[name]["max_residual"] == pytest.approx(residual.max(), rel=1e-5, abs=1e-6)
        assert rows[name]["final_test_acc"] == pytest.approx(100 * run.final_metrics["test_acc"])
    # All three start at one point: the shared initialization.
    starts = {tuple(np.round([surface.trajectories[n]["x"][0], surface.trajectories[n]["y"][0]], 5))
              for n in NETWORK}
    assert len(starts) == 1
    assert "max residual" in result.stderr.splitlines()[0]
    assert vtk_io.read_pvd(out / "surface.pvd") == ["surface.vts",
                                                    *[f"surface_{n}.vtp" for n in NETWORK]]


def test_a_second_run_reuses_the_runs_and_other_arguments_are_refused(network_out):
    out, _, args = network_out
    stamps = {n: os.stat(out / "runs" / n / "run.json").st_mtime_ns for n in NETWORK}
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert {n: os.stat(out / "runs" / n / "run.json").st_mtime_ns for n in NETWORK} == stamps
    changed = invoke(*[a if a != "40" else "30" for a in args])
    assert changed.exit_code == 2
    message = f"{out / 'runs' / 'sgd'} holds a run made with other arguments (steps differ)"
    assert message in changed.output


SMALL = {
    "function": ["--function", "himmelblau", "--optimizer", "sgd", "--optimizer", "adam",
                 "--steps", "20", "--grid", "5"],
    "workload": ["--workload", "test_cli_compare:tiny_spirals", "--optimizer", "sgd",
                 "--optimizer", "adam", "--steps", "8", "--record-every", "2", "--batch-size",
                 "50", "--grid", "5"],
}


@pytest.mark.parametrize("holder", ["scan", "compare"])
@pytest.mark.parametrize("kind", sorted(SMALL))
def test_a_compare_into_an_out_in_use_stops_before_any_work(tmp_path, kind, holder):
    target = tmp_path / "surface.h5"
    with exclusive(target, what=holder):  # as another scan or compare writing here would
        result = CliRunner().invoke(main, ["compare", *SMALL[kind], "--out", str(tmp_path), "-q"])
    assert result.exit_code == 1, result.output
    # The message names what the holder is doing, as it wrote in the lock file.
    assert result.output.strip() == (f"Error: {target} is in use by another {holder} (pid "
                                     f"{os.getpid()}); wait for it to finish or choose another "
                                     "--out")
    assert os.listdir(tmp_path) == []  # nothing trained or written; the holder removed the lock


def _locked(path) -> bool:
    try:
        check_free(path)
    except FileInUse:
        return True
    return False


@pytest.mark.parametrize("kind", sorted(SMALL))
def test_the_lock_is_held_over_every_write_of_a_compare(tmp_path, monkeypatch, kind):
    """Every writer of OUT (runs, surface, paths, figures, VTK) runs while OUT/surface.h5 is
    locked: the paths and summaries are no longer written after the lock is dropped."""
    import importlib

    import landscape.runs

    atomic_module = importlib.import_module("landscape.io.atomic")
    target, calls = tmp_path / "surface.h5", []

    def watched(module, name):
        original = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls.append((name, _locked(target)))
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    from landscape.io import html

    for module, name in [(surface_h5, "create"), (surface_h5, "write_points"),
                         (surface_h5, "write_trajectories"), (vtk_io, "write_vts"),
                         (vtk_io, "write_vtp"), (vtk_io, "write_pvd"), (landscape.runs, "save_run"),
                         (atomic_module, "save_figure"), (vtk_io, "write_paraview_script"),
                         (html, "write")]:
        watched(module, name)
    result = CliRunner().invoke(main, ["compare", *SMALL[kind], "--out", str(tmp_path), "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    expected = {"create", "write_points", "write_trajectories", "save_figure", "write_vts",
                "write_vtp", "write_pvd", "write_paraview_script", "write"} | (
                    {"save_run"} if kind == "workload" else set())
    assert {name for name, _ in calls} == expected
    assert [call for call in calls if not call[1]] == []
    assert calls[-1][0] == "write"  # the last output: the HTML page
    assert not os.path.exists(lock_path(target)) and not _locked(target)


PVBATCH_CHECK = """
import json, os, sys
from paraview.simple import *
folder = sys.argv[1]
reader = OpenDataFile(os.path.join(folder, "surface.pvd"))
reader.UpdatePipeline()
report = {"points": reader.GetDataInformation().GetNumberOfPoints(), "parts": []}
for name in sorted(os.listdir(folder)):
    if name.endswith((".vts", ".vtp")):
        part = OpenDataFile(os.path.join(folder, name))
        part.UpdatePipeline()
        info = part.GetDataInformation()
        report["parts"].append({"file": name, "points": info.GetNumberOfPoints(),
                                "cells": info.GetNumberOfCells(),
                                "arrays": sorted(part.PointData.keys())})
view = GetActiveViewOrCreate("RenderView")
shown = Show(reader, view)
ColorBy(shown, ("POINTS", "train_loss"))
view.ResetCamera()
Render(view)
SaveScreenshot(os.path.join(folder, "pvd.png"), view, ImageResolution=[400, 300])
# the script compare wrote, run as a user would: one colour and legend entry per optimizer
import runpy
sys.argv = ["surface_paraview.py", "--screenshot", os.path.join(folder, "script.png")]
runpy.run_path(os.path.join(folder, "surface_paraview.py"), run_name="__main__")
lut = GetColorTransferFunction("trajectory")
report["legend"] = list(lut.Annotations)
report["colours"] = list(lut.IndexedColors)
print("REPORT " + json.dumps(report))
"""


@pytest.mark.slow
def test_paraview_opens_the_surface_with_one_polyline_per_optimizer(network_out, tmp_path, run_pvbatch):
    if shutil.which("pvbatch") is None or shutil.which("Xvfb") is None:
        pytest.skip("ParaView's `pvbatch` (Debian: paraview, python3-paraview) and `Xvfb` "
                    "(xvfb) are not on PATH; .ci/run installs them")
    from matplotlib.image import imread

    out, _, _ = network_out
    for name in ["surface.pvd", "surface.vts", "surface_paraview.py",
                 *[f"surface_{n}.vtp" for n in NETWORK]]:
        shutil.copy(out / name, tmp_path / name)
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(PVBATCH_CHECK))
    proc = run_pvbatch(script, tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("REPORT "))
    report = json.loads(line[len("REPORT "):])
    parts = {part["file"]: part for part in report["parts"]}
    assert parts["surface.vts"]["points"] == 81 and parts["surface.vts"]["cells"] == 64
    for name in NETWORK:
        polyline = parts[f"surface_{name}.vtp"]
        assert (polyline["points"], polyline["cells"]) == (11, 1)
        assert {"step", "loss", "projected_loss", "residual"} <= set(polyline["arrays"])
    assert report["points"] == 81 + 3 * 11
    assert imread(tmp_path / "pvd.png")[..., :3].std() > 0.05
    names = sorted(NETWORK)
    assert report["legend"] == [text for k, n in enumerate(names) for text in (str(k), n)]
    np.testing.assert_allclose(np.reshape(report["colours"], (-1, 3)),
                               [trajectory_rgb(k) for k in range(len(names))], atol=1e-3)
    pixels = imread(tmp_path / "script.png")[..., :3].reshape(-1, 3)
    for k in range(len(names)):  # every optimizer drawn in its colour
        assert (np.abs(pixels - trajectory_rgb(k)).max(axis=1) < 0.12).sum() > 20, names[k]


def test_a_real_subprocess_run_on_himmelblau(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from landscape.cli import main; main()", "compare",
         "--function", "himmelblau",
         "--optimizer", "sgd", "--optimizer", "adam", "--lr", "adam=0.05", "--steps", "200",
         "--grid", "21", "--out", str(tmp_path), "-q"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[0] == str(tmp_path / "surface.h5")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [row["learning_rate"] for row in summary["summary"]] == [
        optimizers.ROSENBROCK["sgd"].learning_rate, 0.05]
    assert summary["start"] == [-0.5, -0.5]


@pytest.mark.parametrize("args, message", [
    (["--optimizer", "adamax"], "Invalid value for '--optimizer': (='adamax') is not a known "
                                "optimizer; choose one of sgd, momentum, nesterov"),
    (["--function", "sphere"], "Invalid value for '--function': (='sphere') is not a known test "
                               "function; choose one of beale, himmelblau, noisy_quadratic, "
                               "rastrigin, rosenbrock, saddle"),
    (["--start", "1"], "Invalid value for '--start': (=1) must look like X,Y, e.g. -1.5,2"),
    (["--start", "1,2,3"], "Invalid value for '--start': (=1,2,3) must look like X,Y"),
    (["--start", "a,b"], "Invalid value for '--start': (=a,b) must look like X,Y"),
    (["--lr", "adam=-1"], "Invalid value for '--lr': (=adam=-1) must look like NAME=VALUE"),
    (["--optimizer", "sgd", "--lr", "adam=0.1"], "Invalid value for '--lr': (=adam=...) names an "
                                                 "optimizer that is not compared; compared: sgd"),
    (["--function", "beale", "--workload", "digits"], "`--function` and `--workload` exclude "
                                                      "each other"),
    (["--workload", "digits", "--start", "0,0"], "`--start` applies to --function only"),
    (["--plane", "endpoints"], "`--plane` applies to --workload only"),
    (["--eval-batch-size", "8"], "`--eval-batch-size` applies to --workload only"),
    (["--workload", "digits", "--optimizer", "sgd", "--reference", "final:adam"],
     "Invalid value for '--reference': (=final:adam) must be init or final:NAME with NAME one of "
     "the compared optimizers: sgd"),
    (["--workload", "nope"], "`--workload` (='nope') is not a built-in workload; choose one of"),
    (["--optimizer", "all", "--optimizer", "sgd"], "(=all) already names every optimizer"),
])
def test_bad_input_is_a_one_line_error_with_exit_2(tmp_path, args, message):
    result = CliRunner().invoke(main, ["compare", *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:")


def test_help_shows_examples():
    result = CliRunner().invoke(main, ["compare", "--help"])
    assert result.exit_code == 0
    assert "landscape compare --workload digits" in result.output and "--reference" in result.output


@pytest.mark.slow
def test_three_optimizers_on_digits(tmp_path):
    result = invoke("--workload", "digits", "--optimizer", "sgd", "--optimizer", "momentum",
                    "--optimizer", "adam", "--steps", "30", "--record-every", "3", "--grid", "7",
                    "--reference", "final:adam", "--out", str(tmp_path), "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["reference"] == "final:adam" and summary["workload"] == "digits"
    assert 0.5 < sum(summary["explained_variance"]) <= 1.0
    surface = surface_h5.read(tmp_path / "surface.h5")
    assert surface.grid.shape == (7, 7) and np.isfinite(surface.values["train_loss"]).all()
    for row in summary["summary"]:
        stored = surface.trajectories[row["optimizer"]]
        assert row["max_residual"] == pytest.approx(stored["residual"].max())
        assert 0 <= row["relative_residual"] <= 1 and row["final_test_acc"] > 20
        assert len(stored["x"]) == 11 and np.isfinite(stored["projected_loss"]).all()
    adam = surface.trajectories["adam"]
    assert (adam["x"][-1], adam["y"][-1], adam["residual"][-1]) == pytest.approx((0, 0, 0),
                                                                                  abs=1e-5)


def test_a_batch_size_beyond_the_training_set_is_said_not_clamped_silently(tmp_path):
    args = [a if a != "50" else "100000" for a in SMALL["workload"]]
    result = CliRunner().invoke(main, ["compare", *args, "--out", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert ("warning: `--batch-size` (=100000) is larger than the training set of "
            "`test_cli_compare:tiny_spirals` (200 samples): every step uses all 200") in result.output
    with open(tmp_path / "runs" / "sgd" / "run.json") as handle:
        assert json.load(handle)["batch_size"] == 200
