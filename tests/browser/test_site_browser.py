"""The built site in a real browser: headless Chromium loads every page from 127.0.0.1.

One pass over the site records, per page, every request, console error, visible raw TeX
and rendered formula, and saves a screenshot to screenshots/ for a human to look at;
the tests then assert on what was recorded. Chromium missing is a failure, not a skip:
`make test` installs it first (tests/browser/ensure_chromium.sh).
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
SCREENSHOTS = REPO / "screenshots"
RAW_TEX = ("$$", "\\[", "\\(")
FULL_PAGE_SHOTS = {"", "concepts/", "algorithms/", "practice/"}

# Visible text of the article without code blocks (code may legitimately contain "\(")
# and without KaTeX's hidden MathML copy of each formula.
VISIBLE_PROSE_JS = """() => {
  const article = document.querySelector("article.md-content__inner").cloneNode(true);
  article.querySelectorAll("pre, code, .katex-mathml").forEach((node) => node.remove());
  return article.innerText;
}"""
MATH_JS = """() => {
  const formulas = [...document.querySelectorAll(".arithmatex")];
  return { formulas: formulas.length, rendered: formulas.filter((el) => el.querySelector(".katex")).length };
}"""


@dataclass
class PageVisit:
    path: str
    console_errors: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)
    formulas: int = 0
    rendered: int = 0


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    site_dir = tmp_path_factory.mktemp("browser-site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site_dir)],
        cwd=REPO, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    return site_dir


def site_prefix() -> str:
    """The path the site lives under on GitHub Pages ("/ai-foundations/"), from site_url.

    404.html links its assets absolutely under this path, so the test serves the site
    there too, as GitHub Pages will.
    """
    import yaml  # mkdocs.yml uses no custom tags, so the safe loader reads it

    site_url = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["site_url"]
    return "/" + urlsplit(site_url).path.strip("/") + "/"


class SiteHandler(http.server.SimpleHTTPRequestHandler):
    prefix = "/"

    def translate_path(self, path):
        if not path.startswith(self.prefix):
            return "/nonexistent"  # only the site's own path exists, as on GitHub Pages
        return super().translate_path("/" + path[len(self.prefix):])

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def base_url(site):
    prefix = site_prefix()
    handler = functools.partial(type("Handler", (SiteHandler,), {"prefix": prefix}), directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)  # port 0: a free port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    assert CHROMIUM.exists(), (
        f"{CHROMIUM} is missing: run `make browser-deps` (tests/browser/ensure_chromium.sh); "
        "the browser tests never skip"
    )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path_factory.mktemp("chromium-profile")),  # fresh: no cached state
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        requests: list[str] = []
        context.on("request", lambda request: requests.append(request.url))
        yield context, requests
        context.close()


def site_pages(site: Path) -> list[str]:
    """Every page of the build, as a URL path relative to the site root."""
    pages = []
    for html in sorted(site.rglob("*.html")):
        rel = html.relative_to(site).as_posix()
        pages.append(rel.removesuffix("index.html"))
    return pages


@pytest.fixture(scope="module")
def visits(site, base_url, browser_context) -> dict[str, PageVisit]:
    context, _requests = browser_context
    SCREENSHOTS.mkdir(exist_ok=True)
    page = context.new_page()
    current: list[PageVisit] = []
    page.on("console", lambda msg: msg.type == "error" and current[-1].console_errors.append(msg.text))
    page.on("pageerror", lambda error: current[-1].console_errors.append(f"uncaught: {error}"))
    results = {}
    for path in site_pages(site):
        visit = PageVisit(path)
        current.append(visit)
        page.goto(base_url + path, wait_until="load")
        prose = page.evaluate(VISIBLE_PROSE_JS)
        visit.raw_tex = [token for token in RAW_TEX if token in prose]
        math = page.evaluate(MATH_JS)
        visit.formulas, visit.rendered = math["formulas"], math["rendered"]
        name = path.strip("/").replace("/", "_") or "home"
        # Whole pages where the layout of math, tabs and diagrams is worth a look; the top of the rest.
        page.screenshot(path=str(SCREENSHOTS / f"{name.removesuffix('.html')}.png"), full_page=path in FULL_PAGE_SHOTS)
        results[path] = visit
    page.close()
    return results


def test_every_page_loads_without_console_errors(visits):
    assert len(visits) >= 10, f"only {len(visits)} pages built"
    errors = {path: v.console_errors for path, v in visits.items() if v.console_errors}
    assert not errors, f"console errors: {errors}"


def test_no_request_leaves_localhost(visits, base_url, browser_context):
    _context, requests = browser_context
    assert requests, "no request was recorded at all"
    outside = [url for url in requests if not url.startswith(base_url) and not url.startswith(("data:", "blob:"))]
    assert not outside, f"requests to other hosts: {sorted(set(outside))}"
    # The math fonts and the search index came from the site itself.
    assert any(url.endswith(".woff2") for url in requests), "KaTeX fonts were never requested"


def test_formulas_render_and_no_raw_tex_is_visible(visits):
    math_pages = {path: v for path, v in visits.items() if v.formulas}
    for must in ("algorithms/", "concepts/", "trends/", "faq/", ""):
        assert must in math_pages, f"page '{must or 'home'}' shows no formula at all"
    assert math_pages["algorithms/"].formulas > 50
    unrendered = {p: f"{v.rendered}/{v.formulas}" for p, v in math_pages.items() if v.rendered != v.formulas}
    assert not unrendered, f"formulas KaTeX did not render (rendered/total): {unrendered}"
    raw = {path: v.raw_tex for path, v in visits.items() if v.raw_tex}
    assert not raw, f"raw TeX delimiters visible in the page text: {raw}"


def checked_tab_label(page) -> str:
    """The label of the selected tab in the page's first tab set."""
    return page.evaluate("""() => {
      const set = document.querySelector(".tabbed-set");
      const input = set.querySelector(":scope > input:checked");
      return set.querySelector(`label[for="${input.id}"]`).innerText.trim();
    }""")


def test_content_tabs_are_linked_across_pages(visits, base_url, browser_context):
    context, _ = browser_context
    page = context.new_page()
    page.goto(base_url + "algorithms/", wait_until="load")
    page.evaluate("() => localStorage.clear()")
    page.reload(wait_until="load")
    assert checked_tab_label(page) == "NumPy", "the first tab should be selected before any choice"
    page.goto(base_url + "practice/", wait_until="load")
    page.locator(".tabbed-set").first.locator("label", has_text="PyTorch").click()
    assert checked_tab_label(page) == "PyTorch"
    page.goto(base_url + "algorithms/", wait_until="load")
    assert checked_tab_label(page) == "PyTorch", "choosing PyTorch on practice/ did not carry to algorithms/"
    page.screenshot(path=str(SCREENSHOTS / "tabs_linked_algorithms.png"))
    page.close()


def test_search_finds_gradient(visits, base_url, browser_context):
    context, _ = browser_context
    page = context.new_page()
    page.goto(base_url, wait_until="load")
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("gradient", delay=30)
    results = page.locator(".md-search-result__item")
    results.first.wait_for(state="visible", timeout=15000)
    assert results.count() > 0
    assert "gradient" in results.first.inner_text().lower()
    # Previews quote formulas; they must be rendered there too, not shown as TeX source.
    page.wait_for_timeout(300)
    previews = page.evaluate("""() => {
      const list = document.querySelector(".md-search-result__list").cloneNode(true);
      const formulas = list.querySelectorAll(".katex").length;
      list.querySelectorAll("pre, code, .katex-mathml").forEach((node) => node.remove());
      return { text: list.innerText, formulas };
    }""")
    assert previews["formulas"] > 0, "no formula rendered in the search previews"
    shown = [token for token in RAW_TEX if token in previews["text"]]
    assert not shown, f"raw TeX {shown} in the search previews"
    page.screenshot(path=str(SCREENSHOTS / "search_gradient.png"))
    page.close()
