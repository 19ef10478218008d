"""``grader check NOTEBOOK``: grade one notebook here, exactly as the autograder would.

Exit status: 0 when every exercise passes, 1 when any fails, 2 when the file cannot be graded.
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


def run(path: str, as_json: bool = False, seed: int | None = None) -> int:
    notebook_path = Path(path)
    try:
        nb = read_notebook(notebook_path)
        name = identify(nb)
        if name is None:
            raise UnusableNotebook(f"{notebook_path}: not a notebook of this course (no exercise cells found)")
    except UnusableNotebook as error:
        print(f"grader check: {error}", file=sys.stderr)
        return 2
    root = find_root(notebook_path.parent)
    graded = grade_notebook(nb, release_notebook(root, name), exercises.notebook_spec(name),
                            seed=secrets.randbits(63) if seed is None else seed)
    if as_json:
        print(to_json(notebook_summary(graded)))
    else:
        print(f"{notebook_path}  ({name})")
        print(exercise_table(graded))
        for note in graded.notes:
            print(f"note: {note}")
        if not graded.isolated:
            print("note: ran without the isolated sandbox (needs root and Linux namespaces); limits still applied")
    return 0 if graded.score == graded.max_score else 1
