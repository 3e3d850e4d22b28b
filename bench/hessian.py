"""Hessian probes: wall time and accuracy of ours against PyHessian on the same model and data.

Model: a 10-64-64-1 ReLU MLP (4,929 parameters) trained briefly by MSE regression on 2,000
samples; the trained weights are copied into an identical ``torch.nn.Sequential`` so that both
tools differentiate the same function (PyHessian gets all 2,000 samples as its one batch, so its
loss is the same full-dataset mean as ours).

- top eigenvalue at tolerance 1e-3 and 1e-6: ours Lanczos (stops when the residual
  ‖Hx − θx‖ ≤ tol·|θ|, which bounds the error) vs PyHessian's power iteration (stops when the
  estimate changes by less than tol, relatively, between iterations; at most 100 iterations);
- trace, 100 Rademacher samples each: PyHessian's early stop is switched off (its relative-change
  rule can stop after a few samples), so both do exactly 100.

Times are steady state (median of ``--repeats`` runs after one warm-up); our one-off compile
time is shown apart. Accuracy is against float64 references: λ_max from scipy's ARPACK ``eigsh``
on our float64 HVP, and the exact trace Σᵢ eᵢᵀ H eᵢ from n HVPs. PyHessian (PyPI ``pyhessian``,
torch CPU) is not a project dependency: without it the bench prints ours alone.

Run: ``python bench/hessian.py [--json out.json] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import landscape
from landscape.hessian import hessian_eigenpairs, hessian_problem, hutchinson_trace
from landscape.models import MLP, pure_model
from landscape.workload import Batch, Dataset, Workload

SIZES = (10, 64, 64, 1)
NUM_SAMPLES = 2000
TOLS = (1e-3, 1e-6)  # the brief's tolerance, then one that asks both for real accuracy
TRACE_SAMPLES = 100


def make_workload() -> Workload:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NUM_SAMPLES, SIZES[0])).astype(np.float32)
    y = np.sin(x @ rng.normal(size=(SIZES[0], 1)) / 2).astype(np.float32)
    init, apply = pure_model(lambda rngs: MLP(SIZES, rngs=rngs))

    def loss(params, state, batch: Batch):
        return jnp.mean((apply(params, state, batch.inputs) - batch.targets) ** 2), {}

    return Workload(name="mlp-10-64-64-1", init=init, loss=loss, train=Dataset(x, y),
                    input_shape=(SIZES[0],), batch_size=NUM_SAMPLES, apply=apply)


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def references(workload: Workload, params, state) -> dict[str, float]:
    """λ_max (ARPACK on our float64 HVP) and the exact trace (n HVPs), in float64."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    with jax.enable_x64(True):
        wl64 = dataclasses.replace(workload, train=Dataset(
            workload.train.inputs.astype(np.float64), workload.train.targets.astype(np.float64)))
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        problem = hessian_problem(wl64, p64, state)
        hvp = jax.jit(problem.matvec)
        n = problem.num_params
        op = LinearOperator((n, n), matvec=lambda v: np.asarray(hvp(jnp.asarray(v.ravel()), problem.operands)),
                            dtype=np.float64)
        lam_max = float(eigsh(op, k=1, which="LA", tol=1e-12, return_eigenvectors=False)[0])
        diag_hvp = jax.jit(jax.vmap(lambda i, ops: problem.matvec(jnp.zeros(n).at[i].set(1.0), ops)[i],
                                    in_axes=(0, None)))
        trace = float(sum(np.sum(diag_hvp(jnp.arange(s, min(s + 256, n)), problem.operands))
                          for s in range(0, n, 256)))
    return {"lambda_max": lam_max, "trace": trace}


def ours(workload: Workload, params, state, repeats: int) -> dict[str, object]:
    problem = hessian_problem(workload, params, state)
    start = time.perf_counter()
    hessian_eigenpairs(problem, top_k=1, tol=TOLS[0])
    hutchinson_trace(problem, num_samples=TRACE_SAMPLES)
    first_call = time.perf_counter() - start
    out: dict[str, object] = {"first_call_s": first_call}
    for tol in TOLS:
        t_eig, pairs = timed(lambda: hessian_eigenpairs(problem, top_k=1, tol=tol), repeats)
        out[f"eig_{tol:g}"] = {"s": t_eig, "value": float(pairs.top.values[0]),
                               "hvps": pairs.iterations}
    t_trace, trace = timed(lambda: hutchinson_trace(problem, num_samples=TRACE_SAMPLES), repeats)
    out["trace"] = {"s": t_trace, "value": trace.estimate, "stderr": trace.stderr,
                    "samples": TRACE_SAMPLES}
    return out


def pyhessian(workload: Workload, params, repeats: int) -> dict[str, float] | None:
    try:
        import torch
        from pyhessian import hessian as PyHessian
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    with torch.no_grad():  # flax kernels are (in, out); torch weights are (out, in)
        for i, linear in enumerate(m for m in model if isinstance(m, torch.nn.Linear)):
            linear.weight.copy_(torch.from_numpy(np.asarray(params[f"dense{i}"]["kernel"]).T.copy()))
            linear.bias.copy_(torch.from_numpy(np.asarray(params[f"dense{i}"]["bias"])))
    data = (torch.from_numpy(workload.train.inputs), torch.from_numpy(workload.train.targets))
    start = time.perf_counter()
    h = PyHessian(model, torch.nn.MSELoss(), data=data, cuda=False)
    setup = time.perf_counter() - start
    with torch.no_grad():
        loss = float(torch.nn.MSELoss()(model(data[0]), data[1]))
    torch.manual_seed(0)
    out: dict[str, object] = {"setup_s": setup, "loss": loss}
    for tol in TOLS:
        h.eigenvalues(maxIter=100, tol=tol, top_n=1)  # warm-up
        t_eig, (values, _) = timed(lambda: h.eigenvalues(maxIter=100, tol=tol, top_n=1), repeats)
        out[f"eig_{tol:g}"] = {"s": t_eig, "value": float(values[0])}
    # tol = -inf: the relative-change test never passes, so exactly 100 samples are drawn.
    t_trace, samples = timed(lambda: h.trace(maxIter=TRACE_SAMPLES, tol=-np.inf), repeats)
    out["trace"] = {"s": t_trace, "value": float(np.mean(samples)), "samples": len(samples),
                    "stderr": float(np.std(samples, ddof=1) / np.sqrt(len(samples)))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--steps", type=int, default=500, help="training steps before probing")
    args = parser.parse_args()

    workload = make_workload()
    result = landscape.train(workload, optax.adam(1e-2), steps=args.steps, seed=0,
                             record_every=args.steps)
    params, state = result.params, result.state
    ref = references(workload, params, state)
    us = ours(workload, params, state, args.repeats)
    them = pyhessian(workload, params, args.repeats)
    n = sum(int(np.size(leaf)) for leaf in jax.tree.leaves(params))
    print(f"model {'-'.join(map(str, SIZES))} MLP, {n} parameters, {NUM_SAMPLES} samples, "
          f"train loss {float(result.losses[-1]):.4g}; float64 references: "
          f"λ_max {ref['lambda_max']:.6g}, trace {ref['trace']:.6g}")
    print(f"ours: first call (compile + run) {us['first_call_s']:.2f} s; "
          f"{jax.device_count()} device(s), {os.cpu_count()} cores")
    if them is None:
        print("PyHessian not installed (pip install pyhessian): showing ours only")
    else:
        print(f"PyHessian: loss on the copied model {them['loss']:.4g}; graph set-up "
              f"{them['setup_s'] * 1e3:.1f} ms (not in the times below)")
    rel = lambda v, r: abs(v - r) / abs(r)  # noqa: E731
    header = (f"{'probe':34s} {'ours s':>9s} {'PyHessian s':>12s} {'speed-up':>9s} "
              f"{'ours rel.err':>13s} {'PyH rel.err':>12s}")
    print(header)
    print("-" * len(header))
    rows = []
    probes = [(f"eig_{tol:g}", f"top eigenvalue (tol {tol:g})", "lambda_max") for tol in TOLS]
    probes.append(("trace", f"trace ({TRACE_SAMPLES} Rademacher samples)", "trace"))
    for key, label, ref_key in probes:
        row = {"probe": label, "ours_s": us[key]["s"],
               "ours_rel_err": rel(us[key]["value"], ref[ref_key])}
        if them is not None:
            row.update(pyhessian_s=them[key]["s"], speedup=them[key]["s"] / us[key]["s"],
                       pyhessian_rel_err=rel(them[key]["value"], ref[ref_key]))
        rows.append(row)
        fmt = lambda k, spec: format(row[k], spec) if k in row else "-"  # noqa: E731
        speedup = fmt("speedup", ".1f") + ("×" if "speedup" in row else "")
        print(f"{label:34s} {row['ours_s']:9.4f} {fmt('pyhessian_s', '.4f'):>12s} "
              f"{speedup:>9s} {row['ours_rel_err']:13.2e} {fmt('pyhessian_rel_err', '.2e'):>12s}")
    hvps = ", ".join(f"{us[f'eig_{tol:g}']['hvps']} (tol {tol:g})" for tol in TOLS)
    print(f"ours: HVPs for λ_max: {hvps}; trace ± stderr {us['trace']['value']:.4g} ± "
          f"{us['trace']['stderr']:.2g}" + ("" if them is None else
          f"; PyHessian trace ± stderr {them['trace']['value']:.4g} ± "
          f"{them['trace']['stderr']:.2g} ({them['trace']['samples']} samples)"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"model": SIZES, "num_params": n, "num_samples": NUM_SAMPLES,
                       "references": ref, "ours": us, "pyhessian": them, "rows": rows}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
