"""The one shape of a grading result: an exercise, a notebook, a student's submission.

Grading produces these (``grade.py`` one notebook, ``autograde.py`` a class); everything
that reads results back goes through here: the manifest each graded submission leaves in
``autograded/<student>/<assignment>/grader.json`` (written last, atomically: its presence
means the submission is saved), and the JSON that ``grader check --json`` and
``grader autograde --json`` print. ``export``, ``report`` and ``feedback`` read manifests
with ``read_manifests``, the only place that knows where they are.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from nbformat import NotebookNode

MANIFEST = "grader.json"


@dataclass
class ExerciseResult:
    name: str
    title: str
    points: float
    max_points: int
    hint: str = ""

    @property
    def passed(self) -> bool:
        return self.points == self.max_points


class Scored:
    """Totals over ``self.exercises`` (a list of ExerciseResult)."""

    exercises: list[ExerciseResult]

    @property
    def score(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_score(self) -> int:
        return sum(e.max_points for e in self.exercises)


@dataclass
class GradedNotebook(Scored):
    """One notebook, graded here: the verdicts and the graded notebook itself."""

    name: str
    notebook: NotebookNode | None
    exercises: list[ExerciseResult]
    notes: list[str] = field(default_factory=list)
    isolated: bool = False
    seconds: float = 0.0


@dataclass
class NotebookOutcome(Scored):
    """One notebook of a submission, by value (the graded notebook as JSON text), so that it
    can come back from a worker process or a cluster."""

    name: str
    notebook_json: str | None
    exercises: list[ExerciseResult]
    notes: list[str]
    seconds: float


@dataclass
class SubmissionOutcome:
    student: str
    digest: str
    notebooks: list[NotebookOutcome] = field(default_factory=list)
    status: str = "graded"  # or "unchanged": read back from a manifest, not graded again; "failed"
    failure: str = ""  # why the grader could not grade this submission ("" when it could)

    @property
    def score(self) -> float:
        return sum(n.score for n in self.notebooks)

    @property
    def max_score(self) -> int:
        return sum(n.max_score for n in self.notebooks)

    @property
    def notes(self) -> list[str]:
        return [note for n in self.notebooks for note in n.notes]


# --- the manifest: its JSON form ---------------------------------------------------------------

class ExerciseJSON(TypedDict):
    name: str
    title: str
    points: float
    max_points: int
    hint: str


class NotebookJSON(TypedDict):
    name: str
    score: float
    max_score: int
    notes: list[str]
    seconds: float
    exercises: list[ExerciseJSON]


class Manifest(TypedDict):
    student: str
    assignment: str
    digest: str
    score: float
    max_score: int
    notebooks: list[NotebookJSON]
    failure: NotRequired[str]  # only when the grader failed on this submission


def manifest_of(assignment: str, outcome: SubmissionOutcome) -> Manifest:
    manifest: Manifest = {
        "student": outcome.student, "assignment": assignment, "digest": outcome.digest,
        "score": outcome.score, "max_score": outcome.max_score,
        "notebooks": [{"name": n.name, "score": n.score, "max_score": n.max_score, "notes": n.notes,
                       "seconds": round(n.seconds, 2),
                       "exercises": [asdict(e) for e in n.exercises]}  # type: ignore[misc]
                      for n in outcome.notebooks]}
    if outcome.failure:  # kept, so that the next run reports it and does not grade it again
        manifest["failure"] = outcome.failure
    return manifest


def outcome_of(manifest: Manifest) -> SubmissionOutcome:
    """A saved submission read back (status "unchanged"; the graded notebooks stay on disk)."""
    outcome = SubmissionOutcome(manifest["student"], manifest["digest"], status="unchanged",
                                failure=str(manifest.get("failure") or ""))
    for nb in manifest["notebooks"]:
        outcome.notebooks.append(NotebookOutcome(nb["name"], None, [ExerciseResult(**e) for e in nb["exercises"]],
                                                 nb["notes"], nb.get("seconds", 0.0)))
    return outcome


def submission_folder(root: Path, student: str, assignment: str) -> Path:
    return root / "autograded" / student / assignment


def manifest_path(root: Path, student: str, assignment: str) -> Path:
    return submission_folder(root, student, assignment) / MANIFEST


def write_manifest(folder: Path, manifest: Manifest) -> None:
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, folder / MANIFEST)  # atomic: a manifest is either complete or absent


def read_manifest(root: Path, student: str, assignment: str) -> Manifest | None:
    """The student's manifest, or None where there is none (or only a damaged one)."""
    try:
        return json.loads(manifest_path(root, student, assignment).read_text())
    except (OSError, ValueError):
        return None


def manifest_files(root: Path, assignment: str) -> list[Path]:
    """Every graded submission's manifest for ``assignment``, in student order."""
    return sorted((root / "autograded").glob(f"*/{assignment}/{MANIFEST}"))


def read_manifests(root: Path, assignment: str) -> list[Manifest]:
    """Every graded submission of ``assignment``; a ValueError naming it when there is none."""
    manifests = []
    for path in manifest_files(root, assignment):
        try:
            manifests.append(json.loads(path.read_text()))
        except ValueError as error:  # written atomically: only a hand edit or a broken disk does this
            raise ValueError(f"{path}: not a manifest grader autograde wrote ({error})") from None
    if not manifests:
        raise ValueError(f"{assignment}: no graded submissions under {root / 'autograded'}: run grader autograde first")
    return manifests


# --- what the commands print -----------------------------------------------------------------

def notebook_summary(graded: GradedNotebook) -> dict[str, Any]:
    """``grader check --json``."""
    return {"notebook": graded.name, "score": graded.score, "max_score": graded.max_score,
            "exercises": [{"name": e.name, "points": e.points, "max_points": e.max_points,
                           "passed": e.passed, "hint": e.hint} for e in graded.exercises],
            "notes": graded.notes, "isolated": graded.isolated}


def class_summary(outcomes: list[SubmissionOutcome]) -> list[dict[str, Any]]:
    """``grader autograde --json``."""
    return [{"student": o.student, "score": o.score, "max_score": o.max_score, "status": o.status,
             "notes": o.notes, **({"failure": o.failure} if o.failure else {})} for o in outcomes]


def to_json(summary: Any) -> str:
    return json.dumps(summary, indent=2)


def format_table(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns under a header rule; the last column is left ragged."""
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for n, row in enumerate(rows):
        lines.append(("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + str(row[-1])).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * len(str(row[-1])))
    return "\n".join(lines)
