"""Reference maths for notebook 09 (post-training): the task, the small model's forward pass,
the SFT example and loss, LoRA, sequence log-probabilities, DPO, rewards, and GRPO's advantages
and loss.

Everything is NumPy in float64, written from the papers' formulas (no learner code, no
``torch.nn``). Keyword switches reproduce the mistakes the exercises catalogue.
"""
from __future__ import annotations

import math

import numpy as np

# --- the task: 2-digit addition, tokenized by characters -----------------------------------

# id 0 pads, id 1 ends an answer; the answer is written least significant digit first, as a
# person adds (with the carry going forwards), which a small transformer learns far more easily.
CHARS = "_.+=0123456789"
PAD_ID, EOS_ID = 0, 1
VOCAB_SIZE = len(CHARS)
PROMPT_LEN, MAX_NEW = 6, 4
BLOCK_SIZE = 12


def problem(a: int, b: int) -> tuple[str, str]:
    """(prompt, answer): ("07+45=", "25") for 7 + 45 = 52."""
    return f"{a:02d}+{b:02d}=", str(a + b)[::-1]


def encode(text: str) -> list[int]:
    return [CHARS.index(c) for c in text]


def decode(ids) -> str:
    return "".join(CHARS[int(i)] for i in ids)


def reward(completion: str, answer: str, eos: bool = True, prefix: bool = False, as_int: bool = False) -> float:
    """1.0 when the text before the first EOS (".") is exactly ``answer``; 0.0 otherwise, and
    for a completion that never ends. Switches: ``eos=False`` accepts a completion without EOS,
    ``prefix=True`` accepts any completion that starts with the answer, ``as_int=True`` compares
    numbers (so "052." counts for "52")."""
    text = str(completion)
    if prefix:
        return float(text.startswith(answer))
    if "." not in text:
        if not eos:
            return float(text == answer)
        return 0.0
    head = text.split(".", 1)[0]
    if as_int:
        return float(head.isdigit() and int(head) == int(answer))
    return float(head == answer)


# --- the model: a pre-LN causal transformer with separate q, k, v and o projections --------

def tiny_lm_shapes(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes in registration order, as the notebook's TinyLM lists them."""
    C = n_embd
    shapes: dict[str, tuple[int, ...]] = {"tok.weight": (vocab_size, C), "pos.weight": (block_size, C)}
    for i in range(n_layer):
        p = f"layers.{i}."
        shapes.update({p + "norm1.weight": (C,), p + "norm1.bias": (C,)})
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shapes.update({p + f"attn.{proj}.weight": (C, C), p + f"attn.{proj}.bias": (C,)})
        shapes.update({p + "norm2.weight": (C,), p + "norm2.bias": (C,),
                       p + "linear1.weight": (4 * C, C), p + "linear1.bias": (4 * C,),
                       p + "linear2.weight": (C, 4 * C), p + "linear2.bias": (C,)})
    shapes.update({"ln_f.weight": (C,), "ln_f.bias": (C,), "head.weight": (vocab_size, C), "head.bias": (vocab_size,)})
    return shapes


def init_tiny_lm(rng: np.random.Generator, vocab_size: int, block_size: int, n_layer: int, n_embd: int,
                 dtype=np.float64, scale: float = 0.3) -> dict[str, np.ndarray]:
    """Random weights (norms' gains near 1) that give logits of a few nats' spread."""
    params = {}
    for name, shape in tiny_lm_shapes(vocab_size, block_size, n_layer, n_embd).items():
        if "norm" in name or name.startswith("ln_f"):
            base = 1.0 if name.endswith("weight") else 0.0
            params[name] = (base + 0.1 * rng.standard_normal(shape)).astype(dtype)
        else:
            fan_in = shape[-1] if len(shape) == 2 else 1
            params[name] = (scale * rng.standard_normal(shape) / math.sqrt(fan_in)
                            if len(shape) == 2 else 0.1 * rng.standard_normal(shape)).astype(dtype)
    return params


def n_layers(params: dict) -> int:
    return len({name.split(".")[1] for name in params if name.startswith("layers.")})


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def tiny_lm_forward(params: dict, idx, n_head: int) -> np.ndarray:
    """Logits (B, T, V) in float64: token + position embeddings, pre-LN blocks (causal
    multi-head attention, then a ReLU MLP), a final layer norm and a linear head."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    idx = np.asarray(idx)
    B, T = idx.shape
    C = p["tok.weight"].shape[1]
    hd = C // n_head
    x = p["tok.weight"][idx] + p["pos.weight"][:T]
    future = np.triu(np.ones((T, T), bool), k=1)
    for i in range(n_layers(p)):
        q = f"layers.{i}."
        h = layer_norm(x, p[q + "norm1.weight"], p[q + "norm1.bias"])
        heads = [(h @ p[q + f"attn.{proj}.weight"].T + p[q + f"attn.{proj}.bias"]).reshape(B, T, n_head, hd)
                 .transpose(0, 2, 1, 3) for proj in ("q_proj", "k_proj", "v_proj")]
        scores = heads[0] @ heads[1].transpose(0, 1, 3, 2) / math.sqrt(hd)
        scores = np.where(future, -np.inf, scores)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        y = (weights @ heads[2]).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ p[q + "attn.o_proj.weight"].T + p[q + "attn.o_proj.bias"]
        h = layer_norm(x, p[q + "norm2.weight"], p[q + "norm2.bias"])
        h = np.maximum(h @ p[q + "linear1.weight"].T + p[q + "linear1.bias"], 0.0)
        x = x + h @ p[q + "linear2.weight"].T + p[q + "linear2.bias"]
    return layer_norm(x, p["ln_f.weight"], p["ln_f.bias"]) @ p["head.weight"].T + p["head.bias"]


# --- 1. SFT examples and 2. the masked loss ------------------------------------------------

IGNORE = -100


def sft_example(prompt_ids, answer_ids, eos_id: int, pad_id: int, max_len: int, *, label_prompt=False,
                label_eos=True, pad_label=IGNORE, shifted=False):
    """(input_ids, labels), both of length max_len: prompt + answer + EOS, then padding; the
    labels are the input ids on the answer and EOS, -100 elsewhere."""
    ids = list(prompt_ids) + list(answer_ids) + [eos_id]
    n = len(ids)
    input_ids = np.asarray(ids + [pad_id] * (max_len - n), np.int64)
    labels = np.full(max_len, IGNORE, np.int64)
    start = 0 if label_prompt else len(prompt_ids)
    labels[start:n] = input_ids[start:n]
    if not label_eos:
        labels[n - 1] = IGNORE
    labels[n:] = pad_label if pad_label != "pad" else pad_id
    if shifted:  # labels already shifted by one (the loss shifts them again)
        labels = np.concatenate([labels[1:], [IGNORE]])
    return input_ids, labels


def sft_loss(logits, labels, *, shift=True, count_all=False, per_sequence=False, empty_nan=False) -> float:
    """Mean next-token cross-entropy of logits[:, t] against labels[:, t + 1] over the labelled
    positions (labels != -100); 0.0 when no position is labelled."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels)
    if shift:
        z, y = z[:, :-1], y[:, 1:]
    keep = y != IGNORE
    logp = log_softmax(z)
    picked = np.take_along_axis(logp, np.where(keep, y, 0)[..., None], axis=-1)[..., 0]
    nll = np.where(keep, -picked, 0.0)
    if per_sequence:
        with np.errstate(all="ignore"):
            return float(np.mean(nll.sum(axis=1) / keep.sum(axis=1)))
    if count_all:
        return float(nll.sum() / nll.size)
    if keep.sum() == 0:
        return float("nan") if empty_nan else 0.0
    return float(nll.sum() / keep.sum())


# --- 3. LoRA --------------------------------------------------------------------------------

def lora_forward(weight, bias, A, B, alpha: float, r: int, x, scale: float | None = None):
    """base(x) + (alpha / r) * x A^T B^T, with base(x) = x W^T + b."""
    s = alpha / r if scale is None else scale
    x = np.asarray(x, np.float64)
    return x @ np.asarray(weight).T + np.asarray(bias) + s * (x @ np.asarray(A).T) @ np.asarray(B).T


def lora_merged(weight, bias, A, B, alpha: float, r: int):
    """(W + (alpha / r) B A, b): one linear layer with the same outputs."""
    return np.asarray(weight) + alpha / r * np.asarray(B) @ np.asarray(A), np.asarray(bias)


# --- 4. sequence log-probabilities ----------------------------------------------------------

def sequence_logprob_from_logits(logits, labels, *, mean=False, shift=True) -> np.ndarray:
    """Per sequence, the summed log-probability of its labelled tokens (labels[:, t + 1] under
    logits[:, t])."""
    z = np.asarray(logits, np.float64)
    y = np.asarray(labels)
    if shift:
        z, y = z[:, :-1], y[:, 1:]
    keep = y != IGNORE
    picked = np.take_along_axis(log_softmax(z), np.where(keep, y, 0)[..., None], axis=-1)[..., 0]
    total = np.where(keep, picked, 0.0).sum(axis=1)
    if mean:
        with np.errstate(all="ignore"):
            return total / keep.sum(axis=1)
    return total


# --- 5. DPO (Rafailov et al. 2023) ----------------------------------------------------------

def log_sigmoid(x):
    """log(1 / (1 + exp(-x))) without overflow: -log1p(exp(-|x|)) + min(x, 0)."""
    x = np.asarray(x, np.float64)
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta: float, *, reference=True,
             sign=1.0, naive=False, beta_in_rewards=True):
    """(mean of -log sigmoid(beta * ((pc - rc) - (pr - rr))), beta (pc - rc), beta (pr - rr))."""
    pc, pr = np.asarray(policy_chosen, np.float64), np.asarray(policy_rejected, np.float64)
    rc, rr = (np.asarray(ref_chosen, np.float64), np.asarray(ref_rejected, np.float64)) if reference else (0.0, 0.0)
    margin = sign * beta * ((pc - rc) - (pr - rr))
    if naive:
        with np.errstate(all="ignore"):
            losses = -np.log(1.0 / (1.0 + np.exp(-margin)))
    else:
        losses = -log_sigmoid(margin)
    b = beta if beta_in_rewards else 1.0
    return float(np.mean(losses)), b * (pc - rc), b * (pr - rr)


# --- 7. group-normalised advantages and 8. the GRPO loss (Shao et al. 2024) -----------------

def group_advantages(rewards, eps: float = 1e-4, *, whole_batch=False, scale=True, ddof=1):
    """(r - mean of its group) / (std of its group + eps), each row one group; the std is the
    sample standard deviation (ddof=1), as torch.std computes it."""
    r = np.asarray(rewards, np.float64)
    axis = None if whole_batch else 1
    mean = r.mean(axis=axis, keepdims=True)
    if not scale:
        return r - mean
    std = r.std(axis=axis, ddof=ddof, keepdims=True)
    with np.errstate(all="ignore"):
        return (r - mean) / (std + eps)


def grpo_loss(logprobs, old_logprobs, ref_logprobs, advantages, mask, clip_eps: float, kl_coef: float, *,
              clip=True, clip_ratio_only=False, kl_sign=1.0, kl_reversed=False, token_level=False,
              count_padding=False) -> float:
    """The mean over sequences of each sequence's masked mean over tokens of
    -min(ratio A, clip(ratio, 1 - eps, 1 + eps) A) + kl_coef * k3, with ratio = exp(logp - old)
    and k3 = exp(ref - logp) - (ref - logp) - 1 (Schulman's unbiased, positive KL estimator)."""
    lp, old, ref = (np.asarray(a, np.float64) for a in (logprobs, old_logprobs, ref_logprobs))
    m = np.asarray(mask, np.float64)
    A = np.asarray(advantages, np.float64).reshape(-1, 1)
    with np.errstate(all="ignore"):
        ratio = np.exp(lp - old)
        clipped = np.clip(ratio, 1 - clip_eps, 1 + clip_eps)
        if not clip:
            surrogate = ratio * A
        elif clip_ratio_only:  # min over the ratios, then times A: wrong when A < 0
            surrogate = np.minimum(ratio, clipped) * A
        else:
            surrogate = np.minimum(ratio * A, clipped * A)
        d = (lp - ref) if kl_reversed else (ref - lp)
        k3 = np.exp(d) - d - 1
        per_token = -surrogate + kl_sign * kl_coef * k3
    if token_level:
        return float((per_token * m).sum() / max(m.sum(), 1.0))
    if count_padding:
        return float(np.mean((per_token * m).sum(axis=1) / m.shape[1]))
    return float(np.mean((per_token * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)))
