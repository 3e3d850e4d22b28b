"""Surfaces and trajectories as VTK XML files, for ParaView and every other VTK-based viewer.

Format spec: https://docs.vtk.org/en/latest/vtk_file_formats/vtkxml_file_format.html (XML formats:
``.vts`` StructuredGrid, ``.vtp`` PolyData, ``.pvd`` Collection). Written with the ``vtk`` package
in appended raw-binary encoding, zlib-compressed.

- ``<stem>.vts``: the surface as a StructuredGrid of nx × ny × 1 points, x index fastest (the
  point of ``Z[iy, ix]`` is number ``iy * nx + ix``), lifted to z = the metric (or ``log10`` of it,
  clipped at ``zmax``). Point data: every metric of the file (raw values, NaN kept), ``height``
  (the z coordinate), ``valid`` (1 where the exported metric is finite — and positive with
  ``log``) and ``done``. Invalid points are also *blanked* (vtkGhostType HIDDENPOINT) so viewers
  draw gaps there; their z is set to the lowest valid height so that bounds stay finite.
- ``<stem>_trajectories.vtp``: one polyline per trajectory of the file, lifted onto the surface.
  Point data: ``step``, ``loss`` (the true loss recorded in training), ``projected_loss`` (the
  file's loss surface bilinearly interpolated at the projected point), ``on_surface`` and any extra
  per-point arrays; cell data ``trajectory`` (index into the field data ``trajectory_names``).
- ``<stem>.pvd``: a Collection that opens both at once; ``<stem>_paraview.py``: a ParaView
  Python script (:mod:`landscape.io.paraview_script`) that shows them with a Viridis colour
  map, each trajectory as a tube in its own colour with a legend, and a z scale that makes the
  surface readable. VTK has no PVD writer, so the ``.pvd`` is built with
  :mod:`xml.etree.ElementTree`.
"""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
from vtkmodules.vtkCommonCore import (
    vtkLogger,
    vtkOutputWindow,
    vtkPoints,
    vtkStringArray,
    vtkStringOutputWindow,
)
from vtkmodules.vtkCommonMisc import vtkErrorCode
from vtkmodules.vtkCommonDataModel import vtkCellArray, vtkPolyData, vtkStructuredGrid
from vtkmodules.vtkIOXML import (
    vtkXMLPolyDataReader,
    vtkXMLPolyDataWriter,
    vtkXMLStructuredGridReader,
    vtkXMLStructuredGridWriter,
)

from landscape.errors import InputError, ReadError, WriteError
from landscape.grid import Grid, interpolate
from landscape.io.atomic import atomic_path
from landscape.io.paraview_script import TRAJECTORY_ARRAY, write_script
from landscape.io.surface_h5 import Surface

HEIGHT, VALID, DONE = "height", "valid", "done"
GHOST = "vtkGhostType"


def heights(values: np.ndarray, *, log: bool = False, zmax: float | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
    """``(z, valid)``: the values clipped at ``zmax`` (metric units) then ``log10``-ed if asked;
    ``valid`` is False where the value is NaN/inf (or ≤ 0 under ``log``), and z NaN there."""
    if log and zmax is not None and not zmax > 0:
        raise InputError(f"`--zmax` (={zmax}) must be > 0 with `--log`")
    values = np.asarray(values, np.float64)
    valid = np.isfinite(values)
    if log:
        valid &= values > 0
    z = np.where(valid, values, np.nan)
    if zmax is not None:
        z = np.minimum(z, zmax)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.log10(z)
    return z, valid


def _check_metric(surface: Surface, metric: str) -> None:
    if metric not in surface.values:
        raise InputError(f"`--metric` (={metric!r}) is not in the file; it holds "
                         f"{', '.join(sorted(surface.values)) or 'no metric'}")


def _grid_2d(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    return grid.x, (np.zeros(1) if grid.y is None else grid.y)


def _as_2d(values: np.ndarray, grid: Grid) -> np.ndarray:
    return np.asarray(values, np.float64).reshape(len(_grid_2d(grid)[1]), len(grid.x))


def structured_grid(surface: Surface, metric: str = "train_loss", *, log: bool = False,
                    zmax: float | None = None) -> vtkStructuredGrid:
    """The surface as a lifted :class:`vtkStructuredGrid` (see the module docstring)."""
    _check_metric(surface, metric)
    x, y = _grid_2d(surface.grid)
    z, valid = heights(_as_2d(surface.values[metric], surface.grid), log=log, zmax=zmax)
    floor = np.nanmin(z) if valid.any() else 0.0
    z = np.where(valid, z, floor)
    xx, yy = np.meshgrid(x, y)  # (ny, nx): ravel() runs x fastest, as VTK's i index
    points = vtkPoints()
    points.SetData(numpy_to_vtk(np.stack([xx.ravel(), yy.ravel(), z.ravel()], 1), deep=True))
    data = vtkStructuredGrid()
    data.SetDimensions(len(x), len(y), 1)
    data.SetPoints(points)
    point_data = data.GetPointData()
    for name, values in sorted(surface.values.items()):
        point_data.AddArray(_array(name, _as_2d(values, surface.grid).ravel()))
    point_data.AddArray(_array(HEIGHT, z.ravel()))
    point_data.AddArray(_array(VALID, valid.ravel().astype(np.uint8)))
    point_data.AddArray(_array(DONE, _as_2d(surface.done, surface.grid).ravel().astype(np.uint8)))
    point_data.SetActiveScalars(metric)
    for index in np.flatnonzero(~valid.ravel()):
        data.BlankPoint(int(index))
    _field_strings(data, {"metric": metric, "z": _z_label(metric, log, zmax)})
    return data


def _z_label(metric: str, log: bool, zmax: float | None) -> str:
    label = metric if zmax is None else f"min({metric}, {zmax:g})"
    return f"log10 {label}" if log else label


def loss_metric(surface: Surface, metric: str) -> str:
    """The surface a trajectory's true loss is compared with: ``train_loss`` if the file has it,
    else the exported metric."""
    return "train_loss" if "train_loss" in surface.values else metric


def trajectory_polydata(surface: Surface, metric: str = "train_loss", *, log: bool = False,
                        zmax: float | None = None, only: Sequence[str] | None = None
                        ) -> vtkPolyData:
    """The file's trajectories (``only`` these, if given) as polylines lifted onto the surface
    (see the module docstring). The cell value ``trajectory`` indexes every trajectory of the
    file in name order (field data ``trajectory_names``), so that files of single paths share
    one colour table.

    A point's height is the exported surface's, interpolated at the projected point; off the grid
    (``on_surface`` = 0) it is the true loss under the same transform, else the lowest height."""
    _check_metric(surface, metric)
    every = sorted(surface.trajectories)
    names = every if only is None else [name for name in every if name in set(only)]
    base = loss_metric(surface, metric)
    per_trajectory: list[dict[str, np.ndarray]] = []
    xyz, lines, ids = [], vtkCellArray(), []
    for name in names:
        entry = surface.trajectories[name]
        x = np.asarray(entry["x"], np.float64)
        y = np.asarray(entry["y"], np.float64) if "y" in entry else np.zeros_like(x)
        projected = interpolate(surface.grid, surface.values[metric], x, y)
        z, on_surface = heights(projected, log=log, zmax=zmax)
        z_true, _ = heights(np.asarray(entry["loss"], np.float64), log=log, zmax=zmax)
        z = np.where(on_surface, z, z_true)
        per_point = {
            "step": np.asarray(entry["step"], np.float64),
            "loss": np.asarray(entry["loss"], np.float64),
            "projected_loss": interpolate(surface.grid, surface.values[base], x, y),
            "on_surface": on_surface.astype(np.uint8),
        }
        if metric != base:
            per_point[f"projected_{metric}"] = projected
        for key, value in entry.items():
            if key not in ("x", "y", "loss", "step") and np.shape(value) == x.shape:
                per_point[key] = np.asarray(value, np.float64)
        per_trajectory.append(per_point)
        start = sum(len(p) for p in xyz)
        xyz.append(np.stack([x, y, z], axis=1))
        lines.InsertNextCell(len(x))
        for k in range(len(x)):
            lines.InsertCellPoint(start + k)
        ids.append(every.index(name))
    all_xyz = np.concatenate(xyz) if xyz else np.zeros((0, 3))
    finite = np.isfinite(all_xyz[:, 2])
    if not finite.all():
        all_xyz[~finite, 2] = np.nanmin(all_xyz[finite, 2]) if finite.any() else 0.0
    data = vtkPolyData()
    points = vtkPoints()
    points.SetData(numpy_to_vtk(all_xyz, deep=True))
    data.SetPoints(points)
    data.SetLines(lines)
    keys = dict.fromkeys(key for columns in per_trajectory for key in columns)
    for key in keys:  # an extra array missing from some trajectories is NaN there
        parts = [c.get(key, np.full(len(c["step"]), np.nan)) for c in per_trajectory]
        data.GetPointData().AddArray(_array(key, np.concatenate(parts)))
    data.GetCellData().AddArray(_array(TRAJECTORY_ARRAY, np.asarray(ids, np.int32)))
    names_array = vtkStringArray()
    names_array.SetName("trajectory_names")
    for name in every:
        names_array.InsertNextValue(name)
    data.GetFieldData().AddArray(names_array)
    return data


def _array(name: str, values: np.ndarray):
    array = numpy_to_vtk(np.ascontiguousarray(values), deep=True)
    array.SetName(name)
    return array


def _field_strings(data: Any, fields: dict[str, str]) -> None:
    for key, value in fields.items():
        array = vtkStringArray()
        array.SetName(key)
        array.InsertNextValue(value)
        data.GetFieldData().AddArray(array)


@contextlib.contextmanager
def _vtk_messages() -> Iterator[vtkStringOutputWindow]:
    """VTK's error messages collected, not printed: VTK logs each error as several coloured
    lines on stderr (its loguru logger) besides its output window; the caller makes one line
    of them."""
    previous = vtkOutputWindow.GetInstance()
    collected = vtkStringOutputWindow()
    vtkOutputWindow.SetInstance(collected)
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    try:
        yield collected
    finally:
        vtkOutputWindow.SetInstance(previous)
        vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_INFO)  # VTK's default


def _reason(writer: Any, messages: str) -> str:
    """Why a VTK writer failed: its error code (an errno below vtkErrorCode.UserError, e.g.
    ENOSPC on a full disk), else the first line of VTK's messages."""
    code = writer.GetErrorCode()
    if 0 < code < vtkErrorCode.UserError:
        return os.strerror(code)
    if code:
        return vtkErrorCode.GetStringFromErrorCode(code)
    lines = [line.split("): ", 1)[-1].strip() for line in messages.splitlines()
             if line.strip() and not line.startswith(("ERROR:", "Warning:", "  "))]
    return lines[0] if lines else "no reason given"


def _write(writer: Any, data: Any, path: str | os.PathLike) -> None:
    """Appended raw binary, zlib-compressed; written to a temporary name, then renamed."""
    path = os.fspath(path)
    writer.SetInputData(data)
    writer.SetDataModeToAppended()
    writer.EncodeAppendedDataOff()
    writer.SetCompressorTypeToZLib()
    with atomic_path(path) as tmp:
        writer.SetFileName(tmp)
        with _vtk_messages() as messages:
            ok = writer.Write()
        if not ok or writer.GetErrorCode():
            raise WriteError(f"cannot write {path}: {_reason(writer, messages.GetOutput())} "
                             f"(vtk {type(writer).__name__})")


def write_vts(path: str | os.PathLike, data: vtkStructuredGrid) -> None:
    _write(vtkXMLStructuredGridWriter(), data, path)


def write_vtp(path: str | os.PathLike, data: vtkPolyData) -> None:
    _write(vtkXMLPolyDataWriter(), data, path)


def write_pvd(path: str | os.PathLike, files: Sequence[str]) -> None:
    """A ParaView Collection of ``files`` (paths relative to the .pvd), one part each."""
    root = ElementTree.Element("VTKFile", type="Collection", version="0.1",
                               byte_order="LittleEndian")
    collection = ElementTree.SubElement(root, "Collection")
    for part, name in enumerate(files):
        ElementTree.SubElement(collection, "DataSet", timestep="0", group="", part=str(part),
                               file=name)
    ElementTree.indent(root)
    with atomic_path(path) as tmp:  # an OSError becomes a WriteError naming `path`
        ElementTree.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)


def export(surface: Surface, out_dir: str | os.PathLike, *, stem: str = "surface",
           metric: str = "train_loss", log: bool = False, zmax: float | None = None) -> list[str]:
    """Write ``<stem>.vts``, ``<stem>_trajectories.vtp`` (if the file has trajectories),
    ``<stem>.pvd`` and ``<stem>_paraview.py`` into ``out_dir``; returns their paths."""
    grid_data = structured_grid(surface, metric, log=log, zmax=zmax)
    out_dir = os.fspath(out_dir)
    vts = f"{stem}.vts"
    write_vts(os.path.join(out_dir, vts), grid_data)
    parts = [vts]
    if surface.trajectories:
        vtp = f"{stem}_trajectories.vtp"
        write_vtp(os.path.join(out_dir, vtp), trajectory_polydata(surface, metric, log=log, zmax=zmax))
        parts.append(vtp)
    pvd = os.path.join(out_dir, f"{stem}.pvd")
    write_pvd(pvd, parts)
    script = os.path.join(out_dir, f"{stem}_paraview.py")
    write_paraview_script(script, surface, grid_data, vts=vts, vtps=parts[1:], metric=metric,
                          log=log, zmax=zmax)
    return [os.path.join(out_dir, p) for p in parts] + [pvd, script]


def write_paraview_script(path: str | os.PathLike, surface: Surface, grid_data: vtkStructuredGrid,
                          *, vts: str, vtps: Sequence[str], metric: str, log: bool = False,
                          zmax: float | None = None) -> None:
    """The ParaView script (:mod:`landscape.io.paraview_script`) opening ``vts`` (made from
    ``grid_data``) and the trajectory files ``vtps``, all in the script's folder."""
    grid = surface.grid
    write_script(path, vts=vts, vtps=vtps, names=sorted(surface.trajectories),
                 colour_by=HEIGHT if log or zmax is not None else metric,
                 title=_z_label(metric, log, zmax),
                 heights=vtk_to_numpy(grid_data.GetPointData().GetArray(HEIGHT)),
                 span=max(np.ptp(grid.x), 0.0 if grid.y is None else np.ptp(grid.y)))


def _read(reader: Any, path: str | os.PathLike) -> Any:
    if not os.path.isfile(path):
        raise ReadError(f"{path}: no such file")
    if not reader.CanReadFile(os.fspath(path)):  # also keeps vtk from printing its own errors
        raise ReadError(f"{path}: not a file vtk's {type(reader).__name__} can read")
    reader.SetFileName(os.fspath(path))
    reader.Update()
    return reader.GetOutput()


def _arrays(attributes: Any) -> dict[str, np.ndarray]:
    return {attributes.GetArrayName(i): vtk_to_numpy(attributes.GetArray(i))
            for i in range(attributes.GetNumberOfArrays()) if attributes.GetArray(i) is not None}


def _strings(field_data: Any) -> dict[str, list[str]]:
    out = {}
    for i in range(field_data.GetNumberOfArrays()):
        array = field_data.GetAbstractArray(i)
        if isinstance(array, vtkStringArray):
            out[array.GetName()] = [array.GetValue(k) for k in range(array.GetNumberOfValues())]
    return out


def read_vts(path: str | os.PathLike) -> dict[str, Any]:
    """A ``.vts`` as numpy: ``dimensions`` (nx, ny, nz), ``points`` (n, 3), ``point_data``,
    ``fields`` (string field data) and ``blanked`` (bool (n,), hidden points)."""
    data = _read(vtkXMLStructuredGridReader(), path)
    n = data.GetNumberOfPoints()
    point_data = _arrays(data.GetPointData())
    ghost = point_data.pop(GHOST, np.zeros(n, np.uint8))
    extent = data.GetExtent()
    return {
        "dimensions": tuple(extent[2 * k + 1] - extent[2 * k] + 1 for k in range(3)),
        "points": vtk_to_numpy(data.GetPoints().GetData()) if n else np.zeros((0, 3)),
        "point_data": point_data,
        "fields": _strings(data.GetFieldData()),
        "blanked": (ghost & 2).astype(bool),  # vtkDataSetAttributes::HIDDENPOINT
    }


def read_vtp(path: str | os.PathLike) -> dict[str, Any]:
    """A ``.vtp`` as numpy: ``points`` (n, 3), ``lines`` (list of point-index arrays),
    ``point_data``, ``cell_data`` and ``fields`` (string field data)."""
    data = _read(vtkXMLPolyDataReader(), path)
    lines, cells = [], data.GetLines()
    offsets = vtk_to_numpy(cells.GetOffsetsArray())
    connectivity = vtk_to_numpy(cells.GetConnectivityArray())
    for a, b in zip(offsets[:-1], offsets[1:]):
        lines.append(connectivity[a:b])
    n = data.GetNumberOfPoints()
    return {
        "points": vtk_to_numpy(data.GetPoints().GetData()) if n else np.zeros((0, 3)),
        "lines": lines,
        "point_data": _arrays(data.GetPointData()),
        "cell_data": _arrays(data.GetCellData()),
        "fields": _strings(data.GetFieldData()),
    }


def read_pvd(path: str | os.PathLike) -> list[str]:
    """The data files a ``.pvd`` collection lists, as paths relative to the ``.pvd``'s folder."""
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as exc:
        raise ReadError(f"cannot read collection {path}: {exc}") from exc
    if root.get("type") != "Collection":
        raise ReadError(f"{path}: VTKFile type is {root.get('type')!r}, expected 'Collection'")
    return [node.get("file") for node in root.iter("DataSet")]
