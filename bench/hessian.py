"""Hessian probes: wall time and accuracy of ours against PyHessian on the same model and data.

Cases (``bench/hessian_cases.py``; ``--cases mlp,cnn``):

- ``mlp``: a 10-64-64-1 ReLU MLP (4,929 parameters) trained briefly by MSE regression on 2,000
  samples;
- ``cnn``: the ``digits-cnn`` convnet (two 3×3 convolutions, 16 and 32 channels, average pool,
  dense; 9,930 parameters) trained briefly on the 1,437 digits images, softmax cross-entropy.

The trained weights are copied into an identical torch model so that both tools differentiate
the same function (PyHessian gets the whole training set as its one batch, so its loss is the
same full-dataset mean as ours, and it reuses one gradient graph for every HVP).

- top eigenvalue at tolerance 1e-3 (and, ``mlp``, 1e-6): ours Lanczos with its default rule
  (stops when the residual ‖Hx − θx‖ ≤ tol·|θ|, which bounds the error) and with PyHessian's
  rule (``stop="relative-change"``), vs PyHessian's power iteration (that rule; at most 100
  iterations);
- equal accuracy, the honest comparison: for each start vector, the fewest HVPs after which each
  method's estimate is within 1e-3 (``mlp``: then 1e-5) of the float64 λ_max — read off one
  16-step run of each method (the Ritz values of T_k for ours, every power-iteration estimate
  for PyHessian) — and the time of a run of exactly that many steps;
- trace, 100 Rademacher samples each: PyHessian's early stop is switched off (its relative-change
  rule can stop after a few samples), so both do exactly 100;
- ours only, where PyHessian has no counterpart: one product and λmax at tolerance 1e-3 of the
  Gauss–Newton matrix and the empirical Fisher beside the Hessian's, and λmax of each layer's
  diagonal block of the Hessian (``--blocks layer``) beside the whole one's, each as a paired
  ratio to the Hessian's (the median over repeats of time / the Hessian's time in the same
  repeat: the machine's load hits both alike), errors against float64 ARPACK references; then
  the whole per-block table (λmax, λmin, 100-sample trace per block) once, timed.

Repeat r starts both tools from seed r (ours: ``seed=r``; PyHessian: ``torch.manual_seed(r)``
before its ``torch.randn`` start), and the tools alternate within each repeat so that load from
other processes hits both alike (each timed call after an untimed one, so that the other tool's
spinning threads have gone idle); times are medians over repeats. Our one-off
compile time and PyHessian's graph set-up are shown apart. Each tool runs in two set-ups, all
interleaved, and each row keeps its faster one: ours on all ``--devices`` XLA CPU devices
(default: one per core, as the CLI does; each batch's samples split across them) or on one;
PyHessian with ``torch.set_num_threads(cores)`` or 1 (on a loaded machine torch's OpenMP team
can lose 100× waiting for a descheduled thread). Accuracy is against float64 references: λ_max
from scipy's ARPACK ``eigsh`` on our float64 HVP; the trace exactly, Σᵢ eᵢᵀ H eᵢ from n HVPs
(``mlp``), or (``cnn``, where n HVPs would take most of an hour) a float64 Hutchinson estimate
from 500 probes, whose standard error is printed beside it. PyHessian (PyPI ``pyhessian``,
torch CPU) is not a project dependency: without it the bench prints ours alone.

Run: ``python bench/hessian.py [--cases mlp,cnn] [--json out.json] [--repeats 9] [--devices N]
[--operators-only]`` (the last: the rows PyHessian has no counterpart of, alone).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

TOLS = {"mlp": (1e-3, 1e-6), "cnn": (1e-3,)}  # the brief's tolerance, then real accuracy
TARGETS = {"mlp": (1e-3, 1e-5), "cnn": (1e-3,)}  # relative errors for the equal-accuracy rows
MAX_STEPS = 16  # most HVPs tried per start vector when looking for a target error
TRACE_SAMPLES = 100
REFERENCE_PROBES = 500  # float64 Hutchinson probes of the trace reference where n is large
EXACT_TRACE_MAX = 5000  # parameters up to which the reference trace is exact (n HVPs)
STOPS = {"residual": "residual rule", "relative-change": "PyHessian's rule"}


def interleaved(fns: dict[str, Callable[[int], object]], repeats: int) -> dict[str, dict]:
    """Run every ``fn(seed)`` once per repeat (seed = repeat), alternating between them; the
    median time and every output, per name.

    Each timed call follows an untimed one with the same seed: thread pools spin for a while
    after their work (torch's OpenMP team, XLA's Eigen pool), and the untimed call lets the
    other tool's threads go idle before the clock starts.
    """
    times = {name: [] for name in fns}
    outputs = {name: [] for name in fns}
    for seed in range(repeats):
        for name, fn in fns.items():
            fn(seed)
            start = time.perf_counter()
            out = fn(seed)
            times[name].append(time.perf_counter() - start)
            outputs[name].append(out)
    return {name: {"s": statistics.median(times[name]), "times": times[name],
                   "outputs": outputs[name]} for name in fns}


def paired_ratio(out: dict, name: str, base: str) -> float:
    """The median over repeats of ``name``'s time / ``base``'s time in the same repeat."""
    return statistics.median(a / b for a, b in zip(out[name]["times"], out[base]["times"]))


def references(workload, params, state) -> dict[str, float]:
    """λ_max (ARPACK on our float64 HVP) and the trace in float64: exact (n HVPs) for up to
    ``EXACT_TRACE_MAX`` parameters, else a ``REFERENCE_PROBES``-probe Hutchinson estimate."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    from landscape.curvature import hessian_problem, hutchinson_trace
    from landscape.workload import Dataset

    with jax.enable_x64(True):
        wl64 = dataclasses.replace(workload, train=Dataset(
            workload.train.inputs.astype(np.float64), workload.train.targets))
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        problem = hessian_problem(wl64, p64, state)
        n = problem.num_params
        op = LinearOperator(
            (n, n), dtype=np.float64,
            matvec=lambda v: np.asarray(problem.hvp(jnp.asarray(v.ravel()))))
        lam_max = float(eigsh(op, k=1, which="LA", tol=1e-12, return_eigenvectors=False)[0])
        if n <= EXACT_TRACE_MAX:
            eye = np.eye(n)
            trace = float(sum(np.trace(np.asarray(problem.hvps(jnp.asarray(eye[s:s + 256])))
                                       [:, s:s + 256]) for s in range(0, n, 256)))
            return {"lambda_max": lam_max, "trace": trace, "trace_stderr": 0.0}
        estimate = hutchinson_trace(problem, num_samples=REFERENCE_PROBES, seed=10_000)
    return {"lambda_max": lam_max, "trace": estimate.estimate, "trace_stderr": estimate.stderr}


class PyHessianRunner:
    """PyHessian on a torch twin of the model, with its HVPs counted (and its power-iteration
    estimates recorded) on demand."""

    def __init__(self, model, criterion, data):
        import torch

        # The package re-exports the class under the module's name: fetch the module itself.
        module = importlib.import_module("pyhessian.hessian")

        self.threads = os.cpu_count() or 1
        torch.set_num_threads(self.threads)
        start = time.perf_counter()
        self.h = module.hessian(model, criterion, data=data, cuda=False)
        self.setup_s = time.perf_counter() - start
        with torch.no_grad():
            self.loss = float(criterion(model(data[0]), data[1]))
        self.torch, self.module = torch, module

    def eigenvalue(self, seed: int, *, tol: float, max_iter: int = 100) -> float:
        self.torch.manual_seed(seed)
        values, _ = self.h.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
        return float(values[0])

    def count_hvps(self, fn: Callable[[], object]) -> int:
        return len(self.recorded(fn))

    def recorded(self, fn: Callable[[], object]) -> list[float]:
        """Run ``fn`` and return the Rayleigh quotient vᵀHv of every HVP it made: for power
        iteration, the eigenvalue estimate after each iteration (what ``eigenvalues`` compares)."""
        from pyhessian.utils import group_product

        real, quotients = self.module.hessian_vector_product, []

        def recording(grads, params, v):
            hv = real(grads, params, v)
            quotients.append(float(group_product(hv, v)))
            return hv

        self.module.hessian_vector_product = recording
        try:
            fn()
        finally:
            self.module.hessian_vector_product = real
        return quotients

    def hvp_fn(self) -> Callable[[], object]:
        from pyhessian.utils import hessian_vector_product

        v = [self.torch.randn_like(p) for p in self.h.params]
        return lambda: hessian_vector_product(self.h.gradsH, self.h.params, v)


def first_reaching(errors: list[float], target: float) -> int | None:
    """The fewest steps (1-based) whose error is within ``target`` (None if none)."""
    return next((k + 1 for k, e in enumerate(errors) if e <= target), None)


def ritz_errors(problem, seed: int, rel: Callable[[float], float]) -> list[float]:
    """Our top Ritz value's error after k = 1 … MAX_STEPS Lanczos steps from the start vector
    ``hessian_eigenpairs(seed=seed)`` uses: one tridiagonalization, the top eigenvalue of each
    leading T_k (what the convergence test sees after k steps)."""
    from landscape.curvature.eigen import _start_vector
    from landscape.curvature.host_loop import lanczos_tridiagonal_on_host
    from landscape.curvature.lanczos import lanczos_tridiagonal

    v0, key = _start_vector(seed, problem.params.shape, problem.params.dtype)
    v0 = jax.device_put(v0, problem.params.sharding)
    if problem.on_host:
        state = lanczos_tridiagonal_on_host(problem.operator, v0, MAX_STEPS, key)
    else:
        state = lanczos_tridiagonal(problem.matvec, problem.operands, v0, MAX_STEPS, key)
    alphas, betas = (np.asarray(a, np.float64) for a in (state.alphas, state.betas))
    return [rel(float(np.linalg.eigvalsh(np.diag(alphas[:k]) + np.diag(betas[:k - 1], 1)
                                         + np.diag(betas[:k - 1], -1))[-1]))
            for k in range(1, MAX_STEPS + 1)]


def arpack_top(problem) -> float:
    """λmax of a float64 problem's operator by ARPACK (scipy ``eigsh``) to 1e-12."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    n = problem.num_params
    op = LinearOperator((n, n), dtype=np.float64,
                        matvec=lambda v: np.asarray(problem.hvp(jnp.asarray(v.ravel()))))
    return float(eigsh(op, k=1, which="LA", tol=1e-12, return_eigenvectors=False)[0])


def operator_rows(workload, params, state, problem, args) -> dict:
    """The Gauss–Newton matrix and the empirical Fisher beside the Hessian, and each layer's
    block beside the whole Hessian: ours only (PyHessian has no counterpart)."""
    from landscape.curvature import (
        block_summaries,
        hessian_eigenpairs,
        hessian_problem,
        parameter_blocks,
    )
    from landscape.workload import Dataset

    operators = ("hessian", "ggn", "fisher")
    blocks = parameter_blocks(params, "layer")
    with jax.enable_x64(True):  # the float64 references
        wl64 = dataclasses.replace(workload, train=Dataset(
            workload.train.inputs.astype(np.float64), workload.train.targets))
        p64 = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        problems64 = {op: hessian_problem(wl64, p64, state, operator=op) for op in operators}
        refs = {op: arpack_top(p) for op, p in problems64.items()}
        refs.update({b.name: arpack_top(problems64["hessian"].restricted(b.indices))
                     for b in blocks})
    problems = {"hessian": problem, **{op: hessian_problem(workload, params, state, operator=op)
                                       for op in operators[1:]}}
    problems.update({b.name: problem.restricted(b.indices) for b in blocks})
    rows = []

    def add(label, out, name, base, *, hvps=None, err=None):
        rows.append({"probe": label, "ours_s": out[name]["s"], "ratio": paired_ratio(out, name,
                                                                                    base),
                     "hvps": hvps, "rel_err": err})

    v = jax.random.normal(jax.random.key(1), problem.params.shape)
    product = interleaved({op: lambda _, p=problems[op]: p.hvp(v).block_until_ready()
                           for op in operators}, args.hvp_repeats)
    for op in operators:
        add(f"one product, {op}", product, op, "hessian")
    tol = 1e-3
    top = lambda p: lambda seed: hessian_eigenpairs(p, top_k=1, tol=tol, seed=seed)  # noqa: E731
    median = statistics.median
    for group in (operators, ("hessian", *(b.name for b in blocks))):
        out = interleaved({name: top(problems[name]) for name in group}, args.repeats)
        for name in group:
            pairs = out[name]["outputs"]
            what = (name if group is operators else "hessian, beside the blocks"
                    if name == "hessian" else f"block {name} ({problems[name].num_params:,})")
            add(f"λmax tol {tol:g}, {what}", out, name, "hessian",
                hvps=median(p.iterations for p in pairs),
                err=median(abs(p.top.values[0] - refs[name]) / abs(refs[name]) for p in pairs))
    start = time.perf_counter()
    table = block_summaries(problem, blocks, tol=tol, trace_samples=TRACE_SAMPLES)
    table_s = time.perf_counter() - start

    print(f"ours only (PyHessian has no counterpart): paired ratios to the whole Hessian's time "
          f"(median over {args.repeats} repeats; one product: {args.hvp_repeats})")
    header = f"{'probe':44s} {'ours ms':>9s} {'× Hessian':>9s} {'HVPs':>6s} {'ours err':>9s}"
    print(header)
    print("-" * len(header))
    for r in rows:
        hvps = "-" if r["hvps"] is None else f"{r['hvps']:g}"
        err = "-" if r["rel_err"] is None else f"{r['rel_err']:9.1e}"
        print(f"{r['probe']:44s} {r['ours_s'] * 1e3:9.2f} {r['ratio']:9.2f} {hvps:>6s} "
              f"{err:>9s}")
    print(f"block table by layer (λmax, λmin to tol {tol:g}, max 100 steps; trace "
          f"{TRACE_SAMPLES} samples), once: {table_s:.2f} s")
    for s in table:
        print(f"  {s.name:8s} {s.size:6,d} params  λmax {s.lambda_max:9.4g}  λmin "
              f"{s.lambda_min:10.3g}  trace {s.trace:9.4g} ± {s.trace_stderr:.2g}  "
              f"{s.lanczos_steps} steps{'' if s.converged else ' (not converged)'}")
    return {"rows": rows, "references": refs, "block_table_s": table_s,
            "block_table": [s.row() for s in table]}


def run_case(case, args) -> dict:
    import landscape
    from landscape.curvature import hessian_eigenpairs, hessian_problem, hutchinson_trace

    workload = case.workload
    result = landscape.train(workload, optax.adam(case.lr), steps=case.train_steps, seed=0,
                             record_every=case.train_steps)
    params, state = result.params, result.state
    if args.operators_only:
        problem = hessian_problem(workload, params, state)
        print(f"\n[{case.name}] {case.describe}: {problem.num_params} parameters, train loss "
              f"{float(result.losses[-1]):.4g}; {jax.device_count()} XLA CPU device(s) on "
              f"{os.cpu_count()} cores")
        return {"case": case.name, "model": case.describe, "num_params": problem.num_params,
                "operators": operator_rows(workload, params, state, problem, args)}
    ref = references(workload, params, state)
    lam = ref["lambda_max"]
    rel = lambda v: abs(v - lam) / abs(lam)  # noqa: E731
    problem = hessian_problem(workload, params, state)
    try:
        them = PyHessianRunner(*case.torch_twin(params))
    except ImportError:
        them = None

    def ours_eig(tol, stop="residual", max_iter=100, problem=problem):
        return lambda seed: hessian_eigenpairs(problem, top_k=1, tol=tol, stop=stop,
                                               max_iter=max_iter, seed=seed)

    # Each tool runs in every set-up, interleaved, and each row keeps its faster one: on a loaded
    # machine a team of threads (torch's OpenMP, or XLA devices that all-reduce) waits for its
    # slowest member, and one thread can win by 100×; on an idle one the team wins.
    problems = {jax.device_count(): problem}
    if jax.device_count() > 1:
        problems[1] = hessian_problem(workload, params, state, devices=jax.devices()[:1])
    threads = [] if them is None else sorted({them.threads, 1}, reverse=True)

    def setups(ours: Callable, pyh: Callable | None) -> dict[str, Callable[[int], object]]:
        """``ours(problem) -> fn(seed)`` and ``pyh() -> fn(seed)`` in every set-up."""
        fns = {f"ours {c}d": ours(p) for c, p in problems.items()}
        for t in threads if pyh is not None else ():
            fns[f"PyH {t}t"] = lambda seed, t=t, f=pyh(): (
                them.torch.set_num_threads(t), f(seed))[1]
        for fn in fns.values():
            fn(0)
        return fns

    def best(out: dict, tool: str) -> tuple[str, dict]:
        name = min((k for k in out if k.startswith(tool)), key=lambda k: out[k]["s"])
        return name.split()[-1], out[name]

    # One HVP each, side by side: what every method below is made of.
    v = jax.random.normal(jax.random.key(1), problem.params.shape)
    hvp = interleaved(setups(
        lambda p: (lambda _: p.hvp(jax.device_put(v, p.params.sharding)).block_until_ready()),
        them and (lambda: (lambda _, f=them.hvp_fn(): f()))), args.hvp_repeats)

    start = time.perf_counter()
    ours_eig(TOLS[case.name][0])(0)
    hutchinson_trace(problem, num_samples=TRACE_SAMPLES)
    first_call = time.perf_counter() - start

    rows = []
    median = statistics.median

    def row(label, out, *, ours_hvps, pyh_hvps=None, ours_err, pyh_err=None):
        """A table row from the faster set-up of each tool; ``*_err`` map outputs to errors."""
        setup, ours = best(out, "ours")
        r = {"probe": label, "ours_s": ours["s"], "ours_setup": setup, "ours_hvps": ours_hvps,
             "ours_rel_err": median(map(ours_err, ours["outputs"]))}
        if them is not None:
            setup, pyh = best(out, "PyH")
            r.update(pyhessian_s=pyh["s"], pyhessian_setup=setup, speedup=pyh["s"] / ours["s"],
                     pyhessian_hvps=pyh_hvps,
                     pyhessian_rel_err=median(map(pyh_err, pyh["outputs"])))
        rows.append(r)

    lam_err = lambda pairs: rel(pairs.top.values[0])  # noqa: E731
    seeds = range(args.repeats)
    for tol in TOLS[case.name]:
        pyh = them and (lambda tol=tol: lambda seed: them.eigenvalue(seed, tol=tol))
        pyh_hvps = None if them is None else median(
            them.count_hvps(lambda s=s: them.eigenvalue(s, tol=tol)) for s in seeds)
        for stop, name in STOPS.items():
            out = interleaved(setups(lambda p: ours_eig(tol, stop, problem=p), pyh), args.repeats)
            row(f"λmax tol {tol:g}, ours: {name}", out,
                ours_hvps=median(p.iterations for p in best(out, "ours")[1]["outputs"]),
                ours_err=lam_err, pyh_hvps=pyh_hvps, pyh_err=rel)

    # Equal accuracy: per start vector, the fewest steps that reach each target error.
    tiny = 1e-30  # never reached: exactly max_iter steps
    our_errors = [ritz_errors(problem, s, rel) for s in seeds]
    pyh_errors = None if them is None else [
        [rel(q) for q in them.recorded(lambda s=s: them.eigenvalue(s, tol=-np.inf,
                                                                   max_iter=MAX_STEPS))]
        for s in seeds]
    for target in TARGETS[case.name]:
        ours_k = [first_reaching(e, target) or MAX_STEPS for e in our_errors]
        pyh_k = None if them is None else [first_reaching(e, target) or MAX_STEPS
                                           for e in pyh_errors]
        pyh = them and (lambda ks=pyh_k: lambda seed: them.eigenvalue(seed, tol=-np.inf,
                                                                      max_iter=ks[seed]))
        out = interleaved(setups(
            lambda p, ks=ours_k: lambda seed: ours_eig(tiny, max_iter=ks[seed], problem=p)(seed),
            pyh), args.repeats)
        row(f"λmax to rel. error ≤ {target:g} (fewest HVPs)", out, ours_hvps=median(ours_k),
            ours_err=lam_err, pyh_hvps=None if them is None else median(pyh_k), pyh_err=rel)

    # tol = -inf: PyHessian's relative-change test never passes, so exactly 100 samples.
    out = interleaved(setups(
        lambda p: lambda seed: hutchinson_trace(p, num_samples=TRACE_SAMPLES, seed=seed),
        them and (lambda: lambda seed: them.h.trace(maxIter=TRACE_SAMPLES, tol=-np.inf))),
        args.repeats)
    trace_rel = lambda x: abs(x - ref["trace"]) / abs(ref["trace"])  # noqa: E731
    row(f"trace ({TRACE_SAMPLES} Rademacher samples)", out, ours_hvps=TRACE_SAMPLES,
        pyh_hvps=TRACE_SAMPLES, ours_err=lambda t: trace_rel(t.estimate),
        pyh_err=lambda t: trace_rel(float(np.mean(t))))

    n = problem.num_params
    trace_ref = (f"trace {ref['trace']:.6g}" if not ref["trace_stderr"] else
                 f"trace {ref['trace']:.6g} ± {ref['trace_stderr']:.2g} ({REFERENCE_PROBES} "
                 "probes)")
    print(f"\n[{case.name}] {case.describe}: {n} parameters, train loss "
          f"{float(result.losses[-1]):.4g}; float64 references: λ_max {lam:.6g}, {trace_ref}")
    print(f"ours: {jax.device_count()} XLA CPU device(s) on {os.cpu_count()} cores; first "
          f"call (compile + run) {first_call:.2f} s, not in the times below")
    if them is None:
        print("PyHessian not installed (pip install pyhessian): showing ours only")
    else:
        print(f"PyHessian: torch {them.torch.__version__}; loss on the copied model "
              f"{them.loss:.4g}; graph set-up {them.setup_s * 1e3:.1f} ms, not in the times below")
    print(f"one HVP (median of {args.hvp_repeats}): " + ", ".join(
        f"{k} {v['s'] * 1e3:.2f} ms" for k, v in hvp.items()))
    print(f"times: medians over {args.repeats} start vectors (seed = repeat), each tool in its "
          "faster set-up (Nd: N XLA devices, Nt: N torch threads)")
    header = (f"{'probe':44s} {'ours ms':>8s} {'PyH ms':>8s} {'speed-up':>8s} {'set-up':>6s} "
              f"{'HVPs':>6s} {'ours err':>9s} {'PyH err':>9s}")
    print(header)
    print("-" * len(header))
    for r in rows:
        fmt = lambda k, spec: format(r[k], spec) if r.get(k) is not None else "-"  # noqa: E731
        speedup = fmt("speedup", ".2f") + ("×" if "speedup" in r else "")
        hvps = f"{r['ours_hvps']:g}/" + fmt("pyhessian_hvps", "g")
        setup = r["ours_setup"] + "/" + r.get("pyhessian_setup", "-")
        pyh_ms = format(r["pyhessian_s"] * 1e3, ".2f") if "pyhessian_s" in r else "-"
        print(f"{r['probe']:44s} {r['ours_s'] * 1e3:8.2f} {pyh_ms:>8s} {speedup:>8s} "
              f"{setup:>6s} {hvps:>6s} {r['ours_rel_err']:9.1e} "
              f"{fmt('pyhessian_rel_err', '9.1e'):>9s}")
    print("HVPs: ours/PyHessian (medians); err: relative error against the float64 reference")
    operators = operator_rows(workload, params, state, problem, args)
    return {"case": case.name, "model": case.describe, "num_params": n,
            "devices": jax.device_count(), "first_call_s": first_call,
            "hvp_s": {k: v["s"] for k, v in hvp.items()}, "references": ref, "rows": rows,
            "operators": operators}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="mlp,cnn", help="comma-separated: mlp, cnn")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--repeats", type=int, default=9,
                        help="timed runs per measurement (one start vector each)")
    parser.add_argument("--hvp-repeats", type=int, default=30, help="timed single HVPs")
    parser.add_argument("--steps", type=int, default=500, help="training steps before probing")
    parser.add_argument("--devices", type=int, default=os.cpu_count() or 1,
                        help="XLA CPU devices for ours (default: one per core)")
    parser.add_argument("--operators-only", action="store_true",
                        help="only the Gauss–Newton, Fisher and per-block rows (ours alone)")
    args = parser.parse_args()
    jax.config.update("jax_num_cpu_devices", args.devices)  # before JAX starts its backend

    from hessian_cases import CASES

    names = [n.strip() for n in args.cases.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        parser.error(f"--cases: unknown {unknown}; choose from {', '.join(CASES)}")
    results = [run_case(CASES[name](args.steps), args) for name in names]
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cases": results}, f, indent=2)
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
