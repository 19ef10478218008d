"""The one results model (grading/results.py): the manifest's exact form, read back unchanged;
the tables and JSON the commands print; the feedback page, escaped. No sandbox."""
from __future__ import annotations

import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from grader.grading import feedback, results
from grader.grading.results import ExerciseResult, NotebookOutcome, SubmissionOutcome

ASSIGNMENT = "01_forward"


def outcome() -> SubmissionOutcome:
    exercises = [ExerciseResult("relu", "ReLU", 1, 1), ExerciseResult("softmax", "Softmax", 0, 2, "sum over axis 1")]
    return SubmissionOutcome("alice", "d1g", [NotebookOutcome(ASSIGNMENT, None, exercises, ["restored 1 cell"], 3.14159)])


def test_the_manifest_is_the_format_autograde_always_wrote(tmp_path):
    folder = results.submission_folder(tmp_path, "alice", ASSIGNMENT)
    folder.mkdir(parents=True)
    results.write_manifest(folder, results.manifest_of(ASSIGNMENT, outcome()))
    written = (folder / "grader.json").read_text()
    assert json.loads(written) == {
        "student": "alice", "assignment": ASSIGNMENT, "digest": "d1g", "score": 1, "max_score": 3,
        "notebooks": [{"name": ASSIGNMENT, "score": 1, "max_score": 3, "notes": ["restored 1 cell"], "seconds": 3.14,
                       "exercises": [{"name": "relu", "title": "ReLU", "points": 1, "max_points": 1, "hint": ""},
                                     {"name": "softmax", "title": "Softmax", "points": 0, "max_points": 2,
                                      "hint": "sum over axis 1"}]}]}
    assert written == json.dumps(json.loads(written), indent=1)
    assert not (folder / "grader.json.tmp").exists()


def test_a_manifest_reads_back_as_the_same_outcome(tmp_path):
    folder = results.submission_folder(tmp_path, "alice", ASSIGNMENT)
    folder.mkdir(parents=True)
    results.write_manifest(folder, results.manifest_of(ASSIGNMENT, outcome()))
    manifest = results.read_manifest(tmp_path, "alice", ASSIGNMENT)
    again = results.outcome_of(manifest)
    assert again.status == "unchanged" and (again.score, again.max_score, again.notes) == (1, 3, ["restored 1 cell"])
    assert again.notebooks[0].exercises == outcome().notebooks[0].exercises
    assert results.read_manifests(tmp_path, ASSIGNMENT) == [manifest]
    assert results.read_manifest(tmp_path, "bob", ASSIGNMENT) is None


def test_the_class_summary_is_what_autograde_json_prints():
    assert results.class_summary([outcome()]) == [
        {"student": "alice", "score": 1, "max_score": 3, "status": "graded", "notes": ["restored 1 cell"]}]


def test_one_table_printer():
    table = results.format_table([("student", "score", "notes"), ("alice", "1/3", ""), ("bartholomew", "3/3", "late")])
    assert table.splitlines() == ["student      score  notes",
                                  "-----------  -----  -----",
                                  "alice        1/3",
                                  "bartholomew  3/3    late"]


def test_the_feedback_page_escapes_everything_a_student_wrote():
    manifest = results.manifest_of(ASSIGNMENT, outcome())
    manifest["student"] = "<img src=x onerror=alert(1)>"
    notebook = manifest["notebooks"][0]
    notebook["exercises"][1]["hint"] = 'a "quoted" <b>hint</b>'
    graded = new_notebook(cells=[new_code_cell("print('</pre><script>alert(2)</script>')",
                                               metadata={"nbgrader": {"grade_id": "relu_answer", "solution": True}},
                                               outputs=[nbformat.v4.new_output("stream", text="<script>x</script>")])])
    page = feedback.render(manifest, notebook, graded)
    assert "<script>" not in page and "<img" not in page and "<b>hint" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;/pre&gt;&lt;script&gt;" in page
    assert "Score: 1 / 3" in page and '<td class="fail">fail</td>' in page and '<td class="pass">pass</td>' in page
    assert "<code>relu_answer</code>" in page and "Output:" in page
