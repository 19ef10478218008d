"""Where things are in a course folder (the repository, or an instructor's copy of it)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nbformat
from nbformat import NotebookNode

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent  # this course's own folder, the default course


class CourseError(ValueError):
    """A course folder, assignment or gradebook that cannot be used; one line naming it and the problem."""


def find_root(start: Path | None = None) -> Path:
    """The nearest folder above ``start`` with nbgrader_config.py, else this repository."""
    here = Path(start or Path.cwd()).resolve()
    for folder in [here, *here.parents]:
        if (folder / "nbgrader_config.py").exists() and (folder / "notebooks").is_dir():
            return folder
    return REPOSITORY_ROOT


def copy_course(folder: Path, root: Path = REPOSITORY_ROOT) -> Path:
    """A copy of a course folder (its nbgrader config, solutions/ and notebooks/), as an
    instructor starts one; the tests and benchmarks grade in such throwaway copies."""
    folder.mkdir(parents=True, exist_ok=True)
    for item in ("nbgrader_config.py", "solutions", "notebooks"):
        source = root / item
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / item)
    return folder


def release_notebook(root: Path, name: str) -> NotebookNode:
    """The learners' version of notebook ``name``: the template every submission is fitted to."""
    return nbformat.read(root / "notebooks" / name / f"{name}.ipynb", as_version=4)


def source_notebook(root: Path, name: str) -> Path:
    return root / "solutions" / name / f"{name}.ipynb"


def stable_seed(*parts: str) -> int:
    """A seed that is the same whenever the same submission is graded again."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")
