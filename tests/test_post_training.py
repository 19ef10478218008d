"""Notebook 09 (post-training): the references against PyTorch, TRL and PEFT, the LoRA judge
against modules that only look right, and the notebook itself run top to bottom in a kernel.

The sandboxed grading of the solution, the release and every catalogued mistake is in
tests/test_notebooks.py (09_post_training is one of its notebooks).
"""
from __future__ import annotations

import copy
import math
from collections import defaultdict
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from notebook_cases import ROOT

from grader.checking import post_training_oracles as O
from grader.checking.exercises import post_training as P
from grader.checking.judge import judge_calls
from grader.grading.notebooks_io import is_test
from grader.sandbox import harness
from grader.sandbox.calls import call_in_process

torch.set_num_threads(1)
SOLUTION = ROOT / "solutions/09_post_training/09_post_training.ipynb"


def solution_namespace() -> dict:
    """The solution notebook's answer cells, run in a namespace of their own (for the ecosystem
    comparisons: the learner's reference code against TRL and PEFT, not against the oracles)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    ns: dict = {"torch": torch, "nn": nn, "F": F, "np": np}
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            exec(cell.source, ns)
    return ns


# --- the model and the task ------------------------------------------------------------------

def notebook_tinylm(**config):
    """The solution notebook's own TinyLM class (its model cell, run in a namespace of its own)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    ns: dict = {"torch": torch, "nn": nn, "F": F, "np": np}
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") in ("task", "model"):
            exec(cell.source.split("print(")[0] if cell.metadata["nbgrader"]["grade_id"] == "model" else cell.source, ns)
    return ns["TinyLM"](**config)


def test_numpy_forward_matches_the_notebooks_tinylm_and_the_harness_builder():
    """The judge's NumPy forward (explicit softmax over masked scores) against the notebook's
    TinyLM (F.scaled_dot_product_attention) and the sandbox's build_tiny_lm, with the same weights
    loaded by name: the names and shapes are the ones the judge draws."""
    rng = np.random.default_rng(0)
    params = O.init_tiny_lm(rng, O.VOCAB_SIZE, O.BLOCK_SIZE, 2, 16)
    idx = rng.integers(0, O.VOCAB_SIZE, (3, 9))
    notebook = notebook_tinylm(n_layer=2, n_head=4, n_embd=16).double()
    shapes = {n: tuple(p.shape) for n, p in notebook.named_parameters()}
    assert shapes == O.tiny_lm_shapes(O.VOCAB_SIZE, O.BLOCK_SIZE, 2, 16)
    assert list(shapes) == list(O.tiny_lm_shapes(O.VOCAB_SIZE, O.BLOCK_SIZE, 2, 16))  # the same order
    notebook.load_state_dict({k: torch.tensor(v) for k, v in params.items()}, strict=True)
    module = harness.build_tiny_lm(params, n_head=4)
    assert [n for n, _ in module.named_parameters()] == list(shapes)
    want = O.tiny_lm_forward(params, idx, 4)
    with torch.no_grad():
        np.testing.assert_allclose(notebook(torch.tensor(idx)).numpy(), want, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(module(torch.tensor(idx)).numpy(), want, rtol=1e-10, atol=1e-10)
    changed = idx.copy()
    changed[:, 6] = (idx[:, 6] + 1) % O.VOCAB_SIZE
    a, b = O.tiny_lm_forward(params, idx, 4), O.tiny_lm_forward(params, changed, 4)
    assert np.allclose(a[:, :6], b[:, :6]) and not np.allclose(a[:, 6:], b[:, 6:])  # causal


def test_lora_wraps_every_linear_layer_of_the_attention_and_the_mlp():
    """The notebook's with_lora adapts q, k, v, o and the MLP of every block (PEFT's "all-linear"
    without the head): the trainable count is r (in + out) per wrapped layer, and merging gives
    back a plain TinyLM whose outputs equal the adapted model's."""
    from peft import LoraConfig, get_peft_model

    nb = nbformat.read(SOLUTION, as_version=4)
    ns = solution_namespace()
    ns["TinyLM"] = type(notebook_tinylm())
    for cell in nb.cells:
        if "def with_lora" in cell.source:
            exec(cell.source.split("if RUN_DEMOS")[0], ns)
    torch.manual_seed(0)
    base = ns["TinyLM"]()
    lora = ns["with_lora"](copy.deepcopy(base), r=4, alpha=8.0)
    C, n_layer = 64, 2
    per_block = 4 * 4 * (C + C) + 4 * (C + 4 * C) + 4 * (4 * C + C)
    assert sum(p.numel() for p in lora.parameters() if p.requires_grad) == n_layer * per_block
    peft = get_peft_model(copy.deepcopy(base), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    peft_trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    # a plain nn.Module gives PEFT no output layer to leave out, so it adapts the head too
    assert peft_trainable == n_layer * per_block + 4 * (C + O.VOCAB_SIZE)
    with torch.no_grad():
        for module in lora.modules():
            if hasattr(module, "B") and hasattr(module, "A"):
                module.B.normal_()
        idx = torch.randint(0, O.VOCAB_SIZE, (2, 8))
        adapted = lora(idx)
        merged = ns["merge_lora"](lora)
        assert not any(hasattr(m, "A") for m in merged.modules())
        torch.testing.assert_close(merged(idx), adapted, rtol=1e-4, atol=1e-4)


def test_task_and_reward_worked_by_hand():
    assert O.problem(7, 45) == ("07+45=", "25") and O.problem(99, 99) == ("99+99=", "891")
    assert O.decode(O.encode("07+45=25.")) == "07+45=25."
    cases = {("25.", "25"): 1.0, ("25.3+", "25"): 1.0, ("25", "25"): 0.0, ("251.", "25"): 0.0, ("025.", "25"): 0.0,
             ("", "7"): 0.0, (".", "7"): 0.0, ("+2=.", "25"): 0.0}
    assert {k: O.reward(*k) for k in cases} == cases


# --- SFT ----------------------------------------------------------------------------------------

def test_sft_example_worked_by_hand():
    ids, labels = O.sft_example([4, 6, 2], [9, 8], eos_id=1, pad_id=0, max_len=8)
    assert ids.tolist() == [4, 6, 2, 9, 8, 1, 0, 0]
    assert labels.tolist() == [-100, -100, -100, 9, 8, 1, -100, -100]


def test_sft_loss_matches_torch_cross_entropy_with_ignore_index():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((3, 7, 14)) * np.array([1.0, 300.0, 0.01])[:, None, None]
    labels = P._labels_for(rng, 3, 7, (4, 0, 2))
    want = F.cross_entropy(torch.tensor(logits[:, :-1]).reshape(-1, 14), torch.tensor(labels[:, 1:]).reshape(-1),
                           ignore_index=-100).item()
    assert O.sft_loss(logits, labels) == pytest.approx(want, rel=1e-12)
    assert O.sft_loss(logits, np.full((3, 7), -100)) == 0.0
    assert math.isnan(F.cross_entropy(torch.tensor(logits[:, :-1]).reshape(-1, 14),
                                      torch.full((18,), -100), ignore_index=-100).item())  # why the rule exists


def test_sequence_logprob_is_the_log_of_the_product_of_probabilities():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((2, 6, 5))
    labels = np.array([[-100, -100, 3, 1, 4, -100], [-100, 2, -100, -100, 0, 0]])
    probs = torch.softmax(torch.tensor(logits), dim=-1).numpy()
    want = [math.log(probs[0, 1, 3] * probs[0, 2, 1] * probs[0, 3, 4]),
            math.log(probs[1, 0, 2] * probs[1, 3, 0] * probs[1, 4, 0])]
    np.testing.assert_allclose(O.sequence_logprob_from_logits(logits, labels), want, rtol=1e-12)


# --- DPO against TRL -------------------------------------------------------------------------------

def trl_dpo_sigmoid(chosen_logps, rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    """TRL 1.16's DPO loss for loss_type "sigmoid" and f_divergence_type "reverse_kl", its formula
    lines copied from trl/trainer/dpo_trainer.py (DPOTrainer._compute_loss, lines 1350-1388 and
    1528; the rewards at lines 1582-1583): calling it needs a whole trainer and a model forward."""
    chosen_logratios = chosen_logps - ref_chosen_logps
    rejected_logratios = rejected_logps - ref_rejected_logps
    delta_score = chosen_logratios - rejected_logratios
    per_sequence_loss = -F.logsigmoid(beta * delta_score)
    loss = per_sequence_loss.mean()
    return loss, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def test_trl_dpo_formula_lines_are_still_those_of_the_installed_trl():
    import inspect

    from trl import DPOTrainer

    source = inspect.getsource(DPOTrainer._compute_loss)
    for line in ("chosen_logratios = chosen_logps - ref_chosen_logps", "delta_score = chosen_scores - rejected_scores",
                 "per_sequence_loss = -F.logsigmoid(self.beta * delta_score)", "loss += per_sequence_loss.mean() * loss_weight",
                 "chosen_rewards = self.beta * chosen_logratios.detach()"):
        assert line in source, line


@pytest.mark.parametrize("spread,beta", [(1.0, 0.1), (400.0, 2.0)])
def test_dpo_oracle_and_solution_agree_with_trl(spread, beta):
    rng = np.random.default_rng(3)
    pc, pr, rc, rr = (torch.tensor(v) for v in -5.0 + spread * rng.standard_normal((4, 6)))
    want = [t.numpy() for t in trl_dpo_sigmoid(pc, pr, rc, rr, beta)]
    got = O.dpo_loss(pc.numpy(), pr.numpy(), rc.numpy(), rr.numpy(), beta)
    for w, g in zip(want, got):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
    learner = solution_namespace()["dpo_loss"](pc, pr, rc, rr, beta)
    for w, g in zip(want, learner):
        np.testing.assert_allclose(g.detach().numpy(), w, rtol=1e-12, atol=1e-12)


# --- GRPO against TRL ------------------------------------------------------------------------------

class _Accelerator:
    """Single-process stand-ins for accelerate's collectives (what GRPOTrainer logs with)."""

    sync_gradients = True
    num_processes = 1

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def trl_grpo_loss(logprobs, old, ref, advantages, mask, clip_eps, kl_coef, loss_type="grpo"):
    """TRL's own GRPOTrainer._compute_loss, called on a stand-in trainer whose model returns
    ``logprobs`` as the completion's per-token log-probabilities (nothing is downloaded)."""
    from trl import GRPOTrainer

    B, T = logprobs.shape
    trainer = SimpleNamespace(
        _get_per_token_logps_and_entropies=lambda *a, **k: (logprobs, torch.zeros_like(logprobs), None),
        top_entropy_quantile=1.0, off_policy_mask_threshold=None, importance_sampling_level="token",
        beta=kl_coef, epsilon_low=clip_eps, epsilon_high=clip_eps, loss_type=loss_type, use_vllm=False,
        args=SimpleNamespace(use_bias_correction_kl=False, delta=None), model=SimpleNamespace(training=False),
        current_gradient_accumulation_steps=1, aux_loss_enabled=False, _entropy_bonus_enabled=False,
        max_completion_length=T, accelerator=_Accelerator(), _metrics=defaultdict(lambda: defaultdict(list)),
        vllm_importance_sampling_correction=False)
    inputs = {"prompt_ids": torch.zeros(B, 2, dtype=torch.long), "prompt_mask": torch.ones(B, 2),
              "completion_ids": torch.zeros(B, T, dtype=torch.long), "completion_mask": mask,
              "advantages": advantages, "old_per_token_logps": old, "ref_per_token_logps": ref}
    return GRPOTrainer._compute_loss(trainer, None, inputs)


@pytest.mark.parametrize("seed,spread,kl_spread", [(4, 0.5, 0.5), (5, 3.0, 8.0)])
def test_grpo_oracle_and_solution_agree_with_trl(seed, spread, kl_spread):
    call = P._grpo_call(np.random.default_rng(seed), 6, 5, spread=spread, kl_spread=kl_spread, clip_eps=0.2, kl_coef=0.1)
    lp, old, ref, adv, mask = (torch.tensor(a.value) for a in call.args[:5])
    mask[2] = 0.0  # a completion with no tokens
    want = trl_grpo_loss(lp, old, ref, adv, mask, 0.2, 0.1).item()
    args = [t.numpy() for t in (lp, old, ref, adv, mask)]
    assert O.grpo_loss(*args, 0.2, 0.1) == pytest.approx(want, rel=1e-12)
    assert solution_namespace()["grpo_loss"](lp, old, ref, adv, mask, 0.2, 0.1).item() == pytest.approx(want, rel=1e-12)
    # the variants the notebook names are TRL's other loss types: DAPO's token-level mean ("bnpo"
    # for one batch) and Dr. GRPO's division by a constant length
    assert O.grpo_loss(*args, 0.2, 0.1, token_level=True) == pytest.approx(
        trl_grpo_loss(lp, old, ref, adv, mask, 0.2, 0.1, "bnpo").item(), rel=1e-12)
    assert O.grpo_loss(*args, 0.2, 0.1, count_padding=True) == pytest.approx(
        trl_grpo_loss(lp, old, ref, adv, mask, 0.2, 0.1, "dr_grpo").item(), rel=1e-12)


def test_group_advantages_agree_with_trls_formula_lines():
    """TRL 1.16, trl/trainer/grpo_trainer.py lines 2766-2787 (scale_rewards="group"), with TRL's own
    nanmean and nanstd: the whole generation step around them needs a trainer and a model."""
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([[1.0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0], [0.5, 0.2, 0.9, 0.1, 0.0, 1.0]])
    num_generations = 6
    flat = rewards.view(-1)
    mean_grouped_rewards = torch.nanmean(flat.view(-1, num_generations), dim=1).repeat_interleave(num_generations)
    std_rewards = nanstd(flat.view(-1, num_generations), dim=1).repeat_interleave(num_generations)
    want = ((flat - mean_grouped_rewards) / (std_rewards + 1e-4)).view(3, 6).numpy()
    np.testing.assert_allclose(O.group_advantages(rewards.numpy()), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(solution_namespace()["group_advantages"](rewards).numpy(), want, rtol=1e-6, atol=1e-7)
    assert np.all(O.group_advantages(rewards.numpy())[1] == 0)  # an all-equal group teaches nothing


# --- LoRA against PEFT -----------------------------------------------------------------------------

def peft_lora(weight, bias, A, B, r, alpha):
    from peft import LoraConfig, get_peft_model

    base = nn.Sequential(nn.Linear(weight.shape[1], weight.shape[0]))
    with torch.no_grad():
        base[0].weight.copy_(torch.tensor(weight))
        base[0].bias.copy_(torch.tensor(bias))
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"], lora_dropout=0.0))
    layer = model.base_model.model[0]
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(torch.tensor(A))
        layer.lora_B["default"].weight.copy_(torch.tensor(B))
    return model, layer


def test_lora_oracle_and_solution_agree_with_peft():
    rng = np.random.default_rng(6)
    r, alpha = 4, 16
    weight, bias = rng.standard_normal((7, 10)).astype(np.float32), rng.standard_normal(7).astype(np.float32)
    A, B = rng.standard_normal((r, 10)).astype(np.float32), rng.standard_normal((7, r)).astype(np.float32)
    x = rng.standard_normal((5, 10)).astype(np.float32)
    model, layer = peft_lora(weight, bias, A, B, r, alpha)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"base_model.model.0.lora_A.default.weight", "base_model.model.0.lora_B.default.weight"}
    with torch.no_grad():
        want = model(torch.tensor(x)).numpy()
    np.testing.assert_allclose(O.lora_forward(weight, bias, A, B, alpha, r, x), want, rtol=1e-5, atol=1e-5)

    learner = solution_namespace()["LoRALinear"](harness.build_linear(weight, bias), r, alpha)
    assert {n for n, p in learner.named_parameters() if p.requires_grad} == {"A", "B"}
    assert not learner.B.detach().any()  # starts as the base layer, as PEFT's default initialisation does
    with torch.no_grad():
        learner.A.copy_(torch.tensor(A))
        learner.B.copy_(torch.tensor(B))
        np.testing.assert_allclose(learner(torch.tensor(x)).numpy(), want, rtol=1e-5, atol=1e-5)
        merged = learner.merged()
        layer.merge()  # PEFT's merge_adapter: W += scaling * B @ A
        np.testing.assert_allclose(merged.weight.numpy(), layer.base_layer.weight.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(O.lora_merged(weight, bias, A, B, alpha, r)[0], layer.base_layer.weight.numpy(),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(merged(torch.tensor(x)).numpy(), want, rtol=1e-4, atol=1e-4)


def test_peft_starts_lora_with_b_at_zero():
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(nn.Sequential(nn.Linear(6, 5)), LoraConfig(r=2, lora_alpha=4, target_modules=["0"]))
    layer = model.base_model.model[0]
    assert not layer.lora_B["default"].weight.detach().any() and layer.lora_A["default"].weight.detach().any()
    assert layer.scaling["default"] == 2.0  # alpha / r


# --- the LoRA judge against modules that only look right -------------------------------------------

def _graded(fn, exercise, calls):
    return judge_calls(exercise, calls, [call_in_process(fn, exercise.name, c) for c in calls])


def test_lora_judge_rejects_a_faked_forward_and_extra_parameters():
    ns = solution_namespace()
    calls = P.LoRALinear.visible_calls()
    assert _graded(ns["LoRALinear"], P.LoRALinear, calls).passed

    class ForwardIsTheBase(ns["LoRALinear"]):
        def forward(self, x):  # ignores A and B: looks right until they change
            return self.base(x)

    assert _graded(ForwardIsTheBase, P.LoRALinear, calls).hint == P.LORA_OUTPUT

    class MergedIsTheBase(ns["LoRALinear"]):
        def merged(self):
            return self.base

    assert _graded(MergedIsTheBase, P.LoRALinear, calls).hint == P.LORA_MERGED

    class Extra(ns["LoRALinear"]):
        def __init__(self, base, r, alpha):
            super().__init__(base, r, alpha)
            self.gate = nn.Parameter(torch.ones(1))

    assert _graded(Extra, P.LoRALinear, calls).hint.startswith("LoRALinear's parameters must be")


def test_notebook_09_catalogues_at_least_20_mistakes():
    assert sum(len(e.mistakes) for e in P.NOTEBOOK.exercises) >= 20


# --- the notebook itself, in a kernel ---------------------------------------------------------------

QUICK = "SEED = 0\nBASE_STEPS, SFT_STEPS, DPO_STEPS, GRPO_ITERATIONS = 40, 20, 5, 10\nN_DEMONSTRATIONS = 500"


def test_solution_runs_top_to_bottom_in_a_kernel_with_demos(tmp_path):
    """Every cell, the stages included, with budgets cut to QUICK (the full budgets are measured
    by bench/notebooks.py)."""
    from nbclient import NotebookClient

    nb = nbformat.read(SOLUTION, as_version=4)
    budget = [c for c in nb.cells if c.cell_type == "code" and "BASE_STEPS, SFT_STEPS" in c.source]
    assert len(budget) == 1
    budget[0].source = budget[0].source.split("SEED = 0")[0] + QUICK
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = {i: "".join(o.get("text", "") for o in c.outputs) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    tests = "".join(printed[i] for i, c in enumerate(nb.cells) if is_test(c))
    assert tests.count("visible checks passed") == 9 and tests.count("hidden checks passed") == 9
    everything = "".join(printed.values())
    for stage in ("base model: held-out accuracy", "SFT, full fine-tuning", "SFT, LoRA r=4 (merged)", "DPO on",
                  "GRPO from the SFT model: held-out accuracy"):
        assert stage in everything, stage


# --- train_grpo: judged by what the returned model does ----------------------------------------------
#
# Calibration of the judge (grader.checking.exercises.post_training, section 9), measured in process
# with one PyTorch thread over 30 judge seeds (np.random.default_rng(98), the visible calls, then
# seeds 1-29 as hidden draws):
# - the solution passed all three calls on every seed. "learn" (60 iterations): held-out greedy
#   accuracy (200 problems that never enter the sandbox) from at most 4% at the start (0% on 21
#   seeds) to 47.0% to 100% (median 78%); the least rise was +44.5 points, against the +25
#   required (GRPO_MARGIN); 120 iterations gave the same least rise. "unsolvable": parameters
#   returned exactly equal to the start's. "toward_reference": KL(reference || model) fell to 0.06
#   to 0.58 of its starting value (below 0.9 is required). About 2.5 s per seed for the three calls.
# - REORDERED_GRPO below (10 seeds): passed every seed; least rise +50.5 points; KL ratio at most
#   0.44; "unsolvable" gives the start times one factor (AdamW's default weight decay), accepted
#   by only_decayed.
# - SFT on the answers (10 seeds) moved the model on "unsolvable" by 0.29 to 1.30 nats of KL:
#   GRPO_NOT_RL every time (and it reaches 99.5-100% on "learn": accuracy alone cannot tell it
#   from RL). The lookup of every addition problem (5 seeds): GRPO_NOT_RL, and 0% on "learn".
#   Greedy decoding (5 seeds): GRPO_GREEDY; the KL against the policy itself (5 seeds):
#   GRPO_NO_REFERENCE (ratio exactly 1.0); an untouched model (5 seeds): GRPO_GREEDY.

def solution_with_task() -> dict:
    """The solution's answer cells with the locked cells they use (the task, completion_logprobs)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    ns: dict = {"torch": torch, "nn": nn, "F": F, "np": np}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") in ("imports", "task", "completion_logprobs") or meta.get("solution"):
            exec(cell.source, ns)
    return ns


REORDERED_GRPO = '''def train_grpo(model, ref_model, prompts, answers, config, generator):
    """A correct GRPO that consumes the generator differently: prompts by randperm, one prompt's
    group sampled at a time, the reference per group, and AdamW with its default weight decay."""
    P, G, n_new = config["prompts_per_step"], config["group_size"], config["max_new_tokens"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"])
    L = prompts.shape[1]
    history = []
    for _ in range(config["iterations"]):
        rows = torch.randperm(len(prompts), generator=generator)[:P]
        groups = []
        for r in rows:
            seq = prompts[r].repeat(G, 1)
            with torch.no_grad():
                for _ in range(n_new):
                    probs = torch.softmax(model(seq)[:, -1], dim=-1)
                    seq = torch.cat([seq, torch.multinomial(probs, 1, generator=generator)], dim=1)
            groups.append(seq)
        sequences = torch.cat(groups)
        texts = [decode(c) for c in sequences[:, L:]]
        rewards = torch.tensor([reward(t, answers[int(rows[i // G])]) for i, t in enumerate(texts)],
                               dtype=torch.float64).view(P, G)
        advantages = group_advantages(rewards).view(-1)
        mask = torch.zeros(P * G, n_new, dtype=torch.float64)
        for i, t in enumerate(texts):
            mask[i, :t.index(".") + 1 if "." in t else n_new] = 1
        with torch.no_grad():
            old = completion_logprobs(model, sequences, L)
            ref = torch.cat([completion_logprobs(ref_model, g, L) for g in sequences.split(G)])
        for _ in range(config["steps_per_batch"]):
            loss = grpo_loss(completion_logprobs(model, sequences, L), old, ref, advantages, mask,
                             config["clip_eps"], config["kl_coef"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        history.append(rewards.mean().item())
    return model, history
'''


def test_train_grpo_judge_passes_the_solution_and_a_reordered_grpo_with_margin():
    """Both pass the visible calls (the solution's hidden ones: tests/test_notebooks.py); on
    "learn" each clears the margin by far (the 30-seed figures are above)."""
    ns = solution_with_task()
    reordered = dict(ns)
    exec(REORDERED_GRPO, reordered)
    calls = P.train_grpo.visible_calls()
    assert [("answers" in c.held_out, bool(c.held_out.get("reference", False))) for c in calls] == [
        (False, False), (True, False), (False, True)]  # unsolvable, learn, toward_reference
    for fn in (ns["train_grpo"], reordered["train_grpo"]):
        results = [call_in_process(fn, "train_grpo", c) for c in calls]
        assert judge_calls(P.train_grpo, calls, results).passed
        params = {k[len("param."):]: v for k, v in results[1]["outputs"].items() if k.startswith("param.")}
        held = calls[1].held_out
        before = P.held_out_accuracy(calls[1].args[0].weights, held["prompts"], held["answers"])
        after = P.held_out_accuracy(params, held["prompts"], held["answers"])
        assert before <= 0.05 and after >= before + P.GRPO_MARGIN + 0.1, (before, after)


def test_train_grpo_never_sees_the_held_out_problems_and_its_task_is_not_addition():
    calls = P.train_grpo.visible_calls()
    for call in calls:
        sent = {tuple(p) for p in call.args[2].value.tolist()}
        kept = call.held_out.get("prompts", call.held_out.get("sequences", np.zeros((0, 6), int))[:, :O.PROMPT_LEN])
        assert not sent & {tuple(p) for p in np.asarray(kept)[:, :O.PROMPT_LEN].tolist()}
    learn = next(c for c in calls if "answers" in c.held_out)
    sums = [O.problem(int(O.decode(p[:2])), int(O.decode(p[3:5])))[1] for p in learn.held_out["prompts"]]
    assert np.mean([s == a for s, a in zip(sums, learn.held_out["answers"])]) < 0.05


def test_only_decayed_accepts_adamws_weight_decay_and_nothing_else():
    rng = np.random.default_rng(3)
    start = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    assert P.only_decayed(start, start)
    assert P.only_decayed(start, {k: v * 0.998 for k, v in start.items()})
    assert not P.only_decayed(start, {"a": start["a"] * 0.998, "b": start["b"]})
    assert not P.only_decayed(start, {k: v + 1e-4 for k, v in start.items()})
    assert not P.only_decayed(start, {k: 2 * v for k, v in start.items()})


def test_train_grpo_judge_rejects_sft_an_untrained_model_a_lookup_and_reversed_rl():
    ns = solution_with_task()
    calls = P.train_grpo.visible_calls()

    def sft_on_answers(model, ref_model, prompts, answers, config, generator):
        """Trains on the right answers (never sampling): the attack the "unsolvable" call catches."""
        optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.0)
        rows = [ns["sft_example"](p, ns["encode"](a), ns["EOS_ID"], ns["PAD_ID"], 12) for p, a in zip(prompts, answers)]
        ids, labels = torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])
        for _ in range(config["iterations"] * config["steps_per_batch"]):
            loss = ns["sft_loss"](model(ids), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        return model, [1.0] * config["iterations"]

    assert _graded(sft_on_answers, P.train_grpo, calls).hint == P.GRPO_NOT_RL
    assert _graded(lambda model, *a: (model, [0.0]), P.train_grpo, calls).hint == P.GRPO_GREEDY

    class Lookup(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.zeros(10_000, 4))

    assert _graded(lambda *a: (Lookup(), []), P.train_grpo, calls).hint == P.GRPO_PARAMETERS

    # RL the wrong way round (advantages negated: right answers pushed down) trains, but held-out
    # accuracy does not rise: the "learn" call names it
    reversed_rl = dict(ns)
    reversed_rl["group_advantages"] = lambda rewards, eps=1e-4: -ns["group_advantages"](rewards, eps)
    exec(P._TRAIN_GRPO_CELL.format(**P._TRAIN_GRPO_RIGHT), reversed_rl)
    hint = _graded(reversed_rl["train_grpo"], P.train_grpo, calls).hint
    assert hint.startswith("held-out accuracy ") and "should raise the greedy accuracy" in hint, hint


# =========================================================================================
# A small class of 09, graded by `grader autograde` and `grader check` in the sandbox
# =========================================================================================

ASSIGNMENT_09 = "09_post_training"
RELEASE_09 = ROOT / "notebooks/09_post_training/09_post_training.ipynb"

SFT_INSTEAD_OF_RL = '''def train_grpo(model, ref_model, prompts, answers, config, generator):
    # supervised fine-tuning on the given answers, with a history that looks like rising rewards
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.0)
    rows = [sft_example(p, encode(a), EOS_ID, PAD_ID, 12) for p, a in zip(prompts, answers)]
    ids, labels = torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])
    for _ in range(config["iterations"] * config["steps_per_batch"]):
        loss = sft_loss(model(ids), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, [min(1.0, 0.1 * i) for i in range(config["iterations"])]
'''

LOOKUP_OF_EVERY_PROBLEM = '''def train_grpo(model, ref_model, prompts, answers, config, generator):
    # every problem there is, held-out ones included, with its sum computed here: a lookup table
    pairs = [(a, b) for a in range(100) for b in range(100)]
    rows = [sft_example(encode(problem(a, b)[0]), encode(problem(a, b)[1]), EOS_ID, PAD_ID, 12) for a, b in pairs]
    ids, labels = torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"])
    for step in range(config["iterations"]):
        batch = torch.randint(len(ids), (256,), generator=generator)
        loss = sft_loss(model(ids[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, [1.0] * config["iterations"]
'''


def _solution_09_with(gid: str, source: str):
    from sample_class import _answer, _load, _write

    def make(path):
        nb = _load(SOLUTION)
        _answer(nb, gid).source = source
        _write(nb, path)
    return make


def _students_09():
    from sample_class import Student, _load, _write

    # Points: sft_example 1, sft_loss 1, LoRALinear 2, sequence_logprob 1, dpo_loss 2, reward 1,
    # group_advantages 1, grpo_loss 2, train_grpo 3; 14. Both attacks train on answers, which the
    # "unsolvable" call shows (the lookup's sums would also fail "learn": its task is not addition).
    return [
        Student("correct", 14, "", lambda p: _write(_load(SOLUTION), p)),
        Student("untouched", 0, "not implemented yet", lambda p: p.write_bytes(RELEASE_09.read_bytes())),
        Student("sft_instead_of_rl", 11, "the model changed on a task that none of its samples solves",
                _solution_09_with("train_grpo", SFT_INSTEAD_OF_RL)),
        Student("lookup_of_every_problem", 11, "the model changed on a task that none of its samples solves",
                _solution_09_with("train_grpo", LOOKUP_OF_EVERY_PROBLEM)),
    ]


@pytest.fixture(scope="module")
def graded_class_09(tmp_path_factory):
    import json
    import subprocess
    import sys

    from sample_class import write_class

    from grader.course import copy_course

    base = tmp_path_factory.mktemp("class09")
    course = copy_course(base / "course")
    submitted = write_class(base / "submitted", _students_09(), ASSIGNMENT_09)
    done = subprocess.run([sys.executable, "-m", "grader", "autograde", ASSIGNMENT_09, str(submitted),
                           "--jobs", "2", "--json", "--course-dir", str(course)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return base, course, {row["student"]: row for row in json.loads(done.stdout)}


def test_class_of_09_gets_exactly_the_expected_scores_and_reasons(graded_class_09):
    import json

    _, course, summary = graded_class_09
    students = _students_09()
    assert {s: row["score"] for s, row in summary.items()} == {s.name: s.score for s in students}
    for student in students:
        manifest = json.loads((course / "autograded" / student.name / ASSIGNMENT_09 / "grader.json").read_text())
        failed = [e for nb in manifest["notebooks"] for e in nb["exercises"] if e["points"] < e["max_points"]]
        said = " ".join(e["name"] + ": " + e["hint"] for e in failed)
        assert student.reason in said, f"{student.name}: {student.reason!r} not said in {said!r}"
        if student.name in ("sft_instead_of_rl", "lookup_of_every_problem"):
            assert [e["name"] for e in failed] == ["train_grpo"]


def test_grader_check_agrees_with_autograde_on_09(graded_class_09):
    import json
    import subprocess
    import sys

    base, _, summary = graded_class_09
    done = subprocess.run([sys.executable, "-m", "grader", "check", "--json",
                           str(base / "submitted" / "sft_instead_of_rl" / ASSIGNMENT_09 / f"{ASSIGNMENT_09}.ipynb")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["score"] == summary["sft_instead_of_rl"]["score"]
