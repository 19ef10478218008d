"""Random inputs shared by the exercise definitions."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

LAYER_SIZES = (10, 20, 5)  # the source document's network: 10 inputs, 20 hidden, 5 outputs


def normal(rng: np.random.Generator, *shape, scale=1.0, dtype=np.float64):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def params_10_20_5(rng: np.random.Generator, dtype=np.float64) -> dict[str, np.ndarray]:
    n_in, n_hidden, n_out = LAYER_SIZES
    return {
        "W1": normal(rng, n_in, n_hidden, scale=n_in ** -0.5, dtype=dtype),
        "b1": normal(rng, n_hidden, scale=0.1, dtype=dtype),
        "W2": normal(rng, n_hidden, n_out, scale=n_hidden ** -0.5, dtype=dtype),
        "b2": normal(rng, n_out, scale=0.1, dtype=dtype),
    }


@lru_cache(maxsize=8)
def standardised_digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (nothing is downloaded): (x_train, labels_train, x_test,
    labels_test), a stratified 75/25 split chosen by ``seed``, standardised with the training
    set's statistics. The notebooks build the same split themselves."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, labels_train, labels_test = train_test_split(
        digits.data, digits.target, test_size=0.25, random_state=seed, stratify=digits.target)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std[std == 0] = 1.0  # pixels that are always blank in the training set
    return (x_train - mean) / std, labels_train, (x_test - mean) / std, labels_test


def one_hot(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.eye(k)[rng.integers(0, k, size=n)]


def away_from_zero(rng: np.random.Generator, *shape) -> np.ndarray:
    """Values with |z| >= 0.05, so a kink at 0 (ReLU) never decides a comparison."""
    z = rng.standard_normal(shape)
    return np.where(np.abs(z) < 0.05, np.sign(z + 1e-12) * 0.05, z)
