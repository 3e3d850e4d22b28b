"""Security audit: nothing in the package can unpickle or execute file contents (a grep of the
source, so a regression fails CI), user code enters through one documented door, and generated
scripts cannot be injected through file names."""

import ast
import io
import os
import re
import shutil
import tokenize
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from landscape.cli import main
from landscape.directions import random_plane
from landscape.grid import Grid
from landscape.io import surface_h5

ROOT = Path(__file__).resolve().parents[1]

PACKAGES = ("landscape", "optimizers")
FORBIDDEN = {
    r"\bpickle\b|\bcPickle\b|\bdill\b|\bjoblib\b|\bmarshal\b|\bshelve\b": "an unpickler",
    r"allow_pickle\s*=\s*True": "np.load with pickles",
    r"\btorch\s*\.\s*load\b": "torch.load (unpickles)",
    r"(?<!\. )\b(eval|exec|compile) \(": "eval/exec/compile of text",  # not jax's .compile()
    r"\b__import__\b|\brunpy\b": "importing by name",
    r"\bsubprocess\b|\bos\s*\.\s*(system|popen|exec\w*|spawn\w*)\b": "running programs",
    r"\byaml\s*\.\s*(load|unsafe_load)\b": "YAML object loading",
}


def _code_only(path: Path) -> str:
    """The file's Python code with strings and comments dropped (docstrings may say 'pickle')."""
    skip = {tokenize.STRING, tokenize.COMMENT}
    skip |= {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
             if hasattr(tokenize, n)}
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return " ".join(t.string for t in tokens if t.type not in skip)


def _sources():
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def test_package_source_has_no_unpickling_or_code_execution():
    assert len(_sources()) > 20
    found = []
    for path in _sources():
        code = _code_only(path)
        for pattern, what in FORBIDDEN.items():
            for match in re.finditer(pattern, code):
                found.append(f"{path.relative_to(ROOT)}: {match.group(0)!r} ({what})")
        # np.load is allowed only with allow_pickle=False spelled out in the call.
        for match in re.finditer(r"\b(np|numpy)\s*\.\s*load\s*\(([^)]*)\)", code):
            if not re.search(r"allow_pickle\s*=\s*False", match.group(2)):
                found.append(f"{path.relative_to(ROOT)}: np.load without allow_pickle=False")
    assert not found, "\n".join(found)


def test_user_code_is_imported_in_one_documented_place_only():
    """`--workload package.module:function` is the one door to user code (by design)."""
    places = [str(p.relative_to(ROOT)) for p in _sources()
              if re.search(r"\bimport_module\b", _code_only(p))]
    assert places == [os.path.join("landscape", "data", "__init__.py")]


def test_the_audit_catches_what_it_should(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""pickle in a docstring is fine."""\nimport pickle  # not fine\n'
                   'x = eval("1")\nnp.load(f)\ny = np.load(f, allow_pickle=False)\n')
    code = _code_only(bad)
    assert "docstring" not in code
    hits = [what for pattern, what in FORBIDDEN.items() if re.search(pattern, code)]
    assert hits == ["an unpickler", "eval/exec/compile of text"]
    loads = [m.group(2) for m in re.finditer(r"\b(np|numpy)\s*\.\s*load\s*\(([^)]*)\)", code)]
    assert [bool(re.search(r"allow_pickle\s*=\s*False", a)) for a in loads] == [False, True]


def test_paraview_script_cannot_be_injected_through_a_file_name(tmp_path):
    """The exported ParaView script holds the file's name in its docstring; a name made to close
    that string must not put code into a script the user will run."""
    evil = tmp_path / 'x"""\nimport os; os.system("echo pwned")\n"""y.h5'
    params = {"w": np.ones((2, 3), np.float32)}
    grid = Grid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3))
    surface_h5.create(evil, grid, ["train_loss"], random_plane(params), {"spec_hash": "x"})
    plain = tmp_path / "plain.h5"
    shutil.copy(evil, plain)
    scripts = []
    for path in (evil, plain):
        result = CliRunner().invoke(main, ["export", str(path), "--vtk", "--out",
                                           str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        scripts.append((tmp_path / "out" / (path.stem + "_paraview.py")).read_text())
    trees = [ast.parse(text) for text in scripts]
    assert [type(node) for node in trees[0].body] == [type(node) for node in trees[1].body]
    assert "os.system" in ast.get_docstring(trees[0]) and "os.system" not in scripts[1]
