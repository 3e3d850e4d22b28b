"""`landscape info`, `export`, `plot` and `plot-function`: messages, written files read back,
non-blank images, and one-line errors for bad input."""

import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.image import imread
from synthetic_surfaces import make_surface

from landscape.cli import main
from landscape.data.functions import names as function_names
from landscape.io import vtk as vtk_io

NEW_COMMANDS = ["info", "export", "plot", "plot-function"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def full_file(tmp_path_factory):
    """7 × 4 surface with NaN/inf points, trajectories, Hessian maps and a spectral density."""
    path = tmp_path_factory.mktemp("full") / "surf.h5"
    FULL_VALUES.update(make_surface(path, hessian=True, density=True)["values"])
    return path


FULL_VALUES: dict = {}


@pytest.mark.parametrize("command", NEW_COMMANDS)
def test_help_has_description_and_examples(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output and len(result.output) > 200
    assert "Examples:" in result.output and f"landscape {command}" in result.output


def test_plot_function_help_lists_every_function():
    text = " ".join(run("plot-function", "--help").output.split())
    assert ", ".join(function_names()) in text


def test_info_prints_grid_metrics_provenance_directions_trajectories(full_file):
    result = run("info", full_file)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "2D, nx × ny = 7 × 4" in out and "x: 7 points in [-1, 1]" in out
    assert "y: 4 points in [-0.5, 1.5]" in out
    assert "28 / 28 points done (100.0 %), complete" in out
    loss_row = next(line.split() for line in out.splitlines() if line.strip().startswith("train_loss"))
    loss = FULL_VALUES["train_loss"]
    finite = loss[np.isfinite(loss)]
    assert loss_row[1:] == [f"{finite.min():.6g}", f"{finite.max():.6g}", "1", "1"]  # NaN, inf
    for text in ("max_eig", "min_eig", "explained_variance", "[0.62, 0.21]", "workload", "toy",
                 "d1/dense0/kernel", "(2, 3)", "origin/dense0/bias", "adam", "0..40",
                 "3 → 1", "200 bins over λ in [-1, 10]"):
        assert text in out, text


def test_info_says_when_a_scan_is_unfinished(tmp_path):
    path = tmp_path / "part.h5"
    make_surface(path, done_fraction=0.5, trajectories=False, explained_variance=None)
    out = run("info", path).output
    assert "14 / 28 points done (50.0 %), incomplete" in out
    assert "trajectories\n  (none)" in out


def test_export_vtk_writes_files_and_prints_them(tmp_path, full_file):
    out = tmp_path / "vtk"
    result = run("export", full_file, "--vtk", "--log", "--zmax", "5", "--out", out)
    assert result.exit_code == 0, result.output
    want = [str(out / name) for name in ("surf.vts", "surf_trajectories.vtp", "surf.pvd",
                                         "surf_paraview.py")]
    assert result.output.split() == want
    got = vtk_io.read_vts(out / "surf.vts")
    assert got["fields"]["z"] == ["log10 min(train_loss, 5)"]
    assert got["points"][:, 2].max() <= np.log10(5) + 1e-12
    assert "max_eig" in got["point_data"]


@pytest.fixture(scope="module")
def plotted(tmp_path_factory, full_file):
    out = tmp_path_factory.mktemp("plots")
    result = run("plot", full_file, "--log", "--out", out)
    return out, result


def test_plot_all_writes_every_view_the_file_allows(plotted):
    out, result = plotted
    assert result.exit_code == 0, result.output
    kinds = ["train_loss_contour", "train_loss_filled", "train_loss_heatmap",
             "train_loss_surface3d", "hessian", "density"]
    assert result.output.split() == [str(out / f"surf_{kind}.png") for kind in kinds]
    assert sorted(os.listdir(out)) == sorted(f"surf_{kind}.png" for kind in kinds)  # no temps


@pytest.mark.parametrize("kind", ["train_loss_contour", "train_loss_filled", "train_loss_heatmap",
                                  "train_loss_surface3d", "hessian", "density"])
def test_plot_images_are_not_blank(plotted, kind):
    pixels = imread(plotted[0] / f"surf_{kind}.png")[..., :3]
    assert pixels.shape[0] > 400 and pixels.std() > 0.08, pixels.std()


def test_plot_one_kind_as_pdf_with_options(tmp_path, full_file):
    result = run("plot", full_file, "--kind", "heatmap", "--metric", "train_acc", "--vmin", "50",
                 "--vmax", "100", "--format", "pdf", "--no-trajectories", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    path = tmp_path / "surf_train_acc_heatmap.pdf"
    assert result.output.split() == [str(path)] and path.read_bytes()[:5] == b"%PDF-"


def test_plot_1d_file_draws_curves(tmp_path):
    path = tmp_path / "line.h5"
    make_surface(path, nx=21, ny=None)
    result = run("plot", path, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(tmp_path / "o" / "line_curves.png")]
    assert imread(tmp_path / "o" / "line_curves.png")[..., :3].std() > 0.05


def test_plot_function_rosenbrock_with_a_descent_path(tmp_path):
    result = run("plot-function", "rosenbrock", "--grid", "60", "--path-from", "-1.2,1",
                 "--steps", "300", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "gradient descent: (-1.2, 1) →" in result.output and "after 300 steps" in result.output
    png = tmp_path / "rosenbrock.png"
    assert result.output.strip().splitlines()[-1] == str(png)
    assert imread(png)[..., :3].std() > 0.08


def _not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not an HDF5 file")
    return path


@pytest.mark.parametrize("args, code, message", [
    (["info", "missing.h5"], 2, "does not exist"),
    (["info", "{bad}"], 1, "cannot read surface file"),
    (["plot", "{file}", "--metric", "test_loss"], 2,
     "`--metric` (='test_loss') is not in"),
    (["plot", "{file}", "--vmin", "3", "--vmax", "1"], 2, "must be below --vmax"),
    (["plot", "{line}", "--kind", "contour"], 2, "needs a 2D surface"),
    (["plot", "{line}", "--kind", "hessian"], 2, "needs datasets max_eig and min_eig"),
    (["plot", "{bad}"], 1, "cannot read surface file"),
    (["export", "{file}"], 2, "choose an export format: --vtk"),
    (["export", "{file}", "--vtk", "--metric", "nope"], 2, "`--metric` (='nope') is not in"),
    (["export", "{file}", "--vtk", "--log", "--zmax", "-1"], 2, "must be > 0 with `--log`"),
    (["export", "{bad}", "--vtk"], 1, "cannot read surface file"),
    (["plot-function", "rosenbrok"], 2, "is not a known test function; choose one of"),
    (["plot-function", "rosenbrock", "--path-from", "1"], 2, "must look like X,Y"),
])
def test_bad_input_is_a_one_line_error(tmp_path, full_file, args, code, message):
    line = tmp_path / "line.h5"
    make_surface(line, nx=5, ny=None, trajectories=False)
    args = [a.format(file=full_file, line=line, bad=_not_hdf5(tmp_path)) for a in args]
    result = run(*args, "--out", tmp_path / "o") if args[0] != "info" else run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(error_lines(result.output)) == 1


def test_info_as_a_real_subprocess(full_file):
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    proc = subprocess.run([exe, "info", str(full_file)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "metrics" in proc.stdout and "train_loss" in proc.stdout


def test_plot_warns_when_the_metric_has_no_finite_value(tmp_path):
    path = tmp_path / "fresh.h5"
    make_surface(path, done_fraction=0.0, trajectories=False)
    result = run("plot", path, "--kind", "heatmap", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "warning: `train_loss` has no finite value" in result.output
    assert (tmp_path / "fresh_train_loss_heatmap.png").is_file()


def test_export_writes_beside_the_file_unless_out_is_given(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    make_surface(folder / "s.h5", nx=5, ny=4)
    monkeypatch.chdir(tmp_path)  # elsewhere: nothing may land in ./landscape-out
    result = run("export", folder / "s.h5", "--vtk", "--li")
    assert result.exit_code == 0, result.output
    assert result.output.split() == [str(folder / name) for name in (
        "s.vts", "s_trajectories.vtp", "s.pvd", "s_paraview.py", "s_li_directions.h5",
        "s_li_proj_adam.h5", "s_li_proj_sgd.h5")]
    assert not (tmp_path / "landscape-out").exists()


def test_plot_writes_beside_the_file_unless_out_is_given(tmp_path, monkeypatch):
    """Two files of the same name in two folders: their figures used to land in one
    ./landscape-out and overwrite each other."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        make_surface(tmp_path / folder / "s.h5", nx=5, ny=4)
    monkeypatch.chdir(tmp_path)
    for folder in ("a", "b"):
        result = run("plot", tmp_path / folder / "s.h5", "--kind", "heatmap")
        assert result.exit_code == 0, result.output
        assert result.output.split() == [str(tmp_path / folder / "s_train_loss_heatmap.png")]
    assert not (tmp_path / "landscape-out").exists()
    result = run("plot", tmp_path / "a" / "s.h5", "--kind", "heatmap", "--out", tmp_path / "o")
    assert result.output.split() == [str(tmp_path / "o" / "s_train_loss_heatmap.png")]


def _malformed(path, edit):
    import h5py

    make_surface(path, nx=5, ny=4)
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


@pytest.mark.parametrize("command", [["info"], ["plot"], ["export", "--vtk"],
                                     ["export", "--html"]])
@pytest.mark.parametrize("edit, words", [
    (lambda f: (f.__delitem__("trajectories/adam/loss"),
                f.__setitem__("trajectories/adam/loss", np.ones(4))),
     "trajectory `adam`: its arrays must have one length"),
    (lambda f: [f.__delitem__(f"trajectories/sgd/{k}") for k in ("y", "loss", "step")],
     "trajectory `sgd` has no `y`, `loss`, `step`"),
])
def test_a_malformed_trajectory_is_a_one_line_error(tmp_path, command, edit, words):
    path = _malformed(tmp_path / "bad.h5", edit)
    args = [command[0], path, *command[1:]] + ([] if command[0] == "info" else
                                               ["--out", tmp_path / "o"])
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert error_lines(result.output) == [f"Error: {path}: {words}" +
                                          error_lines(result.output)[0].split(words, 1)[1]]
    assert "Traceback" not in result.output
