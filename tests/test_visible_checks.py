"""The notebook's own test cells catch every catalogued mistake, with the grader's words.

For each notebook, one real kernel runs the setup and the solution's answer cells once (no
demos, no test cells); then, for every catalogued mistake, it runs the injected answer cell and
the *released* test cell under it (what a learner runs), reads the error, and restores the
solution's answer. The error must be the catalogued hint, word for word as ``grader check``
prints it.
"""
from __future__ import annotations

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel

from grader.checking import exercises
from grader.grading.notebooks_io import grade_id, is_answer, is_test
from notebook_cases import ROOT, course_notebooks, solution

NOTEBOOKS = [n for n in ("01_forward", "02_backprop", "03_gradient_descent", "04_tensorflow", "05_pytorch", "06_attention",
                                "07_gpt", "08_modern_decoder", "09_post_training")
             if n in course_notebooks()]


class Kernel:
    def __init__(self, cwd):
        self.manager, self.client = start_new_kernel(kernel_name="python3", cwd=str(cwd))

    def run(self, code: str, timeout: float = 300) -> dict | None:
        """Run ``code``; the error it raised ({"ename", "evalue"}) or None."""
        errors = []

        def hook(message):
            if message["msg_type"] == "error":
                errors.append(message["content"])

        reply = self.client.execute_interactive(code, output_hook=hook, timeout=timeout, store_history=False)
        if reply["content"]["status"] == "error" and not errors:
            errors.append(reply["content"])
        return errors[0] if errors else None

    def close(self):
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def released_test_cells(name: str) -> dict[str, str]:
    nb = nbformat.read(ROOT / "notebooks" / name / f"{name}.ipynb", as_version=4)
    return {grade_id(c): c.source for c in nb.cells if is_test(c)}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_visible_checks_name_every_catalogued_mistake(name):
    spec = exercises.notebook_spec(name)
    cells = [c for c in solution(name).cells if c.cell_type == "code" and "nbgrader" in c.metadata and not is_test(c)]
    answers = {grade_id(c): c.source for c in cells if is_answer(c)}
    tests = released_test_cells(name)
    kernel = Kernel(ROOT / "notebooks" / name)
    problems = []
    try:
        for cell in cells:
            error = kernel.run(cell.source)
            assert error is None, f"{name}: cell {grade_id(cell)} failed: {error}"
        for exercise in spec.exercises:
            for index, mistake in enumerate(exercise.mistakes):
                assert kernel.run(mistake.inject) is None, f"{exercise.name} mistake {index}: the injected cell fails"
                error = kernel.run(tests[exercise.grade_id])
                want = f"{exercise.name}: {mistake.hint}"
                if error is None:
                    problems.append(f"{exercise.name} mistake {index}: the visible test cell passed")
                elif error["ename"] != "AssertionError" or error["evalue"] != want:
                    problems.append(f"{exercise.name} mistake {index}: {error['ename']}: {error['evalue']}")
            kernel.run(answers[exercise.name])
    finally:
        kernel.close()
    assert problems == [], "\n".join(problems)


CRASHING_DENSE_BACKWARD = """def dense_backward(dout, x, W):
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=2)
    return dx, dW, db
"""
CRASH = ("line 4 of your dense_backward cell, `db = dout.sum(axis=2)`: "
         "AxisError: axis 2 is out of bounds for array of dimension 2")


def test_a_crash_names_the_learners_line_and_hides_the_courses_frames():
    name = "02_backprop"
    cells = [c for c in solution(name).cells if c.cell_type == "code" and "nbgrader" in c.metadata and not is_test(c)]
    tests = released_test_cells(name)
    kernel = Kernel(ROOT / "notebooks" / name)
    try:
        for cell in cells:
            assert kernel.run(cell.source) is None
        assert kernel.run(CRASHING_DENSE_BACKWARD) is None
        error = kernel.run(tests["test_dense_backward"])
        assert (error["ename"], error["evalue"]) == ("AssertionError", f"dense_backward: {CRASH}")
        assert not any("grader" in line for line in error["traceback"]), error["traceback"]
        error = kernel.run(tests["test_mlp_backward"])
        assert error["evalue"] == ("mlp_backward: mlp_backward calls dense_backward, which fails its own check: "
                                   f"fix dense_backward first (dense_backward: {CRASH})")
    finally:
        kernel.close()
