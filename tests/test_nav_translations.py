"""The Chinese site's navigation bar is Chinese.

The i18n plugin shows a nav title on the zh pages as its `nav_translations` entry and falls
back to the English title when there is none, so a page added to the nav without a
translation shows up in English on every Chinese page. These tests read mkdocs.yml's nav and
the zh `nav_translations` generically (no list of titles here), so pages added later are
covered too. Pages the hook appends (notebooks, resources) carry no nav title: their pages'
own titles are used, and those come from the translated pages.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MKDOCS = Path(__file__).resolve().parents[1] / "mkdocs.yml"
CJK = re.compile(r"[\u4e00-\u9fff]")


def load_mkdocs(path: Path = MKDOCS) -> dict:
    # mkdocs.yml may use !ENV or !!python tags; none of them touch nav or i18n, so ignore them.
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("", lambda loader, suffix, node: None)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)


def nav_titles(nav: list) -> list[str]:
    """Every title of the nav, at every depth ('Title: page.md' and 'Title: [children]')."""
    titles = []
    for entry in nav:
        if isinstance(entry, dict):
            for title, value in entry.items():
                titles.append(title)
                if isinstance(value, list):
                    titles += nav_titles(value)
    return titles


def zh_nav_translations(config: dict) -> dict[str, str]:
    plugins = config["plugins"]
    [i18n] = [p["i18n"] for p in plugins if isinstance(p, dict) and "i18n" in p]
    [zh] = [lang for lang in i18n["languages"] if lang["locale"] == "zh"]
    return zh.get("nav_translations") or {}


def untranslated(config: dict) -> list[str]:
    """Nav titles the Chinese site would show in English: no entry, or an entry without Chinese."""
    translations = zh_nav_translations(config)
    return [title for title in nav_titles(config["nav"]) if not CJK.search(translations.get(title, ""))]


def test_every_nav_title_has_a_chinese_translation():
    config = load_mkdocs()
    titles = nav_titles(config["nav"])
    assert len(titles) >= 10, f"mkdocs.yml: only {len(titles)} nav titles found: {titles}"
    missing = untranslated(config)
    assert not missing, (
        "mkdocs.yml: these nav titles would show in English on the Chinese site; add them to the zh "
        f"language's nav_translations (plugins > i18n > languages): {missing}"
    )


def test_no_translation_is_left_over_from_a_removed_page():
    config = load_mkdocs()
    stale = sorted(set(zh_nav_translations(config)) - set(nav_titles(config["nav"])))
    assert not stale, f"mkdocs.yml: nav_translations for titles no longer in the nav: {stale}"


def test_the_check_finds_a_page_added_without_a_translation():
    """The check itself, on a copy of the real configuration: a new nav entry, nested or not."""
    config = load_mkdocs()
    assert untranslated(config) == []
    config["nav"].append({"New page": "new.md"})
    config["nav"].append({"New section": [{"Nested page": "nested.md"}, "plain.md"]})
    assert untranslated(config) == ["New page", "New section", "Nested page"]
    zh_nav_translations(config)["New page"] = "New page"  # copied, not translated
    assert "New page" in untranslated(config)
