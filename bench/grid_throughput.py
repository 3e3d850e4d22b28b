"""Grid-evaluation throughput: points/s of ``landscape.evaluate_surface`` side by side with

- a naive ``jax.jit(jax.vmap(loss))`` over the points (one device, no chunking tricks),
- Li et al.'s per-point method in PyTorch (copy θ + αd1 + βd2 into the model, one forward
  pass over the data per point; CPU wheel, all cores),
- the machine's f32 matmul peak (jax and numpy), to express our useful GFLOP/s as a fraction,
- a matmul-only ceiling: the rate at which this machine computes just the per-point matrix
  products the engine cannot avoid (every layer after the shared first layer), vmapped over a
  chunk of points and sharded like the engine, best over chunk sizes; activations, loss and
  combine are left out (only a max over the products keeps them alive, and the inputs are read
  from memory), so it estimates what an evaluator built on XLA's matmul can reach, not a proof.

Ours and the PyTorch loop are measured in alternating rounds (the machine's speed drifts), and
each round's ratio is kept: ``×torch`` is best over best, ``paired`` the median of the rounds'
ratios. Useful FLOPs are those of the plain forward pass at every point (2·MACs per sample),
whichever formulation computes it.
Cases (a)-(c) are MLPs; (d)-(f) built-in networks — digits-cnn, ResNet-20
with BatchNorm, the text GPT — against Li et al.'s loop on their PyTorch twins (``net_cases.py``,
``torch_models.py``), with the same loss asserted at a point before timing.
Run: ``python bench/grid_throughput.py [--json out.json] [--quick] [--rounds N] [--cases def]``.
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

from landscape.directions import random_plane  # noqa: E402
from landscape.engine import evaluate_surface, point_params  # noqa: E402
from landscape.engine.sizing import device_numbers  # noqa: E402
from landscape.engine.stem import shares_first_layer, split_at_stem  # noqa: E402
from landscape.grid import Grid  # noqa: E402
from landscape.models import MLP, pure_model  # noqa: E402
from landscape.objective import dataset_mean  # noqa: E402
from landscape.workload import Dataset, Workload  # noqa: E402


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


def evaluate_ours(workload, state, plane, grid, *, chunk, on_chunk, use_stem=True, plans=None):
    """"Ours": the one call to the engine, as a scan makes it: ``strategy="auto"`` with nothing
    remembered (so it probes on a long enough grid; the probe counts in the start-up)."""
    metrics = ("loss",) + workload.metrics
    return evaluate_surface(workload.objective(state), plane, grid, metrics=metrics, chunk=chunk,
                            stem=use_stem, on_chunk=on_chunk, choices={},
                            on_plan=None if plans is None else plans.append)


def ours_rates(workload, plane, grid, chunk, use_stem=True, state=None):
    """One :func:`evaluate_ours` call (it traces and compiles, as a CLI scan does).
    ``steady``: points/s from the first chunk's arrival to the last's (the engine running);
    ``startup``: seconds before the engine runs (trace, compile, first chunk less its share);
    ``total``: points/s of the whole call; ``values``: what it returned."""
    arrivals, plans = [], []
    start = time.perf_counter()
    values = evaluate_ours(workload, {} if state is None else state, plane, grid, chunk=chunk,
                           use_stem=use_stem, plans=plans,
                           on_chunk=lambda index, _: arrivals.append((time.perf_counter(), len(index))))
    total = time.perf_counter() - start
    if len(arrivals) < 3:
        raise SystemExit(f"grid of {grid.num_points} points too small for chunks of {chunk}")
    steady = sum(n for _, n in arrivals[1:]) / (arrivals[-1][0] - arrivals[0][0])
    return {"steady": steady, "startup": arrivals[0][0] - start - arrivals[0][1] / steady,
            "total": grid.num_points / total, "values": values, "plan": plans[0]}


def matmul_ceiling(sizes, num_samples, batch_size, stem=True, per_device=(2, 4, 8, 16)):
    """Points/s of the unavoidable per-point matrix products alone (best over chunk sizes).

    Per point and data batch: ``h_l(point) @ W_l(point)`` for every layer after the stem (every
    layer without one), batched over a chunk of points sharded over all devices, the batches
    scanned inside as the engine does; inputs are random (only shapes matter) and passed as
    arguments, so nothing is constant-folded."""
    from jax.sharding import NamedSharding, PartitionSpec

    devices = jax.device_count()
    mesh = jax.make_mesh((devices,), ("points",), axis_types=(jax.sharding.AxisType.Auto,))
    by_point = NamedSharding(mesh, PartitionSpec("points"))
    layers = list(zip(sizes[:-1], sizes[1:]))[1 if stem else 0 :]
    num_batches = -(-num_samples // batch_size)
    rng = np.random.default_rng(0)
    best = 0.0
    for n in per_device:
        chunk = n * devices
        weights = [jax.device_put(rng.normal(size=(chunk, a, b)).astype(np.float32), by_point)
                   for a, b in layers]
        inputs = [jax.device_put(  # per point, as each point's activations are its own
            rng.normal(size=(num_batches, chunk, batch_size, a)).astype(np.float32),
            NamedSharding(mesh, PartitionSpec(None, "points"))) for a, _ in layers]

        @jax.jit
        def products(weights, inputs):
            def body(total, xs):  # a max (not a sum, which XLA could fold into the product)
                for x, w in zip(xs, weights):  # keeps every product alive
                    total = jnp.maximum(total, jnp.einsum("psa,pab->psb", x, w).max(axis=(1, 2)))
                return total, None
            return jax.lax.scan(body, jnp.full(chunk, -jnp.inf), inputs)[0]

        products(weights, inputs).block_until_ready()
        best = max(best, chunk / timed(lambda: products(weights, inputs).block_until_ready(), 5))
    return best


def torch_pass(workload, plane, sizes, num_points):
    """Li et al.'s method in PyTorch, warmed up: a function that evaluates ``num_points`` points
    one by one and returns its seconds per point."""
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
        start = time.perf_counter()
        for a, b in coords[1:]:
            one_point(float(a), float(b))
        return (time.perf_counter() - start) / num_points

    return all_points


CASES = {
    "a: sine 1-64-64-1, 1000 samples": dict(sizes=(1, 64, 64, 1), n=1000, task="regression", batch=1000, side=64, torch_points=300),
    "b: digits-size 64-256-256-10, 1797 samples": dict(sizes=(64, 256, 256, 10), n=1797, task="classification", batch=1797, side=24, torch_points=60),
    "c: 784-128-128-10, 10k samples": dict(sizes=(784, 128, 128, 10), n=10000, task="classification", batch=2000, side=16, torch_points=30),
}


def strategy_rates(workload, state, plane, coords) -> dict[str, float]:
    """Points/s on ONE device of two plain formulations over the same points, for comparison:
    ``vmap`` over the points (each conv becomes a grouped conv) and ``lax.map`` (one point at
    a time, its data batch vectorized). Data and plane are arguments, not baked constants."""
    full, rest = workload.train.split_batches(workload.batch_size)

    def loss_at(ab, dirs, state, full, rest):
        theta = jax.tree.map(lambda o, a, b: o + ab[0] * a + ab[1] * b, *dirs)
        return dataset_mean(workload.loss, theta, state, full, rest)["loss"]

    programs = {
        "vmap": jax.jit(lambda c, *args: jax.vmap(lambda ab: loss_at(ab, *args))(c)),
        "lax.map": jax.jit(lambda c, *args: jax.lax.map(lambda ab: loss_at(ab, *args), c)),
    }
    args = (jnp.asarray(coords, jnp.float32), (plane.origin, plane.d1, plane.d2), state, full, rest)
    rates = {}
    for name, program in programs.items():
        program(*args).block_until_ready()
        rates[name] = len(coords) / timed(lambda: program(*args).block_until_ready(), 1)
    return rates


def net_rows(args, peak, letters) -> list[dict]:
    """Cases (d)-(f): built-in networks, ours against Li et al.'s loop on their PyTorch twins."""
    import torch
    from net_cases import CASES as NET_CASES

    torch.set_num_threads(os.cpu_count() or 1)
    rounds_n = args.rounds if args.rounds is not None else (1 if args.quick else 3)
    rows = []
    for letter in letters:
        case = NET_CASES[letter](args.quick)
        plane = random_plane(case.params, seed=0)  # Li et al.'s defaults: filter, biasbn
        nx, ny = case.side
        grid = Grid.from_specs(f"-1:1:{nx}", f"-1:1:{ny}")
        coords = grid.coordinates()
        chunk = args.chunk or case.chunk
        loop = case.make_loop(plane)
        subset = coords[np.linspace(0, len(coords) - 1, case.torch_points).astype(int)]
        loop.evaluate(*subset[0])  # warm-up

        def torch_rate():
            start = time.perf_counter()
            loop.run(subset)
            return len(subset) / (time.perf_counter() - start)

        rounds, check = [], None
        for r in range(rounds_n):  # alternating, so drift hits both alike
            ours = ours_rates(case.workload, plane, grid, chunk, use_stem=True, state=case.state)
            if r == 0:  # equal loss at a point off the origin, before any timing counts
                k = (2 * grid.num_points) // 3
                theirs, _ = loop.evaluate(*coords[k])
                value = float(np.ravel(ours["values"]["train_loss"])[k])
                check = abs(value - theirs) / abs(theirs)
                if not check <= 1e-5:
                    raise SystemExit(f"{case.name}: ours {value!r} != torch {theirs!r} at "
                                     f"{tuple(coords[k])} (rel. {check:.1e})")
            rounds.append((ours, torch_rate()))
        best = max((o for o, _ in rounds), key=lambda o: o["steady"])
        torch_best = max(t for _, t in rounds)
        gflop = case.flops_per_point / 1e9
        row = {
            "case": case.name,
            "points": grid.num_points,
            "chunk": chunk,
            "rounds": rounds_n,
            "check_rel_diff": check,
            "gflop_per_point": gflop,
            "ours_points_per_s": best["steady"],
            "ours_startup_s": best["startup"],
            "ours_total_points_per_s": best["total"],
            "torch_points_per_s": torch_best,
            "vs_torch": best["steady"] / torch_best,
            "vs_torch_paired_median": float(np.median([o["steady"] / t for o, t in rounds])),
            "useful_gflops": best["steady"] * gflop,
            "torch_gflops": torch_best * gflop,
            "fraction_of_matmul_peak": best["steady"] * gflop / peak["jax_gflops"],
            "torch_fraction_of_matmul_peak": torch_best * gflop / peak["jax_gflops"],
            "strategy": f"{best['plan'].strategy}/{best['plan'].chunk}",
            "probe_rates": best["plan"].rates,
        }
        if not args.quick:
            one = strategy_rates(case.workload, case.state, plane, coords[:chunk])
            row.update({f"one_device_{k}_points_per_s": v for k, v in one.items()})
        rows.append(row)
    return rows


def print_net_rows(rows) -> None:
    print("\n(d)-(f): ours = evaluate_ours, engine running, best of the rounds; torch = Li et al.'s "
          "per-point loop on the PyTorch twin, same weights, plane and data; GFLOP/s = 2·MACs of "
          "the plain forward pass (jaxpr count of dots and convs) per point × points/s; "
          "1-dev vmap / lax.map = plain formulations on one device (full runs only)")
    print(f"{'case':40s} {'GFLOP/pt':>8s} {'ours pt/s':>9s} {'start s':>7s} {'torch':>8s} "
          f"{'×torch':>7s} {'paired':>7s} {'GFLOP/s':>8s} {'%peak':>6s} {'torch %':>7s} "
          f"{'1-dev vmap':>10s} {'lax.map':>8s} {'check':>8s} {'strategy':>9s}")
    for r in rows:
        vm = r.get("one_device_vmap_points_per_s", float("nan"))
        lm = r.get("one_device_lax.map_points_per_s", float("nan"))
        print(f"{r['case']:40s} {r['gflop_per_point']:8.3f} {r['ours_points_per_s']:9.2f} "
              f"{r['ours_startup_s']:7.1f} {r['torch_points_per_s']:8.2f} {r['vs_torch']:7.2f} "
              f"{r['vs_torch_paired_median']:7.2f} {r['useful_gflops']:8.1f} "
              f"{100 * r['fraction_of_matmul_peak']:6.1f} "
              f"{100 * r['torch_fraction_of_matmul_peak']:7.1f} {vm:10.2f} {lm:8.2f} "
              f"{r['check_rel_diff']:8.1e} {r['strategy']:>9s}")


def mlp_rows(args, peak, letters) -> list[dict]:
    """Cases (a)-(c): MLPs with a LinearStem."""
    rounds_n = args.rounds if args.rounds is not None else 3
    rows = []
    for name, case in CASES.items():
        if name[0] not in letters:
            continue
        side = 8 if args.quick else case["side"]
        workload = mlp_workload(case["sizes"], case["n"], case["task"], case["batch"])
        params, _ = workload.init(jax.random.key(0))
        plane = random_plane(params, seed=0, ignore="none")
        grid = Grid.from_specs(f"-1:1:{side}", f"-1:1:{side}")
        chunk = args.chunk or (16 if args.quick else None)
        torch_one_pass = torch_pass(workload, plane, case["sizes"], 5 if args.quick else case["torch_points"])
        rounds = []  # (ours, torch points/s), measured alternately so drift hits both alike
        for _ in range(rounds_n):
            rounds.append((ours_rates(workload, plane, grid, chunk), 1 / torch_one_pass()))
        ours = max((r for r, _ in rounds), key=lambda r: r["steady"])
        torch_rate = max(t for _, t in rounds)
        plain = ours_rates(workload, plane, grid, chunk, use_stem=False)
        t_naive = naive_vmap_seconds(workload, plane, grid)
        batch = next(workload.train.batches(workload.batch_size))
        split = split_at_stem(workload.loss, params, {}, batch)
        stem = split is not None and shares_first_layer(split, device_numbers(jax.devices()[0]))
        ceiling = matmul_ceiling(case["sizes"], case["n"], case["batch"], stem=stem)
        flops = 2 * macs_per_sample(case["sizes"]) * case["n"]
        row = {
            "case": name,
            "points": grid.num_points,
            "ours_points_per_s": ours["steady"],
            "ours_startup_s": ours["startup"],
            "ours_total_points_per_s": ours["total"],
            "ours_no_stem_points_per_s": plain["steady"],
            "naive_vmap_points_per_s": grid.num_points / t_naive,
            "torch_points_per_s": torch_rate,
            "vs_torch": ours["steady"] / torch_rate,
            "vs_torch_paired_median": float(np.median([o["steady"] / t for o, t in rounds])),
            "total_vs_torch": ours["total"] / torch_rate,
            "vs_naive_vmap": ours["steady"] * t_naive / grid.num_points,
            "matmul_ceiling_points_per_s": ceiling,
            "ceiling_vs_torch": ceiling / torch_rate,
            "useful_gflops": ours["steady"] * flops / 1e9,
            "fraction_of_matmul_peak": ours["steady"] * flops / 1e9 / peak["jax_gflops"],
            "strategy": f"{ours['plan'].strategy}/{ours['plan'].chunk}",
        }
        rows.append(row)
    return rows


def print_mlp_rows(rows) -> None:
    print("ours = engine running (first to last chunk), best of the rounds; start = trace + compile "
          "before it runs; total = whole call, start included; paired = median of the rounds' "
          "ratios; ceiling = the per-point matrix products alone (see matmul_ceiling)")
    header = (f"{'case':44s} {'ours pt/s':>10s} {'start s':>8s} {'total':>8s} {'no-stem':>8s} "
              f"{'naive':>8s} {'torch':>8s} {'×torch':>7s} {'paired':>7s} {'total×t':>8s} "
              f"{'×naive':>7s} {'ceiling':>8s} {'ceil×t':>7s} {'GFLOP/s':>8s} {'%peak':>6s} "
              f"{'strategy':>9s}")
    print(header)
    for r in rows:
        print(f"{r['case']:44s} {r['ours_points_per_s']:10.1f} {r['ours_startup_s']:8.2f} "
              f"{r['ours_total_points_per_s']:8.1f} {r['ours_no_stem_points_per_s']:8.1f} "
              f"{r['naive_vmap_points_per_s']:8.1f} {r['torch_points_per_s']:8.1f} {r['vs_torch']:7.2f} "
              f"{r['vs_torch_paired_median']:7.2f} {r['total_vs_torch']:8.2f} {r['vs_naive_vmap']:7.2f} "
              f"{r['matmul_ceiling_points_per_s']:8.1f} {r['ceiling_vs_torch']:7.2f} "
              f"{r['useful_gflops']:8.1f} {100 * r['fraction_of_matmul_peak']:6.1f} "
              f"{r['strategy']:>9s}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--quick", action="store_true",
                        help="smaller grids and data, one round for (d)-(f) (smoke run)")
    parser.add_argument("--cases", default="abcdef",
                        help="which cases to run, by letter [default: abcdef]")
    parser.add_argument("--chunk", type=int, default=None,
                        help="points per chunk [default: the engine's own choice for (a)-(c), "
                             "the case's for (d)-(f)]")
    parser.add_argument("--rounds", type=int, default=None,
                        help="alternating rounds of ours and the PyTorch loop "
                             "[default: 3; 1 for (d)-(f) with --quick]")
    args = parser.parse_args()
    if unknown := set(args.cases) - set("abcdef"):
        parser.error(f"--cases: unknown case letter(s) {''.join(sorted(unknown))}")

    peak = matmul_peak()
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}; "
          f"f32 matmul peak: jax {peak['jax_gflops']:.0f} GFLOP/s, numpy {peak['numpy_gflops']:.0f} GFLOP/s")
    rows = mlp_rows(args, peak, [c for c in args.cases if c in "abc"])
    if rows:
        print_mlp_rows(rows)
    nets = net_rows(args, peak, [c for c in args.cases if c in "def"])
    if nets:
        print_net_rows(nets)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"peak": peak, "devices": jax.device_count(), "rows": rows,
                       "net_rows": nets}, f, indent=2)


if __name__ == "__main__":
    main()
