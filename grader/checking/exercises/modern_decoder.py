"""Notebook 08: the modern decoder (RMSNorm, SwiGLU, RoPE, grouped-query attention, a Llama with a
KV cache, mixture of experts), in PyTorch.

What each exercise trusts (nothing a learner's code computes is believed as such):

- ``rms_norm``, ``swiglu``, ``rope_cos_sin``, ``apply_rope``, ``repeat_kv``, ``kv_cache_bytes``,
  ``moe_forward``, ``load_balancing_loss``: the returned numbers are the answer; they are
  compared with ``grader.checking.llama_oracles`` (float64 NumPy), computed here from the
  inputs that were sent, and one call of each checks that the inputs are left unchanged.
- ``make_llama``: only the module's parameter names and shapes are read from it; the judge then
  loads weights it drew itself into the module by name (``load_state_dict(strict=True)``),
  runs its own forward pass and compares, for the whole sequence and for the same sequence fed
  through a KV cache (the prompt, then one token at a time). A module whose logits ignore its
  parameters, or a lookup, cannot know the judge's weights.
- ``generate_cached``: the judge hands over the learner's own model holding the judge's
  weights, so it knows every token the recipe draws; the harness counts the positions that
  go through the model, which tells a cache that recomputes the whole sequence, and returns
  the prompt after the call, which must be unchanged.
"""
from __future__ import annotations

import numpy as np

from grader.checking import llama_oracles as O
from grader.checking.judge import names_and_shapes_problem
from grader.checking.spec import Call, Exercise, LearnerModel, Mistake, NotebookSpec, Tensor, TorchGenerator


def _cell(signature: str, body: str) -> str:
    return signature + "\n" + "".join(f"    {line}\n" for line in body.strip("\n").splitlines())


def _t(array) -> Tensor:
    return Tensor("torch", np.asarray(array))


def _normal(rng, *shape, scale=1.0):
    return scale * rng.standard_normal(shape)


def _kept(calls: list[Call]) -> list[Call]:
    """The calls, the first one also checking that the inputs are left unchanged."""
    first = calls[0]
    return [Call(first.args, first.kwargs, probe="inputs_after"), *calls[1:]]


KEEPS_INPUTS = ("the function changed its input tensors (an in-place operation such as mul_, += or "
                "x[...] = on an argument): compute new tensors and leave the inputs unchanged.")

# --- rms_norm ----------------------------------------------------------------------------

RMS_MEAN = ("RMSNorm does not subtract the mean: y = x / sqrt(mean(x**2) + eps) * weight (layer norm centres "
            "x; RMSNorm only rescales it).")
RMS_EPS_OUTSIDE = ("eps goes inside the square root: x * rsqrt(mean(x**2) + eps), not x / (sqrt(mean(x**2)) + eps); "
                   "the outputs differ where x is small.")
RMS_NO_WEIGHT = "multiply the normalised x by weight (the learned gain, one per feature)."
RMS_SUM = "take the mean of x**2 over the last axis, not the sum: mean(x**2) = sum(x**2) / x.shape[-1]."

_RMS_SIGNATURE = "def rms_norm(x, weight, eps=1e-6):"
_RMS_BODY = """input_dtype = x.dtype
h = x.to(torch.float32){centre}
variance = h.pow(2).{reduce}(-1, keepdim=True)
h = {normalise}
return {gain}h.to(input_dtype)"""
_RMS_RIGHT = dict(centre="", reduce="mean", normalise="h * torch.rsqrt(variance + eps)", gain="weight * ")


def _rms_call(rng, shape, scale, eps=None):
    x = _normal(rng, *shape, scale=scale)
    weight = 1.0 + _normal(rng, shape[-1], scale=0.5)
    return Call((_t(x), _t(weight)), {} if eps is None else {"eps": eps})


def _visible_rms_calls():
    rng = np.random.default_rng(80)
    # a mean far from 0, and rows of small values where eps matters
    shifted = _rms_call(rng, (2, 3, 8), 1.0)
    shifted.args[0].value[...] += 3.0
    return _kept([shifted, _rms_call(rng, (4, 6), 1e-3, eps=1e-5)])


rms_norm = Exercise(
    name="rms_norm", points=1, title="RMSNorm",
    visible_calls=_visible_rms_calls,
    hidden_calls=lambda rng: _kept([_rms_call(rng, (3, 5, 16), 2.0), _rms_call(rng, (7, 12), 3e-3, eps=1e-5)]),
    expected=O.rms_norm,
    rtol=1e-5, atol=1e-6,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(RMS_MEAN, wrong=lambda x, w, eps=1e-6: O.rms_norm(x, w, eps, centred=True),
                inject=_cell(_RMS_SIGNATURE, _RMS_BODY.format(**{**_RMS_RIGHT,
                                                                  "centre": "\nh = h - h.mean(-1, keepdim=True)"}))),
        Mistake(RMS_EPS_OUTSIDE, wrong=lambda x, w, eps=1e-6: O.rms_norm(x, w, eps, eps_outside=True),
                inject=_cell(_RMS_SIGNATURE, _RMS_BODY.format(**{**_RMS_RIGHT,
                                                                  "normalise": "h / (variance.sqrt() + eps)"}))),
        Mistake(RMS_NO_WEIGHT, wrong=lambda x, w, eps=1e-6: O.rms_norm(x, w, eps, scaled=False),
                inject=_cell(_RMS_SIGNATURE, _RMS_BODY.format(**{**_RMS_RIGHT, "gain": ""}))),
        Mistake(RMS_SUM, wrong=lambda x, w, eps=1e-6: O.rms_norm(x, w, eps, mean=False),
                inject=_cell(_RMS_SIGNATURE, _RMS_BODY.format(**{**_RMS_RIGHT, "reduce": "sum"}))),
    ),
)

# --- swiglu ------------------------------------------------------------------------------

SWIGLU_SWAPPED = ("gate and up are swapped: SiLU goes on the gate branch, silu(x @ w_gate.T) * (x @ w_up.T), "
                  "not on x @ w_up.T.")
SWIGLU_AFTER = ("apply SiLU to the gate alone, silu(x @ w_gate.T) * (x @ w_up.T), not to the product of the "
                "two branches.")
SWIGLU_SIGMOID = ("SwiGLU gates with SiLU, z * sigmoid(z) (F.silu), not with sigmoid(z) alone (that is the "
                  "original GLU).")
SWIGLU_NO_GATE = ("the gate has no activation: apply F.silu to x @ w_gate.T before multiplying by x @ w_up.T.")

_SWIGLU_SIGNATURE = "def swiglu(x, w_gate, w_up, w_down):"
_SWIGLU_BODY = """gate, up = x @ w_gate.T, x @ w_up.T
return ({hidden}) @ w_down.T"""


def _swiglu_call(rng, shape, d_ff, scale=1.0):
    d = shape[-1]
    return Call((_t(_normal(rng, *shape, scale=scale)), _t(_normal(rng, d_ff, d, scale=d ** -0.5)),
                 _t(_normal(rng, d_ff, d, scale=d ** -0.5)), _t(_normal(rng, d, d_ff, scale=d_ff ** -0.5))))


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


swiglu = Exercise(
    name="swiglu", points=1, title="The SwiGLU feed-forward layer",
    visible_calls=lambda: _kept([_swiglu_call(np.random.default_rng(81), (2, 3, 6), 10, scale=2.0)]),
    hidden_calls=lambda rng: _kept([_swiglu_call(rng, (4, 8), 12, scale=3.0), _swiglu_call(rng, (2, 5, 16), 24)]),
    expected=O.swiglu,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(SWIGLU_SWAPPED, wrong=lambda *a: O.swiglu(*a, swapped=True),
                inject=_cell(_SWIGLU_SIGNATURE, _SWIGLU_BODY.format(hidden="F.silu(up) * gate"))),
        Mistake(SWIGLU_AFTER, wrong=lambda *a: O.swiglu(*a, after=True),
                inject=_cell(_SWIGLU_SIGNATURE, _SWIGLU_BODY.format(hidden="F.silu(gate * up)"))),
        Mistake(SWIGLU_SIGMOID, wrong=lambda *a: O.swiglu(*a, act=_sigmoid),
                inject=_cell(_SWIGLU_SIGNATURE, _SWIGLU_BODY.format(hidden="torch.sigmoid(gate) * up"))),
        Mistake(SWIGLU_NO_GATE, wrong=lambda *a: O.swiglu(*a, act=lambda z: z),
                inject=_cell(_SWIGLU_SIGNATURE, _SWIGLU_BODY.format(hidden="gate * up"))),
    ),
)

# --- rope_cos_sin ------------------------------------------------------------------------

ROPE_LAYOUTS = ("Hugging Face's Llama pairs channel i with channel i + D/2 (\"rotate half\"): repeat the "
                "angles as torch.cat([angles, angles], dim=-1); Meta's original code pairs channels 2i and 2i+1 "
                "(interleaved). The two layouts differ only by a permutation of the q and k weights, but "
                "a checkpoint works with one of them only.")
ROPE_TABLE_INTERLEAVED = "cos and sin are laid out for interleaved pairs (2i, 2i+1): " + ROPE_LAYOUTS
ROPE_EXPONENT = ("the frequencies are base ** (-2i / head_dim) for i = 0 .. head_dim/2 - 1, i.e. "
                 "torch.arange(0, head_dim, 2) / head_dim: cos and sin turn too slowly with base ** (-i / head_dim).")
ROPE_FROM_ONE = ("positions start at 0: row t of cos and sin holds the angles t * theta_i, for t = 0 .. T-1 "
                 "(row 0 is cos = 1, sin = 0).")

_ROPE_TABLE_SIGNATURE = "def rope_cos_sin(T, head_dim, base=10000.0):"
_ROPE_TABLE_BODY = """inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, {step}, dtype=torch.float32){cut} / head_dim))
positions = torch.arange({positions}, dtype=torch.float32)
angles = positions[:, None] * inv_freq[None, :]
table = {table}
return table.cos(), table.sin()"""
_ROPE_TABLE_RIGHT = dict(step="2", cut="", positions="T", table="torch.cat([angles, angles], dim=-1)")


def _rope_table_call(T, head_dim, base=None):
    return Call((T, head_dim), {} if base is None else {"base": base})


rope_cos_sin = Exercise(
    name="rope_cos_sin", points=1, title="Rotary embeddings: the angles",
    visible_calls=lambda: [_rope_table_call(6, 8), _rope_table_call(5, 4, base=100.0)],
    hidden_calls=lambda rng: [_rope_table_call(int(rng.integers(5, 12)), 16),
                              _rope_table_call(int(rng.integers(3, 9)), 6, base=float(rng.integers(50, 500)))],
    expected=O.rope_cos_sin,
    # float32 angles, as Llama computes them: t * theta is off by up to about 1e-6
    rtol=1e-5, atol=2e-5,
    mistakes=(
        Mistake(ROPE_TABLE_INTERLEAVED, wrong=lambda T, D, base=10000.0: O.rope_cos_sin(T, D, base, interleaved=True),
                inject=_cell(_ROPE_TABLE_SIGNATURE, _ROPE_TABLE_BODY.format(
                    **{**_ROPE_TABLE_RIGHT, "table": "angles.repeat_interleave(2, dim=-1)"}))),
        Mistake(ROPE_EXPONENT, wrong=lambda T, D, base=10000.0: O.rope_cos_sin(T, D, base, exponent_step=1),
                inject=_cell(_ROPE_TABLE_SIGNATURE, _ROPE_TABLE_BODY.format(
                    **{**_ROPE_TABLE_RIGHT, "step": "1", "cut": "[:head_dim // 2]"}))),
        Mistake(ROPE_FROM_ONE, wrong=lambda T, D, base=10000.0: O.rope_cos_sin(T, D, base, first_position=1),
                inject=_cell(_ROPE_TABLE_SIGNATURE, _ROPE_TABLE_BODY.format(
                    **{**_ROPE_TABLE_RIGHT, "positions": "1, T + 1"}))),
    ),
)

# --- apply_rope --------------------------------------------------------------------------

ROPE_APPLY_INTERLEAVED = "the rotation pairs channels 2i and 2i+1 (interleaved): " + ROPE_LAYOUTS
ROPE_APPLY_SIGN = ("rotate_half(x) is cat(-x2, x1), with x1, x2 the two halves of the last axis: with "
                   "cat(x2, -x1) each pair turns the other way.")
ROPE_APPLY_HALVES = ("rotate_half swaps the two halves and negates the new first half, cat(-x2, x1); "
                     "x * cos + x * sin (no swap) is not a rotation.")

_ROPE_APPLY_SIGNATURE = "def apply_rope(x, cos, sin):"
_ROPE_APPLY_BODY = """half = x.shape[-1] // 2
x1, x2 = x[..., :half], x[..., half:]
rotated = {rotated}
return x * cos + rotated * sin"""
_ROPE_INTERLEAVED_CELL = _cell(_ROPE_APPLY_SIGNATURE, """even, odd = x[..., 0::2], x[..., 1::2]
c, s = cos[..., 0::2], sin[..., 0::2]
return torch.stack([even * c - odd * s, odd * c + even * s], dim=-1).flatten(-2)""")


def _apply_call(rng, B, H, T, D, scale=1.0, base=10000.0):
    cos, sin = O.rope_cos_sin(T, D, base)
    return Call((_t(_normal(rng, B, H, T, D, scale=scale)), _t(cos), _t(sin)))


apply_rope = Exercise(
    name="apply_rope", points=1, title="Rotary embeddings: the rotation",
    visible_calls=lambda: _kept([_apply_call(np.random.default_rng(82), 2, 3, 5, 8, base=10.0)]),
    hidden_calls=lambda rng: _kept([_apply_call(rng, 1, 4, 9, 16, scale=3.0, base=20.0),
                                    _apply_call(rng, 3, 2, 6, 4, base=10000.0)]),
    expected=O.apply_rope,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(ROPE_APPLY_INTERLEAVED, wrong=lambda x, c, s: O.apply_rope(x, c, s, interleaved=True),
                inject=_ROPE_INTERLEAVED_CELL),
        Mistake(ROPE_APPLY_SIGN, wrong=lambda x, c, s: O.apply_rope(x, c, s, sign=-1.0),
                inject=_cell(_ROPE_APPLY_SIGNATURE, _ROPE_APPLY_BODY.format(rotated="torch.cat([x2, -x1], dim=-1)"))),
        Mistake(ROPE_APPLY_HALVES, wrong=lambda x, c, s: np.asarray(x) * (np.asarray(c) + np.asarray(s)),
                inject=_cell(_ROPE_APPLY_SIGNATURE, _ROPE_APPLY_BODY.format(rotated="x"))),
    ),
)

# --- repeat_kv ---------------------------------------------------------------------------

REPEAT_TILED = ("query head h must read key/value head h // n_rep (each kv head repeated n_rep times in a row: "
                "repeat_interleave(n_rep, dim=1)); x.repeat(1, n_rep, 1, 1) gives head h the kv head h % n_kv_head.")
REPEAT_TIME = "repeat the heads (dim 1), not the positions (dim 2): the result is (B, n_kv_head * n_rep, T, D)."

_REPEAT_SIGNATURE = "def repeat_kv(x, n_rep):"


def _repeat_call(rng, B, n_kv, T, D, n_rep):
    return Call((_t(_normal(rng, B, n_kv, T, D)), n_rep))


repeat_kv = Exercise(
    name="repeat_kv", points=1, title="Grouped-query attention: sharing key/value heads",
    visible_calls=lambda: _kept([_repeat_call(np.random.default_rng(83), 2, 2, 3, 4, 3)]),
    hidden_calls=lambda rng: _kept([_repeat_call(rng, 1, 4, 5, 2, 2), _repeat_call(rng, 2, 3, 2, 4, 4),
                                    _repeat_call(rng, 2, 2, 3, 4, 1)]),
    expected=O.repeat_kv,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(REPEAT_TILED, wrong=lambda x, n: O.repeat_kv(x, n, tiled=True),
                inject=_cell(_REPEAT_SIGNATURE, "return x.repeat(1, n_rep, 1, 1)")),
        Mistake(REPEAT_TIME, wrong=lambda x, n: np.repeat(np.asarray(x), n, axis=2),
                inject=_cell(_REPEAT_SIGNATURE, "return x.repeat_interleave(n_rep, dim=2)")),
    ),
)

# --- make_llama --------------------------------------------------------------------------
#
# The judge draws weights that make every part matter (matrices N(0, 0.3^2) and norm gains
# 1 +- 0.5, logits of order 10), loads them into the learner's module and runs the whole
# sequence, then the same sequence through a cache: the first half at once, then one token at
# a time.

LLAMA_CAUSAL = ("the model reads the future: mask the attention scores of keys after each query with -inf "
                "before the softmax (with a cache, query t of this call sits at position cache length + t).")
LLAMA_SCALE = "divide the attention scores q @ k.T by sqrt(head_dim) before the softmax."
LLAMA_ROPE_VALUES = ("rotate the queries and the keys only: the values carry content, not positions (RoPE on "
                     "the values changes what each head adds to the residual stream).")
LLAMA_FINAL_NORM = "apply the final RMSNorm (model.norm) to the last layer's output before lm_head."
LLAMA_OUTPUT = ("the module's logits are not those of a Llama computed from the judge's weights: check the "
                "order x + attn(input_layernorm(x)), x + mlp(post_attention_layernorm(x)), model.norm, lm_head, "
                "and RoPE on q and k.")
LLAMA_CACHE_OFFSET = ("with a cache, the new tokens' rotary positions must start at the cache's length (the "
                      "positions already seen), not at 0: take rows cache.length .. cache.length + T - 1 of cos and sin.")
LLAMA_CACHE_ROTATION = ("the cache holds keys before their rotation, and then every cached key is turned by the "
                        "new token's angle: rotate the new keys first, then append them to the cache.")
LLAMA_CACHE = ("model(idx, cache=cache) gives other logits than the whole sequence at once: the cache must keep "
               "each layer's rotated keys and values, and the new tokens attend to all of them.")
LLAMA_SHAPE = "the module must map ids (B, T) to logits (B, T, vocab_size) = {}."


def llama_config(vocab_size, n_layer, n_head, n_kv_head, n_embd, ffn_dim, max_seq_len, rope_base=10000.0) -> dict:
    return dict(vocab_size=vocab_size, n_layer=n_layer, n_head=n_head, n_kv_head=n_kv_head, n_embd=n_embd,
                ffn_dim=ffn_dim, max_seq_len=max_seq_len, rope_base=rope_base)


def _shapes(config: dict) -> dict:
    c = config
    return O.llama_shapes(c["vocab_size"], c["n_layer"], c["n_head"], c["n_kv_head"], c["n_embd"], c["ffn_dim"])


def parameters_problem(outputs, config: dict) -> str | None:
    """None when the "shape.<name>" entries are exactly the state dict of LlamaForCausalLM."""
    want = _shapes(config)
    got = {k[len("shape."):]: tuple(int(i) for i in np.asarray(v).ravel()) for k, v in outputs.items()
           if k.startswith("shape.")}
    problem = names_and_shapes_problem(got, want)
    return None if problem is None else f"the state dict must have the names and shapes of LlamaForCausalLM: {problem}."


def judge_weights(rng, config: dict) -> dict:
    return O.init_llama(rng, _shapes(config))


def _llama_call(rng, config: dict, batch: int, T: int):
    weights = judge_weights(rng, config)
    x = rng.integers(0, config["vocab_size"], (batch, T)).astype(np.int64)
    positional = tuple(config[k] for k in ("vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd", "ffn_dim",
                                           "max_seq_len"))
    kwargs = {} if config["rope_base"] == 10000.0 else {"rope_base": config["rope_base"]}
    return Call(positional, kwargs, probe="llama",
                probe_args={"x": x, "prompt": np.asarray(T // 2), **{f"w.{k}": v for k, v in weights.items()}})


def _forward(config, weights, x, **switches):
    with np.errstate(all="ignore"):
        return O.llama_forward(weights, x, config["n_head"], config["n_kv_head"], config["rope_base"], **switches)


def _cached_forward(config, weights, x, prompt, **switches):
    past = O.new_past(weights, x.shape[0], config["n_head"], config["n_kv_head"])
    parts = [_forward(config, weights, x[:, :prompt], past=past, **switches)]
    for t in range(prompt, x.shape[1]):
        parts.append(_forward(config, weights, x[:, t:t + 1], past=past, offset=t, **switches))
    return np.concatenate(parts, axis=1)


def _close(got, want) -> bool:
    return bool(np.all(np.isfinite(got)) and np.allclose(got, want, rtol=1e-4, atol=1e-4))


def judge_llama(call: Call, outputs) -> str | None:
    config = llama_config(*call.args, **call.kwargs)
    problem = parameters_problem(outputs, config)
    if problem:
        return problem
    weights = {k[2:]: v for k, v in call.probe_args.items() if k.startswith("w.")}
    x, prompt = call.probe_args["x"], int(call.probe_args["prompt"])
    got, cached = outputs.get("output.x"), outputs.get("output.cached")
    want_shape = (*x.shape, config["vocab_size"])
    if got is None or cached is None or got.shape != want_shape or cached.shape != want_shape:
        return LLAMA_SHAPE.format(want_shape)
    got, cached = got.astype(np.float64), cached.astype(np.float64)
    want = _forward(config, weights, x)
    if not _close(got, want):
        for hint, switches in ((LLAMA_CAUSAL, {"causal": False}), (LLAMA_SCALE, {"scale": False}),
                               (LLAMA_ROPE_VALUES, {"rope_values": True}), (LLAMA_FINAL_NORM, {"final_norm": False})):
            if _close(got, _forward(config, weights, x, **switches)):
                return hint
        return LLAMA_OUTPUT
    if _close(cached, want):
        return None
    cache_mistakes: tuple[tuple[str, dict], ...] = ((LLAMA_CACHE_OFFSET, {"rope_offset": 0}),
                                                    (LLAMA_CACHE_ROTATION, {"unrotated_cache": True}))
    for hint, switches in cache_mistakes:
        try:
            if _close(cached, _cached_forward(config, weights, x, prompt, **switches)):
                return hint
        except ValueError:  # this mistake cannot run on these shapes
            continue
    return LLAMA_CACHE


LLAMA_VISIBLE = llama_config(19, 2, 4, 2, 16, 24, 32)

LLAMA_CELL = '''class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class MLP(nn.Module):
    def __init__(self, n_embd, ffn_dim):
        super().__init__()
        self.gate_proj = nn.Linear(n_embd, ffn_dim, bias=False)
        self.up_proj = nn.Linear(n_embd, ffn_dim, bias=False)
        self.down_proj = nn.Linear(ffn_dim, n_embd, bias=False)

    def forward(self, x):
        return swiglu(x, self.gate_proj.weight, self.up_proj.weight, self.down_proj.weight)


class Attention(nn.Module):
    def __init__(self, n_embd, n_head, n_kv_head):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, n_embd // n_head
        self.q_proj = nn.Linear(n_embd, n_head * self.head_dim, bias={bias})
        self.k_proj = nn.Linear(n_embd, n_kv_head * self.head_dim, bias=False)
        self.v_proj = nn.Linear(n_embd, n_kv_head * self.head_dim, bias=False)
        self.o_proj = nn.Linear(n_head * self.head_dim, n_embd, bias=False)

    def forward(self, x, cos, sin, cache=None, layer=0):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin){rope_values}
        {keys}
        if cache is not None:
            v = torch.cat([cache.values[layer], v], dim=2)
            cache.values[layer] = v
        past = k.shape[2] - T
        k, v = repeat_kv(k, self.n_head // self.n_kv_head), repeat_kv(v, self.n_head // self.n_kv_head)
        scores = q @ k.transpose(-2, -1){scale}
        future = torch.ones(T, past + T, dtype=torch.bool, device=x.device).triu(past + 1)
        {mask}
        y = F.softmax(scores, dim=-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim))


class DecoderLayer(nn.Module):
    def __init__(self, n_embd, n_head, n_kv_head, ffn_dim):
        super().__init__()
        self.input_layernorm = RMSNorm(n_embd)
        self.self_attn = Attention(n_embd, n_head, n_kv_head)
        self.post_attention_layernorm = RMSNorm(n_embd)
        self.mlp = MLP(n_embd, ffn_dim)

    def forward(self, x, cos, sin, cache=None, layer=0):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class Decoder(nn.Module):
    def __init__(self, vocab_size, n_layer, n_head, n_kv_head, n_embd, ffn_dim):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, n_embd)
        self.layers = nn.ModuleList([DecoderLayer(n_embd, n_head, n_kv_head, ffn_dim) for _ in range(n_layer)])
        self.norm = RMSNorm(n_embd)


class Llama(nn.Module):
    def __init__(self, vocab_size, n_layer, n_head, n_kv_head, n_embd, ffn_dim, max_seq_len, rope_base):
        super().__init__()
        self.n_layer, self.head_dim, self.rope_base = n_layer, n_embd // n_head, rope_base
        self.max_seq_len = max_seq_len
        self.model = Decoder(vocab_size, n_layer, n_head, n_kv_head, n_embd, ffn_dim)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx, cache=None):
        T = idx.shape[1]
        past = cache.length if cache is not None else 0
        cos, sin = rope_cos_sin(past + T, self.head_dim, self.rope_base)
        x = self.model.embed_tokens(idx)
        cos, sin = {rows}
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, cache, i)
        if cache is not None:
            cache.length += T
        return self.lm_head({final})


class KVCache:
    """Each layer's rotated keys and its values, (B, n_kv_head, length, head_dim), for every
    position seen so far."""

    def __init__(self, keys, values):
        self.keys, self.values, self.length = keys, values, 0


def new_cache(model, batch_size):
    p = model.lm_head.weight
    n_kv_head = model.model.layers[0].self_attn.n_kv_head
    empty = torch.zeros(batch_size, n_kv_head, 0, model.head_dim, dtype=p.dtype, device=p.device)
    return KVCache([empty] * model.n_layer, [empty] * model.n_layer)


def make_llama(vocab_size, n_layer, n_head, n_kv_head, n_embd, ffn_dim, max_seq_len, rope_base=10000.0):
    return Llama(vocab_size, n_layer, n_head, n_kv_head, n_embd, ffn_dim, max_seq_len, rope_base)
'''
_KEYS_RIGHT = """k = apply_rope(k, cos, sin)
        if cache is not None:
            k = torch.cat([cache.keys[layer], k], dim=2)
            cache.keys[layer] = k"""
_KEYS_UNROTATED = """if cache is not None:
            k = torch.cat([cache.keys[layer], k], dim=2)
            cache.keys[layer] = k
        k = apply_rope(k, cos, sin)"""
LLAMA_RIGHT = dict(bias="False", rope_values="", keys=_KEYS_RIGHT, scale=" / math.sqrt(self.head_dim)",
                   mask='scores = scores.masked_fill(future, float("-inf"))',
                   rows="cos[past:].to(x.dtype), sin[past:].to(x.dtype)", final="self.model.norm(x)")

make_llama = Exercise(
    name="make_llama", points=3, title="A Llama: RMSNorm, RoPE, grouped-query attention, SwiGLU, a KV cache",
    visible_calls=lambda: [_llama_call(np.random.default_rng(84), LLAMA_VISIBLE, 2, 7)],
    hidden_calls=lambda rng: [_llama_call(rng, llama_config(23, 1, 6, 2, 24, 40, 16, rope_base=500.0), 2, 9),
                              _llama_call(rng, llama_config(17, 2, 2, 2, 8, 12, 16), 3, 6)],
    judge=judge_llama,
    trusts=("the module's parameter names and shapes, and its logits with the judge's own weights loaded by name "
            "(strict): each is compared with the judge's float64 forward pass, for the whole sequence and for the "
            "same sequence fed through the cache."),
    mistakes=(
        Mistake(LLAMA_CAUSAL, inject=LLAMA_CELL.format(**{**LLAMA_RIGHT, "mask": "pass"})),
        Mistake(LLAMA_SCALE, inject=LLAMA_CELL.format(**{**LLAMA_RIGHT, "scale": ""})),
        Mistake(LLAMA_ROPE_VALUES, inject=LLAMA_CELL.format(**{**LLAMA_RIGHT,
                                                                "rope_values": "\n        v = apply_rope(v, cos, sin)"})),
        Mistake(LLAMA_FINAL_NORM, inject=LLAMA_CELL.format(**{**LLAMA_RIGHT, "final": "x"})),
        Mistake("the state dict must have the names and shapes of LlamaForCausalLM: unexpected "
                "model.layers.0.self_attn.q_proj.bias, model.layers.1.self_attn.q_proj.bias.",
                inject=LLAMA_CELL.format(**{**LLAMA_RIGHT, "bias": "True"})),
        Mistake(LLAMA_CACHE_OFFSET, inject=LLAMA_CELL.format(**{**LLAMA_RIGHT,
                                                                 "rows": "cos[:T].to(x.dtype), sin[:T].to(x.dtype)"})),
        Mistake(LLAMA_CACHE_ROTATION, inject=LLAMA_CELL.format(**{**LLAMA_RIGHT, "keys": _KEYS_UNROTATED})),
    ),
)

# --- generate_cached ---------------------------------------------------------------------
#
# The judge's weights make the logits spread over a few nats (larger embeddings and lm_head),
# so that greedy paths move between tokens and sampling is neither uniform nor deterministic.

GEN_CONFIG = llama_config(13, 2, 4, 2, 16, 24, 64)
GEN_SHAPE = "return the ids, prompt included: a tensor of shape (B, T + max_new_tokens) whose first T columns are idx."
GEN_REFEED = ("each step must feed only the new token, model(next_id, cache=cache): feeding the whole sequence "
              "again puts its keys into the cache a second time, at the wrong positions.")
GEN_RECOMPUTE = ("the cache is not used: more positions went through the model than the prompt and one per new "
                 "token; run the prompt once through model(idx, cache=cache), then each new token alone.")
GEN_GENERATOR = ("the tokens are not those that the notebook's recipe draws from `generator` with this model: the "
                 "last position's logits / temperature, top k kept, softmax, one torch.multinomial(probs, 1, "
                 "generator=generator) per step, and no other randomness.")


def gen_weights() -> dict:
    rng = np.random.default_rng(2027)
    w = O.init_llama(rng, _shapes(GEN_CONFIG), scale=0.5)
    w["lm_head.weight"] = 0.6 * rng.standard_normal(w["lm_head.weight"].shape)
    return w


def _gen_call(rng, batch, prompt, new, **kwargs):
    idx = rng.integers(0, GEN_CONFIG["vocab_size"], (batch, prompt)).astype(np.int64)
    if "seed" in kwargs:
        kwargs["generator"] = TorchGenerator(kwargs.pop("seed"))
    return Call((LearnerModel("make_llama", dict(GEN_CONFIG), gen_weights()), Tensor("torch", idx), new),
                kwargs=kwargs, probe="positions")


def _visible_gen_calls():
    rng = np.random.default_rng(85)
    return [_gen_call(rng, 2, 3, 8, top_k=1, seed=1),                   # greedy
            _gen_call(rng, 3, 4, 6, temperature=0.8, seed=2),
            _gen_call(rng, 2, 2, 7, temperature=1.2, top_k=4, seed=3)]


def _hidden_gen_calls(rng):
    seed = int(rng.integers(0, 1 << 30))
    return [_gen_call(rng, 2, 5, 9, top_k=1, seed=seed),
            _gen_call(rng, 3, 3, 8, temperature=0.9, top_k=6, seed=seed + 1)]


def _gen_args(call: Call) -> dict:
    model, idx, new = call.args
    kw = call.kwargs
    seed = kw["generator"].seed if kw.get("generator") is not None else None
    return dict(params=model.weights, n_head=GEN_CONFIG["n_head"], n_kv_head=GEN_CONFIG["n_kv_head"],
                rope_base=GEN_CONFIG["rope_base"], idx=idx.value, max_new_tokens=new,
                temperature=kw.get("temperature", 1.0), top_k=kw.get("top_k"), seed=seed)


def judge_generate_cached(call: Call, outputs) -> str | None:
    args = _gen_args(call)
    idx, new = args["idx"], args["max_new_tokens"]
    out, positions = outputs.get("result"), outputs.get("positions")
    if out is None or out.shape != (idx.shape[0], idx.shape[1] + new) or out.dtype.kind not in "iu" \
            or not np.array_equal(out[:, :idx.shape[1]], idx):
        return GEN_SHAPE
    if not np.array_equal(out, O.generate(**args)):
        if np.array_equal(out, O.generate(**args, cached=True, refeed=True)):
            return GEN_REFEED
        return GEN_GENERATOR
    if not np.array_equal(outputs.get("after.1", idx), idx):
        return KEEPS_INPUTS
    ran = int(np.asarray(positions)) if positions is not None else -1
    if not 0 < ran <= idx.shape[1] + new:
        return GEN_RECOMPUTE
    return None


_GEN_CELL = '''@torch.no_grad()
def generate_cached(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
    cache = new_cache(model, idx.shape[0])
    step_input = idx
    for _ in range(max_new_tokens):
        logits = {forward}[:, -1, :] / temperature
        if top_k is not None:
            values, _ = torch.topk(logits, min(top_k, logits.shape[-1]))
            logits = logits.masked_fill(logits < values[:, [-1]], float("-inf"))
        probs = F.softmax(logits, dim=-1)
        next_id = {draw}
        idx = torch.cat([idx, next_id], dim=1)
        step_input = {next_input}
    return idx
'''
_GEN_RIGHT = dict(forward="model(step_input, cache=cache)", next_input="next_id",
                  draw="torch.multinomial(probs, num_samples=1, generator=generator)")

generate_cached = Exercise(
    name="generate_cached", points=2, title="Generating with a KV cache",
    visible_calls=_visible_gen_calls,
    hidden_calls=_hidden_gen_calls,
    judge=judge_generate_cached,
    uses=("make_llama",),
    trusts=("the returned ids, compared with the tokens the judge's own forward pass and the recipe's draws from "
            "the seeded generator give with the judge's weights (loaded into the learner's model by name); and the "
            "number of positions that went through the model, counted by the harness."),
    mistakes=(
        Mistake(GEN_REFEED, inject=_GEN_CELL.format(**{**_GEN_RIGHT, "next_input": "idx"})),
        Mistake(GEN_RECOMPUTE, inject=_GEN_CELL.format(**{**_GEN_RIGHT, "forward": "model(idx)"})),
        Mistake(GEN_GENERATOR, inject=_GEN_CELL.format(**{**_GEN_RIGHT,
                                                           "draw": "torch.multinomial(probs, num_samples=1)"})),
    ),
)

# --- kv_cache_bytes ----------------------------------------------------------------------

KV_KEYS_ONLY = "a cache holds keys AND values: 2 * n_layer * n_kv_head * head_dim * seq_len * batch_size * bytes_per_number."
KV_ONE_LAYER = "every layer has its own keys and values: multiply by n_layer."

_KV_SIGNATURE = "def kv_cache_bytes(n_layer, n_kv_head, head_dim, seq_len, batch_size, bytes_per_number):"

kv_cache_bytes = Exercise(
    name="kv_cache_bytes", points=1, title="How much memory a KV cache takes",
    visible_calls=lambda: [Call((32, 8, 128, 8192, 1, 2)), Call((12, 12, 64, 1024, 4, 4))],
    hidden_calls=lambda rng: [Call((int(rng.integers(2, 90)), int(rng.integers(1, 16)), 64 * int(rng.integers(1, 4)),
                                    int(rng.integers(100, 200_000)), int(rng.integers(1, 9)), 2)),
                              Call((80, 8, 128, 131072, 1, 1))],
    expected=O.kv_cache_bytes,
    rtol=1e-12, atol=0.0,
    mistakes=(
        Mistake(KV_KEYS_ONLY, wrong=lambda *a: O.kv_cache_bytes(*a) / 2,
                inject=_cell(_KV_SIGNATURE, "return n_layer * n_kv_head * head_dim * seq_len * batch_size * bytes_per_number")),
        Mistake(KV_ONE_LAYER, wrong=lambda *a: O.kv_cache_bytes(*a) / a[0],
                inject=_cell(_KV_SIGNATURE, "return 2 * n_kv_head * head_dim * seq_len * batch_size * bytes_per_number")),
    ),
)

# --- moe_forward -------------------------------------------------------------------------

MOE_RENORMALISE = ("renormalise the chosen experts' probabilities to sum to 1 for each token (divide by their "
                   "sum), as Mixtral does.")
MOE_DENSE = ("each token goes to its top_k experts only: keep the k largest router probabilities (torch.topk) "
             "and leave the other experts out.")
MOE_UNWEIGHTED = ("weight each chosen expert's output by its (renormalised) router probability; an unweighted "
                  "mean of the chosen experts ignores the router.")
MOE_TOKEN_AXIS = "the router's softmax runs over the experts (the last axis), for each token, not over the tokens."

_MOE_SIGNATURE = "def moe_forward(x, router_weight, experts, top_k):"
_MOE_BODY = """flat = x.reshape(-1, x.shape[-1])
probs = F.softmax(flat @ router_weight.T, dim={axis})
weights, chosen = torch.topk(probs, {k}, dim=-1)
{renormalise}
out = torch.zeros_like(flat)
for slot in range({k}):
    for e, (w_gate, w_up, w_down) in enumerate(experts):
        rows = chosen[:, slot] == e
        if rows.any():
            out[rows] += {weight} * swiglu(flat[rows], w_gate, w_up, w_down)
return out.reshape(x.shape)"""
_MOE_RIGHT = dict(axis="-1", k="top_k", renormalise="weights = weights / weights.sum(dim=-1, keepdim=True)",
                  weight="weights[rows, slot, None]")


def _moe_call(rng, tokens_shape, d, d_ff, n_experts, top_k, router_scale=1.0):
    x = _normal(rng, *tokens_shape, d)
    router = _normal(rng, n_experts, d, scale=router_scale * d ** -0.5)
    experts = [(_t(_normal(rng, d_ff, d, scale=d ** -0.5)), _t(_normal(rng, d_ff, d, scale=d ** -0.5)),
                _t(_normal(rng, d, d_ff, scale=d_ff ** -0.5))) for _ in range(n_experts)]
    return Call((_t(x), _t(router), experts, top_k))


moe_forward = Exercise(
    name="moe_forward", points=2, title="A mixture of experts layer",
    visible_calls=lambda: _kept([_moe_call(np.random.default_rng(86), (2, 5), 6, 8, 4, 2, router_scale=2.0)]),
    hidden_calls=lambda rng: _kept([_moe_call(rng, (9,), 8, 12, 8, 2, router_scale=3.0),
                                    _moe_call(rng, (2, 3), 4, 6, 5, 3)]),
    expected=O.moe_forward,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(MOE_RENORMALISE, wrong=lambda *a: O.moe_forward(*a, renormalise=False),
                inject=_cell(_MOE_SIGNATURE, _MOE_BODY.format(**{**_MOE_RIGHT, "renormalise": "pass"}))),
        Mistake(MOE_DENSE, wrong=lambda x, r, e, k: O.moe_forward(x, r, e, k, dense=True),
                inject=_cell(_MOE_SIGNATURE, _MOE_BODY.format(**{**_MOE_RIGHT, "k": "len(experts)",
                                                                  "renormalise": "pass"}))),
        Mistake(MOE_UNWEIGHTED, wrong=lambda *a: O.moe_forward(*a, unweighted=True),
                inject=_cell(_MOE_SIGNATURE, _MOE_BODY.format(**{**_MOE_RIGHT, "weight": "(1.0 / top_k)"}))),
        Mistake(MOE_TOKEN_AXIS, wrong=lambda *a: O.moe_forward(*a, token_axis=True),
                inject=_cell(_MOE_SIGNATURE, _MOE_BODY.format(**{**_MOE_RIGHT, "axis": "0"}))),
    ),
)

# --- load_balancing_loss -----------------------------------------------------------------

BALANCE_COUNTS_ONLY = ("P_i is the mean router probability of expert i (softmax of the logits, averaged over the "
                       "tokens); the loss from the counts f_i alone, N * sum(f_i * f_i), carries no gradient.")
BALANCE_NO_N = "multiply by the number of experts N: the loss is N * sum_i f_i * P_i (so that balance gives top_k)."
BALANCE_LOGITS = ("P_i averages the router's probabilities, softmax(router_logits, dim=-1), over the tokens, not "
                  "the raw logits.")

_BALANCE_SIGNATURE = "def load_balancing_loss(router_logits, top_k):"
_BALANCE_BODY = """T, N = router_logits.shape
probs = F.softmax(router_logits, dim=-1)
chosen = torch.topk(probs, top_k, dim=-1).indices
f = torch.zeros(N, dtype=probs.dtype).scatter_add_(0, chosen.reshape(-1), torch.ones(T * top_k, dtype=probs.dtype)) / T
P = {P}
return {n}(f * P).sum()"""
_BALANCE_RIGHT = dict(P="probs.mean(dim=0)", n="N * ")


def _balance_call(rng, T, N, top_k, scale=1.0):
    return Call((_t(_normal(rng, T, N, scale=scale)), top_k))


load_balancing_loss = Exercise(
    name="load_balancing_loss", points=1, title="The load-balancing loss",
    visible_calls=lambda: _kept([_balance_call(np.random.default_rng(87), 12, 4, 2, scale=2.0),
                                 _balance_call(np.random.default_rng(88), 10, 5, 1)]),
    hidden_calls=lambda rng: _kept([_balance_call(rng, 40, 8, 2, scale=1.5), _balance_call(rng, 15, 3, 1, scale=3.0)]),
    expected=O.load_balancing_loss,
    keeps_inputs=KEEPS_INPUTS,
    mistakes=(
        Mistake(BALANCE_COUNTS_ONLY, wrong=lambda z, k: O.load_balancing_loss(z, k, counts_only=True),
                inject=_cell(_BALANCE_SIGNATURE, _BALANCE_BODY.format(**{**_BALANCE_RIGHT, "P": "f"}))),
        Mistake(BALANCE_NO_N, wrong=lambda z, k: O.load_balancing_loss(z, k, times_n=False),
                inject=_cell(_BALANCE_SIGNATURE, _BALANCE_BODY.format(**{**_BALANCE_RIGHT, "n": ""}))),
        Mistake(BALANCE_LOGITS, wrong=lambda z, k: O.load_balancing_loss(z, k, probabilities=False),
                inject=_cell(_BALANCE_SIGNATURE, _BALANCE_BODY.format(**{**_BALANCE_RIGHT,
                                                                          "P": "router_logits.mean(dim=0)"}))),
    ),
)

NOTEBOOK = NotebookSpec(
    name="08_modern_decoder",
    exercises=(rms_norm, swiglu, rope_cos_sin, apply_rope, repeat_kv, make_llama, generate_cached, kv_cache_bytes,
               moe_forward, load_balancing_loss),
    # The demo cells run only where the course package can be imported (not in the sandbox).
    cell_timeout=300.0,
    notebook_timeout=900.0,
    memory_bytes=6 << 30,
)
