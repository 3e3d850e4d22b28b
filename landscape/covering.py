"""The grid a scan needs to show a projected path: axes that cover every point of it (and any
point that must be seen, such as the plane's origin) with a margin — the default range of a
PCA or interpolation scan, whose path can span far more than [-1, 1]² (the digits run's PCA
path spans x ∈ [-11, 0])."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landscape.grid import Grid


def covering_range(values: np.ndarray, *, margin: float = 0.25, flat: float = 1.0
                   ) -> tuple[float, float]:
    """``(lo, hi)`` of the finite ``values`` widened by ``margin`` of their span on each side;
    values that do not spread (or none) give ``lo - h, hi + h`` with h = ``flat`` · max(|lo|,
    1) (the default: a half-width of 1 around 0)."""
    values = np.asarray(values, np.float64).ravel()
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    span = hi - lo
    if span <= 0:
        half = flat * max(abs(lo), 1.0)
        return lo - half, hi + half
    return lo - margin * span, hi + margin * span


def covering_grid(x: np.ndarray, y: np.ndarray | None, *, num: int = 51, margin: float = 0.25,
                  include: Sequence[Sequence[float]] = ((0.0, 0.0),), flat: float = 1.0) -> Grid:
    """A ``num``-point axis per direction (``y`` None: a line) over the projected path ``(x,
    y)`` (several paths: their points concatenated) and the points ``include`` (default: the
    origin, the model scanned around), widened by ``margin`` of the span on each side; an axis
    whose points do not spread gets the half-width ``flat`` · max(|value|, 1)
    (:func:`covering_range`). Built through :meth:`Grid.from_specs`, so it passes the checks of
    a ``--x MIN:MAX:N`` given by hand (float32 resolution, memory).

    ``landscape scan`` (PCA and interpolation planes) uses the defaults; ``landscape compare``
    covers its paths alone (``include=()``, they hold the origin) with ``flat=margin``."""
    points = np.asarray(include, np.float64).reshape(-1, 2)
    xs = np.concatenate([np.ravel(x), points[:, 0]])
    x_lo, x_hi = covering_range(xs, margin=margin, flat=flat)
    y_spec = None
    if y is not None:
        y_lo, y_hi = covering_range(np.concatenate([np.ravel(y), points[:, 1]]), margin=margin,
                                    flat=flat)
        y_spec = f"{y_lo!r}:{y_hi!r}:{num}"
    return Grid.from_specs(f"{x_lo!r}:{x_hi!r}:{num}", y_spec,
                           names=("the path's x range", "the path's y range"))
