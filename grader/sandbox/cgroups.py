"""One control group per sandbox: limits for all its processes together, and a sure way to kill them.

Per-process limits (``RLIMIT_AS``, ``RLIMIT_NPROC``) leave the sum open: many processes, or
memory held by a tmpfs, add up past any cap, and a process that leaves its session escapes
``killpg``. A control group holds every process the sandbox ever starts, whatever it does to
its session or parent, and its limits count them together: memory (tmpfs pages included:
they are charged to the group of the process that wrote them), tasks, and CPU bandwidth.

Two layouts are supported: the unified hierarchy (cgroup v2) when the grader can enable the
memory, pids and cpu controllers below ``/sys/fs/cgroup/grader``, else the v1 hierarchies
``memory``, ``pids``, ``cpu`` and ``freezer``. ``available()`` says which, or None (no root,
no writable cgroup file system): then only per-process limits apply (see README).
"""
from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PARENT = "grader"  # every sandbox's group is a child of this one
V1_CONTROLLERS = ("memory", "pids", "cpu", "freezer")
V2_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _v2_ready() -> bool:
    root = CGROUP_ROOT
    if not (root / "cgroup.controllers").exists():
        return False
    parent = root / PARENT
    parent.mkdir(exist_ok=True)
    available = (root / "cgroup.subtree_control").read_text().split()
    for name in V2_CONTROLLERS:
        if name not in available:
            _write(root / "cgroup.subtree_control", f"+{name}")
    _write(parent / "cgroup.subtree_control", " ".join(f"+{n}" for n in V2_CONTROLLERS))
    return set(V2_CONTROLLERS) <= set((parent / "cgroup.subtree_control").read_text().split())


def _v1_ready() -> bool:
    for name in V1_CONTROLLERS:
        base = CGROUP_ROOT / name
        if not (base / "tasks").exists():
            return False
        (base / PARENT).mkdir(exist_ok=True)
    return True


@functools.lru_cache(maxsize=1)
def available() -> str | None:
    """"v2", "v1", or None when this machine gives the grader no usable control groups."""
    if os.name != "posix" or os.geteuid() != 0 or os.environ.get("GRADER_NO_CGROUPS") == "1":
        return None
    for version, ready in (("v2", _v2_ready), ("v1", _v1_ready)):
        try:
            if ready():
                return version
        except OSError:
            continue
    return None


class Cgroup:
    """The group of one sandbox: created with its limits, joined by the sandbox's first
    process before it execs anything, and destroyed (every process killed) at the end."""

    def __init__(self, name: str, memory_bytes: int, tasks: int, cores: float):
        self.version = available()
        if self.version is None:
            raise OSError("no usable control groups")
        if self.version == "v2":
            self.dirs = {"": CGROUP_ROOT / PARENT / name}
        else:
            self.dirs = {c: CGROUP_ROOT / c / PARENT / name for c in V1_CONTROLLERS}
        try:
            for path in self.dirs.values():
                path.mkdir()
            self._limit(memory_bytes, tasks, cores)
        except OSError:
            for path in self.dirs.values():
                if path.is_dir():
                    path.rmdir()
            raise

    def _limit(self, memory_bytes: int, tasks: int, cores: float) -> None:
        quota = max(1000, int(cores * CPU_PERIOD_US))
        if self.version == "v2":
            d = self.dirs[""]
            _write(d / "memory.max", str(memory_bytes))
            if (d / "memory.swap.max").exists():
                _write(d / "memory.swap.max", "0")
            _write(d / "pids.max", str(tasks))
            _write(d / "cpu.max", f"{quota} {CPU_PERIOD_US}")
        else:
            _write(self.dirs["memory"] / "memory.limit_in_bytes", str(memory_bytes))
            if (self.dirs["memory"] / "memory.memsw.limit_in_bytes").exists():  # no escape into swap
                _write(self.dirs["memory"] / "memory.memsw.limit_in_bytes", str(memory_bytes))
            _write(self.dirs["pids"] / "pids.max", str(tasks))
            _write(self.dirs["cpu"] / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(self.dirs["cpu"] / "cpu.cfs_quota_us", str(quota))

    def join(self) -> None:
        """Move the calling process into the group (run in the child, before exec)."""
        pid = str(os.getpid())
        for path in self.dirs.values():
            _write(path / "cgroup.procs", pid)

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in self.dirs.values()]

    def pids(self) -> list[int]:
        path = self.dirs.get("") or self.dirs.get("pids") or next(iter(self.dirs.values()))
        try:
            return [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill(self, keep: frozenset[int] = frozenset()) -> None:
        """SIGKILL every process of the group but ``keep``: all at once with cgroup.kill (v2,
        when none is kept), else with the group frozen, so that none can fork meanwhile."""
        if self.version == "v2" and not keep and (self.dirs[""] / "cgroup.kill").exists():
            _write(self.dirs[""] / "cgroup.kill", "1")
            return
        if keep and set(self.pids()) <= keep:  # the usual case at a cell's end: no stray to stop
            return  # (freezing would find the same; one started after this is met by the next kill)
        self._freeze(True)
        try:
            for pid in self.pids():
                if pid not in keep:
                    try:
                        os.kill(pid, signal.SIGKILL)  # delivered once thawed: a frozen task cannot act on it first
                    except ProcessLookupError:
                        pass
        finally:
            self._freeze(False)

    def _freeze(self, frozen: bool) -> None:
        """Stop (or restart) every task of the group; returns once all are stopped."""
        if "freezer" in self.dirs:  # v1
            path, value = self.dirs["freezer"] / "freezer.state", "FROZEN" if frozen else "THAWED"
            events, done = path, "FROZEN"
        else:
            path, value = self.dirs[""] / "cgroup.freeze", "1" if frozen else "0"
            events, done = self.dirs[""] / "cgroup.events", "frozen 1"
            if not path.exists():
                return
        _write(path, value)
        for _ in range(400 if frozen else 0):  # freezing takes a moment
            if done in events.read_text():
                return
            time.sleep(0.005)

    def destroy(self, timeout: float = 10.0) -> None:
        """Kill every process and remove the group; raises OSError if a process survives."""
        deadline = time.monotonic() + timeout
        while True:
            self.kill()
            if not self.pids():
                break
            if time.monotonic() > deadline:
                raise OSError(f"processes {self.pids()} of sandbox group {self.dirs} survived SIGKILL")
            time.sleep(0.01)
        for path in self.dirs.values():
            for _ in range(100):  # the kernel releases a group a moment after its last process
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)

    def memory_peak(self) -> int | None:
        """The most memory the group ever held, in bytes (None where the kernel does not say)."""
        path = self.dirs.get("memory")
        name = "memory.max_usage_in_bytes"
        if path is None:
            path, name = self.dirs[""], "memory.peak"
        try:
            return int((path / name).read_text())
        except (OSError, ValueError):
            return None


def remove_orphans() -> None:
    """Groups left by a grading process that was itself killed (its ``finally`` never ran):
    named ``<its pid>-...``; if that process is gone, kill what is left in them and remove them."""
    version = available()
    if version is None:
        return
    parent = CGROUP_ROOT / PARENT if version == "v2" else CGROUP_ROOT / "pids" / PARENT
    for path in parent.iterdir() if parent.is_dir() else ():
        owner = path.name.split("-", 1)[0]
        if not path.is_dir() or not owner.isdigit() or alive(int(owner)):
            continue
        group = Cgroup.__new__(Cgroup)
        group.version = version
        group.dirs = ({"": path} if version == "v2"
                      else {c: CGROUP_ROOT / c / PARENT / path.name for c in V1_CONTROLLERS})
        group.dirs = {k: v for k, v in group.dirs.items() if v.is_dir()}
        try:
            group.destroy(timeout=5.0)
        except OSError:
            pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
