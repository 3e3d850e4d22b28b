"""Whether a surface's picture can be trusted: the checks ``landscape check FILE`` prints (and
every ``landscape scan`` ends with).

Users of Li et al.'s code keep asking why their picture differs from the paper's
(tomgoldstein/loss-landscape#25, #36, #44, #47). What decides it, each read from the file alone:

- ``centre``: the surface's loss at (0, 0) against the model's own loss recorded beside it
  (``train_loss_at_origin``). They are the same function at the same point; a difference means
  the scan evaluated something else — BatchNorm in training mode (batch statistics), a wrong or
  missing state, dropout left on.
- ``scale``: each layer's ‖direction‖ / ‖weights‖. Filter and layer normalization make it 1
  (Li et al. 2018, §4), so a step of α moves every layer by the same fraction of its weights;
  un-normalized random directions move some layers many times further than others, and the
  picture's width then says nothing comparable. Filter normalization makes it 1 in every
  output filter too: where the file records its layout (``output_axis``), each filter along
  the recorded axes is checked, and the leaves it gives no output axis are the biases (zeroed
  or copied); in a file without one, the 1-D leaves are, as every earlier version made them.
- ``finite``: the share of points whose value is NaN/inf (gaps in every figure).
- ``basin``: whether the grid resolves the minimum: the region below twice the lowest loss
  must span enough grid points along each axis, and stay inside the grid.
- ``path``: how much of each projected trajectory the plane holds: 1 − Σ residual² / Σ
  ‖θ − origin‖² over its recorded points (the stored least-squares residuals). A path mostly
  off the plane is a shadow: the loss under its projection is not the loss it met.

:func:`check_surface` returns :class:`Finding` s; nothing here prints. A file without
provenance (one of Li et al.'s) gets ``unknown`` findings saying what cannot be checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from landscape.io.surface_record import SurfaceRecord

OK, WARNING, UNKNOWN = "OK", "warning", "unknown"
CENTRE_RTOL = 1e-2  # same function, same point: only summation order and batching differ
SCALE_RTOL = 1e-3  # a normalized leaf's ratio is 1 up to float32 rounding (and Li et al.'s eps)
SCALE_SPREAD = 2.0  # un-normalized directions whose layers' ratios differ more than this
BASIN_POINTS = 5  # grid points the region below twice the minimum must span along each axis
PATH_HELD = 0.5  # a path with less of its squared distance in the plane is mostly off it
BY_DESIGN = {"pca": "PCA components are unit vectors",
             "interpolation": "interpolation directions are differences between models",
             "hessian": "Hessian eigenvectors are unit vectors",
             "file": "directions reused from another surface file"}


class Finding(NamedTuple):
    """One check's verdict: ``topic`` (``points``, ``centre``, ``scale``, ``finite``,
    ``basin``, ``path``), ``status`` (``OK``, ``warning``, ``unknown``) and ``message``, which
    says what was measured and, for a warning, what to change."""

    topic: str
    status: str
    message: str

    def line(self) -> str:
        """``"basin    warning  ..."``: the line ``landscape check`` prints."""
        return f"{self.topic:<8} {self.status:<8} {self.message}"


def check_surface(surface: Any) -> list[Finding]:
    """Every check of a surface (a :class:`landscape.Surface` or what
    :func:`landscape.io.surface_h5.read` returns), in a fixed order."""
    record = SurfaceRecord.from_attrs(surface.attrs)
    return [check_points(surface), check_centre(surface, record), check_scale(surface, record),
            check_finite(surface), check_basin(surface, record),
            *check_paths(surface, record)]


def loss_metric(surface: Any) -> str | None:
    """The loss the checks read: ``train_loss``, else the first ``*_loss``; None without one."""
    if "train_loss" in surface.values:
        return "train_loss"
    return next((name for name in sorted(surface.values) if name.endswith("loss")), None)


def check_points(surface: Any) -> Finding:
    done = np.asarray(surface.done, bool)
    count, total = int(done.sum()), done.size
    if getattr(surface, "done_rule", "mask") != "mask":
        return Finding("points", UNKNOWN, f"{count:,} of {total:,} computed by the values (no "
                       "`done` mask, as in Li et al.'s files): the file cannot say it is "
                       "finished")
    if count == total:
        return Finding("points", OK, f"all {total:,} points done")
    return Finding("points", WARNING, f"{count:,} of {total:,} points done: the scan is "
                   "incomplete (resume it with the same command); the checks below read the "
                   "finished points")


def _centre_index(grid: Any) -> tuple[int, ...] | None:
    """The grid index of (0, 0) — (iy, ix), or (ix,) on a line — or None if no point is there."""
    index = []
    for axis in ([grid.y] if grid.y is not None else []) + [grid.x]:
        axis = np.asarray(axis, np.float64)
        span = max(float(axis[-1] - axis[0]), 1e-300)
        k = int(np.argmin(np.abs(axis)))
        if abs(axis[k]) > 1e-9 * span:
            return None
        index.append(k)
    return tuple(index)


def check_centre(surface: Any, record: SurfaceRecord) -> Finding:
    own = record.train_loss_at_origin
    if record.direction_kind == "parameters":
        return Finding("centre", OK, "a test function: the surface is the function itself")
    if "train_loss" not in surface.values:
        return Finding("centre", UNKNOWN, "no `train_loss` in the file: nothing to compare "
                       "with the model's loss")
    if own is None or not math.isfinite(own):
        return Finding("centre", UNKNOWN, "the file records no loss of the model itself "
                       "(`train_loss_at_origin`; Li et al.'s files and the Python API's carry "
                       "none): cannot tell whether the scan evaluated the model as trained")
    index = _centre_index(surface.grid)
    if index is None:
        return Finding("centre", UNKNOWN, "the grid has no point at (0, 0), the model itself "
                       "(an even number of points on a symmetric range, or a range fitted to a "
                       f"path): cannot compare with its own loss {own:.6g}")
    if not surface.done[index]:
        return Finding("centre", UNKNOWN, "the centre (0, 0) is not scanned yet")
    at = float(surface.values["train_loss"][index])
    if record.samples:
        return Finding("centre", UNKNOWN, f"loss at (0, 0) {at:.6g} on a subset of "
                       f"{record.samples.get('num')} samples, the model's own {own:.6g} on the "
                       "whole training set: not comparable")
    if math.isfinite(at) and abs(at - own) <= max(CENTRE_RTOL * abs(own), 1e-12):
        return Finding("centre", OK, f"loss at (0, 0) {at:.6g} = the model's own {own:.6g} "
                       f"(within {100 * CENTRE_RTOL:g} %)")
    off = (f"{100 * (at - own) / abs(own):+.0f} %" if own and math.isfinite(at)
           else "different")
    return Finding("centre", WARNING, f"loss at (0, 0) {at:.6g} but the model's own is "
                   f"{own:.6g} ({off}): the scan evaluated another function than the one the "
                   "model was measured with — BatchNorm in training mode (batch statistics), a "
                   "wrong or missing state (running statistics), or dropout left on; evaluate in "
                   "eval mode with the trained state")


def _leaves(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """A stored pytree (nested dicts) as ``{leaf path: array}``; leaves that are not real
    numbers (a file may hold anything) are left out."""
    if isinstance(tree, Mapping):
        out = {}
        for key in sorted(tree):
            out.update(_leaves(tree[key], f"{prefix}/{key}" if prefix else str(key)))
        return out
    leaf = np.asarray(tree)
    if leaf.dtype.kind not in "fiub":
        return {}
    return {prefix or "(root)": leaf.astype(np.float64)}


def direction_ratios(surface: Any, key: str = "d1") -> dict[str, float]:
    """``{leaf path: ‖direction leaf‖ / ‖weights leaf‖}`` (leaves whose weights are all zero
    left out), or ``{}`` when the file stores no such direction."""
    origin, direction = surface.directions.get("origin"), surface.directions.get(key)
    if origin is None or direction is None:
        return {}
    weights, steps = _leaves(origin), _leaves(direction)
    ratios = {}
    for name, w in weights.items():
        d = steps.get(name)
        norm = float(np.linalg.norm(w))
        if d is not None and d.shape == w.shape and norm > 0:
            ratios[name] = float(np.linalg.norm(d)) / norm
    return ratios


def _output_axes(origin: Mapping[str, np.ndarray], recorded: Any) -> dict[str, int | None]:
    """``{leaf path: output axis or None}`` of the stored origin's leaves under the layout a
    file ``recorded`` (:attr:`SurfaceRecord.output_axis`); a file without one (an earlier
    version's, or directions made without one) by the last-axis rule every earlier version
    used. 1-D leaves and scalars have none."""
    def rule(w: np.ndarray, name: str) -> int | None:
        if w.ndim <= 1:
            return None
        if isinstance(recorded, Mapping) and name in recorded:
            axis = recorded[name]
            return axis if axis is None or axis < w.ndim else w.ndim - 1
        return 0 if recorded == "first" else w.ndim - 1

    return {name: rule(w, name) for name, w in origin.items()}


def _filter_off(origin: Mapping[str, np.ndarray], direction: Mapping[str, np.ndarray],
                axes: Mapping[str, int | None]) -> tuple[str, int, int, float] | None:
    """The first output filter (``(leaf, axis, filter index, ‖d_f‖/‖w_f‖)``) whose norm is
    not its weights' (filters of zero weights left out), or None."""
    for name, w in origin.items():
        d, axis = direction.get(name), axes.get(name)
        if axis is None or d is None or d.shape != w.shape:
            continue
        others = tuple(i for i in range(w.ndim) if i != axis)
        w_norm = np.sqrt(np.sum(w * w, axis=others))
        d_norm = np.sqrt(np.sum(d * d, axis=others))
        live = w_norm > 0
        ratio = np.where(live, d_norm / np.where(live, w_norm, 1.0), 1.0)
        off = np.flatnonzero(np.abs(ratio - 1.0) > SCALE_RTOL)
        if off.size:
            return name, axis, int(off[0]), float(ratio[off[0]])
    return None


def _range_text(ratios: Mapping[str, float]) -> str:
    lo, hi = min(ratios, key=ratios.get), max(ratios, key=ratios.get)
    if lo == hi:
        return f"{ratios[lo]:.3g} ({lo})"
    return f"{ratios[lo]:.3g} ({lo}) to {ratios[hi]:.3g} ({hi})"


def check_scale(surface: Any, record: SurfaceRecord) -> Finding:
    d1 = surface.directions.get("d1")
    if d1 is None or (isinstance(d1, Mapping) and not d1):
        dir_file = getattr(surface, "others", {}).get("dir_file")
        named = (f" (their `dir_file` names {dir_file.value!r})"
                 if dir_file is not None and isinstance(dir_file.value, str) else "")
        return Finding("scale", UNKNOWN, "the file stores no directions (Li et al.'s keep them "
                       f"in a separate direction file{named}): cannot check their normalization")
    kind, normalization = record.direction_kind, record.normalization
    if kind == "parameters":
        return Finding("scale", OK, "a test function: the plane is its parameter space")
    keys = ["d1"] + (["d2"] if surface.directions.get("d2") is not None else [])
    ratios = {key: direction_ratios(surface, key) for key in keys}
    if not any(ratios.values()):
        return Finding("scale", UNKNOWN, "no leaf of the directions has a leaf of the same "
                       "name and shape with nonzero weights in the stored origin: cannot compare "
                       "their norms")
    origin = _leaves(surface.directions["origin"])
    axes = _output_axes(origin, record.output_axis)
    layers = {name for name, axis in axes.items() if axis is not None}  # else biases, scales
    if kind in BY_DESIGN:
        shown = {n: r for n, r in ratios["d1"].items() if n in layers} or ratios["d1"]
        explained = ""
        if record.explained_variance:
            explained = (f"; the plane explains {100 * sum(record.explained_variance):.1f} % of "
                         "the variance of the path(s) it was computed from")
        return Finding("scale", OK, f"{kind} directions, not normalized per layer by design "
                       f"({BY_DESIGN[kind]}); ‖d1‖/‖w‖ from {_range_text(shown)}{explained}")
    if normalization in ("filter", "layer"):
        ignore = record.ignore or "biasbn"
        orthogonal = bool((record.spec or {}).get("orthogonal"))
        for key in keys:
            if key == "d2" and orthogonal:  # rescaled as a whole after Gram-Schmidt
                continue
            for name, ratio in ratios[key].items():
                want = 1.0 if name in layers or ignore == "none" else 0.0
                if abs(ratio - want) > SCALE_RTOL:
                    return Finding("scale", WARNING, f"{normalization} normalization is "
                                   f"recorded, but leaf `{name}` of {key} has ‖{key}‖/‖w‖ = "
                                   f"{ratio:.4g} (expected {want:g}): the directions were not "
                                   "normalized as the file says (edited, or written by other "
                                   "code); scan again with `--directions filter`")
        if normalization == "filter" and record.output_axis is not None:
            for key in keys:
                if key == "d2" and orthogonal:
                    continue
                found = _filter_off(origin, _leaves(surface.directions[key]), axes)
                if found is not None:
                    name, axis, index, ratio = found
                    return Finding("scale", WARNING, "filter normalization is recorded along "
                                   f"output axis {axis} of leaf `{name}`, but filter {index} of "
                                   f"{key} there has ‖{key}_f‖/‖w_f‖ = {ratio:.4g} (expected "
                                   "1): the directions were normalized along another axis, or "
                                   "edited; scan again with the model's layout (`output_axis`)")
        zeroed = "1-D leaves zeroed" if ignore == "biasbn" else "1-D leaves copy the weights"
        where = ("filter" if normalization == "filter" and record.output_axis is not None
                 else "layer")
        layout = ("" if record.output_axis is None else
                  f", filters along each kernel's {record.output_axis} axis"
                  if isinstance(record.output_axis, str)
                  else ", filters along the axis recorded for each leaf")
        return Finding("scale", OK, f"‖d‖/‖w‖ = 1 in every {where} ({normalization} "
                       f"normalization as recorded{layout}, {zeroed})")
    shown = {n: r for n, r in ratios["d1"].items() if n in layers and r > 0} or {
        n: r for n, r in ratios["d1"].items() if r > 0}
    if not shown:
        return Finding("scale", WARNING, "d1 is zero in every layer: the surface is flat by "
                       "construction")
    spread = max(shown.values()) / min(shown.values())
    what = f"{normalization or 'unknown'} normalization"
    if spread > SCALE_SPREAD:
        return Finding("scale", WARNING, f"directions not normalized per layer ({what}): "
                       f"‖d1‖/‖w‖ from {_range_text(shown)}, {spread:.3g}× apart, so a step "
                       "moves some layers much further, relative to their weights, than "
                       "others and the picture's width is not comparable between models (Li "
                       "et al. §4); use filter-normalized directions (`--directions filter`)")
    return Finding("scale", OK, f"{what}; ‖d1‖/‖w‖ from {_range_text(shown)}, within "
                   f"{SCALE_SPREAD:g}× across layers")


def check_finite(surface: Any) -> Finding:
    done = np.asarray(surface.done, bool)
    if not surface.values:
        return Finding("finite", UNKNOWN, "no metric in the file")
    if not done.any():
        return Finding("finite", UNKNOWN, "no finished point to check")
    bad = np.zeros(done.shape, bool)
    worst = None
    for name in sorted(surface.values):
        here = ~np.isfinite(surface.values[name]) & done
        if here.any() and worst is None:
            worst = name
        bad |= here
    count, total = int(bad.sum()), int(done.sum())
    if not count:
        return Finding("finite", OK, f"every finished point finite ({total:,})")
    return Finding("finite", WARNING, f"{count:,} of {total:,} points ({100 * count / total:.3g} "
                   f"%) are NaN/inf (first in `{worst}`), drawn as gaps: the model diverges "
                   "there (narrow the range) or the loss overflows (evaluate in higher "
                   "precision)")


def _component_extent(mask: np.ndarray, seed: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    """The connected region of ``mask`` holding ``seed``: its extent in points per axis (in
    the array's axis order) and whether it touches the grid's edge."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    region = labels == labels[seed]
    extent, edge = [], False
    for axis in range(mask.ndim):
        hit = np.flatnonzero(region.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        extent.append(int(hit[-1] - hit[0] + 1))
        edge |= bool(hit[0] == 0 or hit[-1] == mask.shape[axis] - 1)
    return np.array(extent), edge


def _half_width(axis: np.ndarray, z: np.ndarray, k: int, level: float) -> float | None:
    """Where a parabola through the minimum and its neighbours along one axis reaches
    ``level``: an estimate of the basin's half-width there (None if not convex)."""
    if not 0 < k < len(axis) - 1 or not np.isfinite(z[k - 1: k + 2]).all():
        return None
    h = 0.5 * (axis[k + 1] - axis[k - 1])
    curvature = (z[k - 1] + z[k + 1] - 2 * z[k]) / h**2  # second difference: 2a in a x² + ...
    if not curvature > 0:
        return None
    return math.sqrt(2 * (level - z[k]) / curvature)


def check_basin(surface: Any, record: SurfaceRecord) -> Finding:
    metric = loss_metric(surface)
    if metric is None:
        return Finding("basin", UNKNOWN, "no loss in the file (an eigenvalue map?): no basin "
                       "to resolve")
    z = np.where(surface.done, surface.values[metric], np.nan)
    if not np.isfinite(z).any():
        return Finding("basin", UNKNOWN, f"`{metric}` has no finite value yet")
    index = np.unravel_index(int(np.nanargmin(z)), z.shape)
    low = float(z[index])
    grid = surface.grid
    axes = [grid.y, grid.x] if grid.y is not None else [grid.x]  # array axis order
    where = ", ".join(f"{a[i]:.3g}" for a, i in zip(axes[::-1], index[::-1]))
    if not low > 0:
        return Finding("basin", UNKNOWN, f"lowest `{metric}` {low:.3g} at ({where}) is not "
                       "positive: twice it is no level around a basin")
    level = 2 * low
    extent, edge = _component_extent(np.nan_to_num(z, nan=np.inf) <= level, index)
    across = " × ".join(str(n) for n in extent[::-1])  # x first
    on_edge = any(i in (0, len(a) - 1) for a, i in zip(axes, index))
    if on_edge:
        return Finding("basin", WARNING, f"lowest `{metric}` {low:.3g} is on the grid's edge, at "
                       f"({where}): the loss keeps falling outside the scanned range; widen it")
    if extent.min() < BASIN_POINTS:
        widths = [_half_width(np.asarray(a, np.float64), np.moveaxis(z, d, 0)[
            (slice(None),) + tuple(i for j, i in enumerate(index) if j != d)], index[d], level)
            for d, a in enumerate(axes)]
        zoom = _zoom(axes, index, widths) or " or use more points"
        return Finding("basin", WARNING, f"the region below twice the minimum ({level:.3g}) "
                       f"spans {across} grid points: the grid is coarser than the basin, so the "
                       f"picture does not show its shape; zoom in{zoom}")
    if edge:
        return Finding("basin", WARNING, f"the region below twice the minimum ({level:.3g}) "
                       "reaches the grid's edge: the basin is wider than the scanned range; "
                       "widen it")
    return Finding("basin", OK, f"the region below twice the minimum ({level:.3g}) spans "
                   f"{across} grid points")


def _zoom(axes: list, index: tuple, widths: list) -> str:
    """``": --range -0.003:0.003"`` (or ``--x ... --y ...``): axes centred on the minimum,
    twice the basin's estimated half-width on each side, with enough points that the basin
    spans at least 2 × :data:`BASIN_POINTS` of them."""
    if any(w is None for w in widths):
        return ""
    specs = []
    for axis, k, w in zip(axes, index, widths):
        n = max(len(axis), 4 * BASIN_POINTS + 1)
        specs.append((float(axis[k]) - 2 * w, float(axis[k]) + 2 * w, n))
    fmt = lambda v: f"{v:.2g}"  # noqa: E731
    centred = all(abs(lo + hi) <= 1e-12 * abs(hi) for lo, hi, _ in specs)
    if centred and len({n for _, _, n in specs}) == 1:  # one range for both: the wider one
        top, n = max(hi for _, hi, _ in specs), specs[0][2]
        more = f" --grid {n}" if n != len(axes[0]) else ""
        return f": --range {fmt(-top)}:{fmt(top)}{more}"
    names = ["--y", "--x"] if len(specs) == 2 else ["--x"]
    return ":" + "".join(f" {name} {fmt(lo)}:{fmt(hi)}:{n}"
                         for name, (lo, hi, n) in sorted(zip(names, specs)))


def path_share(surface: Any, name: str) -> float | None:
    """The share of trajectory ``name``'s squared distance from the origin that the plane
    holds, 1 − Σ residual² / Σ ‖θ − origin‖² (None without stored residuals)."""
    entry = surface.trajectories[name]
    if "residual" not in entry:
        return None
    residual = np.asarray(entry["residual"], np.float64)
    offset = _offsets(surface, entry)
    if offset is None and "relative_residual" in entry:
        relative = np.asarray(entry["relative_residual"], np.float64)
        ok = relative > 0
        offset = np.where(ok, residual / np.where(ok, relative, 1.0), residual)
    if offset is None:
        return None
    total = float(np.sum(offset**2))
    return 1.0 if total == 0 else max(0.0, 1.0 - float(np.sum(residual**2)) / total)


def _offsets(surface: Any, entry: Mapping[str, np.ndarray]) -> np.ndarray | None:
    """‖θ − origin‖ at each recorded point: ‖x d1 + y d2‖ (in the plane) and the residual."""
    def flat(tree: Any) -> np.ndarray | None:
        leaves = [a.ravel() for a in _leaves(tree).values()] if tree is not None else []
        return np.concatenate(leaves) if leaves else None

    v1 = flat(surface.directions.get("d1"))
    if v1 is None:
        return None
    inside = np.outer(np.asarray(entry["x"], np.float64), v1)
    if surface.directions.get("d2") is not None and "y" in entry:
        v2 = flat(surface.directions["d2"])
        if v2 is None or v2.shape != v1.shape:
            return None
        inside = inside + np.outer(np.asarray(entry["y"], np.float64), v2)
    residual = np.asarray(entry["residual"], np.float64)
    return np.sqrt(np.sum(inside**2, axis=1) + residual**2)


def check_paths(surface: Any, record: SurfaceRecord) -> list[Finding]:
    if not surface.trajectories:
        return [Finding("path", OK, "no trajectory in the file (Li et al.'s keep theirs in "
                        "separate projection files)" if not surface.attrs else
                        "no trajectory in the file")]
    if record.direction_kind == "parameters":
        return [Finding("path", OK, "a test function's plane is its parameter space: every "
                        "path lies in it")]
    findings = []
    for name in sorted(surface.trajectories):
        share = path_share(surface, name)
        if share is None:
            findings.append(Finding("path", UNKNOWN, f"{name}: no residuals stored: cannot tell "
                                    "how far it leaves the plane"))
        elif share >= PATH_HELD:
            findings.append(Finding("path", OK, f"{name}: the plane holds {100 * share:.1f} % of "
                                    "its squared distance from the centre"))
        else:
            findings.append(Finding("path", WARNING, f"{name}: the plane holds only "
                                    f"{100 * share:.1f} % of its squared distance from the "
                                    "centre: the drawn path is a shadow and the surface under "
                                    "it is not the loss it met; scan the run's PCA plane "
                                    "(`--directions pca`)"))
    return findings
