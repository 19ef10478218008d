"""The course site builds strictly, its code runs, and it fetches nothing from elsewhere.

- `mkdocs build --strict` passes (internal links and anchors validated by mkdocs.yml);
- an unknown citation fails the build, naming the page;
- every snippet under docs/snippets/ runs, and prints what the page says it prints;
- every Python block on a hand-written page is an included snippet (so it is run here);
- the built HTML, CSS, JS and SVG would make no request to another host.
"""

from __future__ import annotations

import json
import math
import os
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
    for page in ["algorithms", "practice", "concepts", "applications", "trends", "faq", "notebooks", "resources"]:
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


def test_unknown_citation_in_a_notebook_names_the_notebook():
    from mkdocs.exceptions import PluginError

    hooks, config = configured_hooks()
    notebook = hooks._build["notebooks"][0]
    with pytest.raises(PluginError, match=re.escape(f"{notebook.repo_path}: unknown resource id 'nope'")):
        hooks.on_page_markdown("[@nope]", fake_page(notebook.page_uri), config, files=None)


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

