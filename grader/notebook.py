"""``check``: what the test cells of a learner's notebook call.

In the notebook, ``check("relu", relu)`` runs the visible examples and raises an
``AssertionError`` whose message is the hint, exactly as ``grader check`` would word it.
The hidden test cells call ``check("relu", relu, hidden=True)``, which draws fresh inputs.
Grading never relies on these cells: the trusted grader decides scores outside the
learner's kernel (see ``grader.grading.grade``), but the learner sees the same judgement here.
"""
from __future__ import annotations

import inspect
import traceback
from pathlib import Path

import numpy as np

from grader.checking import exercises
from grader.checking.judge import NOT_DONE, dependency_hint, judge_calls
from grader.sandbox import harness
from grader.sandbox.calls import call_in_process

HIDDEN_SEED = 20_26  # in-notebook hidden draws; the trusted grader uses fresh seeds


_PACKAGE = Path(__file__).resolve().parent


class CheckFailed(AssertionError):
    """A failed check. Jupyter shows it without the course's frames: only the learner's cells."""

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's own traceback
        frames = traceback.extract_tb(self.__traceback__)
        cells = [f for f in frames if harness.is_cell(f.filename)]
        shown = cells or [f for f in frames if not Path(f.filename).resolve().is_relative_to(_PACKAGE)]
        return [*"".join(traceback.format_list(shown)).splitlines(), f"AssertionError: {self}"]


CheckFailed.__name__ = CheckFailed.__qualname__ = "AssertionError"  # what the learner reads, as nbgrader's tests raise


def _find_exercise(name: str):
    for notebook in exercises.available():
        spec = exercises.notebook_spec(notebook)
        for exercise in spec.exercises:
            if exercise.name == name:
                return exercise, spec
    raise KeyError(f"no exercise named {name!r}")


def _judge(exercise, fn, hidden: bool):
    calls = exercise.hidden_calls(np.random.default_rng(HIDDEN_SEED)) if hidden else exercise.visible_calls()
    return judge_calls(exercise, calls, [call_in_process(fn, exercise.name, call) for call in calls]), len(calls)


def _failing_dependency(fn, spec, name: str) -> tuple[str, str] | None:
    """(the first exercise of this notebook, in the notebook's order, that ``fn`` calls, directly
    or not, and that fails its own visible check; that check's hint), or None. Read from the
    names the learner's code uses. The order is the grader's (``judge.blame_dependencies``), so
    the notebook and ``grader check`` blame the same exercise."""
    called = _called_exercises(fn, {e.name for e in spec.exercises} - {name}, spec.exercise(name).uses)
    for exercise in spec.exercises:
        if exercise.name in called:
            verdict, _ = _judge(exercise, called[exercise.name], hidden=False)
            if not verdict.passed:
                return exercise.name, verdict.hint
    return None


def _called_exercises(fn, names: set[str], uses: tuple[str, ...] = ()) -> dict:
    """Exercise name -> the learner's function of that name, for every exercise that ``fn``
    uses, directly or through the exercises it uses, or that builds its arguments (``uses``)."""
    found: dict = {}
    namespace = getattr(inspect.unwrap(fn), "__globals__", None)
    for used in uses:  # functions the harness calls to build this exercise's arguments
        other = namespace.get(used) if isinstance(namespace, dict) else None
        if callable(other):
            found[used] = other
    todo = [fn, *found.values()]
    while todo:
        caller = todo.pop()
        code, namespace = getattr(caller, "__code__", None), getattr(caller, "__globals__", None)
        if code is None or not isinstance(namespace, dict):
            continue
        for used in _code_names(code) & names - found.keys():
            other = namespace.get(used)
            if callable(other):
                found[used] = other
                todo.append(other)
    return found


def _code_names(code) -> set[str]:
    """The global names a code object uses, its nested functions and comprehensions included."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if hasattr(constant, "co_names"):
            names |= _code_names(constant)
    return names


def check(name: str, fn, hidden: bool = False) -> None:
    """Check the learner's ``fn`` for exercise ``name``; raise AssertionError(hint) when wrong."""
    exercise, spec = _find_exercise(name)
    verdict, count = _judge(exercise, fn, hidden)
    if not verdict.passed:
        failing = _failing_dependency(fn, spec, name) if verdict.hint != NOT_DONE else None
        hint = dependency_hint(name, *failing) if failing else verdict.hint
        raise CheckFailed(f"{name}: {hint}") from None
    print(f"{name}: {'hidden' if hidden else 'visible'} checks passed ({count} case{'' if count == 1 else 's'}).")
