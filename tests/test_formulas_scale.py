"""Every formula and worked number of the pages on training at scale, data and evaluation, and
open-weight models, recomputed independently.

Each test first finds the formula or the number on its page (so an edit of the page without its
check fails here), then recomputes it: by arithmetic from the stated inputs, or against an
independent oracle (a schedule simulated step by step, PyTorch's own dtypes, a brute-force
enumeration). Test docstrings and messages name the page.
"""

from __future__ import annotations

import math
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

DOCS = Path(__file__).resolve().parents[1] / "docs"
SNIPPETS = DOCS / "snippets"
SCALE = "docs/training_at_scale.md"


def page_states(page: str, text: str) -> None:
    """The page shows this formula or sentence, character for character."""
    content = (DOCS.parent / page).read_text(encoding="utf-8")
    assert text in content, f"{page}: the checked text is no longer on the page: {text}"


def snippet(name: str) -> dict:
    """The names a snippet defines, after running it (its prints go to the captured output)."""
    return runpy.run_path(str(SNIPPETS / name), run_name="snippet")


# ---------------------------------------------------------------- training at scale: memory


def test_sixteen_bytes_per_parameter_and_the_7b_and_70b_figures():
    """docs/training_at_scale.md: 16N bytes; 7B -> 112 GB (over one 80 GB GPU); 70B -> 1,120 GB = 14 GPUs"""
    page_states(SCALE, r"M_{\text{states}} = (2 + 2 + 4 + 4 + 4)\,N = 16N \text{ bytes}")
    page_states(SCALE, r"$16 \times 7 \times 10^9 = 112$ GB")
    page_states(SCALE, "1,120 GB, the memory of 14 such GPUs")
    # bf16 weights and gradients, float32 master copy, m and v: sizes from PyTorch's own dtypes.
    per_param = (torch.finfo(torch.bfloat16).bits * 2 + torch.finfo(torch.float32).bits * 3) // 8
    assert per_param == 16
    assert per_param * 7e9 / 1e9 == 112 > 80
    assert per_param * 70e9 / 1e9 == 1120 and math.ceil(1120 / 80) == 14
    # fp32 training: 4 + 4 + 8 bytes, the same total.
    assert (torch.finfo(torch.float32).bits // 8) * 4 == 16


def test_measured_training_state_matches_the_formula(capsys):
    """docs/training_at_scale.md: the measured bytes per parameter of both recipes are 16, split as the formula says"""
    names = snippet("training_at_scale/training_memory.py")
    capsys.readouterr()
    n = names["n"]
    fp32, mixed = names["fp32"], names["mixed"]
    assert {k: v / n for k, v in fp32.items()} == {"weights": 4, "gradients": 4, "Adam m and v": 8}
    assert {k: v / n for k, v in mixed.items()} == {"weights": 2, "gradients": 2, "master weights": 4, "Adam m and v": 8}
    # The model really has the parameters the page's count uses: 256*1024 + 1024 + 1024*256 + 256.
    assert n == 256 * 1024 + 1024 + 1024 * 256 + 256


def activation_bytes_per_layer(s, b, h, a):
    # Korthikanti et al. (2022), Table 2, no parallelism: attention block 11sbh + 5as^2b,
    # MLP 19sbh, two LayerNorms 4sbh; summed here term by term, not from the page's closed form.
    attention = 2 * s * b * h + 4 * s * b * h + 2 * a * s * s * b + a * s * s * b + 2 * a * s * s * b + 2 * s * b * h + 2 * s * b * h + s * b * h
    mlp = 2 * s * b * h + 8 * s * b * h + 8 * s * b * h + s * b * h
    layer_norms = 4 * s * b * h
    return attention + mlp + layer_norms


def test_activation_memory_per_layer_and_its_remedies():
    """docs/training_at_scale.md: sbh(34 + 5as/h); 3.25 GB/layer, 104 GB for 32; 0.57 and 18.3 GB; 34 MB and 1.07 GB"""
    page_states(SCALE, r"M_{\text{act}} = s\,b\,h\left(34 + \frac{5\,a\,s}{h}\right) \text{ bytes per layer}")
    s, b, h, a, layers = 4096, 1, 4096, 32, 32
    total = activation_bytes_per_layer(s, b, h, a)
    assert total == s * b * h * (34 + 5 * a * s / h)
    page_states(SCALE, "that is 3.25 GB per layer, 104 GB for 32")
    assert round(total / 1e9, 2) == 3.25 and round(total * layers / 1e9) == 104
    page_states(SCALE, "0.57 GB per layer, 18.3 GB for 32 layers")
    assert round(34 * s * b * h / 1e9, 2) == 0.57 and round(34 * s * b * h * layers / 1e9, 1) == 18.3
    page_states(SCALE, "$2sbh$ bytes (34 MB per layer,\n  1.07 GB for 32 layers)")
    assert round(2 * s * b * h / 1e6) == 34 and round(2 * s * b * h * layers / 1e9, 2) == 1.07


def test_checkpointing_keeps_only_block_inputs(capsys):
    """docs/training_at_scale.md: 9 block inputs' worth per block without checkpointing (1 + 4 + 4), 1 with"""
    page_states(SCALE, "(1 + 4 + 4 = 9 block inputs' worth)")
    names = snippet("training_at_scale/checkpointing.py")
    capsys.readouterr()
    unit = names["tokens"] * names["width"] * 4
    assert names["plain"] == 9 * names["blocks"] * unit
    assert names["checkpointed"] == names["blocks"] * unit


def test_checkpointing_costs_one_extra_forward_pass():
    """docs/training_at_scale.md: full checkpointing adds a forward pass: 8ND, about a third more than 6ND"""
    page_states(SCALE, "one extra forward pass, about a third more computation")
    page_states(SCALE, "($8ND$ operations are computed)")
    forward, backward = 2, 4  # FLOPs per parameter per token, checked with the FLOP counter on docs/trends.md
    assert forward + backward == 6 and 2 * forward + backward == 8
    assert (8 - 6) / 6 == pytest.approx(1 / 3)


# ---------------------------------------------------------------- training at scale: number formats


def test_number_format_facts():
    """docs/training_at_scale.md: fp16 ends at 65,504 and 6.1e-5; bf16 epsilon 0.0078; E4M3 448; 1e-8 underflows in fp16"""
    page_states(SCALE, "a range that ends at 65,504 and, for\n  normal numbers, at $6.1 \\times 10^{-5}$")
    # IEEE half: 5 exponent bits (bias 15), 10 mantissa bits.
    assert (2 - 2 ** -10) * 2 ** 15 == 65504 == torch.finfo(torch.float16).max
    assert 2 ** -14 == pytest.approx(6.1e-5, rel=0.01) and torch.finfo(torch.float16).smallest_normal == 2 ** -14
    page_states(SCALE, "(epsilon 0.0078)")
    assert 2 ** -7 == torch.finfo(torch.bfloat16).eps and round(2 ** -7, 4) == 0.0078
    # bf16 keeps float32's exponent: the same largest power of two.
    assert math.frexp(torch.finfo(torch.bfloat16).max)[1] == math.frexp(torch.finfo(torch.float32).max)[1]
    page_states(SCALE, "E4M3 (448 at most")
    # E4M3 (fn): bias 7, top exponent 8, mantissa 1.110 (1.111 is NaN): 1.75 * 2^8.
    assert 1.75 * 2 ** 8 == 448 == torch.finfo(torch.float8_e4m3fn).max
    page_states(SCALE, "(a gradient of\n  $10^{-8}$ becomes representable)")
    # fp16's smallest subnormal is 2^-24 ~ 6e-8: 1e-8 rounds to zero; times 1024 it survives.
    assert torch.tensor(1e-8).half().item() == 0.0
    assert torch.tensor(1e-8 * 1024).half().float().item() / 1024 == pytest.approx(1e-8, rel=0.01)


# ---------------------------------------------------------------- training at scale: parallelism


def test_zero_stage_formulas_and_the_papers_example(capsys):
    """docs/training_at_scale.md: ZeRO-1/2/3 per-GPU memory; 7.5B on 64 GPUs gives 120, 31.4, 16.6, 1.9 GB"""
    page_states(SCALE, r"M_{\text{ZeRO-1}} = 4N + \frac{12N}{d}, \quad M_{\text{ZeRO-2}} = 2N + \frac{14N}{d}, \quad M_{\text{ZeRO-3}} = \frac{16N}{d}")
    gb = snippet("training_at_scale/zero_stages.py")["gb_per_gpu"]
    capsys.readouterr()
    n, d = 7.5e9, 64
    closed_forms = [16 * n, 4 * n + 12 * n / d, 2 * n + 14 * n / d, 16 * n / d]
    for stage, expected in enumerate(closed_forms):
        assert gb(n, d, stage) == pytest.approx(expected / 1e9)
    # The figures printed in the ZeRO paper (Figure 1), to its one decimal.
    assert [round(x / 1e9, 1) for x in closed_forms] == [120.0, 31.4, 16.6, 1.9]


def test_tensor_parallel_split_of_attention_and_mlp():
    """docs/training_at_scale.md: MLP A by columns, B by rows; attention by heads, output projection by rows; one all-reduce"""
    page_states(SCALE, "$A$ is split by columns")
    page_states(SCALE, "the query, key and value projections by\ncolumns, that is by heads")
    gen = torch.Generator().manual_seed(0)
    tokens, d_model, heads, gpus = 5, 8, 4, 2
    x = torch.randn(tokens, d_model, generator=gen, dtype=torch.float64)
    wq, wk, wv, wo = (torch.randn(d_model, d_model, generator=gen, dtype=torch.float64) for _ in range(4))
    mask = torch.ones(tokens, tokens, dtype=torch.bool).tril()

    def attention(q, k, v):
        n_heads = q.shape[1] // (d_model // heads)
        split = lambda t: t.view(tokens, n_heads, -1).transpose(0, 1)  # noqa: E731
        out = F.scaled_dot_product_attention(split(q), split(k), split(v), attn_mask=mask)
        return out.transpose(0, 1).reshape(tokens, -1)

    reference = attention(x @ wq, x @ wk, x @ wv) @ wo
    partial = []
    for g in range(gpus):
        cols = slice(g * d_model // gpus, (g + 1) * d_model // gpus)  # whole heads on GPU g
        partial.append(attention(x @ wq[:, cols], x @ wk[:, cols], x @ wv[:, cols]) @ wo[cols, :])
    torch.testing.assert_close(sum(partial), reference)  # the all-reduce is a sum


def test_tensor_parallel_snippet_numbers(capsys):
    """docs/training_at_scale.md: the column/row split reproduces the MLP; a row split of A does not"""
    names = snippet("training_at_scale/tensor_parallel.py")
    capsys.readouterr()
    torch.testing.assert_close(names["Y"], names["reference"], rtol=1e-5, atol=1e-4)
    assert (names["wrong"] - names["reference"]).abs().max() > 1


def test_pipeline_bubble_formula_against_a_simulated_schedule(capsys):
    """docs/training_at_scale.md: bubble = (p - 1)/(m + p - 1), against a step-by-step GPipe simulation"""
    page_states(SCALE, r"\text{bubble} = \frac{p - 1}{m + p - 1}")

    def simulate(p, m):
        # Each stage runs a queue: forwards of micro-batches in order, then backwards in order;
        # an item starts when its input has arrived from the neighbouring stage.
        done_f, done_b = {}, {}
        clock = [0] * p
        for i in range(m):
            for s in range(p):
                start = max(clock[s], done_f.get((s - 1, i), 0))
                done_f[(s, i)] = clock[s] = start + 1
        for i in range(m):
            for s in reversed(range(p)):
                ready = done_f[(p - 1, m - 1)] if s == p - 1 else done_b[(s + 1, i)]
                start = max(clock[s], ready)
                done_b[(s, i)] = clock[s] = start + 1
        makespan = max(clock)
        return 1 - (2 * m * p) / (p * makespan)

    bubble = snippet("training_at_scale/pipeline_bubble.py")["bubble_fraction"]
    capsys.readouterr()
    for p, m in [(1, 1), (2, 3), (4, 1), (4, 4), (4, 32), (8, 5), (16, 128)]:
        assert simulate(p, m) == pytest.approx((p - 1) / (m + p - 1)), (p, m)
        assert bubble(p, m) == pytest.approx(simulate(p, m)), (p, m)


# ---------------------------------------------------------------- training at scale: compute and time


def test_llama_3_405b_compute_and_gpu_hours():
    """docs/training_at_scale.md: 6ND = 3.79e25 for 405B x 15.6T; 26.3 million GPU-hours at 400 TFLOP/s; 67 days on 16,384"""
    page_states(SCALE, r"$6ND = 6 \times 405 \times 10^9 \times 15.6 \times 10^{12} = 3.79 \times 10^{25}$")
    c = 6 * 405e9 * 15.6e12
    assert round(c / 1e25, 2) == 3.79 and round(c / 1e25, 1) == 3.8  # the paper's 3.8e25
    page_states(SCALE, r"\frac{3.79 \times 10^{25}}{400 \times 10^{12} \times 3600} = 26.3 \text{ million GPU-hours}")
    gpu_hours = c / (400e12 * 3600)
    assert round(gpu_hours / 1e6, 1) == 26.3
    page_states(SCALE, "or 67 days on 16,384 GPUs")
    assert round(gpu_hours / 16384 / 24) == 67


def test_mfu_definition_matches_the_papers_throughput():
    """docs/training_at_scale.md: MFU = 6N x tokens/s / peak; 400 TFLOP/s per GPU is about 40% of an H100's dense BF16 peak"""
    page_states(SCALE, r"\text{MFU} = \frac{6N \times \text{tokens per second}}{\text{peak FLOP/s}}")
    # Tokens per second per GPU that 400 TFLOP/s of useful work means for a 405B model, and back.
    tokens_per_second = 400e12 / (6 * 405e9)
    h100_bf16_dense_peak = 989e12  # NVIDIA's H100 SXM datasheet figure (dense, no sparsity)
    mfu = 6 * 405e9 * tokens_per_second / h100_bf16_dense_peak
    assert 0.38 <= mfu <= 0.43  # the 38 to 43% the page quotes from the paper
