"""Turns a learner's outputs into a verdict, with a hint that names the mistake.

The same judgement runs in the learner's notebook (``grader.notebook.check``) and in the
trusted grading process, so a learner and an instructor always see the same hint.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grader.sandbox.failures import SANDBOX_FAILURES
from grader.sandbox.harness import flatten_result
from .spec import Call, Exercise, Tensor

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    hint: str = ""


PASSED = Verdict(True)
NOT_DONE = "not implemented yet: the stub still raises NotImplementedError."


def plain(value):
    """An argument as the oracle sees it: tensors become arrays, named functions stay specs."""
    if isinstance(value, Tensor):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


def expected_outputs(exercise: Exercise, call: Call) -> Outputs:
    args = [plain(a) for a in call.args]
    kwargs = {k: plain(v) for k, v in call.kwargs.items()}
    assert exercise.expected is not None, f"{exercise.name} is judged by a property, not an oracle"
    return flatten_result(exercise.expected(*args, **kwargs))


def error_hint(error: dict) -> str:
    """A one-line hint for an exception the learner's function raised (or a harness failure)."""
    name, message = error.get("ename", "Error"), " ".join(str(error.get("evalue", "")).split())
    if name == "NotImplementedError":
        return NOT_DONE
    if name in SANDBOX_FAILURES:
        return message
    if name == "NameError" and error.get("missing"):
        return f"{error['missing']} is not defined: run (or restore) its answer cell."
    if len(message) > 160:
        message = message[:157] + "..."
    return f"raised {name}: {message}" if message else f"raised {name}"


def judge_calls(exercise: Exercise, calls: list[Call], results: list[dict]) -> Verdict:
    """Judge every call; a recognised mistake's hint wins over a generic one.

    ``results[i]`` is ``{"outputs": Outputs}`` or ``{"error": {"ename", "evalue"}}``.
    """
    generic: str | None = None
    for call, result in zip(calls, results):
        hint, recognised = _judge_one(exercise, call, result)
        if recognised and hint:  # a catalogued mistake is the most useful thing to say
            return Verdict(False, hint)
        generic = generic or hint
    return Verdict(False, generic) if generic else PASSED


def _judge_one(exercise: Exercise, call: Call, result: dict) -> tuple[str | None, bool]:
    """(hint or None when right, whether the hint names a catalogued mistake)."""
    if "error" in result:
        return error_hint(result["error"]), False
    outputs = result["outputs"]
    if exercise.judge is not None:
        return exercise.judge(call, outputs), False
    problem = compare(outputs, expected_outputs(exercise, call), exercise.rtol, exercise.atol)
    if problem is None:
        return None, False
    mistake = recognise_mistake(exercise, call, outputs)
    return (mistake, True) if mistake else (problem, False)


def recognise_mistake(exercise: Exercise, call: Call, outputs: Outputs) -> str | None:
    args = [plain(a) for a in call.args]
    kwargs = {k: plain(v) for k, v in call.kwargs.items()}
    for mistake in exercise.mistakes:
        if mistake.wrong is None:  # named by the exercise's own judge, not by comparison
            continue
        try:
            with np.errstate(all="ignore"):
                wrong = flatten_result(mistake.wrong(*args, **kwargs))
        except Exception:  # the mistake cannot happen on these inputs (e.g. shapes do not broadcast)
            continue
        if mistake.key is not None:
            if mistake.key in outputs and mistake.key in wrong and _same(outputs[mistake.key], wrong[mistake.key], exercise):
                return mistake.hint
        elif outputs.keys() == wrong.keys() and all(_same(outputs[k], wrong[k], exercise) for k in wrong):
            return mistake.hint
    return None


def _same(actual, wrong, exercise: Exercise) -> bool:
    actual, wrong = np.asarray(actual), np.asarray(wrong)
    if actual.shape != wrong.shape or not _numeric(actual):
        return False
    return bool(np.allclose(actual.astype(np.float64), wrong.astype(np.float64),
                            rtol=max(exercise.rtol, 1e-4), atol=max(exercise.atol, 1e-6), equal_nan=True))


def _numeric(array: np.ndarray) -> bool:
    return array.dtype.kind in "biuf"


def _label(key: str) -> str:
    return "" if key == "" else f"{key}: "


def compare(outputs: Outputs, expected: Outputs, rtol: float, atol: float) -> str | None:
    """None when ``outputs`` equal ``expected`` within tolerance, else what differs, in one line."""
    if outputs.keys() != expected.keys():
        return _structure_hint(outputs, expected)
    for key, want in expected.items():
        got = np.asarray(outputs[key])
        label = _label(_display_key(key, expected))
        if not _numeric(got):
            return f"{label}returned {got.dtype} values; expected numbers (a NumPy array of floats)."
        if got.shape != want.shape:
            hint = f"{label}has shape {got.shape}; expected {want.shape}."
            if got.shape == want.shape[::-1] and got.ndim == 2:
                hint += " It looks transposed."
            elif got.size == want.size:
                hint += " Same number of elements: check which axis is which."
            return hint
        if want.dtype.kind == "f" and got.dtype.kind != "f":
            return f"{label}returned {got.dtype} values; expected floating-point values."
        if want.dtype.kind == "f" and not np.all(np.isfinite(got)):
            return f"{label}contains NaN or inf; expected finite values."
        close = np.isclose(got.astype(np.float64), want, rtol=rtol, atol=atol)
        if not np.all(close):
            index = np.unravel_index(np.argmin(close), close.shape) if close.ndim else ()
            diff = float(np.max(np.abs(got.astype(np.float64) - want)))
            where = f" at index {tuple(int(i) for i in index)}" if index else ""
            return f"{label}values are wrong{where} (largest difference {diff:.3g})."
    return None


def _display_key(key: str, expected: Outputs) -> str:
    """Name tuple parts by position (1st, 2nd ...) and dict entries by their key."""
    if key.isdigit():
        return f"value {int(key) + 1} of {len(expected)}"
    return key


def _structure_hint(outputs: Outputs, expected: Outputs) -> str:
    got, want = sorted(outputs), sorted(expected)
    if want == [""]:
        return f"returned {len(got)} values; expected a single array."
    if all(k.isdigit() for k in want):
        if got == [""]:
            return f"returned a single array; expected a tuple of {len(want)} arrays."
        return f"returned {len(got)} values; expected {len(want)}."
    missing = [k for k in want if k not in outputs]
    if missing:
        return f"the result has no {', '.join(missing)}; expected keys {', '.join(want)}."
    extra = [k for k in got if k not in expected]
    return f"unexpected entries {', '.join(extra)}; expected keys {', '.join(want)}."
