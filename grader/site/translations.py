"""Which English page each Chinese page translates, and whether it is still up to date.

A Chinese page (page.zh.md) records in its front matter the hash of the English file it
was translated from:

    ---
    translated_from: 3f2a9c1b7d4e
    ---

When the English page changes, its hash changes, and tests/test_translations.py fails
until the translation is updated and the new hash written in. This command prints every
page with its current hash and status:

    .venv/bin/python -m grader.site.translations
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
LANG = "zh"
HASH_LENGTH = 12
# Folders of docs/ that hold no English page to translate: included code, and the Chinese
# introductions of the notebook pages (the notebooks themselves stay English).
NOT_PAGES = ("snippets", "notebooks/intros")
FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n", re.DOTALL)
RECORD = re.compile(r"^translated_from:\s*([0-9a-f]+)\s*$", re.MULTILINE)


def source_hash(path: Path) -> str:
    """The first hex digits of the SHA-256 of the English file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_LENGTH]


def english_pages(docs: Path = DOCS) -> list[Path]:
    """Every English page of docs/ (not page.<lang>.md), in path order."""
    pages = []
    for path in sorted(docs.rglob("*.md")):
        rel = path.relative_to(docs).as_posix()
        if any(rel.startswith(folder + "/") for folder in NOT_PAGES):
            continue
        if re.search(r"\.[a-z]{2}(-[A-Za-z]+)?\.md$", path.name):
            continue
        pages.append(path)
    return pages


def translation_of(page: Path, lang: str = LANG) -> Path:
    return page.with_name(page.name.removesuffix(".md") + f".{lang}.md")


def recorded_hash(translation: Path) -> str | None:
    """The translated_from value in the front matter, or None when there is none."""
    match = FRONT_MATTER.match(translation.read_text(encoding="utf-8"))
    if not match:
        return None
    record = RECORD.search(match.group(1))
    return record.group(1) if record else None


# A line break inside Chinese prose shows as a space between two characters ("权重 如何"):
# Chinese paragraphs are written on one line, or broken next to Latin text only.
CJK_CHAR = r"\u3400-\u9fff"
CJK_PUNCT = "，。、；：？！（）“”《》—…"
BLOCK_START = re.compile(r"^\s*(?:[-*+] |\d+\. |\||#|!!!|\?\?\?|\$\$|```|~~~|:\s|<|===|---)")


def join_chinese_lines(text: str) -> str:
    """The text with each line break that would show as a space inside Chinese prose removed."""
    out: list[str] = []
    in_fence = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        previous = out[-1] if out else ""
        joinable = (
            not in_fence and line.strip() and previous.strip() and not BLOCK_START.match(line)
            and not previous.lstrip().startswith(("|", "#", "```", "~~~", "$$"))
        )
        if joinable and re.search(f"[{CJK_PUNCT}]$", previous):
            out[-1] = previous + line.lstrip()
        elif joinable and re.search(f"[{CJK_CHAR}]$", previous) and re.match(f"\\s*[{CJK_CHAR}{CJK_PUNCT}]", line):
            out[-1] = previous + line.lstrip()
        else:
            out.append(line)
    return "\n".join(out)


@dataclass(frozen=True)
class PageStatus:
    page: Path
    translation: Path
    current: str
    recorded: str | None  # None: no translation file, or no translated_from in it

    @property
    def state(self) -> str:
        if not self.translation.exists():
            return "missing"
        if self.recorded is None:
            return "no-hash"
        return "ok" if self.recorded == self.current else "stale"


def statuses(docs: Path = DOCS, lang: str = LANG) -> list[PageStatus]:
    result = []
    for page in english_pages(docs):
        translation = translation_of(page, lang)
        recorded = recorded_hash(translation) if translation.exists() else None
        result.append(PageStatus(page, translation, source_hash(page), recorded))
    return result


def main(argv: list[str] | None = None) -> int:
    """Print page, current hash, recorded hash and status; exit 1 if any page is not ok."""
    rows = statuses()
    root = DOCS.parent
    width = max(len(str(s.page.relative_to(root))) for s in rows)
    print(f"{'English page':<{width}}  current       recorded      status")
    for s in rows:
        print(f"{str(s.page.relative_to(root)):<{width}}  {s.current}  {s.recorded or '-':<12}  {s.state}")
    print(f"\nstale: the English page changed; bring page.{LANG}.md up to date with it, then set "
          f"translated_from in its front matter to the current hash. missing: translate the page.")
    return 0 if all(s.state == "ok" for s in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
