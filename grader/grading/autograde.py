"""``grader autograde``: a whole class, in parallel, resumable, one gradebook writer.

Each submission is graded by a worker as one pure task (files in, graded notebooks and
verdicts out: ``grade_submission``). Only this process writes: the autograded notebooks,
the gradebook (through nbgrader's SaveAutoGrades) and, last, a small manifest per student.
A re-run skips every submission whose files have not changed since its manifest was written,
so a run killed halfway resumes where it stopped, and nothing saved is lost or counted twice.

One submission never stops the batch: anything that goes wrong while grading it (MemoryError,
RecursionError, a bug) becomes its own failure, with the reason in its feedback and in the
summary. Each submission is graded in a worker process of its own; one that kills its worker
is graded once more in a fresh one, then recorded as failed, and saved like any other
outcome, so the next run does not try it again until its files change.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import multiprocessing.forkserver
import os
import signal
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path

from . import startup  # noqa: F401 - first: it keeps nbformat's import short (see there)

import nbformat

from grader.checking import exercises
from grader import sandbox
from grader.course import release_notebook, stable_seed
from .gradebook import ensure_assignment, record
from .grade import grade_notebook, unusable
from .notebooks_io import UnusableNotebook, identify, parse_notebook
from .results import (NotebookOutcome, SubmissionOutcome, manifest_of, outcome_of, read_manifest,
                      submission_folder, write_manifest)
from .submissions import Submission, find


@dataclass(frozen=True)
class Overrides:
    """Limits an instructor sets on the command line, over each notebook's own."""

    cell_timeout: float | None = None
    notebook_timeout: float | None = None
    memory_bytes: int | None = None
    threads: int = 0  # math-library threads per notebook; autograde sets cores // jobs

    def limits(self, spec) -> sandbox.Limits:
        return sandbox.Limits(cell_timeout=self.cell_timeout or spec.cell_timeout,
                              notebook_timeout=self.notebook_timeout or spec.notebook_timeout,
                              memory_bytes=self.memory_bytes or spec.memory_bytes, threads=self.threads)


# --- the pure task ------------------------------------------------------------------------

@dataclass(frozen=True)
class GradeTask:
    """Everything needed to grade one submission, by value: it can run on any machine that
    has the course package installed, with no access to the course folder or the gradebook."""

    student: str
    assignment: str
    digest: str
    files: dict[str, tuple[str, bytes | None]]  # notebook name -> (file name, contents or None if absent)
    templates: dict[str, str]                    # notebook name -> released notebook (JSON)
    problems: tuple[str, ...] = ()
    overrides: Overrides = Overrides()


def make_task(root: Path, assignment: str, submission: Submission, overrides: Overrides,
              contents: dict[str, bytes | None] | None = None) -> GradeTask:
    contents = submission.read() if contents is None else contents
    files = {name: (str(path), contents[name]) for name, path in submission.files.items()}
    templates = {name: nbformat.writes(release_notebook(root, name)) for name in submission.files}
    return GradeTask(submission.student, assignment, submission.digest(contents), files, templates,
                     tuple(submission.problems), overrides)


def grader_failure(error: BaseException) -> str:
    """One line for the instructor and the learner: the grader, not the answer, failed."""
    words = " ".join(str(error).split())[:200]
    return f"the grader failed on this submission ({type(error).__name__}{': ' + words if words else ''}); " \
           "it scored 0: ask your instructor to look at it"


def grade_submission(task: GradeTask, slot: int = 0) -> SubmissionOutcome:
    """Grade every notebook of one submission. Never raises for anything the student did:
    whatever goes wrong while grading a notebook is that notebook's failure."""
    outcome = SubmissionOutcome(task.student, task.digest)
    for name, (label, raw) in task.files.items():
        spec = exercises.notebook_spec(name)
        template = nbformat.reads(task.templates[name], as_version=4)
        try:
            if raw is None:
                raise UnusableNotebook(f"{label}: no such file (nothing submitted for {name})")
            nb = parse_notebook(raw, label)
            found = identify(nb)
            if found != name:
                what = f"notebook {found}" if found else "not a notebook of this course"
                raise UnusableNotebook(f"{Path(label).name}: this is {what}, not {name}")
            graded = grade_notebook(nb, template, spec, seed=stable_seed(task.assignment, task.student, name, task.digest),
                                    slot=slot, limits=task.overrides.limits(spec))
        except UnusableNotebook as error:
            graded = unusable(spec, template, str(error))
        except Exception as error:  # noqa: BLE001 - MemoryError, RecursionError, a bug: this submission's failure only
            outcome.failure = outcome.failure or grader_failure(error)
            outcome.status = "failed"
            graded = unusable(spec, template, grader_failure(error))
        notes = list(task.problems) + graded.notes
        outcome.notebooks.append(NotebookOutcome(name, nbformat.writes(graded.notebook) if graded.notebook else None,
                                                 graded.exercises, notes, graded.seconds))
    return outcome


def failed_outcome(task: GradeTask, reason: str) -> SubmissionOutcome:
    """0 points for every exercise of the submission, and ``reason`` in each one's feedback."""
    outcome = SubmissionOutcome(task.student, task.digest, status="failed", failure=reason)
    for name in task.files:
        graded = unusable(exercises.notebook_spec(name), nbformat.reads(task.templates[name], as_version=4), reason)
        outcome.notebooks.append(NotebookOutcome(name, nbformat.writes(graded.notebook), graded.exercises,
                                                 list(task.problems) + graded.notes, 0.0))
    return outcome


# --- the batch ------------------------------------------------------------------------------

def notebooks_of(root: Path, assignment: str) -> list[str]:
    folder = root / "notebooks" / assignment
    names = sorted(p.stem for p in folder.glob("*.ipynb"))
    if not names:
        raise ValueError(f"{folder}: no released notebooks for assignment {assignment!r}")
    return names


def save(root: Path, db_url: str, assignment: str, outcome: SubmissionOutcome) -> None:
    """Autograded notebooks, then the gradebook, then the manifest that marks it done."""
    folder = submission_folder(root, outcome.student, assignment)
    folder.mkdir(parents=True, exist_ok=True)
    graded = {}
    for nb in outcome.notebooks:
        if nb.notebook_json is not None:
            (folder / f"{nb.name}.ipynb").write_text(nb.notebook_json, encoding="utf-8")
            graded[nb.name] = nbformat.reads(nb.notebook_json, as_version=4)
    record(db_url, assignment, outcome.student, graded)
    write_manifest(folder, manifest_of(assignment, outcome))


class Progress:
    """A progress line with the time left, on stderr."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.done, self.started, self.enabled = total, 0, time.monotonic(), enabled
        self.tty = sys.stderr.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done)
        width = 24
        bar = "#" * int(width * self.done / max(self.total, 1))
        line = f"[{bar:<{width}}] {self.done}/{self.total} graded, ~{_duration(left)} left  ({label})"
        print(("\r" + line + "\033[K") if self.tty else line, end="" if self.tty else "\n", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=sys.stderr)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def autograde(root: Path, assignment: str, location: Path, db_url: str, jobs: int | None = None,
              pattern: str | None = None, overrides: Overrides = Overrides(), progress: bool = True,
              runner=None) -> list[SubmissionOutcome]:
    """Grade every new or changed submission; return every student's outcome, unchanged ones too.

    ``runner`` (for a cluster) takes the list of GradeTasks and yields outcomes as they finish;
    by default a local pool of ``jobs`` worker processes does the work.
    """
    root = Path(root).resolve()
    names = notebooks_of(root, assignment)
    if runner is None:
        _start_worker_server(tuple(module for name in names
                                   for module in (exercises.module_of(name), *exercises.notebook_spec(name).judge_imports)))
    if runner is None and not overrides.threads:  # share the cores among the notebooks graded at once
        overrides = replace(overrides, threads=max(1, (os.cpu_count() or 1) // _jobs(jobs)))
    outcomes: dict[str, SubmissionOutcome] = {}
    # A zip is unpacked into scratch; every file is read (once) into the tasks before it goes.
    with tempfile.TemporaryDirectory(prefix="grader-zip-") as scratch:
        found = find(assignment, names, Path(location), scratch=Path(scratch),
                     **({"pattern": pattern} if pattern else {}))
        ensure_assignment(root, db_url, assignment)
        tasks = []
        for submission in found:
            contents = submission.read()
            manifest = read_manifest(root, submission.student, assignment)
            if manifest and manifest.get("digest") == submission.digest(contents):
                outcomes[submission.student] = outcome_of(manifest)
            else:
                tasks.append(make_task(root, assignment, submission, overrides, contents))
    bar = Progress(len(tasks), enabled=progress)
    for outcome in (runner or _local_runner(jobs))(tasks):
        save(root, db_url, assignment, outcome)
        outcomes[outcome.student] = outcome
        bar.step(f"{outcome.student}: {outcome.score:g}/{outcome.max_score}")
    bar.close()
    return [outcomes[s.student] for s in found]


def _jobs(jobs: int | None) -> int:
    return max(1, jobs or os.cpu_count() or 1)


WORKER_ATTEMPTS = 2  # a submission that kills its worker is tried once more, then recorded as failed


def _start_worker_server(modules: tuple[str, ...] = ()) -> None:
    """Start the server the workers are forked from now: it imports the grader, the exercises
    and what their judges need (seconds; see worker_warmup) while this process reads the submissions and the gradebook, instead
    of before the first grade; every worker then starts with all of it imported. Only the
    first call of a process starts it (and decides what it imports)."""
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        ["grader.grading.autograde", "grader.grading.worker_warmup", *modules])
    multiprocessing.forkserver.ensure_running()


def _local_runner(jobs: int | None):
    """Grades each submission in a worker process of its own, ``jobs`` at a time.

    A pool of long-lived workers would lose every submission in flight when one of them
    dies; one process per submission knows exactly which submission its death belongs to.
    The forkserver starts each one with the grader already imported.
    """
    jobs = _jobs(jobs)

    def run(tasks):
        context = multiprocessing.get_context("forkserver")
        _start_worker_server()  # if not yet started: workers start with the grader imported
        waiting = deque((task, 1) for task in tasks)
        free_slots = list(range(jobs - 1, -1, -1))
        next_slot = jobs
        running: dict = {}  # receiving end of the pipe -> (process, task, attempt, slot)
        try:
            while waiting or running:
                while waiting and free_slots:
                    task, attempt = waiting.popleft()
                    slot = free_slots.pop()
                    receiver, sender = context.Pipe(duplex=False)
                    process = context.Process(target=_grade_in_worker, args=(task, slot, sender), daemon=True)
                    process.start()
                    sender.close()
                    running[receiver] = (process, task, attempt, slot)
                for receiver in multiprocessing.connection.wait(list(running)):
                    process, task, attempt, slot = running.pop(receiver)
                    try:
                        outcome = receiver.recv()
                    except (EOFError, OSError):  # the worker died before it answered
                        outcome = None
                    receiver.close()
                    process.join()
                    if outcome is not None:
                        free_slots.append(slot)
                        yield outcome
                        continue
                    # Its sandbox may outlive it under this slot's uid: give the next one a new uid.
                    free_slots.append(next_slot)
                    next_slot += 1
                    reason = _worker_death(process.exitcode)
                    if attempt < WORKER_ATTEMPTS:
                        waiting.appendleft((task, attempt + 1))
                    else:
                        yield failed_outcome(task, f"grading this submission stopped its worker process "
                                                   f"{attempt} times ({reason}); it scored 0: ask your "
                                                   "instructor to look at it")
        finally:
            for process, *_ in running.values():
                process.kill()
    return run


def _grade_in_worker(task: GradeTask, slot: int, sender) -> None:
    try:
        outcome = grade_submission(task, slot=slot)
    except Exception as error:  # noqa: BLE001 - not even the failure of one notebook could be recorded
        outcome = failed_outcome(task, grader_failure(error))
    sender.send(outcome)
    sender.close()


def _worker_death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"
