"""``landscape check FILE``: whether a surface file's picture can be trusted, line by line."""

from __future__ import annotations

import click

from landscape.cli.options import library_errors, surface_file

EXAMPLES = """
\b
Examples:
  landscape check landscape-out/surface.h5
  landscape check li-et-al/resnet56_surface.h5      # Li et al.'s files: says what it cannot check
"""


@click.command(epilog=EXAMPLES)
@surface_file
@library_errors
def check(file):
    """Say whether a surface file's picture can be trusted: one line per check, OK or a warning
    that says what to change (the same lines end every `landscape scan`).

    \b
    points  every point done (or how many are missing)
    centre  the loss at (0, 0) equals the model's own loss (else BatchNorm in training mode,
            a wrong state or dropout changed what was evaluated)
    scale   each layer's |direction| / |weights| is 1 as the recorded normalization makes it
            (un-normalized random directions move layers by very different amounts)
    finite  how many points are NaN/inf
    basin   the region below twice the minimum spans at least 5 grid points per axis and stays
            inside the grid (else: the zoom that resolves it)
    path    how much of each trajectory's distance from the centre the plane holds (a path
            mostly off the plane is a shadow)

    What a file cannot say (Li et al.'s carry no provenance or directions) is reported as
    `unknown`. Exit status 0 whatever the findings.
    """
    from landscape.check import check_surface
    from landscape.io import surface_h5

    for finding in check_surface(surface_h5.read(file)):
        click.echo(finding.line())
