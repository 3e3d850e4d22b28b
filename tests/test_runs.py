"""Run directories and ``landscape train``: what they write, how it reads back, what they refuse."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape.cli import main
from landscape.errors import InputError, ReadError
from landscape.io import checkpoint
from landscape.runs import save_run

USER_MODULE = '''
"""A user workload: tiny spirals with a BatchNorm MLP (so the runs carry model state)."""
import jax
from flax import nnx

from landscape.data.classification import classification_workload
from landscape.data.spirals import spirals
from landscape.models import pure_modes


class Net(nnx.Module):
    def __init__(self, rngs):
        self.dense0 = nnx.Linear(2, 8, rngs=rngs)
        self.bn = nnx.BatchNorm(8, rngs=rngs)
        self.dense1 = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x):
        return self.dense1(jax.nn.relu(self.bn(self.dense0(x))))


def tiny_bn():
    data = spirals(num_train=64, num_test=32, hidden=(4,))
    return classification_workload("tiny-bn", pure_modes(Net), data.train, data.test,
                                   input_shape=(2,), batch_size=64, has_state=True)
'''
WORKLOAD = "landscape_test_user_workload:tiny_bn"
FAST = ["--workload", WORKLOAD, "--steps", "12", "--batch-size", "16", "--record-every", "4",
        "--quiet"]


@pytest.fixture(scope="module")
def user_workload(tmp_path_factory):
    folder = tmp_path_factory.mktemp("user")
    (folder / "landscape_test_user_workload.py").write_text(USER_MODULE)
    sys.path.insert(0, str(folder))
    yield WORKLOAD
    sys.path.remove(str(folder))
    sys.modules.pop("landscape_test_user_workload", None)


@pytest.fixture(scope="module")
def cli_runs(user_workload, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(main, ["train", *FAST, "--optimizer", "sgd", "--optimizer",
                                       "adam", "--lr", "0.05", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_cli_writes_one_run_directory_per_optimizer(cli_runs):
    out, output = cli_runs
    assert str(out / "sgd") in output and str(out / "adam") in output
    assert "adam: step 12" in output  # the summary line
    for name in ("sgd", "adam"):
        assert {"run.json", "trajectory.h5", "final"} <= set(os.listdir(out / name))
        with open(out / name / "run.json") as handle:
            document = json.load(handle)
        assert document["workload"] == "tiny-bn" and document["workload_source"] == WORKLOAD
        assert document["optimizer"]["name"] == name and document["optimizer"]["learning_rate"] == 0.05
        assert (document["seed"], document["steps"], document["batch_size"]) == (0, 12, 16)
        assert {"jax", "flax", "optax", "landscape", "orbax-checkpoint"} <= set(document["versions"])
        assert 0 <= document["final_metrics"]["test_acc"] <= 1
    with open(out / "adam" / "run.json") as handle:
        assert {"b1", "b2", "eps"} <= set(json.load(handle)["optimizer"]["hyperparams"])


def test_all_optimizers_start_from_the_same_parameters(cli_runs):
    out, _ = cli_runs
    sgd, adam = landscape.load_run(out / "sgd"), landscape.load_run(out / "adam")
    for a, b in zip(jax.tree.leaves(sgd.params_at(0)), jax.tree.leaves(adam.params_at(0))):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(sgd.params["dense0"]["kernel"], adam.params["dense0"]["kernel"])
    assert sgd.trajectory.step.tolist() == [0, 4, 8, 12]
    # BatchNorm statistics travel beside the params, in the trajectory and the checkpoint.
    assert "mean" in adam.state["bn"] and "mean" not in adam.params["bn"]
    np.testing.assert_array_equal(adam.state_at(12)["bn"]["var"], adam.state["bn"]["var"])


def test_saved_run_reloads_to_the_exact_arrays(user_workload, tmp_path):
    import importlib

    workload = importlib.import_module("landscape_test_user_workload").tiny_bn()
    run = landscape.train(workload, "ranger", steps=10, batch_size=16, record_every=3, seed=4)
    save_run(run, tmp_path / "ranger")
    back = landscape.load_run(tmp_path / "ranger" / "run.json")
    assert back.trajectory.step.tolist() == [0, 3, 6, 9, 10]
    for step in back.trajectory.step:
        for got, want in zip(jax.tree.leaves(back.params_at(int(step))),
                             jax.tree.leaves(run.params_at(int(step)))):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
    for got, want in zip(jax.tree.leaves((back.params, back.state)), jax.tree.leaves((run.params, run.state))):
        np.testing.assert_array_equal(got, np.asarray(want))
    np.testing.assert_array_equal(back.losses, run.losses)
    assert (back.workload, back.optimizer, back.seed, back.num_steps) == (
        "tiny-bn", run.optimizer, 4, 10)
    assert back.final_metrics == run.final_metrics and back.path == str(tmp_path / "ranger")
    with pytest.raises(InputError, match="pass `overwrite=True` to replace it") as refused:
        save_run(run, tmp_path / "ranger")
    assert "--" not in str(refused.value)  # the library names its arguments, not CLI options
    save_run(run, tmp_path / "ranger", overwrite=True)


def test_orbax_alone_restores_the_final_checkpoint(cli_runs, tmp_path):
    out, _ = cli_runs
    params, state = checkpoint.restore(out / "adam" / "final")
    expected = {f"params/{k}": v for k, v in _flat(params).items()}
    expected.update({f"state/{k}": v for k, v in _flat(state).items()})
    np.savez(tmp_path / "expected.npz", **expected)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import orbax.checkpoint as ocp
        tree = ocp.StandardCheckpointer().restore({str(out / "adam" / "final")!r})
        flat = {{}}
        def walk(prefix, node):
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(f"{{prefix}}/{{key}}" if prefix else key, value)
            else:
                flat[prefix] = np.asarray(node)
        walk("", tree)
        expected = np.load({str(tmp_path / "expected.npz")!r})
        assert sorted(flat) == sorted(expected.files), (sorted(flat), expected.files)
        for key in expected.files:
            np.testing.assert_array_equal(flat[key], expected[key])
        assert not any(name.split(".")[0] in ("landscape", "flax", "optax") for name in sys.modules)
        print("restored", len(flat), "arrays")
    """)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"restored {len(expected)} arrays" in done.stdout
    assert any(key.startswith("state/bn") for key in expected)


def _flat(tree, prefix=""):
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}/{key}" if prefix else key
        flat.update(_flat(value, name) if isinstance(value, dict) else {name: np.asarray(value)})
    return flat


def test_an_existing_run_is_refused_without_overwrite(cli_runs):
    out, _ = cli_runs
    result = CliRunner().invoke(main, ["train", *FAST, "--optimizer", "sgd", "--out", str(out)])
    assert result.exit_code == 2
    assert f"{out / 'sgd'} already holds a run" in result.output and "--overwrite" in result.output


@pytest.mark.parametrize("args, message", [
    (["--workload", "digitz"], "is not a built-in workload; choose one of"),
    (["--optimizer", "adamm"], "(='adamm') is not a known optimizer; choose one of"),
    (["--optimizer", "adam", "--optimizer", "adam"], "is given twice"),
    (["--record-every", "0"], "0 is not in the range x>=1"),
    (["--steps", "0"], "0 is not in the range x>=1"),
])
def test_bad_input_is_refused_with_a_message(args, message, tmp_path):
    result = CliRunner().invoke(main, ["train", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    if "digitz" in args:
        assert all(name in result.output for name in ("digits", "spirals", "cifar10", "mnist"))
    if "adamm" in args:
        assert all(name in result.output for name in ("sgd", "adam", "ranger", "paratrooper"))
    if "--record-every" in args:
        assert "--record-every" in result.output


def test_truncated_mnist_file_is_a_one_line_cli_error(tmp_path):
    from tests.test_data import write_mnist_folder

    write_mnist_folder(tmp_path / "mnist")
    path = tmp_path / "mnist" / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    result = CliRunner().invoke(main, ["train", "--workload", "mnist", "--data-dir",
                                       str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and lines[0].startswith("Error:")


def test_truncated_cifar_file_is_a_one_line_cli_error(tmp_path):
    from tests.test_data import write_cifar_folder

    write_cifar_folder(tmp_path / "cifar10" / "cifar-10-batches-bin", per_file=1)
    path = tmp_path / "cifar10" / "cifar-10-batches-bin" / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:3000])
    result = CliRunner().invoke(main, ["train", "--workload", "cifar10", "--data-dir",
                                       str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "truncated" in lines[0]


def test_missing_data_says_where_to_put_it(tmp_path):
    result = CliRunner().invoke(main, ["train", "--workload", "fashion-mnist", "--data-dir",
                                       str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert str(tmp_path / "fashion-mnist") in result.output and "nothing is downloaded" in result.output


def test_help_shows_examples():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    assert "--record-every" in result.output and "landscape train --workload digits" in result.output


def test_load_run_refuses_other_folders(tmp_path):
    with pytest.raises(ReadError, match="not a run directory"):
        landscape.load_run(tmp_path)
