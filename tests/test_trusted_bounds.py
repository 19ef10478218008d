"""The trusted side stays bounded in time and memory whatever a submission holds.

Before any sandbox runs, the grader parses the submitted notebook, fits it to the assignment
(comparing test cells without their hidden tests) and reads the answer cells' syntax (which
exercise calls which). A hostile notebook once made each of these cost seconds to hours and
gigabytes: megabytes of dead statements in one answer, a multi-megabyte edited test cell.
Here each is refused or handled in well under a second, and the peak memory of a process
grading the largest notebook the caps allow is measured against ``TRUSTED_MEMORY_BOUND``.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time

import nbformat
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.grading import notebooks_io
from grader.grading.notebooks_io import (MAX_CELL_CHARS, MAX_NOTEBOOK_BYTES, UnusableNotebook, _without_hidden_tests,
                                         parse_notebook, read_notebook)
from notebook_cases import ROOT

RELEASE = ROOT / "notebooks/06_attention/06_attention.ipynb"
TRUSTED_MEMORY_BOUND = 128 << 20  # bytes above an idle grader, for any notebook (README: Trust)


def with_answer(source: str, grade_id: str = "layer_norm", test: bool = False) -> bytes:
    nb = nbformat.read(RELEASE, as_version=4)
    key = f"test_{grade_id}" if test else grade_id
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == key)
    cell.source = source
    return nbformat.writes(nb).encode()


def timed(function, *args):
    started = time.perf_counter()
    try:
        return function(*args), time.perf_counter() - started
    except UnusableNotebook as error:
        return error, time.perf_counter() - started


def test_megabytes_of_dead_statements_in_an_answer_are_refused_at_once():
    source = "def layer_norm(x):\n    return x\n" + "x = 1\n" * 500_000  # 3 MB
    error, seconds = timed(parse_notebook, with_answer(source), "06_attention.ipynb")
    assert str(error) == (f"06_attention.ipynb: cell {_cell_number('layer_norm')} has {len(source):,} characters; "
                          f"a cell may have at most {MAX_CELL_CHARS:,}")
    assert seconds < 1.0


def _cell_number(grade_id: str) -> int:
    nb = nbformat.read(RELEASE, as_version=4)
    return 1 + next(i for i, c in enumerate(nb.cells) if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                    == grade_id)


def test_a_multi_megabyte_edited_test_cell_is_refused_at_once():
    raw = with_answer("### BEGIN HIDDEN TESTS\n" * 250_000, grade_id="layer_norm", test=True)  # 5.75 MB
    error, seconds = timed(parse_notebook, raw, "06_attention.ipynb")
    assert isinstance(error, UnusableNotebook) and "a cell may have at most" in str(error)
    assert seconds < 1.0


@pytest.mark.parametrize("text", [
    "### BEGIN HIDDEN TESTS\n" * 250_000,                                # no end: the old regex retried each start
    "\n" * 3_000_000 + "### BEGIN HIDDEN TESTS",
    ("### BEGIN HIDDEN TESTS x ### END HIDDEN TESTS\n" * 100_000),
], ids=["starts_without_end", "newlines", "many_blocks"])
def test_hidden_tests_are_stripped_in_linear_time(text):
    _, seconds = timed(_without_hidden_tests, text)
    assert seconds < 0.5


OLD_HIDDEN_TESTS = re.compile(r"\n?### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.DOTALL)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "\n", " ", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS", "x = 1\n"]),
                max_size=14))
def test_stripping_hidden_tests_means_what_the_old_expression_meant(parts):
    """The expression stays as the statement of what is removed, on inputs small enough for it."""
    text = "".join(parts)
    assert _without_hidden_tests(text) == OLD_HIDDEN_TESTS.sub("\n", text).strip()


def test_a_notebook_over_the_size_cap_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "06_attention.ipynb"
    with open(path, "wb") as f:
        f.truncate(1 << 34)  # 16 GiB, sparse: reading it whole would take the machine's memory
    error, seconds = timed(read_notebook, path)
    assert str(error) == (f"{path}: the file has more than {MAX_NOTEBOOK_BYTES >> 20} MB; clear the outputs "
                          "(Edit > Clear Outputs of All Cells) and save it again")
    assert seconds < 1.0


def test_too_many_cells_are_refused():
    nb = nbformat.read(RELEASE, as_version=4)
    nb.cells += [nbformat.v4.new_code_cell("pass") for _ in range(notebooks_io.MAX_CELLS)]
    error, _ = timed(parse_notebook, nbformat.writes(nb).encode(), "06_attention.ipynb")
    assert str(error) == f"06_attention.ipynb: {len(nb.cells)} cells; a notebook may have at most 2000"


# The largest notebook the caps let through, as hostile as it can be: every answer cell at the
# cell cap with dead statements (parsed by ``ast``), every test cell edited at the cap, and
# outputs up to the file cap. Its peak is measured in a fresh process (VmHWM after clear_refs).
MEASURE = r"""
import sys
from pathlib import Path

import nbformat
from grader.checking.judge import learner_calls
from grader.grading.notebooks_io import assemble, grade_id, is_answer, parse_notebook

def kib(field):
    return int(next(l for l in open("/proc/self/status") if l.startswith(field + ":")).split()[1]) << 10

template = nbformat.read(sys.argv[2], as_version=4)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = kib("VmRSS")
raw = Path(sys.argv[1]).read_bytes()
nb = parse_notebook(raw, "hostile.ipynb")
assembled, notes = assemble(nb, template)
calls = learner_calls({grade_id(c): c.source for c in assembled.cells if is_answer(c)})
print(kib("VmHWM") - before, len(raw), notes)
"""


def test_peak_memory_of_the_trusted_side_stays_bounded(tmp_path):
    nb = nbformat.read(RELEASE, as_version=4)
    dead = "x = [1, (2, {3: 4})]\n"
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") or meta.get("grade"):
            body = f"def {meta.get('grade_id')}(x):\n    return x\n"
            cell.source = body + dead * ((MAX_CELL_CHARS - len(body)) // len(dead))
    size = len(nbformat.writes(nb).encode())
    image = "A" * (1 << 20)
    outputs = [nbformat.v4.new_output("display_data", data={"image/png": image})
               for _ in range((MAX_NOTEBOOK_BYTES - size) // (len(image) + 100) - 1)]
    nb.cells.append(nbformat.v4.new_code_cell("pass", outputs=outputs))
    path = tmp_path / "hostile.ipynb"
    path.write_text(nbformat.writes(nb))
    assert MAX_NOTEBOOK_BYTES - (2 << 20) < path.stat().st_size <= MAX_NOTEBOOK_BYTES
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(RELEASE)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    peak, read, notes = done.stdout.split(" ", 2)
    assert int(read) == path.stat().st_size and "test cell(s) had been edited" in notes
    print(f"trusted peak for a {int(read) >> 20} MiB hostile notebook: {int(peak) >> 20} MiB")
    assert int(peak) < TRUSTED_MEMORY_BOUND, f"peak {int(peak) >> 20} MiB"


def test_outputs_are_never_kept():
    """Outputs are dropped while parsing: the grader runs every cell afresh."""
    nb = nbformat.read(RELEASE, as_version=4)
    nb.cells[1] = nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="x" * 1000)])
    parsed = parse_notebook(nbformat.writes(nb).encode(), "06_attention.ipynb")
    assert parsed.cells[1].source == "print(1)" and parsed.cells[1].outputs == []
