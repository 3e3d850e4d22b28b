"""Shared fixtures. Four virtual CPU devices so that sharded code paths run in every test
(must be set before JAX starts its backend)."""

import os
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
# The engine's remembered strategy choices: the session's own, not the user's.
os.environ.setdefault("LANDSCAPE_CACHE_DIR", tempfile.mkdtemp(prefix="landscape-cache-"))

import jax  # noqa: E402
import optax  # noqa: E402
import pytest  # noqa: E402

import landscape  # noqa: E402


@pytest.fixture(scope="session")
def sine():
    return landscape.get_workload("sine")


@pytest.fixture(scope="session")
def small_sine():
    """The sine task with a narrow MLP and few samples (fast to compile and to loop over)."""
    from landscape.data.sine import sine

    return sine(num_train=200, num_test=50, hidden=(16, 16))


@pytest.fixture(scope="session")
def trained_small_sine(small_sine):
    return landscape.train(small_sine, optax.adam(1e-2), steps=300, seed=0, record_every=100)


@pytest.fixture(scope="session")
def devices():
    return jax.devices()


@pytest.fixture
def run_pvbatch():
    return _run_pvbatch


def _run_pvbatch(script, *args):
    """ParaView's `pvbatch` on a virtual X display. `xvfb-run -a` picks the first free display
    number by looking for lock files, so two test workers starting at once can pick the same one
    and one pvbatch aborts creating its window: each worker starts its search at its own number,
    and the workers of one machine take turns (an exclusive lock beside the X lock files)."""
    import fcntl
    import subprocess

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    first = 200 + 20 * int(worker.removeprefix("gw") or 0)
    lock_path = os.path.join(tempfile.gettempdir(), f"landscape-tests-xvfb-{os.getuid()}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = subprocess.run(["xvfb-run", "-a", "-n", str(first), "pvbatch", str(script),
                               *map(str, args)], capture_output=True, text=True, timeout=180)
    finally:
        os.close(fd)
    if proc.returncode != 0:  # the cause, not the last of a long stack trace, in the message
        cause = proc.stderr.split("Stack trace", 1)[0]
        proc.stderr = cause[-3000:] + "\n[stack trace cut]"
    return proc
