"""``eigen_map``: λmax and λmin of a model's curvature matrix over a grid on a plane (Li et
al. 2018, Fig. 7), into ``OUT/eigen_map.h5`` (a surface file, resumed point by point) and
``OUT/eigen_map.png``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from landscape.grid import Grid
from landscape.probes.session import OnProgress, Reporter, Written
from landscape.sources import ModelSource

MAP_FILES = ("eigen_map.h5", "eigen_map.png")
MAP_DIRECTIONS = ("filter", "layer", "random", "hessian")


def eigen_map(
    model: ModelSource,
    out: str | os.PathLike,
    *,
    grid: Grid,
    kind: str = "filter",
    ignore: str = "biasbn",
    map_steps: int = 20,
    chunk: int | None = None,
    operator: str = "hessian",
    tol: float = 1e-3,
    max_iter: int = 100,
    precision: str | None = None,
    overwrite: bool = False,
    seed: int = 0,
    problem: Any = None,
    on_progress: OnProgress | None = None,
    on_warning: Any = None,
) -> Written:
    """λmax and λmin of ``model``'s ``operator`` matrix (``"hessian"``, ``"ggn"``,
    ``"fisher"``) at every point of ``grid`` on a plane through it: ``out/eigen_map.h5``
    (datasets ``max_eig``, ``min_eig``) and its figure ``out/eigen_map.png``.

    The plane (``kind``): ``"filter"``/``"layer"``-normalized or plain ``"random"``
    directions (zeroed for 1-D parameters with ``ignore="biasbn"``; from ``seed``), or the
    top-2 eigenvectors (``"hessian"``, to ``min(tol, 1e-4)`` in at most ``max_iter`` Lanczos
    steps). Each point runs ``map_steps`` Lanczos steps (fixed, so that points vmap; at most the
    number of parameters, said by a note), ``chunk`` points per compiled call.

    An existing ``eigen_map.h5`` made with the same arguments from the same model is resumed:
    only its unfinished points are computed (a killed map loses at most a chunk). One made
    otherwise is refused (:class:`~landscape.errors.ResumeMismatch`) unless ``overwrite``.
    ``precision``: of every product (default: the one the file recorded, else ``highest``).
    ``problem``: ``model``'s :class:`~landscape.curvature.HessianProblem` when the caller has
    one. ``on_progress("eigen map", done, total)``; ``on_warning`` as
    :class:`~landscape.probes.session.Reporter` takes it.

    Returns:
      :class:`~landscape.probes.Written`: ``report`` (the file, directions, Lanczos steps,
      grid shape, operator: what hessian.json's ``map`` holds) and the two ``files``.
    """
    from landscape.curvature import EIGEN_MAP_NAMES, evaluate_eigen_map, hessian_plane
    from landscape.curvature import hessian_problem
    from landscape.directions import layout_spec, random_plane
    from landscape.errors import InputError
    from landscape.fingerprint import of_surface
    from landscape.io import surface_h5
    from landscape.io.surface_record import SurfaceRecord
    from landscape.io.surface_writer import SurfaceWriter
    from landscape.precision import computing_in
    from landscape.scan import resumed_precision

    if kind not in MAP_DIRECTIONS:
        raise InputError(f"`kind` (={kind!r}) must be one of {', '.join(MAP_DIRECTIONS)}",
                         param="kind")
    said = Reporter(on_progress, None, on_warning)
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    h5_path, png_path = (os.path.join(out, name) for name in MAP_FILES)
    precision = resumed_precision(h5_path, precision, overwrite=overwrite)
    with computing_in(precision):
        if problem is None:
            problem = hessian_problem(model.workload, model.params, model.state,
                                      operator=operator)
        if map_steps > problem.num_params:
            said.warning(f"note: `map_steps` {map_steps} is more than the {problem.num_params} "
                         f"parameters: using {problem.num_params} Lanczos steps per point "
                         "(exact)")
            map_steps = problem.num_params
        if kind == "hessian":
            plane = hessian_plane(model.workload, model.params, model.state, dims=grid.ndim,
                                  tol=min(tol, 1e-4), max_iter=max_iter, seed=seed,
                                  problem=problem)
        else:
            plane = random_plane(model.params, seed=seed,
                                 normalization={"random": "none"}.get(kind, kind),
                                 ignore=ignore, dims=grid.ndim,
                                 output_axis=model.workload.output_axis)
        spec = {
            **model.description, "directions": kind, "ignore": ignore, "map_steps": map_steps,
            "precision": precision,
            # another matrix is another map (not resumed); the Hessian's spec as it always
            # was, so that maps made before the operators existed still resume
            **({} if operator == "hessian" else {"operator": operator}),
            "x": [float(grid.x[0]), float(grid.x[-1]), len(grid.x)],
            "y": None if grid.y is None else [float(grid.y[0]), float(grid.y[-1]),
                                              len(grid.y)],
            **layout_spec(plane.output_axis),
        }
        record = SurfaceRecord.of_plane(plane, workload=model.workload.name, spec=spec,
                                        lanczos_steps=map_steps,
                                        train_loss_at_origin=model.train_loss,
                                        precision=precision)
        # the seed of the map's start vector too; the matrix as a root attribute of its own
        record = dataclasses.replace(
            record, seed=seed, fingerprints=of_surface(model.params, model.state, plane,
                                                       {"train": model.workload.train}),
            extra={**(record.extra or {}), "operator": operator})
        with SurfaceWriter(h5_path, what="eigen map") as writer:
            _, done = writer.open(grid, list(EIGEN_MAP_NAMES), plane, record,
                                  overwrite=overwrite)
            count = said.counter("eigen map", grid.num_points, int(done.sum()))

            def flush(index, values):
                writer.write_points(index, values)
                count(len(index))

            evaluate_eigen_map(model.workload, model.state, plane, grid, num_steps=map_steps,
                               seed=seed, chunk=chunk, done=done, on_chunk=flush,
                               operator=operator)
            writer.finish()  # the journal of finished chunks folded into the file
    _figure(surface_h5.read(h5_path), png_path, model=model, plane=plane, operator=operator)
    report = {"file": h5_path, "directions": kind, "lanczos_steps": map_steps,
              "shape": list(grid.shape), "operator": operator}
    return Written(report, [h5_path, png_path])


def _figure(surface, path: str, *, model: ModelSource, plane, operator: str) -> None:
    from landscape.curvature.products import OPERATOR_NAMES
    from landscape.io.atomic import save_figure
    from landscape.plot import hessian_figure

    figure = hessian_figure(surface.grid, surface.values["max_eig"], surface.values["min_eig"],
                            attrs=surface.attrs,
                            title=f"{model.workload.name}: {OPERATOR_NAMES[operator]} "
                                  f"eigenvalues, {plane.kind} plane")
    save_figure(figure, path)
