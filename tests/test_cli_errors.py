"""Every command meets bad input with one line on stderr, ``grader COMMAND: WHAT: PROBLEM``,
and exit status 2: never a traceback, never a half-written result."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grader.cli import main
from grader.course import copy_course
from notebook_cases import ROOT

ASSIGNMENT = "01_forward"


def fails(capsys, *argv: str | Path) -> str:
    """Run ``grader ARGV`` here; return its one line of complaint."""
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err.rstrip("\n")


@pytest.fixture
def damaged(tmp_path) -> Path:
    """A course folder whose one graded submission left a truncated manifest."""
    manifest = tmp_path / "autograded" / "alice" / ASSIGNMENT / "grader.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text('{"student": "alice", ')
    return tmp_path


# --- check ---------------------------------------------------------------------------------

def test_check_names_the_file_it_cannot_grade(tmp_path, capsys):
    missing = tmp_path / "nowhere.ipynb"
    assert fails(capsys, "check", missing) == f"grader check: {missing}: no such file"
    broken = tmp_path / "broken.ipynb"
    broken.write_text("{not json")
    assert fails(capsys, "check", broken).startswith(f"grader check: {broken}: invalid JSON (line 1")
    foreign = tmp_path / "foreign.ipynb"
    foreign.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    assert fails(capsys, "check", foreign) == \
        f"grader check: {foreign}: not a notebook of this course (no exercise cells found)"


# --- release -------------------------------------------------------------------------------

def test_release_names_the_assignment_or_folder(tmp_path, capsys):
    assert fails(capsys, "release", "no_such_assignment", "--course-dir", ROOT) == \
        f"grader release: no_such_assignment: no such assignment in {ROOT / 'solutions'}"
    assert fails(capsys, "release", "--course-dir", tmp_path) == \
        f"grader release: {tmp_path / 'solutions'}: no such folder (the instructors' notebooks)"
    (tmp_path / "solutions").mkdir()
    assert fails(capsys, "release", "--course-dir", tmp_path) == \
        f"grader release: {tmp_path / 'nbgrader_config.py'}: no such file (not a course folder)"
    assert not (tmp_path / "notebooks").exists()


# --- autograde -----------------------------------------------------------------------------

def test_autograde_names_the_submissions_it_cannot_read(tmp_path, capsys):
    course = copy_course(tmp_path / "course")
    text = tmp_path / "grades.txt"
    text.write_text("not a zip")
    assert fails(capsys, "autograde", ASSIGNMENT, text, "--course-dir", course, "--quiet") == \
        f"grader autograde: {text}: not a folder or a zip file"
    unsafe = tmp_path / "unsafe.zip"
    with zipfile.ZipFile(unsafe, "w") as zf:
        zf.writestr("../alice_01_forward.ipynb", "{}")
    assert fails(capsys, "autograde", ASSIGNMENT, unsafe, "--course-dir", course, "--quiet") == \
        f"grader autograde: {unsafe}: unsafe path in zip: ../alice_01_forward.ipynb"
    assert fails(capsys, "autograde", "no_such_assignment", tmp_path, "--course-dir", course, "--quiet") == \
        f"grader autograde: {course / 'notebooks' / 'no_such_assignment'}: " \
        "no released notebooks for assignment 'no_such_assignment'"
    assert not (course / "autograded").exists() and not (tmp_path / "alice_01_forward.ipynb").exists()


def test_autograde_names_a_gradebook_it_cannot_open(tmp_path, capsys):
    course = copy_course(tmp_path / "course")
    (tmp_path / "empty").mkdir()
    db = f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'gradebook.db'}"
    assert fails(capsys, "autograde", ASSIGNMENT, tmp_path / "empty", "--course-dir", course, "--db", db,
                 "--quiet") == f"grader autograde: {db}: (sqlite3.OperationalError) unable to open database file"
    secret = "postgresql://grader:hunter2@127.0.0.1:1/grades"
    line = fails(capsys, "autograde", ASSIGNMENT, tmp_path / "empty", "--course-dir", course, "--db", secret, "--quiet")
    assert line.startswith("grader autograde: postgresql://grader:***@127.0.0.1:1/grades: ") and "hunter2" not in line


@pytest.mark.slow
def test_autograde_names_an_assignment_nbgrader_cannot_register(tmp_path, capsys):
    """Released but with no source notebook: nbgrader's generate_assignment fails (it raised
    a RuntimeError with nbgrader's whole log before)."""
    course = copy_course(tmp_path / "course")
    for notebook in (course / "solutions" / ASSIGNMENT).glob("*.ipynb"):
        notebook.unlink()
    (tmp_path / "empty").mkdir()
    line = fails(capsys, "autograde", ASSIGNMENT, tmp_path / "empty", "--course-dir", course, "--quiet")
    assert line.startswith(f"grader autograde: {ASSIGNMENT}: could not register it in the gradebook: ")
    assert "No notebooks were matched" in line


# --- feedback, export, report: read what autograde left --------------------------------------

@pytest.mark.parametrize("command", ["feedback", "export", "report"])
def test_reading_commands_need_graded_submissions(command, tmp_path, capsys):
    assert fails(capsys, command, ASSIGNMENT, "--course-dir", tmp_path) == \
        f"grader {command}: {ASSIGNMENT}: no graded submissions under {tmp_path / 'autograded'}: " \
        "run grader autograde first"
    assert not (tmp_path / "feedback").exists() and not (tmp_path / "exports").exists()


@pytest.mark.parametrize("command", ["feedback", "export", "report"])
def test_reading_commands_name_a_damaged_manifest(command, damaged, capsys):
    manifest = damaged / "autograded" / "alice" / ASSIGNMENT / "grader.json"
    assert fails(capsys, command, ASSIGNMENT, "--course-dir", damaged).startswith(
        f"grader {command}: {manifest}: not a manifest grader autograde wrote (")


# --- resources -----------------------------------------------------------------------------

def test_resources_names_the_catalogue(tmp_path, capsys):
    assert fails(capsys, "resources", "--file", tmp_path / "resources.yaml") == \
        "grader resources: resources.yaml: cannot be read: No such file or directory"
    bad = tmp_path / "resources.yaml"
    bad.write_text("- id: [unclosed\n")
    assert fails(capsys, "resources", "--file", bad).startswith("grader resources: resources.yaml: invalid YAML at line ")


def test_the_installed_command_prints_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "grader.cli", "report", ASSIGNMENT, "--course-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"grader report: {ASSIGNMENT}: no graded submissions under {tmp_path / 'autograded'}: " \
                          "run grader autograde first\n"
