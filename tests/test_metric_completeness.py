"""A figure says "scan incomplete" only when its own metric is (issue 25): Li et al.'s scripts
fill `train_loss`, then `test_loss`; a file killed during the second had its complete
`train_loss` figure titled "20 of 121 points (scan incomplete)"."""

import importlib

import matplotlib.pyplot as plt
import pytest
from click.testing import CliRunner

import li_layout
from landscape import load_surface
from landscape.cli import main

plot_command = importlib.import_module("landscape.views")  # where `landscape plot` saves


def evaluate(coord):
    x, y = coord
    loss = 1.0 + x**2 + 2.0 * y**2
    return loss, 100.0 - loss


@pytest.fixture(scope="module")
def half_tested(tmp_path_factory):
    """train_* complete (121 points), test_* killed after 20, as their crunch leaves them."""
    path = tmp_path_factory.mktemp("li") / "surface.h5"
    li_layout.setup_surface_file(path, "dirs.h5", (-1, 1, 11), (-1, 1, 11))
    li_layout.crunch(path, evaluate)
    li_layout.crunch(path, evaluate, "test_loss", "test_acc", stop_after=20)
    return path


def texts(figure) -> list[str]:
    return [t.get_text() for t in figure.texts] + [ax.get_title() for ax in figure.axes]


@pytest.mark.parametrize("metric, note", [("train_loss", None),
                                          ("test_loss", "20 of 121 points (scan incomplete)")])
def test_the_title_counts_the_points_of_the_metric_drawn(half_tested, tmp_path, monkeypatch,
                                                         metric, note):
    surface = load_surface(half_tested)
    assert int(surface.done_of(metric).sum()) == (121 if note is None else 20)
    drawn = []
    monkeypatch.setattr(plot_command, "save_figure",
                        lambda figure, path, **_: drawn.append(texts(figure)) or path)
    result = CliRunner().invoke(main, ["plot", str(half_tested), "--metric", metric, "--kind",
                                       "contour", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    figure = surface.plot(metric=metric)
    for found in (drawn[0], texts(figure)):
        shown = " ".join(found)
        if note is None:
            assert "incomplete" not in shown, shown
        else:
            assert note in shown, shown
    plt.close("all")
