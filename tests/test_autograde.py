"""`grader autograde` on a sample class: exact scores, reasons, resumption, and agreement of
the gradebook, the CSV exports and the feedback files."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.grading.gradebook import scores
from notebook_cases import ROOT, make_course
from sample_class import ASSIGNMENT, STUDENTS, write_class

LIMITS = ["--cell-timeout", "4", "--notebook-timeout", "60"]
EXPECTED = {s.name: s.score for s in STUDENTS}


def grader(*args, cwd=None, check=True):
    done = subprocess.run([sys.executable, "-m", "grader.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=900)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    course = make_course(base / "course")
    submitted = write_class(base / "submitted")
    done = grader("autograde", ASSIGNMENT, submitted, "--jobs", "2", "--json", "--course-dir", course, *LIMITS)
    return course, submitted, {row["student"]: row for row in json.loads(done.stdout)}, done.stderr


def db(course: Path) -> str:
    return f"sqlite:///{course / 'gradebook.db'}"


def test_every_student_gets_exactly_the_expected_score(graded_class):
    _, _, summary, _ = graded_class
    assert {s: row["score"] for s, row in summary.items()} == EXPECTED


def test_every_reason_is_given_in_the_summary_or_the_feedback(graded_class):
    course, _, summary, _ = graded_class
    grader("feedback", ASSIGNMENT, "--course-dir", course)
    for student in STUDENTS:
        page = (course / "feedback" / student.name / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert f"Score: {student.score:g} / 10" in page
        if student.reason:
            said = " ".join(summary[student.name]["notes"]) + page
            assert student.reason in said, f"{student.name}: {student.reason!r} not said"


def test_feedback_never_shows_hidden_tests(graded_class):
    course, _, _, _ = graded_class
    grader("feedback", ASSIGNMENT, "--course-dir", course)
    for page in (course / "feedback").rglob("*.html"):
        text = page.read_text()
        assert "hidden=True" not in text and "HIDDEN TESTS" not in text


def test_gradebook_csv_and_manifests_agree(graded_class):
    course, _, _, _ = graded_class
    grader("export", ASSIGNMENT, "--course-dir", course)
    book = {student: sum(cells.values()) for student, cells in scores(db(course), ASSIGNMENT).items()}
    assert book == EXPECTED
    with open(course / "exports" / ASSIGNMENT / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    assert {r["student_id"]: float(r["score"]) for r in rows} == EXPECTED
    assert len(rows) == len(EXPECTED)  # one row per student
    with open(course / "exports" / ASSIGNMENT / "exercises.csv") as f:
        breakdown = {r["student_id"]: r for r in csv.DictReader(f)}
    assert {s: float(r["score"]) for s, r in breakdown.items()} == EXPECTED
    assert breakdown["partial"]["01_forward:relu"] == "1" and breakdown["partial"]["01_forward:sigmoid"] == "0"


def test_report_names_the_hard_exercises(graded_class):
    course, _, _, _ = graded_class
    done = grader("report", ASSIGNMENT, "--json", "--course-dir", course)
    report = json.loads(done.stdout)
    assert report["students"] == len(STUDENTS)
    stats = {e["name"]: e for e in report["exercises"]}
    # relu fails for "untouched" and the four unusable files (invalid JSON, empty, not a notebook,
    # wrong assignment); "partial" answered it
    assert stats["relu"]["passed_share"] == pytest.approx(15 / 20)
    assert stats["sigmoid"]["passed_share"] == pytest.approx(13 / 20)  # also "partial" and "infinite_loop"
    assert stats["cross_entropy"]["common_hint"]
    assert Path(report["histogram"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_grades_only_what_changed_and_keeps_every_grade(graded_class):
    course, submitted, _, _ = graded_class
    before = scores(db(course), ASSIGNMENT)
    changed = submitted / "untouched" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    changed.write_bytes((ROOT / "solutions/01_forward/01_forward.ipynb").read_bytes())
    done = grader("autograde", ASSIGNMENT, submitted, "--json", "--course-dir", course, *LIMITS)
    summary = {row["student"]: row for row in json.loads(done.stdout)}
    assert [s for s, row in summary.items() if row["status"] == "graded"] == ["untouched"]
    after = scores(db(course), ASSIGNMENT)
    assert sum(after["untouched"].values()) == 10
    assert {s: v for s, v in after.items() if s != "untouched"} == {s: v for s, v in before.items() if s != "untouched"}


def test_jobs_1_gives_the_same_grades_as_jobs_2(graded_class, tmp_path):
    course2 = make_course(tmp_path / "course")
    subset = [s for s in STUDENTS if s.name in ("correct", "partial", "invalid_json", "kernel_exit", "memory_bomb",
                                                  "reordered_cells", "noisy_but_correct")]
    submitted = write_class(tmp_path / "submitted", subset)
    grader("autograde", ASSIGNMENT, submitted, "--jobs", "1", "--course-dir", course2, *LIMITS)
    one = scores(db(course2), ASSIGNMENT)
    two = scores(db(graded_class[0]), ASSIGNMENT)
    assert one == {s.name: two[s.name] for s in subset}


def test_a_killed_run_resumes_without_losing_or_duplicating_grades(tmp_path):
    course = make_course(tmp_path / "course")
    names = ("correct", "partial", "untouched", "noisy_but_correct", "reordered_cells", "deleted_cells")
    submitted = write_class(tmp_path / "submitted", [s for s in STUDENTS if s.name in names])
    cmd = [sys.executable, "-m", "grader.cli", "autograde", ASSIGNMENT, str(submitted), "--jobs", "1",
           "--quiet", "--course-dir", str(course), *LIMITS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((course / "autograded").glob("*/*/grader.json"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = {p.parent.parent.name for p in (course / "autograded").glob("*/*/grader.json")}
    assert 2 <= len(saved) < len(names), "the run should have been killed halfway"
    done = grader("autograde", ASSIGNMENT, submitted, "--json", "--course-dir", course, *LIMITS)
    summary = {row["student"]: row for row in json.loads(done.stdout)}
    assert {s for s, row in summary.items() if row["status"] == "unchanged"} == saved
    assert {s: row["score"] for s, row in summary.items()} == {n: EXPECTED[n] for n in names}
    from nbgrader.api import Gradebook
    with Gradebook(db(course)) as gb:
        assert sorted(s.student_id for s in gb.find_assignment(ASSIGNMENT).submissions) == sorted(names)


def test_lms_zip_downloads_are_graded_by_student(tmp_path):
    course = make_course(tmp_path / "course")
    archive = tmp_path / "downloads.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(ROOT / "solutions/01_forward/01_forward.ipynb", "dana_12345_67890_01_forward.ipynb")
        zf.write(ROOT / "notebooks/01_forward/01_forward.ipynb", "eli_22222_33333_01_forward.ipynb")
    done = grader("autograde", ASSIGNMENT, archive, "--json", "--course-dir", course, *LIMITS)
    assert {row["student"]: row["score"] for row in json.loads(done.stdout)} == {"dana": 10, "eli": 0}


def test_unreadable_submissions_location_is_a_one_line_error(tmp_path):
    course = make_course(tmp_path / "course")
    done = grader("autograde", ASSIGNMENT, tmp_path / "nowhere", "--course-dir", course, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == f"grader autograde: {tmp_path / 'nowhere'}: no such file or folder"


@pytest.mark.parametrize("command", ["check", "release", "autograde", "feedback", "export", "report"])
def test_every_command_has_help(command):
    done = grader(command, "--help")
    assert "usage: grader " + command in done.stdout
