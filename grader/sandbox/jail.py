"""Builds the sandbox's file system and drops privileges, then becomes the harness.

Run as root inside fresh mount, network, PID and IPC namespaces (``unshare --mount --net --pid
--ipc --fork``): it mounts a new root that holds only the system's programs and libraries, the
Python installation and virtual environment (read-only), an empty /tmp, and the scratch
folder at /sandbox. The course, its solutions, the gradebook and every other submission are
simply absent. Then it applies resource limits, switches to an unprivileged user and execs
the harness (a cold start), or hands over to the harness already loaded in a warm process's
child (``zygote.py``, which calls ``enter``). Standalone on purpose: it runs before any of
the sandbox exists.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys

SYSTEM_PATHS = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc", "/sys"]
DEVICES = ["null", "zero", "random", "urandom"]


# mount(2) flags. The mounts are made with the system call itself, not the mount program:
# some thirty of them per sandbox, at a few milliseconds per program started.
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str | None, target: str, fstype: str | None = None, flags: int = 0, data: str | None = None) -> None:
    encoded = [None if x is None else x.encode() for x in (source, target, fstype, data)]
    if _libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source or fstype or ''} on {target}: {os.strerror(error)}")


def mount_tmpfs(target: str, options: str, flags: int = 0) -> None:
    mount("tmpfs", target, "tmpfs", flags, options)


def read_only(target: str) -> None:
    mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def unmount(target: str) -> None:
    """Detach ``target`` now (lazily: whatever still uses it lets go when it ends)."""
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"umount {target}: {os.strerror(error)}")


def expose(path: str, root: str, writable: bool = False) -> None:
    """Make ``path`` appear at the same place under ``root``."""
    if not os.path.lexists(path):
        return
    target = root + path
    if os.path.islink(path):  # /lib -> usr/lib on merged-/usr systems: recreate the link
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(os.readlink(path), target)
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    mount(path, target, None, MS_BIND | MS_REC)
    if not writable:
        read_only(target)


ABSENT = """raise ModuleNotFoundError(
    "No module named {name!r}: this is a NumPy notebook, graded with NumPy alone "
    "(PyTorch and TensorFlow are not available in its sandbox)", name={name!r})
"""


def hide(path: str, root: str) -> None:
    """Cover a package folder with a read-only one whose import raises: the real files are
    not in the sandbox's file system at all, so no import hook or path trick reaches them."""
    target = root + path
    if not os.path.isdir(target):
        return
    mount_tmpfs(target, "size=64k,mode=0755")
    with open(os.path.join(target, "__init__.py"), "w") as f:
        f.write(ABSENT.format(name=os.path.basename(path)))
    read_only(target)


def build_root(root: str, scratch: str, python_paths: list[str], hidden: list[str] | None = None) -> None:
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount_tmpfs(root, "mode=0755,size=16m")
    # An empty /tmp first: the Python paths exposed next may lie under /tmp (a checkout there
    # with its .venv), and must be mounted on top of it, not hidden by it.
    os.makedirs(root + "/tmp", exist_ok=True)
    mount_tmpfs(root + "/tmp", "mode=1777,size=512m")
    for path in SYSTEM_PATHS + python_paths:
        expose(path, root)
    for path in hidden or []:
        hide(path, root)
    os.makedirs(root + "/dev", exist_ok=True)
    mount_tmpfs(root + "/dev", "mode=0755,size=1m")
    for device in DEVICES:
        expose("/dev/" + device, root, writable=True)
    os.makedirs(root + "/dev/shm")
    mount_tmpfs(root + "/dev/shm", "mode=1777,size=256m")
    os.makedirs(root + "/proc", exist_ok=True)
    mount("proc", root + "/proc", "proc")
    os.makedirs(root + "/sandbox", exist_ok=True)
    mount(scratch, root + "/sandbox", None, MS_BIND)
    read_only(root)


def limit(memory: int, cpu: int, nproc: int, fsize: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def harness_env(extra: dict[str, str]) -> dict[str, str]:
    """The whole environment of the harness: nothing of the host's (no secret of the instructor's
    shell reaches learner code), plus the thread counts and the like in ``extra``."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp",
           "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "LANG": "C.UTF-8"}
    env.update(extra)
    return env


def enter(root: str, scratch: str, uid: int, expose: list[str], hide: list[str], memory: int, cpu: int,
          nproc: int, fsize: int) -> None:
    """Become the sandbox: its file system as root, /sandbox as working folder, its limits, its
    user. Run as root in fresh namespaces; afterwards nothing of the host is reachable."""
    build_root(root, scratch, expose, hide)
    os.chroot(root)
    os.chdir("/sandbox")
    limit(memory, cpu, nproc, fsize)
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--expose", action="append", default=[])
    parser.add_argument("--hide", action="append", default=[], help="a package folder the sandbox must not see")
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--cpu", type=int, required=True)
    parser.add_argument("--nproc", type=int, required=True)
    parser.add_argument("--fsize", type=int, required=True)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the harness's environment")
    options = parser.parse_args()

    enter(options.root, options.scratch, options.uid, options.expose, options.hide, options.memory, options.cpu,
          options.nproc, options.fsize)
    env = harness_env(dict(item.split("=", 1) for item in options.env))
    os.execve(options.python, [options.python, "-I", "/sandbox/harness.py", "/sandbox"], env)


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # reported by the trusted side as a sandbox failure
        print(f"jail: {exc}", file=sys.stderr)
        sys.exit(97)
