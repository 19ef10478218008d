"""Grades one notebook: the pure task, submission in, verdicts and a graded notebook out.

1. Put the submission into the assignment's shape (``notebooks_io.assemble``).
2. Run its cells, then the learner's functions on fresh inputs, in the sandbox. Test cells
   and the setup cell are not run: scores are never decided inside the learner's kernel.
3. Judge each exercise here, in the trusted process, against the oracles.
4. Write the verdicts into the test cells' outputs (an error output for a failure, as
   nbgrader expects), so nbgrader's own ``SaveAutoGrades`` records the scores.
"""
from __future__ import annotations

import ast
import copy
import dataclasses

import nbformat
import numpy as np
from nbformat import NotebookNode

from grader import sandbox
from grader.sandbox.calls import encode_call
from grader.sandbox.failures import framework_hint
from grader.checking.judge import Verdict, blame_dependencies, judge_calls, learner_calls
from .notebooks_io import assemble, grade_id, is_answer, is_test
from .results import ExerciseResult, GradedNotebook
from grader.checking.spec import Call, NotebookSpec

SETUP_CELL = "setup"  # installs the course package in Colab; meaningless in the sandbox


def plan_calls(spec: NotebookSpec, seed: int, max_call_seconds: float | None = None
               ) -> tuple[list[tuple[str, Call]], list[dict], dict[str, np.ndarray]]:
    """Every call to make: the visible examples, then fresh hidden draws from ``seed``."""
    rng = np.random.default_rng(seed)
    planned: list[tuple[str, Call]] = []
    for exercise in spec.exercises:
        for call in exercise.visible_calls() + exercise.hidden_calls(rng):
            planned.append((exercise.name, call))
    arrays: dict[str, np.ndarray] = {}
    def timeout(name: str) -> float:
        limit = spec.exercise(name).call_timeout
        return min(limit, max_call_seconds) if max_call_seconds else limit

    encoded = [encode_call(name, call, f"c{i}", arrays, timeout(name))
               for i, (name, call) in enumerate(planned)]
    return planned, encoded, arrays


FRAMEWORKS = ("torch", "tensorflow")


def frameworks_imported(template: NotebookNode) -> tuple[str, ...]:
    """The frameworks the assignment's own code imports (the release, never the submission):
    what the slot's warm process imports once for every submission of the assignment."""
    found: set[str] = set()
    for cell in template.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython syntax (magics): such a cell imports nothing we need to know of
            continue
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            found.update(name.split(".")[0] for name in names if name.split(".")[0] in FRAMEWORKS)
    return tuple(sorted(found))


def cells_to_run(nb: NotebookNode) -> list[dict]:
    return [{"source": cell.source if cell.cell_type == "code" else "",
             "skip": cell.cell_type != "code" or is_test(cell) or grade_id(cell) == SETUP_CELL}
            for cell in nb.cells]


def grade_notebook(submission: NotebookNode, template: NotebookNode, spec: NotebookSpec, seed: int,
                   slot: int = 0, limits: sandbox.Limits | None = None) -> GradedNotebook:
    nb, notes = assemble(submission, template)
    limits = limits or sandbox.Limits(cell_timeout=spec.cell_timeout, notebook_timeout=spec.notebook_timeout,
                                      memory_bytes=spec.memory_bytes)
    if spec.numpy_only:  # whatever limits were asked for, a NumPy notebook runs without the frameworks
        limits = dataclasses.replace(limits, numpy_only=True)
    else:
        limits = dataclasses.replace(limits, preload=frameworks_imported(template))
    planned, encoded, arrays = plan_calls(spec, seed, max_call_seconds=limits.cell_timeout)
    run = sandbox.run(cells_to_run(nb), encoded, arrays, limits, slot=slot)
    results: list[ExerciseResult] = []
    verdicts: dict[str, Verdict] = {}
    for exercise in spec.exercises:
        indices = [i for i, (name, _) in enumerate(planned) if name == exercise.name]
        verdict = judge_calls(exercise, [planned[i][1] for i in indices], [run.calls[i] for i in indices])
        verdicts[exercise.name] = verdict
        results.append(ExerciseResult(exercise.name, exercise.title, exercise.points if verdict.passed else 0,
                                      exercise.points, verdict.hint))
    sources = {gid: c.source for c in nb.cells if is_answer(c) and (gid := grade_id(c) or "") in verdicts}
    verdicts = blame_dependencies([e.name for e in spec.exercises], verdicts,
                                  learner_calls(sources, {e.name: e.uses for e in spec.exercises}))
    verdicts = _blame_framework_imports(nb, run, verdicts)
    for result in results:
        result.hint = verdicts[result.name].hint
    _write_outputs(nb, run, spec, verdicts)
    return GradedNotebook(spec.name, nb, results, notes + run.notes, run.isolated, run.seconds)


def _blame_framework_imports(nb: NotebookNode, run: sandbox.RunResult, verdicts: dict[str, Verdict]
                             ) -> dict[str, Verdict]:
    """A failing exercise whose answer cell stopped at an import of PyTorch or TensorFlow in a
    NumPy notebook gets that reason (its function was never defined: "not defined" would mislead)."""
    blamed = dict(verdicts)
    for index, cell in enumerate(nb.cells):
        name = grade_id(cell) or ""
        error = (run.cells.get(index) or {}).get("error")
        if is_answer(cell) and name in verdicts and not verdicts[name].passed and isinstance(error, dict):
            hint = framework_hint(error)
            if hint is not None:
                blamed[name] = Verdict(False, hint)
    return blamed


def unusable(spec: NotebookSpec, template: NotebookNode | None, reason: str) -> GradedNotebook:
    """The result for a submission that could not be graded: 0 points, and why, everywhere."""
    results = [ExerciseResult(e.name, e.title, 0, e.points, reason) for e in spec.exercises]
    nb = None
    if template is not None:
        nb = copy.deepcopy(template)
        verdicts = {e.name: Verdict(False, reason) for e in spec.exercises}
        _write_outputs(nb, sandbox.RunResult(), spec, verdicts)
    return GradedNotebook(spec.name, nb, results, [reason])


def _write_outputs(nb: NotebookNode, run: sandbox.RunResult, spec: NotebookSpec, verdicts: dict[str, Verdict]) -> None:
    by_test_id = {e.grade_id: e for e in spec.exercises}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        exercise = by_test_id.get(grade_id(cell) or "")
        if exercise is not None and is_test(cell):
            verdict = verdicts[exercise.name]
            if verdict.passed:
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout",
                                                           text=f"{exercise.name}: passed\n"))
            else:
                cell.outputs.append(nbformat.v4.new_output("error", ename="AssertionError",
                                                           evalue=f"{exercise.name}: {verdict.hint}", traceback=[]))
            continue
        ran = run.cells.get(index)
        if ran is None:
            continue
        if ran.get("stdout"):
            cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=ran["stdout"]))
        error = ran.get("error")
        if error:
            cell.outputs.append(nbformat.v4.new_output("error", ename=str(error.get("ename", "Error")),
                                                       evalue=str(error.get("evalue", "")), traceback=[]))
