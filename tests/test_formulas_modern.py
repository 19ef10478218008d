"""Every formula and worked number of docs/modern.md, checked numerically.

As in tests/test_formulas.py, each test first finds the formula's LaTeX (or the sentence with the
number) on the page, then checks it against something independent: Hugging Face's Llama modules,
PyTorch's own RMSNorm and scaled_dot_product_attention, a model's real KV cache, PyTorch's FLOP
counter, a model built on the meta device (parameters counted without allocating them), or exact
enumeration with fractions. Messages name the page and the formula.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from transformers import DeepseekV2Config, LlamaConfig, LlamaForCausalLM
from transformers.models.llama import modeling_llama

import page_checks
from page_checks import close

PAGE = "docs/modern.md"
REPO = Path(__file__).resolve().parents[1]


def page_states(text: str) -> None:
    page_checks.page_states(PAGE, text)


def randn(gen, *shape):
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def llama_config(**sizes) -> LlamaConfig:
    return LlamaConfig(vocab_size=128256, tie_word_embeddings=False, rope_theta=500000.0, **sizes)


LLAMA_3_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                  num_key_value_heads=8)
LLAMA_3_70B = dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
                   num_key_value_heads=8)


# ---------------------------------------------------------------- RMSNorm and SwiGLU


def test_rmsnorm_matches_pytorch_and_hugging_face(gen):
    """docs/modern.md: RMSNorm(x) = gamma * x / sqrt(mean(x^2) + eps)"""
    page_states(r"\mathrm{RMSNorm}(x) = \gamma \odot \frac{x}{\sqrt{\frac{1}{C} \sum_{c=1}^{C} x_c^2 + \epsilon}}")
    C, eps = 16, 1e-5
    x, gamma = randn(gen, 3, 5, C), randn(gen, C)
    page_formula = gamma * x / torch.sqrt((x**2).sum(-1, keepdim=True) / C + eps)
    torch_norm = torch.nn.RMSNorm(C, eps=eps, dtype=torch.float64)
    hf_norm = modeling_llama.LlamaRMSNorm(C, eps=eps).double()
    with torch.no_grad():
        torch_norm.weight.copy_(gamma)
        hf_norm.weight.copy_(gamma)
    close(page_formula, torch_norm(x), f"{PAGE}: RMSNorm vs torch.nn.RMSNorm")
    # LlamaRMSNorm normalises in float32 whatever the input's precision.
    close(page_formula, hf_norm(x), f"{PAGE}: RMSNorm vs transformers' LlamaRMSNorm", rtol=1e-6, atol=1e-6)
    centred = x - x.mean(-1, keepdim=True)
    layer_norm = F.layer_norm(centred, (C,), weight=gamma, eps=eps)
    close(gamma * centred / torch.sqrt((centred**2).mean(-1, keepdim=True) + eps), layer_norm,
          f"{PAGE}: for a vector of mean zero RMSNorm is layer norm without beta")


def test_swiglu_matches_hugging_face_llama_mlp(gen):
    """docs/modern.md: FFN(u) = (SiLU(u W1) * u W3) W2 is LlamaMLP with gate_proj, up_proj, down_proj"""
    page_states(r"\mathrm{FFN}(u) = \big(\mathrm{SiLU}(u W_1) \odot u W_3\big) W_2, \qquad \mathrm{SiLU}(z) = z\,\sigma(z)")
    C, Fh = 12, 32
    mlp = modeling_llama.LlamaMLP(LlamaConfig(hidden_size=C, intermediate_size=Fh, num_attention_heads=1)).double()
    u = randn(gen, 4, C)
    W1, W3, W2 = mlp.gate_proj.weight.T, mlp.up_proj.weight.T, mlp.down_proj.weight.T  # nn.Linear stores (out, in)
    silu = lambda z: z * torch.sigmoid(z)  # noqa: E731
    close(((silu(u @ W1)) * (u @ W3)) @ W2, mlp(u), f"{PAGE}: SwiGLU formula vs transformers' LlamaMLP")


def test_swiglu_hidden_size_keeps_the_parameter_count():
    """docs/modern.md: 3 C F = 2 C 4C gives F = 8C/3; Llama 3 8B uses F = 14336 = 3.5 C"""
    page_states(r"3\,C F = 2\,C \cdot 4C \quad\Longrightarrow\quad F = \tfrac{8}{3}\,C")
    page_states(r"$F = 14336 = 3.5\,C$")
    C = 768
    gelu_mlp = torch.nn.Sequential(torch.nn.Linear(C, 4 * C, bias=False), torch.nn.Linear(4 * C, C, bias=False))
    swiglu = modeling_llama.LlamaMLP(LlamaConfig(hidden_size=C, intermediate_size=8 * C // 3, num_attention_heads=12))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(swiglu) == count(gelu_mlp) == 8 * C * C, f"{PAGE}: SwiGLU with F = 8C/3 has the 4C MLP's parameters"
    assert 14336 == 3.5 * 4096, f"{PAGE}: Llama 3 8B's F = 3.5 C"


def test_llama_width_is_two_thirds_of_4c_rounded_up_to_256():
    """docs/modern.md: LLaMA's 2/3 * 4C rounded up to a multiple of 256: 10922.7 -> 11008 for C = 4096"""
    page_states(r"$C = 4096$ gives $10922.7$, hence $F = 11008$")
    C = 4096
    rounded_up = -(-(2 * 4 * C // 3) // 256) * 256
    assert round(8 * C / 3, 1) == 10922.7 and rounded_up == 11008, f"{PAGE}: LLaMA's rounded MLP width"
    # Independent record of the real width: transformers' LlamaConfig defaults to LLaMA 7B's sizes.
    default = LlamaConfig()
    assert (default.hidden_size, default.intermediate_size) == (C, rounded_up), (
        f"{PAGE}: LlamaConfig's default (LLaMA 7B) has F = {default.intermediate_size}"
    )


# ---------------------------------------------------------------- RoPE and long context


def test_rope_scores_depend_only_on_relative_position(gen):
    """docs/modern.md: with Hugging Face's rotary embedding, (R_m q).(R_n k) depends only on n - m"""
    page_states(r"\theta_i = b^{-2i/D}, \qquad i = 0, \dots, D/2 - 1")
    page_states(r"$(R_m q) \cdot (R_n k)$ depends on $m$")
    D = 16
    config = LlamaConfig(hidden_size=4 * D, num_attention_heads=4, rope_theta=500000.0, max_position_embeddings=64)
    rotary = modeling_llama.LlamaRotaryEmbedding(config)
    q, k = randn(gen, 1, 1, 1, D), randn(gen, 1, 1, 1, D)
    positions = torch.arange(40)[None]
    cos, sin = rotary(q.float(), positions)
    cos, sin = cos.double(), sin.double()

    def score(m, n):
        qm, _ = modeling_llama.apply_rotary_pos_emb(q, q, cos[:, m:m + 1], sin[:, m:m + 1])
        kn, _ = modeling_llama.apply_rotary_pos_emb(k, k, cos[:, n:n + 1], sin[:, n:n + 1])
        return float((qm * kn).sum())

    for m, n, shift in [(0, 3, 10), (5, 5, 20), (7, 2, 31)]:
        assert math.isclose(score(m, n), score(m + shift, n + shift), rel_tol=1e-5, abs_tol=1e-5), (
            f"{PAGE}: the RoPE score changed when both positions moved by {shift}"
        )
    assert not math.isclose(score(0, 3), score(0, 4), rel_tol=1e-3), f"{PAGE}: the score must depend on n - m"
    # The frequencies are the page's theta_i = b^(-2i/D).
    close(rotary.inv_freq.double(), 500000.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D),
          f"{PAGE}: theta_i = b^(-2i/D)", rtol=1e-6)


def test_llama_3_slowest_pair_needs_millions_of_positions_per_turn():
    """docs/modern.md: with b = 500000 the slowest pair needs millions of positions for one turn"""
    page_states("$b = 500000$ [@dubey-2024-llama-3], whose slowest pair needs millions of positions for one turn")
    D = 128
    period = 2 * math.pi / 500000.0 ** (-(D - 2) / D)
    assert 1e6 < period < 1e7, f"{PAGE}: period of the slowest pair is {period:.3g} positions"


def test_ntk_aware_base_keeps_the_fastest_pair_and_slows_the_slowest_by_s():
    """docs/modern.md: b' = b s^(D/(D-2)) keeps theta_0 = 1 and gives theta'_{D/2-1} = theta_{D/2-1} / s"""
    page_states(r"b' = b \, s^{D/(D-2)}")
    page_states(r"$\theta'_{D/2-1} = \theta_{D/2-1} / s$")
    for b, D, s in [(10000.0, 128, 4.0), (500000.0, 128, 16.0), (10000.0, 64, 8.0)]:
        theta = b ** (-np.arange(0, D, 2) / D)
        theta_new = (b * s ** (D / (D - 2))) ** (-np.arange(0, D, 2) / D)
        assert theta_new[0] == theta[0] == 1.0, f"{PAGE}: NTK-aware scaling keeps the fastest pair"
        close(theta_new[-1], theta[-1] / s, f"{PAGE}: NTK-aware scaling slows the slowest pair by s = {s}")
        assert np.all(np.diff(theta / theta_new) > 0), f"{PAGE}: slower pairs are interpolated more"


def test_position_interpolation_keeps_every_angle_in_the_trained_range():
    """docs/modern.md: position interpolation m -> m/s, from 2048 to 32768 positions"""
    page_states(r"$m \mapsto m / s$")
    page_states("from 2048 to 32768\npositions")
    D, b, trained, new = 128, 10000.0, 2048, 32768
    s = new / trained
    theta = b ** (-np.arange(0, D, 2) / D)
    # Trained positions are 0 .. 2047, so trained angles lie in [0, 2048 theta_i); interpolated ones too.
    assert np.all(np.arange(new)[:, None] / s * theta < trained * theta), (
        f"{PAGE}: interpolated angles must stay within the trained ones"
    )
    assert np.any(np.arange(new)[:, None] * theta >= trained * theta), f"{PAGE}: without interpolation they would not"


# ---------------------------------------------------------------- MQA, GQA, MLA


def test_gqa_head_mapping_matches_repeat_kv_and_pytorch_attention(gen):
    """docs/modern.md: query head h reads key-value head floor(h / (H/G))"""
    page_states(r"g(h) = \Big\lfloor \frac{h}{H/G} \Big\rfloor")
    page_states("heads 0 to 3 read key-value head 0, heads 4 to 7 read head 1")
    B, H, G, T, D = 2, 32, 8, 5, 4
    q, k, v = randn(gen, B, H, T, D), randn(gen, B, G, T, D), randn(gen, B, G, T, D)
    mapping = [h // (H // G) for h in range(H)]
    assert mapping[:8] == [0, 0, 0, 0, 1, 1, 1, 1], f"{PAGE}: head mapping for H = 32, G = 8"
    per_head = torch.stack([F.scaled_dot_product_attention(q[:, h], k[:, mapping[h]], v[:, mapping[h]], is_causal=True)
                            for h in range(H)], dim=1)
    pytorch_gqa = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    hf_repeated = F.scaled_dot_product_attention(q, modeling_llama.repeat_kv(k, H // G),
                                                 modeling_llama.repeat_kv(v, H // G), is_causal=True)
    close(per_head, pytorch_gqa, f"{PAGE}: GQA mapping vs scaled_dot_product_attention(enable_gqa=True)")
    close(per_head, hf_repeated, f"{PAGE}: GQA mapping vs transformers' repeat_kv")


def test_mla_cache_size_of_deepseek_v2():
    """docs/modern.md: 512 + 64 = 576 cached numbers per token and layer instead of 2*128*128 = 32768"""
    page_states(r"$512 + 64 = 576$ cached numbers per layer instead of $2 \cdot 128 \cdot 128 = 32768$")
    page_states("57 times fewer")
    # The latent, rotary-key and head sizes as transformers' DeepseekV2Config records them (its defaults follow
    # DeepSeek-V2's MLA); the 128 heads are the paper's, not that config's default.
    mla = DeepseekV2Config()
    d_c, d_rope, d_head = mla.kv_lora_rank, mla.qk_rope_head_dim, mla.v_head_dim
    assert (d_c, d_rope, d_head, mla.qk_nope_head_dim) == (512, 64, 128, 128), f"{PAGE}: DeepSeek-V2's MLA sizes"
    heads = 128
    assert d_c + d_rope == 576 and 2 * heads * d_head == 32768, f"{PAGE}: MLA cache arithmetic"
    assert round(2 * heads * d_head / (d_c + d_rope)) == 57, f"{PAGE}: 57 times fewer"


# ---------------------------------------------------------------- mixture of experts


def test_moe_top_k_renormalisation(gen):
    """docs/modern.md: g_i = p_i / sum_{j in TopK} p_j; same as a softmax over the k chosen logits"""
    page_states(r"g_i = \frac{p_i}{\sum_{j \in \mathrm{TopK}(p)} p_j}")
    page_states(r"y = \sum_{i \in \mathrm{TopK}(p)} g_i \, E_i(x)")
    N, k, C = 8, 2, 6
    x, W_r = randn(gen, 10, C), randn(gen, C, N)
    experts = [torch.nn.Linear(C, C).double() for _ in range(N)]
    logits = x @ W_r
    p = torch.softmax(logits, -1)
    top_p, top_i = p.topk(k, -1)
    g = top_p / top_p.sum(-1, keepdim=True)
    close(g.sum(-1), torch.ones(10), f"{PAGE}: renormalised gates sum to 1")
    close(g, torch.softmax(logits.gather(-1, top_i), -1), f"{PAGE}: renormalising = softmax over the k chosen logits")
    y = torch.stack([sum(g[t, j] * experts[int(top_i[t, j])](x[t]) for j in range(k)) for t in range(10)])
    # Independent form: a dense mixture over all experts with the unchosen gates set to zero.
    dense_gates = torch.zeros(10, N, dtype=torch.float64).scatter(-1, top_i, g)
    dense = torch.einsum("tn,ntc->tc", dense_gates, torch.stack([e(x) for e in experts]))
    close(y, dense, f"{PAGE}: y = sum of renormalised gates times chosen experts")


def balancing_loss(probs: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Switch Transformers' auxiliary loss, written from its definition (top-1 routing)."""
    N = probs.shape[-1]
    f = F.one_hot(probs.argmax(-1), N).double().mean(0)  # fraction of tokens per expert, not differentiable
    P = probs.mean(0)
    return alpha * N * (f * P).sum()


def test_load_balancing_loss_worked_example_and_balanced_value():
    """docs/modern.md: N sum_i f_i P_i = 2 (0.75*0.65 + 0.25*0.35) = 1.15; uniform gives 1"""
    page_states(r"\mathcal{L}_{\text{aux}} = \alpha \, N \sum_{i=1}^{N} f_i \, P_i")
    page_states(r"N \sum_i f_i P_i = 2\,(0.75 \cdot 0.65 + 0.25 \cdot 0.35) = 1.15")
    page_states(r"$f = (0.75, 0.25)$; the mean probabilities are $P = (0.65, 0.35)$")
    p1 = torch.tensor([0.9, 0.8, 0.6, 0.3], dtype=torch.float64)
    probs = torch.stack([p1, 1 - p1], -1)
    close(F.one_hot(probs.argmax(-1), 2).double().mean(0), [0.75, 0.25], f"{PAGE}: f of the worked example")
    close(probs.mean(0), [0.65, 0.35], f"{PAGE}: P of the worked example")
    close(balancing_loss(probs), 1.15, f"{PAGE}: balancing loss of the worked example")
    N = 5
    uniform = torch.full((N * 3, N), 1.0 / N, dtype=torch.float64)
    uniform_f = torch.eye(N, dtype=torch.float64).repeat(3, 1)  # each expert gets the same share of tokens
    close(N * (uniform_f.mean(0) * uniform.mean(0)).sum(), 1.0, f"{PAGE}: balanced routing gives 1")


def test_load_balancing_gradient_flows_through_P_and_pushes_down_the_busiest_expert():
    """docs/modern.md: f is not differentiable; the gradient through P lowers the busiest expert's probability"""
    page_states("The counts $f_i$ are not\ndifferentiable; the gradient flows through $P_i$")
    logits = torch.tensor([[2.0, 0.0], [1.5, 0.2], [0.4, 0.0], [-0.8, 0.0]], dtype=torch.float64, requires_grad=True)
    loss = balancing_loss(torch.softmax(logits, -1))
    (grad,) = torch.autograd.grad(loss, logits)
    # A gradient step must lower expert 0's probability (it receives 3 of 4 tokens) for every token.
    stepped = torch.softmax(logits.detach() - 0.1 * grad, -1)
    assert torch.all(stepped[:, 0] < torch.softmax(logits.detach(), -1)[:, 0]), (
        f"{PAGE}: the balancing loss must push down the busiest expert"
    )


# ---------------------------------------------------------------- the KV cache


def kv_bytes(layers, tokens, kv_heads, head_size, bytes_per_number):
    return 2 * layers * tokens * kv_heads * head_size * bytes_per_number


def test_kv_cache_formula_equals_the_bytes_a_real_llama_cache_holds(gen):
    """docs/modern.md: KV bytes = 2 L T G D bytes, measured on a small Llama's real cache"""
    page_states(r"\text{KV bytes} = 2 \cdot L \cdot T \cdot G \cdot D \cdot \text{bytes per number}")
    config = LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                         num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=64)
    model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    batch, tokens = 2, 11
    with torch.no_grad():
        cache = model(torch.randint(0, 50, (batch, tokens), generator=gen), use_cache=True).past_key_values
    stored = [t for layer in cache.layers for t in (layer.keys, layer.values)]
    measured = sum(t.numel() * t.element_size() for t in stored)
    assert measured == batch * kv_bytes(3, tokens, 2, 32 // 8, 2), (
        f"{PAGE}: the cache of a 3-layer Llama holds {measured} bytes, the formula says "
        f"{batch * kv_bytes(3, tokens, 2, 4, 2)}"
    )


@pytest.mark.parametrize("name, sizes, per_token_kib, at_8k_gib, at_128k_gib", [
    ("Llama 3 8B", LLAMA_3_8B, 128, 1, 16),
    ("Llama 3 70B", LLAMA_3_70B, 320, 2.5, 40),
])
def test_kv_cache_table_for_llama_3(name, sizes, per_token_kib, at_8k_gib, at_128k_gib):
    """docs/modern.md: the KV-cache table (8B: 128 KiB, 1 GiB, 16 GiB; 70B: 320 KiB, 2.5 GiB, 40 GiB)"""
    page_states(f"| {name} | {sizes['num_hidden_layers']} | {per_token_kib} KiB | {at_8k_gib} GiB | {at_128k_gib} GiB |")
    config = llama_config(**sizes)
    G, D, L = config.num_key_value_heads, config.hidden_size // config.num_attention_heads, config.num_hidden_layers
    assert (G, D) == (8, 128), f"{PAGE}: {name} has G = 8 and D = 128"
    assert kv_bytes(L, 1, G, D, 2) == per_token_kib * 2**10, f"{PAGE}: {name} per token"
    assert kv_bytes(L, 8192, G, D, 2) == at_8k_gib * 2**30, f"{PAGE}: {name} at 8192 tokens"
    assert kv_bytes(L, 131072, G, D, 2) == at_128k_gib * 2**30, f"{PAGE}: {name} at 131072 tokens"
    without_gqa = kv_bytes(L, 131072, config.num_attention_heads, D, 2) / 2**30
    page_states("4 and 8 times\nlarger: 64 GiB and 320 GiB at 128K tokens")
    assert without_gqa == {"Llama 3 8B": 64, "Llama 3 70B": 320}[name], f"{PAGE}: {name} without GQA"


# ---------------------------------------------------------------- FlashAttention and the online softmax


def online_attention(s: torch.Tensor, v: torch.Tensor, block: int) -> torch.Tensor:
    """One query's attention output by the page's recurrence, one block of keys at a time."""
    m, ell, o = torch.tensor(-math.inf, dtype=s.dtype), torch.tensor(0.0, dtype=s.dtype), torch.zeros_like(v[0])
    for start in range(0, len(s), block):
        s_b, v_b = s[start:start + block], v[start:start + block]
        m_new = torch.maximum(m, s_b.max())
        rescale = torch.exp(m - m_new)
        ell = ell * rescale + torch.exp(s_b - m_new).sum()
        o = o * rescale + torch.exp(s_b - m_new) @ v_b
        m = m_new
    return o / ell


def test_online_softmax_equals_softmax(gen):
    """docs/modern.md: the online recurrences give o_T / l_T = sum_j softmax(s)_j v_j exactly"""
    page_states(r"m_j = \max(m_{j-1}, s_j), \qquad \ell_j = \ell_{j-1}\, e^{m_{j-1} - m_j} + e^{s_j - m_j}, "
                r"\qquad o_j = o_{j-1}\, e^{m_{j-1} - m_j} + e^{s_j - m_j}\, v_j")
    T, D = 37, 8
    s, v = randn(gen, T) * 30, randn(gen, T, D)  # large scores: the rescaling must keep it stable
    expected = torch.softmax(s, 0) @ v
    for block in (1, 4, 16, T):
        close(online_attention(s, v, block), expected, f"{PAGE}: online softmax with blocks of {block} keys")


def test_tiled_attention_saves_memory_not_flops(gen):
    """docs/modern.md: FlashAttention does not save floating-point operations (4 T^2 C per layer)"""
    page_states("It does not save floating-point operations: the products $QK^\\top$ and\n$AV$ are the same")
    T, D, block = 64, 16, 16
    q, k, v = randn(gen, T, D), randn(gen, T, D), randn(gen, T, D)
    with FlopCounterMode(display=False) as plain:
        expected = torch.softmax(q @ k.T / math.sqrt(D), -1) @ v
    with FlopCounterMode(display=False) as tiled:
        outputs = []  # the shape of every score tile: never more than (T, block) at once
        m = torch.full((T, 1), -math.inf, dtype=torch.float64)
        ell, o = torch.zeros(T, 1, dtype=torch.float64), torch.zeros(T, D, dtype=torch.float64)
        for start in range(0, T, block):
            s_b = q @ k[start:start + block].T / math.sqrt(D)
            m_new = torch.maximum(m, s_b.max(-1, keepdim=True).values)
            ell = ell * torch.exp(m - m_new) + torch.exp(s_b - m_new).sum(-1, keepdim=True)
            o = o * torch.exp(m - m_new) + torch.exp(s_b - m_new) @ v[start:start + block]
            m = m_new
            outputs.append(s_b.shape)
        result = o / ell
    close(result, expected, f"{PAGE}: tiled attention is exact")
    assert max(rows * cols for rows, cols in outputs) == T * block < T * T, f"{PAGE}: no full score matrix"
    assert tiled.get_total_flops() == plain.get_total_flops() == 4 * T * T * D, (
        f"{PAGE}: matmul FLOPs, plain {plain.get_total_flops()}, tiled {tiled.get_total_flops()}"
    )


# ---------------------------------------------------------------- quantisation


def test_decoding_does_two_operations_per_weight_read(gen):
    """docs/modern.md: one token multiplies each matrix by one vector: about two operations per weight read"""
    page_states("does about two operations per weight read: decoding is limited by memory\nbandwidth")
    mlp = modeling_llama.LlamaMLP(LlamaConfig(hidden_size=64, intermediate_size=160, num_attention_heads=4)).double()
    weights = sum(p.numel() for p in mlp.parameters())
    one_token = torch.randn(1, 64, generator=gen, dtype=torch.float64)
    with FlopCounterMode(display=False) as counter:
        mlp(one_token)
    assert counter.get_total_flops() == 2 * weights, f"{PAGE}: {counter.get_total_flops()} FLOPs for {weights} weights"


def test_absmax_quantisation_error_is_at_most_half_a_step(gen):
    """docs/modern.md: s = max|w| / (2^(n-1) - 1), q = round(w/s), |w - s q| <= s/2"""
    page_states(r"s = \frac{\max_i |w_i|}{2^{n-1} - 1}, \qquad q_i = \mathrm{round}(w_i / s), \qquad \hat{w}_i = s\, q_i")
    page_states(r"$|w_i - \hat{w}_i| \le s/2$")
    page_states("int8 uses the integers $-127$ to $127$ and int4 $-7$ to $7$")
    w = randn(gen, 64, 128)
    for bits, top in [(8, 127), (4, 7)]:
        s = w.abs().amax(-1, keepdim=True) / (2 ** (bits - 1) - 1)
        q = torch.round(w / s)
        assert q.abs().max() == top, f"{PAGE}: int{bits} uses -{top}..{top}"
        assert torch.all((w - s * q).abs() <= s / 2 + 1e-15), f"{PAGE}: int{bits} error within half a step"


def test_llama_3_weight_memory_at_16_8_and_4_bits():
    """docs/modern.md: 8,030,261,248 parameters: 16.1 GB, 8.0 GB, 4.0 GB, scales 0.13 GB; 70B: 141 GB -> 35 GB"""
    page_states("Llama 3 8B has 8,030,261,248 parameters: 16.1 GB in 16-bit numbers, 8.0 GB in\nint8 and 4.0 GB in int4")
    page_states("adds 0.125 bits per\nweight, 0.13 GB). The 70B model's 141 GB shrink to 35 GB at 4 bits")
    counts = {}
    for name, sizes in [("8B", LLAMA_3_8B), ("70B", LLAMA_3_70B)]:
        with torch.device("meta"):  # the real architecture, counted without allocating its weights
            counts[name] = sum(p.numel() for p in LlamaForCausalLM(llama_config(**sizes)).parameters())
    n = counts["8B"]
    assert n == 8_030_261_248, f"{PAGE}: Llama 3 8B has {n:,} parameters"
    assert (round(2 * n / 1e9, 1), round(n / 1e9, 1), round(n / 2 / 1e9, 1)) == (16.1, 8.0, 4.0), f"{PAGE}: 8B bytes"
    assert 16 / 128 == 0.125 and round(n / 128 * 2 / 1e9, 2) == 0.13, f"{PAGE}: one 16-bit scale per 128 weights"
    assert round(2 * counts["70B"] / 1e9) == 141 and round(counts["70B"] / 2 / 1e9) == 35, f"{PAGE}: 70B bytes"


# ---------------------------------------------------------------- speculative decoding


def speculative_output_distribution(p: list[Fraction], q: list[Fraction]) -> list[Fraction]:
    """The exact distribution of the token one speculative step emits, by enumerating the draft's choice."""
    leftover = [max(Fraction(0), pi - qi) for pi, qi in zip(p, q)]
    total = sum(leftover)
    out = [Fraction(0)] * len(p)
    for x, qx in enumerate(q):  # the draft proposes x with probability q(x)
        if qx == 0:
            continue
        accept = min(Fraction(1), p[x] / qx)
        out[x] += qx * accept
        for y, r in enumerate(leftover):  # rejected: a replacement from the leftover distribution
            if total:
                out[y] += qx * (1 - accept) * r / total
    return out


@pytest.mark.parametrize("p, q", [
    ([Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)], [Fraction(1, 5), Fraction(3, 5), Fraction(1, 5)]),
    ([Fraction(1, 10), Fraction(0), Fraction(9, 10)], [Fraction(1, 3), Fraction(1, 3), Fraction(1, 3)]),
    ([Fraction(1, 4)] * 4, [Fraction(1, 4)] * 4),
    ([Fraction(0), Fraction(1), Fraction(0)], [Fraction(1, 2), Fraction(0), Fraction(1, 2)]),
])
def test_speculative_acceptance_rule_keeps_the_target_distribution_exactly(p, q):
    """docs/modern.md: accept with min(1, p/q), else sample max(0, p - q) normalised: the output is p"""
    page_states(r"r(x) = \frac{\max\big(0,\; p(x) - q(x)\big)}{\sum_{x'} \max\big(0,\; p(x') - q(x')\big)}")
    page_states(r"P(x) = \min\big(p(x), q(x)\big) + \max\big(0,\; p(x) - q(x)\big) = p(x)")
    assert speculative_output_distribution(p, q) == p, f"{PAGE}: speculative decoding must emit exactly p"
    beta = sum(min(pi, qi) for pi, qi in zip(p, q))
    accepted = sum(qi * min(Fraction(1), pi / qi) for pi, qi in zip(p, q) if qi)
    total_variation = sum(abs(pi - qi) for pi, qi in zip(p, q)) / 2
    assert accepted == beta == 1 - total_variation, f"{PAGE}: acceptance rate = sum min(p, q) = 1 - TV(p, q)"


def test_naive_acceptance_would_not_keep_the_distribution():
    """The leftover distribution matters: resampling from p after a rejection gives the wrong answer."""
    p, q = [Fraction(1, 2), Fraction(1, 3), Fraction(1, 6)], [Fraction(1, 5), Fraction(3, 5), Fraction(1, 5)]
    wrong = [Fraction(0)] * 3
    for x, qx in enumerate(q):
        accept = min(Fraction(1), p[x] / qx)
        wrong[x] += qx * accept
        for y in range(3):
            wrong[y] += qx * (1 - accept) * p[y]
    assert wrong != p


def test_expected_tokens_per_target_pass():
    """docs/modern.md: (1 - alpha^(gamma+1)) / (1 - alpha) tokens per pass; 3.36 for alpha = 0.8, gamma = 4"""
    page_states(r"$(1 - \alpha^{\gamma+1})/(1 - \alpha)$ tokens")
    page_states(r"with $\alpha = 0.8$ and $\gamma = 4$ that is 3.36 tokens per pass")
    alpha, gamma = Fraction(4, 5), 4
    # Enumerate: the first rejection at proposal i (0-based) yields i accepted tokens + 1 from the target;
    # no rejection yields gamma accepted + 1.
    expected = sum(alpha**i * (1 - alpha) * (i + 1) for i in range(gamma)) + alpha**gamma * (gamma + 1)
    assert expected == (1 - alpha ** (gamma + 1)) / (1 - alpha), f"{PAGE}: expected tokens per pass"
    assert round(float(expected), 2) == 3.36, f"{PAGE}: 3.36 tokens per pass"


# ---------------------------------------------------------------- paged attention


def test_paged_attention_waste_of_the_worked_example():
    """docs/modern.md: 300 of 2048 reserved slots waste 85%; 16-token blocks: 19 blocks, 304 slots, 4 wasted"""
    page_states("stops at 300 wastes\n85% of its region")
    page_states(r"$\lceil 300/16 \rceil = 19$ blocks, 304 slots, wasting 4")
    assert round(100 * (2048 - 300) / 2048) == 85, f"{PAGE}: contiguous reservation waste"
    blocks = -(-300 // 16)
    assert (blocks, blocks * 16, blocks * 16 - 300) == (19, 304, 4), f"{PAGE}: paged blocks"
