"""The site as students see it: the built book in a real browser (issue 12).

Playwright drives Debian's Chromium (/usr/bin/chromium, which .ci/run installs; Playwright's
own browser download does not work here) over the book that conftest's ``built_book``
builds once per run, served on 127.0.0.1 as GitHub Pages would serve it. For every page of
the table of contents: no console error, every image loaded, every formula rendered by the
bundled MathJax (no network needed), and at a phone's size in dark mode no horizontal
overflow of the text column. Search, the assignment pages' launch buttons and a feedback
page of the demo class are checked too. Three tests break one thing on purpose (a formula
MathJax cannot render or never sees, a missing image, a script error) in a copy of one built
page and show that the checks catch it. Screenshots of every page are saved under the
session's temporary folder (the path is printed: `pytest -s` shows it).
"""
import functools
import http.server
import re
import shutil
import threading

import pytest
import yaml

from conftest import ROOT

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

# Runs in the page once it has loaded: waits for every image and for MathJax, then reports
# what a student would see wrong. Text inside code (pre, code) and MathJax's own output is
# not prose: a `$$` in a code cell is not an unrendered formula.
INSPECT = """async () => {
  for (const img of document.images) { img.loading = 'eager'; }
  await Promise.all([...document.images].map(img => img.decode().catch(() => null)));
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const images = [...document.images].filter(img => !(img.complete && img.naturalWidth > 0))
                                     .map(img => img.getAttribute('src'));
  const raw = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest('pre, code, script, style, textarea, mjx-container, mjx-assistive-mml')) continue;
    if (!parent.offsetParent && getComputedStyle(parent).position !== 'fixed') continue;  // not visible
    const text = node.textContent;
    if (/\\\\\\(|\\\\\\)|\\\\\\[|\\\\\\]|\\$\\$|\\\\begin\\{/.test(text) || (%(dollar)s && /\\$[^$\\s][^$]*\\$/.test(text))) {
      raw.push(text.trim().slice(0, 80));
    }
  }
  // A TeX error (merror) or an undefined macro (MathJax shows its name in red), CHTML or SVG output.
  const errors = [...document.querySelectorAll('mjx-merror, [data-mjx-error], mjx-mtext[style*="color: red"], ' +
                  'g[data-mml-node="merror"], g[data-mml-node="mtext"][fill="red"]')]
                 .map(e => e.getAttribute('data-mjx-error') || e.textContent.slice(0, 80) || e.tagName);
  const column = document.querySelector('article.bd-article') || document.querySelector('main') || document.body;
  return {
    images, raw, maths_errors: errors,
    formulas: document.querySelectorAll('mjx-container').length,
    overflow: {page: document.documentElement.scrollWidth - window.innerWidth,
               column: column.scrollWidth - column.clientWidth},
    theme: document.documentElement.dataset.theme || '',
  };
}"""


def inspect_script(single_dollar=False):
    return INSPECT % {"dollar": "true" if single_dollar else "false"}


def toc_pages():
    """Every page of _toc.yml, as the path of its HTML file."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))
    walk(toc.get("chapters"))
    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    return [f"{page}.html" for page in pages]


def assignments_in_toc():
    return [p for p in toc_pages() if p.startswith("exercises/")]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class Server:
    """Serve a folder on 127.0.0.1 (a free port) in a thread."""

    def __init__(self, folder):
        handler = functools.partial(QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def html(built_book):
    assert built_book.returncode in (0, None), built_book.output
    return built_book.html


@pytest.fixture(scope="session")
def site(html):
    server = Server(html)
    yield server.url
    server.close()


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots of the site: {folder}")
    return folder


class Visit:
    """Open a page in a fresh context; collect console errors and uncaught exceptions."""

    def __init__(self, browser, url, viewport=DESKTOP, dark=False, single_dollar=False):
        self.context = browser.new_context(viewport=viewport, color_scheme="dark" if dark else "light")
        self.page = self.context.new_page()
        self.console_errors = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.console_errors.append(f"uncaught: {e}"))
        self.page.goto(url, wait_until="load")
        self.report = self.page.evaluate(inspect_script(single_dollar))

    def _console(self, message):
        if message.type != "error":
            return
        where = message.location.get("url", "")
        # Chromium asks every site for /favicon.ico by itself; the book has none (not a page error).
        if where.endswith("/favicon.ico"):
            return
        self.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def close(self):
        self.context.close()


def visit(browser, url, **kw):
    v = Visit(browser, url, **kw)
    v.close()
    return v


def problems(v):
    """What a student would notice, by check (empty lists: none)."""
    r = v.report
    return {"console errors": v.console_errors, "images not loaded": r["images"],
            "formulas not rendered": r["raw"] + r["maths_errors"]}


def no_problems(v):
    return not any(problems(v).values())


# ---------------------------------------------------------------- every page, as a student sees it

def test_every_toc_page_loads_renders_its_maths_and_images(site, browser, screenshots):
    failures, formulas = {}, 0
    for page in toc_pages():
        v = Visit(browser, f"{site}/{page}")
        v.page.screenshot(path=str(screenshots / (page.replace("/", "__") + ".png")), full_page=True)
        v.close()
        formulas += v.report["formulas"]
        if not no_problems(v):
            failures[page] = {k: p for k, p in problems(v).items() if p}
    assert not failures, failures
    assert formulas > 100, "the book's pages should hold rendered formulas"


def test_phone_size_in_dark_mode_has_no_horizontal_overflow(site, browser, screenshots):
    failures = {}
    for page in toc_pages():
        v = Visit(browser, f"{site}/{page}", viewport=PHONE, dark=True)
        v.page.screenshot(path=str(screenshots / ("phone-dark__" + page.replace("/", "__") + ".png")))
        v.close()
        assert v.report["theme"] == "dark", page  # the theme follows the system's dark mode
        overflow = v.report["overflow"]
        if overflow["page"] > 1 or overflow["column"] > 1:
            failures[page] = overflow
    assert not failures, f"pixels of horizontal overflow at 390x844 in dark mode: {failures}"


def test_search_finds_the_batchnorm_page_for_running_mean(site, browser):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site}/search.html?q=running+mean", wait_until="load")
    # Sphinx appends the results one by one, 5 ms apart, and only then writes its summary:
    # reading the list before that summary reads part of it (CI once saw 4 of the results).
    page.wait_for_function("() => /Search finished|did not match/.test("
                           "document.querySelector('#search-results .search-summary')?.textContent || '')",
                           timeout=30_000)
    links = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    context.close()
    assert any("normalization/batchnorm.html" in href for href in links), links


@pytest.mark.parametrize("page", assignments_in_toc() or ["(none)"])
def test_assignment_launch_buttons_open_that_notebook(site, browser, page):
    from autograder import links
    notebook = page.replace(".html", ".ipynb")
    org_repo = links.repository_url().split("github.com/")[1]
    context = browser.new_context()
    p = context.new_page()
    p.goto(f"{site}/{page}", wait_until="load")
    hrefs = p.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    context.close()
    assert f"https://colab.research.google.com/github/{org_repo}/blob/main/{notebook}" in hrefs
    assert f"https://mybinder.org/v2/gh/{org_repo}/main?urlpath=lab/tree/{notebook}" in hrefs


def test_myst_pages_have_no_launch_buttons(html):
    """A MyST page's buttons would open its .md, which Colab cannot read: they are left out."""
    for page in toc_pages():
        text = (html / page).read_text()
        launches = re.findall(r'href="(https://(?:colab\.research\.google\.com|mybinder\.org)[^"]*)"', text)
        if page.startswith("exercises/"):
            assert launches, page
        else:
            assert not launches, (page, launches)


# ---------------------------------------------------------------- the feedback students get

@pytest.fixture(scope="module")
def feedback_page(tmp_path_factory):
    """The HTML feedback of one student of the demo class with a diagnosed mistake."""
    from autograder import demo, pipeline
    from autograder.mutants import for_assignment
    root = tmp_path_factory.mktemp("feedback-class")
    course = demo.make_class(root, "activations", broken=False)
    mutant = for_assignment("activations")[0]
    results = pipeline.grade(course, "activations", students=[mutant.name], progress=False)
    pipeline.feedback(course, "activations", results)
    (page,) = course.feedback_dir(mutant.name, "activations").glob("*.html")
    return page, mutant


def test_feedback_page_renders_its_maths_offline_and_shows_the_mistake(browser, feedback_page, screenshots):
    page, mutant = feedback_page
    assert "cdnjs" not in page.read_text()  # nbgrader's template loads MathJax from a CDN
    v = Visit(browser, page.as_uri(), single_dollar=True)  # a file: no server, no network
    text = v.page.inner_text("body")
    v.page.screenshot(path=str(screenshots / "feedback.png"), full_page=True)
    v.close()
    assert no_problems(v), problems(v)
    assert v.report["formulas"] > 10
    assert f"likely mistake [{mutant.mistakes[0]}]" in text


# ---------------------------------------------------------------- the checks catch what they check

@pytest.fixture(scope="module")
def broken_site(html, tmp_path_factory):
    """A copy of the built site, to break one page at a time (the build itself is not redone)."""
    copy = tmp_path_factory.mktemp("broken-site") / "html"
    shutil.copytree(html, copy)
    server = Server(copy)
    yield copy, server.url
    server.close()


MODEL_PAGE = "book/normalization/batchnorm.html"  # formulas, figures, scripts


def break_page(broken_site, name, change):
    folder, url = broken_site
    text = (folder / MODEL_PAGE).read_text()
    broken = change(text)
    assert broken != text, "the change should apply to the model page"
    (folder / MODEL_PAGE).with_name(name).write_text(broken)
    return f"{url}/{MODEL_PAGE.rsplit('/', 1)[0]}/{name}"


def test_the_model_page_copy_passes(browser, broken_site):
    assert no_problems(visit(browser, f"{broken_site[1]}/{MODEL_PAGE}"))


@pytest.mark.parametrize("how, change", [
    ("MathJax missing (the CDN case)", lambda t: re.sub(r'<script[^>]*src="[^"]*mathjax[^"]*"[^>]*></script>', "", t)),
    ("an undefined macro", lambda t: t.replace("<h1>", r"<p>\(\frac{1}{\undefinedmacro}\)</p><h1>", 1)),
    ("a TeX error", lambda t: t.replace("<h1>", r"<p>\(\frac{1}\)</p><h1>", 1)),
])
def test_a_formula_that_does_not_render_is_caught(browser, broken_site, how, change):
    v = visit(browser, break_page(broken_site, "broken-maths.html", change))
    assert problems(v)["formulas not rendered"], how
    assert not problems(v)["images not loaded"]


def test_a_missing_image_is_caught(browser, broken_site):
    def change(text):
        src = re.search(r'<img[^>]+src="([^"]+\.png)"', text).group(1)
        return text.replace(src, src.replace(".png", "-missing.png"))
    v = visit(browser, break_page(broken_site, "broken-image.html", change))
    assert problems(v)["images not loaded"]


def test_a_console_error_is_caught(browser, broken_site):
    v = visit(browser, break_page(broken_site, "broken-script.html",
                                  lambda t: t.replace("</body>", "<script>undefinedFunction()</script></body>")))
    assert any("undefinedFunction" in e for e in problems(v)["console errors"])
    assert not problems(v)["formulas not rendered"] and not problems(v)["images not loaded"]
