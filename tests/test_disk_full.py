"""A full disk ends in one line, never a crash (issue 25): h5py's `close` segfaulted (rc 139,
nothing printed, a stale part file and lock left, and the rerun crashed the same way) when the
disk filled while a surface or curve file was created. Writers of new HDF5 files check the
space first (`atomic.require_space`) and refuse with "No space left on device".

The in-process tests simulate a small disk by answering `os.statvfs` with few free blocks; one
test fills a real 64 KiB tmpfs (mounted when this runs as root, skipped otherwise) in a
subprocess, where a crash cannot take the test session down."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.errors import WriteError
from landscape.io import atomic, curve_h5

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--steps", "5", "--grid", "41", "--quiet"]


def small_disk(monkeypatch, free_bytes: int) -> None:
    real = os.statvfs

    class Small:
        def __init__(self, info):
            self.f_frsize, self.f_bsize = 4096, 4096
            self.f_bavail = self.f_bfree = free_bytes // 4096
            self.f_blocks = info.f_blocks

    monkeypatch.setattr(atomic.os, "statvfs", lambda folder: Small(real(folder)))


def test_a_scan_on_a_full_disk_ends_in_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    out = tmp_path / "full"
    small_disk(monkeypatch, 64 * 1024)
    for _ in range(2):  # the rerun says the same
        result = CliRunner().invoke(main, ["scan", *FAST, "--out", str(out)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output.strip().splitlines() == [
            f"Error: cannot write surface file {out / 'surface.h5'}: No space left on device "
            f"(about {result.output.split('about ')[1].split(' needed')[0]} needed, 64.0 KiB "
            "free)"]
        assert os.listdir(out) == []  # no part file, journal or lock left behind


def test_a_curve_file_is_refused_before_h5py_writes_it(tmp_path, monkeypatch):
    small_disk(monkeypatch, 16 * 1024)
    points = {"w": np.zeros((100, 100), np.float32)}
    t = np.linspace(0, 1, 5)
    curve = curve_h5.CurveFile(t, {"train_loss": t}, None, points, points, None,
                               {"linear_x": t, "linear_y": 0 * t}, np.zeros(0), {})
    with pytest.raises(WriteError, match="No space left on device"):
        curve_h5.write(tmp_path / "curve.h5", curve)
    assert os.listdir(tmp_path) == []


def test_the_estimate_bounds_the_files_written(tmp_path):
    """`require_space` asks for at least what the files take (else the crash is back)."""
    from landscape.directions import random_plane
    from landscape.grid import Grid
    from landscape.io import surface_h5

    params = {f"layer{i}": {"kernel": np.ones((30, 30), np.float32),
                            "bias": np.ones(30, np.float32)} for i in range(20)}
    asked = []
    real = surface_h5.require_space
    surface_h5.require_space = lambda path, nbytes, **kw: asked.append(nbytes)
    try:
        for n in (3, 31):
            path = tmp_path / f"s{n}.h5"
            surface_h5.create(path, Grid(np.linspace(-1, 1, n), np.linspace(-1, 1, n)),
                              ["train_loss", "train_acc", "test_loss"], random_plane(params),
                              {"spec_hash": "x", "grid": "{}" * 100})
            assert os.path.getsize(path) <= asked[-1] <= 3 * os.path.getsize(path) + 65536
    finally:
        surface_h5.require_space = real


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_a_real_full_tmpfs(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                      capture_output=True).returncode != 0:
        pytest.skip("mount -t tmpfs is not permitted here")
    try:
        script = textwrap.dedent(f"""
            import numpy as np
            from landscape.directions import random_plane
            from landscape.errors import WriteError
            from landscape.grid import Grid
            from landscape.io import surface_h5
            grid = Grid(np.linspace(-1, 1, 61), np.linspace(-1, 1, 61))
            plane = random_plane({{"w": np.ones((8, 8), np.float32)}})
            for _ in range(2):
                try:
                    surface_h5.create({str(disk / 'surface.h5')!r}, grid, ["train_loss",
                                      "train_acc"], plane, {{"spec_hash": "x"}})
                except WriteError as exc:
                    print(exc)
        """)
        proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                              text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.returncode == 0, proc.stderr[-2000:]
        lines = proc.stdout.splitlines()
        assert len(lines) == 2 and all("No space left on device" in line for line in lines)
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)
