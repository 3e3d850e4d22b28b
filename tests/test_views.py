"""The viewing commands' library calls, through the Python API: `landscape.views` (plot_file,
animate_file, plot_function_file), `landscape.export.export_file`, `landscape.description`
(describe, describe_file, Surface.describe), `landscape.grid.interpolate` and
`landscape.io.folders.make_output_folder`."""

import os

import matplotlib.pyplot as plt
import numpy as np
import pytest
from click.testing import CliRunner
from synthetic_surfaces import make_surface

import landscape
from landscape.cli import main
from landscape.description import describe, describe_file
from landscape.errors import InputError, WriteError
from landscape.export import export_file
from landscape.grid import Grid, interpolate
from landscape.io.folders import make_output_folder
from landscape.views import animate_file, plot_file, plot_function_file


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("views")
    make_surface(folder / "plane.h5", hessian=True, density=True)
    make_surface(folder / "line.h5", nx=5, ny=None, trajectories=False)
    return folder


# --- grid.interpolate ------------------------------------------------------------------------

def bilinear(x, y):
    return 1.5 - 2.0 * x + 0.5 * y + 3.0 * x * y


def test_interpolate_equals_a_bilinear_function_evaluated_directly():
    grid = Grid(np.array([-1.0, -0.2, 0.5, 2.0]), np.array([0.0, 0.3, 1.0]))  # uneven steps
    yy, xx = np.meshgrid(grid.y, grid.x, indexing="ij")
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 2, 50), rng.uniform(0, 1, 50)
    # exact for bilinear data in each cell, which is what the surface is between grid points
    np.testing.assert_allclose(interpolate(grid, bilinear(xx, yy).astype(np.float32), x, y),
                               bilinear(x, y), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(interpolate(grid, bilinear(xx, yy), x, y), bilinear(x, y),
                               rtol=1e-12, atol=1e-12)
    assert interpolate(grid, bilinear(xx, yy), x, y).dtype == np.float64


def test_interpolate_is_nan_off_the_grid_and_next_to_a_nan_point():
    grid = Grid(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0]))
    z = np.array([[0.0, 1.0, np.nan], [2.0, 3.0, 4.0]])
    got = interpolate(grid, z, np.array([0.5, 1.5, 2.5, 0.0]), np.array([0.5, 0.5, 0.5, -0.1]))
    assert got[0] == 1.5 and np.isnan(got[1:]).all()
    assert interpolate(grid, z, np.array([0.5]))[0] == 0.5  # no y: on the x axis (y = 0)


def test_interpolate_on_a_line_ignores_y():
    grid = Grid(np.array([0.0, 1.0, 3.0]))
    got = interpolate(grid, np.array([1.0, 3.0, 7.0]), np.array([0.5, 2.0, 4.0]), np.ones(3))
    np.testing.assert_array_equal(got[:2], [2.0, 5.0])
    assert np.isnan(got[2])


# --- description -----------------------------------------------------------------------------

def test_describe_file_is_what_info_prints_and_what_a_surface_describes(files):
    path = str(files / "plane.h5")
    lines = describe_file(path)
    assert lines[0] == f"file          {path}"
    assert any("200 bins" in line for line in lines)  # the density, read from the file
    result = CliRunner().invoke(main, ["info", path])
    assert result.exit_code == 0 and result.output == "\n".join(lines) + "\n"
    assert landscape.load_surface(path).describe() == lines
    from landscape.io import surface_h5

    in_memory = describe(surface_h5.read(path))
    assert in_memory[0] == "file          (in memory)" and "density" not in in_memory


# --- views -----------------------------------------------------------------------------------

def test_plot_file_writes_every_view_the_file_allows(files, tmp_path):
    written = landscape.plot_file(files / "plane.h5", tmp_path / "figs")
    names = sorted(os.path.basename(p) for p in written)
    assert names == sorted(["plane_train_loss_contour.png", "plane_train_loss_filled.png",
                            "plane_train_loss_heatmap.png", "plane_train_loss_surface3d.png",
                            "plane_hessian.png", "plane_density.png"])
    assert all(os.path.getsize(p) > 0 for p in written)
    line = plot_file(files / "line.h5", tmp_path, fmt="pdf")
    assert line == [str(tmp_path / "line_curves.pdf")]


def test_plot_file_checks_before_writing_and_notes_an_empty_metric(files, tmp_path):
    out = tmp_path / "none"
    with pytest.raises(InputError, match="`--kind curve` needs a 1D surface"):
        plot_file(files / "plane.h5", out, kind="curve")
    with pytest.raises(InputError, match=r"`vmin` \(=0\) must be > 0 with `log`") as caught:
        plot_file(files / "plane.h5", out, log=True, vmin=0)
    assert caught.value.param == ("vmin", "log")
    with pytest.raises(InputError, match="`metric`") as caught:
        plot_file(files / "plane.h5", out, metric="nope")
    assert caught.value.param == "metric" and not out.exists()
    empty = tmp_path / "empty.h5"
    make_surface(empty, done_fraction=0.0, trajectories=False)
    notes = []
    plot_file(empty, tmp_path, kind="contour", on_note=notes.append)
    assert notes == [f"warning: `train_loss` has no finite value in {empty} (scan not "
                     "started?); its figures will be empty"]
    plt.close("all")


def test_animate_file_writes_a_gif_of_the_paths(files, tmp_path):
    path = animate_file(files / "plane.h5", tmp_path, frames=2, fps=2, dpi=40)
    assert path == str(tmp_path / "plane_train_loss_paths.gif")
    assert open(path, "rb").read(6) in (b"GIF89a", b"GIF87a")
    with pytest.raises(InputError, match="needs a 2D surface"):
        animate_file(files / "line.h5", tmp_path)


def test_plot_function_file_draws_the_function_and_reports_the_descent(tmp_path):
    notes = []
    path = plot_function_file("rosenbrock", tmp_path, grid=20, path_from=(-1.2, 1.0), steps=50,
                              on_note=notes.append)
    assert path == str(tmp_path / "rosenbrock.png") and os.path.getsize(path) > 0
    assert len(notes) == 1 and notes[0].startswith("gradient descent: (-1.2, 1) → (")
    with pytest.raises(InputError, match=r"`path_from` \(=1e\+30,1e\+30\): f\(x, y\) is inf"):
        plot_function_file("rosenbrock", tmp_path, grid=20, path_from=(1e30, 1e30))
    plt.close("all")


# --- export ----------------------------------------------------------------------------------

def test_export_file_writes_the_formats_asked_in_order(files, tmp_path):
    written = landscape.export_file(files / "plane.h5", ["li", "html"], tmp_path)
    assert written[0] == str(tmp_path / "plane.html")  # html before li, whatever the order given
    assert str(tmp_path / "plane_li_directions.h5") in written
    assert all(os.path.isfile(p) for p in written)
    with pytest.raises(InputError, match="must name one or more of vtk, html, li"):
        export_file(files / "plane.h5", ["png"], tmp_path)
    with pytest.raises(InputError, match="`metric`"):
        export_file(files / "plane.h5", ["vtk"], tmp_path / "not-made", metric="nope")
    assert not (tmp_path / "not-made").exists()


# --- folders ---------------------------------------------------------------------------------

def test_make_output_folder_names_the_argument_and_the_cli_the_option(tmp_path):
    assert make_output_folder(tmp_path / "a" / "b") == str(tmp_path / "a" / "b")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(WriteError, match="cannot create `out` folder") as caught:
        make_output_folder(blocker / "sub")
    assert caught.value.param == "out"
    result = CliRunner().invoke(main, ["plot-function", "saddle", "--grid", "10", "--out",
                                       str(blocker / "sub")])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot create `--out` folder {blocker / 'sub'}: ")
