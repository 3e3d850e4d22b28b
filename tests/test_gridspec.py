"""Grid specs (``landscape.grid``): ``MIN:MAX:N`` errors that name the option, the
coordinates' layout, and the float32 rule: an axis is accepted exactly when its points stay
distinct on the devices, which see them as float32 (the CPU backend with subnormals flushed to
zero). The reference is the device itself: the float32 coordinates, as ``evaluate_chunks`` sends
them, compared by a jitted program on a CPU device."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import landscape.engine
import landscape.grid
from landscape.cli import main
from landscape.directions import Plane
from landscape.errors import InputError
from landscape.grid import Grid, parse_axis

F32_MAX = float(np.finfo(np.float32).max)
F32_TINY = float(np.finfo(np.float32).smallest_normal)
F32_BELOW_MAX = np.nextafter(np.float32(F32_MAX), np.float32(0))


@jax.jit
def _increasing_on_device(values):
    return jnp.all(jnp.isfinite(values)) & jnp.all(values[1:] > values[:-1])


def device_sees_distinct_points(lo: float, hi: float, n: int) -> bool:
    """Reference: cast on the host as ``evaluate_chunks`` does, compare on a CPU device (the
    strictest backend: it flushes subnormals, where a GPU may keep them)."""
    with np.errstate(over="ignore"):
        coords = np.linspace(lo, hi, n).astype(np.float32)
    return bool(_increasing_on_device(jax.device_put(coords, jax.devices("cpu")[0])))


def test_the_package_exports_the_grid():
    assert landscape.Grid is Grid


def test_the_refused_axis_really_is_one_point_on_the_device():
    """Why the check exists: 0:1e-40:3 is three float64 values but one point when evaluated."""
    axis = np.linspace(0.0, 1e-40, 3)
    assert len(set(axis.tolist())) == 3
    plane = Plane({"w": np.zeros(1, np.float32)}, {"w": np.ones(1, np.float32)}, None)
    cpu = jax.make_mesh((1,), ("points",), axis_types=(jax.sharding.AxisType.Auto,),
                        devices=jax.devices("cpu")[:1])
    got = landscape.engine.evaluate_points(lambda theta, _: {"alpha": 1e30 * theta["w"][0]}, 0.0,
                                         plane, Grid(axis), chunk=4, mesh=cpu)["alpha"]
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0])
    assert not device_sees_distinct_points(0.0, 1e-40, 3)
    with pytest.raises(InputError):
        parse_axis("0:1e-40:3")


@pytest.mark.parametrize(
    "spec, message",
    [("1:-1:5", "MIN < MAX"), ("0:1:0", "N >= 2"), ("a:1:5", "numbers"), ("0:1", "MIN:MAX:N"),
     ("0:1:2.5", "whole number"), ("0:inf:3", "finite")],
)
def test_parse_axis_errors_name_the_option(spec, message):
    with pytest.raises(InputError, match=message) as info:
        parse_axis(spec, name="--x")
    assert "`--x`" in str(info.value)


def test_parse_axis_is_linspace():
    np.testing.assert_array_equal(parse_axis("-1:1:5"), np.linspace(-1, 1, 5))


def test_coordinates_c_order_over_y_then_x():
    grid = Grid(np.array([0.0, 1.0, 2.0]), np.array([10.0, 20.0]))
    c = grid.coordinates()
    assert c.tolist() == [[0, 10], [1, 10], [2, 10], [0, 20], [1, 20], [2, 20]]
    assert landscape.Grid is Grid


@pytest.mark.parametrize("spec, message", [
    ("0:1e-40:3", "`--x` (=0:1e-40:3): its step, 5e-41, is too fine for float32 near 5e-41 "
                  "(resolution 1.18e-38: smaller magnitudes count as 0), the precision grid "
                  "points are evaluated in; widen MIN:MAX or use a smaller N"),
    ("5e-324:1e-323:2", "`--x` (=5e-324:1e-323:2): its step, 4.94e-324, is too fine for float32 "
                        "near 9.88e-324 (resolution 1.18e-38: smaller magnitudes count as 0)"),
    ("1:1.0000001:3", "`--x` (=1:1.0000001:3): its step, 5e-08, is too fine for float32 near 1 "
                      "(resolution 1.19e-07), the precision grid points are evaluated in; widen "
                      "MIN:MAX or use a smaller N"),
    ("1e3:1001:1000000", "`--x` (=1e3:1001:1000000): its step, 1e-06, is too fine for float32 "
                         "near 1e+03 (resolution 6.1e-05)"),
    ("0:1e39:3", "`--x` (=0:1e39:3): MIN and MAX must lie within ±3.403e+38, the float32 range "
                 "grid points are evaluated in"),
    ("-1e300:1e300:3", "`--x` (=-1e300:1e300:3): MIN and MAX must lie within ±3.403e+38"),
])
def test_axes_not_distinct_in_float32_are_refused_with_what_to_do(spec, message):
    with pytest.raises(InputError) as info:
        parse_axis(spec, name="--x")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("spec", ["-3.4e38:3.4e38:3", "1.2e-38:2.4e-38:2", "0:1e-37:2",
                                  "-1:1:1000000", "1:1.0000002:2"])
def test_axes_distinct_in_float32_are_accepted(spec):
    lo, hi, n = spec.split(":")
    np.testing.assert_array_equal(parse_axis(spec), np.linspace(float(lo), float(hi), int(n)))
    assert device_sees_distinct_points(float(lo), float(hi), int(n))


edges = st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e6, F32_MAX, -F32_MAX, 3.4028236e38, F32_TINY,
                         -F32_TINY, 1e-40, -1e-40, 5e-324, 16777216.0])
magnitudes = st.one_of(
    edges,
    st.floats(-1e39, 1e39, allow_nan=False),
    st.floats(-1e-36, 1e-36, allow_nan=False),
    st.floats(-1e8, 1e8, allow_nan=False),
)


def near_axis(lo: float, ulps: float, n: int) -> tuple[float, float, int]:
    """MIN, a MAX ``ulps`` float32 steps above it, N: an axis at the edge of distinctness."""
    with np.errstate(over="ignore"):
        magnitude = np.abs(np.float32(lo))  # inf beyond float32's range
    # np.spacing is inf at float32's largest value (its next float is inf): use the largest
    # finite step, 2**104, there and beyond the range.
    ulp = float(np.spacing(magnitude)) if magnitude < F32_MAX else float(np.spacing(F32_BELOW_MAX))
    return lo, lo + ulps * max(ulp, F32_TINY), n


@st.composite
def near_axes(draw):
    return near_axis(draw(magnitudes), draw(st.floats(0.25, 40.0)), draw(st.integers(2, 12)))


axes = st.one_of(
    near_axes(),
    # two distinct values (0.0 and -0.0 count as one), sorted: MIN < MAX by construction
    st.tuples(st.lists(magnitudes, min_size=2, max_size=2, unique=True).map(sorted),
              st.integers(2, 12)).map(lambda t: (t[0][0], t[0][1], t[1])),
)


@pytest.mark.parametrize("lo", [3.402823364973241e+38, F32_MAX, -3.402823364973241e+38, 1e39, 0.0,
                                5e-324, 1e8])
@pytest.mark.parametrize("ulps", [0.25, 40.0])
def test_the_strategy_draws_only_valid_axes(lo, ulps):
    """The property below must not fail by its draw: every axis is finite with MIN < MAX (it
    once drew MIN at float32's largest value, whose spacing is inf, and so MAX = inf)."""
    lo, hi, _ = near_axis(lo, ulps, 2)
    assert np.isfinite([lo, hi]).all() and lo < hi


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(axes)
def test_an_axis_is_accepted_exactly_when_the_device_sees_distinct_points(axis):
    lo, hi, n = axis
    assert np.isfinite([lo, hi]).all() and lo < hi, axis  # the strategy draws valid axes only
    spec = f"{lo!r}:{hi!r}:{n}"
    try:
        got = parse_axis(spec, name="--y")
    except InputError as exc:
        assert not device_sees_distinct_points(lo, hi, n), spec
        message = str(exc)
        assert message.startswith(f"`--y` (={spec}): ") and "float32" in message
        assert "widen MIN:MAX or use a smaller N" in message or "must lie within" in message
        return
    assert device_sees_distinct_points(lo, hi, n), spec
    np.testing.assert_array_equal(got, np.linspace(lo, hi, n))


@pytest.mark.parametrize("command, option", [("scan", "--x"), ("compare", "--y")])
def test_the_cli_refuses_such_an_axis_before_any_work(tmp_path, command, option):
    result = CliRunner().invoke(main, [command, option, "0:1e-40:3", "--quiet",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert errors[0] == (f"Error: `{option}` (=0:1e-40:3): its step, 5e-41, is too fine for "
                         "float32 near 5e-41 (resolution 1.18e-38: smaller magnitudes count as 0), "
                         "the precision grid points are evaluated in; widen MIN:MAX or use a "
                         "smaller N")
    assert not (tmp_path / "surface.h5").exists()


def test_an_axis_spanning_the_float32_range_is_checked_without_an_overflow():
    """Neighbouring points are compared, not subtracted (their difference can pass float32's
    maximum): no RuntimeWarning, which `-W error` would turn into a crash."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(parse_axis("-3.4e38:3.4e38:2", name="x"), [-3.4e38, 3.4e38])
