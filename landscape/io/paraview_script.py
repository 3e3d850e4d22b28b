"""The ParaView Python script written beside a VTK export (``paraview --script=...``, or
``pvbatch ... --screenshot out.png`` without a screen): the surface with a Viridis colour map
and a z scale that makes it readable, and every trajectory in its own colour — the colours of
``landscape plot`` (:mod:`landscape.io.palette`) — with a legend naming them: the polylines are
coloured by their cell array ``trajectory`` (an index into the names) through one categorical
lookup table, whose scalar bar is the legend. The paraview.simple API is documented at
https://docs.paraview.org/en/latest/UsersGuide/introduction.html.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from landscape.io.atomic import write_text
from landscape.io.palette import trajectory_rgb

TRAJECTORY_ARRAY = "trajectory"  # cell data of the .vtp files: index into the names

SCRIPT = '''\
"""Open a landscape surface in ParaView:  paraview --script={script}
or render it without a screen:  xvfb-run -a pvbatch {script} --screenshot surface.png"""
import os
import sys

from paraview.simple import *  # noqa: F401,F403

HERE = os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else {folder!r}
COLOUR_BY, TITLE, Z_SCALE = {colour_by!r}, {title!r}, {z_scale!r}
TRAJECTORIES = {names!r}  # cell value k of array {array!r} is TRAJECTORIES[k]
COLOURS = {colours!r}  # one RGB per trajectory, as `landscape plot` draws them

view = GetActiveViewOrCreate("RenderView")
surface = XMLStructuredGridReader(registrationName={vts!r}, FileName=[os.path.join(HERE, {vts!r})])
shown = Show(surface, view)
shown.Scale = [1.0, 1.0, Z_SCALE]
ColorBy(shown, ("POINTS", COLOUR_BY))
lut = GetColorTransferFunction(COLOUR_BY)
lut.ApplyPreset("Viridis (matplotlib)", True)
shown.SetScalarBarVisibility(view, True)
GetScalarBar(lut, view).Title = TITLE
if TRAJECTORIES:
    paths_lut = GetColorTransferFunction({array!r})
    paths_lut.InterpretValuesAsCategories = 1
    paths_lut.AnnotationsInitialized = 1
    paths_lut.Annotations = [text for k, name in enumerate(TRAJECTORIES) for text in (str(k), name)]
    paths_lut.IndexedColors = [c for colour in COLOURS for c in colour]
for name in {vtps!r}:
    path = XMLPolyDataReader(registrationName=name, FileName=[os.path.join(HERE, name)])
    line = Show(path, view)
    line.Scale = [1.0, 1.0, Z_SCALE]
    ColorBy(line, ("CELLS", {array!r}))
    line.LookupTable = paths_lut
    line.LineWidth = 4.0
    line.RenderLinesAsTubes = 1
    line.SetScalarBarVisibility(view, True)
if TRAJECTORIES:
    legend = GetScalarBar(paths_lut, view)
    legend.Title = "trajectories"
    legend.ComponentTitle = ""
    for where in ("Upper Left Corner", "UpperLeftCorner"):  # the name differs by version
        try:
            legend.WindowLocation = where
            break
        except Exception:  # noqa: BLE001 - ParaView raises ValueError or its own error
            pass
(x0, x1, y0, y1, z0, z1) = surface.GetDataInformation().GetBounds()
centre = [(x0 + x1) / 2, (y0 + y1) / 2, Z_SCALE * (z0 + z1) / 2]
reach = 1.8 * max(x1 - x0, y1 - y0, Z_SCALE * (z1 - z0))
view.CameraFocalPoint = centre
view.CameraPosition = [centre[0] + 0.6 * reach, centre[1] - reach, centre[2] + 0.8 * reach]
view.CameraViewUp = [0.0, 0.0, 1.0]
view.ResetCamera()
Render(view)
if "--screenshot" in sys.argv:
    SaveScreenshot(sys.argv[sys.argv.index("--screenshot") + 1], view, ImageResolution=[1200, 900])
'''


def write_script(path: str | os.PathLike, *, vts: str, vtps: Sequence[str],
                 names: Sequence[str], colour_by: str, title: str, heights: np.ndarray,
                 span: float) -> None:
    """Write the script to ``path``: it opens ``vts`` and ``vtps`` (names relative to the
    script's folder), colours the surface by ``colour_by`` under ``title`` and the ``vtps`` by
    trajectory; ``names`` are every trajectory of the file in name order (the cell values'
    meaning); the z scale makes the range of ``heights`` 0.6 of the larger ``span`` of x, y."""
    z_range = float(np.ptp(heights)) if np.size(heights) else 0.0
    # The file name goes into the script's docstring: escaped, so that no name (one holding
    # quotes or newlines) can end the string and put code into a script the user will run.
    script_doc = repr(os.path.basename(os.fspath(path)))[1:-1].replace('"', '\\"')
    text = SCRIPT.format(
        script=script_doc, folder=os.path.abspath(os.path.dirname(os.fspath(path))), vts=vts,
        vtps=list(vtps), names=list(names), array=TRAJECTORY_ARRAY,
        colours=[[round(c, 4) for c in trajectory_rgb(k)] for k in range(len(names))],
        colour_by=colour_by, title=title,
        z_scale=float(0.6 * span / z_range) if z_range > 0 else 1.0)
    write_text(path, text)
