"""Two interleaved spirals: a synthetic 2-class task whose decision boundary no linear model finds.

Class ``c`` (0 or 1) has points at radius ``r ∈ (0, 1]`` and angle ``turns · 2π · r + c · π``,
plus Gaussian noise; ``r`` is drawn so the points are spread evenly along the arm. Train and test
sets come from one seeded generator (no files). Model: MLP 2-64-64-2, softmax cross-entropy.
"""

from __future__ import annotations

import numpy as np

from landscape.data.classification import classification_workload
from landscape.models import MLP, pure_modes
from landscape.workload import Dataset, Workload

HIDDEN = (64, 64)


def spiral_points(num: int, rng: np.random.Generator, *, turns: float = 1.5,
                  noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """``num`` points (num, 2) float32 and labels (num,) int32, classes alternating."""
    labels = np.arange(num, dtype=np.int32) % 2
    radius = np.sqrt(rng.uniform(0.0025, 1.0, num))  # sqrt: even density along the arm
    angle = turns * 2 * np.pi * radius + np.pi * labels
    points = radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    points += rng.normal(0.0, noise, points.shape)
    return points.astype(np.float32), labels


def spirals(num_train: int = 1000, num_test: int = 500, hidden: tuple[int, ...] = HIDDEN,
            *, seed: int = 0, noise: float = 0.05) -> Workload:
    rng = np.random.default_rng(seed)
    train = Dataset(*spiral_points(num_train, rng, noise=noise))
    test = Dataset(*spiral_points(num_test, rng, noise=noise))
    model = pure_modes(lambda rngs: MLP((2, *hidden, 2), rngs=rngs))
    return classification_workload("spirals", model, train, test, input_shape=(2,),
                                   batch_size=1000)
