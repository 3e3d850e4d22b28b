"""``probe``: one model's curvature matrix probed — Lanczos eigenvalues, and on request the
trace, the diagonal, the spectral density, an eigen map, mini-batch spectra and parameter
blocks — into ``OUT/hessian.json`` and the files beside it (what ``landscape hessian`` does)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from landscape.curvature.minibatch import MINIBATCH_SIZE
from landscape.errors import InputError
from landscape.probes.session import Fitted, OnProgress, Reporter, Written
from landscape.sources import ModelSource

DENSITY_BATCH_HVPS = 2000  # most HVPs per compiled batch of density probes (progress, memory)


def check_probe(workload: Any, *, operator: str = "hessian", blocks: Sequence[str] = (),
                trace: bool = False, trace_method: str = "hutchinson", samples: int = 100,
                minibatch_spectra: int | None = None, minibatch_size: int = MINIBATCH_SIZE,
                params: Any = None) -> list:
    """Refuse what :func:`probe` would refuse of these settings on ``workload`` before it
    computes anything (so, before a model is trained for it): a Hutch++ ``trace`` from fewer
    than 4 ``samples``, an ``operator`` the workload cannot give (a GGN without
    ``output_loss``), ``blocks`` patterns that match no parameter (of ``params``, else of the
    workload's initial ones), more ``minibatch_spectra`` whole batches of ``minibatch_size``
    than its training set holds. Returns the parameter blocks
    (:class:`~landscape.curvature.ParameterBlock`)."""
    from landscape.batches import Dataset
    from landscape.curvature import parameter_blocks
    from landscape.curvature.products import workload_curvature
    from landscape.workload import init_shapes

    if trace and trace_method == "hutch++" and samples < 4:
        raise InputError(f"`samples` (={samples}) must be >= 4 for `trace_method` hutch++ (a "
                         "third each for the sketch and its trace, two residual probes at "
                         "least)", param="samples")
    workload_curvature(workload, operator)
    found = parameter_blocks(init_shapes(workload)[0] if params is None else params,
                             blocks) if blocks else []
    data = workload.dataset("train") if minibatch_spectra else None
    if isinstance(data, Dataset) and minibatch_spectra * minibatch_size > len(data):
        raise InputError(
            f"`minibatch_spectra` (={minibatch_spectra}) whole batches of `minibatch_size` "
            f"(={minibatch_size}) need {minibatch_spectra * minibatch_size} samples; the "
            f"training set of `{workload.name}` holds {len(data)} "
            f"({len(data) // minibatch_size} batches)", param=("minibatch_spectra",
                                                               "minibatch_size"))
    return found


def probe(
    model: ModelSource,
    out: str | os.PathLike,
    *,
    operator: str = "hessian",
    top_k: int = 1,
    bottom_k: int = 0,
    tol: float = 1e-3,
    atol: float = 0.0,
    stop: str = "residual",
    max_iter: int = 100,
    trace: bool = False,
    trace_method: str = "hutchinson",
    samples: int = 100,
    diagonal: bool = False,
    density: bool = False,
    probes: int = 10,
    lanczos_steps: int = 80,
    deflate: bool = True,
    minibatch_spectra: int | None = None,
    minibatch_size: int = MINIBATCH_SIZE,
    blocks: Sequence[str] = (),
    map_options: Mapping[str, Any] | None = None,
    precision: str | None = None,
    seed: int = 0,
    timings: Mapping[str, float] | None = None,
    on_progress: OnProgress | None = None,
    on_message: Any = None,
    on_warning: Any = None,
) -> Written:
    """Probe the ``operator`` matrix (``"hessian"``, ``"ggn"``, ``"fisher"``) of ``model``'s
    full-training-set mean loss; write ``out/hessian.json`` (values, settings, precision,
    timings) and the files asked for, in the folder ``out`` (created if missing).

    Lanczos (full reorthogonalization) gives the ``top_k`` largest and ``bottom_k`` smallest
    eigenvalues, each to ``max(tol·|θ|, atol)`` (``stop="residual"``) or by PyHessian's rule
    (``"relative-change"``), in at most ``max_iter`` steps. Then, on request:

    - ``trace``: the trace ± its standard error, ``trace_method`` ``"hutchinson"`` or
      ``"hutch++"`` from ``samples`` products;
    - ``diagonal``: Hutchinson's diagonal from ``samples`` probes, per layer, every entry in
      ``diagonal.h5``;
    - ``density``: the spectral density (``probes`` SLQ probes of ``lanczos_steps`` steps,
      the converged top eigenpairs deflated if ``deflate``): ``density.png``;
    - ``map_options``: keyword arguments of :func:`~landscape.probes.eigen_map` (``grid``,
      ``kind``, ``ignore``, ``map_steps``, ``chunk``, ``overwrite``; the matrix, precision,
      seed and tolerances are this call's): the eigen map too, ``eigen_map.h5`` and
      ``eigen_map.png``, resumed where a killed one stopped;
    - ``minibatch_spectra``: the top-k eigenvalues of that many mini-batch Hessians of
      ``minibatch_size`` samples: ``minibatch_spectra.csv``, ``minibatch_spectra.png``;
    - ``blocks``: ``"layer"`` or leaf-path glob patterns: each block's λmax, λmin, trace
      (and density with ``density``): ``blocks.csv`` (``block_density.png``).

    Every product runs at ``precision`` (default ``highest``; with ``map_options``, the one an
    existing eigen map recorded). ``timings``: seconds already spent (``{"train_s": ...}``),
    recorded first. Callbacks as :class:`~landscape.probes.session.Reporter` takes them; out
    of device memory, a computation is rerun over batches of half the size (a warning).

    Returns:
      :class:`~landscape.probes.Written`: ``report``, equal to the hessian.json written, and
      the ``files`` written (hessian.json first).
    """
    from landscape.curvature import hessian_eigenpairs, hessian_problem
    from landscape.io.atomic import write_json
    from landscape.precision import DEFAULT as DEFAULT_PRECISION
    from landscape.precision import check_precision, computing_in
    from landscape.probes import sections
    from landscape.probes.maps import MAP_FILES, eigen_map
    from landscape.scan import resumed_precision

    said = Reporter(on_progress, on_message, on_warning)
    found = check_probe(model.workload, operator=operator, blocks=blocks, trace=trace,
                        trace_method=trace_method, samples=samples,
                        minibatch_spectra=minibatch_spectra, minibatch_size=minibatch_size,
                        params=model.params)
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    if map_options is not None:  # a resumed eigen map keeps the precision it recorded
        precision = resumed_precision(os.path.join(out, MAP_FILES[0]), precision,
                                      overwrite=bool(map_options.get("overwrite")))
    precision = check_precision(precision or DEFAULT_PRECISION)
    timings = dict(timings or {})
    with computing_in(precision):
        problem = hessian_problem(model.workload, model.params, model.state, operator=operator)
        _check_counts(problem.num_params, top_k=top_k, bottom_k=bottom_k, max_iter=max_iter)
        report = {
            "tool": "landscape", "model": model.description, "num_params": problem.num_params,
            "train_loss": model.train_loss, "precision": precision, "operator": operator,
            "settings": {"top_k": top_k, "bottom_k": bottom_k, "tol": tol, "atol": atol,
                         "stop": stop, "max_iter": max_iter, "seed": seed, "split": "train"},
        }
        started = time.perf_counter()
        fitted = Fitted(problem, said)
        pairs = fitted(lambda p: hessian_eigenpairs(
            p, top_k=top_k, bottom_k=bottom_k, tol=tol, atol=atol, stop=stop,
            max_iter=max_iter, seed=seed, return_vectors=density and deflate))
        timings["eigenvalues_s"] = time.perf_counter() - started
        report["eigenvalues"] = {
            end: {"values": p.values.tolist(), "residuals": p.residuals.tolist(),
                  "converged": p.converged.tolist()}
            for end, p in (("top", pairs.top), ("bottom", pairs.bottom)) if len(p.values)
        }
        report["eigenvalues"]["lanczos_steps"] = pairs.iterations
        _say_eigenvalues(said, pairs, operator=operator, tol=tol, stop=stop)
        files = [os.path.join(out, "hessian.json")]
        if trace:
            _trace(fitted, said, report, timings, samples=samples, method=trace_method,
                   seed=seed)
        if diagonal:
            files += sections.diagonal(fitted, said, report, timings, out, samples=samples,
                                       seed=seed, description=model.description)
        if density:
            files += _density(fitted, said, pairs, report, timings, out, probes=probes,
                              steps=lanczos_steps, deflate=deflate, seed=seed,
                              operator=operator)
        if map_options is not None:
            started = time.perf_counter()
            drawn = eigen_map(model, out, **{"tol": tol, "max_iter": max_iter, **map_options},
                              operator=operator, precision=precision, seed=seed,
                              problem=fitted.problem, on_progress=on_progress,
                              on_warning=said.warning)
            timings["map_s"] = time.perf_counter() - started
            report["map"] = drawn.report
            files += drawn.files
        if minibatch_spectra:
            files += sections.minibatch(model, said, pairs.top.values, report, timings, out,
                                        num_batches=minibatch_spectra,
                                        batch_size=minibatch_size, top_k=top_k, tol=tol,
                                        atol=atol, stop=stop, max_iter=max_iter, seed=seed)
        if blocks:
            files += sections.blocks(fitted, said, found, report, timings, out, spec=blocks,
                                     model=model, operator=operator, tol=tol, atol=atol,
                                     stop=stop, max_iter=max_iter, samples=samples,
                                     density=density, probes=probes, steps=lanczos_steps,
                                     seed=seed)
    report["settings"]["batch_size"] = fitted.problem.batch_size  # the one that fitted
    report["timings"] = timings
    write_json(files[0], report)  # whole or not at all: a temporary name, then a rename
    return Written(report, files)


def _check_counts(n: int, *, top_k: int, bottom_k: int, max_iter: int) -> None:
    """Refuse more eigenvalues than the matrix has, or than Lanczos steps may find."""
    for name, value in (("top_k", top_k), ("bottom_k", bottom_k)):
        if value > n:
            raise InputError(f"`{name}` (={value}) must be <= the number of parameters ({n})",
                             param=name)
    wanted = top_k + bottom_k
    if wanted > n:
        raise InputError(f"`top_k` + `bottom_k` (={wanted}) must be <= the number of "
                         f"parameters ({n})", param=("top_k", "bottom_k"))
    if max_iter < wanted:
        raise InputError(f"`max_iter` (={max_iter}) must be >= `top_k` + `bottom_k` "
                         f"({wanted})", param="max_iter")


def _numbers(values) -> str:
    return ", ".join(f"{v:.6g}" for v in values)


def _say_eigenvalues(said: Reporter, pairs, *, operator: str, tol: float, stop: str) -> None:
    import numpy as np

    from landscape.curvature.products import OPERATOR_NAMES

    if operator != "hessian":
        said.message(f"operator: {operator} ({OPERATOR_NAMES[operator]})")
    said.message(f"top eigenvalues: {_numbers(pairs.top.values)}")
    if len(pairs.bottom.values):
        said.message(f"bottom eigenvalues: {_numbers(pairs.bottom.values)}")
    for end, p in (("top", pairs.top), ("bottom", pairs.bottom)):
        if len(p.values) and not p.converged.all():
            worst = int(np.argmax(np.where(p.converged, -np.inf, p.residuals)))
            said.warning(f"warning: {int((~p.converged).sum())} of the {end} eigenvalues did "
                         f"not reach `tol` {tol:g} in {pairs.iterations} Lanczos steps (`stop` "
                         f"{stop}; residual {p.residuals[worst]:.2g} for "
                         f"{p.values[worst]:.4g}); raise `max_iter`, or give `atol` for "
                         "eigenvalues near 0")


def _trace(fitted: Fitted, said: Reporter, report: dict, timings: dict, *, samples: int,
           method: str, seed: int) -> None:
    from landscape.curvature import estimate_trace

    started = time.perf_counter()
    trace = fitted(lambda p: estimate_trace(p, method=method, num_matvecs=samples, seed=seed))
    timings["trace_s"] = time.perf_counter() - started
    report["trace"] = {"method": method, "estimate": trace.estimate, "stderr": trace.stderr,
                       "samples": samples, "matvecs": trace.matvecs, "probes": "rademacher"}
    if method == "hutchinson":
        said.message(f"trace: {trace.estimate:.6g} ± {trace.stderr:.2g} ({samples} Rademacher "
                     "samples)")
        return
    residual = len(trace.samples)
    report["trace"].update(low_rank=trace.low_rank, sketch=trace.sketch,
                           residual_probes=residual,
                           stderr_of="the residual Hutchinson part (the low-rank part is exact "
                                     "given the sketch)")
    said.message(f"trace: {trace.estimate:.6g} ± {trace.stderr:.2g} (Hutch++, {trace.matvecs} "
                 f"products: {trace.sketch} sketch, {trace.sketch} low-rank, {residual} "
                 "residual probes)")


def _density(fitted: Fitted, said: Reporter, pairs, report: dict, timings: dict, out: str, *,
             probes: int, steps: int, deflate: bool, seed: int, operator: str) -> list[str]:
    from landscape.curvature import slq_density
    from landscape.curvature.products import OPERATOR_NAMES
    from landscape.io.atomic import save_figure
    from landscape.plot import density_figure

    converged = pairs.top.converged
    deflated = None
    if deflate and converged.any():
        deflated = pairs.top._replace(values=pairs.top.values[converged],
                                      vectors=pairs.top.vectors[converged],
                                      residuals=pairs.top.residuals[converged],
                                      converged=converged[converged])
    k = 0 if deflated is None else len(deflated.values)
    n = fitted.problem.num_params
    if steps > n - k:
        said.warning(f"note: `lanczos_steps` {steps} is more than the {n - k} dimensions left "
                     f"({n} parameters, {k} deflated): using {n - k}, where each probe's "
                     "quadrature is exact")
        steps = n - k
    batch = max(1, min(10, DENSITY_BATCH_HVPS // steps))
    started = time.perf_counter()
    done = said.counter("density", probes)
    density = fitted(lambda p: slq_density(p, num_probes=probes, num_steps=steps,
                                           deflate=deflated, seed=seed, batch=batch,
                                           on_batch=done))
    timings["density_s"] = time.perf_counter() - started
    report["density"] = {
        "probes": probes, "lanczos_steps": steps, "deflated": k, "sigma": density.sigma,
        "mean": density.moment(1), "second_moment": density.moment(2),
        "nodes": density.nodes.tolist(), "weights": density.weights.tolist(),
    }
    path = os.path.join(out, "density.png")
    # The figure clips (and says so) where the Gaussian tails fall under its log axis.
    figure = density_figure(density.grid, density.density,
                            title=f"{OPERATOR_NAMES[operator]} spectral density ({probes} "
                                  f"probes × {steps} steps)")
    save_figure(figure, path)
    return [path]
