"""The resources catalogue: load and validate ``resources.yaml``, cite it, render it, check its links.

``resources.yaml`` is the single place where the course names a book, paper, course or
tool. This module has four jobs, in this order in the file:

1. ``load_catalogue`` validates the file against ``resources.schema.json`` plus the checks
   a schema cannot express (URL syntax, ISBN check digits, duplicates, summary length in
   sentences, the latest allowed year) and fails with one line naming the entry and field.
2. ``expand_citations`` turns ``[@some-id]`` in a page into a link to the entry.
3. ``render_resources_pages`` writes the catalogue as Markdown pages for the site
   (English or Chinese), grouped by kind and then by primary topic.
4. ``main`` is the ``grader resources [--online] [--file F]`` command; ``--online`` is the
   only code here that touches the network, and no test calls it.
"""
from __future__ import annotations

import argparse
import datetime
import json
import re
import sys
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from collections.abc import Callable
from typing import Any

import yaml


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


# --------------------------------------------------------------------------------------
# 1. Loading and validation
# --------------------------------------------------------------------------------------


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
def _entry_validator() -> jsonschema.protocols.Validator:
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


def _describe_schema_error(error: jsonschema.ValidationError, entry: dict[str, Any]) -> tuple[str, str]:
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
        return (str(extra[0]), "unknown field (the allowed fields are listed in grader/resources.schema.json)")
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


# --------------------------------------------------------------------------------------
# 2. Citations
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# 3. Site pages
# --------------------------------------------------------------------------------------

# Page order on the site: what a learner starts with first.
KIND_PAGES = {
    "course": "courses",
    "lecture": "lectures",
    "book": "books",
    "paper": "papers",
    "conference": "conferences",
    "library": "libraries",
    "platform": "platforms",
}

KIND_LABELS = {
    "course": ("Courses", "课程"),
    "lecture": ("Lectures and talks", "讲座与报告"),
    "book": ("Books", "书籍"),
    "paper": ("Papers", "论文"),
    "conference": ("Conferences", "学术会议"),
    "library": ("Libraries and frameworks", "软件库与框架"),
    "platform": ("Platforms", "平台"),
}

TOPIC_LABELS = {
    "foundations": ("Foundations of machine learning", "机器学习基础"),
    "mathematics": ("Mathematics for machine learning", "机器学习的数学基础"),
    "neural-networks": ("Neural networks and forward propagation", "神经网络与前向传播"),
    "backpropagation": ("Backpropagation", "反向传播"),
    "optimization": ("Optimization and gradient descent", "优化与梯度下降"),
    "initialization": ("Weight initialization", "参数初始化"),
    "regularization": ("Regularization", "正则化"),
    "normalization": ("Normalization layers", "归一化"),
    "computer-vision": ("Computer vision and CNNs", "计算机视觉与卷积神经网络"),
    "sequence-models": ("Sequence models (RNN, LSTM, seq2seq)", "序列模型（RNN、LSTM、seq2seq）"),
    "attention": ("Attention", "注意力机制"),
    "transformers": ("Transformers", "Transformer"),
    "nlp": ("Natural language processing", "自然语言处理"),
    "pretraining": ("Pre-training", "预训练"),
    "fine-tuning": ("Fine-tuning", "微调"),
    "alignment": ("Alignment (RLHF and preference learning)", "对齐（RLHF 与偏好学习）"),
    "scaling": ("Scaling laws", "缩放定律"),
    "large-language-models": ("Large language models", "大模型（大语言模型）"),
    "frameworks": ("Frameworks and tools", "框架与工具"),
    "research-community": ("Research community and conferences", "学术社区与会议"),
    "probabilistic-ml": ("Probabilistic machine learning", "概率机器学习"),
}

LEVEL_LABELS = {
    "beginner": ("beginner", "入门"),
    "intermediate": ("intermediate", "进阶"),
    "advanced": ("advanced", "高级"),
}

LANGUAGE_LABELS = {"en": ("English", "英文"), "zh": ("Chinese", "中文")}

# Every fixed string of the pages, in both languages.
TEXT = {
    "en": {
        "authors": "Authors",
        "organisation": "Organisation",
        "year": "Year",
        "level": "Level",
        "language": "Language",
        "access": "Access",
        "free": "free",
        "paid": "paid",
        "venue": "Venue",
        "publisher": "Publisher",
        "links": "Links",
        "official": "Official page",
        "topics": "Topics",
        "verified": "Verified against",
        "correction_title": "Corrected from the source document",
        "source_said": "The source document said",
        "index_title": "Learning resources",
        "index_intro": (
            "A curated catalogue of the courses, books, papers, lectures and tools this course "
            "recommends. Every entry was checked against a primary source (the arXiv abstract, "
            "the DOI record, the publisher's or the author's own page); the line *Verified against* "
            "says which. Entries marked as coming from the source document are the resources that "
            "the document this course grew from recommends; where it named them wrongly, the entry "
            "carries the correction."
        ),
        "cite_hint": "Pages of this site cite an entry as `[@entry-id]`; the link leads here.",
        "by_kind": "Browse by kind",
        "kind": "Kind",
        "entries": "Entries",
        "corrections": "Corrections to the source document",
        "corrections_intro": (
            "The source document's list of resources (its section 6) contained the errors below. "
            "Each row links to the corrected entry."
        ),
        "correction": "Correction",
        "entry": "Entry",
        "all_entries": "All entries",
        "from_source": "Named by the source document",
        "yes": "yes",
        "none": "None.",
    },
    "zh": {
        "authors": "作者",
        "organisation": "机构",
        "year": "年份",
        "level": "难度",
        "language": "语言",
        "access": "获取方式",
        "free": "免费",
        "paid": "付费",
        "venue": "发表于",
        "publisher": "出版社",
        "links": "链接",
        "official": "官方页面",
        "topics": "主题",
        "verified": "核实依据",
        "correction_title": "对来源文档的更正",
        "source_said": "来源文档的写法",
        "index_title": "学习资源",
        "index_intro": (
            "本课程推荐的课程、书籍、论文、讲座与工具的精选目录。每一条都对照过一手来源"
            "（arXiv 摘要页、DOI 记录、出版社或作者本人的页面），“核实依据”一栏写明对照的是哪一个。"
            "标注为“来源文档推荐”的条目，是本课程所依据的原始文档列出的资源；原文写错的地方，条目中附有更正说明。"
        ),
        "cite_hint": "本站页面用 `[@条目id]` 引用条目，链接会指向这里。",
        "by_kind": "按类别浏览",
        "kind": "类别",
        "entries": "条目数",
        "corrections": "对来源文档的更正",
        "corrections_intro": "来源文档第 6 节的资源列表有以下错误，每一行都链接到更正后的条目。",
        "correction": "更正说明",
        "entry": "条目",
        "all_entries": "全部条目",
        "from_source": "来源文档推荐",
        "yes": "是",
        "none": "无。",
    },
}


def kind_page_name(kind: str) -> str:
    return f"{KIND_PAGES[kind]}.md"


def _pick(pair: tuple[str, str], lang: str) -> str:
    return pair[1] if lang == "zh" else pair[0]


def render_resources_pages(catalogue: list[dict[str, Any]], lang: str = "en") -> dict[str, str]:
    """Markdown pages: ``resources/index.md`` plus one page per kind present (``resources/papers.md``...).

    The same page paths are returned for both languages; where the Chinese pages go is the
    site's decision. Within a kind page, entries are grouped under their primary (first) topic,
    in the schema's topic order, and sorted by year and title.
    """
    if lang not in TEXT:
        raise ValueError(f"unsupported language {lang!r}; expected one of {sorted(TEXT)}")
    pages = {"resources/index.md": _render_index(catalogue, lang)}
    for kind in KIND_PAGES:
        entries = [entry for entry in catalogue if entry["kind"] == kind]
        if entries:
            pages[f"resources/{kind_page_name(kind)}"] = _render_kind_page(kind, entries, lang)
    return pages


def _render_kind_page(kind: str, entries: list[dict[str, Any]], lang: str) -> str:
    lines = [f"# {_pick(KIND_LABELS[kind], lang)}", ""]
    for topic in allowed_topics():
        group = sorted(
            (entry for entry in entries if entry["topics"][0] == topic),
            key=lambda entry: (entry["year"], normalise_title(entry["title"])),
        )
        if not group:
            continue
        lines += [f"## {_pick(TOPIC_LABELS[topic], lang)}", ""]
        for entry in group:
            lines += _render_entry(entry, lang)
    return "\n".join(lines).rstrip() + "\n"


def _render_entry(entry: dict[str, Any], lang: str) -> list[str]:
    text = TEXT[lang]
    if entry.get("authors"):
        people = ", ".join(entry["authors"]) + (" et al." if entry.get("et_al") else "")
        who = f"**{text['authors']}:** {people}"
    else:
        who = f"**{text['organisation']}:** {entry['organisation']}"
    facts = " · ".join([
        f"**{text['year']}:** {entry['year']}",
        f"**{text['level']}:** {_pick(LEVEL_LABELS[entry['level']], lang)}",
        f"**{text['language']}:** {_pick(LANGUAGE_LABELS.get(entry['language'], (entry['language'],) * 2), lang)}",
        f"**{text['access']}:** {text['free'] if entry['free'] else text['paid']}",
    ])
    lines = [f'<a id="{entry["id"]}"></a>', "", f"### {entry['title']}", "", f"- {who}", f"- {facts}"]
    if "venue" in entry:
        lines.append(f"- **{text['venue']}:** {entry['venue']}")
    if "publisher" in entry:
        lines.append(f"- **{text['publisher']}:** {entry['publisher']}")
    lines.append(f"- **{text['links']}:** {' · '.join(identifier_links(entry, lang))}")
    topics = ", ".join(_pick(TOPIC_LABELS[topic], lang) for topic in entry["topics"])
    lines.append(f"- **{text['topics']}:** {topics}")
    lines.append(f"- **{text['verified']}:** {entry['verified']}")
    lines += ["", entry["summary_zh"] if lang == "zh" else entry["summary"], ""]
    if "note" in entry:
        note = entry["note_zh"] if lang == "zh" else entry["note"]
        lines += [
            f'!!! note "{text["correction_title"]}"',
            f"    {text['source_said']}: {entry['source_text']}",
            "",
            f"    {note}",
            "",
        ]
    return lines


def identifier_links(entry: dict[str, Any], lang: str = "en") -> list[str]:
    """The official page, arXiv and DOI as links; the ISBN as plain text.

    The official page is left out when it is the arXiv or DOI page itself, to avoid two links
    to one place.
    """
    identifiers = []
    if "arxiv" in entry:
        identifiers.append((f"arXiv:{entry['arxiv']}", f"https://arxiv.org/abs/{entry['arxiv']}"))
    if "doi" in entry:
        identifiers.append((f"doi:{entry['doi']}", f"https://doi.org/{entry['doi']}"))
    links = [f"[{label}]({url})" for label, url in identifiers]
    if normalise_url(entry["url"]) not in {normalise_url(url) for _label, url in identifiers}:
        links.insert(0, f"[{TEXT[lang]['official']}]({entry['url']})")
    if "isbn" in entry:
        links.append(f"ISBN {entry['isbn']}")
    return links


def _table_cell(text: str) -> str:
    return " ".join(text.split()).replace("|", r"\|")


def _render_index(catalogue: list[dict[str, Any]], lang: str) -> str:
    text = TEXT[lang]
    counts = Counter(entry["kind"] for entry in catalogue)
    lines = [f"# {text['index_title']}", "", text["index_intro"], "", text["cite_hint"], ""]

    lines += [f"## {text['by_kind']}", "", f"| {text['kind']} | {text['entries']} |", "| --- | ---: |"]
    for kind in KIND_PAGES:
        if counts[kind]:
            lines.append(f"| [{_pick(KIND_LABELS[kind], lang)}]({kind_page_name(kind)}) | {counts[kind]} |")
    lines.append("")

    corrected = [entry for entry in catalogue if "note" in entry]
    lines += [f"## {text['corrections']}", "", text["corrections_intro"], ""]
    if corrected:
        lines += [f"| {text['source_said']} | {text['entry']} | {text['correction']} |", "| --- | --- | --- |"]
        for entry in corrected:
            note = entry["note_zh"] if lang == "zh" else entry["note"]
            link = f"[{_table_cell(entry['title'])}]({kind_page_name(entry['kind'])}#{entry['id']})"
            lines.append(f"| {_table_cell(entry['source_text'])} | {link} | {_table_cell(note)} |")
    else:
        lines.append(text["none"])
    lines.append("")

    # One anchor per entry here too, so a citation that links to the index lands on its row.
    lines += [
        f"## {text['all_entries']}",
        "",
        f"| {text['entry']} | {text['kind']} | {text['year']} | {text['from_source']} |",
        "| --- | --- | ---: | --- |",
    ]
    for entry in sorted(catalogue, key=lambda entry: normalise_title(entry["title"])):
        anchor = f'<a id="{entry["id"]}"></a>'
        link = f"[{_table_cell(entry['title'])}]({kind_page_name(entry['kind'])}#{entry['id']})"
        source = text["yes"] if entry.get("from_source") else ""
        lines.append(f"| {anchor}{link} | {_pick(KIND_LABELS[entry['kind']], lang)} | {entry['year']} | {source} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# 4. Online link check and the command line
# --------------------------------------------------------------------------------------

USER_AGENT = "ai-foundations-linkcheck/1.0 (+https://github.com/large-models-course/ai-foundations)"
# Sites that refuse robots (403, 429) are not evidence of a dead link; they are reported apart.
BLOCKED_STATUSES = {401, 403, 429}


@dataclass(frozen=True)
class LinkResult:
    entry_id: str
    url: str
    status: int | None  # None: no HTTP answer at all
    detail: str

    @property
    def dead(self) -> bool:
        return self.status is None or (self.status >= 400 and self.status not in BLOCKED_STATUSES)

    @property
    def blocked(self) -> bool:
        return self.status in BLOCKED_STATUSES


def entry_links(entry: dict[str, Any]) -> list[str]:
    urls = [entry["url"]]
    if "arxiv" in entry:
        urls.append(f"https://arxiv.org/abs/{entry['arxiv']}")
    if "doi" in entry:
        urls.append(f"https://doi.org/{entry['doi']}")
    return urls


def check_link(entry_id: str, url: str, timeout: float = 15.0) -> LinkResult:
    """HEAD first (cheap); servers that reject HEAD get a GET that reads only the first bytes."""
    status, detail = None, ""
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers={"User-Agent": USER_AGENT})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if method == "GET":
                    response.read(1024)
                return LinkResult(entry_id, url, response.status, "ok")
        except urllib.error.HTTPError as exc:
            status, detail = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, detail = None, str(getattr(exc, "reason", exc))
    return LinkResult(entry_id, url, status, detail)


def check_links(catalogue: list[dict[str, Any]], timeout: float = 15.0, workers: int = 8) -> list[LinkResult]:
    jobs = [(entry["id"], url) for entry in catalogue for url in entry_links(entry)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: check_link(*job, timeout=timeout), jobs))


def summarise(catalogue: list[dict[str, Any]]) -> str:
    counts = Counter(entry["kind"] for entry in catalogue)
    by_kind = ", ".join(f"{counts[kind]} {kind}" for kind in KIND_PAGES if counts[kind])
    from_source = sum(1 for entry in catalogue if entry.get("from_source"))
    corrected = sum(1 for entry in catalogue if "note" in entry)
    return (
        f"{len(catalogue)} entries valid ({by_kind}); "
        f"{from_source} named by the source document, {corrected} with a correction note"
    )


def main(argv: list[str] | None = None) -> int:
    """``grader resources [--online] [--file resources.yaml]``: 0 valid, 1 dead links, 2 invalid."""
    parser = argparse.ArgumentParser(
        prog="grader resources",
        description="Validate the resources catalogue; with --online also check that its links answer.",
    )
    parser.add_argument("--file", default=DEFAULT_CATALOGUE, help="catalogue to check (default: %(default)s)")
    parser.add_argument("--online", action="store_true", help="also request every link (network; slow)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per request with --online")
    args = parser.parse_args(argv)

    try:
        catalogue = load_catalogue(args.file)
    except CatalogueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{Path(args.file).name}: {summarise(catalogue)}")
    if not args.online:
        return 0

    results = check_links(catalogue, timeout=args.timeout)
    dead = [result for result in results if result.dead]
    for result in results:
        if result.dead:
            print(f"dead link: entry '{result.entry_id}': {result.url} ({result.detail})", file=sys.stderr)
        elif result.blocked:
            print(f"not checkable (server refuses robots): entry '{result.entry_id}': {result.url} ({result.detail})")
    print(f"{len(results)} links checked, {len(dead)} dead")
    return 1 if dead else 0


if __name__ == "__main__":
    sys.exit(main())
