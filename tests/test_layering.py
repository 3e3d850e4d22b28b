"""The package's layers, read from its imports (ast, nothing is run): nothing below the CLI
imports it, and the core — the evaluation contract, the engine, directions, grids — imports no
file format, figure or command."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "landscape"
CORE = ["workload.py", "objective.py", "batches.py", "tree.py", "grid.py", "directions.py",
        "projection.py", "engine", "models", "curvature", "geometry"]


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (at the top or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def modules(*places: str) -> list[Path]:
    found = []
    for place in places:
        path = PACKAGE / place
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def test_nothing_below_the_cli_imports_it():
    below = [p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts]
    offenders = {str(p.relative_to(PACKAGE)): sorted(n for n in imports(p)
                                                    if n.startswith("landscape.cli"))
                 for p in below}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_core_imports_no_file_format_figure_or_command():
    outer = ("landscape.io", "landscape.plot", "landscape.cli", "landscape.scan",
             "landscape.api", "landscape.surfaces")
    offenders = {}
    for path in modules(*CORE):
        bad = sorted(n for n in imports(path) if n.startswith(outer))
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = bad
    assert offenders == {}


def test_the_core_modules_exist():  # the list above must not go stale
    assert all((PACKAGE / place).exists() for place in CORE)


def test_io_imports_nothing_from_the_package_top_and_the_version_is_one():
    """File formats take the version from `landscape.version`, not the package's top (which
    imports the whole API, and so the formats themselves); pyproject.toml says the same."""
    import tomllib

    from landscape.version import __version__

    for path in modules("io"):
        assert "landscape" not in imports(path) and not any(
            name.startswith("landscape.__") for name in imports(path)), path
        assert "from landscape import" not in path.read_text(), path
    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__


def test_training_and_file_formats_know_nothing_of_curvature():
    """`train_loop.py` takes a tracker, it does not make one; file formats import neither the
    training loop nor geometry nor curvature (issue 23's layers)."""
    assert not {n for n in imports(PACKAGE / "train_loop.py")
                if n.startswith(("landscape.geometry", "landscape.curvature"))}
    for path in modules("io"):
        bad = {n for n in imports(path)
               if n.startswith(("landscape.train_loop", "landscape.training", "landscape.geometry",
                                "landscape.curvature"))}
        assert not bad, (path, bad)


def test_no_import_circles():
    """Between the package's modules, counting imports inside functions too."""
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name] = {n for n in imports(path) if n.startswith("landscape.")}
    known = set(graph)

    def target(imported: str) -> str | None:  # "landscape.x.y.Name" -> the module it names
        while imported and imported not in known:
            imported = imported.rpartition(".")[0]
        return imported or None

    edges = {m: {t for t in map(target, names) if t and t != m
                 and not m.startswith(t + ".") and t != "landscape"}
             for m, names in graph.items()}
    state, cycle = {}, []

    def visit(module: str, stack: list[str]) -> bool:
        state[module] = "open"
        for nxt in sorted(edges.get(module, ())):
            if state.get(nxt) == "open":
                cycle.extend(stack[stack.index(nxt):] + [nxt] if nxt in stack else [nxt])
                return True
            if nxt not in state and visit(nxt, stack + [nxt]):
                return True
        state[module] = "done"
        return False

    for module in sorted(edges):
        if module not in state and visit(module, [module]):
            break
    assert not cycle, " -> ".join(cycle)


def test_no_function_of_the_api_shadows_a_module():
    """`landscape.surface`, `landscape.train` ... are functions, and no module of their name
    exists beside them (a module imported later would replace the function on the package;
    `import landscape.train as m` would give the function)."""
    import inspect

    import landscape

    functions = [name for name in landscape.__all__
                 if inspect.isfunction(getattr(landscape, name))]
    assert {"surface", "hessian", "train"} <= set(functions)
    for name in functions:
        assert not (PACKAGE / f"{name}.py").exists() and not (PACKAGE / name).is_dir(), name
