"""A warm process: Python, NumPy, IPython and a notebook's framework already imported, forking
one sandbox per attempt so that no submission pays their start-up again.

Started by ``warm.py`` as root, one per job slot and kind of notebook, with the sandbox's own
environment (nothing of the grader's: a forked sandbox can read its parent's memory, so the
parent must hold nothing a learner may not see). It serves one request at a time on an
abstract Unix socket, and only to root (``SO_PEERCRED``). For each request it forks:

    zygote (root, never runs anything learner-controlled)
      └─ launcher (root): joins the sandbox's control group, unshares the mount, network,
         IPC and PID namespaces, waits for the harness and exits with its status, like
         ``unshare --fork --kill-child`` in a cold start
           └─ harness (PID 1 of the new namespace): builds the jail (``jail.enter``: chroot,
              limits, the slot's uid), closes every inherited descriptor, and runs
              ``harness.main`` on /sandbox

The launcher answers the client with its own pid, then with the harness's exit status; if
the client goes away first, it kills the harness, and with it the whole namespace. The
zygote exits after ``idle`` seconds without a request or a launcher of its own running. Standalone, like ``jail.py``: it imports nothing
from ``grader``.
"""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x08000000, 0x20000000, 0x40000000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
MAX_REQUEST = 1 << 16
LAUNCH_FAILED = 97  # as jail.py: the sandbox could not be built (the trusted side says so)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def die_with_parent() -> None:
    _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")


def peer_uid(conn: socket.socket) -> int:
    _, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return uid


def read_request(conn: socket.socket) -> dict | None:
    data = b""
    while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
        chunk = conn.recv(MAX_REQUEST - len(data))
        if not chunk:
            return None
        data += chunk
    try:
        request = json.loads(data)
    except ValueError:
        return None
    return request if isinstance(request, dict) else None


def become_harness(request: dict) -> None:
    """In the new namespaces, as their PID 1: the jail, then the harness. Never returns."""
    import jail
    import harness
    import numpy as np

    try:
        die_with_parent()
        options = request["jail"]
        jail.enter(options["root"], options["scratch"], int(options["uid"]), options["expose"], options["hide"],
                   int(options["memory"]), int(options["cpu"]), int(options["nproc"]), int(options["fsize"]))
        die_with_parent()  # cleared by setuid: the launcher's death must still end the sandbox
        # Also cleared by setuid, where a cold start's exec sets it again: without it the sandbox
        # could not open its own /proc/self/fd or environ (they would belong to root).
        _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "prctl")
        os.closerange(3, 1 << 16)  # nothing of the zygote's (its socket, the client's) stays open
        os.environ.clear()
        os.environ.update(jail.harness_env(options["env"]))
        sys.path[:] = [p for p in sys.path if p != HERE]
        np.random.seed()  # the fork copied one global RandomState into every sandbox: a fresh one, as a cold start has
    except BaseException:
        traceback.print_exc()
        os._exit(LAUNCH_FAILED)
    try:
        code = harness.main("/sandbox")
    except BaseException:
        traceback.print_exc()
        code = 3
    os._exit(code if isinstance(code, int) else 3)


def launch(request: dict, server: socket.socket, conn: socket.socket) -> None:
    """The launcher, in the zygote's fork: starts the sandbox, tells the client its pid and
    then its exit status; kills it if the client goes away first. Never returns."""
    try:
        server.close()
        os.setsid()  # its own process group: the supervisor can kill it and all under it in one call
        for procs in request.get("cgroup_procs", []):
            if not procs.startswith("/sys/fs/cgroup/") or not procs.endswith("/cgroup.procs"):
                raise ValueError(f"not a control group: {procs}")
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
        _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID), "unshare")
        init = os.fork()
        if init == 0:
            conn.close()
            become_harness(request)
        conn.sendall(json.dumps({"pid": os.getpid()}).encode() + b"\n")
        pidfd = os.pidfd_open(init)
        while not select.select([conn.fileno(), pidfd], [], [])[0].count(pidfd):
            if not conn.recv(64):  # the client went away (its worker died): so does the sandbox
                os.kill(init, signal.SIGKILL)  # PID 1 of its namespace: every process in it dies too
                break
        _, status = os.waitpid(init, 0)
        conn.sendall(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    except BaseException:
        traceback.print_exc()
        os._exit(LAUNCH_FAILED)
    os._exit(0)


def serve(server: socket.socket, conn: socket.socket, children: set[int]) -> None:
    """One request: a launcher forked for it, which answers the client itself, so the zygote
    is free for the next request at once (two sandboxes of one slot may run side by side)."""
    if peer_uid(conn) != os.geteuid():
        return
    request = read_request(conn)
    if request is None or request.get("op") != "spawn":
        return
    pid = os.fork()
    if pid == 0:
        launch(request, server, conn)
    children.add(pid)


def reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


def main() -> None:
    name, idle, preload = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind("\0" + name)  # first: a client that connects during the imports waits in the backlog
    server.listen(8)
    home = tempfile.mkdtemp(prefix="grader-warm-")  # where the imports may write (~/.keras and the like)
    os.environ["HOME"] = home
    try:
        sys.path.insert(0, HERE)
        import numpy  # noqa: F401
        import IPython.core.interactiveshell  # noqa: F401
        import harness  # noqa: F401
        import jail  # noqa: F401
        for module in preload:
            importlib.import_module(module)
        children: set[int] = set()
        server.settimeout(1.0)
        idle_since = time.monotonic()
        while True:
            reap(children)
            if children:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle:  # idle, and no sandbox of its own still running
                return
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            with conn:
                conn.settimeout(None)
                serve(server, conn, children)
            idle_since = time.monotonic()
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
