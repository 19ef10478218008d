"""``check``: what the test cells of a learner's notebook call.

In the notebook, ``check("relu", relu)`` runs the visible examples and raises an
``AssertionError`` whose message is the hint, exactly as ``grader check`` would word it.
The hidden test cells call ``check("relu", relu, hidden=True)``, which draws fresh inputs.
Grading never relies on these cells: the trusted grader decides scores outside the
learner's kernel (see ``grader.grading.grade``), but the learner sees the same judgement here.
"""
from __future__ import annotations

import numpy as np

from grader.checking import exercises
from grader.sandbox.calls import call_in_process
from grader.checking.judge import judge_calls

HIDDEN_SEED = 20_26  # in-notebook hidden draws; the trusted grader uses fresh seeds


def _find_exercise(name: str):
    for notebook in exercises.available():
        spec = exercises.notebook_spec(notebook)
        for exercise in spec.exercises:
            if exercise.name == name:
                return exercise
    raise KeyError(f"no exercise named {name!r}")


def check(name: str, fn, hidden: bool = False) -> None:
    """Check the learner's ``fn`` for exercise ``name``; raise AssertionError(hint) when wrong."""
    exercise = _find_exercise(name)
    calls = exercise.hidden_calls(np.random.default_rng(HIDDEN_SEED)) if hidden else exercise.visible_calls()
    results = [call_in_process(fn, name, call) for call in calls]
    verdict = judge_calls(exercise, calls, results)
    if not verdict.passed:
        raise AssertionError(f"{name}: {verdict.hint}")
    print(f"{name}: {'hidden' if hidden else 'visible'} checks passed ({len(calls)} cases).")
