"""Reading submitted notebooks and putting them back into the shape of the assignment.

Every problem with a file becomes an ``UnusableNotebook`` with a one-line reason that names
the file; nothing here ever raises anything else for bad input.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader.checking import exercises


class UnusableNotebook(ValueError):
    """A submission that cannot be graded at all; str(error) is the one-line reason."""


# Sizes checked before anything is parsed further, so that the trusted process's time and
# memory stay bounded whatever a learner submits (tests/test_trusted_bounds.py measures them).
# Honest notebooks are far below: the course's largest is ~60 kB, its largest cell ~4 kB.
MAX_NOTEBOOK_BYTES = 16 << 20
MAX_CELLS = 2000
MAX_CELL_CHARS = 64_000


def read_notebook(path: Path) -> NotebookNode:
    """Parse ``path`` as a notebook (upgrading old nbformat versions) or raise UnusableNotebook."""
    path = Path(path)
    if not path.exists():
        raise UnusableNotebook(f"{path}: no such file")
    if path.is_dir():
        raise UnusableNotebook(f"{path}: is a folder, not a notebook")
    with open(path, "rb") as f:  # one byte more than allowed is enough to refuse a larger file
        return parse_notebook(f.read(MAX_NOTEBOOK_BYTES + 1), str(path))


def parse_notebook(raw: bytes, label: str) -> NotebookNode:
    """Parse a notebook's bytes; ``label`` (its file name) starts every error message."""
    if len(raw) > MAX_NOTEBOOK_BYTES:
        raise UnusableNotebook(f"{label}: the file has more than {MAX_NOTEBOOK_BYTES >> 20} MB; "
                               "clear the outputs (Edit > Clear Outputs of All Cells) and save it again")
    if not raw.strip():
        raise UnusableNotebook(f"{label}: the file is empty")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise UnusableNotebook(f"{label}: not a notebook (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise UnusableNotebook(f"{label}: invalid JSON (line {error.lineno}, column {error.colno}: {error.msg})") from None
    if not isinstance(data, dict) or "nbformat" not in data or ("cells" not in data and "worksheets" not in data):
        raise UnusableNotebook(f"{label}: valid JSON but not a Jupyter notebook (no nbformat or cells)")
    text = _checked_and_cleared(data, label)
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as error:  # nbformat raises many kinds for damaged notebooks
        raise UnusableNotebook(f"{label}: damaged notebook ({type(error).__name__}: {str(error)[:120]})") from None
    return nb


def _checked_and_cleared(data: dict, label: str) -> str:
    """The notebook as JSON text again, once its cells' sizes are checked and code outputs
    dropped (the grader runs every cell afresh: outputs are never read, only parsed)."""
    cells = data.get("cells")
    if cells is None:  # nbformat 3: cells inside worksheets
        worksheets = data.get("worksheets")
        cells = [c for w in worksheets if isinstance(w, dict) for c in w.get("cells", []) or []] \
            if isinstance(worksheets, list) else []
    if not isinstance(cells, list):
        raise UnusableNotebook(f"{label}: valid JSON but not a Jupyter notebook (cells is not a list)")
    if len(cells) > MAX_CELLS:
        raise UnusableNotebook(f"{label}: {len(cells)} cells; a notebook may have at most {MAX_CELLS}")
    for number, cell in enumerate(cells, 1):
        if not isinstance(cell, dict):
            continue  # nbformat names the problem below
        for key in ("source", "input"):
            source = cell.get(key)
            size = len(source) if isinstance(source, str) else \
                sum(len(line) for line in source if isinstance(line, str)) if isinstance(source, list) else 0
            if size > MAX_CELL_CHARS:
                raise UnusableNotebook(f"{label}: cell {number} has {size:,} characters; a cell may have at most "
                                       f"{MAX_CELL_CHARS:,}")
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
    return json.dumps(data)


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def is_answer(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def is_test(cell) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return bool(meta.get("grade")) and not meta.get("solution") and cell.get("cell_type") == "code"


def identify(nb: NotebookNode) -> str | None:
    """Which course notebook this is, judged by its answer cells' grade_ids; None if none fits."""
    ids = {grade_id(c) for c in nb.cells if grade_id(c)}
    best, best_overlap = None, 0
    for name in exercises.available():
        spec = exercises.notebook_spec(name)
        overlap = len(ids & ({e.answer_id for e in spec.exercises} | {e.grade_id for e in spec.exercises}))
        if overlap > best_overlap:
            best, best_overlap = name, overlap
    return best


_BEGIN_HIDDEN, _END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def _without_hidden_tests(source: str) -> str:
    """``source`` without its hidden-tests blocks, in one pass (linear time on any text: no
    regular expression, whose backtracking a learner's edited test cell could make quadratic)."""
    kept, position = [], 0
    while (start := source.find(_BEGIN_HIDDEN, position)) >= 0:
        end = source.find(_END_HIDDEN, start + len(_BEGIN_HIDDEN))
        if end < 0:
            break
        kept.append(source[position:start].removesuffix("\n"))
        kept.append("\n")
        position = end + len(_END_HIDDEN)
        if source.startswith("\n", position):
            position += 1
    kept.append(source[position:])
    return "".join(kept).strip()


def _locked(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("locked"))


def assemble(submission: NotebookNode, template: NotebookNode) -> tuple[NotebookNode, list[str]]:
    """The template (the released notebook) with the learner's answers and extra cells put in.

    Cells are matched by nbgrader grade_id, else by cell id. Read-only and test cells always
    come from the template, so edits to them, deleted cells and reordering change nothing;
    an answer cell the learner deleted keeps the template's stub. Unlocked cells without a
    grade_id (scratch and demo cells) keep the learner's version. Cells the learner added are
    kept right after the template cell they followed.
    """
    notes: list[str] = []

    def key(cell) -> str | None:
        gid = grade_id(cell)
        return f"grade:{gid}" if gid else (f"id:{cell['id']}" if cell.get("id") else None)

    template_keys = [key(c) for c in template.cells]
    known = {k for k in template_keys if k}
    by_cell_id = {c.get("id"): key(c) for c in template.cells if c.get("id")}
    submitted_keys = {key(c) for c in submission.cells}
    matched: dict[str, NotebookNode] = {}
    extras_after: dict[str | None, list] = {}
    previous: str | None = None
    for cell in submission.cells:
        k = key(cell)
        if k not in known:  # e.g. a changed grade_id: the cell id still says which cell it is
            k = by_cell_id.get(cell.get("id"), k)
            if k in submitted_keys:
                k = None
        if k is not None and k in known and k not in matched:
            matched[k] = cell
            previous = k
        else:
            extra = nbformat.from_dict(dict(cell))
            extra.metadata = {m: v for m, v in cell.get("metadata", {}).items() if m != "nbgrader"}
            extra.pop("id", None)
            extras_after.setdefault(previous, []).append(extra)
    order = [k for k in matched]
    if [k for k in template_keys if k in matched] != order:
        notes.append("cells were reordered; the assignment's order was restored")
    edited = 0
    cells = list(extras_after.get(None, []))
    for tcell in template.cells:
        k = key(tcell)
        new = nbformat.from_dict(dict(tcell))
        mine = matched.get(k) if k else None
        if is_answer(tcell):
            if mine is not None:
                new.source = mine.source
            else:
                notes.append(f"answer cell '{grade_id(tcell)}' was missing; the assignment's stub was used")
        elif mine is not None and tcell.cell_type == "code" and not _locked(tcell) and not grade_id(tcell):
            new.source = mine.source
        elif mine is not None and grade_id(tcell):
            if _without_hidden_tests(mine.source) != _without_hidden_tests(tcell.source):
                edited += 1
        elif mine is None and grade_id(tcell):
            notes.append(f"cell '{grade_id(tcell)}' was missing and was restored")
        cells.append(new)
        if k:
            cells.extend(extras_after.get(k, []))
    if edited:
        notes.append(f"{edited} read-only or test cell(s) had been edited and were restored")
    duplicates = sum(1 for c in submission.cells if grade_id(c) and f"grade:{grade_id(c)}" in known) - \
        sum(1 for k in matched if k.startswith("grade:"))
    if duplicates:
        notes.append(f"{duplicates} duplicated cell(s) were kept as extra cells")
    result = nbformat.from_dict(dict(template))
    result.cells = [nbformat.from_dict(dict(c)) for c in cells]
    for i, cell in enumerate(result.cells):  # extra cells get fresh, unique ids
        if "id" not in cell:
            cell["id"] = f"extra-{i}"
    return result, notes
