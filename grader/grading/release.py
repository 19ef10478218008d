"""``grader release``: learners' notebooks (notebooks/) generated from the solutions (solutions/).

Drives ``nbgrader generate_assignment`` for each assignment, which strips the solutions and
the hidden tests, records checksums, and keeps the nbgrader metadata that grading needs.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from grader.course import CourseError


def assignments(course_root: Path) -> list[str]:
    if not (course_root / "solutions").is_dir():
        raise CourseError(f"{course_root / 'solutions'}: no such folder (the instructors' notebooks)")
    return sorted(p.name for p in (course_root / "solutions").iterdir() if p.is_dir() and not p.name.startswith("."))


def course_config(course_root: Path, **overrides):
    """The course's nbgrader_config.py, with CourseDirectory settings overridden."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    if not (course_root / "nbgrader_config.py").is_file():
        raise CourseError(f"{course_root / 'nbgrader_config.py'}: no such file (not a course folder)")
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_root)).load_config()
    extra = Config()
    for key, value in overrides.items():
        setattr(extra.CourseDirectory, key, value)
    config.merge(extra)
    return config


def release(course_root: Path, output: Path | None = None, only: list[str] | None = None) -> list[Path]:
    """Generate the release of every assignment into ``output`` (default: notebooks/)."""
    from nbgrader.apps import NbGraderAPI  # slow to import: only when releasing

    course_root = Path(course_root).resolve()
    output = Path(output or course_root / "notebooks").resolve()
    known = assignments(course_root)
    for assignment in only or []:  # all checked before anything is written
        if assignment not in known:
            raise CourseError(f"{assignment}: no such assignment in {course_root / 'solutions'}")
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="grader-release-") as scratch:
        staging = Path(scratch) / "release"
        config = course_config(course_root, root=str(course_root), release_directory=str(staging),
                               db_url=f"sqlite:///{Path(scratch) / 'release.db'}")
        api = NbGraderAPI(config=config)
        for assignment in only or known:
            result = api.generate_assignment(assignment, force=True)
            if not result.get("success"):
                problem = [line.strip() for line in f"{result.get('log', '')}\n{result.get('error', '')}".splitlines()
                           if line.strip()]
                raise CourseError(f"{assignment}: nbgrader generate_assignment failed: "
                                  f"{problem[-1] if problem else 'no reason given'}")
            target = output / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(staging / assignment, target)
            for path in sorted(target.glob("*.ipynb")):
                _normalise(path)
                written.append(path)
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
