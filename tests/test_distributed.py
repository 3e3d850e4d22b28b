"""Multi-host: two processes joined by jax.distributed on 127.0.0.1 (gloo) write the same surface
file as one process."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from landscape.errors import InputError
from landscape.io import surface_h5

ARGS = ["scan", "--steps", "60", "--x", "-1:1:7", "--y", "-1:1:5", "--chunk", "8", "--quiet"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _landscape(args, cwd, devices):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    exe = os.path.join(os.path.dirname(sys.executable), "landscape")
    return subprocess.Popen([exe, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_write_the_same_file_as_one(tmp_path):
    single = _landscape([*ARGS, "--out", "one"], tmp_path, devices=1)
    port = _free_port()
    multi = [
        _landscape([*ARGS, "--out", "two", "--coordinator", f"127.0.0.1:{port}",
                    "--num-processes", "2", "--process-id", str(i)], tmp_path, devices=1)
        for i in range(2)
    ]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in [single, *multi]]
    for out, err, code in results:
        assert code == 0, err[-3000:]
    # Only process 0 writes and prints the output paths (gloo itself chats on stdout).
    assert "two/surface.h5" in results[1][0] and "surface.h5" not in results[2][0]
    one = surface_h5.read(tmp_path / "one" / "surface.h5")
    two = surface_h5.read(tmp_path / "two" / "surface.h5")
    assert two.done.all() and one.done.all()
    np.testing.assert_allclose(two.values["train_loss"], one.values["train_loss"], rtol=1e-6)
    assert two.attrs["spec_hash"] == one.attrs["spec_hash"]
    # Run again, the file is finished: every process returns with the writer (none waits)
    before, port = (tmp_path / "two" / "surface.h5").read_bytes(), _free_port()
    again = [_landscape([*ARGS, "--out", "two", "--coordinator", f"127.0.0.1:{port}",
                         "--num-processes", "2", "--process-id", str(i)], tmp_path, devices=1)
             for i in range(2)]
    for process in again:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    assert (tmp_path / "two" / "surface.h5").read_bytes() == before


def test_partial_distributed_flags_are_refused():
    from landscape.distributed import initialize

    with pytest.raises(InputError, match="must be given together"):
        initialize("127.0.0.1:1", None, 0)
    with pytest.raises(InputError, match="--process-id"):
        initialize("127.0.0.1:1", 2, 5)
