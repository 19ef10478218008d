"""Citations: ``[@some-id]`` in a page becomes a link to the catalogue entry."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .load import CatalogueError
from .pages import kind_page_name

CITATION = re.compile(r"\[@([^\]\s]+)\]")
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_INLINE_CODE = re.compile(r"(`+)(?:.+?)\1")


def expand_citations(
    text: str, catalogue: list[dict[str, Any]], resources_url: str | Callable[[dict[str, Any]], str]
) -> str:
    """Replace each ``[@id]`` with ``[Title (First author et al., Year)](resources_url#id)``.

    Citations inside code (fenced blocks and inline backticks) are left alone, so a page can
    show the syntax. ``resources_url`` may contain ``{page}``, replaced by the entry's kind
    page (e.g. ``papers.md``) for a direct link; without it every link goes to
    ``resources_url``, whose index page carries an anchor for every entry. It may also be a
    function of the entry that returns the whole link target: a notebook read outside the
    site links each citation to the work itself (``entry_link``).
    Raises CatalogueError("unknown resource id 'x' cited") for an id not in the catalogue.
    """
    by_id = {entry["id"]: entry for entry in catalogue}

    def target_of(entry: dict[str, Any]) -> str:
        if callable(resources_url):
            return resources_url(entry)
        return f"{resources_url.replace('{page}', kind_page_name(entry['kind']))}#{entry['id']}"

    def replace(match: re.Match[str]) -> str:
        entry = by_id.get(match.group(1))
        if entry is None:
            raise CatalogueError(f"unknown resource id '{match.group(1)}' cited")
        return f"[{citation_label(entry)}]({target_of(entry)})"

    out_lines = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
            out_lines.append(line)
        elif opening:
            fence = opening.group(1)
            out_lines.append(line)
        else:
            out_lines.append(_outside_inline_code(line, lambda part: CITATION.sub(replace, part)))
    return "".join(out_lines)


def _outside_inline_code(line: str, transform: Any) -> str:
    pieces, last = [], 0
    for code in _INLINE_CODE.finditer(line):
        pieces.append(transform(line[last:code.start()]))
        pieces.append(code.group(0))
        last = code.end()
    pieces.append(transform(line[last:]))
    return "".join(pieces)


def citation_label(entry: dict[str, Any]) -> str:
    """'Attention Is All You Need (Vaswani et al., 2017)', escaped for a Markdown link text."""
    return f"{_escape_link_text(entry['title'])} ({citation_authors(entry)}, {entry['year']})"


def entry_link(entry: dict[str, Any]) -> str:
    """The work itself: its official page (for papers, usually the arXiv or DOI page)."""
    return entry["url"]


def _escape_link_text(text: str) -> str:
    return text.replace("[", r"\[").replace("]", r"\]")


def surname(name: str) -> str:
    """Family name for a citation: the last word of a Western name; a Chinese name stays whole."""
    if re.search(r"[\u4e00-\u9fff]", name):
        return name.strip()
    return name.split()[-1]


def citation_authors(entry: dict[str, Any]) -> str:
    """'Vaswani et al.', 'Kingma & Ba', 'Nielsen', or the organisation."""
    authors = entry.get("authors") or []
    if not authors:
        return entry["organisation"]
    first = surname(authors[0])
    if len(authors) > 2 or entry.get("et_al"):
        return f"{first} et al."
    if len(authors) == 2:
        return f"{first} & {surname(authors[1])}"
    return first
