"""`landscape compare` defects of issue 18: a start where the function overflows float32 is
refused before anything is written, the figure draws a surface with a single finite value, and a
diverged network run does not set the "steps to" threshold."""

import math

import numpy as np
import pytest
from click.testing import CliRunner

from landscape import compare
from landscape.cli import main
from landscape.errors import InputError
from landscape.grid import Grid


def error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error")]


def rosenbrock(theta):
    return (1.0 - theta[0]) ** 2 + 100.0 * (theta[1] - theta[0] ** 2) ** 2


@pytest.mark.parametrize("start, value", [("1e30,1e30", "inf"), ("1e15,1e15", "inf")])
def test_a_start_where_the_function_overflows_is_refused_before_anything_is_written(
        tmp_path, start, value):
    result = CliRunner().invoke(main, ["compare", "--function", "rosenbrock", "--start", start,
                                       "--optimizer", "sgd", "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    x, y = (float(part) for part in start.split(","))
    assert error_lines(result.output) == [
        f"Error: `--start` (={x:g},{y:g}): f(x, y) is {value} at ({x:g}, {y:g}) in float32, the "
        "precision the optimizers run in; start where f and its gradient are finite"]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no surface, summary or lock


def test_check_start_accepts_a_finite_start_and_names_a_gradient_overflow():
    compare.check_start(rosenbrock, (-1.5, 2.0))
    compare.check_start(rosenbrock, (1e9, 1e9))  # f = 1e38, still a float32
    with pytest.raises(InputError, match=r"f\(x, y\) is inf at \(3e\+12, 0\)"):
        compare.check_start(rosenbrock, (3e12, 0.0))  # f = 8.1e50 overflows float32
    cusp = lambda theta: (theta[0] ** 2) ** 0.25 + theta[1] ** 2  # noqa: E731  (|x|^½)
    with pytest.raises(InputError, match=r"its gradient is not finite at \(0, 1\)"):
        compare.check_start(cusp, (0.0, 1.0))


def test_the_comparison_figure_draws_a_surface_with_one_finite_value():
    from landscape.plot.compare import comparison_figure

    grid = Grid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 4))
    z = np.full((4, 5), np.inf)
    z[1, 2] = 2509.0
    path = compare.function_path("sgd", {"name": "sgd", "learning_rate": 0.1},
                                 np.array([[0.0, 0.0], [0.5, 0.5]]), np.array([1.0, 0.5]))
    figure = comparison_figure(grid, z, [path], function=True, log=True, threshold=1e-4)
    figure.canvas.draw()


def test_plot_function_refuses_a_path_start_where_the_function_overflows(tmp_path):
    result = CliRunner().invoke(main, ["plot-function", "rosenbrock", "--path-from", "1e30,1e30",
                                       "--grid", "10", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert error_lines(result.output) == [
        "Error: `--path-from` (=1e+30,1e+30): f(x, y) is inf at (1e+30, 1e+30) in float32, the "
        "precision the optimizers run in; start where f and its gradient are finite"]
    assert not list(tmp_path.iterdir())


def _network_runs():
    """Three runs from one initial point: a converges, b diverges after a loss far above every
    other, c blows up without diverging (ends above where it started)."""
    import dataclasses

    from landscape.recorder import Divergence
    from test_compare import _run

    rng = np.random.default_rng(4)
    init = rng.normal(size=7)
    rows = {name: [init, *(init + rng.normal(size=(3, 7)))] for name in "abc"}
    runs = {"a": _run(rows["a"], [4.0, 3.0, 2.0, 1.0]),
            "b": _run(rows["b"], [4.0, 2.5, 1e18, 2.8e18]),
            "c": _run(rows["c"], [4.0, 9.0, 30.0, 67.0])}
    runs["b"] = dataclasses.replace(runs["b"], status="diverged",
                                    divergence=Divergence(40, math.nan, "train"))
    return runs


def test_a_diverged_run_does_not_set_the_steps_to_threshold():
    _, paths, _ = compare.runs_on_plane(_network_runs(), reference="a")
    assert [p.diverged_at for p in paths] == [None, 40, None]
    threshold = compare.default_threshold(paths)
    assert threshold == 1.0  # a's final loss: b diverged, c ends above its start
    rows = compare.summarize(paths, threshold)
    assert [row["steps_to_threshold"] for row in rows] == [30, None, None]
    assert "steps to 1 " in compare.format_summary(rows, threshold).splitlines()[0] + " "


def test_without_a_run_that_makes_progress_there_is_no_threshold_column():
    runs = _network_runs()
    del runs["a"]
    _, paths, _ = compare.runs_on_plane(runs, reference="b")
    threshold = compare.default_threshold(paths)
    assert math.isnan(threshold)
    rows = compare.summarize(paths, threshold)
    assert [row["steps_to_threshold"] for row in rows] == [None, None]
    assert "steps to" not in compare.format_summary(rows, threshold)
