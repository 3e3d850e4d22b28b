"""Every error the CLI prints is one line (issue 18): multi-line library messages (HDF5's carry
the newline of a timestamp) are folded at the boundary (``cli.options.library_errors``), an
``OSError`` in a failure's chain is a one-line error, and the reports h5py makes while closing
a file it could not write are held back."""

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from landscape.cli.options import library_errors, one_line
from landscape.errors import InputError, WriteError

ROOT = Path(__file__).resolve().parents[1]
HDF5_MESSAGE = ("cannot write out/surface.h5: Can't synchronously write data (file write failed: "
                "time = Tue Dec  1 09:30:47 2026\n, filename = 'out/.surface.h5.part.h5', "
                "errno = 28, error message = 'No space left on device')")


def command_raising(exc: BaseException, unraisable: bool = False) -> click.Command:
    @click.command()
    @library_errors
    def failing():
        if unraisable:  # as h5py reports an object it could not close
            sys.unraisablehook("report")  # held by the command's hook, whatever it is
            sys.excepthook(RuntimeError, RuntimeError("Can't decrement id ref count"), None)
        raise exc

    return failing


@pytest.mark.parametrize("exc, code", [
    (WriteError(HDF5_MESSAGE), 1),
    (InputError("`--x`: bad\n  really"), 2),
    (click.ClickException("two\nlines"), 1),
    (RuntimeError("Can't decrement id ref count\n(errno 28)"), 1),  # caused by the OSError below
])
def test_every_error_message_is_folded_to_one_line(exc, code):
    if isinstance(exc, RuntimeError):
        try:
            raise OSError(28, "No space left on\ndevice")
        except OSError as cause:
            exc.__context__ = cause
    result = CliRunner().invoke(command_raising(exc, unraisable=True), [])
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and "\n" not in errors[0], result.output
    assert "Traceback" not in result.output and "decrement" not in result.output
    expected = (one_line(str(exc)) if not isinstance(exc, RuntimeError)
                else "[Errno 28] No space left on device")
    assert errors[0] == f"Error: {expected}"


def test_one_line_keeps_the_words_and_their_spacing():
    assert one_line(HDF5_MESSAGE).count("\n") == 0
    assert "09:30:47 2026 , filename" in one_line(HDF5_MESSAGE)
    assert one_line("a  b\n\n  c ") == "a  b c"


def test_other_exceptions_still_propagate_and_reports_of_a_success_are_shown():
    shown = []

    @click.command()
    @library_errors
    def fine():
        sys.unraisablehook("report")

    previous = sys.unraisablehook
    sys.unraisablehook = shown.append
    try:
        assert CliRunner().invoke(fine, []).exit_code == 0
        assert sys.unraisablehook == shown.append and shown == ["report"]
    finally:
        sys.unraisablehook = previous
    result = CliRunner().invoke(command_raising(KeyError("our bug")), [])
    assert isinstance(result.exception, KeyError)  # a bug of ours is not dressed up as an error


def test_a_file_that_cannot_be_written_is_one_line_in_a_real_process(tmp_path):
    """h5py fails to write, then to close the file (a RuntimeError): one line, exit 1."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])  # this checkout's code
    env = {**os.environ, "PYTHONPATH": path, "LANDSCAPE_JAX_CACHE": ""}
    # ulimit -f 64: files stop at 64 KiB (EFBIG, as a full disk's ENOSPC); the surface file
    # needs 120 x 120 float64, more than that. (A shell sets it: no fork of this process.)
    proc = subprocess.run(["bash", "-c", 'ulimit -f 64 && exec "$0" "$@"', sys.executable, "-c",
                           "from landscape.cli import main; main()", "compare", "--function",
                           "rosenbrock", "--optimizer", "sgd", "--steps", "5", "--grid", "120",
                           "--quiet", "--out", str(tmp_path / "out")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert "File too large" in lines[0]
    assert os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("args", [["plot-function", "rosenbrock", "--path-from", "1\n2"],
                                  ["compare", "--lr", "adam=\nx"],
                                  ["compare", "--lr", "ad\nam=0.1"]])
def test_a_value_with_a_newline_is_shown_escaped_in_its_one_line_error(tmp_path, args):
    from landscape.cli import main

    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "\\n" in errors[0], result.output
