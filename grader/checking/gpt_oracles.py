"""Reference maths for notebook 07 (a small GPT): tokenizer, forward pass, loss, schedule, sampling.

The forward pass and the loss are NumPy in float64, written from the formulas (no learner code,
no ``torch.nn``). Batches, sampling and training are where the notebook fixes a recipe that
draws from a ``torch.Generator`` (so that a seed gives one answer); their references use
PyTorch's random draws and its AdamW, which the trusted process may import, but compute the
model with the functional forward below, never with a module the learner wrote.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import regex

# --- byte-level BPE ----------------------------------------------------------------------

# Text is cut into chunks before BPE with GPT-2's own pattern (openai/gpt-2, encoder.py; the
# ``regex`` package, as GPT-2 and tiktoken use it, for \p{L} letters and \p{N} numbers in every
# script): a contraction ('s 't 're 've 'm 'll 'd), a run of letters or of numbers or of other
# symbols with at most one leading space, or a run of white space (which leaves its last space
# to the word after it). Merges never cross a chunk's boundary. Every character belongs to
# exactly one alternative, so the chunks join back to the text.
PRETOKENIZE = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def chunks(text: str) -> list[str]:
    return PRETOKENIZE.findall(text)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """``ids`` with every occurrence of ``pair``, left to right, replaced by ``new_id``."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe(text: str, vocab_size: int, tie: str = "smallest", weighted: bool = True,
              overlapping: bool = True) -> list[tuple[int, int]]:
    """Merges learned from ``text``: merge i makes token 256 + i from the most frequent adjacent
    pair (counted within chunks, overlaps included, weighted by how often each chunk occurs);
    among equally frequent pairs the smallest (a, b) wins. Mistakes learners make: ``tie`` =
    "largest" or "first" (the first tied pair counted, as ``max(pairs, key=pairs.get)`` picks),
    ``weighted=False`` (each distinct chunk counted once), ``overlapping=False`` (a pair counted as
    often as ``merge`` would replace it: "aaa" holds (a, a) once)."""
    words = Counter(chunks(text))
    seqs = [(list(word.encode("utf-8")), count if weighted else 1) for word, count in words.items()]
    merges: list[tuple[int, int]] = []
    for new_id in range(256, vocab_size):
        pairs: Counter = Counter()
        for seq, count in seqs:
            if overlapping:
                for pair in zip(seq, seq[1:]):
                    pairs[pair] += count
            else:
                for pair in dict.fromkeys(zip(seq, seq[1:])):
                    pairs[pair] += count * (len(seq) - len(merge_pair(seq, pair, -1)))
        if not pairs:
            break
        top = max(pairs.values())
        tied = [p for p, c in pairs.items() if c == top]  # in the order first counted
        best = {"smallest": min(tied), "largest": max(tied), "first": tied[0]}[tie]
        merges.append(best)
        seqs = [(merge_pair(seq, best, new_id), count) if len(seq) > 1 else (seq, count) for seq, count in seqs]
    return merges


def encode(text: str, merges, order: str = "rank") -> list[int]:
    """Token ids of ``text``: each chunk's UTF-8 bytes, with the merges applied in the order
    learned (the earliest-learned merge present is applied next). Mistakes: ``order="last"``
    (the latest-learned merge present first), ``order="frequent"`` (the pair that occurs most
    often in the chunk first, ties by rank)."""
    ranks = {tuple(pair): 256 + i for i, pair in enumerate(merges)}
    ids: list[int] = []
    cache: dict[str, list[int]] = {}
    for chunk in chunks(text):
        if chunk not in cache:
            seq = list(chunk.encode("utf-8"))
            while len(seq) > 1:
                present = [p for p in zip(seq, seq[1:]) if p in ranks]
                if not present:
                    break
                if order == "rank":
                    pair = min(present, key=lambda p: ranks[p])
                elif order == "last":
                    pair = max(present, key=lambda p: ranks[p])
                else:
                    counts = Counter(present)
                    pair = min(present, key=lambda p: (-counts[p], ranks[p]))
                seq = merge_pair(seq, pair, ranks[pair])
            cache[chunk] = seq
        ids.extend(cache[chunk])
    return ids


def token_bytes(merges) -> list[bytes]:
    """The bytes each token id stands for."""
    vocab = [bytes([i]) for i in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    return vocab


def decode(ids, merges) -> str:
    """The text of ``ids``: all their bytes joined, then decoded once as UTF-8 (a character may be
    split between tokens); invalid UTF-8 becomes U+FFFD."""
    vocab = token_bytes(merges)
    return b"".join(vocab[int(i)] for i in ids).decode("utf-8", errors="replace")


# --- the model ---------------------------------------------------------------------------

def gpt_shapes(vocab_size: int, block_size: int, n_layer: int, n_embd: int) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes, in registration order (as ``named_parameters()`` lists them)."""
    C = n_embd
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (vocab_size, C), "wpe.weight": (block_size, C)}
    for i in range(n_layer):
        p = f"blocks.{i}."
        shapes.update({
            p + "ln_1.weight": (C,), p + "ln_1.bias": (C,),
            p + "attn.c_attn.weight": (3 * C, C), p + "attn.c_attn.bias": (3 * C,),
            p + "attn.c_proj.weight": (C, C), p + "attn.c_proj.bias": (C,),
            p + "ln_2.weight": (C,), p + "ln_2.bias": (C,),
            p + "mlp.c_fc.weight": (4 * C, C), p + "mlp.c_fc.bias": (4 * C,),
            p + "mlp.c_proj.weight": (C, 4 * C), p + "mlp.c_proj.bias": (C,),
        })
    shapes.update({"ln_f.weight": (C,), "ln_f.bias": (C,), "lm_head.weight": (vocab_size, C)})
    return shapes


def init_gpt(rng: np.random.Generator, vocab_size: int, block_size: int, n_layer: int, n_embd: int,
             dtype=np.float32) -> dict[str, np.ndarray]:
    """GPT-2's initialisation: weights N(0, 0.02), biases 0, layer-norm gains 1."""
    params = {}
    for name, shape in gpt_shapes(vocab_size, block_size, n_layer, n_embd).items():
        if name.endswith(".bias"):
            params[name] = np.zeros(shape, dtype)
        elif ".ln_" in name or name.startswith("ln_"):
            params[name] = np.ones(shape, dtype)
        else:
            params[name] = (0.02 * rng.standard_normal(shape)).astype(dtype)
    return params


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu_erf(x):
    """GELU in its exact form, x * Phi(x) (``nn.GELU()``'s default): a mistake here."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def softmax(z, axis=-1):
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def gpt_forward(params: dict, idx, n_head: int, causal: bool = True, positions: bool = True,
                scale: str = "head", gelu: str = "tanh", masked: str = "-inf", pre_ln: bool = True,
                final_ln: bool = True, heads: str = "transpose", eps: float = 1e-5) -> np.ndarray:
    """Logits (B, T, vocab) of token ids ``idx`` (B, T), in float64, from the parameters alone.

    The keyword arguments reproduce mistakes a judge names by reproducing them: no causal mask,
    no position embeddings; attention scores divided by sqrt(C) (``scale="width"``) or by
    nothing (``"none"``) instead of sqrt(head_dim); the exact GELU (``gelu="erf"``); masked
    scores set to 0 instead of -inf (``masked="zero"``); post-LN blocks (``pre_ln=False``:
    x = ln_1(x + attn(x))); no final layer norm; heads cut by a reshape without the transpose
    (``heads="reshape"``: (B, T, C) read as (B, n_head, T, head_dim)); layer norms without eps.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    idx = np.asarray(idx)
    B, T = idx.shape
    x = p["wte.weight"][idx] + (p["wpe.weight"][:T] if positions else 0.0)
    C = x.shape[-1]
    hd = C // n_head
    divisor = {"head": math.sqrt(hd), "width": math.sqrt(C), "none": 1.0}[scale]
    activation = gelu_tanh if gelu == "tanh" else gelu_erf
    layers = sorted({int(k.split(".")[1]) for k in p if k.startswith("blocks.")})
    future = np.triu(np.ones((T, T), bool), k=1)

    def split(t):
        if heads == "transpose":
            return t.reshape(B, T, n_head, hd).transpose(0, 2, 1, 3)
        return t.reshape(B, n_head, T, hd)

    def attention(h, q):
        qkv = h @ p[q + "attn.c_attn.weight"].T + p[q + "attn.c_attn.bias"]
        Q, K, V = (split(qkv[..., j * C:(j + 1) * C]) for j in range(3))
        scores = Q @ K.transpose(0, 1, 3, 2) / divisor
        if causal:
            scores = np.where(future, -np.inf if masked == "-inf" else 0.0, scores)
        y = softmax(scores) @ V
        y = y.transpose(0, 2, 1, 3).reshape(B, T, C) if heads == "transpose" else y.reshape(B, T, C)
        return y @ p[q + "attn.c_proj.weight"].T + p[q + "attn.c_proj.bias"]

    def mlp(h, q):
        h = activation(h @ p[q + "mlp.c_fc.weight"].T + p[q + "mlp.c_fc.bias"])
        return h @ p[q + "mlp.c_proj.weight"].T + p[q + "mlp.c_proj.bias"]

    def norm(h, name):
        return layer_norm(h, p[name + ".weight"], p[name + ".bias"], eps)

    for i in layers:
        q = f"blocks.{i}."
        if pre_ln:
            x = x + attention(norm(x, q + "ln_1"), q)
            x = x + mlp(norm(x, q + "ln_2"), q)
        else:
            x = norm(x + attention(x, q), q + "ln_1")
            x = norm(x + mlp(x, q), q + "ln_2")
    if final_ln:
        x = layer_norm(x, p["ln_f.weight"], p["ln_f.bias"], eps)
    return x @ p["lm_head.weight"].T


def log_softmax(z, axis=-1):
    z = np.asarray(z, np.float64)
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def lm_loss(logits, targets) -> float:
    """Mean over every position of -log softmax(logits)[target]."""
    logp = log_softmax(logits)
    targets = np.asarray(targets)
    return float(-np.mean(np.take_along_axis(logp, targets[..., None], axis=-1)))


def lr_at(step: int, max_lr: float, warmup_steps: int, total_steps: int, min_lr: float) -> float:
    """Linear warm-up to max_lr over warmup_steps (step 0 already takes max_lr / warmup_steps),
    then a half cosine from max_lr down to min_lr at total_steps, then min_lr."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def count_baseline(train_ids, eval_ids, vocab_size: int, order: int) -> float:
    """Cross-entropy on ``eval_ids`` of a unigram (order 1) or bigram (order 2) count model of
    ``train_ids``, with add-one smoothing (so no unseen token has probability 0)."""
    train_ids, eval_ids = np.asarray(train_ids), np.asarray(eval_ids)
    if order == 1:
        counts = np.bincount(train_ids, minlength=vocab_size) + 1.0
        return float(-np.mean(np.log(counts[eval_ids] / counts.sum())))
    counts = np.ones((vocab_size, vocab_size))
    np.add.at(counts, (train_ids[:-1], train_ids[1:]), 1.0)
    probs = counts / counts.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(probs[eval_ids[:-1], eval_ids[1:]])))


# --- recipes that draw from a torch.Generator (PyTorch, imported only here) --------------

class one_thread:
    """PyTorch on one thread while a reference runs (restored after): these models are tiny,
    and on a busy machine several threads waiting for each other make them 100x slower."""

    def __enter__(self):
        import torch
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        import torch
        torch.set_num_threads(self.threads)


def get_batch(ids, block_size: int, batch_size: int, seed: int, shift: int = 1):
    """(x, y) as the notebook's recipe draws them: start positions from
    ``torch.randint(len(ids) - block_size, (batch_size,), generator=generator)``."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator).numpy()
    ids = np.asarray(ids)
    x = np.stack([ids[s:s + block_size] for s in starts])
    y = np.stack([ids[s + shift:s + shift + block_size] for s in starts])
    return x, y


# --- the judge's own model, handed to ``generate`` and ``train_gpt`` ----------------------
#
# Deliberately not a GPT: the sandbox runs whatever model the judge hands over, so that model
# must not be a reference answer to ``make_gpt``. It is the smallest causal language model
# whose last logits depend on the whole context: each position's embedding (token plus
# position) plus the mean of the embeddings up to it, a final layer norm and an output layer.
# Past block_size every position reuses the last position's embedding, so a ``generate`` that
# does not crop its context gets other logits (a wrong answer the judge recognises), not an error.

def context_model_shapes(vocab_size: int, block_size: int, n_embd: int) -> dict[str, tuple[int, ...]]:
    C = n_embd
    return {"wte.weight": (vocab_size, C), "wpe.weight": (block_size, C), "ln_f.weight": (C,),
            "ln_f.bias": (C,), "lm_head.weight": (vocab_size, C)}


def init_context_model(rng: np.random.Generator, vocab_size: int, block_size: int, n_embd: int,
                       dtype=np.float32) -> dict[str, np.ndarray]:
    """Weights N(0, 0.02), layer-norm gain 1 and bias 0."""
    params = {}
    for name, shape in context_model_shapes(vocab_size, block_size, n_embd).items():
        if name == "ln_f.weight":
            params[name] = np.ones(shape, dtype)
        elif name == "ln_f.bias":
            params[name] = np.zeros(shape, dtype)
        else:
            params[name] = (0.02 * rng.standard_normal(shape)).astype(dtype)
    return params


def context_forward(params: dict, idx):
    """The judge's model in PyTorch operations on a dict of tensors (autograd can train it)."""
    import torch
    import torch.nn.functional as F

    T = idx.shape[1]
    positions = torch.arange(T).clamp(max=params["wpe.weight"].shape[0] - 1)
    x = params["wte.weight"][idx] + params["wpe.weight"][positions]
    x = x + x.cumsum(dim=1) / torch.arange(1, T + 1, dtype=x.dtype)[:, None]
    x = F.layer_norm(x, (x.shape[-1],), params["ln_f.weight"], params["ln_f.bias"], eps=1e-5)
    return x @ params["lm_head.weight"].T


def _generate(params: dict, block_size: int, idx, max_new_tokens: int, temperature: float = 1.0,
             top_k: int | None = None, seed: int | None = None, *, crop: bool = True, softmax: bool = True,
             temperature_first: bool = True, top_k_ids: bool = True, multiply: bool = False):
    """Token ids (B, T + max_new_tokens) sampled as the notebook's recipe samples them: the last
    position's logits of the (cropped) context, divided by ``temperature``, the top k kept,
    softmax, then one ``torch.multinomial`` draw from the generator per step.

    The keyword switches reproduce mistakes: no cropping to ``block_size``, sampling from the
    logits themselves, temperature applied to the probabilities (where normalising undoes it) or
    multiplying the logits,
    and returning a token's place in the top-k list instead of its id.
    """
    import torch

    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    tensors = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in params.items()}
    idx = torch.tensor(np.asarray(idx), dtype=torch.long)
    with torch.no_grad():
        for _ in range(max_new_tokens):
            context = idx[:, -block_size:] if crop else idx
            logits = context_forward(tensors, context)[:, -1, :]
            if multiply:
                logits = logits * temperature
            elif temperature_first:
                logits = logits / temperature
            if top_k is not None:
                values, _ = torch.topk(logits, min(top_k, logits.shape[-1]))
                # the mistake samples among `values` alone: a place in the top-k list, not a token id
                logits = logits.masked_fill(logits < values[:, [-1]], float("-inf")) if top_k_ids else values
            probs = torch.softmax(logits, dim=-1) if softmax else logits
            if not temperature_first:
                probs = probs / temperature
            choice = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat([idx, choice], dim=1)
    return idx.numpy()


def decay_names(params) -> set[str]:
    """The parameters AdamW decays: the weight matrices of the linear layers, not the
    embeddings, layer norms or biases."""
    return {name for name, value in params.items()
            if np.ndim(value) >= 2 and not name.startswith(("wte.", "wpe."))}


def _train(params: dict, train_ids, config: dict, seed: int, *, decay_all: bool = False,
           clip: bool = True, schedule: bool = True, zero_grad: bool = True) -> tuple[dict[str, np.ndarray], list[float]]:
    """(the parameters after the notebook's training recipe, the loss of every step), computed
    with ``context_forward`` (the judge's model):
    AdamW (betas 0.9, 0.95, eps 1e-8) with weight decay only on ``decay_names``, ``lr_at`` each
    step, a batch from ``get_batch``'s recipe on the generator, the mean next-token loss, and
    the gradients' global norm clipped to ``grad_clip``. The switches reproduce mistakes."""
    import torch
    import torch.nn.functional as F

    dtype = torch.float64 if np.asarray(next(iter(params.values()))).dtype == np.float64 else torch.float32
    tensors = {k: torch.tensor(np.asarray(v), dtype=dtype, requires_grad=True) for k, v in params.items()}
    decayed = set(tensors) if decay_all else decay_names(params)
    groups = [{"params": [t for k, t in tensors.items() if k in decayed], "weight_decay": config["weight_decay"]},
              {"params": [t for k, t in tensors.items() if k not in decayed], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=config["max_lr"], betas=(0.9, 0.95), eps=1e-8)
    generator = torch.Generator().manual_seed(seed)
    ids = torch.as_tensor(np.asarray(train_ids), dtype=torch.long)
    block, batch, steps = config["block_size"], config["batch_size"], config["max_steps"]
    losses = []
    for step in range(steps):
        lr = lr_at(step, config["max_lr"], config["warmup_steps"], steps, config["min_lr"]) if schedule \
            else config["max_lr"]
        for group in optimizer.param_groups:
            group["lr"] = lr
        starts = torch.randint(len(ids) - block, (batch,), generator=generator)
        x = torch.stack([ids[s:s + block] for s in starts])
        y = torch.stack([ids[s + 1:s + 1 + block] for s in starts])
        logits = context_forward(tensors, x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        losses.append(loss.item())
        if zero_grad:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(list(tensors.values()), config["grad_clip"])
        optimizer.step()
    return {k: t.detach().numpy() for k, t in tensors.items()}, losses


def generate(*args, **kwargs):
    with one_thread():
        return _generate(*args, **kwargs)


generate.__doc__ = _generate.__doc__


def train(*args, **kwargs) -> tuple[dict[str, np.ndarray], list[float]]:
    with one_thread():
        return _train(*args, **kwargs)


train.__doc__ = _train.__doc__
