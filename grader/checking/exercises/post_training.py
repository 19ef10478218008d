"""Notebook 09: post-training a small model on 2-digit addition: SFT with a loss mask, LoRA,
sequence log-probabilities, DPO, a verifiable reward, and GRPO's advantages and loss.

What each exercise trusts (nothing a learner's code computes is believed as such):

- ``sft_example``, ``sft_loss``, ``dpo_loss``, ``reward``, ``group_advantages``, ``grpo_loss``:
  the returned numbers are the answer; they are compared with
  ``grader.checking.post_training_oracles``, computed here from the inputs that were sent. On
  the calls with the "inputs_after" probe, the argument tensors as they were after the call are
  compared with those sent.
- ``sequence_logprob``: the judge hands over its own model (weights it chose), so the answer is
  its own NumPy forward pass on those weights.
- ``LoRALinear``: only the module's parameters (names, values, which are trainable) and outputs
  are read; the judge sets A and B to values it chooses and recomputes the adapted output and
  the merged layer from them, and checks the module's own outputs against that.
"""
from __future__ import annotations

import numpy as np

from grader.checking import post_training_oracles as O
from grader.checking.spec import Call, Exercise, Linear, Mistake, NotebookSpec, Tensor, TinyLM, TorchGenerator

KEEPS_INPUTS = ("the function changed its input tensors in place (for example labels[labels == -100] = 0): "
                "work on a copy (tensor.clone()) and leave the arguments unchanged.")


def _cell(signature: str, body: str) -> str:
    return signature + "\n" + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())


def _t(array) -> Tensor:
    return Tensor("torch", np.asarray(array))


# --- 1. sft_example --------------------------------------------------------------------------

SFT_PROMPT = ("labels: the prompt's positions are labelled; set them to -100 so that only the answer and EOS are "
              "learned (the model is not trained to predict the prompt).")
SFT_EOS = "labels: the EOS token is not labelled; label it too, or the model never learns where its answer stops."
SFT_PAD = "labels: the padding is labelled with pad_id; set the padding's labels to -100 so that padding is never a target."
SFT_SHIFTED = ("labels: they are already shifted by one; keep labels aligned with input_ids (labels[t] is input_ids[t] "
               "or -100): the loss does the shift.")


def _example_call(prompt, answer, eos, pad, max_len, probe=None):
    return Call((_t(np.asarray(prompt, np.int64)), _t(np.asarray(answer, np.int64)), eos, pad, max_len), probe=probe)


def _hidden_example_calls(rng):
    calls = []
    for probe in (None, "inputs_after"):
        n_p, n_a = int(rng.integers(3, 8)), int(rng.integers(1, 5))
        extra = int(rng.integers(1, 4))
        calls.append(_example_call(rng.integers(2, 14, n_p), rng.integers(2, 14, n_a), 1, 0, n_p + n_a + 1 + extra, probe))
    return calls


def _example_expected(prompt, answer, eos, pad, max_len, **switches):
    return O.sft_example(prompt, answer, eos, pad, max_len, **switches)


_EXAMPLE_CELL = """def sft_example(prompt_ids, answer_ids, eos_id, pad_id, max_len):
    ids = torch.cat([prompt_ids, answer_ids, torch.tensor([eos_id])])
    n = len(ids)
    input_ids = torch.full((max_len,), pad_id, dtype=torch.long)
    input_ids[:n] = ids
    labels = torch.full((max_len,), -100, dtype=torch.long)
    labels[{start}:{stop}] = ids[{start}:{stop}]
    {pad}
    return input_ids, {labels}
"""
_EXAMPLE_RIGHT = dict(start="len(prompt_ids)", stop="n", pad="pass", labels="labels")

sft_example = Exercise(
    name="sft_example", points=1, title="An SFT example: labels only on the answer",
    visible_calls=lambda: [_example_call([4, 6, 2, 5, 7, 3], [9, 8], 1, 0, 12, "inputs_after"),
                           _example_call([5, 2, 6, 3], [7], 1, 0, 6)],          # no padding at all
    hidden_calls=_hidden_example_calls,
    expected=_example_expected,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(SFT_PROMPT, wrong=lambda *a: _example_expected(*a, label_prompt=True),
                inject=_EXAMPLE_CELL.format(**{**_EXAMPLE_RIGHT, "start": "0"})),
        Mistake(SFT_EOS, wrong=lambda *a: _example_expected(*a, label_eos=False),
                inject=_EXAMPLE_CELL.format(**{**_EXAMPLE_RIGHT, "stop": "n - 1"})),
        Mistake(SFT_PAD, wrong=lambda *a: _example_expected(*a, pad_label="pad"),
                inject=_EXAMPLE_CELL.format(**{**_EXAMPLE_RIGHT, "pad": "labels[n:] = pad_id"})),
        Mistake(SFT_SHIFTED, wrong=lambda *a: _example_expected(*a, shifted=True),
                inject=_EXAMPLE_CELL.format(**{**_EXAMPLE_RIGHT, "labels": "torch.cat([labels[1:], torch.tensor([-100])])"})),
    ),
)

# --- 2. sft_loss -------------------------------------------------------------------------------

LOSS_SHIFT = ("loss: the labels are not shifted; logits[:, t] predicts the token at t + 1, so compare "
              "logits[:, :-1] with labels[:, 1:].")
LOSS_ALL_POSITIONS = ("loss: it is divided by every position, padding and prompt included; divide by the number of "
                      "labelled positions (labels != -100) only.")
LOSS_PER_SEQUENCE = ("loss: it averages each sequence, then the sequences; average over all labelled tokens of the "
                     "batch at once (F.cross_entropy with ignore_index=-100), so a long answer weighs more.")
LOSS_EMPTY = ("loss: a batch with no labelled position gives nan (0 / 0); return 0.0 there (for example "
              "(logits * 0).sum(), which keeps the graph).")


def _labels_for(rng, B, T, lengths):
    """Labels of B sequences of length T: -100, then ``lengths[b]`` labelled ids, then -100."""
    labels = np.full((B, T), O.IGNORE, np.int64)
    for b, n in enumerate(lengths):
        if n:
            start = int(rng.integers(1, T - n + 1))
            labels[b, start:start + n] = rng.integers(0, 14, n)
    return labels


def _loss_call(rng, B, T, lengths, scale=1.0, probe=None):
    logits = rng.standard_normal((B, T, 14)) * scale
    return Call((_t(logits), _t(_labels_for(rng, B, T, lengths))), probe=probe)


_LOSS_CELL = """def sft_loss(logits, labels):
    {body}
"""
_LOSS_RIGHT = """logits, labels = logits[:, :-1], labels[:, 1:]
    if (labels != -100).sum() == 0:
        return (logits * 0).sum()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)"""

sft_loss = Exercise(
    name="sft_loss", points=1, title="The SFT loss: only labelled tokens, shifted by one",
    visible_calls=lambda: [_loss_call(np.random.default_rng(90), 3, 8, (5, 2, 3), probe="inputs_after"),
                           _loss_call(np.random.default_rng(91), 2, 6, (0, 3), scale=300.0),  # a row with no labels
                           _loss_call(np.random.default_rng(92), 2, 5, (0, 0))],  # no labels at all
    hidden_calls=lambda rng: [_loss_call(rng, 4, 30, (1, 20, 7, 0), probe="inputs_after"),
                              _loss_call(rng, 3, 5, (0, 0, 0)), _loss_call(rng, 2, 9, (4, 6), scale=1e3)],
    expected=O.sft_loss,
    atol=1e-6,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(LOSS_SHIFT, wrong=lambda z, y: O.sft_loss(z, y, shift=False),
                inject=_LOSS_CELL.format(body=_LOSS_RIGHT.replace("logits, labels = logits[:, :-1], labels[:, 1:]",
                                                                   "pass"))),
        Mistake(LOSS_ALL_POSITIONS, wrong=lambda z, y: O.sft_loss(z, y, count_all=True),
                inject=_LOSS_CELL.format(body="""logits, labels = logits[:, :-1], labels[:, 1:]
    losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100,
                             reduction="none")
    return losses.mean()""")),
        Mistake(LOSS_EMPTY, wrong=lambda z, y: O.sft_loss(z, y, empty_nan=True),
                inject=_LOSS_CELL.format(body="""logits, labels = logits[:, :-1], labels[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)""")),
        Mistake(LOSS_PER_SEQUENCE, wrong=lambda z, y: O.sft_loss(z, y, per_sequence=True),
                inject=_LOSS_CELL.format(body="""logits, labels = logits[:, :-1], labels[:, 1:]
    losses = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")
    return (losses.sum(dim=1) / (labels != -100).sum(dim=1)).mean()""")),
    ),
)

# --- 3. LoRALinear -------------------------------------------------------------------------------

LORA_NAMES = ("LoRALinear's parameters must be base.weight, base.bias (the layer it was given), A (r, in_features) "
              "and B (out_features, r), all in float32 like the base: {found}.")
LORA_FROZEN = ("base.weight and base.bias must be frozen (requires_grad=False) and only A and B trainable: "
               "LoRA trains r * (in + out) numbers, not the whole layer.")
LORA_B_ZERO = ("B must start at zero (A small random): with a random B the adapted layer differs from the base "
               "before any training, so fine-tuning starts from a changed model.")
LORA_A_RANDOM = ("A must start small and random (B at zero): with A = 0 as well, both gradients are zero and "
                 "the adapter never trains.")
LORA_BASE_CHANGED = "base.weight and base.bias must stay the layer's own values: LoRA leaves the base weights unchanged."
LORA_SCALE = "output: the update is scaled by alpha, not alpha / r; multiply x @ A.T @ B.T by alpha / r."
LORA_OUTPUT = "output: forward(x) must be base(x) + (alpha / r) * x @ A.T @ B.T."
LORA_MERGE_SCALE = "merged(): its weight is W + B @ A; scale the update: W + (alpha / r) * B @ A."
LORA_MERGED = ("merged(): it must be one nn.Linear with weight W + (alpha / r) * B @ A and the base's bias, "
               "so that it gives the same outputs as the adapted layer.")


def _lora_call(rng, n_in, n_out, r, alpha, batch=5):
    weight = (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)
    bias = (0.1 * rng.standard_normal(n_out)).astype(np.float32)
    probe_args = {"x": rng.standard_normal((batch, n_in)).astype(np.float32),
                  "A": (0.5 * rng.standard_normal((r, n_in))).astype(np.float32),
                  "B": (0.5 * rng.standard_normal((n_out, r))).astype(np.float32)}
    return Call((Linear(weight, bias), r, alpha), probe="lora", probe_args=probe_args)


def _close(a, b, tol=1e-4) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=tol, atol=tol))


def judge_lora(call: Call, outputs) -> str | None:
    base, r, alpha = call.args
    want = {"base.weight": base.weight.shape, "base.bias": base.bias.shape, "A": (r, base.weight.shape[1]),
            "B": (base.weight.shape[0], r)}
    params = {k[len("param."):]: v for k, v in outputs.items() if k.startswith("param.")}
    found = {k: tuple(v.shape) for k, v in params.items()}
    if found != want or any(v.dtype != np.float32 for v in params.values()):
        return LORA_NAMES.format(found=", ".join(f"{k} {s}" for k, s in found.items()) or "none")
    trainable = {k[len("trainable."):]: bool(v) for k, v in outputs.items() if k.startswith("trainable.")}
    if trainable != {"base.weight": False, "base.bias": False, "A": True, "B": True}:
        return LORA_FROZEN
    if not (_close(params["base.weight"], base.weight, 0) and _close(params["base.bias"], base.bias, 0)):
        return LORA_BASE_CHANGED
    if np.any(params["B"] != 0):
        return LORA_B_ZERO
    if not np.all(np.isfinite(params["A"])) or np.all(params["A"] == 0) or np.abs(params["A"]).max() > 10:
        return LORA_A_RANDOM
    x, A, B = call.probe_args["x"], call.probe_args["A"], call.probe_args["B"]
    if not _close(outputs["output.initial"], O.lora_forward(base.weight, base.bias, A, 0 * B, alpha, r, x)):
        return LORA_OUTPUT
    adapted = outputs["output.adapted"]
    if not _close(adapted, O.lora_forward(base.weight, base.bias, A, B, alpha, r, x)):
        if _close(adapted, O.lora_forward(base.weight, base.bias, A, B, alpha, r, x, scale=alpha)):
            return LORA_SCALE
        return LORA_OUTPUT
    weight, bias = O.lora_merged(base.weight, base.bias, A, B, alpha, r)
    if _close(outputs["merged.weight"], base.weight + B @ A) and r != alpha:
        return LORA_MERGE_SCALE
    if not (_close(outputs["merged.weight"], weight) and _close(outputs["merged.bias"], bias)
            and _close(outputs["merged.output"], x @ weight.T + bias)):
        return LORA_MERGED
    return None


_LORA_CELL = """class LoRALinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base, self.r, self.alpha = base, r, alpha
        {freeze}
        out_features, in_features = base.weight.shape
        self.A = nn.Parameter({A_init})
        self.B = nn.Parameter({B_init})

    def forward(self, x):
        return self.base(x) + {scale} * (x @ self.A.T) @ self.B.T

    def merged(self):
        layer = nn.Linear(self.A.shape[1], self.B.shape[0]).to(self.base.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.base.weight + {merge_scale} * self.B @ self.A)
            layer.bias.copy_(self.base.bias)
        return layer
"""
_LORA_RIGHT = dict(freeze="self.base.requires_grad_(False)",
                   A_init="0.01 * torch.randn(r, in_features, dtype=base.weight.dtype)",
                   B_init="torch.zeros(out_features, r, dtype=base.weight.dtype)",
                   scale="(self.alpha / self.r)", merge_scale="(self.alpha / self.r)")

LoRALinear = Exercise(
    name="LoRALinear", points=2, title="LoRA: a frozen layer plus a trainable low-rank update",
    visible_calls=lambda: [_lora_call(np.random.default_rng(93), 6, 5, 2, 8.0)],
    hidden_calls=lambda rng: [_lora_call(rng, 16, 12, 4, 16.0), _lora_call(rng, 7, 9, 1, 3.0, batch=3)],
    judge=judge_lora,
    trusts=("the module's parameters (names, values, requires_grad) and its outputs; the judge sets A and B to "
            "values it chooses, recomputes the adapted output and the merged layer from them here, and checks "
            "the module's own outputs and merged() against that."),
    mistakes=(
        Mistake(LORA_B_ZERO, inject=_LORA_CELL.format(**{**_LORA_RIGHT, "B_init": _LORA_RIGHT["A_init"].replace(
            "r, in_features", "out_features, r")})),
        Mistake(LORA_A_RANDOM, inject=_LORA_CELL.format(**{**_LORA_RIGHT, "A_init": _LORA_RIGHT["B_init"].replace(
            "out_features, r", "r, in_features")})),
        Mistake(LORA_FROZEN, inject=_LORA_CELL.format(**{**_LORA_RIGHT, "freeze": "pass"})),
        Mistake(LORA_SCALE, inject=_LORA_CELL.format(**{**_LORA_RIGHT, "scale": "self.alpha", "merge_scale": "self.alpha"})),
        Mistake(LORA_MERGE_SCALE, inject=_LORA_CELL.format(**{**_LORA_RIGHT, "merge_scale": "1.0"})),
    ),
)

# --- 4. sequence_logprob ---------------------------------------------------------------------------

LOGPROB_MEAN = ("logprob: it is the mean over the labelled tokens; DPO and GRPO compare whole sequences, so sum "
                "the labelled tokens' log-probabilities.")
LOGPROB_SHIFT = "logprob: the labels are not shifted; logits[:, t] scores labels[:, t + 1]."
LOGPROB_UNMASKED = ("logprob: positions labelled -100 are counted (as token 0); keep only labels != -100, "
                    "for example with torch.where(mask, token_logprobs, 0).")

JUDGE_LM = dict(vocab=O.VOCAB_SIZE, block=O.BLOCK_SIZE, n_layer=1, n_embd=16, n_head=2)


def _judge_lm(rng) -> TinyLM:
    j = JUDGE_LM
    return TinyLM(O.init_tiny_lm(rng, j["vocab"], j["block"], j["n_layer"], j["n_embd"], scale=2.0), j["n_head"])


def _logprob_call(rng, B, T, lengths, probe=None):
    ids = rng.integers(0, O.VOCAB_SIZE, (B, T)).astype(np.int64)
    labels = _labels_for(rng, B, T, lengths)
    labels = np.where(labels != O.IGNORE, ids, O.IGNORE)
    return Call((_judge_lm(rng), _t(ids), _t(labels)), probe=probe)


def _logprob(model, ids, labels, **switches):
    return O.sequence_logprob_from_logits(O.tiny_lm_forward(model.weights, ids, model.n_head), labels, **switches)


def _logprob_unmasked(model, ids, labels):
    z = O.tiny_lm_forward(model.weights, ids, model.n_head)[:, :-1]
    y = np.where(np.asarray(labels) == O.IGNORE, 0, labels)[:, 1:]
    return np.take_along_axis(O.log_softmax(z), y[..., None], axis=-1)[..., 0].sum(axis=1)


_LOGPROB_CELL = """def sequence_logprob(model, input_ids, labels):
    logits = model(input_ids){shift_logits}
    labels = labels{shift_labels}
    mask = labels != -100
    token_logprobs = F.log_softmax(logits, dim=-1).gather(-1, {index}.unsqueeze(-1)).squeeze(-1)
    return {reduce}
"""
_LOGPROB_RIGHT = dict(shift_logits="[:, :-1]", shift_labels="[:, 1:]", index="labels.clamp(min=0)",
                      reduce="torch.where(mask, token_logprobs, 0.0).sum(dim=1)")

sequence_logprob = Exercise(
    name="sequence_logprob", points=1, title="The log-probability of a sequence's labelled tokens",
    visible_calls=lambda: [_logprob_call(np.random.default_rng(94), 3, 10, (4, 2, 6), probe="inputs_after")],
    hidden_calls=lambda rng: [_logprob_call(rng, 4, 12, (1, 9, 3, 0)), _logprob_call(rng, 2, 7, (5, 2), probe="inputs_after")],
    expected=_logprob,
    atol=1e-6,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(LOGPROB_MEAN, wrong=lambda m, i, y: _logprob(m, i, y, mean=True),
                inject=_LOGPROB_CELL.format(**{**_LOGPROB_RIGHT, "reduce": _LOGPROB_RIGHT["reduce"] + " / mask.sum(dim=1)"})),
        Mistake(LOGPROB_SHIFT, wrong=lambda m, i, y: _logprob(m, i, y, shift=False),
                inject=_LOGPROB_CELL.format(**{**_LOGPROB_RIGHT, "shift_logits": "", "shift_labels": ""})),
        Mistake(LOGPROB_UNMASKED, wrong=_logprob_unmasked,
                inject=_LOGPROB_CELL.format(**{**_LOGPROB_RIGHT, "reduce": "token_logprobs.sum(dim=1)"})),
    ),
)

# --- 5. dpo_loss -------------------------------------------------------------------------------------

DPO_NO_REFERENCE = ("loss: the reference model's log-probabilities are left out; the margin is beta * ((policy_chosen - "
                    "ref_chosen) - (policy_rejected - ref_rejected)).")
DPO_SIGN = ("loss: the sign is reversed; DPO minimises -log sigmoid(margin), which pushes the chosen answer up and "
            "the rejected one down.")
DPO_OVERFLOW = ("loss: it is inf for a very negative margin; use F.logsigmoid(margin) (stable), not "
                "torch.log(torch.sigmoid(margin)), which underflows to log(0).")
DPO_SUM = "loss: it is summed over the batch; take the mean over the pairs."
DPO_REWARDS_BETA = ("chosen_rewards: the implicit rewards are beta * (policy - reference) log-probabilities; "
                    "multiply by beta.")


def _dpo_call(rng, B, spread, beta, probe=None):
    ref = -5.0 - 3.0 * rng.random((2, B))
    policy = ref + spread * rng.standard_normal((2, B))
    return Call((_t(policy[0]), _t(policy[1]), _t(ref[0]), _t(ref[1]), beta), probe=probe)


def _dpo_summed(*args):
    loss, chosen, rejected = O.dpo_loss(*args)
    return loss * len(chosen), chosen, rejected


def _visible_dpo_calls():
    rng = np.random.default_rng(95)
    extreme = Call((_t([-1.0, -900.0, -3.0]), _t([-800.0, -2.0, -3.5]), _t([-2.0, -3.0, -3.0]),
                    _t([-2.5, -3.0, -3.0]), 2.0))  # log-ratios of hundreds of nats: margins of +-1600
    return [_dpo_call(rng, 4, 1.0, 0.1, probe="inputs_after"), extreme]


_DPO_CELL = """def dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    chosen = {chosen}
    rejected = {rejected}
    margin = beta * (chosen - rejected)
    losses = {losses}
    return losses.{reduce}(), {reward_scale} * chosen.detach(), {reward_scale} * rejected.detach()
"""
_DPO_RIGHT = dict(chosen="policy_chosen - ref_chosen", rejected="policy_rejected - ref_rejected",
                  losses="-F.logsigmoid(margin)", reduce="mean", reward_scale="beta")

dpo_loss = Exercise(
    name="dpo_loss", points=2, title="DPO: a preference loss without a reward model",
    visible_calls=_visible_dpo_calls,
    hidden_calls=lambda rng: [_dpo_call(rng, 6, 2.0, 0.5, probe="inputs_after"), _dpo_call(rng, 3, 400.0, 4.0)],
    expected=O.dpo_loss,
    atol=1e-6,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(DPO_NO_REFERENCE, wrong=lambda *a: O.dpo_loss(*a, reference=False),
                inject=_DPO_CELL.format(**{**_DPO_RIGHT, "chosen": "policy_chosen", "rejected": "policy_rejected"})),
        Mistake(DPO_SIGN, wrong=lambda *a: O.dpo_loss(*a, sign=-1.0),
                inject=_DPO_CELL.format(**{**_DPO_RIGHT, "losses": "-F.logsigmoid(-margin)"})),
        Mistake(DPO_OVERFLOW, wrong=lambda *a: O.dpo_loss(*a, naive=True),
                inject=_DPO_CELL.format(**{**_DPO_RIGHT, "losses": "-torch.log(torch.sigmoid(margin))"})),
        Mistake(DPO_SUM, wrong=lambda *a: _dpo_summed(*a),
                inject=_DPO_CELL.format(**{**_DPO_RIGHT, "reduce": "sum"})),
        Mistake(DPO_REWARDS_BETA, wrong=lambda *a: O.dpo_loss(*a, beta_in_rewards=False),
                inject=_DPO_CELL.format(**{**_DPO_RIGHT, "reward_scale": "1.0"})),
    ),
)

# --- 6. reward ---------------------------------------------------------------------------------------

REWARD_PREFIX = ("reward: a completion that only starts with the answer ('251.' for '25') got 1; compare the whole "
                 "text before the first EOS ('.') with the answer.")
REWARD_NO_EOS = ("reward: a completion without EOS ('.') got 1; an answer that never ends is malformed and gets 0 "
                 "(the model must learn to stop).")
REWARD_AS_INT = ("reward: '025.' got 1 for the answer '25'; compare the text exactly, not as numbers (the format "
                 "is part of the answer, and int() raises on malformed text).")

_REWARD_VISIBLE = [("251.", "25"), ("25.", "25"), ("25", "25"), ("025.", "25"), ("7.3+.", "7"), ("+2=.", "25"),
                   ("", "7"), (".", "7"), ("99=", "99")]


def _random_completion(rng, answer):
    pool = "0123456789+=."
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return answer + "." + "".join(rng.choice(list(pool), int(rng.integers(0, 3))))
    return "".join(rng.choice(list(pool), int(rng.integers(0, 5))))


_REWARD_CELL = """def reward(completion, answer):
    {body}
"""

reward = Exercise(
    name="reward", points=1, title="A verifiable reward: exact match up to EOS",
    visible_calls=lambda: [Call(pair) for pair in _REWARD_VISIBLE],
    hidden_calls=lambda rng: [Call(("52.", "52")), Call(("52", "52")), Call(("520.", "52")), Call(("052.", "52")), Call(("", "0")),
                              *(Call((_random_completion(rng, a), a)) for a in (str(int(rng.integers(0, 200))),) * 4)],
    expected=O.reward,
    mistakes=(
        Mistake(REWARD_NO_EOS, wrong=lambda c, a: O.reward(c, a, eos=False),
                inject=_REWARD_CELL.format(body="return float(completion.split('.')[0] == answer)")),
        Mistake(REWARD_PREFIX, wrong=lambda c, a: O.reward(c, a, prefix=True),
                inject=_REWARD_CELL.format(body="return float(completion.startswith(answer))")),
        Mistake(REWARD_AS_INT, wrong=lambda c, a: O.reward(c, a, as_int=True),
                inject=_REWARD_CELL.format(body="""if "." not in completion:
        return 0.0
    head = completion.split(".")[0]
    return float(head.isdigit() and int(head) == int(answer))""")),
    ),
)

# --- 7. group_advantages -------------------------------------------------------------------------------

ADV_WHOLE_BATCH = ("advantages: they are normalised over the whole batch; GRPO normalises within each group (each row: "
                   "the completions of one prompt), so a prompt is compared only with itself.")
ADV_NO_STD = ("advantages: they are only centred; divide by each group's standard deviation plus eps, as GRPO "
              "does (Dr. GRPO drops this division on purpose; this exercise follows DeepSeekMath).")
ADV_POPULATION_STD = ("advantages: the standard deviation is the population one (ddof=0); use torch.std's default, "
                      "the sample standard deviation (ddof=1), as TRL does.")
ADV_NO_EPS = ("advantages: a group whose rewards are all equal gives nan (0 / 0); add eps to the standard "
              "deviation, so that such a group gets zeros.")


def _adv_call(rewards, eps=None, probe=None):
    return Call((_t(np.asarray(rewards, np.float64)),), kwargs={} if eps is None else {"eps": eps}, probe=probe)


_ADV_VISIBLE = [[1, 0, 0, 1, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]]
_ADV_CELL = """def group_advantages(rewards, eps=1e-4):
    mean = rewards.mean({axis})
    {body}
"""
_ADV_AXIS = "dim=1, keepdim=True"

group_advantages = Exercise(
    name="group_advantages", points=1, title="GRPO's advantages: rewards normalised within each group",
    visible_calls=lambda: [_adv_call(_ADV_VISIBLE, probe="inputs_after")],
    hidden_calls=lambda rng: [_adv_call(rng.integers(0, 2, (6, 8)), probe="inputs_after"),
                              _adv_call(np.vstack([rng.random((2, 3)), np.full((1, 3), 0.5)]), eps=1e-2)],
    expected=O.group_advantages,
    atol=1e-6,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(ADV_WHOLE_BATCH, wrong=lambda r, eps=1e-4: O.group_advantages(r, eps, whole_batch=True),
                inject=_ADV_CELL.format(axis="", body="return (rewards - mean) / (rewards.std() + eps)")),
        Mistake(ADV_NO_STD, wrong=lambda r, eps=1e-4: O.group_advantages(r, eps, scale=False),
                inject=_ADV_CELL.format(axis=_ADV_AXIS, body="return rewards - mean")),
        Mistake(ADV_POPULATION_STD, wrong=lambda r, eps=1e-4: O.group_advantages(r, eps, ddof=0),
                inject=_ADV_CELL.format(axis=_ADV_AXIS, body="return (rewards - mean) / (rewards.std(dim=1, "
                                                              "keepdim=True, unbiased=False) + eps)")),
        Mistake(ADV_NO_EPS, wrong=lambda r, eps=1e-4: O.group_advantages(r, 0.0),
                inject=_ADV_CELL.format(axis=_ADV_AXIS, body="return (rewards - mean) / rewards.std(dim=1, keepdim=True)")),
        # right values, but the caller's rewards are centred in place: named by the "inputs_after" check
        Mistake(KEEPS_INPUTS, inject=_ADV_CELL.format(axis=_ADV_AXIS, body="""std = rewards.std(dim=1, keepdim=True)
    rewards -= mean
    return rewards / (std + eps)""")),
    ),
)

# --- 8. grpo_loss ---------------------------------------------------------------------------------------

GRPO_NO_CLIP = ("loss: the ratio is not clipped; take -min(ratio * A, clamp(ratio, 1 - clip_eps, 1 + clip_eps) * A) "
                "so that one step cannot move the policy far from the one that sampled.")
GRPO_CLIP_SIDE = ("loss: wrong for negative advantages; clip inside the product, min(ratio * A, clamp(ratio) * A), "
                  "not min(ratio, clamp(ratio)) * A (for A < 0 the minimum is on the other side).")
GRPO_KL_SIGN = ("loss: the k3 estimator has its log-ratio the wrong way round; with d = ref_logprobs - logprobs, "
                "k3 = exp(d) - d - 1.")
GRPO_KL_SUBTRACTED = "loss: the KL penalty is subtracted; add kl_coef * k3 (it keeps the policy near the reference)."
GRPO_TOKEN_LEVEL = ("loss: it averages over all tokens of the batch (DAPO's token-level loss); this exercise follows "
                    "DeepSeekMath: the masked mean over each sequence's tokens, then the mean over sequences.")
GRPO_PADDING = ("loss: each sequence is divided by its full length, padding included; divide by its number of "
                "completion tokens, mask.sum(dim=1) (at least 1).")


def _grpo_call(rng, B, T, spread=0.5, kl_spread=0.5, clip_eps=0.2, kl_coef=0.1, probe=None):
    lp = -2.0 * rng.random((B, T))
    old = lp - spread * rng.standard_normal((B, T))
    ref = lp - kl_spread * rng.standard_normal((B, T))
    adv = rng.standard_normal(B)
    lengths = rng.integers(1, T + 1, B)
    mask = (np.arange(T)[None, :] < lengths[:, None]).astype(np.float64)
    return Call((_t(lp), _t(old), _t(ref), _t(adv), _t(mask), clip_eps, kl_coef), probe=probe)


def _grpo_empty_row(rng):
    call = _grpo_call(rng, 3, 5, spread=3.0, kl_spread=8.0, kl_coef=0.04)  # extreme log-ratios
    mask = call.args[4].value.copy()
    mask[1] = 0.0  # a completion with no tokens contributes 0
    return Call(call.args[:4] + (_t(mask),) + call.args[5:])


_GRPO_CELL = """def grpo_loss(logprobs, old_logprobs, ref_logprobs, advantages, mask, clip_eps, kl_coef):
    ratio = torch.exp(logprobs - old_logprobs)
    A = advantages.unsqueeze(1)
    surrogate = {surrogate}
    d = {d}
    per_token = -surrogate {kl_op} kl_coef * (torch.exp(d) - d - 1)
    return {reduce}
"""
_GRPO_RIGHT = dict(surrogate="torch.min(ratio * A, ratio.clamp(1 - clip_eps, 1 + clip_eps) * A)",
                   d="ref_logprobs - logprobs", kl_op="+",
                   reduce="((per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)).mean()")

grpo_loss = Exercise(
    name="grpo_loss", points=2, title="GRPO's loss: clipped ratios and a KL penalty",
    visible_calls=lambda: [_grpo_call(np.random.default_rng(96), 4, 6, probe="inputs_after"),
                           _grpo_empty_row(np.random.default_rng(97))],
    hidden_calls=lambda rng: [_grpo_call(rng, 8, 10, spread=1.0, clip_eps=0.1, kl_coef=0.3, probe="inputs_after"),
                              _grpo_empty_row(rng)],
    expected=O.grpo_loss,
    atol=1e-6,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(GRPO_NO_CLIP, wrong=lambda *a: O.grpo_loss(*a, clip=False),
                inject=_GRPO_CELL.format(**{**_GRPO_RIGHT, "surrogate": "ratio * A"})),
        Mistake(GRPO_CLIP_SIDE, wrong=lambda *a: O.grpo_loss(*a, clip_ratio_only=True),
                inject=_GRPO_CELL.format(**{**_GRPO_RIGHT, "surrogate": "torch.min(ratio, ratio.clamp(1 - clip_eps, "
                                                                        "1 + clip_eps)) * A"})),
        Mistake(GRPO_KL_SIGN, wrong=lambda *a: O.grpo_loss(*a, kl_reversed=True),
                inject=_GRPO_CELL.format(**{**_GRPO_RIGHT, "d": "logprobs - ref_logprobs"})),
        Mistake(GRPO_KL_SUBTRACTED, wrong=lambda *a: O.grpo_loss(*a, kl_sign=-1.0),
                inject=_GRPO_CELL.format(**{**_GRPO_RIGHT, "kl_op": "-"})),
        Mistake(GRPO_TOKEN_LEVEL, wrong=lambda *a: O.grpo_loss(*a, token_level=True),
                inject=_GRPO_CELL.format(**{**_GRPO_RIGHT, "reduce": "(per_token * mask).sum() / mask.sum().clamp(min=1)"})),
        Mistake(GRPO_PADDING, wrong=lambda *a: O.grpo_loss(*a, count_padding=True),
                inject=_GRPO_CELL.format(**{**_GRPO_RIGHT, "reduce": "(per_token * mask).mean(dim=1).mean()"})),
    ),
)

# --- 9. train_grpo ------------------------------------------------------------------------------------
#
# Judged by what the returned model does, never by replaying one recipe (a correct GRPO may draw
# its prompts and samples in another order, loop differently, or keep AdamW's default weight
# decay). The judge hands over its own small float64 model, a reference, the prompts and answers
# of a task of its own, a config and a generator, and reads back the parameters only; it then
# decodes with its own NumPy forward pass (post_training_oracles.tiny_lm_forward). Three kinds of
# call, each a property that a right GRPO has whatever its order of random draws:
#
# 1. "unsolvable": the answers contain a digit the starting model never emits (its logit is 40
#    below the others), so every sample's reward is 0 and every group's advantages are exactly 0;
#    and kl_coef is 0. GRPO's loss is then 0 whatever the parameters, its gradient is 0, and AdamW
#    leaves the model as it was (with weight_decay > 0, AdamW's default, every parameter shrinks
#    by the same factor, which the judge accepts: see ``only_decayed``). Any supervised training
#    on the answers moves it: the attack "SFT on the answers instead of RL" and any lookup that
#    trains on problems fail here, whatever they reach elsewhere. (With kl_coef > 0 and the
#    reference equal to the start, the KL term's gradient is 0 too, but only until weight decay
#    moves the policy: Adam then turns that tiny gradient into full-size steps.)
# 2. "learn": a task the starting model solves sometimes when sampling but almost never greedily:
#    the answer is "7" for an odd b and "3" for an even one (the judge's rule, not the sum, so a
#    model that learned addition gets 0); held-out problems the sandbox never sees must be
#    answered, greedily, by a margin better than the starting model does. Calibrated on the
#    solution over 30 judge seeds (the figures are in tests/test_post_training.py).
# 3. "toward_reference": the same unsolvable task, with a reference that differs from the starting
#    model and a large kl_coef: only the KL penalty acts, and it must bring the model closer to
#    the reference (a KL taken against the policy itself leaves it where it was).
#
# Mistakes of the recipe that change how fast or how stably GRPO learns but not what it ends up
# doing on such tasks (recomputing old_logprobs at every step, so that the clipping never acts;
# leaving the EOS out of the mask while the starting model already stops on its own) are not
# catalogued: the returned parameters cannot show them honestly.

GRPO_PARAMETERS = ("return (model, history) with the model it was given, trained: its parameters must keep their "
                   "names and shapes.")
GRPO_NOT_RL = ("the model changed on a task that none of its samples solves, with kl_coef = 0: every reward is "
               "0, so every advantage is 0, GRPO's loss is 0 and AdamW leaves the model as it was. Train only on "
               "the model's own samples, weighted by group_advantages (training on the answers is SFT, not "
               "reinforcement learning).")
GRPO_NO_REFERENCE = ("on a task none of its samples solves only the KL penalty acts, and it must pull the model "
                     "toward ref_model; the model did not get closer to it: compute ref_logprobs with ref_model "
                     "(once per batch, without gradients), not with the policy itself.")
GRPO_GREEDY = ("the model did not change although its samples are right some of the time: sample the "
               "completions (torch.multinomial on the softmax, with `generator`), not greedily (a greedy group "
               "is one answer repeated, so every advantage is 0), and take optimizer steps on grpo_loss.")
GRPO_NOT_LEARNING = ("held-out accuracy {before:.0%} -> {after:.0%}: GRPO should raise the greedy accuracy on "
                     "problems it never saw by at least {margin:.0%} with this budget. Check the loop: rows drawn "
                     "with `generator`, each prompt's group consecutive, rewards with your reward and "
                     "group_advantages, the mask up to and including the first EOS, old and reference "
                     "log-probabilities once per batch, then steps_per_batch steps on grpo_loss.")

GRPO_JUDGE_LM = dict(n_layer=1, n_embd=16, n_head=2)
GRPO_LEARN_CONFIG = {"iterations": 60, "prompts_per_step": 8, "group_size": 8, "max_new_tokens": O.MAX_NEW,
                     "steps_per_batch": 2, "lr": 1e-2, "clip_eps": 0.2, "kl_coef": 0.02}
GRPO_STILL_CONFIG = {**GRPO_LEARN_CONFIG, "iterations": 10, "kl_coef": 0.0}
GRPO_KL_CONFIG = {**GRPO_LEARN_CONFIG, "iterations": 40, "kl_coef": 1.0}
GRPO_MARGIN = 0.25  # the rise of held-out accuracy required; the solution's least over 30 judge seeds is 0.445
GRPO_CLOSER = 0.9  # toward_reference: KL(ref || model) must fall below this fraction of KL(ref || start)
N_TRAIN_PROMPTS, N_HELD_OUT = 64, 200
NEVER = "9"  # the digit the starting model never emits in the unsolvable tasks


def judge_answer(a: int, b: int) -> str:
    """The judge's own target for a problem: "7" when b is odd, "3" when it is even."""
    return "7" if b % 2 else "3"


def _prompts(pairs) -> np.ndarray:
    return np.asarray([O.encode(O.problem(a, b)[0]) for a, b in pairs], np.int64)


def _start_model(rng, suppress: str | None = None, prompts=None, answers=None) -> dict[str, np.ndarray]:
    """Random weights whose head favours EOS but samples "7" or "3" now and then; ``suppress`` is a
    digit it never emits. Given problems, EOS is favoured further until greedy decoding answers
    at most 5% of them (so that what GRPO learns shows as a rise of greedy accuracy)."""
    j = GRPO_JUDGE_LM
    weights = O.init_tiny_lm(rng, O.VOCAB_SIZE, O.BLOCK_SIZE, j["n_layer"], j["n_embd"], scale=1.0)
    weights["head.bias"][O.EOS_ID] += 3.5
    for digit in "73":
        weights["head.bias"][O.CHARS.index(digit)] += 1.5
    if suppress:
        weights["head.bias"][O.CHARS.index(suppress)] -= 40.0
    while prompts is not None and held_out_accuracy(weights, prompts, answers) > 0.05:
        weights["head.bias"][O.EOS_ID] += 0.5
    return weights


def _sampled_sequences(rng, weights, prompts) -> np.ndarray:
    """Prompts followed by MAX_NEW tokens sampled from ``weights`` (where the judge compares models)."""
    idx = prompts
    for _ in range(O.MAX_NEW):
        p = np.exp(O.log_softmax(O.tiny_lm_forward(weights, idx, GRPO_JUDGE_LM["n_head"])[:, -1]))
        nxt = np.asarray([rng.choice(len(row), p=row / row.sum()) for row in p])
        idx = np.concatenate([idx, nxt[:, None]], axis=1)
    return idx


def _train_grpo_call(rng, kind: str) -> Call:
    order = rng.permutation(10_000)[:N_TRAIN_PROMPTS + N_HELD_OUT]
    pairs = [(int(i) // 100, int(i) % 100) for i in order]
    train, held = pairs[:N_TRAIN_PROMPTS], pairs[N_TRAIN_PROMPTS:]
    n_head = GRPO_JUDGE_LM["n_head"]
    if kind == "learn":
        answers = [judge_answer(a, b) for a, b in train]
        held_out = {"prompts": _prompts(held), "answers": np.asarray([judge_answer(a, b) for a, b in held])}
        weights = _start_model(rng, prompts=held_out["prompts"], answers=held_out["answers"])
        reference, config = weights, GRPO_LEARN_CONFIG
    else:
        weights = _start_model(rng, suppress=NEVER)
        answers = [NEVER * 2] * len(train)
        if kind == "unsolvable":
            reference, config = weights, GRPO_STILL_CONFIG
        else:  # toward_reference: moved, with the same digit still never emitted
            reference = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in weights.items()}
            reference["head.bias"][O.CHARS.index(NEVER)] = weights["head.bias"][O.CHARS.index(NEVER)]
            config = GRPO_KL_CONFIG
        held_out = {"sequences": _sampled_sequences(rng, weights, _prompts(held)),
                    "reference": np.asarray(kind == "toward_reference")}
        if kind == "toward_reference":
            held_out.update({f"ref.{k}": v for k, v in reference.items()})
    return Call((TinyLM(weights, n_head), TinyLM(reference, n_head), _t(_prompts(train)), answers, dict(config),
                 TorchGenerator(int(rng.integers(0, 1 << 30)))), probe="gpt", held_out=held_out)


def _train_grpo_calls(rng) -> list[Call]:
    # in this order, so that among failures the first call's hint is the one shown: a model trained
    # on the answers is named by "unsolvable", one that never changes by "learn" (GRPO_GREEDY)
    return [_train_grpo_call(rng, kind) for kind in ("unsolvable", "learn", "toward_reference")]


def greedy_texts(weights: dict, prompts: np.ndarray) -> list[str]:
    """The judge's greedy decoding of MAX_NEW tokens after each prompt, with its own forward pass."""
    idx = np.asarray(prompts)
    with np.errstate(all="ignore"):
        for _ in range(O.MAX_NEW):
            logits = O.tiny_lm_forward(weights, idx, GRPO_JUDGE_LM["n_head"])[:, -1]
            idx = np.concatenate([idx, logits.argmax(-1)[:, None]], axis=1)
    return [O.decode(row[prompts.shape[1]:]) for row in idx]


def held_out_accuracy(weights: dict, prompts: np.ndarray, answers) -> float:
    return float(np.mean([O.reward(t, str(a)) for t, a in zip(greedy_texts(weights, prompts), answers)]))


def completion_kl(p_weights: dict, q_weights: dict, sequences: np.ndarray) -> float:
    """KL(p || q) between the two models' next-token distributions (nats), averaged over the
    completion positions of ``sequences`` that GRPO trains: up to and including the first EOS."""
    n_head, start = GRPO_JUDGE_LM["n_head"], O.PROMPT_LEN - 1
    with np.errstate(all="ignore"):
        lp = O.log_softmax(O.tiny_lm_forward(p_weights, sequences[:, :-1], n_head)[:, start:])
        lq = O.log_softmax(O.tiny_lm_forward(q_weights, sequences[:, :-1], n_head)[:, start:])
    completions = sequences[:, O.PROMPT_LEN:]
    after_eos = np.cumsum(completions == O.EOS_ID, axis=1) - (completions == O.EOS_ID) > 0
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return float(kl[~after_eos].mean())


def only_decayed(start: dict, params: dict) -> bool:
    """Whether ``params`` are ``start`` times one factor c in [0.9, 1] (c = 1: unchanged): what
    AdamW leaves after steps with zero gradients, its decoupled weight decay included."""
    s = np.concatenate([np.ravel(start[k]) for k in start])
    p = np.concatenate([np.ravel(params[k]) for k in start]).astype(np.float64)
    c = float(p @ s / (s @ s))
    return 0.9 <= c <= 1.0 + 1e-12 and float(np.max(np.abs(p - c * s))) <= 1e-7 * float(np.max(np.abs(s)))


def judge_train_grpo(call: Call, outputs) -> str | None:
    model = call.args[0]
    params = {k[len("param."):]: v for k, v in outputs.items() if k.startswith("param.")}
    if {k: v.shape for k, v in params.items()} != {k: np.shape(v) for k, v in model.weights.items()}:
        return GRPO_PARAMETERS
    if any(v.dtype.kind != "f" or not np.all(np.isfinite(v)) for v in params.values()):
        return "the trained parameters contain NaN or inf."
    held = call.held_out
    if "answers" in held:  # learn
        before = held_out_accuracy(model.weights, held["prompts"], held["answers"])
        after = held_out_accuracy(params, held["prompts"], held["answers"])
        if only_decayed(model.weights, params):
            return GRPO_GREEDY
        if after < before + GRPO_MARGIN:
            return GRPO_NOT_LEARNING.format(before=before, after=after, margin=GRPO_MARGIN)
        return None
    if not bool(held["reference"]):  # unsolvable
        return None if only_decayed(model.weights, params) else GRPO_NOT_RL
    reference = {k[len("ref."):]: v for k, v in held.items() if k.startswith("ref.")}
    start, now = (completion_kl(reference, w, held["sequences"]) for w in (model.weights, params))
    return GRPO_NO_REFERENCE if not now <= GRPO_CLOSER * start else None


_TRAIN_GRPO_CELL = """def train_grpo(model, ref_model, prompts, answers, config, generator):
    P, G, n_new = config["prompts_per_step"], config["group_size"], config["max_new_tokens"]
    dtype = next(model.parameters()).dtype
    optimizer = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=0.0)
    history = []
    for _ in range(config["iterations"]):
        rows = torch.randint(len(prompts), (P,), generator=generator)
        sequences = prompts[rows].repeat_interleave(G, dim=0)
        with torch.no_grad():
            for _ in range(n_new):
                logits = model(sequences)[:, -1, :]
                next_id = {draw}
                sequences = torch.cat([sequences, next_id], dim=1)
        texts = [decode(c) for c in sequences[:, prompts.shape[1]:]]
        wanted = [answers[int(r)] for r in rows for _ in range(G)]
        rewards = torch.tensor([reward(t, a) for t, a in zip(texts, wanted)], dtype=dtype).view(P, G)
        advantages = group_advantages(rewards).view(-1)
        ends = torch.tensor([t.index(".") + 1 if "." in t else n_new for t in texts])
        mask = (torch.arange(n_new)[None, :] < ends[:, None]).to(dtype)
        with torch.no_grad():
            old = completion_logprobs(model, sequences, prompts.shape[1])
            ref = completion_logprobs(ref_model, sequences, prompts.shape[1])
        for _ in range(config["steps_per_batch"]):
            logprobs = completion_logprobs(model, sequences, prompts.shape[1])
            loss = grpo_loss(logprobs, old, {ref}, advantages, mask, config["clip_eps"], config["kl_coef"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        history.append(rewards.mean().item())
    return model, history
"""
_TRAIN_GRPO_RIGHT = dict(draw="torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)", ref="ref")

train_grpo = Exercise(
    name="train_grpo", points=3, title="GRPO training: sample, reward, clipped steps",
    visible_calls=lambda: _train_grpo_calls(np.random.default_rng(98)),
    hidden_calls=_train_grpo_calls,
    judge=judge_train_grpo,
    trusts=("the returned parameters only (names, shapes, values): the judge decodes with its own forward pass "
            "on held-out problems that never enter the sandbox, and compares next-token distributions of the "
            "returned, starting and reference models on sequences it sampled itself."),
    mistakes=(
        Mistake(GRPO_GREEDY, inject=_TRAIN_GRPO_CELL.format(**{**_TRAIN_GRPO_RIGHT,
                                                             "draw": "logits.argmax(dim=-1, keepdim=True)"})),
        Mistake(GRPO_NO_REFERENCE, inject=_TRAIN_GRPO_CELL.format(**{**_TRAIN_GRPO_RIGHT, "ref": "logprobs.detach()"})),
    ),
    call_timeout=60.0,
)

NOTEBOOK = NotebookSpec(
    name="09_post_training",
    exercises=(sft_example, sft_loss, LoRALinear, sequence_logprob, dpo_loss, reward, group_advantages, grpo_loss,
               train_grpo),
    # The demo cells (training the base model, SFT, LoRA, DPO and GRPO) run only where the course
    # package can be imported, not in the sandbox.
    cell_timeout=300.0,
    notebook_timeout=900.0,
    memory_bytes=6 << 30,
)
