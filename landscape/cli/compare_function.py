"""``landscape compare`` on a classic 2D test function: every optimizer runs from one start
point, the function's two parameters are the plane, and its surface is the function itself on
its box (evaluated in float64 on the host, no projection needed)."""

from __future__ import annotations

import os

import numpy as np

from landscape.cli.compare_outputs import SURFACE_H5, Comparison, comparison_grid
from landscape.cli.options import progress

FUNCTION_GRID = 201  # points per axis by default


def compare_function(*, name, start, names, rates, steps, num, x_spec, y_spec, overwrite, out,
                     quiet) -> Comparison:
    """Run optimizers ``names`` on test function ``name`` and write ``OUT/surface.h5`` (the
    caller holds its lock)."""
    from landscape import __version__, compare
    from landscape.data.functions import get_function
    from landscape.io import surface_h5
    from landscape.io.surface_record import SurfaceRecord

    from landscape.errors import InputError

    function = get_function(name)
    start = start or function.start or (0.0, 0.0)
    try:  # before anything runs or is written
        compare.check_start(function.fn, start)
    except InputError as exc:
        raise InputError(f"`--start` (={start[0]:g},{start[1]:g}): {exc}") from None
    paths = []
    with progress(len(names), "optimizers", quiet=quiet, unit="opt") as bar:
        for optimizer in names:
            count = steps or compare.function_setting(optimizer).steps
            transformation, description = compare.function_optimizer(
                optimizer, steps=count, learning_rate=rates.get(optimizer, rates.get("*")))
            points = compare.run_on_function(function.fn, transformation, start, steps=count)
            loss = compare.function_values(function.fn, points)
            paths.append(compare.function_path(optimizer, description, points, loss))
            bar.update(1)
    grid = comparison_grid(
        compare.function_grid(function.box, num or FUNCTION_GRID, include=[start]), x_spec, y_spec)
    spec = {"function": function.name, "start": list(start), "steps": steps,
            "optimizers": [path.optimizer for path in paths],
            "x": [float(grid.x[0]), float(grid.x[-1]), len(grid.x)],
            "y": [float(grid.y[0]), float(grid.y[-1]), len(grid.y)]}
    record = SurfaceRecord(workload=f"function:{name}", direction_kind="parameters",
                           normalization="none", ignore="none", spec=spec,
                           tool_version=__version__,
                           extra={"function": function.name, "formula": function.formula})
    h5_path = os.path.join(out, SURFACE_H5)
    surface_h5.create(h5_path, grid, ["train_loss"], compare.function_plane(), record.to_attrs(),
                      overwrite=overwrite)
    values = function.on_grid(grid.x, grid.y)
    surface_h5.write_points(h5_path, np.arange(grid.num_points), {"train_loss": values.ravel()})
    return Comparison(
        h5_path, paths, log=function.min_value >= 0, min_value=function.min_value,
        minima=function.minima, saddles=function.saddles,
        title=f"{function.name}: f(x, y) = {function.formula}, from ({start[0]:g}, {start[1]:g})",
        info={"function": function.name, "formula": function.formula, "start": list(start),
              "minima": [list(m) for m in function.minima], "min_value": function.min_value})
