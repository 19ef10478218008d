"""Every course notebook, graded for real in the sandbox.

- the solution earns full marks;
- the unmodified release earns 0, every exercise saying "not implemented yet";
- every catalogued mistake, injected into the solution, is recognised: its exercise loses
  its points with exactly the catalogued hint, and every exercise that does not depend on it
  keeps its points.
"""
from __future__ import annotations

import pytest

from grader.checking import exercises
from grader.course import release_notebook
from grader.checking.judge import NOT_DONE
from notebook_cases import ROOT, course_notebooks, dependencies, grade, mistake_rounds, solution, with_answers

NOTEBOOKS = course_notebooks()


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_earns_full_marks(name):
    graded = grade(name, solution(name))
    failures = {e.name: e.hint for e in graded.exercises if not e.passed}
    assert failures == {}, f"{name}: {failures} {graded.notes}"
    assert graded.score == exercises.notebook_spec(name).total_points > 0


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_earns_zero(name):
    graded = grade(name, release_notebook(ROOT, name))
    assert graded.score == 0
    assert {e.hint for e in graded.exercises} == {NOT_DONE}


ROUNDS = [(name, k, chosen) for name in NOTEBOOKS for k, chosen in enumerate(mistake_rounds(name))]


@pytest.mark.parametrize("name,k,chosen", ROUNDS, ids=[f"{n}-round{k}" for n, k, _ in ROUNDS])
def test_injected_mistakes_are_named(name, k, chosen):
    spec = exercises.notebook_spec(name)
    answers = {ex: spec.exercise(ex).mistakes[i].inject for ex, i in chosen.items()}
    graded = grade(name, with_answers(name, answers), demos=False)  # the full notebook runs in the test above
    results = {e.name: e for e in graded.exercises}
    deps = dependencies(name)
    for ex, i in chosen.items():
        assert results[ex].points == 0, f"{name}: mistake {i} of {ex} was not caught"
        assert results[ex].hint == spec.exercise(ex).mistakes[i].hint
    for exercise in spec.exercises:
        if exercise.name not in chosen and not (deps[exercise.name] & set(chosen)):
            assert results[exercise.name].passed, f"{exercise.name} lost points: {results[exercise.name].hint}"


def test_every_mistake_is_covered_once():
    for name in NOTEBOOKS:
        spec = exercises.notebook_spec(name)
        injected = [(ex, i) for chosen in mistake_rounds(name) for ex, i in chosen.items()]
        assert sorted(injected) == sorted((e.name, i) for e in spec.exercises for i in range(len(e.mistakes)))


def test_catalogue_has_at_least_15_mistakes_over_the_numpy_notebooks():
    numpy_notebooks = [n for n in ("01_forward", "02_backprop", "03_gradient_descent") if n in exercises.available()]
    count = sum(len(e.mistakes) for n in numpy_notebooks for e in exercises.notebook_spec(n).exercises)
    assert count >= 15


def test_exercise_names_are_unique_across_the_course():
    names = [e.name for n in exercises.available() for e in exercises.notebook_spec(n).exercises]
    assert len(names) == len(set(names))
