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


# --- attention and the transformer block (notebook 06) ------------------------------------
#
# Independent of the notebook's formulations: products as einsum, the mask as an index
# comparison, softmax from SciPy, heads as slices of the channel axis (no reshape), the
# multi-head layer as a loop over heads. tests/test_attention.py confirms each against
# PyTorch (F.scaled_dot_product_attention, F.layer_norm, F.gelu, nn.TransformerEncoderLayer)
# and its autograd, and against central finite differences.

def causal_mask(T):
    """(T, T) booleans, True where query i may attend to key j, that is j <= i."""
    positions = np.arange(int(T))
    return positions[:, None] >= positions[None, :]


def scaled_dot_product_attention(q, k, v, mask=None):
    """(out, weights) for softmax(q k^T / sqrt(d), masked) v, over any leading batch axes."""
    q, k, v = _f64(q, k, v)
    scores = np.einsum("...qd,...kd->...qk", q, k) / np.sqrt(q.shape[-1])
    if mask is not None:
        scores = np.where(np.asarray(mask, dtype=bool), scores, -np.inf)
    weights = special.softmax(scores, axis=-1)
    return np.einsum("...qk,...kv->...qv", weights, v), weights


def attention_backward(dout, q, k, v, weights):
    """(dq, dk, dv) of out = weights v with weights = softmax(q k^T / sqrt(d)) (mask inside weights)."""
    dout, q, k, v, weights = _f64(dout, q, k, v, weights)
    dv = np.einsum("...qk,...qv->...kv", weights, dout)
    dweights = np.einsum("...qv,...kv->...qk", dout, v)
    # softmax's Jacobian-vector product, row by row: w * (g - <g, w>)
    dscores = weights * (dweights - np.einsum("...qk,...qk->...q", dweights, weights)[..., None])
    scale = 1.0 / np.sqrt(q.shape[-1])
    dq = scale * np.einsum("...qk,...kd->...qd", dscores, k)
    dk = scale * np.einsum("...qk,...qd->...kd", dscores, q)
    return dq, dk, dv


def layer_norm(x, gamma, beta, eps=1e-5):
    """Normalise over the last axis with the biased variance, then scale and shift."""
    x, gamma, beta = _f64(x, gamma, beta)
    centred = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(np.square(centred), axis=-1, keepdims=True)
    return centred / np.sqrt(variance + eps) * gamma + beta


def layer_norm_backward(dout, x, gamma, eps=1e-5):
    """(dx, dgamma, dbeta) of layer_norm; dgamma and dbeta summed over every axis but the last."""
    dout, x, gamma = _f64(dout, x, gamma)
    centred = x - x.mean(axis=-1, keepdims=True)
    inv_std = 1.0 / np.sqrt(np.mean(np.square(centred), axis=-1, keepdims=True) + eps)
    x_hat = centred * inv_std
    g = dout * gamma
    # the gradient of a normalised vector: remove its components along 1 and along x_hat
    dx = inv_std * (g - g.mean(axis=-1, keepdims=True) - x_hat * np.mean(g * x_hat, axis=-1, keepdims=True))
    batch_axes = tuple(range(x.ndim - 1))
    return dx, np.sum(dout * x_hat, axis=batch_axes), np.sum(dout, axis=batch_axes)


def gelu(x):
    """GELU, the tanh approximation of GPT-2 (PyTorch's F.gelu(x, approximate="tanh"))."""
    (x,) = _f64(x)
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def split_heads(x, n_heads):
    """(B, T, C) -> (B, H, T, C/H): head h holds channels h*C/H to (h+1)*C/H - 1."""
    (x,) = _f64(x)
    size = x.shape[-1] // int(n_heads)
    return np.stack([x[..., h * size:(h + 1) * size] for h in range(int(n_heads))], axis=1)


def merge_heads(x):
    """(B, H, T, D) -> (B, T, H*D), the inverse of split_heads."""
    (x,) = _f64(x)
    return np.concatenate([x[:, h] for h in range(x.shape[1])], axis=-1)


def multi_head_attention(x, params: Params, n_heads, causal=True):
    """The attention sub-layer alone (no residual), one head at a time on its slice of channels."""
    (x,) = _f64(x)
    p = {name: np.asarray(value, np.float64) for name, value in params.items()}
    q = np.einsum("btc,cd->btd", x, p["Wq"]) + p["bq"]
    k = np.einsum("btc,cd->btd", x, p["Wk"]) + p["bk"]
    v = np.einsum("btc,cd->btd", x, p["Wv"]) + p["bv"]
    T, C = x.shape[-2], x.shape[-1]
    size = C // int(n_heads)
    mask = causal_mask(T) if causal else None
    heads = []
    for h in range(int(n_heads)):
        part = slice(h * size, (h + 1) * size)
        heads.append(scaled_dot_product_attention(q[..., part], k[..., part], v[..., part], mask)[0])
    return np.einsum("btc,cd->btd", np.concatenate(heads, axis=-1), p["Wo"]) + p["bo"]


def positional_encoding(T, C):
    """Vaswani et al.'s sinusoids: PE[t, 2i] = sin(t / 10000^(2i/C)), PE[t, 2i+1] = cos(same)."""
    T, C = int(T), int(C)
    encoding = np.empty((T, C))
    for t in range(T):
        for column in range(C):
            pair = column - column % 2  # 2i, shared by the sine and the cosine of one frequency
            angle = t / 10000.0 ** (pair / C)
            encoding[t, column] = np.sin(angle) if column % 2 == 0 else np.cos(angle)
    return encoding


def transformer_block(x, params: Params, n_heads):
    """The pre-LN (GPT-2) block: x + MHA(LN1(x)), then that plus MLP(LN2(that)), MLP C -> 4C -> C with GELU."""
    (x,) = _f64(x)
    p = {name: np.asarray(value, np.float64) for name, value in params.items()}
    attention = {name: p[name] for name in ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo")}
    h = x + multi_head_attention(layer_norm(x, p["ln1_g"], p["ln1_b"]), attention, n_heads, causal=True)
    hidden = gelu(np.einsum("btc,cf->btf", layer_norm(h, p["ln2_g"], p["ln2_b"]), p["W1"]) + p["b1"])
    return h + np.einsum("btf,fc->btc", hidden, p["W2"]) + p["b2"]
