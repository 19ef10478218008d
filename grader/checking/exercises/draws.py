"""Random inputs shared by the exercise definitions."""
from __future__ import annotations

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


def one_hot(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return np.eye(k)[rng.integers(0, k, size=n)]


def away_from_zero(rng: np.random.Generator, *shape) -> np.ndarray:
    """Values with |z| >= 0.05, so a kink at 0 (ReLU) never decides a comparison."""
    z = rng.standard_normal(shape)
    return np.where(np.abs(z) < 0.05, np.sign(z + 1e-12) * 0.05, z)
