"""``grader export``: grades.csv as nbgrader exports it, and a per-exercise breakdown."""
from __future__ import annotations

import csv
from pathlib import Path

from .results import read_manifests


def export(root: Path, assignment: str, db_url: str, out_dir: Path | None = None) -> tuple[Path, Path]:
    from nbgrader.api import Gradebook
    from nbgrader.plugins import CsvExportPlugin

    manifests = read_manifests(root, assignment)
    out_dir = Path(out_dir or root / "exports" / assignment)
    out_dir.mkdir(parents=True, exist_ok=True)
    grades = out_dir / "grades.csv"
    with Gradebook(db_url) as gb:
        CsvExportPlugin(to=str(grades), assignment=[assignment]).export(gb)
    breakdown = out_dir / "exercises.csv"
    columns = [f"{nb['name']}:{x['name']}" for nb in manifests[0]["notebooks"] for x in nb["exercises"]]
    with open(breakdown, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student_id", *columns, "score", "max_score", "notes"])
        for m in manifests:
            points = {f"{nb['name']}:{x['name']}": x["points"] for nb in m["notebooks"] for x in nb["exercises"]}
            notes = "; ".join(n for nb in m["notebooks"] for n in nb["notes"])
            writer.writerow([m["student"], *(f"{points.get(c, 0):g}" for c in columns), f"{m['score']:g}",
                             m["max_score"], notes])
    return grades, breakdown
