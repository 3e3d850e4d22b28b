"""``landscape hessian``: eigenvalues, trace, diagonal, spectral density, eigen maps and
mini-batch spectra of a model's Hessian — options in, one call of :mod:`landscape.probes`,
its lines and files out."""

from __future__ import annotations

import contextlib
import os
import re
import time

import click
from click.core import ParameterSource

from landscape.cli.options import (Bars, ExistingPath, FiniteFloat, USER_CODE_NOTE, compute_in,
                                   echo_outputs, library_errors, out_option, precision_option,
                                   quiet_option, seed_option)
from landscape.io.folders import make_output_folder
from landscape.curvature.minibatch import MINIBATCH_SIZE
from landscape.curvature.trace import TRACE_METHODS
from landscape.directions import IGNORE_RULES
from landscape.errors import InputError
from landscape.probes import MAP_DIRECTIONS
from landscape.sources import open_runs, trained_model

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

TRAIN_STEPS, TRAIN_LR = 2000, 1e-2  # the model trained on the spot, without RUN


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
    from landscape.data import get_workload
    from landscape.grid import Grid
    from landscape.probes import check_probe, curvature_along_runs, probe
    from landscape.scan import resumed_precision

    given = lambda name: (click.get_current_context().get_parameter_source(name)  # noqa: E731
                          not in (ParameterSource.DEFAULT, None))
    if dims == "1" and y_spec:
        raise click.UsageError("`--y` was given for a 1D map (--dims 1)")
    with_trace = with_trace or given("trace_method")
    checks = dict(operator=operator, blocks=blocks, trace=with_trace, trace_method=trace_method,
                  samples=samples, minibatch_spectra=minibatch_spectra,
                  minibatch_size=minibatch_size)
    # Checked before training: a typo in an axis must not cost a training run.
    grid = Grid.from_specs(x_spec, (y_spec or x_spec) if dims == "2" else None)  # as the API
    steps = _steps(steps_spec, runs)
    out = make_output_folder(out)
    if with_map:  # a resumed eigen map keeps the precision it recorded (before training)
        precision = resumed_precision(os.path.join(out, "eigen_map.h5"), precision,
                                      overwrite=overwrite)
    precision = compute_in(precision)
    bars = Bars(quiet, units={"density": "probe", "eigen map": "pt", "blocks": "block",
                             "mini-batches": "batch", "curvature": "step"})
    click.get_current_context().call_on_close(bars.close)
    shared = dict(tol=tol, atol=atol, stop=stop, max_iter=max_iter, precision=precision,
                  seed=seed, on_progress=bars,
                  on_message=lambda line: click.echo(_options(line)),
                  on_warning=lambda line: click.echo(_options(line), err=True))
    started = time.perf_counter()
    if runs and given("lr"):
        raise click.UsageError("`--lr` trains a model on the spot; it does not apply to RUN")
    with _hinted():
        if runs:
            loaded = open_runs(list(runs), workload=workload if given("workload") else None)
            if len(runs) > 1 or steps is not None:
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
                written = curvature_along_runs(
                    loaded, out, steps=steps, lambda_min=bool(bottom_k),
                    trace_samples=samples if with_trace else 0, preconditioned=preconditioned,
                    operator=operator, **shared)
                return echo_outputs(written.files)
            model, timings = loaded[0][0], {"load_s": time.perf_counter() - started}
        else:
            untrained = get_workload(workload)
            check_probe(untrained, **checks)  # before minutes of training
            model = trained_model(workload, steps=steps, lr=lr, seed=seed, precision=precision,
                                  workload=untrained, on_step=bars.step("training", steps, "step"))
            timings = {"train_s": time.perf_counter() - started}
        mapped = dict(grid=grid, kind=kind, ignore=ignore, map_steps=map_steps, chunk=chunk,
                      overwrite=overwrite)
        written = probe(model, out, top_k=top_k, bottom_k=bottom_k or 0,
                        diagonal=with_diagonal, density=with_density, probes=probes,
                        lanczos_steps=lanczos_steps, deflate=deflate,
                        map_options=mapped if with_map else None, timings=timings,
                        **checks, **shared)
    echo_outputs(written.files)


def _steps(spec: str | None, runs: tuple) -> int | str | list[int] | None:
    """``--steps``: without RUN, a number of training steps; with RUN, None (the final model),
    ``all`` or a list of recorded steps."""
    if spec is None:
        return None if runs else TRAIN_STEPS
    if runs and spec.strip() == "all":
        return "all"
    try:
        steps = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        steps = []
    if runs and steps and min(steps) >= 0:
        return list(dict.fromkeys(steps))
    if not runs and len(steps) == 1 and "," not in spec and steps[0] >= 1:
        return steps[0]
    raise click.BadParameter(
        f"(={spec}) with RUN must be `all` or a comma-separated list of recorded steps, e.g. "
        "0,100,200" if runs else f"(={spec}) must be a positive number of training steps "
        "(`all` and lists pick recorded steps of a RUN)", param_hint="--steps")


def _options(text: str) -> str:
    """The library's names of this command's options (`max_iter`) as typed here (--max-iter)."""
    names = {param.name for param in click.get_current_context().command.params}
    return re.sub(r"`(\w+)`", lambda m: "--" + m[1].replace("_", "-") if m[1] in names
                  else m[0], text)


@contextlib.contextmanager
def _hinted():
    """The library's "`top_k` (=400) must be ..." as click's "Invalid value for --top-k: ..."."""
    try:
        yield
    except InputError as exc:
        if exc.param not in ("top_k", "bottom_k", "max_iter", "samples", "steps"):
            raise
        raise click.BadParameter(_options(re.sub(rf"^`{exc.param}`:? ", "", str(exc))),
                                 param_hint="--" + exc.param.replace("_", "-")) from exc
