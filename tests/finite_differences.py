"""The finite-difference oracle the tests share: central differences, one coordinate at a time."""
from __future__ import annotations

from typing import Callable

import numpy as np

FD_STEP = 1e-6  # float64: truncation error ~h^2, rounding error ~eps/h; 1e-6 balances the two


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = FD_STEP) -> np.ndarray:
    """The gradient of the scalar function f at x, one coordinate at a time."""
    x = np.asarray(x, np.float64)
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2 * h)
    return grad
