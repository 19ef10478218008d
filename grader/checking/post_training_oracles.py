"""Reference maths for notebook 09 (post-training): the task, the small model's forward pass,
the SFT example and loss, LoRA, sequence log-probabilities, DPO, rewards, GRPO's advantages and
loss, and a replay of GRPO training.

Everything except the replay is NumPy in float64, written from the papers' formulas (no learner
code, no ``torch.nn``). The replay draws from a ``torch.Generator`` as the notebook's recipe
does, so it uses PyTorch's sampling and AdamW, with the functional forward below, never a module
the learner wrote. Keyword switches reproduce the mistakes the exercises catalogue.
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


# --- the model: a pre-LN causal transformer of torch.nn.TransformerEncoderLayer blocks ------

def tiny_lm_shapes(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes in registration order, as the notebook's TinyLM lists them."""
    C = n_embd
    shapes: dict[str, tuple[int, ...]] = {"tok.weight": (vocab_size, C), "pos.weight": (block_size, C)}
    for i in range(n_layer):
        p = f"layers.{i}."
        shapes.update({
            p + "self_attn.in_proj_weight": (3 * C, C), p + "self_attn.in_proj_bias": (3 * C,),
            p + "self_attn.out_proj.weight": (C, C), p + "self_attn.out_proj.bias": (C,),
            p + "linear1.weight": (4 * C, C), p + "linear1.bias": (4 * C,),
            p + "linear2.weight": (C, 4 * C), p + "linear2.bias": (C,),
            p + "norm1.weight": (C,), p + "norm1.bias": (C,), p + "norm2.weight": (C,), p + "norm2.bias": (C,),
        })
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
        qkv = h @ p[q + "self_attn.in_proj_weight"].T + p[q + "self_attn.in_proj_bias"]
        heads = [qkv[..., j * C:(j + 1) * C].reshape(B, T, n_head, hd).transpose(0, 2, 1, 3) for j in range(3)]
        scores = heads[0] @ heads[1].transpose(0, 1, 3, 2) / math.sqrt(hd)
        scores = np.where(future, -np.inf, scores)
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights /= weights.sum(axis=-1, keepdims=True)
        y = (weights @ heads[2]).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ p[q + "self_attn.out_proj.weight"].T + p[q + "self_attn.out_proj.bias"]
        h = layer_norm(x, p[q + "norm2.weight"], p[q + "norm2.bias"])
        h = np.maximum(h @ p[q + "linear1.weight"].T + p[q + "linear1.bias"], 0.0)
        x = x + h @ p[q + "linear2.weight"].T + p[q + "linear2.bias"]
    return layer_norm(x, p["ln_f.weight"], p["ln_f.bias"]) @ p["head.weight"].T + p["head.bias"]


def greedy_accuracy(params: dict, n_head: int, pairs) -> float:
    """Exact-match accuracy of greedy decoding (MAX_NEW tokens) on the problems ``pairs``."""
    prompts = np.asarray([encode(problem(a, b)[0]) for a, b in pairs])
    idx = prompts
    with np.errstate(all="ignore"):
        for _ in range(MAX_NEW):
            logits = tiny_lm_forward(params, idx, n_head)[:, -1]
            idx = np.concatenate([idx, logits.argmax(-1)[:, None]], axis=1)
    return float(np.mean([reward(decode(row[PROMPT_LEN:]), problem(a, b)[1]) for row, (a, b) in zip(idx, pairs)]))


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


# --- 9. GRPO training, replayed ---------------------------------------------------------------
#
# The notebook fixes a recipe that draws from a torch.Generator (which prompts, which samples),
# so a seed gives one answer. The replay below follows it with PyTorch's random draws and AdamW,
# but computes the model with its own functional forward (the formulas of tiny_lm_forward, in
# torch for autograd), never with a module the learner wrote.

def torch_forward(params: dict, idx, n_head: int):
    import torch
    import torch.nn.functional as F

    p = params
    B, T = idx.shape
    C = p["tok.weight"].shape[1]
    hd = C // n_head
    x = p["tok.weight"][idx] + p["pos.weight"][:T]
    future = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    for i in range(n_layers(p)):
        q = f"layers.{i}."
        h = F.layer_norm(x, (C,), p[q + "norm1.weight"], p[q + "norm1.bias"], 1e-5)
        qkv = h @ p[q + "self_attn.in_proj_weight"].T + p[q + "self_attn.in_proj_bias"]
        qh, kh, vh = (t.view(B, T, n_head, hd).transpose(1, 2) for t in qkv.split(C, dim=2))
        scores = (qh @ kh.transpose(-2, -1) / math.sqrt(hd)).masked_fill(future, float("-inf"))
        y = (torch.softmax(scores, dim=-1) @ vh).transpose(1, 2).reshape(B, T, C)
        x = x + y @ p[q + "self_attn.out_proj.weight"].T + p[q + "self_attn.out_proj.bias"]
        h = F.layer_norm(x, (C,), p[q + "norm2.weight"], p[q + "norm2.bias"], 1e-5)
        x = x + torch.relu(h @ p[q + "linear1.weight"].T + p[q + "linear1.bias"]) @ p[q + "linear2.weight"].T \
            + p[q + "linear2.bias"]
    return F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], 1e-5) @ p["head.weight"].T + p["head.bias"]


class one_thread:
    """One PyTorch thread while the judge replays (sums in a fixed order, and no oversubscription)."""

    def __enter__(self):
        import torch
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch
        torch.set_num_threads(self.threads)


def train_grpo(params: dict, ref_params: dict, n_head: int, prompts, answers, config: dict, seed: int, *,
               fixed_old=True, sample=True, include_eos=True, use_reference=True) -> dict[str, np.ndarray]:
    """The notebook's GRPO recipe replayed from ``params``: per iteration, prompts_per_step rows
    drawn with torch.randint, a group of group_size completions each sampled with one
    torch.multinomial per token, rewards, group advantages, old and reference log-probabilities
    once, then steps_per_batch AdamW steps on grpo_loss. Switches reproduce mistakes:
    ``fixed_old=False`` recomputes old_logprobs at every step (the ratio is always 1),
    ``sample=False`` decodes greedily, ``include_eos=False`` leaves the EOS out of the mask,
    ``use_reference=False`` takes the KL against the current policy."""
    import torch
    import torch.nn.functional as F

    with one_thread():
        generator = torch.Generator().manual_seed(int(seed))
        weights = {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True) for k, v in params.items()}
        ref = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in ref_params.items()}
        optimizer = torch.optim.AdamW(list(weights.values()), lr=config["lr"], weight_decay=0.0)
        prompts = torch.as_tensor(np.asarray(prompts))
        P, G, n_new = config["prompts_per_step"], config["group_size"], config["max_new_tokens"]
        eps, kl = config["clip_eps"], config["kl_coef"]
        L = prompts.shape[1]

        def logprobs_of(p, sequences):
            logits = torch_forward(p, sequences[:, :-1], n_head)[:, L - 1:]
            return F.log_softmax(logits, dim=-1).gather(-1, sequences[:, L:].unsqueeze(-1)).squeeze(-1)

        for _ in range(config["iterations"]):
            rows = torch.randint(len(prompts), (P,), generator=generator)
            idx = prompts[rows].repeat_interleave(G, dim=0)
            with torch.no_grad():
                for _ in range(n_new):
                    logits = torch_forward(weights, idx, n_head)[:, -1, :]
                    if sample:
                        nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)
                    else:
                        nxt = logits.argmax(dim=-1, keepdim=True)
                    idx = torch.cat([idx, nxt], dim=1)
            texts = [decode(row[L:]) for row in idx.tolist()]
            wanted = [answers[int(r)] for r in rows for _ in range(G)]
            rewards = np.asarray([reward(t, a) for t, a in zip(texts, wanted)]).reshape(P, G)
            advantages = torch.tensor(group_advantages(rewards).reshape(-1))
            ends = [t.index(".") + (1 if include_eos else 0) if "." in t else n_new for t in texts]
            mask = (torch.arange(n_new)[None, :] < torch.tensor(ends)[:, None]).double()
            with torch.no_grad():
                old = logprobs_of(weights, idx)
                reference = logprobs_of(ref, idx)
            for _ in range(config["steps_per_batch"]):
                lp = logprobs_of(weights, idx)
                old_now = old if fixed_old else lp.detach()
                ref_now = reference if use_reference else lp.detach()
                ratio = torch.exp(lp - old_now)
                A = advantages.unsqueeze(1)
                surrogate = torch.min(ratio * A, ratio.clamp(1 - eps, 1 + eps) * A)
                d = ref_now - lp
                per_token = -surrogate + kl * (torch.exp(d) - d - 1)
                loss = ((per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return {k: v.detach().numpy() for k, v in weights.items()}
