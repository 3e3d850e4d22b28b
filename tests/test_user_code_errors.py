"""A user workload whose loss (or init) fails is a one-line error naming the workload and the
first line of what it raised (issue 18), in `landscape train` and in :func:`landscape.train`;
:func:`landscape.errors.user_code` is the piece that does it."""

import pytest
from click.testing import CliRunner

from landscape.cli import main
from landscape.errors import InputError, LandscapeError, ReadError, blame_user_code, user_code

MODULE = '''
import jax.numpy as jnp
import numpy as np
from landscape import Workload
from landscape.workload import Dataset

X = np.linspace(-1, 1, 40, dtype=np.float32).reshape(20, 2)
DATA = Dataset(X, X[:, :1] * 2)


def init(key):
    return {"w": jnp.zeros((3, 1))}, {}   # 3 inputs: the data has 2


def shapes_differ(params, state, batch):
    err = batch.inputs @ params["w"] - batch.targets
    return jnp.mean(err ** 2), {}


def raises(params, state, batch):
    raise ValueError("labels must be one-hot\\n  (got integers)")


def ok_loss(params, state, batch):
    return jnp.mean((batch.inputs[:, :1] * params["w"][0] - batch.targets) ** 2), {}


def per_sample(params, state, batch):
    return (batch.inputs[:, :1] * params["w"][0] - batch.targets) ** 2, {}  # not the mean


def bad_init(key):
    raise RuntimeError("weights file missing")


def wrong_shape():
    return Workload("wrong-shape", init, shapes_differ, DATA, batch_size=10)


def loss_raises():
    return Workload("loss-raises", init, raises, DATA, batch_size=10)


def not_scalar():
    return Workload("not-scalar", init, per_sample, DATA, batch_size=10)


def init_raises():
    return Workload("init-raises", bad_init, ok_loss, DATA, batch_size=10)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "wl_user_loss.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


@pytest.mark.parametrize("factory, message", [
    ("wrong_shape", "Error: the loss of workload 'wrong-shape' raised TypeError: dot_general "
                    "requires contracting dimensions to have the same shape, got (2,) and (3,)."),
    ("loss_raises", "Error: the loss of workload 'loss-raises' raised ValueError: labels must be "
                    "one-hot"),
    ("not_scalar", "Error: the loss of workload 'not-scalar' raised TypeError: Gradient only "
                   "defined for scalar-output functions. Output had shape: (20, 1)."),
    ("init_raises", "Error: the init of workload 'wl_user_loss:init_raises' raised "
                    "RuntimeError: weights file missing"),
])
def test_a_failing_user_loss_is_a_one_line_error_in_train(user_module, factory, message):
    out = user_module / "out"
    result = CliRunner().invoke(main, ["train", "--workload", f"wl_user_loss:{factory}",
                                       "--steps", "2", "--quiet", "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(
        result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert errors == [message], result.output
    assert not (out / "adam" / "run.json").exists()


def test_the_library_train_raises_an_input_error_too(user_module):
    import wl_user_loss

    import landscape

    with pytest.raises(InputError, match="^the loss of workload 'loss-raises' raised ValueError: "
                                         "labels must be one-hot$"):
        landscape.train(wl_user_loss.loss_raises(), "sgd", steps=1)


def test_user_code_turns_foreign_exceptions_into_one_line_input_errors():
    with pytest.raises(InputError) as info:
        with user_code("the loss of workload 'w'"):
            raise RuntimeError("a\n  b")
    assert str(info.value) == "the loss of workload 'w' raised RuntimeError: a"
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(InputError, match=r"raised ZeroDivisionError: \(no message\)$"):
        with user_code("it"):
            raise ZeroDivisionError()
    with pytest.raises(ReadError, match="ours"):  # the library's own errors pass through
        with user_code("it"):
            raise ReadError("ours")
    for passing in (KeyboardInterrupt, SystemExit, MemoryError):
        with pytest.raises(passing):
            with user_code("it"):
                raise passing()
    assert issubclass(InputError, LandscapeError)


def test_blame_user_code_checks_the_user_code_only_when_a_call_fails():
    checks = []

    def user_loss_ok():
        checks.append("ok")

    def user_loss_broken():
        with user_code("the loss of workload 'w'"):
            raise ValueError("bad labels")

    def our_step(x):
        if x < 0:
            raise IndexError("our bug")
        return 2 * x

    assert blame_user_code(user_loss_ok)(our_step)(3) == 6 and checks == []
    with pytest.raises(IndexError, match="our bug"):  # the user's code is fine: ours propagates
        blame_user_code(user_loss_ok)(our_step)(-1)
    assert checks == ["ok"]
    with pytest.raises(InputError, match="^the loss of workload 'w' raised ValueError: bad "
                                         "labels$"):
        blame_user_code(user_loss_broken)(our_step)(-1)
