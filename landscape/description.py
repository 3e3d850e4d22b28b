"""What a surface holds, in words: the text of ``landscape info`` (:func:`describe`,
:func:`describe_file`) and its parts — how the engine evaluated the points
(:func:`strategy_text`), at what precision (:func:`precision_text`), how many finished points
are not finite (:func:`nonfinite_note`).

Reads our files and Li et al.'s alike: theirs have no ``done`` mask, so the points computed are
counted by their rule (a loss <= 0 is not computed: their -1 fill), and datasets outside the
layout (their ``dir_file``, naming the direction file) are listed, not refused.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from landscape.io import surface_h5
from landscape.io.surface_h5 import Surface
from landscape.io.surface_layout import DONE_RULES
from landscape.io.surface_record import SurfaceRecord


def describe_file(path: str | os.PathLike) -> list[str]:
    """The lines ``landscape info`` prints for the surface file at ``path`` (ours or Li et
    al.'s): :func:`describe` of the surface and its spectral density."""
    return describe(surface_h5.read(path), path=path, density=surface_h5.read_density(path))


def nonfinite_points(surface: Surface) -> tuple[int, int]:
    """``(bad, done)``: how many finished points hold a NaN/inf value in some metric, of how
    many finished points (unfinished points are NaN by design and not counted)."""
    done = np.asarray(surface.done, bool)
    bad = np.zeros(done.shape, bool)
    for values in surface.values.values():
        bad |= ~np.isfinite(values)
    return int((bad & done).sum()), int(done.sum())


def nonfinite_note(surface: Surface) -> str | None:
    """``"N of M points gave non-finite values ..."``, or None when every finished point is
    finite."""
    bad, done = nonfinite_points(surface)
    if not bad:
        return None
    return (f"{bad} of {done} points gave non-finite values (NaN/inf: stored as such, marked "
            "done, drawn as gaps)")


def _number(value: float) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.6g}"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
            for row in rows]


def _leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, Mapping):
        out = []
        for key in sorted(tree):
            out += _leaves(tree[key], f"{prefix}/{key}" if prefix else str(key))
        return out
    return [(prefix, tree)]


def _attr_text(value: Any, width: int = 100) -> str:
    if isinstance(value, str):
        try:  # JSON attributes (grid spec, explained variance) on one compact line
            value = json.dumps(json.loads(value), separators=(", ", ": "))
        except (ValueError, RecursionError):  # not JSON, or nested beyond Python's stack
            pass
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _other_text(other) -> str:
    if other.dtype == "group":
        return "group"
    shape = "scalar" if other.shape == () else f"shape {other.shape}"
    text = f"{shape}, {other.dtype}"
    if isinstance(other.value, str):
        text = f"{shape} string: {other.value!r}"
    elif other.value is not None:
        text += f": {np.array2string(np.asarray(other.value), threshold=16)}"
    return _attr_text(" ".join(text.split()))


def strategy_text(value: Any) -> str | None:
    """How the engine evaluated the points, from the ``strategy`` attribute: "map on 1 device,
    chunks of 8, chosen by a probe (map/1 82.1 pt/s, vmap/2 7.1 pt/s ...); first layer
    `conv0/kernel` shared by every point"."""
    plan = SurfaceRecord.from_attrs({"strategy": value}).strategy
    if not plan or not isinstance(plan.get("strategy"), str):
        return None
    devices = plan.get("devices")
    where = f" on {devices} device{'s' * (devices != 1)}" if isinstance(devices, int) else ""
    how = {"probe": "chosen by a probe", "cache": "remembered from an earlier probe",
           "rule": "by the rule of thumb (a short scan is not probed)",
           "forced": "as asked"}.get(plan.get("source"), str(plan.get("source")))
    rates = plan.get("rates") or {}
    if isinstance(rates, dict) and rates:
        ordered = sorted(rates.items(), key=lambda kv: -kv[1] if isinstance(kv[1], (int, float))
                         else 0)
        how += " (" + ", ".join(f"{k} {v:.4g} pt/s" for k, v in ordered
                                if isinstance(v, (int, float))) + ")"
    text = f"{plan['strategy']}{where}, chunks of {plan.get('chunk')}, {how}"
    if isinstance(plan.get("eval_batch"), int):
        text += f"; data in batches of {plan['eval_batch']}"
    if plan.get("stem"):
        text += f"; first layer `{plan['stem']}` shared by every point"
    return text


PRECISION_MEANING = {
    "highest": "full float32 products and convolutions",
    "default": "the backend's own: float32 on a CPU, TF32 on NVIDIA GPUs, bfloat16 on TPUs",
    "bfloat16": "JAX's bfloat16 level: one bfloat16 pass on TPUs, TF32 on NVIDIA GPUs",
}


def precision_text(attrs: Mapping[str, Any]) -> str | None:
    """What precision a file of ours was computed at ("highest (full float32 ...)"), from its
    ``precision`` attribute; None for a file of another tool (Li et al.'s record nothing) or of
    a test function."""
    record = SurfaceRecord.from_attrs(attrs)
    if record.precision is None:
        # A test function's surface (`compare --function`) has no products to be precise about.
        if attrs.get("tool") != "landscape" or (record.workload or "").startswith("function:"):
            return None
        return "highest (not recorded: an older file, computed in float32)"
    meaning = PRECISION_MEANING.get(record.precision, "unknown")
    return f"{record.precision} ({meaning})"


def _made_by(surface) -> str:
    """The command that writes (and resumes) a file like ``surface``."""
    if "lanczos_steps" in surface.attrs or {"max_eig", "min_eig"} <= set(surface.values):
        return "hessian --map"
    spec = SurfaceRecord.from_attrs(surface.attrs).spec or {}
    return "compare" if spec.get("compare") is True else "scan"


def describe(surface: Surface, *, path: str | os.PathLike | None = None,
             density: tuple[np.ndarray, np.ndarray] | None = None) -> list[str]:
    """What ``surface`` holds, as the lines ``landscape info`` prints: the file (``path``; the
    surface's own ``path`` if it has one), grid, completeness, how and at what precision it was
    evaluated, non-finite points, then tables of the metrics (min/max/NaN/inf), provenance
    attributes, direction leaves, other datasets, trajectories and the Hessian ``density``
    (``(eigenvalues, values)``, as :func:`~landscape.io.surface_h5.read_density` returns it)."""
    grid = surface.grid
    path = path if path is not None else getattr(surface, "path", None)
    lines = [f"file          {'(in memory)' if path is None else os.fspath(path)}"]
    x = f"x: {len(grid.x)} points in [{_number(grid.x[0])}, {_number(grid.x[-1])}]"
    if grid.y is None:
        lines.append(f"grid          1D, {x}")
    else:
        lines.append(f"grid          2D, nx × ny = {len(grid.x)} × {len(grid.y)}; {x}; "
                     f"y: {len(grid.y)} points in [{_number(grid.y[0])}, {_number(grid.y[-1])}]")
    done, total = int(surface.done.sum()), surface.done.size
    share = f"{done} / {total} points"
    percent = f"({100 * done / max(total, 1):.1f} %)"
    rule = surface.done_rule
    if rule == "mask":
        state = ("complete" if done == total else
                 f"incomplete (resume with the same `{_made_by(surface)}` command)")
        lines.append(f"completeness  {share} done {percent}, {state}")
    else:  # no `done` mask: a derived count is never called finished
        lines.append(f"completeness  {share} computed {percent} by the values: {DONE_RULES[rule]} "
                     "(the file cannot say it is finished)")
    for note in surface.notes:
        lines.append(f"note          {note}")
    plan = strategy_text(surface.attrs.get("strategy"))
    if plan:
        lines.append(f"evaluated     {plan}")
    precision = precision_text(surface.attrs)
    if precision:
        lines.append(f"precision     {precision}")
    note = nonfinite_note(surface)
    if note:
        lines.append(f"non-finite    {note}")
    lines += ["", "metrics"]
    if surface.values:
        rows = [["name", "min", "max", "NaN", "inf"]]
        for name in sorted(surface.values):
            values = surface.values[name]
            finite = values[np.isfinite(values)]
            rows.append([name, _number(finite.min()) if finite.size else "-",
                         _number(finite.max()) if finite.size else "-",
                         str(int(np.isnan(values).sum())), str(int(np.isinf(values).sum()))])
        lines += _table(rows)
    else:
        lines.append("  (none)")
    lines += ["", "provenance"]
    lines += (_table([[key, _attr_text(surface.attrs[key])] for key in sorted(surface.attrs)])
              if surface.attrs else ["  (no attributes: a file from Li et al.'s scripts?)"])
    lines += ["", "directions"]
    leaves = _leaves(surface.directions)
    lines += (_table([[name, f"{np.shape(leaf)}", str(np.asarray(leaf).dtype)]
                      for name, leaf in leaves]) if leaves else ["  (none)"])
    others = surface.others
    if others:
        lines += ["", "other datasets (not part of the surface layout, kept as they are)"]
        lines += _table([[name, _other_text(others[name])] for name in sorted(others)])
    lines += ["", "trajectories"]
    if surface.trajectories:
        rows = [["name", "points", "steps", "loss first → last"]]
        for name in sorted(surface.trajectories):
            entry = surface.trajectories[name]
            step, loss = np.ravel(entry.get("step", [])), np.ravel(entry.get("loss", []))
            rows.append([name, str(len(np.ravel(entry.get("x", [])))),
                         f"{int(step[0])}..{int(step[-1])}" if step.size else "-",
                         f"{_number(loss[0])} → {_number(loss[-1])}" if loss.size else "-"])
        lines += _table(rows)
    else:
        lines.append("  (none)")
    if density is not None:
        eigenvalues, values = density
        lines += ["", "density",
                  f"  {len(eigenvalues)} bins over λ in [{_number(eigenvalues[0])}, "
                  f"{_number(eigenvalues[-1])}]"]
    return lines
