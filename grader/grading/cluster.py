"""Grading on a Dask cluster: ``grader autograde --scheduler tcp://HOST:PORT``.

Each submission travels to a worker by value, inside its ``GradeTask`` (notebook bytes and
release templates), so the workers need the course package but no shared file system. A
worker grades it with ``grade_submission`` and sends back the outcome; this process stays
the only writer of the autograded files, the gradebook and the manifests.

What can go wrong, and what happens then:

- A worker dies mid-task: the scheduler reruns its tasks on another worker (up to
  ``distributed.scheduler.allowed-failures`` times), and this client receives each result
  once, so each submission is saved once.
- The scheduler goes away: a ``ConnectionError`` that says so in one line. Everything saved
  so far stays saved, and the manifests make a re-run skip it, so the re-run resumes.
- A task fails (a worker with another version of the course package, a bug, a submission
  that kills every worker it runs on): the other submissions are still graded and saved,
  then one line names the ones that were not.

Sandbox uids: every grading holds a slot on its machine while it runs (``sandbox_slot``), so
two sandboxes on one machine never share a uid, whatever the number of worker processes,
threads per worker or worker names.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from grader.sandbox import SANDBOX_UID_BASE

if TYPE_CHECKING:
    from .autograde import GradeTask
    from .results import SubmissionOutcome

MAX_SLOTS = 1024
TASKS_PER_THREAD = 4  # tasks handed to the scheduler ahead of the workers: enough to keep them busy


class ClusterError(ConnectionError):
    """The cluster could not grade the batch; the message is one line for the instructor."""


# --- on the worker ---------------------------------------------------------------------------

def _slot_socket_name(slot: int) -> str:
    # An abstract Unix socket: machine-wide (per network namespace), and the kernel frees the
    # name the moment its holder exits, even when the holder is killed.
    return f"\0ai-foundations-grader-sandbox-slot-{slot}"


def _uids_running() -> set[int]:
    """Real uids of the processes on this machine (a sandbox orphaned by a killed worker
    keeps running under its slot's uid until its own limits end it)."""
    uids = set()
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            line = next(text for text in status.read_text().splitlines() if text.startswith("Uid:"))
            uids.add(int(line.split()[1]))
        except (OSError, StopIteration, ValueError, IndexError):
            continue  # the process ended while we looked
    return uids


def _claim(slot: int) -> socket.socket | None:
    """The socket that holds ``slot`` for this process, or None if another process holds it."""
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        holder.bind(_slot_socket_name(slot))
    except OSError:
        holder.close()
        return None
    return holder


@contextmanager
def sandbox_slot() -> Iterator[int]:
    """Hold the lowest sandbox slot that no other grading on this machine is using."""
    busy = _uids_running()
    for slot in range(MAX_SLOTS):
        holder = None if SANDBOX_UID_BASE + slot in busy else _claim(slot)
        if holder is None:
            continue
        try:
            yield slot
        finally:
            holder.close()
        return
    raise RuntimeError(f"all {MAX_SLOTS} sandbox slots of this machine are in use")


# What decides a grade: the parts that check, run and grade notebooks. The site's build code and
# the resource catalogue are left out, so editing either never makes a worker refuse to grade.
GRADING_PARTS = ("checking", "sandbox", "grading", "course.py", "notebook.py")


@functools.lru_cache(maxsize=1)
def package_fingerprint() -> str:
    """A hash of the grading code (``GRADING_PARTS``). A worker with another version could give the
    same notebook other points, so each task carries the instructor's fingerprint and a worker
    that differs refuses to grade."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for part in GRADING_PARTS:
        files = [package / part] if (package / part).is_file() else sorted((package / part).rglob("*"))
        for path in files:
            inside = path.relative_to(package).parts
            if path.suffix in (".py", ".json") and "__pycache__" not in inside:
                digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def grade_on_worker(task: GradeTask, fingerprint: str | None = None) -> SubmissionOutcome:
    """The Dask task: grade one submission in a sandbox slot of its own."""
    from .autograde import grade_submission

    if fingerprint and fingerprint != package_fingerprint():
        raise RuntimeError(f"the worker on {socket.gethostname()} has another version of the course package "
                           f"({package_fingerprint()}, the instructor's is {fingerprint}); "
                           "install the same version on every machine")
    with sandbox_slot() as slot:
        return grade_submission(task, slot=slot)


# --- on the instructor's machine --------------------------------------------------------------

def dask_runner(address: str):
    """A runner for ``autograde``: grades the tasks on the Dask scheduler at ``address`` and
    yields the outcomes as they finish. Connects only when called, so that connection errors
    arise inside ``autograde`` (as ``ConnectionError``) like any other. How long to wait for
    the scheduler is Dask's ``distributed.comm.timeouts.connect`` (30 s; environment variable
    DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT)."""

    def run(tasks: list[GradeTask]) -> Iterator[SubmissionOutcome]:
        with _dask_logs_silenced():
            client = _connect(address)
            try:
                yield from _grade_all(client, address, tasks)
            finally:
                _close_quietly(client)
    return run


@contextmanager
def _dask_logs_silenced():
    """Dask's client logs tracebacks while it retries a lost scheduler; our one line says it all."""
    import distributed  # noqa: F401 - importing it sets up the loggers silenced here
    loggers = [logging.getLogger(name) for name in ["distributed", *logging.root.manager.loggerDict]
               if name.split(".")[0] == "distributed"]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _connect(address: str):
    from distributed import Client

    try:
        client = Client(address, set_as_default=False)
    except (OSError, ValueError, TypeError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {_one_line(error)}") from None
    if not client.scheduler_info().get("workers"):
        print(f"grader autograde: no Dask workers at {address} yet; waiting for one to join", file=sys.stderr)
    return client


def _grade_all(client, address: str, tasks: list[GradeTask]) -> Iterator[SubmissionOutcome]:
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:8]  # two instructors grading at once never share a task key
    fingerprint = package_fingerprint()
    waiting = list(reversed(tasks))  # popped from the end: the first task goes first
    in_flight = as_completed(loop=client.loop)
    students: dict[str, str] = {}  # task key -> student
    failed: list[str] = []

    def top_up() -> None:
        """Keep a few tasks per worker thread at the scheduler, not all 50,000 at once."""
        if not waiting:
            return
        ahead = max(8, TASKS_PER_THREAD * sum(client.nthreads().values()))
        while waiting and in_flight.count() < ahead:
            task = waiting.pop()
            key = f"grade-{task.assignment}-{task.student}-{run_id}"
            students[key] = task.student
            in_flight.add(client.submit(grade_on_worker, task, fingerprint, key=key, pure=False))

    try:
        top_up()
        for future in in_flight:
            if future.status == "finished":
                yield future.result()
            elif future.status == "cancelled" or client.status not in ("running", "connecting"):
                raise ClusterError(f"lost the Dask scheduler at {address}: {_cancel_reason(future)}; "
                                   "re-run to resume")
            else:  # the task raised, or killed its workers too often (KilledWorker)
                failed.append(f"{students[future.key]}: {_one_line(future.exception())}")
            top_up()
    except ClusterError:
        raise
    except (OSError, TimeoutError) as error:  # the scheduler vanished while we talked to it
        raise ClusterError(f"lost the Dask scheduler at {address}: {_one_line(error)}; re-run to resume") from None
    if failed:
        raise ClusterError(f"{len(failed)} submission(s) could not be graded on the Dask cluster at {address} "
                           f"({'; '.join(failed[:3])}{'; ...' if len(failed) > 3 else ''}); "
                           "the others are saved; re-run to retry these")


def _cancel_reason(future) -> str:
    try:
        future.result(timeout=1)
    except Exception as error:  # noqa: BLE001 - whatever Dask says, we only want its words
        return _one_line(getattr(error, "reason", None) or error)
    return "the task was cancelled"


def _one_line(error) -> str:
    text = str(error).strip().splitlines()
    words = text[0] if text else ""
    return f"{type(error).__name__}: {words}" if isinstance(error, BaseException) else words


def _close_quietly(client) -> None:
    try:
        client.close(timeout=5)
    except Exception:  # noqa: BLE001 - closing after the scheduler vanished may fail any way
        pass
