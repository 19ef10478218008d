"""Pages the hooks generate (resources, notebooks), as files the i18n plugin understands.

mkdocs-static-i18n sorts the documentation files by language in its own on_files by
re-reading each one from docs/, so a page that exists only in memory cannot pass
through it. The hooks add their pages after the plugin has run, and this module gives
each page what the plugin would have given it: the language's output folder (zh/...),
and the alternates the language switcher links to.
"""

from __future__ import annotations

from mkdocs.structure.files import File

from grader.site.languages import Edition, base_uri, i18n_plugin


def generated_page(config, src_uri: str, markdown: str, edition: Edition, editions: list[Edition]) -> File:
    """A generated page of `edition`; src_uri is already that edition's (page.zh.md for Chinese)."""
    plain = File.generated(config, src_uri, content=markdown)
    plugin = i18n_plugin(config)
    if plugin is None:
        return plain
    from mkdocs_static_i18n.suffix import create_i18n_file  # the plugin's own naming rules

    def localised(uri: str, lang: str) -> File:
        file = create_i18n_file(
            File.generated(config, uri, content=""), lang, plugin.default_language, plugin.all_languages, config
        )
        file.generated_by = plain.generated_by  # no "edit this page" link to a file that does not exist
        return file

    page = localised(src_uri, edition.lang)
    page.content_string = markdown
    base = base_uri(src_uri, editions)
    for other in editions:
        if other != edition:
            page.alternates[other.lang] = localised(other.page_uri(base), other.lang)  # type: ignore[attr-defined]
    return page
