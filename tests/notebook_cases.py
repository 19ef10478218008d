"""Helpers for tests that grade solution notebooks with answers swapped in."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import nbformat

from grader.checking import exercises
from grader.course import copy_course as make_course  # noqa: F401 (the tests' name for it)
from grader.course import release_notebook, source_notebook
from grader.grading.grade import GradedNotebook, grade_notebook
from grader.grading.notebooks_io import grade_id, is_answer

ROOT = Path(__file__).resolve().parents[1]
SEED = 7


def course_notebooks() -> list[str]:
    """Notebooks with both exercises and a solution notebook."""
    return [n for n in exercises.available() if source_notebook(ROOT, n).exists()]


@lru_cache(maxsize=None)
def solution(name: str):
    return nbformat.read(source_notebook(ROOT, name), as_version=4)


def with_answers(name: str, answers: dict[str, str]):
    """The solution notebook with the answer cells named in ``answers`` replaced."""
    nb = nbformat.from_dict(solution(name))
    found = set()
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_answer(cell) and gid in answers:
            cell.source = answers[gid]
            found.add(gid)
    missing = set(answers) - found
    assert not missing, f"{name}: no answer cells {sorted(missing)}"
    return nb


def without_demos(nb):
    """The notebook without its ungraded, unlocked code cells (demos, plots, timings)."""
    nb = nbformat.from_dict(nb)
    nb.cells = [c for c in nb.cells if c.cell_type != "code" or "nbgrader" in c.metadata]
    return nb


def grade(name: str, nb, demos: bool = True) -> GradedNotebook:
    """Grade ``nb`` as notebook ``name``; ``demos=False`` leaves out the demo cells on both
    sides (submission and template), which only saves time: answers never depend on them."""
    template = release_notebook(ROOT, name)
    if not demos:
        nb, template = without_demos(nb), without_demos(template)
    return grade_notebook(nb, template, exercises.notebook_spec(name), seed=SEED)


def dependencies(name: str) -> dict[str, set[str]]:
    """Exercise -> exercises its solution calls (directly or not), read from the answer cells."""
    names = [e.name for e in exercises.notebook_spec(name).exercises]
    sources = {grade_id(c): c.source for c in solution(name).cells if is_answer(c)}
    direct = {n: {m for m in names if m != n and re.search(rf"\b{m}\s*\(", sources.get(n, ""))}
              | set(exercises.notebook_spec(name).exercise(n).uses) for n in names}
    closed = {}
    for n in names:
        seen, todo = set(), list(direct[n])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(direct[m])
        closed[n] = seen
    return closed


def mistake_rounds(name: str) -> list[dict[str, int]]:
    """Groups of (exercise -> mistake index) that can be injected together.

    Exercises in one group never depend on each other, so each injected mistake can only
    show in its own exercise; every catalogued mistake appears in exactly one group.
    """
    spec = exercises.notebook_spec(name)
    deps = dependencies(name)
    pending = [(e.name, i) for e in spec.exercises for i in range(len(e.mistakes))]
    rounds = []
    while pending:
        chosen: dict[str, int] = {}
        for exercise, index in list(pending):
            if exercise in chosen:
                continue
            if any(exercise in deps[other] or other in deps[exercise] for other in chosen):
                continue
            chosen[exercise] = index
            pending.remove((exercise, index))
        rounds.append(chosen)
    return rounds
