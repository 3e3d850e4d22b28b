"""Property tests of grid specs: whatever the text, ``parse_axis`` / ``Grid.from_specs`` give a
valid axis or raise InputError (never another exception, never a huge allocation), and the CLI
turns a bad spec into a one-line usage error."""

import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landscape.cli import main
from landscape.errors import InputError
from landscape.grid import MAX_AXIS_POINTS, Grid, parse_axis

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-10, 10),
    st.integers(-(10**400), 10**400),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-0", "0x10", "1_000", " 1", "", "-", "e"]),
)
counts = st.one_of(
    st.integers(-5, 60),
    st.integers(),
    st.sampled_from([MAX_AXIS_POINTS, MAX_AXIS_POINTS + 1, 10**12, "2.0", "3e2", "nan", "",
                     " 7 ", "1_0", "-0", "+5"]),
)
triples = st.builds(lambda lo, hi, n: f"{lo}:{hi}:{n}", numbers, numbers, counts)
spec_text = st.one_of(
    triples,
    st.text(max_size=30),
    st.text(alphabet="0123456789.-+:eEinfa_ x", max_size=20),
)


def check_axis(axis: np.ndarray) -> None:
    assert isinstance(axis, np.ndarray) and axis.dtype == np.float64 and axis.ndim == 1
    assert 2 <= axis.size <= MAX_AXIS_POINTS
    assert np.isfinite(axis).all() and (np.diff(axis) > 0).all()


@FAST
@given(spec_text)
def test_parse_axis_gives_a_valid_axis_or_an_input_error(spec):
    try:
        axis = parse_axis(spec, name="--x")
    except InputError as exc:
        message = str(exc)
        assert message.startswith("`--x` (=") and "\n" not in message
        return
    check_axis(axis)
    lo, hi, n = spec.split(":")
    assert axis.size == int(n) and axis[0] == float(lo) and axis[-1] == float(hi)


@st.composite
def well_formed_axes(draw) -> tuple[float, float, int]:
    """MIN < MAX, N whose step exceeds 1e-6 of the largest magnitude (> 8 float32 ulps:
    distinct on the devices), by construction: no draw is discarded."""
    lo, n = draw(st.floats(-1e6, 1e6)), draw(st.integers(2, 500))
    # step = width / (n - 1) > 1e-6 * (|lo| + width) >= 1e-6 * max(|lo|, |hi|) holds for any
    # width above 2e-6 * (n - 1) * |lo|, since 1 / (n - 1) - 1e-6 > 1 / (2 (n - 1)) for n <= 500.
    width = max(draw(st.floats(1e-6, 1e6)), 2e-6 * (n - 1) * abs(lo))
    return lo, lo + width, n


@FAST
@given(well_formed_axes())
def test_well_formed_specs_are_linspaces(axis):
    lo, hi, n = axis
    assert (hi - lo) / (n - 1) > 1e-6 * max(abs(lo), abs(hi))  # the strategy's promise
    axis = parse_axis(f"{lo!r}:{hi!r}:{n}")
    np.testing.assert_array_equal(axis, np.linspace(lo, hi, n))


@settings(max_examples=100, deadline=None)
@given(spec_text, st.one_of(st.none(), spec_text))
def test_grid_from_specs_gives_a_grid_or_an_input_error(x, y):
    try:
        grid = Grid.from_specs(x, y)
    except InputError:
        return
    check_axis(grid.x)
    if y is not None:
        check_axis(grid.y)
    size = grid.x.size * (1 if y is None else grid.y.size)
    assert grid.num_points == math.prod(grid.shape) == size


bad_triples = st.one_of(
    st.builds(lambda lo, d, n: f"{lo}:{lo - d}:{n}", st.integers(-9, 9), st.integers(0, 9),
              st.integers(2, 9)),  # MIN >= MAX
    st.builds(lambda n: f"-1:1:{n}", st.integers(-(10**6), 1)),  # N < 2
    st.builds(lambda n: f"-1:1:{n}", st.integers(MAX_AXIS_POINTS + 1, 10**30)),  # N too large
    st.builds(lambda word: f"{word}:1:5", st.sampled_from(["nan", "inf", "x", "", "1..2"])),
)


@settings(max_examples=8, deadline=None)
@given(bad_triples)
def test_cli_refuses_bad_specs_with_one_line_usage_error(tmp_path_factory, spec):
    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(main, ["scan", "--x", spec, "--quiet", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"`--x` (={spec})" in errors[0], result.output


@pytest.mark.parametrize("spec", ["-1:1:2", f"0:1:{MAX_AXIS_POINTS}", "-3.4e38:3.4e38:3",
                                  "1.2e-38:2.4e-38:2"])
def test_edges_that_are_still_valid(spec):
    check_axis(parse_axis(spec))
