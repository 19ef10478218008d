"""Notebook run times: each solution notebook executed end to end, as a learner runs it.

A learner presses "Run all" and waits; on a 2-core laptop or a free Colab machine the wait
must stay short. Each notebook in solutions/ is executed by ``jupyter nbconvert --to notebook
--execute`` (a fresh kernel, every cell in order, the start-up of Jupyter and the kernel
included) and timed against its target: NumPy notebooks under 30 s, framework notebooks
(TensorFlow, PyTorch) under 60 s, the whole course under 3 minutes.

    python -m bench.notebooks [--quick] [--repeats N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from bench.__main__ import ROOT, SCRIPTS, CannotRun, print_table, report_cannot_run, run_timed

NUMPY_TARGET_S = 30.0
FRAMEWORK_TARGET_S = 60.0
COURSE_TARGET_S = 180.0
FRAMEWORKS = {"tensorflow": "TensorFlow", "torch": "PyTorch"}


def solution_notebooks(root: Path = ROOT) -> list[Path]:
    """solutions/<name>/<name>.ipynb for every notebook that exists now, in course order."""
    folders = sorted(p for p in (root / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))
    return [f / f"{f.name}.ipynb" for f in folders if (f / f"{f.name}.ipynb").is_file()]


def framework_of(notebook: Path) -> str:
    """"TensorFlow" or "PyTorch" if the notebook imports one, else "NumPy" (read from its code cells)."""
    try:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError) as error:
        raise CannotRun(f"{notebook}: not a readable notebook ({error})") from None
    code = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "code")
    for module, name in FRAMEWORKS.items():
        if f"import {module}" in code or f"from {module}" in code:
            return name
    return "NumPy"


def target_of(framework: str) -> float:
    return NUMPY_TARGET_S if framework == "NumPy" else FRAMEWORK_TARGET_S


def execute(notebook: Path, output_dir: Path, timeout: float = 600, allow_errors: bool = False) -> float:
    """Seconds for ``jupyter nbconvert --to notebook --execute`` of ``notebook`` (the executed copy
    goes to ``output_dir``; the kernel runs in the notebook's own folder, as in Jupyter).
    ``allow_errors`` runs every cell even after one fails, as nbgrader's Execute does."""
    cmd = [str(SCRIPTS / "jupyter"), "nbconvert", "--to", "notebook", "--execute", str(notebook),
           "--output-dir", str(output_dir), "--log-level", "ERROR", f"--ExecutePreprocessor.timeout={int(timeout)}"]
    if allow_errors:
        cmd.append("--allow-errors")
    seconds, _ = run_timed(cmd, f"jupyter nbconvert --execute {notebook}", cwd=notebook.parent, timeout=timeout + 60)
    return seconds


def verdict(seconds: float, target: float) -> str:
    return "yes" if seconds <= target else "NO"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notebooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the first notebook, once")
    parser.add_argument("--repeats", type=int, default=1, help="runs per notebook; the median is reported")
    args = parser.parse_args(argv)
    title = "Notebook run times (jupyter nbconvert --execute)"
    try:
        notebooks = solution_notebooks()
        if not notebooks:
            raise CannotRun(f"{ROOT / 'solutions'}: no solution notebooks")
        if args.quick:
            notebooks = notebooks[:1]
        rows = [("notebook", "framework", "seconds", "target s", "met")]
        total = 0.0
        with tempfile.TemporaryDirectory(prefix="bench-notebooks-") as scratch:
            for notebook in notebooks:
                framework = framework_of(notebook)
                seconds = statistics.median(execute(notebook, Path(scratch)) for _ in range(max(1, args.repeats)))
                total += seconds
                target = target_of(framework)
                rows.append((notebook.stem, framework, f"{seconds:.1f}", f"{target:.0f}", verdict(seconds, target)))
        rows.append(("whole course", f"{len(notebooks)} notebooks", f"{total:.1f}", f"{COURSE_TARGET_S:.0f}",
                     verdict(total, COURSE_TARGET_S)))
    except CannotRun as error:
        return report_cannot_run(title, error)
    notes = [f"median of {max(1, args.repeats)} run(s) per notebook; Jupyter and kernel start-up included"]
    if args.quick:
        notes.append("--quick: only the first notebook; the course total is not the whole course")
    print_table(title, rows, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
