"""Grid specs: ``MIN:MAX:N`` axes (or the coordinates themselves, any increasing sequence) and
the :class:`Grid` they make, checked before anything of the grid's size is allocated.

An axis is refused unless its points stay distinct where they are used: the evaluator
(:mod:`landscape.engine`) sends coordinates to the devices as float32, and XLA's CPU backend
flushes float32 subnormals to zero, so ``0:1e-40:3`` — three distinct float64 values — would be
one point. Subnormals count as zero on every backend (a GPU may keep them), so a spec accepted
here is valid wherever it runs.

A grid whose result arrays would not fit in the memory available now is refused with the
estimate (:meth:`Grid.checked_size`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np

from landscape.errors import InputError

MAX_AXIS_POINTS = 1_000_000  # per axis; refused before anything is allocated

DEVICE_DTYPE = np.float32  # of the coordinates sent to the devices (see engine.chunks)
_DEVICE_INFO = np.finfo(DEVICE_DTYPE)


def parse_axis(spec: str | Sequence[float] | np.ndarray, *, name: str = "--x") -> np.ndarray:
    """``"MIN:MAX:N"`` → ``np.linspace(MIN, MAX, N)`` (float64); an array or sequence of numbers
    is taken as the coordinates themselves. Errors say what is wrong.

    The result always has 2 <= N <= ``MAX_AXIS_POINTS`` finite values that are strictly
    increasing both in float64 and once cast to float32 with subnormals flushed to zero (as the
    devices see them); anything else is an :class:`InputError` (raised before the axis is
    allocated, except for the distinctness check, which needs the values).
    """
    if not isinstance(spec, str):
        return _coordinates(spec, name)
    text = str(spec)
    if not text.isprintable():  # a newline or control character must not break the message
        spec = repr(text)[1:-1]
    parts = text.split(":")
    if len(parts) != 3:
        raise InputError(f"`{name}` (={spec}) must look like MIN:MAX:N, e.g. -1:1:51, or be "
                         "the coordinates themselves (a sequence of numbers)")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"`{name}` (={spec}): MIN and MAX must be numbers") from None
    try:
        n = int(parts[2])
    except ValueError:
        raise InputError(f"`{name}` (={spec}): N must be a whole number") from None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(f"`{name}` (={spec}): MIN and MAX must be finite")
    if not lo < hi:
        raise InputError(f"`{name}` (={spec}) must have MIN < MAX")
    if n < 2:
        raise InputError(f"`{name}` (={spec}) must have N >= 2")
    if n > MAX_AXIS_POINTS:
        raise InputError(f"`{name}` (={spec}) must have N <= {MAX_AXIS_POINTS:,} points per axis")
    if not np.isfinite(_on_device(np.array([lo, hi]))).all():
        raise InputError(
            f"`{name}` (={spec}): MIN and MAX must lie within ±{float(_DEVICE_INFO.max):.4g}, "
            "the float32 range grid points are evaluated in"
        )
    return _distinct_on_device(np.linspace(lo, hi, n), spec, name)


def _coordinates(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    """An axis given as its coordinates: a 1-D increasing sequence of finite numbers."""
    try:
        axis = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"`{name}` must be MIN:MAX:N or a sequence of numbers, not "
                         f"{type(values).__name__}") from None
    shown = np.array2string(axis, threshold=6, precision=4) if axis.size else "[]"
    if axis.ndim != 1:
        raise InputError(f"`{name}` (={shown}) must be one axis: a 1-D sequence, not shape "
                         f"{axis.shape}")
    if not 2 <= axis.size <= MAX_AXIS_POINTS:
        raise InputError(f"`{name}` (={shown}) must have between 2 and {MAX_AXIS_POINTS:,} "
                         "points")
    if not np.isfinite(_on_device(axis)).all():
        raise InputError(f"`{name}` (={shown}) must be finite numbers within "
                         f"±{float(_DEVICE_INFO.max):.4g}, the float32 range grid points are "
                         "evaluated in")
    if not np.all(axis[1:] > axis[:-1]):
        raise InputError(f"`{name}` (={shown}) must be strictly increasing")
    return _distinct_on_device(axis, shown, name)


def _distinct_on_device(axis: np.ndarray, spec: str, name: str) -> np.ndarray:
    """``axis`` if its points stay distinct once on the devices, else the error saying why."""
    # Rounding to float32 is monotone: float64 values out of order or equal stay so, so this
    # also refuses a step below float64 resolution.
    on_device = _on_device(axis)
    same = np.flatnonzero(~(on_device[1:] > on_device[:-1]))  # compared, not subtracted: no overflow
    if same.size:
        step = float(axis[same[0] + 1] - axis[same[0]])  # 0 when below float64's resolution
        step_text = f"{step:.3g}" if step > 0 else f"below {math.ulp(0.0):.3g}"
        near = float(np.abs(axis[same[0] : same[0] + 2]).max())
        tiny = float(_DEVICE_INFO.smallest_normal)
        if near < tiny:
            resolution = f"{tiny:.3g}: smaller magnitudes count as 0"
        else:
            with np.errstate(over="ignore"):
                spacing = float(np.spacing(DEVICE_DTYPE(near)))
            if not math.isfinite(spacing):  # at float32's largest value: the spacing below it
                spacing = float(DEVICE_DTYPE(near) - np.nextafter(DEVICE_DTYPE(near), DEVICE_DTYPE(0)))
            resolution = f"{spacing:.3g}"
        raise InputError(
            f"`{name}` (={spec}): its step, {step_text}, is too fine for float32 near {near:.3g} "
            f"(resolution {resolution}), the precision grid points are evaluated in; widen "
            "MIN:MAX or use a smaller N"
        )
    return axis


def _on_device(values: np.ndarray) -> np.ndarray:
    """``values`` as the devices see them: cast to float32 (overflow → ±inf), subnormals
    flushed to zero (as XLA's CPU backend computes; the strictest backend decides)."""
    with np.errstate(over="ignore"):
        cast = values.astype(DEVICE_DTYPE)
    return np.where(np.abs(cast) < _DEVICE_INFO.smallest_normal, DEVICE_DTYPE(0), cast)


@dataclasses.dataclass(frozen=True)
class Grid:
    """x coordinates and, for a 2D grid, y coordinates (both float64)."""

    x: np.ndarray  # (nx,)
    y: np.ndarray | None = None  # (ny,)

    @classmethod
    def from_specs(cls, x: str | Sequence[float] | np.ndarray,
                   y: str | Sequence[float] | np.ndarray | None = None, *,
                   names: tuple[str, str] = ("--x", "--y")) -> "Grid":
        """The grid of ``MIN:MAX:N`` specs or coordinate sequences (``names``: the options they
        came from, for errors); one too large for memory is refused here, before anything of
        its size is allocated."""
        grid = cls(parse_axis(x, name=names[0]),
                   None if y is None else parse_axis(y, name=names[1]))
        return grid.checked_size()

    def checked_size(self, num_outputs: int = 1) -> "Grid":
        """This grid, or an :class:`InputError` (with the estimate) if ``num_outputs`` result
        arrays of its size would not fit in memory; nothing of that size is allocated."""
        _check_fits_in_memory(self, num_outputs)
        return self

    @property
    def ndim(self) -> int:
        return 1 if self.y is None else 2

    @property
    def shape(self) -> tuple[int, ...]:
        """(nx,) for 1D, (ny, nx) for 2D."""
        return (len(self.x),) if self.y is None else (len(self.y), len(self.x))

    @property
    def num_points(self) -> int:
        return math.prod(self.shape)

    def coordinates(self) -> np.ndarray:
        """(num_points, 2) float64 (alpha, beta) in C order over (y, x); beta = 0 in 1D."""
        if self.y is None:
            return np.stack([self.x, np.zeros_like(self.x)], axis=1)
        yy, xx = np.meshgrid(self.y, self.x, indexing="ij")
        return np.stack([xx.ravel(), yy.ravel()], axis=1)


def interpolate(grid: Grid, values: np.ndarray, x: np.ndarray,
                y: np.ndarray | None = None) -> np.ndarray:
    """``values`` (grid.shape) at the points (x, y), linear along each axis (bilinear on a
    plane, so exact for data of the form a + b·x + c·y + d·x·y), in float64; NaN outside the
    grid and next to a NaN point. On a 1D grid ``y`` is ignored; on a 2D grid a missing ``y``
    is 0. Values are interpolated as stored (a log scale is taken of the result, not of the
    values). The heights under a trajectory in every figure, VTK polyline and HTML page."""
    from scipy.interpolate import RegularGridInterpolator

    x = np.asarray(x, np.float64)
    values = np.asarray(values, np.float64)
    if grid.y is None:
        table = RegularGridInterpolator((grid.x,), values, bounds_error=False, fill_value=np.nan)
        return table(x[:, None])
    y = np.zeros_like(x) if y is None else np.asarray(y, np.float64)
    table = RegularGridInterpolator((grid.y, grid.x), values, bounds_error=False,
                                    fill_value=np.nan)
    return table(np.stack([y, x], axis=1))


def available_memory_bytes() -> int:
    """Memory available to this process now (Linux ``MemAvailable``, else total physical)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_fits_in_memory(grid: Grid, num_outputs: int) -> None:
    """Refuse up front a grid whose result arrays alone would not fit in memory."""
    needed = grid.num_points * 8 * (num_outputs + 3)  # results + coordinates + done mask
    available = available_memory_bytes()
    if needed > available // 2:
        raise InputError(
            f"a grid of {grid.num_points:,} points ({' x '.join(map(str, grid.shape))}) needs about "
            f"{needed / 2**30:.1f} GiB for its results alone; {available / 2**30:.1f} GiB is "
            f"available. Use fewer points per axis (`--x`, `--y`, `--grid`)."
        )
