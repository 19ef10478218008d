"""Independent reference mathematics that learners' answers are compared with.

These are deliberately *other* formulations than the ones the notebooks teach (SciPy's
softmax and log-softmax, ``einsum`` instead of ``@``, ``tanh`` for the sigmoid), computed in
float64. ``tests/test_oracles.py`` confirms each against finite differences and against
PyTorch and TensorFlow autograd, so a wrong oracle cannot hide behind a matching solution.
"""
from __future__ import annotations

import numpy as np
from scipy import special

Params = dict[str, np.ndarray]


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# --- forward propagation (notebook 01) -------------------------------------------------

def relu(z):
    (z,) = _f64(z)
    return np.where(z > 0, z, 0.0)


def sigmoid(z):
    (z,) = _f64(z)
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # the same function, written without exp overflow


def softmax(z):
    (z,) = _f64(z)
    return special.softmax(z, axis=1)


def dense_forward(x, W, b):
    x, W, b = _f64(x, W, b)
    return np.einsum("ni,io->no", x, W) + b


def mse_loss(y_pred, y_true):
    y_pred, y_true = _f64(y_pred, y_true)
    return np.float64(np.square(y_pred - y_true).sum() / y_pred.size)


def cross_entropy(logits, y_onehot):
    logits, y_onehot = _f64(logits, y_onehot)
    return np.float64(-(y_onehot * special.log_softmax(logits, axis=1)).sum() / logits.shape[0])


def mlp_forward(x, params: Params):
    hidden = relu(dense_forward(x, params["W1"], params["b1"]))
    return dense_forward(hidden, params["W2"], params["b2"])


# --- backpropagation (notebook 02) ------------------------------------------------------

def relu_backward(dout, z):
    dout, z = _f64(dout, z)
    return np.where(z > 0, dout, 0.0)


def sigmoid_backward(dout, z):
    dout, z = _f64(dout, z)
    s = sigmoid(z)
    return dout * s * (1.0 - s)


def dense_backward(dout, x, W):
    dout, x, W = _f64(dout, x, W)
    dx = np.einsum("no,io->ni", dout, W)
    dW = np.einsum("ni,no->io", x, dout)
    db = np.einsum("no->o", dout)
    return dx, dW, db


def mse_loss_grad(y_pred, y_true):
    y_pred, y_true = _f64(y_pred, y_true)
    return 2.0 * (y_pred - y_true) / y_pred.size


def softmax_cross_entropy_grad(logits, y_onehot):
    logits, y_onehot = _f64(logits, y_onehot)
    return (softmax(logits) - y_onehot) / logits.shape[0]


def mlp_backward(x, y_true, params: Params) -> Params:
    """Gradients of the 10-20-5 network's MSE loss with respect to W1, b1, W2, b2."""
    z1 = dense_forward(x, params["W1"], params["b1"])
    hidden = relu(z1)
    y_pred = dense_forward(hidden, params["W2"], params["b2"])
    dy = mse_loss_grad(y_pred, y_true)
    dhidden, dW2, db2 = dense_backward(dy, hidden, params["W2"])
    dz1 = relu_backward(dhidden, z1)
    _, dW1, db1 = dense_backward(dz1, x, params["W1"])
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# --- gradient descent (notebook 03) -----------------------------------------------------

def sgd_step(params: Params, grads: Params, lr: float) -> Params:
    return {name: np.asarray(value, np.float64) - lr * np.asarray(grads[name], np.float64)
            for name, value in params.items()}


# --- gradients of the scalar test functions (values: harness.SCALAR_FUNCTIONS) ------------

def scalar_function_gradient(name: str, params: Params, x):
    (x,) = _f64(x)
    A = np.asarray(params["A"], np.float64)
    if name == "weighted_squares":
        return 2.0 * A * x
    if name == "sin_product":
        return np.cos(x) * A
    if name == "log_sum_exp":
        flat = (x * A).ravel()
        return (special.softmax(flat).reshape(x.shape)) * A
    raise KeyError(name)


# --- gradient checking (notebook 02), added with notebooks 02-03 ---------------------------

def central_difference(f, x, h=1e-5):
    """(f(x + h e_i) - f(x - h e_i)) / 2h for every entry i, evaluated on fresh copies of x.

    The definition that ``numerical_gradient`` implements, written without in-place updates,
    so it needs no restoring; it evaluates f at exactly the points a correct in-place loop does.
    """
    (x,) = _f64(x)
    grad = np.empty_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = h
        grad[index] = (f(x + step) - f(x - step)) / (2.0 * h)
    return grad


def relative_error(a, b, tiny=1e-12):
    """max|a - b| / max(|a| + |b|), the largest difference relative to the arrays' scale."""
    a, b = _f64(a, b)
    difference = np.linalg.norm((a - b).ravel(), ord=np.inf)
    scale = np.linalg.norm((np.abs(a) + np.abs(b)).ravel(), ord=np.inf)
    return np.float64(difference / max(scale, tiny))
