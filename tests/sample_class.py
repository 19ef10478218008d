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


def write_class(folder: Path, students=STUDENTS, assignment: str = ASSIGNMENT) -> Path:
    """nbgrader's submitted/<student>/<assignment>/<notebook>.ipynb layout."""
    for student in students:
        target = folder / student.name / assignment
        target.mkdir(parents=True, exist_ok=True)
        student.make(target / f"{assignment}.ipynb")
    return folder


# --- notebook 06: a sample class with the same guarantees ------------------------------------
# Points: causal_mask 1, scaled_dot_product_attention 3, attention_backward 3, layer_norm 2,
# layer_norm_backward 3, gelu 1, split_heads 1, merge_heads 1, multi_head_attention 3
# (calls causal_mask, split_heads, merge_heads and the attention), positional_encoding 2,
# transformer_block 3 (calls layer_norm, multi_head_attention and gelu); total 23.
# Each student is one documented change, with a phrase its grader.json must contain; the
# attacks among them are the red-team suite's, adapted to this notebook's functions. Crashes,
# hangs and resource limits are the sandbox's, the same for every notebook: the class of 01
# and tests/test_redteam.py cover them.

ASSIGNMENT_06 = "06_attention"
SOLUTION_06 = ROOT / "solutions/06_attention/06_attention.ipynb"
RELEASE_06 = ROOT / "notebooks/06_attention/06_attention.ipynb"


def _replace_06(gid: str, code: str):
    def change(nb):
        _answer(nb, gid).source = code
        return nb
    return lambda path: _write(change(_load(SOLUTION_06)), path)


def _prepend_06(gid: str, code: str):
    return lambda path: _write(_prepend(gid, code)(_load(SOLUTION_06)), path)


def _partial_06(path):
    nb, solution = _load(RELEASE_06), _load(SOLUTION_06)
    for gid in ("causal_mask", "layer_norm", "gelu"):
        _answer(nb, gid).source = _answer(solution, gid).source
    _write(nb, path)


def _mistake_06(exercise: str, hint_start: str):
    """The solution with the catalogued mistake whose hint starts with ``hint_start`` injected."""
    from grader.checking.exercises import notebook_spec
    mistake = next(m for m in notebook_spec(ASSIGNMENT_06).exercise(exercise).mistakes if m.hint.startswith(hint_start))
    return _replace_06(exercise, mistake.inject)


STUDENTS_06 = [
    Student("correct", 23, "", lambda p: _write(_load(SOLUTION_06), p)),
    Student("untouched", 0, "not implemented yet", lambda p: p.write_bytes(RELEASE_06.read_bytes())),
    Student("partial", 4, "not implemented yet", _partial_06),
    Student("post_ln", 20, "this is the pre-LN block of GPT-2", _mistake_06("transformer_block", "this is the pre-LN")),
    # A whole-array maximum makes NaN rows; the two functions built on the attention fail with it.
    Student("global_max", 14, "subtract each row's own maximum",
            _mistake_06("scaled_dot_product_attention", "subtract each row's own maximum")),
    # attacks: none scores more than its honest part
    Student("patch_numpy_testing", 19, "transformer_block calls gelu, which fails its own check", _replace_06("gelu", (
        "import numpy.testing\nnumpy.testing.assert_allclose = lambda *a, **k: None\n"
        "np.allclose = lambda *a, **k: True\nnp.isclose = lambda a, b, *r, **k: np.ones(np.shape(a), dtype=bool)\n"
        "def gelu(x):\n    return x\n"))),
    Student("import_the_oracles", 20, "not implemented yet", _replace_06("attention_backward", (
        "import sys\nsys.path[:0] = ['" + str(ROOT) + "']\n"
        "try:\n    from grader.checking.oracles import attention_backward\n"
        "except ImportError:\n    def attention_backward(dout, q, k, v, weights):\n        raise NotImplementedError()\n"))),
    Student("hard_coded_visible_answers", 20, "your values are all zero", _replace_06("transformer_block", (
        "def transformer_block(x, params, n_heads):\n"
        "    if x.shape != (2, 4, 6):  # the visible example's shape: its answer was copied from a run\n"
        "        return np.zeros_like(x)\n"
        "    h = x + multi_head_attention(layer_norm(x, params['ln1_g'], params['ln1_b']), params, n_heads)\n"
        "    u = layer_norm(h, params['ln2_g'], params['ln2_b'])\n"
        "    return h + gelu(u @ params['W1'] + params['b1']) @ params['W2'] + params['b2']\n"))),
    Student("weights_as_dv", 20, "dq: your values are all zero", _replace_06("attention_backward", (
        "def attention_backward(dout, q, k, v, weights):\n"
        "    # shapes right, values borrowed from the inputs the grader handed over\n"
        "    return np.zeros_like(q), np.zeros_like(k), v\n"))),
]
