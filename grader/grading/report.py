"""``grader report``: which exercises the class found hard, and the spread of scores."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .results import ExerciseJSON, read_manifests


@dataclass
class ExerciseStats:
    notebook: str
    name: str
    max_points: int
    mean: float
    passed_share: float
    common_hint: str
    common_hint_count: int


def collect(root: Path, assignment: str) -> tuple[list[ExerciseStats], list[float], int]:
    manifests = read_manifests(root, assignment)
    per_exercise: dict[tuple[str, str], list[ExerciseJSON]] = {}
    for m in manifests:
        for nb in m["notebooks"]:
            for x in nb["exercises"]:
                per_exercise.setdefault((nb["name"], x["name"]), []).append(x)
    stats = []
    for (notebook, name), results in per_exercise.items():
        hints = Counter(x["hint"] for x in results if x["hint"])
        hint, count = hints.most_common(1)[0] if hints else ("", 0)
        stats.append(ExerciseStats(notebook, name, results[0]["max_points"],
                                   sum(x["points"] for x in results) / len(results),
                                   sum(x["points"] == x["max_points"] for x in results) / len(results), hint, count))
    max_score = manifests[0]["max_score"]
    return stats, [m["score"] for m in manifests], max_score


def histogram(totals: list[float], max_score: int, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=110)
    ax.hist(totals, bins=[b - 0.5 for b in range(int(max_score) + 2)], color="#3f51b5", edgecolor="white")
    ax.set_xlabel(f"total score (out of {max_score})")
    ax.set_ylabel("students")
    ax.set_title(title)
    ax.set_xlim(-0.5, max_score + 0.5)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
