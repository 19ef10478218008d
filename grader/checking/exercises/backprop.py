"""Notebook 02: backpropagation in NumPy, checked against finite differences."""
from __future__ import annotations

import numpy as np
from scipy import special

from grader.checking import oracles
from grader.sandbox.harness import SCALAR_FUNCTIONS
from grader.checking.spec import Call, Exercise, Function, Mistake, NotebookSpec
from .draws import away_from_zero, normal, one_hot, params_10_20_5

# Backward passes are compared in float64 and, for some calls, float32: a float32 sum of a
# few dozen products can be off by ~1e-6 even when it is right; the absolute tolerance allows that.
BACKWARD_RTOL, BACKWARD_ATOL = 1e-5, 3e-6

# --- relu_backward ----------------------------------------------------------------------

relu_backward = Exercise(
    name="relu_backward", points=1, title="ReLU backward",
    visible_calls=lambda: [Call((np.array([[1.0, -2.0, 3.0, -4.0]]), np.array([[0.5, 1.5, -0.5, -1.5]]))),
                           Call((np.arange(1.0, 7.0).reshape(2, 3), np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]])))],
    hidden_calls=lambda rng: [Call((normal(rng, 6, 5), away_from_zero(rng, 6, 5))),
                              Call((normal(rng, 4, 20).astype(np.float32), away_from_zero(rng, 4, 20).astype(np.float32)))],
    expected=oracles.relu_backward,
    mistakes=(
        Mistake("relu_backward lets dout through where the forward input z was positive: mask with z > 0, not dout > 0.",
                wrong=lambda dout, z: np.where(dout > 0, dout, 0.0),
                inject="def relu_backward(dout, z):\n    return dout * (dout > 0)\n"),
        Mistake("the mask (z > 0) is ReLU's local derivative; multiply it by the upstream gradient dout (chain rule).",
                wrong=lambda dout, z: (z > 0).astype(np.float64),
                inject="def relu_backward(dout, z):\n    return (z > 0).astype(float)\n"),
    ),
    rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL,
)

# --- sigmoid_backward -------------------------------------------------------------------

sigmoid_backward = Exercise(
    name="sigmoid_backward", points=1, title="Sigmoid backward",
    visible_calls=lambda: [Call((np.array([[1.0, 2.0, -0.5]]), np.array([[-1.0, 0.0, 2.0]]))),
                           Call((np.array([[2.0, -1.0]]), np.array([[-30.0, 30.0]])))],
    hidden_calls=lambda rng: [Call((normal(rng, 6, 4), normal(rng, 6, 4, scale=3.0))),
                              Call((normal(rng, 1, 4), np.array([[-700.0, -50.0, 50.0, 700.0]]))),
                              Call((normal(rng, 3, 5, dtype=np.float32), normal(rng, 3, 5, dtype=np.float32)))],
    expected=oracles.sigmoid_backward,
    mistakes=(
        Mistake("sigmoid'(z) = s * (1 - s) where s = sigmoid(z): compute s first; z * (1 - z) puts the raw input where s belongs.",
                wrong=lambda dout, z: dout * z * (1.0 - z),
                inject="def sigmoid_backward(dout, z):\n    return dout * z * (1 - z)\n"),
        Mistake("s * (1 - s) is sigmoid's local derivative; multiply it by the upstream gradient dout (chain rule).",
                wrong=lambda dout, z: oracles.sigmoid(z) * (1.0 - oracles.sigmoid(z)),
                inject="def sigmoid_backward(dout, z):\n    s = sigmoid(z)\n    return s * (1 - s)\n"),
    ),
    rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL,
)

# --- dense_backward ---------------------------------------------------------------------

def _dense_backward_with(dx=None, dW=None, db=None):
    """The oracle's (dx, dW, db) with some parts replaced by wrong formulas of (dout, x, W)."""
    def wrong(dout, x, W):
        right = oracles.dense_backward(dout, x, W)
        parts = (dx, dW, db)
        return tuple(part(dout, x, W) if part else value for part, value in zip(parts, right))
    return wrong


_DENSE_BACKWARD_CELL = """def dense_backward(dout, x, W):
    dx = {dx}
    dW = {dW}
    db = {db}
    return dx, dW, db
"""


def _dense_backward_cell(dx="dout @ W.T", dW="x.T @ dout", db="dout.sum(axis=0)"):
    return _DENSE_BACKWARD_CELL.format(dx=dx, dW=dW, db=db)


dense_backward = Exercise(
    name="dense_backward", points=2, title="Dense layer backward pass",
    visible_calls=lambda: [Call((np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([[1.0, 2.0, 3.0], [0.0, -1.0, 1.0]]),
                                 np.array([[1.0, 0.0], [0.5, -1.0], [2.0, 1.0]]))),
                           Call((np.array([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.0]]), np.array([[2.0, 1.0], [-1.0, 0.5], [0.0, 3.0]]),
                                 np.array([[1.0, 2.0], [-0.5, 1.0]])))],  # square W: dout @ W runs, wrongly
    hidden_calls=lambda rng: [
        Call((normal(rng, 8, 20), normal(rng, 8, 10), normal(rng, 10, 20))),
        Call((normal(rng, 4, 5), normal(rng, 4, 5), normal(rng, 5, 5))),  # square W: dout @ W runs, wrongly
        Call((normal(rng, 3, 6, dtype=np.float32), normal(rng, 3, 4, dtype=np.float32), normal(rng, 4, 6, dtype=np.float32))),
    ],
    expected=oracles.dense_backward, outputs=("dx", "dW", "db"),
    mistakes=(
        Mistake("dW has W's shape (in, out): it is x.T @ dout, not dout.T @ x (that is its transpose).",
                wrong=_dense_backward_with(dW=lambda dout, x, W: dout.T @ x), key="1",
                inject=_dense_backward_cell(dW="dout.T @ x")),
        Mistake("db has shape (batch, out): sum it over the batch (axis=0), since b is added to every row.",
                wrong=_dense_backward_with(db=lambda dout, x, W: dout), key="2",
                inject=_dense_backward_cell(db="dout")),
        Mistake("db is the sum of dout over the batch, not the mean: the loss's 1/n is already inside dout.",
                wrong=_dense_backward_with(db=lambda dout, x, W: dout.mean(axis=0)), key="2",
                inject=_dense_backward_cell(db="dout.mean(axis=0)")),
        Mistake("db sums over the batch axis (axis=0), giving one value per output unit; axis=1 sums over the units.",
                wrong=_dense_backward_with(db=lambda dout, x, W: dout.sum(axis=1)), key="2",
                inject=_dense_backward_cell(db="dout.sum(axis=1)")),
        Mistake("db must have b's shape (out,): drop keepdims=True, or the update b - lr * db silently "
                "broadcasts b into a (1, out) matrix.",
                wrong=_dense_backward_with(db=lambda dout, x, W: dout.sum(axis=0, keepdims=True)), key="2",
                inject=_dense_backward_cell(db="dout.sum(axis=0, keepdims=True)")),
        Mistake("dx is dout @ W.T (shape (batch, in)); dout @ W only runs when W is square, and is wrong then.",
                wrong=_dense_backward_with(dx=lambda dout, x, W: dout @ W), key="0",
                inject=_dense_backward_cell(dx="dout @ W")),
    ),
    rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL,
)

# --- mse_loss_grad ----------------------------------------------------------------------

mse_loss_grad = Exercise(
    name="mse_loss_grad", points=1, title="Gradient of the mean squared error",
    visible_calls=lambda: [Call((np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 4.0]]))),
                           Call((np.array([[0.5, -1.0, 2.0]]), np.array([[0.0, 0.0, 0.0]])))],
    hidden_calls=lambda rng: [Call((normal(rng, 8, 5), normal(rng, 8, 5))),
                              Call((normal(rng, 3, 1), normal(rng, 3, 1))),
                              Call((normal(rng, 6, 3, dtype=np.float32), normal(rng, 6, 3, dtype=np.float32)))],
    expected=oracles.mse_loss_grad,
    mistakes=(
        Mistake("the MSE is a mean over n*k elements, so its gradient is divided by y_pred.size: 2 * (y_pred - y_true) / y_pred.size.",
                wrong=lambda p, t: 2.0 * (p - t),
                inject="def mse_loss_grad(y_pred, y_true):\n    return 2 * (y_pred - y_true)\n"),
        Mistake("divide by the number of elements n*k (y_pred.size), not only by the batch size n.",
                wrong=lambda p, t: 2.0 * (p - t) / p.shape[0],
                inject="def mse_loss_grad(y_pred, y_true):\n    return 2 * (y_pred - y_true) / y_pred.shape[0]\n"),
        Mistake("the derivative of a square brings down a factor 2: 2 * (y_pred - y_true) / y_pred.size.",
                wrong=lambda p, t: (p - t) / p.size,
                inject="def mse_loss_grad(y_pred, y_true):\n    return (y_pred - y_true) / y_pred.size\n"),
        Mistake("the sign is flipped: the loss grows when y_pred moves away from y_true, so the gradient is y_pred - y_true (times 2 / size).",
                wrong=lambda p, t: 2.0 * (t - p) / p.size,
                inject="def mse_loss_grad(y_pred, y_true):\n    return 2 * (y_true - y_pred) / y_pred.size\n"),
    ),
    rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL,
)

# --- softmax_cross_entropy_grad ---------------------------------------------------------

_SCE_CELL = """def softmax_cross_entropy_grad(logits, y_onehot):
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    return {result}
"""

def rows_far_apart(rng, n_classes: int) -> np.ndarray:
    """Logits whose rows sit at wildly different scales (one near 900, one near 0): a
    softmax shifted by the matrix's maximum instead of each row's underflows to 0/0 there."""
    return np.stack([normal(rng, n_classes, scale=3.0) + 900.0, normal(rng, n_classes, scale=3.0),
                     normal(rng, n_classes, scale=3.0) - 40.0])


ROW_WISE_MAX = ("subtract each row's maximum, logits.max(axis=1, keepdims=True), not the maximum of the whole "
                "matrix: a row far below the largest one underflows to exp(-900) = 0 and gives 0/0 = NaN.")


def _sce_grad_matrix_max(z, y):
    with np.errstate(all="ignore"):
        e = np.exp(z - z.max())
        return (e / e.sum(axis=1, keepdims=True) - y) / z.shape[0]


softmax_cross_entropy_grad = Exercise(
    name="softmax_cross_entropy_grad", points=2, title="Gradient of softmax + cross-entropy",
    visible_calls=lambda: [Call((np.array([[2.0, 1.0, 0.1], [0.0, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))),
                           Call((np.array([[1000.0, 0.0]]), np.array([[0.0, 1.0]]))),
                           Call((rows_far_apart(np.random.default_rng(14), 4), np.eye(4)[[1, 0, 3]]))],
    hidden_calls=lambda rng: [
        Call((normal(rng, 8, 5, scale=2.0), one_hot(rng, 8, 5))),
        Call((normal(rng, 6, 3, scale=4.0) + 600.0, one_hot(rng, 6, 3))),
        Call((normal(rng, 4, 10, dtype=np.float32), one_hot(rng, 4, 10).astype(np.float32))),
        Call((rows_far_apart(rng, 4), one_hot(rng, 3, 4))),
    ],
    expected=oracles.softmax_cross_entropy_grad,
    mistakes=(
        Mistake("the loss is the mean over the batch, so its gradient is (p - y) / n: divide by logits.shape[0].",
                wrong=lambda z, y: special.softmax(z, axis=1) - y,
                inject=_SCE_CELL.format(result="p - y_onehot")),
        Mistake("the sign is flipped: the gradient of the cross-entropy is (p - y) / n, not (y - p) / n.",
                wrong=lambda z, y: (y - special.softmax(z, axis=1)) / z.shape[0],
                inject=_SCE_CELL.format(result="(y_onehot - p) / logits.shape[0]")),
        Mistake("apply softmax first: the gradient is (softmax(logits) - y) / n, with probabilities, not raw logits.",
                wrong=lambda z, y: (z - y) / z.shape[0],
                inject=_SCE_CELL.format(result="(logits - y_onehot) / logits.shape[0]")),
        Mistake(ROW_WISE_MAX, wrong=_sce_grad_matrix_max,
                inject="def softmax_cross_entropy_grad(logits, y_onehot):\n    shifted = logits - logits.max()\n"
                       "    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)\n"
                       "    return (p - y_onehot) / logits.shape[0]\n"),
    ),
    rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL,
)

# --- mlp_backward -----------------------------------------------------------------------

def _mlp_backward_without_relu(x, y, params):
    hidden = oracles.relu(oracles.dense_forward(x, params["W1"], params["b1"]))
    dy = oracles.mse_loss_grad(oracles.dense_forward(hidden, params["W2"], params["b2"]), y)
    dhidden, dW2, db2 = oracles.dense_backward(dy, hidden, params["W2"])
    _, dW1, db1 = oracles.dense_backward(dhidden, x, params["W1"])
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _mlp_backward_dW2_from_z1(x, y, params):
    z1 = oracles.dense_forward(x, params["W1"], params["b1"])
    dy = oracles.mse_loss_grad(oracles.mlp_forward(x, params), y)
    return {"W2": np.einsum("ni,no->io", z1, dy)}


def _mlp_backward_summed_loss(x, y, params):
    grads = oracles.mlp_backward(x, y, params)
    return {name: value * y.size for name, value in grads.items()}  # of the summed, not the mean, squares


_MLP_BACKWARD_CELL = """def mlp_backward(x, y_true, params):
    z1 = dense_forward(x, params["W1"], params["b1"])
    hidden = relu(z1)
    y_pred = dense_forward(hidden, params["W2"], params["b2"])
    dy = {dy}
    dhidden, dW2, db2 = dense_backward(dy, {layer2_input}, params["W2"])
    dz1 = {dz1}
    _, dW1, db1 = dense_backward(dz1, x, params["W1"])
    return {{"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}}
"""


def _mlp_backward_cell(dy="mse_loss_grad(y_pred, y_true)", layer2_input="hidden", dz1="relu_backward(dhidden, z1)"):
    return _MLP_BACKWARD_CELL.format(dy=dy, layer2_input=layer2_input, dz1=dz1)


mlp_backward = Exercise(
    name="mlp_backward", points=3, title="Backpropagation through the 10-20-5 network",
    visible_calls=lambda: [Call((normal(np.random.default_rng(0), 4, 10), normal(np.random.default_rng(2), 4, 5),
                                 params_10_20_5(np.random.default_rng(1))))],
    hidden_calls=lambda rng: [Call((normal(rng, 16, 10), normal(rng, 16, 5), params_10_20_5(rng))),
                              Call((normal(rng, 3, 10, dtype=np.float32), normal(rng, 3, 5, dtype=np.float32),
                                    params_10_20_5(rng, np.float32)))],
    expected=oracles.mlp_backward,
    mistakes=(
        Mistake("the gradient must pass back through the ReLU: dz1 = relu_backward(dhidden, z1) before the first layer's backward.",
                wrong=_mlp_backward_without_relu,
                inject=_mlp_backward_cell(dz1="dhidden")),
        Mistake("dW2 = hidden.T @ dy: the second layer's input is the ReLU output, not the pre-activation z1.",
                wrong=_mlp_backward_dW2_from_z1, key="W2",
                inject=_mlp_backward_cell(layer2_input="z1")),
        Mistake("start from the gradient of the mean loss, mse_loss_grad(y_pred, y_true) = 2 * (y_pred - y_true) / size; "
                "yours is too large by the number of elements.",
                wrong=_mlp_backward_summed_loss,
                inject=_mlp_backward_cell(dy="2 * (y_pred - y_true)")),
    ),
    rtol=BACKWARD_RTOL, atol=BACKWARD_ATOL,
)

# --- numerical_gradient -----------------------------------------------------------------

def scalar_function(spec: Function):
    """The callable the learner receives for a named test function (same code as the sandbox)."""
    return SCALAR_FUNCTIONS[spec.name](spec.params)


def _numerical_gradient_oracle(f, x, h=1e-5):
    return oracles.central_difference(scalar_function(f), x, h)


def _finite_differences(estimate):
    """A wrong numerical gradient: loops over x in place like the learner, with ``estimate``."""
    def wrong(f, x, h=1e-5):
        f, x = scalar_function(f), np.array(x, dtype=np.float64)
        grad = np.zeros_like(x)
        for index in np.ndindex(*x.shape):
            grad[index] = estimate(f, x, index, h)
        return grad
    return wrong


def _forward_difference(f, x, i, h):
    base = f(x)
    old = x[i]
    x[i] = old + h
    plus = f(x)
    x[i] = old
    return (plus - base) / h


def _central_over(divide):
    def estimate(f, x, i, h):
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        return divide(plus - minus, h)
    return estimate


def _central_without_restoring(f, x, i, h):
    old = x[i]
    x[i] = old + h
    plus = f(x)
    x[i] = old - h
    minus = f(x)
    return (plus - minus) / (2 * h)  # x[i] stays at old - h for every later entry


_NUMERICAL_GRADIENT_CELL = """def numerical_gradient(f, x, h=1e-5):
    grad = np.zeros_like(x, dtype=float)
    for i in np.ndindex(*x.shape):
        old = x[i]
{body}
    return grad
"""


def _numerical_gradient_cell(body: str) -> str:
    return _NUMERICAL_GRADIENT_CELL.format(body="\n".join("        " + line for line in body.strip().splitlines()))


def _lse(rng, *shape):
    return Function("log_sum_exp", {"A": rng.uniform(0.5, 2.0, shape)})


numerical_gradient = Exercise(
    name="numerical_gradient", points=2, title="Numerical gradient by central differences",
    # The first call uses a large step h on a function whose entries interact, so each
    # catalogued mistake gives clearly different numbers there and is named by its hint.
    visible_calls=lambda: [
        Call((_lse(np.random.default_rng(3), 3, 4), normal(np.random.default_rng(4), 3, 4)), {"h": 1e-2}),
        Call((Function("weighted_squares", {"A": np.array([1.0, 2.0, 3.0])}), np.array([1.0, -1.0, 0.5]))),
    ],
    hidden_calls=lambda rng: [
        Call((_lse(rng, 5), normal(rng, 5)), {"h": 1e-3}),
        Call((Function("sin_product", {"A": normal(rng, 2, 3)}), normal(rng, 2, 3))),
        Call((Function("weighted_squares", {"A": normal(rng, 4, 3)}), normal(rng, 4, 3)), {"h": 1e-4}),
    ],
    expected=_numerical_gradient_oracle,
    mistakes=(
        Mistake("use central differences (f(x + h) - f(x - h)) / (2h): the forward difference (f(x + h) - f(x)) / h is less accurate.",
                wrong=_finite_differences(_forward_difference),
                inject="def numerical_gradient(f, x, h=1e-5):\n    grad = np.zeros_like(x, dtype=float)\n"
                       "    fx = f(x)\n    for i in np.ndindex(*x.shape):\n        old = x[i]\n        x[i] = old + h\n"
                       "        grad[i] = (f(x) - fx) / h\n        x[i] = old\n    return grad\n"),
        Mistake("a central difference spans 2h, from x - h to x + h: divide by 2 * h, not by h.",
                wrong=_finite_differences(_central_over(lambda d, h: d / h)),
                inject=_numerical_gradient_cell("x[i] = old + h\nplus = f(x)\nx[i] = old - h\nminus = f(x)\n"
                                                "x[i] = old\ngrad[i] = (plus - minus) / h")),
        Mistake("write / (2 * h) with parentheses: / 2 * h divides by 2 and then multiplies by h.",
                wrong=_finite_differences(_central_over(lambda d, h: d / 2 * h)),
                inject=_numerical_gradient_cell("x[i] = old + h\nplus = f(x)\nx[i] = old - h\nminus = f(x)\n"
                                                "x[i] = old\ngrad[i] = (plus - minus) / 2 * h")),
        Mistake("restore x[i] to its old value after the two evaluations, or every later entry is measured at a shifted point.",
                wrong=_finite_differences(_central_without_restoring),
                inject=_numerical_gradient_cell("x[i] = old + h\nplus = f(x)\nx[i] = old - h\nminus = f(x)\n"
                                                "grad[i] = (plus - minus) / (2 * h)")),
    ),
    rtol=1e-6, atol=1e-9,  # the same differences as the oracle's: only rounding may differ
)

# --- relative_error ---------------------------------------------------------------------

def _nearly_equal(rng, *shape):
    """Two arrays as a gradient check sees them: equal up to tiny differences."""
    a = normal(rng, *shape)
    return a, a + normal(rng, *shape, scale=1e-7)


relative_error = Exercise(
    name="relative_error", points=1, title="Relative error for gradient checks",
    visible_calls=lambda: [Call((np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.5, 3.1]))),
                           Call((np.zeros((2, 2)), np.zeros((2, 2))))],
    hidden_calls=lambda rng: [
        Call((normal(rng, 4, 5), normal(rng, 4, 5))),
        Call(tuple(_nearly_equal(rng, 10, 20))),
        Call((np.array([[1e-3, 5.0], [-2.0, 0.0]]), np.array([[2e-3, 5.0], [-2.0, 1e-9]]))),
    ],
    expected=oracles.relative_error,
    mistakes=(
        Mistake("take the absolute difference |a - b| before the max: a large negative difference is an error too.",
                wrong=lambda a, b: np.max(a - b) / max(np.max(np.abs(a) + np.abs(b)), 1e-12),
                inject="def relative_error(a, b):\n    return np.max(a - b) / max(np.max(np.abs(a) + np.abs(b)), 1e-12)\n"),
        Mistake("use the largest difference (max), not the mean: a single wrong entry must show in the error.",
                wrong=lambda a, b: np.mean(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-12),
                inject="def relative_error(a, b):\n    return np.mean(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-12)\n"),
        Mistake("divide the largest difference by the largest |a| + |b| over the whole array, not entry by entry "
                "(an entry near zero would blow the ratio up).",
                wrong=lambda a, b: np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12)),
                inject="def relative_error(a, b):\n    return np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-12))\n"),
    ),
)


NOTEBOOK = NotebookSpec(
    name="02_backprop",
    numpy_only=True,
    exercises=(relu_backward, sigmoid_backward, dense_backward, mse_loss_grad, softmax_cross_entropy_grad,
               mlp_backward, numerical_gradient, relative_error),
    cell_timeout=30.0,
    notebook_timeout=120.0,
)
