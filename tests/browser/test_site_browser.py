"""The built site in a real browser: headless Chromium loads every page from 127.0.0.1.

One pass over the site, both editions (English and zh/), records, per page, every request,
console error, visible raw TeX and rendered formula, and saves a screenshot to screenshots/
for a human to look at; the tests then assert on what was recorded. The Chinese edition is
also checked for a CJK font actually drawing its characters, a language switch that leads to
the same page, and search that finds Chinese words. Chromium missing is a failure, not a skip:
`make test` installs it first (tests/browser/ensure_chromium.sh).
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]
SCREENSHOTS = REPO / "screenshots"
RAW_TEX = ("$$", "\\[", "\\(")
FULL_PAGE_SHOTS = {"", "concepts/", "algorithms/", "attention/", "practice/", "zh/", "zh/algorithms/", "zh/attention/"}
# The Chinese pages worth a look (CJK text, formulas, diagrams, tables); the rest are not
# photographed, to keep the pass short.
ZH_SHOTS = {"zh/", "zh/concepts/", "zh/algorithms/", "zh/attention/", "zh/glossary/", "zh/notebooks/01_forward/", "zh/resources/papers/"}
# Pages written by hand in both languages: their translations carry the same formulas.
TRANSLATED_MATH_PAGES = ["", "concepts/", "algorithms/", "attention/", "practice/", "trends/", "faq/",
                         "training_at_scale/", "data_evaluation/", "open_models/"]

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
        if not path.startswith("zh/") or path in ZH_SHOTS:
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
    for path in TRANSLATED_MATH_PAGES:
        assert visits["zh/" + path].formulas == visits[path].formulas, (
            f"zh/{path} shows {visits['zh/' + path].formulas} formulas, {path or 'home'} {visits[path].formulas}"
        )
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


# --------------------------------------------------------------------------------------
# The Chinese edition.
# --------------------------------------------------------------------------------------

CJK_FONT_FAMILIES = ("CJK", "WenQuanYi", "Source Han", "Droid Sans Fallback")


def fonts_drawing(page, selector: str) -> dict[str, int]:
    """The fonts Chromium really used for an element's text (family -> glyphs), from DevTools."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    cdp.detach()
    return {font["familyName"]: font["glyphCount"] for font in fonts}


def test_chinese_characters_are_drawn_with_a_cjk_font(visits, base_url, browser_context):
    context, _ = browser_context
    page = context.new_page()
    for path in ("zh/", "zh/algorithms/", "zh/glossary/"):
        page.goto(base_url + path, wait_until="load")
        assert page.evaluate("document.documentElement.lang") == "zh", path
        heading = page.locator("article h1").inner_text()
        assert re.search(r"[\u4e00-\u9fff]", heading), f"{path}: heading {heading!r} is not Chinese"
        fonts = fonts_drawing(page, "article h1")
        cjk = {family: glyphs for family, glyphs in fonts.items() if any(k in family for k in CJK_FONT_FAMILIES)}
        # Every Chinese glyph of the heading comes from a CJK font, not a fallback box.
        chinese_glyphs = len(re.findall(r"[\u4e00-\u9fff]", heading))
        assert sum(cjk.values()) >= chinese_glyphs, f"{path}: heading drawn with {fonts}, no CJK font for its characters"
    page.close()


def switch_language(page, lang: str) -> None:
    """Open Material's language menu in the header and choose a language."""
    page.locator(".md-header__option .md-select").hover()
    page.locator(f'.md-select__link[hreflang="{lang}"]').click()
    page.wait_for_load_state("load")


def test_language_switch_leads_to_the_same_page(visits, base_url, browser_context):
    context, _ = browser_context
    page = context.new_page()
    page.goto(base_url + "zh/algorithms/", wait_until="load")
    assert page.locator("article h1").inner_text().startswith("核心算法")
    switch_language(page, "en")
    assert page.url == base_url + "algorithms/", page.url
    assert page.locator("article h1").inner_text().startswith("Core algorithms")
    switch_language(page, "zh")
    assert page.url == base_url + "zh/algorithms/", page.url
    assert page.locator("article h1").inner_text().startswith("核心算法")
    page.close()


@pytest.mark.parametrize("query, section", [("梯度下降", "zh/algorithms/#gradient-descent"),
                                            ("反向传播", "zh/algorithms/#backpropagation")])
def test_chinese_search_finds_the_section(query, section, visits, base_url, browser_context):
    context, _ = browser_context
    page = context.new_page()
    page.goto(base_url + "zh/", wait_until="load")
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially(query, delay=30)
    results = page.locator(".md-search-result__item")
    # Results are redrawn after each character: wait (up to 15 s) for the section to be listed.
    # The ?h= highlight parameter is left out: Material derives it badly from Chinese queries.
    listed = """(section) => [...document.querySelectorAll(".md-search-result__list a")]
                  .some((a) => { const url = new URL(a.href); url.search = ""; return url.href === section; })"""
    try:
        page.wait_for_function(listed, arg=base_url + section, timeout=15000)
    except PlaywrightTimeout:
        hrefs = page.evaluate("""() => [...document.querySelectorAll(".md-search-result__list a")].map((a) => a.href)""")
        pytest.fail(f"searching {query} did not list {section}: {hrefs[:10]}")
    assert query in results.first.inner_text(), f"the first result for {query} does not contain it"
    page.screenshot(path=str(SCREENSHOTS / f"search_zh_{section.rsplit('#', 1)[1]}.png"))
    page.close()
