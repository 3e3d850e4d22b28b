"""Out of device memory: halve the size and try again.

A chunk of grid points, an evaluation batch, a training batch or a batch of Hessian-vector
products that does not fit the device's memory fails with XLA's ``RESOURCE_EXHAUSTED`` error
(``jax.errors.JaxRuntimeError``). :func:`halve_on_oom` runs ``fn(size)`` and, on that error,
calls it again with half the size, down to ``minimum``; only there does it give up, with an
:class:`~landscape.errors.OutOfMemory` that lists the sizes tried. Each shrink is reported to
``on_shrink(old, new, what)`` — the library never prints; a command prints
:func:`shrink_message`'s line, e.g. "out of device memory at chunk 64: retrying with chunk 32".

Helpers nest: an inner ``halve_on_oom`` that gives up raises ``OutOfMemory``, which
:func:`is_out_of_memory` recognizes, so an outer one halves its own size next (the scan halves
the chunk, then the evaluation batch)::

    def run(batch):
        return halve_on_oom(lambda chunk: evaluate(chunk, batch), chunk, what="chunk")

    halve_on_oom(run, batch_size, what="eval batch", on_shrink=print_it)

``fn`` must be safe to call again after a failure (its inputs intact, its partial results
either kept or recomputed), and should drop its device arrays when it raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import jax

from landscape.errors import OutOfMemory, first_line

T = TypeVar("T")

OnShrink = Callable[[int, int, str], None]
"""``on_shrink(old size, new size, what)``: told before every retry."""

# What XLA's runtime says when an allocation fails (GPU: "RESOURCE_EXHAUSTED: Out of memory
# while trying to allocate N bytes"; TPU: "RESOURCE_EXHAUSTED: ... Ran out of memory in memory
# space hbm"; some allocators: "Out of memory" alone).
MARKERS = ("RESOURCE_EXHAUSTED", "out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is a device running out of memory: JAX's runtime error whose message
    says ``RESOURCE_EXHAUSTED`` or "out of memory", or an :class:`OutOfMemory` given up on by
    an inner :func:`halve_on_oom`."""
    if isinstance(exc, OutOfMemory):
        return True
    if not isinstance(exc, jax.errors.JaxRuntimeError):
        return False
    text = str(exc).lower()
    return any(marker.lower() in text for marker in MARKERS)


def halved(size: int, *, minimum: int = 1, multiple: int = 1) -> int:
    """Half of ``size``, rounded down to a multiple of ``multiple``, at least ``minimum``."""
    return max(minimum, (size // 2) // multiple * multiple)


def halve_on_oom(fn: Callable[[int], T], size: int, *, what: str = "size",
                 on_shrink: OnShrink | None = None, minimum: int = 1,
                 multiple: int = 1) -> T:
    """``fn(size)``; while it runs out of device memory, ``fn`` of half the size.

    Args:
      fn: the work at a given size (a chunk of points, a batch ...); called again after a
        failure, so it must not have consumed its inputs.
      size: the size to start from.
      what: the size's name in messages (``chunk``, ``eval batch``, ``micro-batches`` ...).
      on_shrink: ``on_shrink(old, new, what)`` before each retry.
      minimum: the smallest size to try (e.g. one point per device).
      multiple: sizes stay multiples of this (e.g. the device count), above ``minimum``.

    Returns:
      What ``fn`` returned at the first size that fitted.

    Raises:
      OutOfMemory: ``fn(minimum)`` ran out of memory too; ``sizes`` lists every size tried.
      Anything else ``fn`` raises, unchanged.
    """
    tried: list[int] = []
    while True:
        try:
            return fn(size)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            tried.append(size)
            if size <= minimum:
                sizes = ", ".join(map(str, tried))
                raise OutOfMemory(f"out of device memory even at {what} {size} (tried {sizes}): "
                                  f"{first_line(exc)}", what=what, sizes=tuple(tried)) from exc
            new = halved(size, minimum=minimum, multiple=multiple)
            if on_shrink is not None:
                on_shrink(size, new, what)
            size = new


def shrink_message(old: int, new: int, what: str) -> str:
    """The one line a command prints for a shrink: "out of device memory at chunk 64:
    retrying with chunk 32"."""
    return f"out of device memory at {what} {old}: retrying with {what} {new}"


def fake_out_of_memory(nbytes: int = 2**30) -> jax.errors.JaxRuntimeError:
    """The error XLA raises when an allocation fails (for tests that inject one)."""
    return jax.errors.JaxRuntimeError(
        f"RESOURCE_EXHAUSTED: Out of memory while trying to allocate {nbytes} bytes.")
