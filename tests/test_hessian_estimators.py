"""Hutch++ beside Hutchinson, the diagonal and mini-batch spectra against dense float64
references: ``jax.hessian`` and ``eigvalsh`` on small models, or a dense symmetric matrix as the
Hessian of a quadratic loss. x64 only inside each test; every seed fixed (no test can fail by a
draw)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from test_hessian import classifier_workload, dense_hessian

import landscape
from landscape import curvature as hs
from landscape.batches import Batch, Batches
from landscape.errors import InputError
from landscape.curvature.minibatch import minibatches
from landscape.io import diagonal_h5


def quadratic_problem(matrix: np.ndarray) -> hs.HessianProblem:
    """The Hessian of ½ wᵀAw: A itself, through the same operator path as a model's."""
    n = matrix.shape[0]
    return hs.loss_problem(lambda w, a: 0.5 * w @ a @ w, jnp.zeros(n), jnp.asarray(matrix))


def symmetric(eigenvalues: np.ndarray, seed: int = 0) -> np.ndarray:
    n = eigenvalues.size
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return (q * eigenvalues) @ q.T


def test_hutchpp_variance_is_far_below_hutchinsons_at_equal_matvecs():
    """λ_i = 1/i² (a decaying spectrum), 30 products each, 50 seeds: Hutch++'s sketch takes the
    top 10 eigenvalues out exactly, and its variance falls far below Hutchinson's (whose
    exact variance is 2 Σ_{i≠j} A_ij² / 30). Both are unbiased, and Hutch++'s stderr² is
    unbiased for its variance (E[estimate | sketch] = tr A)."""
    a = symmetric(1.0 / np.arange(1, 61) ** 2)
    exact = np.trace(a)
    with jax.enable_x64(True):
        problem = quadratic_problem(a)
        plain = [hs.estimate_trace(problem, method="hutchinson", num_matvecs=30, batch=30,
                                   seed=s) for s in range(50)]
        plus = [hs.estimate_trace(problem, method="hutch++", num_matvecs=30, batch=30, seed=s)
                for s in range(50)]
    assert {t.matvecs for t in plain} == {t.matvecs for t in plus} == {30}
    assert {(t.sketch, len(t.samples)) for t in plus} == {(10, 10)}
    var_plain = np.var([t.estimate for t in plain], ddof=1)
    var_plus = np.var([t.estimate for t in plus], ddof=1)
    true_plain = 2 * (np.sum(a**2) - np.sum(np.diag(a) ** 2)) / 30
    assert 0.5 * true_plain < var_plain < 2 * true_plain
    assert var_plus < var_plain / 100, (var_plus, var_plain)
    # unbiased: the means over 50 seeds within 4 standard errors of the mean
    for runs, var in ((plain, var_plain), (plus, var_plus)):
        assert abs(np.mean([t.estimate for t in runs]) - exact) < 4 * np.sqrt(var / 50)
    mean_se2 = np.mean([t.stderr**2 for t in plus])
    assert 0.5 * var_plus < mean_se2 < 2 * var_plus
    assert all(abs(t.estimate - (t.low_rank + t.samples.mean())) < 1e-12 for t in plus)


def test_hutchpp_is_exact_for_a_matrix_of_rank_at_most_a_third_of_the_matvecs():
    lam = np.zeros(40)
    lam[:5] = [5.0, 3.0, 2.0, 1.0, -1.5]  # rank 5, indefinite
    a = symmetric(lam, seed=1)
    with jax.enable_x64(True):
        trace = hs.hutchpp_trace(quadratic_problem(a), num_matvecs=15, seed=2)
    assert trace.sketch == 5 and trace.matvecs == 15
    assert abs(trace.estimate - lam.sum()) < 1e-10 and trace.stderr < 1e-10
    assert abs(trace.low_rank - lam.sum()) < 1e-10


def test_trace_arguments_are_checked():
    problem = quadratic_problem(np.eye(4))
    with pytest.raises(InputError, match=r"`num_matvecs` \(=3\) must be >= 4"):
        hs.hutchpp_trace(problem, num_matvecs=3)
    with pytest.raises(InputError, match="`method` \\(='hutch'\\) must be one of hutchinson, "
                                         "hutch\\+\\+"):
        hs.estimate_trace(problem, method="hutch")


@pytest.fixture(scope="module")
def classifier():
    """The 2-8-3 tanh classifier of test_hessian (51 parameters, 150 samples, batches of 64),
    its float64 params and dense Hessian."""
    workload = classifier_workload()
    with jax.enable_x64(True):
        params, state = workload.init(jax.random.key(1))
        params = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
        return workload, params, state, dense_hessian(workload, params, state)


def test_the_diagonal_converges_to_the_dense_diagonal(classifier):
    """Within a few (true) standard errors at S = 100 and 1600 probes, the error shrinking as
    1/√S; the reported standard errors near the true ones √(Σ_{j≠i} H_ij² / S); the layer
    summary equal to the dense diagonal's within its own standard error."""
    workload, params, state, hessian = classifier
    exact = np.diag(hessian)
    noise = np.sqrt(np.sum(hessian**2, axis=1) - exact**2)  # std of one probe's entry
    errors = {}
    with jax.enable_x64(True):
        problem = hs.hessian_problem(workload, params, state)
        for samples in (100, 1600):
            estimate = hs.hutchinson_diagonal(problem, num_samples=samples, batch=100, seed=7)
            assert jax.tree.structure(estimate.diagonal) == jax.tree.structure(params)
            diagonal = np.asarray(ravel_pytree(estimate.diagonal)[0])
            stderr = np.asarray(ravel_pytree(estimate.stderr)[0])
            true_se = noise / np.sqrt(samples)
            z = (diagonal - exact) / true_se
            assert np.sqrt(np.mean(z**2)) < 1.6 and np.abs(z).max() < 4, z
            ratio = stderr / true_se
            assert 0.6 < np.median(ratio) < 1.4 and ratio.min() > 0.3, ratio
            errors[samples] = np.linalg.norm(diagonal - exact)
    assert 2 < errors[100] / errors[1600] < 8  # √16 = 4
    names = {name: i for i, name in enumerate(("b1", "b2", "w1", "w2"))}  # flattening order
    assert [b.name for b in estimate.blocks] == list(names)
    offsets = np.cumsum([0, 8, 3, 16, 24])
    for block in estimate.blocks:
        i = names[block.name]
        inside = slice(offsets[i], offsets[i + 1])
        assert block.count == offsets[i + 1] - offsets[i] and block.leaves == (block.name,)
        assert abs(block.mean - exact[inside].mean()) < 4 * block.mean_stderr
        np.testing.assert_allclose(block.sum_squares, np.sum(diagonal[inside] ** 2), rtol=1e-12)
        np.testing.assert_allclose(block.sum_variance, np.sum(stderr[inside] ** 2), rtol=1e-12)


def test_layers_group_leaves_by_their_parent_path():
    params = {"dense0": {"kernel": np.ones((2, 3)), "bias": np.ones(3)}, "scale": np.ones(1)}
    assert hs.diagonal.layer_names(params) == [("dense0/bias", "dense0"),
                                               ("dense0/kernel", "dense0"), ("scale", "scale")]


def test_a_stream_gives_its_own_first_batches_as_they_come(classifier):
    """A re-iterable's batches are taken as they come (sizes 30 and 20 here), each batch's
    Hessian its own: the second one's HVP equals its dense Hessian's product."""
    workload, params, state, _ = classifier
    x, y = workload.train.inputs, workload.train.targets
    stream = Batches([(x[:30], y[:30]), (x[30:50], y[30:50]), (x[50:], y[50:])])
    batches = list(minibatches(stream, num_batches=2))
    assert [len(b[0]) for b in batches] == [30, 20]
    loss = lambda p, s, b: workload.loss(p, s, Batch(*b))  # noqa: E731  (tuples come)
    with jax.enable_x64(True):
        problem = hs.minibatch.minibatch_problem(loss, params, state, batches[1])
        flat, unravel = ravel_pytree(params)
        dense = np.asarray(jax.jit(jax.hessian(lambda w: loss(unravel(w), state,
                                                               batches[1])[0]))(flat))
        v = np.random.default_rng(3).normal(size=flat.size)
        np.testing.assert_allclose(np.asarray(problem.hvp(jnp.asarray(v))), dense @ v,
                                   rtol=1e-9, atol=1e-12)
    with pytest.raises(InputError, match=r"`num_batches` \(=4\) is more than the 3 batches"):
        list(minibatches(stream, num_batches=4))
    with pytest.raises(InputError, match="gives its own mini-batches: leave `batch_size`"):
        list(minibatches(stream, num_batches=1, batch_size=8))
    with pytest.raises(InputError, match=r"`num_batches` \(=4\) whole batches of `batch_size` "
                                         r"\(=40\) need 160 samples; the data hold 150"):
        list(minibatches(workload.train, num_batches=4, batch_size=40))


def tiny_regression():
    """A 2-3-1 tanh network (13 parameters) on 60 points, its loss as the API takes it."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=60)
    params = {"hidden": {"b": np.full(3, 0.1), "w": rng.normal(size=(2, 3))},
              "out": {"b": np.zeros(()), "w": rng.normal(size=3)}}

    def loss_fn(p, batch):
        inputs, targets = batch
        h = jnp.tanh(inputs @ p["hidden"]["w"] + p["hidden"]["b"])
        return 0.5 * jnp.mean((h @ p["out"]["w"] + p["out"]["b"] - targets) ** 2)

    return x, y, params, loss_fn


def test_the_api_against_dense_hessians(tmp_path):
    """``landscape.hessian(...)`` on a small tanh network against jax.hessian: Hutch++ with
    m/3 = n products is exact; the diagonal within a few standard errors; each of two disjoint
    mini-batches (one shuffled epoch) has the top-2 eigenvalues of its own dense Hessian; the
    diagonal file reads back leaf by leaf."""
    x, y, params, loss_fn = tiny_regression()
    with jax.enable_x64(True):
        flat, unravel = ravel_pytree(params)
        dense = jax.jit(jax.hessian(lambda w, inputs, targets: loss_fn(unravel(w),
                                                                       (inputs, targets))))
        hessian = np.asarray(dense(flat, x, y))
        h = landscape.hessian(loss_fn, params, (x, y), batch_size=16)
        exact = h.trace(39, method="hutch++", seed=1)
        diagonal = h.diagonal(14, seed=1)  # blocks of 7 rows, as Hutch++'s: one compilation
        spectra = h.minibatch_eigenvalues(2, 2, batch_size=30, tol=1e-10, seed=4)
        order = np.asarray(jax.random.permutation(jax.random.key(4), 60))  # the epoch's order
        batches = [np.asarray(dense(flat, x[i], y[i])) for i in (order[:30], order[30:])]
    assert exact.method == "hutch++" and exact.sketch == 13
    assert abs(exact.estimate - np.trace(hessian)) < 1e-10 * np.abs(hessian).sum()
    d, se = (np.asarray(ravel_pytree(t)[0]) for t in (diagonal.diagonal, diagonal.stderr))
    true_se = np.sqrt((np.sum(hessian**2, axis=1) - np.diag(hessian) ** 2) / 14)
    assert np.all(np.abs(d - np.diag(hessian)) < 4 * true_se) and np.all(se < 2 * true_se)
    assert [(b.name, b.count) for b in diagonal.blocks] == [("hidden", 9), ("out", 4)]
    assert spectra.sizes.tolist() == [30, 30] and spectra.converged.all()
    np.testing.assert_allclose(spectra.values, [np.linalg.eigvalsh(b)[::-1][:2] for b in batches],
                               rtol=1e-8)
    path = tmp_path / "diagonal.h5"
    diagonal_h5.write(path, diagonal_h5.DiagonalFile(diagonal.diagonal, diagonal.stderr, 14,
                                                     {"note": "test"}))
    back = diagonal_h5.read(path, like=params)
    for got, want in ((back.diagonal, diagonal.diagonal), (back.stderr, diagonal.stderr)):
        jax.tree.map(np.testing.assert_array_equal, got, want)
    assert back.num_samples == 14 and back.provenance == {"note": "test"}
