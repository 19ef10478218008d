"""Notebook 07 (a small GPT): the references against independent implementations, the judges
against cheating and broken answers, and the notebook itself run top to bottom in a kernel.

The sandboxed grading of the solution, the release and every catalogued mistake is in
tests/test_notebooks.py (07_gpt is one of its notebooks).
"""
from __future__ import annotations

import json
import linecache
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from notebook_cases import ROOT
from sample_class import Student, _answer, _load, _write, write_class

from grader.checking import gpt_oracles as O
from grader.checking.corpus import MODULES, stdlib_corpus
from grader.checking.exercises import gpt as G
from grader.checking.judge import judge_calls
from grader.course import copy_course
from grader.grading.notebooks_io import is_test
from grader.sandbox import harness, jail, runner
from grader.sandbox.calls import call_in_process

torch.set_num_threads(1)


# --- tokenizer ------------------------------------------------------------------------------

def bpe_by_occurrence(text: str, vocab_size: int) -> list[tuple[int, int]]:
    """BPE written differently: every chunk occurrence kept separately (no counts), pairs
    counted by scanning, merged with a regex-free loop."""
    seqs = [list(c.encode("utf-8")) for c in O.PRETOKENIZE.findall(text)]
    merges = []
    for new_id in range(256, vocab_size):
        counts: dict = {}
        for seq in seqs:
            for i in range(len(seq) - 1):
                counts[(seq[i], seq[i + 1])] = counts.get((seq[i], seq[i + 1]), 0) + 1
        if not counts:
            break
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        merges.append(best)
        for k, seq in enumerate(seqs):
            out, i = [], 0
            while i < len(seq):
                if seq[i:i + 2] == list(best):
                    out.append(new_id)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            seqs[k] = out
    return merges


def encode_by_replaying(text: str, merges) -> list[int]:
    """Encoding written differently: apply every merge, in training order, to every chunk."""
    ids = []
    for chunk in O.PRETOKENIZE.findall(text):
        seq = list(chunk.encode("utf-8"))
        for i, pair in enumerate(merges):
            seq = O.merge_pair(seq, tuple(pair), 256 + i)
        ids.extend(seq)
    return ids


def test_bpe_matches_an_independent_implementation_on_python_source():
    text = stdlib_corpus().train[50_000:62_000] + " 中文分词 🙂🙂 naïve " * 5
    merges = O.train_bpe(text, 330)
    assert merges == bpe_by_occurrence(text, 330)
    sample = stdlib_corpus().validation[:4000] + "中 🚀"
    assert O.encode(sample, merges) == encode_by_replaying(sample, merges)


def test_bpe_tie_rule_worked_by_hand():
    # chunks "ab", " ab", " ba": pairs (a,b) x2, (32,a), (32,b), (b,a) x1 -> (a,b) = (97, 98) first;
    # then 256 stands for "ab": (32, 256) and (32, 98), (98, 97) once each -> the smallest, (32, 98)
    assert O.train_bpe("ab ab ba", 258) == [(97, 98), (32, 98)]
    assert O.train_bpe("ab ab ba", 258, tie="largest") == [(97, 98), (98, 97)]
    # first counted among the tied: chunk " ab" (now (32, 256)) is counted before " ba"
    assert O.train_bpe("ab ab ba", 258, tie="first") == [(97, 98), (32, 256)]


def test_overlapping_pairs_count_twice_worked_by_hand():
    # " aaa" x2 and " bc" x3: overlapping, (a, a) counts 2 per chunk = 4 > 3; counted as merge()
    # replaces it, once per chunk = 2 < 3, so (32, b) or (b, c) would come first
    assert O.train_bpe(" aaa aaa bc bc bc", 257) == [(97, 97)]
    assert O.train_bpe(" aaa aaa bc bc bc", 257, overlapping=False) == [(32, 98)]


def test_encode_orders_worked_by_hand():
    # merges: (a, b) -> 256, (b, c) -> 257; "abc": the earliest merge (a, b) wins -> [256, 99];
    # the latest first -> [97, 257]
    merges = [(97, 98), (98, 99)]
    assert O.encode("abc", merges) == [256, 99]
    assert O.encode("abc", merges, order="last") == [97, 257]
    # "bababa" holds (b, a) three times and (a, b) twice: by rank (a, b) first -> b [ab] [ab] a;
    # the most frequent pair first -> [ba] [ba] [ba]
    merges = [(97, 98), (100, 100), (98, 97)]
    assert O.encode("bababa", merges) == [98, 256, 256, 97]
    assert O.encode("bababa", merges, order="frequent") == [258, 258, 258]


# --- GPT-2's tokenizer ----------------------------------------------------------------------

GPT2_TEXTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine.",
    "def forward(self, x):\n    return self.c_proj(F.gelu(self.c_fc(x), approximate='tanh'))  # MLP\n",
    "大模型的训练需要大量的数据和计算。中文分词不是按空格。",
    "emoji 🙂🚀😀 and a ZWJ family 👩‍👩‍👧, flags 🇨🇳🇫🇷",
    "It's what they'd said: we're sure you'll see I'm right, they've gone. DON'T SHOUT, it'S odd",
    "a" + " " * 20 + "b\n\n\n    \t\t  x   \n",
    "Prices: 1234567 items at 3.14159, ٣٤٥ and x²; naïve café déjà vu",
]


@pytest.fixture(scope="module")
def gpt2_reference():
    """Hugging Face tokenizers' byte-level BPE from the same two files, offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from grader.checking.gpt2_tokenizer import FILES
    tokenizer = Tokenizer(models.BPE.from_file(str(FILES / "gpt2_vocab.json"), str(FILES / "gpt2_merges.txt")))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    return tokenizer


@pytest.mark.parametrize("text", GPT2_TEXTS)
def test_encode_with_gpt2_merges_gives_gpt2_ids(text, gpt2_reference):
    from grader.checking.gpt2_tokenizer import gpt2_merges, to_gpt2_ids

    ours = O.encode(text, gpt2_merges())
    assert to_gpt2_ids(ours) == gpt2_reference.encode(text).ids
    assert O.decode(ours, gpt2_merges()) == text


def test_gpt2_merges_number_tokens_as_gpt2_does():
    """Merge i is GPT-2's token 256 + i: the bytes of each merged token are its vocabulary entry."""
    from grader.checking.gpt2_tokenizer import FILES, byte_characters, gpt2_merges

    vocab = json.loads((FILES / "gpt2_vocab.json").read_text(encoding="utf-8"))
    merges = gpt2_merges()
    assert len(merges) == 50_000 and len(vocab) == 50_257
    chars = byte_characters()
    strings = chars + ["".join(chars[b] for b in token) for token in O.token_bytes(merges)[256:]]
    assert all(vocab[strings[i]] == i for i in range(256, len(strings)))


def test_a_merge_can_split_a_multibyte_character_and_decode_still_round_trips():
    text = " 中文 中国 中间 " * 20
    merges = O.train_bpe(text, 262)
    first = "中".encode("utf-8")[0]
    assert (32, first) in merges  # a space joined to the first byte of a 3-byte character
    ids = O.encode(text, merges)
    assert O.decode(ids, merges) == text
    vocab = O.token_bytes(merges)
    per_token = "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)
    assert per_token != text and "\ufffd" in per_token  # the catalogued mistake, reproduced


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80))
def test_chunks_cover_the_text_and_decode_inverts_encode(text):
    assert "".join(O.chunks(text)) == text
    merges = G._merges_for(G.BPE_TEXT + G.CHINESE_AND_EMOJI * 4, 300)
    assert O.decode(O.encode(text, merges), merges) == text


@pytest.mark.parametrize("text", ["中文分词：大模型", "emoji 🙂🚀😀 and ZWJ 👩‍💻", "naïve café", "", "\n\t  x"])
def test_round_trip_on_chinese_and_emoji(text):
    merges = O.train_bpe(G.CHINESE_AND_EMOJI * 3 + text * 3, 290)
    assert O.decode(O.encode(text, merges), merges) == text


def test_decode_replaces_invalid_utf8():
    assert O.decode([0xE4, 0xB8], []) == "\ufffd"
    assert O.decode(list("中".encode()), []) == "中"


# --- model, loss, schedule ---------------------------------------------------------------

def hf_gpt2(params: dict, n_head: int, activation: str = "gelu_new"):
    """Hugging Face's GPT2LMHeadModel holding ``params`` (its Conv1D weights are transposed;
    lm_head untied, as the notebook's)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    V, C = params["wte.weight"].shape
    n_layer = len({k.split(".")[1] for k in params if k.startswith("blocks.")})
    config = GPT2Config(vocab_size=V, n_positions=params["wpe.weight"].shape[0], n_embd=C, n_layer=n_layer,
                        n_head=n_head, activation_function=activation, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=False)
    model = GPT2LMHeadModel(config).double().eval()
    state = {}
    for name, value in params.items():
        hf = "transformer." + name.replace("blocks.", "h.") if name != "lm_head.weight" else name
        transposed = name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
        state[hf] = torch.tensor(value.T if transposed else value)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all(".attn.bias" in m or "masked_bias" in m for m in missing), (missing, unexpected)
    return model


def large_params(rng, V, T, L, C):
    params = O.init_gpt(rng, V, T, L, C, dtype=np.float64)
    return {k: v + (0.5 if v.ndim == 2 else 0.3) * rng.standard_normal(v.shape) for k, v in params.items()}


def test_numpy_forward_matches_hugging_face_gpt2_and_the_gelu_variant_its_exact_form():
    rng = np.random.default_rng(0)
    params = large_params(rng, 29, 10, 2, 16)
    idx = rng.integers(0, 29, (3, 10))
    with torch.no_grad():
        for activation, variant in (("gelu_new", {}), ("gelu", {"gelu": "erf"})):
            want = hf_gpt2(params, 4, activation)(torch.tensor(idx)).logits.numpy()
            np.testing.assert_allclose(O.gpt_forward(params, idx, 4, **variant), want, rtol=1e-9, atol=1e-10)


def test_context_model_in_the_harness_matches_its_functional_reference():
    rng = np.random.default_rng(1)
    params = O.init_context_model(rng, 19, 6, 8, dtype=np.float64)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}
    module = harness.build_context_model(params)
    assert [n for n, _ in module.named_parameters()] == list(O.context_model_shapes(19, 6, 8))
    assert module.block_size == 6 and not hasattr(module, "blocks")  # not a GPT: nothing answers make_gpt
    idx = torch.tensor(rng.integers(0, 19, (2, 9)))  # past block_size: the last position again
    with torch.no_grad():
        functional = O.context_forward({k: torch.tensor(v) for k, v in params.items()}, idx)
        np.testing.assert_allclose(module(idx).numpy(), functional.numpy(), rtol=1e-12, atol=1e-12)
        x = torch.tensor(params["wte.weight"])[idx] + torch.tensor(params["wpe.weight"])[[0, 1, 2, 3, 4, 5, 5, 5, 5]]
        mean = torch.stack([x[:, :t + 1].mean(dim=1) for t in range(9)], dim=1)
        by_hand = F.layer_norm(x + mean, (8,), torch.tensor(params["ln_f.weight"]), torch.tensor(params["ln_f.bias"]))
        np.testing.assert_allclose(functional.numpy(), (by_hand @ torch.tensor(params["lm_head.weight"]).T).numpy(),
                                   rtol=1e-12, atol=1e-12)


def test_no_reference_gpt_in_any_file_the_sandbox_reads():
    source = Path(harness.__file__).read_text(encoding="utf-8")
    for word in ("c_attn", "c_fc", "ln_1", "softmax", "gelu", "blocks"):
        assert word not in source, word


def test_numpy_forward_is_causal_and_the_switches_break_it():
    rng = np.random.default_rng(1)
    params = large_params(rng, 13, 8, 1, 8)
    idx = rng.integers(0, 13, (2, 8))
    changed = idx.copy()
    changed[:, 5] = (idx[:, 5] + 1) % 13
    for causal in (True, False):
        a, b = O.gpt_forward(params, idx, 2, causal=causal), O.gpt_forward(params, changed, 2, causal=causal)
        assert np.allclose(a[:, :5], b[:, :5]) == causal
        assert not np.allclose(a[:, 5:], b[:, 5:])
    # every catalogued variant changes the logits (eps only where the features barely vary, at
    # start-up scale), and a zero-masked score reads the future
    right = O.gpt_forward(params, idx, 2)
    for hint, variant in G.GPT_VARIANTS[1:]:
        if variant != {"eps": 0.0}:
            assert not np.allclose(O.gpt_forward(params, idx, 2, **variant), right, rtol=1e-3), hint
    startup = O.init_gpt(rng, 13, 8, 1, 8, dtype=np.float64)
    assert not np.allclose(O.gpt_forward(startup, idx, 2, eps=0.0), O.gpt_forward(startup, idx, 2), rtol=1e-3)
    zero = O.gpt_forward(params, idx, 2, masked="zero"), O.gpt_forward(params, changed, 2, masked="zero")
    assert not np.allclose(zero[0][:, :5], zero[1][:, :5])


def test_the_judges_weights_show_every_variant_far_beyond_its_tolerance():
    """On the visible call, each catalogued variant misses on at least one set of weights by
    5 times the tolerance or more; at GPT-2's start-up scale alone, GELU's two forms agree."""
    call = G.make_gpt.visible_calls()[0]
    vocab, block, n_layer, n_head, n_embd = call.args
    x = call.probe_args["x"]
    draws = G._draws_of(call)
    for hint, variant in G.GPT_VARIANTS[1:]:
        worst = max(float(np.max(np.abs(O.gpt_forward(w, x, n_head, **variant) - (want := O.gpt_forward(w, x, n_head)))
                                 / (1e-4 * np.abs(want) + 1e-5 * max(1.0, float(np.abs(want).max())))))
                    for w in draws)
        assert worst > 5, (hint, worst)
    startup = O.init_gpt(np.random.default_rng(2), vocab, block, n_layer, n_embd, dtype=np.float64)
    gap = np.abs(O.gpt_forward(startup, x, n_head, gelu="erf") - O.gpt_forward(startup, x, n_head)).max()
    assert gap < 1e-4


def test_parameter_count_matches_the_notebooks_table():
    C, V, T, L = 64, 512, 64, 2
    count = sum(math.prod(s) for s in O.gpt_shapes(V, T, L, C).values())
    assert count == 2 * V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C


def test_the_gpu_model_is_about_17_times_the_cpu_one():
    """Notebook 07's counts: 169,728 parameters (2 layers, 64 wide) and 2,890,752 (6 layers,
    192 wide, context 128): 17.0 times; 26.7 times without wte, wpe and lm_head."""
    def count(T, L, C, embeddings=True):
        return sum(math.prod(s) for n, s in O.gpt_shapes(512, T, L, C).items()
                   if embeddings or not n.startswith(("wte.", "wpe.", "lm_head.")))
    small, big = count(64, 2, 64), count(128, 6, 192)
    assert (small, big) == (169_728, 2_890_752)
    assert round(big / small, 1) == 17.0
    assert round(count(128, 6, 192, False) / count(64, 2, 64, False), 1) == 26.7
    notebook = (ROOT / "solutions/07_gpt/07_gpt.ipynb").read_text(encoding="utf-8")
    assert "about 17 times larger" in notebook and "30 times" not in notebook


def test_lm_loss_matches_torch_cross_entropy_at_any_scale():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((3, 4, 9)) * np.array([1e-3, 1.0, 900.0])[:, None, None]
    targets = rng.integers(0, 9, (3, 4))
    want = F.cross_entropy(torch.tensor(logits).reshape(-1, 9), torch.tensor(targets).reshape(-1)).item()
    assert np.isfinite(O.lm_loss(logits, targets))
    assert O.lm_loss(logits, targets) == pytest.approx(want, rel=1e-12)
    assert O.lm_loss(np.zeros((1, 2, 512)), np.zeros((1, 2), int)) == pytest.approx(math.log(512))


def test_lr_schedule_at_its_landmarks():
    max_lr, warm, total, min_lr = 6e-3, 10, 110, 6e-4
    assert O.lr_at(0, max_lr, warm, total, min_lr) == pytest.approx(max_lr / warm)
    assert O.lr_at(warm - 1, max_lr, warm, total, min_lr) == pytest.approx(max_lr)
    assert O.lr_at(warm, max_lr, warm, total, min_lr) == pytest.approx(max_lr)
    assert O.lr_at(60, max_lr, warm, total, min_lr) == pytest.approx((max_lr + min_lr) / 2)
    assert O.lr_at(total, max_lr, warm, total, min_lr) == pytest.approx(min_lr)
    assert O.lr_at(10 * total, max_lr, warm, total, min_lr) == pytest.approx(min_lr)
    steps = [O.lr_at(s, max_lr, warm, total, min_lr) for s in range(warm, total + 1)]
    assert all(a >= b for a, b in zip(steps, steps[1:]))


def test_count_baselines_match_direct_counting():
    ids = np.array([0, 1, 2, 1, 0, 1, 2, 2, 1])
    uni = Counter(ids.tolist())
    want = -np.mean([math.log((uni[t] + 1) / (len(ids) + 3)) for t in ids])
    assert O.count_baseline(ids, ids, 3, 1) == pytest.approx(want)
    follows = Counter(zip(ids[:-1].tolist(), ids[1:].tolist()))
    prev = Counter(ids[:-1].tolist())
    want2 = -np.mean([math.log((follows[(a, b)] + 1) / (prev[a] + 3)) for a, b in zip(ids[:-1], ids[1:])])
    assert O.count_baseline(ids, ids, 3, 2) == pytest.approx(want2)


def test_training_replay_reproduces_torch_adamw_on_a_module():
    """The judge's replay (functional forward, its own AdamW groups) against the same recipe run
    on the harness's nn.Module with torch.optim.AdamW, written out here."""
    call = G._replay_call(np.random.default_rng(3))
    model_arg, ids, config, gen = call.args
    want, want_losses = O.train(model_arg.weights, ids.value, config, gen.seed)
    model = harness.build_context_model(model_arg.weights)
    losses = []
    named = dict(model.named_parameters())
    decay = [p for n, p in named.items() if p.dim() >= 2 and not n.startswith(("wte", "wpe"))]
    rest = [p for n, p in named.items() if not (p.dim() >= 2 and not n.startswith(("wte", "wpe")))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config["weight_decay"]},
                             {"params": rest, "weight_decay": 0.0}], betas=(0.9, 0.95), eps=1e-8)
    generator = torch.Generator().manual_seed(gen.seed)
    ids_t = torch.tensor(ids.value)
    for step in range(config["max_steps"]):
        for g in opt.param_groups:
            g["lr"] = O.lr_at(step, config["max_lr"], config["warmup_steps"], config["max_steps"], config["min_lr"])
        starts = torch.randint(len(ids_t) - config["block_size"], (config["batch_size"],), generator=generator)
        x = torch.stack([ids_t[s:s + config["block_size"]] for s in starts])
        y = torch.stack([ids_t[s + 1:s + 1 + config["block_size"]] for s in starts])
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), config["grad_clip"])
        opt.step()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.detach().numpy(), want[name], rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-12)
    # each catalogued training mistake changes the result beyond the judge's tolerance
    for switch in ({"decay_all": True}, {"clip": False}, {"schedule": False}, {"zero_grad": False}):
        wrong, _ = O.train(model_arg.weights, ids.value, config, gen.seed, **switch)
        assert not all(np.allclose(wrong[k], want[k], rtol=1e-6, atol=1e-9) for k in want), switch


# --- judges: trust -----------------------------------------------------------------------

def test_held_out_text_is_invisible_to_the_sandbox():
    """The judge's held-out text lies in the course package, which the sandbox never mounts."""
    package = Path(G.__file__).resolve().parents[1]
    mounted = [Path(p).resolve() for p in jail.SYSTEM_PATHS + runner.python_paths()]
    assert not any(package == m or m in package.parents for m in mounted), (package, mounted)
    text = G.held_out_text()
    assert len(text) > 100_000 and "def judge_train" in text
    # the sandbox runs its own copy of the harness: none of it is held out
    assert Path(harness.__file__).read_text(encoding="utf-8")[2000:2200] not in text
    # the seed that picks the windows stays on the trusted side
    call = G._graded_call(np.random.default_rng(0))
    assert "eval_seed" in call.held_out and "eval_seed" not in call.probe_args
    corpus = stdlib_corpus()
    assert text[5000:5200] not in corpus.train and text[5000:5200] not in corpus.validation


def test_corpus_is_the_fixed_module_list_split_by_file():
    corpus = stdlib_corpus()
    assert list(MODULES) == sorted(MODULES) and len(MODULES) == 61
    assert set(corpus.train_modules).isdisjoint(corpus.validation_modules)
    assert len(corpus.validation_modules) == 7 and 2.0 < corpus.megabytes < 4.0


def _graded(fn, exercise, calls):
    return judge_calls(exercise, calls, [call_in_process(fn, exercise.name, c) for c in calls])


def test_train_gpt_judge_rejects_a_lookup_model_and_an_untrained_one():
    call = G._graded_call(np.random.default_rng(4))

    class Lookup(nn.Module):
        """Returns memorised answers from its forward; its one parameter is the wrong shape."""

        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.zeros(256, 256))

        def forward(self, idx):
            return self.table[idx]

    assert _graded(lambda *a: (Lookup(), []), G.train_gpt, [call]).hint == G.TRAIN_PARAMETERS

    def untrained(model, ids, config, generator):
        model.forward = lambda idx: torch.zeros(*idx.shape, 256)  # a forward the judge never runs
        return model, {"train": [5.0 - 0.01 * i for i in range(config["max_steps"])], "val": []}

    assert _graded(untrained, G.train_gpt, [call]).hint == G.TRAIN_TARGET
    # the history the demonstration needs: a list instead of the dict, or losses that are tensors
    assert _graded(lambda m, i, c, g: (m, [0.0] * c["max_steps"]), G.train_gpt, [call]).hint == G.TRAIN_HISTORY
    as_tensors = {"train": [torch.tensor(1.0)] * GRADED_STEPS, "val": []}
    assert _graded(lambda m, i, c, g: (m, as_tensors), G.train_gpt, [call]).hint == G.TRAIN_HISTORY

    def changes_ids(model, ids, config, generator):
        ids[0] = 0
        return model, {"train": [1.0] * config["max_steps"], "val": []}

    assert _graded(changes_ids, G.train_gpt, [call]).hint == G.TRAIN_KEEPS_IDS


GRADED_STEPS = G.GRADED_CONFIG["max_steps"]


def test_train_gpt_with_a_summed_loss_fails_its_visible_check():
    """Issue #23: lm_loss(reduction="sum") gave train_gpt full marks in the notebook (AdamW is
    almost blind to the scale of the loss); the history of losses now differs from the replay."""
    nb = nbformat.read(ROOT / "solutions/07_gpt/07_gpt.ipynb", as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in ("imports", "get_batch", "lr_at", "lm_loss", "train_gpt"):
            exec(cell.source, namespace)
    calls = G.train_gpt.visible_calls()
    assert _graded(namespace["train_gpt"], G.train_gpt, calls).passed
    exec(next(m.inject for m in G.lm_loss.mistakes if m.hint == G.LOSS_SUM), namespace)
    assert _graded(namespace["train_gpt"], G.train_gpt, calls).hint in (G.TRAIN_LOSSES, G.TRAIN_RECIPE)


def test_inputs_left_unchanged_everywhere():
    """Every function of 07 that takes a tensor or a list must hand it back unchanged."""
    def sorted_merges(text, merges):
        merges.sort()
        return O.encode(text, merges)

    def scaled_in_place(logits, targets):
        logits.mul_(1.0)
        targets[0, 0] = 0
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def batch_then_shuffle(ids, block_size, batch_size, generator):
        x, y = O.get_batch(ids.numpy(), block_size, batch_size, int(generator.initial_seed()))
        ids[:] = ids.flip(0)
        return torch.tensor(x), torch.tensor(y)

    for fn, exercise, name in ((sorted_merges, G.encode, "merges"), (scaled_in_place, G.lm_loss, "targets"),
                               (batch_then_shuffle, G.get_batch, "ids")):
        assert _graded(fn, exercise, exercise.visible_calls()).hint == G.keep_hint(name), exercise.name
    # and the stated return format: token ids are ints
    floats = _graded(lambda text, merges: [float(i) for i in O.encode(text, merges)], G.encode, G.encode.visible_calls())
    assert floats.hint == "return the token ids as a list of ints."


def solution_make_gpt(edit=lambda source: source):
    """make_gpt as the solution notebook defines it (its imports and its answer cell, edited by
    ``edit``), compiled under a Jupyter cell's file name so that errors are located as in a kernel."""
    nb = nbformat.read(ROOT / "solutions/07_gpt/07_gpt.ipynb", as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in ("imports", "make_gpt"):
            source = edit(cell.source) if gid == "make_gpt" else cell.source
            filename = f"/tmp/ipykernel_7/{gid}.py"
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
            exec(compile(source, filename, "exec"), namespace)
    return namespace["make_gpt"]


def test_an_error_in_a_module_of_the_model_cell_is_located_in_the_make_gpt_cell():
    """The .view of a non-contiguous split raises inside CausalSelfAttention.forward: the hint names
    the make_gpt cell (its first function) and the line, not "your __init__ cell"."""
    make_gpt = solution_make_gpt(lambda source: source.replace(
        "t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)", "t.view(B, self.n_head, T, C // self.n_head)"))
    hint = _graded(make_gpt, G.make_gpt, G.make_gpt.visible_calls()).hint
    assert "of your make_gpt cell, `q, k, v = (t.view(B, self.n_head, T, C // self.n_head)" in hint, hint


def test_solution_module_with_weights_loaded_by_name_equals_hugging_face_gpt2():
    """The notebook's names and shapes are GPT-2's (renamed under transformer.h, Conv1D transposed)."""
    rng = np.random.default_rng(7)
    params = large_params(rng, 31, 9, 2, 24)
    model = solution_make_gpt()(31, 9, 2, 3, 24).double()
    model.load_state_dict({**model.state_dict(), **{k: torch.tensor(v) for k, v in params.items()}}, strict=True)
    idx = torch.tensor(rng.integers(0, 31, (2, 9)))
    with torch.no_grad():
        np.testing.assert_allclose(model(idx).numpy(), hf_gpt2(params, 3)(idx).logits.numpy(), rtol=1e-9, atol=1e-10)


def test_make_gpt_judge_rejects_modules_that_do_not_compute_with_their_parameters():
    """Issue #22: modules whose logits ignore their parameters, or whose reported parameters are
    not the ones they use, or are all inf. The judge loads its own weights by name and compares."""
    make_gpt = solution_make_gpt()
    calls = G.make_gpt.visible_calls()
    assert _graded(make_gpt, G.make_gpt, calls).passed

    def zero_logits(*args):
        model = make_gpt(*args)
        model.forward = lambda idx: torch.zeros(*idx.shape, args[0])
        return model

    def hidden_copy(*args):
        """Computes with a private copy of its weights; reports zeros under the right names."""
        model, shadow = make_gpt(*args), make_gpt(*args)
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        model.forward = shadow.forward
        return model

    def all_inf(*args):
        model = make_gpt(*args)
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float("inf"))
        model.forward = lambda idx: torch.full((*idx.shape, args[0]), float("inf"))
        return model

    def gain_zero(*args):
        """A final layer-norm gain of 0 fixed inside forward: the logits no longer depend on the weights."""
        model = make_gpt(*args)
        forward = model.forward

        def fixed(idx):
            with torch.no_grad():
                model.ln_f.weight.zero_()
            return forward(idx)
        model.forward = fixed
        return model

    for cheat in (zero_logits, hidden_copy, all_inf, gain_zero):
        assert _graded(cheat, G.make_gpt, calls).hint == G.GPT_OUTPUT, cheat.__name__


def test_get_batch_judge_requires_the_generator():
    def global_rng(ids, block_size, batch_size, generator):
        starts = torch.randint(len(ids) - block_size, (batch_size,))
        return (torch.stack([ids[s:s + block_size] for s in starts]),
                torch.stack([ids[s + 1:s + 1 + block_size] for s in starts]))

    torch.manual_seed(0)
    assert _graded(global_rng, G.get_batch, G.get_batch.visible_calls()).hint == G.BATCH_GENERATOR
    x1, _ = O.get_batch(np.arange(100), 5, 4, seed=9)
    x2, _ = O.get_batch(np.arange(100), 5, 4, seed=9)
    x3, _ = O.get_batch(np.arange(100), 5, 4, seed=10)
    assert np.array_equal(x1, x2) and not np.array_equal(x1, x3)


def test_generate_judge_knows_the_argmax_path_and_the_top_k_set():
    model = G.judge_model()
    idx = np.random.default_rng(5).integers(0, G.GEN["vocab"], (3, 2))
    args = dict(params=model.weights, block_size=G.GEN["block"], idx=idx, max_new_tokens=5)
    greedy = O.generate(**args, temperature=1e-3, seed=1)
    assert np.array_equal(greedy, O.generate(**args, top_k=1, seed=2))  # both are the argmax path
    sampled = O.generate(**args, temperature=1.0, top_k=3, seed=3)
    assert not G._outside_top_k({**args, "top_k": 3}, sampled)
    wrong = O.generate(**args, temperature=1.0, top_k=3, seed=3, top_k_ids=False)
    assert np.all(wrong[:, 2:] < 3)  # places in the top-k list, not token ids


def test_softmax_exercises_have_calls_whose_rows_differ_wildly_in_scale():
    for exercise in (G.lm_loss,):
        scales = [np.abs(c.args[0].value).max(axis=-1) for c in exercise.visible_calls()]
        assert any(s.max() / s.min() > 1e4 for s in scales)
    temperatures = [c.kwargs.get("temperature", 1.0) for c in G.generate.hidden_calls(np.random.default_rng(0))]
    assert min(temperatures) < 1e-2  # logits around +10 divided by it: naive exp() overflows


def test_every_exercise_of_07_says_what_it_trusts():
    for exercise in G.NOTEBOOK.exercises:
        assert exercise.trust, exercise.name
        if exercise.judge is not None:
            assert exercise.trusts, f"{exercise.name} has its own judge and needs its own trusts"


def test_notebook_07_catalogues_at_least_15_mistakes():
    assert sum(len(e.mistakes) for e in G.NOTEBOOK.exercises) >= 15


# --- the notebook itself, in a kernel ------------------------------------------------------

QUICK_STEPS = 30


def test_solution_runs_top_to_bottom_in_a_kernel_with_demos(tmp_path):
    """Every cell, the closing sections included, with the demonstration's training budget cut
    to QUICK_STEPS (the full budget is measured by bench/notebooks.py)."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "solutions/07_gpt/07_gpt.ipynb", as_version=4)
    budget = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("TRAIN_STEPS = ")]
    assert len(budget) == 1
    budget[0].source = f"TRAIN_STEPS = {QUICK_STEPS}"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = {i: "".join(o.get("text", "") for o in c.outputs) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    tests = "".join(printed[i] for i, c in enumerate(nb.cells) if is_test(c))
    assert tests.count("visible checks passed") == 9 and tests.count("hidden checks passed") == 9
    everything = "".join(printed.values())
    assert "MB of Python" in everything and "validation loss of the baselines" in everything
    assert f"{QUICK_STEPS} steps in" in everything and "--- temperature 1.3" in everything
    assert "your encode gives GPT-2's 22 token ids" in everything and "perplexity" in everything


def test_every_assert_of_the_notebook_says_what_went_wrong():
    """A visible assert that fails must print a message, not an empty AssertionError."""
    import ast

    nb = nbformat.read(ROOT / "solutions/07_gpt/07_gpt.ipynb", as_version=4)
    asserts = [node for cell in nb.cells if cell.cell_type == "code"
               for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Assert)]
    assert asserts and all(node.msg is not None for node in asserts)


# =========================================================================================
# A small class of 07, graded by `grader autograde` and `grader check` in the sandbox
# =========================================================================================

ASSIGNMENT_07 = "07_gpt"
SOLUTION_07 = ROOT / "solutions/07_gpt/07_gpt.ipynb"
RELEASE_07 = ROOT / "notebooks/07_gpt/07_gpt.ipynb"

UNTRAINED_WITH_A_FAKE_HISTORY = (
    "def train_gpt(model, train_ids, config, generator):\n"
    "    # no training at all, and a loss history that looks like a good run\n"
    "    return model, {'train': [5.0 - 0.001 * i for i in range(config['max_steps'])], 'val': []}\n")


def _solution_with(gid: str, source: str):
    def make(path: Path):
        nb = _load(SOLUTION_07)
        _answer(nb, gid).source = source
        _write(nb, path)
    return make


# Points: train_bpe 2, encode 1, decode 1, get_batch 1, make_gpt 3, lm_loss 1, lr_at 1,
# train_gpt 3 (judged on the judge's own model), generate 2 (on the judge's own weights); 15.
STUDENTS_07 = [
    Student("correct", 15, "", lambda p: _write(_load(SOLUTION_07), p)),
    Student("untouched", 0, "not implemented yet", lambda p: p.write_bytes(RELEASE_07.read_bytes())),
    Student("reads_the_future", 12, "the model reads the future", _solution_with("make_gpt", next(
        m.inject for m in G.make_gpt.mistakes if m.hint == G.GPT_CAUSAL))),
    Student("fake_training", 12, "train_gpt", _solution_with("train_gpt", UNTRAINED_WITH_A_FAKE_HISTORY)),
]


@pytest.fixture(scope="module")
def graded_class_07(tmp_path_factory):
    base = tmp_path_factory.mktemp("class07")
    course = copy_course(base / "course")
    submitted = write_class(base / "submitted", STUDENTS_07, ASSIGNMENT_07)
    done = subprocess.run([sys.executable, "-m", "grader", "autograde", ASSIGNMENT_07, str(submitted),
                           "--jobs", "2", "--json", "--course-dir", str(course)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return base, course, {row["student"]: row for row in json.loads(done.stdout)}


def test_class_of_07_gets_exactly_the_expected_scores_and_reasons(graded_class_07):
    _, course, summary = graded_class_07
    assert {s: row["score"] for s, row in summary.items()} == {s.name: s.score for s in STUDENTS_07}
    for student in STUDENTS_07:
        manifest = json.loads((course / "autograded" / student.name / ASSIGNMENT_07 / "grader.json").read_text())
        failed = [e for nb in manifest["notebooks"] for e in nb["exercises"] if e["points"] < e["max_points"]]
        said = " ".join(e["name"] + ": " + e["hint"] for e in failed)
        assert student.reason in said, f"{student.name}: {student.reason!r} not said in {said!r}"
    fake = json.loads((course / "autograded" / "fake_training" / ASSIGNMENT_07 / "grader.json").read_text())
    assert [e["name"] for nb in fake["notebooks"] for e in nb["exercises"] if e["points"] < e["max_points"]] == ["train_gpt"]


def test_grader_check_agrees_with_autograde_on_07(graded_class_07):
    base, _, summary = graded_class_07
    for name, status in (("correct", 0), ("reads_the_future", 1)):
        done = subprocess.run([sys.executable, "-m", "grader", "check", "--json",
                               str(base / "submitted" / name / ASSIGNMENT_07 / f"{ASSIGNMENT_07}.ipynb")],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == status, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        assert json.loads(done.stdout)["score"] == summary[name]["score"]
