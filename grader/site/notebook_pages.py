"""Learner notebooks as site pages: find them, link them, convert them to Markdown.

We convert cells ourselves instead of using mkdocs-jupyter, which loads scripts
from CDNs; a notebook page must render from what the build ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import nbformat

COLAB_BASE = "https://colab.research.google.com/github"


class NotebookPageError(ValueError):
    """A notebook or the site configuration cannot produce a notebook page."""


@dataclass(frozen=True)
class LearnerNotebook:
    """One learner notebook: notebooks/<name>/<name>.ipynb."""

    name: str
    path: Path

    @property
    def repo_path(self) -> str:
        """Path inside the repository, as GitHub and Colab address it."""
        return f"notebooks/{self.name}/{self.name}.ipynb"

    @property
    def page_uri(self) -> str:
        """Where the rendered page lives among the site's documentation files."""
        return f"notebooks/{self.name}.md"

    @property
    def download_uri(self) -> str:
        """Where the .ipynb is copied in the built site (same path as in the repo)."""
        return self.repo_path


def find_learner_notebooks(repo_root: Path) -> list[LearnerNotebook]:
    """Every notebooks/<name>/<name>.ipynb that exists now, in course order (by name)."""
    folder = repo_root / "notebooks"
    if not folder.is_dir():
        return []
    found = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        notebook = sub / f"{sub.name}.ipynb"
        if notebook.is_file():
            found.append(LearnerNotebook(sub.name, notebook))
    return found


def colab_url(repo_url: str | None, notebook: LearnerNotebook, branch: str = "main") -> str:
    """The "Open in Colab" address of a notebook, from mkdocs.yml's repo_url."""
    if not repo_url:
        raise NotebookPageError("mkdocs.yml: repo_url is not set; the Colab links need it")
    parsed = urlparse(repo_url)
    parts = [p for p in parsed.path.strip("/").removesuffix(".git").split("/") if p]
    if parsed.netloc != "github.com" or len(parts) != 2:
        raise NotebookPageError(
            f"mkdocs.yml: repo_url {repo_url!r} is not https://github.com/<owner>/<repo>; "
            "Colab opens notebooks from GitHub only"
        )
    owner, repo = parts
    return f"{COLAB_BASE}/{owner}/{repo}/blob/{branch}/{notebook.repo_path}"


def notebook_title(nb: nbformat.NotebookNode, fallback: str) -> str:
    """The first level-1 heading of the notebook's Markdown, else the fallback."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+?)\s*#*\s*$", cell.source, flags=re.MULTILINE)
            if match:
                return match.group(1)
    return fallback


def _fence(code: str, language: str) -> str:
    """A fenced block longer than any backtick run inside the code."""
    longest = max((len(run) for run in re.findall(r"`{3,}", code)), default=2)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{code.rstrip()}\n{ticks}"


def _outputs_markdown(outputs: list) -> list[str]:
    """Text outputs as plain blocks; rich outputs (images, HTML) are left to the notebook."""
    blocks = []
    for output in outputs:
        if output.output_type == "stream":
            text = output.text
        elif output.output_type in ("execute_result", "display_data"):
            text = output.get("data", {}).get("text/plain", "")
        elif output.output_type == "error":
            text = f"{output.ename}: {output.evalue}"
        else:
            text = ""
        if text.strip():
            blocks.append(_fence(text, "text"))
    return blocks


def _demote_headings(markdown: str) -> str:
    """Level-1 headings become level 2: the page title is the only level 1."""
    out, in_fence = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        if not in_fence and re.match(r"^#\s", line):
            line = "#" + line
        out.append(line)
    return "\n".join(out)


# The fixed words of a notebook page, per language. The notebooks themselves stay English.
PAGE_TEXT = {
    "en": {
        "run_title": "Run this notebook",
        "download": "Download {file}",
        "colab": "Open in Colab",
        "locally": "or locally: `make lab`, then open `{path}`.",
        "read_only": (
            "This page is a read-only rendering of the learner version; the exercises "
            "are solved and checked in the notebook itself."
        ),
        "table_header": "| Notebook | You write | Download | Colab |",
    },
    "zh": {
        "run_title": "运行这个 notebook",
        "download": "下载 {file}",
        "colab": "在 Colab 中打开",
        "locally": "或在本地运行 `make lab`，然后打开 `{path}`。",
        "read_only": "本页是学员版 notebook 的只读渲染，练习要在 notebook 中完成和检查。",
        "original": "以下是 notebook 的英文原文",
        "original_body": "notebook 保持英文，代码中的函数名和注释与站点各页一致；上面的导读给出了对应的中文术语。",
        "table_header": "| Notebook | 你要实现 | 下载 | Colab |",
    },
}
INTRO_FOLDER = "docs/notebooks/intros"


def intro_path(repo_root: Path, notebook: LearnerNotebook, lang: str) -> Path:
    """Where the introduction for a notebook's page in another language lives."""
    return repo_root / INTRO_FOLDER / f"{notebook.name}.{lang}.md"


def read_intro(repo_root: Path, notebook: LearnerNotebook, lang: str) -> str:
    """The introduction (it starts with the page title, a level-1 heading)."""
    path = intro_path(repo_root, notebook, lang)
    if not path.is_file():
        raise NotebookPageError(
            f"{path.relative_to(repo_root)} is missing: every notebook's {lang} page opens with an "
            f"introduction in that language; write one for {notebook.repo_path}"
        )
    text = path.read_text(encoding="utf-8").strip()
    if not re.match(r"#\s+\S", text):
        raise NotebookPageError(f"{path.relative_to(repo_root)}: must start with a level-1 heading (the page title)")
    return text


def notebook_markdown(
    notebook: LearnerNotebook, *, colab_href: str, download_href: str, lang: str = "en", intro: str | None = None
) -> str:
    """The page for one notebook: title, links, then every cell in order.

    For another language, `intro` (Markdown starting with the translated title) comes first,
    and the notebook's own cells follow as they are, in English.
    """
    text = PAGE_TEXT[lang]
    try:
        nb = nbformat.read(notebook.path, as_version=4)
    except Exception as err:  # nbformat raises several unrelated types for bad files
        raise NotebookPageError(f"{notebook.path}: not a readable notebook ({err})") from err
    language = nb.metadata.get("kernelspec", {}).get("language", "python")
    title = notebook_title(nb, notebook.name)
    run_box = (
        f'!!! info "{text["run_title"]}"\n'
        f"    [{text['download'].format(file=notebook.name + '.ipynb')}]({download_href}){{ download }} · "
        f"[{text['colab']}]({colab_href}) · {text['locally'].format(path=notebook.repo_path)}\n\n"
        f"    {text['read_only']}"
    )
    if intro is None:
        parts = [f"# {title}", run_box]
    else:
        parts = [intro.strip(), run_box, f'!!! note "{text["original"]}"\n    {text["original_body"]}', f"## {title}"]
    skipped_title = False
    for cell in nb.cells:
        source = cell.source.strip()
        if cell.cell_type == "markdown":
            if not skipped_title and source.startswith(f"# {title}"):
                # The title is already the page heading; keep the rest of the cell.
                source = source[len(f"# {title}"):].strip()
                skipped_title = True
            if source:
                parts.append(_demote_headings(source))
        elif cell.cell_type == "code" and source:
            parts.append(_fence(source, language))
            parts.extend(_outputs_markdown(cell.get("outputs", [])))
    return "\n\n".join(parts) + "\n"


def exercise_names(notebook: LearnerNotebook) -> list[str]:
    """The graded tasks of a notebook: the grade ids of its nbgrader solution cells."""
    nb = nbformat.read(notebook.path, as_version=4)
    names = []
    for cell in nb.cells:
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("solution") and grading.get("grade_id"):
            names.append(grading["grade_id"])
    return names


def notebook_index_table(notebooks: list[LearnerNotebook], colab_links: dict[str, str], lang: str = "en") -> str:
    """The table of rendered notebooks for notebooks/index.md, with the tasks each one grades."""
    if not notebooks:
        return "*No learner notebook has been released yet.*\n" if lang == "en" else "*还没有发布任何学员版 notebook。*\n"
    rows = [PAGE_TEXT[lang]["table_header"], "|---|---|---|---|"]
    for nb in notebooks:
        tasks = ", ".join(f"`{name}`" for name in exercise_names(nb)) or "-"
        rows.append(
            f"| [{nb.name}]({nb.name}.md) | {tasks} | "
            f"[{nb.name}.ipynb]({nb.name}/{nb.name}.ipynb) | [{PAGE_TEXT[lang]['colab']}]({colab_links[nb.name]}) |"
        )
    return "\n".join(rows) + "\n"
