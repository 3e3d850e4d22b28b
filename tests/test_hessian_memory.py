"""Curvature in the memory of one batch, whatever the data set's size.

A derivative of the whole data set's mean in one expression keeps every batch's activations for
its reverse pass: XLA's compiled estimate of such an HVP grew 171 → 4,168 MiB from 2 to 64
batches of a small ResNet. Every curvature feature now sums its batches' products
(:mod:`landscape.curvature.operator`). Here, on a small convnet, XLA's own compiled estimate
(``memory_analysis()``: the program's temporaries and outputs; the data are its arguments) of
one HVP, one Gauss–Newton and one empirical-Fisher product, one sharpness gradient, one
eigen-map point and one tracking measurement is the same for 1, 4 and 16 batches (within 10 %),
and each result equals the dense float64 reference of the full-data mean (the dense Hessian,
``jax.grad`` over all the samples as one batch).
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import landscape
from landscape import curvature as hs
from landscape.geometry.tracking import SharpnessTracker
from landscape.curvature.lanczos import lanczos_top
from landscape.curvature.sums import device_mean_compiled
from landscape.workload import Batch, Dataset, Workload

BATCH = 8  # two samples per device of conftest.py's four
BATCH_COUNTS = (1, 4, 16)


def convnet(num_batches: int) -> Workload:
    """3×3 convolution (8 channels) on 20×20 images, tanh, mean pool, dense to 3 classes: 107
    parameters, 2,592 activations per sample and layer (they dominate memory)."""
    n = BATCH * num_batches
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 20, 20, 1))
    y = (np.arange(n) % 3).astype(np.int32)

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"conv": {"kernel": jax.random.normal(k1, (3, 3, 1, 8)) / 3,
                         "bias": jnp.full(8, 0.1)},
                "dense": {"kernel": jax.random.normal(k2, (8, 3)), "bias": jnp.zeros(3)}}, {}

    def apply(params, state, inputs):
        h = jax.lax.conv_general_dilated(inputs, params["conv"]["kernel"], (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jnp.tanh(h + params["conv"]["bias"]).mean(axis=(1, 2))
        return h @ params["dense"]["kernel"] + params["dense"]["bias"]

    def output_loss(logits, batch):
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, batch.targets[:, None], axis=1))

    def loss(params, state, batch):
        return output_loss(apply(params, state, batch.inputs), batch), {}

    return Workload(name="convnet", init=init, loss=loss, train=Dataset(x, y), batch_size=BATCH,
                    task="classification", input_shape=(20, 20, 1), apply=apply,
                    output_loss=output_loss)


def footprint(lowered) -> int:
    """Bytes XLA's compiled program needs beyond its arguments (temporaries and outputs)."""
    stats = lowered.compile().memory_analysis()
    return int(stats.temp_size_in_bytes + stats.output_size_in_bytes)


class Reference:
    """Float64 references of the full-data mean (all samples as one batch): H v and the
    gradient by one reverse pass each, and (``dense``) the whole Hessian's extreme
    eigenvalues."""

    def __init__(self, workload, params, state, v, *, dense: bool):
        flat, unravel = ravel_pytree(params)
        everything = Batch(jnp.asarray(workload.train.inputs), jnp.asarray(workload.train.targets))
        mean = lambda w: workload.loss(unravel(w), state, everything)[0]  # noqa: E731
        column = lambda e: jax.jvp(jax.grad(mean), (flat,), (e,))[1]  # noqa: E731
        self.hv, self.grad = np.asarray(column(v)), np.asarray(jax.grad(mean)(flat))
        if dense:  # column by column, 8 at a time (all at once: n tangents of every sample)
            hessian = np.asarray(jax.jit(lambda: jax.lax.map(
                column, jnp.eye(flat.size, dtype=flat.dtype), batch_size=8))())
            self.lam = np.linalg.eigvalsh(hessian)


@pytest.fixture(scope="module")
def measured():
    """For each batch count: the programs' footprints, and the results to check (the
    eigenvalues, which take n Lanczos steps to be exact, at 4 batches only)."""
    out = {}
    with jax.enable_x64(True):
        for count in BATCH_COUNTS:
            workload = convnet(count)
            params, state = workload.init(jax.random.key(0))
            params = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
            device = hs.hessian_problem(workload, params, state, loop="device")
            host = hs.hessian_problem(workload, params, state)  # a convnet on the CPU: host
            n = device.num_params
            v = jnp.asarray(np.random.default_rng(1).normal(size=n))
            key = jax.random.key(0)
            map_data = jax.device_put(hs.eigen_map_data(workload, params, state))
            k = device.kernels
            others = {op: hs.hessian_problem(workload, params, state, loop="device", operator=op)
                      for op in ("ggn", "fisher")}
            sizes = {  # a few Lanczos steps: the steps' count changes only the (n-long) basis
                "hvp": footprint(jax.jit(device.matvec).lower(v, device.operands)),
                **{op: footprint(jax.jit(p.matvec).lower(v, p.operands))
                   for op, p in others.items()},
                "gradient": footprint(device_mean_compiled.lower(
                    (device.params, device.state), device.data, fn=k.value_and_grad)),
                "eigen-map point": footprint(jax.jit(hs.eigen_point_fn(
                    workload, num_steps=4)).lower(params, map_data)),
                "tracking": footprint(jax.jit(lanczos_top, static_argnums=(0, 3)).lower(
                    device.matvec, device.operands, v / jnp.linalg.norm(v), 4, key)),
                "batch input bytes": BATCH * 20 * 20 * 8 // jax.device_count(),
            }
            results = {
                "hvp": [np.asarray(p.hvp(v)) for p in (device, host)],
                "gradient": [np.asarray(p.value_and_grad()[1]) for p in (device, host)],
                "host": host.on_host and not device.on_host,
            }
            last = count == BATCH_COUNTS[1]  # several batches (the cheaper of the two counts)
            if last:
                tracker = SharpnessTracker(workload, num_steps=n)
                tracker(0, params, state)
                results["tracking"] = tracker.fetch()[0][1]
                results["eigen-map point"] = jax.device_get(
                    jax.jit(hs.eigen_point_fn(workload, num_steps=n))(params, map_data))
            out[count] = (sizes, results, Reference(workload, params, state, v, dense=last))
    return out


@pytest.mark.parametrize("program", ["hvp", "ggn", "fisher", "gradient", "eigen-map point",
                                     "tracking"])
def test_compiled_memory_is_flat_in_the_number_of_batches(measured, program):
    """4 and 16 batches need what one needs, within 10 % and one batch of inputs (a loop copies
    one batch out of the stacked data; one batch may even need more: XLA schedules a program
    without a loop differently)."""
    sizes = {count: measured[count][0][program] for count in BATCH_COUNTS}
    one, four = sizes[1], sizes[4]
    allowance = measured[1][0]["batch input bytes"]
    assert four <= 1.1 * one + allowance and abs(sizes[16] - four) <= 0.1 * four, sizes


@pytest.mark.parametrize("count", BATCH_COUNTS)
def test_each_result_equals_the_dense_float64_reference(measured, count):
    _, results, ref = measured[count]
    assert results["host"]  # both ways of summing were checked
    for hv in results["hvp"]:
        np.testing.assert_allclose(hv, ref.hv, rtol=1e-8, atol=1e-10)
    for g in results["gradient"]:
        np.testing.assert_allclose(g, ref.grad, rtol=1e-8, atol=1e-12)
    if count == BATCH_COUNTS[1]:  # m = n Lanczos steps over 4 batches: the exact extremes
        point = results["eigen-map point"]
        np.testing.assert_allclose([point["max_eig"], point["min_eig"]],
                                   [ref.lam[-1], ref.lam[0]], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(results["tracking"], ref.lam[-1], rtol=1e-6)


def test_the_api_takes_streamed_batches_and_gives_the_in_memory_values():
    """``landscape.hessian`` reads a re-iterable of batches (a list here, as a DataLoader would
    give them) one at a time at every product, as PyHessian reads its dataloader."""
    workload = convnet(3)
    params, state = workload.init(jax.random.key(0))
    x, y = workload.train.inputs.astype(np.float32), workload.train.targets
    loss_fn = lambda p, batch: workload.loss(p, state, Batch(*batch))[0]  # noqa: E731
    reads = []

    class Loader:  # re-iterable, counting the batches it hands out
        def __iter__(self):
            for start in range(0, len(x), 10):  # 10, 10, 4: sizes differ, weights must too
                reads.append(start)
                yield x[start:start + 10], y[start:start + 10]

    streamed = landscape.hessian(loss_fn, params, Loader())
    in_memory = landscape.hessian(loss_fn, params, (x, y), batch_size=BATCH)
    assert streamed.problem.on_host
    before = len(reads)  # the first batch may be read to learn what the loss returns
    top = [h.eigenvalues(top_k=2, tol=1e-5) for h in (streamed, in_memory)]
    np.testing.assert_allclose(top[0], top[1], rtol=1e-4)
    passes = len(reads) - before
    assert passes % 3 == 0 and passes >= 3 * 2  # whole passes, one per product
    trace = [h.trace(samples=4, seed=1) for h in (streamed, in_memory)]
    np.testing.assert_allclose(trace[0].samples, trace[1].samples, rtol=1e-4)
    density = streamed.density(probes=2, steps=5)
    assert np.isclose(density.weights.sum(), 1.0)


def test_an_in_memory_data_set_summed_from_the_host_reads_each_batch_once_per_product():
    """The host path keeps the batches on the device: one compiled call per batch."""
    workload = convnet(4)
    params, state = workload.init(jax.random.key(0))
    problem = hs.hessian_problem(workload, params, state, loop="host")
    assert len(problem.data.batches) == 4
    assert all(isinstance(leaf, jax.Array) for b in problem.data.batches
               for leaf in jax.tree.leaves(b))
    device = dataclasses.replace(hs.hessian_problem(workload, params, state, loop="device"))
    v = jnp.ones(problem.num_params)
    np.testing.assert_allclose(problem.hvp(v), device.hvp(v), rtol=2e-5, atol=1e-6)


def test_out_of_memory_halves_the_batch_and_gives_the_same_numbers(monkeypatch):
    """An injected RESOURCE_EXHAUSTED for batches over 32 samples: the Hessian's computations
    are rerun over batches of half the size, say so, keep the size that fitted, and give what
    an unconstrained run gives (the sums are the same at any batch size)."""
    from landscape.engine.memory import fake_out_of_memory
    from landscape.curvature import sums

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(256, 3)), rng.normal(size=256)
    params = {"w": jnp.asarray(rng.normal(size=(3, 7)) / 2, jnp.float32),
              "v": jnp.asarray(rng.normal(size=7), jnp.float32)}

    def loss_fn(p, batch):
        return jnp.mean((jnp.tanh(batch[0] @ p["w"]) @ p["v"] - batch[1]) ** 2)

    real = sums.device_mean

    def limited(fn, args, data):  # called as each program is traced
        full, rest = data
        sizes = [jax.tree.leaves(full)[0].shape[1]] if full is not None else []
        sizes += [sums.batch_count(rest)] if rest is not None else []
        if max(sizes) > 32:
            raise fake_out_of_memory()
        return real(fn, args, data)

    monkeypatch.setattr(sums, "device_mean", limited)
    constrained = landscape.hessian(loss_fn, params, (x, y), batch_size=128)
    with pytest.warns(RuntimeWarning) as said:
        top = constrained.eigenvalues(top_k=2, tol=1e-6)
    assert [str(w.message) for w in said] == [
        "out of device memory at batch 128: retrying with batch 64",
        "out of device memory at batch 64: retrying with batch 32"]
    assert constrained.shrinks == [(128, 64), (64, 32)] and constrained.problem.batch_size == 32
    trace = constrained.trace(samples=6, seed=2)  # starts at the size that fitted
    assert len(constrained.shrinks) == 2
    monkeypatch.undo()
    free = landscape.hessian(loss_fn, params, (x, y), batch_size=128)
    np.testing.assert_allclose(top, free.eigenvalues(top_k=2, tol=1e-6), rtol=1e-5)
    np.testing.assert_allclose(trace.samples, free.trace(samples=6, seed=2).samples, rtol=1e-5)
    assert free.shrinks == [] and free.problem.batch_size == 128
