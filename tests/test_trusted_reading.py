"""Nothing a sandbox writes can crash or exhaust the grader, and one submission never stops a batch.

- the reader of results (``grader.sandbox.runner.read_results``) on forged archives: huge declared
  shapes, compressed members that inflate, wrong, extra and duplicate member names, truncated
  files, objects; and the trusted process's peak memory while it reads them, measured;
- a class for notebook 01 through ``grader autograde``: honest students next to learner code
  that replaced the harness's result writer (each forging one call's file) and a submission
  whose worker process is killed mid-grading (retried once, then recorded as failed, and not
  tried again by the next run); the same attacks through ``grader check``;
- an exception while grading one submission is that submission's failure, in ``autograde``
  and in ``grader check`` (one line, exit 2, no traceback).
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import warnings
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from numpy.lib import format as npy_format

from grader.grading import autograde, results
from grader.grading import check as checkcmd
from grader.sandbox import runner
from grader.sandbox.runner import read_results
from notebook_cases import ROOT, make_course
from redteam import READING_ATTACKS
from sample_class import ASSIGNMENT, SOLUTION, RELEASE
from test_autograde import LIMITS, grader
from test_redteam import build

UNREADABLE = "the result could not be read back as numbers"
BUDGET = 1 << 20


def npz(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def npy_header(shape, descr="<f8", fortran=False) -> bytes:
    out = io.BytesIO()
    npy_format.write_array_header_1_0(out, {"descr": descr, "fortran_order": fortran, "shape": shape})
    return out.getvalue()


def archive(members: list[tuple[str, bytes]], compression=zipfile.ZIP_STORED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": on purpose
        for name, data in members:
            zf.writestr(name, data)
    return out.getvalue()


def inflating_member(declared: int, zeros: int) -> bytes:
    """A deflated a0.npy that declares ``declared`` float64 and inflates to ``zeros`` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("a0.npy", "w", force_zip64=True) as member:
            member.write(npy_header((declared,)))
            chunk = bytes(1 << 22)
            for _ in range(zeros >> 22):
                member.write(chunk)
    return out.getvalue()


def announcing(raw: bytes, members: int) -> bytes:
    """The archive with its end-of-central-directory record claiming ``members`` members."""
    end = raw[-22:]
    return raw[:-22] + end[:8] + struct.pack("<2H", members, members) + end[12:]


# --- the reader ---------------------------------------------------------------------------------

def test_honest_results_read_back_exactly():
    arrays = [np.arange(6.0).reshape(2, 3), np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3)),
              np.array(3.5, np.float32), np.zeros((0, 4)), np.array([True, False]), np.arange(3, dtype=np.uint8)]
    got = read_results(npz(**{f"a{i}": a for i, a in enumerate(arrays)}), len(arrays), BUDGET)
    assert got is not None and len(got) == len(arrays)
    for want, have in zip(arrays, got):
        assert have.dtype == want.dtype and have.shape == want.shape and np.array_equal(have, want)


def test_the_budget_is_exact():
    data = npz(a0=np.zeros(1000), a1=np.zeros(24))  # 8,192 bytes of arrays
    assert read_results(data, 2, 8192) is not None
    assert read_results(data, 2, 8191) is None


@pytest.mark.parametrize("raw,count", [
    (archive([("a0.npy", npy_header((10 ** 12,)))]), 1),                      # declares 8 TB
    (archive([("a0.npy", npy_header((1 << 40, 1 << 40)))]), 1),               # declares more than 2**64 bytes
    (archive([("a0.npy", npy_header((100,)) + bytes(800))], zipfile.ZIP_DEFLATED), 1),  # compressed, small
    (inflating_member(1 << 25, 1 << 28), 1),                                  # 256 KB that inflate to 256 MiB
    (npz(b0=np.zeros(3)), 1),                                                 # wrong name
    (npz(a0=np.zeros(3), a1=np.zeros(3)), 1),                                 # an extra member
    (npz(a0=np.zeros(3)), 2),                                                 # a missing member
    (archive([("a0.npy", npy_header((3,)) + bytes(24)), ("a0.npy", npy_header((3,)) + bytes(24))]), 2),  # twice
    (archive([("a0.npy", npy_header((3,)) + bytes(24)), ("../a1.npy", npy_header((3,)) + bytes(24))]), 2),
    (npz(a0=np.zeros(1000))[:4000], 1),                                       # a truncated file
    (archive([("a0.npy", npy_header((1000,)) + bytes(80))]), 1),              # fewer bytes than declared
    (archive([("a0.npy", npy_header((3,)) + bytes(24) + b"more")]), 1),       # more bytes than declared
    (npz(a0=np.array([{"x": 1}], dtype=object)), 1),                          # objects (pickle)
    (archive([("a0.npy", npy_header((3,), descr="|O") + bytes(24))]), 1),     # objects, declared
    (npz(a0=np.zeros(3, dtype=[("a", "<f8"), ("b", "<i4")])), 1),             # a structured dtype
    (npz(a0=np.zeros(3, dtype=np.complex128)), 1),                            # complex numbers
    (npz(a0=np.array(["text"])), 1),                                          # strings
    (archive([("a0.npy", npy_header((2,), descr=("<f8", (1 << 30,))))]), 1),  # a sub-array dtype
    (archive([("a0.npy", b"\x93NUMPY\x09\x00" + bytes(64))]), 1),             # an unknown .npy version
    (b"PK\x05\x06" + bytes(18), 1),                                           # an empty archive
    (announcing(npz(a0=np.zeros(3)), 60000), 1),                              # claims 60,000 members
    (b"", 1),
    (b"not a zip file at all" * 10, 1),
])
def test_forged_archives_are_unreadable(raw, count):
    assert read_results(raw, count, BUDGET) is None


def test_an_unreadable_call_fails_alone(tmp_path):
    limits = runner.Limits()
    (tmp_path / "0.npz").write_bytes(archive([("a0.npy", npy_header((10 ** 12,)))]))
    (tmp_path / "1.npz").write_bytes(npz(a0=np.ones(3)))
    assert runner._load_outputs(tmp_path / "0.npz", [""], limits) == runner.UNREADABLE
    good = runner._load_outputs(tmp_path / "1.npz", [""], limits)
    assert np.array_equal(good["outputs"][""], np.ones(3))
    assert runner._load_outputs(tmp_path / "1.npz", ["", "extra"], limits) == runner.UNREADABLE


PEAK_MEMORY_BOUND = 48 << 20  # the largest valid result is 16 MiB: its file and its arrays, 32 MiB, plus slack

# The resident-set high-water mark of this process alone: reset it (clear_refs 5, Linux 4.0+)
# once the modules are imported, read it after the reads.
MEASURE = r"""
import sys
from pathlib import Path
from grader.sandbox import runner

def kib(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field + ":"))
    return int(line.split()[1]) << 10

folder, limits = Path(sys.argv[1]), runner.Limits()
runner.read_results(b"", 1, 1)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = kib("VmRSS")
results = {path.stem: runner._load_outputs(path, [""], limits) for path in sorted(folder.glob("*.npz"))}
after = kib("VmHWM")
print(" ".join(f"{name}={'outputs' in result}" for name, result in results.items()), after - before)
"""


def test_peak_memory_of_the_trusted_process_stays_bounded(tmp_path):
    limits = runner.Limits()
    files = {
        "honest_largest": lambda: npz(a0=np.ones((limits.result_bytes - 4096) // 8)),  # a valid result near the budget
        "huge_shape": lambda: archive([("a0.npy", npy_header((10 ** 12,)))]),
        "inflating": lambda: inflating_member(1 << 27, 1 << 30),  # 1 GiB of zeros once inflated
        "many_members": lambda: npz(**{f"a{i}": np.zeros(1) for i in range(20000)}),
        "big_file": lambda: bytes(limits.file_bytes),  # at the sandbox's file-size cap
    }
    for name, make in files.items():
        (tmp_path / f"{name}.npz").write_bytes(make())
    done = subprocess.run([sys.executable, "-c", MEASURE, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    *readable, grew = done.stdout.split()
    assert sorted(readable) == ["big_file=False", "honest_largest=True", "huge_shape=False", "inflating=False",
                                "many_members=False"]
    print(f"peak resident memory grew by {int(grew) / (1 << 20):.1f} MiB reading the forged results and the "
          f"largest valid one (bound {PEAK_MEMORY_BOUND >> 20} MiB)")
    assert int(grew) < PEAK_MEMORY_BOUND


# --- a class: honest students next to forged results and a killed worker -------------------------

KILL_MARKER = "KILL-MY-WORKER"


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def kill_workers_grading(marker: str, stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL every grading worker whose sandbox runs a notebook containing ``marker``: a
    worker dying mid-submission, as when the kernel's OOM killer picks it."""
    while not stop.is_set():
        for proc in Path("/proc").glob("[0-9]*"):
            try:  # a harness works in its sandbox's scratch folder, where the job lies
                job = (proc / "cwd" / "job.json").read_text()
            except OSError:
                continue
            if marker not in job:
                continue
            # The worker that grades it named the sandbox's control group after itself; it is
            # a child of the forkserver (whose command line it shares, being forked from it).
            pid = _worker_of(proc)
            if pid is not None and any("forkserver" in a for a in _cmdline(pid)) and pid not in killed:
                killed.append(pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        stop.wait(0.05)


def _worker_of(proc: Path) -> int | None:
    """The grading process whose sandbox ``proc`` belongs to: its control group is named
    "<that process's pid>-slot<N>-<count>" (grader.sandbox.box)."""
    try:
        groups = (proc / "cgroup").read_text()
    except OSError:
        return None
    match = re.search(r"/grader/(\d+)-slot", groups)
    return int(match.group(1)) if match else None


def _killed_mid_grading(nb):
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "sigmoid")
    cell.source = f"import time\ntime.sleep(3)  # {KILL_MARKER}\n" + cell.source
    return nb


@pytest.fixture(scope="module")
def forged_class(tmp_path_factory):
    base = tmp_path_factory.mktemp("forged")
    course = make_course(base / "course")
    submitted = base / "submitted"
    notebooks = {attack.name: build(attack, {}) for attack in READING_ATTACKS}
    notebooks["honest"] = nbformat.read(SOLUTION, as_version=4)
    notebooks["honest_partial"] = nbformat.read(RELEASE, as_version=4)
    notebooks["worker_killed"] = _killed_mid_grading(nbformat.read(SOLUTION, as_version=4))
    for student, nb in notebooks.items():
        (submitted / student / ASSIGNMENT).mkdir(parents=True)
        nbformat.write(nb, submitted / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=kill_workers_grading, args=(KILL_MARKER, stop, killed), daemon=True)
    killer.start()
    done = grader("autograde", ASSIGNMENT, submitted, "--jobs", "2", "--json", "--course-dir", course, *LIMITS,
                  check=False)
    stop.set()
    killer.join()
    rerun = grader("autograde", ASSIGNMENT, submitted, "--json", "--course-dir", course, *LIMITS, check=False)
    return {"course": course, "done": done, "summary": {r["student"]: r for r in json.loads(done.stdout)},
            "killed": killed, "rerun": rerun, "notebooks": notebooks}


def test_honest_students_keep_full_marks_next_to_the_attacks(forged_class):
    summary = forged_class["summary"]
    assert summary["honest"]["score"] == 10 and "failure" not in summary["honest"]
    assert summary["honest_partial"]["score"] == 0 and "failure" not in summary["honest_partial"]


@pytest.mark.parametrize("attack", READING_ATTACKS, ids=[a.name for a in READING_ATTACKS])
def test_a_forged_result_fails_only_its_own_call(forged_class, attack):
    row = forged_class["summary"][attack.name]
    assert row["score"] == attack.score and row["status"] == "graded" and "failure" not in row
    manifest = json.loads((forged_class["course"] / "autograded" / attack.name / ASSIGNMENT / "grader.json").read_text())
    hints = {e["name"]: e["hint"] for nb in manifest["notebooks"] for e in nb["exercises"]}
    assert hints["relu"] == UNREADABLE


def test_a_killed_worker_is_retried_once_then_recorded_as_failed(forged_class):
    done, row = forged_class["done"], forged_class["summary"]["worker_killed"]
    assert len(forged_class["killed"]) == autograde.WORKER_ATTEMPTS  # the first attempt and one retry
    assert row["status"] == "failed" and row["score"] == 0
    assert "stopped its worker process 2 times (killed by SIGKILL)" in row["failure"]
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "the grader failed on 1 submission(s)" in done.stderr and "worker_killed" in done.stderr
    feedback = (forged_class["course"] / "autograded" / "worker_killed" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "stopped its worker process 2 times" in feedback


def test_the_next_run_keeps_every_grade_and_does_not_retry_the_failure(forged_class):
    rerun = forged_class["rerun"]
    summary = {r["student"]: r for r in json.loads(rerun.stdout)}
    assert all(row["status"] == "unchanged" for row in summary.values())
    assert {s: r["score"] for s, r in summary.items()} == {s: r["score"] for s, r in forged_class["summary"].items()}
    assert summary["worker_killed"]["failure"] and rerun.returncode == 1  # still reported, never crashed on again


def test_grader_check_agrees_and_never_prints_a_traceback(forged_class, tmp_path):
    path = tmp_path / "forged.ipynb"
    nbformat.write(forged_class["notebooks"]["forged_inflating_member"], path)
    done = subprocess.run(["grader", "check", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    row = next(line.split(None, 3) for line in done.stdout.splitlines() if line.startswith("relu "))
    assert row == ["relu", "0/1", "FAIL", UNREADABLE] and "total: 9/10" in done.stdout


# --- an exception while grading is that submission's failure --------------------------------------

def test_an_exception_while_grading_fails_that_submission_only(tmp_path, monkeypatch):
    course = make_course(tmp_path / "course")
    for student, source in (("honest", RELEASE), ("crashes_the_grader", RELEASE), ("recursion", RELEASE)):
        (tmp_path / "submitted" / student / ASSIGNMENT).mkdir(parents=True)
        (tmp_path / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_bytes(source.read_bytes())
    real = autograde.grade_notebook
    errors = {"crashes_the_grader": MemoryError(), "recursion": RecursionError("maximum recursion depth exceeded")}

    def grade_notebook(nb, template, spec, seed, slot=0, limits=None):
        student = next((s for s in errors if s in str(seed_students.get(seed, ""))), None)
        if student:
            raise errors[student]
        return real(nb, template, spec, seed, slot=slot, limits=limits)

    seed_students = {}
    real_seed = autograde.stable_seed

    def stable_seed(*parts):
        seed = real_seed(*parts)
        seed_students[seed] = parts[1]
        return seed

    monkeypatch.setattr(autograde, "grade_notebook", grade_notebook)
    monkeypatch.setattr(autograde, "stable_seed", stable_seed)
    in_process = lambda tasks: (autograde.grade_submission(task) for task in tasks)  # noqa: E731
    outcomes = {o.student: o for o in autograde.autograde(course, ASSIGNMENT, tmp_path / "submitted",
                                                          f"sqlite:///{course / 'gradebook.db'}", progress=False,
                                                          runner=in_process)}
    assert outcomes["honest"].failure == "" and outcomes["honest"].status == "graded"
    assert outcomes["crashes_the_grader"].status == "failed" and outcomes["crashes_the_grader"].score == 0
    assert outcomes["crashes_the_grader"].failure.startswith("the grader failed on this submission (MemoryError)")
    assert "(RecursionError: maximum recursion depth exceeded)" in outcomes["recursion"].failure
    manifest = json.loads(results.manifest_path(course, "recursion", ASSIGNMENT).read_text())
    assert manifest["failure"] == outcomes["recursion"].failure
    assert all(e["hint"] == outcomes["recursion"].failure for e in manifest["notebooks"][0]["exercises"])


def test_grader_check_reports_a_grader_failure_in_one_line(monkeypatch, capsys):
    def explode(*args, **kwargs):
        raise MemoryError("could not allocate")

    monkeypatch.setattr(checkcmd, "grade_notebook", explode)
    assert checkcmd.run(str(SOLUTION)) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"grader check: {SOLUTION}: the grader failed (MemoryError: could not allocate)\n"


def test_a_judge_that_fails_on_a_result_fails_that_exercise_only(monkeypatch):
    from grader.checking import exercises, judge
    exercise = exercises.notebook_spec(ASSIGNMENT).exercise("softmax")

    def judge_one(exercise, call, result):
        raise RecursionError("deep")

    monkeypatch.setattr(judge, "_judge_one", judge_one)
    calls = exercise.visible_calls()
    verdict = judge.judge_calls(exercise, calls, [{"outputs": {}}] * len(calls))
    assert not verdict.passed and verdict.hint == "the result could not be judged (RecursionError)."
