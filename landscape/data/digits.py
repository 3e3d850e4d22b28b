"""scikit-learn's 8×8 handwritten digits (1797 images, 10 classes; Alpaydin & Kaynak, UCI).

``sklearn.datasets.load_digits`` reads a file shipped inside the scikit-learn package: no network.
A fixed stratified split (seed 0) keeps 20 % for testing (1437 train / 360 test); pixels (0–16)
are standardized per pixel with the training set's mean and standard deviation.

- ``digits``: MLP 64-256-256-10 on the flattened image.
- ``digits-cnn``: :class:`~landscape.models.SmallCNN` on the 8×8×1 image.
"""

from __future__ import annotations

import numpy as np

from landscape.data.classification import classification_workload, standardize
from landscape.models import MLP, SmallCNN, pure_modes
from landscape.workload import Dataset, Workload

HIDDEN = (256, 256)
SPLIT_SEED = 0
TEST_FRACTION = 0.2


def digits_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train (1437, 64), y_train, x_test (360, 64), y_test)``, standardized float32 inputs and
    int32 labels, the fixed split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    inputs, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        inputs, labels.astype(np.int32), test_size=TEST_FRACTION, random_state=SPLIT_SEED,
        stratify=labels,
    )
    x_train, x_test = standardize(x_train, x_test)
    return x_train, y_train, x_test, y_test


def digits(hidden: tuple[int, ...] = HIDDEN) -> Workload:
    x_train, y_train, x_test, y_test = digits_arrays()
    model = pure_modes(lambda rngs: MLP((64, *hidden, 10), rngs=rngs))
    return classification_workload("digits", model, Dataset(x_train, y_train),
                                   Dataset(x_test, y_test), input_shape=(64,), batch_size=2048)


def digits_cnn(channels: tuple[int, int] = (16, 32)) -> Workload:
    x_train, y_train, x_test, y_test = digits_arrays()
    image = (8, 8, 1)
    model = pure_modes(lambda rngs: SmallCNN(image, 10, channels=channels, rngs=rngs))
    return classification_workload(
        "digits-cnn", model, Dataset(x_train.reshape(-1, *image), y_train),
        Dataset(x_test.reshape(-1, *image), y_test), input_shape=image, batch_size=2048,
    )
