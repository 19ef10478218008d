"""Writing grades into nbgrader's gradebook: one writer, one student at a time.

The gradebook stays nbgrader's own database (SQLite by default, any SQLAlchemy URL such as
PostgreSQL otherwise), so ``nbgrader export``, formgrader and manual grading keep working.
Scores go in through nbgrader's ``SaveAutoGrades``, which reads them from the test cells'
outputs exactly as it does after ``nbgrader autograde``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from nbformat import NotebookNode

from grader.course import CourseError

from .release import course_config


def default_db_url(root: Path) -> str:
    return os.environ.get("GRADER_DB_URL") or f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"


def ensure_assignment(root: Path, db_url: str, assignment: str) -> None:
    """Register ``assignment`` (its notebooks, cells and points) in the gradebook if missing."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gb:
        try:
            gb.find_assignment(assignment)
            return
        except MissingEntry:
            pass
    from nbgrader.apps import NbGraderAPI

    with tempfile.TemporaryDirectory(prefix="grader-register-") as scratch:
        config = course_config(Path(root).resolve(), root=str(Path(root).resolve()),
                               release_directory=str(Path(scratch) / "release"), db_url=db_url)
        result = NbGraderAPI(config=config).generate_assignment(assignment, force=True)
        if not result.get("success"):
            raise CourseError(f"{assignment}: could not register it in the gradebook: "
                              f"{_last_line(result.get('error', ''))}")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else "nbgrader gave no reason"


def record(db_url: str, assignment: str, student: str, notebooks: dict[str, NotebookNode]) -> None:
    """Save the autograded ``notebooks`` (name -> graded notebook) of one student."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import SaveAutoGrades

    import warnings

    warnings.filterwarnings("ignore", module="nbgrader")  # SQLAlchemy autoflush chatter inside nbgrader's API
    warnings.filterwarnings("ignore", message=".*not in session.*")
    with Gradebook(db_url) as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission(assignment, student)
    saver = SaveAutoGrades()
    for name, nb in notebooks.items():
        resources = {"nbgrader": {"notebook": name, "assignment": assignment, "student": student, "db_url": db_url}}
        saver.preprocess(nb, resources)


def scores(db_url: str, assignment: str) -> dict[str, dict[str, float]]:
    """student -> {grade cell id -> score} for every submission of ``assignment``."""
    from nbgrader.api import Gradebook, MissingEntry

    table: dict[str, dict[str, float]] = {}
    with Gradebook(db_url) as gb:
        try:
            submissions = gb.find_assignment(assignment).submissions
        except MissingEntry:
            return table
        for submission in submissions:
            row = table.setdefault(submission.student_id, {})
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    row[grade.name] = float(grade.score)
    return table
