"""Training throughput: ``landscape.train`` (recording a trajectory) next to a plain optax loop.

Both train the ``digits`` MLP (64-256-256-10) with Adam on the same minibatches size; the plain
loop is what one would write by hand (host-side batches, a jitted update, nothing recorded).
Steps per second are measured after the first step (compilation excluded) and include, for
``landscape.train``, every recording: params copied to the host and exact full train/test
metrics every ``record_every`` steps. Best of ``--repeats`` runs, side by side in one process.

    python bench/train_step.py [--steps 2000] [--batch-size 128] [--repeats 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import jax
import numpy as np
import optax

import landscape
from landscape.workload import Batch


def plain_optax_loop(workload, steps: int, batch_size: int, learning_rate: float, seed: int) -> float:
    """Steps per second of a hand-written loop (after its first, compiling step)."""
    optimizer = optax.adam(learning_rate)
    params, state = workload.init(jax.random.key(seed))
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, inputs, targets):
        loss, grads = jax.value_and_grad(
            lambda p: workload.loss(p, state, Batch(inputs, targets))[0])(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    x, y = workload.train.inputs, workload.train.targets
    rng = np.random.default_rng(seed)
    per_epoch = len(x) // batch_size
    done, started = 0, None
    while done < steps:
        order = rng.permutation(len(x))
        for i in range(per_epoch):
            rows = order[i * batch_size : (i + 1) * batch_size]
            params, opt_state, loss = step(params, opt_state, x[rows], y[rows])
            done += 1
            if done == 1:
                loss.block_until_ready()
                started = time.perf_counter()
            if done == steps:
                break
    jax.block_until_ready(params)
    return (steps - 1) / (time.perf_counter() - started)


def landscape_train(workload, steps: int, batch_size: int, learning_rate: float, seed: int,
                    record_every: int) -> float:
    """Steps per second of ``landscape.train`` after its first step, recordings included."""
    clock = {}

    def callback(step, loss):
        if step == 1:
            loss.block_until_ready()
            clock["start"] = time.perf_counter()

    landscape.train(workload, optax.adam(learning_rate), steps=steps, batch_size=batch_size,
                    seed=seed, record_every=record_every, callback=callback)
    return (steps - 1) / (time.perf_counter() - clock["start"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--record-every", type=int, nargs="+", default=[50, 10])
    parser.add_argument("--json", dest="json_path", default=None, help="Also write the rows here.")
    args = parser.parse_args()

    workload = landscape.get_workload("digits")
    rows = []
    candidates = [("plain optax loop", None)] + [
        ("landscape.train_loop", every) for every in args.record_every
    ]
    best: dict[tuple, float] = {}
    for _ in range(args.repeats):  # interleaved, so a busy moment hits every candidate alike
        for name, every in candidates:
            if every is None:
                rate = plain_optax_loop(workload, args.steps, args.batch_size, args.lr, 0)
            else:
                rate = landscape_train(workload, args.steps, args.batch_size, args.lr, 0, every)
            best[(name, every)] = max(best.get((name, every), 0.0), rate)
    reference = best[("plain optax loop", None)]
    for name, every in candidates:
        rate = best[(name, every)]
        rows.append({"loop": name, "record_every": every, "steps_per_s": rate,
                     "ratio_to_plain": rate / reference})

    print(f"digits MLP 64-256-256-10, Adam, batch {args.batch_size}, {args.steps} steps, "
          f"best of {args.repeats}; jax {jax.__version__} on {jax.devices()[0].platform} "
          f"({platform.processor() or platform.machine()})")
    print(f"{'loop':<18} {'record_every':>12} {'steps/s':>10} {'vs plain':>9}")
    for row in rows:
        every = "-" if row["record_every"] is None else str(row["record_every"])
        print(f"{row['loop']:<18} {every:>12} {row['steps_per_s']:>10.0f} "
              f"{row['ratio_to_plain']:>9.2f}")
    if args.json_path:
        with open(args.json_path, "w") as handle:
            json.dump({"steps": args.steps, "batch_size": args.batch_size, "rows": rows}, handle,
                      indent=2)


if __name__ == "__main__":
    main()
