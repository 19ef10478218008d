"""Plain `nbgrader autograde`, with the course's nbgrader_config.py, grades through the trusted
grader: every solution earns full marks and every unmodified release earns 0."""
from __future__ import annotations

import shutil

import pytest

from grader.checking import exercises
from notebook_cases import ROOT, course_notebooks, make_course

NOTEBOOKS = course_notebooks()


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    from nbgrader.apps import NbGraderAPI
    from grader.grading.release import course_config

    course = make_course(tmp_path_factory.mktemp("nbgrader-course"))
    for name in NOTEBOOKS:
        for student, folder in (("solver", "solutions"), ("starter", "notebooks")):
            target = course / "submitted" / student / name
            target.mkdir(parents=True)
            shutil.copy(ROOT / folder / name / f"{name}.ipynb", target)
    db_url = f"sqlite:///{course / 'gradebook.db'}"
    api = NbGraderAPI(config=course_config(course, root=str(course), db_url=db_url,
                                           release_directory=str(course / "release")))
    import os
    cwd = os.getcwd()
    os.chdir(course)  # TrustedExecute finds the course from the working directory, as under the nbgrader CLI
    try:
        for name in NOTEBOOKS:
            assert api.generate_assignment(name, force=True)["success"]
            for student in ("solver", "starter"):
                result = api.autograde(name, student, force=True, create=True)
                assert result["success"], result.get("log", "") + result.get("error", "")
    finally:
        os.chdir(cwd)
    from nbgrader.api import Gradebook
    with Gradebook(db_url) as gb:
        yield {(s.assignment.name, s.student_id): s.score for name in NOTEBOOKS for s in gb.find_assignment(name).submissions}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solution_full_marks_and_release_zero_under_nbgrader(gradebook, name):
    total = exercises.notebook_spec(name).total_points
    assert gradebook[(name, "solver")] == total
    assert gradebook[(name, "starter")] == 0
