"""`landscape plot` / `plot-function`: option combinations that once gave tracebacks or
silently dropped data (issue 18) give one-line errors or say what they did."""

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_surfaces import make_surface

from landscape.cli import main
from landscape.grid import Grid


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


def test_plot_function_log_scale_of_a_signed_function_draws_both_signs(tmp_path):
    """`saddle` is x² − y²: a log scale of f would drop the half where f < 0; it is drawn on a
    symmetric log scale (sign · log |f|) and the command says so."""
    from matplotlib.colors import SymLogNorm
    from matplotlib.contour import ContourSet

    from landscape.data.functions import get_function
    from landscape.plot import function_figure

    function = get_function("saddle")
    grid = Grid(np.linspace(-2, 2, 41), np.linspace(-2, 2, 41))
    z = function.on_grid(grid.x, grid.y)
    figure = function_figure(grid, z, log=True, levels=25)
    (contours,) = [c for c in figure.axes[0].collections if isinstance(c, ContourSet)]
    assert isinstance(contours.norm, SymLogNorm)
    levels = np.asarray(contours.levels)
    assert levels.min() < -3 and levels.max() > 3 and 0.0 in levels  # both halves, and f = 0
    np.testing.assert_allclose(levels, -levels[::-1])  # symmetric
    assert "symmetric log" in figure.axes[1].get_ylabel()  # the colour bar says what it is

    result = run("plot-function", "saddle", "--scale", "log", "--grid", "30", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert ("note: saddle takes negative values on its box: `--scale log` draws a symmetric log "
            "scale (the sign of f times log |f|, linear within ±0.08)") in result.output
    assert (tmp_path / "saddle.png").is_file()
