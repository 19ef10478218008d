"""``grader feedback``: one self-contained HTML page per student per notebook.

Each page shows the score, every exercise's points, pass or fail and hint, anything the
grader had to repair or stop, and the student's own answer cells with their output. Test
cells appear as released (visible tests only): the hidden tests' source is never shown.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import nbformat

from .autograde import MANIFEST
from .notebooks_io import grade_id, is_answer

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
.pass{color:#17663a;font-weight:600}.fail{color:#b3261e;font-weight:600}
pre{background:#f6f8fa;padding:.6rem;overflow:auto;border-radius:4px}
.note{background:#fff8e1;border-left:4px solid #f2b600;padding:.4rem .7rem;margin:.3rem 0}
"""


def render(manifest: dict, notebook: dict, graded: nbformat.NotebookNode | None) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(x['title'])} (<code>{e(x['name'])}</code>)</td><td>{x['points']:g} / {x['max_points']}</td>"
        f"<td class={'pass' if x['points'] == x['max_points'] else 'fail'}>"
        f"{'pass' if x['points'] == x['max_points'] else 'fail'}</td><td>{e(x['hint'])}</td></tr>"
        for x in notebook["exercises"])
    notes = "".join(f"<p class=note>{e(n)}</p>" for n in notebook["notes"])
    answers = ""
    if graded is not None:
        for cell in graded.cells:
            if cell.cell_type == "code" and is_answer(cell):
                out = "".join(o.get("text", "") if o.output_type == "stream"
                              else f"{o.get('ename', '')}: {o.get('evalue', '')}\n" if o.output_type == "error" else ""
                              for o in cell.outputs)
                answers += f"<h3><code>{e(grade_id(cell) or '')}</code></h3><pre>{e(cell.source)}</pre>"
                if out.strip():
                    answers += f"<p>Output:</p><pre>{e(out)}</pre>"
    title = f"{manifest['assignment']} · {notebook['name']} · {manifest['student']}"
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>{e(title)}</title><style>{STYLE}</style>"
            f"<h1>{e(title)}</h1><p><strong>Score: {notebook['score']:g} / {notebook['max_score']}</strong></p>"
            f"{notes}<table><tr><th>Exercise</th><th>Points</th><th>Result</th><th>Hint</th></tr>{rows}</table>"
            f"<h2>Your answers</h2>{answers or '<p>No answer cells could be read.</p>'}</html>")


def generate(root: Path, assignment: str) -> list[Path]:
    written = []
    for manifest_file in sorted((root / "autograded").glob(f"*/{assignment}/{MANIFEST}")):
        manifest = json.loads(manifest_file.read_text())
        student = manifest["student"]
        target = root / "feedback" / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        for notebook in manifest["notebooks"]:
            path = manifest_file.parent / f"{notebook['name']}.ipynb"
            graded = nbformat.read(path, as_version=4) if path.exists() else None
            out = target / f"{notebook['name']}.html"
            out.write_text(render(manifest, notebook, graded), encoding="utf-8")
            written.append(out)
    return written
