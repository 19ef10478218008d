"""Loading and validating ``resources.yaml``: the catalogue's one gate.

``load_catalogue`` validates the file against ``resources.schema.json`` (next to this module)
plus the checks a schema cannot express (URL syntax, ISBN check digits, duplicates, summary
length in sentences, the latest allowed year) and fails with one line naming the entry and field.
"""
from __future__ import annotations

import datetime
import json
import re
import sys
import unicodedata
import urllib.parse
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    import jsonschema as jsonschema_types


def _import_jsonschema():
    """Import jsonschema without its optional ``rfc3987_syntax`` helper.

    When that package is installed (Jupyter pulls it in), importing jsonschema compiles its
    IRI grammar, which takes about three seconds; the catalogue's schema never uses the "iri"
    format, so the import is blocked for that moment only and allowed again afterwards.
    """
    if "jsonschema" in sys.modules or "rfc3987_syntax" in sys.modules:
        import jsonschema as module
        return module
    sys.modules["rfc3987_syntax"] = None  # a None entry makes `import rfc3987_syntax` raise ImportError
    try:
        import jsonschema as module
    finally:
        del sys.modules["rfc3987_syntax"]
    return module


jsonschema = _import_jsonschema()

SCHEMA_PATH = Path(__file__).with_name("resources.schema.json")
DEFAULT_CATALOGUE = "resources.yaml"
EARLIEST_YEAR = 1940


class CatalogueError(ValueError):
    """A catalogue that cannot be used; the message is one line naming the file, entry and field."""



@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def allowed_topics() -> list[str]:
    return list(load_schema()["$defs"]["topic"]["enum"])


def latest_allowed_year() -> int:
    # The upper bound moves with the calendar, so it lives here and not in the static schema.
    return datetime.date.today().year


def load_catalogue(path: str | Path = DEFAULT_CATALOGUE) -> list[dict[str, Any]]:
    """Read and validate a catalogue; raise CatalogueError with a one-line message on the first problem."""
    path = Path(path)
    name = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{name}: cannot be read: {exc.strerror or exc}") from exc
    try:
        # The C loader, where PyYAML was built with libyaml, is about ten times faster.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise CatalogueError(f"{name}: invalid YAML{where}: {problem}") from exc
    validate_catalogue(data, name)
    return data


def validate_catalogue(data: Any, name: str = DEFAULT_CATALOGUE) -> None:
    """Validate already-parsed catalogue data; ``name`` is the file name used in messages."""
    if not isinstance(data, list) or not data:
        raise CatalogueError(f"{name}: must be a non-empty list of entries")
    seen = _DuplicateIndex()
    for index, entry in enumerate(data):
        label = _entry_label(entry, index)
        if not isinstance(entry, dict):
            raise CatalogueError(f"{name}: {label}: {load_schema()['$defs']['entry']['x-error']}")
        problem = _schema_problem(entry) or _entry_problem(entry) or seen.problem(entry)
        if problem is not None:
            field, message = problem
            raise CatalogueError(f"{name}: {label}: field '{field}': {message}")
        seen.add(entry)


def _entry_label(entry: Any, index: int) -> str:
    entry_id = entry.get("id") if isinstance(entry, dict) else None
    if isinstance(entry_id, str) and entry_id.strip():
        return f"entry '{entry_id}'"
    return f"entry #{index + 1}"


@lru_cache(maxsize=1)
def _entry_validator() -> jsonschema_types.protocols.Validator:
    schema = load_schema()
    entry_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/entry"}
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(entry_schema)


def _schema_problem(entry: dict[str, Any]) -> tuple[str, str] | None:
    """The first schema violation of one entry as (field, message), in the schema's field order."""
    errors = list(_entry_validator().iter_errors(entry))
    if not errors:
        return None
    problems = [_describe_schema_error(error, entry) for error in errors]
    order = list(load_schema()["$defs"]["entry"]["properties"])
    problems.sort(key=lambda problem: order.index(problem[0]) if problem[0] in order else len(order))
    return problems[0]


def _describe_schema_error(error: jsonschema_types.ValidationError, entry: dict[str, Any]) -> tuple[str, str]:
    """Translate one jsonschema error into (field, message) using the schema's own x-error texts."""
    entry_schema = load_schema()["$defs"]["entry"]
    properties = entry_schema["properties"]
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in entry)
        if "allOf" in error.schema_path:
            return (missing, "is required when 'from_source' is true")
        return (missing, "missing required field")
    if error.validator == "dependentRequired":
        for trigger, needed in error.validator_value.items():
            absent = [name for name in needed if name not in entry]
            if trigger in entry and absent:
                return (absent[0], f"is required when '{trigger}' is given")
    if error.validator == "additionalProperties":
        extra = sorted(set(entry) - set(properties))
        return (str(extra[0]), "unknown field (the allowed fields are listed in grader/catalogue/resources.schema.json)")
    if error.validator == "anyOf" and not error.absolute_path:
        hint = entry_schema["x-anyOf-error"]
        return (hint["field"], hint["message"])
    if error.validator == "const" and list(error.absolute_path) == ["from_source"]:
        return ("from_source", "must be true when 'note' is given (notes record corrections to the source document)")
    field = str(error.absolute_path[0]) if error.absolute_path else "*"
    if field == "topics" and len(error.absolute_path) == 2 and error.validator == "enum":
        return ("topics", f"unknown topic {error.instance!r} (allowed: {', '.join(allowed_topics())})")
    message = properties.get(field, {}).get("x-error", error.message)
    return (field, message.format(max_year=latest_allowed_year()))


def _entry_problem(entry: dict[str, Any]) -> tuple[str, str] | None:
    """Checks on one entry that JSON Schema cannot express."""
    max_year = latest_allowed_year()
    if entry["year"] > max_year:
        return ("year", f"must be an integer between {EARLIEST_YEAR} and {max_year}")
    if not is_valid_url(entry["url"]):
        return ("url", load_schema()["$defs"]["entry"]["properties"]["url"]["x-error"])
    if "isbn" in entry and not is_valid_isbn(entry["isbn"]):
        return ("isbn", "must be an ISBN-10 or ISBN-13 with a valid check digit")
    if count_sentences(entry["summary"]) > 3:
        return ("summary", "must be one to three sentences")
    if count_sentences_zh(entry["summary_zh"]) > 3:
        return ("summary_zh", "must be one to three sentences")
    for field in ("summary_zh", "note_zh"):
        if field in entry and _SPACE_BETWEEN_HANZI.search(entry[field]):
            # YAML's folded style (>-) turns each line break into a space, which Chinese does not use.
            return (field, "has a space between Chinese characters or after Chinese punctuation (a folded YAML line?); keep it on one line")
    return None


_HANZI_OR_FULLWIDTH = "[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef\u201c\u201d]"
_SPACE_BETWEEN_HANZI = re.compile(f"(?<={_HANZI_OR_FULLWIDTH})\\s+(?={_HANZI_OR_FULLWIDTH})|(?<=[，。；：！？、）])\\s+")


class _DuplicateIndex:
    """Remembers the keys of the entries seen so far and names the first one a new entry repeats."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, Any], str] = {}

    @staticmethod
    def _keys(entry: dict[str, Any]) -> list[tuple[str, str, Any]]:
        keys = [
            ("id", "same id", entry["id"]),
            ("url", "same normalised URL", normalise_url(entry["url"])),
            # A book and a course may share a name (Nielsen's book and Coursera's course do);
            # a repeated title is only a duplicate within one kind.
            ("title", "same normalised title and kind", (entry["kind"], normalise_title(entry["title"]))),
        ]
        if "doi" in entry:
            keys.append(("doi", "same DOI", entry["doi"].lower()))
        if "arxiv" in entry:
            keys.append(("arxiv", "same arXiv identifier", strip_arxiv_version(entry["arxiv"])))
        if "isbn" in entry:
            keys.append(("isbn", "same ISBN", isbn_digits(entry["isbn"])))
        return keys

    def problem(self, entry: dict[str, Any]) -> tuple[str, str] | None:
        for field, reason, value in self._keys(entry):
            owner = self._owners.get((field, value))
            if owner is not None:
                return (field, f"duplicate of entry '{owner}' ({reason})")
        return None

    def add(self, entry: dict[str, Any]) -> None:
        for field, _reason, value in self._keys(entry):
            self._owners.setdefault((field, value), entry["id"])


# Normalisation and syntax helpers (pure functions, reused by the tests as documentation).


def is_valid_url(url: str) -> bool:
    """Offline syntax check: http(s) scheme, a host name with a dot, no whitespace."""
    if not url or any(ch.isspace() for ch in url):
        return False
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    return parts.scheme in ("http", "https") and "." in host and not host.startswith(".") and not host.endswith(".")


def normalise_url(url: str) -> str:
    """The URL as duplicates are compared: no scheme (http == https), lowercase host without
    'www.', no trailing slash, no fragment; the query is kept because it can name a page."""
    parts = urllib.parse.urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = f":{parts.port}" if parts.port not in (None, 80, 443) else ""
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{path}{query}"


def normalise_title(title: str) -> str:
    """Case, accents of compatibility forms, punctuation and spacing removed: 'Deep Learning!' == 'deep-learning'."""
    folded = unicodedata.normalize("NFKC", title).casefold()
    words = re.findall(r"\w+", folded)
    return " ".join(words)


def strip_arxiv_version(arxiv_id: str) -> str:
    return re.sub(r"v\d+$", "", arxiv_id.strip())


def isbn_digits(isbn: str) -> str:
    return re.sub(r"[\s-]", "", isbn).upper()


def is_valid_isbn(isbn: str) -> bool:
    """ISBN-10 (weights 10..1, mod 11, X = 10) or ISBN-13 (weights 1,3,..., mod 10)."""
    digits = isbn_digits(isbn)
    if re.fullmatch(r"\d{9}[\dX]", digits):
        total = sum((10 - i) * (10 if ch == "X" else int(ch)) for i, ch in enumerate(digits))
        return total % 11 == 0
    if re.fullmatch(r"\d{13}", digits):
        total = sum(int(ch) * (1 if i % 2 == 0 else 3) for i, ch in enumerate(digits))
        return total % 10 == 0
    return False


_ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|et al|etc|vs|cf|Dr|Prof|No|Vol|ed|eds)\.", re.IGNORECASE)


def count_sentences(text: str) -> int:
    """Sentences in an English summary; abbreviations such as 'e.g.' and 'et al.' do not end one."""
    masked = _ABBREVIATIONS.sub(lambda match: match.group(0).replace(".", "\u2024"), text.strip())
    pieces = re.split(r"(?<=[.!?])[\"”’)]*\s+(?=[\"“(]?[A-Z0-9])", masked)
    return len([piece for piece in pieces if piece.strip()])


def count_sentences_zh(text: str) -> int:
    """Sentences in a Chinese summary: full-width terminators, plus an unterminated tail."""
    pieces = re.split(r"(?<=[。！？])", text.strip())
    return len([piece for piece in pieces if piece.strip()])
