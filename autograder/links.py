"""The repository URL is one setting: ``repository.url`` in ``_config.yml``.

Everything that names the repository or the published book takes it from there:

- the book: Jupyter Book reads ``repository.url`` for its repository and launch buttons,
  and the book's Sphinx extension (:mod:`autograder.book`) derives ``html_baseurl`` from it;
- the notebooks: ``solutions/`` holds placeholders, ``{{ repository_url }}`` (the setup
  cell's ``%pip install "autograder @ git+{{ repository_url }}"``) and ``{{ book_url }}``
  (the links to the book's pages); ``python -m autograder release`` (nbgrader's
  generate_assignment) fills them in through :class:`FillLinks`, so ``exercises/`` carries
  the URLs of the current setting;
- the workflow (.github/workflows/book.yml) and the README name no URL: the workflow runs
  the build, which reads the setting, and deploys to the repository's own GitHub Pages.

tests/test_site_config.py changes the setting and finds every place changed.
"""
from __future__ import annotations

import pathlib
import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

CONFIG = "_config.yml"
PACKAGE_ROOT = pathlib.Path(__file__).resolve().parent.parent  # the checkout this package lives in
PLACEHOLDER = re.compile(r"\{\{\s*(repository_url|book_url)\s*\}\}")


def config_path(root=None):
    """The _config.yml of the course root, else of the checkout this package is in.

    (The demo and the tests release into a temporary course folder that has no book.)
    """
    for folder in ([pathlib.Path(root)] if root else []) + [PACKAGE_ROOT]:
        if (folder / CONFIG).is_file():
            return folder / CONFIG
    raise FileNotFoundError(f"no {CONFIG} in {root or PACKAGE_ROOT}: the repository URL is set there "
                            "(repository.url)")


def repository_url(root=None):
    import yaml
    config = yaml.safe_load(config_path(root).read_text(encoding="utf-8")) or {}
    url = (config.get("repository") or {}).get("url", "")
    if not url:
        raise ValueError(f"{config_path(root)} sets no repository.url")
    return url.rstrip("/")


def book_url(repo_url):
    """Where GitHub Pages publishes the book of a GitHub repository (no trailing slash).

    https://github.com/ORG/REPO -> https://ORG.github.io/REPO
    """
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", repo_url)
    if not match:
        raise ValueError(f"repository.url must be https://github.com/ORG/REPO (GitHub Pages publishes "
                         f"the book), got {repo_url!r}")
    org, repo = match.groups()
    return f"https://{org.lower()}.github.io/{repo}"


def values(root=None):
    """{placeholder name: URL} from the setting."""
    repo = repository_url(root)
    return {"repository_url": repo, "book_url": book_url(repo)}


def fill(text, urls):
    """Replace every placeholder in ``text``; an unknown value is an error, not a silent blank."""
    return PLACEHOLDER.sub(lambda m: urls[m.group(1)], text)


class FillLinks(NbGraderPreprocessor):
    """generate_assignment: put the setting's URLs into the released notebook's cells."""

    repository_url = Unicode("", help="the repository URL (repository.url in _config.yml)").tag(config=True)
    book_url = Unicode("", help="the published book's URL, derived from repository_url").tag(config=True)

    def preprocess(self, nb, resources):
        urls = {"repository_url": self.repository_url, "book_url": self.book_url}
        if not all(urls.values()):
            raise ValueError("FillLinks has no URLs: autograder.course.configure sets them from _config.yml")
        for cell in nb.cells:
            cell.source = fill(cell.source, urls)
        return nb, resources


def configure(c, root):
    """Add FillLinks to nbgrader's generate_assignment (first: checksums see the filled cells)."""
    from nbgrader.converters.generate_assignment import GenerateAssignment
    urls = values(root)
    c.FillLinks.repository_url = urls["repository_url"]
    c.FillLinks.book_url = urls["book_url"]
    defaults = GenerateAssignment.class_traits()["preprocessors"].make_dynamic_default()
    c.GenerateAssignment.preprocessors = [FillLinks, *defaults]
    return c


def use_placeholders(root=".", files=("solutions/*/*.ipynb", "solutions/build_*.py")):
    """Replace the setting's URLs by the placeholders in the instructor's sources; return the files changed.

    The one-time conversion of solutions/ (afterwards a fresh release is byte-identical):
        python -c "from autograder import links; print(*links.use_placeholders(), sep='\\n')"
    """
    root = pathlib.Path(root)
    urls = values(root)
    changed = []
    for pattern in files:
        for path in sorted(root.glob(pattern)):
            text = path.read_text(encoding="utf-8")
            new = text.replace(urls["book_url"], "{{ book_url }}").replace(urls["repository_url"],
                                                                           "{{ repository_url }}")
            if new != text:
                path.write_text(new, encoding="utf-8")
                changed.append(path)
    return changed
