"""Starts the harness isolated and limited, and survives whatever the notebook does to it.

Isolation (when we are root and ``unshare`` works, as on the course's CI and grading
machines): separate mount, network, PID and IPC namespaces, a root file system holding only
the system and Python (see ``jail.py``), an unprivileged user id per job slot, and limits on
memory, CPU time, processes and file size; with control groups (``contained``), those limits
hold for all the sandbox's processes together and none of them outlives its cell, call or
notebook (``box.py``). Without root (a learner's laptop) the harness runs as the same user
with per-process limits, and ``isolated`` says so.

Distrust: every event line the sandbox writes is validated (``events.py``); one invalid line
fails the submission. Result files are read within budgets (``read_results``).

Survival: the harness logs each cell and call as it starts and ends. A cell that exceeds its
time limit is interrupted; one that ignores the interruption, exhausts memory, kills its own
process (``os._exit``, a segmentation fault) or loops forever is recorded as the cause and
the notebook is re-run *without* it, so every other exercise still earns its points.
"""
from __future__ import annotations

import functools
import io
import json
import math
import os
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

from . import events as protocol
from . import jail, warm
from .box import Box
from .failures import Failure, failure

HERE = Path(__file__).resolve().parent
SANDBOX_UID_BASE = 61000  # job slot N runs as uid 61000 + N: slots cannot signal or starve each other


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 60.0
    notebook_timeout: float = 240.0
    memory_bytes: int = 6 << 30
    processes: int = 512
    file_bytes: int = 64 << 20
    result_bytes: int = 16 << 20  # one call's arrays, as declared in their headers; see read_results
    results_total_bytes: int = 256 << 20  # all calls' arrays together, in the trusted process
    output_chars: int = 20_000
    outputs_total_chars: int = 1_000_000  # all cells' output kept for the graded notebook and feedback
    max_restarts: int = 6
    threads: int = 0  # math-library threads per notebook (0: one per core); see thread_env
    grace: float = 3.0  # after a soft time limit, how long before the process is killed
    scratch_bytes: int = 1 << 30  # /sandbox, a tmpfs: its pages count in memory_bytes too
    events_bytes: int = 32 << 20  # all event lines of one attempt together
    numpy_only: bool = False  # PyTorch and TensorFlow are absent from the sandbox (see jail.hide)
    preload: tuple[str, ...] = ()  # what the slot's warm process imports before forking (see warm.py)


@dataclass
class RunResult:
    cells: dict[int, dict] = field(default_factory=dict)  # index -> {"ok", "error", "stdout"}
    calls: dict[int, dict] = field(default_factory=dict)  # index -> {"outputs"} | {"error"}
    notes: list[str] = field(default_factory=list)
    isolated: bool = False
    contained: bool = False  # every process in one control group, killed at the end (see box.py)
    seconds: float = 0.0
    invalid: str | None = None  # why the sandbox's events were refused: the submission fails
    memory_peak: int | None = None  # bytes, all the sandbox's processes and tmpfs together (contained only)


@functools.lru_cache(maxsize=1)
def can_isolate() -> bool:
    """Whether this machine lets us build the full sandbox (root, namespaces, mount)."""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mount"):
        return False
    if os.environ.get("GRADER_NO_ISOLATION") == "1":
        return False
    probe = subprocess.run(["unshare", *NAMESPACES, "--fork", "--kill-child", "true"],
                           capture_output=True, timeout=20)
    return probe.returncode == 0


NAMESPACES = ("--mount", "--net", "--pid", "--ipc")
# What a NumPy notebook's sandbox does not contain (``Limits.numpy_only``).
FRAMEWORK_PACKAGES = ("torch", "functorch", "torchgen", "tensorflow", "keras", "tf_keras", "jax", "jaxlib")


def framework_paths() -> list[str]:
    """The folders of PyTorch, TensorFlow and their kin on this Python's import path."""
    found = []
    for entry in sys.path:
        for name in FRAMEWORK_PACKAGES:
            path = os.path.join(entry, name)
            if entry and os.path.isdir(path) and not os.path.islink(path):
                found.append(os.path.realpath(path))
    return sorted(set(found))


def python_paths() -> list[str]:
    """Folders the sandbox's Python needs: the installation and the virtual environment."""
    paths = {sys.base_prefix, sys.prefix, os.path.realpath(sys.prefix),  # a virtual environment behind a link
             os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if p and p != "/")


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def thread_env(threads: int) -> dict[str, str]:
    """Thread counts for NumPy's BLAS, PyTorch and TensorFlow inside the sandbox.

    Notebooks graded side by side must not each start a thread per core: on 2 cores two
    sandboxes with 2 threads each spend their time taking the cores from one another.
    """
    count = str(threads or os.cpu_count() or 1)
    return {name: count for name in THREAD_VARIABLES}


def _death_reason(returncode: int | None, killed_for: str | None) -> str:
    if killed_for:
        return killed_for
    if returncode is None:
        return "the process stopped"
    if returncode < 0:
        sig = -returncode
        names = {signal.SIGSEGV: "a segmentation fault", signal.SIGKILL: "being killed (memory exhausted?)",
                 signal.SIGXCPU: "the CPU time limit", signal.SIGXFSZ: "the file size limit",
                 signal.SIGABRT: "an abort", signal.SIGBUS: "a bus error"}
        return f"the process died from {names.get(signal.Signals(sig), signal.Signals(sig).name)}"
    return f"the process exited with status {returncode} (os._exit or similar)"


def jail_options(box: Box, limits: Limits) -> dict:
    """What ``jail.enter`` builds for this sandbox: the same for a cold and a warm start."""
    return {"root": str(box.root), "scratch": str(box.work), "uid": box.uid, "python": sys.executable,
            "expose": python_paths(), "hide": framework_paths() if limits.numpy_only else [],
            "memory": limits.memory_bytes, "cpu": int(limits.notebook_timeout * 2) + 10,
            "nproc": limits.processes, "fsize": limits.file_bytes, "env": thread_env(limits.threads)}


def start_harness(box: Box, limits: Limits, isolated: bool) -> subprocess.Popen | warm.WarmChild:
    """The harness, running in its sandbox: forked by the slot's warm process where it can be
    (isolated only: there the sandbox's uid cannot touch the root-owned warm process), else
    started cold, a new interpreter that imports everything itself."""
    if not isolated:
        return _start_uncontained(box.work, limits)
    options = jail_options(box, limits)
    if warm.enabled():
        child = warm.spawn(box.slot, () if limits.numpy_only else limits.preload,
                           jail.harness_env(options["env"]), options, box.procs_files())
        if child is not None:
            return child
    cmd = ["unshare", *NAMESPACES, "--fork", "--kill-child", sys.executable, "-I", str(HERE / "jail.py")]
    for name in ("root", "scratch", "uid", "python", "memory", "cpu", "nproc", "fsize"):
        cmd += [f"--{name}", str(options[name])]
    cmd += [f"--env={name}={value}" for name, value in options["env"].items()]
    cmd += [f"--expose={path}" for path in options["expose"]] + [f"--hide={path}" for path in options["hide"]]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=box.join)


def _start_uncontained(work: Path, limits: Limits) -> subprocess.Popen:
    """No root (a learner's laptop): the harness as this user, with per-process limits."""
    cpu = int(limits.notebook_timeout * 2) + 10

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "MPLBACKEND": "Agg",
           "MPLCONFIGDIR": str(work), "TF_CPP_MIN_LOG_LEVEL": "2", "LANG": "C.UTF-8",
           **thread_env(limits.threads)}
    return subprocess.Popen([sys.executable, "-I", str(work / "harness.py"), str(work)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env, cwd=work,
                            start_new_session=True, preexec_fn=limit)


class _Attempt:
    """One run of the harness, watched until it finishes, dies or runs out of time."""

    def __init__(self, box: Box, limits: Limits, isolated: bool, deadline: float, job: dict, result: RunResult):
        self.box, self.work, self.limits, self.deadline, self.job = box, box.work, limits, deadline, job
        self.result = result  # the run's: each finished cell or call overwrites an earlier attempt's
        self.finished = False
        self.invalid: str | None = None
        self._offset = 0
        self._init: int | None = None  # the PID namespace's init (the harness), on the host
        self.in_flight: tuple[str, int] | None = None
        self.started_at = 0.0
        self.killed_for: str | None = None
        self.proc = start_harness(box, limits, isolated)
        self._events_left = limits.events_bytes

    def _item_timeout(self, kind: str, index: int) -> float:
        if kind == "cell":
            return self.limits.cell_timeout
        return float(self.job["calls"][index]["timeout"])

    def _read_events(self) -> None:
        """Validate and apply the new event lines; keep none of them (bounded memory)."""
        if self.invalid:
            return
        data = read_regular_file(self.work / "events.jsonl", min(4 << 20, self._events_left + 1), offset=self._offset)
        if data is None:
            return
        end = data.rfind(b"\n")
        if end < 0:
            if len(data) > self._events_left:
                self._refuse(f"more than {self.limits.events_bytes >> 20} MiB of events")
            elif len(data) > protocol.MAX_LINE_BYTES:
                self._refuse(f"a line of more than {protocol.MAX_LINE_BYTES} bytes")
            return
        self._offset += end + 1
        self._events_left -= end + 1
        if self._events_left < 0:
            self._refuse(f"more than {self.limits.events_bytes >> 20} MiB of events")
            return
        for line in data[: end + 1].splitlines():
            try:
                event = protocol.parse(line, len(self.job["cells"]), len(self.job["calls"]), self.limits.output_chars)
            except protocol.InvalidEvent as error:
                self._refuse(str(error))
                return
            self._apply(event)

    def _refuse(self, reason: str) -> None:
        self.invalid = f"the sandbox wrote an invalid event ({reason}): the submission is not graded"
        self._kill(self.invalid)

    def _apply(self, event: protocol.Event) -> None:
        kind = event.kind
        if kind == "finished":
            self.finished = True
        elif kind.endswith("_start"):
            self.in_flight, self.started_at = (kind[:-6], event.index), time.monotonic()
        elif kind.endswith("_end"):
            self.in_flight = None
            self._kill_strays()
            if kind == "cell_end":
                kept = sum(len(c["stdout"]) for i, c in self.result.cells.items() if i != event.index)
                stdout = event.stdout
                if kept + len(stdout) > self.limits.outputs_total_chars:
                    stdout = f"[output not kept: the notebook printed more than {self.limits.outputs_total_chars:,} characters]"
                self.result.cells[event.index] = {"ok": event.ok, "error": event.error, "stdout": stdout}
            elif not event.ok:
                self.result.calls[event.index] = {"error": event.error or {"ename": "Error", "evalue": ""}}
            else:
                used = sum(array.nbytes for i, call in self.result.calls.items() if i != event.index
                           for array in call.get("outputs", {}).values())
                self.result.calls[event.index] = _load_outputs(
                    self.work / "out" / f"{event.index}.npz", event.keys, self.limits,
                    budget=max(0, self.limits.results_total_bytes - used))

    def _kill_strays(self) -> None:
        """When a cell or call ends, every process it started ends too (all but the harness)."""
        if self.box.cgroup is None:
            return
        if self._init is None:
            try:
                children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            except OSError:
                return
            if len(children) != 1:
                return
            self._init = int(children[0])
        self.box.kill_all(keep=frozenset({self.proc.pid, self._init}))

    def _kill(self, reason: str) -> None:
        if self.killed_for is None:
            self.killed_for = reason
        self.stop()

    def stop(self) -> None:
        """Kill the harness and every process the sandbox started."""
        if self.box.cgroup is not None:
            # All but ``unshare`` first: it then reaps the namespace's init and exits, and we reap
            # it, so that not even a zombie is left to the host's init.
            self.box.kill_all(keep=frozenset({self.proc.pid}))
            try:
                self.proc.wait(timeout=5)
                return
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.box.kill_all()

    def watch(self) -> None:
        while True:
            returncode = self.proc.poll()
            self._read_events()
            if returncode is not None or self.invalid:
                while not self.invalid:  # what it wrote before it ended, to the end (within events_bytes)
                    offset = self._offset
                    self._read_events()
                    if self._offset == offset:
                        break
                self.proc.wait()
                return
            now = time.monotonic()
            if now > self.deadline:
                self._kill(f"the notebook's time limit ({self.limits.notebook_timeout:g} s) was reached")
            elif self.in_flight:
                kind, index = self.in_flight
                allowed = self._item_timeout(kind, index) + self.limits.grace
                if now - self.started_at > allowed:
                    self._kill(f"the {kind} ran past its time limit ({allowed - self.limits.grace:g} s) "
                               "and ignored the interruption")
            time.sleep(0.02)


def run(cells: list[dict], calls: list[dict], arrays: dict[str, np.ndarray], limits: Limits,
        slot: int = 0) -> RunResult:
    """Run ``cells`` then ``calls`` in a fresh sandbox; see the module docstring."""
    started = time.monotonic()
    isolated = can_isolate()
    uid = SANDBOX_UID_BASE + slot
    cores = limits.threads or os.cpu_count() or 1
    result = RunResult(isolated=isolated)
    with Box(slot, uid, isolated, limits.memory_bytes, limits.processes, cores, limits.scratch_bytes) as box:
        result.contained = box.cgroup is not None
        _attempts(cells, calls, arrays, limits, box, started, result)
    result.memory_peak = box.memory_peak
    if result.invalid:  # nothing a hostile sandbox said is believed
        result.cells, result.calls = {}, {}
        result.notes.append(f"Stopped: {result.invalid}.")
    for index in range(len(calls)):
        result.calls.setdefault(index, {"error": failure(
            Failure.INVALID_EVENT if result.invalid else Failure.NOT_RUN,
            result.invalid or "the notebook stopped before this check ran: "
            + (result.notes[-1] if result.notes else "no result"))})
    result.seconds = time.monotonic() - started
    return result


def _attempts(cells: list[dict], calls: list[dict], arrays: dict[str, np.ndarray], limits: Limits, box: Box,
              started: float, result: RunResult) -> None:
    """Run the notebook, again without any cell or call that killed it, until it finishes."""
    work, uid, isolated = box.work, box.uid, box.isolated
    skip_cells: set[int] = set()
    skip_calls: set[int] = set()
    crashed: set[tuple[str, int]] = set()
    deadline = started + limits.notebook_timeout
    for attempt in range(limits.max_restarts + 1):
        job = {"cells": cells, "calls": calls, "skip_cells": sorted(skip_cells), "skip_calls": sorted(skip_calls),
               "cell_timeout": limits.cell_timeout, "output_limit": limits.output_chars,
               "max_event_bytes": 65536}
        box.kill_all()  # nothing of the previous attempt keeps running
        # Written afresh for every attempt: the sandboxed code may have replaced any of them.
        for name in ("job.json", "inputs.npz", "harness.py", "events.jsonl", "crash.log", "out"):
            _remove(work / name)
        (work / "out").mkdir()
        if isolated:
            os.chown(work / "out", uid, uid)
        (work / "job.json").write_text(json.dumps(job))
        np.savez(work / "inputs.npz", **arrays)  # type: ignore[arg-type]
        shutil.copy(HERE / "harness.py", work / "harness.py")
        run_ = _Attempt(box, limits, isolated, deadline, job, result)
        try:
            run_.watch()
        finally:  # whatever the supervisor met, no process of this attempt runs on unwatched
            run_.stop()
            run_.proc.wait()
            if isinstance(run_.proc, warm.WarmChild) and (run_.invalid or not run_.finished):
                warm.retire(run_.proc.zygote)  # after any failure, the next sandbox comes from a fresh one
        if run_.invalid:
            result.invalid = run_.invalid
            return
        if run_.finished:
            return
        reason = _death_reason(run_.proc.returncode, run_.killed_for)
        if run_.in_flight is None or time.monotonic() > deadline:
            result.notes.append(f"Stopped: {reason}.")
            return
        kind, index = run_.in_flight
        where = _crash_location(work)
        if not run_.killed_for and (kind, index) not in crashed:
            # A crash can be the framework's, not the learner's (a rare native fault in a
            # library): try the same cell or call once more before holding it against them.
            crashed.add((kind, index))
            result.notes.append(f"{kind.capitalize()} {index}: {reason}{where}; trying it once more.")
            continue
        error = failure(Failure.TIME_LIMIT if run_.killed_for else Failure.PROCESS_DIED,
                        f"{reason} while running this {kind}; it was skipped and the notebook re-run without it.")
        if kind == "cell":
            skip_cells.add(index)
            result.cells[index] = {"ok": False, "error": error, "stdout": ""}
        else:
            skip_calls.add(index)
            result.calls[index] = {"error": error}
        result.notes.append(f"{kind.capitalize()} {index}: {reason}{where}; re-running without it.")
    result.notes.append("Stopped: too many restarts.")


def _crash_location(work: Path) -> str:
    """Where Python was when it crashed, from the harness's faulthandler log (if any)."""
    log = read_regular_file(work / "crash.log", 16384)
    if not log:
        return ""
    text = log.decode("utf-8", "replace")
    current = text[text.find("Current thread"):] if "Current thread" in text else text  # not other threads' frames
    frames = [line.strip() for line in current.splitlines() if line.strip().startswith("File ")]
    return f" (at {frames[0][:160]})" if frames else ""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def read_regular_file(path: Path, limit: int, offset: int = 0) -> bytes | None:
    """At most ``limit`` bytes of a plain file the sandbox wrote, or None.

    Never follows a symbolic link and never opens a FIFO or device: the sandboxed code owns
    the scratch folder and could plant either to make the trusted process read /dev/zero,
    block forever, or read a file of the host's.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        os.lseek(fd, offset, os.SEEK_SET)
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


UNREADABLE = {"error": failure(Failure.RESULT_ERROR, "the result could not be read back as numbers")}
MAX_RESULT_ARRAYS = 4096
_END_OF_CENTRAL_DIRECTORY = struct.Struct("<4s4H2LH")


def _load_outputs(path: Path, keys, limits: Limits, budget: int | None = None) -> dict:
    """{"outputs": {key: array}} for the arrays the harness announced as ``keys``, or UNREADABLE.

    The sandbox (and any learner code that replaced the harness's writer) wrote the file, so
    every size in it is a claim: see ``read_results``. ``budget`` caps the bytes of this call's
    arrays (by default ``limits.result_bytes``).
    """
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys) or len(keys) > MAX_RESULT_ARRAYS:
        return UNREADABLE
    budget = limits.result_bytes if budget is None else min(budget, limits.result_bytes)
    # Stored members hold exactly their arrays' bytes plus small headers: a valid result of
    # ``budget`` bytes is never much larger than that, so reading more is never needed.
    raw = _read_snapshot(path, min(limits.file_bytes, budget + 4096 + 512 * len(keys)))
    arrays = None if raw is None else read_results(raw, len(keys), budget)
    if arrays is None:
        return UNREADABLE
    return {"outputs": dict(zip(keys, arrays))}


def _read_snapshot(path: Path, cap: int) -> bytes | None:
    """The whole of a plain file of at most ``cap`` bytes, in one allocation, or None.

    Like ``read_regular_file``: no symbolic link, FIFO or device is followed or opened.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > cap:
            return None
        data = os.read(fd, info.st_size)
        return data if len(data) == info.st_size else None  # changed while we read it
    finally:
        os.close(fd)


def read_results(raw: bytes, count: int, budget: int) -> list[np.ndarray] | None:
    """The arrays a0..a{count-1} of an .npz held in ``raw``, or None if it breaks any rule.

    Every size is known before anything is allocated: the archive must list exactly ``count``
    members named a0.npy ... (no others, no duplicates), each stored uncompressed (so no member
    can inflate), each holding one .npy header whose dtype is plain numbers (bool, integer or
    float: never objects, so never pickle) and whose shape times item size fits what is left
    of ``budget``; the member's size must be exactly that header plus those bytes, its checksum
    must match, and each array is copied once, straight out of ``raw``.
    """
    try:
        return _read_results(raw, count, budget)
    except Exception:  # noqa: BLE001 - whatever a forged archive makes the parser raise, it is unreadable
        return None


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")


def _read_results(raw: bytes, count: int, budget: int) -> list[np.ndarray] | None:
    # The end-of-central-directory record says how many members the archive lists; checking
    # it first keeps zipfile from building an index of a million forged entries.
    if len(raw) < _END_OF_CENTRAL_DIRECTORY.size:
        return None
    signature, _, _, on_disk, total, _, _, comment = _END_OF_CENTRAL_DIRECTORY.unpack(
        raw[-_END_OF_CENTRAL_DIRECTORY.size:])
    if signature != b"PK\x05\x06" or comment != 0 or on_disk != count or total != count:
        return None
    names = [f"a{i}.npy" for i in range(count)]
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:  # BytesIO shares the bytes: no copy
        members = archive.infolist()
    if sorted(m.filename for m in members) != sorted(names):
        return None
    by_name = {m.filename: m for m in members}
    left, arrays = budget, []
    for name in names:
        member = by_name[name]
        if member.compress_type != zipfile.ZIP_STORED or member.compress_size != member.file_size \
                or member.flag_bits & 0x1:  # encrypted
            return None
        header = _LOCAL_HEADER.unpack_from(raw, member.header_offset)
        if header[0] != b"PK\x03\x04" or header[3] != zipfile.ZIP_STORED:
            return None
        name_at = member.header_offset + _LOCAL_HEADER.size
        start = name_at + header[9] + header[10]
        end = start + member.file_size
        if raw[name_at:name_at + header[9]] != name.encode() or end > len(raw) \
                or zlib.crc32(memoryview(raw)[start:end]) != member.CRC:
            return None
        array = _read_npy(raw, start, member.file_size, left)
        if array is None:
            return None
        left -= array.nbytes
        arrays.append(array)
    return arrays


def _read_npy(raw: bytes, start: int, size: int, budget: int) -> np.ndarray | None:
    """The .npy member at raw[start:start + size], if its array fits ``budget`` bytes, else None."""
    stream = io.BytesIO(raw[start:start + min(size, 1 << 16)])  # the header: at most 64 KiB
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
    else:
        return None
    if dtype.kind not in "biuf" or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        return None
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
        return None
    count = math.prod(shape)  # Python integers: a forged shape cannot overflow
    if count * dtype.itemsize > budget or stream.tell() + count * dtype.itemsize != size:
        return None
    flat = np.frombuffer(raw, dtype=dtype, count=count, offset=start + stream.tell())
    return flat.reshape(shape, order="F" if fortran else "C").copy(order="K")
