"""The files of a comparison of optimizers (:mod:`landscape.comparison`) once its paths and
surface exist: the paths in the surface file, ``summary.csv``/``summary.json``, the figure,
the VTK files with their ParaView script and the HTML page."""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from landscape import compare

SURFACE_H5 = "surface.h5"  # its lock, OUT/surface.h5.lock, guards every output of a compare
SUMMARY_CSV, SUMMARY_JSON, FIGURE = "summary.csv", "summary.json", "compare.png"


@dataclasses.dataclass(frozen=True)
class ComparisonResult:
    """What a comparison wrote (``files``: the run directories, then the surface file and the
    other outputs), its summary ``rows`` (:func:`landscape.compare.summarize`), the loss
    ``threshold`` they count steps to, and the summary as a text ``table``."""

    files: list[str]
    rows: list[dict[str, Any]]
    threshold: float
    table: str


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A comparison's paths and surface file, as both kinds (a function, a network) hand them
    to :func:`write_comparison`."""

    h5_path: str
    paths: list  # [landscape.compare.ComparedPath], in the order compared
    log: bool  # log scale for contours, 3D and VTK heights
    min_value: float | None  # the function's minimum (None on a network)
    minima: tuple = ()
    saddles: tuple = ()
    labels: tuple[str, str] = ("x", "y")
    title: str = ""
    info: dict = dataclasses.field(default_factory=dict)  # for summary.json
    run_dirs: list = dataclasses.field(default_factory=list)


def write_comparison(result: Comparison, out: str, *, threshold: float | None,
                     dpi: int) -> ComparisonResult:
    """The paths into the surface file (with the surface at each projected point), the
    summary files, the figure, the VTK files with their ParaView script and the HTML page
    (the caller holds OUT/surface.h5's lock); ``threshold`` None: the default
    (:func:`landscape.compare.default_threshold`)."""
    from landscape.io import surface_h5
    from landscape.grid import interpolate
    from landscape.io.atomic import save_figure
    from landscape.plot.compare import comparison_figure

    surface = surface_h5.read(result.h5_path)
    z = surface.values["train_loss"]
    paths = [dataclasses.replace(path, projected_loss=interpolate(surface.grid, z, path.x, path.y))
             for path in result.paths]
    surface_h5.write_trajectories(result.h5_path, {  # one rewrite of the file for all paths
        path.name: {"x": path.x, "y": path.y, "loss": path.loss, "step": path.step,
                    "residual": path.residual, "relative_residual": path.relative_residual,
                    "projected_loss": path.projected_loss} for path in paths})
    if threshold is None:
        threshold = compare.default_threshold(paths, result.min_value)
    rows = compare.summarize(paths, threshold)
    summary = {**result.info, "threshold": threshold, "summary": rows,
               "optimizers": {path.name: path.optimizer for path in paths}}
    written = [*result.run_dirs, result.h5_path, *_write_summary(rows, summary, out)]
    function = result.min_value is not None
    figure = comparison_figure(
        surface.grid, z, paths, function=function, log=result.log, threshold=threshold,
        minima=result.minima, saddles=result.saddles, labels=result.labels, title=result.title,
        residuals=None if function else {r["optimizer"]: r["relative_residual"] for r in rows})
    # A fixed temporary name is safe: the caller holds the output's lock.
    written.append(save_figure(figure, os.path.join(out, FIGURE), dpi=dpi, unique=False))
    written += _write_views(surface_h5.read(result.h5_path), out, [p.name for p in paths],
                            log=result.log and result.min_value is None, html_log=result.log,
                            title=result.title or "landscape compare")
    return ComparisonResult(written, rows, threshold, compare.format_summary(rows, threshold))


def _json_ready(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    return value


def _write_summary(rows: list[dict], summary: dict, out: str) -> list[str]:
    """summary.csv (one row per optimizer) and summary.json, each via a temporary name."""
    from landscape.io.atomic import write_csv, write_json

    csv_path, json_path = os.path.join(out, SUMMARY_CSV), os.path.join(out, SUMMARY_JSON)
    # Each whole or not at all (temporary name, rename); the CSV with csv's own "\r\n" rows.
    write_csv(csv_path, compare.SUMMARY_COLUMNS, rows, lineterminator="\r\n")
    write_json(json_path, _json_ready(summary), allow_nan=False)
    return [csv_path, json_path]


def _write_views(surface, out: str, names: list[str], *, log: bool, html_log: bool,
                 title: str) -> list[str]:
    """surface.vts, one surface_<optimizer>.vtp polyline each, surface.pvd opening them, the
    ParaView script that `export --vtk` writes (surface_paraview.py: a colour and a legend
    entry per optimizer) and the page of `export --html` (surface.html)."""
    from landscape.io import html
    from landscape.io import vtk as vtk_io

    parts = ["surface.vts"]
    grid_data = vtk_io.structured_grid(surface, "train_loss", log=log)
    vtk_io.write_vts(os.path.join(out, parts[0]), grid_data)
    for name in names:
        parts.append(f"surface_{name}.vtp")
        vtk_io.write_vtp(os.path.join(out, parts[-1]),
                         vtk_io.trajectory_polydata(surface, "train_loss", log=log, only=[name]))
    pvd = os.path.join(out, "surface.pvd")
    vtk_io.write_pvd(pvd, parts)
    script = os.path.join(out, "surface_paraview.py")
    vtk_io.write_paraview_script(script, surface, grid_data, vts=parts[0], vtps=parts[1:],
                                 metric="train_loss", log=log)
    page = os.path.join(out, "surface.html")
    # (the page may start on a log scale where the VTK heights may not: a function's minimum
    # 0 is only one gap there, its toggle shows the linear scale)
    html.write(page, surface, metric="train_loss", log=html_log, title=title)
    return [os.path.join(out, part) for part in parts] + [pvd, script, page]
