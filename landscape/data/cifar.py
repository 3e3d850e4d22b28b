"""CIFAR-10 from the standard *binary* batches, with a ResNet-20 (BatchNorm).

Format (https://www.cs.toronto.edu/~kriz/cifar.html, "Binary version"): ``data_batch_1.bin`` …
``data_batch_5.bin`` and ``test_batch.bin``, each a sequence of 3073-byte records: one label byte
(0–9), then 1024 red, 1024 green and 1024 blue pixel bytes of a 32×32 image in row-major order.
The python-pickle version of the data set is never read (no pickle anywhere).

The files lie in the workload's folder (see :mod:`landscape.data.files`) or in its
``cifar-10-batches-bin/`` subfolder, the name the official tarball extracts to. Images stay uint8
in memory (150 MB for the training set); the loss standardizes them per channel with the training
set's statistics. Models:

- ``cifar10``: :class:`~landscape.models.ResNet` (depth 20, width 16; He et al.'s option-A
  shortcuts);
- ``cifar10-resnet20``, ``cifar10-resnet56``: ResNet-20/56 with projection shortcuts, and
  ``cifar10-resnet20-noshort``, ``cifar10-resnet56-noshort`` without shortcuts: Li et al. 2018's
  ``ResNet20``, ``ResNet56``, ``ResNet20_noshort``, ``ResNet56_noshort``;
- ``cifar10-vgg9``: :class:`~landscape.models.VGG9` (Li et al.'s ``VGG9``, BatchNorm).

All of them read the same ``cifar10/`` folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from landscape.data.classification import classification_workload
from landscape.data.files import data_folder, find_file, read_bytes
from landscape.errors import ReadError
from landscape.models import VGG9, PureModel, ResNet, pure_modes
from landscape.models.resnet import Shortcut
from landscape.workload import Dataset, Workload

IMAGE_SHAPE = (32, 32, 3)
RECORD_BYTES = 1 + 32 * 32 * 3
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
SUBFOLDER = "cifar-10-batches-bin"
SOURCE = ("CIFAR-10 binary version (cifar-10-binary.tar.gz from "
          "https://www.cs.toronto.edu/~kriz/cifar.html, extracted)")


def read_cifar_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(images (n, 32, 32, 3) uint8 NHWC, labels (n,) int32)`` from one binary batch file.

    Raises:
      ReadError: the size is not a whole number of 3073-byte records, or a label is not 0–9.
    """
    path = Path(path)
    raw = read_bytes(path)
    count, extra = divmod(len(raw), RECORD_BYTES)
    if extra or not count:
        raise ReadError(
            f"{path}: truncated or not a CIFAR-10 binary batch: {len(raw)} bytes is not a whole "
            f"number of {RECORD_BYTES}-byte records (label byte + 3072 pixel bytes)"
        )
    records = np.frombuffer(raw, dtype=np.uint8).reshape(count, RECORD_BYTES)
    labels = records[:, 0].astype(np.int32)
    if labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise ReadError(f"{path}: record {bad} has label {labels[bad]}, expected 0-9")
    # Stored channel-major (3, 32, 32) per image; models take NHWC.
    images = records[:, 1:].reshape(count, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def write_cifar_batch(path: str | os.PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Write NHWC uint8 ``images`` and ``labels`` as a binary batch (for tests and conversions)."""
    images = np.asarray(images, dtype=np.uint8).transpose(0, 3, 1, 2).reshape(len(images), -1)
    records = np.concatenate([np.asarray(labels, np.uint8)[:, None], images], axis=1)
    from landscape.io.atomic import write_bytes

    write_bytes(path, records.tobytes())


def cifar_folder(folder: str | os.PathLike | None) -> Path:
    root = data_folder("cifar10", folder)
    return root / SUBFOLDER if (root / SUBFOLDER).is_dir() else root


def read_cifar10(folder: str | os.PathLike | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)`` from the six binary batches in ``folder``."""
    root = cifar_folder(folder)
    paths = [find_file(root, name, workload="cifar10", source=SOURCE, gzip_ok=False)
             for name in (*TRAIN_FILES, TEST_FILE)]
    train = [read_cifar_batch(p) for p in paths[:-1]]
    x_test, y_test = read_cifar_batch(paths[-1])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return x_train, y_train, x_test, y_test


def cifar10(folder: str | os.PathLike | None = None, *, depth: int = 20, width: int = 16,
            shortcut: Shortcut = "zero-pad") -> Workload:
    """``cifar10``: He et al.'s ResNet-20 (option-A shortcuts) on the local binary batches."""
    return cifar_workload("cifar10", _resnet(depth, width, shortcut), *read_cifar10(folder))


# Li et al. 2018's case-study networks, as their cifar10/models code defines them (projection
# shortcuts where the shape changes). All read the same ``cifar10/`` data folder.


def cifar10_resnet20(folder: str | os.PathLike | None = None, *, width: int = 16) -> Workload:
    return cifar_workload("cifar10-resnet20", _resnet(20, width, "projection"),
                          *read_cifar10(folder))


def cifar10_resnet20_noshort(folder: str | os.PathLike | None = None, *,
                             width: int = 16) -> Workload:
    return cifar_workload("cifar10-resnet20-noshort", _resnet(20, width, "none"),
                          *read_cifar10(folder))


def cifar10_resnet56(folder: str | os.PathLike | None = None, *, width: int = 16) -> Workload:
    return cifar_workload("cifar10-resnet56", _resnet(56, width, "projection"),
                          *read_cifar10(folder))


def cifar10_resnet56_noshort(folder: str | os.PathLike | None = None, *,
                             width: int = 16) -> Workload:
    return cifar_workload("cifar10-resnet56-noshort", _resnet(56, width, "none"),
                          *read_cifar10(folder))


def cifar10_vgg9(folder: str | os.PathLike | None = None, *, width: int = 64) -> Workload:
    model = pure_modes(lambda rngs: VGG9(width, 10, input_shape=IMAGE_SHAPE, rngs=rngs))
    return cifar_workload("cifar10-vgg9", model, *read_cifar10(folder))


def _resnet(depth: int, width: int, shortcut: Shortcut) -> PureModel:
    return pure_modes(lambda rngs: ResNet(depth, width, 10, shortcut=shortcut, rngs=rngs))


def cifar_workload(name: str, model: PureModel, x_train: np.ndarray, y_train: np.ndarray,
                   x_test: np.ndarray | None = None, y_test: np.ndarray | None = None, *,
                   batch_size: int = 500) -> Workload:
    """A classification workload of ``model`` (with BatchNorm state) on CIFAR-shaped uint8
    images (n, 32, 32, 3) NHWC, standardized per channel inside the loss with the training
    images' statistics; e.g. on synthetic images in tests and benchmarks."""
    # Per-channel statistics of the training set, in [0, 1] units (float64 accumulators).
    pixels = np.asarray(x_train).reshape(-1, 3)
    mean = pixels.mean(axis=0, dtype=np.float64) / 255.0
    std = _channel_std(pixels, mean)
    mean_c = jnp.asarray(mean, jnp.float32)
    scale_c = jnp.asarray(1.0 / (255.0 * np.maximum(std, 1e-6)), jnp.float32)

    def preprocess(images: jax.Array) -> jax.Array:
        return (images.astype(jnp.float32) - 255.0 * mean_c) * scale_c

    test = None if x_test is None else Dataset(x_test, y_test)
    return classification_workload(name, model, Dataset(x_train, y_train), test,
                                   input_shape=IMAGE_SHAPE, batch_size=batch_size,
                                   preprocess=preprocess, has_state=True)


def _channel_std(pixels: np.ndarray, mean: np.ndarray, chunk: int = 2**20) -> np.ndarray:
    """Per-channel standard deviation in [0, 1] units, in chunks (bounded float64 memory)."""
    total = np.zeros(3)
    for start in range(0, len(pixels), chunk):
        block = pixels[start : start + chunk] / 255.0 - mean
        total += np.sum(block * block, axis=0)
    return np.sqrt(total / len(pixels))
