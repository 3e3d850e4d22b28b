"""Crash safety of surface files: real `landscape scan` processes killed with SIGKILL at many
moments (inside a journal append, inside a compaction, at random) resume to a file equal bit
for bit to an uninterrupted run's; a second scan into the same file is refused by the lock."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.directions import random_plane
from landscape.errors import FileInUse
from landscape.grid import Grid
from landscape.io import journal, surface_h5
from landscape.io.lock import exclusive, lock_path

SCAN = ["scan", "--steps", "10", "--x", "-1:1:13", "--y", "-1:1:11", "--chunk", "8", "--quiet"]
CHUNKS = -(-13 * 11 // 8)  # 18 chunks, one journal record each
PARAMS = {"w": np.arange(6.0).reshape(2, 3), "b": np.ones(3)}


@pytest.fixture(scope="module")
def cache_env(tmp_path_factory):
    """The subprocesses share one JAX compile cache (only the first compiles)."""
    return {**os.environ, "LANDSCAPE_JAX_CACHE": str(tmp_path_factory.mktemp("jax-cache"))}


def _start(out, env, kill_at=None):
    env = dict(env)
    env.pop("LANDSCAPE_TEST_KILL_AT", None)
    if kill_at:
        env["LANDSCAPE_TEST_KILL_AT"] = kill_at
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    return subprocess.Popen([exe, *SCAN, "--out", str(out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run(out, env, kill_at=None):
    proc = _start(out, env, kill_at)
    stdout, stderr = proc.communicate(timeout=300)
    return proc.returncode, stderr


def _records(out) -> int:
    return len(journal.read(surface_h5.journal_path(out / "surface.h5")).records)


def _assert_consistent_with(got, whole):
    """Every point a killed scan's file (with its journal) calls done holds the final value."""
    for name, value in whole.values.items():
        assert np.array_equal(got.values[name][got.done], value[got.done])
        assert np.isnan(got.values[name][~got.done]).all()


@pytest.mark.slow
def test_scan_killed_at_many_moments_resumes_to_the_same_file(tmp_path, cache_env):
    baseline = _start(tmp_path / "whole", cache_env)  # uninterrupted, beside the killed ones
    part = tmp_path / "part"
    left = []  # what each kill left: read at once (must not fail), checked against the baseline
    rng = np.random.default_rng(0)
    moments = [
        "create-replace:1",   # the new file written under its temporary name, not yet renamed
        "journal-append:3",   # halfway through the third chunk's record: a torn tail
        "records",            # at a random chunk count (maybe inside an append)
        "time",               # at a random time (start-up, training, scanning ...)
        "compact-replace:1",  # the resume's compaction: new copy written, not yet renamed
        "compact-unlink:2",   # the final compaction: renamed, journal not yet deleted
    ]
    done_before = 0
    for moment in moments:
        if moment in ("records", "time"):
            proc = _start(part, cache_env)
            deadline = time.monotonic() + 120
            target = int(rng.integers(2, 6))  # records in the journal (fresh after a resume)
            wait = rng.uniform(1.0, 5.0)
            started = time.monotonic()
            while proc.poll() is None and time.monotonic() < deadline:
                if moment == "time" and time.monotonic() - started > wait:
                    break
                if moment == "records" and _records(part) >= target:
                    break
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=60)
            code = proc.returncode
        else:
            if moment == "compact-replace:1" and left and left[-1].done.all():
                # The random kills came too late (the scan had finished its points): start
                # again from a torn append, so that both compactions below have work to do.
                shutil.rmtree(part)
                code, stderr = _run(part, cache_env, kill_at="journal-append:3")
                assert code == -signal.SIGKILL, stderr
            code, stderr = _run(part, cache_env, kill_at=moment)
        assert code in (-signal.SIGKILL, 0), (moment, code)
        if (part / "surface.h5").exists():
            left.append(surface_h5.read(part / "surface.h5"))
        done_before = int(left[-1].done.sum()) if left else 0
        if moment == "create-replace:1":
            assert not (part / "surface.h5").exists()
        if moment == "journal-append:3":
            assert done_before == 16  # two records whole, the torn third ignored
        if moment == "compact-unlink:2":
            assert done_before == 13 * 11  # all points already in the file or its journal
            assert os.path.exists(surface_h5.journal_path(part / "surface.h5"))

    code, stderr = _run(part, cache_env)
    assert code == 0, stderr
    assert baseline.wait(timeout=300) == 0, baseline.stderr.read()
    whole = surface_h5.read(tmp_path / "whole" / "surface.h5")
    assert whole.done.all()
    for got in left:
        _assert_consistent_with(got, whole)
    again = surface_h5.read(part / "surface.h5")
    assert set(again.values) == set(whole.values)
    for name in whole.values:
        assert again.values[name].tobytes() == whole.values[name].tobytes()
    assert again.done.tobytes() == whole.done.tobytes()
    # Clean end: no journal, no lock file, no temporary files left behind.
    assert sorted(os.listdir(part)) == ["surface.h5", "surface.png"]


def test_a_second_scan_into_the_same_file_is_refused_until_the_first_dies(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / "surface.h5"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom landscape.io.lock import exclusive\n"
         f"with exclusive({str(target)!r}):\n    print('locked', flush=True)\n    time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = CliRunner().invoke(main, ["scan", "--steps", "5", "--grid", "3", "--quiet",
                                           "--out", str(out)])
        assert result.exit_code == 1
        assert f"{target} is in use by another scan (pid {holder.pid})" in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
        assert not target.exists()  # refused before anything was written
        with pytest.raises(FileInUse, match=f"pid {holder.pid}"):
            with exclusive(target):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with exclusive(target):  # SIGKILL released it: no stale lock
        assert open(lock_path(target)).read().strip() == f"{os.getpid()} scan"
    assert not os.path.exists(lock_path(target))


def test_the_lock_admits_one_holder_at_a_time(tmp_path):
    """Threads racing to take, hold and drop (unlink) the lock: never two holders at once."""
    target = tmp_path / "s.h5"
    holders, overlaps, taken = [], [], []

    def worker():
        for _ in range(150):
            try:
                with exclusive(target):
                    holders.append(1)
                    overlaps.append(len(holders))
                    holders.pop()
                    taken.append(1)
            except FileInUse:
                pass

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert taken and max(overlaps) == 1


def _surface(tmp_path):
    grid = Grid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 4))
    path = tmp_path / "s.h5"
    surface_h5.create(path, grid, ["train_loss"], random_plane(PARAMS), {"spec_hash": "x"})
    return grid, path


def test_points_go_to_the_journal_and_compaction_folds_them_in(tmp_path):
    grid, path = _surface(tmp_path)
    before = path.stat().st_ino
    surface_h5.write_points(path, np.array([0, 1, 7]), {"train_loss": np.array([1.0, 2.0, 3.0])})
    assert path.stat().st_ino == before  # the file itself is untouched ...
    assert os.path.exists(surface_h5.journal_path(path))  # ... the points are journaled
    assert surface_h5.read(path).done.ravel()[[0, 1, 7]].all()  # and readers see them
    surface_h5.compact(path)
    assert not os.path.exists(surface_h5.journal_path(path)) and path.stat().st_ino != before
    got = surface_h5.read(path)
    assert got.done.sum() == 3 and got.values["train_loss"].ravel()[7] == 3.0


def test_compaction_runs_during_a_scan_once_it_is_due(tmp_path, monkeypatch):
    grid, path = _surface(tmp_path)
    monkeypatch.setattr(surface_h5, "COMPACT_EVERY_S", 0.0)
    surface_h5.write_points(path, np.array([3]), {"train_loss": np.array([1.5])})
    assert not os.path.exists(surface_h5.journal_path(path))
    assert surface_h5.read(path).values["train_loss"].ravel()[3] == 1.5


def test_replaying_a_journal_twice_changes_nothing(tmp_path):
    grid, path = _surface(tmp_path)
    jpath = surface_h5.journal_path(path)
    surface_h5.write_points(path, np.array([2, 3]), {"train_loss": np.array([4.0, 5.0])})
    saved = open(jpath, "rb").read()
    surface_h5.compact(path)
    once = surface_h5.read(path)
    open(jpath, "wb").write(saved)  # as after a kill between the rename and the unlink
    twice = surface_h5.read(path)
    assert twice.values["train_loss"].tobytes() == once.values["train_loss"].tobytes()
    assert (twice.done == once.done).all()
    surface_h5.compact(path)
    again = surface_h5.read(path).values["train_loss"]
    assert again.tobytes() == once.values["train_loss"].tobytes()


def test_a_torn_journal_keeps_its_whole_records(tmp_path):
    jpath = tmp_path / "j"
    for k in range(3):
        journal.append(jpath, {"index": np.array([k]), "v": np.array([k + 0.5])}, {"k": k})
    data = jpath.read_bytes()
    cuts = [len(journal.encode({"index": np.array([k]), "v": np.array([0.0])}, {"k": k}))
            for k in range(3)]
    ends = np.cumsum(cuts)
    assert ends[-1] == len(data)
    for length in range(len(data) + 1):
        jpath.write_bytes(data[:length])
        replay = journal.read(jpath)
        whole = int(np.searchsorted(ends, length, side="right"))
        assert len(replay.records) == whole
        assert replay.valid_bytes == (ends[whole - 1] if whole else 0)
        assert [r.meta["k"] for r in replay.records] == list(range(whole))
    # A flipped byte inside the second record: the first one survives, the rest is dropped.
    damaged = bytearray(data)
    damaged[ends[0] + 12] ^= 0xFF
    jpath.write_bytes(bytes(damaged))
    replay = journal.read(jpath)
    assert len(replay.records) == 1 and replay.torn
    journal.truncate(jpath, replay.valid_bytes)
    journal.append(jpath, {"index": np.array([9])})
    assert [int(r.arrays["index"][0]) for r in journal.read(jpath).records] == [0, 9]


@pytest.mark.parametrize("value", [np.float64(2.5), np.arange(6, dtype=">i4").reshape(2, 3).T,
                                   np.zeros((0, 3), np.float32), np.array([True, False])])
def test_journal_records_round_trip_any_numeric_array(tmp_path, value):
    journal.append(tmp_path / "j", {"a": value}, {"note": "x"})
    (record,) = journal.read(tmp_path / "j").records
    assert record.meta == {"note": "x"} and record.arrays["a"].shape == np.shape(value)
    np.testing.assert_array_equal(record.arrays["a"], value)
    with pytest.raises(Exception, match="only bool, integer and float"):
        journal.append(tmp_path / "j", {"s": np.array(["text"])})
