"""The one-call API: ``landscape.surface`` and ``landscape.hessian`` on a bare function and a
pytree, a Flax NNX module (BatchNorm state unperturbed), an Equinox module and a re-iterable of
batches, each against a direct per-point evaluation; the CLI and the API write the same file;
a scan interrupted through the API resumes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from click.testing import CliRunner
from flax import nnx

import landscape
from landscape.cli import main
from landscape.engine import point_params
from landscape.errors import InputError
from landscape.io import surface_h5

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3)).astype(np.float32)
Y = (X @ np.array([1.0, -2.0, 0.5], np.float32) + 0.1).astype(np.float32)
LABELS = (X[:, 0] > 0).astype(np.int32)
SMALL = dict(x="-1:1:3", y="-1:1:2", progress=False)


def direct(loss_of_params, plane, grid):
    """Per point: θ = origin + α d1 + β d2, the loss of the whole data set at θ."""
    return np.array([float(loss_of_params(point_params(plane, np.float32(a), np.float32(b))))
                     for a, b in grid.coordinates()]).reshape(grid.shape)


def test_a_bare_function_and_a_pytree():
    params = {"w": np.array([0.5, -1.0, 0.2], np.float32), "b": np.float32(0.0)}

    def loss_fn(params, batch):
        x, y = batch
        return jnp.mean((x @ params["w"] + params["b"] - y) ** 2)

    surface = landscape.surface(loss_fn, params, (X, Y), directions="random", **SMALL)
    want = direct(lambda p: loss_fn(p, (X, Y)), surface.plane, surface.grid)
    np.testing.assert_allclose(surface["train_loss"], want, rtol=1e-5)
    assert surface.complete and surface.path is None and list(surface.values) == ["train_loss"]


class Net(nnx.Module):
    def __init__(self, rngs):
        self.dense = nnx.Linear(3, 8, rngs=rngs)
        self.norm = nnx.BatchNorm(8, rngs=rngs)
        self.out = nnx.Linear(8, 2, rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.norm(self.dense(x))))


def nnx_loss(model, batch):
    x, y = batch
    logits = model(x)
    return (optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(),
            {"acc": jnp.mean(jnp.argmax(logits, -1) == y)})


def test_an_nnx_module_with_batchnorm_state():
    model = Net(nnx.Rngs(0))
    model.norm.mean[...] = jnp.full(8, 0.3)  # running statistics the surface must keep
    model.norm.var[...] = jnp.full(8, 2.0)
    surface = landscape.surface(nnx_loss, model, (X, LABELS), **SMALL)
    assert set(surface.values) == {"train_loss", "train_acc"}
    assert "mean" not in str(jax.tree_util.tree_structure(surface.plane.origin))  # state: not params

    graphdef, _, state = nnx.split(nnx.view(model, use_running_average=True), nnx.Param, ...)

    def loss_at(params):
        return nnx_loss(nnx.merge(graphdef, params, nnx.to_pure_dict(state)), (X, LABELS))[0]

    np.testing.assert_allclose(surface["train_loss"],
                               direct(loss_at, surface.plane, surface.grid), rtol=1e-5)
    assert model.norm.mean[0] == pytest.approx(0.3)  # the user's model is untouched


def test_an_equinox_module():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(3, 1, 6, 1, key=jax.random.key(0))

    def loss_fn(model, batch):
        x, y = batch
        return jnp.mean((jax.vmap(model)(x)[:, 0] - y) ** 2)

    surface = landscape.surface(loss_fn, model, (X, Y), **SMALL)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    plane = landscape.Plane(*(jax.tree.unflatten(jax.tree.structure(params), jax.tree.leaves(d))
                              for d in (surface.plane.origin, surface.plane.d1, surface.plane.d2)))
    want = direct(lambda p: loss_fn(eqx.combine(p, static), (X, Y)), plane, surface.grid)
    np.testing.assert_allclose(surface["train_loss"], want, rtol=1e-5)


def test_a_reiterable_of_batches_is_read_batch_by_batch():
    model = Net(nnx.Rngs(1))
    batches = [(X[i:i + 6], LABELS[i:i + 6]) for i in range(0, len(X), 6)]  # a DataLoader's view
    streamed = landscape.surface(nnx_loss, model, batches, **SMALL)
    in_memory = landscape.surface(nnx_loss, model, (X, LABELS), **SMALL)
    for name in ("train_loss", "train_acc"):
        np.testing.assert_allclose(streamed[name], in_memory[name], rtol=1e-5)
    with pytest.raises(InputError, match="re-iterable"):
        landscape.surface(nnx_loss, model, (b for b in batches), **SMALL)


def test_user_mistakes_are_one_line_errors():
    model = Net(nnx.Rngs(0))
    with pytest.raises(InputError, match=r"`nnx_loss` on the first batch raised \w+"):
        landscape.surface(nnx_loss, model, (X[:, :2], LABELS), **SMALL)  # wrong input width
    with pytest.raises(InputError, match="must return a scalar batch mean"):
        landscape.surface(lambda m, b: m(b[0]), model, (X, LABELS), **SMALL)
    with pytest.raises(InputError, match="`directions`"):
        landscape.surface(nnx_loss, model, (X, LABELS), directions="sideways", **SMALL)


def test_the_hessian_in_one_call_matches_the_dense_one():
    params = {"w": np.array([0.5, -1.0, 0.2], np.float32)}

    def loss_fn(params, batch):
        x, y = batch
        return jnp.mean(jnp.tanh(x @ params["w"] - y) ** 2)

    hessian = landscape.hessian(loss_fn, params, (X, Y))
    dense = jax.hessian(lambda w: loss_fn({"w": w}, (X, Y)))(jnp.asarray(params["w"]))
    eigenvalues = np.linalg.eigvalsh(np.asarray(dense, np.float64))
    np.testing.assert_allclose(hessian.eigenvalues(top_k=2), eigenvalues[::-1][:2], rtol=1e-3)
    assert hessian.trace(samples=200).estimate == pytest.approx(eigenvalues.sum(), rel=0.2)


FAST = ["--steps", "20", "--x", "-1:1:4", "--y", "-1:1:3", "--strategy", "vmap", "--quiet"]


def test_the_cli_and_the_api_write_the_same_file(tmp_path):
    result = CliRunner().invoke(main, ["scan", *FAST, "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    cli = surface_h5.read(tmp_path / "cli" / "surface.h5")
    # The same model, objective, plane and provenance, through the library.
    workload = landscape.get_workload("sine")
    run = landscape.train(workload, optax.adam(1e-2), steps=20, seed=0, record_every=20)
    plane = landscape.random_plane(run.params, seed=0, normalization="filter", ignore="biasbn")
    provenance = {"workload": "sine", "optimizer": "adam", "lr": 0.01, "steps": 20, "seed": 0,
                  "directions": "filter", "directions_from": None, "to": [],
                  "normalization": "filter", "ignore": "biasbn", "orthogonal": False,
                  "same_direction": False, "dims": 2, "direction_seed": 0}
    api = landscape.scan_surface(workload.objective(run.state), plane,
                                 landscape.Grid.from_specs("-1:1:4", "-1:1:3"),
                                 out=tmp_path / "api.h5", provenance=provenance,
                                 train_loss=float(run.losses[-1]), strategy="vmap")
    assert api.attrs == cli.attrs
    for name in cli.values:
        assert api.values[name].tobytes() == cli.values[name].tobytes()
    assert api.done.tobytes() == cli.done.tobytes()
    for key in ("origin", "d1", "d2"):
        for a, b in zip(jax.tree.leaves(api.directions[key]), jax.tree.leaves(cli.directions[key])):
            assert np.asarray(a).tobytes() == np.asarray(b).tobytes()


class _Stop(Exception):
    pass


def test_an_interrupted_api_scan_resumes_to_the_same_file(tmp_path, monkeypatch):
    model = Net(nnx.Rngs(2))
    options = dict(x="-1:1:6", y="-1:1:4", chunk=4, strategy="vmap", progress=False)
    whole = landscape.surface(nnx_loss, model, (X, LABELS), out=tmp_path / "whole.h5", **options)
    real_write = surface_h5.write_points
    calls = []

    def stop_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise _Stop
        calls.append(1)
        real_write(*args, **kwargs)

    monkeypatch.setattr(surface_h5, "write_points", stop_after_two)
    with pytest.raises(_Stop):
        landscape.surface(nnx_loss, model, (X, LABELS), out=tmp_path / "part.h5", **options)
    partial = landscape.load_surface(tmp_path / "part.h5")
    assert partial.done.sum() == 8 and not partial.complete
    monkeypatch.setattr(surface_h5, "write_points", real_write)
    again = landscape.surface(nnx_loss, model, (X, LABELS), out=tmp_path / "part.h5", **options)
    assert again.complete
    for name in whole.values:
        assert again.values[name].tobytes() == whole.values[name].tobytes()
    with pytest.raises(landscape.errors.ResumeMismatch):
        landscape.surface(nnx_loss, model, (X, LABELS), out=tmp_path / "part.h5",
                          **{**options, "x": "-2:2:6"})


def test_a_surface_saves_loads_plots_and_exports(tmp_path):
    model = Net(nnx.Rngs(3))
    surface = landscape.surface(nnx_loss, model, (X, LABELS), **SMALL)
    path = surface.save(tmp_path / "s.h5")
    loaded = landscape.load_surface(path)
    np.testing.assert_array_equal(loaded["train_loss"], surface["train_loss"])
    assert loaded.record.direction_kind == "random-filter" and loaded.record.seed == 0
    figure = loaded.plot()
    assert figure.axes and "train_loss" in figure.axes[0].get_title() + figure._suptitle.get_text()
    outputs = loaded.to_vtk(tmp_path / "vtk")
    assert any(str(p).endswith(".vts") for p in outputs)


def test_help_of_surface_says_what_a_user_needs():
    """`help(landscape.surface)` omitted batch_size, evaluation mode, that the model is not
    changed, the result's (ny, nx) layout and percent accuracies."""
    import inspect

    import landscape

    text = " ".join(inspect.getdoc(landscape.surface).split())
    for words in ("batch_size:", "evaluation (inference) mode", "``model`` is not changed",
                  "shaped ``(ny, nx)``", "stored in percent (0–100)", "state:"):
        assert words in text, words
    args = inspect.getdoc(landscape.surface).split("Args:")[1].split("Returns:")[0]
    for name in inspect.signature(landscape.surface).parameters:  # every argument is named
        forms = (f"{name}:", f"{name}, ", f", {name}", f"``{name}``", f"``{name}=")
        assert any(form in args for form in forms), name


def test_axes_as_coordinates_and_the_users_own_plane_equal_the_direct_evaluation():
    """``x``/``y`` as arrays (non-uniform too) and ``plane=(d1, d2)``: each point equals the
    loss evaluated directly at origin + α d1 + β d2."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=40)
    params = {"w": np.asarray(rng.normal(size=2), np.float32), "b": np.float32(0.3)}
    loss = lambda p, batch: jnp.mean((batch[0] @ p["w"] + p["b"] - batch[1]) ** 2)  # noqa: E731
    d1 = {"w": np.array([1.0, 0.0], np.float32), "b": np.float32(0.0)}
    d2 = {"w": np.array([0.0, 0.5], np.float32), "b": np.float32(1.0)}
    xs, ys = [-1.0, -0.25, 0.0, 2.0], np.array([-0.5, 0.5, 1.5])
    surface = landscape.surface(loss, params, (x, y), plane=(d1, d2), x=xs, y=ys, progress=False)
    assert surface["train_loss"].shape == (3, 4) and surface.plane.kind == "given"
    for iy, beta in enumerate(ys):
        for ix, alpha in enumerate(xs):
            point = jax.tree.map(lambda o, a, b: o + alpha * a + beta * b, params, d1, d2)
            direct = float(loss(point, (x, y)))
            np.testing.assert_allclose(surface["train_loss"][iy, ix], direct, rtol=1e-5)
    line = landscape.surface(loss, params, (x, y), plane=(d1,), x=np.linspace(-1, 1, 5),
                             progress=False)
    assert line["train_loss"].shape == (5,)
    for bad, message in (([1.0, 0.5], "strictly increasing"), ([[0.0, 1.0]], "1-D"),
                         ([0.0], "between 2")):
        with pytest.raises(InputError, match=message):
            landscape.surface(loss, params, (x, y), plane=(d1,), x=bad, progress=False)
    with pytest.raises(InputError, match="`plane`"):
        landscape.surface(loss, params, (x, y), plane=(d1, d2, d1), progress=False)
