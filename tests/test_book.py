"""The book builds with warnings as errors (-W -n), every page executed.

The build is conftest's session fixture ``built_book`` (the README's command,
``python -m autograder book``), shared with tests/test_site.py: one build per run.
"""
import re

import pytest

from autograder import book

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def html(built_book):
    if built_book.returncode is None:
        pytest.skip(f"nothing was built in this run ({built_book.output})")
    assert built_book.returncode == 0, built_book.output
    return built_book.html


def test_book_builds_without_warnings(built_book, html):
    assert built_book.command[-4:-2] == book.COMMAND.split()[2:]  # the README's command
    assert (html / "book" / "intro.html").exists()
    assignment = (html / "exercises" / "activations" / "activations.html").read_text()
    assert "NotImplementedError" in assignment and "BEGIN SOLUTION" not in assignment
    assert not (html / "solutions").exists()
    figures = list((html / "_images").glob("*.png"))
    assert len(figures) >= 10, "the executed pages should have produced figures"


def test_every_page_was_executed(html):
    """Parallel reading must not skip execution: each MyST page with code shows its outputs."""
    from conftest import ROOT
    executed = set(p.relative_to(html.parent / "jupyter_execute").with_suffix("").as_posix()
                   for p in (html.parent / "jupyter_execute").rglob("*.ipynb"))
    with_code = {p.relative_to(ROOT).with_suffix("").as_posix() for p in (ROOT / "book").rglob("*.md")
                 if "```{code-cell}" in p.read_text() and (html / p.relative_to(ROOT)).with_suffix(".html").exists()}
    assert with_code and with_code <= executed, sorted(with_code - executed)


def test_maths_is_served_with_the_site(html):
    """No CDN: the pages load the MathJax copied into _static (sphinx-mathjax-offline)."""
    page = (html / "book" / "normalization" / "batchnorm.html").read_text()
    sources = re.findall(r'<script[^>]+src="([^"]*mathjax[^"]*)"', page, flags=re.I)
    assert sources and all(not s.startswith(("http:", "https:", "//")) for s in sources), sources
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()


def test_base_url_comes_from_the_repository_setting(html):
    from autograder import links
    page = (html / "book" / "intro.html").read_text()
    assert f'<link rel="canonical" href="{links.book_url(links.repository_url())}/book/intro.html"' in page
