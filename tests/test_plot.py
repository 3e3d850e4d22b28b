"""Plot library: what each function draws (arrays, masks, labels), gaps for NaN/inf, non-blank
rendering, and no pyplot global state."""

import io
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.image import imread

from landscape.grid import Grid
from landscape.plot import (
    KINDS_2D,
    curves_figure,
    density_figure,
    eigen_ratio,
    function_figure,
    hessian_figure,
    kind_figure,
    masked,
    plane_axis_labels,
    plot_contour,
    plot_eigen_maps,
    plot_heatmap,
    plot_surface_3d,
    plot_trajectories,
    surface_figure,
)

GRID = Grid(np.linspace(-1, 1, 6), np.linspace(0, 3, 4))  # nx = 6 != ny = 4
YY, XX = np.meshgrid(GRID.y, GRID.x, indexing="ij")
Z = 1.0 + XX**2 + 2.0 * YY  # (ny, nx), > 0
TRAJECTORIES = {"sgd": {"x": np.array([0.8, 0.2, 0.0]), "y": np.array([2.5, 1.0, 0.2]),
                        "loss": np.ones(3), "step": np.arange(3)},
                "adam": {"x": np.array([-0.8, 0.0]), "y": np.array([2.0, 0.5]),
                         "loss": np.ones(2), "step": np.arange(2)}}


def pixel_std(fig: Figure) -> float:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    buffer.seek(0)
    return float(imread(buffer)[..., :3].std())


def with_gaps():
    z = Z.copy()
    z[1, 2], z[2, 4], z[3, 0] = np.nan, np.inf, -np.inf
    return z


def test_masked_marks_nonfinite_and_nonpositive_under_log():
    z = np.array([1.0, np.nan, np.inf, 0.0, -2.0])
    np.testing.assert_array_equal(masked(z).mask, [False, True, True, False, False])
    np.testing.assert_array_equal(masked(z, log=True).mask, [False, True, True, True, True])


def test_heatmap_keeps_z_iy_ix_orientation_and_gaps():
    fig = Figure()
    mesh = plot_heatmap(fig.add_subplot(), GRID, with_gaps())
    array = mesh.get_array().reshape(4, 6)
    np.testing.assert_array_equal(array.mask, ~np.isfinite(with_gaps()))
    np.testing.assert_array_equal(array[0], Z[0])  # first row = first y, running along x
    # cell centres sit on the grid points: the mesh spans half a cell beyond each end
    x0, x1 = mesh.get_coordinates()[0, [0, -1], 0]
    assert x0 == pytest.approx(-1.2) and x1 == pytest.approx(1.2)  # spacing 0.4


@pytest.mark.parametrize("filled", [True, False])
def test_contour_draws_levels_over_the_finite_range_with_gaps(filled):
    fig = Figure()
    contours = plot_contour(fig.add_subplot(), GRID, with_gaps(), levels=7, filled=filled)
    finite = Z[np.isfinite(with_gaps())]
    assert contours.levels[0] <= finite.min() and contours.levels[-1] >= finite.max()
    assert 4 <= len(contours.levels) <= 9 and pixel_std(fig) > 0.02
    np.testing.assert_allclose(contours.levels, np.round(contours.levels, 6))  # round values


def test_log_contours_use_log_spaced_levels_and_a_log_norm():
    fig = Figure()
    contours = plot_contour(fig.add_subplot(), GRID, Z, levels=5, log=True, vmin=1.0, vmax=1e4)
    np.testing.assert_allclose(contours.levels, [1, 10, 100, 1000, 1e4])
    assert isinstance(contours.norm, LogNorm)


def test_3d_surface_is_not_blank_and_draws_no_made_up_value_at_gaps():
    fig = Figure()
    ax = fig.add_subplot(projection="3d")
    polygons = plot_surface_3d(ax, GRID, with_gaps(), log=True)
    colours = polygons.get_array()  # one per facet: the mean height of its finite corners
    assert colours.shape == (15,) and np.isfinite(colours).all()
    # Facet (row 0, column 1) touches the NaN at [1, 2]: matplotlib drops that corner, so the
    # facet is the triangle of its three finite corners (no value is invented at the gap).
    corners = np.log10([Z[0, 1], Z[0, 2], Z[1, 1]])
    assert colours[1] == pytest.approx(corners.mean())
    assert pixel_std(fig) > 0.05


@pytest.mark.parametrize("kind", KINDS_2D)
def test_each_kind_renders_with_labels_and_legend(kind):
    attrs = {"explained_variance": "[0.7512, 0.1234]"}
    fig = kind_figure(kind, GRID, with_gaps(), metric="train_loss", attrs=attrs,
                      trajectories=TRAJECTORIES, log=kind != "heatmap", title="toy")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "PC1 (75.1 % of variance)"
    assert ax.get_ylabel() == "PC2 (12.3 % of variance)"
    if kind != "surface3d":
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            "adam", "sgd", "first recorded step", "last recorded step"]  # the markers too
    assert pixel_std(fig) > 0.05


def test_axis_labels_without_pca():
    assert plane_axis_labels({"direction_kind": "random"}) == (
        "α (random direction 1)", "β (random direction 2)")
    assert plane_axis_labels({}) == ("α (direction 1)", "β (direction 2)")
    assert plane_axis_labels({"explained_variance": [3.0, 1.5]})[0] == "PC1 (variance 3)"


def test_trajectories_are_drawn_where_they_were_recorded():
    fig = Figure()
    lines = plot_trajectories(fig.add_subplot(), TRAJECTORIES)
    assert [line.get_label() for line in lines] == ["adam", "sgd"]
    np.testing.assert_array_equal(lines[1].get_xydata(), np.stack(
        [TRAJECTORIES["sgd"]["x"], TRAJECTORIES["sgd"]["y"]], 1))


def test_eigen_ratio_and_maps():
    max_eig = np.array([[2.0, 0.0], [4.0, np.nan]])
    min_eig = np.array([[-1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(eigen_ratio(max_eig, min_eig), [[0.5, np.nan], [0.25, np.nan]])
    grid = Grid(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    fig = Figure()
    axes = [fig.add_subplot(1, 3, k + 1) for k in range(3)]
    drawn = plot_eigen_maps(axes, grid, max_eig, min_eig)
    assert [ax.get_title() for ax in axes] == ["λmax", "λmin", "|λmin / λmax|"]
    assert drawn[1].norm.vmin == -drawn[1].norm.vmax  # diverging map centred on 0
    np.testing.assert_array_equal(drawn[2].get_array().mask, [[False, True], [False, True]])


def test_hessian_and_density_figures_render():
    fig = hessian_figure(GRID, 2 + XX**2, -0.5 + YY)
    assert len(fig.axes) == 6 and pixel_std(fig) > 0.05  # three maps and their colour bars
    lam = np.linspace(-1, 5, 50)
    fig = density_figure(lam, np.exp(-lam**2))
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "eigenvalue λ"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), lam)


def test_1d_curves_put_accuracy_on_a_twin_axis():
    grid = Grid(np.linspace(-1, 1, 11))
    loss = 1 + grid.x**2
    loss[3] = np.nan
    fig = curves_figure(grid, {"train_loss": loss, "train_acc": 100 - 10 * grid.x**2}, log=True)
    left, right = fig.axes
    assert left.get_yscale() == "log" and right.get_ylabel() == "accuracy (%)"
    assert np.isnan(left.lines[0].get_ydata()[3])  # a gap, not an interpolated value
    assert [t.get_text() for t in left.get_legend().get_texts()] == ["train_loss", "train_acc"]


def test_scan_surface_figure_keeps_working():
    fig = surface_figure(GRID, Z, title="t", log=True)
    assert len(fig.axes) == 3 and pixel_std(fig) > 0.05  # contour, colour bar, 3D
    assert len(surface_figure(Grid(GRID.x), Z[0]).axes) == 1


def test_function_figure_marks_minima_and_path():
    path = np.array([[-0.5, 2.0], [0.0, 1.0], [0.1, 0.1]])
    fig = function_figure(GRID, Z, minima=[(0.0, 0.0)], saddles=[(0.5, 1.0)], path=path)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["global minimum", "saddle point", "gradient descent",
                      "first recorded step", "last recorded step"]
    assert pixel_std(fig) > 0.05


def test_plot_package_never_touches_pyplot():
    code = ("import sys, landscape.plot, landscape.io.vtk, landscape.cli.plot; "
            "print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
