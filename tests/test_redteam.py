"""The red-team suite: every attack scores no more than its honest content earns, the batch
finishes, and the gradebook and every other student's grade stay exactly as they were."""
from __future__ import annotations

import json
import socket
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from grader.checking import exercises
from grader import sandbox
from grader.course import release_notebook
from grader.grading.grade import grade_notebook
from grader.grading.gradebook import scores
from grader.grading.notebooks_io import grade_id, is_answer
from notebook_cases import ROOT, make_course
from redteam import ATTACKS
from test_autograde import LIMITS, db, grader

ASSIGNMENT = "01_forward"
SOLUTION = ROOT / "solutions/01_forward/01_forward.ipynb"
RELEASE = ROOT / "notebooks/01_forward/01_forward.ipynb"


def build(attack, placeholders) -> nbformat.NotebookNode:
    base = attack.base
    nb = nbformat.read(SOLUTION if base == "solution" else RELEASE, as_version=4)
    if base == "solution_first_two":
        solution = nbformat.read(SOLUTION, as_version=4)
        answers = {grade_id(c): c.source for c in solution.cells if is_answer(c)}
        for cell in nb.cells:
            if is_answer(cell) and grade_id(cell) in ("relu", "sigmoid"):
                cell.source = answers[grade_id(cell)]
    target = next(c for c in nb.cells if is_answer(c) and grade_id(c) == attack.cell)
    code = attack.code
    for key, value in placeholders.items():
        code = code.replace("{" + key + "}", str(value))
    target.source = code.strip() + "\n"
    return nb


class Listener:
    """A TCP server on the host's loopback that records any connection the sandbox makes."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen()
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.server.accept()
                self.connections += 1
                conn.close()
            except OSError:
                continue

    def close(self):
        self.stopped.set()
        self.thread.join()
        self.server.close()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    assert sandbox.can_isolate(), "the red-team suite needs the isolated sandbox (root, Linux namespaces)"
    base = tmp_path_factory.mktemp("redteam")
    course = make_course(base / "course")
    submitted = base / "submitted"
    for student, source in (("victim", SOLUTION), ("victim_partial", RELEASE)):
        (submitted / student / ASSIGNMENT).mkdir(parents=True)
        (submitted / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_bytes(source.read_bytes())
    grader("autograde", ASSIGNMENT, submitted, "--course-dir", course, "--quiet", *LIMITS)
    before = scores(db(course), ASSIGNMENT)
    manifests = {p: p.read_bytes() for p in (course / "autograded").rglob("grader.json")}

    listener = Listener()
    canary = base / "canary"
    placeholders = {"ROOT": ROOT, "COURSE": course, "CANARY": canary, "PORT": listener.port}
    notebooks = {}
    for attack in ATTACKS:
        nb = build(attack, placeholders)
        notebooks[attack.name] = nb
        (submitted / attack.name / ASSIGNMENT).mkdir(parents=True)
        nbformat.write(nb, submitted / attack.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    done = grader("autograde", ASSIGNMENT, submitted, "--jobs", "2", "--json", "--course-dir", course, *LIMITS)
    listener.close()
    summary = {row["student"]: row for row in json.loads(done.stdout)}
    return {"course": course, "summary": summary, "before": before, "manifests": manifests, "canary": canary,
            "listener": listener, "notebooks": notebooks}


def test_at_least_20_attacks():
    assert len(ATTACKS) >= 20 and len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_scores_what_its_honest_part_earns(attacked, attack):
    assert attacked["summary"][attack.name]["score"] == attack.score


def test_other_students_grades_are_untouched(attacked):
    summary, before = attacked["summary"], attacked["before"]
    assert summary["victim"]["status"] == summary["victim_partial"]["status"] == "unchanged"
    after = scores(db(attacked["course"]), ASSIGNMENT)
    assert {s: after[s] for s in before} == before
    assert sum(before["victim"].values()) == 10
    for path, content in attacked["manifests"].items():
        assert path.read_bytes() == content


def test_the_gradebook_is_intact_and_holds_only_the_grader_writes(attacked):
    book = attacked["course"] / "gradebook.db"
    with sqlite3.connect(book) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        top = conn.execute("SELECT MAX(auto_score) FROM grade").fetchone()[0]
    assert top <= 2  # no grade above an exercise's points (the largest is 2)


def test_nothing_escaped_the_sandbox(attacked):
    assert not attacked["canary"].exists()
    assert not Path(str(attacked["canary"]).replace("/tmp/../", "/")).exists()
    assert attacked["listener"].connections == 0


def test_feedback_for_attackers_is_bounded(attacked):
    for path in (attacked["course"] / "autograded").glob("*/01_forward/01_forward.ipynb"):
        assert path.stat().st_size < 2_000_000, f"{path} is {path.stat().st_size} bytes"


def test_grader_check_agrees_with_autograde(attacked):
    spec = exercises.notebook_spec(ASSIGNMENT)
    template = release_notebook(ROOT, ASSIGNMENT)
    limits = sandbox.Limits(cell_timeout=4, notebook_timeout=60)

    def check(name):
        return name, grade_notebook(attacked["notebooks"][name], template, spec, seed=11, limits=limits).score

    with ThreadPoolExecutor(max_workers=2) as pool:
        checked = dict(pool.map(check, attacked["notebooks"]))
    assert checked == {name: attacked["summary"][name]["score"] for name in checked}
