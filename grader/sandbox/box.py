"""One submission's sandbox on the host, from setup to teardown: the only place either happens.

Setup makes the scratch folder (a size-limited tmpfs where we are root, so that nothing the
sandbox writes reaches the host's disk, and all of it disappears at teardown) and the control
group every process of the sandbox will belong to. Teardown, which always runs (``with``),
kills every process of that group, unmounts the scratch folder and removes it. Together with
the namespaces ``runner`` starts the harness in (mount, network, PID, IPC: their contents die
with the sandbox's last process), nothing of one submission survives to the next on its slot.
"""
from __future__ import annotations

import functools
import itertools
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from . import cgroups, jail

_counter = itertools.count()


@functools.lru_cache(maxsize=1)
def warn_uncontained() -> None:
    """Said once per process, on stderr: what this machine cannot promise."""
    print("grader: no usable control groups here: a sandbox's processes are limited one by one, not "
          "all together, and run until its notebook ends (README: What the sandbox guarantees)", file=sys.stderr)


@functools.lru_cache(maxsize=1)
def warn_scratch_on_disk() -> None:
    print("grader: cannot mount a tmpfs here: /sandbox is a folder on this machine's disk, limited per file "
          "only (README: What the sandbox guarantees)", file=sys.stderr)


class Box:
    """``with Box(...) as box``: ``box.work`` (the scratch folder, /sandbox inside), ``box.root``
    (where the jail builds its root), ``box.cgroup`` (None where control groups are unusable)."""

    def __init__(self, slot: int, uid: int, isolated: bool, memory_bytes: int, tasks: int, cores: float,
                 scratch_bytes: int):
        self.slot, self.uid, self.isolated = slot, uid, isolated
        self.memory_bytes, self.tasks, self.cores, self.scratch_bytes = memory_bytes, tasks, cores, scratch_bytes
        self.cgroup: cgroups.Cgroup | None = None
        self.memory_peak: int | None = None  # the most the whole sandbox held, read at teardown
        self._mounted = False

    def __enter__(self) -> Box:
        remove_orphans()
        self.base = Path(tempfile.mkdtemp(prefix=f"grader-{os.getpid()}-"))
        self.work, self.root = self.base / "work", self.base / "root"
        self.work.mkdir()
        self.root.mkdir()
        try:
            if self.isolated:
                try:
                    jail.mount_tmpfs(str(self.work), f"size={self.scratch_bytes},mode=0755", jail.MS_NOSUID | jail.MS_NODEV)
                    self._mounted = True
                except OSError:  # a container that refuses it: a host folder, per-file size limit only
                    warn_scratch_on_disk()
                os.chown(self.work, self.uid, self.uid)
                if cgroups.available():
                    name = f"{os.getpid()}-slot{self.slot}-{next(_counter)}"
                    try:
                        self.cgroup = cgroups.Cgroup(name, self.memory_bytes, self.tasks, self.cores)
                    except OSError:  # the hierarchy refused this group (limits, permissions): say so, go on
                        warn_uncontained()
                else:
                    warn_uncontained()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def join(self) -> None:
        """Run in the sandbox's first process before it execs: it and all it starts are in the group."""
        if self.cgroup is not None:
            self.cgroup.join()

    def procs_files(self) -> list[str]:
        """Where a process writes its pid to join the sandbox's group (a warm start's launcher does)."""
        return self.cgroup.procs_files() if self.cgroup is not None else []

    def kill_all(self, keep: frozenset[int] = frozenset()) -> None:
        """Every process of the sandbox but ``keep`` (none left to run unsupervised). Without a
        control group, all processes of the slot's user (``keep`` is then not honoured: nothing
        is killed until the attempt ends)."""
        if self.cgroup is not None:
            self.cgroup.kill(keep)
        elif self.isolated and not keep:
            kill_user(self.uid)

    def __exit__(self, *exc) -> None:
        try:
            if self.cgroup is not None:
                self.memory_peak = self.cgroup.memory_peak()
                self.cgroup.destroy()
            elif self.isolated:
                kill_user(self.uid)
        finally:
            if self._mounted:
                _unmount(self.work)
            shutil.rmtree(self.base, ignore_errors=True)


def _unmount(path: Path) -> None:
    try:
        jail.unmount(str(path))
    except OSError:  # already gone; rmtree then removes what is left
        pass


def kill_user(uid: int) -> None:
    """SIGKILL every process of ``uid`` (a slot's user: only its sandbox runs as it), in one
    ``kill(-1)`` from a child that takes that user id: the kernel does it under its task-list
    lock, so no process can fork its way out meanwhile."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def remove_orphans() -> None:
    """What a grading process killed outright (its ``finally`` never ran) left behind: its
    sandboxes' processes and control groups, and their scratch folders (named after its pid)."""
    cgroups.remove_orphans()
    for base in Path(tempfile.gettempdir()).glob("grader-*-*"):
        owner = base.name.split("-")[1]
        try:
            if not owner.isdigit() or cgroups.alive(int(owner)) or base.stat().st_uid != os.geteuid():
                continue
            if (base / "work").is_mount():
                _unmount(base / "work")
        except OSError:  # removed meanwhile by another grader
            continue
        shutil.rmtree(base, ignore_errors=True)
