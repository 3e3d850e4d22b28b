"""The precision of float32 matrix products and convolutions: a recorded choice of the user.

JAX leaves the precision of a float32 ``dot``/convolution to the backend unless it is told
otherwise (``jax.default_matmul_precision``), and the backends differ:

- ``highest``: every float32 product and convolution in full float32 (``lax.Precision.HIGHEST``:
  six bfloat16 passes on a TPU, no TF32 on an NVIDIA GPU). The default of every command and
  function here: the Hessian's tolerances (a Lanczos residual of 1e-3 relative), the shared first
  layer's "exact up to rounding" and bit-identical resumes hold only in full float32.
- ``default``: the backend's own default (JAX's setting cleared: ``lax.Precision.DEFAULT``). On a
  CPU that is float32, the same numbers as ``highest``; on NVIDIA Ampere and Hopper GPUs TF32
  (a 10-bit mantissa, about 1e-3 relative per product); on a TPU one bfloat16 pass (8 bits,
  about 4e-3). Faster on accelerators, and good enough for a picture of a surface.
- ``bfloat16``: JAX's ``bfloat16`` level, written into every product: one bfloat16 pass on a
  TPU (which is its default); XLA runs it as TF32 on NVIDIA GPUs (it has no single bfloat16 pass
  for float32 operands at this level) and as float32 on a CPU.

Everything traced inside :func:`computing_in` is compiled at that precision.
``jax.default_matmul_precision`` is part of jit's cache key and of the trace context (JAX's
``config.py`` declares it ``include_in_jit_key=True``), so a jitted function called under
another precision is traced and compiled again, never served the other's executable; programs
compiled ahead of time and kept by hand must carry it in their key (:mod:`landscape.engine.chunks`
does). Only float32 (and narrower) operands are affected: float64 products are float64 whatever
the setting.

The precision is written into every output (surface files, ``run.json``, ``hessian.json`` ...)
and is part of a surface file's spec, so a resume continues at the precision the file was
started with. A file written before precision was recorded was computed on a CPU, in float32: it
reads as ``highest`` (:data:`UNRECORDED`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import jax

from landscape.errors import InputError

PRECISIONS = ("highest", "default", "bfloat16")
DEFAULT = "highest"
UNRECORDED = "highest"  # what a file written before precision was recorded was computed in

# What each choice sets ``jax_default_matmul_precision`` to (None: the backend's default).
_JAX_SETTING = {"highest": "highest", "default": None, "bfloat16": "bfloat16"}


def check_precision(precision: str, param: str = "precision") -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else an :class:`InputError` naming the
    allowed values."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise InputError(f"`{param}` (={precision!r}) must be one of: {', '.join(PRECISIONS)}",
                         param=param)
    return precision


@contextlib.contextmanager
def computing_in(precision: str) -> Iterator[str]:
    """Trace (and so compile) every float32 product and convolution inside the ``with`` block at
    ``precision`` (one of :data:`PRECISIONS`; see the module docstring). Thread-local, like
    every JAX configuration context."""
    with jax.default_matmul_precision(_JAX_SETTING[check_precision(precision)]):
        yield precision


def current_setting() -> str | None:
    """JAX's ``jax_default_matmul_precision`` as it stands (None: the backend's default): what a
    hand-kept cache of compiled programs must include in its key."""
    return jax.config.jax_default_matmul_precision
