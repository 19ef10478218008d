"""The Chinese edition keeps step with the English one.

- every English page has a Chinese translation (page.zh.md) that records, in its front
  matter, the hash of the English file it translates; an English edit makes it stale;
- a translation keeps the page's structure: the same section anchors, the same formulas,
  the same included code and the same citations;
- the Chinese pages use the glossary's terms (grader/site/glossary.yaml) and none of the
  non-standard variants it lists;
- every released notebook's Chinese page has an introduction naming its graded tasks.

`python -m grader.site.translations` prints each page's current hash and status.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

from grader.site import glossary, translations
from grader.site.notebook_pages import find_learner_notebooks, intro_path

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
COMMAND = ".venv/bin/python -m grader.site.translations"

# English pages whose translation is knowingly not written yet. Each is excluded from the
# drift check below; remove a page from this list when its page.zh.md exists.
PENDING_TRANSLATION: set[str] = set()


def rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def checked_pages() -> list[Path]:
    return [p for p in translations.english_pages(DOCS) if p.relative_to(DOCS).as_posix() not in PENDING_TRANSLATION]


def drift_problems(docs: Path) -> list[str]:
    """Every English page of `docs` without an up-to-date translation, as one line each."""
    problems = []
    for status in translations.statuses(docs):
        name = status.page.relative_to(docs).as_posix()
        if name in PENDING_TRANSLATION:
            continue
        zh, en = status.translation.relative_to(docs.parent), status.page.relative_to(docs.parent)
        if status.state == "missing":
            problems.append(f"{en} has no Chinese translation: write {zh} (or list it in PENDING_TRANSLATION)")
        elif status.state == "no-hash":
            problems.append(f"{zh}: no 'translated_from: <hash>' in its front matter; {en} is at {status.current}")
        elif status.state == "stale":
            problems.append(
                f"{en} changed since {zh} was translated (recorded {status.recorded}, now {status.current}): "
                f"update the translation, then set translated_from: {status.current}"
            )
    return problems


def test_every_english_page_has_an_up_to_date_translation():
    assert checked_pages(), "no English page found under docs/"
    problems = drift_problems(DOCS)
    assert not problems, "\n".join(problems) + f"\n(current hashes of every page: {COMMAND})"


def test_pending_list_only_holds_untranslated_pages():
    for name in PENDING_TRANSLATION:
        translation = translations.translation_of(DOCS / name)
        assert not translation.exists(), (
            f"{rel(translation)} exists: remove {name} from PENDING_TRANSLATION in tests/test_translations.py"
        )


def test_drift_check_catches_an_edit_and_a_missing_translation(tmp_path):
    """The check itself, on a scratch docs/ folder: it must fail in both ways it promises."""
    docs = tmp_path / "docs"
    docs.mkdir()
    english = docs / "page.md"
    english.write_text("# Page\n\nOne.\n", encoding="utf-8")
    chinese = docs / "page.zh.md"
    chinese.write_text(f"---\ntranslated_from: {translations.source_hash(english)}\n---\n\n# 页面\n", encoding="utf-8")
    assert drift_problems(docs) == []
    english.write_text("# Page\n\nOne, edited.\n", encoding="utf-8")
    [stale] = drift_problems(docs)
    assert "docs/page.md changed since docs/page.zh.md" in stale and "update the translation" in stale
    (docs / "other.md").write_text("# Other\n", encoding="utf-8")
    assert any(p.startswith("docs/other.md has no Chinese translation") for p in drift_problems(docs))
    chinese.write_text("# 页面\n", encoding="utf-8")
    assert any("no 'translated_from: <hash>'" in p for p in drift_problems(docs))


def test_the_maintainer_command_lists_every_page(capsys):
    code = translations.main([])
    out = capsys.readouterr().out
    for page in checked_pages():
        assert f"{rel(page)}" in out and translations.source_hash(page) in out
    assert code == (0 if all(s.state == "ok" for s in translations.statuses()) else 1)


# --------------------------------------------------------------------------------------
# Structure: a translation keeps the English page's anchors, formulas, code and citations.
# --------------------------------------------------------------------------------------

FENCE = re.compile(r"^([ \t]*)(```|~~~).*?^\1\2[ \t]*$", re.MULTILINE | re.DOTALL)
DISPLAY_MATH = re.compile(r"\$\$\n(.*?)\n\s*\$\$", re.DOTALL)
INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)(.+?)(?<!\\)\$", re.DOTALL)
HEADING = re.compile(r"^(#{2,6})\s+(.+?)\s*$", re.MULTILINE)
EXPLICIT_ID = re.compile(r"\s*\{\s*#([\w-]+)\s*\}$")


def body(path: Path) -> str:
    """The page without its front matter and without fenced code."""
    text = translations.FRONT_MATTER.sub("", path.read_text(encoding="utf-8"))
    return FENCE.sub("", text)


def anchors(path: Path) -> list[str]:
    """Section anchors: explicit {#id} where given, else what the toc extension would generate."""
    found = []
    for _level, title in HEADING.findall(body(path)):
        explicit = EXPLICIT_ID.search(title)
        found.append(explicit.group(1) if explicit else slugify(re.sub(r"[`*_]", "", title), "-"))
    return found


def formulas(path: Path) -> tuple[list[str], Counter]:
    text = re.sub(r"`[^`\n]+`", "", body(path))
    display = [" ".join(m.split()) for m in DISPLAY_MATH.findall(text)]
    inline = Counter(" ".join(m.split()) for m in INLINE_MATH.findall(DISPLAY_MATH.sub("", text)))
    return display, inline


def included_code(path: Path) -> list[str]:
    return re.findall(r'--8<-- "([^"]+)"', path.read_text(encoding="utf-8"))


def citations(path: Path) -> Counter:
    return Counter(re.findall(r"\[@([\w.-]+)\]", path.read_text(encoding="utf-8")))


def translated_pairs() -> list[tuple[Path, Path]]:
    pairs = [(page, translations.translation_of(page)) for page in checked_pages()]
    return [(en, zh) for en, zh in pairs if zh.exists()]


@pytest.mark.parametrize("en, zh", translated_pairs(), ids=lambda p: p.name)
def test_translation_keeps_anchors_formulas_code_and_citations(en, zh):
    zh_headings = HEADING.findall(body(zh))
    unanchored = [title for _level, title in zh_headings if not EXPLICIT_ID.search(title)]
    assert not unanchored, (
        f"{rel(zh)}: give each section the English page's anchor, e.g. '## 反向传播 {{#backpropagation}}': "
        f"{unanchored}"
    )
    assert anchors(zh) == anchors(en), f"{rel(zh)}: section anchors differ from {rel(en)}"
    en_display, en_inline = formulas(en)
    zh_display, zh_inline = formulas(zh)
    assert zh_display == en_display, f"{rel(zh)}: display formulas differ from {rel(en)}"
    assert zh_inline == en_inline, (
        f"{rel(zh)}: inline formulas differ from {rel(en)}: "
        f"only in English {dict(en_inline - zh_inline)}, only in Chinese {dict(zh_inline - en_inline)}"
    )
    assert included_code(zh) == included_code(en), f"{rel(zh)}: included code (--8<--) differs from {rel(en)}"
    assert citations(zh) == citations(en), f"{rel(zh)}: citations differ from {rel(en)}"


def test_structure_check_notices_a_changed_formula(tmp_path):
    en = tmp_path / "p.md"
    en.write_text("# P\n\n## Loss\n\n$$\nL = x^2\n$$\n\nwith $x > 0$.\n", encoding="utf-8")
    zh = tmp_path / "p.zh.md"
    zh.write_text("# P\n\n## 损失 {#loss}\n\n$$\nL = x^3\n$$\n\n其中 $x > 0$。\n", encoding="utf-8")
    assert anchors(zh) == anchors(en) == ["loss"]
    assert formulas(zh)[1] == formulas(en)[1]
    assert formulas(zh)[0] != formulas(en)[0]


# --------------------------------------------------------------------------------------
# Terms: the glossary's Chinese terms, used and used consistently.
# --------------------------------------------------------------------------------------

def chinese_sources() -> list[Path]:
    """Every hand-written Chinese text of the site: translated pages and notebook introductions."""
    return sorted(DOCS.rglob("*.zh.md"))


def test_glossary_loads_and_links_to_real_sections():
    terms = glossary.load_glossary()
    assert len(terms) >= 30
    for term in terms:
        page, anchor = term.see.split("#")
        assert anchor in anchors(DOCS / page), f"grader/site/glossary.yaml: {term.en}: no section #{anchor} in docs/{page}"


def test_every_glossary_term_is_used_on_a_chinese_page():
    texts = {path: path.read_text(encoding="utf-8") for path in chinese_sources() if path.name != "glossary.zh.md"}
    unused = [term.zh for term in glossary.load_glossary() if not any(term.zh in text for text in texts.values())]
    assert not unused, f"glossary terms no Chinese page uses (grader/site/glossary.yaml): {unused}"


def test_chinese_pages_avoid_non_standard_terms():
    terms = glossary.load_glossary()
    assert sum(len(t.avoid) for t in terms) >= 15
    found = []
    # The Chinese resource summaries (summary_zh, note_zh) are Chinese pages of the site too.
    for path in chinese_sources() + [REPO / "resources.yaml"]:
        text = path.read_text(encoding="utf-8")
        for term in terms:
            found += [f"{rel(path)}: '{v}' (write '{term.zh}')" for v in term.avoid if v in text]
    assert not found, "non-standard Chinese terms:\n" + "\n".join(found)


def test_glossary_errors_name_the_file_and_the_term(tmp_path):
    bad = tmp_path / "glossary.yaml"
    bad.write_text("- en: loss\n  zh: 损失函数\n  en_def: x\n  zh_def: y\n", encoding="utf-8")
    with pytest.raises(glossary.GlossaryError, match=r"glossary.yaml: term 1 \(loss\): field 'see' is missing"):
        glossary.load_glossary(bad)


# --------------------------------------------------------------------------------------
# Notebook pages: English notebooks, Chinese introductions.
# --------------------------------------------------------------------------------------

def graded_tasks(notebook_path: Path) -> list[str]:
    cells = json.loads(notebook_path.read_text(encoding="utf-8"))["cells"]
    return [c["metadata"]["nbgrader"]["grade_id"] for c in cells if c["metadata"].get("nbgrader", {}).get("solution")]


def test_every_notebook_has_a_chinese_introduction_naming_its_tasks():
    notebooks = find_learner_notebooks(REPO)
    assert notebooks, "no learner notebook found"
    for nb in notebooks:
        intro = intro_path(REPO, nb, "zh")
        assert intro.is_file(), f"{rel(intro)} is missing: write the Chinese introduction of {nb.repo_path}"
        text = intro.read_text(encoding="utf-8")
        assert re.match(r"# \S", text), f"{rel(intro)}: must start with the page title (# ...)"
        missing = [task for task in graded_tasks(nb.path) if f"`{task}`" not in text]
        assert not missing, f"{rel(intro)}: does not introduce the graded tasks {missing} of {nb.repo_path}"


def test_chinese_prose_has_no_line_break_between_characters():
    """A line break inside Chinese prose shows as a stray space between two characters."""
    for path in chinese_sources():
        text = path.read_text(encoding="utf-8")
        joined = translations.join_chinese_lines(text)
        if joined != text:
            lines = [line for line in text.split("\n") if line and line not in joined.split("\n")]
            pytest.fail(f"{rel(path)}: join these lines (a break between Chinese characters shows as a space): "
                        f"{lines[:3]}")


def test_line_joining_keeps_blocks_apart():
    text = "第一行，\n第二行\n继续。\n\n- 列表项一；\n- 列表项二\n  接着写。\n\n| 表 |\n| 格 |\n\n英文 then\n中文\n```\n代码，\n代码\n```\n"
    assert translations.join_chinese_lines(text) == (
        "第一行，第二行继续。\n\n- 列表项一；\n- 列表项二接着写。\n\n| 表 |\n| 格 |\n\n英文 then\n中文\n```\n代码，\n代码\n```\n"
    )
