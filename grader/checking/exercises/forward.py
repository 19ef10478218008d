"""Notebook 01: forward propagation in NumPy."""
from __future__ import annotations

import numpy as np
from scipy import special

from grader.checking import oracles
from grader.checking.spec import Call, Exercise, Mistake, NotebookSpec
from .draws import away_from_zero, normal, one_hot, params_10_20_5

# --- relu -------------------------------------------------------------------------------

relu = Exercise(
    name="relu", points=1, title="ReLU",
    visible_calls=lambda: [Call((np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]]),)),
                           Call((np.arange(-6.0, 6.0).reshape(3, 4),))],
    hidden_calls=lambda rng: [Call((away_from_zero(rng, 7, 5),)),
                              Call((away_from_zero(rng, 4, 20).astype(np.float32),))],
    expected=oracles.relu,
    mistakes=(
        Mistake("np.max(z, 0) reduces along axis 0; use np.maximum(z, 0) for the element-wise maximum.",
                wrong=lambda z: np.max(z, 0),
                inject="def relu(z):\n    return np.max(z, 0)\n"),
        Mistake("relu keeps positive values and zeroes negative ones; yours does the opposite.",
                wrong=lambda z: np.minimum(z, 0),
                inject="def relu(z):\n    return np.minimum(z, 0)\n"),
    ),
)

# --- sigmoid ----------------------------------------------------------------------------

sigmoid = Exercise(
    name="sigmoid", points=1, title="Sigmoid",
    visible_calls=lambda: [Call((np.array([[-1.0, 0.0, 1.0]]),)),
                           Call((np.array([[-30.0, 30.0]]),))],
    hidden_calls=lambda rng: [Call((normal(rng, 6, 4, scale=3.0),)),
                              Call((np.array([[-700.0, -50.0, 50.0, 700.0]]),))],
    expected=oracles.sigmoid,
    mistakes=(
        Mistake("sigmoid is 1 / (1 + exp(-z)): the minus sign in the exponent is missing.",
                wrong=lambda z: 1.0 / (1.0 + np.exp(np.clip(z, -700, 700))),
                inject="def sigmoid(z):\n    return 1.0 / (1.0 + np.exp(z))\n"),
    ),
)

# --- softmax ----------------------------------------------------------------------------

def _naive_softmax(z):
    with np.errstate(all="ignore"):
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


def _softmax_sum_without_keepdims(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1)  # broadcasts the row sums across columns when z is square


def rows_far_apart(rng, n_classes: int) -> np.ndarray:
    """Logits whose rows sit at wildly different scales (one near 900, one near 0): shifted by
    the matrix's maximum instead of each row's, a row underflows to 0/0 = NaN."""
    return np.stack([normal(rng, n_classes, scale=3.0) + 900.0, normal(rng, n_classes, scale=3.0),
                     normal(rng, n_classes, scale=3.0) - 40.0])


ROW_WISE_MAX = ("subtract each row's maximum, z.max(axis=1, keepdims=True), not the maximum of the whole matrix: "
                "a row far below the largest one underflows to exp(-900) = 0 and gives 0/0 = NaN.")


def _softmax_matrix_max(z):
    with np.errstate(all="ignore"):
        e = np.exp(z - z.max())
        return e / e.sum(axis=1, keepdims=True)


def _cross_entropy_matrix_max(z, y):
    with np.errstate(all="ignore"):
        shifted = z - z.max()
        return -np.sum(y * (shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))) / z.shape[0]


softmax = Exercise(
    name="softmax", points=2, title="Softmax (row-wise, numerically stable)",
    visible_calls=lambda: [Call((np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]),)),
                           Call((np.array([[1000.0, 1001.0, 1002.0]]),)),
                           Call((np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-1.0, 0.5, 2.0]]),)),  # square
                           Call((rows_far_apart(np.random.default_rng(12), 4),))],
    hidden_calls=lambda rng: [
        Call((normal(rng, 6, 5, scale=2.0),)),
        Call((normal(rng, 4, 4, scale=2.0),)),            # square: exposes wrong broadcasting
        Call((normal(rng, 3, 5, scale=5.0) + 800.0,)),    # large logits: exposes overflow
        Call((normal(rng, 5, 3).astype(np.float32),)),
        Call((rows_far_apart(rng, 5),)),
    ],
    expected=oracles.softmax,
    mistakes=(
        Mistake("softmax overflows on large logits: subtract each row's maximum before np.exp.",
                wrong=_naive_softmax,
                inject="def softmax(z):\n    e = np.exp(z)\n    return e / e.sum(axis=1, keepdims=True)\n"),
        Mistake("softmax is row-wise: normalise with each row's sum (axis=1), not the sum of the whole matrix.",
                wrong=lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum(),
                inject="def softmax(z):\n    e = np.exp(z - z.max())\n    return e / e.sum()\n"),
        Mistake("softmax is row-wise (one row per sample): take the max and the sum along axis=1, not axis=0.",
                wrong=lambda z: special.softmax(z, axis=0),
                inject="def softmax(z):\n    e = np.exp(z - z.max(axis=0, keepdims=True))\n"
                       "    return e / e.sum(axis=0, keepdims=True)\n"),
        Mistake("the row sums broadcast across columns: divide by e.sum(axis=1, keepdims=True).",
                wrong=_softmax_sum_without_keepdims,
                inject="def softmax(z):\n    e = np.exp(z - z.max(axis=1, keepdims=True))\n"
                       "    return e / e.sum(axis=1)\n"),
        Mistake(ROW_WISE_MAX, wrong=_softmax_matrix_max,
                inject="def softmax(z):\n    e = np.exp(z - z.max())\n    return e / e.sum(axis=1, keepdims=True)\n"),
    ),
)

# --- dense_forward ----------------------------------------------------------------------

dense_forward = Exercise(
    name="dense_forward", points=1, title="Dense layer forward pass",
    visible_calls=lambda: [Call((np.array([[1.0, 2.0]]), np.array([[1.0, 0.0, -1.0], [0.5, 1.0, 2.0]]),
                                 np.array([0.1, 0.2, 0.3]))),
                           Call((np.array([[1.0, 2.0], [-1.0, 0.5]]), np.array([[1.0, -1.0], [0.5, 2.0]]),
                                 np.array([0.1, -0.2])))],  # square W: x @ W.T runs, wrongly
    hidden_calls=lambda rng: [
        Call((normal(rng, 8, 10), normal(rng, 10, 20), normal(rng, 20))),
        Call((normal(rng, 3, 4, dtype=np.float32), normal(rng, 4, 4, dtype=np.float32),
              normal(rng, 4, dtype=np.float32))),
    ],
    expected=oracles.dense_forward,
    atol=3e-6,  # a float32 sum of products near zero is off by up to ~1e-6
    mistakes=(
        Mistake("the bias b is missing: a dense layer computes x @ W + b.",
                wrong=lambda x, W, b: x @ W,
                inject="def dense_forward(x, W, b):\n    return x @ W\n"),
        Mistake("with row vectors the product is x @ W (x is (batch, in), W is (in, out)); you multiplied by W transposed.",
                wrong=lambda x, W, b: x @ W.T + b,
                inject="def dense_forward(x, W, b):\n    return x @ W.T + b\n"),
    ),
)

# --- mse_loss ---------------------------------------------------------------------------

mse_loss = Exercise(
    name="mse_loss", points=1, title="Mean squared error",
    visible_calls=lambda: [Call((np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 0.0], [0.0, 4.0]])))],
    hidden_calls=lambda rng: [Call((normal(rng, 8, 5), normal(rng, 8, 5))),
                              Call((normal(rng, 3, 1), normal(rng, 3, 1)))],
    expected=oracles.mse_loss,
    mistakes=(
        Mistake("MSE is the mean over all elements: use np.mean, not np.sum.",
                wrong=lambda p, t: np.sum((p - t) ** 2),
                inject="def mse_loss(y_pred, y_true):\n    return np.sum((y_pred - y_true) ** 2)\n"),
        Mistake("divide by the number of elements (batch x outputs), not only by the batch size.",
                wrong=lambda p, t: np.sum((p - t) ** 2) / p.shape[0],
                inject="def mse_loss(y_pred, y_true):\n    return np.sum((y_pred - y_true) ** 2) / y_pred.shape[0]\n"),
        Mistake("MSE squares the differences; you computed the mean absolute error.",
                wrong=lambda p, t: np.mean(np.abs(p - t)),
                inject="def mse_loss(y_pred, y_true):\n    return np.mean(np.abs(y_pred - y_true))\n"),
    ),
)

# --- cross_entropy ----------------------------------------------------------------------

def _naive_cross_entropy(logits, y):
    with np.errstate(all="ignore"):
        e = np.exp(logits)
        p = e / e.sum(axis=1, keepdims=True)
        return -np.sum(y * np.log(p)) / logits.shape[0]


cross_entropy = Exercise(
    name="cross_entropy", points=2, title="Cross-entropy from logits (stable)",
    visible_calls=lambda: [Call((np.array([[2.0, 1.0, 0.1], [0.5, 2.5, -1.0]]), np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))),
                           Call((np.array([[1000.0, 0.0]]), np.array([[0.0, 1.0]]))),
                           Call((rows_far_apart(np.random.default_rng(13), 4), np.eye(4)[[0, 2, 3]]))],
    hidden_calls=lambda rng: [
        Call((normal(rng, 8, 5, scale=2.0), one_hot(rng, 8, 5))),
        Call((normal(rng, 6, 3, scale=4.0) + 600.0, one_hot(rng, 6, 3))),
        Call((np.array([[900.0, -900.0, 0.0], [0.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))),
        Call((rows_far_apart(rng, 4), one_hot(rng, 3, 4))),
    ],
    expected=oracles.cross_entropy,
    mistakes=(
        # Before the naive softmax: on the call with rows at 900 and 0 both return NaN, and
        # only this one gives the right answer on every other call.
        Mistake(ROW_WISE_MAX, wrong=_cross_entropy_matrix_max,
                inject="def cross_entropy(logits, y_onehot):\n    z = logits - logits.max()\n"
                       "    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))\n"
                       "    return -np.sum(y_onehot * log_p) / logits.shape[0]\n"),
        Mistake("cross_entropy returned inf or nan on large logits: use the stable log-softmax "
                "z - max(z) - log(sum(exp(z - max(z)))) instead of log(softmax(z)).",
                wrong=_naive_cross_entropy,
                inject="def cross_entropy(logits, y_onehot):\n    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)\n"
                       "    return -np.sum(y_onehot * np.log(p)) / logits.shape[0]\n"),
        Mistake("cross-entropy is the mean over the batch: divide the sum by the number of rows.",
                wrong=lambda z, y: -np.sum(y * special.log_softmax(z, axis=1)),
                inject="def cross_entropy(logits, y_onehot):\n    z = logits - logits.max(axis=1, keepdims=True)\n"
                       "    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))\n    return -np.sum(y_onehot * log_p)\n"),
        Mistake("cross-entropy is -sum(y * log p): the minus sign is missing.",
                wrong=lambda z, y: np.sum(y * special.log_softmax(z, axis=1)) / z.shape[0],
                inject="def cross_entropy(logits, y_onehot):\n    z = logits - logits.max(axis=1, keepdims=True)\n"
                       "    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))\n"
                       "    return np.sum(y_onehot * log_p) / logits.shape[0]\n"),
    ),
)

# --- mlp_forward ------------------------------------------------------------------------

mlp_forward = Exercise(
    name="mlp_forward", points=2, title="The 10-20-5 network's forward pass",
    visible_calls=lambda: [Call((normal(np.random.default_rng(0), 4, 10), params_10_20_5(np.random.default_rng(1))))],
    hidden_calls=lambda rng: [Call((normal(rng, 16, 10), params_10_20_5(rng))),
                              Call((normal(rng, 3, 10, dtype=np.float32), params_10_20_5(rng, np.float32)))],
    expected=oracles.mlp_forward,
    atol=3e-6,  # float32 inputs: see dense_forward
    mistakes=(
        Mistake("the hidden layer needs its activation: mlp_forward is dense -> relu -> dense.",
                wrong=lambda x, p: (x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"],
                inject="def mlp_forward(x, params):\n    h = dense_forward(x, params['W1'], params['b1'])\n"
                       "    return dense_forward(h, params['W2'], params['b2'])\n"),
        Mistake("the output layer is linear (the loss is MSE on raw outputs): do not apply relu to it.",
                wrong=lambda x, p: oracles.relu(oracles.mlp_forward(x, p)),
                inject="def mlp_forward(x, params):\n    h = relu(dense_forward(x, params['W1'], params['b1']))\n"
                       "    return relu(dense_forward(h, params['W2'], params['b2']))\n"),
    ),
)

NOTEBOOK = NotebookSpec(
    name="01_forward",
    numpy_only=True,
    exercises=(relu, sigmoid, softmax, dense_forward, mse_loss, cross_entropy, mlp_forward),
    cell_timeout=30.0,
    notebook_timeout=120.0,
)
