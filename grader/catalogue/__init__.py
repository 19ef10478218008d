"""The resource catalogue (``resources.yaml``), split by job; used only when the site is built.

- ``load``: read and validate the file against ``resources.schema.json`` (one-line errors).
- ``citations``: ``[@id]`` in a page becomes a link to the entry.
- ``pages``: the catalogue as the site's resource pages, in English or Chinese.
- ``links``: the online link check.
- ``command``: ``grader resources [--online]``.

The names most callers need are re-exported here.
"""
from .citations import CITATION, citation_authors, citation_label, entry_link, expand_citations, surname
from .command import main, summarise
from .links import BLOCKED_STATUSES, LinkResult, check_link, check_links, entry_links
from .load import (DEFAULT_CATALOGUE, SCHEMA_PATH, CatalogueError, allowed_topics, count_sentences,
                   count_sentences_zh, is_valid_isbn, is_valid_url, isbn_digits, jsonschema, latest_allowed_year,
                   load_catalogue, load_schema, normalise_title, normalise_url, strip_arxiv_version,
                   validate_catalogue)
from .pages import (KIND_LABELS, KIND_PAGES, LANGUAGE_LABELS, LEVEL_LABELS, TEXT, TOPIC_LABELS, identifier_links,
                    kind_page_name, render_resources_pages)

__all__ = [
    "BLOCKED_STATUSES", "CITATION", "DEFAULT_CATALOGUE", "KIND_LABELS", "KIND_PAGES", "LANGUAGE_LABELS",
    "LEVEL_LABELS", "SCHEMA_PATH", "TEXT", "TOPIC_LABELS", "CatalogueError", "LinkResult", "allowed_topics",
    "check_link", "check_links", "citation_authors", "citation_label", "entry_link", "count_sentences", "count_sentences_zh", "entry_links",
    "expand_citations", "identifier_links", "is_valid_isbn", "is_valid_url", "isbn_digits", "jsonschema",
    "kind_page_name", "latest_allowed_year", "load_catalogue", "load_schema", "main", "normalise_title",
    "normalise_url", "render_resources_pages", "strip_arxiv_version", "summarise", "surname", "validate_catalogue",
]
