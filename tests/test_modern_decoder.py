"""Notebook 08 (the modern decoder): the references and the solution against Hugging Face
``transformers`` (LlamaForCausalLM loads the solution's state dict), the judges against attacks,
the notebook run top to bottom in a kernel, and a small class graded by ``grader autograde``.

The sandboxed grading of the solution, the release and every catalogued mistake is in
tests/test_notebooks.py; the visible checks of every mistake in a real kernel in
tests/test_visible_checks.py.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from notebook_cases import ROOT
from sample_class import Student, _answer, _load, _write, write_class
from transformers import LlamaConfig, LlamaForCausalLM, MixtralConfig
from transformers.models.llama.modeling_llama import LlamaRMSNorm, LlamaRotaryEmbedding, apply_rotary_pos_emb
from transformers.models.llama.modeling_llama import repeat_kv as hf_repeat_kv
from transformers.models.mixtral.modeling_mixtral import MixtralSparseMoeBlock, load_balancing_loss_func

from grader.checking import llama_oracles as O
from grader.checking.exercises import modern_decoder as M
from grader.checking.judge import judge_calls
from grader.course import copy_course
from grader.grading.notebooks_io import grade_id, is_answer, is_test
from grader.sandbox.calls import call_in_process

torch.set_num_threads(1)

SOLUTION_08 = ROOT / "solutions/08_modern_decoder/08_modern_decoder.ipynb"
RELEASE_08 = ROOT / "notebooks/08_modern_decoder/08_modern_decoder.ipynb"


@pytest.fixture(scope="module")
def sol() -> dict:
    """The solution's answer cells, run in a fresh namespace (the imports cell first)."""
    ns: dict = {"__name__": "solution_08"}
    for cell in nbformat.read(SOLUTION_08, as_version=4).cells:
        if cell.cell_type == "code" and (is_answer(cell) or grade_id(cell) == "imports"):
            exec(cell.source, ns)
    return ns


def hf_llama(c: dict) -> LlamaForCausalLM:
    """transformers' Llama from a configuration written here (nothing is downloaded), in float64."""
    config = LlamaConfig(vocab_size=c["vocab_size"], hidden_size=c["n_embd"], intermediate_size=c["ffn_dim"],
                         num_hidden_layers=c["n_layer"], num_attention_heads=c["n_head"],
                         num_key_value_heads=c["n_kv_head"], max_position_embeddings=c["max_seq_len"],
                         rope_theta=c["rope_base"], rms_norm_eps=1e-6, tie_word_embeddings=False)
    config._attn_implementation = "sdpa"  # float64 throughout (eager's softmax runs in float32)
    return LlamaForCausalLM(config).double().eval()


CONFIGS = {  # GQA, MHA, MQA, another base, one layer; odd and even lengths
    "gqa": (M.llama_config(19, 2, 4, 2, 16, 24, 32), 7),
    "mha": (M.llama_config(23, 2, 4, 4, 16, 40, 32), 13),
    "mqa": (M.llama_config(11, 1, 6, 1, 24, 20, 32, rope_base=500.0), 9),
    "wide": (M.llama_config(31, 3, 2, 2, 32, 64, 64), 16),
}


def _weights(c: dict, seed: int) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v) for k, v in M.judge_weights(np.random.default_rng(seed), c).items()}


@pytest.mark.parametrize("name", CONFIGS)
def test_solution_loads_into_transformers_llama_and_gives_the_same_logits(sol, name):
    c, T = CONFIGS[name]
    mine = sol["make_llama"](**c).double().eval()
    hf = hf_llama(c)
    want_shapes = O.llama_shapes(c["vocab_size"], c["n_layer"], c["n_head"], c["n_kv_head"], c["n_embd"], c["ffn_dim"])
    assert {k: tuple(v.shape) for k, v in mine.state_dict().items()} == want_shapes
    assert {k: tuple(v.shape) for k, v in hf.state_dict().items()} == want_shapes
    mine.load_state_dict(_weights(c, 1), strict=True)
    hf.load_state_dict(mine.state_dict(), strict=True)
    idx = torch.tensor(np.random.default_rng(2).integers(0, c["vocab_size"], (2, T)))
    with torch.no_grad():
        got, want = mine(idx).numpy(), hf(idx).logits.numpy()
    assert np.abs(want).max() > 1.0  # logits large enough that approximations would show
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    # the judge's float64 NumPy forward agrees too (transformers computes RMSNorm and the rotary angles in float32)
    oracle = O.llama_forward({k: v.numpy() for k, v in mine.state_dict().items()}, idx.numpy(), c["n_head"],
                             c["n_kv_head"], c["rope_base"])
    np.testing.assert_allclose(oracle, want, rtol=1e-5, atol=1e-5)


def test_cached_forward_equals_the_whole_sequence_and_transformers_cache(sol):
    c, T = CONFIGS["gqa"]
    mine = sol["make_llama"](**c).double().eval()
    mine.load_state_dict(_weights(c, 3), strict=True)
    hf = hf_llama(c)
    hf.load_state_dict(mine.state_dict(), strict=True)
    idx = torch.tensor(np.random.default_rng(4).integers(0, c["vocab_size"], (3, T)))
    cache = sol["new_cache"](mine, 3)
    with torch.no_grad():
        whole = mine(idx)
        parts = [mine(idx[:, :3], cache=cache), mine(idx[:, 3:5], cache=cache), mine(idx[:, 5:6], cache=cache),
                 mine(idx[:, 6:], cache=cache)]
        first = hf(idx[:, :3], use_cache=True)
        hf_parts, past = [first.logits], first.past_key_values
        for a, b in ((3, 5), (5, 6), (6, T)):
            out = hf(idx[:, a:b], cache=past, use_cache=True)
            hf_parts.append(out.logits)
            past = out.past_key_values
    assert cache.length == T
    np.testing.assert_allclose(torch.cat(parts, 1).numpy(), whole.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(torch.cat(hf_parts, 1).numpy(), whole.numpy(), rtol=1e-10, atol=1e-10)


def test_generation_with_and_without_cache_gives_transformers_greedy_tokens(sol):
    weights = {k: torch.tensor(v) for k, v in M.gen_weights().items()}
    mine = sol["make_llama"](**M.GEN_CONFIG).double().eval()
    mine.load_state_dict(weights, strict=True)
    hf = hf_llama(M.GEN_CONFIG)
    hf.load_state_dict(weights, strict=True)
    idx = torch.tensor(np.random.default_rng(5).integers(0, M.GEN_CONFIG["vocab_size"], (2, 4)))
    with torch.no_grad():
        greedy = hf.generate(idx, max_new_tokens=12, do_sample=False, attention_mask=torch.ones_like(idx),
                             pad_token_id=0).numpy()
    mine_cached = sol["generate_cached"](mine, idx, 12, top_k=1).numpy()
    reference = O.generate(M.gen_weights(), 4, 2, 10000.0, idx.numpy(), 12, top_k=1, seed=0)
    assert np.array_equal(mine_cached, greedy) and np.array_equal(reference, greedy)
    assert len(set(greedy[:, 4:].ravel().tolist())) >= 4  # the judge's weights do not make one token win always
    # sampling: the same tokens for the same generator, with and without the cache
    for cached in (False, True):
        sampled = O.generate(M.gen_weights(), 4, 2, 10000.0, idx.numpy(), 12, temperature=0.9, top_k=5, seed=7,
                             cached=cached)
        assert np.array_equal(sampled, sol["generate_cached"](mine, idx, 12, temperature=0.9, top_k=5,
                                                              generator=torch.Generator().manual_seed(7)).numpy())


def test_each_cache_mistake_changes_the_tokens():
    idx = np.random.default_rng(6).integers(0, M.GEN_CONFIG["vocab_size"], (2, 3))
    right = O.generate(M.gen_weights(), 4, 2, 10000.0, idx, 10, top_k=1, seed=0)
    for switch in ({"offset_positions": False}, {"unrotated_cache": True}, {"refeed": True}):
        assert not np.array_equal(O.generate(M.gen_weights(), 4, 2, 10000.0, idx, 10, top_k=1, seed=0, cached=True,
                                             **switch), right), switch


# --- the pieces, against transformers' modules ----------------------------------------------

def test_rms_norm_matches_llama_rmsnorm_in_every_dtype(sol):
    rng = np.random.default_rng(7)
    x = torch.tensor(rng.standard_normal((3, 5, 16)) * 3.0)
    norm = LlamaRMSNorm(16, eps=1e-6).double()
    with torch.no_grad():
        norm.weight.copy_(torch.tensor(1.0 + 0.5 * rng.standard_normal(16)))
        for dtype in (torch.float64, torch.float32, torch.bfloat16):
            module, xs = norm.to(dtype), x.to(dtype)
            got = sol["rms_norm"](xs, module.weight, 1e-6)
            assert got.dtype == dtype and torch.equal(got, module(xs)), dtype
        want = norm.double()(x).numpy()
    np.testing.assert_allclose(O.rms_norm(x.numpy(), norm.weight.detach().numpy()), want, rtol=1e-6)


def test_rope_matches_transformers_rotary_embedding_and_apply_rotary_pos_emb(sol):
    c = M.llama_config(10, 1, 2, 1, 32, 8, 64, rope_base=500.0)
    config = hf_llama(c).config
    rotary = LlamaRotaryEmbedding(config)
    x = torch.randn(2, 3, 20, 16, dtype=torch.float64)
    cos, sin = rotary(x, torch.arange(20)[None])
    mine_cos, mine_sin = sol["rope_cos_sin"](20, 16, 500.0)
    assert torch.equal(mine_cos.double(), cos[0]) and torch.equal(mine_sin.double(), sin[0])
    ref_cos, ref_sin = O.rope_cos_sin(20, 16, 500.0)
    np.testing.assert_allclose(ref_cos, cos[0].numpy(), atol=2e-6)
    np.testing.assert_allclose(ref_sin, sin[0].numpy(), atol=2e-6)
    k = torch.randn(2, 1, 20, 16, dtype=torch.float64)
    q_hf, k_hf = apply_rotary_pos_emb(x, k, cos, sin)
    np.testing.assert_allclose(sol["apply_rope"](x, cos[0], sin[0]).numpy(), q_hf.numpy(), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(O.apply_rope(k.numpy(), cos[0].numpy(), sin[0].numpy()), k_hf.numpy(), atol=1e-14)


def test_interleaved_and_rotate_half_layouts_differ_by_a_permutation_of_channels():
    """What the interleaved-layout hint claims: the same rotation on permuted channels."""
    x = np.random.default_rng(8).standard_normal((1, 2, 6, 8))
    perm = np.r_[0:8:2, 1:8:2]  # channel order (0, 2, 4, 6, 1, 3, 5, 7): pairs (2i, 2i+1) become (i, i + 4)
    half = O.apply_rope(x[..., perm], *O.rope_cos_sin(6, 8))
    interleaved = O.apply_rope(x, *O.rope_cos_sin(6, 8, interleaved=True), interleaved=True)
    np.testing.assert_allclose(half, interleaved[..., perm], atol=1e-14)
    assert not np.allclose(interleaved, O.apply_rope(x, *O.rope_cos_sin(6, 8)))


def test_relative_positions_only(sol):
    q, k = np.random.default_rng(9).standard_normal((2, 8))
    cos, sin = O.rope_cos_sin(30, 8)
    score = [float(O.apply_rope(q, cos[t], sin[t]) @ O.apply_rope(k, cos[t - 3], sin[t - 3])) for t in (3, 10, 29)]
    assert np.allclose(score, score[0], atol=1e-12)


def test_repeat_kv_matches_transformers(sol):
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    for n_rep in (1, 2, 4):
        want = hf_repeat_kv(x, n_rep)
        assert torch.equal(sol["repeat_kv"](x, n_rep), want)
        assert np.array_equal(O.repeat_kv(x.numpy(), n_rep), want.numpy())
    assert not np.array_equal(O.repeat_kv(x.numpy(), 2, tiled=True), hf_repeat_kv(x, 2).numpy())


def test_moe_forward_matches_a_mixtral_sparse_moe_block(sol):
    d, f, N, k = 8, 12, 6, 2
    block = MixtralSparseMoeBlock(MixtralConfig(hidden_size=d, intermediate_size=f, num_local_experts=N,
                                                num_experts_per_tok=k)).double().eval()
    call = M._moe_call(np.random.default_rng(10), (3, 7), d, f, N, k, router_scale=2.0)
    x, router, experts = call.args[0].value, call.args[1].value, [tuple(t.value for t in e) for e in call.args[2]]
    with torch.no_grad():
        block.gate.weight.copy_(torch.tensor(router))
        for e, (w_gate, w_up, w_down) in enumerate(experts):
            block.experts.gate_up_proj[e].copy_(torch.tensor(np.concatenate([w_gate, w_up])))
            block.experts.down_proj[e].copy_(torch.tensor(w_down))
        want = block(torch.tensor(x)).numpy()
    tensors = [tuple(torch.tensor(w) for w in e) for e in experts]
    got = sol["moe_forward"](torch.tensor(x), torch.tensor(router), tensors, k).numpy()
    # Mixtral's router runs its softmax in float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(O.moe_forward(x, router, experts, k), want, rtol=1e-5, atol=1e-6)
    # the softmax of the kept logits is the renormalised softmax: "top-k before the softmax" is not a mistake
    z = x.reshape(-1, d) @ router.T
    weights, chosen = O.route(z, k)
    kept = np.take_along_axis(z, chosen, axis=-1)
    np.testing.assert_allclose(np.take_along_axis(weights, chosen, axis=-1), O.softmax(kept), atol=1e-14)


def test_load_balancing_loss_matches_mixtrals(sol):
    for T, N, k, scale in ((40, 8, 2, 1.5), (15, 3, 1, 3.0)):
        logits = torch.tensor(np.random.default_rng(T).standard_normal((T, N)) * scale)
        want = float(load_balancing_loss_func((logits,), N, k))
        assert O.load_balancing_loss(logits.numpy(), k) == pytest.approx(want, rel=1e-6)
        assert float(sol["load_balancing_loss"](logits, k)) == pytest.approx(want, rel=1e-6)
    even = np.zeros((8, 4))  # a perfectly even router: the loss is top_k
    assert O.load_balancing_loss(np.eye(4)[np.arange(8) % 4] * 1e-9 + even, 1) == pytest.approx(1.0)


def test_kv_cache_table_numbers_of_the_notebook():
    gib = 2 ** 30
    assert O.kv_cache_bytes(80, 8, 128, 131072, 1, 2) == 40 * gib     # Llama 3 70B at 128K, GQA
    assert O.kv_cache_bytes(80, 64, 128, 131072, 1, 2) == 320 * gib   # the same with multi-head attention
    assert O.kv_cache_bytes(32, 8, 128, 8192, 1, 2) == 1 * gib        # Llama 3 8B at 8K


# --- judges: trust -----------------------------------------------------------------------

def _graded(fn, exercise, calls):
    return judge_calls(exercise, calls, [call_in_process(fn, exercise.name, c) for c in calls])


def _in_notebook(sol, source: str, name: str):
    """``name`` defined by ``source`` in a copy of the solution's namespace (as a learner's cell)."""
    ns = dict(sol)
    exec(source, ns)
    return ns[name]


def test_a_model_whose_logits_ignore_its_parameters_fails(sol):
    calls = M.make_llama.visible_calls()
    for attack in (IGNORES_PARAMETERS, NON_FINITE_LOGITS):
        assert _graded(_in_notebook(sol, attack, "make_llama"), M.make_llama, calls).hint == M.LLAMA_OUTPUT


def test_a_lookup_of_the_visible_answers_fails_the_hidden_calls(sol):
    table = {tuple(c.args[0].value.shape): torch.tensor(O.rms_norm(c.args[0].value, c.args[1].value, **c.kwargs))
             for c in M.rms_norm.visible_calls()}

    def lookup(x, weight, eps=1e-6):
        return table[tuple(x.shape)] if tuple(x.shape) in table else torch.zeros_like(x)

    assert _graded(lookup, M.rms_norm, M.rms_norm.visible_calls()).passed
    assert not _graded(lookup, M.rms_norm, M.rms_norm.hidden_calls(np.random.default_rng(0))).passed


def test_changing_an_input_in_place_is_named(sol):
    def in_place(x, cos, sin):
        out = sol["apply_rope"](x, cos, sin)
        x.mul_(0.0)
        return out

    assert _graded(in_place, M.apply_rope, M.apply_rope.visible_calls()).hint == M.KEEPS_INPUTS
    overwrites_prompt = _in_notebook(sol, M._GEN_CELL.format(**M._GEN_RIGHT).replace(
        "    return idx\n", "    prompt.zero_()\n    return idx\n").replace(
        "    cache = new_cache(", "    prompt = idx\n    cache = new_cache("), "generate_cached")
    assert _graded(overwrites_prompt, M.generate_cached, M.generate_cached.visible_calls()).hint == M.KEEPS_INPUTS


def test_notebook_08_catalogues_at_least_25_mistakes():
    assert sum(len(e.mistakes) for e in M.NOTEBOOK.exercises) >= 25


# --- the notebook itself, in a kernel ------------------------------------------------------

QUICK_STEPS = 20


def test_solution_runs_top_to_bottom_in_a_kernel_with_demos(tmp_path):
    """Every cell, with the closing experiment's budget cut to QUICK_STEPS and the speed-up measured
    at 16 and 32 tokens (the full run is measured by bench/notebooks.py)."""
    from nbclient import NotebookClient

    nb = nbformat.read(SOLUTION_08, as_version=4)
    budget = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("TRAIN_STEPS = ")]
    assert len(budget) == 1
    budget[0].source = f"TRAIN_STEPS = {QUICK_STEPS}\nSPEED_TOKENS = (16, 32)"
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = {i: "".join(o.get("text", "") for o in c.outputs) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    tests = "".join(printed[i] for i, c in enumerate(nb.cells) if is_test(c))
    assert tests.count("visible checks passed") == 10 and tests.count("hidden checks passed") == 10
    everything = "".join(printed.values())
    assert "transformers' LlamaForCausalLM loads your weights" in everything
    assert everything.count("faster, the same tokens") == 2
    assert "40.00 GiB" in everything and "320.00 GiB" in everything
    assert f"{QUICK_STEPS} steps of 32 x 64 bytes" in everything
    assert "GPT-2 (notebook 07)" in everything and "Llama (this notebook)" in everything


# =========================================================================================
# A small class of 08, graded by `grader autograde`
# =========================================================================================

ASSIGNMENT_08 = "08_modern_decoder"

IGNORES_PARAMETERS = '''
_make_llama = make_llama


def make_llama(vocab_size, *args, **kwargs):
    # the right parameter names and shapes, but logits that never read them
    model = _make_llama(vocab_size, *args, **kwargs)
    model.forward = lambda idx, cache=None: torch.zeros(*idx.shape, vocab_size)
    return model
'''


NON_FINITE_LOGITS = IGNORES_PARAMETERS.replace("torch.zeros(*idx.shape, vocab_size)",
                                               "torch.full((*idx.shape, vocab_size), float('nan'))")


def _solution_with(gid: str, source: str, append: bool = False):
    def make(path: Path):
        nb = _load(SOLUTION_08)
        cell = _answer(nb, gid)
        cell.source = cell.source + "\n" + source if append else source
        _write(nb, path)
    return make


# Points: rms_norm 1, swiglu 1, rope_cos_sin 1, apply_rope 1, repeat_kv 1, make_llama 3,
# generate_cached 2 (on the learner's model with the judge's weights), kv_cache_bytes 1,
# moe_forward 2, load_balancing_loss 1; 14.
STUDENTS_08 = [
    Student("correct", 14, "", lambda p: _write(_load(SOLUTION_08), p)),
    Student("untouched", 0, "not implemented yet", lambda p: p.write_bytes(RELEASE_08.read_bytes())),
    Student("ignores_parameters", 9, "not those of a Llama", _solution_with("make_llama", IGNORES_PARAMETERS, append=True)),
    Student("recomputes", 12, "the cache is not used", _solution_with("generate_cached", next(
        m.inject for m in M.generate_cached.mistakes if m.hint == M.GEN_RECOMPUTE))),
]


@pytest.fixture(scope="module")
def graded_class_08(tmp_path_factory):
    base = tmp_path_factory.mktemp("class08")
    course = copy_course(base / "course")
    submitted = write_class(base / "submitted", STUDENTS_08, ASSIGNMENT_08)
    done = subprocess.run([sys.executable, "-m", "grader", "autograde", ASSIGNMENT_08, str(submitted),
                           "--jobs", "2", "--json", "--course-dir", str(course)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return base, course, {row["student"]: row for row in json.loads(done.stdout)}


def test_class_of_08_gets_exactly_the_expected_scores_and_reasons(graded_class_08):
    _, course, summary = graded_class_08
    assert {s: row["score"] for s, row in summary.items()} == {s.name: s.score for s in STUDENTS_08}
    for student in STUDENTS_08:
        manifest = json.loads((course / "autograded" / student.name / ASSIGNMENT_08 / "grader.json").read_text())
        failed = [e for nb in manifest["notebooks"] for e in nb["exercises"] if e["points"] < e["max_points"]]
        said = " ".join(e["name"] + ": " + e["hint"] for e in failed)
        assert student.reason in said, f"{student.name}: {student.reason!r} not said in {said!r}"
    ignores = json.loads((course / "autograded" / "ignores_parameters" / ASSIGNMENT_08 / "grader.json").read_text())
    hints = {e["name"]: e["hint"] for nb in ignores["notebooks"] for e in nb["exercises"] if e["points"] < e["max_points"]}
    assert hints["make_llama"] == M.LLAMA_OUTPUT
    assert hints["generate_cached"].startswith("generate_cached calls make_llama, which fails its own check")

