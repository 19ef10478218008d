"""Warnings and log lines never cost points, although nbgrader would score them 0.

TensorFlow and PyTorch write warnings to stderr at import and on first use. nbgrader scores a
test cell 0 when its output contains a stderr stream (``nbgrader.utils.determine_grade``), so
in a plain nbgrader setup a correct answer that happens to warn while its test runs loses its
points. Our grader decides scores outside the learner's kernel: the sandbox captures stderr
and the verdicts come from the oracles. Here, correct solutions made deliberately noisy
(``warnings.warn``, ``tf.get_logger().warning``, a framework's own UserWarning, printing to
``sys.stderr``, both when the answer cell runs and on every call) still earn full marks.
"""
from __future__ import annotations

import json
import subprocess

import nbformat
import pytest
from nbgrader.utils import determine_grade

from grader.checking import exercises
from grader.grading.notebooks_io import grade_id, is_answer, is_test
from notebook_cases import grade, solution, with_answers

MARK = "deliberate-noise"

_WRAP = '''

import functools as _functools, sys as _sys, warnings as _warnings


def _noisy(fn):
    """The same function, warning on stderr every time it is called."""
    @_functools.wraps(fn)
    def noisy(*args, **kwargs):
        _warnings.warn("{mark}: warnings.warn in a call", UserWarning)
        print("{mark}: stderr in a call", file=_sys.stderr)
{call_noise}
        return fn(*args, **kwargs)
    return noisy


_warnings.warn("{mark}: warnings.warn in the answer cell", UserWarning)
print("{mark}: stderr in the answer cell", file=_sys.stderr)
{cell_noise}
{name} = _noisy({name})
'''

FRAMEWORK_NOISE = {
    # (noise on every call, noise when the answer cell runs), in each framework's own channels
    "04_tensorflow": ('        tf.get_logger().warning("{mark}: TensorFlow logger in a call")',
                      'tf.get_logger().warning("{mark}: TensorFlow logger in the answer cell")'),
    "05_pytorch": ("        torch.tensor(torch.zeros(1))  # PyTorch's own UserWarning: use clone().detach()",
                   "torch.tensor(torch.ones(1))"),
}


def noisy_solution(name: str):
    """The solution notebook with every answer wrapped so that it warns, logs and prints to stderr."""
    call_noise, cell_noise = (line.format(mark=MARK) for line in FRAMEWORK_NOISE[name])
    answers = {}
    for cell in solution(name).cells:
        if is_answer(cell):
            answers[grade_id(cell)] = cell.source + _WRAP.format(mark=MARK, name=grade_id(cell),
                                                                 call_noise=call_noise, cell_noise=cell_noise)
    return with_answers(name, answers)


def test_nbgrader_itself_scores_a_test_cell_with_stderr_zero():
    """The premise: what a framework warning would cost in a plain nbgrader autograde."""
    cell = nbformat.v4.new_code_cell("check('relu', relu)")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 2, "grade_id": "test_relu"}
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="relu: visible checks passed\n")]
    assert determine_grade(cell) == (2, 2)
    cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text="UserWarning: something\n"))
    assert determine_grade(cell) == (0, 2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["04_tensorflow", "05_pytorch"])
def test_noisy_correct_solution_earns_full_marks(name):
    graded = grade(name, noisy_solution(name))
    failures = {e.name: e.hint for e in graded.exercises if not e.passed}
    assert failures == {}, f"{name}: {failures} {graded.notes}"
    assert graded.score == exercises.notebook_spec(name).total_points

    # The noise really happened during grading: every answer cell's output shows it ...
    answer_outputs = ["".join(o.get("text", "") for o in c.outputs) for c in graded.notebook.cells if is_answer(c)]
    assert answer_outputs and all(f"{MARK}: stderr in the answer cell" in text and
                                  f"{MARK}: warnings.warn in the answer cell" in text for text in answer_outputs)
    # ... and nbgrader, reading the graded notebook, gives every test cell its full points.
    for cell in graded.notebook.cells:
        if is_test(cell):
            points = cell.metadata["nbgrader"]["points"]
            assert determine_grade(cell) == (points, points), grade_id(cell)


@pytest.mark.slow
def test_noisy_solution_passes_grader_check_on_the_command_line(tmp_path):
    path = tmp_path / "05_pytorch.ipynb"
    nbformat.write(noisy_solution("05_pytorch"), path)
    run = subprocess.run(["grader", "check", "--json", str(path)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    assert report["score"] == report["max_score"] == exercises.notebook_spec("05_pytorch").total_points
