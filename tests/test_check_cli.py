"""``grader check``: the table, the exit status, and one-line errors for unusable input."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nbformat

import pytest

from grader.checking.judge import NOT_DONE
from notebook_cases import ROOT, with_answers

SOLUTION = ROOT / "solutions/01_forward/01_forward.ipynb"
RELEASE = ROOT / "notebooks/01_forward/01_forward.ipynb"
EXERCISES = ["relu", "sigmoid", "softmax", "dense_forward", "mse_loss", "cross_entropy", "mlp_forward"]
POINTS = {"relu": 1, "sigmoid": 1, "softmax": 2, "dense_forward": 1, "mse_loss": 1, "cross_entropy": 2, "mlp_forward": 2}


def grader_check(*args):
    return subprocess.run(["grader", "check", *map(str, args)], capture_output=True, text=True, timeout=300)


def table_rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        parts = line.split(None, 3)
        if parts and parts[0] in EXERCISES:
            rows[parts[0]] = parts[1:]
    return rows


def test_solution_passes_every_exercise_with_exit_0():
    done = grader_check(SOLUTION)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = table_rows(done.stdout)
    assert rows == {name: [f"{p}/{p}", "pass"] for name, p in POINTS.items()}
    assert "total: 10/10" in done.stdout


def test_release_fails_every_exercise_with_0_points_and_exit_1():
    done = grader_check(RELEASE)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = table_rows(done.stdout)
    assert rows == {name: [f"0/{p}", "FAIL", NOT_DONE] for name, p in POINTS.items()}
    assert "total: 0/10" in done.stdout


def test_json_output_matches_the_table():
    done = grader_check(RELEASE, "--json")
    report = json.loads(done.stdout)
    assert report["notebook"] == "01_forward" and report["score"] == 0 and report["max_score"] == 10
    assert [e["name"] for e in report["exercises"]] == EXERCISES
    assert all(e["hint"] == NOT_DONE and not e["passed"] for e in report["exercises"])


@pytest.mark.parametrize("content,problem", [
    (None, "no such file"),
    (b"", "the file is empty"),
    (b"{ not json", "invalid JSON (line 1, column 3"),
    (b"[1, 2, 3]", "valid JSON but not a Jupyter notebook"),
    (b'{"hello": "world"}', "valid JSON but not a Jupyter notebook"),
    (b"\xff\xfe\x00binary", "not a notebook (not UTF-8 text)"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}).encode(),
     "not a notebook of this course (no exercise cells found)"),
])
def test_unusable_input_exits_2_with_one_line_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "submission.ipynb"
    if content is not None:
        path.write_bytes(content)
    done = grader_check(path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"grader check: {path}: ")
    assert problem in lines[0]


def test_a_folder_without_notebooks_exits_2(tmp_path):
    done = grader_check(tmp_path)
    assert done.returncode == 2 and done.stderr.strip() == f"grader check: {tmp_path}: a folder with no notebooks (.ipynb) in it"


def test_a_folder_prints_a_table_per_notebook_then_the_course(tmp_path):
    (tmp_path / "a").mkdir()
    shutil.copy(SOLUTION, tmp_path / "a" / "01_forward.ipynb")
    (tmp_path / "b").mkdir()
    shutil.copy(ROOT / "notebooks/02_backprop/02_backprop.ipynb", tmp_path / "b" / "02_backprop.ipynb")
    (tmp_path / "c.ipynb").write_text("{ not json")
    done = grader_check(tmp_path)
    assert done.returncode == 2  # the worst notebook's status: c.ipynb cannot be graded
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"grader check: {tmp_path / 'c.ipynb'}: invalid JSON"), done.stderr
    assert done.stdout.count("exercise ") == 2 and "total: 10/10" in done.stdout and "total: 0/13" in done.stdout
    summary = done.stdout[done.stdout.index("notebook "):].splitlines()
    assert summary[2].split() == ["01_forward", "10/10", "7/7", "exercises"]
    assert summary[3].split() == ["02_backprop", "0/13", "0/8", "exercises"]
    assert summary[4].split() == [str(tmp_path / "c.ipynb"), "-", "cannot", "be", "graded"]
    assert "course total: 10/23" in summary
    assert f"next: 02_backprop, relu_backward: {NOT_DONE}" in summary


def test_several_notebooks_as_json_exit_1_for_a_failure(tmp_path):
    done = grader_check(SOLUTION, RELEASE, "--json")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert [n["score"] for n in report["notebooks"]] == [10, 0]
    assert report["score"] == 10 and report["max_score"] == 20 and report["unusable"] == []
    assert report["next"] == {"notebook": "01_forward", "exercise": "relu", "hint": NOT_DONE}


def test_python_dash_m_grader_works_without_activating_anything():
    done = subprocess.run([sys.executable, "-m", "grader", "check", str(RELEASE)], capture_output=True, text=True,
                          timeout=300, cwd="/")
    assert done.returncode == 1 and "total: 0/10" in done.stdout


CRASHING_DENSE_BACKWARD = """def dense_backward(dout, x, W):
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=2)
    return dx, dW, db
"""


def test_an_exception_names_the_learners_line_and_a_failing_dependency(tmp_path):
    path = tmp_path / "02.ipynb"
    nbformat.write(with_answers("02_backprop", {"dense_backward": CRASHING_DENSE_BACKWARD}), path)
    done = grader_check(path, "--json")
    hints = {e["name"]: e["hint"] for e in json.loads(done.stdout)["exercises"]}
    crash = ("line 4 of your dense_backward cell, `db = dout.sum(axis=2)`: "
             "AxisError: axis 2 is out of bounds for array of dimension 2")
    assert hints["dense_backward"] == crash
    assert hints["mlp_backward"] == ("mlp_backward calls dense_backward, which fails its own check: "
                                     f"fix dense_backward first (dense_backward: {crash})")
    assert hints["relu_backward"] == ""


def test_a_learners_copy_anywhere_is_checked_against_the_course(tmp_path):
    copy = tmp_path / "my work.ipynb"
    shutil.copy(SOLUTION, copy)
    done = grader_check(copy)
    assert done.returncode == 0 and "total: 10/10" in done.stdout
