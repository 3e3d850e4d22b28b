"""Hessian probes against a dense reference: ``jax.hessian`` of the loss over the whole dataset as
one batch, then ``eigvalsh``, in float64, on models with a few hundred parameters.

x64 is switched on only inside each test (``with jax.enable_x64(True)``): other test files share
this process. Our side always uses small batches (a scan plus a short last batch), so agreement
also checks the exact full-dataset weighting.
"""

import dataclasses
from typing import NamedTuple

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import landscape
from landscape import curvature as hs
from landscape.errors import InputError
from landscape.engine import point_params
from landscape.grid import Grid
from landscape.io import surface_h5
from landscape.workload import Batch, Dataset, Workload

BATCH = 64  # 200 and 150 samples: whole batches scanned plus a short last one


def classifier_workload() -> Workload:
    """A 2-8-3 tanh MLP with softmax cross-entropy on 150 points in three classes (51 params)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    y = (np.arctan2(x[:, 1], x[:, 0]) // (2 * np.pi / 3) % 3).astype(np.int32)

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"w1": jax.random.normal(k1, (2, 8)), "b1": jnp.zeros(8) + 0.1,
                "w2": jax.random.normal(k2, (8, 3)) / 2, "b2": jnp.zeros(3)}, {}

    def loss(params, state, batch):
        h = jnp.tanh(batch.inputs @ params["w1"] + params["b1"])
        logp = jax.nn.log_softmax(h @ params["w2"] + params["b2"])
        nll = -jnp.mean(jnp.take_along_axis(logp, batch.targets[:, None], axis=1))
        return nll, {"acc": jnp.mean(jnp.argmax(logp, -1) == batch.targets)}

    return Workload(name="classifier", init=init, loss=loss, train=Dataset(x, y),
                    metrics=("acc",), task="classification", input_shape=(2,), batch_size=BATCH)


class Case(NamedTuple):
    workload: Workload  # float64 data, batches of BATCH
    params: dict  # float64 numpy
    state: dict
    hessian: np.ndarray  # dense reference (n, n)
    lam: np.ndarray  # its eigenvalues, ascending
    vectors: np.ndarray  # its eigenvectors (columns)
    problem: hs.HessianProblem  # ours, shared so that compiled loops are reused across tests


@pytest.fixture(scope="module")
def cases(trained_small_sine, small_sine):
    sine = dataclasses.replace(
        small_sine, batch_size=BATCH,
        train=Dataset(small_sine.train.inputs.astype(np.float64),
                      small_sine.train.targets.astype(np.float64)))
    classifier = classifier_workload()
    out = {}
    with jax.enable_x64(True):
        for name, workload, params, state in (
            ("sine", sine, trained_small_sine.params, trained_small_sine.state),
            ("classifier", classifier, *classifier.init(jax.random.key(1))),
        ):
            params = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
            hessian = dense_hessian(workload, params, state)
            lam, vectors = np.linalg.eigh(hessian)
            problem = hs.hessian_problem(workload, params, state)
            out[name] = Case(workload, params, state, hessian, lam, vectors, problem)
    return out


def dense_hessian(workload, params, state) -> np.ndarray:
    """The reference: jax.hessian of the loss on the whole dataset as one batch (call under x64)."""
    flat, unravel = ravel_pytree(params)
    everything = Batch(jnp.asarray(workload.train.inputs), jnp.asarray(workload.train.targets))
    hessian = jax.jit(jax.hessian(lambda w, batch: workload.loss(unravel(w), state, batch)[0]))
    return np.asarray(hessian(flat, everything))


CASES = ["sine", "classifier"]


@pytest.mark.parametrize("name", CASES)
def test_hvp_and_quadratic_form_match_dense(cases, name):
    """The batches' products summed on the device (a loop: 2 whole batches, then the short
    one) and from the host (one call per batch) both equal the dense Hessian's."""
    case = cases[name]
    hessian = case.hessian
    with jax.enable_x64(True):
        host = hs.hessian_problem(case.workload, case.params, case.state, loop="host")
        assert not case.problem.on_host and host.on_host
        v = jnp.asarray(np.random.default_rng(0).normal(size=hessian.shape[0]))
        products = {}
        for name_, problem in (("device", case.problem), ("host", host)):
            assert problem.params.dtype == jnp.float64 and problem.num_params == hessian.shape[0]
            products[name_] = (np.asarray(problem.hvp(v)),
                               float(problem.quadratic_forms(v[None])[0]))
        compiled = np.asarray(jax.jit(case.problem.matvec)(v, case.problem.operands))
    v = np.asarray(v)
    for hv, vhv in (*products.values(), (compiled, products["device"][1])):
        np.testing.assert_allclose(hv, hessian @ v, rtol=1e-6,
                                   atol=1e-6 * np.abs(hessian @ v).max())
        np.testing.assert_allclose(vhv, v @ hessian @ v, rtol=1e-6)


def test_batch_size_does_not_scale_the_hessian(cases):
    """Li et al. sum per-batch HVPs (eigenvalues × number of batches); the mean must not care."""
    case = cases["sine"]
    with jax.enable_x64(True):
        v = jnp.asarray(np.random.default_rng(1).normal(size=case.problem.num_params))
        hvps = []
        for batch_size in (32, 200):  # 6 whole batches + 8 samples; one batch
            problem = hs.hessian_problem(case.workload, case.params, case.state,
                                         batch_size=batch_size)
            hvps.append(np.asarray(jax.jit(problem.matvec)(v, problem.operands)))
    np.testing.assert_allclose(hvps[0], hvps[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(hvps[0], case.hessian @ np.asarray(v), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", CASES)
def test_extreme_eigenpairs_match_eigvalsh(cases, name):
    case = cases[name]
    lam, n = case.lam, case.lam.size
    with jax.enable_x64(True):
        pairs = hs.hessian_eigenpairs(case.problem, top_k=3, bottom_k=2, tol=1e-8, max_iter=n,
                                      return_vectors=True)
        top_vectors = np.asarray(pairs.top.vectors)
    np.testing.assert_allclose(pairs.top.values, lam[::-1][:3], rtol=1e-4)
    np.testing.assert_allclose(pairs.bottom.values, lam[:2], rtol=1e-4)
    assert pairs.top.converged.all() and pairs.bottom.converged.all()
    assert 5 <= pairs.iterations <= n
    # Ritz vectors are unit eigenvectors: small true residuals, and the top one matches eigh's.
    residuals = np.linalg.norm(top_vectors @ case.hessian - pairs.top.values[:, None] * top_vectors,
                               axis=1)
    assert np.all(residuals <= 1e-5 * abs(lam).max())
    assert abs(abs(top_vectors[0] @ case.vectors[:, -1]) - 1) < 1e-6


def test_top_eigenvalue_stops_early_and_does_not_recompile(cases):
    case = cases["sine"]
    lam = case.lam
    with jax.enable_x64(True):
        # max_iter as in the test above: the same compiled loop serves both.
        first = hs.hessian_eigenpairs(case.problem, top_k=1, tol=1e-3, max_iter=lam.size)
        compiled = hs.lanczos.extremes_on_device._cache_size()
        second = hs.hessian_eigenpairs(case.problem, top_k=1, tol=1e-3, max_iter=lam.size)
        assert hs.lanczos.extremes_on_device._cache_size() == compiled
    assert first.iterations < 40 and first.iterations == second.iterations
    # The residual test bounds the error: |θ − λ| ≤ residual ≤ tol·|θ|.
    assert abs(first.top.values[0] - lam[-1]) <= first.top.residuals[0] <= 1e-3 * lam[-1]


@pytest.mark.parametrize("name", CASES)
def test_relative_change_rule_stops_within_its_tolerance(cases, name):
    """PyHessian's rule: no more HVPs than the residual test, and λmax still within tol of the
    dense one (a Lanczos Ritz value converges faster than its last change suggests)."""
    case = cases[name]
    lam, n = case.lam, case.lam.size
    with jax.enable_x64(True):
        # The static arguments of test_extreme_eigenpairs_match_eigvalsh: its compiled loop serves.
        runs = {stop: hs.hessian_eigenpairs(case.problem, top_k=3, bottom_k=2, tol=1e-3,
                                            stop=stop, max_iter=n, return_vectors=True)
                for stop in hs.lanczos.STOP_RULES}
    fast = runs["relative-change"]
    assert fast.iterations <= runs["residual"].iterations
    assert fast.top.converged.all() and fast.bottom.converged.all()
    # λmax within tol; the rule is a heuristic (no bound), so inner ones get 10 × tol.
    assert abs(fast.top.values[0] - lam[-1]) <= 1e-3 * lam[-1]
    np.testing.assert_allclose(fast.top.values, lam[::-1][:3], rtol=1e-2)
    np.testing.assert_allclose(fast.bottom.values, lam[:2], rtol=1e-2)
    # The residuals are still reported: a bound on each error, whatever rule stopped the run.
    assert np.all(np.abs(fast.top.values - lam[::-1][:3]) <= fast.top.residuals + 1e-12)


def test_samples_split_across_devices_give_the_same_hvp(cases):
    """Default: each batch's samples shared by the local devices (4 here); one device agrees."""
    if jax.device_count() != 4:
        pytest.skip("needs the 4 virtual devices of conftest.py")
    case = cases["sine"]
    with jax.enable_x64(True):
        one = hs.hessian_problem(case.workload, case.params, case.state,
                                 devices=jax.devices()[:1])
        v = jnp.asarray(np.random.default_rng(4).normal(size=one.num_params))
        hvps = [np.asarray(jax.jit(p.matvec)(v, p.operands)) for p in (case.problem, one)]
    full, rest = case.problem.data
    assert full.inputs.sharding.spec[1] == "samples"  # batches of 64 split 4 ways
    assert rest.inputs.sharding.spec[0] == "samples" and len(full.inputs.devices()) == 4  # 8 too
    np.testing.assert_allclose(hvps[0], hvps[1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", CASES)
def test_trace_within_three_standard_errors(cases, name):
    case = cases[name]
    with jax.enable_x64(True):
        trace = hs.hutchinson_trace(case.problem, num_samples=100, batch=30, seed=3)
    hessian = case.hessian
    exact = np.trace(hessian)
    assert trace.samples.shape == (100,) and trace.stderr > 0
    assert abs(trace.estimate - exact) <= 3 * trace.stderr, (trace, exact)
    # The standard error estimates the true one: sqrt(2 Σ_{i≠j} H_ij² / S) for Rademacher probes.
    true_stderr = np.sqrt(2 * (np.sum(hessian**2) - np.sum(np.diag(hessian) ** 2)) / 100)
    assert 0.5 * true_stderr < trace.stderr < 2 * true_stderr


def test_slq_density_integrates_to_one_and_matches_moments(cases):
    case = cases["sine"]
    lam = case.lam
    with jax.enable_x64(True):
        top = hs.hessian_eigenpairs(case.problem, top_k=4, tol=1e-8, max_iter=lam.size,
                                    return_vectors=True).top
        density = hs.slq_density(case.problem, num_probes=8, num_steps=40, deflate=top)
    integral = np.sum((density.density[1:] + density.density[:-1]) * np.diff(density.grid)) / 2
    assert abs(integral - 1) < 1e-9 and np.all(density.density >= 0)
    assert abs(density.weights.sum() - 1) < 1e-12
    assert density.grid[0] < lam[0] and density.grid[-1] > lam[-1]
    # Smoothing by g_σ keeps the mean and adds σ² to the second moment.
    np.testing.assert_allclose(density.moment(1), lam.mean(), rtol=0.05)
    np.testing.assert_allclose(density.moment(2), np.mean(lam**2) + density.sigma**2, rtol=0.05)
    # The deflated eigenvalues are nodes with weight exactly 1/n.
    np.testing.assert_allclose(density.nodes[:4], lam[::-1][:4], rtol=1e-8)
    np.testing.assert_allclose(density.weights[:4], 1 / lam.size)


def test_gaussian_density_of_the_exact_spectrum(cases):
    """Nodes = the exact eigenvalues, weights 1/n: the density is the smoothed exact spectrum."""
    lam = cases["classifier"].lam
    density = hs.gaussian_density(lam, np.full(lam.size, 1 / lam.size), num_bins=4000)
    assert abs(density.moment(0) - 1) < 1e-12
    np.testing.assert_allclose(density.moment(1), lam.mean(), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(density.moment(2), np.mean(lam**2) + density.sigma**2, rtol=1e-6)
    with pytest.raises(InputError, match="`sigma`"):
        hs.gaussian_density(lam, np.ones_like(lam), sigma=-1.0)


def test_slq_moments_are_exact_with_a_full_orthonormal_set_of_probes():
    """Gauss quadrature is exact for polynomials of degree < 2m: with n orthonormal probes the
    estimate of tr(A^p)/n is exact, which pins down nodes, weights and their scaling."""
    rng = np.random.default_rng(1)
    n = 12
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    lam = np.linspace(-1, 3, n)
    a = jnp.asarray((q * lam) @ q.T, jnp.float32)
    lanczos = jax.jit(jax.vmap(lambda v0: hs.lanczos_tridiagonal(
        lambda v, a: a @ v, a, v0, 3, jax.random.key(0))))
    states = lanczos(jnp.eye(n, dtype=jnp.float32))
    moments = np.zeros(3)
    for alphas, betas in zip(np.asarray(states.alphas), np.asarray(states.betas)):
        theta, y = np.linalg.eigh(np.diag(alphas) + np.diag(betas[:-1], 1) + np.diag(betas[:-1], -1))
        moments += [np.sum(y[0] ** 2 * theta**p) / n for p in range(3)]
    np.testing.assert_allclose(moments, [1, lam.mean(), np.mean(lam**2)], rtol=1e-5, atol=1e-5)


def test_lanczos_restarts_on_repeated_eigenvalues():
    """A matrix with 3 distinct eigenvalues: the Krylov space of any start vector is 3-dimensional,
    so Lanczos breaks down and must restart to find every extreme eigenvalue."""
    lam = np.repeat([-2.0, 1.0, 5.0], [3, 4, 3])
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(10, 10)))
    a = jnp.asarray((q * lam) @ q.T, jnp.float32)
    pairs = hs.lanczos_extremes(lambda v, a: a @ v, a, jnp.ones(10), top_k=4, bottom_k=4, tol=1e-5,
                                max_iter=10)
    np.testing.assert_allclose(pairs.top.values, [5, 5, 5, 1], rtol=1e-5)
    np.testing.assert_allclose(pairs.bottom.values, [-2, -2, -2, 1], rtol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(top_k=0), "at least one eigenvalue"),
        (dict(top_k=60), "must be <= the operator size (50)"),
        (dict(top_k=30, bottom_k=30), "must be <= the operator size (50)"),
        (dict(bottom_k=-1), "`bottom_k` (=-1) must be >= 0"),
        (dict(top_k=3, max_iter=2), "`max_iter` (=2) must be >="),
        (dict(tol=0.0), "not both 0"),
        (dict(stop="change"), "`stop` (='change') must be one of residual, relative-change"),
    ],
)
def test_bad_arguments_raise_input_errors(kwargs, message):
    with pytest.raises(InputError) as error:
        hs.lanczos_extremes(lambda v, a: a * v, jnp.ones(50), jnp.ones(50), **kwargs)
    assert message in str(error.value)


def test_hessian_plane_spans_top_eigenvectors(cases):
    case = cases["classifier"]
    with jax.enable_x64(True):
        plane = hs.hessian_plane(case.workload, case.params, case.state, tol=1e-8,
                                 max_iter=case.lam.size)
    assert plane.kind == "hessian" and plane.ndim == 2 and plane.normalization == "none"
    assert jax.tree.structure(plane.d1) == jax.tree.structure(case.params)
    d1, d2 = (ravel_pytree(d)[0] for d in (plane.d1, plane.d2))
    assert abs(abs(float(d1 @ case.vectors[:, -1])) - 1) < 1e-6
    assert abs(abs(float(d2 @ case.vectors[:, -2])) - 1) < 1e-6
    assert abs(float(d1 @ d2)) < 1e-8
    assert np.argmax(np.abs(d1)) == np.argmax(d1)  # signed: largest entry positive


def test_hessian_plane_refuses_unconverged_eigenvectors(cases, monkeypatch):
    case = cases["classifier"]
    real = hs.eigen.hessian_eigenpairs

    def unconverged(*args, **kwargs):
        pairs = real(*args, **kwargs)
        return pairs._replace(top=pairs.top._replace(converged=np.array([True, False])))

    monkeypatch.setattr(hs.eigen, "hessian_eigenpairs", unconverged)
    with jax.enable_x64(True), pytest.raises(InputError, match="did not converge to `tol`"):
        hs.hessian_plane(case.workload, case.params, case.state, tol=1e-8,
                         max_iter=case.lam.size, problem=case.problem)


@pytest.fixture(scope="module")
def eigen_map(cases):
    """A 3x2 eigen map of the classifier with m = n Lanczos steps (exact Ritz extremes)."""
    workload, params, state, hessian = cases["classifier"][:4]
    with jax.enable_x64(True):
        plane = landscape.random_plane(params, seed=0)
        plane = dataclasses.replace(plane, d1=jax.tree.map(lambda a: np.asarray(a, np.float64), plane.d1),
                                    d2=jax.tree.map(lambda a: np.asarray(a, np.float64), plane.d2))
        grid = Grid.from_specs("-0.5:0.5:3", "0:0.5:2")
        calls = []
        values = hs.evaluate_eigen_map(workload, state, plane, grid, num_steps=len(hessian), chunk=4,
                                       on_chunk=lambda index, values: calls.append(index))
    return workload, state, plane, grid, values, calls


def test_eigen_map_points_equal_dense_eigvalsh(eigen_map):
    workload, state, plane, grid, values, calls = eigen_map
    assert set(values) == {"max_eig", "min_eig"} and values["max_eig"].shape == (2, 3)
    assert sorted(np.concatenate(calls)) == list(range(6))
    coords = grid.coordinates()
    with jax.enable_x64(True):
        for index in (0, 4):
            theta = point_params(plane, coords[index, 0], coords[index, 1])
            lam = np.linalg.eigvalsh(dense_hessian(workload, theta, state))
            iy, ix = np.unravel_index(index, grid.shape)
            np.testing.assert_allclose(values["max_eig"][iy, ix], lam[-1], rtol=1e-6)
            np.testing.assert_allclose(values["min_eig"][iy, ix], lam[0], rtol=1e-6)


def test_eigen_map_surface_file_round_trips(eigen_map, tmp_path):
    _, _, plane, grid, values, _ = eigen_map
    path = tmp_path / "eigen_map.h5"
    attrs = {"workload": "classifier", "direction_kind": plane.kind, "spec_hash": "abc"}
    _, done = surface_h5.create(path, grid, list(hs.EIGEN_MAP_NAMES), plane, attrs)
    assert not done.any()
    flat = {name: values[name].ravel() for name in hs.EIGEN_MAP_NAMES}
    surface_h5.write_points(path, np.array([0, 1, 2]), {k: v[:3] for k, v in flat.items()})
    half = surface_h5.read(path)
    assert half.done.tolist() == [[True] * 3, [False] * 3]
    assert np.isnan(half.values["max_eig"][1]).all()
    surface_h5.write_points(path, np.array([3, 4, 5]), {k: v[3:] for k, v in flat.items()})
    surface = surface_h5.read(path)
    assert surface.done.all() and surface.attrs["direction_kind"] == plane.kind
    for name in hs.EIGEN_MAP_NAMES:
        np.testing.assert_array_equal(surface.values[name], values[name])
    with h5py.File(path, "r") as f:  # Li et al.'s names and layout: (ny, nx) float datasets
        assert f["max_eig"].shape == (2, 3) and f["min_eig"].dtype == np.float64


def _tiny_conv_workload() -> Workload:
    """A 3×3 convolution (2 channels) and a dense layer on 6×6 one-channel images (51 params)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 6, 6, 1))
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.int32)

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"kernel": jax.random.normal(k1, (3, 3, 1, 2)) / 3,
                "dense": jax.random.normal(k2, (8, 2)) / 3, "bias": jnp.zeros(2) + 0.1}, {}

    def loss(params, state, batch):
        h = jax.lax.conv_general_dilated(batch.inputs, params["kernel"], (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jnp.tanh(h).reshape(h.shape[0], 4, 4, 2).mean(axis=(1,)).reshape(-1, 8)
        logp = jax.nn.log_softmax(h @ params["dense"] + params["bias"])
        return -jnp.mean(jnp.take_along_axis(logp, batch.targets[:, None], axis=1)), {}

    return Workload(name="tiny-conv", init=init, loss=loss, train=Dataset(x, y), batch_size=16)


def test_convolutions_on_the_cpu_loop_on_the_host_with_the_same_results(cases):
    """XLA:CPU runs a convolution's gradient slowly inside a compiled loop (jax-ml/jax#12868):
    such operators (found in the jaxpr) step from the host, which gives what the device loop
    gives (checked on a matrix with repeated eigenvalues, so restarts too)."""
    from landscape.curvature.density import _tridiagonals, _tridiagonals_on_host

    lam = np.repeat([-2.0, 1.0, 5.0], [3, 4, 3])
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(10, 10)))
    a = jnp.asarray((q * lam) @ q.T, jnp.float32)
    matvec = lambda v, a: a @ v  # noqa: E731
    runs = {loop: hs.lanczos_extremes(matvec, a, jnp.ones(10), top_k=4, bottom_k=2, tol=1e-5,
                                      loop=loop, return_vectors=True)
            for loop in ("host", "device")}
    assert runs["host"].iterations == runs["device"].iterations
    for end in ("top", "bottom"):
        np.testing.assert_allclose(getattr(runs["host"], end).values,
                                   getattr(runs["device"], end).values, rtol=1e-6)
    args = (jnp.zeros((0, 10)), jnp.eye(10)[:2] + 0.1, jax.random.split(jax.random.key(0), 2))
    op = hs.LinearOperator.from_matvec(matvec, a, jnp.ones(10), loop="host")
    for x, y in zip(_tridiagonals(a, *args, matvec=matvec, num_steps=8),
                    _tridiagonals_on_host(op, *args, num_steps=8)):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    assert not cases["classifier"].problem.on_host

    conv = _tiny_conv_workload()
    params, state = conv.init(jax.random.key(0))
    assert hs.hessian_problem(conv, params, state).on_host


def test_an_eigen_map_of_a_convnet_on_the_cpu_steps_from_the_host(monkeypatch):
    """A point's whole Lanczos run is a compiled loop, which XLA:CPU runs 20-40x slower around a
    convolution's gradient (digits-cnn: 9 points took over 10 minutes): such maps dispatch each
    step from the host, and give the dense eigenvalues (m = n steps: exact Ritz extremes)."""
    from landscape.curvature import host_loop

    steps = []
    real_step = host_loop.dispatched_update
    monkeypatch.setattr(host_loop, "dispatched_update",
                        lambda *a, **k: steps.append(1) or real_step(*a, **k))
    conv = _tiny_conv_workload()
    with jax.enable_x64(True):
        params, state = conv.init(jax.random.key(0))
        plane = landscape.random_plane(params, seed=1)
        grid = Grid.from_specs("-0.5:0.5:2", "0:0.5:2")
        n = sum(np.size(leaf) for leaf in jax.tree.leaves(params))
        host = hs.evaluate_eigen_map(conv, state, plane, grid, num_steps=n,
                                     done=np.array([[False, True], [True, False]]))
        assert len(steps) == 2 * n  # two points to do, n steps each, every one dispatched
        coords = grid.coordinates()
        for index in (0, 3):
            iy, ix = np.unravel_index(index, grid.shape)
            theta = point_params(plane, coords[index, 0], coords[index, 1])
            lam = np.linalg.eigvalsh(dense_hessian(conv, theta, state))
            for name, want in (("max_eig", lam[-1]), ("min_eig", lam[0])):
                np.testing.assert_allclose(host[name][iy, ix], want, rtol=1e-6, atol=1e-9)
    assert np.isnan(host["max_eig"][[0, 1], [1, 0]]).all()  # done before: not evaluated again
