"""MNIST and Fashion-MNIST from the standard IDX files in a local folder (nothing is downloaded).

The folder (see :mod:`landscape.data.files`: the ``folder`` argument, ``$LANDSCAPE_DATA/<name>``
or ``~/.cache/landscape/data/<name>``) holds the four files under their standard names, plain or
``.gz``: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``. Pixels are scaled to [0, 1] and standardized with the training set's
mean and standard deviation (one pair for all pixels). Model: MLP 784-256-256-10.
"""

from __future__ import annotations

import os

import numpy as np

from landscape.data.classification import classification_workload, standardize
from landscape.data.files import data_folder, describe, find_file
from landscape.data.idx import read_idx
from landscape.errors import ReadError
from landscape.models import MLP, pure_modes
from landscape.workload import Dataset, Workload

FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
SOURCES = {
    "mnist": "MNIST IDX files (https://ossci-datasets.s3.amazonaws.com/mnist/)",
    "fashion-mnist": "Fashion-MNIST IDX files (https://github.com/zalandoresearch/fashion-mnist)",
}
HIDDEN = (256, 256)


def read_split(folder: str | os.PathLike, images: str, labels: str, *, workload: str
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, rows, cols) uint8, labels (n,) int32)`` from two IDX files in ``folder``."""
    source = f"{SOURCES.get(workload, 'IDX files')}: {describe(list(FILES.values()))}"
    image_path = find_file(folder, images, workload=workload, source=source)
    label_path = find_file(folder, labels, workload=workload, source=source)
    x = read_idx(image_path)
    y = read_idx(label_path)
    if x.ndim != 3 or x.dtype != np.uint8:
        raise ReadError(f"{image_path}: expected uint8 images (n, rows, cols), "
                        f"found {x.dtype.name} {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ReadError(f"{label_path}: expected {len(x)} labels (one per image in "
                        f"{image_path.name}), found shape {y.shape}")
    if len(y) and y.max() > 9:
        raise ReadError(f"{label_path}: labels must be 0-9, found {int(y.max())}")
    return x, y.astype(np.int32)


def idx_workload(name: str, folder: str | os.PathLike | None, hidden: tuple[int, ...]) -> Workload:
    """An MLP classifier on the IDX data set ``name`` found in ``folder``."""
    root = data_folder(name, folder)
    x_train, y_train = read_split(root, FILES["train_images"], FILES["train_labels"], workload=name)
    x_test, y_test = read_split(root, FILES["test_images"], FILES["test_labels"], workload=name)
    pixels = x_train.shape[1] * x_train.shape[2]
    scale = np.float32(1 / 255)
    x_train, x_test = standardize(x_train.reshape(-1, pixels) * scale,
                                  x_test.reshape(-1, pixels) * scale, axis=None)
    model = pure_modes(lambda rngs: MLP((pixels, *hidden, 10), rngs=rngs))
    return classification_workload(name, model, Dataset(x_train, y_train), Dataset(x_test, y_test),
                                   input_shape=(pixels,), batch_size=2000)


def mnist(folder: str | os.PathLike | None = None, hidden: tuple[int, ...] = HIDDEN) -> Workload:
    return idx_workload("mnist", folder, hidden)


def fashion_mnist(folder: str | os.PathLike | None = None,
                  hidden: tuple[int, ...] = HIDDEN) -> Workload:
    return idx_workload("fashion-mnist", folder, hidden)
