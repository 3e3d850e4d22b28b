"""NaN/inf losses at grid points: stored as such and marked done, counted by `scan` and `info`,
drawn as gaps (figures, VTK), and the scan goes on past them."""

import os
import subprocess
import sys

import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape.cli import main
from landscape.io import surface_h5

matplotlib.use("Agg")

WORKLOAD = "test_nonfinite:log_barrier"  # this module (pytest puts tests/ on sys.path)
TESTS = os.path.dirname(os.path.abspath(__file__))


def reference_loss(s: np.ndarray) -> np.ndarray:
    """The barrier below as a function of s = sum(w), in float64: finite for s < 1, NaN (log of a
    negative number) for 1 < s <= 2, +inf beyond 2."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 2, np.inf, -np.log(1 - s))


def log_barrier() -> landscape.Workload:
    """A two-by-two weight with loss -log(1 - sum(w)): finite near w = 0, NaN/inf further out."""

    def init(key):
        return {"kernel": jnp.zeros((2, 2), jnp.float32)}, {}

    def loss(params, state, batch):
        s = jnp.sum(params["kernel"])
        value = jnp.where(s > 2, jnp.inf, -jnp.log(1 - s))
        return value + 0.0 * jnp.mean(batch.inputs), {}

    data = landscape.Dataset(np.zeros((8, 1), np.float32), np.zeros((8, 1), np.float32))
    return landscape.Workload(name="log_barrier", init=init, loss=loss, train=data,
                              input_shape=(1,), batch_size=4)


SCAN = ["scan", "--workload", WORKLOAD, "--steps", "1", "--directions", "random",
        "--x", "-2:2:9", "--y", "-2:2:9", "--seed", "3", "--quiet"]


def expected_values(surface) -> np.ndarray:
    """The loss at every grid point from the stored plane, independently of the evaluator."""
    origin, d1, d2 = (float(np.sum(surface.directions[key]["kernel"]))
                      for key in ("origin", "d1", "d2"))
    beta, alpha = np.meshgrid(surface.grid.y, surface.grid.x, indexing="ij")
    return origin + alpha * d1 + beta * d2


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    out = tmp_path_factory.mktemp("nonfinite")
    result = CliRunner().invoke(main, [*SCAN, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result


def test_nonfinite_points_are_stored_done_and_counted(scanned):
    out, result = scanned
    surface = surface_h5.read(out / "surface.h5")
    values = surface.values["train_loss"]
    s = expected_values(surface)
    assert surface.done.all()  # the scan did not stop at the first NaN
    clear = (np.abs(s - 1) > 1e-3) & (np.abs(s - 2) > 1e-3)  # away from float32 rounding edges
    want = reference_loss(s)
    assert (np.isnan(want) & clear).any() and (np.isinf(want) & clear).any()
    assert (np.isfinite(want) & clear).any()
    np.testing.assert_array_equal(np.isnan(values)[clear], np.isnan(want)[clear])
    np.testing.assert_array_equal(np.isposinf(values)[clear], np.isposinf(want)[clear])
    finite = clear & np.isfinite(want)
    np.testing.assert_allclose(values[finite], want[finite], rtol=1e-4, atol=1e-5)
    bad = int((~np.isfinite(values)).sum())
    assert f"warning: {bad} of 81 points gave non-finite values" in result.output
    assert (out / "surface.png").stat().st_size > 0


def test_info_reports_nonfinite_points(scanned):
    out, _ = scanned
    values = surface_h5.read(out / "surface.h5").values["train_loss"]
    result = CliRunner().invoke(main, ["info", str(out / "surface.h5")])
    assert result.exit_code == 0, result.output
    bad = int((~np.isfinite(values)).sum())
    assert f"non-finite    {bad} of 81 points gave non-finite values" in result.output


@pytest.mark.parametrize("log", [False, True])
def test_plot_and_vtk_treat_nonfinite_points_as_gaps(scanned, tmp_path, log):
    out, _ = scanned
    flag = ["--log"] if log else []
    result = CliRunner().invoke(main, ["plot", str(out / "surface.h5"), "--out", str(tmp_path),
                                       *flag])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("surface_train_loss_*.png"))) == 4
    result = CliRunner().invoke(main, ["export", str(out / "surface.h5"), "--vtk", "--out",
                                       str(tmp_path), *flag])
    assert result.exit_code == 0, result.output
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    reader = vtk.vtkXMLStructuredGridReader()
    reader.SetFileName(str(tmp_path / "surface.vts"))
    reader.Update()
    valid = vtk_to_numpy(reader.GetOutput().GetPointData().GetArray("valid")).astype(bool)
    values = surface_h5.read(out / "surface.h5").values["train_loss"].ravel()
    expected = np.isfinite(values) & ((values > 0) if log else True)
    np.testing.assert_array_equal(valid, expected)
    points = vtk_to_numpy(reader.GetOutput().GetPoints().GetData())
    assert np.isfinite(points).all()


def test_masked_figures_draw_all_nan_and_all_inf_surfaces():
    from landscape.grid import Grid
    from landscape.plot import kind_figure, surface_figure

    grid = Grid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3))
    for z in (np.full((3, 4), np.nan), np.full((3, 4), np.inf),
              np.where(np.eye(3, 4, dtype=bool), -np.inf, 1.0)):
        for log in (False, True):
            surface_figure(grid, z, log=log).savefig(os.devnull, format="png", dpi=20)
            for view in ("filled", "surface3d"):  # (contour and heatmap: through `plot` above)
                kind_figure(view, grid, z, metric="train_loss", attrs={}, log=log).savefig(
                    os.devnull, format="png", dpi=20)


def test_nonfinite_scan_as_a_real_subprocess(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")])}
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    cmd = [exe, *SCAN, "--x", "-2:2:5", "--y", "-2:2:5", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "points gave non-finite values" in proc.stderr
    assert (tmp_path / "surface.png").exists()
