"""The course site builds strictly, its code runs, and it fetches nothing from elsewhere.

- `mkdocs build --strict` passes (internal links and anchors validated by mkdocs.yml);
- an unknown citation fails the build, naming the page;
- every snippet under docs/snippets/ runs, and prints what the page says it prints;
- every Python block on a hand-written page is an included snippet (so it is run here);
- the built HTML, CSS, JS and SVG would make no request to another host;
- the Chinese edition (zh/) has every page, its own resource and notebook pages, a
  language switch that leads to the same page, and a search index that finds Chinese words.
"""

from __future__ import annotations

import html as html_lib
import json
import math
import os
import posixpath
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
SNIPPETS = DOCS / "snippets"
MKDOCS = [sys.executable, "-m", "mkdocs"]

# The one snippet that must fail: the source document's TensorFlow 1 program.
EXPECTED_FAILURES = {
    "practice/tf1_original.py": "AttributeError: module 'tensorflow' has no attribute 'placeholder'",
}

NUMBER = re.compile(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?")


def build_site(site_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [*MKDOCS, "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("site")
    result = build_site(site_dir)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return site_dir


def test_strict_build_has_no_warnings(site):
    # The fixture already failed on a non-zero exit; a build that "passes" must also be silent.
    assert (site / "index.html").is_file()
    for page in ["algorithms", "practice", "concepts", "applications", "trends", "faq", "notebooks", "resources",
                 "glossary"]:
        assert (site / page / "index.html").is_file(), f"page {page}/ missing from the build"


def test_resource_pages_and_citations_are_generated(site):
    index = (site / "resources" / "index.html").read_text(encoding="utf-8")
    assert 'id="kingma-2015-adam"' in index, "resources/index.md lacks the anchor a citation links to"
    algorithms = (site / "algorithms" / "index.html").read_text(encoding="utf-8")
    assert "[@" not in algorithms, "docs/algorithms.md: a citation was left unexpanded"
    assert re.search(r'href="\.\./resources/papers/#kingma-2015-adam"', algorithms), (
        "docs/algorithms.md: [@kingma-2015-adam] should link to the papers page anchor"
    )


def test_notebook_pages_link_download_and_colab(site):
    notebooks = sorted(p.parent.name for p in (REPO / "notebooks").glob("*/*.ipynb") if p.stem == p.parent.name)
    assert notebooks, "no learner notebook to render (notebooks/<name>/<name>.ipynb)"
    for name in notebooks:
        page = site / "notebooks" / name / "index.html"
        assert page.is_file(), f"notebooks/{name}/{name}.ipynb has no page"
        html = page.read_text(encoding="utf-8")
        colab = f"https://colab.research.google.com/github/large-models-course/ai-foundations/blob/main/notebooks/{name}/{name}.ipynb"
        assert f'href="{colab}"' in html, f"notebooks/{name}: Colab link missing or wrong"
        assert f'href="{name}.ipynb"' in html, f"notebooks/{name}: download link missing"
        copied = site / "notebooks" / name / f"{name}.ipynb"
        assert copied.read_bytes() == (REPO / "notebooks" / name / f"{name}.ipynb").read_bytes()
    # The index lists each released notebook's graded tasks (its nbgrader solution cells).
    index = (site / "notebooks" / "index.html").read_text(encoding="utf-8")
    for name in notebooks:
        cells = json.loads((REPO / "notebooks" / name / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
        tasks = [c["metadata"]["nbgrader"]["grade_id"] for c in cells if c["metadata"].get("nbgrader", {}).get("solution")]
        assert tasks, f"notebooks/{name}/{name}.ipynb has no graded task"
        for task in tasks:
            assert f"<code>{task}</code>" in index, f"notebooks/index.md: task {task} of {name} not listed"


def configured_hooks():
    """The site's hooks after on_config, as mkdocs leaves them before rendering pages."""
    from mkdocs.config import load_config

    from grader.site import hooks

    config = load_config(str(REPO / "mkdocs.yml"))
    hooks.on_config(config)
    return hooks, config


def fake_page(src_uri: str):
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_unknown_citation_fails_naming_the_page():
    from mkdocs.exceptions import PluginError

    hooks, config = configured_hooks()
    with pytest.raises(PluginError) as failure:
        hooks.on_page_markdown("See [@no-such-resource].", fake_page("faq.md"), config, files=None)
    assert "docs/faq.md" in str(failure.value) and "no-such-resource" in str(failure.value)
    # A known id on the same page expands to a relative link into the resources.
    expanded = hooks.on_page_markdown("See [@kingma-2015-adam].", fake_page("faq.md"), config, files=None)
    assert "](resources/papers.md#kingma-2015-adam)" in expanded
    nested = hooks.on_page_markdown("[@kingma-2015-adam]", fake_page("notebooks/index.md"), config, files=None)
    assert "](../resources/papers.md#kingma-2015-adam)" in nested
    # A Chinese page names itself in the error, and links to the same page name, which the
    # i18n plugin resolves to the Chinese resource page (checked on the build below).
    with pytest.raises(PluginError, match=r"docs/faq\.zh\.md: unknown resource id 'nope'"):
        hooks.on_page_markdown("[@nope]", fake_page("faq.zh.md"), config, files=None)
    chinese = hooks.on_page_markdown("[@kingma-2015-adam]", fake_page("faq.zh.md"), config, files=None)
    assert "](resources/papers.md#kingma-2015-adam)" in chinese


def test_unknown_citation_in_a_notebook_names_the_notebook():
    from mkdocs.exceptions import PluginError

    hooks, config = configured_hooks()
    notebook = hooks._build["notebooks"][0]
    with pytest.raises(PluginError, match=re.escape(f"{notebook.repo_path}: unknown resource id 'nope'")):
        hooks.on_page_markdown("[@nope]", fake_page(notebook.page_uri), config, files=None)
    chinese_page = notebook.page_uri.removesuffix(".md") + ".zh.md"
    with pytest.raises(PluginError, match=re.escape(f"{notebook.repo_path}: unknown resource id 'nope'")):
        hooks.on_page_markdown("[@nope]", fake_page(chinese_page), config, files=None)


# --------------------------------------------------------------------------------------
# The Chinese edition (zh/), built by mkdocs-static-i18n from page.zh.md files.
# --------------------------------------------------------------------------------------

CJK = re.compile(r"[\u4e00-\u9fff]")


def english_html_pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("index.html") if not p.relative_to(site).as_posix().startswith("zh/"))


def site_path_prefix() -> str:
    """The path of site_url ("/ai-foundations/"): absolute links on the site start with it."""
    import yaml
    from urllib.parse import urlsplit

    site_url = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["site_url"]
    return "/" + urlsplit(site_url).path.strip("/") + "/"


def resolve(page: Path, href: str, site: Path) -> Path:
    """The file a link of a built page leads to (directory URLs end in index.html)."""
    if href.startswith("/"):
        prefix = site_path_prefix()
        assert href.startswith(prefix), f"{page}: link {href} leaves the site's path {prefix}"
        target = posixpath.normpath(href[len(prefix):].split("#")[0] or ".")
    else:
        target = posixpath.normpath(posixpath.join(page.parent.relative_to(site).as_posix(), href.split("#")[0]))
    path = site / target
    return path / "index.html" if href.split("#")[0].endswith("/") or path.is_dir() else path


def language_links(html: str) -> dict[str, str]:
    """The language switcher's links: hreflang -> href."""
    links = {}
    for tag in re.findall(r"<a\b[^>]*\bhreflang=[^>]*>", html):
        lang, href = re.search(r'hreflang="([^"]+)"', tag), re.search(r'href="([^"]+)"', tag)
        links[lang.group(1)] = href.group(1)
    return links


def test_every_page_has_a_chinese_edition_and_the_switcher_pairs_them(site):
    from grader.site import translations

    # Pages not translated yet fall back to English; tests/test_translations.py reports them.
    pending = set()
    for page in translations.english_pages(DOCS):
        if not translations.translation_of(page).exists():
            stem = page.relative_to(DOCS).as_posix().removesuffix(".md")
            pending.add("index.html" if stem == "index" else stem.removesuffix("/index") + "/index.html")
    pages = [p for p in english_html_pages(site) if p.relative_to(site).as_posix() not in pending]
    assert len(pages) >= 15
    for english in pages:
        rel = english.relative_to(site)
        chinese = site / "zh" / rel
        assert chinese.is_file(), f"{rel} has no Chinese edition at zh/{rel}"
        zh_html = chinese.read_text(encoding="utf-8")
        assert '<html lang="zh"' in zh_html, f"zh/{rel}: not marked as Chinese"
        article = re.search(r'<article class="md-content__inner[^"]*">(.*?)</article>', zh_html, re.DOTALL).group(1)
        assert len(CJK.findall(article)) > 20, f"zh/{rel}: the article is not in Chinese"
        # The switcher on each edition leads to the same page in the other one.
        assert resolve(english, language_links(english.read_text(encoding="utf-8"))["zh"], site) == chinese, rel
        assert resolve(chinese, language_links(zh_html)["en"], site) == english, f"zh/{rel}"
        # The navigation is translated: the same sections, Chinese labels.
        assert "核心算法" in zh_html and "术语表" in zh_html, f"zh/{rel}: navigation not translated"


def test_chinese_resource_pages_come_from_resources_yaml(site):
    from grader import catalogue as resources

    catalogue = resources.load_catalogue(REPO / "resources.yaml")
    for entry in catalogue:
        page = site / "zh" / "resources" / resources.kind_page_name(entry["kind"]).removesuffix(".md") / "index.html"
        html = page.read_text(encoding="utf-8")
        assert f'id="{entry["id"]}"' in html, f"{page.relative_to(site)}: no anchor for {entry['id']}"
        words = CJK.findall(entry["summary_zh"])
        assert "".join(words[:12]) in "".join(CJK.findall(html)), f"{entry['id']}: summary_zh not on {page.relative_to(site)}"
    # A citation on a Chinese page leads to the Chinese resource page.
    algorithms = site / "zh" / "algorithms" / "index.html"
    href = re.search(r'href="([^"]*#kingma-2015-adam)"', algorithms.read_text(encoding="utf-8")).group(1)
    assert resolve(algorithms, href, site) == site / "zh" / "resources" / "papers" / "index.html", href


def test_glossary_pages_list_every_term_in_both_languages(site):
    from grader.site.glossary import load_glossary

    terms = load_glossary()
    for page in ("glossary/index.html", "zh/glossary/index.html"):
        html = html_lib.unescape((site / page).read_text(encoding="utf-8"))
        rows = re.findall(r"<tr>(.*?)</tr>", html, re.DOTALL)
        assert len(rows) == len(terms) + 1, f"{page}: {len(rows) - 1} table rows for {len(terms)} terms"
        for term, row in zip(terms, rows[1:]):
            assert term.en in row and term.zh in row and term.zh_def in row and term.en_def in row, (page, term.en)


def test_chinese_pages_show_the_chinese_diagrams(site):
    for page in ("index.html", "concepts/index.html", "modern/index.html", "post_training/index.html"):
        chinese = site / "zh" / page
        sources = re.findall(r'<img[^>]+src="([^"]+\.svg)"', chinese.read_text(encoding="utf-8"))
        assert sources, f"zh/{page}: no diagram"
        for src in sources:
            svg = resolve(chinese, src, site).read_text(encoding="utf-8")
            assert len(CJK.findall(svg)) > 20, f"zh/{page}: diagram {src} is not the Chinese one (page.zh.svg)"


def test_chinese_notebook_pages_open_with_their_introduction(site):
    for intro in sorted((DOCS / "notebooks" / "intros").glob("*.zh.md")):
        name = intro.name.removesuffix(".zh.md")
        if not (REPO / "notebooks" / name / f"{name}.ipynb").exists():
            continue
        page = site / "zh" / "notebooks" / name / "index.html"
        html = page.read_text(encoding="utf-8")
        title = re.match(r"# (.+)", intro.read_text(encoding="utf-8")).group(1).strip()
        assert "<h1" in html and html_lib.escape(title) in html, f"zh/notebooks/{name}: title {title!r} missing"
        assert html.index("导读") < html.index("<code>"), f"zh/notebooks/{name}: the introduction does not come first"
        download = re.search(r'href="([^"]+\.ipynb)"', html).group(1)
        assert resolve(page, download, site) == site / "notebooks" / name / f"{name}.ipynb", download


def search_tokens(text: str, separator: str) -> set[str]:
    """What lunr indexes from a search entry: tags removed, split by the configured separator."""
    return {token for token in re.split(separator, re.sub(r"<[^>]+>", " ", text).lower()) if token}


def test_search_index_holds_chinese_terms_as_whole_words(site):
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    # lunr's own zh language needs jieba in the browser, which Material does not ship.
    assert index["config"]["lang"] == ["en"], index["config"]
    separator = index["config"]["separator"]  # a JavaScript regex that Python's re reads the same way
    docs = {doc["location"]: doc for doc in index["docs"]}
    for location, word in [("zh/algorithms/#gradient-descent", "梯度下降"), ("zh/algorithms/#backpropagation", "反向传播"),
                           ("zh/algorithms/#the-learning-rate", "学习率")]:
        doc = docs[location]
        assert word in search_tokens(doc["title"], separator), f"{location}: title {doc['title']!r} lacks {word}"
    # The glossary taught the word splitter each term: none is indexed in pieces.
    from grader.site.glossary import load_glossary

    chinese = " ".join(doc["title"] + " " + doc["text"] for doc in index["docs"] if doc["location"].startswith("zh/"))
    for term in ("梯度下降", "反向传播", "损失函数", "均方误差", "交叉熵", "激活函数", "学习率"):
        assert term in {t.zh for t in load_glossary()}
        assert term in search_tokens(chinese, separator), f"{term} is not indexed as one word"
        assert "\u200b".join([term[:2], term[2:]]) not in chinese, f"{term} indexed in pieces"
    # English pages are indexed once, not once per edition.
    locations = [doc["location"] for doc in index["docs"]]
    assert locations.count("algorithms/") == 1 and locations.count("zh/algorithms/") == 1


# --------------------------------------------------------------------------------------
# Snippets: every code file on the site is executed here.
# --------------------------------------------------------------------------------------

# Importing TensorFlow costs seconds; the runner imports it once and forks one child per
# snippet, so each snippet still starts from a fresh, unused framework, as a reader's would.
RUNNER = textwrap.dedent(r"""
    import contextlib, io, json, os, runpy, sys, tempfile
    import numpy, torch, tensorflow  # noqa: F401  (imported once, before any fork)
    results = {}
    for path in sys.argv[1:]:
        result_file = tempfile.NamedTemporaryFile(delete=False, suffix=".json").name
        pid = os.fork()
        if pid == 0:
            out, error = io.StringIO(), None
            try:
                with contextlib.redirect_stdout(out):
                    runpy.run_path(path, run_name="__main__")
            except BaseException as exc:
                error = f"{type(exc).__name__}: {exc}"
            with open(result_file, "w") as f:
                json.dump({"stdout": out.getvalue(), "error": error}, f)
            os._exit(0)
        os.waitpid(pid, 0)
        with open(result_file) as f:
            results[path] = json.load(f)
        os.unlink(result_file)
    print("@@RESULTS@@" + json.dumps(results))
""")


def snippet_files() -> list[Path]:
    return sorted(SNIPPETS.rglob("*.py"))


@pytest.fixture(scope="module")
def snippet_results(tmp_path_factory) -> dict[str, dict]:
    paths = [str(p) for p in snippet_files()]
    # One thread each: the snippets' matrices are tiny, and spare threads only contend for the CPU.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, *paths],
        cwd=tmp_path_factory.mktemp("snippets"), env=env, capture_output=True, text=True, timeout=240,
    )
    marker = result.stdout.rfind("@@RESULTS@@")
    assert result.returncode == 0 and marker >= 0, f"snippet runner failed:\n{result.stderr[-4000:]}"
    raw = json.loads(result.stdout[marker + len("@@RESULTS@@"):])
    return {str(Path(path).relative_to(SNIPPETS)): value for path, value in raw.items()}


def expected_output_file(snippet: Path) -> Path:
    """name.out, or for name_<framework>.py the shared name.out all frameworks must match."""
    own = snippet.with_suffix(".out")
    if own.exists():
        return own
    return snippet.with_name(re.sub(r"_(numpy|tensorflow|pytorch)$", "", snippet.stem) + ".out")


def uses_framework(snippet: Path) -> bool:
    return bool(re.search(r"^import (tensorflow|torch)", snippet.read_text(), flags=re.MULTILINE))


def assert_same_output(actual: str, expected: str, *, exact: bool, where: str) -> None:
    if exact:
        assert actual == expected, f"{where}: output differs from what the page shows\n--- page\n{expected}--- run\n{actual}"
        return
    # Frameworks may differ in the last float32 digits between machines: same words, close numbers.
    assert NUMBER.sub("#", actual) == NUMBER.sub("#", expected), f"{where}: output text differs\n{expected}\n{actual}"
    for got, shown in zip(NUMBER.findall(actual), NUMBER.findall(expected)):
        assert math.isclose(float(got), float(shown), rel_tol=0.05, abs_tol=2e-3), (
            f"{where}: printed {got} where the page shows {shown}"
        )


@pytest.mark.parametrize("snippet", snippet_files(), ids=lambda p: str(p.relative_to(SNIPPETS)))
def test_snippet_runs_and_prints_what_the_page_shows(snippet, snippet_results):
    key = str(snippet.relative_to(SNIPPETS))
    result = snippet_results[key]
    if key in EXPECTED_FAILURES:
        assert result["error"] is not None and EXPECTED_FAILURES[key] in result["error"], (
            f"docs/snippets/{key} should fail with {EXPECTED_FAILURES[key]!r}, got {result['error']!r}"
        )
        return
    assert result["error"] is None, f"docs/snippets/{key} raised {result['error']}"
    out_file = expected_output_file(snippet)
    assert out_file.exists(), f"docs/snippets/{key}: no {out_file.name} with the output the page shows"
    assert_same_output(
        result["stdout"], out_file.read_text(), exact=not uses_framework(snippet), where=f"docs/snippets/{key}"
    )


def test_training_snippets_lower_the_loss(snippet_results):
    for key, result in snippet_results.items():
        losses = [float(x) for x in re.findall(r"loss\s+([\d.]+)", result["stdout"])]
        if key.startswith("practice/mlp_"):
            assert len(losses) >= 2 and losses[-1] < losses[0] / 5, f"docs/snippets/{key}: loss {losses}"


def test_practice_page_quotes_the_real_tf1_error():
    page = (DOCS / "practice.md").read_text(encoding="utf-8")
    assert EXPECTED_FAILURES["practice/tf1_original.py"] in page


def page_sources() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if SNIPPETS not in p.parents)


def test_every_python_block_is_an_included_snippet():
    fence = re.compile(r"^([ \t]*)```(\w+)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
    for page in page_sources():
        for _indent, language, body in fence.findall(page.read_text(encoding="utf-8")):
            if language == "python":
                assert re.fullmatch(r'\s*--8<-- "[^"]+"\s*', body), (
                    f"docs/{page.relative_to(DOCS)}: a python block is pasted, not included from docs/snippets/"
                )


def test_every_snippet_file_is_shown_on_a_page():
    included = set()
    for page in page_sources():
        included |= set(re.findall(r'--8<-- "([^"]+)"', page.read_text(encoding="utf-8")))
    for path in sorted(SNIPPETS.rglob("*")):
        if path.is_file():
            rel = str(path.relative_to(SNIPPETS))
            assert rel in included, f"docs/snippets/{rel} is not included by any page"


# --------------------------------------------------------------------------------------
# No request leaves the site.
# --------------------------------------------------------------------------------------

EXTERNAL = re.compile(r"^(https?:)?//", re.IGNORECASE)
FETCHING_LINK_RELS = {"stylesheet", "preload", "prefetch", "modulepreload", "icon", "shortcut",
                      "apple-touch-icon", "manifest", "preconnect", "dns-prefetch", "mask-icon"}
CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)|@import\s+['\"]([^'\"]+)")


class FetchedUrls(HTMLParser):
    """Collects the URLs a browser would request while loading an HTML page."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "poster", "data"):
            if attrs.get(name):
                self.urls.append(attrs[name])
        if attrs.get("srcset"):
            self.urls += [part.split()[0] for part in attrs["srcset"].split(",") if part.strip()]
        if tag == "link" and FETCHING_LINK_RELS & set((attrs.get("rel") or "").lower().split()):
            self.urls.append(attrs.get("href", ""))
        if tag in ("image", "use") and (attrs.get("href") or attrs.get("xlink:href")):
            self.urls.append(attrs.get("href") or attrs.get("xlink:href"))
        if attrs.get("style"):
            self.urls += [a or b for a, b in CSS_URL.findall(attrs["style"])]
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.urls += [a or b for a, b in CSS_URL.findall(data)]

    def handle_endtag(self, tag):
        self._in_style = False


def test_html_css_and_svg_fetch_nothing_external(site):
    offenders = []
    for page in site.rglob("*.html"):
        parser = FetchedUrls()
        parser.feed(page.read_text(encoding="utf-8"))
        offenders += [f"{page.relative_to(site)}: {url}" for url in parser.urls if EXTERNAL.match(url.strip())]
    for sheet in site.rglob("*.css"):
        for a, b in CSS_URL.findall(sheet.read_text(encoding="utf-8")):
            if EXTERNAL.match((a or b).strip()):
                offenders.append(f"{sheet.relative_to(site)}: {a or b}")
    for svg in site.rglob("*.svg"):
        for url in re.findall(r'(?:xlink:)?href="([^"]+)"', svg.read_text(encoding="utf-8")):
            if EXTERNAL.match(url):
                offenders.append(f"{svg.relative_to(site)}: {url}")
    assert not offenders, "the built site would fetch from other hosts:\n" + "\n".join(offenders)


# Every absolute URL in the shipped JavaScript, and why it is never requested on this site.
# A URL not listed here fails the test; a listed reason is checked where it can be.
JS_URLS_NEVER_FETCHED = {
    "http://www.w3.org/": "XML namespace names (SVG, MathML, XLink), identifiers, not requests",
    "https://unpkg.com/mermaid": "Material loads Mermaid only for .mermaid diagrams; the site has none",
    "https://api.github.com/": "Material asks for repository facts only from data-md-component=source, overridden",
    "https://${e}/api/v4/": "the same repository facts for GitLab: same condition",
    "https://bit.ly/2s3ChXG": "text of the console warning for an invalid search query",
    "https://unpkg.com/resize-observer-polyfill": "loaded only where ResizeObserver is missing: no supported browser",
}


def test_javascript_fetches_nothing_external(site):
    unexplained = []
    for script in site.rglob("*.js"):
        code = script.read_text(encoding="utf-8", errors="replace")
        # Comments (licence headers, references) are never requested.
        code = re.sub(r"(?m)^\s*//.*$", "", re.sub(r"/\*.*?\*/", "", code, flags=re.DOTALL))
        for url in re.findall(r"https?://[^\s\"'`)\\]+", code):
            if not any(url.startswith(prefix) for prefix in JS_URLS_NEVER_FETCHED):
                unexplained.append(f"{script.relative_to(site)}: {url}")
    assert not unexplained, "JavaScript with URLs to other hosts:\n" + "\n".join(unexplained)
    pages = [p.read_text(encoding="utf-8") for p in site.rglob("*.html")]
    assert not any('class="mermaid"' in html for html in pages), "a Mermaid diagram would load mermaid.js from unpkg"
    assert not any('data-md-component="source"' in html for html in pages), (
        "the repository widget would query api.github.com (see grader/site/overrides/partials/source.html)"
    )

