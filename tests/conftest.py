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
    """ParaView's `pvbatch` on a virtual X display of its own. Xvfb picks a free display number
    itself and says which once it accepts connections (`-displayfd`): `xvfb-run -a` picks one by
    looking for lock files, so two test workers starting at once could pick the same display.
    Access control is off (`-ac`): the display lives for this one call and listens on no
    network port. pvbatch runs in a clean environment (nothing a test worker's earlier tests
    set reaches it). In the full parallel suite a pvbatch has still, rarely, found its fresh
    display refusing it ("bad X server connection"): that one failure is retried once on a new
    display, and the message of a second one carries Xvfb's own output."""
    proc, server_log = _pvbatch_once(script, args)
    if proc.returncode != 0 and "bad X server connection" in proc.stderr:
        proc, server_log = _pvbatch_once(script, args)
    if proc.returncode != 0:  # the cause, not the last of a long stack trace, in the message
        cause = proc.stderr.split("Stack trace", 1)[0]
        proc.stderr = cause[-3000:] + "\n[stack trace cut]\nXvfb: " + server_log[-1000:]
    return proc


def _pvbatch_once(script, args):
    import subprocess

    read, write = os.pipe()
    server = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24",
                               "-nolisten", "tcp", "-ac"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    os.close(write)
    home = tempfile.mkdtemp(prefix="pvbatch-home-")
    try:
        with os.fdopen(read) as handle:
            display = handle.readline().strip()  # written when the server is ready
        if not display:
            raise RuntimeError(f"Xvfb did not start: {server.communicate(timeout=30)[1]!r}")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
               "LANG": "C.UTF-8", "DISPLAY": f":{display}"}
        proc = subprocess.run(["pvbatch", str(script), *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=180)
    finally:
        server.terminate()
        server_log = server.communicate(timeout=30)[1] or ""
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    return proc, server_log
