"""`landscape scan RUN` with directions from the run: PCA of its trajectory, interpolation
between runs, Hessian eigenvectors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.io import surface_h5
from landscape.runs import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(main, ["train", "--workload", "sine", "--optimizer", "sgd",
                                       "--optimizer", "adam", "--steps", "40", "--record-every",
                                       "5", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_pca_plane_of_a_run_with_its_projected_trajectory(runs, tmp_path):
    out = tmp_path / "pca"
    result = CliRunner().invoke(main, ["scan", str(runs / "adam"), "--directions", "pca",
                                       "--grid", "5", "--range", "-1:1", "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    surface = surface_h5.read(out / "surface.h5")
    run = load_run(runs / "adam")
    assert surface.attrs["direction_kind"] == "pca"
    assert 0.5 < sum(json.loads(surface.attrs["explained_variance"])) <= 1.0
    path = surface.trajectories["adam"]
    np.testing.assert_array_equal(path["step"], run.trajectory.step)
    np.testing.assert_allclose(path["loss"], run.trajectory.train_loss)
    # The plane's origin is the final point: it projects to (0, 0) with no residual.
    assert abs(path["x"][-1]) < 1e-5 and abs(path["y"][-1]) < 1e-5 and path["residual"][-1] < 1e-5
    # The centre of the grid is the run's final model.
    np.testing.assert_allclose(surface.values["train_loss"][2, 2],
                               run.final_metrics["train_loss"], rtol=1e-5)
    # The same directions on a wider range keep their axis labels (they were "α (file
    # direction 1)": the README's pca-wide figure lost its "PC1 (… % of variance)")
    from landscape.plot import plane_axis_labels

    wide = tmp_path / "pca-wide"
    result = CliRunner().invoke(main, ["scan", str(runs / "adam"), "--directions-from",
                                       str(out / "surface.h5"), "--grid", "3", "--range", "-4:4",
                                       "--quiet", "--out", str(wide)])
    assert result.exit_code == 0, result.output
    reused = surface_h5.read(wide / "surface.h5")
    assert reused.attrs["direction_kind"] == "file"
    assert json.loads(reused.attrs["explained_variance"]) == json.loads(
        surface.attrs["explained_variance"])
    assert plane_axis_labels(reused.attrs) == plane_axis_labels(surface.attrs)
    assert plane_axis_labels(reused.attrs)[0].startswith("PC1 (")


@pytest.mark.parametrize("kind", ["pca", "interp"])
def test_pca_and_interpolation_scans_cover_the_path_by_default(runs, tmp_path, kind):
    to = ["--to", str(runs / "sgd")] if kind == "interp" else []
    result = CliRunner().invoke(main, ["scan", str(runs / "adam"), "--directions", kind, *to,
                                       "--grid", "5", "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    surface = surface_h5.read(tmp_path / "surface.h5")
    path = surface.trajectories["adam"]
    x = surface.grid.x
    assert len(x) == 5 and x[0] < min(path["x"].min(), 0) and x[-1] > max(path["x"].max(), 0)
    if kind == "interp":  # the end point α = 1 is inside too
        assert x[0] < 0 < 1 < x[-1]
    else:
        y = surface.grid.y
        assert y[0] < min(path["y"].min(), 0) and y[-1] > max(path["y"].max(), 0)


def test_interpolation_between_two_runs(runs, tmp_path):
    out = tmp_path / "interp"
    result = CliRunner().invoke(main, ["scan", str(runs / "sgd"), "--directions", "interp",
                                       "--to", str(runs / "adam"), "--x", "0:1:5", "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = surface_h5.read(out / "surface.h5").values["train_loss"]
    assert line.shape == (5,)
    np.testing.assert_allclose(line[0], load_run(runs / "sgd").final_metrics["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(line[-1], load_run(runs / "adam").final_metrics["train_loss"], rtol=1e-5)


def test_hessian_directions(tmp_path):
    out = tmp_path / "h"
    result = CliRunner().invoke(main, ["scan", "--steps", "200", "--directions", "hessian",
                                       "--range", "-0.05:0.05", "--grid", "3", "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    surface = surface_h5.read(out / "surface.h5")
    assert surface.attrs["direction_kind"] == "hessian" and surface.done.all()


@pytest.mark.parametrize("args, message", [
    (["--directions", "pca"], "needs a run directory"),
    (["--directions", "interp"], "needs a run directory"),
    (["--to", "."], "goes with `--directions interp`"),
])
def test_run_directions_need_their_arguments(tmp_path, args, message):
    result = CliRunner().invoke(main, ["scan", "--quiet", "--out", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.output
