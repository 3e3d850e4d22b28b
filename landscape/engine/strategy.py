"""How the points of a chunk are evaluated, and how that choice is made.

Two strategies, both exact (they differ only in float rounding):

- ``vmap``: the points of a chunk vectorized together (``jax.vmap``). Right for dense layers:
  their products become batched matrix products.
- ``map``: the points one after another on each device, the data batch vectorized
  (``jax.lax.map``). Right for convolutions: under ``vmap`` per-point kernels turn every conv
  into a grouped convolution (one group per point), which XLA's CPU backend runs several times
  slower (measured 5× on ResNet-20 and digits-cnn).

:func:`choose` picks one: forced by the caller (or recorded in a file being resumed), else a
choice remembered for the same computation on the same devices, else — for a scan long enough
to pay for it — a probe that times one chunk of each candidate on the real workload and keeps
the fastest (its chunk of results is kept too), else a rule of thumb (convolutions → ``map``).
The rule of thumb's candidate is timed first: a scan it would finish within
:data:`PROBE_WORTH_S` keeps it without trying the others.
On a CPU with a device per core, each strategy is also tried on one device, whose ops then use
every core.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, MutableMapping
from typing import Any

import jax

STRATEGIES = ("vmap", "map")
PROBE_MIN_CHUNKS = 4  # a scan shorter than this many chunks is not probed: the probe would cost more
# ... nor one the rule of thumb finishes within this (timed on a chunk): trying another candidate
# costs its compilation and a timed chunk (1-2 s on the CPU for the built-in networks), and the
# rule of thumb can be 2x off (the GPT: vmap 38 pt/s, map 94 on one CPU device).
PROBE_WORTH_S = 3.0
PROBE_MIN_SECONDS = 0.25  # a timed call shorter than this is repeated (up to PROBE_REPEATS times)
PROBE_REPEATS = 3
FASTER_BY = 1.15  # another strategy must beat the rule of thumb's by this much to replace it
MAP_MAX_POINTS_PER_DEVICE = 8  # points evaluated in sequence gain nothing from longer chunks


@dataclasses.dataclass(frozen=True)
class Plan:
    """The strategy a scan runs with, and why.

    Attributes:
      strategy: ``vmap`` or ``map``.
      chunk: points per compiled call.
      source: ``forced`` (by the caller), ``recorded`` (in the file being resumed), ``cache``
        (chosen earlier for the same computation), ``probe`` (timed now) or ``rule`` (the rule
        of thumb, for short scans).
      rates: points per second of each candidate measured by a probe (or remembered).
      stem: the name of the parameter leaf whose layer is shared by every point, or None.
      devices: how many devices the chunks are sharded over (on a CPU, one device may run
        each op on every core instead).
      eval_batch: samples per evaluated batch of the data (None: a stream's own batches).
    """

    strategy: str
    chunk: int
    source: str
    rates: dict[str, float] = dataclasses.field(default_factory=dict)
    stem: str | None = None
    devices: int = 1
    eval_batch: int | None = None

    @property
    def rate(self) -> float | None:
        """Points per second of the chosen strategy, where measured."""
        return self.rates.get(label(self.strategy, self.devices))

    def record(self) -> dict[str, Any]:
        """As stored in a surface file's provenance."""
        return {"strategy": self.strategy, "chunk": self.chunk, "devices": self.devices,
                "source": self.source, "rates": {k: round(v, 4) for k, v in self.rates.items()},
                "stem": self.stem, "eval_batch": self.eval_batch}


def label(strategy: str, devices: int) -> str:
    """``"map/1"``: a strategy on a number of devices, as probe rates are keyed."""
    return f"{strategy}/{devices}"


def parse_label(text: str) -> tuple[str, int]:
    name, _, devices = text.partition("/")
    return name, int(devices)


def rule_of_thumb(has_conv: bool) -> str:
    return "map" if has_conv else "vmap"


def fingerprint(*parts: Any) -> str:
    """A stable key for remembering a choice: the computation (its jaxpr's text), the data's
    shapes, the devices and the JAX version."""
    devices = jax.devices()
    text = "\n".join(map(str, (*parts, devices[0].device_kind, len(devices), jax.__version__)))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


Candidate = Callable[[str], tuple[Callable[[], dict[str, jax.Array]], int]]
"""``candidate(label) -> (run first chunk, chunk size)``: compile a candidate's program and
return a function that dispatches its first chunk."""


def probe(candidate: Candidate, strategies: list[str], default: str, *, todo: int
          ) -> tuple[str, dict[str, float], dict[str, Any]]:
    """Time the first chunk of each candidate (a :func:`label`), the rule of thumb's
    ``default`` first; returns (winner, {candidate: points/s}, the winner's outputs for its
    first chunk). When the default alone would finish the ``todo`` points within
    :data:`PROBE_WORTH_S`, the others are not tried (they would cost more than they could
    save). The default keeps its place unless another is at least :data:`FASTER_BY` faster
    (noise must not flip it)."""
    rates, outputs = {}, {}
    for label_ in [default] + [s for s in strategies if s != default]:
        run, chunk = candidate(label_)
        best = float("inf")
        for repeat in range(PROBE_REPEATS):
            start = time.perf_counter()
            out = jax.block_until_ready(run())
            elapsed = time.perf_counter() - start
            best = min(best, elapsed)
            if repeat == 0:
                outputs[label_] = out
            if elapsed >= PROBE_MIN_SECONDS:
                break
        rates[label_] = chunk / max(best, 1e-9)
        if label_ == default and todo / rates[label_] < PROBE_WORTH_S:
            return default, rates, outputs[default]
    winner = max(rates, key=rates.get)
    if rates[winner] < FASTER_BY * rates[default]:
        winner = default
    return winner, rates, outputs[winner]


def remembered(choices: MutableMapping | None, key: str) -> dict | None:
    """The choice stored under ``key``, if it is well formed."""
    if choices is None:
        return None
    entry = choices.get(key)
    if (isinstance(entry, dict) and entry.get("strategy") in STRATEGIES
            and isinstance(entry.get("chunk"), int) and entry["chunk"] > 0):
        return entry
    return None
