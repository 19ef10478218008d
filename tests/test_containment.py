"""Red team, round 3: one sandbox must never harm the next submission on its slot, or the host.

Each attack runs in a real sandbox on one job slot (``SLOT``): forged events, a process that
leaves its session, a double-forked daemon, SysV shared memory, memory and disk beyond the
caps, spinners that outlive their cell, a supervisor that fails. After each, nothing of it
is left (no process of the slot's user, no shared memory, no control group, no scratch
file), and an honest notebook graded on the same slot afterwards earns full marks.

Needs root and control groups (the course's CI and grading machines); elsewhere the sandbox
cannot promise this (README: Trust), and these tests say so instead of passing.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from grader.checking import exercises
from grader.course import release_notebook
from grader.grading.grade import grade_notebook
from grader.sandbox import cgroups, runner
from grader.sandbox.failures import Failure
from notebook_cases import ROOT

SLOT = 7  # a slot no other test module uses: its user id is ours alone
UID = runner.SANDBOX_UID_BASE + SLOT
FAST = runner.Limits(cell_timeout=4, notebook_timeout=40, memory_bytes=1 << 30, scratch_bytes=64 << 20, grace=1.0)
CALL = {"fn": "f", "args": [], "kwargs": {}, "timeout": 4}  # f() -> 1.0, defined by the last cell

pytestmark = pytest.mark.skipif(not (runner.can_isolate() and cgroups.available()),
                                reason="containment needs root, namespaces and control groups")


def processes_of(uid: int) -> list[str]:
    """Every process on the host (zombies included) running as ``uid``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^Uid:\s+(\d+)", status, re.MULTILINE)
        if match and int(match.group(1)) == uid:
            state = re.search(r"^State:\s+(.*)$", status, re.MULTILINE)
            found.append(f"{pid} {status.splitlines()[0]} {state.group(1) if state else ''} "
                         f"{Path(f'/proc/{pid}/cgroup').read_text().split()[3:5]}")
    return found


def shared_memory_of(uid: int) -> list[str]:
    lines = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return [line for line in lines if int(line.split()[7]) == uid]


def groups_left() -> list[str]:
    parent = cgroups.CGROUP_ROOT / ("pids" if cgroups.available() == "v1" else "") / cgroups.PARENT
    return [p.name for p in parent.iterdir() if p.is_dir() and p.name.startswith(f"{os.getpid()}-")]


def assert_nothing_left() -> None:
    for _ in range(50):  # the kernel finishes tearing a namespace down a moment after its init
        if not processes_of(UID):
            break
        time.sleep(0.02)
    assert processes_of(UID) == []
    assert shared_memory_of(UID) == []
    assert groups_left() == []
    assert list(Path(tempfile.gettempdir()).glob(f"grader-{os.getpid()}-*")) == []  # scratch unmounted, removed


def resident(field: str) -> int:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1]) << 10


def run(*sources: str, limits: runner.Limits = FAST, define_f: bool = True) -> runner.RunResult:
    cells = [{"source": s} for s in sources] + ([{"source": "def f():\n    return 1.0\n"}] if define_f else [])
    result = runner.run(cells, [CALL], {}, limits, slot=SLOT)
    assert result.isolated and result.contained
    return result


DAEMON = """
import os, time
if os.fork() == 0:                      # a double-forked daemon in its own session
    os.setsid()
    if os.fork() == 0:
        while True:
            time.sleep(0.1)
    os._exit(0)
"""


def forged(line: str) -> str:
    return DAEMON + f"open('/sandbox/events.jsonl', 'a').write({line!r} + '\\n')\n"


@pytest.mark.parametrize("line, reason", [
    ('{"event": "cell_start", "index": "not-a-number"}', "cell_start with index 'not-a-number'"),
    ('{"event": "call_start", "index": 99999999999999999999}', "call_start with index"),
    ("[" * 40_000 + "]" * 40_000, "nested deeper than 4 levels"),
    ('{"event": "cell_end", "index": 0, "ok": true, "error": null, "stdout": "x", "extra": 1}',
     "cell_end that is not {index, ok, error, stdout}"),
    ('{"event": "call_end", "index": 0, "ok": false, "keys": null, "error": {"ename": 7, "evalue": ""}}',
     "error name or value is not text"),
    ('{"event": "cell_end", "index": 0, "ok": true, "error": null, "stdout": "' + "x" * 200_000 + '"}',
     "a line of 200"),
], ids=["index_not_a_number", "huge_index", "deep_nesting", "extra_field", "ename_not_text", "long_line"])
def test_a_forged_event_fails_the_submission_and_kills_the_sandbox(line, reason):
    result = run(forged(line))
    assert result.invalid is not None and reason in result.invalid
    assert "\n" not in result.invalid
    assert result.cells == {}
    assert result.calls == {0: {"error": {"ename": Failure.INVALID_EVENT.value, "evalue": result.invalid}}}
    assert_nothing_left()


def test_too_many_events_fail_the_submission_in_bounded_memory():
    """47 MB of valid-looking events: refused past the budget, never all kept."""
    line = '{"event": "cell_end", "index": 0, "ok": true, "error": null, "stdout": "' + "x" * 60_000 + '"}\n'
    Path("/proc/self/clear_refs").write_text("5")  # this process's peak memory, from now
    before = resident("VmRSS")
    result = run(f"f = open('/sandbox/events.jsonl', 'a')\nfor _ in range(800):\n    f.write({line!r})\n",
                 limits=dataclasses.replace(FAST, scratch_bytes=128 << 20))
    assert resident("VmHWM") - before < 32 << 20  # events are read 4 MiB at a time and not kept
    assert result.invalid == ("the sandbox wrote an invalid event (more than 32 MiB of events): "
                              "the submission is not graded")
    assert_nothing_left()


def test_a_huge_exception_name_is_cut_into_valid_json():
    result = run("def f():\n    raise type('E' * 1_000_000, (Exception,), {})('v' * 1_000_000)\n",
                 define_f=False)
    assert result.invalid is None
    assert result.calls[0]["error"]["ename"] == "E" * 100
    assert result.calls[0]["error"]["evalue"] == "v" * 2000


def test_a_process_that_leaves_its_session_dies_with_its_cell():
    """os.setsid() in the harness itself, then a hang that ignores the interruption: the harness is
    killed, the notebook re-run without the cell, and nothing survives."""
    result = run("import os, signal, time\nos.setsid()\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)\n"
                 "while True:\n    time.sleep(0.05)\n")
    assert result.cells[0]["error"]["ename"] == Failure.TIME_LIMIT.value
    assert "outputs" in result.calls[0]  # the notebook went on without the cell
    assert_nothing_left()


def test_processes_started_by_a_cell_end_with_it():
    """A daemon and eight spinners in their own sessions: gone before the next cell runs."""
    spinners = DAEMON + """
for _ in range(8):
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
"""
    count = """
import os, time
time.sleep(0.5)
alive = [p for p in os.listdir('/proc') if p.isdigit()
         and 'State:\\tZ' not in open(f'/proc/{p}/status').read()]
print(len(alive))
"""
    result = run(spinners, count)
    assert result.cells[1]["stdout"].strip() == "1"  # the harness alone (the namespace's init)
    assert_nothing_left()


def test_shared_memory_does_not_outlive_the_sandbox():
    plant = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
segment = libc.shmget(0x5EC7E7, 64 << 20, 0o1000 | 0o666)   # IPC_CREAT
assert segment >= 0, ctypes.get_errno()
ctypes.memmove(libc.shmat(segment, None, 0), b"the answers are...", 18)
"""
    look = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.shmget(0x5EC7E7, 0, 0))
"""
    assert run(plant).cells[0]["error"] is None
    assert_nothing_left()
    assert run(look).cells[0]["stdout"].strip() == "-1"  # the next submission finds nothing


def test_memory_is_capped_for_all_processes_together():
    """Six processes of 256 MiB each, under a 1 GiB cap that each one alone respects."""
    hog = """
import os, time
children = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        block = bytearray(256 << 20)
        for i in range(0, len(block), 4096):
            block[i] = 1
        time.sleep(1)
        os._exit(0)
    children.append(pid)
print(sorted(os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in children))
"""
    result = run(hog, limits=dataclasses.replace(FAST, cell_timeout=20, notebook_timeout=60))
    assert result.memory_peak is not None and result.memory_peak <= FAST.memory_bytes
    statuses = [int(code) for code in result.cells[0]["stdout"].strip(" []\n").split(",")]
    assert len(statuses) == 6 and 0 < statuses.count(-9) < 6  # some were killed: together they did not fit
    assert_nothing_left()


def test_the_scratch_folder_is_a_small_tmpfs_that_counts_as_memory():
    fill = """
with open('/sandbox/big', 'wb') as f:
    for _ in range(1000):
        f.write(bytes(1 << 20))
"""
    result = run(fill)
    error = result.cells[0]["error"]
    assert error["ename"] == "OSError" and "No space left on device" in error["evalue"]
    assert_nothing_left()


def test_cpu_is_capped_for_the_whole_group():
    """Two spinners in a group allowed a twentieth of a core get that between them (a share so
    small that even on a busy machine they would exceed it unthrottled)."""
    group = cgroups.Cgroup(f"{os.getpid()}-cpu-test", 256 << 20, 16, cores=0.05)
    try:
        pids = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:  # never back into pytest, whatever happens
                try:
                    group.join()
                    while True:
                        pass
                finally:
                    os._exit(1)
            pids.append(pid)
        time.sleep(1.0)
        used = sum(int(Path(f"/proc/{p}/stat").read_text().split()[13]) + int(Path(f"/proc/{p}/stat").read_text()
                   .split()[14]) for p in pids) / os.sysconf("SC_CLK_TCK")
        stat = (group.dirs.get("cpu") or group.dirs[""]) / "cpu.stat"
        throttled = int(re.search(r"^nr_throttled (\d+)$", stat.read_text(), re.MULTILINE).group(1))
    finally:
        group.destroy()
        for pid in pids:
            os.waitpid(pid, 0)
    assert throttled > 0  # the quota stopped them, however busy the machine
    assert used < 0.15  # 0.05 s a second, and the clock ticks at 10 ms; unlimited, up to 2 s on two cores


def test_a_failing_supervisor_still_kills_everything(monkeypatch):
    def broken(self, event):
        if event.kind == "cell_end":
            raise RuntimeError("the supervisor broke")
        original(self, event)

    original = runner._Attempt._apply
    monkeypatch.setattr(runner._Attempt, "_apply", broken)
    with pytest.raises(RuntimeError, match="the supervisor broke"):
        runner.run([{"source": DAEMON}], [], {}, FAST, slot=SLOT)
    assert_nothing_left()


def test_a_numpy_notebook_cannot_import_the_frameworks_by_any_path():
    tries = """
import importlib, importlib.util, sys, glob, ctypes
results = []
for name in ("torch", "tensorflow", "keras"):
    try:
        importlib.import_module(name)
        results.append(name + " imported")
    except ImportError as error:
        results.append("numpy notebook" if "this is a NumPy notebook" in str(error) else str(error))
found = [p for entry in sys.path for p in glob.glob(entry + "/torch/**/*.so*", recursive=True)]
found += [p for entry in sys.path for p in glob.glob(entry + "/tensorflow/**/*.so*", recursive=True)]
print(results, len(found))
"""
    limits = runner.Limits(cell_timeout=20, notebook_timeout=40, numpy_only=True)
    result = run(tries, limits=limits)
    assert result.cells[0]["stdout"].strip() == "['numpy notebook', 'numpy notebook', 'numpy notebook'] 0"


def test_an_answer_with_pytorch_autograd_gets_the_numpy_hint():
    """Notebook 02 answered with PyTorch: the exercise fails and the hint says why."""
    spec = exercises.notebook_spec("02_backprop")
    nb = nbformat.read(ROOT / "solutions/02_backprop/02_backprop.ipynb", as_version=4)
    answers = {
        "relu_backward": "import torch\n\ndef relu_backward(dout, z):\n"
                         "    t = torch.tensor(z, requires_grad=True)\n    torch.relu(t).backward(torch.tensor(dout))\n"
                         "    return t.grad.numpy()\n",
        "sigmoid_backward": "def sigmoid_backward(dout, z):\n    import torch\n    return dout\n",
    }
    for cell in nb.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") in answers:
            cell.source = answers[cell.metadata.nbgrader.grade_id]
    graded = grade_notebook(nb, release_notebook(ROOT, "02_backprop"), spec, seed=3, slot=SLOT)
    hints = {r.name: (r.points, r.hint) for r in graded.exercises}
    expected = ("cannot be imported: this is a NumPy notebook, graded with NumPy alone (a framework would do "
                "the work it teaches, such as the backward pass); write it with NumPy.")
    assert hints["relu_backward"] == (0, "torch " + expected)
    assert hints["sigmoid_backward"] == (0, "torch " + expected)
    mlp = spec.exercise("mlp_backward").points
    assert hints["mlp_backward"][0] == 0 and "relu_backward" in hints["mlp_backward"][1]  # it calls relu_backward
    assert graded.score == spec.total_points - 2 - mlp  # every other exercise keeps its points
    assert_nothing_left()


def test_the_next_honest_notebook_on_the_slot_gets_full_marks():
    """After every attack above (this module runs them first), notebook 01 graded on the same slot."""
    spec = exercises.notebook_spec("01_forward")
    nb = nbformat.read(ROOT / "solutions/01_forward/01_forward.ipynb", as_version=4)
    graded = grade_notebook(nb, release_notebook(ROOT, "01_forward"), spec, seed=5, slot=SLOT)
    assert graded.score == spec.total_points == 10
    assert_nothing_left()


WITHOUT_GROUPS = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
import test_containment as t
from grader.sandbox import runner
result = runner.run([{{"source": t.DAEMON + "os.setsid()\\\\nwhile True:\\\\n    time.sleep(0.05)\\\\n"}}], [], {{}},
                    t.FAST, slot=t.SLOT)
print(result.isolated, result.contained)
"""


def test_without_control_groups_it_says_so_and_still_leaves_no_process(tmp_path):
    """Root, namespaces, no usable control groups: the grader says so in one line; at the end
    every process of the slot's user is killed all the same."""
    done = subprocess.run([sys.executable, "-c", WITHOUT_GROUPS], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "GRADER_NO_CGROUPS": "1", "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "True False", done.stderr
    assert done.stderr.strip() == ("grader: no usable control groups here: a sandbox's processes are limited one by "
                                   "one, not all together, and run until its notebook ends (README: What the "
                                   "sandbox guarantees)")
    assert_nothing_left()


def test_the_output_kept_for_the_feedback_is_bounded():
    """Sixty cells printing 20,000 characters each: the first 1,000,000 characters are kept."""
    result = run(*["print('x' * 30_000)"] * 60, limits=dataclasses.replace(FAST, notebook_timeout=60))
    kept = [result.cells[i]["stdout"] for i in range(60)]
    assert sum(map(len, kept)) <= FAST.outputs_total_chars + 60 * 100
    assert kept[-1] == "[output not kept: the notebook printed more than 1,000,000 characters]"
    assert kept[0].startswith("x" * 20_000)
