"""``grader check NOTEBOOK...``: grade notebooks here, exactly as the autograder would.

One notebook prints its table; several, or a folder, print a table each and then the course's
summary. Exit status: 0 when every exercise passes, 1 when any fails, 2 when a file cannot be
graded (the worst notebook's).
"""
from __future__ import annotations

import secrets
import sys
from pathlib import Path

from grader.checking import exercises
from grader.course import find_root, release_notebook
from .grade import grade_notebook
from .notebooks_io import UnusableNotebook, identify, read_notebook
from .results import GradedNotebook, format_table, notebook_summary, to_json


def exercise_table(graded: GradedNotebook) -> str:
    rows = [("exercise", "points", "result", "hint")]
    rows += [(e.name, f"{e.points:g}/{e.max_points}", "pass" if e.passed else "FAIL", e.hint) for e in graded.exercises]
    return format_table(rows) + f"\ntotal: {graded.score:g}/{graded.max_score}"


def grade_path(notebook_path: Path, seed: int | None = None) -> GradedNotebook | None:
    """The notebook at ``notebook_path`` graded as the autograder would; None (after one line on
    stderr naming the file and the problem) when it cannot be graded."""
    try:
        nb = read_notebook(notebook_path)
        name = identify(nb)
        if name is None:
            raise UnusableNotebook(f"{notebook_path}: not a notebook of this course (no exercise cells found)")
    except UnusableNotebook as error:
        print(f"grader check: {error}", file=sys.stderr)
        return None
    root = find_root(notebook_path.parent)
    try:
        return grade_notebook(nb, release_notebook(root, name), exercises.notebook_spec(name),
                              seed=secrets.randbits(63) if seed is None else seed)
    except Exception as error:  # noqa: BLE001 - the grader's failure, never the learner's: one line, no traceback
        words = " ".join(str(error).split())[:200]
        print(f"grader check: {notebook_path}: the grader failed ({type(error).__name__}"
              f"{': ' + words if words else ''})", file=sys.stderr)
        return None


def _print_graded(notebook_path: Path, graded: GradedNotebook) -> None:
    print(f"{notebook_path}  ({graded.name})")
    print(exercise_table(graded))
    for note in graded.notes:
        print(f"note: {note}")
    if not graded.isolated:
        print("note: ran without the isolated sandbox (needs root and Linux namespaces); limits still applied")


def _status(graded: GradedNotebook | None) -> int:
    return 2 if graded is None else 0 if graded.score == graded.max_score else 1


def run(path: str, as_json: bool = False, seed: int | None = None) -> int:
    notebook_path = Path(path)
    graded = grade_path(notebook_path, seed)
    if graded is None:
        return 2
    if as_json:
        print(to_json(notebook_summary(graded)))
    else:
        _print_graded(notebook_path, graded)
    return _status(graded)


def notebooks_in(paths: list[str]) -> list[Path] | str:
    """Every notebook named or inside a named folder, in course order; or why there are none."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if not inside:
                return f"{path}: a folder with no notebooks (.ipynb) in it"
            found.extend(inside)
        else:
            found.append(path)
    return found


def course_summary(checked: list[tuple[Path, GradedNotebook | None]]) -> str:
    """Points per notebook, the course's total, and the first exercise that does not pass yet."""
    rows = [("notebook", "points", "passed")]
    for path, graded in checked:
        if graded is None:
            rows.append((str(path), "-", "cannot be graded"))
        else:
            passed = sum(e.passed for e in graded.exercises)
            rows.append((graded.name, f"{graded.score:g}/{graded.max_score}", f"{passed}/{len(graded.exercises)} exercises"))
    lines = [format_table(rows)]
    usable = [g for _, g in checked if g is not None]
    lines.append(f"course total: {sum(g.score for g in usable):g}/{sum(g.max_score for g in usable)}")
    nxt = next_exercise(checked)
    lines.append(f"next: {nxt['notebook']}, {nxt['exercise']}: {nxt['hint']}" if nxt else
                 "next: nothing left, every exercise passes." if len(usable) == len(checked) else
                 "next: fix the notebooks that cannot be graded (see above).")
    return "\n".join(line.rstrip() for line in lines)


def next_exercise(checked: list[tuple[Path, GradedNotebook | None]]) -> dict | None:
    for _, graded in checked:
        if graded is None:
            continue
        for e in graded.exercises:
            if not e.passed:
                return {"notebook": graded.name, "exercise": e.name, "hint": e.hint}
    return None


def run_many(paths: list[str], as_json: bool = False, seed: int | None = None) -> int:
    """``grader check`` of one notebook (the table), or of several and folders (a table each,
    then the course's summary). Exit status: that of the worst notebook."""
    if len(paths) == 1 and not Path(paths[0]).is_dir():
        return run(paths[0], as_json, seed)
    notebooks = notebooks_in(paths)
    if isinstance(notebooks, str):
        print(f"grader check: {notebooks}", file=sys.stderr)
        return 2
    checked = []
    for path in notebooks:
        graded = grade_path(path, seed)
        checked.append((path, graded))
        if graded is not None and not as_json:
            _print_graded(path, graded)
            print()
    if as_json:
        usable = [g for _, g in checked if g is not None]
        print(to_json({"notebooks": [notebook_summary(g) for g in usable],
                       "unusable": [str(p) for p, g in checked if g is None],
                       "score": sum(g.score for g in usable), "max_score": sum(g.max_score for g in usable),
                       "next": next_exercise(checked)}))
    else:
        print(course_summary(checked))
    return max(_status(g) for _, g in checked)
