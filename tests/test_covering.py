"""The default range of a PCA or interpolation scan: axes covering the projected path."""

import numpy as np
import pytest

from landscape.covering import covering_grid, covering_range
from landscape.grid import parse_axis


def test_the_axes_cover_the_path_the_origin_and_a_margin():
    x = np.array([-11.0, -6.0, -2.5, 0.0])  # e.g. the digits run's PCA path
    y = np.array([0.5, 2.0, -1.0, 0.0])
    grid = covering_grid(x, y, num=31)
    assert grid.shape == (31, 31)
    assert grid.x[0] == pytest.approx(-11 - 0.25 * 11) and grid.x[-1] == pytest.approx(0.25 * 11)
    assert grid.y[0] == pytest.approx(-1 - 0.25 * 3) and grid.y[-1] == pytest.approx(2 + 0.75)
    # the same axis a user would get from --x MIN:MAX:N
    np.testing.assert_array_equal(grid.x, parse_axis(f"{float(grid.x[0])!r}:{float(grid.x[-1])!r}:31"))


def test_points_to_include_and_a_line():
    grid = covering_grid(np.linspace(0.2, 0.8, 5), None, num=11, include=[(0, 0), (1, 0)])
    assert grid.y is None and grid.x[0] == pytest.approx(-0.25) and grid.x[-1] == pytest.approx(1.25)


def test_a_path_that_does_not_spread_and_non_finite_points():
    assert covering_range(np.zeros(4)) == (-1.0, 1.0)
    assert covering_range(np.array([np.nan, np.inf])) == (-1.0, 1.0)
    assert covering_range(np.array([3.0, 3.0])) == (0.0, 6.0)
    lo, hi = covering_range(np.array([1.0, np.nan, 2.0]))
    assert (lo, hi) == (0.75, 2.25)
