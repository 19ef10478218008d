"""Turns a learner's outputs into a verdict, with a hint that names the mistake.

The same judgement runs in the learner's notebook (``grader.notebook.check``) and in the
trusted grading process, so a learner and an instructor always see the same hint.
"""
from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from grader.sandbox.failures import SANDBOX_FAILURES, framework_hint
from grader.sandbox.harness import array_arguments, flatten_result

from .diagnosis import Diagnosis, Input, diagnose, shape_hint
from .spec import Call, Exercise, Tensor

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Verdict:
    passed: bool
    hint: str = ""


PASSED = Verdict(True)
NOT_DONE = "not implemented yet: the stub still raises NotImplementedError."


def plain(value):
    """An argument as the oracle sees it: tensors become arrays, named functions stay specs.
    Arrays are copies, so an oracle or a mistake that works in place never changes a call."""
    if isinstance(value, Tensor):
        return np.array(value.value)
    if isinstance(value, np.ndarray):
        return value.copy()
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
    if (hint := framework_hint(error)) is not None:
        return hint
    if name == "NameError" and error.get("missing"):
        return f"{error['missing']} is not defined: run (or restore) its answer cell."
    if len(message) > 160:
        message = message[:157] + "..."
    where = learner_line(error.get("where"))
    if where:
        return f"{where}: {name}: {message}" if message else f"{where}: {name}"
    return f"raised {name}: {message}" if message else f"raised {name}"


def learner_line(where) -> str:
    """"line 4 of your dense_backward cell, `dx = dout @ W`" from a reported location.

    The location comes from the learner's side (the sandbox or their kernel), so only an
    identifier, a small line number and a short line of printable text are believed.
    """
    if not isinstance(where, dict):
        return ""
    cell, line, code = where.get("cell"), where.get("line"), where.get("code")
    if not isinstance(line, int) or isinstance(line, bool) or not 0 < line < 100_000:
        return ""
    cell = f"your {cell} cell" if isinstance(cell, str) and re.fullmatch(r"[A-Za-z_]\w{0,59}", cell) else "your cell"
    text = f"line {line} of {cell}"
    if isinstance(code, str) and code.strip() and code.isprintable():
        code = " ".join(code.split())
        text += f", `{code[:77] + '...' if len(code) > 80 else code}`"
    return text


def judge_calls(exercise: Exercise, calls: list[Call], results: list[dict]) -> Verdict:
    """Judge every call; the most telling hint wins.

    ``results[i]`` is ``{"outputs": Outputs}`` or ``{"error": {"ename", "evalue"}}``. A
    recognised mistake's hint is the most useful thing to say; then an exception or a diagnosis
    that names what is off; then where the values differ. Among equals, the first call's.
    """
    best: tuple[int, str] | None = None
    for call, result in zip(calls, results):
        try:
            hint, rank = _judge_one(exercise, call, result)
        except Exception as error:  # noqa: BLE001 - a result no judge foresaw fails this call, not the grading
            hint, rank = f"the result could not be judged ({type(error).__name__}).", GENERIC
        if hint is None:
            continue
        if rank == RECOGNISED:
            return Verdict(False, hint)
        if best is None or rank > best[0]:
            best = (rank, hint)
    return Verdict(False, best[1]) if best else PASSED


GENERIC, NAMED, RECOGNISED = 0, 1, 2


def _judge_one(exercise: Exercise, call: Call, result: dict) -> tuple[str | None, int]:
    """(hint or None when right, how telling the hint is)."""
    if "error" in result:
        return error_hint(result["error"]), NAMED
    outputs = result["outputs"]
    if call.probe in ("inputs_after", "reseeded"):
        return _judge_requirement(exercise, call, outputs)
    if exercise.judge is not None:
        return exercise.judge(call, outputs), NAMED
    problem = compare_outputs(outputs, expected_outputs(exercise, call), exercise.rtol, exercise.atol,
                              call_inputs(exercise, call), exercise.outputs, parameter_names(exercise))
    if problem is None:
        if exercise.keeps_float32:
            return _float32_problem(exercise, call, outputs), RECOGNISED
        return None, GENERIC
    mistake = recognise_mistake(exercise, call, outputs)
    if mistake:
        return mistake, RECOGNISED
    return problem.text, NAMED if problem.named else GENERIC


def parameter_names(exercise: Exercise) -> list[str]:
    """The names of the function's parameters, as the oracle spells them (``x``, ``params``)."""
    try:
        return list(inspect.signature(exercise.expected).parameters) if exercise.expected else []
    except (TypeError, ValueError):
        return []


def argument_name(path: str, names: Sequence[str]) -> str:
    """An argument's path as the probes write it ("2.W1", "mask") as code names it (``params['W1']``)."""
    head, *inside = path.split(".")
    if head.isdigit():
        head = names[int(head)] if int(head) < len(names) else f"argument {int(head) + 1}"
    return head + "".join(f"[{int(k)}]" if k.isdigit() else f"[{k!r}]" for k in inside)


def call_inputs(exercise: Exercise, call: Call) -> list[Input]:
    """The call's arrays, named as the oracle's parameters are (``b``, ``params['W1']``)."""
    names = parameter_names(exercise)
    named = [(names[i] if i < len(names) else f"argument {i + 1}", a) for i, a in enumerate(call.args)]
    found: list[Input] = []
    for name, value in named + list(call.kwargs.items()):
        value = plain(value)
        if isinstance(value, np.ndarray):
            found.append(Input(name, value))
        elif isinstance(value, dict):
            found.extend(Input(f"{name}[{k!r}]", v) for k, v in value.items() if isinstance(v, np.ndarray))
    return found


def dependency_hint(name: str, dependency: str, its_hint: str) -> str:
    """The hint of an exercise whose function calls another exercise's function that fails."""
    return f"{name} calls {dependency}, which fails its own check: fix {dependency} first ({dependency}: {its_hint})"


def learner_calls(sources: dict[str, str], uses: dict[str, tuple[str, ...]] | None = None) -> dict[str, set[str]]:
    """Exercise -> the other exercises its answer cell calls, directly or through them (or
    whose functions build its arguments: ``uses``)."""
    direct = {n: _called_names(src) & set(sources) - {n} for n, src in sources.items()}
    for n, used in (uses or {}).items():
        direct.setdefault(n, set()).update(set(used) - {n})
    closed = {}
    for n in direct:
        seen, todo = set(), list(direct[n])
        while todo:
            m = todo.pop()
            if m not in seen and m != n:
                seen.add(m)
                todo.extend(direct.get(m, ()))
        closed[n] = seen
    return closed


def _called_names(source: str) -> set[str]:
    """Names called as functions in ``source`` (not in its comments or docstrings)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    return {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}


def blame_dependencies(order: list[str], verdicts: dict[str, Verdict], calls: dict[str, set[str]]) -> dict[str, Verdict]:
    """Failing exercises whose function calls another failing one say to fix that one first
    (a stub that is not implemented yet says so, whatever it would call)."""
    blamed = dict(verdicts)
    for name in order:
        verdict = verdicts[name]
        if verdict.passed or verdict.hint == NOT_DONE:
            continue
        failing = [d for d in order if d in calls.get(name, ()) and not verdicts[d].passed]
        if failing:
            blamed[name] = Verdict(False, dependency_hint(name, failing[0], verdicts[failing[0]].hint))
    return blamed


def _judge_requirement(exercise: Exercise, call: Call, outputs: Outputs) -> tuple[str | None, int]:
    """The result judged as usual, then a requirement checked here from returned arrays:
    the inputs after the call equal those sent ("inputs_after"), or the same seed repeats
    the result and another seed changes it ("reseeded")."""
    hint, rank = _judge_one(exercise, replace(call, probe=None, probe_args={}),
                            {"outputs": _part(outputs, "result")})
    if hint is not None:
        return hint, rank
    if call.probe == "inputs_after":
        sent = dict(array_arguments([(str(i), plain(a)) for i, a in enumerate(call.args)]
                                    + [(k, plain(v)) for k, v in call.kwargs.items()]))
        after = _part(outputs, "after")
        paths = list(sent) + [k for k in after if k not in sent]
        changed = [k for k in paths if k not in sent or k not in after or not _identical(after[k], sent[k])]
        if changed:
            return exercise.keeps_inputs or changed_input_hint(
                exercise.name, argument_name(changed[0], parameter_names(exercise))), RECOGNISED
        return None, GENERIC
    first, same, other = (_part(outputs, p) for p in ("result", "again.0", "again.1"))
    repeats = first.keys() == same.keys() and all(_identical(first[k], same[k]) for k in first)
    varies = first.keys() != other.keys() or not all(_identical(first[k], other[k]) for k in first)
    if not (repeats and varies):
        return exercise.rng_only or "use only the given generator for randomness.", RECOGNISED
    return None, GENERIC


def _part(outputs: Outputs, prefix: str) -> Outputs:
    """The outputs under ``prefix`` (as the probe named them), with the prefix taken off."""
    return {key[len(prefix) + 1:]: value for key, value in outputs.items() if key.startswith(prefix + ".")} | (
        {"": outputs[prefix]} if prefix in outputs else {})


def _identical(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and _numeric(a) and _numeric(b) and bool(
        np.array_equal(a.astype(np.float64), b.astype(np.float64), equal_nan=True))


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


def compare(outputs: Outputs, expected: Outputs, rtol: float, atol: float, inputs: Sequence[Input] = (),
            names: Sequence[str] = (), parameters: Sequence[str] = ()) -> str | None:
    """None when ``outputs`` equal ``expected`` within tolerance, else what differs, in one line."""
    problem = compare_outputs(outputs, expected, rtol, atol, inputs, names, parameters)
    return None if problem is None else problem.text


def compare_outputs(outputs: Outputs, expected: Outputs, rtol: float, atol: float,
                    inputs: Sequence[Input] = (), names: Sequence[str] = (),
                    parameters: Sequence[str] = ()) -> Diagnosis | None:
    """None when ``outputs`` equal ``expected`` within tolerance, else a diagnosis of the first difference.
    ``names`` name the returned parts in order (``Exercise.outputs``) and ``parameters`` the function's
    arguments, so that the diagnosis says which output is wrong."""
    if outputs.keys() != expected.keys():
        return Diagnosis(_structure_hint(outputs, expected, names), "structure")
    for key, want in expected.items():
        got = np.asarray(outputs[key])
        label = _label(output_name(key, expected, names, parameters))
        if not _numeric(got):
            return Diagnosis(f"{label}returned {got.dtype} values; expected numbers (a NumPy array of floats).", "type")
        if got.shape != want.shape:
            return Diagnosis(label + shape_hint(got.shape, want.shape), "shape")
        if want.dtype.kind == "f" and got.dtype.kind != "f":
            return Diagnosis(f"{label}returned {got.dtype} values; expected floating-point values.", "type")
        if want.dtype.kind == "b" and got.dtype.kind != "b":
            return Diagnosis(f"{label}returned {got.dtype} values; expected booleans (dtype=bool).", "type")
        close = np.isclose(got.astype(np.float64), want, rtol=rtol, atol=atol)
        if not np.all(close):
            found = diagnose(got, want, inputs, rtol, atol)
            return Diagnosis(label + found.text, found.kind)
    return None


def output_name(key: str, expected: Outputs, names: Sequence[str] = (), parameters: Sequence[str] = ()) -> str:
    """What a message calls the output at ``key``: its name from ``Exercise.outputs`` (``dx``),
    else its position ("value 1 of 3"); dict entries by their key; under a probe, the returned
    value ("result"), an argument after the call ("params['W1'] after the call") or a gradient
    ("params['W1'].grad"), with the function's ``parameters`` named as the oracle names them."""
    head, _, rest = key.partition(".")
    if head in ("after", "grad") and rest:
        argument = argument_name(rest, parameters)
        return f"{argument} after the call" if head == "after" else f"{argument}.grad"
    if head == "result":
        if not rest:
            return names[0] if len(names) == 1 else "result"
        head, _, rest = rest.partition(".")
        count = len({k.split(".")[1] for k in expected if k.startswith("result.")})
    else:
        count = len({k.split(".")[0] for k in expected})
    if head.isdigit():
        index = int(head)
        head = names[index] if index < len(names) else f"value {index + 1} of {count}"
    return head + (f".{rest}" if rest else "")


def _structure_hint(outputs: Outputs, expected: Outputs, names: Sequence[str] = ()) -> str:
    got, want = sorted(outputs), sorted(expected)
    if want == [""]:
        return f"returned {len(got)} values; expected a single array."
    if all(k.isdigit() for k in want):
        parts = f" ({', '.join(names)})" if len(names) == len(want) else ""
        if got == [""]:
            return f"returned a single array; expected a tuple of {len(want)} arrays{parts}."
        return f"returned {len(got)} values; expected {len(want)}{parts}."
    missing = [k for k in want if k not in outputs]
    if missing:
        return f"the result has no {', '.join(missing)}; expected keys {', '.join(want)}."
    extra = [k for k in got if k not in expected]
    return f"unexpected entries {', '.join(extra)}; expected keys {', '.join(want)}."


def changed_input_hint(function: str, argument: str) -> str:
    """The hint for a function that changed one of its arguments (seen by the "inputs_after" probe)."""
    return (f"{function} changed its argument {argument} (an in-place update such as -= or [...] =): leave every "
            "input unchanged and compute into a new array.")


def names_and_shapes_problem(got: dict, want: dict) -> str | None:
    """None when ``got`` (name -> shape) is exactly ``want``; else what differs, briefly: the first
    missing and unexpected names and the first wrong shapes."""
    if got == want:
        return None
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    wrong = [f"{n} {got[n]} (expected {want[n]})" for n in want if n in got and got[n] != want[n]]
    parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
            ([f"unexpected {', '.join(extra[:3])}"] if extra else []) + wrong[:2]
    return "; ".join(parts)


def float32_hint(output: str, dtype: str = "float64") -> str:
    """The hint for a float32 call answered in another floating-point dtype (``Exercise.keeps_float32``)."""
    return (f"{output} is {dtype} for float32 inputs: return the inputs' dtype. Under NumPy 2, a NumPy float64 "
            "scalar such as np.sqrt(d) turns a float32 array into float64; a Python float (d ** 0.5, "
            "math.sqrt(d)) does not.")


def _float32_problem(exercise: Exercise, call: Call, outputs: Outputs) -> str | None:
    """``float32_hint`` for the first floating-point output that is not float32 on a call whose
    floating-point inputs are all float32; None otherwise."""
    floats = [item.value.dtype for item in call_inputs(exercise, call) if item.value.dtype.kind == "f"]
    if not floats or any(dtype != np.float32 for dtype in floats):
        return None
    expected = expected_outputs(exercise, call)
    names, parameters = exercise.outputs, parameter_names(exercise)
    for key, value in outputs.items():
        value = np.asarray(value)
        if value.dtype.kind == "f" and value.dtype != np.float32:
            name = output_name(key, expected, names, parameters) if key else "the result"
            return float32_hint(name, str(value.dtype))
    return None
