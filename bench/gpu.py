"""The toolkit at real size on one accelerator: ResNet-56 on 50,000 CIFAR-shaped images.

One script, one JSON (``--out``), sized to fit ``--budget-s`` (default 420 s: it must fit 8
minutes on one H100 with start-up and compilation):

1. the data: 50,000 synthetic training images written in CIFAR-10's real binary format (random
   bytes, labels 0-9; nothing downloaded) and read back by the ``cifar10-resnet56`` reader;
2. the full-data Hessian at ``highest`` precision (every product in full float32): the time of
   one HVP (median of three), λmax to a relative residual of 1e-3 (Lanczos), and a
   ``--probes``-probe Hutchinson trace (fewer where the budget runs out: the count is in the
   JSON);
3. a ``--grid`` × ``--grid`` (51 × 51) filter-normalized scan of the training loss at
   ``default`` precision (the backend's: TF32 on NVIDIA) and at ``highest``: a ``--partial``
   × ``--partial`` (26 × 26) scan first, whose steady rate (points after the first chunk,
   which compiles, over the time since) extrapolates the full grid; the full grid runs where
   that estimate fits what is left of the budget, else the JSON says it was extrapolated;
4. the device's peak memory after each phase (``Device.memory_stats()['peak_bytes_in_use']``,
   where the backend reports it).

The model is at its initialization (the cost of a point does not depend on the weights).
``--tiny`` runs the same code on a ResNet-8 of width 4 and 512 images (an 8 × 8 partial
scan), on whatever device is there: about 2 minutes on 2 CPU cores; ``tests/test_bench_gpu.py``
runs it smaller still. Run: ``PYTHONPATH=. python bench/gpu.py --out gpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

GOAL = "51x51 ResNet-56 surface over 50,000 images in <= 600 s; lambda_max in <= 60 s (one H100)"


def synthetic_cifar(folder: str, num_train: int, seed: int = 0) -> None:
    """``num_train`` random images in five training batches and 100 in the test batch, in the
    binary format of https://www.cs.toronto.edu/~kriz/cifar.html."""
    from landscape.data.cifar import TEST_FILE, TRAIN_FILES, write_cifar_batch

    rng = np.random.default_rng(seed)
    parts = np.array_split(np.arange(num_train), len(TRAIN_FILES))
    for name, part in zip(TRAIN_FILES, parts):
        write_cifar_batch(os.path.join(folder, name),
                          rng.integers(0, 256, (len(part), 32, 32, 3), np.uint8),
                          rng.integers(0, 10, len(part)))
    write_cifar_batch(os.path.join(folder, TEST_FILE),
                      rng.integers(0, 256, (100, 32, 32, 3), np.uint8),
                      rng.integers(0, 10, 100))


def workload_for(folder: str, tiny: bool):
    from landscape.data import cifar

    if not tiny:
        return cifar.cifar10_resnet56(folder)
    return cifar.cifar_workload("cifar10-resnet8-w4", cifar._resnet(8, 4, "projection"),
                                *cifar.read_cifar10(folder), batch_size=128)


def peak_bytes() -> int | None:
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # a backend without memory statistics (the CPU)
        return None
    return stats.get("peak_bytes_in_use")


class Clock:
    """Seconds since start, against the budget."""

    def __init__(self, budget_s: float):
        self.start, self.budget_s = time.perf_counter(), budget_s

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    @property
    def left(self) -> float:
        return self.budget_s - self.elapsed


def hessian_phase(workload, params, state, *, probes: int, clock: Clock) -> dict:
    """One HVP's time, λmax to 1e-3 and a Hutchinson trace of the full-data Hessian."""
    from landscape.curvature import hessian_eigenpairs, hessian_problem, hutchinson_trace
    from landscape.curvature.operator import smaller_on_oom
    from landscape.precision import computing_in

    out: dict = {"precision": "highest", "shrinks": []}
    with computing_in("highest"):
        problem = hessian_problem(workload, params, state)
        out.update(num_params=problem.num_params, batch_size=problem.batch_size,
                   summed_on="host" if problem.on_host else "device")
        v = jax.device_put(jax.random.normal(jax.random.key(1), problem.params.shape),
                           problem.params.sharding)
        said = lambda old, new, what: out["shrinks"].append([old, new])  # noqa: E731

        def hvp_times(p):
            times = []
            for _ in range(4):  # the first compiles
                start = time.perf_counter()
                p.hvp(v).block_until_ready()
                times.append(time.perf_counter() - start)
            return times

        times, problem = smaller_on_oom(problem, hvp_times, on_shrink=said)
        out.update(hvp_first_s=times[0], hvp_s=statistics.median(times[1:]),
                   batch_size=problem.batch_size)
        start = time.perf_counter()
        pairs, problem = smaller_on_oom(
            problem, lambda p: hessian_eigenpairs(p, top_k=1, tol=1e-3, max_iter=100),
            on_shrink=said)
        out["lambda_max"] = {"value": float(pairs.top.values[0]),
                             "residual": float(pairs.top.residuals[0]),
                             "converged": bool(pairs.top.converged[0]),
                             "hvps": pairs.iterations, "s": time.perf_counter() - start}
        out["peak_bytes_after_lambda_max"] = peak_bytes()
        # The trace in batches of 10 probes, as long as the budget allows (a third of it).
        start, samples = time.perf_counter(), []
        allowed = max(clock.left / 3, 1.0)
        for batch in range(0, probes, 10):
            take = min(10, probes - batch)
            estimate = hutchinson_trace(problem, num_samples=max(take, 2), batch=take,
                                        seed=batch)
            samples.extend(estimate.samples[:take].tolist())
            if time.perf_counter() - start > allowed and len(samples) < probes:
                break
        samples = np.asarray(samples)
        out["trace"] = {"estimate": float(samples.mean()),
                        "stderr": float(samples.std(ddof=1) / np.sqrt(len(samples))),
                        "probes": len(samples), "probes_asked": probes,
                        "s": time.perf_counter() - start}
        out["peak_bytes_after_trace"] = peak_bytes()
    return out


def scan_phase(workload, params, state, *, precision: str, grid_n: int, partial_n: int,
               clock: Clock, share: float, strategy: str = "auto") -> dict:
    """A ``partial_n``² filter-normalized scan, its steady rate, and the ``grid_n``² one where
    it fits ``share`` of what is left of the budget (else its extrapolated time)."""
    from landscape.directions import random_plane
    from landscape.grid import Grid
    from landscape.scan import scan_surface

    objective = workload.objective(state)
    plane = random_plane(params, seed=0, normalization="filter", ignore="biasbn", dims=2)
    out: dict = {"precision": precision}
    runs = [("partial", partial_n)]
    for name, n in runs:
        grid = Grid.from_specs(f"-1:1:{n}", f"-1:1:{n}")
        marks: list[tuple[float, int]] = []
        plans: list = []
        start = time.perf_counter()
        surface = scan_surface(objective, plane, grid, precision=precision,
                               strategy=strategy, on_plan=plans.append,
                               on_progress=lambda done, total: marks.append(
                                   (time.perf_counter(), done)))
        wall = time.perf_counter() - start
        first_t, first_done = marks[0] if marks else (start, 0)
        steady = ((marks[-1][1] - first_done) / (marks[-1][0] - first_t)
                  if len(marks) > 1 and marks[-1][0] > first_t else grid.num_points / wall)
        loss = np.asarray(surface["train_loss"])
        plan = plans[-1] if plans else None
        out[name] = {"points": grid.num_points, "wall_s": wall, "steady_pt_per_s": steady,
                     "first_chunk_s": first_t - start, "finite": int(np.isfinite(loss).sum()),
                     "centre_loss": float(loss[n // 2, n // 2]),
                     "strategy": None if plan is None else str(getattr(plan, "strategy", plan)),
                     "chunk": None if plan is None else getattr(plan, "chunk", None)}
        if name == "partial":
            estimate = out[name]["first_chunk_s"] + grid_n * grid_n / steady
            out["full_estimate_s"] = estimate
            if estimate <= share * clock.left:
                runs.append(("full", grid_n))
            out["full"] = None
    out["full_extrapolated"] = out["full"] is None
    out["peak_bytes"] = peak_bytes()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="a ResNet-8 (width 4) on 512 images: the same code, on any device")
    parser.add_argument("--out", default="gpu.json", help="the JSON to write")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds for the whole run [default: 420; --tiny: 90]")
    parser.add_argument("--grid", type=int, default=51, help="points per axis of the scan")
    parser.add_argument("--partial", type=int, default=None,
                        help="points per axis of the scan that sets the rate [default: 26; "
                             "--tiny: 8]")
    parser.add_argument("--probes", type=int, default=100, help="Hutchinson probes")
    parser.add_argument("--images", type=int, default=None,
                        help="training images [default: 50,000; --tiny: 512]")
    parser.add_argument("--strategy", default="auto",
                        help="the engine's strategy for the scans (auto: timed choice)")
    args = parser.parse_args(argv)
    budget = args.budget_s or (90.0 if args.tiny else 420.0)
    images = args.images or (512 if args.tiny else 50_000)
    partial = args.partial or (8 if args.tiny else 26)
    clock = Clock(budget)
    device = jax.devices()[0]
    report: dict = {
        "goal": GOAL, "tiny": args.tiny, "budget_s": budget, "images": images,
        "device": {"platform": device.platform, "kind": device.device_kind,
                   "count": jax.device_count()},
        "versions": {"jax": jax.__version__, "python": platform.python_version()},
    }
    with tempfile.TemporaryDirectory(prefix="landscape-gpu-bench-") as folder:
        start = time.perf_counter()
        synthetic_cifar(folder, images)
        workload = workload_for(folder, args.tiny)
        report["data_s"] = time.perf_counter() - start
    params, state = workload.init(jax.random.key(0))
    report["model"] = workload.name
    report["num_params"] = int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))
    report["hessian"] = hessian_phase(workload, params, state, probes=args.probes, clock=clock)
    print(f"hessian: one HVP {report['hessian']['hvp_s']:.3f} s; lambda_max "
          f"{report['hessian']['lambda_max']['value']:.6g} in "
          f"{report['hessian']['lambda_max']['s']:.1f} s", file=sys.stderr)
    report["scans"] = {}
    for number, precision in enumerate(("default", "highest")):
        report["scans"][precision] = scan_phase(
            workload, params, state, precision=precision, grid_n=args.grid,
            partial_n=partial, clock=clock, share=0.9 if number else 0.45,
            strategy=args.strategy)
        scan = report["scans"][precision]
        print(f"scan at {precision}: {scan['partial']['steady_pt_per_s']:.2f} pt/s; "
              f"{args.grid}x{args.grid} {'extrapolated' if scan['full_extrapolated'] else 'run'}"
              f" ~{scan['full_estimate_s']:.0f} s", file=sys.stderr)
    report["total_s"] = clock.elapsed
    report["peak_bytes"] = peak_bytes()
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"wrote {args.out} ({report['total_s']:.0f} s)", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
