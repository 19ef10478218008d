"""A sample class for notebook 01: one student per situation the autograder must survive.

Each student is made from the solution or the release by one documented change, with the
score it deserves and a phrase that must appear in the reason given (in the summary and in
the feedback). Points: relu 1, sigmoid 1, softmax 2, dense_forward 1, mse_loss 1,
cross_entropy 2, mlp_forward 2 (which calls relu and dense_forward); total 10.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from grader.grading.notebooks_io import grade_id, is_answer, is_test
from notebook_cases import ROOT

ASSIGNMENT = "01_forward"
SOLUTION = ROOT / "solutions/01_forward/01_forward.ipynb"
RELEASE = ROOT / "notebooks/01_forward/01_forward.ipynb"


def _load(path):
    return nbformat.read(path, as_version=4)


def _answer(nb, gid):
    return next(c for c in nb.cells if grade_id(c) == gid and is_answer(c))


def _prepend(gid: str, code: str):
    def change(nb):
        cell = _answer(nb, gid)
        cell.source = code + "\n" + cell.source
        return nb
    return change


def _write(nb, path: Path):
    nbformat.write(nb, path)


@dataclass
class Student:
    name: str
    score: float
    reason: str  # a phrase of the expected reason or hint ("" when there is nothing to say)
    make: Callable[[Path], None]  # writes the submission to the given path


def from_solution(change=lambda nb: nb):
    return lambda path: _write(change(_load(SOLUTION)), path)


def raw(content: bytes):
    return lambda path: path.write_bytes(content)


def partial(path):
    nb = _load(RELEASE)
    solution = _load(SOLUTION)
    for gid in ("relu", "softmax"):
        _answer(nb, gid).source = _answer(solution, gid).source
    _write(nb, path)


def old_nbformat(path):
    nb = _load(SOLUTION)
    path.write_text(nbformat.writes(nbformat.convert(nb, 3), version=3))


def delete_cells(nb):
    nb.cells = [c for c in nb.cells if not is_test(c) and grade_id(c) not in ("imports", "setup")
                and c.cell_type != "markdown"]
    return nb


def duplicate_cells(nb):
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if grade_id(cell) in ("softmax", "test_softmax"):
            twin = copy.deepcopy(cell)
            twin["id"] = cell["id"] + "-copy"  # Jupyter gives a pasted cell a new id
            cells.append(twin)
    nb.cells = cells
    return nb


def reorder_cells(nb):
    nb.cells = nb.cells[:3] + list(reversed(nb.cells[3:]))
    return nb


def change_grade_id(nb):
    _answer(nb, "relu").metadata["nbgrader"]["grade_id"] = "my_relu"
    return nb


def edit_locked_cells(nb):
    for cell in nb.cells:
        if is_test(cell):
            cell.source = "pass"
        elif grade_id(cell) == "imports":
            cell.source = "import numpy as np\nnp.allclose = lambda *a, **k: True"
    return nb


def wrong_assignment(path):
    """A student who uploaded their notebook 02 (answer cells named after 02's exercises)."""
    from grader.checking.exercises import notebook_spec
    cells = [nbformat.v4.new_code_cell(f"def {e.name}(*args):\n    pass", metadata={"nbgrader": {
        "grade": False, "solution": True, "locked": False, "grade_id": e.name, "schema_version": 3}})
        for e in notebook_spec("02_backprop").exercises]
    _write(nbformat.v4.new_notebook(cells=cells), path)


NOISY = ("import sys, warnings\nwarnings.warn('a deprecation warning from a correct answer')\n"
         "print('progress: 50%', file=sys.stderr)\n")

STUDENTS = [
    Student("correct", 10, "", from_solution()),
    Student("partial", 3, "not implemented yet", partial),
    Student("untouched", 0, "not implemented yet", lambda p: p.write_bytes(RELEASE.read_bytes())),
    Student("invalid_json", 0, "invalid JSON", raw(b'{"cells": [')),
    Student("empty_file", 0, "the file is empty", raw(b"")),
    Student("not_a_notebook", 0, "not a Jupyter notebook", raw(json.dumps({"title": "my essay"}).encode())),
    Student("wrong_assignment", 0, "this is notebook 02_backprop, not 01_forward", wrong_assignment),
    Student("old_nbformat", 10, "", old_nbformat),
    Student("deleted_cells", 10, "was missing and was restored", from_solution(delete_cells)),
    Student("duplicated_cells", 10, "duplicated cell", from_solution(duplicate_cells)),
    Student("reordered_cells", 10, "reordered", from_solution(reorder_cells)),
    Student("changed_grade_id", 10, "", from_solution(change_grade_id)),
    Student("edited_locked_cells", 10, "edited and were restored", from_solution(edit_locked_cells)),
    Student("infinite_loop", 9, "time limit", from_solution(_prepend("sigmoid", "while True:\n    pass"))),
    Student("hanging_function", 8, "did not finish", from_solution(
        lambda nb: setattr(_answer(nb, "cross_entropy"), "source",
                           "def cross_entropy(logits, y_onehot):\n    while True:\n        pass\n") or nb)),
    Student("memory_bomb", 8, "MemoryError", from_solution(_prepend("softmax", "hog = bytearray(48 * 2**30)"))),
    Student("kernel_exit", 7, "exited with status 3", from_solution(_prepend("dense_forward", "import os\nos._exit(3)"))),
    Student("segfault", 9, "segmentation fault", from_solution(_prepend("mse_loss", "import ctypes\nctypes.string_at(0)"))),
    Student("sys_exit", 8, "SystemExit", from_solution(_prepend("cross_entropy", "import sys\nsys.exit()"))),
    Student("noisy_but_correct", 10, "", from_solution(_prepend("relu", NOISY))),
]


def write_class(folder: Path, students=STUDENTS) -> Path:
    """nbgrader's submitted/<student>/<assignment>/<notebook>.ipynb layout."""
    for student in students:
        target = folder / student.name / ASSIGNMENT
        target.mkdir(parents=True, exist_ok=True)
        student.make(target / f"{ASSIGNMENT}.ipynb")
    return folder
