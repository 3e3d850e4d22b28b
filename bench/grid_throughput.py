"""Grid-evaluation throughput: points/s of ``landscape.evaluate_surface`` side by side with

- a naive ``jax.jit(jax.vmap(loss))`` over the points (one device, no chunking tricks),
- Li et al.'s per-point method in PyTorch (copy θ + αd1 + βd2 into the model, one forward
  pass over the data per point; CPU wheel, all cores),
- the machine's f32 matmul peak (jax and numpy), to express our useful GFLOP/s as a fraction.

Useful FLOPs are those of the plain forward pass at every point (2·MACs per sample), whichever
formulation computes it. Run: ``python bench/grid_throughput.py [--json out.json] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import jax

jax.config.update("jax_num_cpu_devices", os.cpu_count() or 1)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import landscape  # noqa: E402
from landscape.directions import random_plane  # noqa: E402
from landscape.grid import Grid, evaluate_surface, point_params  # noqa: E402
from landscape.models import MLP, mlp_after_stem, pure_model  # noqa: E402
from landscape.workload import Batch, Dataset, LinearStem, Workload, dataset_mean  # noqa: E402


def mlp_workload(sizes, num_samples, task, batch_size, seed=0) -> Workload:
    rng = np.random.default_rng(seed)
    if task == "regression":
        x = np.linspace(-np.pi, np.pi, num_samples, dtype=np.float32)[:, None]
        y = np.sin(x)
    else:
        x = rng.normal(size=(num_samples, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], num_samples).astype(np.int32)
    init, apply = pure_model(lambda rngs: MLP(sizes, rngs=rngs))

    def from_outputs(out, batch):
        if task == "regression":
            return jnp.mean((out - batch.targets) ** 2), {}
        logp = jax.nn.log_softmax(out)
        nll = -jnp.mean(jnp.take_along_axis(logp, batch.targets[:, None], axis=1))
        return nll, {"acc": jnp.mean(jnp.argmax(out, -1) == batch.targets)}

    return Workload(
        name="-".join(map(str, sizes)),
        init=init,
        loss=lambda p, s, b: from_outputs(apply(p, s, b.inputs), b),
        train=Dataset(x, y),
        metrics=() if task == "regression" else ("acc",),
        task=task,
        input_shape=(sizes[0],),
        batch_size=batch_size,
        apply=apply,
        stem=LinearStem(("dense0", "kernel"), ("dense0", "bias"),
                        lambda p, s, pre, b: from_outputs(mlp_after_stem(p, pre), b)),
    )


def macs_per_sample(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def timed(fn, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)  # the least disturbed run: the machine is shared


def matmul_peak() -> dict[str, float]:
    n = 2048
    a = jnp.asarray(np.random.default_rng(0).normal(size=(n, n)), jnp.float32)
    on_one = jax.device_put(a, jax.devices()[0])
    mm = jax.jit(lambda x: x @ x)
    mm(on_one).block_until_ready()
    t_jax = timed(lambda: mm(on_one).block_until_ready(), 5)
    an = np.asarray(a)
    t_np = timed(lambda: an @ an, 5)
    flops = 2 * n**3
    return {"jax_gflops": flops / t_jax / 1e9, "numpy_gflops": flops / t_np / 1e9}


def naive_vmap_seconds(workload, plane, grid) -> float:
    full, rest = workload.train.split_batches(workload.batch_size)
    coords = jnp.asarray(grid.coordinates(), jnp.float32)

    @jax.jit
    def run(coords):
        return jax.vmap(
            lambda ab: dataset_mean(workload.loss, point_params(plane, ab[0], ab[1]), {}, full, rest)["loss"]
        )(coords)

    run(coords).block_until_ready()
    return timed(lambda: run(coords).block_until_ready())


def ours_rates(workload, plane, grid, chunk, use_stem=True, repeats=3) -> dict[str, float]:
    """One ``evaluate_surface`` call per repeat (each traces and compiles, as a CLI scan does).
    ``steady``: points/s from the first chunk's arrival to the last's (the engine running);
    ``startup``: seconds before the engine runs (trace, compile, first chunk less its share);
    ``total``: points/s of the whole call. The best of ``repeats`` calls."""
    metrics = ("loss",) + workload.metrics
    best = None
    for _ in range(repeats):
        arrivals = []
        start = time.perf_counter()
        evaluate_surface(workload, {}, plane, grid, metrics=metrics, chunk=chunk, use_stem=use_stem,
                         on_chunk=lambda index, _: arrivals.append((time.perf_counter(), len(index))))
        total = time.perf_counter() - start
        if len(arrivals) < 3:
            raise SystemExit(f"grid of {grid.num_points} points too small for chunks of {chunk}")
        steady = sum(n for _, n in arrivals[1:]) / (arrivals[-1][0] - arrivals[0][0])
        row = {"steady": steady, "startup": arrivals[0][0] - start - arrivals[0][1] / steady,
               "total": grid.num_points / total}
        best = row if best is None or row["steady"] > best["steady"] else best
    return best


def torch_seconds_per_point(workload, plane, sizes, num_points) -> float:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers).eval()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    to_t = lambda tree, i, k: torch.from_numpy(np.array(tree[f"dense{i}"][k]))  # noqa: E731
    origin = [(to_t(plane.origin, i, "kernel").T.contiguous(), to_t(plane.origin, i, "bias")) for i in range(len(linears))]
    d1 = [(to_t(plane.d1, i, "kernel").T.contiguous(), to_t(plane.d1, i, "bias")) for i in range(len(linears))]
    d2 = [(to_t(plane.d2, i, "kernel").T.contiguous(), to_t(plane.d2, i, "bias")) for i in range(len(linears))]
    x = torch.from_numpy(workload.train.inputs)
    y = torch.from_numpy(workload.train.targets)
    regression = workload.task == "regression"
    loss_fn = torch.nn.MSELoss(reduction="sum") if regression else torch.nn.CrossEntropyLoss(reduction="sum")
    bs = workload.batch_size

    def one_point(a, b):
        with torch.no_grad():
            for lin, (ow, ob), (aw, ab_), (bw, bb) in zip(linears, origin, d1, d2):
                lin.weight.copy_(ow + a * aw + b * bw)
                lin.bias.copy_(ob + a * ab_ + b * bb)
            total, correct = 0.0, 0
            for start in range(0, len(x), bs):
                out = model(x[start : start + bs])
                target = y[start : start + bs]
                total += float(loss_fn(out, target if not regression else target))
                if not regression:
                    correct += int((out.argmax(1) == target.long()).sum())
            return total / len(x), correct

    if not regression:
        y = y.long()
    coords = np.random.default_rng(0).uniform(-1, 1, (num_points + 1, 2))
    one_point(*coords[0])  # warm-up

    def all_points():
        for a, b in coords[1:]:
            one_point(float(a), float(b))

    return timed(all_points) / num_points  # the best of 3 passes, as for ours


CASES = {
    "a: sine 1-64-64-1, 1000 samples": dict(sizes=(1, 64, 64, 1), n=1000, task="regression", batch=1000, side=64, torch_points=300),
    "b: digits-size 64-256-256-10, 1797 samples": dict(sizes=(64, 256, 256, 10), n=1797, task="classification", batch=1797, side=24, torch_points=60),
    "c: 784-128-128-10, 10k samples": dict(sizes=(784, 128, 128, 10), n=10000, task="classification", batch=2000, side=16, torch_points=30),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--quick", action="store_true", help="smaller grids (smoke run)")
    parser.add_argument("--chunk", type=int, default=None,
                        help="points per chunk [default: the engine's own choice]")
    args = parser.parse_args()

    peak = matmul_peak()
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}; "
          f"f32 matmul peak: jax {peak['jax_gflops']:.0f} GFLOP/s, numpy {peak['numpy_gflops']:.0f} GFLOP/s")
    rows = []
    for name, case in CASES.items():
        side = 8 if args.quick else case["side"]
        workload = mlp_workload(case["sizes"], case["n"], case["task"], case["batch"])
        params, _ = workload.init(jax.random.key(0))
        plane = random_plane(params, seed=0, ignore="none")
        grid = Grid.from_specs(f"-1:1:{side}", f"-1:1:{side}")
        chunk = args.chunk or (16 if args.quick else None)
        ours = ours_rates(workload, plane, grid, chunk)
        plain = ours_rates(workload, plane, grid, chunk, use_stem=False, repeats=1)
        t_naive = naive_vmap_seconds(workload, plane, grid)
        t_torch = torch_seconds_per_point(workload, plane, case["sizes"], 5 if args.quick else case["torch_points"])
        flops = 2 * macs_per_sample(case["sizes"]) * case["n"]
        row = {
            "case": name,
            "points": grid.num_points,
            "ours_points_per_s": ours["steady"],
            "ours_startup_s": ours["startup"],
            "ours_total_points_per_s": ours["total"],
            "ours_no_stem_points_per_s": plain["steady"],
            "naive_vmap_points_per_s": grid.num_points / t_naive,
            "torch_points_per_s": 1 / t_torch,
            "vs_torch": ours["steady"] * t_torch,
            "total_vs_torch": ours["total"] * t_torch,
            "vs_naive_vmap": ours["steady"] * t_naive / grid.num_points,
            "useful_gflops": ours["steady"] * flops / 1e9,
            "fraction_of_matmul_peak": ours["steady"] * flops / 1e9 / peak["jax_gflops"],
        }
        rows.append(row)
    print("ours = engine running (first to last chunk); start = trace + compile before it runs; "
          "total = whole call, start included")
    header = (f"{'case':44s} {'ours pt/s':>10s} {'start s':>8s} {'total':>8s} {'no-stem':>8s} "
              f"{'naive':>8s} {'torch':>8s} {'×torch':>7s} {'total×t':>8s} {'×naive':>7s} "
              f"{'GFLOP/s':>8s} {'%peak':>6s}")
    print(header)
    for r in rows:
        print(f"{r['case']:44s} {r['ours_points_per_s']:10.1f} {r['ours_startup_s']:8.2f} "
              f"{r['ours_total_points_per_s']:8.1f} {r['ours_no_stem_points_per_s']:8.1f} "
              f"{r['naive_vmap_points_per_s']:8.1f} {r['torch_points_per_s']:8.1f} {r['vs_torch']:7.2f} "
              f"{r['total_vs_torch']:8.2f} {r['vs_naive_vmap']:7.2f} {r['useful_gflops']:8.1f} "
              f"{100 * r['fraction_of_matmul_peak']:6.1f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak": peak, "devices": jax.device_count(), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
