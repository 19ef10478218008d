"""``python -m bench`` (``make bench``): every benchmark, one after the other, in one run.

Prints the machine first (timings mean nothing without it), then the five tables: grading
throughput, grading at class size, notebook run times, NumPy against the frameworks, and the
site build. A benchmark that cannot run is reported and the others still run; the exit status is then 1.
A missed target is a result, not a failure: it is printed, and the exit status stays 0.

Also holds the two helpers every benchmark script shares: ``print_table`` and ``run_timed``.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = Path(sys.executable).parent  # jupyter, nbgrader, grader and mkdocs of this environment


class CannotRun(RuntimeError):
    """A benchmark cannot run at all (a tool is missing or fails); str(error) says why.

    Each script's ``main`` catches it and returns 1 (``report_cannot_run``): this module is
    also imported as ``bench.__main__`` by the scripts, a second copy of the class when it
    runs as ``python -m bench``, so catching it here would miss theirs.
    """


def report_cannot_run(title: str, error: Exception) -> int:
    print(f"\n## {title}: could not run\n\n{error}", flush=True)
    return 1


def print_table(title: str, rows: list[tuple], notes: list[str] = ()) -> None:
    """A plain-text table: the first row is the header; numbers are already formatted."""
    rows = [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"\n## {title}\n")
    for n, row in enumerate(rows):
        cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if notes:
        print()
        for note in notes:
            print(note)
    sys.stdout.flush()


def tool_env(**extra: str) -> dict[str, str]:
    """This environment's scripts first on PATH (nbgrader runs ``alembic`` by name), quiet TensorFlow."""
    env = {**os.environ, "PATH": f"{SCRIPTS}{os.pathsep}{os.environ.get('PATH', '')}",
           "TF_CPP_MIN_LOG_LEVEL": "2", "PYDEVD_DISABLE_FILE_VALIDATION": "1", "NO_MKDOCS_2_WARNING": "1"}
    env.pop("GRADER_DB_URL", None)  # each benchmark names its own gradebook
    env.update(extra)
    return env


def run_timed(cmd: list[str], what: str, cwd: Path | None = None, env: dict | None = None,
              timeout: float = 1800) -> tuple[float, str]:
    """Run ``cmd``; return (wall seconds, stdout). CannotRun with the tail of its output if it fails."""
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CannotRun(f"{what}: {error}") from None
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise CannotRun(f"{what}: exit status {done.returncode}\n  " + "\n  ".join(tail))
    return seconds, done.stdout


# --- the machine ----------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(*distributions: str) -> str:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def describe_machine() -> list[str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"
    return [
        f"date:     {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"CPU:      {_cpu_model()}, {usable} cores usable ({os.cpu_count()} online)",
        f"memory:   {_memory()}",
        f"load:     {load} (1, 5, 15 min averages when the run started)",
        f"OS:       {platform.platform()}",
        f"Python:   {platform.python_version()}",
        f"packages: numpy {_version('numpy')}, torch {_version('torch')}, "
        f"tensorflow {_version('tensorflow-cpu', 'tensorflow')}, nbgrader {_version('nbgrader')}, "
        f"mkdocs {_version('mkdocs')}",
    ]


# --- all of them ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny inputs: checks that everything runs, measures nothing")
    args = parser.parse_args(argv)

    from . import frameworks, grading, notebooks, site  # noqa: F401 (imported here: each is also a script)

    print("# Benchmarks of the course" + (" (--quick: tiny inputs, figures meaningless)" if args.quick else ""))
    print()
    print("\n".join(describe_machine()))
    started = time.perf_counter()
    failed = []
    runs = [("grading", grading.main, ["--quick"] if args.quick else []),
            # Quick: a class of 2 of the first notebook; else make bench's rows, 60 x 02 to 10 x 09.
            ("grading at class size", grading.main,
             ["--class", "2", "--notebook", "01_forward"] if args.quick else ["--class-table"]),
            ("notebooks", notebooks.main, ["--quick"] if args.quick else []),
            ("frameworks", frameworks.main, ["--quick"] if args.quick else []),
            ("site", site.main, ["--quick"] if args.quick else [])]
    for name, run, argv in runs:
        if run(argv):  # each prints why it could not run
            failed.append(name)
    print(f"\nall benchmarks: {time.perf_counter() - started:.0f} s" + (f"; could not run: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
