"""The engine's per-backend policy: out of device memory a scan halves its chunk, then its
evaluation batch, and training cuts its minibatch into micro-batches — each saying so, each
recording the final sizes, each giving the unconstrained run's numbers; the device-memory
budget hook; the evaluation batch size; the shared first layer kept or not from the device's
numbers (a fake H100 against the CPU)."""

import json
import types

import jax
import numpy as np
import optax
import pytest
from click.testing import CliRunner

from landscape.batches import Batch, Batches, Dataset
from landscape.cli import main
from landscape.data.classification import classification_workload
from landscape.data.spirals import spirals
from landscape.directions import random_plane
from landscape.engine import chunks, evaluate_surface, sizing
from landscape.engine import surface as engine_surface
from landscape.engine.memory import (
    fake_out_of_memory,
    halve_on_oom,
    is_out_of_memory,
    shrink_message,
)
from landscape.engine.stem import first_layer_plan, split_at_stem
from landscape.errors import InputError, OutOfMemory
from landscape.grid import Grid
from landscape.io import surface_h5
from landscape.io.surface_record import SurfaceRecord
from landscape.models import SmallCNN, pure_modes
from landscape.objective import Objective
from landscape.runs import load_run, save_run
from landscape.scan import scan_surface
from landscape.train_loop import train


class FakeAccelerator:
    """A device as the engine sees it: platform, kind and memory statistics."""

    platform = "gpu"

    def __init__(self, kind="NVIDIA H100 80GB HBM3", limit=80 * 2**30, used=2**30):
        self.device_kind = kind
        self.stats = {"bytes_limit": limit, "bytes_in_use": used}

    def memory_stats(self):
        return self.stats


def _cnn_objective():
    """A two-convolution classifier on 8x8x3 images, 40 samples in batches of 16."""
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(40, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 10, 40).astype(np.int32)
    model = pure_modes(lambda r: SmallCNN((8, 8, 3), 10, channels=(4, 8), rngs=r))
    workload = classification_workload("oom-cnn", model, Dataset(inputs, labels), None,
                                       input_shape=(8, 8, 3), batch_size=16)
    params, state = workload.init(jax.random.key(0))
    return workload.objective(state), params


CNN, CNN_PARAMS = _cnn_objective()


def _line_loss(params, state, batch):
    return jax.numpy.mean((batch.inputs @ params["w"] - batch.targets) ** 2), {}


_X = np.linspace(-1, 1, 48, dtype=np.float32).reshape(24, 2)
LINE = Objective(_line_loss, {"train": Dataset(_X, _X @ np.array([3.0, -1.0], np.float32))},
                 batch_size=8, name="line")  # fast to compile; no layer worth sharing
LINE_PARAMS = {"w": np.ones((2,), np.float32)}


def _failing_above(monkeypatch, *, chunk=None, batch=None, calls=None):
    """Make every compiled chunk call with more than ``chunk`` points, or on data batches of
    more than ``batch`` samples, raise XLA's out-of-memory error (before running)."""
    real = chunks.Program.dispatch

    def dispatch(self, coords, constants):
        data = constants[1]
        full = data["batches"]["train"][0] if "batches" in data else None
        samples = (full.inputs.shape[1] if full is not None else
                   data["batch"].inputs.shape[0] if "batch" in data else 0)
        if calls is not None:
            calls.append((self.chunk, samples))
        if (chunk is not None and self.chunk > chunk) or (batch is not None and samples > batch):
            raise fake_out_of_memory()
        return real(self, coords, constants)

    monkeypatch.setattr(chunks.Program, "dispatch", dispatch)


# --- the helper ---------------------------------------------------------------------------


def test_out_of_memory_is_told_from_other_errors():
    assert is_out_of_memory(fake_out_of_memory())
    assert is_out_of_memory(jax.errors.JaxRuntimeError("INTERNAL: Out of memory in hbm"))
    assert is_out_of_memory(OutOfMemory("given up by an inner helper"))
    assert not is_out_of_memory(jax.errors.JaxRuntimeError("INVALID_ARGUMENT: bad shape"))
    assert not is_out_of_memory(MemoryError())  # the host's, not a device's
    assert not is_out_of_memory(ValueError("RESOURCE_EXHAUSTED"))  # not from the runtime


def test_halve_on_oom_halves_until_it_fits_and_says_so():
    shrinks, tried = [], []

    def work(size):
        tried.append(size)
        if size > 10:
            raise fake_out_of_memory()
        return size * 2

    assert halve_on_oom(work, 64, what="chunk", on_shrink=lambda *a: shrinks.append(a)) == 16
    assert tried == [64, 32, 16, 8]
    assert shrinks == [(64, 32, "chunk"), (32, 16, "chunk"), (16, 8, "chunk")]
    assert shrink_message(64, 32, "chunk") == ("out of device memory at chunk 64: retrying "
                                               "with chunk 32")
    tried.clear()  # multiples of the device count, never below the minimum
    assert halve_on_oom(work, 36, multiple=4, minimum=4) == 16
    assert tried == [36, 16, 8]
    with pytest.raises(ValueError, match="other"):  # anything else passes through at once
        halve_on_oom(lambda size: (_ for _ in ()).throw(ValueError("other")), 8)


def test_halve_on_oom_gives_up_at_the_minimum_with_the_sizes_tried():
    def never(size):
        raise fake_out_of_memory(123)

    with pytest.raises(OutOfMemory) as caught:
        halve_on_oom(never, 8, what="eval batch")
    assert caught.value.sizes == (8, 4, 2, 1) and caught.value.what == "eval batch"
    message = str(caught.value)
    assert "eval batch 1 (tried 8, 4, 2, 1)" in message and "123 bytes" in message
    # Nested: the inner size exhausted, the outer one is halved next.
    seen = []

    def outer(batch):
        return halve_on_oom(lambda chunk: seen.append((batch, chunk)) or (
            (_ for _ in ()).throw(fake_out_of_memory()) if batch > 2 else chunk), 2)

    assert halve_on_oom(outer, 8) == 2
    assert seen == [(8, 2), (8, 1), (4, 2), (4, 1), (2, 2)]


# --- the scan -----------------------------------------------------------------------------


def test_a_scan_out_of_memory_halves_the_chunk_then_the_batch_and_gives_the_same_values(
        monkeypatch):
    plane = random_plane(CNN_PARAMS, seed=1)
    grid = Grid.from_specs("-1:1:4", "-1:1:3")
    want = evaluate_surface(CNN, plane, grid, strategy="map", chunk=2)["train_loss"]
    _failing_above(monkeypatch, chunk=1)
    shrinks, plans = [], []
    got = evaluate_surface(CNN, plane, grid, strategy="map", chunk=2, on_plan=plans.append,
                           on_shrink=lambda *a: shrinks.append(a))["train_loss"]
    assert plans[0].devices == 1 and (plans[0].chunk, plans[0].eval_batch) == (2, 16)
    assert plans[0].stem == "conv0/kernel"  # the shared first layer, on the CPU
    assert shrinks == [(2, 1, "chunk")] and plans[-1].chunk == 1
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_a_streamed_scan_out_of_memory_cuts_the_stream_s_batches(monkeypatch):
    data = LINE.data["train"]
    stream = Batches([Batch(data.inputs[i:i + 10], data.targets[i:i + 10])
                      for i in range(0, len(data), 10)])  # 10, 10, 4
    streamed = LINE.replace(data={"train": stream})
    plane = random_plane(LINE_PARAMS, seed=1, ignore="none")
    grid = Grid.from_specs("-1:1:3", "-1:1:2")
    want = evaluate_surface(LINE, plane, grid, strategy="map", chunk=2)["train_loss"]
    calls, shrinks, plans = [], [], []
    _failing_above(monkeypatch, batch=5, calls=calls)
    got = evaluate_surface(streamed, plane, grid, strategy="map", chunk=2, on_plan=plans.append,
                           on_shrink=lambda *a: shrinks.append(a))["train_loss"]
    assert shrinks == [(2, 1, "chunk"), (10, 5, "eval batch")] and plans[-1].eval_batch == 5
    assert plans[0].eval_batch is None  # a stream's own batches until they are cut
    assert max(samples for chunk, samples in calls[-4:]) <= 5
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_a_scan_that_never_fits_stops_with_one_clear_error(monkeypatch):
    _failing_above(monkeypatch, chunk=0)
    plane = random_plane(LINE_PARAMS, seed=1, ignore="none")
    with pytest.raises(OutOfMemory, match=r"even at eval batch 1 \(tried 8, 4, 2, 1\): out of "
                                          r"device memory even at chunk"):
        evaluate_surface(LINE, plane, Grid.from_specs("-1:1:2", "-1:1:2"), strategy="map")


class _Killed(Exception):
    pass


def test_the_surface_file_records_the_final_sizes_and_a_resume_keeps_them(monkeypatch,
                                                                        tmp_path):
    plane = random_plane(LINE_PARAMS, seed=2, ignore="none")
    grid = Grid.from_specs("-1:1:5", "-1:1:4")
    want = scan_surface(LINE, plane, grid, strategy="map", chunk=4).values["train_loss"]
    path = tmp_path / "surface.h5"
    _failing_above(monkeypatch, batch=4)
    written = []
    real_write = surface_h5.write_points

    def killed_after_two(*args, **options):
        if len(written) == 2:
            raise _Killed
        written.append(1)
        real_write(*args, **options)

    monkeypatch.setattr(surface_h5, "write_points", killed_after_two)
    with pytest.raises(_Killed):
        scan_surface(LINE, plane, grid, out=path, strategy="map", chunk=4)
    partial = surface_h5.read(path)
    assert 0 < partial.done.sum() < grid.num_points
    assert _plan(partial)["eval_batch"] == 4 and _plan(partial)["chunk"] == 1
    monkeypatch.undo()  # memory to spare now: the resume keeps the recorded sizes anyway
    calls = []
    _failing_above(monkeypatch, calls=calls)
    surface = scan_surface(LINE, plane, grid, out=path, strategy="map")
    assert {samples for _, samples in calls} == {4} and {chunk for chunk, _ in calls} == {1}
    assert _plan(surface)["eval_batch"] == 4
    np.testing.assert_allclose(surface.values["train_loss"], want, rtol=1e-6, atol=1e-7)


def test_the_cli_says_it_shrank_and_records_the_eval_batch(monkeypatch, tmp_path):
    _failing_above(monkeypatch, chunk=4, batch=250)
    out = tmp_path / "small"
    result = CliRunner().invoke(main, ["scan", "--steps", "5", "--x", "-1:1:3", "--y", "-1:1:5",
                                       "--quiet", "--chunk", "8", "--eval-batch-size", "500",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "out of device memory at chunk 8: retrying with chunk 4" in result.output
    assert "out of device memory at eval batch 500: retrying with eval batch 250" in result.output
    small = surface_h5.read(out / "surface.h5")
    assert small.done.all()
    assert _plan(small)["chunk"] == 4 and _plan(small)["eval_batch"] == 250
    # The centre of the plane is the trained model: its loss, as trained, at any batch size.
    np.testing.assert_allclose(small.values["train_loss"][2, 1],
                               small.attrs["train_loss_at_origin"], rtol=1e-5)
    info = CliRunner().invoke(main, ["info", str(out / "surface.h5")])
    assert "data in batches of 250" in info.output


@pytest.mark.parametrize("value", ["0", "-3"])
def test_a_bad_eval_batch_size_is_one_line(value, tmp_path):
    result = CliRunner().invoke(main, ["scan", "--eval-batch-size", value,
                                       "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--eval-batch-size" in result.output and "Traceback" not in result.output
    with pytest.raises(InputError, match="eval_batch_size"):
        scan_surface(CNN, random_plane(CNN_PARAMS), Grid.from_specs("-1:1:2"),
                     eval_batch_size=int(value))


def _plan(surface) -> dict:
    return SurfaceRecord.from_attrs(surface.attrs).strategy


# --- budgets and batch sizes --------------------------------------------------------------


def test_a_small_budget_through_the_hook_picks_a_smaller_chunk(monkeypatch):
    monkeypatch.setattr(chunks, "_programs", type(chunks._programs)())  # size afresh
    plane = random_plane(LINE_PARAMS, seed=1, ignore="none")
    grid = Grid.from_specs("-1:1:8", "-1:1:8")
    plans = []
    evaluate_surface(LINE, plane, grid, strategy="vmap", on_plan=plans.append)
    assert plans[-1].chunk == grid.num_points
    chunks._programs.clear()
    monkeypatch.setattr(sizing, "device_memory_budget", lambda device: 2**12)
    evaluate_surface(LINE, plane, grid, strategy="vmap", on_plan=plans.append)
    assert plans[-1].chunk < grid.num_points


def test_the_budget_is_capped_by_the_environment(monkeypatch):
    cpu = jax.devices()[0]
    monkeypatch.setenv(sizing.BUDGET_ENV, "12345")
    assert sizing.device_memory_budget(cpu) == 12345
    assert sizing.device_memory_budget(FakeAccelerator()) == 12345
    monkeypatch.setenv(sizing.BUDGET_ENV, "lots")
    with pytest.raises(InputError, match="LANDSCAPE_DEVICE_MEMORY"):
        sizing.device_memory_budget(cpu)
    monkeypatch.delenv(sizing.BUDGET_ENV)
    assert sizing.device_memory_budget(FakeAccelerator()) == 79 * 2**30
    assert sizing.device_memory_budget(types.SimpleNamespace(
        platform="tpu", memory_stats=lambda: None)) == sizing.UNREPORTED_DEVICE_BYTES


def test_the_eval_batch_fits_an_accelerator_s_free_memory(monkeypatch):
    cpu = jax.devices()[0]
    assert sizing.eval_batch_size(1e3, cpu, num_samples=10**6, default=500) == 500
    gpu = FakeAccelerator(limit=2**30, used=0)
    assert sizing.eval_batch_size(1e3, gpu, num_samples=10**6, default=500) == sizing.MAX_EVAL_BATCH
    assert sizing.eval_batch_size(1e3, gpu, num_samples=3000, default=500) == 3000
    assert sizing.eval_batch_size(None, gpu, num_samples=3000, default=500) == 500
    monkeypatch.setattr(sizing, "device_memory_budget", lambda device: 16 * 100 * 1000)
    assert sizing.eval_batch_size(1e3, gpu, num_samples=10**6, default=500) == 100
    assert sizing.eval_batch_size(1e9, gpu, num_samples=10**6, default=500) == 1
    # The scan's default on an accelerator: the activations per sample from XLA's estimate
    # (of a batch of all 40 samples here), as many as fit a sixteenth of the budget.
    per_sample = sizing.bytes_per_sample(CNN.loss, (CNN_PARAMS, CNN.state),
                                         next(CNN.data["train"].batches(64)))
    assert per_sample > 8 * 8 * 3 * 4  # at least the image itself
    monkeypatch.setattr(sizing, "device_memory_budget", lambda device: int(16 * 20.5 * per_sample))
    mesh = types.SimpleNamespace(devices=np.array([gpu]))
    plane = random_plane(CNN_PARAMS)
    assert engine_surface._eval_batch(CNN, plane, ("train",), mesh, None, auto=True) == 20
    assert engine_surface._eval_batch(CNN, plane, ("train",), mesh, 7, auto=True) == 7
    assert engine_surface._eval_batch(CNN, plane, ("train",), mesh, None, auto=False) == 16


# --- the shared first layer, per backend --------------------------------------------------


def test_an_h100_recomputes_resnet56_s_first_layer_where_the_cpu_keeps_digits_cnn_s():
    from landscape.data.cifar import _resnet, cifar_workload

    rng = np.random.default_rng(0)
    resnet = cifar_workload("cifar10-resnet56", _resnet(56, 16, "projection"),
                            rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8),
                            rng.integers(0, 10, 4).astype(np.int32))
    params, state = jax.eval_shape(resnet.init, jax.random.key(0))
    batch = jax.ShapeDtypeStruct((500, 32, 32, 3), np.uint8), jax.ShapeDtypeStruct((500,), np.int32)
    split = split_at_stem(resnet.loss, params, state, Batch(*batch))
    assert split.fan_in == 27 and split.output.shape == (500, 32, 32, 16)
    cifar_products = 3 * 50_000 * 32 * 32 * 16 * 4  # 9.16 GiB
    h100 = FakeAccelerator()
    budget = int(sizing.device_memory_budget(h100) * engine_surface.RESIDENT_MEMORY_FRACTION)
    assert cifar_products < budget  # they would fit: the traffic rule alone refuses them
    assert first_layer_plan(split, sizing.device_numbers(h100), products=3,
                            nbytes=cifar_products, budget=budget) == "none"
    unknown = FakeAccelerator(kind="Some Future Accelerator")
    assert sizing.device_numbers(unknown) == sizing.UNKNOWN_ACCELERATOR
    assert first_layer_plan(split, sizing.device_numbers(unknown), products=3,
                            nbytes=cifar_products, budget=budget) == "none"

    from landscape.data.digits import digits_cnn

    digits = digits_cnn()
    params, state = jax.eval_shape(digits.init, jax.random.key(0))
    batch = Batch(jax.ShapeDtypeStruct((2048, 8, 8, 1), np.float32),
                  jax.ShapeDtypeStruct((2048,), np.int32))
    split = split_at_stem(digits.loss, params, state, batch)
    assert split.fan_in == 9
    cpu = sizing.device_numbers(jax.devices()[0])
    products = 3 * len(digits.train) * 8 * 8 * 16 * 4
    assert first_layer_plan(split, cpu, products=3, nbytes=products, budget=2**30) == "kept"
    assert first_layer_plan(split, cpu, products=3, nbytes=products, budget=2**20) == "per batch"
    assert first_layer_plan(split, sizing.device_numbers(h100), products=3, nbytes=products,
                            budget=2**30) == "none"


def test_device_kinds_are_looked_up():
    assert sizing.device_numbers(FakeAccelerator("NVIDIA H100 PCIe")).flops == 51e12
    assert sizing.device_numbers(FakeAccelerator("NVIDIA H200")).bandwidth == 4.8e12
    assert sizing.device_numbers(FakeAccelerator("NVIDIA A100-SXM4-40GB")).flops == 19.5e12
    assert sizing.device_numbers(jax.devices()[0]) == sizing.CPU_NUMBERS


# --- training -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    return spirals(num_train=64, num_test=32, hidden=(8,))


def _steps_failing_above(monkeypatch, samples: int, calls: list):
    """Make the training step raise XLA's out-of-memory error (before running) whenever it
    would differentiate more than ``samples`` samples at once."""
    from landscape import train_loop as module

    real = module.make_train_step

    def make(workload, optimizer, *, micro_batch=None):
        step = real(workload, optimizer, micro_batch=micro_batch)

        def run(params, opt_state, state, data, order, index):
            calls.append(micro_batch)
            if (micro_batch or order.shape[1]) > samples:
                raise fake_out_of_memory()
            return step(params, opt_state, state, data, order, index)

        return run

    monkeypatch.setattr(module, "make_train_step", make)


def test_training_out_of_memory_sums_micro_batches_to_the_same_params(tiny, monkeypatch,
                                                                     tmp_path):
    want = train(tiny, optax.adam(1e-2), steps=8, batch_size=14, seed=1, record_every=4)
    calls, shrinks = [], []
    _steps_failing_above(monkeypatch, 4, calls)
    run = train(tiny, optax.adam(1e-2), steps=8, batch_size=14, seed=1, record_every=4,
                on_shrink=lambda *a: shrinks.append(a))
    assert shrinks == [(14, 7, "micro-batch"), (7, 3, "micro-batch")]  # once per halving
    assert run.micro_batches == 5  # 4 pieces of 3 and one of 2, weighted by their sizes
    assert calls == [None, 7, 3] + [3] * 7  # the first step thrice, then one call per step
    for got, expected in zip(jax.tree.leaves(run.params), jax.tree.leaves(want.params)):
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(run.trajectory.train_loss, want.trajectory.train_loss, rtol=1e-5)
    save_run(run, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "run.json").read_text())["micro_batches"] == 5
    assert load_run(tmp_path / "run").micro_batches == 5


def test_batch_statistics_cannot_be_micro_batched(tiny, monkeypatch):
    from flax import nnx

    class BatchNormMLP(nnx.Module):
        def __init__(self, rngs):
            self.dense0 = nnx.Linear(2, 8, rngs=rngs)
            self.bn = nnx.BatchNorm(8, rngs=rngs)
            self.dense1 = nnx.Linear(8, 2, rngs=rngs)

        def __call__(self, x):
            return self.dense1(jax.nn.relu(self.bn(self.dense0(x))))

    bn = classification_workload("tiny-bn", pure_modes(BatchNormMLP), tiny.train, tiny.test,
                                 input_shape=(2,), batch_size=64, has_state=True)
    _steps_failing_above(monkeypatch, 4, [])
    with pytest.raises(OutOfMemory, match=r"training step of 16 samples: .*batch statistics"):
        train(bn, "sgd", steps=2, batch_size=16)


def test_the_train_command_says_it_split_the_batch(monkeypatch, tmp_path):
    _steps_failing_above(monkeypatch, 8, [])
    result = CliRunner().invoke(main, ["train", "--workload", "spirals", "--optimizer", "sgd",
                                       "--steps", "3", "--batch-size", "16", "--quiet",
                                       "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.count("out of device memory at micro-batch 16: retrying with "
                               "micro-batch 8") == 1
    document = json.loads((tmp_path / "sgd" / "run.json").read_text())
    assert document["micro_batches"] == 2 and document["batch_size"] == 16


def test_a_line_under_vmap_shrinks_to_the_same_values(monkeypatch):
    """A 1D line, every device, vectorized points, no shared layer."""
    plane = random_plane(LINE_PARAMS, seed=0, ignore="none", dims=1)
    grid = Grid.from_specs("-1:1:9")
    want = evaluate_surface(LINE, plane, grid, strategy="vmap")["train_loss"]
    _failing_above(monkeypatch, chunk=4, batch=2)
    shrinks = []
    got = evaluate_surface(LINE, plane, grid, strategy="vmap",
                           on_shrink=lambda *a: shrinks.append(a))["train_loss"]
    assert shrinks[-1] == (4, 2, "eval batch")
    np.testing.assert_allclose(got, want, rtol=1e-6)
