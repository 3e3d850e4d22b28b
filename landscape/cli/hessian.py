"""``landscape hessian``: eigenvalues, trace, diagonal, spectral density, eigen maps and
mini-batch spectra of a model's Hessian."""

from __future__ import annotations

import os
import time

import click

from click.core import ParameterSource

from landscape.cli.options import (
    ExistingPath,
    USER_CODE_NOTE,
    FiniteFloat,
    compute_in,
    echo_outputs,
    library_errors,
    make_out_dir,
    out_option,
    precision_option,
    progress,
    quiet_option,
    seed_option,
)
from landscape.cli.hessian_estimates import check_minibatches, diagonal_report, minibatch_report
from landscape.io.atomic import save_figure
from landscape.cli.source import trained_model
from landscape.sources import open_runs
from landscape.directions import IGNORE_RULES
from landscape.curvature.minibatch import MINIBATCH_SIZE
from landscape.curvature.trace import TRACE_METHODS

EXAMPLES = """
\b
Examples:
  landscape hessian                                # sine MLP: λmax, to --tol 1e-3
  landscape hessian --top-k 3 --bottom-k 1 --trace --density
  landscape hessian --trace-method hutch++ --diagonal --samples 300
  landscape hessian --top-k 2 --minibatch-spectra 20 --minibatch-size 50
  landscape hessian --map --x -1:1:21 --y -1:1:21  # λmax, λmin, |λmin/λmax| over a plane
  landscape hessian --map --directions hessian     # ... over the top-2 eigenvector plane
  landscape hessian runs/adam --trace              # the final model of a `landscape train` run
  landscape hessian runs/sgd runs/momentum runs/adam --steps all   # λmax along training
  landscape hessian --operator ggn --density       # the Gauss–Newton matrix's spectrum
  landscape hessian --workload text-gpt --blocks layer --density   # per-layer spectra
"""

MAP_DIRECTIONS = ("filter", "layer", "random", "hessian")
TRAIN_STEPS, TRAIN_LR = 2000, 1e-2  # the model trained on the spot, without RUN
DENSITY_BATCH_HVPS = 2000  # most HVPs per compiled batch of density probes (progress, memory)


def _model_options(command):
    """``--workload --steps --lr``: as the other commands' for a model trained on the spot;
    with RUN, ``--steps`` picks recorded steps instead."""
    command = click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=TRAIN_LR,
                           show_default=True,
                           help="Adam learning rate for training (not with RUN).")(command)
    command = click.option("--steps", "steps_spec", default=None,
                           metavar="N | all | N,M,...",
                           help=f"Without RUN: training steps before the analysis "
                                f"[default: {TRAIN_STEPS}]. With RUN: the recorded steps to "
                                "probe, `all` or a list [default: the final model].")(command)
    command = click.option("--workload", default="sine", show_default=True,
                           help="Built-in workload name (sine, spirals, digits ...) or "
                                "`package.module:function` returning a landscape.Workload; "
                                "with RUN, only to confirm a run of a user workload. "
                                + USER_CODE_NOTE)(command)
    return command


def _curvature_options(command):
    """``--operator`` and ``--blocks``: which matrix every mode probes, and its blocks."""
    from landscape.curvature.products import OPERATORS

    command = click.option(
        "--blocks", multiple=True, metavar="layer | PATTERN",
        help="Also probe parameter blocks, each the diagonal block of the matrix for its "
             "parameters (the others held fixed): `layer` (leaves grouped by parent path: a "
             "Dense layer's kernel and bias) or leaf-path glob patterns, the option repeated "
             "(--blocks '*/attn/*' --blocks '*/fc*'). Per block λmax (to --tol), λmin (to "
             "--tol × λmax), |λmin/λmax| and the trace ± SE (--samples probes): printed, in "
             "hessian.json and OUT/blocks.csv; with --density the blocks' densities on one "
             "figure, OUT/block_density.png. One model only (not along training).")(command)
    command = click.option(
        "--operator", type=click.Choice(OPERATORS), default="hessian", show_default=True,
        help="The curvature matrix every mode probes: the Hessian; ggn, the generalized "
             "Gauss–Newton matrix JᵀH_ℓJ (J: the outputs' Jacobian, H_ℓ: the loss's Hessian "
             "in the outputs; needs a workload with `apply` and `output_loss`, as the built-in "
             "ones have); fisher, the empirical Fisher (1/N) Σ g_i g_iᵀ of per-sample "
             "gradients. Recorded in every output.")(command)
    return command


@click.command(epilog=EXAMPLES)
@click.argument("runs", nargs=-1, metavar="[RUN]...",
                type=ExistingPath(folder=True))
@_model_options
@_curvature_options
@click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True,
              help="Largest eigenvalues to compute.")
@click.option("--bottom-k", type=click.IntRange(min=1), default=None,
              help="Smallest (most negative) eigenvalues to compute too.")
@click.option("--tol", type=FiniteFloat(min=0, min_open=True), default=1e-3,
              show_default=True,
              help="Relative tolerance of the --stop rule (for residual: stop when every "
                   "residual ‖Hx − θx‖ ≤ tol·|θ|).")
@click.option("--atol", type=FiniteFloat(min=0), default=0.0, show_default=True,
              help="Absolute floor of that test, for eigenvalues near 0 (whose relative "
                   "tolerance is out of reach): ‖Hx − θx‖ ≤ max(tol·|θ|, atol).")
@click.option("--stop", type=click.Choice(["residual", "relative-change"]), default="residual",
              show_default=True,
              help="Lanczos stopping rule: residual bounds each eigenvalue's error by "
                   "max(tol·|θ|, atol); relative-change is PyHessian's rule (θ moved by less "
                   "than that since the last step, or the residual test passed): fewer HVPs, "
                   "no error bound.")
@click.option("--max-iter", type=click.IntRange(min=1), default=100, show_default=True,
              help="Most Lanczos steps (one Hessian-vector product each).")
@click.option("--trace", "with_trace", is_flag=True,
              help="Estimate the trace ± its standard error (--trace-method).")
@click.option("--trace-method", type=click.Choice(TRACE_METHODS), default="hutchinson",
              show_default=True,
              help="hutchinson: the mean of zᵀHz over Rademacher probes; hutch++ (Meyer et al. "
                   "2021): a third of --samples sketch the top of the spectrum, whose trace is "
                   "then exact, the rest probe what is left (far less variance when the "
                   "spectrum decays). Implies --trace.")
@click.option("--samples", type=click.IntRange(min=2), default=100, show_default=True,
              help="Products with H for --trace (Hutchinson's probes; Hutch++'s m, at least 4) "
                   "and Rademacher probes for --diagonal.")
@click.option("--diagonal", "with_diagonal", is_flag=True,
              help="Hutchinson's estimate of the diagonal, mean(z ⊙ Hz) (Bekas et al. 2007): a "
                   "table per layer (mean ± SE, Σ diag²) and OUT/diagonal.h5 (every entry and "
                   "its standard error, one dataset per parameter leaf).")
@click.option("--minibatch-spectra", "minibatch_spectra", type=click.IntRange(min=1),
              default=None, metavar="N",
              help="Also the top-k eigenvalues of N mini-batch Hessians (each batch's own mean "
                   "loss; whole batches of one shuffled epoch, --seed): OUT/minibatch_spectra.csv "
                   "and OUT/minibatch_spectra.png (a violin per λ_i beside the full data's).")
@click.option("--minibatch-size", type=click.IntRange(min=1), default=MINIBATCH_SIZE,
              show_default=True, help="Samples per mini-batch for --minibatch-spectra.")
@click.option("--density", "with_density", is_flag=True,
              help="Spectral density by stochastic Lanczos quadrature: OUT/density.png.")
@click.option("--probes", type=click.IntRange(min=1), default=10, show_default=True,
              help="Random probes for --density.")
@click.option("--lanczos-steps", type=click.IntRange(min=2), default=80, show_default=True,
              help="Lanczos steps per probe for --density.")
@click.option("--deflate/--no-deflate", default=True, show_default=True,
              help="--density: take the converged top-k eigenpairs out exactly (less variance).")
@click.option("--map", "with_map", is_flag=True,
              help="λmax and λmin over a grid on a plane: OUT/eigen_map.h5 and OUT/eigen_map.png.")
@click.option("--x", "x_spec", default="-1:1:21", show_default=True, help="--map x axis, MIN:MAX:N.")
@click.option("--y", "y_spec", default=None,
              help="--map y axis, MIN:MAX:N  [default: the same as --x]")
@click.option("--dims", type=click.Choice(["1", "2"]), default="2", show_default=True,
              help="--map over a 1D line or a 2D plane.")
@click.option("--directions", "kind", type=click.Choice(MAP_DIRECTIONS), default="filter",
              show_default=True,
              help="--map plane: filter/layer-normalized or plain random directions (as in "
                   "`scan`), or the top-2 Hessian eigenvectors.")
@click.option("--ignore", type=click.Choice(IGNORE_RULES), default="biasbn", show_default=True,
              help="--map with random directions: biasbn zeroes the directions of 1-D parameters.")
@click.option("--map-steps", type=click.IntRange(min=2), default=20, show_default=True,
              help="--map: Lanczos steps per grid point (fixed, so points vmap).")
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="--map: grid points per compiled call [default: as many as keep a chunk "
                   "in cache, at most 256].")
@click.option("--preconditioned/--no-preconditioned", default=True, show_default=True,
              help="With RUN and --steps: also λmax(P^-1/2 H P^-1/2) for Adam and RMSProp runs "
                   "that recorded their state (`landscape train --record-opt-state`).")
@precision_option
@click.option("--overwrite", is_flag=True,
              help="Replace an eigen map made with other arguments or from another model.")
@out_option
@seed_option
@quiet_option
@library_errors
def hessian(runs, workload, steps_spec, lr, operator, blocks, top_k, bottom_k, tol, atol, stop,
            max_iter, with_trace, trace_method, samples, with_diagonal, minibatch_spectra,
            minibatch_size, with_density, probes, lanczos_steps, deflate, with_map, x_spec,
            y_spec, dims, kind, ignore, map_steps, chunk, preconditioned, precision, overwrite,
            out, seed, quiet):
    """Probe the Hessian (or Gauss–Newton matrix, or empirical Fisher: --operator) of a
    model's full-training-set mean loss, whole or by parameter blocks (--blocks).

    The model: the final one of RUN (a run directory of `landscape train`), or, without RUN, one
    trained on the spot (--workload, --steps, --lr). Lanczos (full reorthogonalization) gives
    the top-k and bottom-k eigenvalues; --trace adds a Hutchinson or Hutch++ trace ± standard
    error, --diagonal the diagonal per layer, --density the spectral density (stochastic
    Lanczos quadrature, Ghorbani et al. 2019), --map λmax and λmin over a plane (Li et al.
    2018, Fig. 7), --minibatch-spectra the top-k eigenvalues of each of N mini-batches'
    Hessians. Writes OUT/hessian.json (values, settings, precision, timings) and the requested
    files. Every Hessian-vector product runs at --precision: keep `highest` (full float32) for
    the tolerances to mean what they say.

    Along training: with several RUNs, or --steps all|N,M,..., λmax (with --bottom-k 1 also
    λmin, with --trace the trace) at each recorded step of each run, every Lanczos run started
    from the previous step's eigenvector; for Adam and RMSProp runs with a recorded optimizer
    state also the preconditioned sharpness λmax(P^-1/2 H P^-1/2). Writes OUT/curvature.json,
    OUT/curvature.csv and OUT/curvature.png: λmax against step with each optimizer's edge-of-
    stability threshold (2/η for SGD, 2(1+β)/η heavy ball, (2+2β)/(η(1+2β)) Nesterov;
    (2+2β1)/((1−β1)η) against the preconditioned sharpness for Adam; Cohen et al. 2021, 2022).
    """
    from landscape.curvature import hessian_eigenpairs, hessian_problem

    import numpy as np

    from landscape.grid import Grid
    from landscape.io.atomic import write_json

    given = lambda name: (click.get_current_context().get_parameter_source(name)  # noqa: E731
                          not in (ParameterSource.DEFAULT, None))
    if dims == "1" and y_spec:
        raise click.UsageError("`--y` was given for a 1D map (--dims 1)")
    with_trace = with_trace or given("trace_method")
    if with_trace and trace_method == "hutch++" and samples < 4:
        raise click.BadParameter(f"(={samples}) must be >= 4 for --trace-method hutch++ (a "
                                 "third each for the sketch and its trace, two residual probes "
                                 "at least)", param_hint="--samples")
    # Checked before training: a typo in an axis must not cost a training run.
    grid = Grid.from_specs(x_spec, (y_spec or x_spec) if dims == "2" else None)  # as the API
    wanted = top_k + (bottom_k or 0)
    out = make_out_dir(out)
    if with_map:  # a resumed eigen map keeps the precision it recorded
        from landscape.scan import resumed_precision

        precision = resumed_precision(os.path.join(out, "eigen_map.h5"), precision,
                                      overwrite=overwrite)
    precision = compute_in(precision)
    timings = {}
    started = time.perf_counter()
    if runs:
        from landscape.cli.curvature import along_runs, parse_steps

        if given("lr"):
            raise click.UsageError("`--lr` trains a model on the spot; it does not apply to RUN")
        spec = parse_steps(steps_spec)
        loaded = open_runs(list(runs), workload=workload if given("workload") else None)
        if len(runs) > 1 or spec is not None:
            for option, ok in (("--top-k", top_k == 1), ("--bottom-k", bottom_k in (None, 1)),
                               ("--density", not with_density), ("--map", not with_map),
                               ("--diagonal", not with_diagonal),
                               ("--minibatch-spectra", minibatch_spectra is None),
                               ("--blocks", not blocks)):
                if not ok:
                    raise click.UsageError(
                        f"`{option}` probes one model; along training (several RUNs or "
                        "--steps) λmax and, with --bottom-k 1, λmin are measured")
            if trace_method != "hutchinson":
                raise click.UsageError(f"`--trace-method {trace_method}` probes one model; "
                                       "along training --trace is Hutchinson's")
            along_runs(list(runs), loaded, spec, bottom=bool(bottom_k),
                       trace_samples=samples if with_trace else 0, tol=tol, atol=atol,
                       stop=stop, max_iter=max_iter, preconditioned=preconditioned, seed=seed,
                       out=out, quiet=quiet, precision=precision, operator=operator)
            return
        model = loaded[0][0]
        if minibatch_spectra:
            check_minibatches(model.workload, minibatch_spectra, minibatch_size)
        timings["load_s"] = time.perf_counter() - started
    else:
        from landscape.data import get_workload

        steps = _training_steps(steps_spec)
        untrained = get_workload(workload)
        _check_curvature(untrained, operator, blocks)  # before minutes of training
        if minibatch_spectra:  # checked before training: a wrong count must not cost a run
            check_minibatches(untrained, minibatch_spectra, minibatch_size)
        model = trained_model(workload, steps=steps, lr=lr, seed=seed, quiet=quiet,
                              precision=precision, workload=untrained)
        timings["train_s"] = time.perf_counter() - started
    block_list = _check_curvature(model.workload, operator, blocks, model.params)
    problem = hessian_problem(model.workload, model.params, model.state, operator=operator)
    n = problem.num_params
    for option, value in (("--top-k", top_k), ("--bottom-k", bottom_k)):
        if value is not None and value > n:
            raise click.BadParameter(f"(={value}) must be <= the number of parameters ({n})",
                                     param_hint=option)
    if wanted > n:
        raise click.UsageError(f"`--top-k` + `--bottom-k` (={wanted}) must be <= the number of "
                               f"parameters ({n})")
    if max_iter < wanted:
        raise click.BadParameter(f"(={max_iter}) must be >= --top-k + --bottom-k ({wanted})",
                                 param_hint="--max-iter")

    report = {
        "tool": "landscape", "model": model.description, "num_params": n,
        "train_loss": model.train_loss, "precision": precision, "operator": operator,
        "settings": {"top_k": top_k, "bottom_k": bottom_k or 0, "tol": tol, "atol": atol,
                     "stop": stop, "max_iter": max_iter,
                     "seed": seed, "split": "train"},
    }
    started = time.perf_counter()
    fitted = _Fitted(problem)
    pairs = fitted(lambda p: hessian_eigenpairs(
        p, top_k=top_k, bottom_k=bottom_k or 0, tol=tol, atol=atol, stop=stop,
        max_iter=max_iter, seed=seed, return_vectors=with_density and deflate))
    timings["eigenvalues_s"] = time.perf_counter() - started
    report["eigenvalues"] = {
        end: {"values": p.values.tolist(), "residuals": p.residuals.tolist(),
              "converged": p.converged.tolist()}
        for end, p in (("top", pairs.top), ("bottom", pairs.bottom)) if len(p.values)
    }
    report["eigenvalues"]["lanczos_steps"] = pairs.iterations
    if operator != "hessian":
        click.echo(f"operator: {operator} ({_matrix(operator)})")
    click.echo(f"top eigenvalues: {_numbers(pairs.top.values)}")
    if bottom_k:
        click.echo(f"bottom eigenvalues: {_numbers(pairs.bottom.values)}")
    for end, p in (("top", pairs.top), ("bottom", pairs.bottom)):
        if len(p.values) and not p.converged.all():
            worst = int(np.argmax(np.where(p.converged, -np.inf, p.residuals)))
            click.echo(f"warning: {int((~p.converged).sum())} of the {end} eigenvalues did not "
                       f"reach --tol {tol:g} in {pairs.iterations} Lanczos steps (--stop {stop}; "
                       f"residual {p.residuals[worst]:.2g} for {p.values[worst]:.4g}); raise --max-iter, "
                       f"or give --atol for eigenvalues near 0", err=True)

    paths = [os.path.join(out, "hessian.json")]
    if with_trace:
        paths += _trace(fitted, report, timings, samples=samples, method=trace_method, seed=seed)
    if with_diagonal:
        paths += diagonal_report(fitted, report, timings, out, samples=samples, seed=seed,
                                 description=model.description)
    if with_density:
        paths += _density(fitted, pairs, report, timings, out, probes=probes,
                          steps=lanczos_steps, deflate=deflate, seed=seed, quiet=quiet,
                          operator=operator)
    if with_map:
        paths += _eigen_map(model, problem, report, timings, out, grid=grid, kind=kind,
                            ignore=ignore, map_steps=map_steps, chunk=chunk, overwrite=overwrite,
                            tol=tol, max_iter=max_iter, seed=seed, quiet=quiet,
                            precision=precision, operator=operator)
    if minibatch_spectra:
        paths += minibatch_report(model, pairs.top.values, report, timings, out,
                                  num_batches=minibatch_spectra, batch_size=minibatch_size,
                                  top_k=top_k, tol=tol, atol=atol, stop=stop, max_iter=max_iter,
                                  seed=seed, quiet=quiet)
    if blocks:
        from landscape.cli.hessian_blocks import probe_blocks

        paths += probe_blocks(fitted, block_list, report, timings, out, spec=blocks,
                              model=model, operator=operator, tol=tol, atol=atol, stop=stop,
                              max_iter=max_iter, samples=samples, density=with_density,
                              probes=probes, steps=lanczos_steps, seed=seed, quiet=quiet)
    report["settings"]["batch_size"] = fitted.problem.batch_size  # the one that fitted
    report["timings"] = timings
    write_json(paths[0], report)  # whole or not at all: a temporary name, then a rename
    echo_outputs(paths)


class _Fitted:
    """Runs ``fn(problem)``; out of device memory, again over batches of half the size (one
    line on stderr each time), and keeps the problem that fitted for what follows."""

    def __init__(self, problem):
        self.problem = problem

    def __call__(self, fn):
        from landscape.engine.memory import shrink_message
        from landscape.curvature.operator import smaller_on_oom

        def said(old: int, new: int, what: str) -> None:
            click.echo(shrink_message(old, new, what), err=True)

        result, self.problem = smaller_on_oom(self.problem, fn, on_shrink=said)
        return result


def _check_curvature(workload, operator: str, blocks: tuple, params=None) -> list:
    """Refuse an ``--operator`` the workload cannot give (a GGN without ``output_loss``) and
    ``--blocks`` patterns that match no parameter (of ``params``, or of the workload's
    initial ones); the blocks."""
    from landscape.curvature import parameter_blocks
    from landscape.curvature.products import workload_curvature

    workload_curvature(workload, operator)
    if not blocks:
        return []
    if params is None:
        from landscape.workload import init_shapes

        params = init_shapes(workload)[0]
    return parameter_blocks(params, blocks)


def _training_steps(spec: str | None) -> int:
    """``--steps`` without RUN: a positive number of training steps."""
    if spec is None:
        return TRAIN_STEPS
    try:
        steps = int(spec)
    except ValueError:
        steps = 0
    if steps < 1:
        raise click.BadParameter(f"(={spec}) must be a positive number of training steps "
                                 "(`all` and lists pick recorded steps of a RUN)",
                                 param_hint="--steps")
    return steps


def _numbers(values) -> str:
    return ", ".join(f"{v:.6g}" for v in values)


def _matrix(operator: str) -> str:
    """The matrix's name for titles: Hessian, Gauss–Newton, empirical Fisher."""
    from landscape.curvature.products import OPERATOR_NAMES

    return OPERATOR_NAMES[operator]


def _trace(fitted, report, timings, *, samples, method, seed) -> list[str]:
    from landscape.curvature import estimate_trace

    started = time.perf_counter()
    trace = fitted(lambda p: estimate_trace(p, method=method, num_matvecs=samples, seed=seed))
    timings["trace_s"] = time.perf_counter() - started
    report["trace"] = {"method": method, "estimate": trace.estimate, "stderr": trace.stderr,
                       "samples": samples, "matvecs": trace.matvecs, "probes": "rademacher"}
    if method == "hutchinson":
        click.echo(f"trace: {trace.estimate:.6g} ± {trace.stderr:.2g} ({samples} Rademacher "
                   "samples)")
        return []
    residual = len(trace.samples)
    report["trace"].update(low_rank=trace.low_rank, sketch=trace.sketch,
                           residual_probes=residual,
                           stderr_of="the residual Hutchinson part (the low-rank part is exact "
                                     "given the sketch)")
    click.echo(f"trace: {trace.estimate:.6g} ± {trace.stderr:.2g} (Hutch++, {trace.matvecs} "
               f"products: {trace.sketch} sketch, {trace.sketch} low-rank, {residual} "
               "residual probes)")
    return []


def _density(fitted, pairs, report, timings, out, *, probes, steps, deflate, seed,
             quiet, operator="hessian") -> list[str]:
    from landscape.curvature import slq_density
    from landscape.plot import density_figure

    converged = pairs.top.converged
    deflated = None
    if deflate and converged.any():
        deflated = pairs.top._replace(values=pairs.top.values[converged],
                                      vectors=pairs.top.vectors[converged],
                                      residuals=pairs.top.residuals[converged],
                                      converged=converged[converged])
    k = 0 if deflated is None else len(deflated.values)
    problem = fitted.problem
    if steps > problem.num_params - k:
        click.echo(f"note: --lanczos-steps {steps} is more than the {problem.num_params - k} "
                   f"dimensions left ({problem.num_params} parameters, {k} deflated): using "
                   f"{problem.num_params - k}, where each probe's quadrature is exact", err=True)
        steps = problem.num_params - k
    batch = max(1, min(10, DENSITY_BATCH_HVPS // steps))
    started = time.perf_counter()
    with progress(probes, "density", quiet=quiet, unit="probe") as bar:
        density = fitted(lambda p: slq_density(
            p, num_probes=probes, num_steps=steps, deflate=deflated, seed=seed, batch=batch,
            on_batch=bar.update))
    timings["density_s"] = time.perf_counter() - started
    report["density"] = {
        "probes": probes, "lanczos_steps": steps, "deflated": k, "sigma": density.sigma,
        "mean": density.moment(1), "second_moment": density.moment(2),
        "nodes": density.nodes.tolist(), "weights": density.weights.tolist(),
    }
    path = os.path.join(out, "density.png")
    # The figure clips (and says so) where the Gaussian tails fall under its log axis.
    figure = density_figure(density.grid, density.density,
                            title=f"{_matrix(operator)} spectral density ({probes} probes × "
                                  f"{steps} steps)")
    save_figure(figure, path)
    return [path]


def _eigen_map(model, problem, report, timings, out, *, grid, kind, ignore, map_steps, chunk,
               overwrite, tol, max_iter, seed, quiet, precision, operator="hessian"
               ) -> list[str]:
    import dataclasses

    from landscape.directions import layout_spec, random_plane
    from landscape.fingerprint import of_surface
    from landscape.curvature import EIGEN_MAP_NAMES, evaluate_eigen_map, hessian_plane
    from landscape.io import surface_h5
    from landscape.io.surface_record import SurfaceRecord
    from landscape.io.surface_writer import SurfaceWriter
    from landscape.plot import hessian_figure

    if map_steps > problem.num_params:
        click.echo(f"note: --map-steps {map_steps} is more than the {problem.num_params} "
                   f"parameters: using {problem.num_params} Lanczos steps per point (exact)",
                   err=True)
        map_steps = problem.num_params
    started = time.perf_counter()
    if kind == "hessian":
        plane = hessian_plane(model.workload, model.params, model.state, dims=grid.ndim,
                              tol=min(tol, 1e-4), max_iter=max_iter, seed=seed, problem=problem)
    else:
        normalization = {"random": "none"}.get(kind, kind)
        plane = random_plane(model.params, seed=seed, normalization=normalization, ignore=ignore,
                             dims=grid.ndim, output_axis=model.workload.output_axis)
    spec = {
        **model.description, "directions": kind, "ignore": ignore, "map_steps": map_steps,
        "precision": precision,
        # another matrix is another map (not resumed); the Hessian's spec as it always was,
        # so that maps made before the operators existed still resume
        **({} if operator == "hessian" else {"operator": operator}),
        "x": [float(grid.x[0]), float(grid.x[-1]), len(grid.x)],
        "y": None if grid.y is None else [float(grid.y[0]), float(grid.y[-1]), len(grid.y)],
        **layout_spec(plane.output_axis),
    }
    record = SurfaceRecord.of_plane(plane, workload=model.workload.name, spec=spec,
                                    lanczos_steps=map_steps, train_loss_at_origin=model.train_loss,
                                    precision=precision)
    # the seed of the map's start vector too; the matrix as a root attribute of its own
    record = dataclasses.replace(
        record, seed=seed, fingerprints=of_surface(model.params, model.state, plane,
                                                   {"train": model.workload.train}),
        extra={**(record.extra or {}), "operator": operator})
    h5_path = os.path.join(out, "eigen_map.h5")
    with SurfaceWriter(h5_path, what="eigen map") as writer:
        _, done = writer.open(grid, list(EIGEN_MAP_NAMES), plane, record, overwrite=overwrite)
        with progress(grid.num_points, "eigen map", quiet=quiet, unit="pt") as bar:
            bar.update(int(done.sum()))

            def flush(index, values):
                writer.write_points(index, values)
                bar.update(len(index))

            evaluate_eigen_map(model.workload, model.state, plane, grid, num_steps=map_steps,
                               seed=seed, chunk=chunk, done=done, on_chunk=flush,
                               operator=operator)
        writer.finish()  # the journal of finished chunks folded into the file
    timings["map_s"] = time.perf_counter() - started
    surface = surface_h5.read(h5_path)
    report["map"] = {"file": h5_path, "directions": kind, "lanczos_steps": map_steps,
                     "shape": list(grid.shape), "operator": operator}
    png_path = os.path.join(out, "eigen_map.png")
    figure = hessian_figure(surface.grid, surface.values["max_eig"], surface.values["min_eig"],
                            attrs=surface.attrs,
                            title=f"{model.workload.name}: {_matrix(operator)} eigenvalues, "
                                  f"{plane.kind} plane")
    save_figure(figure, png_path)
    return [h5_path, png_path]

