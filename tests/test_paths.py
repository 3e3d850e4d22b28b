"""What stands at a path is said plainly (issue 25): `landscape info fifo.h5` blocked forever on
a FIFO (only regular files are opened now), and a symbolic link loop was "does not exist"."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from landscape import load_surface
from landscape.cli import main
from landscape.errors import ReadError


ROOT = Path(__file__).resolve().parents[1]


def error_line(result) -> str:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    return result.output.strip().splitlines()[-1]


def test_a_fifo_is_refused_at_once(tmp_path):
    """In a subprocess with a timeout: h5py blocks in `open` holding the GIL, so a FIFO read
    in the test process itself would freeze the whole session."""
    fifo = tmp_path / "fifo.h5"
    os.mkfifo(fifo)
    script = textwrap.dedent(f"""
        from click.testing import CliRunner
        from landscape import load_surface
        from landscape.cli import main
        from landscape.errors import ReadError
        for command in (["info"], ["plot", "--out", {str(tmp_path / "o")!r}]):
            result = CliRunner().invoke(main, [command[0], {str(fifo)!r}, *command[1:]])
            print(result.exit_code, result.output.strip().splitlines()[-1])
        try:
            load_surface({str(fifo)!r})
        except ReadError as exc:
            print(exc)
    """)
    try:
        proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail("reading a FIFO blocked")
    assert proc.returncode == 0, proc.stderr[-2000:]
    refused = (f"Error: Invalid value for 'FILE': File '{fifo}' is a FIFO (named pipe), not a "
               "regular file.")
    assert proc.stdout.splitlines() == [
        f"2 {refused}", f"2 {refused}",
        f"surface file {fifo} is a FIFO (named pipe), not a regular file"]


def test_a_symbolic_link_loop_and_a_broken_link_say_so(tmp_path):
    loop, broken = tmp_path / "loop.h5", tmp_path / "broken.h5"
    os.symlink(loop, loop)
    os.symlink(tmp_path / "gone.h5", broken)
    assert error_line(CliRunner().invoke(main, ["info", str(loop)])) == (
        f"Error: Invalid value for 'FILE': File '{loop}' is a symbolic link loop.")
    assert error_line(CliRunner().invoke(main, ["info", str(broken)])) == (
        f"Error: Invalid value for 'FILE': File '{broken}' is a broken symbolic link (to "
        f"{tmp_path / 'gone.h5'}).")
    assert error_line(CliRunner().invoke(main, ["scan", str(loop)])).endswith(
        f"Directory '{loop}' is a symbolic link loop.")
    with pytest.raises(ReadError, match="is a symbolic link loop"):
        load_surface(loop)
    assert error_line(CliRunner().invoke(main, ["info", str(tmp_path / "none.h5")])).endswith(
        "does not exist.")
