"""The command line's contract, pinned: every command's ``--help`` and the files ``scan``,
``compare`` and ``hessian`` write (their names, and inside them every dataset's shape and dtype,
every attribute and JSON key), as recorded in ``tests/golden/``. Moving a pipeline from the CLI
into the library must leave both unchanged; a deliberate change is recorded by rerunning with
``LANDSCAPE_UPDATE_GOLDEN=1`` and saying why in the commit.

Values are not pinned here (the other tests check them against references): only the shape of
what a user's scripts and Li et al.'s tools read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import pytest
from click.testing import CliRunner

from landscape.cli import main

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("LANDSCAPE_UPDATE_GOLDEN"))


def _commands(group=main, prefix=()):
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if hasattr(command, "commands"):
            yield from _commands(command, (*prefix, name))


def _check(name: str, text: str, *, words: bool = False) -> None:
    """``text`` equals the golden file ``name``; ``words``: word for word, whatever the line
    breaks (click versions wrap help text differently)."""
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with LANDSCAPE_UPDATE_GOLDEN=1"
    golden = path.read_text()
    if words:
        text, golden = " ".join(text.split()), " ".join(golden.split())
    assert text == golden, f"{name} changed (LANDSCAPE_UPDATE_GOLDEN=1 records it)"


@pytest.mark.parametrize("command", [(), *_commands()], ids=lambda c: " ".join(c) or "landscape")
def test_help_is_unchanged(command):
    result = CliRunner().invoke(main, [*command, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    _check(f"help/{'-'.join(command) or 'landscape'}.txt", result.output, words=True)


def _h5_layout(path: Path) -> list[str]:
    lines = []

    def attrs(name, obj):
        return sorted(str(key) for key in obj.attrs.keys())

    with h5py.File(path, "r") as handle:
        lines.append(f"/ attrs={attrs('/', handle)}")

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                lines.append(f"{name} {obj.shape} {obj.dtype.str.lstrip('<>|=')} "
                             f"attrs={attrs(name, obj)}")
            else:
                lines.append(f"{name}/ attrs={attrs(name, obj)}")

        handle.visititems(visit)
    return lines


def _json_layout(value, prefix="") -> list[str]:
    if isinstance(value, dict):
        lines = [f"{prefix}{{}}"] if not value else []
        for key in sorted(value):
            lines += _json_layout(value[key], f"{prefix}.{key}")
        return lines
    if isinstance(value, list):
        kinds = sorted({type(item).__name__ for item in value})
        head = [f"{prefix}[] of {','.join(kinds) or 'nothing'}"]
        return head + (_json_layout(value[0], f"{prefix}[0]")
                       if value and isinstance(value[0], (dict, list)) else [])
    return [f"{prefix} {type(value).__name__}"]


def _layout(folder: Path) -> str:
    """Every file under ``folder`` with what its readers see of its structure."""
    lines = []
    checkpoints = {p.parent for p in folder.rglob("_CHECKPOINT_METADATA")}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        inside = [c for c in checkpoints if c in path.parents]
        if inside:  # orbax's own layout (content-hashed names): the checkpoint folder once
            line = f"{inside[0].relative_to(folder).as_posix()}/ (orbax checkpoint)"
            if line not in lines:
                lines.append(line)
            continue
        lines.append(name)
        if path.suffix == ".h5":
            lines += [f"  {line}" for line in _h5_layout(path)]
        elif path.suffix == ".json":
            lines += [f"  {line}" for line in _json_layout(json.loads(path.read_text()))]
        elif path.suffix == ".csv":
            lines.append(f"  columns: {path.read_text().splitlines()[0]}")
    return "\n".join(lines) + "\n"


def _run(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_scan_files_are_unchanged(tmp_path):
    _run(["scan", "--workload", "spirals", "--steps", "30", "--grid", "5", "--metrics", "loss,acc", "--split",
          "train,test", "--out", str(tmp_path), "-q"])
    _check("files/scan.txt", _layout(tmp_path))


@pytest.mark.slow
def test_compare_files_are_unchanged(tmp_path):
    _run(["compare", "--workload", "sine", "--optimizer", "sgd", "--optimizer", "adam",
          "--steps", "8", "--record-every", "2", "--grid", "5", "--out", str(tmp_path), "-q"])
    _check("files/compare.txt", _layout(tmp_path))


@pytest.mark.slow
def test_hessian_files_are_unchanged(tmp_path):
    _run(["hessian", "--steps", "30", "--trace", "--density", "--probes", "2",
          "--lanczos-steps", "8", "--map", "--x", "-1:1:3", "--map-steps", "4",
          "--out", str(tmp_path / "one"), "-q"])
    _run(["train", "--workload", "sine", "--optimizer", "sgd", "--steps", "6",
          "--record-every", "3", "--out", str(tmp_path / "runs"), "-q"])
    _run(["hessian", str(tmp_path / "runs" / "sgd"), "--steps", "all",
          "--out", str(tmp_path / "along"), "-q"])
    _check("files/hessian.txt", _layout(tmp_path / "one") + "--- along training\n"
           + _layout(tmp_path / "along"))
