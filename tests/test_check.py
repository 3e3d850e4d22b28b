"""`landscape check`: four files it must flag (BatchNorm in training mode, un-normalized
directions, a grid coarser than the basin, a path mostly off the plane), one it must pass, and
Li et al.'s files (no provenance) handled with `unknown` lines.

The model is a linear regression y = x w* + noise (4 inputs, 1 output) whose loss is known in
closed form, so every expectation below comes from the data, not from the code under test."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner

import landscape
from landscape.check import check_surface, path_share
from landscape.cli import main
from landscape.directions import Plane, random_plane
from landscape.grid import Grid
from landscape.projection import project_onto_plane

RNG = np.random.default_rng(0)
X = RNG.normal(size=(256, 4)).astype(np.float32)
W_TRUE = np.array([[1.5], [-1.0], [0.5], [2.0]], np.float32)
NOISE = 0.5
Y = (X @ W_TRUE + NOISE * RNG.normal(size=(256, 1))).astype(np.float32)
W_FIT = np.linalg.lstsq(X.astype(np.float64), Y.astype(np.float64), rcond=None)[0]
PARAMS = {"dense": {"kernel": W_FIT.astype(np.float32), "bias": np.zeros(1, np.float32)}}


def mse(params, batch):
    x, y = batch
    return jnp.mean((x @ params["dense"]["kernel"] + params["dense"]["bias"] - y) ** 2)


def own_loss() -> float:  # the least-squares residual, in float64: the model's own loss
    return float(np.mean((X.astype(np.float64) @ W_FIT - Y) ** 2))


def statuses(surface) -> dict[str, str]:
    return {f.topic: f.status for f in check_surface(surface)}


def scan(path, plane, grid, *, train_loss=None, trajectories=None, loss=None, state=None,
         batch_size=None):
    from landscape.adapters import objective_from

    objective, _ = objective_from(loss or mse, PARAMS, (X, Y), state=state,
                                  batch_size=batch_size)
    return landscape.scan_surface(objective, plane, grid, out=str(path), train_loss=train_loss,
                                  trajectories=trajectories,
                                  provenance={"directions": plane.kind})


def path_on(plane: Plane, along: np.ndarray, off: np.ndarray) -> list:
    """Parameters origin + a d1 + b d2 + c n, n a unit vector orthogonal to the plane."""
    flat = lambda t: np.concatenate([np.ravel(t["dense"]["kernel"]), np.ravel(t["dense"]["bias"])])  # noqa: E731
    d1, d2, w = flat(plane.d1), flat(plane.d2), flat(plane.origin)
    basis, _ = np.linalg.qr(np.stack([d1, d2], 1), mode="reduced")
    n = RNG.normal(size=w.shape)
    n -= basis @ (basis.T @ n)
    n /= np.linalg.norm(n)
    points = []
    for (a, b), c in zip(along, off):
        v = w + a * d1 + b * d2 + c * n
        points.append({"dense": {"kernel": v[:4].reshape(4, 1).astype(np.float32),
                                 "bias": v[4:].astype(np.float32)}})
    return points


def trajectory(plane, points, losses):
    projection = project_onto_plane(points, plane)
    return {"x": projection.x, "y": projection.y, "loss": np.asarray(losses),
            "step": np.arange(len(points)), "residual": projection.residual,
            "relative_residual": projection.relative_residual}


@pytest.fixture(scope="module")
def plane():
    return random_plane(PARAMS, seed=1, normalization="filter", ignore="biasbn")


def test_a_trustworthy_scan_passes(tmp_path, plane):
    t = np.linspace(0.0, 1.0, 6)
    points = path_on(plane, np.stack([0.6 - 0.6 * t, 0.4 * (1 - t) ** 2], 1), 0.01 * (1 - t))
    grid = Grid.from_specs("-1:1:41", "-1:1:41")
    surface = scan(tmp_path / "ok.h5", plane, grid, train_loss=own_loss(),
                   trajectories={"sgd": trajectory(plane, points, np.ones(6))})
    findings = check_surface(surface)
    assert {f.status for f in findings} == {"OK"}, [f.line() for f in findings]
    result = CliRunner().invoke(main, ["check", str(tmp_path / "ok.h5")])
    assert result.exit_code == 0
    assert [line.split()[:2] for line in result.output.splitlines()] == [
        ["points", "OK"], ["centre", "OK"], ["scale", "OK"], ["finite", "OK"], ["basin", "OK"],
        ["path", "OK"]]


def test_batchnorm_in_training_mode_is_flagged(tmp_path, plane):
    """A loss normalizing its hidden layer with each batch's statistics (BatchNorm in training
    mode) scanned around a model whose own loss uses the running statistics."""
    kernel = RNG.normal(size=(4, 8)).astype(np.float32)
    head = RNG.normal(size=(8, 1)).astype(np.float32)
    h = X @ kernel
    running = {"mean": h.mean(0), "var": h.var(0)}  # the full data's: eval mode's statistics

    def forward(params, stats, x):
        z = (x @ kernel * params["dense"]["kernel"][0, 0] - stats["mean"]) / jnp.sqrt(
            stats["var"] + 1e-5)
        return jax.nn.relu(z) @ head + params["dense"]["bias"]

    def train_mode(params, state, batch):
        x, y = batch
        hidden = x @ kernel * params["dense"]["kernel"][0, 0]
        stats = {"mean": hidden.mean(0), "var": hidden.var(0)}
        return jnp.mean((forward(params, stats, x) - y) ** 2)

    hidden = X @ kernel * PARAMS["dense"]["kernel"][0, 0]
    stats = {"mean": hidden.mean(0), "var": hidden.var(0)}
    z = np.maximum((hidden - stats["mean"]) / np.sqrt(stats["var"] + 1e-5), 0) @ head
    eval_loss = float(np.mean((z - Y) ** 2))  # running statistics = the full data's
    surface = scan(tmp_path / "bn.h5", plane, Grid.from_specs("-1:1:5", "-1:1:5"),
                   train_loss=eval_loss, loss=train_mode, state=running, batch_size=8)
    centre = next(f for f in check_surface(surface) if f.topic == "centre")
    assert centre.status == "warning", centre
    assert "BatchNorm in training mode" in centre.message and f"{eval_loss:.6g}" in centre.message


def test_unnormalized_directions_are_flagged(tmp_path):
    """Raw Gaussian directions on a model whose layers have very different weight norms."""
    params = {"a": {"kernel": np.full((4, 8), 0.01, np.float32)},
              "b": {"kernel": np.full((8, 1), 3.0, np.float32)}}

    def loss(p, batch):
        x, y = batch
        return jnp.mean((jnp.tanh(x @ p["a"]["kernel"]) @ p["b"]["kernel"] - y) ** 2)

    surface = landscape.surface(loss, params, (X, Y), directions="random", x="-1:1:5",
                                out=str(tmp_path / "raw.h5"), progress=False)
    scale = next(f for f in check_surface(surface) if f.topic == "scale")
    assert scale.status == "warning" and "not normalized per layer" in scale.message
    d1 = surface.directions["d1"]
    expected = {name: np.linalg.norm(d1[name]["kernel"]) / np.linalg.norm(params[name]["kernel"])
                for name in ("a", "b")}
    assert f"{expected['a']:.3g} (a/kernel)" in scale.message
    # the same model with filter-normalized directions passes
    normalized = landscape.surface(loss, params, (X, Y), x="-1:1:5", progress=False)
    assert statuses(normalized)["scale"] == "OK"


def test_directions_that_contradict_the_recorded_normalization_are_flagged(tmp_path, plane):
    surface = scan(tmp_path / "edited.h5", plane, Grid.from_specs("-1:1:5", "-1:1:5"))
    directions = {**surface.directions, "d1": {"dense": {
        "kernel": 3 * surface.directions["d1"]["dense"]["kernel"],
        "bias": surface.directions["d1"]["dense"]["bias"]}}}
    edited = landscape.Surface(surface.grid, surface.values, surface.done, surface.attrs,
                               directions, surface.trajectories)
    scale = next(f for f in check_surface(edited) if f.topic == "scale")
    assert scale.status == "warning" and "`dense/kernel` of d1" in scale.message
    assert "= 3 (expected 1)" in scale.message


def test_a_grid_coarser_than_the_basin_is_flagged_with_a_zoom_that_resolves_it(tmp_path, plane):
    coarse = scan(tmp_path / "coarse.h5", plane, Grid.from_specs("-10:10:11", "-10:10:11"))
    basin = next(f for f in check_surface(coarse) if f.topic == "basin")
    assert basin.status == "warning" and "coarser than the basin" in basin.message
    zoom, n = basin.message.split("--range ")[1].split(" --grid ")
    assert n.split()[0] == "21"  # 11 points would put too few across the basin
    fine = scan(tmp_path / "fine.h5", plane, Grid.from_specs(f"{zoom}:21", f"{zoom}:21"))
    assert statuses(fine)["basin"] == "OK"
    # the loss along d1 is own + α² ‖X d1‖²/n: twice the minimum at α = sqrt(own / that)
    d = plane.d1["dense"]["kernel"].astype(np.float64)
    half = np.sqrt(own_loss() / np.mean((X @ d) ** 2))
    across = 2 * half / (fine.grid.x[1] - fine.grid.x[0])
    assert 5 <= across <= 20  # the suggested zoom puts the basin across several points


def test_a_minimum_on_the_grids_edge_is_flagged(tmp_path, plane):
    shifted = scan(tmp_path / "edge.h5", plane, Grid.from_specs("0.5:2:7", "-1:1:7"))
    basin = next(f for f in check_surface(shifted) if f.topic == "basin")
    assert basin.status == "warning" and "edge" in basin.message


def test_a_path_mostly_off_the_plane_is_flagged_and_its_share_is_exact(tmp_path, plane):
    t = np.linspace(0.0, 1.0, 6)
    along = np.stack([0.3 * (1 - t), 0.1 * (1 - t)], 1)
    off = 2.0 * (1 - t)
    points = path_on(plane, along, off)
    grid = Grid.from_specs("-1:1:21", "-1:1:21")
    surface = scan(tmp_path / "off.h5", plane, grid, train_loss=own_loss(),
                   trajectories={"adam": trajectory(plane, points, np.ones(6))})
    path = next(f for f in check_surface(surface) if f.topic == "path")
    assert path.status == "warning" and "adam" in path.message and "shadow" in path.message
    flat = lambda t: np.concatenate([np.ravel(t["dense"]["kernel"]), np.ravel(t["dense"]["bias"])])  # noqa: E731
    d1, d2 = flat(plane.d1), flat(plane.d2)
    inside = np.array([np.sum((a * d1 + b * d2) ** 2) for a, b in along])
    expected = inside.sum() / (inside.sum() + np.sum(off**2))
    assert path_share(surface, "adam") == pytest.approx(expected, rel=1e-3)
    assert f"{100 * expected:.1f} %" in path.message


def test_li_et_al_files_say_what_cannot_be_checked(tmp_path):
    from tests import li_layout

    path = tmp_path / "li.h5"
    li_layout.setup_surface_file(path, "resnet56_dirs.h5", (-1, 1, 11), (-1, 1, 11))

    def evaluate(coord):
        return 1.0 + 2 * float(np.sum(np.asarray(coord) ** 2)), 90.0

    li_layout.crunch(path, evaluate)
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()}
    assert lines["points"].split()[1] == "unknown" and "Li et al." in lines["points"]
    assert lines["centre"].split()[1] == "unknown" and "no loss of the model" in lines["centre"]
    assert lines["scale"].split()[1] == "unknown" and "'resnet56_dirs.h5'" in lines["scale"]
    assert lines["basin"].split()[1] == "OK"
    assert lines["path"].split()[1] == "OK"


def test_scan_ends_with_the_check_lines_and_draws_every_split(tmp_path):
    """`landscape scan` prints the check's lines on stderr (not with --quiet) and, with
    `--split train,test`, draws the test loss too (it used to draw only `train_loss`)."""
    out = tmp_path / "out"
    args = ["scan", "--steps", "50", "--grid", "5", "--split", "train,test", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    checks = [line for line in result.stderr.splitlines() if line.startswith("check: ")]
    assert [line.split()[1] for line in checks] == ["points", "centre", "scale", "finite",
                                                    "basin", "path"]
    assert "check:" not in result.stdout
    train, test = out / "surface.png", out / "surface_test_loss.png"
    assert result.stdout.split() == [str(out / "surface.h5"), str(train), str(test)]
    assert train.read_bytes() != test.read_bytes()
    test.unlink()  # a finished scan draws a missing figure again, and checks again
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0 and test.exists()
    assert "check:" not in result.output


@pytest.mark.parametrize("directions", [
    {},
    {"d1": {"a": np.array(["x"])}, "origin": {"a": np.array(["y"])}},  # not numbers
    {"d1": {"a": np.ones(3)}, "origin": {"b": np.ones(3)}},  # other leaves
    {"d1": np.ones(3), "origin": np.zeros(3)},  # a bare array, zero weights
    {"d1": {"k": np.ones((2, 2))}, "d2": {"k": np.ones(3)}, "origin": {"k": np.ones((2, 2))}},
])
def test_odd_files_get_findings_not_exceptions(tmp_path, directions):
    import dataclasses

    from synthetic_surfaces import make_surface

    make_surface(tmp_path / "s.h5")
    surface = landscape.load_surface(tmp_path / "s.h5")
    path = {"x": np.ones(3), "y": np.ones(3), "loss": np.ones(3), "step": np.arange(3),
            "residual": np.ones(3)}
    for odd in (dataclasses.replace(surface, directions=directions, trajectories={"p": path}),
                dataclasses.replace(surface, directions=directions, values={}),
                dataclasses.replace(surface, directions=directions,
                                    done=np.zeros_like(surface.done))):
        findings = check_surface(odd)
        assert [f.topic for f in findings][:5] == ["points", "centre", "scale", "finite", "basin"]
