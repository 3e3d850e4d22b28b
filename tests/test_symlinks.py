"""Outputs cannot be aimed elsewhere (issue 25): a symbolic link planted at any name a command
creates — the surface file, its journal, lock and part file, a run directory's files, the curve
file, the figures — never gets its target written. Each test plants links at the predictable
names, pointing at a victim file (or folder), runs the command, and checks that the victim is
byte for byte what it was and that the command either refused in one line or wrote a real file.
"""

import os

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.errors import ReadError, WriteError
from landscape.io import atomic, journal
from landscape.io.lock import exclusive

PRECIOUS = b"precious bytes that no command may touch\n"
TINY = ["--workload", "test_symlinks:tiny_sine", "--steps", "4", "--record-every", "2",
        "--batch-size", "20", "--quiet"]


def tiny_sine():
    from landscape.data.sine import sine

    return sine(num_train=40, num_test=10, hidden=(4,))


@pytest.fixture
def victim(tmp_path):
    """A file and a folder (holding a file) that links will point at."""
    folder = tmp_path / "victims"
    folder.mkdir()
    (folder / "file").write_bytes(PRECIOUS)
    (folder / "dir").mkdir()
    (folder / "dir" / "inside").write_bytes(PRECIOUS)
    return folder


def untouched(victim) -> None:
    assert (victim / "file").read_bytes() == PRECIOUS
    assert sorted(os.listdir(victim / "dir")) == ["inside"]
    assert (victim / "dir" / "inside").read_bytes() == PRECIOUS


def plant(link, target) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)


def one_line(result) -> str:
    """The one error line (a usage error's "Usage: ..." lines above it aside)."""
    assert "Traceback" not in result.output
    lines = [line for line in result.output.strip().splitlines()
             if line.strip() and not line.startswith(("Usage:", "Try "))]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def real_file(path) -> bool:
    return path.is_file() and not path.is_symlink()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(main, ["train", *TINY, "--optimizer", "sgd", "--optimizer",
                                       "adam", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("unique", [True, False])
def test_an_atomic_write_replaces_links_at_its_temporary_and_final_names(tmp_path, victim,
                                                                         unique):
    target = tmp_path / "out" / "report.json"
    plant(target, victim / "file")
    plant(tmp_path / "out" / os.path.basename(atomic.temporary_name(target, unique=unique)),
          victim / "file")
    with atomic.atomic_path(target, unique=unique) as tmp:
        with open(tmp, "w") as handle:
            handle.write("{}\n")
    untouched(victim)
    assert real_file(target) and target.read_text() == "{}\n"
    assert os.listdir(tmp_path / "out") == ["report.json"]  # the planted temporary link is gone


@pytest.mark.parametrize("kind", ["symbolic", "hard"])
def test_a_lock_that_is_a_link_is_refused_and_left_in_place(tmp_path, victim, kind):
    lock = tmp_path / "surface.h5.lock"
    if kind == "symbolic":
        plant(lock, victim / "file")
    else:
        os.link(victim / "file", lock)
    with pytest.raises(WriteError, match="is a symbolic link" if kind == "symbolic"
                       else "has other hard links"):
        with exclusive(tmp_path / "surface.h5"):
            pass
    assert os.path.lexists(lock)
    untouched(victim)


def test_a_journal_that_is_a_link_is_neither_written_nor_read(tmp_path, victim):
    path = tmp_path / "surface.h5.journal"
    plant(path, victim / "file")
    with pytest.raises(WriteError, match="symbolic link"):
        journal.append(path, {"index": [1, 2]})
    with pytest.raises(ReadError, match="symbolic link"):
        journal.read(path)
    with pytest.raises(WriteError, match="symbolic link"):
        journal.truncate(path, 0)
    untouched(victim)


def test_scan_refuses_a_lock_link_and_writes_real_files_over_every_other_link(runs, tmp_path,
                                                                              victim):
    out = tmp_path / "scan"
    args = ["scan", str(runs / "adam"), "--workload", "test_symlinks:tiny_sine", "--grid", "3",
            "--quiet", "--out", str(out)]
    plant(out / "surface.h5.lock", victim / "file")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "surface.h5.lock is a symbolic link" in one_line(result)
    assert (out / "surface.h5.lock").is_symlink()
    untouched(victim)
    os.unlink(out / "surface.h5.lock")

    for name in ("surface.h5", ".surface.h5.part.h5", "surface.h5.journal", "surface.png",
                 ".surface.png.part.png"):
        plant(out / name, victim / "file")
    result = CliRunner().invoke(main, args)  # not a file (nor a journal) to resume
    assert result.exit_code == 1 and "symbolic link" in one_line(result)
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    untouched(victim)
    assert sorted(os.listdir(out)) == ["surface.h5", "surface.png"]
    assert real_file(out / "surface.h5") and real_file(out / "surface.png")


def test_train_never_writes_through_a_link_in_its_run_directory(tmp_path, victim):
    out = tmp_path / "runs"
    args = ["train", *TINY, "--optimizer", "adam", "--out", str(out)]
    plant(out / "adam.lock", victim / "file")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "adam.lock is a symbolic link" in one_line(result)
    assert (out / "adam.lock").is_symlink()
    os.unlink(out / "adam.lock")

    plant(out / "adam", victim / "dir")  # the run directory itself
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 1 and "is a symbolic link" in one_line(result)
    untouched(victim)
    os.unlink(out / "adam")

    run = out / "adam"
    pid = os.getpid()
    for name in ("run.json", f".run.json.{pid}.part.json", "trajectory.h5",
                 f".trajectory.h5.{pid}.part.h5", "trajectory.journal"):
        plant(run / name, victim / "file")
    for name in ("final", "final.orbax-checkpoint-tmp"):
        plant(run / name, victim / "dir")
    (run / ".final.k1ll3d.part" / "final").mkdir(parents=True)  # a killed save's, removed
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and "already holds a run" in one_line(result)
    result = CliRunner().invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    untouched(victim)
    assert real_file(run / "run.json") and real_file(run / "trajectory.h5")
    assert (run / "final").is_dir() and not (run / "final").is_symlink()
    assert sorted(os.listdir(run)) == ["final", "final.orbax-checkpoint-tmp", "run.json",
                                       "trajectory.h5"]  # the orbax link left alone: not ours
    assert (run / "final.orbax-checkpoint-tmp").is_symlink()


def test_connect_writes_its_curve_figure_and_tables_over_links(runs, tmp_path, victim):
    out = tmp_path / "connect"
    pid = os.getpid()
    names = ["curve.h5", "connect.png", "connect.json", "connect.csv"]
    for name in names:
        stem, ext = os.path.splitext(name)
        plant(out / name, victim / "file")
        plant(out / f".{name}.{pid}.part{ext}", victim / "file")
    plant(out / "curve.h5.lock", victim / "file")
    args = ["connect", str(runs / "sgd"), str(runs / "adam"), "--points", "3",
            "--curve-steps", "0", "--workload", "test_symlinks:tiny_sine", "--quiet",
            "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "curve.h5.lock is a symbolic link" in one_line(result)
    os.unlink(out / "curve.h5.lock")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    untouched(victim)
    assert sorted(os.listdir(out)) == sorted(names)
    assert all(real_file(out / name) for name in names)
