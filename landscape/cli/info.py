"""``landscape info FILE``: what a surface file holds, as a readable table."""

from __future__ import annotations

import click

from landscape.cli.options import library_errors, surface_file

EXAMPLES = """
\b
Examples:
  landscape info landscape-out/surface.h5
"""


@click.command(epilog=EXAMPLES)
@surface_file
@library_errors
def info(file):
    """Print what a surface file holds: grid, metrics (min/max/NaN count), completeness,
    provenance attributes, direction leaves, trajectories and Hessian density.

    Reads our files and Li et al.'s alike: theirs have no `done` mask, so the points computed
    are counted by their rule (a loss <= 0 is not computed: their -1 fill), and datasets outside
    the layout (their `dir_file`, naming the direction file) are listed, not refused.
    """
    from landscape.description import describe_file

    click.echo("\n".join(describe_file(file)))
