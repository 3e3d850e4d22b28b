"""A surface file's provenance as one typed record: what ``scan``, ``hessian --map`` and
``compare`` write into its root attributes, and what reading them gives back.

The attribute names are those the files have always had (``tool``, ``tool_version``,
``workload``, ``direction_kind``, ``normalization``, ``ignore``, ``seed`` (-1: none), ``grid``
(the JSON of the arguments that define the scan), ``spec_hash``, ``train_loss_at_origin``,
``explained_variance``, ``lanczos_steps``), plus ``strategy`` (how the points were evaluated:
see :class:`landscape.engine.Plan`), ``samples`` (the subset of the data, when one was used),
``precision`` (of the float32 products and convolutions, :mod:`landscape.precision`; also in the
spec, so a resume keeps it), ``output_axis`` (the parameters' layout the directions were made
with: ``"last"``, ``"first"`` or ``{leaf path: axis or null}``, :mod:`landscape.directions`;
in the spec too unless ``"last"``) and ``fingerprints`` (hashes of the model, directions, data
and environment the points were computed from: :mod:`landscape.fingerprint`).
Scalars are stored as HDF5 scalars, everything else as JSON text. Li et al.'s files carry no
attributes: every field is then None.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from landscape.errors import ResumeMismatch
from landscape.version import __version__

TOOL = "landscape"
KNOWN = frozenset({"tool", "tool_version", "workload", "direction_kind", "normalization", "ignore",
                   "seed", "grid", "spec_hash", "train_loss_at_origin", "explained_variance",
                   "lanczos_steps", "strategy", "samples", "precision", "fingerprints",
                   "output_axis"})


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A short stable hash of the arguments that define a scan (JSON of the sorted mapping)."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class SurfaceRecord:
    """Provenance of a surface file.

    Attributes:
      workload: what was scanned (a workload's or objective's name).
      direction_kind, normalization, ignore, seed: how the plane was made (``Plane``'s fields).
      spec: the arguments that define the scan (stored as ``grid``); a file is resumed only
        with the same spec (``spec_hash``).
      train_loss_at_origin: the model's full-train-set loss, where known.
      explained_variance: PCA planes' explained variance ratios.
      lanczos_steps: eigen maps' Lanczos steps per point.
      strategy: the engine's plan (strategy, chunk, probe rates, shared layer).
      samples: ``{"num", "seed", "stratified"}`` when a subset of the data was evaluated.
      precision: the precision of the float32 products and convolutions (``highest``,
        ``default``, ``bfloat16``); None in a file written before it was recorded.
      fingerprints: ``{"model", "directions", "data", "environment"}`` of the computation
        (:func:`landscape.fingerprint.of_surface`); a file is resumed only with equal ones.
      output_axis: the layout the directions were made with (``Plane.output_axis`` as JSON:
        ``"last"``, ``"first"`` or ``{leaf path: axis or None}``); None where none was used
        (interpolation, Hessian, stored directions) or the file predates it.
      tool_version: the version that wrote the file.
      extra: further root attributes (e.g. a test function's ``formula``), by name.
    """

    workload: str | None = None
    direction_kind: str | None = None
    normalization: str | None = None
    ignore: str | None = None
    seed: int | None = None
    spec: dict | None = None
    train_loss_at_origin: float | None = None
    explained_variance: tuple[float, ...] | None = None
    lanczos_steps: int | None = None
    strategy: dict | None = None
    samples: dict | None = None
    precision: str | None = None
    fingerprints: dict | None = None
    output_axis: str | dict | None = None
    tool_version: str | None = None
    extra: dict | None = None

    @property
    def spec_hash(self) -> str | None:
        return None if self.spec is None else spec_hash(self.spec)

    @classmethod
    def of_plane(cls, plane: Any, *, workload: str, spec: Mapping[str, Any], **fields: Any
                 ) -> SurfaceRecord:
        """A record for a scan of ``plane`` (its provenance copied) under ``spec``."""
        ev = plane.explained_variance
        layout = getattr(plane, "output_axis", None)  # a rule, or ((leaf path, axis), ...)
        return cls(workload=workload, direction_kind=plane.kind,
                   normalization=plane.normalization, ignore=plane.ignore, seed=plane.seed,
                   spec=dict(spec), explained_variance=None if ev is None else tuple(ev),
                   output_axis=layout if layout is None or isinstance(layout, str)
                   else dict(layout),
                   tool_version=__version__, **fields)

    def to_attrs(self) -> dict[str, Any]:
        """The root attributes to write: scalars as they are, the rest as JSON text."""
        attrs: dict[str, Any] = {"tool": TOOL, "tool_version": self.tool_version,
                                 "workload": self.workload, "direction_kind": self.direction_kind,
                                 "normalization": self.normalization, "ignore": self.ignore,
                                 "seed": -1 if self.seed is None else self.seed,
                                 "grid": self.spec, "spec_hash": self.spec_hash,
                                 "train_loss_at_origin": self.train_loss_at_origin}
        optional = {"explained_variance": None if self.explained_variance is None
                    else list(self.explained_variance),
                    "lanczos_steps": self.lanczos_steps, "strategy": self.strategy,
                    "samples": self.samples, "precision": self.precision,
                    "fingerprints": self.fingerprints, "output_axis": self.output_axis}
        attrs.update({k: v for k, v in optional.items() if v is not None})
        for key, value in (self.extra or {}).items():
            attrs.setdefault(key, value)
        return {key: _stored(value) for key, value in attrs.items() if value is not None}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> SurfaceRecord:
        """The record of a file's root attributes (as :func:`surface_h5.read` returns them:
        plain values, JSON still text); fields that are missing or malformed are None."""
        seed = _int(attrs.get("seed"))
        ev = _json(attrs.get("explained_variance"), list)
        return cls(
            workload=_str(attrs.get("workload")),
            direction_kind=_str(attrs.get("direction_kind")),
            normalization=_str(attrs.get("normalization")),
            ignore=_str(attrs.get("ignore")),
            seed=None if seed is None or seed < 0 else seed,
            spec=_json(attrs.get("grid"), dict),
            train_loss_at_origin=_float(attrs.get("train_loss_at_origin")),
            explained_variance=None if ev is None else tuple(float(v) for v in ev
                                                             if isinstance(v, (int, float))),
            lanczos_steps=_int(attrs.get("lanczos_steps")),
            strategy=_json(attrs.get("strategy"), dict),
            samples=_json(attrs.get("samples"), dict),
            precision=_str(attrs.get("precision")),
            fingerprints=_json(attrs.get("fingerprints"), dict),
            output_axis=_layout(attrs.get("output_axis")),
            tool_version=_str(attrs.get("tool_version")),
            extra={key: value for key, value in attrs.items() if key not in KNOWN} or None,
        )


def check_resumable(path: Any, existing: Any, attrs: Mapping[str, Any]) -> None:
    """Raise :class:`~landscape.errors.ResumeMismatch` unless the surface file ``existing``
    (read from ``path``: its ``attrs`` and ``directions``) continues the computation that the
    root attributes ``attrs`` describe: the same arguments (``spec_hash``; the message names
    each argument that differs, with its two values), and, when ``attrs`` carry
    ``fingerprints``, the same model, directions, data and environment, with its stored
    ``directions/`` still those its fingerprint recorded."""
    from landscape.fingerprint import differences, directions_fingerprint

    now = SurfaceRecord.from_attrs(attrs).fingerprints
    recorded = SurfaceRecord.from_attrs(existing.attrs).fingerprints
    if now and not recorded:  # before its arguments: an older file's spec differs anyway
        raise ResumeMismatch(f"{path} records no fingerprints of the model, directions and data "
                             "its points were computed from (an earlier version wrote it): "
                             "continuing it could join two computations")
    if existing.attrs.get("spec_hash") != attrs.get("spec_hash"):
        changed = spec_differences(SurfaceRecord.from_attrs(existing.attrs).spec,
                                   SurfaceRecord.from_attrs(attrs).spec or {}) or [
            f"spec {existing.attrs.get('spec_hash')} in the file, {attrs.get('spec_hash')} now"]
        raise ResumeMismatch(f"{path} was made with other arguments: {', '.join(changed)}")
    if not now:
        return
    changed = differences(recorded, now)
    if changed:
        raise ResumeMismatch(f"{path} was computed from {' and '.join(changed)}")
    stored = existing.directions
    if "directions" in recorded and stored.get("d1") is not None:
        found = directions_fingerprint(stored["d1"], stored.get("d2"))
        if found != recorded["directions"]:
            raise ResumeMismatch(f"{path}: the directions stored in its `directions/` group "
                                 "were changed after its scan began (fingerprint "
                                 f"{recorded['directions']} recorded, {found} stored)")


def spec_differences(recorded: Mapping[str, Any] | None, now: Mapping[str, Any]) -> list[str]:
    """The arguments that differ between the spec a file ``recorded`` and the one given
    ``now``, each with its two values: "`seed` (0 in the file, 1 now)"; nested entries by their
    dotted path ("`strategy.chunk`"); an argument one side lacks is "none" there."""
    found: list[str] = []

    def walk(old: Any, new: Any, prefix: str) -> None:
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            for key in sorted(set(old) | set(new), key=str):
                walk(old.get(key, _NONE), new.get(key, _NONE), f"{prefix}{key}.")
        elif _canonical(old) != _canonical(new):
            found.append(f"`{prefix[:-1]}` ({_shown(old)} in the file, {_shown(new)} now)")

    walk(dict(recorded or {}), dict(now), "")
    return found


_NONE = object()  # an argument one spec lacks


def _canonical(value: Any) -> str:
    return "\0none" if value is _NONE else json.dumps(value, sort_keys=True, default=str)


def _shown(value: Any, limit: int = 60) -> str:
    text = "none" if value is _NONE else json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _stored(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) else json.dumps(value)


def _json(value: Any, kind: type) -> Any:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str) or len(value) > 10_000_000:
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, kind) else None


def _layout(value: Any) -> str | dict | None:
    """A recorded layout: ``"last"`` or ``"first"``, or ``{leaf path: axis >= 0 or None}`` from
    its JSON; anything else None."""
    if value in ("last", "first"):
        return value
    per_leaf = _json(value, dict)
    if per_leaf is None or not all(axis is None or (_int(axis) is not None and axis >= 0)
                                   for axis in per_leaf.values()):
        return None
    return per_leaf


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
