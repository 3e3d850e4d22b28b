"""Temporaries of killed writers (issue 18): a killed `landscape plot` left `.NAME.PID.part.EXT`
files that no later run removed. The next atomic write of NAME removes those of dead processes
(once they are a minute old), never one of a live process."""

import os
import subprocess
import sys
import time

from landscape.io.atomic import (
    STALE_AFTER_S,
    remove_stale_temporaries,
    temporary_name,
    write_text,
)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def leftover(target, pid: int, *, age_s: float):
    path = target.parent / f".{target.name}.{pid}.part{target.suffix}"
    path.write_text("half a figure")
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


def test_a_write_removes_the_stale_temporaries_of_dead_writers_only(tmp_path):
    target = tmp_path / "surf_train_loss_contour.png"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = leftover(target, dead_pid(), age_s=STALE_AFTER_S + 5)
        fresh = leftover(target, dead_pid(), age_s=0)  # may be a writer on another host: kept
        running = leftover(target, live.pid, age_s=3600)
        mine = leftover(target, os.getpid(), age_s=3600)
        other_name = leftover(tmp_path / "other.png", dead_pid(), age_s=3600)
        assert remove_stale_temporaries(target) == [str(dead)]
        assert fresh.exists() and running.exists() and mine.exists() and other_name.exists()
        again = leftover(target, dead_pid(), age_s=STALE_AFTER_S + 5)
        write_text(target, "the figure")  # every atomic write cleans up first
        assert target.read_text() == "the figure" and not again.exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            p.name for p in (target, fresh, running, other_name))  # its own temporary renamed
    finally:
        live.kill()
        live.wait()


def test_the_temporary_name_is_what_the_cleanup_parses():
    name = os.path.basename(temporary_name("out/fig.png"))
    assert name == f".fig.png.{os.getpid()}.part.png"
