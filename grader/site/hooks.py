"""MkDocs hooks of the course site (loaded through `hooks:` in mkdocs.yml).

Three jobs, one event each:
- on_config: put the generated pages (notebooks, resources) into the nav;
- on_files: add those pages, and the notebooks to download, as virtual files;
- on_page_markdown: expand [@id] citations on every page (an unknown id fails
  the build, naming the page) and fill the notebook table on notebooks/index.md.
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

from grader.site import notebook_pages  # noqa: E402
from grader.site.languages import page_language, site_editions  # noqa: E402

RESOURCES_FILE = REPO_ROOT / "resources.yaml"
RESOURCES_INDEX = "resources/index.md"
RESOURCES_KIND_PAGE = "resources/{page}"
NOTEBOOK_INDEX = "notebooks/index.md"
NOTEBOOK_TABLE_MARKER = "<!-- notebook-table -->"

# Filled by on_config, read by the later events of the same build.
_build: dict = {}


def _resources_module():
    try:
        from grader import resources
    except ImportError as err:
        raise PluginError(f"grader/resources.py cannot be imported ({err}); the resource pages need it") from err
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
    except notebook_pages.NotebookPageError as err:
        raise PluginError(str(err)) from err

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
    )
    return config


@event_priority(100)  # before other plugins' on_files (an i18n plugin must see these pages)
def on_files(files, config):
    for uri, markdown in _build["resource_pages"].items():
        files.append(File.generated(config, uri, content=markdown))
    for nb in _build["notebooks"]:
        try:
            markdown = notebook_pages.notebook_markdown(
                nb,
                colab_href=_build["colab_links"][nb.name],
                download_href=posixpath.relpath(nb.download_uri, posixpath.dirname(nb.page_uri)),
            )
        except notebook_pages.NotebookPageError as err:
            raise PluginError(str(err)) from err
        files.append(File.generated(config, nb.page_uri, content=markdown))
        files.append(File.generated(config, nb.download_uri, abs_src_path=str(nb.path)))
    return files


def on_page_markdown(markdown, page, config, files):
    src_uri = page.file.src_uri
    if src_uri == NOTEBOOK_INDEX or src_uri.startswith("notebooks/index."):
        table = notebook_pages.notebook_index_table(_build["notebooks"], _build["colab_links"])
        markdown = markdown.replace(NOTEBOOK_TABLE_MARKER, table)
    edition = page_language(src_uri, _build["editions"])
    # expand_citations puts the entry's kind page (papers.md, books.md...) in place of
    # {page}. Other editions link to their own index, which also has an anchor per entry.
    target = RESOURCES_KIND_PAGE if edition.default else edition.page_uri(RESOURCES_INDEX)
    resources_url = posixpath.relpath(target, posixpath.dirname(src_uri) or ".")
    resources = _resources_module()
    try:
        return resources.expand_citations(markdown, _build["catalogue"], resources_url)
    except resources.CatalogueError as err:
        raise PluginError(f"{_source_of(src_uri)}: {err}") from err


def _source_of(src_uri: str) -> str:
    """The file a reader should edit to fix a page: generated pages name their origin."""
    for nb in _build["notebooks"]:
        if src_uri == nb.page_uri:
            return nb.repo_path
    if src_uri in _build["resource_pages"]:
        return RESOURCES_FILE.name
    return f"docs/{src_uri}"
