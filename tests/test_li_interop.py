"""Interoperability with Li et al.'s loss-landscape: their own files (written call for call as
their scripts write them, :mod:`li_layout`) read by `info`, `plot` and `export`; `export --li`
read back the way their plot_2D.py reads it; PCA signs as scikit-learn's PCA gives them."""

import re

import h5py
import jax
import numpy as np
import pytest
from click.testing import CliRunner
from jax.flatten_util import ravel_pytree
from matplotlib.image import imread

import li_layout
from landscape.cli import main
from landscape.directions import pca_plane, random_plane
from landscape.grid import Grid
from landscape.io import surface_h5
from landscape.io import vtk as vtk_io
from landscape.projection import project_onto_plane

DIR_FILE = "cifar10/trained_nets/resnet56/model_300.t7_weights_xignore=biasbn_xnorm=filter.h5"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def evaluate(coord):
    """A stand-in for their network: loss > 0 everywhere, asymmetric in x and y."""
    x, y = (coord[0], coord[1]) if np.ndim(coord) else (coord, 0.0)
    loss = 1.0 + (x - 0.2) ** 2 + 3.0 * (y - 0.1) ** 2 + 0.5 * x * y
    return loss, 100.0 - 10.0 * loss


def their_file(path, x, y=None, *, stop_after=None):
    li_layout.setup_surface_file(path, DIR_FILE, x, y)
    li_layout.crunch(path, evaluate, stop_after=stop_after)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("li")
    return {
        "square": their_file(folder / "square.h5", (-1, 1, 5), (-1, 1, 5)),
        # killed after 7 points; non-square: allocated (nx, ny), filled in meshgrid order
        "partial": their_file(folder / "partial.h5", (-1, 1, 5), (-0.5, 1, 3), stop_after=7),
        "line": their_file(folder / "line.h5", (-1, 1, 9), stop_after=4),
    }


def test_the_helper_writes_their_layout(files):
    got = li_layout.layout(files["partial"])
    assert got == {"dir_file": ("dataset", (), "vlen-str"),
                   "xcoordinates": ("dataset", (5,), "<f8"),
                   "ycoordinates": ("dataset", (3,), "<f8"),
                   "train_loss": ("dataset", (5, 3), "<f8"),  # (nx, ny), as their crunch has it
                   "train_acc": ("dataset", (5, 3), "<f8")}
    with h5py.File(files["partial"]) as f:
        assert (f["train_loss"][()].ravel()[7:] == -1).all()


@pytest.mark.parametrize("name, computed", [("square", 25), ("partial", 7), ("line", 4)])
def test_their_files_read_with_their_rule_for_unfinished_points(files, name, computed):
    surface = surface_h5.read(files[name])
    grid = surface.grid
    assert surface.done_rule == "li" and int(surface.done.sum()) == computed
    assert surface.others["dir_file"].value == DIR_FILE
    # independent: their fill order is the flat index iy * nx + ix of meshgrid(x, y)
    flat_done = np.arange(surface.done.size) < computed
    np.testing.assert_array_equal(surface.done.ravel(), flat_done)
    for index in range(surface.done.size):
        iy, ix = divmod(index, len(grid.x))
        coord = grid.x[ix] if grid.y is None else (grid.x[ix], grid.y[iy])
        loss, acc = evaluate(coord)
        got_loss = surface.values["train_loss"].ravel()[index]
        got_acc = surface.values["train_acc"].ravel()[index]
        if flat_done[index]:
            assert got_loss == pytest.approx(loss) and got_acc == pytest.approx(acc)
        else:  # their -1 is "not computed": a gap, never a value
            assert np.isnan(got_loss) and np.isnan(got_acc)


def test_info_on_their_files(files):
    full = run("info", files["square"]).output
    assert "25 / 25 points computed (100.0 %) by the values: no `done` mask: derived by Li " \
           "et al.'s rule, a loss <= 0 is not computed" in full
    assert not re.search(r"\bcomplete\b", full)  # never called finished
    assert f"dir_file  scalar string: '{DIR_FILE}'" in full
    partial = run("info", files["partial"])
    assert partial.exit_code == 0, partial.output
    assert "7 / 15 points computed (46.7 %)" in partial.output
    assert "metrics stored (nx, ny) = (5, 3), as Li et al.'s plot_surface.py" in partial.output
    assert run("info", files["line"]).exit_code == 0


def _our_copy(path, surface):
    """Our file with the same grid and values, NaN (and not done) where theirs is -1."""
    surface_h5.create(path, surface.grid, sorted(surface.values),
                      random_plane({"w": np.ones((2, 2))}, dims=surface.grid.ndim),
                      {"spec_hash": "x"})
    index = np.flatnonzero(surface.done.ravel())
    surface_h5.write_points(path, index, {k: v.ravel()[index] for k, v in surface.values.items()})
    surface_h5.compact(path)
    return path


@pytest.mark.parametrize("name, args, image", [
    ("partial", ["--kind", "heatmap"], "{stem}_train_loss_heatmap.png"),
    ("line", [], "{stem}_curves.png"),
])
def test_plot_draws_their_unfinished_points_as_gaps(files, tmp_path, name, args, image):
    theirs = files[name]
    ours = _our_copy(tmp_path / f"{theirs.stem}.h5", surface_h5.read(theirs))
    pictures = []
    for path, out in ((theirs, tmp_path / "theirs"), (ours, tmp_path / "ours")):
        result = run("plot", path, *args, "--dpi", "60", "--out", out)
        assert result.exit_code == 0, result.output
        pictures.append(imread(out / image.format(stem=theirs.stem)))
    np.testing.assert_array_equal(*pictures)  # the same picture as with NaN gaps


def test_export_vtk_of_their_file_blanks_unfinished_points(files, tmp_path):
    result = run("export", files["partial"], "--vtk", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    got = vtk_io.read_vts(tmp_path / "partial.vts")
    want = np.arange(15) < 7
    np.testing.assert_array_equal(got["point_data"]["valid"].astype(bool), want)
    np.testing.assert_array_equal(got["blanked"], ~want)
    assert np.isnan(got["point_data"]["train_loss"][~want]).all()


# --- export --li ----------------------------------------------------------------------------

PARAMS = {"dense0": {"kernel": np.ones((3, 4), np.float32), "bias": np.zeros(4, np.float32)},
          "dense1": {"kernel": np.ones((4, 2), np.float32), "bias": np.zeros(2, np.float32)}}


def _trajectory(seed, steps=9):
    rng = np.random.default_rng(seed)
    u, v = (jax.tree.map(lambda w: rng.normal(size=w.shape).astype(np.float32), PARAMS)
            for _ in range(2))
    return [jax.tree.map(lambda w, a, b, t=t: (w + 2 * np.cos(t / 3) * a + np.sin(t / 2) * b
                                                + 0.05 * rng.normal(size=w.shape))
                         .astype(np.float32), PARAMS, u, v) for t in range(steps)]


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0], np.float64)


def _rows(trajectory, *, ignore_biases=False):
    rows = np.stack([_flat(t) - _flat(trajectory[-1]) for t in trajectory])
    if ignore_biases:  # their ignore_biasbn: 1-D tensors zeroed
        mask = _flat(jax.tree.map(lambda w: np.full(w.shape, w.ndim > 1, np.float32), PARAMS))
        rows *= mask
    return rows


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ignore", ["none", "biasbn"])
def test_pca_directions_are_sklearns_components_signs_included(seed, ignore):
    from sklearn.decomposition import PCA

    trajectory = _trajectory(seed)
    plane = pca_plane(trajectory, ignore=ignore)
    pca = PCA(n_components=2).fit(_rows(trajectory, ignore_biases=ignore == "biasbn"))
    for direction, component in zip((plane.d1, plane.d2), pca.components_):
        np.testing.assert_allclose(_flat(direction), component, atol=2e-6)
    np.testing.assert_allclose(plane.explained_variance, pca.explained_variance_ratio_,
                               rtol=1e-6)
    assert plane.ignore == ignore
    if ignore == "biasbn":  # exactly zero, as their ignore_biasbn leaves the directions
        for d in (plane.d1, plane.d2):
            assert not d["dense0"]["bias"].any() and not d["dense1"]["bias"].any()


def _scanned_pca_file(path, trajectory):
    """A surface file as `scan RUN --directions pca` stores it (directions, ratios, the path)."""
    plane = pca_plane(trajectory)
    grid = Grid(np.linspace(-3, 3, 5), np.linspace(-2, 2, 4))
    surface_h5.create(path, grid, ["train_loss"], plane, {
        "spec_hash": "x", "direction_kind": "pca",
        "explained_variance": list(plane.explained_variance)})
    projection = project_onto_plane(trajectory, plane)
    surface_h5.write_trajectory(path, "adam", x=projection.x, y=projection.y,
                                loss=np.linspace(2, 1, len(trajectory)),
                                step=np.arange(len(trajectory)) * 10)
    return plane


def test_export_li_of_a_pca_scan_is_read_as_their_plot_2d_reads_it(tmp_path):
    from sklearn.decomposition import PCA

    trajectory = _trajectory(3)
    plane = _scanned_pca_file(tmp_path / "pca.h5", trajectory)
    result = run("export", tmp_path / "pca.h5", "--li")
    assert result.exit_code == 0, result.output
    dir_file, proj_file = tmp_path / "pca_li_directions.h5", tmp_path / "pca_li_proj_adam.h5"
    assert result.output.split() == [str(dir_file), str(proj_file)]

    # Their own writer, given the same tensors and sklearn's PCA of their float32 rows:
    # the same datasets, shapes and dtypes.
    pca = PCA(n_components=2).fit(_rows(trajectory).astype(np.float32))
    leaves = [leaf for _, leaf in jax.tree_util.tree_flatten_with_path(plane.d1)[0]]
    leaves2 = [leaf for _, leaf in jax.tree_util.tree_flatten_with_path(plane.d2)[0]]
    li_layout.write_pca_direction_file(tmp_path / "theirs.h5", leaves, leaves2, pca)
    assert li_layout.layout(dir_file) == li_layout.layout(tmp_path / "theirs.h5")
    li_layout.write_projection_file(tmp_path / "theirs_proj.h5", [0.0] * 9, [0.0] * 9)
    assert li_layout.layout(proj_file) == li_layout.layout(tmp_path / "theirs_proj.h5")

    # What their code reads: directions whose flat vector is ours, sklearn's statistics
    directions = li_layout.load_directions(dir_file)
    for theirs, ours in zip(directions, (plane.d1, plane.d2)):
        np.testing.assert_array_equal(li_layout.nplist_to_vector(theirs), _flat(ours))
    with h5py.File(dir_file) as f:
        np.testing.assert_allclose(f["explained_variance_ratio_"][()],
                                   pca.explained_variance_ratio_, rtol=1e-4)
        np.testing.assert_allclose(f["singular_values_"][()], pca.singular_values_, rtol=1e-4)
        np.testing.assert_allclose(f["explained_variance_"][()], pca.explained_variance_,
                                   rtol=1e-4)
        assert f.attrs["layout"] == "flax"
    reads = li_layout.plot_trajectory_reads(proj_file, dir_file)
    assert reads["ratio_x"] == pytest.approx(plane.explained_variance[0], rel=1e-6)
    # their projection (project_2D 'cos': w·d / ‖d‖) of each recorded model
    dx, dy = (li_layout.nplist_to_vector(d) for d in directions)
    for k, theta in enumerate(trajectory):
        w = _flat(theta) - _flat(trajectory[-1])
        assert reads["x"][k] == pytest.approx(w @ dx / np.linalg.norm(dx), abs=1e-4)
        assert reads["y"][k] == pytest.approx(w @ dy / np.linalg.norm(dy), abs=1e-4)


@pytest.mark.parametrize("dims", [1, 2])
def test_export_li_of_a_random_plane_has_directions_only(tmp_path, dims):
    plane = random_plane(PARAMS, dims=dims, seed=2)
    grid = Grid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 3) if dims == 2 else None)
    surface_h5.create(tmp_path / "r.h5", grid, ["train_loss"], plane, {"spec_hash": "x"})
    surface_h5.write_trajectory(tmp_path / "r.h5", "sgd", x=np.zeros(2),
                                y=np.zeros(2) if dims == 2 else None, loss=np.ones(2),
                                step=np.arange(2))
    result = run("export", tmp_path / "r.h5", "--li", "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    dir_file = tmp_path / "o" / "r_li_directions.h5"
    with h5py.File(dir_file) as f:
        assert sorted(f) == (["xdirection", "ydirection"] if dims == 2 else ["xdirection"])
        assert [f["xdirection"][str(i)].dtype for i in range(4)] == [np.float32] * 4
    assert (tmp_path / "o" / "r_li_proj_sgd.h5").exists() == (dims == 2)
    np.testing.assert_array_equal(li_layout.nplist_to_vector(
        li_layout.load_directions(dir_file)[0]), _flat(plane.d1))


def test_export_li_of_their_own_file_is_refused(files, tmp_path):
    result = run("export", files["square"], "--li", "--out", tmp_path)
    assert result.exit_code == 2 and "stores no directions" in result.output
