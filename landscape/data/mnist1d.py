"""MNIST-1D (Greydanus 2020, "Scaling down deep learning"): ten 1-D digit templates, padded,
dilated, scaled, translated, noised, sheared and resampled to 40 points — generated, no files.

The generator is a transcription of ``make_dataset`` from the ``mnist1d`` package 0.0.2
(https://github.com/greydanus/mnist1d, ``mnist1d/data.py`` and ``mnist1d/transform.py``,
Apache-2.0, © Sam Greydanus, Peter Steinbach and contributors), with its default arguments
(``get_dataset_args()``: 5,000 samples, 4,000 train / 1,000 test, seed 42). It gives the
package's arrays bit for bit, but draws from its own ``numpy.random.RandomState(seed)`` where
the package reseeds numpy's global generator, and it never touches the disk: the package's
``get_dataset`` downloads and caches a pickle, and its import needs ``requests`` (not a
dependency here). Nothing is read or written.

- ``mnist1d-mse``: the edge-of-stability workload (Cohen et al. 2021, Figure 1's setting on a
  task this size): the first 2,000 training signals standardized per position with their mean
  and standard deviation (the 1,000 test signals with the same), a tanh MLP 40-200-200-10
  (LeCun-normal kernels, zero biases) and the squared loss on one-hot targets,
  ½ Σ_k (f_k(x) − onehot(y)_k)² averaged over the samples (Cohen et al.'s ``SquaredLoss``);
  ``acc`` is the fraction whose largest output is the label. Full-batch gradient descent on it
  sharpens progressively up to 2/η and hovers there.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.ndimage import gaussian_filter

from landscape.data.classification import predicts, standardize
from landscape.models import MLP, pure_modes
from landscape.workload import Batch, Dataset, Workload

NUM_CLASSES = 10
LENGTH = 40  # final_seq_length
HIDDEN = (100, 100)
NUM_TRAIN = 1000

# get_dataset_args()'s values (its `url` aside: nothing is downloaded).
NUM_SAMPLES = 5000
TRAIN_SPLIT = 0.8
TEMPLATE_LEN = 12
PADDING = (36, 60)
SCALE_COEFF = 0.4
MAX_TRANSLATION = 48
CORR_NOISE_SCALE = 0.25
IID_NOISE_SCALE = 2e-2
SHEAR_SCALE = 0.75
SEED = 42


def templates() -> tuple[np.ndarray, np.ndarray]:
    """The ten digit templates ``(10, 12)`` (whitened, starting at 0, scaled by 1/6) and their
    time axis ``(12,)``, as ``mnist1d.get_templates``."""
    x = np.asarray([
        [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
        [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
        [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
        [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
        [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
        [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
        [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
        [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
        [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
    ])
    x -= x.mean(1, keepdims=True)
    x /= x.std(1, keepdims=True)
    x -= x[:, :1]
    return x / 6.0, np.linspace(-5, 5, x.shape[1]) / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    # The package's interp1d(kind="linear"), which hands 1-D float64 data to np.interp.
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _transform(template: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """One signal from one template: ``mnist1d.transform.transform`` (same draws, same order)."""
    low, high = PADDING
    pad = low + int(rng.rand() * (high - low + 1))
    x = np.concatenate([template + 1e-8, np.zeros(pad)])
    x = _resample(x, TEMPLATE_LEN + PADDING[-1])  # dilate
    x *= 1 + SCALE_COEFF * (rng.rand() - 0.5)  # scale
    k = rng.choice(MAX_TRANSLATION)
    x = np.concatenate([x[-k:], x[:-k]])  # translate (k = 0 keeps x: x[-0:] is all of it)
    mask = x != 0
    noise = gaussian_filter(CORR_NOISE_SCALE * rng.randn(*x.shape), 2)
    x = mask * x + (1 - mask) * noise  # correlated noise where the signal is exactly 0
    x = x + IID_NOISE_SCALE * rng.randn(*x.shape)
    x = x - SHEAR_SCALE * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(x))  # shear
    return _resample(x, LENGTH)


def mnist1d_arrays(seed: int = SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train (4000, 40), y_train, x_test (1000, 40), y_test)`` float64 signals and int64
    labels: ``mnist1d.make_dataset(get_dataset_args())``'s ``x``, ``y``, ``x_test``,
    ``y_test`` for ``seed`` 42 (the dataset, centred and scaled to standard deviation 1 as a
    whole). Pure: no global random state, no files."""
    rng = np.random.RandomState(seed)
    shapes, _ = templates()
    per_class = NUM_SAMPLES // NUM_CLASSES
    xs = np.stack([_transform(shapes[label], rng)
                   for label in range(NUM_CLASSES) for _ in range(per_class)])
    ys = np.repeat(np.arange(NUM_CLASSES), per_class)
    order = rng.permutation(len(ys))
    xs, ys = xs[order], ys[order]
    xs = (xs - xs.mean()) / xs.std()
    split = int(len(ys) * TRAIN_SPLIT)
    return xs[:split], ys[:split], xs[split:], ys[split:]


def squared_loss_and_accuracy(outputs: jax.Array, labels: jax.Array) -> tuple[jax.Array, dict]:
    """½ Σ_k (outputs_k − onehot(labels)_k)², averaged over the batch, and ``{"acc": fraction
    whose largest output is the label}``."""
    targets = jax.nn.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype)
    loss = 0.5 * jnp.mean(jnp.sum((outputs - targets) ** 2, axis=-1))
    return loss, {"acc": jnp.mean(predicts(outputs, labels))}


def mnist1d_mse(num_train: int = NUM_TRAIN, hidden: tuple[int, ...] = HIDDEN) -> Workload:
    x_train, y_train, x_test, y_test = mnist1d_arrays()
    x_train, y_train = x_train[:num_train], y_train[:num_train].astype(np.int32)
    x_train, x_test = standardize(x_train, x_test)
    model = pure_modes(lambda rngs: MLP((LENGTH, *hidden, NUM_CLASSES), rngs=rngs,
                                        activation=jnp.tanh))

    def loss(params, state, batch: Batch):
        return squared_loss_and_accuracy(model.apply(params, state, batch.inputs), batch.targets)

    return Workload(
        name="mnist1d-mse",
        init=model.init,
        loss=loss,
        train=Dataset(x_train, y_train),
        test=Dataset(x_test, y_test.astype(np.int32)),
        metrics=("acc",),
        task="classification",
        input_shape=(LENGTH,),
        batch_size=num_train,
        apply=model.apply,
    )
