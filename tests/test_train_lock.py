"""`landscape train` takes the lock of each run directory it writes, as `scan` does of its
surface file (issue 18): a second train into the same `--out` and optimizer stops at once with
the holder's pid, instead of both exiting 0 with one run lost (or a raw ENOENT)."""

import os

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.errors import FileInUse
from landscape.io.lock import check_free, exclusive

TINY = ["--workload", "test_train_lock:tiny_sine", "--steps", "3", "--record-every", "3",
        "--batch-size", "20", "--quiet"]


def tiny_sine():
    from landscape.data.sine import sine

    return sine(num_train=40, num_test=10, hidden=(4,))


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_train_into_a_run_directory_in_use_stops_before_any_work(tmp_path, overwrite):
    target = tmp_path / "adam"
    with exclusive(target, what="train"):  # as another `landscape train --out` here would
        result = CliRunner().invoke(main, ["train", *TINY, "--optimizer", "sgd", "--optimizer",
                                           "adam", "--out", str(tmp_path)]
                                    + ["--overwrite"] * overwrite)
    assert result.exit_code == 1, result.output
    assert result.output.strip() == (f"Error: {target} is in use by another train (pid "
                                     f"{os.getpid()}); wait for it to finish or choose another "
                                     "--out")
    assert os.listdir(tmp_path) == []  # sgd not trained either; no lock left behind


def test_the_locks_are_held_while_the_runs_train_and_dropped_after(tmp_path, monkeypatch):
    from landscape import train_loop as module

    seen = []
    original = module.train

    def watched(workload, spec, **kwargs):
        for name in ("sgd", "adam"):
            try:
                check_free(tmp_path / name)
            except FileInUse as exc:
                seen.append(str(exc))
        return original(workload, spec, **kwargs)

    monkeypatch.setattr(module, "train", watched)
    result = CliRunner().invoke(main, ["train", *TINY, "--optimizer", "sgd", "--optimizer", "adam",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(seen) == 4 and all("in use by another train" in text for text in seen)
    assert sorted(os.listdir(tmp_path)) == ["adam", "sgd"]  # the lock files are removed
    check_free(tmp_path / "adam")


def test_a_batch_size_beyond_the_training_set_is_said_not_silently_clamped(tmp_path):
    import json

    result = CliRunner().invoke(main, ["train", *TINY[:-3], "--batch-size", "100000000",
                                       "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert ("warning: `--batch-size` (=100000000) is larger than the training set of "
            "`test_train_lock:tiny_sine` (40 samples): every step uses all 40") in result.output
    with open(tmp_path / "adam" / "run.json") as handle:
        assert json.load(handle)["batch_size"] == 40


def test_the_library_names_no_cli_option_when_a_file_is_in_use(tmp_path):
    """The library says what holds the file; only the CLI adds its `--out` (layering)."""
    target = tmp_path / "surface.h5"
    with exclusive(target, what="scan"):
        with pytest.raises(FileInUse) as info:
            check_free(target)
    assert str(info.value) == (f"{target} is in use by another scan (pid {os.getpid()}); wait "
                               "for it to finish")
