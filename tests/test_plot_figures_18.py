"""Figures that once misled (issue 18): the spectral density's log axis drew a flat floor that
read as density, the λmin map's symmetric colour scale left half its bar unused, and a partial
scan's figures did not say they were incomplete."""

import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from synthetic_surfaces import make_surface

from landscape.cli import main
from landscape.grid import Grid
from landscape.plot import completion_note, density_figure, hessian_figure, plot_spectral_density


def test_the_density_is_clipped_below_its_floor_and_the_figure_says_so():
    lam = np.linspace(-1, 10, 400)
    density = 10 * np.exp(-0.5 * (lam - 2) ** 2 / 0.3)
    floored = np.maximum(density, density.max() * 1e-7)  # as `landscape hessian` stores it
    ax = Figure().add_subplot()
    line = plot_spectral_density(ax, lam, floored)
    drawn = line.get_ydata()
    shown = drawn[np.isfinite(drawn)]
    peak = floored.max()
    assert shown.min() >= peak * 1e-6  # nothing under 1e-6 of the peak: no flat floor
    assert np.isnan(drawn[lam > 6]).all()  # the floored tail is a gap
    np.testing.assert_allclose(shown, density[np.isfinite(drawn)])  # the rest as it is
    assert ax.get_ylim()[0] == pytest.approx(peak * 1e-6)
    notes = [text.get_text() for text in ax.texts]
    assert notes == ["density below 1e-06 × its peak not drawn"]
    figure = density_figure(lam, np.exp(-0.5 * (lam - 2) ** 2 / 10))  # never that low: no note
    assert [text.get_text() for text in figure.axes[0].texts] == []


def test_the_min_eig_colour_scale_spans_the_data_with_zero_white():
    grid = Grid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 4))
    max_eig = np.full((4, 5), 3.0)
    min_eig = np.linspace(-5.0, 0.1, 20).reshape(4, 5)
    figure = hessian_figure(grid, max_eig, min_eig)
    mesh = figure.axes[1].collections[0]
    norm = mesh.norm
    assert isinstance(norm, Normalize) and (norm.vmin, norm.vmax) == (-5.0, 0.1)
    from matplotlib import colormaps

    reference = colormaps["RdBu_r"]  # the symmetric map: -5 → its bottom, 0 → its middle
    np.testing.assert_allclose(mesh.cmap(norm(-5.0)), reference(0.0), atol=0.02)
    np.testing.assert_allclose(mesh.cmap(norm(0.0)), reference(0.5), atol=0.02)
    np.testing.assert_allclose(mesh.cmap(norm(0.1)), reference(0.5 + 0.5 * 0.1 / 5), atol=0.02)
    bar = figure.axes[4]  # the λmin colour bar (λmax, λmin, ratio, then their bars)
    assert bar.get_ylim() == pytest.approx((-5.0, 0.1))


def test_completion_note():
    done = np.zeros((51, 51), bool)
    done.ravel()[:412] = True
    assert completion_note(done) == "412 of 2601 points"
    assert completion_note(np.ones((3, 3), bool)) == ""


def test_the_figures_of_a_partial_scan_say_how_much_is_done(tmp_path, monkeypatch):
    import importlib

    path = tmp_path / "part.h5"
    make_surface(path, nx=7, ny=4, done_fraction=0.5, hessian=True, trajectories=False)
    module = importlib.import_module("landscape.views")
    titles = []

    def record(figure, path, **kwargs):
        titles.append(" | ".join([figure.get_suptitle()] + [ax.get_title() for ax in figure.axes
                                                             if ax.get_title()]))
        return path

    monkeypatch.setattr(module, "save_figure", record)
    result = CliRunner().invoke(main, ["plot", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert len(titles) == 5  # contour, filled, heatmap, surface3d, hessian
    assert all("14 of 28 points (scan incomplete)" in title for title in titles), titles
