"""The edge of stability (Cohen et al. 2021, Figure 1; Cohen et al. 2022 for Adam), reproduced on
the built-in ``mnist1d-mse`` workload: full-batch training of a tanh MLP with the squared loss,
at three step sizes for each of gradient descent, heavy-ball momentum and Adam.

The sharpness λmax of the training loss's Hessian rises during training (progressive
sharpening) until it reaches the optimizer's stability threshold — 2/η for gradient descent,
2(1+β)/η for heavy-ball momentum — and then hovers there while the loss keeps falling,
non-monotonically. For Adam the preconditioned sharpness λmax(P⁻¹H),
P = (1 − β1ᵗ) diag(√v̂ + ε) from its recorded state, does the same at
(2+2β1)/((1−β1)η) = 38/η.

Run: ``python examples/edge_of_stability.py`` (100 s of CPU time: 3 minutes on 2 busy cores);
it prints, for each step size, η, the threshold, λmax at the start and the median λmax over the
second half of training, and draws ``docs/images/edge_of_stability.png`` (``--out`` elsewhere).
λmax at each recorded step is what ``landscape hessian RUN --steps all`` measures (Lanczos to a
relative tolerance of 1e-3, warm-started from the previous step's eigenvector). ``--quick``
trains gradient descent at one step size for 200 steps only, to check that the script runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import landscape
from landscape.geometry.curvature import run_curvature
from landscape.plot.geometry import plot_sharpness

WORKLOAD = "mnist1d-mse"
HOVER = 0.2  # "at the edge": the median over the second half within 20 % of the threshold
# name: (title, step sizes, steps, record every, hyperparameters, what is compared)
METHODS = {
    "sgd": ("gradient descent", (0.08, 0.1, 0.125), 5000, 100, {}, "λmax"),
    "momentum": ("heavy-ball momentum, β = 0.9", (0.12, 0.15, 0.19), 1500, 50,
                 {"momentum": 0.9}, "λmax"),
    "adam": ("Adam, β1 = 0.9", (1.5e-3, 2e-3, 3e-3), 1500, 50, {}, "λmax(P⁻¹H)"),
}


def measure(workload, name: str, learning_rate: float, steps: int, every: int,
            hyperparams: dict) -> dict:
    """Train full batch from the seed-0 initialization, then measure the sharpness (Adam:
    the preconditioned one) at every recorded step."""
    run = landscape.train(workload, name, learning_rate=learning_rate, hyperparams=hyperparams,
                          steps=steps, batch_size=len(workload.train), record_every=every,
                          record_opt_state=name == "adam", seed=0)
    measured = run_curvature(run, workload)
    curvature = measured.curvature
    sharpness = (curvature.preconditioned_max if measured.threshold.preconditioned
                 else curvature.lambda_max)
    return {"eta": learning_rate, "step": curvature.step, "sharpness": sharpness,
            "loss": run.trajectory.train_loss, "threshold": measured.threshold,
            "steps": steps, "diverged": run.status != "complete"}


def summary(result: dict, quantity: str) -> tuple[str, bool]:
    """The line printed for one step size, and whether it hovers at its threshold."""
    step, values, threshold = result["step"], result["sharpness"], result["threshold"]
    known = np.isfinite(values)  # Adam's P needs one step of state: nothing at step 0
    first = int(np.argmax(known))
    late = known & (step >= result["steps"] / 2)
    median = float(np.median(values[late])) if late.any() else float("nan")
    off = median / threshold.value - 1
    hovers = bool(abs(off) <= HOVER) and not result["diverged"]
    line = (f"  η = {result['eta']:g}: {threshold.formula} = {number(threshold.value)}, "
            f"{quantity} at step {int(step[first])} = {number(values[first])}, median "
            f"{quantity} over steps {result['steps'] // 2}–{result['steps']} = {number(median)} "
            f"({off:+.1%} of {threshold.formula})")
    return line, hovers


def number(value: float) -> str:
    """Four significant digits, or a whole number with thousands separators from 1,000 on (Adam's
    thresholds are in the 10⁴s): never an exponent."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def figure(results: dict[str, list[dict]]) -> Figure:
    """Cohen et al.'s Figure 1 layout: the training loss above, the sharpness below with each
    step size's threshold dashed in its colour; one column per optimizer."""
    fig = Figure(figsize=(15, 7.5), layout="constrained")
    axes = fig.subplots(2, len(results), sharex="col", squeeze=False)
    for column, (name, runs) in enumerate(results.items()):
        title, *_, quantity = METHODS[name]
        top, bottom = axes[0, column], axes[1, column]
        for i, r in enumerate(runs):
            color, th = f"C{i}", r["threshold"]
            top.plot(r["step"], r["loss"], color=color, linewidth=1.2, label=f"η = {r['eta']:g}")
            plot_sharpness(bottom, r["step"], r["sharpness"], label=f"η = {r['eta']:g}",
                           color=color, threshold=th.value, marker=None,
                           threshold_label=f"{th.value * r['eta']:.3g}/η = {number(th.value)}")
        top.set_title(f"{title}\n{quantity} against {runs[0]['threshold'].formula} (dashed)")
        top.set_yscale("log")
        top.set_ylabel("training loss")
        bottom.set_ylabel(f"sharpness {quantity}")
        bottom.set_xlabel("step")
        highest = max(r["threshold"].value for r in runs)
        bottom.set_ylim(0, 1.35 * highest)
        for ax in (top, bottom):
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8, ncol=2 if ax is bottom else 1,
                      loc="lower right" if ax is bottom else "upper right")
    fig.suptitle("Full-batch training on mnist1d-mse (MNIST-1D, 1,000 signals, tanh MLP "
                 "40-100-100-10, squared loss): the sharpness rises to its threshold and hovers")
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/edge_of_stability.png"),
                        help="where to save the figure")
    parser.add_argument("--quick", action="store_true",
                        help="gradient descent at one step size for 200 steps, no figure: "
                             "checks that the script runs (too short to reach the edge)")
    args = parser.parse_args(argv)
    workload = landscape.get_workload(WORKLOAD)
    results: dict[str, list[dict]] = {}
    for name, (_, rates, steps, every, hyper, _) in METHODS.items():
        if args.quick:
            if name != "sgd":
                continue
            rates, steps = rates[-1:], 2 * every
        results[name] = [measure(workload, name, lr, steps, every, hyper) for lr in rates]
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        figure(results).savefig(args.out, dpi=100)
        print(f"figure: {args.out}")
    counts = {}
    for name, runs in results.items():
        title, *_, quantity = METHODS[name]
        print(title)
        lines = [summary(r, quantity) for r in runs]
        for line, _ in lines:
            print(line)
        counts[name] = sum(hovers for _, hovers in lines)
    for name in ("momentum", "adam"):
        if name not in results:
            continue
        formula = results[name][0]["threshold"].formula
        print(f"{METHODS[name][0]}: {counts[name]}/{len(results[name])} step sizes hover within "
              f"{HOVER * 100:g} % of {formula}")
    print(f"edge of stability: {counts['sgd']}/{len(results['sgd'])} step sizes hover within "
          f"{HOVER * 100:g} % of 2/η")


if __name__ == "__main__":
    main()
