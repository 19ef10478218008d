"""Warm sandboxes: forked from a job slot's warm process, yet as fresh, as contained and as
trusted as a cold start, and graded identically.

What a sandbox forked from the warm process could exploit, each checked from inside one: the
warm process's descriptors, environment and memory (it must hold nothing of the grader's),
its socket (unreachable from the sandbox), state the fork copies into every sandbox (NumPy's
global random state), frameworks a NumPy notebook must not have. What the trusted side must
survive: a warm process killed mid-run, a sandbox that dies (the warm process is then
retired), someone else holding the warm process's socket name (then the attempt starts cold).

Needs root, namespaces and control groups (the course's CI and grading machines), as the
containment tests do.
"""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import time
from pathlib import Path

import nbformat
import pytest

from grader.checking import exercises
from grader.course import release_notebook
from grader.grading.grade import frameworks_imported, grade_notebook
from grader.sandbox import cgroups, jail, runner, warm
from notebook_cases import ROOT, solution, with_answers

SLOT = 9  # a slot no other test module uses
FAST = runner.Limits(cell_timeout=8, notebook_timeout=60, memory_bytes=2 << 30, scratch_bytes=64 << 20, grace=1.0)

pytestmark = pytest.mark.skipif(not (runner.can_isolate() and cgroups.available()),
                                reason="warm sandboxes need root, namespaces and control groups")


def run(source: str, limits: runner.Limits = FAST, slot: int = SLOT) -> runner.RunResult:
    result = runner.run([{"source": source}], [], {}, limits, slot=slot)
    assert result.isolated and result.contained
    return result


def printed(result: runner.RunResult) -> str:
    cell = result.cells[0]
    assert cell["ok"], cell
    return cell["stdout"]


def zygotes(slot: int = SLOT) -> list[int]:
    """The pids of this slot's warm processes (any kind), from their command lines."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 3 and argv[2].endswith(b"zygote.py") and argv[3].endswith(f"-slot{slot}".encode()):
            found.append(int(pid))
    return sorted(found)


def retire_all(slot: int = SLOT) -> None:
    for pid in zygotes(slot):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not zygotes(slot):
            return
        time.sleep(0.02)


INSIDE = """
import json, os, sys, socket
import numpy as np
fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
reach = []
for name in NAMES:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\\0" + name)
        reach.append(name)
    except OSError:
        pass
print(json.dumps({"pid": os.getpid(), "uid": os.getuid(), "fds": fds, "environ": dict(os.environ),
                  "initial": open("/proc/self/environ", "rb").read().decode(errors="replace"),
                  "cmdline": open("/proc/self/cmdline", "rb").read().decode(errors="replace"),
                  "random": float(np.random.rand()), "torch": "torch" in sys.modules, "reach": reach,
                  "course": [p for p in COURSE if os.path.exists(p)], "root": os.listdir("/")}))
"""


def look_inside(limits: runner.Limits = FAST) -> dict:
    env = jail.harness_env(runner.thread_env(limits.threads))
    names = [warm.socket_name(SLOT, limits.preload, env)]
    course = [str(ROOT / "solutions"), str(ROOT / "grader" / "sandbox" / "zygote.py"), str(ROOT / "README.md")]
    return json.loads(printed(run(f"NAMES = {names!r}\nCOURSE = {course!r}\n" + INSIDE, limits)))


def test_a_warm_sandbox_is_a_fresh_contained_process(monkeypatch):
    monkeypatch.setenv("GRADER_TEST_SECRET", "never-in-a-sandbox")
    retire_all()
    first, second = look_inside(), look_inside()
    assert len(zygotes()) == 1  # the second sandbox came from the same warm process
    for seen in (first, second):
        assert seen["pid"] == 1 and seen["uid"] == runner.SANDBOX_UID_BASE + SLOT
        assert seen["reach"] == []  # the warm process's socket is in another network namespace
        assert seen["course"] == [] and "sandbox" in seen["root"]  # the course's files are not in its file system
        assert "never-in-a-sandbox" not in json.dumps(seen)  # neither in os.environ nor in the initial block
        assert seen["environ"] == jail.harness_env(runner.thread_env(FAST.threads))
        assert not seen["torch"]
    assert first["random"] != second["random"]  # NumPy's global state is drawn afresh, not copied by the fork


def test_descriptors_open_in_a_warm_sandbox_are_only_its_own():
    """Standard streams, the harness's event log and crash log: nothing inherited from the warm
    process (its listening socket, a client's connection)."""
    listing = ("import os\nlinks = []\nfor fd in os.listdir('/proc/self/fd'):\n    try:\n"
               "        links.append(os.readlink(f'/proc/self/fd/{fd}') if int(fd) > 2 else 'std')\n"
               "    except OSError:\n        pass  # the descriptor of the listing itself, closed meanwhile\n"
               "print(sorted(links))")
    links = eval(printed(run(listing)))
    assert links.count("std") == 3
    opened = {"/sandbox/crash.log", "/sandbox/events.jsonl", "/tmp/.ipython/profile_default/history.sqlite"}
    assert {"/sandbox/crash.log", "/sandbox/events.jsonl"} <= set(links) <= opened | {"std"}, links


def test_a_numpy_notebook_gets_a_warm_process_without_the_frameworks():
    numpy_only = dataclasses.replace(FAST, numpy_only=True, preload=("torch",))
    seen = look_inside(numpy_only)
    assert not seen["torch"]
    out = run("try:\n    import torch\nexcept ModuleNotFoundError as e:\n    print(e)\n", numpy_only)
    assert "this is a NumPy notebook" in printed(out)


def test_a_framework_notebook_gets_the_framework_already_imported():
    seen = look_inside(dataclasses.replace(FAST, preload=("torch",)))
    assert seen["torch"]


def test_the_assignment_decides_what_is_preloaded():
    found = {name: frameworks_imported(release_notebook(ROOT, name)) for name in ("02_backprop", "04_tensorflow",
                                                                                  "05_pytorch", "07_gpt")}
    assert found == {"02_backprop": (), "04_tensorflow": ("tensorflow",), "05_pytorch": ("torch",),
                     "07_gpt": ("torch",)}


def test_a_sandbox_that_dies_retires_its_warm_process():
    retire_all()
    printed(run("print(1)"))
    before = zygotes()
    result = run("import os\nos._exit(3)")
    assert "exited with status 3" in " ".join(result.notes)
    after = zygotes()
    assert before and not set(before) & set(after)  # a fresh warm process for what comes next
    assert printed(run("print(2)")) == "2\n"


def test_a_warm_process_killed_mid_run_ends_its_sandbox_and_the_next_one_starts_fresh():
    retire_all()
    printed(run("print(0)"))
    [zygote] = zygotes()
    started = time.monotonic()
    # The cell kills nothing of the host (it cannot): the test kills the warm process meanwhile.
    import threading
    threading.Timer(1.0, os.kill, (zygote, signal.SIGKILL)).start()
    result = run("import time\nfor _ in range(30):\n    time.sleep(0.1)\nprint('still graded')")
    assert printed(result) == "still graded\n"  # its launcher does not depend on the warm process
    assert time.monotonic() - started < 30
    assert zygote not in zygotes()
    assert printed(run("print(3)")) == "3\n"


def test_someone_else_holding_the_socket_name_gets_nothing_and_grading_starts_cold():
    retire_all()
    env = jail.harness_env(runner.thread_env(FAST.threads))
    name = warm.socket_name(SLOT, (), env)
    read, write = os.pipe()
    squatter = os.fork()
    if squatter == 0:  # another user of the machine binds the name first
        os.close(read)
        os.setgid(65534)
        os.setuid(65534)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind("\0" + name)
        server.listen(1)
        os.write(write, b"1")
        conn, _ = server.accept()
        conn.settimeout(5)
        got = conn.recv(65536)
        os._exit(3 if got else 0)  # 3: the grader sent it a request
    os.close(write)
    os.read(read, 1)
    try:
        assert printed(run("import os\nprint(os.getuid())")) == f"{runner.SANDBOX_UID_BASE + SLOT}\n"
        assert zygotes() == []  # started cold: no warm process could take the name
    finally:
        os.kill(squatter, signal.SIGKILL)
        _, status = os.waitpid(squatter, 0)
    assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3)


@pytest.mark.parametrize("name", ["02_backprop", "05_pytorch"])
def test_warm_and_cold_give_the_same_grades(name, monkeypatch):
    spec = exercises.notebook_spec(name)
    template = release_notebook(ROOT, name)
    wrong = next(e for e in spec.exercises if e.mistakes)
    submissions = {"solution": solution(name),
                   "release": nbformat.read(ROOT / "notebooks" / name / f"{name}.ipynb", as_version=4),
                   "mistake": with_answers(name, {wrong.answer_id: wrong.mistakes[0].inject})}

    def grades(cold: bool) -> dict:
        monkeypatch.setenv("GRADER_COLD_SANDBOX", "1" if cold else "0")
        out = {}
        for label, nb in submissions.items():
            graded = grade_notebook(nb, template, spec, seed=5, slot=SLOT)
            out[label] = [(r.name, r.points, r.hint) for r in graded.exercises]
        return out

    cold, warm_ = grades(cold=True), grades(cold=False)
    assert warm_ == cold
    assert [points for _, points, _ in cold["solution"]] == [e.points for e in spec.exercises]
    assert [points for _, points, _ in cold["release"]] == [0] * len(spec.exercises)
    assert dict((n, h) for n, _, h in cold["mistake"])[wrong.name] == wrong.mistakes[0].hint
