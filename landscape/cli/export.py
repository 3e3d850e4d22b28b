"""``landscape export FILE --vtk``: a surface file as ParaView/VTK files."""

from __future__ import annotations

import os

import click

from landscape.cli.info import surface_file
from landscape.cli.options import (
    FiniteFloat,
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
)

EXAMPLES = """
\b
Examples:
  landscape export landscape-out/surface.h5 --vtk
  landscape export runs/sine/surface.h5 --vtk --log --zmax 100 --out runs/sine/vtk
\b
Then:  paraview --script=landscape-out/surface_paraview.py
   or  paraview landscape-out/surface.pvd
"""


@click.command(epilog=EXAMPLES)
@surface_file
@click.option("--vtk", "as_vtk", is_flag=True,
              help="Write VTK XML files: .vts surface, .vtp trajectories, .pvd collection and a "
                   "ParaView script.")
@click.option("--metric", default="train_loss", show_default=True,
              help="The dataset lifted to the surface's height (every metric is stored anyway).")
@click.option("--log", is_flag=True, help="Height = log10 of the metric (values <= 0 are gaps).")
@click.option("--zmax", type=FiniteFloat(), default=None,
              help="Clip the metric at this value (in the metric's units) before --log.")
@out_option
@library_errors
def export(file, as_vtk, metric, log, zmax, out):
    """Export a surface file for ParaView and other VTK-based viewers.

    Writes OUT/<name>.vts (the surface, z = metric, every metric as point data, a `valid` mask
    and blanked gaps where values are NaN/inf), OUT/<name>_trajectories.vtp (if the file has
    trajectories), OUT/<name>.pvd (opens both) and OUT/<name>_paraview.py (opens both with a
    colour map and a readable z scale).
    """
    from landscape.io import surface_h5
    from landscape.io import vtk as vtk_io

    if not as_vtk:
        raise click.UsageError("choose an export format: --vtk (the only one so far)")
    surface = surface_h5.read(file)
    stem = os.path.splitext(os.path.basename(file))[0]
    echo_outputs(vtk_io.export(surface, make_out_dir(out), stem=stem, metric=metric, log=log,
                               zmax=zmax))
