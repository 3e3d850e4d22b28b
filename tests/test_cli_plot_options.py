"""`landscape plot` / `plot-function`: option combinations that once gave tracebacks or
silently dropped data (issue 18) give one-line errors or say what they did."""

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_surfaces import make_surface

from landscape.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error")]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("surfaces")
    make_surface(folder / "plane.h5", trajectories=False)
    make_surface(folder / "line.h5", nx=5, ny=None, trajectories=False)
    return folder


@pytest.mark.parametrize("bounds, message", [
    (["--vmin", "-5", "--vmax", "-1"], "`--vmin` (=-5.0) must be > 0 with `--log`"),
    (["--vmin", "0"], "`--vmin` (=0.0) must be > 0 with `--log`"),
    (["--vmax", "-1"], "`--vmax` (=-1.0) must be > 0 with `--log`"),
])
@pytest.mark.parametrize("kind", ["contour", "surface3d", "all"])
def test_a_log_scale_with_bounds_at_or_below_zero_is_a_one_line_error(tmp_path, files, bounds,
                                                                      message, kind):
    result = run("plot", files / "plane.h5", "--log", "--kind", kind, *bounds, "--out", tmp_path)
    assert result.exit_code == 2, result.output
    assert error_lines(result.output) == [f"Error: {message}: a log scale holds positive "
                                          "values only"]
    assert "Traceback" not in result.output and not list(tmp_path.iterdir())


def test_a_log_scale_with_positive_bounds_still_draws(tmp_path, files):
    result = run("plot", files / "plane.h5", "--log", "--kind", "filled", "--vmin", "0.5",
                 "--vmax", "3", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plane_train_loss_filled.png").is_file()


def test_kind_curve_on_a_2d_surface_is_a_one_line_error(tmp_path, files):
    result = run("plot", files / "plane.h5", "--kind", "curve", "--out", tmp_path)
    assert result.exit_code == 2, result.output
    assert error_lines(result.output) == [
        f"Error: `--kind curve` needs a 1D surface; {files / 'plane.h5'} is 2D (use --kind "
        "contour, filled, heatmap or surface3d)"]
    assert not list(tmp_path.iterdir())


def test_the_plot_functions_refuse_a_log_scale_bound_at_or_below_zero():
    from matplotlib.figure import Figure

    from landscape.grid import Grid
    from landscape.plot import plot_contour, plot_heatmap

    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 4))
    ax = Figure().add_subplot()
    for draw in (plot_contour, plot_heatmap):
        with pytest.raises(ValueError, match=r"`vmin` \(=-5\) must be > 0 on a log scale"):
            draw(ax, grid, np.ones((4, 3)), vmin=-5, vmax=-1, log=True)
