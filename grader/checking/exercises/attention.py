"""Notebook 06: attention and the transformer block in NumPy, forward and backward.

Conventions shared with the notebook, the site page and notebook 07: ``x`` is (batch, T, C);
weights multiply on the right (``x @ W + b``); masks are boolean with True = may attend; the
block is GPT-2's pre-LN block with a C -> 4C -> C MLP, tanh-GELU and LayerNorm with the biased
variance and eps = 1e-5.

What the judge trusts: only the arrays each function returns, read back from the sandbox as
numbers and compared, in the trusted process, with ``grader.checking.oracles`` evaluated on the very
inputs the judge drew. No input is taken from the learner: ``attention_backward`` receives
attention weights that the judge computed itself, so its answer is checked against gradients
that follow from q, k and v alone. Every call of a function with array arguments carries the
"inputs_after" probe: the arguments as they are after the call come back too, and the judge
compares them with the arrays it sent (no function may change its inputs; the block hands the
same x to a layer norm and to a residual). Every floating-point function keeps float32 inputs in
float32 (``Exercise.keeps_float32``), the return format its docstring states.

Every softmax-based call mixes rows of scores at very different scales (one row near 900,
the others near 0), so a maximum taken over the whole array instead of per row shows up as
NaN rows, and a softmax without any shift overflows.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy import special

from grader.checking import oracles
from grader.checking.judge import changed_input_hint, float32_hint
from grader.checking.spec import Call, Exercise, Mistake, NotebookSpec
from .draws import normal

# float32 sums of a few dozen products are off by ~1e-6 even when right.
RTOL, ATOL = 1e-5, 3e-6
LARGE_SCORE = 900.0
ATTENTION_NAMES = ("Wq", "bq", "Wk", "bk", "Wv", "bv", "Wo", "bo")


def _rng(seed):
    return np.random.default_rng(seed)


PROBED_TRUST = ("the returned arrays, compared with the oracle's, and the arguments as they were after the call, "
                "compared here with the arrays that were sent.")


def probed(calls: list[Call]) -> list[Call]:
    """The calls with the "inputs_after" probe: every function of this notebook must leave its
    arguments unchanged (the block hands the same x to a layer norm and to a residual), so the
    judge also compares the arguments after each call with the arrays it sent."""
    return [dataclasses.replace(call, probe="inputs_after") for call in calls]


def _upcast(function):
    """A wrong answer with the right values in float64 whatever the inputs' dtype (named by
    ``Exercise.keeps_float32``, which compares dtypes once the values are right)."""
    def wrong(*args, **kwargs):
        result = function(*args, **kwargs)
        if isinstance(result, tuple):
            return tuple(np.asarray(r, np.float64) for r in result)
        return np.asarray(result, np.float64)
    return wrong


# --- inputs -------------------------------------------------------------------------------

def attention_inputs(rng, lead, Tq, Tk, d, dv, dtype=np.float64, large_row=False):
    """q (*lead, Tq, d), k (*lead, Tk, d), v (*lead, Tk, dv).

    With ``large_row``, the last query row of the first batch element scores near 900 against
    every key (an O(1) spread on top), while every other row stays near 0.
    """
    q, k, v = normal(rng, *lead, Tq, d), normal(rng, *lead, Tk, d), normal(rng, *lead, Tk, dv)
    if large_row:
        q[..., 0] = 0.0
        k[..., 0] = np.sqrt(LARGE_SCORE)
        q.reshape(-1, Tq, d)[0, -1, 0] = np.sqrt(LARGE_SCORE) * np.sqrt(d)
    return q.astype(dtype), k.astype(dtype), v.astype(dtype)


def padding_mask(rng, batch, Tk):
    """(batch, 1, 1, Tk): some keys hidden from every query; key 0 always visible."""
    mask = rng.random((batch, 1, 1, Tk)) < 0.7
    mask[..., 0] = True
    return mask


def attention_params(rng, C, dtype=np.float64):
    params = {}
    for name in "qkvo":
        params[f"W{name}"] = normal(rng, C, C, scale=C ** -0.5, dtype=dtype)
        params[f"b{name}"] = normal(rng, C, scale=0.1, dtype=dtype)
    return params


def block_params(rng, C, dtype=np.float64):
    params = attention_params(rng, C, dtype)
    for ln in ("ln1", "ln2"):
        params[f"{ln}_g"] = (1.0 + normal(rng, C, scale=0.2)).astype(dtype)
        params[f"{ln}_b"] = normal(rng, C, scale=0.2, dtype=dtype)
    params["W1"] = normal(rng, C, 4 * C, scale=C ** -0.5, dtype=dtype)
    params["b1"] = normal(rng, 4 * C, scale=0.1, dtype=dtype)
    params["W2"] = normal(rng, 4 * C, C, scale=(4 * C) ** -0.5, dtype=dtype)
    params["b2"] = normal(rng, C, scale=0.1, dtype=dtype)
    return params


def with_small_row(x):
    """x with one position of tiny values (variance ~4e-6, below eps) and an offset.

    Only for float64 calls: in float32 that position's normalisation loses most of its digits
    to cancellation, right or wrong.
    """
    x = x.copy()
    x.reshape(-1, x.shape[-1])[0] = 1e-3 * x.reshape(-1, x.shape[-1])[0] + 0.5
    return x


# --- causal_mask ----------------------------------------------------------------------------
# Judged: the (T, T) array against the oracle's index comparison; it must hold booleans, and
# numbers with the right values are named by their own hint.

CAUSAL_MASK_BOOLEANS = ("a mask holds booleans (True = may attend), not numbers: build it with dtype=bool, "
                        "np.tril(np.ones((T, T), dtype=bool)).")

causal_mask = Exercise(
    name="causal_mask", points=1, title="Causal mask",
    visible_calls=lambda: [Call((4,)), Call((1,))],
    hidden_calls=lambda rng: [Call((int(rng.integers(5, 9)),)), Call((1,)), Call((3,))],
    expected=oracles.causal_mask,
    mistakes=(
        Mistake("the mask shows the future: position i may attend to j <= i (np.tril), not to j >= i.",
                wrong=lambda T: np.triu(np.ones((T, T), dtype=bool)),
                inject="def causal_mask(T):\n    return np.triu(np.ones((T, T), dtype=bool))\n"),
        Mistake("every position may attend to itself: keep the diagonal (j <= i, not j < i).",
                wrong=lambda T: np.tril(np.ones((T, T), dtype=bool), k=-1),
                inject="def causal_mask(T):\n    return np.tril(np.ones((T, T), dtype=bool), k=-1)\n"),
        Mistake(CAUSAL_MASK_BOOLEANS,
                wrong=lambda T: np.tril(np.ones((T, T))),
                inject="def causal_mask(T):\n    return np.tril(np.ones((T, T)))\n"),
    ),
)

# --- scaled_dot_product_attention -----------------------------------------------------------
# Judged: out and weights, both against the oracle (SciPy's softmax over einsum scores).


def _scores(q, k, scale=True):
    scores = np.einsum("...qd,...kd->...qk", q, k)
    return scores / np.sqrt(q.shape[-1]) if scale else scores


def _sdpa_from(weights_of):
    """A wrong attention: ``weights_of(scores, mask)`` gives the weights, out follows from them."""
    def wrong(q, k, v, mask=None):
        weights = weights_of(_scores(q, k), mask)
        return np.einsum("...qk,...kv->...qv", weights, v), weights
    return wrong


def _masked(scores, mask, fill=-np.inf):
    return scores if mask is None else np.where(mask, scores, fill)


_SDPA_CELL = """def scaled_dot_product_attention(q, k, v, mask=None):
    scores = q @ np.swapaxes(k, -1, -2) / q.shape[-1] ** 0.5
{body}
    return weights @ v, weights
"""


def _sdpa_cell(body: str, scores: str | None = None) -> str:
    cell = _SDPA_CELL.format(body="\n".join("    " + line for line in body.strip().splitlines()))
    return cell if scores is None else cell.replace("q @ np.swapaxes(k, -1, -2) / q.shape[-1] ** 0.5", scores)


_STABLE_SOFTMAX = ("if mask is not None:\n    scores = np.where(mask, scores, -np.inf)\n"
                   "e = np.exp(scores - scores.max(axis=-1, keepdims=True))\n"
                   "weights = e / e.sum(axis=-1, keepdims=True)")


def _sdpa_visible():
    q, k, v = attention_inputs(_rng(60), (2, 3), 5, 5, 4, 3, large_row=True)
    q2, k2, v2 = attention_inputs(_rng(61), (2,), 3, 6, 5, 2)
    q3, k3, v3 = attention_inputs(_rng(59), (2,), 4, 4, 3, 2, dtype=np.float32)
    return probed([Call((q, k, v), {"mask": oracles.causal_mask(5)}),
                   Call((q2, k2, v2)),
                   Call((q3, k3, v3), {"mask": oracles.causal_mask(4)})])


def _sdpa_hidden(rng):
    q1, k1, v1 = attention_inputs(rng, (1, 1), 7, 7, 5, 5, large_row=True)
    q2, k2, v2 = attention_inputs(rng, (3, 2), 4, 6, 3, 7, large_row=True)
    q3, k3, v3 = attention_inputs(rng, (2,), 5, 6, 6, 6, dtype=np.float32)
    q4, k4, v4 = attention_inputs(rng, (2, 3), 6, 6, 10, 4, dtype=np.float32)
    return probed([Call((q1, k1, v1), {"mask": oracles.causal_mask(7)}),
                   Call((q2, k2, v2), {"mask": padding_mask(rng, 3, 6)}),
                   Call((q3, k3, v3)),
                   Call((q4, k4, v4), {"mask": oracles.causal_mask(6)})])


def _softmax_global_max(scores, mask):
    e = np.exp(_masked(scores, mask) - np.max(_masked(scores, mask)))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_unshifted(scores, mask):
    e = np.exp(_masked(scores, mask))
    return e / e.sum(axis=-1, keepdims=True)


scaled_dot_product_attention = Exercise(
    name="scaled_dot_product_attention", points=3, title="Scaled dot-product attention",
    visible_calls=_sdpa_visible,
    hidden_calls=_sdpa_hidden,
    expected=oracles.scaled_dot_product_attention,
    rtol=RTOL, atol=ATOL, outputs=("out", "weights"), keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("divide the scores by sqrt(d), d = q.shape[-1]: without it their variance grows with d and the softmax saturates.",
                wrong=lambda q, k, v, mask=None: oracles.scaled_dot_product_attention(q * np.sqrt(q.shape[-1]), k, v, mask),
                inject=_sdpa_cell(_STABLE_SOFTMAX, scores="q @ np.swapaxes(k, -1, -2)")),
        Mistake("the softmax runs over the keys (axis=-1), so that each query's weights sum to 1; yours runs over the queries (axis=-2).",
                wrong=_sdpa_from(lambda s, m: special.softmax(_masked(s, m), axis=-2)),
                inject=_sdpa_cell("if mask is not None:\n    scores = np.where(mask, scores, -np.inf)\n"
                                  "e = np.exp(scores - scores.max(axis=-2, keepdims=True))\n"
                                  "weights = e / e.sum(axis=-2, keepdims=True)")),
        Mistake("mask the scores before the softmax (masked scores become -inf): zeroing weights after it leaves rows that no longer sum to 1.",
                wrong=_sdpa_from(lambda s, m: special.softmax(s, axis=-1) * (1.0 if m is None else m)),
                inject=_sdpa_cell("e = np.exp(scores - scores.max(axis=-1, keepdims=True))\n"
                                  "weights = e / e.sum(axis=-1, keepdims=True)\n"
                                  "if mask is not None:\n    weights = weights * mask")),
        Mistake("set masked scores to -inf, not 0: exp(0) = 1 still gives the hidden keys weight.",
                wrong=_sdpa_from(lambda s, m: special.softmax(_masked(s, m, fill=0.0), axis=-1)),
                inject=_sdpa_cell("if mask is not None:\n    scores = np.where(mask, scores, 0.0)\n"
                                  "e = np.exp(scores - scores.max(axis=-1, keepdims=True))\n"
                                  "weights = e / e.sum(axis=-1, keepdims=True)")),
        Mistake("subtract each row's own maximum (axis=-1, keepdims=True), not the maximum of the whole array: "
                "rows far below it underflow to 0 / 0.",
                wrong=_sdpa_from(_softmax_global_max),
                inject=_sdpa_cell("if mask is not None:\n    scores = np.where(mask, scores, -np.inf)\n"
                                  "e = np.exp(scores - scores.max())\n"
                                  "weights = e / e.sum(axis=-1, keepdims=True)")),
        Mistake("np.exp overflows on large scores: subtract each row's maximum before the exponential.",
                wrong=_sdpa_from(_softmax_unshifted),
                inject=_sdpa_cell("if mask is not None:\n    scores = np.where(mask, scores, -np.inf)\n"
                                  "e = np.exp(scores)\n"
                                  "weights = e / e.sum(axis=-1, keepdims=True)")),
        Mistake(float32_hint("out"),
                wrong=_upcast(oracles.scaled_dot_product_attention),
                inject=_sdpa_cell(_STABLE_SOFTMAX, scores="q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])")),
    ),
)

# --- attention_backward ---------------------------------------------------------------------
# Judged: dq, dk and dv against the oracle. The weights handed in are the oracle's own
# softmax of q and k (masked where the call says), so the answer must follow from q, k, v.


def _backward_inputs(rng, lead, Tq, Tk, d, dv, dtype=np.float64, causal=False, large_row=False):
    q, k, v = attention_inputs(rng, lead, Tq, Tk, d, dv, dtype=dtype, large_row=large_row)
    mask = oracles.causal_mask(Tq) if causal else None
    weights = oracles.scaled_dot_product_attention(q, k, v, mask)[1].astype(dtype)
    return normal(rng, *lead, Tq, dv, dtype=dtype), q, k, v, weights


def _backward_with(dq=None, dk=None, dv=None):
    """The oracle's (dq, dk, dv) with some parts replaced by wrong formulas."""
    def wrong(dout, q, k, v, weights):
        right = oracles.attention_backward(dout, q, k, v, weights)
        parts = (dq, dk, dv)
        return tuple(part(dout, q, k, v, weights) if part else value for part, value in zip(parts, right))
    return wrong


def _without_row_sum(dout, q, k, v, weights):
    dscores = weights * np.einsum("...qv,...kv->...qk", dout, v)
    scale = 1.0 / np.sqrt(q.shape[-1])
    return scale * dscores @ k, scale * np.swapaxes(dscores, -1, -2) @ q, np.swapaxes(weights, -1, -2) @ dout


def _without_scale(dout, q, k, v, weights):
    dq, dk, dv = oracles.attention_backward(dout, q, k, v, weights)
    return dq * np.sqrt(q.shape[-1]), dk * np.sqrt(q.shape[-1]), dv


def _dscores(dout, v, weights):
    dweights = dout @ np.swapaxes(v, -1, -2)
    return weights * (dweights - np.sum(dweights * weights, axis=-1, keepdims=True))


_BACKWARD_CELL = """def attention_backward(dout, q, k, v, weights):
    scale = {scale}
    dv = {dv}
    dweights = dout @ np.swapaxes(v, -1, -2)
    dscores = {dscores}
    dq = {dq}
    dk = {dk}
    return dq, dk, dv
"""


def _backward_cell(dv="np.swapaxes(weights, -1, -2) @ dout",
                   dscores="weights * (dweights - np.sum(dweights * weights, axis=-1, keepdims=True))",
                   dq="scale * dscores @ k", dk="scale * np.swapaxes(dscores, -1, -2) @ q",
                   scale="1.0 / q.shape[-1] ** 0.5"):
    return _BACKWARD_CELL.format(dv=dv, dscores=dscores, dq=dq, dk=dk, scale=scale)


attention_backward = Exercise(
    name="attention_backward", points=3, title="Attention backward pass",
    visible_calls=lambda: probed([Call(_backward_inputs(_rng(62), (2,), 4, 4, 3, 5, causal=True, large_row=True)),
                                  Call(_backward_inputs(_rng(63), (2, 2), 3, 5, 4, 2)),
                                  Call(_backward_inputs(_rng(58), (2,), 3, 4, 2, 3, dtype=np.float32))]),
    hidden_calls=lambda rng: probed([Call(_backward_inputs(rng, (1, 1), 6, 6, 5, 5, causal=True, large_row=True)),
                                     Call(_backward_inputs(rng, (3, 2), 4, 7, 3, 6)),
                                     Call(_backward_inputs(rng, (2,), 5, 5, 6, 3, dtype=np.float32, causal=True))]),
    expected=oracles.attention_backward,
    rtol=RTOL, atol=ATOL, outputs=("dq", "dk", "dv"), keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("softmax's backward is weights * (dweights - sum(dweights * weights, axis=-1)): the subtracted row sum is missing.",
                wrong=_without_row_sum,
                inject=_backward_cell(dscores="weights * dweights")),
        Mistake("the forward pass divided the scores by sqrt(d): dq and dk carry the same factor 1 / sqrt(d).",
                wrong=_without_scale,
                inject=_backward_cell(dq="dscores @ k", dk="np.swapaxes(dscores, -1, -2) @ q")),
        Mistake("dv = weights^T @ dout, shape (..., Tk, dv); weights @ dout only runs when Tq == Tk, and is wrong then.",
                wrong=_backward_with(dv=lambda dout, q, k, v, w: w @ dout), key="2",
                inject=_backward_cell(dv="weights @ dout")),
        Mistake("dk = dscores^T @ q (each key collects from every query); dscores @ q only runs when Tq == Tk.",
                wrong=_backward_with(dk=lambda dout, q, k, v, w: _dscores(dout, v, w) @ q / np.sqrt(q.shape[-1])), key="1",
                inject=_backward_cell(dk="scale * dscores @ q")),
        Mistake(float32_hint("dq"),
                wrong=_upcast(oracles.attention_backward),
                inject=_backward_cell(scale="1.0 / np.sqrt(q.shape[-1])")),
    ),
)

# --- layer_norm -----------------------------------------------------------------------------
# Judged: the normalised array against the oracle. Every call has one position of tiny values
# (variance ~4e-6, below eps), where eps inside or outside the square root differ by far.

_LAYER_NORM_CELL = """def layer_norm(x, gamma, beta, eps=1e-5):
    mean = {mean}
    var = {var}
    return {result}
"""


def _layer_norm_cell(mean="x.mean(axis=-1, keepdims=True)", var="x.var(axis=-1, keepdims=True)",
                     result="(x - mean) / np.sqrt(var + eps) * gamma + beta"):
    return _LAYER_NORM_CELL.format(mean=mean, var=var, result=result)


def _layer_norm_call(rng, B, T, C, dtype=np.float64, **kwargs):
    x = normal(rng, B, T, C, scale=2.0) + 1.0
    x = (with_small_row(x) if dtype == np.float64 else x).astype(dtype)
    gamma = (1.0 + normal(rng, C, scale=0.3)).astype(dtype)
    return Call((x, gamma, normal(rng, C, scale=0.5, dtype=dtype)), kwargs)


def _ln_over_batch(x, gamma, beta, eps=1e-5):
    mean, var = x.mean(axis=0, keepdims=True), x.var(axis=0, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _ln_in_place(x, gamma, beta, eps=1e-5):
    """Right values, but the caller's x changes (``x -= mean``): named by the "inputs_after" check."""
    x -= x.mean(axis=-1, keepdims=True)
    return x / np.sqrt(x.var(axis=-1, keepdims=True) + eps) * gamma + beta


layer_norm = Exercise(
    name="layer_norm", points=2, title="Layer normalisation",
    visible_calls=lambda: probed([_layer_norm_call(_rng(64), 3, 4, 5),
                                  _layer_norm_call(_rng(57), 2, 3, 4, dtype=np.float32)]),
    hidden_calls=lambda rng: probed([_layer_norm_call(rng, 1, 6, 7), _layer_norm_call(rng, 2, 3, 10, dtype=np.float32),
                                     _layer_norm_call(rng, 4, 5, 3, eps=1e-3)]),
    expected=oracles.layer_norm,
    rtol=RTOL, atol=ATOL, keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("layer norm normalises each position over its own C features (axis=-1), not over the batch (axis=0).",
                wrong=_ln_over_batch,
                inject=_layer_norm_cell(mean="x.mean(axis=0, keepdims=True)", var="x.var(axis=0, keepdims=True)")),
        Mistake("use the biased variance (divide by C, np.var's default ddof=0), as PyTorch's LayerNorm does; ddof=1 divides by C - 1.",
                wrong=lambda x, g, b, eps=1e-5: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, ddof=1, keepdims=True) + eps) * g + b,
                inject=_layer_norm_cell(var="x.var(axis=-1, ddof=1, keepdims=True)")),
        Mistake("eps goes inside the square root, sqrt(var + eps): outside it, sqrt(var) + eps, it no longer protects positions of tiny variance.",
                wrong=lambda x, g, b, eps=1e-5: (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + eps) * g + b,
                inject=_layer_norm_cell(result="(x - mean) / (np.sqrt(var) + eps) * gamma + beta")),
        Mistake("after normalising, scale by gamma and shift by beta: x_hat * gamma + beta.",
                wrong=lambda x, g, b, eps=1e-5: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps),
                inject=_layer_norm_cell(result="(x - mean) / np.sqrt(var + eps)")),
        Mistake(changed_input_hint("layer_norm", "x"), wrong=_ln_in_place,
                inject="def layer_norm(x, gamma, beta, eps=1e-5):\n    x -= x.mean(axis=-1, keepdims=True)\n"
                       "    return x / np.sqrt(x.var(axis=-1, keepdims=True) + eps) * gamma + beta\n"),
    ),
)

# --- layer_norm_backward --------------------------------------------------------------------
# Judged: dx, dgamma and dbeta against the oracle's closed form (itself checked against torch).

_LN_BACKWARD_CELL = """def layer_norm_backward(dout, x, gamma, eps=1e-5):
    inv_std = 1.0 / np.sqrt(x.var(axis=-1, keepdims=True) + eps)
    x_hat = (x - x.mean(axis=-1, keepdims=True)) * inv_std
    g = {g}
    dx = {dx}
    axes = tuple(range(x.ndim - 1))
    dgamma = {dgamma}
    dbeta = dout.sum(axis=axes)
    return dx, dgamma, dbeta
"""


def _ln_backward_cell(g="dout * gamma",
                      dx="inv_std * (g - g.mean(axis=-1, keepdims=True) - x_hat * (g * x_hat).mean(axis=-1, keepdims=True))",
                      dgamma="(dout * x_hat).sum(axis=axes)"):
    return _LN_BACKWARD_CELL.format(g=g, dx=dx, dgamma=dgamma)


def _x_hat(x, eps):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps)


def _ln_backward_with(dx=None, dgamma=None):
    def wrong(dout, x, gamma, eps=1e-5):
        right = oracles.layer_norm_backward(dout, x, gamma, eps)
        return (dx(dout, x, gamma, eps) if dx else right[0], dgamma(dout, x, gamma, eps) if dgamma else right[1], right[2])
    return wrong


def _ln_backward_call(rng, B, T, C, dtype=np.float64, **kwargs):
    x = normal(rng, B, T, C, scale=2.0) + 1.0
    x = (with_small_row(x) if dtype == np.float64 else x).astype(dtype)
    return Call((normal(rng, B, T, C, dtype=dtype), x, (1.0 + normal(rng, C, scale=0.3)).astype(dtype)), kwargs)


layer_norm_backward = Exercise(
    name="layer_norm_backward", points=3, title="Layer normalisation backward pass",
    visible_calls=lambda: probed([_ln_backward_call(_rng(65), 2, 3, 4),
                                  _ln_backward_call(_rng(56), 2, 2, 3, dtype=np.float32)]),
    hidden_calls=lambda rng: probed([_ln_backward_call(rng, 1, 5, 6), _ln_backward_call(rng, 3, 2, 9, dtype=np.float32),
                                     _ln_backward_call(rng, 2, 4, 3, eps=1e-3)]),
    expected=oracles.layer_norm_backward,
    rtol=RTOL, atol=ATOL, outputs=("dx", "dgamma", "dbeta"), keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("dgamma must have gamma's shape (C,): sum dout * x_hat over the batch and time axes.",
                wrong=_ln_backward_with(dgamma=lambda dout, x, g, eps: dout * _x_hat(x, eps)), key="1",
                inject=_ln_backward_cell(dgamma="dout * x_hat")),
        Mistake("gamma is shared by every position: sum dgamma over the time axis too, not only over the batch (axis=0).",
                wrong=_ln_backward_with(dgamma=lambda dout, x, g, eps: (dout * _x_hat(x, eps)).sum(axis=0)), key="1",
                inject=_ln_backward_cell(dgamma="(dout * x_hat).sum(axis=0)")),
        Mistake("the mean and the variance depend on x too: dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)), "
                "not only g * inv_std.",
                wrong=_ln_backward_with(dx=lambda dout, x, g, eps: dout * g / np.sqrt(x.var(-1, keepdims=True) + eps)), key="0",
                inject=_ln_backward_cell(dx="g * inv_std")),
        Mistake("the forward pass multiplied x_hat by gamma: dx starts from g = dout * gamma, not from dout.",
                wrong=_ln_backward_with(dx=lambda dout, x, g, eps: oracles.layer_norm_backward(dout, x, np.ones_like(g), eps)[0]),
                key="0",
                inject=_ln_backward_cell(g="dout")),
    ),
)

# --- gelu ---------------------------------------------------------------------------------
# Judged: the values against the tanh approximation (GPT-2's form); the exact erf form is
# close but not equal (up to 5e-4 apart), and is named by its own hint.

gelu = Exercise(
    name="gelu", points=1, title="GELU (tanh approximation)",
    visible_calls=lambda: probed([Call((np.linspace(-4.0, 4.0, 17),)), Call((normal(_rng(66), 2, 3, 4, scale=2.0),)),
                                  Call((np.linspace(-3.0, 3.0, 7, dtype=np.float32),))]),
    hidden_calls=lambda rng: probed([Call((normal(rng, 3, 5, 6, scale=3.0),)),
                                     Call((normal(rng, 2, 7, scale=2.0, dtype=np.float32),))]),
    expected=oracles.gelu,
    rtol=RTOL, atol=1e-6, keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("this notebook's GELU is the tanh approximation used by GPT-2, "
                "0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))); you wrote the exact erf form.",
                wrong=lambda x: x * special.ndtr(x),
                inject="from scipy.special import erf\n\ndef gelu(x):\n    return 0.5 * x * (1 + erf(x / np.sqrt(2)))\n"),
        Mistake("GELU here is the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), not x * sigmoid(1.702 x).",
                wrong=lambda x: x / (1.0 + np.exp(-1.702 * x)),
                inject="def gelu(x):\n    return x / (1 + np.exp(-1.702 * x))\n"),
        Mistake(float32_hint("the result"), wrong=_upcast(oracles.gelu),
                inject="def gelu(x):\n"
                       "    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))\n"),
    ),
)

# --- split_heads and merge_heads -------------------------------------------------------------
# Judged: the rearranged array against the oracle's slices of the channel axis.

split_heads = Exercise(
    name="split_heads", points=1, title="Split the channels into heads",
    visible_calls=lambda: probed([Call((np.arange(2 * 3 * 6, dtype=np.float64).reshape(2, 3, 6), 2)),
                                  Call((np.arange(4 * 6, dtype=np.float32).reshape(1, 4, 6), 3))]),
    hidden_calls=lambda rng: probed([Call((normal(rng, 1, 5, 12), 3)), Call((normal(rng, 3, 4, 10), 1)),
                                     Call((normal(rng, 2, 7, 6, dtype=np.float32), 6))]),
    expected=oracles.split_heads, keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("reshape to (B, T, H, C/H) first, then transpose to (B, H, T, C/H): reshaping straight to (B, H, T, C/H) mixes positions.",
                wrong=lambda x, H: x.reshape(x.shape[0], H, x.shape[1], x.shape[2] // H),
                inject="def split_heads(x, n_heads):\n    B, T, C = x.shape\n    return x.reshape(B, n_heads, T, C // n_heads)\n"),
        Mistake("head h takes the block of C/H consecutive channels h*C/H ... (h+1)*C/H - 1; reshape to (B, T, H, C/H), not (B, T, C/H, H).",
                wrong=lambda x, H: x.reshape(x.shape[0], x.shape[1], x.shape[2] // H, H).transpose(0, 3, 1, 2),
                inject="def split_heads(x, n_heads):\n    B, T, C = x.shape\n"
                       "    return x.reshape(B, T, C // n_heads, n_heads).transpose(0, 3, 1, 2)\n"),
    ),
)

merge_heads = Exercise(
    name="merge_heads", points=1, title="Merge the heads back",
    visible_calls=lambda: probed([Call((np.arange(2 * 2 * 3 * 4, dtype=np.float64).reshape(2, 2, 3, 4),)),
                                  Call((np.arange(3 * 2 * 2, dtype=np.float32).reshape(1, 3, 2, 2),))]),
    hidden_calls=lambda rng: probed([Call((normal(rng, 1, 3, 5, 4),)), Call((normal(rng, 3, 1, 4, 10),)),
                                     Call((normal(rng, 2, 6, 7, 1, dtype=np.float32),))]),
    expected=oracles.merge_heads, keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("transpose (B, H, T, D) to (B, T, H, D) before reshaping to (B, T, H*D): a plain reshape mixes positions.",
                wrong=lambda x: x.reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]),
                inject="def merge_heads(x):\n    B, H, T, D = x.shape\n    return x.reshape(B, T, H * D)\n"),
        Mistake("put each head's D channels next to each other: transpose to (B, T, H, D), not (B, T, D, H), before the reshape.",
                wrong=lambda x: x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1),
                inject="def merge_heads(x):\n    B, H, T, D = x.shape\n    return x.transpose(0, 2, 3, 1).reshape(B, T, H * D)\n"),
    ),
)

# --- multi_head_attention -------------------------------------------------------------------
# Judged: the (B, T, C) output against the oracle, which loops over heads on channel slices.

_MHA_CELL = """def multi_head_attention(x, params, n_heads, causal=True):
    q = split_heads(x @ params["Wq"] + params["bq"], n_heads)
    k = split_heads(x @ params["Wk"] + params["bk"], n_heads)
    v = split_heads(x @ params["Wv"] + params["bv"], n_heads)
{attend}
    return merge_heads(out) @ params["Wo"] + params["bo"]
"""


def _mha_cell(attend: str) -> str:
    return _MHA_CELL.format(attend="\n".join("    " + line for line in attend.strip().splitlines()))


def _mha_scaled_by_C(x, params, n_heads, causal=True):
    """Heads of size C/H whose scores are divided by sqrt(C) instead of sqrt(C/H)."""
    return oracles.multi_head_attention(x, {**params, "Wq": params["Wq"] / np.sqrt(n_heads),
                                            "bq": params["bq"] / np.sqrt(n_heads)}, n_heads, causal)


def _head_scores(q, k, n_heads):
    """(B, H, T, T) scores of every head, from (B, T, C) queries and keys."""
    return oracles.split_heads(q, n_heads) @ np.swapaxes(oracles.split_heads(k, n_heads), -1, -2) / np.sqrt(
        q.shape[-1] // n_heads)


def _mha_call(rng, B, T, C, H, dtype=np.float64, large_row=False, **kwargs):
    x, params = normal(rng, B, T, C), attention_params(rng, C, dtype)
    if large_row:
        # The last position of the first sequence becomes s * u, with u a direction whose query
        # and key agree in every head (a head where they disagree has its keys negated), and s
        # such that that position's score with itself is at least 900; other rows stay near 0.
        for _ in range(1000):
            u = normal(rng, 1, 1, C)
            gains = _head_scores(u @ params["Wq"], u @ params["Wk"], H)[0, :, 0, 0]
            if np.abs(gains).min() > 0.1:
                break
        size = C // H
        for h in np.flatnonzero(gains < 0):
            params["Wk"][:, h * size:(h + 1) * size] *= -1
            params["bk"][h * size:(h + 1) * size] *= -1
        x[0, -1] = np.sqrt(LARGE_SCORE / np.abs(gains).min()) * u[0, 0]
    return Call((x.astype(dtype), params, H), kwargs)


multi_head_attention = Exercise(
    name="multi_head_attention", points=3, title="Multi-head (causal) self-attention",
    visible_calls=lambda: probed([_mha_call(_rng(67), 2, 5, 6, 2), _mha_call(_rng(68), 2, 3, 6, 3, causal=False),
                                  _mha_call(_rng(55), 1, 3, 4, 2, dtype=np.float32)]),
    hidden_calls=lambda rng: probed([_mha_call(rng, 1, 4, 10, 1), _mha_call(rng, 3, 7, 6, 3, large_row=True),
                                     _mha_call(rng, 2, 6, 12, 4, dtype=np.float32),
                                     _mha_call(rng, 2, 3, 12, 4, causal=False)]),
    expected=oracles.multi_head_attention,
    rtol=RTOL, atol=ATOL, keeps_float32=True, trusts=PROBED_TRUST,
    mistakes=(
        Mistake("with causal=True each position may only attend to itself and earlier ones: pass causal_mask(T) to the attention.",
                wrong=lambda x, p, H, causal=True: oracles.multi_head_attention(x, p, H, causal=False),
                inject=_mha_cell("out, _ = scaled_dot_product_attention(q, k, v)")),
        Mistake("each head's scores are divided by the square root of the head size d = C / n_heads, not of C.",
                wrong=_mha_scaled_by_C,
                inject=_mha_cell("mask = causal_mask(x.shape[1]) if causal else None\n"
                                 "out, _ = scaled_dot_product_attention(q / np.sqrt(n_heads), k, v, mask)")),
    ),
)

# --- positional_encoding --------------------------------------------------------------------
# Judged: the (T, C) table against the oracle's element-by-element definition.

_PE_CELL = """def positional_encoding(T, C):
    positions = np.arange(T)[:, None]
    frequencies = {frequencies}
    encoding = np.zeros((T, C))
    encoding[:, 0::2] = np.{even}(positions * frequencies)
    encoding[:, 1::2] = np.{odd}(positions * frequencies)
    return encoding
"""


def _pe_cell(frequencies="1.0 / 10000 ** (np.arange(0, C, 2) / C)", even="sin", odd="cos"):
    return _PE_CELL.format(frequencies=frequencies, even=even, odd=odd)


def _pe_swapped(T, C):
    encoding = oracles.positional_encoding(T, C)
    swapped = np.empty_like(encoding)
    swapped[:, 0::2], swapped[:, 1::2] = encoding[:, 1::2], encoding[:, 0::2]
    return swapped


def _pe_exponent_i(T, C):
    angles = np.arange(T)[:, None] / 10000.0 ** (np.arange(C // 2) / C)
    encoding = np.zeros((T, C))
    encoding[:, 0::2], encoding[:, 1::2] = np.sin(angles), np.cos(angles)
    return encoding


def _pe_halves(T, C):
    encoding = oracles.positional_encoding(T, C)
    return np.concatenate([encoding[:, 0::2], encoding[:, 1::2]], axis=1)


positional_encoding = Exercise(
    name="positional_encoding", points=2, title="Sinusoidal positional encoding",
    visible_calls=lambda: [Call((6, 10)), Call((9, 4))],
    hidden_calls=lambda rng: [Call((int(rng.integers(10, 16)), 14)), Call((1, 6)), Call((5, 12))],
    expected=oracles.positional_encoding,
    mistakes=(
        Mistake("even columns hold the sine and odd columns the cosine: PE[t, 2i] = sin(...), PE[t, 2i+1] = cos(...); yours are swapped.",
                wrong=_pe_swapped, inject=_pe_cell(even="cos", odd="sin")),
        Mistake("the frequency of the pair (2i, 2i+1) is 1 / 10000^(2i / C): the exponent is 2i / C, not i / C.",
                wrong=_pe_exponent_i, inject=_pe_cell(frequencies="1.0 / 10000 ** (np.arange(C // 2) / C)")),
        Mistake("sines and cosines interleave (columns 0, 2, 4 ... sine; 1, 3, 5 ... cosine); yours puts all sines first, then all cosines.",
                wrong=_pe_halves,
                inject="def positional_encoding(T, C):\n    angles = np.arange(T)[:, None] / 10000 ** (np.arange(0, C, 2) / C)\n"
                       "    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)\n"),
    ),
)

# --- transformer_block ----------------------------------------------------------------------
# Judged: the (B, T, C) output against the oracle (itself checked against PyTorch's
# nn.TransformerEncoderLayer with norm_first=True).


def _attention_part(params):
    return {name: params[name] for name in ATTENTION_NAMES}


def _mlp(h, p):
    return oracles.gelu(h @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def _block_without_residuals(x, p, H):
    h = oracles.multi_head_attention(oracles.layer_norm(x, p["ln1_g"], p["ln1_b"]), _attention_part(p), H)
    return _mlp(oracles.layer_norm(h, p["ln2_g"], p["ln2_b"]), p)


def _block_post_ln(x, p, H):
    h = oracles.layer_norm(x + oracles.multi_head_attention(x, _attention_part(p), H), p["ln1_g"], p["ln1_b"])
    return oracles.layer_norm(h + _mlp(h, p), p["ln2_g"], p["ln2_b"])


def _block_mlp_on_input(x, p, H):
    h = x + oracles.multi_head_attention(oracles.layer_norm(x, p["ln1_g"], p["ln1_b"]), _attention_part(p), H)
    return h + _mlp(oracles.layer_norm(x, p["ln2_g"], p["ln2_b"]), p)


_BLOCK_CELL = """def transformer_block(x, params, n_heads):
    ln1, ln2 = (params["ln1_g"], params["ln1_b"]), (params["ln2_g"], params["ln2_b"])
{body}
"""


def _block_cell(body: str) -> str:
    return _BLOCK_CELL.format(body="\n".join("    " + line for line in body.strip().splitlines()))


def _mlp_source(h):
    return f'gelu({h} @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]'


def _block_call(rng, B, T, C, H, dtype=np.float64, large_rows=False):
    x, params = normal(rng, B, T, C), block_params(rng, C, dtype)
    if large_rows:
        # Position 0 of the first sequence is constant, so LN1 maps it to ln1_b = 0 and its only
        # score (it sees itself alone) is bq . bk / sqrt(d), near 0. Larger Wq and Wk push the
        # scores of the other rows past 900.
        x[0, 0], params["ln1_b"] = 0.5, np.zeros(C, dtype)
        a = oracles.layer_norm(x, params["ln1_g"], params["ln1_b"])
        for _ in range(20):
            scores = _head_scores(a @ params["Wq"] + params["bq"], a @ params["Wk"] + params["bk"], H)
            if np.where(oracles.causal_mask(T), scores, -np.inf).max() > LARGE_SCORE:
                break
            params["Wq"], params["Wk"] = 2 * params["Wq"], 2 * params["Wk"]
    return Call((x.astype(dtype), params, H))


transformer_block = Exercise(
    name="transformer_block", points=3, title="The pre-LN transformer block",
    visible_calls=lambda: probed([_block_call(_rng(69), 2, 4, 6, 2), _block_call(_rng(54), 1, 3, 4, 2, dtype=np.float32)]),
    hidden_calls=lambda rng: probed([_block_call(rng, 1, 5, 10, 1), _block_call(rng, 3, 6, 6, 3, large_rows=True),
                                     _block_call(rng, 2, 3, 12, 4, dtype=np.float32)]),
    expected=oracles.transformer_block, keeps_float32=True, trusts=PROBED_TRUST,
    rtol=RTOL, atol=1e-5,  # float32 through two layer norms and a 4C-wide MLP
    mistakes=(
        Mistake("each sub-layer is added to its input (the residual connection): h = x + MHA(LN1(x)), then h + MLP(LN2(h)).",
                wrong=_block_without_residuals,
                inject=_block_cell("h = multi_head_attention(layer_norm(x, *ln1), params, n_heads)\n"
                                   f"return {_mlp_source('layer_norm(h, *ln2)')}")),
        Mistake("this is the pre-LN block of GPT-2: normalise the input of each sub-layer, x + MHA(LN1(x)), "
                "not its output after the residual, LN1(x + MHA(x)) (post-LN).",
                wrong=_block_post_ln,
                inject=_block_cell("h = layer_norm(x + multi_head_attention(x, params, n_heads), *ln1)\n"
                                   f"return layer_norm(h + {_mlp_source('h')}, *ln2)")),
        Mistake("the MLP reads LN2 of h = x + MHA(LN1(x)), the output of the attention sub-layer, not LN2 of the block's input x.",
                wrong=_block_mlp_on_input,
                inject=_block_cell("h = x + multi_head_attention(layer_norm(x, *ln1), params, n_heads)\n"
                                   f"return h + {_mlp_source('layer_norm(x, *ln2)')}")),
    ),
)


NOTEBOOK = NotebookSpec(
    name="06_attention",
    numpy_only=True,
    exercises=(causal_mask, scaled_dot_product_attention, attention_backward, layer_norm, layer_norm_backward,
               gelu, split_heads, merge_heads, multi_head_attention, positional_encoding, transformer_block),
    cell_timeout=30.0,
    notebook_timeout=120.0,
)
