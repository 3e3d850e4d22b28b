import os
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.io import surface_h5

FAST = ["--steps", "50", "--grid", "5", "--quiet"]


def _walk(group: click.Group, prefix=()):
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _walk(command, (*prefix, name))
        else:
            yield (*prefix, name)


@pytest.mark.parametrize("path", list(_walk(main)))
def test_every_command_has_help(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and len(result.output) > 200


def test_scan_writes_surface_and_png(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", *FAST, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert str(out / "surface.h5") in result.output and str(out / "surface.png") in result.output
    surface = surface_h5.read(out / "surface.h5")
    assert surface.done.all() and surface.values["train_loss"].shape == (5, 5)
    # The centre of a filter-normalized plane (biases ignored) is the trained model itself.
    np.testing.assert_allclose(
        surface.values["train_loss"][2, 2], surface.attrs["train_loss_at_origin"], rtol=1e-5
    )
    assert (out / "surface.png").stat().st_size > 10_000


def test_rerun_resumes_and_other_arguments_are_refused(tmp_path):
    out = str(tmp_path / "out")
    assert CliRunner().invoke(main, ["scan", *FAST, "--out", out]).exit_code == 0
    result = CliRunner().invoke(main, ["scan", *FAST, "--out", out, "--seed", "1"])
    assert result.exit_code == 1
    assert "made with other arguments" in result.output and "--overwrite" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["scan", *FAST, "--out", out, "--seed", "1", "--overwrite"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--norm", "filters"], "'filters' is not one of"),
        (["--x", "1:-1:5"], "must have MIN < MAX"),
        (["--grid", "1"], "--grid"),
        (["--workload", "nope"], "not a built-in workload"),
        (["--range", "0"], "MIN:MAX"),
    ],
)
def test_bad_input_is_one_line_usage_error(tmp_path, args, message):
    result = CliRunner().invoke(main, ["scan", *FAST, "--out", str(tmp_path / "o"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output


def test_unwritable_out_is_one_line_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = CliRunner().invoke(main, ["scan", *FAST, "--out", str(blocker / "sub")])
    assert result.exit_code == 1
    assert "cannot create `--out` folder" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_default_scan_as_a_real_subprocess(tmp_path):
    """`landscape scan` with no arguments: the README's main job, run as a user would."""
    env = {**os.environ, "XLA_FLAGS": ""}
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    proc = subprocess.run([exe, "scan", "--quiet"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "landscape-out"
    assert proc.stdout.split() == [str(os.path.join("landscape-out", "surface.h5")),
                                   str(os.path.join("landscape-out", "surface.png"))]
    surface = surface_h5.read(out / "surface.h5")
    z = surface.values["train_loss"]
    assert z.shape == (51, 51) and surface.done.all() and np.isfinite(z).all()
    centre = (25, 25)
    np.testing.assert_allclose(z[centre], surface.attrs["train_loss_at_origin"], rtol=1e-5)
    iy, ix = np.unravel_index(np.argmin(z), z.shape)
    assert abs(iy - 25) <= 2 and abs(ix - 25) <= 2, (iy, ix)
    assert z.max() > 10 * z[centre]


class _Crash(Exception):
    pass


def test_interrupted_scan_resumes_to_the_same_file(tmp_path, monkeypatch):
    args = ["scan", "--steps", "50", "--x", "-1:1:6", "--y", "-1:1:5", "--chunk", "4", "--quiet"]
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "whole")]).exit_code == 0

    real_write = surface_h5.write_points
    calls = []

    def crash_after_three(path, index, values, **options):
        if len(calls) == 3:
            raise _Crash("simulated kill")
        calls.append(index.copy())
        real_write(path, index, values, **options)

    monkeypatch.setattr(surface_h5, "write_points", crash_after_three)
    crashed = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "part")])
    assert isinstance(crashed.exception, _Crash)
    partial = surface_h5.read(tmp_path / "part" / "surface.h5")
    assert partial.done.sum() == 12 and np.isnan(partial.values["train_loss"][~partial.done]).all()

    monkeypatch.setattr(surface_h5, "write_points", real_write)
    resumed = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "part")])
    assert resumed.exit_code == 0, resumed.output
    whole = surface_h5.read(tmp_path / "whole" / "surface.h5")
    again = surface_h5.read(tmp_path / "part" / "surface.h5")
    assert again.done.all()
    np.testing.assert_array_equal(again.values["train_loss"], whole.values["train_loss"])


def test_directions_from_a_surface_file_reproduce_it(tmp_path):
    first = tmp_path / "first"
    args = ["scan", "--steps", "50", "--x", "-1:1:5", "--y", "-1:1:3", "--quiet"]
    assert CliRunner().invoke(main, [*args, "--seed", "3", "--out", str(first)]).exit_code == 0
    # The same seed trains the same model, so its own directions give back the same surface.
    again = CliRunner().invoke(main, [*args, "--seed", "3", "--directions-from",
                                      str(first / "surface.h5"), "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    a = surface_h5.read(first / "surface.h5")
    b = surface_h5.read(tmp_path / "again" / "surface.h5")
    assert b.attrs["direction_kind"] == "file"
    np.testing.assert_allclose(b.values["train_loss"], a.values["train_loss"], rtol=1e-6)


@pytest.mark.parametrize("dims", ["1", "2"])
def test_directions_from_a_surface_file_are_its_directions(tmp_path, dims):
    """Another model of the same workload (another seed) scanned along a file's directions:
    the new file stores the old file's d1 (and d2) exactly, around its own origin."""
    import h5py

    from landscape.io.h5tree import read_tree

    args = ["scan", "--steps", "5", "--grid", "3", "--quiet"]
    first, again = tmp_path / "first", tmp_path / "again"
    result = CliRunner().invoke(main, [*args, "--dims", dims, "--seed", "3", "--out", str(first)])
    assert result.exit_code == 0, result.output
    # no --dims: a line or a plane as stored in the file
    result = CliRunner().invoke(main, [*args, "--seed", "4", "--directions-from",
                                       str(first / "surface.h5"), "--out", str(again)])
    assert result.exit_code == 0, result.output

    def stored(path):
        with h5py.File(path) as f:
            return {key: read_tree(f["directions"][key]) for key in f["directions"]}

    a, b = stored(first / "surface.h5"), stored(again / "surface.h5")
    assert sorted(a) == sorted(b) == (["d1", "origin"] if dims == "1" else ["d1", "d2", "origin"])
    for key in ("d1", "d2")[: int(dims)]:
        for layer in a[key]:
            for leaf in a[key][layer]:
                np.testing.assert_array_equal(b[key][layer][leaf], a[key][layer][leaf])
    assert not np.array_equal(b["origin"]["dense1"]["kernel"], a["origin"]["dense1"]["kernel"])
    assert surface_h5.read(again / "surface.h5").grid.ndim == int(dims)


def test_train_refuses_a_folder_of_other_files_unless_overwrite(tmp_path):
    """`train --out DIR` used to write a run into DIR/adam/ beside whatever was there."""
    folder = tmp_path / "runs" / "adam"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    args = ["train", "--workload", "sine", "--optimizer", "adam", "--steps", "2", "--quiet",
            "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"{folder} holds files that are not part of a run (notes.txt)" in result.output
    assert sorted(os.listdir(folder)) == ["notes.txt"]
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(folder)) == ["final", "notes.txt", "run.json", "trajectory.h5"]
    assert (folder / "notes.txt").read_text() == "mine"


def test_y_follows_x_as_in_the_api(tmp_path):
    """`--x` alone used to leave y at -1:1:N in the CLI while the API's `y` follows `x`."""
    out = tmp_path / "scan"
    result = CliRunner().invoke(main, ["scan", "--steps", "20", "--x", "-0.5:0.5:3", "--quiet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    grid = surface_h5.read(out / "surface.h5").grid
    np.testing.assert_array_equal(grid.y, np.linspace(-0.5, 0.5, 3))
    # (`hessian --map` follows the same rule; its help says so)
    help_text = " ".join(CliRunner().invoke(main, ["hessian", "--help"]).output.split())
    assert "--map y axis, MIN:MAX:N [default: the same as --x]" in help_text


@pytest.mark.parametrize("value, expected", [(None, "default"), ("", None), ("elsewhere", "elsewhere")])
def test_the_jax_compilation_cache_is_documented_and_can_be_turned_off(monkeypatch, tmp_path,
                                                                       value, expected):
    import jax

    from landscape import cli

    monkeypatch.setenv("HOME", str(tmp_path))
    if value is None:
        monkeypatch.delenv("LANDSCAPE_JAX_CACHE", raising=False)
    else:
        monkeypatch.setenv("LANDSCAPE_JAX_CACHE", value)
    calls = {}
    monkeypatch.setattr(jax.config, "update", lambda name, v: calls.__setitem__(name, v))
    cli._configure_jax()
    default = os.path.join(str(tmp_path), ".cache", "landscape", "jax")
    want = {"default": default}.get(expected, expected)
    assert calls.get("jax_compilation_cache_dir") == want
    text = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    assert "~/.cache/landscape/jax" in text and "LANDSCAPE_JAX_CACHE=" in text
