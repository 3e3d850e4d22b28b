"""A resumed scan proves it continues the same computation (issue 25): a scan killed halfway and
run again after the run was retrained, the stored directions edited, the data changed or
JAX_ENABLE_X64 set, joined two computations' points in one file with exit status 0. The file
records fingerprints of the model, directions, data and environment; a resume that differs in
any of them is refused in one line naming what changed, and a spec that differs names each
argument with its two values."""

import dataclasses

import h5py
import jax
import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.fingerprint import data_fingerprint, tree_fingerprint
from landscape.io import surface_h5
from landscape.runs import load_run, save_run

WORKLOAD = "test_resume_fingerprints:tiny_sine"
NUM_TRAIN = 40  # the tests change it to change the data


def tiny_sine():
    from landscape.data.sine import sine

    return sine(num_train=NUM_TRAIN, num_test=10, hidden=(4,))


class _Killed(Exception):
    pass


def train(out):
    result = CliRunner().invoke(main, ["train", "--workload", WORKLOAD, "--optimizer", "adam",
                                       "--steps", "4", "--record-every", "2",
                                       "--batch-size", "20", "--quiet", "--overwrite",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out / "adam"


def scan_args(run, out, *extra):
    return ["scan", str(run), "--workload", WORKLOAD, "--grid", "3", "--chunk", "2", "--quiet",
            "--out", str(out), *extra]


def half_done(run, out, monkeypatch):
    """A scan killed after its first chunk: the file holds some of its 9 points."""
    real = surface_h5.write_points

    def killed_after_one(path, index, values, **options):
        real(path, index, values, **options)
        raise _Killed("killed")

    with monkeypatch.context() as patch:
        patch.setattr(surface_h5, "write_points", killed_after_one)
        result = CliRunner().invoke(main, scan_args(run, out))
    assert isinstance(result.exception, _Killed)
    done = surface_h5.read(out / "surface.h5").done.sum()
    assert 0 < done < 9
    return done


def refused(result) -> str:
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].endswith("; use --overwrite to replace it or another --out")
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return train(tmp_path_factory.mktemp("runs"))


def test_a_resume_continues_only_the_same_model(tmp_path, monkeypatch):
    run = train(tmp_path / "runs")  # its own: changed below
    out = tmp_path / "scan"
    done = half_done(run, out, monkeypatch)
    # The run replaced in place by another model, as `train --overwrite --lr ...` does.
    before = load_run(run)
    changed = dataclasses.replace(before, params=jax.tree.map(lambda p: p * 0.9, before.params))
    save_run(changed, run, extra={"workload_source": WORKLOAD}, overwrite=True)
    line = refused(CliRunner().invoke(main, scan_args(run, out)))
    assert f"{out / 'surface.h5'} was computed from another model (fingerprint " in line
    assert surface_h5.read(out / "surface.h5").done.sum() == done  # left as it was


def test_a_resume_refuses_edited_stored_directions(run, tmp_path, monkeypatch):
    out = tmp_path / "scan"
    half_done(run, out, monkeypatch)
    with h5py.File(out / "surface.h5", "r+") as f:
        leaves = []
        f["directions/d1"].visititems(
            lambda name, item: leaves.append(item) if isinstance(item, h5py.Dataset) else None)
        leaves[0][...] = 2 * leaves[0][()] + 1
    line = refused(CliRunner().invoke(main, scan_args(run, out)))
    assert "the directions stored in its `directions/` group were changed after its scan " \
           "began" in line
    # Without the edit, the same command resumes and finishes the file.
    out2 = tmp_path / "scan2"
    half_done(run, out2, monkeypatch)
    result = CliRunner().invoke(main, scan_args(run, out2))
    assert result.exit_code == 0, result.output
    assert surface_h5.read(out2 / "surface.h5").done.all()


def test_a_resume_refuses_other_data(run, tmp_path, monkeypatch):
    out = tmp_path / "scan"
    half_done(run, out, monkeypatch)
    monkeypatch.setattr(f"{__name__}.NUM_TRAIN", 41)  # the workload's data are not those scanned
    line = refused(CliRunner().invoke(main, scan_args(run, out)))
    assert "was computed from other data (fingerprint " in line


def test_a_resume_refuses_another_environment(run, tmp_path, monkeypatch):
    out = tmp_path / "scan"
    half_done(run, out, monkeypatch)
    jax.config.update("jax_enable_x64", True)
    try:
        result = CliRunner().invoke(main, scan_args(run, out))
    finally:
        jax.config.update("jax_enable_x64", False)
    line = refused(result)
    assert line.startswith(f"Error: {out / 'surface.h5'} was computed from another environment "
                           "(x64 off in the file, on now)")


def test_other_arguments_are_named_with_their_two_values(run, tmp_path, monkeypatch):
    out = tmp_path / "scan"
    half_done(run, out, monkeypatch)
    line = refused(CliRunner().invoke(main, scan_args(run, out, "--seed", "3", "--range",
                                                      "-2:2")))
    assert line == (f"Error: {out / 'surface.h5'} was made with other arguments: "
                    "`direction_seed` (0 in the file, 3 now), `x` ([-1.0, 1.0, 3] in the file, "
                    "[-2.0, 2.0, 3] now), `y` ([-1.0, 1.0, 3] in the file, [-2.0, 2.0, 3] now); "
                    "use --overwrite to replace it or another --out")


def test_fingerprints_are_of_the_values_not_of_the_containers():
    """The same leaves give the same hash whether held in lists or in the nested dicts a file
    reads back; a changed value, dtype or shape gives another."""
    params = {"layers": [{"w": np.ones((2, 3), np.float32)}, {"w": np.zeros(3, np.float32)}]}
    read_back = {"layers": {"0": {"w": np.ones((2, 3), np.float32)},
                            "1": {"w": np.zeros(3, np.float32)}}}
    assert tree_fingerprint(params) == tree_fingerprint(read_back)
    for changed in ({"w": np.ones((2, 3), np.float64)}, {"w": np.ones((3, 2), np.float32)},
                    {"w": np.full((2, 3), 1 + 2**-20, np.float32)}):
        assert tree_fingerprint({"layers": [changed, params["layers"][1]]}) != \
            tree_fingerprint(params)
    from landscape.batches import Dataset

    x, y = np.arange(6.0).reshape(3, 2), np.arange(3)
    assert data_fingerprint({"train": Dataset(x, y)}) == data_fingerprint({"train": Dataset(x, y)})
    assert data_fingerprint({"train": Dataset(x, y)}) != data_fingerprint({"train": Dataset(
        x, y[::-1].copy())})
    assert data_fingerprint({"train": Dataset(x, y)}) != data_fingerprint({"test": Dataset(x, y)})


def test_a_file_of_an_earlier_version_is_not_resumed(run, tmp_path, monkeypatch):
    """No fingerprints recorded: the points cannot be proven to be of this model."""
    out = tmp_path / "scan"
    half_done(run, out, monkeypatch)
    with h5py.File(out / "surface.h5", "r+") as f:
        del f.attrs["fingerprints"]
    line = refused(CliRunner().invoke(main, scan_args(run, out)))
    assert "records no fingerprints of the model, directions and data" in line
