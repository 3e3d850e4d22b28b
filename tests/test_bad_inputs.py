"""Bad inputs: each one a one-line error that names the culprit, a non-zero exit, no traceback.

Bad files (surface files, run directories, checkpoints of another model), a trajectory too short
for PCA, bad grid specs and option values, unknown names, user workload modules that fail.
The audit of the source for unpickling and code execution is in test_security.py.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.directions import pca_plane, random_plane
from landscape.errors import InputError
from landscape.grid import Grid
from landscape.io import surface_h5

PARAMS = {"dense0": {"kernel": np.ones((2, 3), np.float32), "bias": np.zeros(3, np.float32)}}


def invoke(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_one_line_error(result, *fragments, code=None):
    """Non-zero exit (``code`` if given), no exception other than click's exit, and an
    ``Error:`` line (click's only error line) holding every fragment."""
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}")
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# --- surface files -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bad_surfaces(tmp_path_factory):
    """name -> path of a file that is not a readable surface file."""
    folder = tmp_path_factory.mktemp("surfaces")
    good = folder / "good.h5"
    grid = Grid(np.linspace(-1, 1, 4), np.linspace(-1, 1, 3))
    surface_h5.create(good, grid, ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})
    data = good.read_bytes()
    files = {
        "missing": folder / "missing.h5",
        "empty": folder / "empty.h5",
        "garbage": folder / "garbage.h5",
        "truncated": folder / "truncated.h5",
        "not-a-surface": folder / "other.h5",
    }
    files["empty"].write_bytes(b"")
    files["garbage"].write_bytes(b"this is not HDF5\n" * 64)
    files["truncated"].write_bytes(data[: len(data) // 2])
    import h5py

    with h5py.File(files["not-a-surface"], "w") as f:
        f["something"] = np.zeros(3)
    return files


SURFACE_COMMANDS = {
    "info": lambda path, out: ["info", path],
    "plot": lambda path, out: ["plot", path, "--out", out],
    "export": lambda path, out: ["export", path, "--vtk", "--out", out],
}


@pytest.mark.parametrize("command", sorted(SURFACE_COMMANDS))
@pytest.mark.parametrize("kind", ["missing", "empty", "garbage", "truncated", "not-a-surface"])
def test_unreadable_surface_file_is_a_one_line_error(bad_surfaces, tmp_path, command, kind):
    path = bad_surfaces[kind]
    result = invoke(SURFACE_COMMANDS[command](path, tmp_path / "out"))
    line = assert_one_line_error(result, path.name, code=2 if kind == "missing" else 1)
    if kind == "missing":
        assert "does not exist" in line
    elif kind == "not-a-surface":
        assert "not a surface file" in line
    else:
        assert "cannot read surface file" in line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("x, y, fragment", [
    ([0.0, np.nan, 1.0], None, "`xcoordinates` holds NaN/inf coordinates"),
    ([0.0, 1.0, 2.0], [0.0, np.inf], "`ycoordinates` holds NaN/inf coordinates"),
    ([0.0], [1.0], "needs at least 2 points per axis to draw, it has 1 x 1"),
])
def test_plot_of_a_file_with_unusable_coordinates(tmp_path, x, y, fragment):
    import h5py

    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f["xcoordinates"] = np.array(x)
        if y is not None:
            f["ycoordinates"] = np.array(y)
        f["train_loss"] = np.ones((len(x),) if y is None else (len(y), len(x)))
    assert_one_line_error(invoke(["plot", path, "--out", tmp_path / "out"]), "odd.h5", fragment,
                          code=1)


# --- scan --directions-from: the file is checked before any training --------------------

@pytest.fixture
def no_model(monkeypatch):
    """Training or loading a model fails the test: the file must be refused before either."""
    import importlib

    def refuse(*args, **kwargs):
        raise AssertionError("a model was trained or loaded before the file was checked")

    monkeypatch.setattr("landscape.train_loop.train", refuse)
    monkeypatch.setattr(importlib.import_module("landscape.runs"), "load_run", refuse)


def _sine_file(folder, dims):
    """A surface file with directions of the sine model's shapes (no training needed)."""
    import jax

    from landscape.data import get_workload

    params = get_workload("sine").init(jax.random.key(1))[0]
    path = folder / f"sine{dims}d.h5"
    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3) if dims == 2 else None)
    surface_h5.create(path, grid, ["train_loss"], random_plane(params, dims=dims),
                      {"spec_hash": "x", "workload": "sine"})
    return path


@pytest.fixture(scope="module")
def direction_files(bad_surfaces, tmp_path_factory):
    """name -> (path, words of the message) of a file whose directions the sine model cannot
    reuse."""
    import h5py
    import jax

    from landscape.data import get_workload

    folder = tmp_path_factory.mktemp("directions")
    li = folder / "li.h5"  # Li et al.'s layout: values and axes, directions kept elsewhere
    with h5py.File(li, "w") as f:
        f["xcoordinates"] = np.linspace(-1, 1, 3)
        f["train_loss"] = np.ones(3)
    spirals = folder / "spirals.h5"
    params = get_workload("spirals").init(jax.random.key(0))[0]
    surface_h5.create(spirals, Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3)),
                      ["train_loss"], random_plane(params), {"spec_hash": "x",
                                                             "workload": "spirals"})
    tampered = folder / "tampered.h5"  # a sine file with one leaf of another shape
    shutil.copy(_sine_file(folder, 2), tampered)
    with h5py.File(tampered, "r+") as f:
        for d in ("d1", "d2"):
            del f[f"directions/{d}/dense1/kernel"]
            f[f"directions/{d}/dense1/kernel"] = np.zeros((3, 3), np.float32)
    return {
        "garbage": (bad_surfaces["garbage"], ["cannot read directions from", "not an HDF5 file"]),
        "empty": (bad_surfaces["empty"], ["cannot read directions from", "not an HDF5 file"]),
        "truncated": (bad_surfaces["truncated"], ["cannot read directions from",
                                                  "truncated file"]),
        "not-a-surface": (bad_surfaces["not-a-surface"],
                          ["no `directions/d1` group; not a surface file of `landscape scan`"]),
        "no directions": (li, ["no `directions/d1` group; a surface file without stored "
                               "directions (e.g. one of Li et al.'s)"]),
        "another model": (spirals, [
            "the stored directions do not fit the model: leaf `dense0/kernel` is (2, 64) in "
            "the file, (1, 64) in the model (the file is a scan of workload `spirals`); use a "
            "surface file of this model"]),
        "toy model": (bad_surfaces["missing"].parent / "good.h5", [
            "leaf `dense0/bias` is (3,) in the file, (64,) in the model"]),
        "one leaf reshaped": (tampered, [
            "leaf `dense1/kernel` is (3, 3) in the file, (64, 64) in the model"]),
    }


@pytest.mark.parametrize("case", ["garbage", "empty", "truncated", "not-a-surface",
                                  "no directions", "another model", "toy model",
                                  "one leaf reshaped"])
def test_scan_directions_from_a_bad_file_fails_before_training(direction_files, no_model,
                                                                 tmp_path, case):
    path, words = direction_files[case]
    # 100000 steps would take minutes; no_model fails the test if training even starts.
    result = invoke(["scan", "--steps", "100000", "--grid", "3", "--directions-from", path,
                     "--quiet", "--out", tmp_path])
    assert_one_line_error(result, path.name, *words, code=1)
    assert not (tmp_path / "surface.h5").exists()


def test_scan_of_a_run_with_directions_of_another_model(runs, direction_files, tmp_path):
    """With a run as SOURCE the model is loaded (cheap), then the file is checked against it
    before any point is scanned."""
    path, _ = direction_files["another model"]
    result = invoke(["scan", runs["sine"], "--grid", "3", "--directions-from", path,
                     "--quiet", "--out", tmp_path])
    assert_one_line_error(result, path.name, "leaf `dense0/kernel` is (2, 64) in the file, "
                                             "(1, 64) in the model", code=1)
    assert not (tmp_path / "surface.h5").exists()


@pytest.mark.parametrize("source", [False, True])
def test_y_for_1d_stored_directions_fails_before_training(runs, no_model, tmp_path, source):
    path = _sine_file(tmp_path, dims=1)
    args = [runs["sine"]] if source else ["--steps", "100000"]
    result = invoke(["scan", *args, "--directions-from", path, "--x", "-1:1:3", "--y",
                     "-1:1:3", "--quiet", "--out", tmp_path / "out"])
    assert_one_line_error(result, "`--y` was given for a 1D line (--dims 1 or 1D "
                                  "--directions-from)", code=2)
    assert not (tmp_path / "out" / "surface.h5").exists()



@pytest.mark.parametrize("option, message", [
    (["--norm", "layer"], "`--norm` has no effect with `--directions-from`"),
    (["--ignore", "none"], "`--ignore` has no effect with `--directions-from`"),
    (["--orthogonal"], "`--orthogonal` has no effect with `--directions-from`"),
    (["--same-direction"], "`--same-direction` has no effect with `--directions-from`"),
    (["--dims", "2"], "`--dims 2` differs from the 1D directions stored in"),
])
def test_direction_options_that_a_stored_file_overrides_are_refused(no_model, tmp_path, option,
                                                                    message):
    path = _sine_file(tmp_path, dims=1)
    result = invoke(["scan", "--steps", "100000", "--directions-from", path, *option, "--quiet",
                     "--out", tmp_path / "out"])
    assert_one_line_error(result, message, code=2)
    assert not (tmp_path / "out" / "surface.h5").exists()

# --- run directories ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A sine run with two records (steps 0 and 1) and a spirals run (another model)."""
    out = tmp_path_factory.mktemp("runs")
    for workload in ("sine", "spirals"):
        result = invoke(["train", "--workload", workload, "--optimizer", "sgd", "--steps", "1",
                         "--record-every", "5", "--quiet", "--out", out / workload])
        assert result.exit_code == 0, result.output
    return {name: out / name / "sgd" for name in ("sine", "spirals")}


def _edit_json(key, value):
    def edit(run, other):
        document = json.loads((run / "run.json").read_text())
        if value is None:
            document.pop(key)
        else:
            document[key] = value
        (run / "run.json").write_text(json.dumps(document))
    return edit


def _replace(name):
    def edit(run, other):
        target = run / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
        (shutil.copytree if (other / name).is_dir() else shutil.copy)(other / name, target)
    return edit


def _truncate(name):
    def edit(run, other):
        data = (run / name).read_bytes()
        (run / name).write_bytes(data[: len(data) // 3])
    return edit


RUN_DAMAGE = {
    # name: (damage(run, other_run), culprit file, words of the message)
    "no run.json": (lambda r, o: (r / "run.json").unlink(), "run.json", "not a run directory"),
    "corrupt run.json": (lambda r, o: (r / "run.json").write_text("{not json"), "run.json",
                         "cannot read"),
    "run.json of no run": (lambda r, o: (r / "run.json").write_text("[1, 2]"), "run.json",
                           "not a run file"),
    "run.json without seed": (_edit_json("seed", None), "run.json", "'seed'"),
    "unknown workload": (_edit_json("workload", "nosuch"), "'nosuch'", "choose one of"),
    "another workload": (_edit_json("workload", "spirals"), "spirals",
                         "'dense0/kernel' shaped (1, 64), the model's is (2, 64)"),
    "no trajectory.h5": (lambda r, o: (r / "trajectory.h5").unlink(), "trajectory.h5",
                         "trajectory.h5 not found"),
    "truncated trajectory.h5": (_truncate("trajectory.h5"), "trajectory.h5",
                                "cannot read trajectory"),
    "corrupt trajectory.h5": (lambda r, o: (r / "trajectory.h5").write_bytes(b"x" * 999),
                              "trajectory.h5", "cannot read trajectory"),
    "no final/": (lambda r, o: shutil.rmtree(r / "final"), "final", "not found"),
    "empty final/": (lambda r, o: (shutil.rmtree(r / "final"), (r / "final").mkdir()), "final",
                     "cannot read checkpoint"),
    "final/ of another model": (_replace("final"), "trajectory.h5", "has shape (2, 1, 64)"),
    "final/ and trajectory of another model": (
        lambda r, o: (_replace("final")(r, o), _replace("trajectory.h5")(r, o)),
        "workload `sine`", "'dense0/kernel' shaped (2, 64), the model's is (1, 64)"),
}


@pytest.mark.parametrize("damage", sorted(RUN_DAMAGE))
def test_damaged_run_directory_is_a_one_line_error(runs, tmp_path, damage):
    edit, culprit, words = RUN_DAMAGE[damage]
    run = tmp_path / "run"
    shutil.copytree(runs["sine"], run)
    edit(run, runs["spirals"])
    result = invoke(["scan", run, "--grid", "3", "--quiet", "--out", tmp_path / "out"])
    assert_one_line_error(result, culprit, words, code=1)
    assert not (tmp_path / "out" / "surface.h5").exists()


def test_user_workload_run_needs_the_workload_on_the_command_line(runs, tmp_path):
    """A module named inside run.json is never imported on the file's word alone."""
    run = tmp_path / "run"
    shutil.copytree(runs["sine"], run)
    _edit_json("workload_source", "os:abort")(run, None)
    result = invoke(["scan", run, "--grid", "3", "--quiet", "--out", tmp_path / "out"])
    assert_one_line_error(result, "user workload 'os:abort'", "pass `--workload os:abort`",
                          code=1)


def test_run_of_a_user_workload_scans_with_that_workload_named(tmp_path):
    user = "test_cli_hessian:tiny_sine"  # a module of this folder (pytest puts it on sys.path)
    result = invoke(["train", "--workload", user, "--optimizer", "sgd", "--steps", "1",
                     "--quiet", "--out", tmp_path / "runs"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "sgd"
    args = ["scan", run, "--dims", "1", "--grid", "3", "--quiet", "--out", tmp_path / "out"]
    assert_one_line_error(invoke(args), f"pass `--workload {user}` to confirm", code=1)
    result = invoke([*args, "--workload", user])
    assert result.exit_code == 0, result.output
    assert surface_h5.read(tmp_path / "out" / "surface.h5").done.all()


def test_pca_of_two_records_is_a_line_not_a_plane(runs, tmp_path):
    """`train --steps 1` records steps 0 and 1: two points span one direction once centred, so
    PCA gives a line (--dims 1); a plane needs three records."""
    result = invoke(["scan", runs["sine"], "--directions", "pca", "--grid", "3", "--quiet",
                     "--out", tmp_path])
    assert_one_line_error(result, "at least 3 recorded steps for a plane",
                          "the trajectory has 2", "`--record-every`", "`--dims` 1", code=2)
    result = invoke(["scan", runs["sine"], "--directions", "pca", "--dims", "1", "--grid", "3",
                     "--quiet", "--out", tmp_path])
    assert result.exit_code == 0, result.output
    assert surface_h5.read(tmp_path / "surface.h5").values["train_loss"].shape == (3,)


def test_pca_of_a_run_with_one_record(tmp_path):
    """A run that diverged at once keeps one record (step 0): no PCA line or plane from it."""
    result = invoke(["train", "--workload", "sine", "--optimizer", "adam", "--lr", "1e30",
                     "--steps", "2", "--quiet", "--out", tmp_path])
    assert (tmp_path / "adam" / "run.json").exists(), result.output
    for dims, needed in (("2", "at least 3 recorded steps for a plane"),
                         ("1", "at least 2 recorded steps for a line")):
        result = invoke(["scan", tmp_path / "adam", "--directions", "pca", "--dims", dims,
                         "--grid", "3", "--quiet", "--out", tmp_path / "out"])
        assert_one_line_error(result, needed, "the trajectory has 1", code=2)


def test_pca_of_one_record_or_of_a_straight_path_is_refused():
    with pytest.raises(InputError, match="at least 2 recorded steps for a line, the trajectory "
                                         "has 1"):
        pca_plane([PARAMS], dims=1)
    line = [{"w": np.array([t, 2 * t, -t])} for t in (0.0, 1.0, 3.0)]
    assert pca_plane(line, dims=1).explained_variance[0] == pytest.approx(1.0)
    with pytest.raises(InputError, match="moves along one direction only"):
        pca_plane(line, dims=2)


# --- grid specs and names -------------------------------------------------------------------

@pytest.mark.parametrize("args, fragments", [
    (["--x", "1:-1:5"], ["`--x` (=1:-1:5)", "MIN < MAX"]),
    (["--x", "0:1:0"], ["`--x` (=0:1:0)", "N >= 2"]),
    (["--x", "0:1:1"], ["N >= 2"]),
    (["--x", "a:1:5"], ["`--x` (=a:1:5)", "must be numbers"]),
    (["--x", "0:1:five"], ["N must be a whole number"]),
    (["--x", "0:1:2.5"], ["N must be a whole number"]),
    (["--x", "0:1"], ["must look like MIN:MAX:N"]),
    (["--x", "nan:1:5"], ["must be finite"]),
    (["--y", "-inf:0:5"], ["`--y` (=-inf:0:5)", "must be finite"]),
    (["--x", "0:1:1000000000000"], ["N <= 1,000,000 points per axis"]),
    (["--x", "-1e308:1e308:3"], ["must lie within ±3.403e+38, the float32 range"]),
    (["--x", "0:1e-323:5"], ["is too fine for float32 near 0"]),
    (["--range", "1:-1"], ["`--range/--grid` (=1:-1:51)", "MIN < MAX"]),
    (["--x", "0:1:1000000", "--y", "0:1:1000000"],
     ["1,000,000,000,000 points", "GiB for its results alone", "GiB is available"]),
])
def test_bad_grid_spec_is_refused_before_training(tmp_path, args, fragments):
    result = invoke(["scan", *args, "--steps", "100000", "--quiet", "--out", tmp_path])
    assert_one_line_error(result, *fragments, code=2)
    assert not (tmp_path / "surface.h5").exists()


@pytest.mark.parametrize("args, fragments", [
    (["compare", "--workload", "sine", "--steps", "100000", "--x", "1:0:3"],
     ["`--x` (=1:0:3) must have MIN < MAX"]),
    (["compare", "--x", "0:1:1000000", "--y", "0:1:1000000"], ["GiB for its results alone"]),
    (["hessian", "--steps", "100000", "--x", "0:1:1000000", "--y", "0:1:1000000"],
     ["GiB for its results alone"]),
])
def test_other_commands_refuse_bad_grids_before_work(tmp_path, args, fragments):
    assert_one_line_error(invoke([*args, "--quiet", "--out", tmp_path]), *fragments, code=2)


@pytest.mark.parametrize("args, valid", [
    (["scan", "--workload", "nosuch"], ["sine", "spirals", "digits", "package.module:function"]),
    (["scan", "--directions", "nosuch"], ["filter", "pca", "interp", "hessian"]),
    (["scan", "--norm", "nosuch"], ["filter", "layer"]),
    (["scan", "--ignore", "nosuch"], ["biasbn", "none"]),
    (["scan", "--metrics", "loss,nosuch"], ["loss", "acc"]),
    (["scan", "--split", "nosuch"], ["train", "test"]),
    (["scan", "--dims", "3"], ["1", "2"]),
    (["train", "--optimizer", "nosuch"], ["sgd", "adam"]),
    (["train", "--workload", "nosuch"], ["sine", "digits"]),
    (["hessian", "--workload", "nosuch"], ["sine", "digits"]),
    (["compare", "--function", "nosuch"], ["rosenbrock", "himmelblau"]),
    (["plot", "SURFACE", "--kind", "nosuch"], ["contour", "heatmap"]),
    (["plot", "SURFACE", "--metric", "nosuch"], ["train_loss"]),
])
def test_unknown_name_lists_the_valid_ones(bad_surfaces, tmp_path, args, valid):
    good = bad_surfaces["missing"].parent / "good.h5"
    args = [str(good) if a == "SURFACE" else a for a in args]
    result = invoke([*args, "--out", tmp_path])
    line = assert_one_line_error(result, "nosuch" if "--dims" not in args else "3", code=2)
    for name in valid:
        assert name in line


@pytest.mark.parametrize("args, fragment", [
    (["plot", "SURFACE", "--vmin", "nan"], "'--vmin': 'nan' is not a finite number"),
    (["plot", "SURFACE", "--vmax", "inf"], "'--vmax': 'inf' is not a finite number"),
    (["plot", "SURFACE", "--levels", "1000000000"], "'--levels': 1000000000 is not in the range"),
    (["plot", "SURFACE", "--dpi", "100000"], "'--dpi': 100000 is not in the range"),
    (["export", "SURFACE", "--vtk", "--zmax", "nan"], "'--zmax': 'nan' is not a finite number"),
    (["scan", "--lr", "nan"], "'--lr': 'nan' is not a finite number"),
    (["scan", "--lr", "-1"], "'--lr': -1.0 is not in the range x>0"),
    (["plot-function", "rosenbrock", "--grid", "1000000"], "'--grid': 1000000 is not in the range"),
    (["compare", "--threshold", "inf"], "'--threshold': 'inf' is not a finite number"),
    (["scan", "--seed", "99999999999999999999"], "'--seed': 99999999999999999999 is not in"),
    (["train", "--seed", "-1"], "'--seed': -1 is not in the range 0<=x<=4294967295"),
])
def test_non_finite_or_huge_option_values_are_refused(bad_surfaces, tmp_path, args, fragment):
    good = bad_surfaces["missing"].parent / "good.h5"
    args = [str(good) if a == "SURFACE" else a for a in args]
    assert_one_line_error(invoke([*args, "--out", tmp_path]), fragment, code=2)
    assert not any(tmp_path.iterdir())


def test_a_name_given_twice_in_a_list_counts_once(tmp_path):
    result = invoke(["scan", "--steps", "1", "--grid", "3", "--dims", "1", "--split",
                     "train,train", "--metrics", "loss,loss", "--quiet", "--out", tmp_path])
    assert result.exit_code == 0, result.output
    assert list(surface_h5.read(tmp_path / "surface.h5").values) == ["train_loss"]


def test_metric_not_computed_by_the_workload_lists_the_available_ones(tmp_path):
    from landscape.data import get_workload

    with pytest.raises(InputError, match="`metrics` \\(='acc'\\).*available: loss"):
        get_workload("sine").objective({}).metric_names(["acc"], ["train"])
    # ... and the scan says so before it trains (100000 steps would take minutes)
    result = invoke(["scan", "--metrics", "acc", "--steps", "100000", "--quiet", "--out", tmp_path])
    assert_one_line_error(result, "`--metrics` (='acc') is not computed by `sine`; "
                                  "available: loss", code=2)


# --- user workload modules ------------------------------------------------------------------

USER_MODULES = {
    # module name: (source, --workload, words of the message)
    "wl_missing_module": (None, "wl_no_such_module:make",
                          ["'wl_no_such_module' could not be imported",
                           "ModuleNotFoundError", "PYTHONPATH"]),
    "wl_import_raises": ("raise RuntimeError('no GPU here')\n", "wl_import_raises:make",
                         ["'wl_import_raises' could not be imported", "RuntimeError: no GPU here"]),
    "wl_syntax_error": ("def make(:\n", "wl_syntax_error:make",
                        ["'wl_syntax_error' could not be imported", "SyntaxError"]),
    "wl_no_function": ("x = 1\n", "wl_no_function:make",
                       ["'wl_no_function'", "has no function 'make'"]),
    "wl_not_callable": ("make = 1\n", "wl_not_callable:make", ["has no function 'make'"]),
    "wl_raises": ("def make():\n    raise ValueError('bad config:\\n  line two')\n",
                  "wl_raises:make",
                  ["workload 'wl_raises:make' raised ValueError: bad config: line two"]),
    "wl_wrong_type": ("def make():\n    return 42\n", "wl_wrong_type:make",
                      ["'wl_wrong_type:make' returned int, expected landscape.Workload"]),
    "wl_malformed": (None, "wl_malformed:", ["(='wl_malformed:')",
                                             "must look like package.module:function"]),
    "wl_no_module": (None, ":make", ["must look like package.module:function"]),
}


@pytest.mark.parametrize("module", sorted(USER_MODULES))
def test_failing_user_workload_is_a_one_line_error(tmp_path, monkeypatch, module):
    source, name, words = USER_MODULES[module]
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    for command in (["scan", "--steps", "1"], ["train", "--steps", "1"]):
        result = invoke([*command, "--workload", name, "--quiet", "--out", tmp_path / "out"])
        assert_one_line_error(result, *words, code=2)


def test_workload_help_says_it_runs_user_code():
    for command in ("scan", "hessian", "compare"):
        text = " ".join(invoke([command, "--help"]).output.split())
        assert "it runs that code, by design" in text, command


# --- real processes -------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment, code", [
    (["info", "garbage.h5"], "cannot read surface file garbage.h5", 1),
    (["scan", "--x", "0:1:1000000000000", "--out", "out"], "N <= 1,000,000 points per axis", 2),
    (["scan", "--workload", "wl_proc:make", "--out", "out"], "RuntimeError: broken on purpose", 2),
])
def test_bad_input_in_a_real_process_has_no_traceback(tmp_path, args, fragment, code):
    (tmp_path / "garbage.h5").write_bytes(b"garbage" * 100)
    (tmp_path / "wl_proc.py").write_text("raise RuntimeError('broken on purpose')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    proc = subprocess.run([exe, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr
