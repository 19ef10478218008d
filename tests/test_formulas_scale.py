"""Every formula and worked number of the pages on training at scale, data and evaluation, and
open-weight models, recomputed independently.

Each test first finds the formula or the number on its page (so an edit of the page without its
check fails here), then recomputes it: by arithmetic from the stated inputs, or against an
independent oracle (a schedule simulated step by step, PyTorch's own dtypes, a brute-force
enumeration). Test docstrings and messages name the page.
"""

from __future__ import annotations

import functools
import math
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from page_checks import page_states

DOCS = Path(__file__).resolve().parents[1] / "docs"
SNIPPETS = DOCS / "snippets"
SCALE = "docs/training_at_scale.md"


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
    page_states(SCALE, "Per token and per\nlayer that is $34h + 5as$ bytes")
    for seq in (1, 128, 4096):
        assert activation_bytes_per_layer(seq, 1, h, a) / seq == 34 * h + 5 * a * seq
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
    # bf16 is float32's top 16 bits: PyTorch's conversion equals rounding off the low 16 bits (to nearest, ties to even).
    page_states(SCALE, "a float32 value converts by rounding off its last 16 bits")
    x = torch.randn(10000, generator=torch.Generator().manual_seed(0)) * 1e3
    bits = x.view(torch.int32).to(torch.int64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    assert torch.equal(rounded.to(torch.int32).view(torch.float32), x.to(torch.bfloat16).to(torch.float32))
    page_states(SCALE, "E4M3 (448 at most")
    # E4M3 (fn): bias 7, top exponent 8, mantissa 1.110 (1.111 is NaN): 1.75 * 2^8.
    assert 1.75 * 2 ** 8 == 448 == torch.finfo(torch.float8_e4m3fn).max
    page_states(SCALE, "(a gradient of\n  $10^{-8}$ becomes representable)")
    # fp16's smallest subnormal is 2^-24 ~ 6e-8: 1e-8 rounds to zero; times 1024 it survives.
    assert torch.tensor(1e-8).half().item() == 0.0
    assert torch.tensor(1e-8 * 1024).half().float().item() / 1024 == pytest.approx(1e-8, rel=0.01)


def test_exponent_and_mantissa_bits_of_each_format():
    """docs/training_at_scale.md: fp32 has 8 exponent and 23 mantissa bits, fp16 5 and 10, bf16 8 and 7"""
    page_states(SCALE, "**fp32** (8 exponent bits, 23 mantissa bits)")
    page_states(SCALE, "**fp16** (5 and 10)")
    page_states(SCALE, "**bf16** (8 and 7)")
    for dtype, exponent, mantissa in [(torch.float32, 8, 23), (torch.float16, 5, 10), (torch.bfloat16, 8, 7)]:
        info = torch.finfo(dtype)
        assert info.eps == 2.0 ** -mantissa, dtype  # the spacing of numbers just above 1
        assert info.bits == 1 + exponent + mantissa, dtype
        assert info.smallest_normal == 2.0 ** (2 - 2 ** (exponent - 1)), dtype  # exponent bias 2^(e-1) - 1


def test_autocast_snippet_runs_in_bf16_and_trains_like_float32(capsys):
    """docs/training_at_scale.md: under autocast, activations bf16, weights and gradients float32; both runs train alike"""
    page_states(SCALE, "matrix products in\nbf16, reductions and the loss in float32, while the weights, gradients and the optimizer stay\nfloat32")
    names = snippet("training_at_scale/autocast_bf16.py")
    capsys.readouterr()
    assert (names["activation"], names["weight"], names["gradient"]) == (torch.bfloat16, torch.float32, torch.float32)
    assert names["last32"] < names["first32"] / 100 and names["last16"] < names["first16"] / 100
    assert names["last16"] == pytest.approx(names["last32"], rel=0.5, abs=1e-3)


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


def test_all_reduce_volume_and_zero_3_communication():
    """docs/training_at_scale.md: an all-reduce sends about twice the gradients' size per GPU; ZeRO-3 about 1.5 times that"""
    page_states(SCALE, "sends and receives about twice the\ngradients' size per GPU")
    import numpy as np

    # A ring all-reduce, simulated: d GPUs, each with its own gradient of `size` numbers, cut into d chunks.
    d, size = 8, 64
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(size) for _ in range(d)]
    chunks = [np.array_split(g.copy(), d) for g in grads]
    sent = [0] * d
    for step in range(d - 1):  # reduce-scatter: after it, GPU g holds the full sum of chunk (g + 1) % d
        outgoing = [(g, (g - step) % d, chunks[g][(g - step) % d].copy()) for g in range(d)]
        for g, c, data in outgoing:
            chunks[(g + 1) % d][c] += data
            sent[g] += data.size
    for step in range(d - 1):  # all-gather: pass the finished chunks around the ring
        outgoing = [(g, (g + 1 - step) % d, chunks[g][(g + 1 - step) % d].copy()) for g in range(d)]
        for g, c, data in outgoing:
            chunks[(g + 1) % d][c] = data
            sent[g] += data.size
    total = np.sum(grads, axis=0)
    for g in range(d):
        np.testing.assert_allclose(np.concatenate(chunks[g]), total)
    assert all(n == 2 * (d - 1) * size / d for n in sent)  # 2(d-1)/d of the gradients: about twice
    page_states(SCALE, "stage 3 about 1.5 times as much")
    # ZeRO-3 (the paper's count): all-gather the weights in the forward and again in the backward
    # pass, reduce-scatter the gradients: three half-all-reduces against plain data parallelism's two.
    half = (d - 1) * size / d
    assert (3 * half) / (2 * half) == 1.5


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


# ---------------------------------------------------------------- data and evaluation

DATA = "docs/data_evaluation.md"
GPT2_FILES = DOCS.parents[1] / "shared" / "data" / "gpt2"


def test_minhash_collision_probability_is_the_jaccard_similarity():
    """docs/data_evaluation.md: P[min h(A) = min h(B)] = |A & B| / |A | B|, over every permutation of a small universe"""
    page_states(DATA, r"P\left[\min_{x \in A} h(x) = \min_{x \in B} h(x)\right] = \frac{|A \cap B|}{|A \cup B|}")
    from fractions import Fraction
    from itertools import permutations

    universe = range(7)
    a, b = {0, 1, 2, 3}, {2, 3, 4}
    perms = list(permutations(universe))  # a random hash function = a random order of the universe
    equal = sum(min(a, key=p.index) == min(b, key=p.index) for p in perms)
    assert Fraction(equal, len(perms)) == Fraction(len(a & b), len(a | b))


def test_banding_probability_against_simulation_and_the_pages_figures(capsys):
    """docs/data_evaluation.md: 1 - (1 - s^r)^b, simulated; five changed 5-grams give 0.69; 0.7 -> 61% with 16 x 8"""
    page_states(DATA, r"1 - \left(1 - s^{r}\right)^{b}")
    import numpy as np

    rng = np.random.default_rng(0)
    bands, rows, trials = 16, 8, 200_000
    for s in (0.5, 0.7):
        agree = rng.random((trials, bands, rows)) < s  # each signature row agrees with probability s
        simulated = agree.all(axis=2).any(axis=1).mean()
        assert simulated == pytest.approx(1 - (1 - s ** rows) ** bands, abs=0.005)
    page_states(DATA, "a pair at 0.7 becomes a candidate 61% of the time")
    assert round(100 * (1 - (1 - 0.7 ** 8) ** 16)) == 61
    names = snippet("data_evaluation/minhash.py")
    capsys.readouterr()
    base = names["base"]
    assert len(base.split()) == 31
    page_states(DATA, "Changing one word of a 31-word text changes five of its 5-grams: the similarity falls to 0.69")
    changed = names["shingles"](names["documents"]["copy with one word changed"])
    assert len(names["base_shingles"] - changed) == 5
    assert round(names["jaccard"](names["base_shingles"], changed), 2) == 0.69


@functools.cache
def gpt2_tables() -> tuple[dict[int, str], dict[str, int], dict[tuple[str, str], int]]:
    """GPT-2's byte-to-unicode map, vocabulary and merge ranks, read once from its two files."""
    import json

    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for byte in range(256):
        if byte not in bs:
            bs.append(byte)
            cs.append(256 + n)
            n += 1
    byte_encoder = dict(zip(bs, map(chr, cs)))
    encoder = json.loads((GPT2_FILES / "gpt2_vocab.json").read_text(encoding="utf-8"))
    lines = (GPT2_FILES / "gpt2_merges.txt").read_text(encoding="utf-8").splitlines()
    ranks = {(pair[0], pair[1]): i for i, pair in enumerate(line.split() for line in lines if line and not line.startswith("#version"))}
    return byte_encoder, encoder, ranks


def gpt2_reference_encode(text: str) -> list[int]:
    """GPT-2's own algorithm (OpenAI's encoder.py): its regex, its byte-to-unicode map, lowest-rank merge first."""
    import regex

    byte_encoder, encoder, ranks = gpt2_tables()
    pattern = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
    ids = []
    for chunk in pattern.findall(text):
        word = [byte_encoder[b] for b in chunk.encode("utf-8")]
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: ranks.get(p, float("inf")))
            if pair not in ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids.extend(encoder[token] for token in word)
    return ids


def test_tokens_per_character_figures(capsys):
    """docs/data_evaluation.md: GPT-2 0.20 tokens/char (1.16/word) for English, 2.19 for Chinese (68 vs 22); course BPE 3.00 = one per byte"""
    names = snippet("data_evaluation/tokenizer_efficiency.py")
    capsys.readouterr()
    samples, gpt2, course, encode = names["SAMPLES"], names["gpt2"], names["course"], names["encode"]
    for text in samples.values():
        # The snippet's tokenizer (Hugging Face's Rust BPE) against GPT-2's own algorithm.
        assert gpt2.encode(text).ids == gpt2_reference_encode(text)
        # The course BPE loses nothing: its tokens decode back to the text.
        vocab = [bytes([i]) for i in range(256)]
        for left, right in course:
            vocab.append(vocab[left] + vocab[right])
        assert b"".join(vocab[t] for t in encode(text, course)).decode() == text
    english, chinese = samples["English"], samples["Chinese"]
    n_en, n_zh = len(gpt2_reference_encode(english)), len(gpt2_reference_encode(chinese))
    page_states(DATA, "the English sentence costs 0.20 tokens per character (1.16 per word)")
    assert f"{n_en / len(english):.2f}" == "0.20" and f"{n_en / len(english.split()):.2f}" == "1.16"
    page_states(DATA, "costs 2.19 tokens per character: 68 tokens against 22,\nthree times the cost")
    assert (n_zh, n_en) == (68, 22) and f"{n_zh / len(chinese):.2f}" == "2.19" and round(n_zh / n_en) == 3
    page_states(DATA, "spends exactly one token per\nbyte, 3.00 per character")
    assert all(max(pair) < 128 or pair[0] >= 256 or pair[1] >= 256 for pair in course)  # no merge touches a non-ASCII byte
    assert len(encode(chinese, course)) == len(chinese.encode()) == 3 * len(chinese)


def test_tokenizer_sizes_the_page_names(capsys):
    """docs/data_evaluation.md: the course BPE finds 178 merges, after which every training word is one token; GPT-2's 50,000 merges"""
    page_states(DATA, "asked for 256 merges, it finds 178\nbefore every word of that text is a single token")
    page_states(DATA, "under GPT-2's\n50,000 merges")
    names = snippet("data_evaluation/tokenizer_efficiency.py")
    capsys.readouterr()
    course, encode = names["course"], names["encode"]
    assert len(course) == 178
    for word in set(names["PRETOKENIZE"].findall(names["TRAINING_TEXT"])):
        assert len(encode(word, course)) == 1, word
    merges = [line for line in (GPT2_FILES / "gpt2_merges.txt").read_text(encoding="utf-8").splitlines() if line and not line.startswith("#version")]
    assert len(merges) == 50_000 and names["gpt2"].get_vocab_size() == 256 + 50_000 + 1  # bytes, merges, <|endoftext|>


def test_perplexity_and_bits_per_byte():
    """docs/data_evaluation.md: PPL = e^L (3.27 -> 26.3); bits per byte = L x tokens / (ln 2 x bytes)"""
    page_states(DATA, r"\text{PPL} = e^{L}")
    page_states(DATA, "validation loss of 3.27 is a perplexity of 26.3")
    assert round(math.exp(3.27), 1) == 26.3
    # Perplexity is the inverse geometric mean of the probabilities of the true tokens.
    gen = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(50, 10, generator=gen, dtype=torch.float64), torch.randint(0, 10, (50,), generator=gen)
    p_true = logits.softmax(-1)[torch.arange(50), targets]
    loss = F.cross_entropy(logits, targets)
    assert math.exp(loss.item()) == pytest.approx(p_true.prod().item() ** (-1 / 50))
    page_states(DATA, r"\text{bits per byte} = \frac{L \times \text{tokens}}{\ln 2 \times \text{bytes}}")
    # Tokens of 3 bytes each: the total code length in bits, -sum log2 p, spread over the bytes.
    tokens, n_bytes = 50, 150
    bits = -torch.log2(p_true).sum().item()
    assert loss.item() * tokens / (math.log(2) * n_bytes) == pytest.approx(bits / n_bytes)


def test_pass_at_k_estimator_against_enumeration(capsys):
    """docs/data_evaluation.md: pass@k = 1 - C(n-c,k)/C(n,k), unbiased (every k-subset enumerated), c/n at k = 1"""
    page_states(DATA, r"\text{pass@}k = 1 - \frac{\binom{n-c}{k}}{\binom{n}{k}}")
    from itertools import combinations

    pass_at_k = snippet("data_evaluation/pass_at_k.py")["pass_at_k"]
    capsys.readouterr()
    for n, c in [(6, 0), (6, 2), (7, 3), (8, 8), (9, 1)]:
        outcomes = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(combinations(outcomes, k))
            exact = sum(any(s) for s in subsets) / len(subsets)  # the chance a random k-subset contains a pass
            assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)
            assert exact == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))
        assert pass_at_k(n, c, 1) == pytest.approx(c / n)
    # The printed figures, from exact binomials.
    assert round(1 - math.comb(188, 10) / math.comb(200, 10), 3) == 0.469
    assert round((0 + 12 / 200 + 150 / 200) / 3, 3) == 0.270


def test_elo_preference_probability():
    """docs/data_evaluation.md: P(A > B) = 1 / (1 + 10^((R_B - R_A)/400)); a 100-point lead is 64%"""
    page_states(DATA, r"P(A \succ B) = \frac{1}{1 + 10^{(R_B - R_A)/400}}")
    page_states(DATA, "a 100-point lead means being preferred 64% of the time")
    p = 1 / (1 + 10 ** (-100 / 400))
    assert round(100 * p) == 64
    # The same as Bradley-Terry's logistic model with strengths exp(R ln10 / 400), which the page says the arena fits.
    page_states(DATA, "score per model by maximum likelihood under the Bradley–Terry model")
    strength = lambda r: math.exp(r * math.log(10) / 400)  # noqa: E731
    assert p == pytest.approx(strength(1100) / (strength(1100) + strength(1000)))


# ---------------------------------------------------------------- open-weight models

OPEN = "docs/open_models.md"


def notebook_07_sample_logits(logits: torch.Tensor, temperature: float, top_k: int | None) -> torch.Tensor:
    """Notebook 07's generate(): divide by the temperature, mask all but the top k with -inf."""
    logits = logits / temperature
    if top_k is not None:
        values, _ = torch.topk(logits, min(top_k, logits.shape[-1]))
        logits = logits.masked_fill(logits < values[:, [-1]], float("-inf"))
    return logits


def test_generation_settings_match_their_definitions():
    """docs/open_models.md: temperature softmax, top-k, top-p (smallest set reaching p), repetition penalty, in transformers"""
    from transformers import RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    page_states(OPEN, r"$p_i = e^{z_i/T} / \sum_j e^{z_j/T}$")
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(3, 20, generator=gen, dtype=torch.float64)
    ids = torch.randint(0, 20, (3, 6), generator=gen)
    t = 0.7
    tempered = TemperatureLogitsWarper(t)(ids, z.clone())
    p = torch.exp(z / t) / torch.exp(z / t).sum(-1, keepdim=True)
    torch.testing.assert_close(tempered.softmax(-1), p)
    # Temperature then top-k, as transformers applies them, equals notebook 07's code.
    hf = TopKLogitsWarper(5)(ids, TemperatureLogitsWarper(t)(ids, z.clone()))
    torch.testing.assert_close(hf, notebook_07_sample_logits(z, t, 5))
    # top-p: the smallest set of most probable tokens with total probability >= p survives.
    probs = z.softmax(-1)
    kept = torch.isfinite(TopPLogitsWarper(0.8)(ids, z.clone()))
    for row in range(3):
        order = probs[row].argsort(descending=True)
        cumulative = probs[row][order].cumsum(0)
        size = int((cumulative < 0.8).sum()) + 1
        assert set(order[:size].tolist()) == set(kept[row].nonzero().flatten().tolist())
    # Repetition penalty: seen tokens' positive logits divided by theta, negative ones multiplied.
    theta = 1.3
    penalised = RepetitionPenaltyLogitsProcessor(theta)(ids, z.clone())
    expected = z.clone()
    for row in range(3):
        for token in set(ids[row].tolist()):
            value = z[row, token]
            expected[row, token] = value / theta if value > 0 else value * theta
    torch.testing.assert_close(penalised, expected)
    page_states(OPEN, "a positive logit\n  is divided by $\\theta$, a negative one multiplied by it")


def test_weight_memory_and_the_4_bit_format(capsys):
    """docs/open_models.md: N x b / 8 bytes; bf16 = half of float32; 4-bit codes + a 16-bit scale per 64 = 4.25 bits"""
    page_states(OPEN, "Weights take $N \\times b / 8$ bytes")
    names = snippet("open_models/lower_precision.py")
    capsys.readouterr()
    model = names["model"]  # the bf16 one, loaded last
    n = model.num_parameters()
    params_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert params_bytes == n * 16 // 8
    page_states(OPEN, "needs 2 GB of memory per billion\nparameters for the weights")
    assert params_bytes / n * 1e9 / 1e9 == 2.0, f"{OPEN}: bf16 weights take 2 GB per billion parameters"
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert model.get_memory_footprint() == params_bytes + buffers
    assert names["bits"] == 4 + 16 / 64 == 4.25
    # The quantiser's codes are 4-bit integers and it reconstructs within half a step per group.
    q, scale = names["q"], names["scale"]
    assert q.min() >= -8 and q.max() <= 7 and torch.equal(q, q.round())
    w = names["w"].reshape(-1, 64)
    assert ((q * scale - w).abs() <= scale / 2 + 1e-6).all()


def test_lora_parameter_count_and_merge(capsys):
    """docs/open_models.md: W' = W + (alpha/r) B A, r(d_in + d_out) trainable parameters; 7B full fine-tuning 112 GB"""
    page_states(OPEN, r"W' = W + \frac{\alpha}{r} B A, \quad B \in \mathbb{R}^{d_{out} \times r}, \quad A \in \mathbb{R}^{r \times d_{in}}")
    page_states(OPEN, "which is $r(d_{in} + d_{out})$ trainable parameters instead of $d_{in} d_{out}$")
    names = snippet("open_models/lora_peft.py")
    capsys.readouterr()
    config, r = names["config"], 8
    head_dim = config.hidden_size // config.num_attention_heads
    q_out, v_out = config.hidden_size, config.num_key_value_heads * head_dim
    expected = config.num_hidden_layers * (r * (config.hidden_size + q_out) + r * (config.hidden_size + v_out))
    assert names["trainable"] == expected == 3584
    # The merged weight is W + (alpha/r) B A, with a B that is not zero.
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    torch.manual_seed(1)
    base = LlamaForCausalLM(config)
    w = base.model.layers[0].self_attn.q_proj.weight.detach().clone()
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=16, target_modules=["q_proj"], lora_dropout=0.0))
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    # The page: in PyTorch's layout A (r x d_in) reads the input, B (d_out x r) writes the output and starts at zero.
    page_states(OPEN, "$A$ reads the input, $B$ writes\nthe output and starts at zero, as PEFT's `lora_A` and `lora_B` do")
    assert layer.lora_A["default"].weight.shape == (r, config.hidden_size)
    assert layer.lora_B["default"].weight.shape == (q_out, r)
    assert torch.count_nonzero(layer.lora_B["default"].weight) == 0, f"{OPEN}: PEFT's lora_B starts at zero"
    torch.nn.init.normal_(layer.lora_B["default"].weight)
    a, b = layer.lora_A["default"].weight.detach().clone(), layer.lora_B["default"].weight.detach().clone()
    merged = model.merge_and_unload().model.layers[0].self_attn.q_proj.weight
    torch.testing.assert_close(merged, w + (16 / r) * b @ a)
    page_states(OPEN, "[training at scale](training_at_scale.md): 112 GB")
    assert 16 * 7e9 / 1e9 == 112
    page_states(OPEN, "a 7B model's bf16\nweights take 14 GB")
    assert 7e9 * 16 / 8 / 1e9 == 14


def test_rag_scores_are_cosine_similarities(capsys):
    """docs/open_models.md: cos(q, d) = q.d / (|q| |d|); the AdamW document is retrieved first"""
    page_states(OPEN, r"\cos(q, d) = \frac{q \cdot d}{\|q\|\,\|d\|}")
    names = snippet("open_models/rag.py")
    capsys.readouterr()
    index, question_vector = torch.tensor(names["index"]), torch.tensor(names["embed"](names["question"]))
    cosines = F.cosine_similarity(index, question_vector.expand_as(index), dim=1)
    torch.testing.assert_close(torch.tensor(names["scores"]), cosines)
    assert "AdamW" in names["documents"][int(names["top"][0])]


def test_model_memory_table_recomputed():
    """docs/open_models.md: every row of the table (bf16 and 4-bit GB, smallest device with 20% headroom), recomputed"""
    import re

    names = runpy.run_path(str(SNIPPETS / "open_models/model_memory.py"), run_name="snippet")
    devices = [("laptop CPU", 16), ("consumer GPU", 24), ("data-centre GPU", 80)]
    page_states(OPEN, "a laptop CPU with 16 GB of memory, a consumer GPU with 24 GB, a data-centre GPU with\n80 GB")
    page_states(OPEN, "here 20% of the device's memory")

    def smallest(gb):
        # The weights may take 80% of the device: 20% of its memory is kept for cache, activations and runtime.
        return next((name for name, memory in devices if gb <= memory - 0.2 * memory), "several GPUs")

    page = (DOCS / "open_models.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| ([^|@\[]+?) \[@[\w-]+\] \| ([\d.]+)B \| ([\d.]+) GB \| ([\d.]+) GB \| ([^|]+) \| ([^|]+) \|$", page, re.MULTILINE)
    assert [(model, float(params)) for model, params, *_ in rows] == [(m, float(p)) for m, p in names["MODELS"]]
    for model, params, bf16, four_bit, device_bf16, device_4bit in rows:
        n = float(params) * 1e9
        assert float(bf16) == round(n * 2 / 1e9, 1), model
        assert float(four_bit) == pytest.approx(n * 4.25 / 8 / 1e9, abs=0.051), model
        assert device_bf16 == smallest(n * 2 / 1e9) == names["smallest_device"](float(params), 16), model
        assert device_4bit == smallest(n * 4.25 / 8 / 1e9) == names["smallest_device"](float(params), 4.25), model
    page_states(OPEN, "Mixtral 8x7B uses 13B\nparameters per token but stores 47B")
