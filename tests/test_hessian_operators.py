"""The Gauss–Newton and empirical-Fisher operators and parameter blocks against dense float64
references built independently of the operators' code: G = Σ Jᵀ H_ℓ J from ``jax.jacobian`` of
the outputs and ``jax.hessian`` of the output loss, F = (1/N) Σ g_i g_iᵀ from per-sample
``jax.grad``, the Hessian's diagonal blocks from ``jax.hessian`` of the whole loss.

Models: a 2-6-3 tanh MLP and a 3×3 convolution + dense layer, softmax cross-entropy, in
batches of 16 (two whole batches and a short one), so agreement also checks the weighting.
x64 is switched on only inside each test, as in tests/test_hessian.py.
"""

import dataclasses
import logging
from collections import Counter
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import landscape
from landscape import curvature as hs
from landscape.errors import InputError
from landscape.workload import Batch, Dataset, Workload

N, BATCH = 40, 16


def cross_entropy(logits, batch):
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, batch.targets[:, None], axis=1))


def workload_of(name, apply, init, x) -> Workload:
    y = (np.arange(N) % 3).astype(np.int32)

    def loss(params, state, batch):
        return cross_entropy(apply(params, state, batch.inputs), batch), {}

    return Workload(name=name, init=init, loss=loss, train=Dataset(x, y), batch_size=BATCH,
                    apply=apply, output_loss=cross_entropy, task="classification")


def mlp() -> Workload:
    """2-6-3 tanh MLP (39 parameters)."""

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"dense0": {"kernel": jax.random.normal(k1, (2, 6)), "bias": jnp.full(6, 0.1)},
                "dense1": {"kernel": jax.random.normal(k2, (6, 3)), "bias": jnp.zeros(3)}}, {}

    def apply(params, state, x):
        h = jnp.tanh(x @ params["dense0"]["kernel"] + params["dense0"]["bias"])
        return h @ params["dense1"]["kernel"] + params["dense1"]["bias"]

    return workload_of("mlp", apply, init, np.random.default_rng(0).normal(size=(N, 2)))


def cnn() -> Workload:
    """3×3 convolution (2 channels) on 5×5 images, tanh, mean pool, dense to 3 (29 params)."""

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"conv": {"kernel": jax.random.normal(k1, (3, 3, 1, 2)) / 2,
                         "bias": jnp.full(2, 0.1)},
                "dense": {"kernel": jax.random.normal(k2, (2, 3)) * 2, "bias": jnp.zeros(3)}}, {}

    def apply(params, state, x):
        h = jax.lax.conv_general_dilated(x, params["conv"]["kernel"], (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jnp.tanh(h + params["conv"]["bias"]).mean(axis=(1, 2))
        return h @ params["dense"]["kernel"] + params["dense"]["bias"]

    return workload_of("cnn", apply, init, np.random.default_rng(1).normal(size=(N, 5, 5, 1)))


class Dense(NamedTuple):
    workload: Workload
    params: dict
    matrices: dict  # operator -> (n, n)


def dense_matrices(workload: Workload, params) -> dict[str, np.ndarray]:
    """H, G and F of the mean loss over all N samples as one batch (call under x64)."""
    flat, unravel = ravel_pytree(params)
    everything = Batch(jnp.asarray(workload.train.inputs), jnp.asarray(workload.train.targets))

    @jax.jit
    def dense(flat, everything):
        outputs = lambda w: workload.apply(unravel(w), {}, everything.inputs)  # noqa: E731
        jac = jax.jacobian(outputs)(flat)  # (N, C, n)
        h_out = jax.hessian(lambda o: cross_entropy(o, everything))(outputs(flat))  # (N,C,N,C)
        per_sample = jax.vmap(lambda x, y: jax.grad(lambda w: workload.loss(
            unravel(w), {}, Batch(x[None], y[None]))[0])(flat))(*everything)  # (N, n)
        return {"hessian": jax.hessian(lambda w: workload.loss(unravel(w), {}, everything)[0])(
                    flat),
                "ggn": jnp.einsum("iap,iajb,jbq->pq", jac, h_out, jac),
                "fisher": per_sample.T @ per_sample / N}

    return {name: np.asarray(m) for name, m in dense(flat, everything).items()}


@pytest.fixture(scope="module")
def models():
    out = {}
    with jax.enable_x64(True):
        for make in (mlp, cnn):
            workload = make()
            workload = dataclasses.replace(workload, train=Dataset(
                workload.train.inputs.astype(np.float64), workload.train.targets))
            params, _ = workload.init(jax.random.key(2))
            params = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
            out[workload.name] = Dense(workload, params, dense_matrices(workload, params))
    return out


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("operator", ["ggn", "fisher"])
def test_products_and_eigenvalues_match_the_dense_matrices(models, name, operator):
    """Summed on the device (a loop over the batches) and from the host (one call per batch),
    the products, quadratic forms and extreme eigenvalues are the dense matrix's; the GGN
    of a convex output loss is positive semi-definite where the Hessian is not."""
    case = models[name]
    matrix = case.matrices[operator]
    lam = np.linalg.eigvalsh(matrix)
    n = lam.size
    v = np.random.default_rng(3).normal(size=(2, n))
    with jax.enable_x64(True):
        host, device = (hs.hessian_problem(case.workload, case.params, {}, loop=loop,
                                           operator=operator) for loop in ("host", "device"))
        assert host.on_host and not device.on_host and device.operator_kind == operator
        products = {"host": host.hvp(jnp.asarray(v[1])),  # the product Lanczos takes below
                    "device": jax.jit(device.matvec)(jnp.asarray(v[0]), device.operands),
                    "forms": device.quadratic_forms(jnp.asarray(v))}
        # from the host: its Lanczos programs are shared by every operator of one size
        pairs = hs.hessian_eigenpairs(host, top_k=2, bottom_k=1, tol=1e-9,
                                      atol=1e-9 * lam[-1], max_iter=n)
    np.testing.assert_allclose(products["host"], matrix @ v[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(products["device"], matrix @ v[0], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(products["forms"], np.einsum("kn,nm,km->k", v, matrix, v),
                               rtol=1e-9)
    np.testing.assert_allclose(pairs.top.values, lam[::-1][:2], rtol=1e-7)
    assert abs(pairs.bottom.values[0] - lam[0]) <= 1e-7 * lam[-1]
    assert lam[0] >= -1e-12 * lam[-1]  # both are Gram matrices: PSD
    if operator == "ggn":
        assert np.linalg.eigvalsh(case.matrices["hessian"])[0] < -1e-3  # the Hessian is not


def test_the_gauss_newton_matrix_of_a_linear_least_squares_model_is_its_hessian():
    """f(w) = Wx + b, ℓ = mean ‖f − y‖²: no second derivative of the network, so G = H."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))

    def apply(params, state, inputs):
        return inputs @ params["w"] + params["b"]

    def squared(out, batch):
        return jnp.mean(jnp.sum((out - batch.targets) ** 2, axis=-1))

    workload = Workload(name="linear", init=None,
                        loss=lambda p, s, b: squared(apply(p, s, b.inputs), b),
                        train=Dataset(x, y), batch_size=8, apply=apply, output_loss=squared)
    with jax.enable_x64(True):
        params = {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}
        v = rng.normal(size=(3, 8))
        products = {op: np.asarray(hs.hessian_problem(workload, params, {}, operator=op).hvps(
            jnp.asarray(v))) for op in ("hessian", "ggn")}
        flat, unravel = ravel_pytree(params)
        dense = jax.hessian(lambda w: squared(apply(unravel(w), {}, x), Batch(x, y)))(flat)
    np.testing.assert_allclose(products["ggn"], products["hessian"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(products["ggn"], v @ np.asarray(dense), rtol=1e-10, atol=1e-12)



def test_block_operators_are_the_dense_diagonal_blocks(models):
    """Each layer's operator is H[B, B]: its products (whole-size, scattered and gathered; and
    compiled with the block inside) and its eigenvalues (Lanczos run to the block's size:
    exact) are the dense Hessian's diagonal block's."""
    case = models["mlp"]
    blocks = hs.parameter_blocks(case.params, "layer")
    assert [(b.name, b.leaves) for b in blocks] == [
        ("dense0", ("dense0/bias", "dense0/kernel")), ("dense1", ("dense1/bias", "dense1/kernel"))]
    rng = np.random.default_rng(5)
    with jax.enable_x64(True):
        problem = hs.hessian_problem(case.workload, case.params, {})
        for block in blocks:
            expected = case.matrices["hessian"][np.ix_(block.indices, block.indices)]
            restricted = problem.restricted(block.indices)
            m = restricted.num_params
            assert m == block.indices.size and restricted.operator.on_host
            v = rng.normal(size=(2, m))
            compiled = (jax.jit(restricted.matvec)(jnp.asarray(v[1]), restricted.operands)
                        if block is blocks[0] else expected @ v[1])  # one compilation is enough
            products = (restricted.hvp(jnp.asarray(v[0])), compiled,
                        restricted.quadratic_forms(jnp.asarray(v)))
            lam = np.linalg.eigvalsh(expected)
            pairs = hs.hessian_eigenpairs(restricted, top_k=1, bottom_k=1, tol=1e-9,
                                          atol=1e-9 * abs(lam).max(), max_iter=m)
            np.testing.assert_allclose(products[0], expected @ v[0], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(products[1], expected @ v[1], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(products[2], np.einsum("kn,nm,km->k", v, expected, v),
                                       rtol=1e-9)
            np.testing.assert_allclose(pairs.top.values, lam[-1:], rtol=1e-7)
            assert abs(pairs.bottom.values[0] - lam[0]) <= 1e-7 * abs(lam).max()


def test_block_summaries_and_the_api(models):
    """``landscape.hessian(..., operator=, outputs=, output_loss=, blocks=)``: the whole
    matrix's eigenvalues, a block's, and the table's λmax, λmin and trace against the dense
    block (the trace within 4 standard errors)."""
    case = models["mlp"]
    x, y = case.workload.train.inputs, case.workload.train.targets

    def loss_fn(params, batch):
        return case.workload.loss(params, {}, Batch(*batch))[0]

    def outputs(params, batch):
        return case.workload.apply(params, {}, batch[0])

    with jax.enable_x64(True):
        h = landscape.hessian(loss_fn, case.params, (x, y), batch_size=BATCH, operator="ggn",
                              outputs=outputs, output_loss=lambda o, b: cross_entropy(o, Batch(*b)),
                              blocks=["*/kernel"])
        assert h.block_names == ("*/kernel",)
        lam = np.linalg.eigvalsh(case.matrices["ggn"])
        np.testing.assert_allclose(h.eigenvalues(tol=1e-8), lam[-1:], rtol=1e-6)
        kernels = h.blocks[0].indices
        block = case.matrices["ggn"][np.ix_(kernels, kernels)]
        assert h.block("*/kernel").num_params == kernels.size == 30
        (row,) = h.block_table(samples=60, tol=1e-8)  # densities: tests/test_cli_hessian.py
    block_lam = np.linalg.eigvalsh(block)
    assert row.name == "*/kernel" and row.size == 30 and row.density is None
    np.testing.assert_allclose(row.lambda_max, block_lam[-1], rtol=1e-6)
    assert abs(row.lambda_min - block_lam[0]) <= 1e-8 * block_lam[-1]  # within tol·λmax
    assert abs(row.trace - np.trace(block)) <= 4 * row.trace_stderr and row.trace_stderr > 0
    with pytest.raises(InputError, match="not a block of this Hessian"):
        h.block("dense0/*")


def test_parameter_blocks_follow_the_flat_layout_and_refuse_what_matches_nothing(models):
    params = models["cnn"].params
    flat, unravel = ravel_pytree(params)
    marked = unravel(jnp.arange(flat.size, dtype=jnp.float32))  # each entry: its flat index
    conv, dense = hs.parameter_blocks(params, "layer")
    assert conv.name == "conv" and dense.leaves == ("dense/bias", "dense/kernel")
    np.testing.assert_array_equal(conv.indices, np.concatenate(
        [np.ravel(marked["conv"]["bias"]), np.ravel(marked["conv"]["kernel"])]))
    (kernels,) = hs.parameter_blocks(params, "*kernel")
    assert kernels.leaves == ("conv/kernel", "dense/kernel") and kernels.indices.size == 24
    with pytest.raises(InputError, match="pattern 'attn/\\*' matches no parameter"):
        hs.parameter_blocks(params, ["attn/*"])
    with pytest.raises(InputError, match="`layer` stands alone"):
        hs.parameter_blocks(params, ["layer", "*"])


def test_an_operator_that_cannot_be_built_says_why_in_one_line(models):
    workload = dataclasses.replace(models["mlp"].workload, output_loss=None)
    with pytest.raises(InputError) as error:
        hs.hessian_problem(workload, models["mlp"].params, {}, operator="ggn")
    assert str(error.value) == ("`operator` (='ggn') needs the model split into outputs and a "
                                "loss of them: workload `mlp` has no `output_loss` (Workload "
                                "fields)") and error.value.param == "operator"
    with pytest.raises(InputError, match="`operator` \\(='newton'\\) must be one of hessian, "
                                         "ggn, fisher"):
        hs.curvature_spec("newton")
    with pytest.raises(InputError, match="give `outputs`"):
        landscape.hessian(lambda p, b: jnp.sum(p["w"]), {"w": jnp.ones(2)},
                          (np.ones((4, 1)), np.ones(4)), operator="ggn",
                          output_loss=lambda o, b: o)


def test_along_training_and_during_training_take_any_operator(models):
    """:func:`curvature_along` and the training-time tracker measure the Fisher's and the
    GGN's λmax (the dense ones)."""
    from landscape.geometry.curvature import curvature_along
    from landscape.geometry.loss import workload_loss
    from landscape.geometry.tracking import SharpnessTracker

    case = models["mlp"]
    with jax.enable_x64(True):
        along = curvature_along(workload_loss(case.workload, {}), [case.params], tol=1e-8,
                                max_iter=39, operator="fisher")
        tracker = SharpnessTracker(case.workload, num_steps=39, operator="ggn")
        tracker(0, case.params, {})
        tracked = tracker.fetch()[0][1]
    np.testing.assert_allclose(along.lambda_max, np.linalg.eigvalsh(case.matrices["fisher"])[-1:],
                               rtol=1e-6)
    np.testing.assert_allclose(tracked, np.linalg.eigvalsh(case.matrices["ggn"])[-1], rtol=1e-6)


def test_a_host_summed_product_and_lanczos_compile_each_program_once(models, caplog):
    """Summed from the host, a product compiles once per batch shape (the running sum starts
    from zeros, not from a program of its own around the first batch's product); a vector
    made on the host is placed as the parameters first (else every product compiled again for
    it); and the host-stepped Lanczos update compiles once (its starting buffers placed as its
    outputs are: made eagerly, the first step compiled a second program)."""
    from landscape.curvature import host_loop, sums

    case = models["cnn"]
    for program in (sums._add, host_loop.dispatched_update):  # other tests compiled them
        program.clear_cache()
    with jax.enable_x64(True):
        problem = hs.hessian_problem(case.workload, case.params, {}, operator="fisher")
        assert problem.on_host  # a convnet on the CPU
        n = problem.num_params
        with jax.log_compiles(True), caplog.at_level(logging.WARNING):
            for v in (np.ones(n), np.arange(n) / n):  # made on the host, as a caller would
                problem.hvp(jnp.asarray(v))
            hs.hessian_eigenpairs(problem, top_k=1, tol=1e-6, max_iter=7)
    compiled = Counter(record.getMessage().split("(", 2)[1].split(")")[0]
                       for record in caplog.records
                       if record.getMessage().startswith("Compiling jit("))
    assert compiled["_add"] == 2, compiled  # whole batches, and the short last one
    assert compiled["dispatched_update"] == 1, compiled
