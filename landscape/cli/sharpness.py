"""``landscape sharpness``: sharpness measures of trained models, side by side with λmax and the
Hessian trace, one table per run."""

from __future__ import annotations

import click

from landscape.cli.options import (ExistingPath, FiniteFloat, USER_CODE_NOTE, compute_in,
                                   echo_outputs, library_errors, out_option, precision_option,
                                   progress, quiet_option, seed_option)
from landscape.io.folders import make_output_folder

EXAMPLES = """
\b
Examples:
  landscape train --optimizer sgd --optimizer adam --out runs
  landscape sharpness runs/sgd runs/adam --out sharp
  landscape sharpness runs/adam --epsilon 1e-3 --epsilon 5e-4 --rho-l2 0.05
"""


@click.command(epilog=EXAMPLES)
@click.argument("runs", nargs=-1, required=True, metavar="RUN...",
                type=ExistingPath(folder=True))
@click.option("--epsilon", "epsilons", type=FiniteFloat(min=0, min_open=True), multiple=True,
              default=(1e-3, 5e-4), show_default=True,
              help="ε of Keskar et al.'s ε-sharpness (box |z_i| ≤ ε(|w_i|+1)); repeat for "
                   "several.")
@click.option("--rho-linf", type=FiniteFloat(min=0, min_open=True), default=1e-3,
              show_default=True, help="ρ of the adaptive worst-case sharpness, ‖δ/|w|‖∞ ≤ ρ.")
@click.option("--rho-l2", type=FiniteFloat(min=0, min_open=True), default=0.1, show_default=True,
              help="ρ of the adaptive worst-case sharpness, ‖δ/|w|‖₂ ≤ ρ.")
@click.option("--rho-average", type=FiniteFloat(min=0, min_open=True), default=0.1,
              show_default=True,
              help="ρ of the adaptive average-case sharpness, δ ∼ N(0, ρ² diag(w²)).")
@click.option("--ascent-steps", type=click.IntRange(min=1), default=20, show_default=True,
              help="Projected-gradient-ascent steps for each worst case.")
@click.option("--samples", type=click.IntRange(min=2), default=100, show_default=True,
              help="Gaussian draws for the average case; Rademacher probes for the trace.")
@click.option("--tol", type=FiniteFloat(min=0, min_open=True), default=1e-3,
              show_default=True, help="Relative tolerance of λmax (Lanczos residual rule).")
@click.option("--workload", "user_workload", default=None,
              help="Confirms the `package.module:function` of runs of a user workload. "
                   + USER_CODE_NOTE)
@precision_option
@out_option
@seed_option
@quiet_option
@library_errors
def sharpness(runs, epsilons, rho_linf, rho_l2, rho_average, ascent_steps, samples, tol,
              user_workload, precision, out, seed, quiet):
    """Sharpness of each run's final model on its full training set (evaluation mode).

    \b
    - ε-sharpness (Keskar et al. 2017, §2.2.2):
      100·(max_{|z_i| ≤ ε(|w_i|+1)} L(w+z) − L(w)) / (1 + L(w));
    - adaptive worst-case sharpness (Kwon et al. 2021; Andriushchenko et al. 2023):
      max_{‖δ/|w|‖_p ≤ ρ} L(w+δ) − L(w) for p = ∞ and 2;
    - adaptive average-case sharpness: E_{δ∼N(0, ρ²diag(w²))} L(w+δ) − L(w) ± standard error;
    - λmax (Lanczos) and the trace (Hutchinson) of the Hessian.

    The maxima come from --ascent-steps of projected gradient ascent from δ = 0 (signed steps of
    2.5/steps of the box per coordinate for the boxes, normalized steps of ρ for p = 2; the
    largest loss seen is kept, a lower bound on the maximum). Writes OUT/sharpness.json and
    OUT/sharpness.csv (one row per run and measure, with how each was computed, and the
    --precision every loss, gradient and Hessian-vector product was computed at).
    """
    from landscape.sharpness_table import measures_per_model, sharpness_report
    from landscape.sources import open_runs

    precision = compute_in(precision)
    models = [model for model, _ in open_runs(list(runs), workload=user_workload)]
    out = make_output_folder(out)
    with progress(len(runs) * measures_per_model(epsilons), "sharpness", quiet=quiet,
                  unit="measure") as bar:
        report = sharpness_report(
            models, out, epsilons=epsilons, rho_linf=rho_linf, rho_l2=rho_l2,
            rho_average=rho_average, ascent_steps=ascent_steps, samples=samples, tol=tol,
            seed=seed, precision=precision, on_measure=lambda name: bar.update(1))
    click.echo("\n".join(report.lines()))
    echo_outputs(report.paths)
