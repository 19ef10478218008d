"""Notebook 06 and its site page, docs/attention.md.

- **The oracles are right**: each attention oracle of ``grader.checking.oracles`` agrees with PyTorch
  (F.scaled_dot_product_attention, F.layer_norm, F.gelu, nn.MultiheadAttention,
  nn.TransformerEncoderLayer) and, for the two backward passes, with torch.autograd and central
  finite differences, in float64.
- **The exercises catch what they promise**: every catalogued mistake is named by its hint from
  the visible calls alone and from the hidden ones; hidden draws have the shapes, dtypes and
  score scales the catalogue relies on.
- **The notebook works for a learner**: run top to bottom in a real kernel, its checks pass and
  its closing gradient check prints every relative error below 1e-6.
- **A sample class** is graded by ``grader autograde`` in the sandbox with exact scores and the
  reasons, attacks adapted to this notebook included.
- **Every formula of docs/attention.md** is found on the page and checked numerically; test
  messages name the page.
"""
from __future__ import annotations

import inspect
import json
import math
import re
import subprocess
import sys

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from nbclient import NotebookClient
from torch.utils.flop_counter import FlopCounterMode

from grader.checking import exercises, oracles
from grader.checking.exercises import attention
from grader.checking import judge
from grader.checking.judge import changed_input_hint, float32_hint, judge_calls
from grader.grading.notebooks_io import grade_id, is_answer, is_test
from grader.notebook import check
from grader.sandbox.calls import call_in_process
from finite_differences import central_difference
from notebook_cases import ROOT, make_course
from sample_class import ASSIGNMENT_06, STUDENTS_06, write_class

PAGE = "docs/attention.md"
NOTEBOOK = "06_attention"
SEEDS = [0, 1, 2]
TIGHT = dict(rtol=1e-10, atol=1e-12)


def t64(array):
    return torch.tensor(np.asarray(array, dtype=np.float64))


def close(actual, expected, what, rtol=1e-10, atol=1e-12):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}, expected {expected.shape}"
    assert np.allclose(actual, expected, rtol=rtol, atol=atol), (
        f"{what}: max difference {np.max(np.abs(actual - expected)):.3g}")


def page_states(latex: str, page: str = PAGE) -> None:
    """The page shows this formula, character for character."""
    text = (ROOT / page).read_text(encoding="utf-8")
    assert latex in text, f"{page}: the checked formula is no longer on the page: {latex}"


def torch_block(C, H, norm_first=True):
    """nn.TransformerEncoderLayer configured as GPT-2's block (or the post-LN original), in float64."""
    torch.manual_seed(0)
    return torch.nn.TransformerEncoderLayer(C, H, dim_feedforward=4 * C, dropout=0.0, layer_norm_eps=1e-5,
                                            activation=lambda u: F.gelu(u, approximate="tanh"), batch_first=True,
                                            norm_first=norm_first, dtype=torch.float64).train()


def load_block(layer, p):
    """Our parameters (weights on the right) into PyTorch's layer (weights on the left)."""
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(t64(np.concatenate([p["Wq"].T, p["Wk"].T, p["Wv"].T])))
        layer.self_attn.in_proj_bias.copy_(t64(np.concatenate([p["bq"], p["bk"], p["bv"]])))
        layer.self_attn.out_proj.weight.copy_(t64(p["Wo"].T))
        layer.self_attn.out_proj.bias.copy_(t64(p["bo"]))
        if "W1" in p:
            layer.norm1.weight.copy_(t64(p["ln1_g"]))
            layer.norm1.bias.copy_(t64(p["ln1_b"]))
            layer.norm2.weight.copy_(t64(p["ln2_g"]))
            layer.norm2.bias.copy_(t64(p["ln2_b"]))
            layer.linear1.weight.copy_(t64(p["W1"].T))
            layer.linear1.bias.copy_(t64(p["b1"]))
            layer.linear2.weight.copy_(t64(p["W2"].T))
            layer.linear2.bias.copy_(t64(p["b2"]))
    return layer


def causal_float_mask(T):
    return torch.nn.Transformer.generate_square_subsequent_mask(T, dtype=torch.float64)


# =========================================================================================
# The oracles, against PyTorch and finite differences
# =========================================================================================

def test_causal_mask_oracle_matches_torch_tril():
    for T in range(1, 8):
        mask = oracles.causal_mask(T)
        assert mask.dtype == bool and mask.shape == (T, T)
        assert np.array_equal(mask, torch.tril(torch.ones(T, T, dtype=torch.bool)).numpy())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("masked", ["none", "causal", "padding"])
def test_attention_oracle_matches_torch_sdpa(seed, masked):
    rng = np.random.default_rng(seed)
    lead, Tq, Tk = ((2, 3), 5, 5) if masked == "causal" else ((3, 2), 4, 6)
    q, k, v = attention.attention_inputs(rng, lead, Tq, Tk, 5, 7, large_row=True)
    mask = {"none": None, "causal": oracles.causal_mask(Tq), "padding": attention.padding_mask(rng, 3, Tk)}[masked]
    out, weights = oracles.scaled_dot_product_attention(q, k, v, mask)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights)), "a row of scores near 900 overflowed"
    torch_mask = None if mask is None else torch.tensor(mask)
    close(out, F.scaled_dot_product_attention(t64(q), t64(k), t64(v), attn_mask=torch_mask).numpy(),
          "attention output vs torch", **TIGHT)
    scores = t64(q) @ t64(k).transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~torch.tensor(mask), float("-inf"))
    close(weights, torch.softmax(scores, dim=-1).numpy(), "attention weights vs torch", **TIGHT)
    if mask is not None:
        assert np.all(weights[~np.broadcast_to(mask, weights.shape)] == 0.0), "masked weights are not exactly 0"


@pytest.mark.parametrize("seed", SEEDS)
def test_layer_norm_oracle_matches_torch(seed):
    rng = np.random.default_rng(seed)
    x = attention.with_small_row(rng.standard_normal((2, 5, 7)) * 2 + 1)
    gamma, beta = 1 + 0.3 * rng.standard_normal(7), rng.standard_normal(7)
    for eps in (1e-5, 1e-3):
        expected = F.layer_norm(t64(x), (7,), t64(gamma), t64(beta), eps=eps).numpy()
        close(oracles.layer_norm(x, gamma, beta, eps), expected, f"layer_norm(eps={eps}) vs torch", **TIGHT)


def test_gelu_oracle_is_the_tanh_form_and_not_the_erf_form():
    x = np.linspace(-6, 6, 241)
    close(oracles.gelu(x), F.gelu(t64(x), approximate="tanh").numpy(), "gelu vs torch tanh", **TIGHT)
    assert np.max(np.abs(oracles.gelu(x) - F.gelu(t64(x)).numpy())) > 1e-4, "the two forms should differ visibly"


@pytest.mark.parametrize("seed", SEEDS)
def test_split_and_merge_heads_match_the_torch_view_transpose(seed):
    x = np.random.default_rng(seed).standard_normal((2, 5, 12))
    for H in (1, 3, 4):
        expected = t64(x).view(2, 5, H, 12 // H).transpose(1, 2)  # as nanoGPT writes it
        close(oracles.split_heads(x, H), expected.numpy(), f"split_heads H={H}", **TIGHT)
        close(oracles.merge_heads(expected.numpy()), x, f"merge_heads H={H}", **TIGHT)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("causal", [True, False])
def test_multi_head_attention_oracle_matches_nn_multiheadattention(seed, causal):
    rng = np.random.default_rng(seed)
    B, T, C, H = 2, 5, 6, 3
    x, p = rng.standard_normal((B, T, C)), attention.attention_params(rng, C)
    mha = torch.nn.MultiheadAttention(C, H, batch_first=True, dtype=torch.float64)
    load_block(SimpleLayer(mha), p)
    # PyTorch's boolean attn_mask means "may NOT attend": the opposite of ours
    hidden = torch.tensor(~oracles.causal_mask(T)) if causal else None
    expected = mha(t64(x), t64(x), t64(x), attn_mask=hidden, need_weights=False)[0].detach().numpy()
    close(oracles.multi_head_attention(x, p, H, causal), expected, "multi_head_attention vs nn.MultiheadAttention",
          **TIGHT)


class SimpleLayer:
    """Lets load_block fill a bare nn.MultiheadAttention."""

    def __init__(self, mha):
        self.self_attn = mha


def test_positional_encoding_oracle_matches_the_pytorch_tutorial_form():
    for T, C in [(1, 6), (9, 4), (50, 14)]:
        position = torch.arange(T, dtype=torch.float64)[:, None]
        div_term = torch.exp(torch.arange(0, C, 2, dtype=torch.float64) * (-math.log(10000.0) / C))
        pe = torch.zeros(T, C, dtype=torch.float64)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(position * div_term), torch.cos(position * div_term)
        close(oracles.positional_encoding(T, C), pe.numpy(), f"positional_encoding({T}, {C})", rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(1, 5, 10, 1), (3, 6, 6, 3), (2, 4, 12, 4)], ids=str)
def test_transformer_block_oracle_matches_nn_transformerencoderlayer(seed, shape):
    B, T, C, H = shape
    rng = np.random.default_rng(seed)
    x, p = rng.standard_normal((B, T, C)), attention.block_params(rng, C)
    layer = load_block(torch_block(C, H), p)
    expected = layer(t64(x), src_mask=causal_float_mask(T), is_causal=True).detach().numpy()
    close(oracles.transformer_block(x, p, H), expected, "transformer_block vs nn.TransformerEncoderLayer", **TIGHT)


def _backward_case(rng, masked, lead=(2, 3), Tq=4, Tk=6, d=5, dv=3):
    if masked:
        Tk = Tq
    q, k, v = (rng.standard_normal((*lead, n, m)) for n, m in ((Tq, d), (Tk, d), (Tk, dv)))
    mask = oracles.causal_mask(Tq) if masked else None
    return q, k, v, mask, rng.standard_normal((*lead, Tq, dv))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("masked", [False, True])
def test_attention_backward_oracle_matches_torch_autograd(seed, masked):
    q, k, v, mask, dout = _backward_case(np.random.default_rng(seed), masked)
    leaves = [t64(a).requires_grad_() for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*leaves, attn_mask=None if mask is None else torch.tensor(mask))
    expected = torch.autograd.grad(out, leaves, grad_outputs=t64(dout))
    weights = oracles.scaled_dot_product_attention(q, k, v, mask)[1]
    for name, got, want in zip(("dq", "dk", "dv"), oracles.attention_backward(dout, q, k, v, weights), expected):
        close(got, want.numpy(), f"attention_backward {name} vs torch.autograd", **TIGHT)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_backward_oracle_matches_finite_differences(masked):
    q, k, v, mask, dout = _backward_case(np.random.default_rng(3), masked, lead=(2,), Tq=3, Tk=4, d=3, dv=2)
    weights = oracles.scaled_dot_product_attention(q, k, v, mask)[1]
    grads = oracles.attention_backward(dout, q, k, v, weights)
    args = [q, k, v]
    for i, name in enumerate(("dq", "dk", "dv")):
        def loss(value, i=i):
            now = list(args)
            now[i] = value
            return float(np.sum(dout * oracles.scaled_dot_product_attention(*now, mask)[0]))
        close(grads[i], central_difference(loss, args[i]), f"attention_backward {name} vs central differences",
              rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("seed", SEEDS)
def test_layer_norm_backward_oracle_matches_torch_autograd_and_finite_differences(seed):
    rng = np.random.default_rng(seed)
    x, gamma, beta = rng.standard_normal((2, 3, 5)) * 2 + 1, 1 + 0.3 * rng.standard_normal(5), rng.standard_normal(5)
    dout = rng.standard_normal((2, 3, 5))
    leaves = [t64(a).requires_grad_() for a in (x, gamma, beta)]
    out = F.layer_norm(leaves[0], (5,), leaves[1], leaves[2], eps=1e-5)
    expected = torch.autograd.grad(out, leaves, grad_outputs=t64(dout))
    got = oracles.layer_norm_backward(dout, x, gamma)
    for name, g, want in zip(("dx", "dgamma", "dbeta"), got, expected):
        close(g, want.numpy(), f"layer_norm_backward {name} vs torch.autograd", **TIGHT)
    numeric = [central_difference(lambda a: float(np.sum(dout * oracles.layer_norm(a, gamma, beta))), x),
               central_difference(lambda g: float(np.sum(dout * oracles.layer_norm(x, g, beta))), gamma),
               central_difference(lambda b: float(np.sum(dout * oracles.layer_norm(x, gamma, b))), beta)]
    for name, g, want in zip(("dx", "dgamma", "dbeta"), got, numeric):
        close(g, want, f"layer_norm_backward {name} vs central differences", rtol=1e-6, atol=1e-8)


# =========================================================================================
# The exercises: catalogue, visible calls and hidden draws
# =========================================================================================

SPEC = exercises.notebook_spec(NOTEBOOK)


def solution_namespace():
    """The solution's answer cells (and imports), run here, in this process."""
    nb = nbformat.read(ROOT / "solutions" / NOTEBOOK / f"{NOTEBOOK}.ipynb", as_version=4)
    namespace = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and (is_answer(cell) or grade_id(cell) == "imports"):
            exec(cell.source, namespace)
    return namespace


def test_the_catalogue_has_at_least_15_mistakes_each_with_a_hint_and_an_injection():
    mistakes = [m for e in SPEC.exercises for m in e.mistakes]
    assert len(mistakes) >= 15
    assert len({m.hint for m in mistakes}) == len(mistakes), "two mistakes share a hint"
    for m in mistakes:
        assert m.inject.strip() and m.hint.endswith(".") and callable(m.wrong)


CATALOGUE = [(e.name, i) for e in SPEC.exercises for i in range(len(e.mistakes))]


@pytest.fixture(scope="module")
def solved():
    return solution_namespace()


@pytest.mark.parametrize("which", ["visible", "hidden"])
def test_every_mistake_is_named_by_the_visible_and_by_the_hidden_calls(solved, which):
    """Issue 19: a learner sees the catalogued hint from the visible examples already."""
    wrong_hints = []
    for name, index in CATALOGUE:
        exercise = SPEC.exercise(name)
        namespace = dict(solved)
        with np.errstate(all="ignore"):
            exec(exercise.mistakes[index].inject, namespace)
            calls = exercise.visible_calls() if which == "visible" else exercise.hidden_calls(np.random.default_rng(11))
            results = [call_in_process(namespace[name], name, call) for call in calls]
        verdict = judge_calls(exercise, calls, results)
        if verdict.passed or verdict.hint != exercise.mistakes[index].hint:
            wrong_hints.append(f"{name} mistake {index}: {verdict.hint or 'passed'}")
    assert not wrong_hints, "\n".join(wrong_hints)


def test_the_solution_passes_many_hidden_draws(solved):
    """Grading draws a fresh seed per submission: a draw the solution fails would cost points."""
    for seed in range(50):
        for exercise in SPEC.exercises:
            calls = exercise.hidden_calls(np.random.default_rng(100 + seed))
            results = [call_in_process(solved[exercise.name], exercise.name, call) for call in calls]
            verdict = judge_calls(exercise, calls, results)
            assert verdict.passed, f"seed {seed}: {exercise.name}: {verdict.hint}"


# --- issue 23: outputs named, arguments left unchanged, float32 kept, one culprit ------------

def _wrapped(function, after):
    """``function`` whose result (and arguments) ``after(result, args, kwargs)`` changes."""
    def wrapper(*args, **kwargs):
        return after(function(*args, **kwargs), args, kwargs)
    return wrapper


def _first_array_path(call):
    """The first array argument of a call, as a hint names it (``x``, ``params['Wq']``)."""
    names = list(inspect.signature(SPEC.exercise(call[0]).expected).parameters)
    for i, value in enumerate(call[1].args):
        if isinstance(value, np.ndarray):
            return names[i], lambda args, kwargs, i=i: args[i]
        if isinstance(value, dict):
            key = next(iter(value))
            return f"{names[i]}[{key!r}]", lambda args, kwargs, i=i, key=key: args[i][key]
    raise AssertionError(f"{call[0]}: no array argument")


PROBED = [e.name for e in SPEC.exercises if any(c.probe == "inputs_after" for c in e.visible_calls())]


def test_every_function_with_array_arguments_is_checked_for_changing_them():
    with_arrays = [e.name for e in SPEC.exercises
                   if any(isinstance(a, (np.ndarray, dict)) for c in e.visible_calls() for a in c.args)]
    assert PROBED == with_arrays and len(PROBED) == 9
    for name in PROBED:
        for calls in (SPEC.exercise(name).visible_calls(), SPEC.exercise(name).hidden_calls(np.random.default_rng(0))):
            assert all(c.probe == "inputs_after" for c in calls), name


@pytest.mark.parametrize("name", PROBED)
def test_changing_an_argument_is_named_with_the_argument(solved, name):
    """A right answer that writes into its first array argument fails, naming that argument."""
    exercise = SPEC.exercise(name)
    calls = exercise.visible_calls()
    argument, pick = _first_array_path((name, calls[0]))

    def scribble(result, args, kwargs):
        result = tuple(map(np.copy, result)) if isinstance(result, tuple) else np.copy(result)  # not a view of x
        pick(args, kwargs)[...] = 0  # after the result was computed from the right inputs
        return result
    results = [call_in_process(_wrapped(solved[name], scribble), name, call) for call in calls]
    assert judge_calls(exercise, calls, results).hint == changed_input_hint(name, argument)


FLOAT32 = [e.name for e in SPEC.exercises if e.keeps_float32]


def test_every_floating_point_function_keeps_float32_and_shows_it_in_its_visible_calls():
    assert FLOAT32 == [e.name for e in SPEC.exercises if e.name not in ("causal_mask", "positional_encoding")]
    for name in FLOAT32:
        floats = {a.value.dtype for c in SPEC.exercise(name).visible_calls() for a in judge.call_inputs(SPEC.exercise(name), c)
                  if a.value.dtype.kind == "f"}
        assert np.dtype(np.float32) in floats and np.dtype(np.float64) in floats, name


@pytest.mark.parametrize("name", FLOAT32)
def test_float64_answers_to_float32_inputs_are_named(solved, name):
    exercise = SPEC.exercise(name)
    calls = exercise.visible_calls()

    def upcast(result, args, kwargs):
        return tuple(np.asarray(r, np.float64) for r in result) if isinstance(result, tuple) else np.asarray(result, np.float64)
    results = [call_in_process(_wrapped(solved[name], upcast), name, call) for call in calls]
    first = exercise.outputs[0] if exercise.outputs else "the result"
    assert judge_calls(exercise, calls, results).hint == float32_hint(first)
    # the solution's answers keep float32
    results = [call_in_process(solved[name], name, call) for call in calls]
    assert judge_calls(exercise, calls, results).passed


@pytest.mark.parametrize("name,outputs,wrong_part", [
    ("scaled_dot_product_attention", ("out", "weights"), 1),
    ("attention_backward", ("dq", "dk", "dv"), 1),
    ("layer_norm_backward", ("dx", "dgamma", "dbeta"), 2),
])
def test_a_wrong_part_is_named(solved, name, outputs, wrong_part):
    """'dk: your values are ...', never 'value 2 of 3'; a missing part lists the names."""
    exercise = SPEC.exercise(name)
    assert exercise.outputs == outputs
    calls = exercise.visible_calls()

    def doubled(result, args, kwargs):
        return tuple(2 * r if i == wrong_part else r for i, r in enumerate(result))
    results = [call_in_process(_wrapped(solved[name], doubled), name, call) for call in calls]
    hint = judge_calls(exercise, calls, results).hint
    assert hint == f"{outputs[wrong_part]}: your values are exactly twice the expected ones.", hint
    results = [call_in_process(_wrapped(solved[name], lambda r, a, k: r[:-1]), name, call) for call in calls]
    assert judge_calls(exercise, calls, results).hint == (
        f"returned {len(outputs) - 1} values; expected {len(outputs)} ({', '.join(outputs)}).")


def test_a_float_mask_fails_and_says_booleans(solved):
    exercise = SPEC.exercise("causal_mask")
    for fn in (lambda T: np.tril(np.ones((T, T))), lambda T: np.tril(np.ones((T, T), dtype=int))):
        calls = exercise.visible_calls()
        results = [call_in_process(fn, "causal_mask", call) for call in calls]
        assert judge_calls(exercise, calls, results).hint == attention.CAUSAL_MASK_BOOLEANS


# Two failing dependencies at once: the notebook's check and the grader blame the same one,
# the first of the notebook's order (issue 23: multi_head_attention blamed merge_heads in the
# notebook and scaled_dot_product_attention in the grader).
BOTH_WRONG = [
    ("multi_head_attention", ("merge_heads", "scaled_dot_product_attention"), "scaled_dot_product_attention"),
    ("transformer_block", ("gelu", "scaled_dot_product_attention"), "scaled_dot_product_attention"),
    ("transformer_block", ("gelu", "layer_norm"), "layer_norm"),
]


@pytest.mark.parametrize("name,broken,culprit", BOTH_WRONG)
def test_the_notebook_and_the_grader_blame_the_same_dependency(name, broken, culprit):
    nb = nbformat.read(ROOT / "solutions" / NOTEBOOK / f"{NOTEBOOK}.ipynb", as_version=4)
    sources = {grade_id(c): c.source for c in nb.cells if is_answer(c)}
    for dependency in broken:
        sources[dependency] = SPEC.exercise(dependency).mistakes[0].inject
    namespace = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and grade_id(cell) == "imports":
            exec(cell.source, namespace)
    with np.errstate(all="ignore"):
        for source in sources.values():
            exec(source, namespace)
        verdicts = {}
        for exercise in SPEC.exercises:
            calls = exercise.visible_calls()
            verdicts[exercise.name] = judge_calls(exercise, calls, [call_in_process(namespace[exercise.name],
                                                                                     exercise.name, c) for c in calls])
        graded = judge.blame_dependencies([e.name for e in SPEC.exercises], verdicts, judge.learner_calls(sources))
        with pytest.raises(AssertionError) as raised:
            check(name, namespace[name])
    said = f"{name} calls {culprit}, which fails its own check: fix {culprit} first ({culprit}: "
    assert graded[name].hint.startswith(said), graded[name].hint
    assert str(raised.value) == f"{name}: {graded[name].hint}"


def test_every_visible_assert_of_the_release_has_a_message():
    """An assert that fails after check(...) says what it expected (issue 23: empty AssertionErrors)."""
    import ast
    nb = nbformat.read(ROOT / "notebooks" / NOTEBOOK / f"{NOTEBOOK}.ipynb", as_version=4)
    asserts = [node for cell in nb.cells if cell.cell_type == "code"
               for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Assert)]
    assert len(asserts) >= 10
    assert [ast.unparse(a.test) for a in asserts if a.msg is None] == []


# --- the correspondence notebook 06 states with GPT-2's and notebook 07's parameters ----------

def _gpt2_weights(p):
    """Notebook 06's block parameters under GPT-2's checkpoint names, as its first cell states."""
    return {"ln_1.weight": p["ln1_g"], "ln_1.bias": p["ln1_b"],
            "attn.c_attn.weight": np.concatenate([p["Wq"], p["Wk"], p["Wv"]], axis=1),
            "attn.c_attn.bias": np.concatenate([p["bq"], p["bk"], p["bv"]]),
            "attn.c_proj.weight": p["Wo"], "attn.c_proj.bias": p["bo"],
            "ln_2.weight": p["ln2_g"], "ln_2.bias": p["ln2_b"],
            "mlp.c_fc.weight": p["W1"], "mlp.c_fc.bias": p["b1"], "mlp.c_proj.weight": p["W2"], "mlp.c_proj.bias": p["b2"]}


def test_the_block_is_gpt2s_block_under_the_stated_names():
    """Notebook 06, first cell: c_attn's weight is [Wq | Wk | Wv] in the same (in, out) layout, ...;
    checked against Hugging Face's GPT2Model (one layer, zero position embeddings, ln_f = identity)."""
    from transformers import GPT2Config, GPT2Model
    rng = np.random.default_rng(3)
    B, T, C, H = 2, 5, 8, 2
    params, x = attention.block_params(rng, C), rng.standard_normal((B, T, C))
    config = GPT2Config(n_embd=C, n_head=H, n_layer=1, n_positions=T, vocab_size=3, layer_norm_epsilon=1e-5,
                        activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2Model(config).double().eval()
    state = {f"h.0.{k}": t64(v) for k, v in _gpt2_weights(params).items()}
    state |= {"wpe.weight": torch.zeros(T, C, dtype=torch.float64), "ln_f.weight": torch.ones(C, dtype=torch.float64),
              "ln_f.bias": torch.zeros(C, dtype=torch.float64)}
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        out = model(inputs_embeds=t64(x)).last_hidden_state.numpy()
    block = oracles.transformer_block(x, params, H)
    close(out, oracles.layer_norm(block, np.ones(C), np.zeros(C)), "GPT-2's block under the stated names", rtol=1e-9, atol=1e-10)


def test_the_block_is_notebook_07s_block_in_pytorchs_layout():
    """Notebook 06, last cell: blocks.i.attn.c_attn.weight (3C, C) is [Wq | Wk | Wv].T, ...; checked on
    the judge's own forward of notebook 07's names (grader.checking.gpt_oracles.gpt_forward), with
    each token's embedding one row of x, no position embeddings, no final layer norm and an
    identity head, so that its "logits" are the block's output."""
    from grader.checking import gpt_oracles
    rng = np.random.default_rng(4)
    B, T, C, H = 2, 5, 6, 3
    params, x = attention.block_params(rng, C), rng.standard_normal((B, T, C))
    weights = {f"blocks.0.{k}": (v.T if k.endswith("weight") and v.ndim == 2 else v)
               for k, v in _gpt2_weights(params).items()}
    weights |= {"wte.weight": x.reshape(B * T, C), "wpe.weight": np.zeros((T, C)), "lm_head.weight": np.eye(C)}
    assert weights["blocks.0.attn.c_attn.weight"].shape == (3 * C, C)
    assert weights["blocks.0.mlp.c_fc.weight"].shape == (4 * C, C)
    out = gpt_oracles.gpt_forward(weights, np.arange(B * T).reshape(B, T), H, final_ln=False)
    close(out, oracles.transformer_block(x, params, H), "notebook 07's block in PyTorch's layout", rtol=1e-9, atol=1e-10)


def _masked_row_maxima(scores, T=None):
    if T is not None:
        scores = np.where(oracles.causal_mask(T), scores, -np.inf)
    return scores.max(axis=-1)


def _softmax_rows_of(name, call):
    """Each row's largest (unmasked) score in a call of a softmax-based exercise."""
    if name in ("scaled_dot_product_attention", "attention_backward"):
        q, k = (call.args[0], call.args[1]) if name == "scaled_dot_product_attention" else (call.args[1], call.args[2])
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
        mask = call.kwargs.get("mask")
        return (scores if mask is None else np.where(mask, scores, -np.inf)).max(axis=-1)
    x, p, H = call.args
    if name == "transformer_block":
        x = oracles.layer_norm(x, p["ln1_g"], p["ln1_b"])
    scores = attention._head_scores(x @ p["Wq"] + p["bq"], x @ p["Wk"] + p["bk"], H)
    return _masked_row_maxima(scores, x.shape[1] if call.kwargs.get("causal", True) else None)


@pytest.mark.parametrize("seed", SEEDS)
def test_hidden_draws_have_fresh_shapes_dtypes_and_score_scales(seed):
    calls = {e.name: e.hidden_calls(np.random.default_rng(seed)) for e in SPEC.exercises}
    arrays = [a for cs in calls.values() for c in cs for a in [*c.args, *c.kwargs.values()] if isinstance(a, np.ndarray)]
    assert {a.dtype for a in arrays if a.dtype.kind == "f"} == {np.dtype(np.float32), np.dtype(np.float64)}
    q_shapes = [c.args[0].shape for c in calls["scaled_dot_product_attention"]]
    assert any(s[-2] != s[-1] for s in q_shapes), "T == d in every call"
    assert any(s[-1] & (s[-1] - 1) for s in q_shapes), "d is a power of two in every call"
    heads = [c.args[2] for c in calls["multi_head_attention"]]
    assert 1 in heads and max(heads) > 1
    for name in ("multi_head_attention", "transformer_block", "layer_norm", "split_heads"):
        assert any(c.args[0].shape[0] == 1 for c in calls[name]), f"{name}: no batch of 1"
    for name in ("scaled_dot_product_attention", "attention_backward", "multi_head_attention", "transformer_block"):
        scales = [np.abs(_softmax_rows_of(name, c)) for c in calls[name]]
        assert any(s.max() > 800 and s.min() < 50 for s in scales), (
            f"{name}: no call mixes a row of scores near 900 with rows near 0")


def test_visible_calls_show_the_same_score_scales():
    for name in ("scaled_dot_product_attention", "attention_backward"):
        scales = [np.abs(_softmax_rows_of(name, c)) for c in SPEC.exercise(name).visible_calls()]
        assert any(s.max() > 800 and s.min() < 50 for s in scales), name


# =========================================================================================
# The notebook in a learner's kernel, with its closing gradient check
# =========================================================================================

def test_solution_runs_in_a_kernel_and_its_gradient_check_passes():
    path = ROOT / "solutions" / NOTEBOOK / f"{NOTEBOOK}.ipynb"
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if is_test(c) for o in c.outputs)
    assert printed.count("visible checks passed") == printed.count("hidden checks passed") == len(SPEC.exercises)
    demo = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" and "nbgrader" not in c.metadata
                   for o in c.outputs)
    errors = dict(re.findall(r"^(\w+)\s+shape .*relative error (\S+)$", demo, flags=re.MULTILINE))
    expected = [n for n in attention.block_params(np.random.default_rng(0), 6) if n != "bk"] + ["x"]
    assert sorted(errors) == sorted(expected), demo
    assert all(float(e) < 1e-6 for e in errors.values()), errors
    zero = re.search(r"^bk .*largest \|analytic\| (\S+), largest \|numeric\| (\S+)$", demo, flags=re.MULTILINE)
    assert zero and float(zero.group(1)) < 1e-9 and float(zero.group(2)) < 1e-9, demo


# =========================================================================================
# A sample class, graded by `grader autograde` in the sandbox
# =========================================================================================

@pytest.fixture(scope="module")
def graded_class_06(tmp_path_factory):
    base = tmp_path_factory.mktemp("class06")
    course = make_course(base / "course")
    submitted = write_class(base / "submitted", STUDENTS_06, ASSIGNMENT_06)
    done = subprocess.run([sys.executable, "-m", "grader.cli", "autograde", ASSIGNMENT_06, str(submitted), "--jobs", "2",
                           "--json", "--course-dir", str(course), "--cell-timeout", "4", "--notebook-timeout", "60"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return course, {row["student"]: row for row in json.loads(done.stdout)}


def test_sample_class_of_06_gets_exactly_the_expected_scores(graded_class_06):
    _, summary = graded_class_06
    assert {s: row["score"] for s, row in summary.items()} == {s.name: s.score for s in STUDENTS_06}


def test_sample_class_of_06_is_told_why(graded_class_06):
    course, _ = graded_class_06
    for student in STUDENTS_06:
        manifest = json.loads((course / "autograded" / student.name / ASSIGNMENT_06 / "grader.json").read_text())
        said = " ".join(n for nb in manifest["notebooks"] for n in nb["notes"]) + " ".join(
            e["hint"] for nb in manifest["notebooks"] for e in nb["exercises"])
        assert student.reason in said, f"{student.name}: {student.reason!r} not said in {said!r}"
        assert all(e["points"] <= e["max_points"] for nb in manifest["notebooks"] for e in nb["exercises"])


# =========================================================================================
# docs/attention.md: every formula, checked numerically
# =========================================================================================

@pytest.fixture
def rng():
    return np.random.default_rng(0)


def test_page_qkv_projections_and_attention(rng):
    """docs/attention.md: Q = XW_Q + b_Q ...; S = QK^T / sqrt(d), A = softmax(S), Attention = AV"""
    page_states(r"Q = XW_Q + b_Q, \qquad K = XW_K + b_K, \qquad V = XW_V + b_V")
    page_states(r"S = \frac{Q K^\top}{\sqrt{d}}, \qquad A = \mathrm{softmax}(S), \qquad \mathrm{Attention}(Q, K, V) = A V")
    B, T, C, d = 2, 5, 6, 4
    X = rng.standard_normal((B, T, C))
    W = {n: rng.standard_normal((C, d)) for n in "QKV"}
    b = {n: rng.standard_normal(d) for n in "QKV"}
    Q, K, V = (X @ W[n] + b[n] for n in "QKV")
    close(Q, F.linear(t64(X), t64(W["Q"].T), t64(b["Q"])).numpy(), f"{PAGE}: Q = XW_Q + b_Q")
    A = torch.softmax(t64(Q) @ t64(K).transpose(-1, -2) / math.sqrt(d), dim=-1)
    close((A @ t64(V)).numpy(), F.scaled_dot_product_attention(t64(Q), t64(K), t64(V)).numpy(),
          f"{PAGE}: Attention(Q, K, V) = softmax(QK^T / sqrt d) V")


def test_page_attention_table_entries(rng):
    """docs/attention.md: S_bij = 1/sqrt(d) sum_c Q_bic K_bjc; output_bi = sum_j A_bij V_bj"""
    page_states(r"$S_{bij} = \frac{1}{\sqrt{d}} \sum_{c} Q_{bic} K_{bjc}$")
    page_states(r"$\sum_j A_{bij} V_{bj,:}$")
    B, T, d = 2, 3, 4
    Q, K, V = rng.standard_normal((B, T, d)), rng.standard_normal((B, T, d)), rng.standard_normal((B, T, 2))
    out, A = oracles.scaled_dot_product_attention(Q, K, V)
    S = np.array([[[sum(Q[b, i, c] * K[b, j, c] for c in range(d)) / math.sqrt(d) for j in range(T)]
                   for i in range(T)] for b in range(B)])
    close(A, np.exp(S) / np.exp(S).sum(-1, keepdims=True), f"{PAGE}: S_bij element-wise")
    close(out, np.array([[sum(A[b, i, j] * V[b, j] for j in range(T)) for i in range(T)] for b in range(B)]),
          f"{PAGE}: output = sum_j A_bij V_bj")


def test_page_attention_backward_formulas(rng):
    """docs/attention.md: dV = A^T dO, dA = dO V^T, dS = A (dA - rowsum(dA A)), dQ = dS K / sqrt d, dK = dS^T Q / sqrt d"""
    page_states(r"dV = A^\top dO, \qquad dA = dO\, V^\top, \qquad dS = A \odot \Big( dA - \textstyle\sum_j (dA \odot A)_{:,j} \Big)")
    page_states(r"dQ = \frac{dS\, K}{\sqrt{d}}, \qquad dK = \frac{dS^\top Q}{\sqrt{d}}")
    page_states(r"$\partial A_{ij} / \partial S_{il} = A_{ij}(\delta_{jl} - A_{il})$")
    Q, K, V = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 5))
    dO = rng.standard_normal((2, 4, 5))
    leaves = [t64(a).requires_grad_() for a in (Q, K, V)]
    out = F.scaled_dot_product_attention(*leaves)
    want = torch.autograd.grad(out, leaves, grad_outputs=t64(dO))
    A = torch.softmax(t64(Q) @ t64(K).transpose(-1, -2) / math.sqrt(3), dim=-1).numpy()
    dV = np.swapaxes(A, -1, -2) @ dO
    dA = dO @ np.swapaxes(V, -1, -2)
    dS = A * (dA - (dA * A).sum(axis=-1, keepdims=True))
    close(dS @ K / math.sqrt(3), want[0].numpy(), f"{PAGE}: dQ = dS K / sqrt(d)")
    close(np.swapaxes(dS, -1, -2) @ Q / math.sqrt(3), want[1].numpy(), f"{PAGE}: dK = dS^T Q / sqrt(d)")
    close(dV, want[2].numpy(), f"{PAGE}: dV = A^T dO")
    s = t64(rng.standard_normal(5))
    jacobian = torch.autograd.functional.jacobian(lambda z: torch.softmax(z, dim=0), s).numpy()
    a = torch.softmax(s, dim=0).numpy()
    close(jacobian, a[:, None] * (np.eye(5) - a[None, :]), f"{PAGE}: dA_j/dS_l = A_j (delta_jl - A_l)")
    masked = oracles.scaled_dot_product_attention(Q[:, :4, :], K[:, :4, :], V[:, :4, :], oracles.causal_mask(4))[1]
    dS_masked = masked * (dA[:, :, :4] - (dA[:, :, :4] * masked).sum(-1, keepdims=True))
    assert np.all(dS_masked[..., ~oracles.causal_mask(4)] == 0.0), f"{PAGE}: masked entries have dS = 0"


def test_page_variance_argument_for_the_square_root_of_d():
    """docs/attention.md: Var(q . k) = d and Var(q . k / sqrt d) = 1; sd 8 for d = 64"""
    page_states(r"\mathrm{Var}(q \cdot k) = \sum_{c=1}^{d} \mathrm{Var}(q_c k_c) = d, \qquad \mathrm{Var}\Big(\frac{q \cdot k}{\sqrt{d}}\Big) = 1")
    gen = np.random.default_rng(0)
    for d in (16, 64):
        q, k = gen.standard_normal((100_000, d)), gen.standard_normal((100_000, d))
        dots = np.einsum("nd,nd->n", q, k)
        assert abs(dots.var() / d - 1) < 0.02, f"{PAGE}: Var(q.k) = d (d = {d}): {dots.var():.2f}"
        assert abs((dots / np.sqrt(d)).var() - 1) < 0.02, f"{PAGE}: Var(q.k / sqrt d) = 1"
    assert abs(dots.std() - 8) < 0.1, f"{PAGE}: a head of size 64 has unscaled scores of standard deviation 8"


def test_page_global_maximum_underflows():
    """docs/attention.md: a row 900 below the whole array's maximum underflows to 0/0"""
    page_states("a row whose scores lie 900 below that maximum underflows to\n$0/0$")
    scores = np.array([[900.0, 901.0, 899.0], [0.5, -0.2, 0.1]])
    with np.errstate(all="ignore"):
        e = np.exp(scores - scores.max())
        shared = e / e.sum(axis=-1, keepdims=True)
    assert np.all(e[1] == 0.0) and np.all(np.isnan(shared[1])), f"{PAGE}: 0/0 with a shared maximum"
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    close(e / e.sum(axis=-1, keepdims=True), torch.softmax(t64(scores), dim=-1).numpy(),
          f"{PAGE}: each row's own maximum keeps every row finite")


def test_page_causal_mask(rng):
    """docs/attention.md: M_ij = [j <= i], masked scores -inf, masked weights exactly 0; no token sees its future"""
    page_states(r"M_{ij} = [\, j \le i \,], \qquad \tilde{S}_{ij} = \begin{cases} S_{ij} & \text{if } M_{ij} \\ -\infty & \text{otherwise} \end{cases}, \qquad A = \mathrm{softmax}(\tilde{S})")
    T = 6
    M = np.array([[j <= i for j in range(T)] for i in range(T)])
    assert np.array_equal(M, oracles.causal_mask(T)), f"{PAGE}: M_ij = [j <= i]"
    q, k, v = rng.standard_normal((2, T, 4)), rng.standard_normal((2, T, 4)), rng.standard_normal((2, T, 3))
    out, A = oracles.scaled_dot_product_attention(q, k, v, M)
    assert np.all(A[:, ~M] == 0.0), f"{PAGE}: masked weights are exactly 0"
    close(A.sum(-1), np.ones((2, T)), f"{PAGE}: each row still sums to 1")
    close(out, F.scaled_dot_product_attention(t64(q), t64(k), t64(v), is_causal=True).numpy(), f"{PAGE}: is_causal")
    zeroed = oracles.scaled_dot_product_attention(q, k, v, None)[1] * M
    assert not np.allclose(zeroed.sum(-1), 1.0), f"{PAGE}: masking after the softmax breaks the row sums"
    x, p = rng.standard_normal((1, T, 6)), attention.block_params(rng, 6)
    changed = x.copy()
    changed[0, 4:] += rng.standard_normal((2, 6))
    before, after = oracles.transformer_block(x, p, 2), oracles.transformer_block(changed, p, 2)
    close(after[0, :4], before[0, :4], f"{PAGE}: positions before 4 ignore tokens 4 and 5", rtol=0, atol=1e-14)
    assert not np.allclose(after[0, 4:], before[0, 4:])


def test_page_multi_head_attention(rng):
    """docs/attention.md: MHA = Concat(head_1..head_H) W_O + b_O, heads on channel slices, as reshapes"""
    page_states(r"\mathrm{MHA}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\, W_O + b_O")
    page_states(r"\mathrm{head}_h = \mathrm{Attention}(Q_h, K_h, V_h)")
    B, T, C, H = 2, 5, 12, 3
    D = C // H
    X, p = rng.standard_normal((B, T, C)), attention.attention_params(rng, C)
    Q, K, V = (X @ p["W" + n] + p["b" + n] for n in "qkv")
    heads = [F.scaled_dot_product_attention(*(t64(a[..., h * D:(h + 1) * D]) for a in (Q, K, V)), is_causal=True)
             for h in range(H)]
    concat = torch.cat(heads, dim=-1).numpy() @ p["Wo"] + p["bo"]
    close(oracles.multi_head_attention(X, p, H), concat, f"{PAGE}: Concat(heads) W_O + b_O")
    reshaped = t64(Q).view(B, T, H, D).transpose(1, 2)
    close(reshaped.numpy()[:, 1], Q[..., D:2 * D], f"{PAGE}: (B, T, C) -> (B, T, H, D) -> (B, H, T, D)")
    assert not np.allclose(Q.reshape(B, H, T, D)[:, 1], Q[..., D:2 * D]), f"{PAGE}: without the transpose, positions mix"


def test_page_parameter_counts():
    """docs/attention.md: 4C^2 + 4C for the attention, 12C^2 + 13C for the block, 7,087,872 for C = 768"""
    page_states("$4C^2 + 4C$")
    page_states("$12C^2 + 13C$")
    page_states("that is 7,087,872 parameters per block")
    for C, H in [(6, 2), (768, 12)]:
        mha = torch.nn.MultiheadAttention(C, H, device="meta")
        assert sum(p.numel() for p in mha.parameters()) == 4 * C ** 2 + 4 * C, f"{PAGE}: 4C^2 + 4C"
        layer = torch.nn.TransformerEncoderLayer(C, H, dim_feedforward=4 * C, device="meta")
        assert sum(p.numel() for p in layer.parameters()) == 12 * C ** 2 + 13 * C, f"{PAGE}: 12C^2 + 13C"
    assert 12 * 768 ** 2 + 13 * 768 == 7_087_872, f"{PAGE}: GPT-2 small, per block"


def test_page_layer_norm_and_mlp(rng):
    """docs/attention.md: LN(x) = gamma (x - mu) / sqrt(sigma^2 + eps) + beta, biased variance; MLP and tanh GELU"""
    page_states(r"\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta, \qquad \mu = \frac{1}{C} \sum_{c=1}^{C} x_c, \qquad \sigma^2 = \frac{1}{C} \sum_{c=1}^{C} (x_c - \mu)^2")
    page_states(r"\mathrm{MLP}(u) = \mathrm{GELU}(u W_1 + b_1)\, W_2 + b_2")
    page_states(r"\mathrm{GELU}(x) \approx \tfrac{1}{2} x \Big(1 + \tanh\big(\sqrt{2/\pi}\,(x + 0.044715\, x^3)\big)\Big)")
    page_states(r"$\epsilon = 10^{-5}$")
    C = 7
    x, gamma, beta = rng.standard_normal((3, 4, C)), rng.standard_normal(C), rng.standard_normal(C)
    mu = x.sum(-1, keepdims=True) / C
    sigma2 = ((x - mu) ** 2).sum(-1, keepdims=True) / C
    close(gamma * (x - mu) / np.sqrt(sigma2 + 1e-5) + beta, F.layer_norm(t64(x), (C,), t64(gamma), t64(beta)).numpy(),
          f"{PAGE}: LN with the biased variance matches torch.nn.LayerNorm")
    W1, b1, W2, b2 = rng.standard_normal((C, 4 * C)), rng.standard_normal(4 * C), rng.standard_normal((4 * C, C)), rng.standard_normal(C)
    z = x @ W1 + b1
    gelu = 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
    mlp = torch.nn.Sequential(torch.nn.Linear(C, 4 * C), torch.nn.GELU(approximate="tanh"), torch.nn.Linear(4 * C, C)).double()
    with torch.no_grad():
        mlp[0].weight.copy_(t64(W1.T)), mlp[0].bias.copy_(t64(b1)), mlp[2].weight.copy_(t64(W2.T)), mlp[2].bias.copy_(t64(b2))
    close(gelu @ W2 + b2, mlp(t64(x)).detach().numpy(), f"{PAGE}: MLP(u) = GELU(u W1 + b1) W2 + b2", rtol=1e-9)


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
def test_page_pre_ln_and_post_ln_blocks(rng, norm_first):
    """docs/attention.md: pre-LN h = x + MHA(LN1(x)), y = h + MLP(LN2(h)); post-LN h = LN1(x + MHA(x)), y = LN2(h + MLP(h))"""
    pre = r"h = x + \mathrm{MHA}(\mathrm{LN}_1(x)), \qquad y = h + \mathrm{MLP}(\mathrm{LN}_2(h))"
    post = r"h = \mathrm{LN}_1(x + \mathrm{MHA}(x)), \qquad y = \mathrm{LN}_2(h + \mathrm{MLP}(h))"
    page_states(pre if norm_first else post)
    B, T, C, H = 2, 5, 6, 2
    x, p = rng.standard_normal((B, T, C)), attention.block_params(rng, C)
    ln1 = lambda u: oracles.layer_norm(u, p["ln1_g"], p["ln1_b"])  # noqa: E731
    ln2 = lambda u: oracles.layer_norm(u, p["ln2_g"], p["ln2_b"])  # noqa: E731
    mha = lambda u: oracles.multi_head_attention(u, p, H)  # noqa: E731
    mlp = lambda u: oracles.gelu(u @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]  # noqa: E731
    if norm_first:
        h = x + mha(ln1(x))
        y = h + mlp(ln2(h))
    else:
        h = ln1(x + mha(x))
        y = ln2(h + mlp(h))
    layer = load_block(torch_block(C, H, norm_first), p)
    expected = layer(t64(x), src_mask=causal_float_mask(T), is_causal=True).detach().numpy()
    close(y, expected, f"{PAGE}: {'pre' if norm_first else 'post'}-LN block vs nn.TransformerEncoderLayer")


def test_page_residual_stream_and_its_gradient(rng):
    """docs/attention.md: a pre-LN stack gives y = x + sum of its sub-layers; dL/dh = dL/dy + J^T dL/dy (J of MLP o LN2)"""
    page_states(r"$y = x + \sum_\ell F_\ell$")
    page_states(r"$\partial L / \partial h = \partial L / \partial y + J^\top \, \partial L / \partial y$, where $J$ is the")
    page_states(r"Jacobian of $\mathrm{MLP} \circ \mathrm{LN}_2$ at $h$")
    C, H = 6, 2
    x = rng.standard_normal((2, 4, C))
    stack = [attention.block_params(rng, C) for _ in range(3)]
    y, parts = x, []
    for p in stack:
        a = oracles.multi_head_attention(oracles.layer_norm(y, p["ln1_g"], p["ln1_b"]), p, H)
        m = oracles.gelu(oracles.layer_norm(y + a, p["ln2_g"], p["ln2_b"]) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        parts += [a, m]
        y = oracles.transformer_block(y, p, H)
    close(y, x + sum(parts), f"{PAGE}: y = x + sum of the sub-layers")
    p = stack[0]
    h = t64(rng.standard_normal((2, 4, C))).requires_grad_()
    dy = t64(rng.standard_normal((2, 4, C)))
    mlp = lambda u: F.gelu(F.layer_norm(u, (C,), t64(p["ln2_g"]), t64(p["ln2_b"])) @ t64(p["W1"]) + t64(p["b1"]),  # noqa: E731
                           approximate="tanh") @ t64(p["W2"]) + t64(p["b2"])
    (whole,) = torch.autograd.grad(h + mlp(h), h, grad_outputs=dy)
    (through,) = torch.autograd.grad(mlp(h), h, grad_outputs=dy)
    close(whole.numpy(), (dy + through).numpy(), f"{PAGE}: dL/dh = dL/dy + J^T dL/dy (J of the MLP branch)")


def test_page_attention_without_a_mask_ignores_order(rng):
    """docs/attention.md: permute the positions of X (without a mask) and the outputs are permuted the same way"""
    page_states("permute the positions of $X$ (without a mask) and the")
    x, p = rng.standard_normal((2, 6, 6)), attention.attention_params(rng, 6)
    perm = rng.permutation(6)
    close(oracles.multi_head_attention(x[:, perm], p, 2, causal=False),
          oracles.multi_head_attention(x, p, 2, causal=False)[:, perm], f"{PAGE}: permutation equivariance")


def test_page_sinusoidal_encoding_and_its_rotation():
    """docs/attention.md: PE_{t,2i} = sin(t / 10000^(2i/C)), PE_{t,2i+1} = cos(...); shifting by k rotates each pair"""
    page_states(r"PE_{t,\,2i} = \sin\Big(\frac{t}{10000^{2i/C}}\Big), \qquad PE_{t,\,2i+1} = \cos\Big(\frac{t}{10000^{2i/C}}\Big)")
    page_states(r"\begin{pmatrix} PE_{t+k,\,2i} \\ PE_{t+k,\,2i+1} \end{pmatrix} = \begin{pmatrix} \cos k\omega_i & \sin k\omega_i \\ -\sin k\omega_i & \cos k\omega_i \end{pmatrix} \begin{pmatrix} PE_{t,\,2i} \\ PE_{t,\,2i+1} \end{pmatrix}")
    page_states(r"$\omega_i = 10000^{-2i/C}$")
    T, C, k = 40, 512, 7
    pe = oracles.positional_encoding(T + k, C)
    for t in (0, 3, 20):
        for i in (0, 5, C // 2 - 1):
            close(pe[t, 2 * i], math.sin(t / 10000 ** (2 * i / C)), f"{PAGE}: PE_(t,2i)")
            close(pe[t, 2 * i + 1], math.cos(t / 10000 ** (2 * i / C)), f"{PAGE}: PE_(t,2i+1)")
            w = 10000 ** (-2 * i / C)
            R = np.array([[math.cos(k * w), math.sin(k * w)], [-math.sin(k * w), math.cos(k * w)]])
            close(pe[t + k, 2 * i:2 * i + 2], R @ pe[t, 2 * i:2 * i + 2], f"{PAGE}: PE_(t+k) = R(k w_i) PE_t")
    omega = 10000.0 ** (-np.arange(0, C, 2) / C)
    assert omega[0] == 1.0 and 0.9e-4 < omega[-1] < 1.1e-4, f"{PAGE}: from 1 radian per position to about 1e-4"


def test_page_rope_scores_depend_only_on_the_distance(rng):
    """docs/attention.md: (R_m q) . (R_n k) = q . (R_{n-m} k)"""
    page_states(r"(R_m q) \cdot (R_n k) = q \cdot (R_{n-m}\, k)")
    D = 8
    omega = 10000.0 ** (-np.arange(0, D, 2) / D)

    def R(t):
        rotation = np.zeros((D, D))
        for i, w in enumerate(omega):
            c, s = math.cos(t * w), math.sin(t * w)
            rotation[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[c, -s], [s, c]]
        return rotation

    q, k = rng.standard_normal(D), rng.standard_normal(D)
    for m, n in [(0, 0), (3, 7), (10, 2), (100, 105)]:
        close((R(m) @ q) @ (R(n) @ k), q @ (R(n - m) @ k), f"{PAGE}: RoPE, m = {m}, n = {n}")
    close((R(3) @ q) @ (R(7) @ k), (R(53) @ q) @ (R(57) @ k), f"{PAGE}: only n - m matters")


def _block_flops(x, p, H, cache_len=None):
    """Matrix-multiply FLOPs of one forward pass of our block in torch (PyTorch's FLOP counter)."""
    counter = FlopCounterMode(display=False)
    X = t64(x)
    with counter:
        q, k, v = (X @ t64(p["W" + n]) for n in "qkv")
        if cache_len is not None:  # one new token attends over cache_len + 1 cached keys
            k = torch.cat([t64(np.zeros((1, cache_len, x.shape[-1]))), k], dim=1)
            v = torch.cat([t64(np.zeros((1, cache_len, x.shape[-1]))), v], dim=1)
        B, Tq, C = q.shape
        D = C // H
        split = lambda a: a.view(B, a.shape[1], H, D).transpose(1, 2)  # noqa: E731
        scores = split(q) @ split(k).transpose(-1, -2)
        out = torch.softmax(scores, -1) @ split(v)
        merged = out.transpose(1, 2).reshape(B, Tq, C)
        h = merged @ t64(p["Wo"])
        F.gelu(h @ t64(p["W1"])) @ t64(p["W2"])
    return counter.get_total_flops(), scores.shape


def test_page_cost_of_attention_and_of_the_linear_maps(rng):
    """docs/attention.md: FLOPs(QK^T) + FLOPs(AV) = 4 T^2 C; linear maps 24 T C^2; quadratic wins beyond T = 6C"""
    page_states(r"\text{FLOPs}(QK^\top) + \text{FLOPs}(AV) = 4\,T^2 C")
    page_states(r"$24\,T C^2$")
    page_states(r"$T > 6C$")
    page_states("beyond about 4,600 tokens")
    C, H = 12, 3
    p = attention.block_params(rng, C)
    for T in (5, 9):
        total, scores_shape = _block_flops(rng.standard_normal((1, T, C)), p, H)
        assert scores_shape == (1, H, T, T), f"{PAGE}: a T x T matrix per head"
        assert total == 4 * T ** 2 * C + 24 * T * C ** 2, f"{PAGE}: 4 T^2 C + 24 T C^2 for T = {T}: {total}"
    assert 6 * 768 == 4608, f"{PAGE}: T > 6C is about 4,600 tokens at C = 768"


def test_page_cost_breakdown(rng):
    """docs/attention.md: 2 T^2 D per head for QK^T; 8 T C^2 for W_Q, W_K, W_V, W_O; 16 T C^2 for the MLP"""
    page_states(r"$2T^2 D$")
    page_states(r"$8TC^2$")
    page_states(r"$16TC^2$")
    T, C, H = 7, 12, 3
    D = C // H
    X, p = t64(rng.standard_normal((1, T, C))), attention.block_params(rng, C)

    def flops(fn):
        counter = FlopCounterMode(display=False)
        with counter:
            fn()
        return counter.get_total_flops()

    q = t64(rng.standard_normal((1, H, T, D)))
    assert flops(lambda: q @ q.transpose(-1, -2)) == H * 2 * T ** 2 * D, f"{PAGE}: 2 T^2 D per head"
    assert flops(lambda: [X @ t64(p["W" + n]) for n in "qkvo"]) == 8 * T * C ** 2, f"{PAGE}: 8 T C^2"
    assert flops(lambda: F.gelu(X @ t64(p["W1"])) @ t64(p["W2"])) == 16 * T * C ** 2, f"{PAGE}: 16 T C^2"


def test_page_kv_cache_step_is_one_row_of_causal_attention(rng):
    """docs/attention.md: o_t = softmax(q_t K_<=t^T / sqrt d) V_<=t equals row t of causal attention; cost O(C^2 + tC)"""
    page_states(r"o_t = \mathrm{softmax}\Big(\frac{q_t K_{\le t}^\top}{\sqrt{d}}\Big) V_{\le t}")
    page_states(r"$O(C^2 + tC)$")
    page_states(r"$O(tC^2 + t^2 C)$")
    T, d = 7, 5
    q, k, v = rng.standard_normal((1, T, d)), rng.standard_normal((1, T, d)), rng.standard_normal((1, T, 3))
    full = oracles.scaled_dot_product_attention(q, k, v, oracles.causal_mask(T))[0]
    K_cache, V_cache = np.zeros((1, 0, d)), np.zeros((1, 0, 3))
    for t in range(T):
        K_cache = np.concatenate([K_cache, k[:, t:t + 1]], axis=1)
        V_cache = np.concatenate([V_cache, v[:, t:t + 1]], axis=1)
        scores = q[:, t] @ K_cache[0].T / np.sqrt(d)
        o_t = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum() @ V_cache[0]
        close(o_t, full[:, t], f"{PAGE}: cached step {t} = row {t} of causal attention")
    C, H = 12, 3
    p = attention.block_params(rng, C)
    for t in (4, 8):
        step, _ = _block_flops(rng.standard_normal((1, 1, C)), p, H, cache_len=t - 1)
        assert step == 24 * C ** 2 + 4 * t * C, f"{PAGE}: a cached step costs 24 C^2 + 4 t C: {step}"
        full_cost, _ = _block_flops(rng.standard_normal((1, t, C)), p, H)
        assert full_cost == 24 * t * C ** 2 + 4 * t ** 2 * C, f"{PAGE}: recomputing costs 24 t C^2 + 4 t^2 C"


def test_page_kv_cache_size():
    """docs/attention.md: the cache holds 2 L T C numbers; GPT-2 small: 18,874,368, 36 MiB in 16-bit floats"""
    page_states("$2 L T C$")
    page_states("that is 18,874,368 numbers per\nsequence, 36 MiB in 16-bit floats")
    L, T, C = 12, 1024, 768
    cache = torch.zeros(L, 2, T, C, dtype=torch.float16, device="meta")  # a key and a value per token and layer
    assert cache.numel() == 2 * L * T * C == 18_874_368, f"{PAGE}: 2 L T C"
    assert cache.numel() * cache.element_size() == 36 * 2 ** 20, f"{PAGE}: 36 MiB"
