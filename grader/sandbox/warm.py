"""The trusted side of warm sandboxes: finds or starts a job slot's warm process (``zygote.py``)
and asks it for one sandbox, which the supervisor then watches like any process it started.

One warm process per slot and kind (which frameworks it holds, how many threads, this
version of the sandbox's code: all in its socket's name, so a changed harness never runs
from a stale process). It outlives the worker that started it, so the next submission on
the slot finds it warm, and exits by itself when idle. Both ends check that the other is
root (``SO_PEERCRED``): no other user of the machine can ask for a sandbox or pose as the
warm process. Anything unexpected (no answer, a dead warm process) retires it and the
attempt starts cold instead: warmth is only ever an optimisation.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
IDLE_SECONDS = 30.0  # a warm process with no request for this long exits (between runs, not between submissions)
START_SECONDS = 120.0  # the longest a warm process may take to import (TensorFlow on a busy machine)
SOURCES = ("zygote.py", "jail.py", "harness.py")


def enabled() -> bool:
    """Warm sandboxes unless ``GRADER_COLD_SANDBOX=1`` (the benchmark measures both)."""
    return os.environ.get("GRADER_COLD_SANDBOX") != "1"


def socket_name(slot: int, preload: tuple[str, ...], env: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((HERE / name).read_bytes())
    digest.update(json.dumps([sys.executable, sorted(preload), sorted(env.items())]).encode())
    return f"ai-foundations-grader-warm-{digest.hexdigest()[:16]}-slot{slot}"


def _peer(conn: socket.socket) -> tuple[int, int]:
    pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid, uid


def _connect(name: str) -> socket.socket | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect("\0" + name)
    except OSError:
        conn.close()
        return None
    return conn


class WarmChild:
    """One sandbox forked by a warm process, seen as ``subprocess.Popen`` sees a child: ``pid``
    (the launcher, whose process group holds the sandbox), ``poll``, ``wait``, ``returncode``."""

    def __init__(self, conn: socket.socket, pid: int, zygote: int):
        self.conn, self.pid, self.zygote = conn, pid, zygote
        self.returncode: int | None = None
        self._buffer = b""

    def _read_status(self, timeout: float | None) -> bool:
        """Whether the exit status has arrived within ``timeout`` (None: wait for it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.conn], [], [], left)[0]:
                return False
            chunk = self.conn.recv(4096)
            self._buffer += chunk
            if b"\n" in self._buffer or not chunk or len(self._buffer) > 4096:
                self._finish()
        return True

    def _finish(self) -> None:
        try:
            status = json.loads(self._buffer.split(b"\n", 1)[0])["status"]
            self.returncode = status if isinstance(status, int) else -signal.SIGKILL
        except (ValueError, KeyError, TypeError):  # the warm process died: make sure its sandbox did too
            kill_group(self.pid)
            self.returncode = -signal.SIGKILL
        self.conn.close()

    def poll(self) -> int | None:
        self._read_status(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._read_status(timeout):
            raise subprocess.TimeoutExpired(f"sandbox {self.pid}", timeout or 0.0)
        assert self.returncode is not None
        return self.returncode


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def spawn(slot: int, preload: tuple[str, ...], env: dict[str, str], jail: dict,
          cgroup_procs: list[str]) -> WarmChild | None:
    """A sandbox from the slot's warm process (started if need be), or None: then start cold."""
    name = socket_name(slot, preload, env)
    conn = _connect(name)
    if conn is None:
        _start(name, preload, env)
        deadline = time.monotonic() + 10
        while conn is None and time.monotonic() < deadline:
            time.sleep(0.01)  # it binds its socket first thing: this takes milliseconds
            conn = _connect(name)
        if conn is None:
            return None
    zygote, uid = _peer(conn)
    if uid != os.geteuid():  # someone else holds the name: never hand them a sandbox
        conn.close()
        return None
    try:
        conn.sendall(json.dumps({"op": "spawn", "jail": jail, "cgroup_procs": cgroup_procs}).encode() + b"\n")
        conn.settimeout(START_SECONDS)
        reply = b""
        while b"\n" not in reply:
            chunk = conn.recv(4096)
            if not chunk or len(reply) > 4096:
                raise OSError("no answer")
            reply += chunk
        line, rest = reply.split(b"\n", 1)
        pid = json.loads(line)["pid"]
        if not isinstance(pid, int) or pid <= 1:
            raise ValueError(f"pid {pid!r}")
        conn.settimeout(None)
    except (OSError, ValueError, KeyError, TypeError):
        conn.close()
        retire(zygote)
        return None
    child = WarmChild(conn, pid, zygote)
    child._buffer = rest  # the exit status, if the sandbox already ended
    if b"\n" in rest:
        child._finish()
    return child


def _start(name: str, preload: tuple[str, ...], env: dict[str, str]) -> None:
    """A new warm process, in a session of its own: it outlives the worker that starts it."""
    process = subprocess.Popen([sys.executable, "-I", str(HERE / "zygote.py"), name, str(IDLE_SECONDS), *preload],
                               env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    _started.append(process)  # reaped when it exits while this process still runs (Popen's own bookkeeping)


_started: list[subprocess.Popen] = []


def retire(zygote: int) -> None:
    """End a warm process (after any failure: the next sandbox comes from a fresh one)."""
    try:
        os.kill(zygote, signal.SIGKILL)
    except OSError:
        pass
    for process in _started:
        if process.pid == zygote:
            process.wait()
