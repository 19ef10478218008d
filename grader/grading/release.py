"""``grader release``: learners' notebooks (notebooks/) generated from the solutions (solutions/).

Drives ``nbgrader generate_assignment`` for each assignment, which strips the solutions and
the hidden tests, records checksums, and keeps the nbgrader metadata that grading needs.
Then each ``[@id]`` citation in a Markdown cell becomes a readable link from resources.yaml,
``[Title (Author et al., Year)](the work's page)``, so that a notebook opened in Jupyter or
Colab reads well; the solutions keep their keys. Markdown cells carry no nbgrader checksum,
so rewriting them does not disturb grading.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from grader.course import CourseError


class ReleaseError(CourseError):
    """The release cannot be made; the message names the file and the problem."""


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

    from grader.catalogue import CatalogueError, load_catalogue  # build-time only: kept out of grading's imports

    course_root = Path(course_root).resolve()
    output = Path(output or course_root / "notebooks").resolve()
    known = assignments(course_root)
    for assignment in only or []:  # all checked before anything is written
        if assignment not in known:
            raise ReleaseError(f"{assignment}: no such assignment in {course_root / 'solutions'}")
    catalogue_path = course_root / "resources.yaml"
    try:
        # A course folder without the catalogue can still be released, as long as it cites nothing.
        catalogue = load_catalogue(catalogue_path) if catalogue_path.exists() else []
    except CatalogueError as err:
        raise ReleaseError(str(err)) from err
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
                raise ReleaseError(f"{assignment}: nbgrader generate_assignment failed: "
                                   f"{problem[-1] if problem else 'no reason given'}")
            # Every notebook is finished in staging first, so a bad citation leaves notebooks/ as it was.
            for path in sorted((staging / assignment).glob("*.ipynb")):
                _normalise(path, catalogue, shown_as=f"notebooks/{assignment}/{path.name}")
            target = output / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(staging / assignment, target)
            written.extend(sorted(target.glob("*.ipynb")))
    return written


def tool_env() -> dict[str, str]:
    """The environment with this Python's scripts first on PATH (nbgrader runs ``alembic``)."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}


def _normalise(path: Path, catalogue: list[dict], shown_as: str) -> None:
    """Readable citations, and stable bytes for the same content (the committed release is compared exactly)."""
    from grader.catalogue import CatalogueError

    nb = nbformat.read(path, as_version=4)
    for number, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        elif cell.cell_type == "markdown":
            try:
                readable = cite_readably(cell.source, catalogue)
            except CatalogueError as err:
                raise ReleaseError(f"{shown_as}, cell {number}: {err}") from err
            if readable != cell.source and cell.metadata.get("nbgrader", {}).get("checksum"):
                # nbgrader checksums a locked cell's source: rewriting it would look like tampering.
                raise ReleaseError(f"{shown_as}, cell {number}: a locked Markdown cell cannot carry a citation")
            cell.source = readable
    nbformat.write(nb, path)


def cite_readably(markdown: str, catalogue: list[dict]) -> str:
    """Each ``[@id]`` as ``[Title (Author et al., Year)](url)``: the site's citation label, linked
    to the work itself, since a notebook read in Jupyter or Colab has no site to resolve keys."""
    from grader.catalogue import entry_link, expand_citations

    return expand_citations(markdown, catalogue, entry_link)
