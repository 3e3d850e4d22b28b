"""Every Python snippet of the README and of the pages under docs/, and every script in examples/
(but the long ones, tested in their quick mode elsewhere), runs as written (each snippet in a
fresh namespace, in an empty folder, in one interpreter per group to pay JAX's start once); every
relative link and image of those pages points to a file (and heading) that exists."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The README first, then docs/ in name order; a snippet is named by its page and number there.
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SNIPPETS = [(f"{page.stem}_{number}", code) for page in PAGES for number, code
            in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S))]
# Minutes long: tests/test_mnist1d.py runs it in its --quick mode instead.
LONG_EXAMPLES = {"edge_of_stability.py"}
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name not in LONG_EXAMPLES)

RUNNER = """
import runpy, sys
for number, path in enumerate(sys.argv[1:]):
    print(f"--- snippet {number}", flush=True)
    runpy.run_path(path, run_name="__main__")
"""


def test_the_readme_has_the_short_form_first():
    python = (ROOT / "README.md").read_text().split("## Python API", 1)[1]
    first = re.search(r"```python\n(.*?)```", python, re.S).group(1)
    assert "landscape.surface(" in first and "landscape.hessian(" in first
    assert len(re.findall(r"\blandscape\.\w+\(", first)) <= 5


# In a few groups, each one interpreter (JAX's start paid once per group), so that a parallel
# run (pytest -n) spreads them over the cores.
SCRIPTS = [("snippet", name, code) for name, code in SNIPPETS] + [
    ("example", path.name, path.read_text()) for path in EXAMPLES]
GROUPS = 3


@pytest.mark.slow
@pytest.mark.parametrize("group", range(GROUPS))
def test_every_readme_snippet_and_example_runs(tmp_path, group):
    paths = []
    for kind, name, code in SCRIPTS[group::GROUPS]:
        path = tmp_path / f"{kind}_{name}"
        path = path.with_suffix(".py") if kind == "snippet" else path
        path.write_text(code)
        paths.append(str(path))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    result = subprocess.run([sys.executable, "-c", RUNNER, *paths], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("--- snippet") == len(paths)
    for _, name, code in SCRIPTS[group::GROUPS]:  # what the short form and the example write
        if 'savefig("cnn.png")' in code:
            assert (tmp_path / "cnn.png").exists()
        if name == "nnx_cnn_digits.py":
            assert (tmp_path / "cnn-digits.h5").exists()


def test_every_script_is_in_a_group():
    assert sum(len(SCRIPTS[g::GROUPS]) for g in range(GROUPS)) == len(SNIPPETS) + len(EXAMPLES)
    assert any('savefig("cnn.png")' in code for _, _, code in SCRIPTS)
    # The pages the README's depth moved to keep their snippets (and so their tests).
    names = {name.rsplit("_", 1)[0] for name, _ in SNIPPETS}
    assert {"README", "train", "hessian", "geometry", "python-api", "optimizers"} <= names


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``page``: lower case, punctuation dropped,
    spaces as hyphens, a repeated one numbered."""
    anchors, text = set(), re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for heading in re.findall(r"^#+\s+(.*)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchor, n = slug, 0
        while anchor in anchors:
            n += 1
            anchor = f"{slug}-{n}"
        anchors.add(anchor)
    return anchors


def test_every_relative_link_and_image_resolves():
    """Markdown links and images, and HTML src/href, of the README and docs/: each relative
    target is a file of the repository, and a #fragment is a heading of that page."""
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code is not a link
        targets = re.findall(r"\]\(([^)\s]+)\)", text) + re.findall(r'(?:src|href)="([^"]+)"', text)
        for target in targets:
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path, _, fragment = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.is_file() or ROOT not in file.parents:
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif fragment and file.suffix == ".md" and fragment not in _anchors(file):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert broken == []
    assert len(PAGES) > 10  # docs/ is there


def test_the_readme_states_the_python_and_plotly_the_project_allows():
    """The README and requires-python said Python >= 3.10 where JAX >= 0.7 needs 3.11, and
    `plotly<7` refused the plotly 7.1 that installs and passes."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"
    readme = (ROOT / "README.md").read_text()
    assert "Python ≥ 3.11" in readme and "3.10" not in readme.split("## Run the tests")[0]
    plotly = next(d for d in project["dependencies"] if d.startswith("plotly"))
    assert "<8" in plotly and "plotly 6.9.0 and 7.1.0" in readme
