"""``grader release``: learners' notebooks (notebooks/) generated from the solutions (solutions/).

Drives ``nbgrader generate_assignment`` for each assignment, which strips the solutions and
the hidden tests, records checksums, and keeps the nbgrader metadata that grading needs.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat


def assignments(course_root: Path) -> list[str]:
    return sorted(p.name for p in (course_root / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))


def release(course_root: Path, output: Path | None = None, only: list[str] | None = None) -> list[Path]:
    """Generate the release of every assignment into ``output`` (default: notebooks/)."""
    course_root = Path(course_root).resolve()
    output = Path(output or course_root / "notebooks").resolve()
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="grader-release-") as scratch:
        for assignment in only or assignments(course_root):
            staging = Path(scratch) / "release"
            cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force", "--quiet",
                   f"--CourseDirectory.root={course_root}",
                   f"--CourseDirectory.release_directory={staging}",
                   f"--CourseDirectory.db_url=sqlite:///{Path(scratch) / 'release.db'}"]
            done = subprocess.run(cmd, cwd=course_root, capture_output=True, text=True, env=tool_env())
            if done.returncode != 0:
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{done.stdout}{done.stderr}")
            target = output / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(staging / assignment, target)
            for path in sorted(target.glob("*.ipynb")):
                _normalise(path)
                written.append(path)
            shutil.rmtree(staging)
    return written


def tool_env() -> dict[str, str]:
    """The environment with this Python's scripts first on PATH (nbgrader runs ``alembic``)."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}


def _normalise(path: Path) -> None:
    """Stable bytes for the same content, so the committed release can be compared exactly."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, path)
