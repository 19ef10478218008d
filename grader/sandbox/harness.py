"""Runs inside the sandbox: executes a notebook's cells, then calls the learner's functions.

This file is copied into the sandbox's scratch folder and run there on its own, so it imports
nothing from ``grader`` (the sandbox cannot see the package, its oracles or the solutions).
It trusts nothing it runs: whatever the notebook does to NumPy, IPython or this module, the
only thing that leaves is plain numeric arrays in ``.npz`` files (no pickle) and a log of
events, which the trusted process reads with size limits and judges against its own oracles.

Protocol, in the scratch folder:
    job.json      cells to run, calls to make, limits        (written by the trusted side)
    inputs.npz    the call arguments' arrays                  (written by the trusted side)
    events.jsonl  one JSON line per event, appended unbuffered (written here)
    out/N.npz     the numeric outputs of call N               (written here)
"""
from __future__ import annotations

import faulthandler
import io
import json
import linecache
import os
import re
import signal
import sys
import traceback

import numpy as np

# --- results as plain numeric arrays (shared with the trusted side) --------------------


class ResultError(TypeError):
    """A result that is not numbers (None, strings, objects)."""


def to_array(value) -> np.ndarray:
    """A tensor, array or number as a NumPy array; anything else is a ResultError."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf.Tensor, tf.Variable
        value = value.numpy()
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise ResultError(f"returned an array of {value.dtype}; expected numbers")
        return value
    raise ResultError(f"returned {type(value).__name__}; expected numbers")


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float, np.number)) or (
        hasattr(value, "shape") and tuple(getattr(value, "shape")) == () and not isinstance(value, (list, tuple, dict)))


def flatten_result(result, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested tuples, lists and dicts of arrays as {path: array}; a single array has path "".

    A list or tuple of plain numbers (a loss history) is one array, not one entry per number.
    """
    if result is None:
        raise ResultError("returned None; did you forget the return statement?")
    if isinstance(result, dict):
        flat = {}
        for key, value in result.items():
            flat.update(flatten_result(value, f"{prefix}{key}."))
        return _strip(flat, prefix)
    if isinstance(result, (tuple, list)):
        if result and all(_is_number(v) for v in result):
            return {prefix.rstrip("."): np.asarray([to_array(v) for v in result])}
        flat = {}
        for index, value in enumerate(result):
            flat.update(flatten_result(value, f"{prefix}{index}."))
        return _strip(flat, prefix)
    return {prefix.rstrip("."): to_array(result)}


def _strip(flat: dict, prefix: str) -> dict:
    return {key.rstrip(".") if key.endswith(".") else key: value for key, value in flat.items()}


# --- arguments ---------------------------------------------------------------------------

SCALAR_FUNCTIONS = {
    # name -> f(params) -> scalar function of an array; gradients in grader.checking.oracles
    "weighted_squares": lambda p: (lambda x: float(np.sum(p["A"] * x * x))),
    "sin_product": lambda p: (lambda x: float(np.sum(np.sin(x) * p["A"]))),
    "log_sum_exp": lambda p: (lambda x: float(np.log(np.sum(np.exp(x * p["A"] - np.max(x * p["A"])))) + np.max(x * p["A"]))),
}


def build_argument(spec, arrays):
    """A call argument from its JSON description (see grader.sandbox.calls.encode_value)."""
    kind = spec["kind"]
    if kind == "array":
        return np.array(arrays[spec["key"]])  # a fresh copy: the learner may modify it in place
    if kind == "value":
        return spec["value"]
    if kind == "dict":
        return {k: build_argument(v, arrays) for k, v in spec["items"].items()}
    if kind == "list":
        return [build_argument(v, arrays) for v in spec["items"]]
    if kind == "tuple":
        return tuple(build_argument(v, arrays) for v in spec["items"])
    if kind == "function":
        params = {k: np.array(arrays[key]) for k, key in spec["params"].items()}
        return SCALAR_FUNCTIONS[spec["name"]](params)
    if kind == "torch_generator":
        import torch
        return torch.Generator().manual_seed(spec["seed"])
    if kind == "learner_model":
        return build_learner_model(spec["builder"], build_argument(spec["config"], arrays),
                                   {name: np.array(arrays[key]) for name, key in spec["weights"].items()})
    if kind == "gpt":
        return build_context_model({name: np.array(arrays[key]) for name, key in spec["weights"].items()})
    if kind == "tiny_lm":
        return build_tiny_lm({name: np.array(arrays[key]) for name, key in spec["weights"].items()}, spec["n_head"])
    if kind == "linear":
        return build_linear(np.array(arrays[spec["weight"]]), np.array(arrays[spec["bias"]]))
    if kind == "tensor":
        value = np.array(arrays[spec["key"]])
        if spec["framework"] == "torch":
            import torch
            return torch.tensor(value, requires_grad=spec["trainable"])
        import tensorflow as tf
        return tf.Variable(value) if spec["trainable"] else tf.constant(value)
    raise ValueError(f"unknown argument kind {kind!r}")


# --- probes: how a result that is not plain numbers is read ------------------------------

def _probe_torch_grads(result, args, kwargs, probe_args, again):
    """The result, plus the .grad of every trainable torch tensor argument (after backward())."""
    flat = {f"result.{k}" if k else "result": v for k, v in flatten_result(result).items()} if result is not None else {}
    for name, value in _tensor_arguments(args, kwargs):
        grad = getattr(value, "grad", None)
        if grad is not None:
            flat[f"grad.{name}"] = to_array(grad)
    return flat


def _probe_arguments_after(result, args, kwargs, probe_args, again):
    """The result, plus every tensor argument's value after the call (in-place updates)."""
    flat = {f"result.{k}" if k else "result": v for k, v in flatten_result(result).items()} if result is not None else {}
    for name, value in _tensor_arguments(args, kwargs):
        flat[f"after.{name}"] = to_array(value)
    return flat


def _probe_model(result, args, kwargs, probe_args, again):
    """A Keras model or torch module: its parameters in order, and its output on probe_args['x']."""
    model = result[0] if isinstance(result, (tuple, list)) else result
    flat = {}
    if hasattr(model, "named_parameters"):  # torch.nn.Module
        import torch
        for i, (_, p) in enumerate(model.named_parameters()):
            flat[f"param.{i}"] = to_array(p)
        with torch.no_grad():
            x = torch.tensor(probe_args["x"], dtype=next(model.parameters()).dtype)
            flat["output"] = to_array(model(x))
    else:  # Keras
        for i, w in enumerate(model.weights):
            flat[f"param.{i}"] = to_array(w)
        flat["output"] = to_array(model(probe_args["x"].astype(model.weights[0].dtype.name if hasattr(model.weights[0].dtype, "name") else np.float32)))
    if isinstance(result, (tuple, list)) and len(result) > 1:
        for k, v in flatten_result(list(result[1:])).items():
            flat[f"extra.{k}" if k else "extra"] = v
    return flat


def _tensor_arguments(args, kwargs):
    items = list(enumerate(args)) + list(kwargs.items())
    for name, value in items:
        if isinstance(value, dict):
            for key, inner in value.items():
                if hasattr(inner, "numpy") or hasattr(inner, "detach"):
                    yield f"{name}.{key}", inner
        elif hasattr(value, "numpy") and not isinstance(value, np.ndarray) or hasattr(value, "detach"):
            yield str(name), value


def _probe_inputs_after(result, args, kwargs, probe_args, again):
    """The result, plus every NumPy array argument after the call: the trusted side compares
    them with the arrays it sent, to see whether the function changed its inputs."""
    flat = {f"result.{k}" if k else "result": v for k, v in flatten_result(result).items()}
    for name, value in array_arguments(list(enumerate(args)) + list(kwargs.items())):
        flat[f"after.{name}"] = to_array(value)
    return flat


def array_arguments(items, prefix=""):
    """(path, array) for every NumPy array among (name, value) items, inside dicts and lists too."""
    for name, value in items:
        if isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "cpu")):  # torch too
            yield f"{prefix}{name}", value
        elif hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor (notebook 09's inputs)
            yield f"{prefix}{name}", to_array(value)
        elif isinstance(value, dict):
            yield from array_arguments(value.items(), f"{prefix}{name}.")
        elif isinstance(value, (list, tuple)):
            yield from array_arguments(enumerate(value), f"{prefix}{name}.")


def _probe_reseeded(result, args, kwargs, probe_args, again):
    """The result, the result of the same call again ("again.0") and of the call with
    probe_args["other"] in place of argument probe_args["position"] ("again.1"): the trusted
    side checks that the same seed repeats the result and another seed changes it."""
    flat = {f"result.{k}" if k else "result": v for k, v in flatten_result(result).items()}
    replacements = (None, (int(probe_args["position"]), probe_args["other"].item()))
    for i, replacement in enumerate(replacements):
        for k, v in flatten_result(again(replacement)).items():
            flat[f"again.{i}.{k}" if k else f"again.{i}"] = v
    return flat


# --- notebook 07: the judge's model handed to the learner, and what is read back ----------

def build_context_model(weights: dict):
    """The judge's own small language model holding ``weights``, handed to ``generate`` and
    ``train_gpt`` (so that the right answer is known). On purpose not a GPT, so that nothing here
    answers ``make_gpt``: each position's token and position embeddings plus the mean of those
    up to it, a final layer norm and an output layer (grader.checking.gpt_oracles.context_forward).
    """
    import torch
    import torch.nn as nn

    vocab_size, C = weights["wte.weight"].shape
    block_size = weights["wpe.weight"].shape[0]

    class ContextModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.block_size = block_size
            self.wte, self.wpe = nn.Embedding(vocab_size, C), nn.Embedding(block_size, C)
            self.ln_f, self.lm_head = nn.LayerNorm(C), nn.Linear(C, vocab_size, bias=False)

        def forward(self, idx):
            T = idx.shape[1]
            # past block_size, the last position's embedding again: an uncropped context is not an error
            x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device).clamp(max=self.block_size - 1))
            x = x + x.cumsum(dim=1) / torch.arange(1, T + 1, device=idx.device, dtype=x.dtype)[:, None]
            return self.lm_head(self.ln_f(x))

    dtype = torch.float64 if weights["wte.weight"].dtype == np.float64 else torch.float32
    model = ContextModel().to(dtype)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(torch.tensor(weights[name]))
    return model


def _probe_gpt(result, args, kwargs, probe_args, again=None):
    """A torch module, or (module, history), read by name.

    "param.<name>": its parameters as returned. For each set of weights the judge sent
    (probe_args "weights<j>.<name>"), those weights loaded into the module by name
    (load_state_dict, strict) and its logits on probe_args "x" (and "x_changed", the same ids
    with one position changed, for the first set): "output.<j>.x". With a history, the history
    as "history.train" and "history.val" ("history.malformed" when it is not
    {"train": [float, ...], "val": [(step, float), ...]}), and the tensor arguments after the call.
    """
    history = None
    if isinstance(result, (tuple, list)) and len(result) == 2:
        result, history = result
    if not hasattr(result, "named_parameters"):
        raise ResultError(f"returned {type(result).__name__}; expected a torch nn.Module")
    import torch
    model = result
    named = dict(model.named_parameters())
    device = next(iter(named.values())).device if named else "cpu"
    flat = {f"param.{name}": to_array(p) for name, p in named.items()}
    draws = sorted({k.split(".", 1)[0] for k in probe_args if k.startswith("weights")})
    for j, draw in enumerate(draws):
        weights = {k.split(".", 1)[1]: v for k, v in probe_args.items() if k.startswith(draw + ".")}
        if set(weights) != set(named):
            break  # the trusted side names the parameters that are missing or extra
        state = model.state_dict()
        for name, value in weights.items():
            state[name] = torch.tensor(value, dtype=named[name].dtype, device=named[name].device)
        model.load_state_dict(state, strict=True)
        with torch.no_grad():
            for key in ("x", "x_changed") if j == 0 else ("x",):
                if key in probe_args:
                    flat[f"output.{j}.{key}"] = to_array(model(torch.tensor(probe_args[key], device=device)))
    if history is not None or "history" in probe_args:
        flat.update(_history(history))
        for name, value in _tensor_arguments(args, kwargs):
            flat[f"after.{name}"] = to_array(value)
    return flat


def _history(history) -> dict:
    """A training history {"train": [loss, ...], "val": [(step, loss), ...]} as two arrays."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not (isinstance(history, dict) and set(history) == {"train", "val"}
            and isinstance(history["train"], list) and all(number(v) for v in history["train"])
            and isinstance(history["val"], list)
            and all(isinstance(p, (tuple, list)) and len(p) == 2 and all(number(v) for v in p) for p in history["val"])):
        return {"history.malformed": np.asarray(1)}
    return {"history.train": np.asarray(history["train"], np.float64).reshape(-1),
            "history.val": np.asarray(history["val"], np.float64).reshape(-1, 2)}


def _probe_kept(result, args, kwargs, probe_args, again=None):
    """The result ("result"; a str as its UTF-8 bytes), and every tensor or list argument after
    the call ("after.<position>"; a list that is not of ints reads as [-1]): the trusted side
    compares them with what it sent, to see whether the function changed its inputs."""
    read = _probe_text(result, args, kwargs, probe_args) if isinstance(result, str) else flatten_result(result)
    flat = {f"result.{k}" if k else "result": v for k, v in read.items()}
    for name, value in list(enumerate(args)) + list(kwargs.items()):
        if hasattr(value, "detach"):
            flat[f"after.{name}"] = to_array(value)
        elif isinstance(value, list):
            try:
                flat[f"after.{name}"] = np.asarray(value, dtype=np.int64)
            except (TypeError, ValueError, OverflowError):
                flat[f"after.{name}"] = np.asarray([-1])
    return flat


# --- notebook 08: the learner's own model, holding the judge's weights -------------------

# The learner's namespace, where a builder such as make_llama is found (set by make_calls here,
# by calls.call_in_process in a learner's kernel).
LEARNER_NAMESPACE: dict = {}
# id(model) -> positions per sequence that went through each model built here (see _count_positions)
_POSITIONS: dict[int, list[int]] = {}


def load_weights(model, weights: dict) -> None:
    """The module in float64, holding ``weights`` by name: load_state_dict(strict=True)."""
    import torch
    model.to(torch.float64)
    model.load_state_dict({name: torch.tensor(value) for name, value in weights.items()}, strict=True)


def build_learner_model(builder: str, config: dict, weights: dict):
    """The learner's ``builder(**config)`` with the judge's ``weights``; the positions each call of
    the model runs are counted (a cache must run each new token alone)."""
    fn = LEARNER_NAMESPACE.get(builder)
    if fn is None or not callable(fn):
        raise NameError(f"name {builder!r} is not defined", name=builder)
    model = fn(**config)
    load_weights(model, weights)
    model.eval()
    counted = _POSITIONS[id(model)] = []  # a fresh count: ids of freed models are reused

    def count(module, args, kwargs):
        idx = args[0] if args else kwargs.get("idx")
        counted.append(int(idx.shape[-1]) if hasattr(idx, "shape") and len(idx.shape) else 0)

    model.register_forward_pre_hook(count, with_kwargs=True)
    return model


def _probe_positions(result, args, kwargs, probe_args, again=None):
    """The result, how many positions per sequence went through the model (argument 0), and
    argument 1 after the call (the prompt must be left unchanged)."""
    flat = {f"result.{k}" if k else "result": v for k, v in flatten_result(result).items()}
    flat["positions"] = np.asarray(sum(_POSITIONS.get(id(args[0]), [])))
    flat["after.1"] = to_array(args[1])
    return flat


def _probe_llama(result, args, kwargs, probe_args, again=None):
    """A module's state-dict names and shapes ("shape.<name>"); when they are those of the judge's
    weights (probe_args "w.<name>"), its logits with those weights loaded, on probe_args["x"]
    ("output.x") and on the same ids fed through new_cache(model, B): probe_args["prompt"]
    positions at once, then one at a time ("output.cached")."""
    model = result[0] if isinstance(result, (tuple, list)) else result
    if not hasattr(model, "state_dict"):
        raise ResultError(f"returned {type(model).__name__}; expected a torch nn.Module")
    import torch
    flat = {f"shape.{name}": np.asarray(tuple(t.shape), np.int64) for name, t in model.state_dict().items()}
    weights = {k[2:]: v for k, v in probe_args.items() if k.startswith("w.")}
    if {k[6:]: tuple(v) for k, v in flat.items()} != {k: v.shape for k, v in weights.items()}:
        return flat
    load_weights(model, weights)
    model.eval()
    x, prompt = torch.tensor(probe_args["x"]), int(probe_args["prompt"])
    with torch.no_grad():
        flat["output.x"] = to_array(model(x))
        if not callable(LEARNER_NAMESPACE.get("new_cache")):
            raise NameError("name 'new_cache' is not defined", name="new_cache")
        cache = LEARNER_NAMESPACE["new_cache"](model, x.shape[0])
        parts = [model(x[:, :prompt], cache=cache)] + [model(x[:, t:t + 1], cache=cache) for t in range(prompt, x.shape[1])]
        flat["output.cached"] = to_array(torch.cat(parts, dim=1))
    return flat


def _probe_text(result, args, kwargs, probe_args, again=None):
    """A string, as its UTF-8 bytes (lone surrogates kept, so no two strings read the same)."""
    if not isinstance(result, str):
        raise ResultError(f"returned {type(result).__name__}; expected a str")
    return {"": np.frombuffer(result.encode("utf-8", "surrogatepass"), dtype=np.uint8).copy()}


def _probe_pairs(result, args, kwargs, probe_args, again=None):
    """A list of (a, b) pairs of ints, as one int64 array of shape (n, 2)."""
    if not isinstance(result, (list, tuple)) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(i, (int, np.integer)) for i in p)
            for p in result):
        raise ResultError("expected a list of (a, b) pairs of ints")
    return {"": np.asarray(result, dtype=np.int64).reshape(len(result), 2)}


# --- notebook 09: its small transformer, a linear layer, and what is read back from LoRA ----

def build_tiny_lm(weights: dict, n_head: int):
    """Notebook 09's TinyLM (token and position embeddings, pre-LN layers of causal multi-head
    attention with separate q, k, v and o projections and a ReLU MLP, a final layer norm and a
    linear head) holding ``weights``: the same modules and parameter names as the notebook's."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    V, C = weights["tok.weight"].shape
    n_layer = len({name.split(".")[1] for name in weights if name.startswith("layers.")})

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(C, C) for _ in range(4))

        def forward(self, x):
            B, T, _ = x.shape
            q, k, v = (proj(x).view(B, T, n_head, C // n_head).transpose(1, 2)
                       for proj in (self.q_proj, self.k_proj, self.v_proj))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.o_proj(y.transpose(1, 2).reshape(B, T, C))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.attn = nn.LayerNorm(C), CausalSelfAttention()
            self.norm2, self.linear1, self.linear2 = nn.LayerNorm(C), nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            x = x + self.attn(self.norm1(x))
            return x + self.linear2(F.relu(self.linear1(self.norm2(x))))

    class TinyLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.block_size = weights["pos.weight"].shape[0]
            self.tok, self.pos = nn.Embedding(V, C), nn.Embedding(self.block_size, C)
            self.layers = nn.ModuleList(Block() for _ in range(n_layer))
            self.ln_f, self.head = nn.LayerNorm(C), nn.Linear(C, V)

        def forward(self, idx):
            x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
            for layer in self.layers:
                x = layer(x)
            return self.head(self.ln_f(x))

    dtype = torch.float64 if weights["tok.weight"].dtype == np.float64 else torch.float32
    model = TinyLM().to(dtype)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(torch.tensor(weights[name]))
    return model


def build_linear(weight: np.ndarray, bias: np.ndarray):
    import torch
    import torch.nn as nn

    layer = nn.Linear(weight.shape[1], weight.shape[0]).to(torch.float64 if weight.dtype == np.float64 else torch.float32)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.copy_(torch.tensor(bias))
    return layer


def _probe_lora(result, args, kwargs, probe_args, again=None):
    """A LoRA module: its parameters by name and whether each is trainable, its output on
    probe_args['x']; then, with probe_args['A'] and ['B'] copied into its A and B, its output
    again and its merged() layer's weight, bias and output."""
    if not hasattr(result, "named_parameters"):
        raise ResultError(f"returned {type(result).__name__}; expected a torch nn.Module")
    import torch
    flat = {}
    for name, p in result.named_parameters():
        flat[f"param.{name}"] = np.array(to_array(p))  # a copy: A and B are overwritten below
        flat[f"trainable.{name}"] = np.asarray(bool(p.requires_grad))
    x = torch.tensor(probe_args["x"])
    with torch.no_grad():
        flat["output.initial"] = to_array(result(x))
        result.A.copy_(torch.tensor(probe_args["A"]))
        result.B.copy_(torch.tensor(probe_args["B"]))
        flat["output.adapted"] = to_array(result(x))
        merged = result.merged()
        if not isinstance(merged, torch.nn.Linear):
            raise ResultError(f"merged() returned {type(merged).__name__}; expected one nn.Linear")
        flat["merged.weight"], flat["merged.bias"] = to_array(merged.weight), to_array(merged.bias)
        flat["merged.output"] = to_array(merged(x))
    return flat


PROBES = {
    "torch_grads": _probe_torch_grads,
    "arguments_after": _probe_arguments_after,
    "model": _probe_model,
    "inputs_after": _probe_inputs_after,
    "reseeded": _probe_reseeded,
    "gpt": _probe_gpt,
    "kept": _probe_kept,
    "text": _probe_text,
    "pairs": _probe_pairs,
    "llama": _probe_llama,
    "positions": _probe_positions,
    "lora": _probe_lora,
}


def read_result(result, args, kwargs, probe, probe_args, again=None) -> dict[str, np.ndarray]:
    """The result as {path: array}; ``again(replacement)`` calls the function once more on
    fresh copies of the arguments, with ``replacement`` = (position, value) or None."""
    if probe is None:
        return flatten_result(result)
    return PROBES[probe](result, args, kwargs, probe_args, again)


def call_again(fn, call, arrays):
    """``again`` for read_result: the same call on fresh arguments, one of them replaced."""
    def again(replacement):
        args = [build_argument(a, arrays) for a in call["args"]]
        if replacement is not None:
            args[replacement[0]] = replacement[1]
        return fn(*args, **{k: build_argument(v, arrays) for k, v in call["kwargs"].items()})
    return again


# --- running the notebook -----------------------------------------------------------------


# Taken at import, before any learner code runs. Replacing it later only loses that learner's
# own results: nothing the notebook does can make wrong numbers pass in the trusted process.
_SAVEZ = np.savez
_CRASH_LOG = None


# The sandbox's failure kinds this side produces (grader.sandbox.failures names them all; this
# module cannot import it). A cell's time-out is reported by its exception's class name.
CALL_TIMEOUT = "CallTimeout"


class CellTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise CellTimeout("time limit reached")


class BoundedText(io.TextIOBase):
    """Keeps the first ``limit`` characters written to it; an output flood costs nothing."""

    def __init__(self, limit: int):
        self.limit, self.size, self.dropped = limit, 0, 0
        self.parts: list[str] = []

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def getvalue(self) -> str:
        tail = f"\n... {self.dropped} more characters not shown\n" if self.dropped else ""
        return "".join(self.parts) + tail


class EventLog:
    """Appends JSON lines with one unbuffered write each, so a crash loses no finished event."""

    def __init__(self, path: str, max_line: int):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.max_line = max_line

    def emit(self, **event):
        line = json.dumps(event, default=str)
        limit = self.max_line // 8
        while len(line) > self.max_line and limit >= 16:  # cut the text, never the JSON: a cut line is invalid
            for field in ("stdout", "evalue", "ename"):  # (escaped characters take up to 12 bytes each)
                for holder in (event, event.get("error")):
                    if isinstance(holder, dict) and len(str(holder.get(field, ""))) > limit:
                        holder[field] = str(holder[field])[:limit] + " [truncated]"
            line = json.dumps(event, default=str)
            limit //= 2
        os.write(self.fd, (line + "\n").encode("utf-8", "replace"))


# How IPython names the code of a notebook cell: "<ipython-input-3-ab12...>" in a plain shell
# (as here), "/tmp/ipykernel_123/4567.py" in a Jupyter kernel.
_CELL_FILENAME = re.compile(r"^<ipython-input-[\d-]+[0-9a-f]*>$|[/\\]ipykernel_\d+[/\\][^/\\]+\.py$")
_DEF = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)", re.MULTILINE)


def is_cell(filename: str) -> bool:
    return bool(_CELL_FILENAME.search(filename or ""))


def learner_location(exc: BaseException) -> dict | None:
    """The innermost line of the learner's own cells in the exception's traceback, as
    {"cell": the first function the cell defines, "line": line in the cell, "code": its text}."""
    try:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if is_cell(frame.filename) and isinstance(frame.lineno, int):
                match = _DEF.search("".join(linecache.getlines(frame.filename)))
                return {"cell": match.group(1) if match else "", "line": frame.lineno,
                        "code": (frame.line or "").strip()[:120]}
    except Exception:  # a traceback or linecache the learner's code tampered with: say nothing
        return None
    return None


def describe_error(exc: BaseException) -> dict:
    """An exception as the protocol carries it (``calls.call_in_process`` reports the same shape)."""
    error: dict[str, object] = {"ename": str(type(exc).__name__)[:100], "evalue": str(exc)[:2000]}
    name = getattr(exc, "name", None)
    if isinstance(exc, NameError) and isinstance(name, str):
        error["missing"] = name[:100]
    if isinstance(exc, ImportError) and isinstance(name, str):
        error["module"] = name[:100]
    where = learner_location(exc)
    if where is not None:
        error["where"] = where
    return error


def run_cells(shell, cells, skip, log, cell_timeout, output_limit):
    for index, cell in enumerate(cells):
        if index in skip or cell.get("skip"):
            continue
        log.emit(event="cell_start", index=index)
        out = BoundedText(output_limit)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        error = None
        try:
            signal.setitimer(signal.ITIMER_REAL, cell_timeout)
            result = shell.run_cell(cell["source"], store_history=False, silent=False)
            signal.setitimer(signal.ITIMER_REAL, 0)
            failure = result.error_before_exec or result.error_in_exec
            if failure is not None:
                error = describe_error(failure)
        except BaseException as exc:  # a timeout that escaped IPython, SystemExit, anything
            signal.setitimer(signal.ITIMER_REAL, 0)
            error = describe_error(exc)
        finally:
            sys.stdout, sys.stderr = saved
        log.emit(event="cell_end", index=index, ok=error is None, error=error, stdout=out.getvalue())


def make_calls(namespace, calls, arrays, skip, log, outdir, output_limit):
    global LEARNER_NAMESPACE
    LEARNER_NAMESPACE = namespace
    timed_out: set[str] = set()
    for index, call in enumerate(calls):
        if index in skip:
            continue
        if call["fn"] in timed_out:  # it hung once: it would hang again, and the verdict is already a fail
            log.emit(event="call_end", index=index, ok=False, keys=None,
                     error={"ename": CALL_TIMEOUT, "evalue": f"{call['fn']} did not finish within {call['timeout']:g} s"})
            continue
        log.emit(event="call_start", index=index)
        out = BoundedText(output_limit)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        try:
            fn = namespace.get(call["fn"])
            if fn is None or not callable(fn):
                raise NameError(f"name {call['fn']!r} is not defined", name=call["fn"])
            args = [build_argument(a, arrays) for a in call["args"]]
            kwargs = {k: build_argument(v, arrays) for k, v in call["kwargs"].items()}
            probe_args = {k: np.array(arrays[key]) for k, key in call.get("probe_args", {}).items()}
            signal.setitimer(signal.ITIMER_REAL, call["timeout"])
            try:
                result = fn(*args, **kwargs)
                flat = read_result(result, args, kwargs, call.get("probe"), probe_args, call_again(fn, call, arrays))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            keys = sorted(flat)
            if len(keys) > 4096 or sum(map(len, keys)) > 16384:  # the event line that names them must stay short
                raise ResultError(f"returned {len(keys)} arrays; expected a few")
            _SAVEZ(os.path.join(outdir, f"{index}.npz"), **{f"a{i}": np.asarray(flat[k]) for i, k in enumerate(keys)})
            error = None
        except CellTimeout:
            keys, error = None, {"ename": CALL_TIMEOUT, "evalue": f"{call['fn']} did not finish within {call['timeout']:g} s"}
            timed_out.add(call["fn"])
        except BaseException as exc:
            keys, error = None, describe_error(exc)
        finally:
            sys.stdout, sys.stderr = saved
        log.emit(event="call_end", index=index, ok=error is None, keys=keys, error=error)


def main(workdir: str) -> int:
    os.chdir(workdir)
    with open("job.json", encoding="utf-8") as f:
        job = json.load(f)
    with np.load("inputs.npz", allow_pickle=False) as data:  # read before any learner code runs
        arrays = {key: data[key] for key in data.files}
    os.makedirs("out", exist_ok=True)
    log = EventLog("events.jsonl", job.get("max_event_bytes", 65536))
    global _CRASH_LOG
    _CRASH_LOG = open("crash.log", "w")  # where a native crash (segmentation fault) leaves a traceback
    faulthandler.enable(_CRASH_LOG)
    signal.signal(signal.SIGALRM, _on_alarm)

    from IPython.core.interactiveshell import InteractiveShell
    shell = InteractiveShell.instance(colors="NoColor")
    shell.user_ns["__name__"] = "__main__"
    log.emit(event="started")
    run_cells(shell, job["cells"], set(job.get("skip_cells", [])), log, job["cell_timeout"], job["output_limit"])
    make_calls(shell.user_ns, job["calls"], arrays, set(job.get("skip_calls", [])), log, "out", job["output_limit"])
    log.emit(event="finished")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: learner objects' __del__ and atexit hooks do not run


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1]))
    except Exception:
        traceback.print_exc()
        sys.exit(3)
