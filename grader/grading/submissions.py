"""Finding the submissions to grade: nbgrader's layout, or files downloaded from an LMS.

Layouts accepted for ``grader autograde ASSIGNMENT SUBMISSIONS``:

- nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb`` (SUBMISSIONS is the
  ``submitted`` folder);
- a folder or ``.zip`` of files from a learning-management system, named
  ``<student>_<anything>_<notebook>.ipynb`` (Canvas and Moodle name downloads like this);
  ``--pattern`` takes another regular expression with a ``student_id`` group, as nbgrader's
  ``ZipCollect`` does.
"""
from __future__ import annotations

import hashlib
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .notebooks_io import MAX_NOTEBOOK_BYTES

DEFAULT_PATTERN = r"^(?P<student_id>[^_/]+)_"
MAX_ZIP_BYTES = 2 << 30
MAX_FILE_BYTES = 64 << 20


class SubmissionsError(ValueError):
    """SUBMISSIONS cannot be read at all; str(error) names the path and the problem."""


@dataclass
class Submission:
    student: str
    files: dict[str, Path] = field(default_factory=dict)  # notebook name -> file
    problems: list[str] = field(default_factory=list)

    def read(self) -> dict[str, bytes | None]:
        """Each notebook's bytes (None where there is no file): read once, digested and graded."""
        return {name: _read_head(path) if path.is_file() else None for name, path in self.files.items()}

    def digest(self, contents: dict[str, bytes | None] | None = None) -> str:
        """Changes whenever any submitted file changes: what "already graded" is keyed on."""
        contents = self.read() if contents is None else contents
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(name.encode() + b"\0")
            raw = contents[name]
            h.update(raw if raw is not None else b"<missing>")
        for problem in self.problems:
            h.update(problem.encode())
        return h.hexdigest()


def _read_head(path: Path) -> bytes:
    """A submitted file's bytes, at most one more than a notebook may have: enough for
    ``parse_notebook`` to refuse a larger one, never a whole huge file in memory."""
    with open(path, "rb") as f:
        return f.read(MAX_NOTEBOOK_BYTES + 1)


def find(assignment: str, notebooks: list[str], location: Path, pattern: str = DEFAULT_PATTERN,
         scratch: Path | None = None) -> list[Submission]:
    """The submissions at ``location``. A zip is unpacked into ``scratch``, which the caller
    gives and removes once the files are read (the paths returned point into it)."""
    location = Path(location)
    if not location.exists():
        raise SubmissionsError(f"{location}: no such file or folder")
    if location.is_file():
        if not zipfile.is_zipfile(location):
            raise SubmissionsError(f"{location}: not a folder or a zip file")
        if scratch is None:
            raise TypeError("find() needs a scratch folder to unpack a zip into")
        _extract(location, scratch)
        location = scratch
    if _is_nbgrader_layout(location, assignment):
        return _from_nbgrader_layout(location, assignment, notebooks)
    return _from_lms_files(location, notebooks, pattern)


def _is_nbgrader_layout(folder: Path, assignment: str) -> bool:
    return any((student / assignment).is_dir() for student in folder.iterdir() if student.is_dir())


def _from_nbgrader_layout(folder: Path, assignment: str, notebooks: list[str]) -> list[Submission]:
    found = []
    for student_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        work = student_dir / assignment
        submission = Submission(student_dir.name)
        if not work.is_dir():
            submission.problems.append(f"{work}: no submission for {assignment}")
        for name in notebooks:
            submission.files[name] = work / f"{name}.ipynb"
        found.append(submission)
    return found


def _from_lms_files(folder: Path, notebooks: list[str], pattern: str) -> list[Submission]:
    regex = re.compile(pattern)
    by_student: dict[str, Submission] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        match = regex.search(path.name)
        if not match:
            continue
        student = match.group("student_id")
        submission = by_student.setdefault(student, Submission(student))
        notebook = next((n for n in notebooks if path.name.endswith(f"{n}.ipynb")), None)
        if notebook is None and "file_id" in match.groupdict():
            notebook = next((n for n in notebooks if match.group("file_id").startswith(n)), None)
        if notebook is None:
            if path.suffix == ".ipynb" and len(notebooks) == 1:
                notebook = notebooks[0]  # an LMS renamed the file: grade it, identification decides
            else:
                continue
        if notebook in submission.files:
            submission.problems.append(f"{path.name}: several files for {notebook}; graded the last one")
        submission.files[notebook] = path
    for submission in by_student.values():
        for name in notebooks:
            submission.files.setdefault(name, folder / f"{submission.student}_{name}.ipynb (not submitted)")
    return [by_student[s] for s in sorted(by_student)]


def _extract(archive: Path, target: Path) -> None:
    """Unzip safely: no paths outside ``target``, no zip bombs."""
    with zipfile.ZipFile(archive) as zf:
        total = 0
        for info in zf.infolist():
            name = Path(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise SubmissionsError(f"{archive}: unsafe path in zip: {info.filename}")
            total += info.file_size
            if info.file_size > MAX_FILE_BYTES or total > MAX_ZIP_BYTES:
                raise SubmissionsError(f"{archive}: too large to unpack ({info.filename})")
        zf.extractall(target)
