"""Throughput of ``grader autograde --scheduler`` with one and with two local Dask workers.

Grades N copies of the solution of notebook 01 (or of another assignment) on a LocalCluster
of 1, then 2, worker processes (one thread each), into a fresh course and SQLite gradebook
each time, and prints seconds per submission, the speed-up, the cost of the single gradebook
writer, and what that means for a course of 10,000 learners with five notebooks. Other
programs on the machine slow some runs down, so it alternates 1 and 2 workers for a few
rounds and keeps the best time of each (the usual way to time on a busy machine), and it
also counts the CPU seconds the workers and their sandboxes spend per submission, which
other programs do not change: that is what the projection uses.

    .venv/bin/python bench/cluster_scaling.py [--submissions 8] [--rounds 2] [--assignment 01_forward]
        [--writer-db postgresql+psycopg://user@host:port/empty_database]
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COURSE_SUBMISSIONS = 10_000 * 5  # learners x notebooks


def make_course(folder: Path, assignment: str, copies: int) -> tuple[Path, Path]:
    """A course folder and nbgrader's submitted/<student>/<assignment>/ with ``copies`` solutions."""
    from grader.course import copy_course

    course = copy_course(folder / "course")
    solution = (ROOT / "solutions" / assignment / f"{assignment}.ipynb").read_bytes()
    submitted = folder / "submitted"
    for n in range(copies):
        target = submitted / f"learner{n:04d}" / assignment
        target.mkdir(parents=True)
        (target / f"{assignment}.ipynb").write_bytes(solution)
    return course, submitted


def registered_gradebook(assignment: str, scratch: Path) -> Path:
    """A SQLite gradebook with ``assignment`` registered, to copy: registering is a one-off."""
    from grader.grading.gradebook import ensure_assignment

    course, _ = make_course(scratch / "registered", assignment, 0)
    ensure_assignment(course, f"sqlite:///{course / 'gradebook.db'}", assignment)
    return course / "gradebook.db"


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (on a worker: its sandboxes)."""
    import resource
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def grade_on_local_cluster(workers: int, assignment: str, copies: int, gradebook: Path, folder: Path):
    """Wall seconds and worker CPU seconds to grade ``copies`` submissions on ``workers``
    worker processes, and the outcomes."""
    from distributed import LocalCluster

    from grader.grading.autograde import autograde
    from grader.grading.cluster import dask_runner

    course, submitted = make_course(folder, assignment, copies)
    shutil.copy(gradebook, course / "gradebook.db")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, cluster.get_client() as client:
        for module in ("grader.grading.autograde", "grader.grading.grade", "grader.checking.exercises", "grader.grading.cluster"):
            client.run(importlib.import_module, module)  # imports are start-up, not throughput
        cpu_before = client.run(cpu_seconds)
        started = time.monotonic()
        outcomes = autograde(course, assignment, submitted, f"sqlite:///{course / 'gradebook.db'}",
                             runner=dask_runner(cluster.scheduler_address), progress=False)
        seconds = time.monotonic() - started
        cpu = sum(client.run(cpu_seconds)[worker] - before for worker, before in cpu_before.items())
    assert all(o.score == o.max_score for o in outcomes), "a copy of the solution did not get full marks"
    return seconds, cpu, outcomes


def writer_seconds(outcomes, assignment: str, gradebook: Path, folder: Path, db_url: str | None) -> float:
    """Seconds the single writer spends per submission: graded notebooks, gradebook, manifest."""
    from grader.grading.autograde import save
    from grader.grading.gradebook import ensure_assignment

    course, _ = make_course(folder, assignment, 0)
    if db_url:
        ensure_assignment(course, db_url, assignment)
    else:
        shutil.copy(gradebook, course / "gradebook.db")
        db_url = f"sqlite:///{course / 'gradebook.db'}"
    started = time.monotonic()
    for outcome in outcomes:
        save(course, db_url, assignment, outcome)
    return (time.monotonic() - started) / len(outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=8, help="copies of the solution to grade (default 8)")
    parser.add_argument("--rounds", type=int, default=2, help="runs with 1 and 2 workers; the best counts (default 2)")
    parser.add_argument("--assignment", default="01_forward", help="whose solution to grade (default 01_forward)")
    parser.add_argument("--writer-db", help="an empty gradebook database for the writer's timing (default: SQLite)")
    options = parser.parse_args()
    copies, assignment = options.submissions, options.assignment
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # nbgrader runs alembic

    from grader.sandbox import can_isolate

    print(f"machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
          f"load average {os.getloadavg()[0]:.1f} at start, isolated sandbox: {can_isolate()}")
    times: dict[int, list[float]] = {1: [], 2: []}
    cpu_per_submission: list[float] = []
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as scratch:
        gradebook = registered_gradebook(assignment, Path(scratch))
        for round_ in range(options.rounds):
            for workers in (1, 2):
                seconds, cpu, outcomes = grade_on_local_cluster(workers, assignment, copies, gradebook,
                                                                Path(scratch) / f"round{round_}-{workers}")
                times[workers].append(seconds / copies)
                cpu_per_submission.append(cpu / copies)
                print(f"round {round_ + 1}, {workers} worker(s): {copies} submissions in {seconds:.1f} s, "
                      f"{seconds / copies:.2f} s per submission, {cpu / copies:.2f} CPU s per submission "
                      f"(load average {os.getloadavg()[0]:.1f})")
        writer = writer_seconds(outcomes, assignment, gradebook, Path(scratch) / "writer", options.writer_db)
    best = {workers: min(values) for workers, values in times.items()}
    cpu = min(cpu_per_submission)
    core_hours = COURSE_SUBMISSIONS * cpu / 3600
    database = (options.writer_db or "sqlite").split(":")[0].split("+")[0]
    print(f"best: 1 worker {best[1]:.2f} s per submission, 2 workers {best[2]:.2f} s per submission, "
          f"speed-up {best[1] / best[2]:.2f}x")
    print(f"grading: {cpu:.2f} CPU seconds per submission (workers and sandboxes)")
    print(f"gradebook writer ({database}): {writer:.3f} s per submission")
    print(f"projection for {COURSE_SUBMISSIONS:,} submissions (10,000 learners x 5 notebooks like {assignment}):")
    print(f"  grading: {core_hours:.1f} core-hours, {core_hours / 64:.2f} h on 64 worker cores")
    print(f"  writing: {COURSE_SUBMISSIONS * writer / 3600:.1f} h for the one writer, whatever the number of workers")


if __name__ == "__main__":
    main()
