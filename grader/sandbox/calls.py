"""Calls as JSON plus arrays: the only form in which they cross into the sandbox."""
from __future__ import annotations

import inspect

import numpy as np

from grader.checking.spec import Call, Function, GPTModel, LearnerModel, Linear, Tensor, TinyLM, TorchGenerator
from grader.sandbox import harness


def encode_value(value, key: str, arrays: dict[str, np.ndarray]) -> dict:
    """JSON description of one argument; its arrays are added to ``arrays`` under ``key``."""
    if isinstance(value, Tensor):
        arrays[key] = np.asarray(value.value)
        return {"kind": "tensor", "framework": value.framework, "key": key, "trainable": value.trainable}
    if isinstance(value, Function):
        params = {}
        for name, array in value.params.items():
            arrays[f"{key}.{name}"] = np.asarray(array)
            params[name] = f"{key}.{name}"
        return {"kind": "function", "name": value.name, "params": params}
    if isinstance(value, TorchGenerator):
        return {"kind": "torch_generator", "seed": int(value.seed)}
    if isinstance(value, GPTModel):
        weights = {}
        for name, array in value.weights.items():
            arrays[f"{key}.{name}"] = np.asarray(array)
            weights[name] = f"{key}.{name}"
        return {"kind": "gpt", "weights": weights, "n_head": int(value.n_head)}
    if isinstance(value, LearnerModel):
        weights = {}
        for name, array in value.weights.items():
            arrays[f"{key}.{name}"] = np.asarray(array)
            weights[name] = f"{key}.{name}"
        return {"kind": "learner_model", "builder": value.builder,
                "config": encode_value(value.config, f"{key}.config", arrays), "weights": weights}
    if isinstance(value, TinyLM):
        for name, array in value.weights.items():
            arrays[f"{key}.{name}"] = np.asarray(array)
        return {"kind": "tiny_lm", "weights": {name: f"{key}.{name}" for name in value.weights},
                "n_head": int(value.n_head)}
    if isinstance(value, Linear):
        arrays[f"{key}.weight"], arrays[f"{key}.bias"] = np.asarray(value.weight), np.asarray(value.bias)
        return {"kind": "linear", "weight": f"{key}.weight", "bias": f"{key}.bias"}
    if isinstance(value, np.ndarray):
        arrays[key] = value
        return {"kind": "array", "key": key}
    if isinstance(value, dict):
        return {"kind": "dict", "items": {k: encode_value(v, f"{key}.{k}", arrays) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"kind": type(value).__name__,
                "items": [encode_value(v, f"{key}.{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return {"kind": "value", "value": value}
    if isinstance(value, np.generic):
        return {"kind": "value", "value": value.item()}
    raise TypeError(f"cannot hand {type(value).__name__} to a learner's function")


def encode_call(fn_name: str, call: Call, key: str, arrays: dict, timeout: float) -> dict:
    return {
        "fn": fn_name,
        "args": [encode_value(v, f"{key}.arg{i}", arrays) for i, v in enumerate(call.args)],
        "kwargs": {k: encode_value(v, f"{key}.{k}", arrays) for k, v in call.kwargs.items()},
        "probe": call.probe,
        "probe_args": {k: _store(arrays, f"{key}.probe.{k}", v) for k, v in call.probe_args.items()},
        "timeout": timeout,
    }


def _store(arrays: dict, key: str, value) -> str:
    arrays[key] = np.asarray(value)
    return key


def call_in_process(fn, fn_name: str, call: Call) -> dict:
    """Call ``fn`` here (in a learner's own kernel) exactly as the sandbox would call it.

    Returns ``{"outputs": {...}}`` or ``{"error": {...}}``, the form ``judge`` takes.
    """
    arrays: dict[str, np.ndarray] = {}
    spec = encode_call(fn_name, call, "c", arrays, timeout=0)
    # where a learner's model builder is found (under decorators such as @torch.no_grad())
    harness.LEARNER_NAMESPACE = getattr(inspect.unwrap(fn), "__globals__", {})
    try:
        args = [harness.build_argument(a, arrays) for a in spec["args"]]
        kwargs = {k: harness.build_argument(v, arrays) for k, v in spec["kwargs"].items()}
        probe_args = {k: np.array(arrays[v]) for k, v in spec["probe_args"].items()}
        result = fn(*args, **kwargs)
        again = harness.call_again(fn, spec, arrays)
        return {"outputs": harness.read_result(result, args, kwargs, call.probe, probe_args, again)}
    except Exception as exc:  # the learner's exception is the verdict, not a crash of the check
        return {"error": harness.describe_error(exc)}
