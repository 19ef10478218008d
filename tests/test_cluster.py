"""`grader autograde --scheduler` on a real Dask cluster, into a real PostgreSQL gradebook.

The same submissions get the same grades as a local run into SQLite; a worker killed
mid-batch loses and duplicates nothing; the scheduler going away is a one-line error and a
re-run resumes. PostgreSQL comes from Debian's package (tests/ensure_postgres.sh installs it).
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.grading import autograde, cluster
from grader.cli import main
from grader.grading.gradebook import ensure_assignment, scores
from grader.sandbox import SANDBOX_UID_BASE
from notebook_cases import ROOT, make_course
from sample_class import ASSIGNMENT, STUDENTS, write_class

LIMITS = ["--cell-timeout", "4", "--notebook-timeout", "60"]
SUBSET = [s for s in STUDENTS if s.name in ("correct", "partial", "invalid_json", "kernel_exit", "noisy_but_correct",
                                              "reordered_cells")]
EXPECTED = {s.name: s.score for s in SUBSET}
SCRIPTS = Path(sys.executable).parent  # dask, alembic


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A throwaway PostgreSQL server: its own data folder, 127.0.0.1 and a free port."""

    def __init__(self):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
        assert found, "PostgreSQL is not installed: run tests/ensure_postgres.sh"
        self.bin = found[-1].parent
        self.folder = Path(tempfile.mkdtemp(prefix="grader-pg-"))  # not under pytest's root-only tmp
        self.port = free_port()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # initdb refuses root
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres")

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_owner, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> "PostgresServer":
        data = self.folder / "data"
        self._run(str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.folder} "
                   "-c fsync=off -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.folder / "log"), "-w", "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str, database: str = "postgres") -> list[tuple]:
        import psycopg
        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database,
                             autocommit=True) as connection:
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def registered(postgres, tmp_path_factory):
    """A PostgreSQL gradebook with the assignment registered through nbgrader (alembic and
    all); each test grades into a copy of it (CREATE DATABASE ... TEMPLATE, instant)."""
    postgres.sql("CREATE DATABASE registered")
    ensure_assignment(make_course(tmp_path_factory.mktemp("register")), postgres.url("registered"), ASSIGNMENT)
    copies = iter(range(1000))

    def gradebook() -> str:
        name = f"course{next(copies)}"
        postgres.sql(f"CREATE DATABASE {name} TEMPLATE registered")
        return postgres.url(name)
    return gradebook


@pytest.fixture(scope="module")
def dask_cluster():
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as local:
        yield local


def in_background(action, *args):
    """Run ``action`` in a thread (while the test thread runs the grader); ``.result()`` waits."""
    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(action, *args)
    pool.shutdown(wait=False)
    return future


def manifests(course: Path) -> set[str]:
    return {p.parent.parent.name for p in (course / "autograded").glob(f"*/{ASSIGNMENT}/grader.json")}


def wait_for_first_manifest(course: Path, timeout=240) -> None:
    deadline = time.monotonic() + timeout
    while not manifests(course):
        assert time.monotonic() < deadline, f"no submission saved after {timeout} s"
        time.sleep(0.05)


def submissions_in(db_url: str) -> list[str]:
    from nbgrader.api import Gradebook
    with Gradebook(db_url) as gb:
        return sorted(s.student_id for s in gb.find_assignment(ASSIGNMENT).submissions)


def totals(db_url: str) -> dict[str, float]:
    return {student: sum(cells.values()) for student, cells in scores(db_url, ASSIGNMENT).items()}


# --- the gradebook on PostgreSQL -----------------------------------------------------------

def alembic_head() -> str:
    """The newest revision of nbgrader's gradebook schema, read from its migration scripts."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR
    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


def test_nbgrader_creates_its_tables_and_alembic_version_on_postgresql(postgres, registered):
    tables = {row[0] for row in postgres.sql("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = 'public'", "registered")}
    assert {"assignment", "notebook", "grade_cells", "submitted_assignment", "grade", "alembic_version"} <= tables
    # generate_assignment registered notebook 01's ten points in its grade cells
    assert postgres.sql("SELECT sum(max_score) FROM grade_cells", "registered") == [(10.0,)]
    assert postgres.sql("SELECT version_num FROM alembic_version", "registered") == [(alembic_head(),)]


# --- the cluster: the local grades, each exactly once, even when a worker dies ------------------

def kill_a_busy_worker(client, course: Path) -> list[str]:
    """Once the first grade is saved, SIGKILL a worker process that is grading; its task keys."""
    wait_for_first_manifest(course)
    busy = {worker: keys for worker, keys in client.processing().items() if keys}
    assert busy, "no worker was grading when the first grade was saved"
    victim, keys = next(iter(busy.items()))
    os.kill(client.run(os.getpid, workers=[victim])[victim], signal.SIGKILL)
    return keys


def test_the_cluster_gives_the_local_grades_each_once_even_when_a_worker_dies(tmp_path, capsys, monkeypatch,
                                                                                registered, dask_cluster):
    import nbgrader.api
    from distributed import Client

    # The local SQLite run is the oracle: spare it nbgrader's `alembic heads` subprocess (same answer).
    monkeypatch.setattr(nbgrader.api, "get_alembic_version", alembic_head)
    submitted = write_class(tmp_path / "submitted", SUBSET)
    local = make_course(tmp_path / "local")
    assert main(["autograde", ASSIGNMENT, str(submitted), "--jobs", "2", "--quiet", "--course-dir", str(local),
                 *LIMITS]) == 0
    on_sqlite = scores(f"sqlite:///{local / 'gradebook.db'}", ASSIGNMENT)
    capsys.readouterr()

    remote, db_url = make_course(tmp_path / "remote"), registered()
    address = dask_cluster.scheduler_address
    with Client(address, set_as_default=False) as client:
        pids_before = set(client.run(os.getpid).values())
        killer = in_background(kill_a_busy_worker, client, remote)
        code = main(["autograde", ASSIGNMENT, str(submitted), "--scheduler", address, "--db", db_url, "--json",
                     "--course-dir", str(remote), *LIMITS])
        interrupted = killer.result(timeout=5)
        client.wait_for_workers(2, timeout=60)  # the nanny restarts the killed worker
        pids_after = set(client.run(os.getpid).values())
    out, err = capsys.readouterr()
    assert code == 0, err
    assert interrupted and len(pids_before - pids_after) == 1  # one worker died while grading

    assert scores(db_url, ASSIGNMENT) == on_sqlite  # every grade cell of every student, as locally
    assert totals(db_url) == EXPECTED
    summary = json.loads(out)
    assert sorted(row["student"] for row in summary) == sorted(EXPECTED)  # one row each
    assert all(row["status"] == "graded" for row in summary)
    saved = re.findall(r"\] (\d+)/6 graded, .*\((\w+): ", err)  # the writer prints one line per saved outcome
    assert [int(n) for n, _ in saved] == list(range(1, 7))
    assert sorted(student for _, student in saved) == sorted(EXPECTED)
    assert submissions_in(db_url) == sorted(EXPECTED)  # one submission per student
    assert manifests(remote) == set(EXPECTED)


def test_a_task_that_fails_on_the_cluster_is_named_and_the_others_still_arrive(dask_cluster):
    release = (ROOT / "notebooks" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    unusable = autograde.GradeTask("dana", ASSIGNMENT, "d1", {ASSIGNMENT: ("dana.ipynb", b'{"cells": [')},
                                   {ASSIGNMENT: release})
    # a notebook this course does not have: grade_submission raises on the worker (a grader bug, say)
    broken = autograde.GradeTask("eli", ASSIGNMENT, "e1", {"99_unknown": ("eli.ipynb", b"{}")}, {"99_unknown": release})
    arrived = []
    with pytest.raises(ConnectionError) as failure:
        for outcome in cluster.dask_runner(dask_cluster.scheduler_address)([broken, unusable]):
            arrived.append((outcome.student, outcome.score))
    assert arrived == [("dana", 0)]
    assert str(failure.value) == (f"1 submission(s) could not be graded on the Dask cluster at "
                                  f"{dask_cluster.scheduler_address} (eli: KeyError: '99_unknown'); "
                                  "the others are saved; re-run to retry these")


# --- the scheduler goes away --------------------------------------------------------------------

@pytest.fixture
def doomed_scheduler():
    """A scheduler and one worker started with Dask's own commands, as on real machines."""
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = subprocess.Popen([SCRIPTS / "dask", "scheduler", "--host", "127.0.0.1", "--port",
                                  address.rsplit(":", 1)[1], "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([SCRIPTS / "dask", "worker", address, "--nworkers", "1", "--nthreads", "1",
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from distributed import Client
        with Client(address, timeout=120, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=120)
        yield address, scheduler
    finally:
        for proc in (worker, scheduler):
            proc.terminate()  # lets `dask worker` stop its worker process too
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def stop_after_first_grade(course: Path, scheduler) -> None:
    wait_for_first_manifest(course)
    scheduler.terminate()  # SIGTERM: the scheduler shuts down
    scheduler.wait(timeout=30)


def test_losing_the_scheduler_is_one_line_and_a_rerun_resumes(tmp_path, capsys, registered, dask_cluster,
                                                              doomed_scheduler):
    import dask

    address, scheduler = doomed_scheduler
    course, db_url = make_course(tmp_path / "course"), registered()
    names = ("correct", "partial", "kernel_exit")
    submitted = write_class(tmp_path / "submitted", [s for s in SUBSET if s.name in names])
    args = ["autograde", ASSIGNMENT, str(submitted), "--db", db_url, "--quiet", "--course-dir", str(course), *LIMITS]
    stopper = in_background(stop_after_first_grade, course, scheduler)
    code = main([*args, "--scheduler", address])
    stopper.result(timeout=30)
    _, err = capsys.readouterr()
    assert code == 2
    assert re.fullmatch(rf"grader autograde: lost the Dask scheduler at {re.escape(address)}: .+; "
                        r"re-run to resume\n", err), err
    saved = manifests(course)
    assert 1 <= len(saved) < len(names)
    assert submissions_in(db_url) == sorted(saved)  # what was saved is in the gradebook, nothing else

    started = time.monotonic()
    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}):
        code = main([*args, "--scheduler", address])  # the scheduler is still down
    _, err = capsys.readouterr()
    assert code == 2 and time.monotonic() - started < 30
    assert re.fullmatch(rf"grader autograde: cannot reach the Dask scheduler at {re.escape(address)}: .+\n", err), err

    assert main([*args, "--json", "--scheduler", dask_cluster.scheduler_address]) == 0  # a scheduler is back
    summary = {row["student"]: row for row in json.loads(capsys.readouterr().out)}
    assert {s for s, row in summary.items() if row["status"] == "unchanged"} == saved
    assert {s: row["score"] for s, row in summary.items()} == {n: EXPECTED[n] for n in names}
    assert submissions_in(db_url) == sorted(names)
    assert totals(db_url) == {n: EXPECTED[n] for n in names}


# --- sandbox slots ----------------------------------------------------------------------------------

HOLD_A_SLOT = ("import time\nfrom grader.grading.cluster import sandbox_slot\n"
               "with sandbox_slot() as slot:\n    print(slot, flush=True)\n    time.sleep(120)\n")


def test_two_gradings_on_one_machine_never_share_a_sandbox_uid(monkeypatch):
    other = subprocess.Popen([sys.executable, "-c", HOLD_A_SLOT], stdout=subprocess.PIPE, text=True)
    try:
        taken = int(other.stdout.readline())
        used = []
        monkeypatch.setattr(autograde, "grade_submission", lambda task, slot: used.append(slot))
        cluster.grade_on_worker(None)
        assert used and used[0] != taken  # another process holds that slot
    finally:
        other.kill()
        other.wait()
    # the kernel frees the slot of a process that was killed
    freed = cluster._claim(taken)
    assert freed is not None
    freed.close()


def test_a_worker_with_another_version_of_the_grader_refuses_to_grade():
    assert re.fullmatch(r"[0-9a-f]{12}", cluster.package_fingerprint())
    with pytest.raises(RuntimeError, match=r"another version of the course package \([0-9a-f]{12}, "
                                           r"the instructor's is 000000000000\)"):
        cluster.grade_on_worker(None, "000000000000")


def test_a_slot_whose_uid_still_runs_a_process_is_skipped(monkeypatch):
    assert os.getuid() in cluster._uids_running()  # read from /proc, like a sandbox's uid
    with cluster.sandbox_slot() as lowest:
        pass
    # as if a killed worker had left its sandbox running under that slot's uid
    monkeypatch.setattr(cluster, "_uids_running", lambda: {SANDBOX_UID_BASE + lowest})
    with cluster.sandbox_slot() as slot:
        assert slot != lowest
