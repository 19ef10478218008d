"""MkDocs hooks of the course site (loaded through `hooks:` in mkdocs.yml).

Three jobs, one event each:
- on_config: put the generated pages (notebooks, resources) into the nav, and teach
  the search's Chinese word splitter the glossary's terms;
- on_files: add those pages, and the notebooks to download, as virtual files;
- on_page_markdown: expand [@id] citations on every page (an unknown id fails
  the build, naming the page), fill the notebook table on notebooks/index.md and
  the glossary table on glossary.md.

mkdocs-static-i18n builds the site once per language (English, then zh/); every
event runs again in each pass, and the hooks produce the pages of that pass's language.
"""

from __future__ import annotations

import posixpath
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # mkdocs loads hooks by file path, not as a package
    sys.path.insert(0, str(REPO_ROOT))

from grader.site import glossary, notebook_pages  # noqa: E402
from grader.site.generated_files import generated_page  # noqa: E402
from grader.site.languages import base_uri, current_edition, page_language, site_editions  # noqa: E402

RESOURCES_FILE = REPO_ROOT / "resources.yaml"
RESOURCES_INDEX = "resources/index.md"
RESOURCES_KIND_PAGE = "resources/{page}"
NOTEBOOK_INDEX = "notebooks/index.md"
NOTEBOOK_TABLE_MARKER = "<!-- notebook-table -->"
GLOSSARY_PAGE = "glossary.md"

# Filled by on_config, read by the later events of the same build.
_build: dict = {}


def _resources_module():
    try:
        from grader import catalogue as resources
    except ImportError as err:
        raise PluginError(f"grader/catalogue cannot be imported ({err}); the resource pages need it") from err
    return resources


def _load_catalogue():
    resources = _resources_module()
    try:
        return resources.load_catalogue(RESOURCES_FILE)
    except resources.CatalogueError as err:
        raise PluginError(f"{RESOURCES_FILE.name}: {err}") from err


def _set_nav_section(nav: list, title: str, pages: list[str]) -> None:
    """Replace the entry `title` of the top-level nav with the given pages."""
    for entry in nav:
        if isinstance(entry, dict) and title in entry:
            entry[title] = pages[0] if len(pages) == 1 else list(pages)
            return
    raise PluginError(f"mkdocs.yml: the nav has no '{title}' entry for the generated pages")


def on_config(config):
    editions = site_editions(config)
    catalogue = _load_catalogue()
    resources = _resources_module()
    resource_pages = {}  # page path -> Markdown, every edition
    default_pages = []
    for edition in editions:
        for uri, markdown in resources.render_resources_pages(catalogue, lang=edition.lang).items():
            resource_pages[edition.page_uri(uri)] = markdown
            if edition.default:
                default_pages.append(uri)
    if RESOURCES_INDEX not in default_pages:
        raise PluginError(f"render_resources_pages returned no {RESOURCES_INDEX}: {sorted(default_pages)}")
    default_pages.sort(key=lambda uri: (uri != RESOURCES_INDEX, uri))

    notebooks = notebook_pages.find_learner_notebooks(REPO_ROOT)
    try:
        colab_links = {nb.name: notebook_pages.colab_url(config.repo_url, nb) for nb in notebooks}
        # Read now, so a missing introduction fails the build before any page is written.
        intros = {
            (nb.name, edition.lang): notebook_pages.read_intro(REPO_ROOT, nb, edition.lang)
            for nb in notebooks for edition in editions if not edition.default
        }
    except notebook_pages.NotebookPageError as err:
        raise PluginError(str(err)) from err
    try:
        terms = glossary.load_glossary()
    except glossary.GlossaryError as err:
        raise PluginError(str(err)) from err
    glossary.teach_word_splitter(terms)

    if config.nav is not None:
        _set_nav_section(config.nav, "Resources", default_pages)
        _set_nav_section(config.nav, "Notebooks", [NOTEBOOK_INDEX] + [nb.page_uri for nb in notebooks])

    _build.clear()
    _build.update(
        editions=editions,
        catalogue=catalogue,
        resource_pages=resource_pages,
        notebooks=notebooks,
        colab_links=colab_links,
        intros=intros,
        glossary=terms,
    )
    return config


# After mkdocs-static-i18n's on_files (priority -100): the plugin rebuilds every page it
# sees from its file in docs/, which generated pages do not have (see generated_files.py).
@event_priority(-200)
def on_files(files, config):
    editions = _build["editions"]
    edition = current_edition(config, editions)
    for uri, markdown in _build["resource_pages"].items():
        if page_language(uri, editions) == edition:
            files.append(generated_page(config, uri, markdown, edition, editions))
    for nb in _build["notebooks"]:
        page_uri = edition.page_uri(nb.page_uri)
        try:
            markdown = notebook_pages.notebook_markdown(
                nb,
                colab_href=_build["colab_links"][nb.name],
                download_href=posixpath.relpath(nb.download_uri, posixpath.dirname(nb.page_uri)),
                lang=edition.lang,
                intro=_build["intros"].get((nb.name, edition.lang)),
            )
        except notebook_pages.NotebookPageError as err:
            raise PluginError(str(err)) from err
        files.append(generated_page(config, page_uri, markdown, edition, editions))
        # Every edition links to the one copy of the notebook, at the same place as in the repo.
        files.append(File.generated(config, nb.download_uri, abs_src_path=str(nb.path)))
    return files


def on_page_markdown(markdown, page, config, files):
    src_uri = page.file.src_uri
    edition = page_language(src_uri, _build["editions"])
    page_base = base_uri(src_uri, _build["editions"])
    if page_base == NOTEBOOK_INDEX:
        table = notebook_pages.notebook_index_table(_build["notebooks"], _build["colab_links"], edition.lang)
        markdown = markdown.replace(NOTEBOOK_TABLE_MARKER, table)
    if page_base == GLOSSARY_PAGE:
        markdown = markdown.replace(glossary.TABLE_MARKER, glossary.glossary_table(_build["glossary"], edition.lang))
    # expand_citations puts the entry's kind page (papers.md, books.md...) in place of {page}.
    # A Chinese page's link to resources/papers.md reaches resources/papers.zh.md: with the
    # suffix structure, the i18n plugin resolves links to the page's own language first.
    resources_url = posixpath.relpath(RESOURCES_KIND_PAGE, posixpath.dirname(src_uri) or ".")
    resources = _resources_module()
    try:
        return resources.expand_citations(markdown, _build["catalogue"], resources_url)
    except resources.CatalogueError as err:
        raise PluginError(f"{_source_of(src_uri)}: {err}") from err


def _source_of(src_uri: str) -> str:
    """The file a reader should edit to fix a page: generated pages name their origin."""
    for nb in _build["notebooks"]:
        if base_uri(src_uri, _build["editions"]) == nb.page_uri:
            return nb.repo_path
    if src_uri in _build["resource_pages"]:
        return RESOURCES_FILE.name
    return f"docs/{src_uri}"
