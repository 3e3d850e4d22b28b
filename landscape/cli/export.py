"""``landscape export FILE``: a surface file as ParaView/VTK files, one interactive HTML page,
or Li et al.'s direction and projection files."""

from __future__ import annotations

import click

from landscape.cli.options import FiniteFloat, echo_outputs, library_errors, surface_file

EXAMPLES = """
\b
Examples:
  landscape export landscape-out/surface.h5 --vtk      # writes beside the file
  landscape export landscape-out/surface.h5 --html     # one page, opens offline
  landscape export runs/sine/surface.h5 --vtk --log --zmax 100 --out runs/sine/vtk
  landscape export pca/surface.h5 --li                 # for Li et al.'s plot_2D.py
\b
Then:  paraview --script=landscape-out/surface_paraview.py
   or  paraview landscape-out/surface.pvd
   or  open landscape-out/surface.html in a browser
   or  python plot_2D.py --surf_file pca/surface.h5 --dir_file pca/surface_li_directions.h5 \\
           --proj_file pca/surface_li_proj_adam.h5          (Li et al.'s loss-landscape)
"""


@click.command(epilog=EXAMPLES)
@surface_file
@click.option("--vtk", "as_vtk", is_flag=True,
              help="VTK XML files: .vts surface, .vtp trajectories, .pvd collection and a "
                   "ParaView script (each trajectory in its own colour, with a legend).")
@click.option("--html", "as_html", is_flag=True,
              help="One self-contained HTML page (no network needed): 3D surface and contours "
                   "of every metric, a trace per trajectory, hover values, a log-scale toggle.")
@click.option("--li", "as_li", is_flag=True,
              help="Li et al.'s direction file (xdirection/ydirection) and one projection file "
                   "(proj_xcoord/proj_ycoord) per trajectory, for their plot_2D.py.")
@click.option("--metric", default="train_loss", show_default=True,
              help="The dataset lifted to the surface's height (VTK) or shown first (HTML); "
                   "every metric is exported anyway.")
@click.option("--log", is_flag=True,
              help="Height = log10 of the metric (values <= 0 are gaps); HTML: start on the "
                   "log scale.")
@click.option("--zmax", type=FiniteFloat(), default=None,
              help="VTK: clip the metric at this value (in the metric's units) before --log.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Folder for the outputs (created if missing)  [default: FILE's folder].")
@library_errors
def export(file, as_vtk, as_html, as_li, metric, log, zmax, out):
    """Export a surface file for ParaView and other VTK-based viewers (--vtk), for a web
    browser (--html) or for Li et al.'s loss-landscape scripts (--li); any combination.

    --vtk writes OUT/<name>.vts (the surface, z = metric, every metric as point data, a `valid`
    mask and blanked gaps where values are NaN/inf), OUT/<name>_trajectories.vtp (if the file
    has trajectories), OUT/<name>.pvd (opens both) and OUT/<name>_paraview.py (opens both with a
    colour map, a readable z scale and one colour per trajectory with a legend).
    --html writes OUT/<name>.html. --li writes OUT/<name>_li_directions.h5 and, on a plane,
    OUT/<name>_li_proj_<trajectory>.h5 (directions in our leaf order and Flax layout: see the
    README). OUT is FILE's folder unless --out is given.
    """
    from landscape.export import export_file

    formats = [name for name, chosen in zip(("vtk", "html", "li"), (as_vtk, as_html, as_li))
               if chosen]
    if not formats:
        raise click.UsageError("choose an export format: --vtk, --html and/or --li")
    echo_outputs(export_file(file, formats, out, metric=metric, log=log, zmax=zmax))
