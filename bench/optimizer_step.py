"""Step time of every suite optimizer against optax's equivalent on a ~1M-parameter pytree.

One jitted step = ``opt.update`` + ``optax.apply_updates`` (params and state donated), warm, the
median of ``--repeats`` timed calls, ours and optax's interleaved so that machine load hits both.
Where optax has no such optimizer the nearest composition is timed and marked ``≈`` (same work
class, not the same formula): Ranger = lookahead(radam), RangerLARS / Paratrooper =
lookahead(radam + trust ratio). LARS is optax.lars (undamped momentum, same cost).

    python bench/optimizer_step.py [--repeats 50] [--json out.json] [--only adam,lamb]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optimizers

# A few dense-layer-shaped leaves, 1,017,472 parameters in all.
LAYERS = ((512, 1024), (1024, 384), (384, 256))


def make_params(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    params = {}
    for i, (n_in, n_out) in enumerate(LAYERS):
        params[f"dense{i}"] = {
            "w": jnp.asarray(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in), jnp.float32),
            "b": jnp.asarray(0.01 * rng.normal(size=(n_out,)), jnp.float32),
        }
    return params


def _lookahead(inner):
    return optax.lookahead(inner, sync_period=6, slow_step_size=0.5)


def _radam_trust(lr, b1=0.9, eps=1e-8):
    return optax.chain(
        optax.scale_by_radam(b1=b1, eps=eps),
        optax.scale_by_trust_ratio(),
        optax.scale_by_learning_rate(lr),
    )


# name -> (optax equivalent(lr) or None, exact same algorithm?)
OPTAX_EQUIVALENTS: dict[str, tuple[Callable | None, bool]] = {
    "sgd": (lambda lr: optax.sgd(lr), True),
    "momentum": (lambda lr: optax.sgd(lr, momentum=0.9), True),
    "nesterov": (lambda lr: optax.sgd(lr, momentum=0.9, nesterov=True), True),
    "adagrad": (lambda lr: optax.adagrad(lr, initial_accumulator_value=0.0, eps=1e-10), True),
    "rmsprop": (lambda lr: optax.rmsprop(lr, decay=0.9, eps=1e-8, eps_in_sqrt=False), True),
    "adam": (lambda lr: optax.adam(lr), True),
    "adamw": (lambda lr: optax.adamw(lr, weight_decay=1e-2), True),
    "radam": (lambda lr: optax.radam(lr), True),
    "lookahead": (lambda lr: _lookahead(optax.adam(lr)), True),
    "ranger": (
        lambda lr: _lookahead(
            optax.chain(optax.scale_by_radam(b1=0.95, eps=1e-5), optax.scale_by_learning_rate(lr))
        ),
        True,
    ),
    "lars": (lambda lr: optax.lars(lr), False),
    "lamb": (lambda lr: optax.lamb(lr), True),
    "rangerlars": (lambda lr: _lookahead(_radam_trust(lr)), False),
    "paratrooper": (lambda lr: _lookahead(_radam_trust(lr)), False),
}


def ours(name: str, lr: float) -> optax.GradientTransformation:
    if name == "lookahead":
        return optimizers.get("lookahead", inner="adam", learning_rate=lr)
    return optimizers.get(name, learning_rate=lr)


def compile_step(opt: optax.GradientTransformation, params, grads, *, wrap_lookahead: bool):
    """Jitted, warmed step and its initial (params, state)."""
    if wrap_lookahead:  # optax.lookahead works on LookaheadParams(fast, slow)
        params = optax.LookaheadParams.init_synced(params)

    def step(params, state, grads):
        fast = params.fast if wrap_lookahead else params
        updates, state = opt.update(grads, state, params if wrap_lookahead else fast)
        return optax.apply_updates(params, updates), state

    params = jax.tree.map(jnp.copy, params)
    state = opt.init(params)
    jitted = jax.jit(step, donate_argnums=(0, 1))
    for _ in range(3):
        params, state = jitted(params, state, grads)
    jax.block_until_ready((params, state))
    return jitted, params, state


class Timed:
    def __init__(self, opt, params, grads, *, wrap_lookahead=False):
        self.step, self.params, self.state = compile_step(
            opt, params, grads, wrap_lookahead=wrap_lookahead
        )
        self.grads = grads
        self.samples: list[float] = []

    def once(self) -> None:
        start = time.perf_counter()
        self.params, self.state = self.step(self.params, self.state, self.grads)
        jax.block_until_ready(self.params)
        self.samples.append(time.perf_counter() - start)

    @property
    def median_ms(self) -> float:
        return 1e3 * statistics.median(self.samples)


def run(names, repeats: int) -> list[dict]:
    params = make_params()
    grads = jax.tree.map(lambda p: 0.01 * jnp.ones_like(p), params)
    rows = []
    for name in names:
        lr = 1e-3
        mine = Timed(ours(name, lr), params, grads)
        make_reference, exact = OPTAX_EQUIVALENTS[name]
        reference = None
        if make_reference is not None:
            is_lookahead = name in ("lookahead", "ranger", "rangerlars", "paratrooper")
            reference = Timed(make_reference(lr), params, grads, wrap_lookahead=is_lookahead)
        for _ in range(repeats):
            mine.once()
            if reference is not None:
                reference.once()
        optax_ms = None if reference is None else reference.median_ms
        rows.append(
            {
                "optimizer": name,
                "ours_ms": mine.median_ms,
                "optax_ms": optax_ms,
                "ratio": None if optax_ms is None else mine.median_ms / optax_ms,
                "optax_same_algorithm": exact if reference is not None else None,
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    lines = [
        f"{'optimizer':<12} {'ours ms':>9} {'optax ms':>9} {'ratio':>7}  optax reference",
        "-" * 60,
    ]
    for row in rows:
        optax_ms = "n/a" if row["optax_ms"] is None else f"{row['optax_ms']:.3f}"
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}"
        if row["optax_same_algorithm"] is None:
            kind = "none"
        else:
            kind = "same algorithm" if row["optax_same_algorithm"] else "≈ nearest composition"
        ours_ms = f"{row['ours_ms']:.3f}"
        lines.append(f"{row['optimizer']:<12} {ours_ms:>9} {optax_ms:>9} {ratio:>7}  {kind}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per optimizer")
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    parser.add_argument("--only", help="comma-separated subset of optimizer names")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(optimizers.names())
    unknown = [n for n in names if n not in optimizers.names()]
    if unknown:
        parser.error(f"unknown optimizer(s): {', '.join(unknown)}")
    n_params = sum(x.size for x in jax.tree.leaves(make_params()))
    print(
        f"{n_params:,} float32 parameters in {2 * len(LAYERS)} leaves; jax {jax.__version__}, "
        f"optax {optax.__version__}, {jax.devices()[0].platform}, median of {args.repeats}"
    )
    rows = run(names, args.repeats)
    print(format_table(rows))
    if args.json:
        meta = {
            "parameters": n_params,
            "repeats": args.repeats,
            "jax": jax.__version__,
            "optax": optax.__version__,
            "platform": platform.platform(),
            "device": str(jax.devices()[0]),
        }
        with open(args.json, "w") as handle:
            json.dump({"meta": meta, "rows": rows}, handle, indent=2)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
