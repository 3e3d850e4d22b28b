"""VTK export: h5 → vtk → values round trips read back with vtk's own readers, orientation on
non-square grids, NaN/inf gaps, trajectories lifted onto the surface, and ParaView (pvbatch)
opening the files and rendering them."""

import json
import os
import shutil
import subprocess
import textwrap

import numpy as np
import pytest
from synthetic_surfaces import make_surface

from landscape.errors import InputError
from landscape.io import surface_h5
from landscape.io import vtk as vtk_io
from landscape.io.palette import trajectory_rgb


def _export(tmp_path, **make_kwargs):
    path = tmp_path / "s.h5"
    return path, make_surface(path, **make_kwargs)


@pytest.mark.parametrize("nx, ny", [(7, 4), (4, 7)])
@pytest.mark.parametrize("log", [False, True])
def test_vts_round_trip_values_and_orientation(tmp_path, nx, ny, log):
    path, written = _export(tmp_path, nx=nx, ny=ny)
    outputs = vtk_io.export(surface_h5.read(path), tmp_path, stem="s", log=log)
    assert [os.path.basename(p) for p in outputs] == ["s.vts", "s_trajectories.vtp", "s.pvd",
                                                       "s_paraview.py"]
    got = vtk_io.read_vts(tmp_path / "s.vts")
    assert got["dimensions"] == (nx, ny, 1)
    grid, loss = written["grid"], written["values"]["train_loss"]
    # Independent per-point loop: VTK point number iy * nx + ix (x fastest) is Z[iy, ix].
    for iy in range(ny):
        for ix in range(nx):
            k = iy * nx + ix
            np.testing.assert_allclose(got["points"][k, :2], [grid.x[ix], grid.y[iy]])
            value = loss[iy, ix]
            np.testing.assert_equal(got["point_data"]["train_loss"][k], value)
            ok = np.isfinite(value) and (value > 0 or not log)
            assert got["point_data"]["valid"][k] == ok and got["blanked"][k] == (not ok)
            if ok:
                want = np.log10(value) if log else value
                assert got["points"][k, 2] == pytest.approx(want)
                assert got["point_data"]["height"][k] == pytest.approx(want)
    np.testing.assert_array_equal(got["point_data"]["train_acc"].reshape(ny, nx),
                                  written["values"]["train_acc"])
    assert np.isfinite(got["points"]).all()  # gaps are blanked, never NaN coordinates
    assert got["fields"]["metric"] == ["train_loss"]


def test_nan_and_inf_points_get_a_validity_mask_and_are_blanked(tmp_path):
    path, _ = _export(tmp_path, nx=6, ny=5, nan_at=(1, 2), inf_at=(3, 4))
    vtk_io.export(surface_h5.read(path), tmp_path, stem="s")
    got = vtk_io.read_vts(tmp_path / "s.vts")
    valid = got["point_data"]["valid"].reshape(5, 6)
    assert valid.dtype == np.uint8 and valid.sum() == 28
    assert valid[1, 2] == 0 and valid[3, 4] == 0
    np.testing.assert_array_equal(got["blanked"].reshape(5, 6), valid == 0)
    loss = got["point_data"]["train_loss"].reshape(5, 6)
    assert np.isnan(loss[1, 2]) and np.isposinf(loss[3, 4])


def test_zmax_clips_heights_in_metric_units(tmp_path):
    path, written = _export(tmp_path, nan_at=None, inf_at=None)
    loss = written["values"]["train_loss"]
    zmax = float(np.median(loss))
    vtk_io.export(surface_h5.read(path), tmp_path, stem="s", zmax=zmax, log=True)
    got = vtk_io.read_vts(tmp_path / "s.vts")
    np.testing.assert_allclose(got["points"][:, 2], np.log10(np.minimum(loss, zmax)).ravel())
    np.testing.assert_array_equal(got["point_data"]["train_loss"], loss.ravel())  # raw kept
    assert got["fields"]["z"] == [f"log10 min(train_loss, {zmax:g})"]


def test_every_metric_is_point_data_and_unknown_metric_is_refused(tmp_path):
    path, written = _export(tmp_path, hessian=True)
    surface = surface_h5.read(path)
    vtk_io.export(surface, tmp_path, stem="s", metric="max_eig")
    got = vtk_io.read_vts(tmp_path / "s.vts")
    assert set(got["point_data"]) == {"train_loss", "train_acc", "max_eig", "min_eig",
                                      "height", "valid", "done"}
    np.testing.assert_allclose(got["points"][:, 2], written["values"]["max_eig"].ravel())
    with pytest.raises(InputError, match="`--metric` \\(='test_loss'\\) is not in the file"):
        vtk_io.export(surface, tmp_path, metric="test_loss")


def test_trajectories_are_lifted_polylines_with_projected_loss(tmp_path):
    path, written = _export(tmp_path, nx=5, ny=3, nan_at=None, inf_at=None)
    grid, loss = written["grid"], written["values"]["train_loss"]
    # Points at a grid node, at a cell centre, and outside the grid.
    cx, cy = (grid.x[1] + grid.x[2]) / 2, (grid.y[0] + grid.y[1]) / 2
    surface_h5.write_trajectory(path, "probe", x=np.array([grid.x[3], cx, 5.0]),
                                y=np.array([grid.y[2], cy, 0.0]), loss=np.array([9.0, 8.0, 7.0]),
                                step=np.array([1, 2, 3]))
    vtk_io.export(surface_h5.read(path), tmp_path, stem="s", log=True)
    got = vtk_io.read_vtp(tmp_path / "s_trajectories.vtp")
    assert got["fields"]["trajectory_names"] == ["adam", "probe", "sgd"]
    assert [len(line) for line in got["lines"]] == [9, 3, 9]
    np.testing.assert_array_equal(got["cell_data"]["trajectory"], [0, 1, 2])
    probe = got["lines"][1]
    data = {k: v[probe] for k, v in got["point_data"].items()}
    np.testing.assert_array_equal(data["step"], [1, 2, 3])
    np.testing.assert_array_equal(data["loss"], [9.0, 8.0, 7.0])
    centre = loss[0:2, 1:3].mean()  # bilinear at a cell centre = mean of its four corners
    np.testing.assert_allclose(data["projected_loss"][:2], [loss[2, 3], centre])
    assert np.isnan(data["projected_loss"][2])
    np.testing.assert_array_equal(data["on_surface"], [1, 1, 0])
    points = got["points"][probe]
    np.testing.assert_allclose(points[:, :2], [[grid.x[3], grid.y[2]], [cx, cy], [5.0, 0.0]])
    # Lifted onto the (log10) surface; off the grid, at the true loss.
    np.testing.assert_allclose(points[:, 2], np.log10([loss[2, 3], centre, 7.0]))


def test_pvd_collection_lists_the_files_it_opens(tmp_path):
    path, _ = _export(tmp_path)
    vtk_io.export(surface_h5.read(path), tmp_path, stem="s")
    files = vtk_io.read_pvd(tmp_path / "s.pvd")
    assert files == ["s.vts", "s_trajectories.vtp"]
    assert all((tmp_path / name).is_file() for name in files)
    head = (tmp_path / "s.vts").read_bytes()[:400].decode("latin-1")
    assert 'format="appended"' in head and "vtkZLibDataCompressor" in head  # binary, compressed


def test_a_1d_surface_exports_as_a_line_and_files_without_trajectories_have_no_vtp(tmp_path):
    path, written = _export(tmp_path, nx=9, ny=None, trajectories=False)
    outputs = vtk_io.export(surface_h5.read(path), tmp_path, stem="s")
    assert [os.path.basename(p) for p in outputs] == ["s.vts", "s.pvd", "s_paraview.py"]
    got = vtk_io.read_vts(tmp_path / "s.vts")
    assert got["dimensions"] == (9, 1, 1)
    np.testing.assert_allclose(got["points"][:, 2], written["values"]["train_loss"])
    assert vtk_io.read_pvd(tmp_path / "s.pvd") == ["s.vts"]


PVBATCH_CHECK = """
import json, os, runpy, sys
from paraview.simple import *
folder = sys.argv[1]
report = {}
for name in ("s.vts", "s_trajectories.vtp", "s.pvd"):
    reader = OpenDataFile(os.path.join(folder, name))
    reader.UpdatePipeline()
    info = reader.GetDataInformation()
    report[name] = {"points": info.GetNumberOfPoints(), "cells": info.GetNumberOfCells(),
                    "arrays": sorted(reader.PointData.keys()),
                    "reader": reader.GetXMLName()}
view = GetActiveViewOrCreate("RenderView")
shown = Show(reader, view)
ColorBy(shown, ("POINTS", "train_loss"))
view.ResetCamera()
Render(view)
SaveScreenshot(os.path.join(folder, "pvd.png"), view, ImageResolution=[400, 300])
# The generated script, run as a user would (it resolves files next to itself).
sys.argv = ["s_paraview.py", "--screenshot", os.path.join(folder, "script.png")]
runpy.run_path(os.path.join(folder, "s_paraview.py"), run_name="__main__")
lut = GetColorTransferFunction("trajectory")
bar = GetScalarBar(lut, GetActiveView())
report["legend"] = {"categorical": int(lut.InterpretValuesAsCategories),
                    "annotations": list(lut.Annotations), "colours": list(lut.IndexedColors),
                    "title": bar.Title, "visible": int(bar.Visibility)}
report["version"] = GetParaViewVersion().GetVersion() if hasattr(GetParaViewVersion(), "GetVersion") else str(GetParaViewVersion())
print("REPORT " + json.dumps(report))
"""


@pytest.mark.slow
def test_paraview_opens_the_files_and_renders_them(tmp_path, run_pvbatch):
    if shutil.which("pvbatch") is None or shutil.which("Xvfb") is None:
        pytest.skip("ParaView's `pvbatch` (Debian: paraview, python3-paraview) and `Xvfb` "
                    "(xvfb) are not on PATH; .ci/run installs them")
    from matplotlib.image import imread

    path, _ = _export(tmp_path, nx=7, ny=4)
    vtk_io.export(surface_h5.read(path), tmp_path, stem="s", log=True)
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(PVBATCH_CHECK))
    proc = run_pvbatch(script, tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("REPORT "))
    report = json.loads(line[len("REPORT "):])
    surface_arrays = ["done", "height", "train_acc", "train_loss", "valid"]
    assert report["s.vts"]["points"] == 28 and report["s.vts"]["cells"] == 18
    assert [a for a in report["s.vts"]["arrays"] if a != "vtkGhostType"] == surface_arrays
    assert report["s_trajectories.vtp"]["points"] == 18 and report["s_trajectories.vtp"]["cells"] == 2
    assert {"step", "loss", "projected_loss", "on_surface"} <= set(report["s_trajectories.vtp"]["arrays"])
    assert report["s.pvd"]["points"] == 28 + 18
    for name in ("pvd.png", "script.png"):
        pixels = imread(tmp_path / name)[..., :3]
        assert pixels.std() > 0.05, f"{name} looks blank (pixel std {pixels.std():.4f})"
    # Each trajectory in its own colour (landscape plot's), with a legend naming it
    legend = report["legend"]
    assert legend["categorical"] == 1 and legend["visible"] == 1
    assert legend["annotations"] == ["0", "adam", "1", "sgd"] and legend["title"] == "trajectories"
    want = [trajectory_rgb(0), trajectory_rgb(1)]
    np.testing.assert_allclose(np.reshape(legend["colours"], (2, 3)), want, atol=1e-3)
    pixels = imread(tmp_path / "script.png")[..., :3].reshape(-1, 3)
    for colour in want:  # drawn: pixels close to each colour (tubes are shaded)
        assert (np.abs(pixels - colour).max(axis=1) < 0.12).sum() > 30, colour
    print("pvbatch:", report)


def test_readers_refuse_files_they_cannot_read_and_zmax_must_be_positive_under_log(tmp_path):
    from landscape.errors import ReadError

    bad = tmp_path / "bad.vts"
    bad.write_text("not vtk")
    with pytest.raises(ReadError, match="not a file vtk's vtkXMLStructuredGridReader can read"):
        vtk_io.read_vts(bad)
    with pytest.raises(ReadError, match="no such file"):
        vtk_io.read_vtp(tmp_path / "missing.vtp")
    with pytest.raises(InputError, match="`--zmax` \\(=0.0\\) must be > 0 with `--log`"):
        vtk_io.heights(np.ones(3), log=True, zmax=0.0)


def test_a_failed_vtk_write_is_one_line_and_vtk_prints_nothing(tmp_path, capfd):
    from landscape.errors import WriteError

    path, _ = _export(tmp_path, nx=4, ny=3)
    data = vtk_io.structured_grid(surface_h5.read(path))
    capfd.readouterr()
    with pytest.raises(WriteError) as info:
        vtk_io.write_vts(tmp_path / "missing" / "s.vts", data)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # VTK's coloured log is silenced ...
    # ... and the reason kept (the temporary, created before VTK writes, fails first).
    assert str(info.value) == (f"cannot write {tmp_path / 'missing' / 's.vts'}: No such file or "
                               "directory")


def fill(folder) -> None:
    """Write ``folder/filler`` until its disk is full."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:  # ENOSPC
            pass


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs (needs root and mount); skips where it cannot be made."""
    folder = tmp_path / "full"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is simulated with a tmpfs mount, which needs root")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)  # lazy: an open handle


@pytest.mark.parametrize("fmt", ["--vtk", "--html", "--li"])
def test_export_on_a_full_disk_is_one_line(tmp_path, full_disk, capfd, fmt):
    from click.testing import CliRunner

    from landscape.cli import main

    path, _ = _export(tmp_path, nx=60, ny=50)  # ~200 KB of VTK: more than the disk holds
    fill(full_disk)
    capfd.readouterr()
    result = CliRunner().invoke(main, ["export", str(path), fmt, "--out", str(full_disk)])
    assert capfd.readouterr() == ("", "")  # nothing from VTK on the real stderr
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write {full_disk}"), lines
    assert "No space left on device" in lines[0]
    assert os.listdir(full_disk) == ["filler"]  # no partial file left
