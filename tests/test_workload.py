import jax
import jax.numpy as jnp
import numpy as np
import pytest

from landscape.errors import InputError
from landscape.workload import Batch, Dataset, dataset_mean


def _loss(params, state, batch):
    err = batch.inputs[:, 0] * params["w"] - batch.targets
    return jnp.mean(err**2), {"acc": jnp.mean(jnp.abs(err) < 0.5)}


@pytest.mark.parametrize("batch_size", [1, 7, 10, 64, 100])
def test_dataset_mean_counts_every_sample_once(batch_size):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 1)).astype(np.float32)
    y = rng.normal(size=64).astype(np.float32)
    params = {"w": jnp.float32(0.7)}
    full, rest = Dataset(x, y).split_batches(batch_size)
    got = jax.jit(lambda p: dataset_mean(_loss, p, {}, full, rest))(params)
    err = x[:, 0] * 0.7 - y
    np.testing.assert_allclose(got["loss"], np.mean(err**2), rtol=1e-6)
    np.testing.assert_allclose(got["acc"], np.mean(np.abs(err) < 0.5), rtol=1e-6)


def test_split_batches_shapes():
    data = Dataset(np.zeros((10, 3)), np.zeros(10))
    full, rest = data.split_batches(4)
    assert full.inputs.shape == (2, 4, 3) and rest.inputs.shape == (2, 3)
    full, rest = data.split_batches(5)
    assert full.inputs.shape == (2, 5, 3) and rest is None
    full, rest = data.split_batches(16)
    assert full is None and rest.inputs.shape == (10, 3)


def test_dataset_rejects_mismatch_and_empty():
    with pytest.raises(InputError, match="same length"):
        Dataset(np.zeros((3, 1)), np.zeros(4))
    with pytest.raises(InputError, match="empty"):
        Dataset(np.zeros((0, 1)), np.zeros(0))


def test_batch_is_a_pytree():
    b = Batch(np.ones(2), np.zeros(2))
    assert len(jax.tree.leaves(b)) == 2
