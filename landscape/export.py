"""A surface file in other tools' formats, one call: :func:`export_file`, what ``landscape
export`` writes — ParaView/VTK files (:mod:`landscape.io.vtk`), one self-contained HTML page
(:mod:`landscape.io.html`), Li et al.'s direction and projection files
(:mod:`landscape.io.li_files`)."""

from __future__ import annotations

import os
from collections.abc import Collection

from landscape.errors import InputError
from landscape.io.folders import make_output_folder

FORMATS = ("vtk", "html", "li")


def export_file(path: str | os.PathLike, formats: Collection[str],
                out: str | os.PathLike | None = None, *, metric: str = "train_loss",
                log: bool = False, zmax: float | None = None) -> list[str]:
    """Export the surface file at ``path`` into the folder ``out`` (default: the file's own;
    created if missing) in each of ``formats`` (of ``FORMATS``, written in that order); returns
    the paths written.

    - ``vtk``: ``<name>.vts`` (the surface, z = ``metric``, or its log10 with ``log``, clipped
      at ``zmax``; every metric as point data), ``<name>_trajectories.vtp`` (if the file has
      trajectories), ``<name>.pvd`` and ``<name>_paraview.py`` (:func:`landscape.io.vtk.export`);
    - ``html``: ``<name>.html``, every metric, ``metric`` shown first (on the log scale with
      ``log``);
    - ``li``: ``<name>_li_directions.h5`` and, on a plane, ``<name>_li_proj_<trajectory>.h5``.

    ``metric`` is checked before anything is written.
    """
    from landscape.io import surface_h5

    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise InputError(f"`formats` (={list(formats)}) must name one or more of "
                         f"{', '.join(FORMATS)}", param="formats")
    path = os.fspath(path)
    surface = surface_h5.read(path)
    if ({"vtk", "html"} & set(formats)) and metric not in surface.values:
        raise InputError(f"`metric` (={metric!r}) is not in the file; it holds "
                         f"{', '.join(sorted(surface.values)) or 'no metric'}", param="metric")
    folder = make_output_folder((os.path.dirname(path) or ".") if out is None else out)
    stem = os.path.splitext(os.path.basename(path))[0]
    written = []
    if "vtk" in formats:
        from landscape.io import vtk as vtk_io

        written += vtk_io.export(surface, folder, stem=stem, metric=metric, log=log, zmax=zmax)
    if "html" in formats:
        from landscape.io import html

        written.append(os.path.join(folder, f"{stem}.html"))
        html.write(written[-1], surface, metric=metric, log=log, title=os.path.basename(path))
    if "li" in formats:
        from landscape.io import li_files

        written += li_files.export(surface, folder, stem=stem)
    return written
