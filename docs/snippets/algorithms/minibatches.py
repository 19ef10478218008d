"""Batch, stochastic and mini-batch gradient descent are one loop with three batch sizes."""
import numpy as np


def iterate_minibatches(X, y, batch_size, rng):
    """Shuffle once per epoch, then yield consecutive slices of batch_size rows."""
    order = rng.permutation(len(X))
    for start in range(0, len(X), batch_size):
        rows = order[start:start + batch_size]
        yield X[rows], y[rows]


def mse_gradient(w, X, y):
    """Gradient of mean((X @ w - y)**2) with respect to w: 2 X^T (X w - y) / n."""
    return 2 * X.T @ (X @ w - y) / len(X)


rng = np.random.default_rng(0)
X = rng.normal(size=(256, 3))
w_true = np.array([1.5, -2.0, 0.5])
y = X @ w_true + 0.1 * rng.normal(size=256)

for name, batch_size, lr in [("batch", 256, 0.1), ("stochastic", 1, 0.01), ("mini-batch", 32, 0.05)]:
    w = np.zeros(3)
    updates = 0
    for epoch in range(10):
        for X_batch, y_batch in iterate_minibatches(X, y, batch_size, rng):
            w -= lr * mse_gradient(w, X_batch, y_batch)  # sgd_step
            updates += 1
    loss = np.mean((X @ w - y) ** 2)
    print(f"{name:>10}: {updates:5d} updates in 10 epochs, loss {loss:.4f}, w = {np.round(w, 2)}")
