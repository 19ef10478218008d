"""``grader feedback``: one self-contained HTML page per student per notebook.

Each page shows the score, every exercise's points, pass or fail and hint, anything the
grader had to repair or stop, and the student's own answer cells with their output. Test
cells appear as released (visible tests only): the hidden tests' source is never shown.
The page comes from ``templates/feedback.html``, autoescaped: nothing a student wrote can
become markup.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2
import nbformat

from .notebooks_io import grade_id, is_answer
from .results import Manifest, NotebookJSON, read_manifests, submission_folder


@lru_cache(maxsize=1)
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("grader.grading", "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.get_template("feedback.html")


def _answers(graded: nbformat.NotebookNode) -> list[dict[str, str]]:
    answers = []
    for cell in graded.cells:
        if cell.cell_type == "code" and is_answer(cell):
            output = "".join(o.get("text", "") if o.output_type == "stream"
                             else f"{o.get('ename', '')}: {o.get('evalue', '')}\n" if o.output_type == "error" else ""
                             for o in cell.outputs)
            answers.append({"grade_id": grade_id(cell) or "", "source": cell.source, "output": output})
    return answers


def render(manifest: Manifest, notebook: NotebookJSON, graded: nbformat.NotebookNode | None) -> str:
    title = f"{manifest['assignment']} · {notebook['name']} · {manifest['student']}"
    return _template().render(title=title, notebook=notebook, answers=_answers(graded) if graded is not None else [])


def generate(root: Path, assignment: str) -> list[Path]:
    written = []
    for manifest in read_manifests(root, assignment):
        student = manifest["student"]
        graded_folder = submission_folder(root, student, assignment)
        target = root / "feedback" / student / assignment
        target.mkdir(parents=True, exist_ok=True)
        for notebook in manifest["notebooks"]:
            path = graded_folder / f"{notebook['name']}.ipynb"
            graded = nbformat.read(path, as_version=4) if path.exists() else None
            out = target / f"{notebook['name']}.html"
            out.write_text(render(manifest, notebook, graded), encoding="utf-8")
            written.append(out)
    return written
