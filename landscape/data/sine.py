"""The seed article's Figure 2 task: noise-free regression of a sine with a 3-layer ReLU MLP.

Train: 1000 evenly spaced points on [-π, π], target sin(x). Test: 200 points drawn uniformly from
the same interval (fixed seed). Model: MLP 1-64-64-1 (three dense layers), mean squared error.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from landscape.models import MLP, pure_model
from landscape.workload import Batch, Dataset, Workload

HIDDEN = (64, 64)


def sine(num_train: int = 1000, num_test: int = 200, hidden: tuple[int, ...] = HIDDEN) -> Workload:
    x_train = np.linspace(-np.pi, np.pi, num_train, dtype=np.float32)[:, None]
    x_test = np.random.default_rng(1234).uniform(-np.pi, np.pi, (num_test, 1)).astype(np.float32)
    init, apply = pure_model(lambda rngs: MLP((1, *hidden, 1), rngs=rngs))

    def loss(params, state, batch: Batch):
        return squared_error(apply(params, state, batch.inputs), batch), {}

    return Workload(
        name="sine",
        init=init,
        loss=loss,
        train=Dataset(x_train, np.sin(x_train)),
        test=Dataset(x_test, np.sin(x_test)),
        task="regression",
        input_shape=(1,),
        batch_size=1000,
        apply=apply,
        output_loss=squared_error,
    )


def squared_error(prediction, batch: Batch):
    """The batch's mean squared error of the model's predictions (the loss of its outputs)."""
    return jnp.mean((prediction - batch.targets) ** 2)
