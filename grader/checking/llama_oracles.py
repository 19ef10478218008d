"""Reference maths for notebook 08 (the modern decoder): RMSNorm, SwiGLU, rotary embeddings,
grouped-query attention, a Llama forward pass, its cached generation, mixture of experts.

Everything is NumPy in float64, written from the papers' formulas (no learner code, no
``torch.nn``, no ``transformers``); tests/test_modern_decoder.py confirms it against Hugging
Face's ``LlamaForCausalLM``, ``LlamaRMSNorm``, ``apply_rotary_pos_emb``, ``repeat_kv`` and a
Mixtral sparse MoE block. Sampling draws from a ``torch.Generator`` (the notebook's recipe),
so ``generate`` imports PyTorch when it runs, in the trusted process only.

Keyword switches reproduce catalogued mistakes, so that a judge can name them.
"""
from __future__ import annotations

import math

import numpy as np


def rms_norm(x, weight, eps: float = 1e-6, *, centred: bool = False, eps_outside: bool = False,
             scaled: bool = True, mean: bool = True):
    """x / sqrt(mean(x^2) + eps) * weight over the last axis (Zhang and Sennrich 2019).

    ``centred`` subtracts the mean first (layer norm), ``eps_outside`` adds eps after the
    square root, ``scaled=False`` forgets the weight, ``mean=False`` sums the squares."""
    x = np.asarray(x, np.float64)
    if centred:
        x = x - x.mean(axis=-1, keepdims=True)
    squares = (x * x).mean(axis=-1, keepdims=True) if mean else (x * x).sum(axis=-1, keepdims=True)
    y = x / (np.sqrt(squares) + eps) if eps_outside else x / np.sqrt(squares + eps)
    return y * np.asarray(weight, np.float64) if scaled else y


def silu(z):
    return z / (1.0 + np.exp(-z))


def swiglu(x, w_gate, w_up, w_down, *, act=silu, swapped: bool = False, after: bool = False):
    """(act(x W_gate^T) * (x W_up^T)) W_down^T (Shazeer 2020). ``swapped`` gates the other
    branch; ``after`` applies the activation to the product instead of the gate."""
    x = np.asarray(x, np.float64)
    gate, up = x @ np.asarray(w_gate, np.float64).T, x @ np.asarray(w_up, np.float64).T
    if swapped:
        gate, up = up, gate
    hidden = act(gate * up) if after else act(gate) * up
    return hidden @ np.asarray(w_down, np.float64).T


def inverse_frequencies(head_dim: int, base: float = 10000.0, *, exponent_step: int = 2) -> np.ndarray:
    """theta_i = base^(-2i / head_dim), i = 0 .. head_dim/2 - 1 (RoFormer's frequencies)."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    return base ** (-exponent_step * i / head_dim)


def rope_cos_sin(T: int, head_dim: int, base: float = 10000.0, *, offset: int = 0, interleaved: bool = False,
                 exponent_step: int = 2, first_position: int = 0):
    """(cos, sin), each (T, head_dim): row t holds the angles (offset + t) * theta_i, in the
    "rotate half" layout (channel i and i + head_dim/2 share theta_i). ``interleaved`` lays
    them out as pairs (2i, 2i+1) instead."""
    positions = np.arange(offset + first_position, offset + first_position + T, dtype=np.float64)
    angles = positions[:, None] * inverse_frequencies(head_dim, base, exponent_step=exponent_step)[None, :]
    table = np.repeat(angles, 2, axis=1) if interleaved else np.concatenate([angles, angles], axis=1)
    return np.cos(table), np.sin(table)


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rope(x, cos, sin, *, interleaved: bool = False, sign: float = 1.0):
    """x * cos + rotate_half(x) * sin: each pair (x_i, x_{i+D/2}) turned by its angle.
    ``interleaved`` rotates pairs (x_2i, x_2i+1) with cos and sin read at channel 2i;
    ``sign=-1`` turns the other way."""
    x, cos, sin = (np.asarray(a, np.float64) for a in (x, cos, sin))
    if interleaved:
        even, odd = x[..., 0::2], x[..., 1::2]
        c, s = cos[..., 0::2], sin[..., 0::2]
        out = np.empty_like(x)
        out[..., 0::2] = even * c - sign * odd * s
        out[..., 1::2] = odd * c + sign * even * s
        return out
    return x * cos + sign * rotate_half(x) * sin


def repeat_kv(x, n_rep: int, *, tiled: bool = False):
    """(B, n_kv, T, D) -> (B, n_kv * n_rep, T, D): head h reads key/value head h // n_rep
    (``tiled``: h % n_kv, the mistake of torch's ``repeat``)."""
    x = np.asarray(x, np.float64)
    return np.tile(x, (1, n_rep, 1, 1)) if tiled else np.repeat(x, n_rep, axis=1)


def softmax(z, axis=-1):
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


# --- the model ---------------------------------------------------------------------------

def llama_shapes(vocab_size: int, n_layer: int, n_head: int, n_kv_head: int, n_embd: int,
                 ffn_dim: int) -> dict[str, tuple[int, ...]]:
    """The state-dict names and shapes of ``transformers.LlamaForCausalLM`` (no biases, untied)."""
    hd = n_embd // n_head
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (vocab_size, n_embd)}
    for i in range(n_layer):
        p = f"model.layers.{i}."
        shapes.update({
            p + "self_attn.q_proj.weight": (n_head * hd, n_embd),
            p + "self_attn.k_proj.weight": (n_kv_head * hd, n_embd),
            p + "self_attn.v_proj.weight": (n_kv_head * hd, n_embd),
            p + "self_attn.o_proj.weight": (n_embd, n_head * hd),
            p + "mlp.gate_proj.weight": (ffn_dim, n_embd),
            p + "mlp.up_proj.weight": (ffn_dim, n_embd),
            p + "mlp.down_proj.weight": (n_embd, ffn_dim),
            p + "input_layernorm.weight": (n_embd,),
            p + "post_attention_layernorm.weight": (n_embd,),
        })
    shapes.update({"model.norm.weight": (n_embd,), "lm_head.weight": (vocab_size, n_embd)})
    return shapes


def init_llama(rng: np.random.Generator, shapes: dict, scale: float = 0.3, gain_spread: float = 0.5) -> dict:
    """Random weights the judge draws: matrices N(0, scale^2), norm gains 1 +- gain_spread."""
    params = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            params[name] = 1.0 + gain_spread * rng.standard_normal(shape)
        else:
            params[name] = scale * rng.standard_normal(shape)
    return params


def llama_forward(params: dict, idx, n_head: int, n_kv_head: int, rope_base: float = 10000.0, eps: float = 1e-6,
                  *, offset: int = 0, rope_offset: int | None = None, past: list | None = None, causal: bool = True, scale: bool = True,
                  rope_values: bool = False, final_norm: bool = True, unrotated_cache: bool = False) -> np.ndarray:
    """Logits (B, T, vocab) of ids ``idx`` (B, T) at positions offset .. offset + T - 1.

    ``past`` is a list (one per layer) of [K, V] arrays (B, n_kv, offset, D) of keys (already
    rotated) and values; when given, it is extended in place with this call's keys and values,
    as a KV cache is. ``unrotated_cache`` reproduces a cache that stores keys before their
    rotation and then turns all of them by the new position's angle. ``causal``, ``scale``,
    ``rope_values`` and ``final_norm`` switch off or add what a catalogued mistake does.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    idx = np.asarray(idx)
    B, T = idx.shape
    x = p["model.embed_tokens.weight"][idx]
    C = x.shape[-1]
    hd = C // n_head
    n_rep = n_head // n_kv_head
    layers = sorted({int(k.split(".")[2]) for k in p if k.startswith("model.layers.")})
    # the rotary angles of positions offset .. offset + T - 1 (``rope_offset`` apart, a mistake)
    cos, sin = rope_cos_sin(T, hd, rope_base, offset=offset if rope_offset is None else rope_offset)
    for i in layers:
        q = f"model.layers.{i}."
        h = rms_norm(x, p[q + "input_layernorm.weight"], eps)
        Q = (h @ p[q + "self_attn.q_proj.weight"].T).reshape(B, T, n_head, hd).transpose(0, 2, 1, 3)
        K = (h @ p[q + "self_attn.k_proj.weight"].T).reshape(B, T, n_kv_head, hd).transpose(0, 2, 1, 3)
        V = (h @ p[q + "self_attn.v_proj.weight"].T).reshape(B, T, n_kv_head, hd).transpose(0, 2, 1, 3)
        Q = apply_rope(Q, cos, sin)
        if rope_values:
            V = apply_rope(V, cos, sin)
        if past is not None and unrotated_cache:
            # the keys joined to the cache before their rotation: the whole cache then turned by
            # this call's angles (cos (1, D) broadcasts over every cached position)
            K = np.concatenate([past[i][0], K], axis=2)
            past[i][0] = K
            K = apply_rope(K, cos, sin)
        else:
            K = apply_rope(K, cos, sin)
            if past is not None:
                K = np.concatenate([past[i][0], K], axis=2)
                past[i][0] = K
        if past is not None:
            V = np.concatenate([past[i][1], V], axis=2)
            past[i][1] = V
        K, V = repeat_kv(K, n_rep), repeat_kv(V, n_rep)
        scores = Q @ K.transpose(0, 1, 3, 2) / (math.sqrt(hd) if scale else 1.0)
        if causal:
            # query t (absolute position offset + t) sees keys 0 .. offset + t
            future = np.arange(K.shape[2])[None, :] > (offset + np.arange(T))[:, None]
            scores = np.where(future, -np.inf, scores)
        y = (softmax(scores) @ V).transpose(0, 2, 1, 3).reshape(B, T, n_head * hd)
        x = x + y @ p[q + "self_attn.o_proj.weight"].T
        h = rms_norm(x, p[q + "post_attention_layernorm.weight"], eps)
        x = x + swiglu(h, p[q + "mlp.gate_proj.weight"], p[q + "mlp.up_proj.weight"], p[q + "mlp.down_proj.weight"])
    if final_norm:
        x = rms_norm(x, p["model.norm.weight"], eps)
    return x @ p["lm_head.weight"].T


def new_past(params: dict, batch: int, n_head: int, n_kv_head: int) -> list:
    C = np.shape(params["model.embed_tokens.weight"])[1]
    layers = len({k.split(".")[2] for k in params if k.startswith("model.layers.")})
    empty = np.zeros((batch, n_kv_head, 0, C // n_head))
    return [[empty, empty] for _ in range(layers)]


def generate(params: dict, n_head: int, n_kv_head: int, rope_base: float, idx, max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, seed: int | None = None, *, cached: bool = False,
             offset_positions: bool = True, unrotated_cache: bool = False,
             refeed: bool = False):
    """Ids (B, T + max_new_tokens) as the notebook's recipe samples them: the last position's
    logits divided by ``temperature``, the top k kept, softmax, one ``torch.multinomial`` draw
    from the generator per step. Without a cache each step runs the whole sequence; with
    ``cached`` the prompt once, then each new token alone. ``offset_positions=False`` (rotary
    positions restart at 0 in each call), ``unrotated_cache`` and ``refeed`` (the whole sequence
    fed through the cache at every step) reproduce a broken cache."""
    import torch

    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    out = np.asarray(idx, np.int64)
    past = new_past(params, out.shape[0], n_head, n_kv_head) if cached else None
    step_input, offset = out, 0
    for _ in range(max_new_tokens):
        with np.errstate(all="ignore"):
            if cached:
                logits = llama_forward(params, step_input, n_head, n_kv_head, rope_base, past=past,
                                       offset=offset, rope_offset=None if offset_positions else 0,
                                       unrotated_cache=unrotated_cache)
                offset += step_input.shape[1]
            else:
                logits = llama_forward(params, out, n_head, n_kv_head, rope_base)
        last = torch.tensor(logits[:, -1, :]) / temperature
        if top_k is not None:
            values, _ = torch.topk(last, min(top_k, last.shape[-1]))
            last = last.masked_fill(last < values[:, [-1]], float("-inf"))
        probs = torch.softmax(last, dim=-1)
        choice = torch.multinomial(probs, num_samples=1, generator=generator).numpy()
        out = np.concatenate([out, choice], axis=1)
        step_input = out if refeed else choice
    return out


# --- memory of a KV cache ----------------------------------------------------------------

def kv_cache_bytes(n_layer: int, n_kv_head: int, head_dim: int, seq_len: int, batch_size: int,
                   bytes_per_number: float) -> float:
    """Keys and values (2) of every layer, key/value head, position and sequence (an exact
    integer when every argument is one)."""
    return 2 * n_layer * n_kv_head * head_dim * seq_len * batch_size * bytes_per_number


# --- mixture of experts ------------------------------------------------------------------

def route(router_logits, top_k: int, *, renormalise: bool = True, dense: bool = False, token_axis: bool = False):
    """(weights (T, N) with zeros outside each token's top k, chosen (T, k)): softmax over the
    experts, the k largest kept and, as in Mixtral, renormalised to sum to 1."""
    z = np.asarray(router_logits, np.float64)
    probs = softmax(z, axis=0 if token_axis else -1)
    if dense:
        return probs, np.argsort(-probs, axis=-1)
    chosen = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]
    weights = np.zeros_like(probs)
    picked = np.take_along_axis(probs, chosen, axis=-1)
    if renormalise:
        picked = picked / picked.sum(axis=-1, keepdims=True)
    np.put_along_axis(weights, chosen, picked, axis=-1)
    return weights, chosen


def moe_forward(x, router_weight, experts, top_k: int, *, renormalise: bool = True, dense: bool = False,
                token_axis: bool = False, unweighted: bool = False):
    """Sum over each token's chosen experts of weight * SwiGLU_expert(token)."""
    x = np.asarray(x, np.float64)
    flat = x.reshape(-1, x.shape[-1])
    weights, _ = route(flat @ np.asarray(router_weight, np.float64).T, top_k, renormalise=renormalise, dense=dense,
                       token_axis=token_axis)
    if unweighted:
        weights = (weights > 0) / top_k
    out = np.zeros_like(flat)
    for e, (w_gate, w_up, w_down) in enumerate(experts):
        out += weights[:, e:e + 1] * swiglu(flat, w_gate, w_up, w_down)
    return out.reshape(x.shape)


def load_balancing_loss(router_logits, top_k: int, *, counts_only: bool = False, times_n: bool = True,
                        probabilities: bool = True) -> float:
    """N * sum_i f_i * P_i (Switch Transformer; with top k as Mixtral's auxiliary loss):
    f_i the fraction of tokens whose top k include expert i, P_i the mean router probability
    of expert i. ``counts_only`` uses f_i in place of P_i, ``times_n=False`` forgets N,
    ``probabilities=False`` averages the raw logits instead of the probabilities."""
    z = np.asarray(router_logits, np.float64)
    T, N = z.shape
    probs = softmax(z, axis=-1)
    chosen = np.argsort(-probs, axis=-1, kind="stable")[:, :top_k]
    f = np.bincount(chosen.ravel(), minlength=N) / T
    P = f if counts_only else (probs.mean(axis=0) if probabilities else z.mean(axis=0))
    return float((N if times_n else 1) * np.sum(f * P))
