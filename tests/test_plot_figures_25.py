"""Figures that misled (issue 25): 3D axis labels cut at the figure's edge ("log10 los", an α
label under the bottom), the spectral density's top peak squeezed against the axis limit, a
log colour map that filled everything under its lowest level with one colour, start and end
markers that no legend explained, interpolation axes that did not say which end is which run."""

import json

import numpy as np
import pytest

from landscape.compare import ComparedPath
from landscape.grid import Grid
from landscape.plot import (
    curves_figure,
    density_figure,
    function_figure,
    kind_figure,
    plane_axis_labels,
    surface_figure,
)
from landscape.plot.compare import comparison_figure

GRID = Grid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21))
YY, XX = np.meshgrid(GRID.y, GRID.x, indexing="ij")
Z = 1e-8 + 3 * XX**2 + YY**2 + 0.5 * XX * YY  # a minimum far below 1e-7
ATTRS = {"direction_kind": "random-filter", "workload": "toy"}
PATHS = {"sgd": {"x": np.linspace(0.8, 0.0, 9), "y": np.linspace(-0.6, 0.0, 9),
                 "step": np.arange(9) * 10, "loss": np.linspace(2, 0.1, 9)}}


def texts_outside(fig) -> list[str]:
    """What of ``fig`` is drawn past its edge (1 pixel of slack): each axes with its labels
    and ticks (as drawn: ``get_tightbbox``), the figure's texts and legends."""
    fig.draw_without_rendering()
    box = fig.bbox
    parts = [(f"axes {k} ({ax.get_xlabel()!r}, {ax.get_ylabel()!r})", ax.get_tightbbox())
             for k, ax in enumerate(fig.axes)]
    parts += [(f"text {t.get_text()!r}", t.get_window_extent()) for t in fig.texts
              if t.get_visible() and t.get_text()]
    parts += [("legend", legend.get_window_extent()) for legend in fig.legends]
    return [name for name, extent in parts
            if extent.x0 < box.x0 - 1 or extent.y0 < box.y0 - 1 or extent.x1 > box.x1 + 1
            or extent.y1 > box.y1 + 1]


def compared(name: str, x, y) -> ComparedPath:
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    return ComparedPath(name=name, optimizer={"name": name}, step=np.arange(n), x=x, y=y,
                        loss=np.linspace(2, 0.01, n), residual=np.zeros(n),
                        relative_residual=np.zeros(n), distance=np.hypot(x, y), length=1.0,
                        metrics={}, projected_loss=np.linspace(2, 0.01, n))


FIGURES = {
    "surface3d": lambda: kind_figure("surface3d", GRID, Z, attrs=ATTRS, log=True,
                                     metric="train_loss", title="toy: train_loss"),
    "scan": lambda: surface_figure(GRID, Z, log=True, title="toy: train_loss"),
    "function": lambda: function_figure(GRID, Z, minima=[(0, 0)], path=np.c_[
        np.linspace(0.8, 0, 9), np.linspace(-0.6, 0, 9)], title="f"),
    "compare": lambda: comparison_figure(GRID, Z, [compared("sgd", [0.8, 0.3, 0], [-0.6, -0.2, 0])],
                                         function=False, log=True, title="toy"),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_every_label_lies_inside_the_figure(name):
    assert texts_outside(FIGURES[name]()) == []


def test_the_top_peak_of_the_density_is_drawn_whole():
    lam = np.linspace(-0.3, 39.2, 4000)  # as hessian's grid: the top node + 5 sigma
    density = np.exp(-0.5 * (lam / 0.06) ** 2) + 1e-3 * np.exp(-0.5 * ((lam - 38.9) / 0.06) ** 2)
    ax = density_figure(lam, density).axes[0]
    lo, hi = ax.get_xlim()
    span = lam[-1] - lam[0]
    assert hi >= lam[-1] + 0.02 * span and lo <= lam[0] - 0.02 * span  # off the spines


def test_the_compare_colour_levels_reach_the_minimum():
    """A log scale whose lowest level sat 1e-5 under the maximum drew everything below it
    (down to the colour bar's 1e-8 here) as one block of the lowest colour."""
    fig = comparison_figure(GRID, Z, [compared("sgd", [0.8, 0], [-0.6, 0])], function=False,
                            log=True)
    contours = next(c for c in fig.axes[0].collections if hasattr(c, "levels"))
    assert contours.levels[0] <= Z.min() * 1.0001


def test_start_and_end_markers_are_in_the_legend():
    legend = kind_figure("filled", GRID, Z, attrs=ATTRS, trajectories=PATHS,
                         log=True).axes[0].get_legend()
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["sgd", "first recorded step", "last recorded step"]
    fig = comparison_figure(GRID, Z, [compared("sgd", [0.8, 0], [-0.6, 0])], function=False,
                            log=True)
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert "first recorded step" in labels and "last recorded step" in labels


def test_interpolation_axes_say_which_end_is_which_run():
    spec = {"directions": "interp", "run": "runs/sgd", "to": ["runs/adam"], "dims": 1}
    attrs = {"direction_kind": "interpolation", "grid": json.dumps(spec)}
    assert plane_axis_labels(attrs)[0] == "α (0: runs/sgd, 1: runs/adam)"
    spec["to"] = ["runs/adam", "runs/rmsprop"]
    attrs["grid"] = json.dumps(spec)
    assert plane_axis_labels(attrs) == ("α (0: runs/sgd, 1: runs/adam)",
                                        "β (0: runs/sgd, 1: runs/rmsprop)")
    line = Grid(np.linspace(-0.5, 1.5, 9), None)
    fig = curves_figure(line, {"train_loss": np.linspace(1, 2, 9)},
                        xlabel=plane_axis_labels(attrs)[0])
    assert fig.axes[0].get_xlabel() == "α (0: runs/sgd, 1: runs/adam)"
