"""Every formula and worked number of docs/post_training.md, checked numerically.

Each test first finds the formula's LaTeX (or the sentence with the number) on the page, then checks
it against something independent: PyTorch's cross_entropy and autograd, a Hugging Face model's own
loss, PEFT's LoRA layers on a model built on the meta device, a direct maximisation, or exact
enumeration with fractions. Messages name the page and the formula.
"""

from __future__ import annotations

import math
from fractions import Fraction
from itertools import combinations
from math import comb
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM
from trl.trainer import utils as trl_utils

import page_checks
from page_checks import close

PAGE = "docs/post_training.md"
REPO = Path(__file__).resolve().parents[1]


def page_states(text: str) -> None:
    page_checks.page_states(PAGE, text)


# ---------------------------------------------------------------- SFT loss masks


def test_sft_loss_averages_only_the_assistant_tokens(gen):
    """docs/post_training.md: L_SFT = -(1/|A|) sum_{t in A} log pi(x_t | x_<t); labels -100 elsewhere"""
    page_states(r"\mathcal{L}_{\text{SFT}} = -\frac{1}{|A|} \sum_{t \in A} \log \pi_\theta(x_t \mid x_{<t})")
    page_states("label `-100`, the default `ignore_index` of `cross_entropy`")
    vocab, T = 40, 12
    config = LlamaConfig(vocab_size=vocab, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32)
    model = LlamaForCausalLM(config).double().eval()
    ids = torch.randint(0, vocab, (1, T), generator=gen)
    assistant = torch.zeros(T, dtype=torch.bool)
    assistant[7:] = True  # the last five tokens are the assistant's answer
    labels = ids.clone()
    labels[0, ~assistant] = -100
    with torch.no_grad():
        out = model(ids, labels=labels)
    log_probs = torch.log_softmax(out.logits[0, :-1], -1)  # position t-1 predicts token t
    by_hand = -torch.stack([log_probs[t - 1, ids[0, t]] for t in range(1, T) if assistant[t]]).mean()
    # Hugging Face computes its loss in float32 whatever the model's precision.
    close(out.loss, by_hand, f"{PAGE}: Hugging Face's loss with labels -100 = mean over assistant tokens", rtol=1e-6)
    close(F.cross_entropy(out.logits[0, :-1], labels[0, 1:]), by_hand, f"{PAGE}: cross_entropy ignores -100")
    unmasked = F.cross_entropy(out.logits[0, :-1], ids[0, 1:])
    assert not torch.isclose(unmasked, by_hand), f"{PAGE}: without the mask the loss would differ"


# ---------------------------------------------------------------- LoRA


def test_lora_update_starts_at_zero_and_counts_r_times_din_plus_dout(gen):
    """docs/post_training.md: h = xW + (alpha/r) x A B, B starts at zero; r(d_in + d_out) parameters"""
    page_states(r"h = x W + \frac{\alpha}{r}\, x A B")
    page_states(r"r\,(d_{\text{in}} + d_{\text{out}})")
    d_in, d_out, r, alpha = 24, 10, 4, 8
    base = torch.nn.Sequential(torch.nn.Linear(d_in, d_out, bias=False)).double()
    x = torch.randn(5, d_in, generator=gen, dtype=torch.float64)
    before = base(x).detach()
    lora = get_peft_model(base, LoraConfig(r=r, lora_alpha=alpha, target_modules=["0"]))
    trainable = sum(p.numel() for p in lora.parameters() if p.requires_grad)
    assert trainable == r * (d_in + d_out), f"{PAGE}: LoRA trains r(d_in + d_out) = {r * (d_in + d_out)}, got {trainable}"
    close(lora(x), before, f"{PAGE}: B starts at zero, so the adapted model starts as the pretrained one")
    layer = lora.base_model.model[0]
    with torch.no_grad():
        layer.lora_B["default"].weight.normal_(generator=gen)
    A, B = layer.lora_A["default"].weight.T, layer.lora_B["default"].weight.T  # as (d_in, r) and (r, d_out)
    close(lora(x), before + alpha / r * x @ A @ B, f"{PAGE}: h = xW + (alpha/r) x A B")


def test_lora_table_for_llama_3_8b_matches_peft():
    """docs/post_training.md: r = 16 on all seven matrices: 1,310,720 per block, 41,943,040 in all, 0.52%"""
    for row in ["| $W_Q$, $W_O$ | 4096 | 4096 | 131,072 each |", "| $W_K$, $W_V$ | 4096 | 1024 | 81,920 each |",
                "| gate, up | 4096 | 14336 | 294,912 each |", "| down | 14336 | 4096 | 294,912 |"]:
        page_states(row)
    page_states("That is 1,310,720 trainable parameters per block and 41,943,040 in all, 0.52% of the model's\n"
                "8,030,261,248")
    r = 16
    assert [r * (a + b) for a, b in [(4096, 4096), (4096, 1024), (4096, 14336), (14336, 4096)]] == [
        131072, 81920, 294912, 294912], f"{PAGE}: the rows of the LoRA table"
    assert 2 * 131072 + 2 * 81920 + 3 * 294912 == 1310720, f"{PAGE}: per block"
    config = LlamaConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    with torch.device("meta"):  # the real architecture, without allocating 8 billion weights
        model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=r, lora_alpha=32, target_modules=targets))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert (trainable, frozen) == (41_943_040, 8_030_261_248), f"{PAGE}: PEFT counts {trainable:,} and {frozen:,}"
    assert round(100 * trainable / frozen, 2) == 0.52, f"{PAGE}: 0.52% of the model"


def test_lora_memory_figures():
    """docs/post_training.md: 16 bytes per parameter: 128 GB full, about 0.7 GB for LoRA; 16 GB and 4 GB of weights"""
    page_states("128 GB for an 8B model, before activations")
    page_states("Their gradients and Adam state take about 0.7 GB instead of 128 GB; the frozen\nweights still take 16 GB")
    page_states("about 4 GB for its\nweights")
    assert round(16 * 8.03e9 / 1e9) == 128, f"{PAGE}: full fine-tuning memory"
    assert round(16 * 41_943_040 / 1e9, 1) == 0.7, f"{PAGE}: LoRA's trainable state"
    assert round(2 * 8_030_261_248 / 1e9) == 16 and round(0.5 * 8_030_261_248 / 1e9) == 4, f"{PAGE}: 16-bit, 4-bit"


# ---------------------------------------------------------------- Bradley-Terry and the reward model


def test_bradley_terry_probability_and_reward_model_gradient(gen):
    """docs/post_training.md: P = e^rw / (e^rw + e^rl) = sigma(rw - rl); d(-log sigma(m))/dm = -(1 - sigma(m))"""
    page_states(r"P(y_w \succ y_l \mid x) = \frac{e^{r(x, y_w)}}{e^{r(x, y_w)} + e^{r(x, y_l)}} = \sigma\big(r(x, y_w) - r(x, y_l)\big)")
    page_states(r"\mathcal{L}_{\text{RM}} = -\log \sigma\big(r(x, y_w) - r(x, y_l)\big)")
    page_states(r"is $-(1 - \sigma(\cdot))$")
    rw, rl = torch.randn(50, generator=gen, dtype=torch.float64), torch.randn(50, generator=gen, dtype=torch.float64)
    two_way_softmax = torch.softmax(torch.stack([rw, rl], -1), -1)[:, 0]
    close(torch.sigmoid(rw - rl), two_way_softmax, f"{PAGE}: Bradley-Terry probability as a sigmoid")
    close(torch.sigmoid((rw + 3.7) - (rl + 3.7)), two_way_softmax, f"{PAGE}: only differences of scores matter")
    margin = (rw - rl).requires_grad_(True)
    (grad,) = torch.autograd.grad(-F.logsigmoid(margin).sum(), margin)
    close(grad, -(1 - torch.sigmoid(margin.detach())), f"{PAGE}: gradient of the reward-model loss")


# ---------------------------------------------------------------- PPO's clipped objective


@pytest.mark.parametrize("rho, advantage, pushes", [
    (1.5, 1.0, False),   # a good sample already 1.5 times more likely: clipped, no gradient
    (1.1, 1.0, True),    # inside the range: the plain policy gradient
    (0.5, 1.0, True),    # a good sample made less likely: the minimum keeps the unclipped term
    (0.5, -1.0, False),  # a bad sample already much less likely: clipped, no gradient
    (1.5, -1.0, True),   # a bad sample made more likely: pulled back
])
def test_ppo_clipped_objective_stops_pushing_only_past_the_clip(rho, advantage, pushes):
    """docs/post_training.md: L_CLIP = E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)]"""
    page_states(r"\mathcal{L}_{\text{CLIP}} = \mathbb{E}\Big[\min\big(\rho\, \hat{A},\; "
                r"\mathrm{clip}(\rho, 1 - \epsilon, 1 + \epsilon)\, \hat{A}\big)\Big]")
    eps = 0.2
    log_rho = torch.tensor(math.log(rho), dtype=torch.float64, requires_grad=True)
    ratio = log_rho.exp()
    objective = torch.minimum(ratio * advantage, ratio.clamp(1 - eps, 1 + eps) * advantage)
    (grad,) = torch.autograd.grad(objective, log_rho)
    if pushes:
        close(grad, rho * advantage, f"{PAGE}: unclipped gradient at rho = {rho}, A = {advantage}")
    else:
        assert grad == 0, f"{PAGE}: the clipped term must stop the gradient at rho = {rho}, A = {advantage}"


# ---------------------------------------------------------------- DPO


def kl_regularised_objective(pi, pi_ref, reward, beta):
    return (pi * (reward - beta * torch.log(pi / pi_ref))).sum()


def test_optimal_policy_maximises_the_kl_regularised_objective(gen):
    """docs/post_training.md: pi* = pi_ref exp(r/beta) / Z maximises E[r] - beta KL; value beta log Z - beta KL(pi||pi*)"""
    page_states(r"\pi^*(y \mid x) = \frac{1}{Z(x)}\, \pi_{\text{ref}}(y \mid x) \exp\big(r(x, y)/\beta\big)")
    page_states(r"\sum_y \pi(y) \Big( r(y) - \beta \log \frac{\pi(y)}{\pi_{\text{ref}}(y)} \Big) = "
                r"\beta \log Z - \beta\, \mathrm{KL}\big(\pi \,\|\, \pi^*\big)")
    page_states(r"Z(x) = \sum_y \pi_{\text{ref}}(y \mid x)\, e^{r(x, y)/\beta}")
    n, beta = 6, 0.5
    pi_ref = torch.softmax(torch.randn(n, generator=gen, dtype=torch.float64), 0)
    reward = torch.randn(n, generator=gen, dtype=torch.float64)
    Z = (pi_ref * torch.exp(reward / beta)).sum()
    pi_star = pi_ref * torch.exp(reward / beta) / Z
    # The identity, for random policies.
    for _ in range(5):
        pi = torch.softmax(torch.randn(n, generator=gen, dtype=torch.float64), 0)
        kl = (pi * torch.log(pi / pi_star)).sum()
        close(kl_regularised_objective(pi, pi_ref, reward, beta), beta * torch.log(Z) - beta * kl,
              f"{PAGE}: objective = beta log Z - beta KL(pi || pi*)")
    # Independent of the identity: maximise the objective directly by gradient ascent on logits.
    logits = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([logits], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = -kl_regularised_objective(torch.softmax(logits, 0), pi_ref, reward, beta)
        loss.backward()
        return loss

    optimiser.step(closure)
    close(torch.softmax(logits, 0), pi_star, f"{PAGE}: the maximiser found numerically is pi*", rtol=1e-6, atol=1e-8)


def test_reward_recovered_from_the_optimal_policy_and_z_cancels(gen):
    """docs/post_training.md: r = beta log(pi*/pi_ref) + beta log Z; Z cancels in the Bradley-Terry difference"""
    page_states(r"r(x, y) = \beta \log \frac{\pi^*(y \mid x)}{\pi_{\text{ref}}(y \mid x)} + \beta \log Z(x)")
    n, beta = 5, 0.3
    pi_ref = torch.softmax(torch.randn(n, generator=gen, dtype=torch.float64), 0)
    reward = torch.randn(n, generator=gen, dtype=torch.float64)
    Z = (pi_ref * torch.exp(reward / beta)).sum()
    pi_star = pi_ref * torch.exp(reward / beta) / Z
    close(beta * torch.log(pi_star / pi_ref) + beta * torch.log(Z), reward, f"{PAGE}: reward from pi*")
    implicit = beta * torch.log(pi_star / pi_ref)  # without log Z
    close(torch.sigmoid(implicit[0] - implicit[3]), torch.sigmoid(reward[0] - reward[3]),
          f"{PAGE}: Z cancels in the Bradley-Terry probability")


def test_dpo_loss_and_its_gradient_against_autograd(gen):
    """docs/post_training.md: L_DPO = -log sigma(beta m); grad = -beta sigma(-beta m) (grad log pi_w - grad log pi_l)"""
    page_states(r"\mathcal{L}_{\text{DPO}} = -\log \sigma\Big(\beta \Big[\log \frac{\pi_\theta(y_w \mid x)}"
                r"{\pi_{\text{ref}}(y_w \mid x)} - \log \frac{\pi_\theta(y_l \mid x)}{\pi_{\text{ref}}(y_l \mid x)}\Big]\Big)")
    page_states(r"\nabla_\theta \mathcal{L}_{\text{DPO}} = -\beta\, \sigma(-\beta m) \big[\nabla_\theta \log "
                r"\pi_\theta(y_w \mid x) - \nabla_\theta \log \pi_\theta(y_l \mid x)\big]")
    beta, vocab, T = 0.1, 7, 4
    policy_logits = torch.randn(2, T, vocab, generator=gen, dtype=torch.float64, requires_grad=True)
    ref_logits = torch.randn(2, T, vocab, generator=gen, dtype=torch.float64)
    answers = torch.randint(0, vocab, (2, T), generator=gen)  # row 0: y_w, row 1: y_l

    def sequence_log_prob(logits):  # a sum over the answer's tokens
        return torch.log_softmax(logits, -1).gather(-1, answers[..., None]).squeeze(-1).sum(-1)

    log_pi, log_ref = sequence_log_prob(policy_logits), sequence_log_prob(ref_logits)
    m = (log_pi[0] - log_ref[0]) - (log_pi[1] - log_ref[1])
    loss = -F.logsigmoid(beta * m)
    close(loss, -torch.log(torch.sigmoid(beta * m)), f"{PAGE}: DPO loss = -log sigmoid(beta m)")
    (autograd,) = torch.autograd.grad(loss, policy_logits, retain_graph=True)
    (grad_w,) = torch.autograd.grad(log_pi[0], policy_logits, retain_graph=True)
    (grad_l,) = torch.autograd.grad(log_pi[1], policy_logits)
    by_formula = -beta * torch.sigmoid(-beta * m.detach()) * (grad_w - grad_l)
    close(autograd, by_formula, f"{PAGE}: DPO gradient vs autograd")


# ---------------------------------------------------------------- GRPO


def test_group_advantages_of_the_worked_example():
    """docs/post_training.md: rewards (1, 0, 0, 0) give advantages (1.73, -0.58, -0.58, -0.58); equal rewards give 0"""
    page_states(r"\hat{A}_i = \frac{r_i - \mathrm{mean}(r_1, \dots, r_G)}{\mathrm{std}(r_1, \dots, r_G)}")
    page_states(r"rewards $(1, 0, 0, 0)$ give advantages $(1.73, -0.58, -0.58, -0.58)$")
    page_states(r"$(1.5, -0.5, -0.5, -0.5)$ when it divides by $G - 1$, as TRL's `GRPOTrainer` does")
    rewards = np.array([1.0, 0.0, 0.0, 0.0])
    advantages = (rewards - rewards.mean()) / rewards.std()  # numpy's std divides by G
    assert [round(a, 2) for a in advantages] == [1.73, -0.58, -0.58, -0.58], f"{PAGE}: group advantages"
    # TRL's GRPOTrainer normalises with its own nanstd (Bessel-corrected): the page's second set of numbers.
    group = torch.tensor(rewards)[None]
    trl_advantages = (group - group.mean(1, keepdim=True)) / trl_utils.nanstd(group, dim=1, keepdim=True)
    close(trl_advantages[0], [1.5, -0.5, -0.5, -0.5], f"{PAGE}: group advantages with TRL's standard deviation",
          rtol=1e-6)  # nanstd forms its n/(n - 1) correction in float32
    close(advantages.mean(), 0.0, f"{PAGE}: advantages have mean zero")
    close(advantages.std(), 1.0, f"{PAGE}: and standard deviation one")
    same = np.ones(4)
    assert np.all(same - same.mean() == 0), f"{PAGE}: a group with equal rewards has zero advantages"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_k3_is_an_unbiased_non_negative_estimate_of_the_kl(seed):
    """docs/post_training.md: k3 = u - log u - 1 with u = pi_ref/pi_theta; E_pi_theta[k3] = KL(pi_theta || pi_ref)"""
    page_states(r"\hat{k}_3 = \frac{\pi_{\text{ref}}(y_t \mid \cdot)}{\pi_\theta(y_t \mid \cdot)} - "
                r"\log \frac{\pi_{\text{ref}}(y_t \mid \cdot)}{\pi_\theta(y_t \mid \cdot)} - 1")
    page_states("since $u - \\log u - 1 \\ge 0$ for every $u > 0$, each sample is\nnon-negative")
    g = torch.Generator().manual_seed(seed)
    pi = torch.softmax(2 * torch.randn(10, generator=g, dtype=torch.float64), 0)
    ref = torch.softmax(2 * torch.randn(10, generator=g, dtype=torch.float64), 0)
    u = ref / pi
    k3 = u - torch.log(u) - 1
    exact_kl = (pi * torch.log(pi / ref)).sum()
    close((pi * k3).sum(), exact_kl, f"{PAGE}: exact expectation of k3 under pi_theta is the KL")
    assert torch.all(k3 >= 0), f"{PAGE}: every k3 sample is non-negative"
    k1 = -torch.log(u)
    close((pi * k1).sum(), exact_kl, f"{PAGE}: -log u is unbiased too")
    assert torch.any(k1 < 0), f"{PAGE}: but some of its samples are negative"


# ---------------------------------------------------------------- test-time compute and pass@k


def pass_at_k(n: int, c: int, k: int) -> Fraction:
    """The page's unbiased estimator for one problem."""
    return 1 - Fraction(comb(n - c, k), comb(n, k))


def test_pass_at_k_estimator_by_exact_enumeration():
    """docs/post_training.md: 1 - C(n-c, k)/C(n, k) is the chance that k of the n samples include a correct one"""
    page_states(r"\text{pass@}k = \mathbb{E}_{\text{problems}}\left[1 - \frac{\binom{n - c}{k}}{\binom{n}{k}}\right]")
    for n, c, k in [(10, 2, 5), (7, 0, 3), (6, 6, 2), (8, 3, 1), (9, 4, 9)]:
        samples = [True] * c + [False] * (n - c)
        subsets = list(combinations(range(n), k))
        by_enumeration = Fraction(sum(any(samples[i] for i in s) for s in subsets), len(subsets))
        assert pass_at_k(n, c, k) == by_enumeration, f"{PAGE}: pass@{k} with n = {n}, c = {c}"


def test_pass_at_k_is_unbiased_and_the_plug_in_is_not():
    """docs/post_training.md: E over c ~ Binomial(n, p) of the estimator is 1 - (1-p)^k; the plug-in underestimates"""
    page_states(r"1 - (1 - p)^n")
    page_states(r"$1 - (1 - c/n)^k$ instead is biased: it underestimates pass@k")
    n, k = 10, 5
    for p in [Fraction(1, 10), Fraction(1, 3), Fraction(7, 10)]:
        weights = [comb(n, c) * p**c * (1 - p) ** (n - c) for c in range(n + 1)]
        unbiased = sum(w * pass_at_k(n, c, k) for c, w in enumerate(weights))
        plug_in = sum(w * (1 - (1 - Fraction(c, n)) ** k) for c, w in enumerate(weights))
        assert unbiased == 1 - (1 - p) ** k, f"{PAGE}: the estimator is unbiased at p = {p}"
        assert plug_in < unbiased, f"{PAGE}: the plug-in estimate is biased low at p = {p}"


def test_pass_at_k_worked_example():
    """docs/post_training.md: n = 10, c = 2, k = 5: 1 - 56/252 = 0.778; plug-in 1 - 0.8^5 = 0.672"""
    page_states(r"$1 - \binom{8}{5} / \binom{10}{5} = 1 - 56/252 = 0.778$")
    page_states(r"$1 - 0.8^5 = 0.672$")
    assert (comb(8, 5), comb(10, 5)) == (56, 252), f"{PAGE}: binomial coefficients"
    assert round(float(pass_at_k(10, 2, 5)), 3) == 0.778, f"{PAGE}: the unbiased estimate"
    assert round(1 - 0.8**5, 3) == 0.672, f"{PAGE}: the plug-in estimate"
