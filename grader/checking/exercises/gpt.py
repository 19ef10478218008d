"""Notebook 07: a small GPT trained from scratch: byte-level BPE, batches, the model, its loss,
the learning-rate schedule, training and sampling.

What each exercise trusts (nothing a learner's code computes is believed as such):

- ``train_bpe``, ``encode``, ``decode``, ``lm_loss``, ``lr_at``: the returned numbers are the
  answer; they are compared with ``grader.checking.gpt_oracles``, computed here.
- ``get_batch``: the returned ids are compared with the batch that the notebook's recipe draws
  from a generator seeded here (so "only the given generator" is checked exactly).
- ``make_gpt``: the judge draws two sets of weights (GPT-2's start-up scale, and large ones where
  every approximation shows), the harness loads each into the learner's module by name
  (``load_state_dict``, strict) and returns its logits; the judge compares them with its own
  forward pass on the same weights, names the catalogued variant that reproduces them, and
  checks that changing one token changes no logit before it. Non-finite logits never agree.
- ``train_gpt``: the judge hands the learner a small model of its own (not a GPT: nothing in
  the sandbox answers ``make_gpt``) and reads back only the trained parameters, with the names
  and shapes it sent, and the loss history. A short float64 run must equal the judge's own
  replay of the recipe, losses included; a longer run is scored by the judge's own forward pass
  on held-out text that never enters the sandbox, at windows chosen by a seed that stays here.
- ``generate``: the judge hands over its own model, so it knows the argmax path, the top-k set
  at every step and the tokens that the recipe draws from a seeded generator.
- Every function that takes a tensor or a list must hand it back unchanged (the "kept" probe
  and the "gpt" probe return the arguments after the call).

Nothing here imports PyTorch at import time; the references that draw from a
``torch.Generator`` import it when they run (in the trusted process, never the learner's code).
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from grader.checking import gpt_oracles as O
from grader.checking.judge import (call_inputs, compare_outputs, expected_outputs, names_and_shapes_problem,
                                   recognise_mistake)
from grader.checking.spec import (
    Call,
    Exercise,
    GPTModel,
    Mistake,
    NotebookSpec,
    Tensor,
    TorchGenerator,
)

CHINESE_AND_EMOJI = "naïve café, 中文分词 and 🙂🚀: déjà vu, 大模型 😀"


def _cell(signature: str, body: str) -> str:
    return signature + "\n" + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())


def _stdlib_snippet(rng: np.random.Generator, size: int) -> str:
    text = training_text()
    start = int(rng.integers(0, len(text) - size))
    return text[start:start + size]


@lru_cache(maxsize=1)
def training_text() -> str:
    from grader.checking.corpus import stdlib_corpus
    return stdlib_corpus().train


def _unicode_noise(rng: np.random.Generator, n: int) -> str:
    pool = list("αβγ中文模型分词é😀🙂🚀ñü€") + [" ", "\n", "x", "_"]
    return "".join(pool[i] for i in rng.integers(0, len(pool), n))


# --- every function leaves its inputs unchanged ----------------------------------------------
#
# Calls with the "kept" probe return the result under "result" and every tensor or list
# argument after the call under "after.<position>"; the judge compares those with what it sent.

def _sent(value) -> np.ndarray | None:
    if isinstance(value, Tensor):
        return np.asarray(value.value)
    if isinstance(value, list):
        return np.asarray(value, dtype=np.int64)
    return None


def changed_argument(call: Call, outputs, names: tuple[str, ...]) -> str | None:
    """The name of the first tensor or list argument that the call changed, or None."""
    for position, value in enumerate(call.args):
        sent = _sent(value)
        if sent is None:
            continue
        after = outputs.get(f"after.{position}")
        if after is None or after.shape != sent.shape or not np.array_equal(after, sent):
            return names[position]
    return None


def keep_hint(argument: str) -> str:
    return (f"the function changed its argument `{argument}`: leave its inputs unchanged "
            "(work on a copy; the caller uses them again).")


def result_of(outputs) -> dict:
    """The outputs under "result", as the exercise's judge would read them without the probe."""
    return {k[len("result."):] if k.startswith("result.") else "": v for k, v in outputs.items()
            if k == "result" or k.startswith("result.")}


def oracle_judge(name: str, arguments: tuple[str, ...], integers: str = ""):
    """A judge for an exercise compared with its oracle whose calls carry the "kept" probe: the
    inputs must come back unchanged, then the result is judged as usual (catalogued mistakes
    first, then where the values differ). ``integers``: the hint when the result must be ints
    and is not."""
    def judge(call: Call, outputs) -> str | None:
        changed = changed_argument(call, outputs, arguments)
        if changed:
            return keep_hint(changed)
        exercise = NOTEBOOK.exercise(name)
        plain_call = replace(call, probe=None)
        result = result_of(outputs)
        if integers and any(v.dtype.kind not in "iu" for v in result.values()):
            return integers
        problem = compare_outputs(result, expected_outputs(exercise, plain_call), exercise.rtol, exercise.atol,
                                  call_inputs(exercise, plain_call))
        if problem is None:
            return None
        return recognise_mistake(exercise, plain_call, result) or problem.text
    return judge


# --- train_bpe ---------------------------------------------------------------------------

BPE_TEXT = ("low lower lowest newer newest wider widest " * 3
            + "def low(x):\n    return x  # naïve 中文 🙂\n" + "aaab aaab abab ")

BPE_TIES = ("among pairs with the same count, merge the smallest pair (a, b): "
            "min(tied pairs), not max (the notebook's tie rule makes the merges exact).")
BPE_ACROSS_CHUNKS = ("count pairs inside each chunk of PRETOKENIZE.findall(text) only: a merge never "
                     "joins the end of one chunk to the start of the next.")
BPE_FIRST_SEEN = ("among pairs with the same count, merge the smallest pair (a, b): min(tied pairs), not the "
                  "first one counted (max(pairs, key=pairs.get) and Counter.most_common pick the first).")
BPE_OVERLAPS = ("count every adjacent pair, overlaps included: \"aaa\" holds the pair (a, a) twice; count the "
                "pairs of zip(seq, seq[1:]), not how often merge() would replace a pair.")
BPE_UNWEIGHTED = ("count each pair as many times as its chunk occurs in the text (weight the pairs of a "
                  "chunk by the chunk's count), not once per distinct chunk.")


def _bpe_unchunked(text, vocab_size):
    seq, merges = list(text.encode("utf-8")), []
    for new_id in range(256, vocab_size):
        pairs: dict = {}
        for pair in zip(seq, seq[1:]):
            pairs[pair] = pairs.get(pair, 0) + 1
        if not pairs:
            break
        top = max(pairs.values())
        best = min(p for p, c in pairs.items() if c == top)
        merges.append(best)
        seq = O.merge_pair(seq, best, new_id)
    return np.asarray(merges, np.int64).reshape(-1, 2)


def _bpe_unweighted(text, vocab_size):
    return _pairs(O.train_bpe(text, vocab_size, weighted=False))


def _pairs(merges):
    return np.asarray(merges, np.int64).reshape(-1, 2)


def _bpe_call(text, vocab_size):
    return Call((text, vocab_size), probe="pairs")


_BPE_SIGNATURE = "def train_bpe(text, vocab_size):"
_BPE_BODY = """words = Counter(PRETOKENIZE.findall(text))
seqs = [list(word.encode("utf-8")) for word in words]
counts = {counts}
merges = []
for new_id in range(256, vocab_size):
    pairs = Counter()
    for seq, count in zip(seqs, counts):
        for pair in zip(seq, seq[1:]):
            pairs[pair] += count
    if not pairs:
        break
    best = {best}
    merges.append(best)
    seqs = [merge(seq, best, new_id) for seq in seqs]
return merges"""

train_bpe = Exercise(
    name="train_bpe", points=2, title="Training a byte-level BPE tokenizer",
    visible_calls=lambda: [_bpe_call(BPE_TEXT, 290)],
    hidden_calls=lambda rng: [_bpe_call(_stdlib_snippet(rng, 3000) + _unicode_noise(rng, 60), 256 + int(rng.integers(30, 60))),
                              _bpe_call(_unicode_noise(rng, 300), 280)],
    expected=lambda text, vocab_size: _pairs(O.train_bpe(text, vocab_size)),
    mistakes=(
        Mistake(BPE_TIES, wrong=lambda text, v: _pairs(O.train_bpe(text, v, tie="largest")),
                inject=_cell(_BPE_SIGNATURE, _BPE_BODY.format(
                    counts="list(words.values())", best="max(pairs, key=lambda pair: (pairs[pair], pair))"))),
        Mistake(BPE_FIRST_SEEN, wrong=lambda text, v: _pairs(O.train_bpe(text, v, tie="first")),
                inject=_cell(_BPE_SIGNATURE, _BPE_BODY.format(
                    counts="list(words.values())", best="max(pairs, key=pairs.get)"))),
        Mistake(BPE_OVERLAPS, wrong=lambda text, v: _pairs(O.train_bpe(text, v, overlapping=False)),
                inject=_cell(_BPE_SIGNATURE, _BPE_BODY.format(
                    counts="list(words.values())", best="min(pairs, key=lambda pair: (-pairs[pair], pair))").replace(
                    """        for pair in zip(seq, seq[1:]):
            pairs[pair] += count""", """        for pair in set(zip(seq, seq[1:])):
            pairs[pair] += count * (len(seq) - len(merge(seq, pair, -1)))"""))),
        Mistake(BPE_ACROSS_CHUNKS, wrong=_bpe_unchunked,
                inject=_cell(_BPE_SIGNATURE, _BPE_BODY.format(
                    counts="[1]", best="min(pairs, key=lambda pair: (-pairs[pair], pair))").replace(
                    'seqs = [list(word.encode("utf-8")) for word in words]', 'seqs = [list(text.encode("utf-8"))]'))),
        Mistake(BPE_UNWEIGHTED, wrong=_bpe_unweighted,
                inject=_cell(_BPE_SIGNATURE, _BPE_BODY.format(
                    counts="[1] * len(words)", best="min(pairs, key=lambda pair: (-pairs[pair], pair))"))),
    ),
)

# --- encode ------------------------------------------------------------------------------

ENCODE_CODE_POINTS = ("start from the UTF-8 bytes of each chunk, list(chunk.encode('utf-8')), not from "
                      "ord() of its characters: ids 0-255 are bytes, and '中' is three of them.")
ENCODE_ORDER = ("apply the merges in the order they were learned: in each chunk, merge next the pair present with "
                "the smallest rank (the earliest-learned merge), not the most frequent pair or the latest merge.")
ENCODE_ACROSS_CHUNKS = ("encode each chunk of PRETOKENIZE.findall(text) on its own: merges were learned "
                        "inside chunks and must not join two chunks.")


@lru_cache(maxsize=4)
def _merges_for(text: str, vocab_size: int) -> tuple:
    return tuple(O.train_bpe(text, vocab_size))


def _encode_call(text, merges):
    return Call((text, [tuple(int(i) for i in pair) for pair in merges]), probe="kept")


def _apply_merges(seq, merges):
    ranks = {tuple(p): 256 + i for i, p in enumerate(merges)}
    while len(seq) > 1:
        pair = min(zip(seq, seq[1:]), key=lambda p: ranks.get(tuple(p), np.inf))
        if tuple(pair) not in ranks:
            break
        seq = O.merge_pair(seq, pair, ranks[tuple(pair)])
    return seq


def _encode_code_points(text, merges):
    return np.asarray([i for chunk in O.chunks(text) for i in _apply_merges([ord(c) for c in chunk], merges)])


def _encode_unchunked(text, merges):
    return np.asarray(_apply_merges(list(text.encode("utf-8")), merges))


def _visible_encode_calls():
    # Trailing spaces before blank lines teach the merges ("\n", "\n") and then (" ", "\n\n")
    # inside white-space chunks; in "x \n\nreturn" the run " \n\n" is two chunks, " \n" and "\n"
    # (a run of white space keeps its last character apart), so merging across chunks shows. "aaaa" and "ab" make the order
    # of the merges matter (the most frequent, the earliest and the latest merge disagree).
    merges = _merges_for(BPE_TEXT + CHINESE_AND_EMOJI * 4 + " aaaa ab aab" * 3 + " abab" * 5 + " ok \n\n ok" * 20, 300)
    return [_encode_call("the lowest newer " + CHINESE_AND_EMOJI + " low.lower  aaaab ababab x \n\nreturn", merges)]


def _hidden_encode_calls(rng):
    text = _stdlib_snippet(rng, 2000)
    merges = O.train_bpe(text + CHINESE_AND_EMOJI * 3, 256 + int(rng.integers(40, 80)))
    return [_encode_call(_stdlib_snippet(rng, 500) + _unicode_noise(rng, 40), merges)]


_ENCODE_SIGNATURE = "def encode(text, merges):"
_ENCODE_BODY = """rank = {{tuple(pair): i for i, pair in enumerate(merges)}}
ids = []
for chunk in {chunks}:
    seq = {start}
    while len(seq) > 1:
        pair = min(zip(seq, seq[1:]), key=lambda p: rank.get(p, len(rank)))
        if pair not in rank:
            break
        seq = merge(seq, pair, 256 + rank[pair])
    ids.extend(seq)
return ids"""

encode = Exercise(
    name="encode", points=1, title="Encoding text with the learned merges",
    visible_calls=_visible_encode_calls,
    hidden_calls=_hidden_encode_calls,
    expected=lambda text, merges: np.asarray(O.encode(text, merges)),
    judge=oracle_judge("encode", ("text", "merges"), integers="return the token ids as a list of ints."),
    trusts=("the returned arrays only: compared with the oracle's answer, computed here from the inputs sent, "
            "which must come back unchanged."),
    mistakes=(
        Mistake(ENCODE_ORDER, wrong=lambda text, merges: np.asarray(O.encode(text, merges, order="last")),
                inject=_cell(_ENCODE_SIGNATURE, _ENCODE_BODY.format(
                    chunks="PRETOKENIZE.findall(text)", start="list(chunk.encode('utf-8'))").replace(
                    "key=lambda p: rank.get(p, len(rank)))", "key=lambda p: rank.get(p, -1))").replace(
                    "pair = min(", "pair = max("))),
        Mistake(ENCODE_ORDER, wrong=lambda text, merges: np.asarray(O.encode(text, merges, order="frequent")),
                inject=_cell(_ENCODE_SIGNATURE, _ENCODE_BODY.format(
                    chunks="PRETOKENIZE.findall(text)", start="list(chunk.encode('utf-8'))").replace(
                    "pair = min(zip(seq, seq[1:]), key=lambda p: rank.get(p, len(rank)))",
                    "stats = Counter(zip(seq, seq[1:]))\n        pair = min(stats, key=lambda p: (-stats[p] if p in rank else 0, "
                    "rank.get(p, len(rank))))"))),
        Mistake(ENCODE_CODE_POINTS, wrong=_encode_code_points,
                inject=_cell(_ENCODE_SIGNATURE, _ENCODE_BODY.format(chunks="PRETOKENIZE.findall(text)",
                                                                    start="[ord(c) for c in chunk]"))),
        Mistake(ENCODE_ACROSS_CHUNKS, wrong=_encode_unchunked,
                inject=_cell(_ENCODE_SIGNATURE, _ENCODE_BODY.format(chunks="[text]",
                                                                    start="list(chunk.encode('utf-8'))"))),
    ),
)

# --- decode ------------------------------------------------------------------------------

DECODE_PER_TOKEN = ("join the bytes of all the tokens first, then decode once: b''.join(...).decode('utf-8', "
                    "errors='replace'). A token can hold part of a character ('中' is 3 bytes), so decoding "
                    "token by token breaks it.")


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8).copy()


def _decode_per_token(ids, merges):
    vocab = O.token_bytes(merges)
    return _utf8("".join(vocab[int(i)].decode("utf-8", errors="replace") for i in ids))


def _split_char_merges():
    """Merges one of which joins a space to the first byte of '中' (a merge inside a character)."""
    first, second = "中".encode("utf-8")[:2]
    return [(32, first), (256, second), (ord("o"), ord("k"))]


def _decode_call(ids, merges):
    return Call(([int(i) for i in ids], [tuple(int(i) for i in p) for p in merges]), probe="kept")


def _visible_decode_calls():
    merges = _split_char_merges()
    text = "ok 中文 🙂, ok 中"
    return [_decode_call(O.encode(text, merges), merges),
            _decode_call([256, 111, 107], merges)]  # ' ' + two bytes of '中', then 'ok': not valid UTF-8


def _hidden_decode_calls(rng):
    merges = _merges_for(BPE_TEXT + CHINESE_AND_EMOJI * 4, 300)
    text = CHINESE_AND_EMOJI + _unicode_noise(rng, 50)
    return [_decode_call(O.encode(text, merges), merges),
            _decode_call(rng.integers(0, 300, 40), merges)]


decode = Exercise(
    name="decode", points=1, title="Decoding ids back to text",
    visible_calls=_visible_decode_calls,
    hidden_calls=_hidden_decode_calls,
    expected=lambda ids, merges: _utf8(O.decode(ids, merges)),
    judge=oracle_judge("decode", ("ids", "merges")),
    trusts=("the returned arrays only: compared with the oracle's answer, computed here from the inputs sent, "
            "which must come back unchanged."),
    mistakes=(
        Mistake(DECODE_PER_TOKEN, wrong=_decode_per_token,
                inject=_cell("def decode(ids, merges):", """vocab = [bytes([i]) for i in range(256)]
for a, b in merges:
    vocab.append(vocab[a] + vocab[b])
return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)""")),
    ),
)

# --- get_batch ---------------------------------------------------------------------------

BATCH_NOT_SHIFTED = ("the targets are the inputs shifted by one: y = ids[start + 1 : start + 1 + block_size], "
                     "the token that follows each input token.")
BATCH_GENERATOR = ("these are not the windows that the recipe draws from `generator`: draw the starts with "
                   "torch.randint(len(ids) - block_size, (batch_size,), generator=generator) and use no other "
                   "randomness, so that the same seed gives the same batch.")
BATCH_SHAPE = "return (x, y), two int64 tensors of shape (batch_size, block_size), windows of ids."


def _batch_call(rng, n, block, batch):
    ids = rng.integers(0, 500, n).astype(np.int64)
    return Call((Tensor("torch", ids), block, batch, TorchGenerator(int(rng.integers(0, 1 << 30)))), probe="kept")


def judge_batch(call: Call, outputs) -> str | None:
    if changed_argument(call, outputs, ("ids", "block_size", "batch_size", "generator")):
        return keep_hint("ids")
    outputs = result_of(outputs)
    ids, block, batch, generator = call.args
    ids = ids.value
    x, y = outputs.get("0"), outputs.get("1")
    if set(outputs) != {"0", "1"} or x.shape != (batch, block) or y.shape != (batch, block) \
            or x.dtype.kind not in "iu" or y.dtype.kind not in "iu":
        return BATCH_SHAPE
    want_x, want_y = O.get_batch(ids, block, batch, generator.seed)
    if np.array_equal(x, want_x) and np.array_equal(y, want_y):
        return None
    if np.array_equal(x, y):
        return BATCH_NOT_SHIFTED
    windows = {tuple(ids[s:s + block + 1]) for s in range(len(ids) - block)}
    if all(tuple(a) + (b[-1],) in windows and np.array_equal(a[1:], b[:-1]) for a, b in zip(x, y)):
        return BATCH_GENERATOR
    return "x and y must be windows of ids, y shifted one token to the right of x."


_BATCH_CELL = """def get_batch(ids, block_size, batch_size, generator):
    starts = torch.randint(len(ids) - block_size, (batch_size,){generator})
    x = torch.stack([ids[s:s + block_size] for s in starts])
    y = torch.stack([ids[s{shift}:s{shift} + block_size] for s in starts])
    return x, y
"""

get_batch = Exercise(
    name="get_batch", points=1, title="Batches of next-token examples",
    visible_calls=lambda: [_batch_call(np.random.default_rng(70), 200, 8, 4)],
    hidden_calls=lambda rng: [_batch_call(rng, 1000, 16, 8), _batch_call(rng, 50, 5, 3)],
    judge=judge_batch,
    trusts=("the returned ids only: compared with the batch that the recipe draws from a generator seeded here; "
            "the ids sent must come back unchanged."),
    mistakes=(
        Mistake(BATCH_NOT_SHIFTED, inject=_BATCH_CELL.format(generator=", generator=generator", shift="")),
        Mistake(BATCH_GENERATOR, inject=_BATCH_CELL.format(generator="", shift=" + 1")),
    ),
)

# --- make_gpt ----------------------------------------------------------------------------

GPT_CAUSAL = ("the model reads the future: mask the attention scores above the diagonal with -inf "
              "(torch.tril) before the softmax, so position t attends only to positions <= t.")
GPT_POSITIONS = ("add the position embeddings: x = wte(idx) + wpe(torch.arange(T)); without them attention "
                 "cannot tell the order of the tokens.")
GPT_SCALE = "divide the attention scores q @ k.T by sqrt(head_dim) before the softmax."
GPT_SCALE_WIDTH = ("divide the attention scores by sqrt(head_dim), head_dim = n_embd // n_head (the length of "
                   "one head's queries and keys), not by sqrt(n_embd).")
GPT_MASK_ZERO = ("set the masked scores to -inf, not 0: softmax turns a score of 0 into a weight exp(0) > 0, so the "
                 "future is still read; scores.masked_fill(~mask, float(\"-inf\")).")
GPT_GELU = ("use GELU in its tanh form, F.gelu(x, approximate=\"tanh\") (GPT-2's), not the exact form that "
            "F.gelu(x) and nn.GELU() compute by default.")
GPT_POST_LN = ("use pre-LN blocks: x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x)); the layer norm goes on each "
               "sub-layer's input, not on the sum (x = ln_1(x + attn(x)) is post-LN).")
GPT_NO_LN_F = "apply the final layer norm before the output layer: logits = lm_head(ln_f(x))."
GPT_HEADS = ("split the heads with .view(B, T, n_head, head_dim).transpose(1, 2), and join them with "
             ".transpose(1, 2).reshape(B, T, C): reshaping (B, T, C) straight to (B, n_head, T, head_dim) mixes "
             "positions into the heads.")
GPT_EPS = ("keep the layer norms' eps inside the square root, (x - mean) / sqrt(var + eps) with eps = 1e-5 "
           "(nn.LayerNorm's default): it matters when the features barely vary, as at the start of training.")
GPT_NOT_CAUSAL = "changing token t changed a logit at a position before t: the model must be causal."
GPT_OUTPUT = ("with the grader's weights loaded into it by name, the module's logits are not those of the "
              "notebook's GPT: check the order pre-LN block x + attn(ln_1(x)), x + mlp(ln_2(x)), GELU (tanh), "
              "ln_f, lm_head, and that forward uses the parameters it registers.")

# Each catalogued variant of the forward pass, tried on every set of weights: the first that
# reproduces the learner's logits on all of them names the mistake (None: the notebook's GPT).
GPT_VARIANTS: tuple[tuple[str | None, dict], ...] = ((None, {}), (GPT_CAUSAL, {"causal": False}), (GPT_POSITIONS, {"positions": False}),
                (GPT_SCALE, {"scale": "none"}), (GPT_SCALE_WIDTH, {"scale": "width"}),
                (GPT_MASK_ZERO, {"masked": "zero"}), (GPT_GELU, {"gelu": "erf"}), (GPT_POST_LN, {"pre_ln": False}),
                (GPT_NO_LN_F, {"final_ln": False}), (GPT_HEADS, {"heads": "reshape"}), (GPT_EPS, {"eps": 0.0}))


def parameters_problem(outputs, vocab_size, block_size, n_layer, n_embd) -> str | None:
    """None when the "param.<name>" entries are exactly the notebook's names and shapes."""
    want = O.gpt_shapes(vocab_size, block_size, n_layer, n_embd)
    got = {k[len("param."):]: v.shape for k, v in outputs.items() if k.startswith("param.")}
    problem = names_and_shapes_problem(got, want)
    return None if problem is None else (
        f"the parameters must have the notebook's names and shapes (named_parameters()): {problem}.")


def _gpt_params(outputs) -> dict:
    return {k[len("param."):]: v for k, v in outputs.items() if k.startswith("param.")}


def gpt_weight_draws(rng: np.random.Generator, vocab, block, n_layer, n_embd) -> list[dict[str, np.ndarray]]:
    """The sets of weights the judge loads into the learner's module.

    The first is GPT-2's start-up scale (weights N(0, 0.02)) with gains and biases drawn around
    1 and 0: the residual stream barely varies there, so a layer norm without eps shows. The
    second is large: every pre-activation reaches a few units, where the two forms of GELU, the
    scale of the scores and every other approximation show (at start-up they differ by < 1e-4).
    """
    draws = []
    for large in (False, True):
        w = {}
        for name, shape in O.gpt_shapes(vocab, block, n_layer, n_embd).items():
            if ".ln_" in name or name.startswith("ln_"):
                w[name] = (1.0 if name.endswith("weight") else 0.0) + 0.3 * rng.standard_normal(shape)
            elif name.endswith(".bias"):
                w[name] = (0.5 if large else 0.01) * rng.standard_normal(shape)
            elif name.startswith(("wte.", "wpe.")):
                w[name] = (1.0 if large else 0.02) * rng.standard_normal(shape)
            else:  # the MLP's output weighs most: its GELU is the smallest difference to show
                gain = {"mlp.c_proj.weight": 8.0, "mlp.c_fc.weight": 3.0}.get(name.split(".", 2)[-1], 2.0)
                w[name] = (gain / np.sqrt(shape[1]) if large else 0.02) * rng.standard_normal(shape)
        draws.append(w)
    return draws


def _gpt_call(rng, vocab, block, n_layer, n_head, n_embd, batch, T):
    x = rng.integers(0, vocab, (batch, T)).astype(np.int64)
    changed = x.copy()
    t = T // 2
    changed[:, t] = (x[:, t] + 1 + rng.integers(0, vocab - 1, batch)) % vocab
    probe_args = {"x": x, "x_changed": changed}
    for j, draw in enumerate(gpt_weight_draws(rng, vocab, block, n_layer, n_embd)):
        probe_args.update({f"weights{j}.{name}": value.astype(np.float32) for name, value in draw.items()})
    return Call((vocab, block, n_layer, n_head, n_embd), probe="gpt", probe_args=probe_args,
                held_out={"changed_at": np.asarray(t)})


def _draws_of(call: Call) -> list[dict[str, np.ndarray]]:
    draws: dict[int, dict] = {}
    for key, value in call.probe_args.items():
        if key.startswith("weights"):
            j, name = key[len("weights"):].split(".", 1)
            draws.setdefault(int(j), {})[name] = value
    return [draws[j] for j in sorted(draws)]


def agrees(got, want) -> bool:
    """The learner's float32 logits equal the judge's float64 ones; non-finite never agrees."""
    got = np.asarray(got, np.float64)
    if got.shape != want.shape or not np.all(np.isfinite(got)) or not np.all(np.isfinite(want)):
        return False
    return bool(np.allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max()))))


def judge_gpt(call: Call, outputs) -> str | None:
    vocab, block, n_layer, n_head, n_embd = call.args
    problem = parameters_problem(outputs, vocab, block, n_layer, n_embd)
    if problem:
        return problem
    x, changed = call.probe_args["x"], call.probe_args["x_changed"]
    draws = _draws_of(call)
    got = [outputs.get(f"output.{j}.x") for j in range(len(draws))]
    got_changed = outputs.get("output.0.x_changed")
    if any(g is None or g.shape != (*x.shape, vocab) for g in got) or got_changed is None \
            or got_changed.shape != got[0].shape:
        return f"the module must map ids (B, T) to logits (B, T, vocab_size) = {(*x.shape, vocab)}."
    with np.errstate(all="ignore"):
        for hint, variant in GPT_VARIANTS:
            if all(agrees(g, O.gpt_forward(w, x, n_head, **variant)) for g, w in zip(got, draws)):
                break
        else:
            return GPT_OUTPUT
        if hint:
            return hint
        t = int(call.held_out["changed_at"])
        if not np.allclose(got_changed[:, :t], got[0][:, :t], rtol=1e-5, atol=1e-6):
            return GPT_NOT_CAUSAL
        if not agrees(got_changed, O.gpt_forward(draws[0], changed, n_head)):
            return GPT_OUTPUT
    return None


_GPT_VISIBLE = (12, 8, 2, 2, 16, 3, 8)

GPT_CELL = """def make_gpt(vocab_size, block_size, n_layer, n_head, n_embd):
    return GPT(vocab_size, block_size, n_layer, n_head, n_embd)


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer("mask", torch.tril(torch.ones(block_size, block_size, dtype=torch.bool)))

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        {split}
        scores = q @ k.transpose(-2, -1){scale}
        {mask}
        y = F.softmax(scores, dim=-1) @ v
        return self.c_proj({join})


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj({gelu})


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd{eps})
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd{eps})
        self.mlp = MLP(n_embd)

    def forward(self, x):
        {block}


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd{eps})
        self.lm_head = nn.Linear(n_embd, vocab_size, bias={bias})

    def forward(self, idx):
        T = idx.shape[1]
        x = self.wte(idx){positions}
        for block in self.blocks:
            x = block(x)
        return self.lm_head({final})

"""
GPT_RIGHT = dict(scale=" / math.sqrt(C // self.n_head)",
                 mask='scores = scores.masked_fill(~self.mask[:T, :T], float("-inf"))',
                 bias="False", positions=" + self.wpe(torch.arange(T, device=idx.device))",
                 split="q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))",
                 join="y.transpose(1, 2).reshape(B, T, C)", gelu='F.gelu(self.c_fc(x), approximate="tanh")',
                 eps="", block="x = x + self.attn(self.ln_1(x))\n        return x + self.mlp(self.ln_2(x))",
                 final="self.ln_f(x)")


make_gpt = Exercise(
    name="make_gpt", points=3, title="The GPT model: embeddings, pre-LN blocks, causal attention",
    visible_calls=lambda: [_gpt_call(np.random.default_rng(71), *_GPT_VISIBLE)],
    hidden_calls=lambda rng: [_gpt_call(rng, 37, 12, 1, 4, 24, 2, 10), _gpt_call(rng, 20, 6, 3, 1, 8, 4, 6)],
    judge=judge_gpt,
    trusts=("the parameters' names and shapes, and the logits of the module with the judge's own weights loaded "
            "into it by name: compared with the judge's forward pass on those weights (non-finite never agrees)."),
    mistakes=(
        Mistake(GPT_CAUSAL, inject=GPT_CELL.format(**{**GPT_RIGHT, "mask": "pass"})),
        Mistake(GPT_POSITIONS, inject=GPT_CELL.format(**{**GPT_RIGHT, "positions": ""})),
        Mistake(GPT_SCALE, inject=GPT_CELL.format(**{**GPT_RIGHT, "scale": ""})),
        Mistake(GPT_SCALE_WIDTH, inject=GPT_CELL.format(**{**GPT_RIGHT, "scale": " / math.sqrt(C)"})),
        Mistake(GPT_MASK_ZERO, inject=GPT_CELL.format(**{**GPT_RIGHT, "mask": "scores = scores.masked_fill(~self.mask[:T, :T], 0.0)"})),
        Mistake(GPT_GELU, inject=GPT_CELL.format(**{**GPT_RIGHT, "gelu": "nn.GELU()(self.c_fc(x))"})),
        Mistake(GPT_POST_LN, inject=GPT_CELL.format(**{**GPT_RIGHT, "block": (
            "x = self.ln_1(x + self.attn(x))\n        return self.ln_2(x + self.mlp(x))")})),
        Mistake(GPT_NO_LN_F, inject=GPT_CELL.format(**{**GPT_RIGHT, "final": "x"})),
        Mistake(GPT_HEADS, inject=GPT_CELL.format(**{**GPT_RIGHT, "split": (
            "q, k, v = (t.reshape(B, self.n_head, T, C // self.n_head) for t in (q, k, v))"), "join": "y.reshape(B, T, C)"})),
        Mistake(GPT_EPS, inject=GPT_CELL.format(**{**GPT_RIGHT, "eps": ", eps=0.0"})),
        Mistake("the parameters must have the notebook's names and shapes (named_parameters()): "
                "unexpected lm_head.bias.", inject=GPT_CELL.format(**{**GPT_RIGHT, "bias": "True"})),
    ),
)

# --- lm_loss -----------------------------------------------------------------------------

LOSS_AXIS = ("average the loss over every position of every sequence (B * T terms), not over the batch "
             "only: flatten logits to (B*T, vocab) and targets to (B*T,).")
LOSS_ROW_MAX = ("subtract each row's maximum logit before exponentiating (log-sum-exp), or use "
                "F.cross_entropy: a row of large logits overflows exp() to inf.")
LOSS_SUM = ("return the mean loss over the B * T positions, not their sum: F.cross_entropy's default "
            "reduction=\"mean\" (a sum grows with the batch and the context, and so would the steps).")
LOSS_PROBABILITIES = ("cross-entropy takes the logits themselves: F.cross_entropy applies log-softmax; do not "
                      "apply softmax first.")


def _naive_loss(logits, targets):
    z = np.asarray(logits, np.float64)
    picked = np.take_along_axis(z, np.asarray(targets)[..., None], axis=-1)[..., 0]
    with np.errstate(all="ignore"):
        return float(np.mean(np.log(np.sum(np.exp(z), axis=-1)) - picked))


def _loss_call(rng, B, T, V, scales=(1.0,)):
    logits = rng.standard_normal((B, T, V))
    logits *= np.resize(np.asarray(scales, np.float64), B * T).reshape(B, T, 1)
    targets = rng.integers(0, V, (B, T)).astype(np.int64)
    return Call((Tensor("torch", logits), Tensor("torch", targets)), probe="kept")


def _softmax_np(z):
    return O.softmax(np.asarray(z, np.float64))


_LOSS_SIGNATURE = "def lm_loss(logits, targets):"

lm_loss = Exercise(
    name="lm_loss", points=1, title="The next-token loss",
    # rows whose logits differ wildly in scale: one near 1000, others near 0.01
    visible_calls=lambda: [_loss_call(np.random.default_rng(72), 2, 5, 7, scales=(1000.0, 0.01, 3.0))],
    hidden_calls=lambda rng: [_loss_call(rng, 4, 9, 30), _loss_call(rng, 3, 4, 11, scales=(1e-3, 800.0, 1.0, 50.0))],
    expected=O.lm_loss,
    judge=oracle_judge("lm_loss", ("logits", "targets")),
    trusts=("the returned arrays only: compared with the oracle's answer, computed here from the inputs sent, "
            "which must come back unchanged."),
    atol=1e-6,
    mistakes=(
        Mistake(LOSS_SUM, wrong=lambda z, t: O.lm_loss(z, t) * np.size(t),
                inject=_cell(_LOSS_SIGNATURE, """return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                       reduction="sum")""")),
        Mistake(LOSS_AXIS, wrong=lambda z, t: O.lm_loss(z, t) * np.shape(t)[1],
                inject=_cell(_LOSS_SIGNATURE, """B, T, V = logits.shape
losses = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction="none").view(B, T)
return losses.sum(dim=1).mean()""")),
        Mistake(LOSS_ROW_MAX, wrong=_naive_loss,
                inject=_cell(_LOSS_SIGNATURE, """picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
return (torch.log(torch.exp(logits).sum(dim=-1)) - picked).mean()""")),
        Mistake(LOSS_PROBABILITIES, wrong=lambda z, t: O.lm_loss(_softmax_np(z), t),
                inject=_cell(_LOSS_SIGNATURE, """probs = F.softmax(logits, dim=-1)
return F.cross_entropy(probs.reshape(-1, probs.shape[-1]), targets.reshape(-1))""")),
    ),
)

# --- lr_at -------------------------------------------------------------------------------

LR_NO_WARMUP = ("start with a linear warm-up: for step < warmup_steps the rate is max_lr * (step + 1) / "
                "warmup_steps, then the cosine decay begins.")
LR_WARMUP_FROM_ZERO = ("the warm-up is max_lr * (step + 1) / warmup_steps: step 0 already trains (at max_lr / "
                       "warmup_steps), and the last warm-up step reaches max_lr; step / warmup_steps gives 0 at step 0.")
LR_PROGRESS = ("the cosine starts when the warm-up ends: progress = (step - warmup_steps) / (total_steps - "
               "warmup_steps), which goes from 0 at the end of the warm-up to 1 at total_steps, not step / total_steps.")
LR_PAST_MIN = ("after total_steps the rate stays at min_lr: the cosine must not continue past the end of "
               "the schedule (where it would climb back towards max_lr).")
LR_TO_ZERO = ("the cosine goes from max_lr down to min_lr, not to 0: min_lr + 0.5 * (1 + cos(pi * "
              "progress)) * (max_lr - min_lr).")


def _cosine(step, max_lr, warmup, total, min_lr, floor=True):
    progress = (step - warmup) / max(1, total - warmup)
    return min_lr + 0.5 * (1 + np.cos(np.pi * progress)) * (max_lr - min_lr) if floor else \
        0.5 * (1 + np.cos(np.pi * progress)) * max_lr


def _only_in_warmup(step, warmup):
    """A mistake of the warm-up is told apart only on warm-up steps: after them, another mistake
    (of the cosine) can give the same value, and its own hint must win there."""
    if step >= warmup:
        raise ValueError("not a warm-up step")


def _lr_no_warmup(step, max_lr, warmup, total, min_lr):
    _only_in_warmup(step, warmup)
    return O.lr_at(step, max_lr, 0, total, min_lr)


def _lr_warmup_from_zero(step, max_lr, warmup, total, min_lr):
    _only_in_warmup(step, warmup)
    return max_lr * step / warmup


def _lr_progress(step, max_lr, warmup, total, min_lr):
    if step < warmup or step >= total:
        raise ValueError("not a cosine step")
    return min_lr + 0.5 * (1 + np.cos(np.pi * step / total)) * (max_lr - min_lr)


def _lr_past_min(step, max_lr, warmup, total, min_lr):
    return O.lr_at(step, max_lr, warmup, total, min_lr) if step < warmup else _cosine(step, max_lr, warmup, total, min_lr)


def _lr_to_zero(step, max_lr, warmup, total, min_lr):
    if step < warmup:
        return O.lr_at(step, max_lr, warmup, total, min_lr)
    return 0.0 if step >= total else _cosine(step, max_lr, warmup, total, min_lr, floor=False)


LR_CASE = (6e-3, 10, 100, 6e-4)
_LR_VISIBLE_STEPS = (0, 4, 9, 10, 55, 99, 100, 130)

_LR_CELL = """def lr_at(step, max_lr, warmup_steps, total_steps, min_lr):
    if step < warmup_steps:
        return {warm}
    if step >= total_steps:
        return {after}
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return {cosine}
"""
_LR_RIGHT = dict(warm="max_lr * (step + 1) / warmup_steps", after="min_lr",
                 cosine="min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (max_lr - min_lr)")

lr_at = Exercise(
    name="lr_at", points=1, title="Learning rate: linear warm-up, then cosine decay",
    visible_calls=lambda: [Call((s, *LR_CASE)) for s in _LR_VISIBLE_STEPS],
    hidden_calls=lambda rng: [Call((int(s), 1e-3, 5, 60, 1e-5)) for s in (0, 2, 5, 17, 59, 60, 200)]
    + [Call((int(rng.integers(0, 300)), 3e-4, 20, 250, 3e-5)) for _ in range(3)],
    expected=O.lr_at,
    rtol=1e-9, atol=1e-12,
    mistakes=(
        Mistake(LR_NO_WARMUP, wrong=_lr_no_warmup,
                inject=_LR_CELL.replace("if step < warmup_steps:\n        return {warm}\n    ", "").format(
                    **_LR_RIGHT).replace("(step - warmup_steps) / max(1, total_steps - warmup_steps)",
                                         "step / total_steps")),
        Mistake(LR_WARMUP_FROM_ZERO, wrong=_lr_warmup_from_zero,
                inject=_LR_CELL.format(**{**_LR_RIGHT, "warm": "max_lr * step / warmup_steps"})),
        Mistake(LR_PROGRESS, wrong=_lr_progress,
                inject=_LR_CELL.format(**_LR_RIGHT).replace(
                    "(step - warmup_steps) / max(1, total_steps - warmup_steps)", "step / total_steps")),
        Mistake(LR_PAST_MIN, wrong=_lr_past_min,
                inject=_LR_CELL.replace("    if step >= total_steps:\n        return {after}\n", "").format(**_LR_RIGHT)),
        Mistake(LR_TO_ZERO, wrong=_lr_to_zero,
                inject=_LR_CELL.format(**{**_LR_RIGHT, "after": "0.0",
                                          "cosine": "0.5 * (1 + math.cos(math.pi * progress)) * max_lr"})),
    ),
)

# --- train_gpt ---------------------------------------------------------------------------
#
# Two calls. The replay: a tiny float64 model, a handful of steps, whose trained parameters
# must equal the judge's own replay of the notebook's recipe (and recognise a recipe that
# decays everything, skips clipping, ignores the schedule or never clears the gradients). The
# held-out run: a reduced budget (GRADED below) whose parameters the judge scores itself.

TRAIN_DECAY_ALL = ("no weight decay on biases, layer norms and embeddings: put only the linear layers' weight "
                   "matrices (dim >= 2, not wte or wpe) in the group with weight_decay; the rest get 0.")
TRAIN_NO_CLIP = ("clip the gradients' global norm after loss.backward() and before optimizer.step(): "
                 "torch.nn.utils.clip_grad_norm_(model.parameters(), config['grad_clip']).")
TRAIN_NO_SCHEDULE = ("set every param group's 'lr' to lr_at(step, ...) at the start of each step: the rate "
                     "must warm up and then decay.")
TRAIN_NO_ZERO_GRAD = ("call optimizer.zero_grad() every step: otherwise each step's gradients are added to "
                      "all the previous ones.")
TRAIN_RECIPE = ("the trained parameters differ from the notebook's recipe: AdamW(betas=(0.9, 0.95), eps=1e-8), "
                "one get_batch per step from `generator`, lm_loss, clip, step, for config['max_steps'] steps.")
TRAIN_PARAMETERS = ("return (model, history) with the model it was given, trained: its parameters must keep "
                    "their names and shapes.")
TRAIN_HISTORY = ("return (model, history) with history = {\"train\": [loss.item() of each step, max_steps floats], "
                 "\"val\": [(step, value), ...] from config[\"evaluate\"], [] without it}: the demonstration plots both.")
TRAIN_LOSSES = ("history[\"train\"] must hold each step's loss.item(), the mean loss lm_loss(model(x), y) of that step's "
                "batch before the update: these are not the losses of the recipe.")
TRAIN_KEEPS_IDS = keep_hint("train_ids")
TRAIN_TARGET = ("the trained model's loss on the grader's held-out text is not clearly below the unigram "
                "baseline: check the recipe (the replay call passes?) and that the loss goes down.")

# The judge hands over its own small model (gpt_oracles.context_forward; not a GPT, so that
# nothing in the sandbox answers make_gpt): train_gpt needs only named_parameters() and model(x).
REPLAY = dict(vocab=23, block=6, n_embd=8)
REPLAY_CONFIG = {"max_steps": 5, "batch_size": 3, "block_size": 6, "max_lr": 1e-2, "min_lr": 1e-3,
                 "warmup_steps": 2, "weight_decay": 0.5, "grad_clip": 0.05}
# The graded run: byte-level ids (no tokenizer to train here), a model small enough to train on
# 2 CPU cores in a few seconds. Correct runs (10 seeds, measured) end 0.50 to 0.58 nats below
# the unigram baseline on the same held-out windows (about 2.95 against 3.47); a model that
# learned nothing beyond byte frequencies is at 0, an untrained one about 2 nats above.
GRADED = dict(vocab=256, block=32, n_embd=32)
GRADED_CONFIG = {"max_steps": 120, "batch_size": 32, "block_size": 32, "max_lr": 3e-2, "min_lr": 3e-3,
                 "warmup_steps": 12, "weight_decay": 0.1, "grad_clip": 1.0}
GRADED_TRAIN_CHARS = 600_000
GRADED_MARGIN = 0.15  # nats below the unigram baseline on the same held-out windows
GRADED_WINDOWS = 256


@lru_cache(maxsize=1)
def held_out_text() -> str:
    """The judge's held-out text: the source code of the trusted parts of this grading package.

    It is Python, like the training text, but not part of the standard library. The sandbox
    exposes only the system, the Python installation, the virtual environment and its own
    harness file (grader/sandbox/harness.py): the checking and grading code used here is absent
    there, so the learner's code cannot read it, and no argument of any call carries it. The
    sandbox package is left out (its harness is what the sandbox runs), and so are the standard
    library's validation modules, which learner code could read.
    """
    package = Path(__file__).resolve().parents[2]
    # only parts that the cluster's version fingerprint covers, so every worker judges alike
    files = sorted(p for part in ("checking", "grading") for p in (package / part).rglob("*.py"))
    return "".join(p.read_text(encoding="utf-8") for p in files)


@lru_cache(maxsize=1)
def graded_data() -> tuple[np.ndarray, np.ndarray]:
    """(training ids sent to the learner, held-out ids that stay here), as bytes."""
    train = np.frombuffer(training_text()[:GRADED_TRAIN_CHARS].encode("utf-8"), np.uint8).astype(np.int64)
    held = np.frombuffer(held_out_text().encode("utf-8"), np.uint8).astype(np.int64)
    return train, held


def _judge_model_weights(rng, shape: dict, dtype):
    return O.init_context_model(rng, shape["vocab"], shape["block"], shape["n_embd"], dtype=dtype)


def _replay_call(rng):
    weights = _judge_model_weights(rng, REPLAY, np.float64)
    weights = {k: w + 0.05 * rng.standard_normal(w.shape) for k, w in weights.items()}  # not a symmetric start
    ids = rng.integers(0, REPLAY["vocab"], 200).astype(np.int64)
    return Call((GPTModel(weights, 1), Tensor("torch", ids), dict(REPLAY_CONFIG),
                 TorchGenerator(int(rng.integers(0, 1 << 30)))), probe="gpt", probe_args={"history": np.asarray(1)})


def _graded_call(rng):
    weights = _judge_model_weights(rng, GRADED, np.float32)
    train, _ = graded_data()
    # the seed that picks the held-out windows stays on the trusted side (Call.held_out)
    return Call((GPTModel(weights, 1), Tensor("torch", train), dict(GRADED_CONFIG),
                 TorchGenerator(int(rng.integers(0, 1 << 30)))), probe="gpt", probe_args={"history": np.asarray(1)},
                held_out={"eval_seed": np.asarray(int(rng.integers(0, 1 << 30)))})


def held_out_loss(params: dict, seed: int) -> tuple[float, float]:
    """(the model's loss, the unigram baseline's loss) on the same GRADED_WINDOWS windows of
    held-out text chosen by ``seed``: the model's by the judge's own forward pass, the baseline
    from the training ids' byte counts. Comparing on the same windows cancels how hard they are."""
    import torch

    train, held = graded_data()
    T = GRADED["block"]
    starts = np.random.default_rng(seed).integers(0, len(held) - T - 1, GRADED_WINDOWS)
    x = np.stack([held[s:s + T] for s in starts])
    y = np.stack([held[s + 1:s + 1 + T] for s in starts])
    tensors = {k: torch.tensor(np.asarray(v, np.float64)) for k, v in params.items()}
    with O.one_thread(), torch.no_grad():
        logits = O.context_forward(tensors, torch.tensor(x)).numpy()
    with np.errstate(all="ignore"):
        loss = O.lm_loss(logits, y)
    counts = np.bincount(train, minlength=GRADED["vocab"]) + 1.0
    unigram = float(-np.mean(np.log(counts[y] / counts.sum())))
    return loss, unigram


def history_problem(outputs, config) -> str | None:
    """TRAIN_HISTORY unless the history is {"train": max_steps losses, "val": []} (no evaluate)."""
    if "history.malformed" in outputs or "history.train" not in outputs:
        return TRAIN_HISTORY
    train, val = outputs["history.train"], outputs.get("history.val", np.zeros((0, 2)))
    if train.shape != (config["max_steps"],) or val.size != 0:
        return TRAIN_HISTORY
    return None


def judge_train(call: Call, outputs) -> str | None:
    model, ids, config, generator = call.args
    params = _gpt_params(outputs)
    if {k: v.shape for k, v in params.items()} != {k: np.shape(v) for k, v in model.weights.items()}:
        return TRAIN_PARAMETERS
    if any(v.dtype.kind != "f" or not np.all(np.isfinite(v)) for v in params.values()):
        return "the trained parameters contain NaN or inf."
    if changed_argument(call, outputs, ("model", "train_ids", "config", "generator")):
        return TRAIN_KEEPS_IDS
    problem = history_problem(outputs, config)
    if problem:
        return problem
    if "eval_seed" in call.held_out:
        loss, unigram = held_out_loss(params, int(call.held_out["eval_seed"]))
        return None if loss <= unigram - GRADED_MARGIN else TRAIN_TARGET
    replay = dict(params=model.weights, train_ids=ids.value, config=config, seed=generator.seed)
    for hint, switches in ((None, {}), (TRAIN_DECAY_ALL, {"decay_all": True}), (TRAIN_NO_CLIP, {"clip": False}),
                           (TRAIN_NO_SCHEDULE, {"schedule": False}), (TRAIN_NO_ZERO_GRAD, {"zero_grad": False})):
        want, losses = O.train(**replay, **switches)
        if all(np.allclose(params[k], want[k], rtol=1e-6, atol=1e-9) for k in want):
            if hint is None and not np.allclose(outputs["history.train"], losses, rtol=1e-6, atol=1e-9):
                return TRAIN_LOSSES
            return hint
    return TRAIN_RECIPE


_TRAIN_CELL = '''def train_gpt(model, train_ids, config, generator):
    device = next(model.parameters()).device
    decay = [p for name, p in model.named_parameters() if {decayed}]
    other = [p for name, p in model.named_parameters() if not ({decayed})]
    optimizer = torch.optim.AdamW([{{"params": decay, "weight_decay": config["weight_decay"]}},
                                   {{"params": other, "weight_decay": 0.0}}],
                                  lr=config["max_lr"], betas=(0.9, 0.95), eps=1e-8)
    history = {history}
    for step in range(config["max_steps"]):
        lr = {lr}
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = get_batch(train_ids, config["block_size"], config["batch_size"], generator)
        loss = lm_loss(model(x.to(device)), y.to(device))
        {zero_grad}
        loss.backward()
        {clip}
        optimizer.step()
        {record}
    return model, history
'''
_TRAIN_RIGHT = dict(decayed='p.dim() >= 2 and not name.startswith(("wte.", "wpe."))',
                    lr='lr_at(step, config["max_lr"], config["warmup_steps"], config["max_steps"], config["min_lr"])',
                    zero_grad="optimizer.zero_grad(set_to_none=True)",
                    clip='torch.nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])',
                    history='{"train": [], "val": []}', record='history["train"].append(loss.item())')

train_gpt = Exercise(
    name="train_gpt", points=3, title="Training: AdamW, warm-up and cosine decay, clipping",
    visible_calls=lambda: [_replay_call(np.random.default_rng(73))],
    hidden_calls=lambda rng: [_replay_call(rng), _graded_call(rng)],
    judge=judge_train,
    trusts=("the trained parameters and the loss history: the replay's must equal the judge's own run of the "
            "recipe; the graded run's parameters are scored by the judge's forward pass on held-out text."),
    mistakes=(
        Mistake(TRAIN_HISTORY, inject=_TRAIN_CELL.format(**{**_TRAIN_RIGHT, "history": "[]",
                                                             "record": "history.append(loss.item())"})),
        Mistake(TRAIN_DECAY_ALL, inject=_TRAIN_CELL.format(**{**_TRAIN_RIGHT, "decayed": "True"})),
        Mistake(TRAIN_NO_CLIP, inject=_TRAIN_CELL.format(**{**_TRAIN_RIGHT, "clip": "pass"})),
        Mistake(TRAIN_NO_SCHEDULE, inject=_TRAIN_CELL.format(**{**_TRAIN_RIGHT, "lr": 'config["max_lr"]'})),
        Mistake(TRAIN_NO_ZERO_GRAD, inject=_TRAIN_CELL.format(**{**_TRAIN_RIGHT, "zero_grad": "pass"})),
    ),
    call_timeout=120.0,
)

# --- generate ----------------------------------------------------------------------------
#
# The judge's model: random weights whose logits sit around +10 (a shared direction in ln_f's
# bias and lm_head), so that sampling from the logits themselves is possible and reproducible,
# with a spread of about one nat between tokens.

GEN = dict(vocab=17, block=8, n_embd=12)
GEN_SHAPE = "return the ids, prompt included: a tensor of shape (B, T + max_new_tokens) whose first T columns are idx."
GEN_NO_SOFTMAX = ("turn the logits into probabilities with F.softmax(logits, dim=-1) before torch.multinomial: "
                  "it samples in proportion to its input.")
GEN_TEMPERATURE = ("divide the logits by the temperature before the softmax: these are the samples of "
                   "temperature 1 (dividing the probabilities instead changes nothing, since torch.multinomial "
                   "normalises them).")
GEN_TEMPERATURE_TIMES = ("divide the logits by the temperature, do not multiply them: a temperature below 1 must "
                         "sharpen the distribution (towards the argmax), one above 1 flatten it.")
GEN_TOP_K = ("a sampled token left the top k: keep the k largest logits (set the others to -inf) and sample "
             "from the whole vocabulary, so that the sample is a token id, not a place in the top-k list.")
GEN_CROP = ("the context grew past model.block_size: crop it to its last block_size tokens, "
            "idx[:, -model.block_size:], before each forward pass (the position embeddings stop there).")
GEN_GENERATOR = ("the samples are not those the recipe draws from `generator`: one torch.multinomial(probs, "
                 "num_samples=1, generator=generator) per step, and no other randomness.")


@lru_cache(maxsize=1)
def judge_model() -> GPTModel:
    g = GEN
    rng = np.random.default_rng(2026)
    w = O.init_context_model(rng, g["vocab"], g["block"], g["n_embd"], dtype=np.float64)
    # Large position embeddings: the mean of the context moves a lot when a context that was not
    # cropped repeats the last position, so sampling from it draws other tokens.
    w["wte.weight"] = rng.standard_normal(w["wte.weight"].shape)
    w["wpe.weight"] = 2.0 * rng.standard_normal(w["wpe.weight"].shape)
    # Feature 0 of the final layer norm is its bias alone (gain 0): every logit gets 2 * 5 = +10.
    w["ln_f.weight"] = np.ones(g["n_embd"])
    w["ln_f.weight"][0] = 0.0
    w["ln_f.bias"] = np.zeros(g["n_embd"])
    w["ln_f.bias"][0] = 2.0
    w["lm_head.weight"] = 0.35 * rng.standard_normal((g["vocab"], g["n_embd"]))
    w["lm_head.weight"][:, 0] = 5.0
    return GPTModel(w, 1)


def _gen_call(rng, batch, prompt, new, **kwargs):
    idx = rng.integers(0, GEN["vocab"], (batch, prompt)).astype(np.int64)
    if "seed" in kwargs:
        kwargs["generator"] = TorchGenerator(kwargs.pop("seed"))
    return Call((judge_model(), Tensor("torch", idx), new), kwargs=kwargs, probe="kept")


def _visible_gen_calls():
    rng = np.random.default_rng(74)
    # the first call tells every temperature mistake apart (at 1e-3 several sample alike)
    return [_gen_call(rng, 4, 3, 4, temperature=0.5, seed=3),
            _gen_call(rng, 3, 2, 4, temperature=1e-3, seed=1),        # near 0: the argmax path
            _gen_call(rng, 4, 3, 4, seed=2),                           # plain sampling
            _gen_call(rng, 4, 2, 5, top_k=3, seed=4),
            _gen_call(rng, 4, 6, 10, temperature=1.5, seed=5)]        # runs past block_size


def _hidden_gen_calls(rng):
    seed = int(rng.integers(0, 1 << 30))
    return [_gen_call(rng, 2, 3, 5, top_k=1, seed=seed),               # top-1: the argmax path
            _gen_call(rng, 5, 4, 6, temperature=1.7, top_k=5, seed=seed + 1),
            _gen_call(rng, 3, 7, 6, temperature=2e-3, seed=seed + 2)]  # huge scaled logits


def _gen_args(call: Call):
    model, idx, new = call.args
    kw = call.kwargs
    seed = kw["generator"].seed if kw.get("generator") is not None else None
    return dict(params=model.weights, block_size=GEN["block"], idx=idx.value,
                max_new_tokens=new, temperature=kw.get("temperature", 1.0), top_k=kw.get("top_k"), seed=seed)


def _outside_top_k(args, out) -> bool:
    import torch

    k = args["top_k"]
    tensors = {n: torch.tensor(np.asarray(v, np.float64)) for n, v in args["params"].items()}
    T0 = args["idx"].shape[1]
    with O.one_thread():
        return _outside(args, out, k, tensors, T0)


def _outside(args, out, k, tensors, T0) -> bool:
    import torch

    for step in range(out.shape[1] - T0):
        context = torch.tensor(out[:, max(0, T0 + step - args["block_size"]):T0 + step])
        with torch.no_grad():
            logits = O.context_forward(tensors, context)[:, -1, :].numpy()
        kth = np.sort(logits, axis=1)[:, -k][:, None]
        chosen = logits[np.arange(len(out)), out[:, T0 + step]]
        if np.any(chosen < kth[:, 0]):
            return True
    return False


def judge_generate(call: Call, outputs) -> str | None:
    args = _gen_args(call)
    idx, new = args["idx"], args["max_new_tokens"]
    if changed_argument(call, outputs, ("model", "idx", "max_new_tokens")):
        return keep_hint("idx")
    outputs = result_of(outputs)
    out = outputs.get("")
    if set(outputs) != {""} or out.shape != (idx.shape[0], idx.shape[1] + new) or out.dtype.kind not in "iu" \
            or not np.array_equal(out[:, :idx.shape[1]], idx):
        return GEN_SHAPE
    if np.array_equal(out, O.generate(**args)):
        return None
    if np.any(out < 0) or np.any(out >= GEN["vocab"]):
        return GEN_SHAPE
    for hint, switches in ((GEN_TEMPERATURE_TIMES, {"multiply": True}), (GEN_NO_SOFTMAX, {"softmax": False}),
                           (GEN_TEMPERATURE, {"temperature_first": False}),
                           (GEN_TOP_K, {"top_k_ids": False}), (GEN_CROP, {"crop": False})):
        try:
            with np.errstate(all="ignore"):
                if np.array_equal(out, O.generate(**args, **switches)):
                    return hint
        except (RuntimeError, ValueError):  # this mistake cannot run on these inputs
            continue
    if args["top_k"] is not None and _outside_top_k(args, out):
        return GEN_TOP_K
    return GEN_GENERATOR


_GEN_CELL = '''@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
    for _ in range(max_new_tokens):
        context = {context}
        logits = model(context)[:, -1, :]{scale}
        if top_k is not None:
            values, top_ids = torch.topk(logits, min(top_k, logits.shape[-1]))
            {top_k}
        probs = {probs}
        next_id = {draw}
        idx = torch.cat([idx, next_id], dim=1)
    return idx
'''
_GEN_RIGHT = dict(context="idx[:, -model.block_size:]", scale=" / temperature",
                  top_k='logits = logits.masked_fill(logits < values[:, [-1]], float("-inf"))',
                  probs="F.softmax(logits, dim=-1)",
                  draw="torch.multinomial(probs, num_samples=1, generator=generator)")

generate = Exercise(
    name="generate", points=2, title="Sampling: temperature and top-k",
    visible_calls=_visible_gen_calls,
    hidden_calls=_hidden_gen_calls,
    judge=judge_generate,
    trusts=("the returned ids only: the judge's own model gives the argmax path, the top-k sets and the tokens "
            "the recipe draws from a seeded generator; idx must come back unchanged."),
    mistakes=(
        Mistake(GEN_NO_SOFTMAX, inject=_GEN_CELL.format(**{**_GEN_RIGHT, "probs": "logits"})),
        Mistake(GEN_TEMPERATURE, inject=_GEN_CELL.format(
            **{**_GEN_RIGHT, "scale": "", "probs": "F.softmax(logits, dim=-1) / temperature"})),
        Mistake(GEN_TEMPERATURE, inject=_GEN_CELL.format(**{**_GEN_RIGHT, "scale": ""})),
        Mistake(GEN_TEMPERATURE_TIMES, inject=_GEN_CELL.format(**{**_GEN_RIGHT, "scale": " * temperature"})),
        Mistake(GEN_TOP_K, inject=_GEN_CELL.format(
            **{**_GEN_RIGHT, "top_k": "logits = values"})),
        Mistake(GEN_CROP, inject=_GEN_CELL.format(**{**_GEN_RIGHT, "context": "idx"})),
        Mistake(GEN_GENERATOR, inject=_GEN_CELL.format(
            **{**_GEN_RIGHT, "draw": "torch.multinomial(probs, num_samples=1)"})),
    ),
)

NOTEBOOK = NotebookSpec(
    name="07_gpt",
    exercises=(train_bpe, encode, decode, get_batch, make_gpt, lm_loss, lr_at, train_gpt, generate),
    # The demo cells run only where the course package can be imported (not in the sandbox);
    # on a learner's machine, without isolation, they train for a few minutes.
    cell_timeout=300.0,
    notebook_timeout=900.0,
    memory_bytes=6 << 30,
)
