"""Which editions (languages) the site builds, and how a page names its language.

The site has an English edition (page.md) and a Chinese one (page.zh.md), built
by mkdocs-static-i18n with the suffix structure. The plugin builds the site once
per language; the hooks ask this module which edition the current pass builds
instead of assuming English.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edition:
    lang: str
    default: bool

    def page_uri(self, uri: str) -> str:
        """The file name of a page in this edition: resources/index.md -> resources/index.zh.md."""
        if self.default or uri.endswith(f".{self.lang}.md"):
            return uri
        return uri.removesuffix(".md") + f".{self.lang}.md"


def _field(item, name, default=None):
    """Plugin settings come as config objects or as plain dicts, depending on the version."""
    if isinstance(item, dict):
        return item.get(name, default)
    return getattr(item, name, default)


def i18n_plugin(config):
    """The mkdocs-static-i18n plugin instance, or None for a one-language site."""
    return config.plugins.get("i18n") if config.plugins else None


def site_editions(config) -> list[Edition]:
    """The default edition first, then the others the i18n plugin declares."""
    theme_lang = config.theme.get("language") or "en"
    plugin = i18n_plugin(config)
    languages = _field(getattr(plugin, "config", None), "languages", None) or []
    editions = [
        Edition(_field(lang, "locale"), bool(_field(lang, "default", False)))
        for lang in languages
        if _field(lang, "build", True)
    ]
    if not any(e.default for e in editions):
        editions.insert(0, Edition(theme_lang, True))
    return sorted(editions, key=lambda e: not e.default)


def current_edition(config, editions: list[Edition]) -> Edition:
    """The edition this build pass writes: the i18n plugin builds one language at a time."""
    current = getattr(i18n_plugin(config), "current_language", None)
    for edition in editions:
        if edition.lang == current:
            return edition
    return next(e for e in editions if e.default)


def page_language(src_uri: str, editions: list[Edition]) -> Edition:
    """The edition a page belongs to, from its suffix (page.zh.md is Chinese)."""
    for edition in editions:
        if not edition.default and src_uri.endswith(f".{edition.lang}.md"):
            return edition
    return next(e for e in editions if e.default)


def base_uri(src_uri: str, editions: list[Edition]) -> str:
    """The page a file translates: algorithms.zh.md -> algorithms.md (English pages unchanged)."""
    edition = page_language(src_uri, editions)
    if edition.default:
        return src_uri
    return src_uri.removesuffix(f".{edition.lang}.md") + ".md"
