"""The resources catalogue: the real file, its validation messages, citations and site pages.

The oracles are independent of grader/catalogue/: the identifiers the issue lists come from
their primary sources (arXiv, DOI records, publishers), ISBN check digits are recomputed here,
the list of items the source document names is copied from its section 6, and the rendered
Markdown is run through Python-Markdown's own admonition extension.
"""
from __future__ import annotations

import copy
import datetime
import json
import re
from pathlib import Path

import markdown
import pytest

from grader import catalogue as resources
from grader.catalogue import CatalogueError

# The module's own jsonschema import skips a slow optional grammar (see grader.catalogue.load).
jsonschema = resources.jsonschema

REPO = Path(__file__).resolve().parents[1]
CATALOGUE_FILE = REPO / "resources.yaml"
SCHEMA = json.loads((REPO / "grader" / "catalogue" / "resources.schema.json").read_text(encoding="utf-8"))
THIS_YEAR = datetime.date.today().year
NAME = "resources.yaml"


@pytest.fixture(scope="module")
def catalogue() -> list[dict]:
    return resources.load_catalogue(CATALOGUE_FILE)


@pytest.fixture(scope="module")
def by_id(catalogue) -> dict[str, dict]:
    return {entry["id"]: entry for entry in catalogue}


@pytest.fixture(scope="module")
def pages_en(catalogue) -> dict[str, str]:
    return resources.render_resources_pages(catalogue, lang="en")


@pytest.fixture(scope="module")
def pages_zh(catalogue) -> dict[str, str]:
    return resources.render_resources_pages(catalogue, lang="zh")


def validation_error(data: list[dict]) -> str:
    with pytest.raises(CatalogueError) as excinfo:
        resources.validate_catalogue(data, NAME)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------------------
# The real catalogue
# ---------------------------------------------------------------------------------------


def test_schema_is_a_valid_draft_2020_12_schema():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_real_catalogue_is_valid_and_has_at_least_60_entries(catalogue):
    assert len(catalogue) >= 60
    assert len({entry["id"] for entry in catalogue}) == len(catalogue)


def test_every_entry_has_a_verified_identifier_or_official_page(catalogue):
    for entry in catalogue:
        assert resources.is_valid_url(entry["url"]), entry["id"]
        assert entry["verified"].strip(), entry["id"]


def test_every_entry_has_a_chinese_summary(catalogue):
    for entry in catalogue:
        assert re.search(r"[\u4e00-\u9fff]", entry["summary_zh"]), entry["id"]
        assert not re.search(r"[\u4e00-\u9fff]\s+[\u4e00-\u9fff]", entry["summary_zh"]), entry["id"]


# Every item of the source document's section 6, in its own words (the oracle for coverage).
SOURCE_DOCUMENT_ITEMS = [
    "Deep Learning Specialization",
    "Deep Learning Nanodegree",
    "edX的“Neural Networks and Deep Learning”",
    "Google I/O",
    "Neural Information Processing Systems (NIPS)",
    "International Conference on Learning Representations (ICLR)",
    "书籍：“Deep Learning”（Ian Goodfellow等）",
    "论文：“Deep Learning”（Ian Goodfellow等）",
    "Hands-On Machine Learning with Scikit-Learn",
    "“Neural Networks and Deep Learning”（Michael Nielsen）",
    "Improving Deep Neural Networks by Training from Scratch",
    "Residual Learning for Very Deep Networks",
    "TensorFlow",
    "PyTorch",
    "Keras",
]


@pytest.mark.parametrize("item", SOURCE_DOCUMENT_ITEMS)
def test_every_item_the_source_document_names_is_in_the_catalogue(catalogue, item):
    quoted_by = [entry["id"] for entry in catalogue if item in entry.get("source_text", "")]
    assert quoted_by, f"no from_source entry quotes {item!r}"
    assert all(entry["from_source"] for entry in catalogue if entry["id"] in quoted_by)


def test_from_source_entries_quote_the_document(catalogue):
    from_source = [entry for entry in catalogue if entry.get("from_source")]
    assert len(from_source) == 15
    for entry in from_source:
        assert entry["source_text"].strip()


@pytest.mark.parametrize(
    ("entry_id", "kind", "must_mention"),
    [
        # "Deep Learning (Ian Goodfellow et al.)" listed as a paper is a book.
        ("goodfellow-2016-deep-learning", "book", ["book", "not a paper"]),
        # The He et al. title does not exist; the replacement says so and gives the other candidate.
        ("he-2015-delving-deep-rectifiers", "paper", ["No paper with this title", "he-2019-rethinking-imagenet-pretraining"]),
        ("he-2019-rethinking-imagenet-pretraining", "paper", ["Improving Deep Neural Networks by Training from Scratch"]),
        # The ResNet paper's real title.
        ("he-2016-deep-residual-learning", "paper", ["Deep Residual Learning for Image Recognition", "title is wrong"]),
        # NIPS is now NeurIPS (renamed in 2018).
        ("neurips", "conference", ["NeurIPS", "2018", "NIPS"]),
        # The edX course could not be verified; the note points to the verified items.
        ("coursera-neural-networks-deep-learning", "course", ["edX", "nielsen-2015-neural-networks-deep-learning"]),
    ],
)
def test_the_corrections_named_in_the_issue_have_notes(by_id, entry_id, kind, must_mention):
    entry = by_id[entry_id]
    assert entry["kind"] == kind
    assert entry["from_source"] is True
    for phrase in must_mention:
        assert phrase in entry["note"], (entry_id, phrase)
    assert re.search(r"[\u4e00-\u9fff]", entry["note_zh"])


# Identifiers as the primary sources give them (arXiv abstract pages, DOI records, publishers).
KNOWN_IDENTIFIERS = [
    ("goodfellow-2016-deep-learning", "isbn", "9780262035613"),
    ("geron-2022-hands-on-ml", "isbn", "9781098125974"),
    ("he-2016-deep-residual-learning", "arxiv", "1512.03385"),
    ("he-2015-delving-deep-rectifiers", "arxiv", "1502.01852"),
    ("he-2019-rethinking-imagenet-pretraining", "arxiv", "1811.08883"),
    ("vaswani-2017-attention", "arxiv", "1706.03762"),
    ("brown-2020-gpt3", "arxiv", "2005.14165"),
    ("kaplan-2020-scaling-laws", "arxiv", "2001.08361"),
    ("hoffmann-2022-chinchilla", "arxiv", "2203.15556"),
    ("ouyang-2022-instructgpt", "arxiv", "2203.02155"),
    ("christiano-2017-human-preferences", "arxiv", "1706.03741"),
    ("hu-2022-lora", "arxiv", "2106.09685"),
    ("kingma-2015-adam", "arxiv", "1412.6980"),
    ("ioffe-2015-batch-normalization", "arxiv", "1502.03167"),
    ("ba-2016-layer-normalization", "arxiv", "1607.06450"),
    ("rumelhart-1986-backpropagation", "doi", "10.1038/323533a0"),
    # Added in the content review (issue 16), each checked against its arXiv abstract or DOI record.
    ("openai-2024-o1-system-card", "arxiv", "2412.16720"),
    ("deepseek-2025-r1", "arxiv", "2501.12948"),
    ("lambert-2024-tulu-3", "arxiv", "2411.15124"),
    ("shao-2024-deepseekmath", "arxiv", "2402.03300"),
    ("fedus-2021-switch-transformers", "arxiv", "2101.03961"),
    ("jiang-2024-mixtral", "arxiv", "2401.04088"),
    ("deepseek-2024-v3", "arxiv", "2412.19437"),
    ("kimi-2025-k2", "arxiv", "2507.20534"),
    ("gemini-2024-gemini-1-5", "arxiv", "2403.05530"),
    ("peng-2023-yarn", "arxiv", "2309.00071"),
    ("schick-2023-toolformer", "arxiv", "2302.04761"),
    ("yao-2023-react", "arxiv", "2210.03629"),
    ("dubey-2024-llama-3", "arxiv", "2407.21783"),
    ("qwen-2024-qwen2-5", "arxiv", "2412.15115"),
    ("zhang-2019-rmsnorm", "arxiv", "1910.07467"),
    ("gu-2023-mamba", "arxiv", "2312.00752"),
    ("silver-2016-alphago", "doi", "10.1038/nature16961"),
    ("vinyals-2019-alphastar", "doi", "10.1038/s41586-019-1724-z"),
    ("hinton-2012-deep-neural-networks-speech", "doi", "10.1109/MSP.2012.2205597"),
]


@pytest.mark.parametrize(
    ("entry_id", "field", "must_say", "must_not_say"),
    [
        # LLaMA and most current LLMs use RMSNorm, not LayerNorm (the LLaMA entry says so too).
        ("ba-2016-layer-normalization", "summary", ["RMSNorm", "original Transformer"], ["every Transformer block."]),
        ("touvron-2023-llama", "summary", ["RMSNorm"], []),
        # The first NeurIPS met in Denver in November 1987, not in December.
        ("neurips", "summary", ["November 1987"], ["every December since 1987"]),
        # Bengio et al. (2003) learned word embeddings a decade before word2vec.
        ("mikolov-2013-word2vec", "summary", ["Bengio et al. (2003)"], ["start here"]),
        # State-space and hybrid models are not Transformer variants.
        ("vaswani-2017-attention", "summary", ["state-space"], ["Every large language model since is"]),
    ],
)
def test_corrected_catalogue_statements(by_id, entry_id, field, must_say, must_not_say):
    text = " ".join(by_id[entry_id][field].split())
    for phrase in must_say:
        assert phrase in text, (entry_id, phrase)
    for phrase in must_not_say:
        assert phrase not in text, (entry_id, phrase)


@pytest.mark.parametrize(("entry_id", "field", "expected"), KNOWN_IDENTIFIERS)
def test_identifiers_match_their_primary_sources(by_id, entry_id, field, expected):
    value = by_id[entry_id][field]
    if field == "isbn":
        value = value.replace("-", "")
    assert value == expected


def isbn13_check_digit_ok(digits: str) -> bool:
    # Independent of the module: ISBN-13 weights alternate 1 and 3 and the sum is a multiple of 10.
    weights = [1, 3] * 7
    return sum(int(d) * w for d, w in zip(digits, weights)) % 10 == 0


def test_every_isbn_in_the_catalogue_has_a_valid_check_digit(catalogue):
    isbns = [entry["isbn"].replace("-", "") for entry in catalogue if "isbn" in entry]
    assert len(isbns) >= 8
    for digits in isbns:
        assert len(digits) == 13 and isbn13_check_digit_ok(digits), digits


def test_topic_and_kind_labels_cover_the_schema():
    entry = SCHEMA["$defs"]["entry"]["properties"]
    assert list(resources.TOPIC_LABELS) == SCHEMA["$defs"]["topic"]["enum"]
    assert set(resources.KIND_PAGES) == set(entry["kind"]["enum"]) == set(resources.KIND_LABELS)


# ---------------------------------------------------------------------------------------
# Broken entries: each fails with one exact line naming the entry and the field
# ---------------------------------------------------------------------------------------

TOPICS = ", ".join(SCHEMA["$defs"]["topic"]["enum"])
URL_MESSAGE = "must be an http(s) URL with a dotted host name and no spaces"


def modified(catalogue, entry_id, remove=(), **changes):
    data = copy.deepcopy(catalogue)
    entry = next(entry for entry in data if entry["id"] == entry_id)
    for field in remove:
        del entry[field]
    entry.update(changes)
    return data


BROKEN_ENTRIES = [
    ("missing field", dict(remove=["year"]), "year", "missing required field"),
    ("year too early", dict(year=1700), "year", f"must be an integer between 1940 and {THIS_YEAR}"),
    ("year in the future", dict(year=THIS_YEAR + 1), "year", f"must be an integer between 1940 and {THIS_YEAR}"),
    ("year as text", dict(year="2017"), "year", f"must be an integer between 1940 and {THIS_YEAR}"),
    ("unknown topic", dict(topics=["attention", "quantum-magic"]), "topics",
     f"unknown topic 'quantum-magic' (allowed: {TOPICS})"),
    ("no topics", dict(topics=[]), "topics", "must be a non-empty list of distinct topics from the schema's list"),
    ("unknown scheme", dict(url="ftp://arxiv.org/abs/1706.03762"), "url", URL_MESSAGE),
    ("host without a dot", dict(url="https://localhost/paper"), "url", URL_MESSAGE),
    ("space in URL", dict(url="https://arxiv.org/abs/1706 03762"), "url", URL_MESSAGE),
    ("DOI with resolver prefix", dict(doi="https://doi.org/10.1038/xyz"), "doi",
     "must be a DOI of the form 10.NNNN/suffix, without a https://doi.org/ prefix"),
    ("DOI without prefix 10.", dict(doi="11.1038/xyz"), "doi",
     "must be a DOI of the form 10.NNNN/suffix, without a https://doi.org/ prefix"),
    ("arXiv with 'arXiv:' prefix", dict(arxiv="arXiv:1706.03762"), "arxiv",
     "must be an arXiv identifier such as 1706.03762 (or old-style cs/0101001), optionally with a version suffix"),
    ("bad ISBN checksum", dict(isbn="978-0-262-03561-4"), "isbn", "must be an ISBN-10 or ISBN-13 with a valid check digit"),
    ("ISBN of 12 digits", dict(isbn="978026203561"), "isbn", "must be an ISBN-10 or ISBN-13 with a valid check digit"),
    ("unknown kind", dict(kind="article"), "kind",
     "must be one of: course, lecture, conference, book, paper, platform, library"),
    ("bad level", dict(level="expert"), "level", "must be one of: beginner, intermediate, advanced"),
    ("free as text", dict(free="yes"), "free", "must be true or false"),
    ("language name", dict(language="English"), "language",
     "must be a two-letter ISO 639-1 language code such as en or zh"),
    ("unknown field", dict(pages="5998-6008"), "pages",
     "unknown field (the allowed fields are listed in grader/catalogue/resources.schema.json)"),
    ("neither authors nor organisation", dict(remove=["authors"]), "authors",
     "either 'authors' or 'organisation' is required"),
    ("four-sentence summary", dict(summary="One idea. A second idea. A third idea. A fourth idea."), "summary",
     "must be one to three sentences"),
    ("summary_zh without Chinese", dict(summary_zh="This is not Chinese at all."), "summary_zh",
     "must be a Simplified Chinese text of 10 to 300 characters"),
    ("folded Chinese line", dict(summary_zh="提出 Transformer：只由注意力构成， 完全不用循环结构。"), "summary_zh",
     "has a space between Chinese characters or after Chinese punctuation (a folded YAML line?); keep it on one line"),
    ("space after a Chinese full stop", dict(summary_zh="提出 Transformer：只由注意力构成。 Transformer 不用循环结构。"), "summary_zh",
     "has a space between Chinese characters or after Chinese punctuation (a folded YAML line?); keep it on one line"),
    ("note without note_zh", dict(from_source=True, source_text="论文：“X”", note="A correction that is long enough."),
     "note_zh", "is required when 'note' is given"),
    ("note on an entry not from the source", dict(from_source=False, note="A correction that is long enough.",
                                                   note_zh="这是一条足够长的中文更正说明。"),
     "from_source", "must be true when 'note' is given (notes record corrections to the source document)"),
    ("from_source without source_text", dict(from_source=True), "source_text",
     "is required when 'from_source' is true"),
]


@pytest.mark.parametrize(("case", "change", "field", "message"), BROKEN_ENTRIES, ids=[c[0] for c in BROKEN_ENTRIES])
def test_a_broken_entry_fails_with_one_line_naming_id_and_field(catalogue, case, change, field, message):
    change = dict(change)
    remove = change.pop("remove", ())
    # Each case breaks one field of a valid entry; ISBNs need an entry that has one (a book).
    entry_id = "goodfellow-2016-deep-learning" if field == "isbn" else "vaswani-2017-attention"
    data = modified(catalogue, entry_id, remove=remove, **change)
    assert validation_error(data) == f"{NAME}: entry '{entry_id}': field '{field}': {message}"


def test_an_entry_with_a_bad_id_is_named_by_that_id(catalogue):
    data = modified(catalogue, "vaswani-2017-attention", id="Vaswani_2017")
    assert validation_error(data) == (
        f"{NAME}: entry 'Vaswani_2017': field 'id': "
        "must be kebab-case: lowercase letters and digits separated by single hyphens"
    )


def test_an_entry_without_an_id_is_named_by_its_position(catalogue):
    data = modified(catalogue, "vaswani-2017-attention", remove=["id"])
    position = next(i for i, entry in enumerate(data) if "id" not in entry) + 1
    assert validation_error(data) == f"{NAME}: entry #{position}: field 'id': missing required field"


def test_an_entry_that_is_not_a_mapping_is_rejected(catalogue):
    data = copy.deepcopy(catalogue) + ["just a title"]
    assert validation_error(data) == (
        f"{NAME}: entry #{len(data)}: must be a mapping of field names to values"
    )


def duplicate_of(catalogue, source_id, **changes):
    """A copy of an entry with a new id, title and URL, plus the given changes, appended at the end."""
    data = copy.deepcopy(catalogue)
    twin = copy.deepcopy(next(entry for entry in data if entry["id"] == source_id))
    twin.update(id="twin-entry", title="A Different Title Altogether", url="https://example.org/twin")
    for field in ("arxiv", "doi", "isbn"):
        twin.pop(field, None)
    twin.update(changes)
    data.append(twin)
    return data


@pytest.mark.parametrize(
    "url",
    ["http://www.keras.io", "https://keras.io", "https://KERAS.io/", "http://keras.io/#top", "https://www.keras.io//"],
)
def test_duplicate_url_differing_only_by_www_slash_scheme_case_or_fragment(catalogue, url):
    data = duplicate_of(catalogue, "keras", url=url)
    assert validation_error(data) == (
        f"{NAME}: entry 'twin-entry': field 'url': duplicate of entry 'keras' (same normalised URL)"
    )


def test_duplicate_arxiv_id_with_version_suffix(catalogue):
    data = duplicate_of(catalogue, "vaswani-2017-attention", arxiv="1706.03762v7")
    assert validation_error(data) == (
        f"{NAME}: entry 'twin-entry': field 'arxiv': duplicate of entry 'vaswani-2017-attention' "
        "(same arXiv identifier)"
    )


def test_duplicate_doi_differing_in_case(catalogue):
    data = duplicate_of(catalogue, "rumelhart-1986-backpropagation", doi="10.1038/323533A0")
    assert validation_error(data) == (
        f"{NAME}: entry 'twin-entry': field 'doi': duplicate of entry 'rumelhart-1986-backpropagation' (same DOI)"
    )


@pytest.mark.parametrize("title", ["attention is all you need", "Attention is all you need!", "ATTENTION — IS ALL, YOU NEED."])
def test_duplicate_title_differing_in_case_or_punctuation(catalogue, title):
    data = duplicate_of(catalogue, "vaswani-2017-attention", title=title)
    assert validation_error(data) == (
        f"{NAME}: entry 'twin-entry': field 'title': duplicate of entry 'vaswani-2017-attention' "
        "(same normalised title and kind)"
    )


def test_a_book_and_a_course_may_share_a_title(by_id):
    # Nielsen's book and Coursera's course are both called "Neural Networks and Deep Learning".
    book = by_id["nielsen-2015-neural-networks-deep-learning"]
    course = by_id["coursera-neural-networks-deep-learning"]
    assert book["title"] == course["title"] and book["kind"] != course["kind"]


def test_duplicate_id_is_rejected(catalogue):
    data = duplicate_of(catalogue, "keras", id="keras")
    assert validation_error(data) == f"{NAME}: entry 'keras': field 'id': duplicate of entry 'keras' (same id)"


def test_load_catalogue_reports_the_file_name(tmp_path, catalogue):
    path = tmp_path / "resources.yaml"
    data = modified(catalogue, "iclr", year=1700)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")  # JSON is valid YAML
    with pytest.raises(CatalogueError, match=r"^resources\.yaml: entry 'iclr': field 'year': must be an integer"):
        resources.load_catalogue(path)


def test_invalid_yaml_is_reported_with_its_line(tmp_path):
    path = tmp_path / "resources.yaml"
    path.write_text("- id: a\n  title: [unclosed\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"^resources\.yaml: invalid YAML at line \d+: "):
        resources.load_catalogue(path)


def test_an_empty_file_is_rejected(tmp_path):
    path = tmp_path / "resources.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"^resources\.yaml: must be a non-empty list of entries$"):
        resources.load_catalogue(path)


# ---------------------------------------------------------------------------------------
# Syntax and normalisation helpers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "isbn, valid",
    [
        ("978-0-262-03561-3", True),   # Deep Learning, MIT Press
        ("0262035618", True),          # the same book's ISBN-10
        ("080442957X", True),          # check digit X (= 10)
        ("080442957x", True),
        ("978-0-262-03561-4", False),
        ("0262035617", False),
        ("97802620356", False),
        ("abcdefghij", False),
    ],
)
def test_isbn_check_digits(isbn, valid):
    assert resources.is_valid_isbn(isbn) is valid


@pytest.mark.parametrize(
    "a, b, same",
    [
        ("https://www.Keras.io/", "http://keras.io", True),
        ("https://d2l.ai/#intro", "https://d2l.ai", True),
        ("https://karpathy.ai/zero-to-hero.html", "http://www.karpathy.ai/zero-to-hero.html/", True),
        ("https://d2l.ai", "https://zh.d2l.ai", False),
        ("https://speech.ee.ntu.edu.tw/~hylee/ml/2025-spring.php", "https://speech.ee.ntu.edu.tw/~hylee/ml/2022-spring.php", False),
        ("https://www.youtube.com/watch?v=a", "https://www.youtube.com/watch?v=b", False),
    ],
)
def test_url_normalisation(a, b, same):
    assert (resources.normalise_url(a) == resources.normalise_url(b)) is same


@pytest.mark.parametrize(
    "url, valid",
    [
        ("https://arxiv.org/abs/1706.03762", True),
        ("http://neuralnetworksanddeeplearning.com/", True),
        ("arxiv.org/abs/1706.03762", False),
        ("mailto:someone@example.org", False),
        ("https://arxiv", False),
        ("https://arxiv.org/abs/1706 03762", False),
        ("", False),
    ],
)
def test_url_syntax(url, valid):
    assert resources.is_valid_url(url) is valid


@pytest.mark.parametrize(
    "arxiv_id, valid",
    [("1706.03762", True), ("2106.09685v2", True), ("1412.6980", True), ("cs/0101001", True),
     ("math.GT/0309136", True), ("1706.3762", False), ("1412.69801", False), ("1713.03762", False),
     ("arXiv:1706.03762", False), ("17060.3762", False)],
)
def test_arxiv_syntax(arxiv_id, valid):
    pattern = SCHEMA["$defs"]["entry"]["properties"]["arxiv"]["pattern"]
    assert bool(re.search(pattern, arxiv_id)) is valid


def test_sentence_counting():
    assert resources.count_sentences("One sentence with e.g. an example, et al. and vs. a rival.") == 1
    assert resources.count_sentences("GPT-3 has 175 billion parameters. It learns in context! Does it?") == 3
    assert resources.count_sentences_zh("第一句。第二句！第三句？第四句") == 4


# ---------------------------------------------------------------------------------------
# Citations
# ---------------------------------------------------------------------------------------


def test_expand_citations_links_to_the_entry(catalogue):
    text = "The Transformer [@vaswani-2017-attention] uses Adam [@kingma-2015-adam]; see [@nielsen-2015-neural-networks-deep-learning]."
    assert resources.expand_citations(text, catalogue, "../resources/index.md") == (
        "The Transformer [Attention Is All You Need (Vaswani et al., 2017)](../resources/index.md#vaswani-2017-attention)"
        " uses Adam [Adam: A Method for Stochastic Optimization (Kingma & Ba, 2015)](../resources/index.md#kingma-2015-adam)"
        "; see [Neural Networks and Deep Learning (Nielsen, 2015)]"
        "(../resources/index.md#nielsen-2015-neural-networks-deep-learning)."
    )


def test_expand_citations_uses_et_al_for_truncated_author_lists_and_organisations(catalogue):
    assert resources.expand_citations("[@brown-2020-gpt3]", catalogue, "r.md") == (
        "[Language Models are Few-Shot Learners (Brown et al., 2020)](r.md#brown-2020-gpt3)"
    )
    assert resources.expand_citations("[@google-io]", catalogue, "r.md") == "[Google I/O (Google, 2008)](r.md#google-io)"


def test_expand_citations_can_link_straight_to_the_kind_page(catalogue):
    assert resources.expand_citations("[@neurips]", catalogue, "../resources/{page}") == (
        "[Conference on Neural Information Processing Systems (NeurIPS) (Neural Information Processing "
        "Systems Foundation, 1987)](../resources/conferences.md#neurips)"
    )


def test_expand_citations_can_link_to_the_work_itself(catalogue):
    # What a released notebook shows: the same label, linked to the entry's own page.
    assert resources.expand_citations("[@vaswani-2017-attention]", catalogue, resources.entry_link) == (
        "[Attention Is All You Need (Vaswani et al., 2017)](https://arxiv.org/abs/1706.03762)"
    )


def test_expand_citations_rejects_an_unknown_id(catalogue):
    with pytest.raises(CatalogueError) as excinfo:
        resources.expand_citations("See [@vaswani-2017-attention] and [@no-such-paper].", catalogue, "r.md")
    assert str(excinfo.value) == "unknown resource id 'no-such-paper' cited"


def test_expand_citations_leaves_code_alone(catalogue):
    text = "Write `[@some-id]` to cite.\n\n```markdown\n[@no-such-paper]\n```\n\n[@keras]\n"
    assert resources.expand_citations(text, catalogue, "r.md") == (
        "Write `[@some-id]` to cite.\n\n```markdown\n[@no-such-paper]\n```\n\n[Keras (Chollet, 2015)](r.md#keras)\n"
    )


def test_text_without_citations_is_unchanged(catalogue):
    text = "A [link](https://example.org) and an address [me@example.org] stay as they are.\n"
    assert resources.expand_citations(text, catalogue, "r.md") == text


# ---------------------------------------------------------------------------------------
# Site pages
# ---------------------------------------------------------------------------------------


def kind_page(pages, entry):
    return pages[f"resources/{resources.kind_page_name(entry['kind'])}"]


def entry_block(page, entry_id):
    """The Markdown from an entry's anchor up to the next entry's anchor."""
    start = page.index(f'<a id="{entry_id}"></a>')
    following = page.find('<a id="', start + 1)
    return page[start:] if following == -1 else page[start:following]


def test_pages_are_the_index_and_one_page_per_kind(catalogue, pages_en, pages_zh):
    kinds = {entry["kind"] for entry in catalogue}
    expected = {"resources/index.md"} | {f"resources/{resources.KIND_PAGES[kind]}.md" for kind in kinds}
    assert set(pages_en) == expected == set(pages_zh)
    assert {"resources/papers.md", "resources/books.md", "resources/courses.md"} <= expected


def test_every_entry_has_its_anchor_and_identifiers_on_its_kind_page(catalogue, pages_en):
    for entry in catalogue:
        page = kind_page(pages_en, entry)
        anchor = f'<a id="{entry["id"]}"></a>'
        assert page.count(anchor) == 1, entry["id"]
        assert anchor in pages_en["resources/index.md"], entry["id"]
        block = entry_block(page, entry["id"])
        assert entry["title"] in block
        assert f"({entry['url']})" in block
        if "arxiv" in entry:
            assert f"(https://arxiv.org/abs/{entry['arxiv']})" in block
        if "doi" in entry:
            assert f"(https://doi.org/{entry['doi']})" in block
        if "isbn" in entry:
            assert f"ISBN {entry['isbn']}" in block
        assert entry["summary"] in block
        assert str(entry["year"]) in block


def test_kind_pages_hold_only_their_kind_grouped_by_primary_topic(catalogue, pages_en):
    for kind, stem in resources.KIND_PAGES.items():
        page = pages_en.get(f"resources/{stem}.md")
        if page is None:
            continue
        anchors = re.findall(r'<a id="([^"]+)"></a>', page)
        assert sorted(anchors) == sorted(entry["id"] for entry in catalogue if entry["kind"] == kind)
        headings = re.findall(r"^## (.+)$", page, flags=re.MULTILINE)
        topic_order = [resources.TOPIC_LABELS[topic][0] for topic in SCHEMA["$defs"]["topic"]["enum"]]
        assert headings == [label for label in topic_order if label in headings]


def test_every_correction_note_is_shown_in_an_admonition_and_in_the_index(catalogue, pages_en):
    notes = [entry for entry in catalogue if "note" in entry]
    assert len(notes) >= 5
    for entry in notes:
        page = kind_page(pages_en, entry)
        assert f'!!! note "Corrected from the source document"\n    The source document said: {entry["source_text"]}' in page
        assert f"    {entry['note']}" in page
        assert entry["note"] in pages_en["resources/index.md"]
        assert f"(#{entry['id']})" not in pages_en["resources/index.md"]  # links go to the kind page
        assert f"{resources.kind_page_name(entry['kind'])}#{entry['id']}" in pages_en["resources/index.md"]


def test_admonitions_render_as_material_note_boxes(catalogue, pages_en, pages_zh):
    # Python-Markdown's admonition extension is what MkDocs Material uses for `!!! note`.
    for pages in (pages_en, pages_zh):
        for path, page in pages.items():
            html = markdown.markdown(page, extensions=["admonition", "tables"])
            expected = page.count("!!! note ")
            assert html.count('<div class="admonition note">') == expected, path
    total = sum(page.count("!!! note ") for path, page in pages_en.items() if path != "resources/index.md")
    assert total == sum(1 for entry in catalogue if "note" in entry)


def test_index_explains_the_catalogue_and_links_every_kind_page(pages_en):
    index = pages_en["resources/index.md"]
    assert index.startswith("# Learning resources\n")
    assert "## Corrections to the source document" in index
    for path in pages_en:
        if path != "resources/index.md":
            assert f"]({path.removeprefix('resources/')})" in index


def test_chinese_pages_use_chinese_summaries_notes_and_headings(catalogue, pages_zh):
    for entry in catalogue:
        page = kind_page(pages_zh, entry)
        assert entry["summary_zh"] in page
        assert entry["summary"] not in page
        if "note_zh" in entry:
            assert entry["note_zh"] in page
            assert entry["note_zh"] in pages_zh["resources/index.md"]
    assert '!!! note "对来源文档的更正"' in pages_zh["resources/papers.md"]
    assert "## 注意力机制" in pages_zh["resources/papers.md"]
    assert pages_zh["resources/index.md"].startswith("# 学习资源\n")
    assert "**作者:**" in pages_zh["resources/papers.md"]


def test_unknown_language_is_refused(catalogue):
    with pytest.raises(ValueError, match="unsupported language 'fr'"):
        resources.render_resources_pages(catalogue, lang="fr")


# ---------------------------------------------------------------------------------------
# Command line (offline only: the --online link check is never run by the tests)
# ---------------------------------------------------------------------------------------


def test_cli_validates_and_prints_counts_by_kind(capsys, catalogue):
    assert resources.main(["--file", str(CATALOGUE_FILE)]) == 0
    out = capsys.readouterr().out
    papers = sum(1 for entry in catalogue if entry["kind"] == "paper")
    assert out.startswith(f"resources.yaml: {len(catalogue)} entries valid (")
    assert f"{papers} paper" in out


def test_cli_prints_the_one_line_error_and_returns_2(tmp_path, capsys, catalogue):
    path = tmp_path / "resources.yaml"
    data = modified(catalogue, "keras", topics=["deep-magic"])
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")  # JSON is valid YAML
    assert resources.main(["--file", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"resources.yaml: entry 'keras': field 'topics': unknown topic 'deep-magic' (allowed: {TOPICS})\n"
    assert captured.out == ""


def test_link_results_separate_dead_links_from_servers_that_refuse_robots():
    assert resources.LinkResult("x", "https://a.org", 404, "HTTP 404").dead
    assert resources.LinkResult("x", "https://a.org", None, "timed out").dead
    assert resources.LinkResult("x", "https://a.org", 503, "HTTP 503").dead
    refused = resources.LinkResult("x", "https://a.org", 403, "HTTP 403")
    assert refused.blocked and not refused.dead
    assert not resources.LinkResult("x", "https://a.org", 200, "ok").dead


def test_official_page_link_is_not_repeated_when_it_is_the_arxiv_or_doi_page(by_id):
    assert resources.identifier_links(by_id["vaswani-2017-attention"]) == [
        "[arXiv:1706.03762](https://arxiv.org/abs/1706.03762)"
    ]
    assert resources.identifier_links(by_id["he-2016-deep-residual-learning"]) == [
        "[Official page](https://openaccess.thecvf.com/content_cvpr_2016/html/He_Deep_Residual_Learning_CVPR_2016_paper.html)",
        "[arXiv:1512.03385](https://arxiv.org/abs/1512.03385)",
    ]
    assert resources.identifier_links(by_id["goodfellow-2016-deep-learning"], lang="zh") == [
        "[官方页面](https://www.deeplearningbook.org/)",
        "ISBN 978-0-262-03561-3",
    ]
