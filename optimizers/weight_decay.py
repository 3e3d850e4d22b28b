r"""Decoupled weight decay, :math:`\Delta \leftarrow \Delta + \lambda\,\theta`, as one chain link.

A thin layer over ``optax.add_decayed_weights`` (which already handles masks and schedules) that
also validates λ and drops the link when λ is the plain number 0, so that the default, undecayed
optimizers do not pay a full pass over the parameters for ``g + 0·θ``.
"""

from __future__ import annotations

import optax

from optimizers.masks import Mask
from optimizers.validation import check_non_negative

__all__ = ["add_decayed_weights"]


def add_decayed_weights(
    weight_decay: optax.ScalarOrSchedule, mask: Mask = None
) -> optax.GradientTransformation:
    r"""Add :math:`\lambda\,\theta` to the incoming updates on the leaves selected by ``mask``.

    Args:
      weight_decay: λ ≥ 0, a float or an optax schedule.
      mask: leaves to decay (``True``), see :mod:`optimizers.masks`; ``None`` decays all.
    """
    check_non_negative(weight_decay, "weight_decay")
    if not callable(weight_decay) and isinstance(weight_decay, (int, float)) and weight_decay == 0:
        return optax.identity()
    return optax.add_decayed_weights(weight_decay, mask)
