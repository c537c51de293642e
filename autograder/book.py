"""``python -m autograder book``: build the Jupyter Book, strict, every page executed, in parallel.

This is ``jupyter-book build . -W -n --keep-going --all`` with one difference: Sphinx reads
(and myst-nb executes) the pages in ``--jobs`` processes. ``jupyter-book build`` has no
option for it, but its own ``build_sphinx`` takes ``jobs``; everything else (the
``_config.yml`` translation, the external TOC, warnings as errors, nitpicky) is
Jupyter Book's, so the result is the same site. Executing the pages is most of the build:
each page starts a kernel that imports torch and runs its experiments, one page after the
other in ``jupyter-book build`` (benchmarks/RESULTS.md, "Issue 12").

The maths is rendered by the MathJax that ``sphinx-mathjax-offline`` ships (added to the
extensions in ``_config.yml``): the site needs no CDN. The HTML feedback that nbgrader
writes inlines the same MathJax (:func:`mathjax_script`, used by ``autograder/templates``).
"""
from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEFAULT_JOBS = 2
# The build command the README, tests/test_book.py and .github/workflows/book.yml run.
COMMAND = "python -m autograder book"


def build(root=ROOT, output=None, jobs=DEFAULT_JOBS, fresh=True, quiet=False):
    """Build the book of ``root`` into ``output``/_build/html; return (exit status, html folder).

    Strict as the course requires: warnings are errors (-W), nitpicky (-n), keep going to
    report every warning, a fresh environment (--all) so that every page is read and run.
    """
    from jupyter_book.cli.main import build as jb_build
    from jupyter_book.sphinx import build_sphinx

    _declare_parallel_safe()
    root = pathlib.Path(root).resolve()
    _read_longest_pages_first(root)
    _share_the_cores(jobs)
    output = pathlib.Path(output).resolve() if output else root
    # Jupyter Book's own CLI works out the configuration (TOC path, overrides for -n);
    # only the Sphinx call differs.
    path_config, source, overrides = jb_build.callback(
        str(root), str(output), None, None, True, True, True, fresh, "html", None, 0, 0, False,
        get_config_only=True)
    overrides["external_toc_path"] = str(root / "_toc.yml")
    html = output / "_build" / "html"
    status = build_sphinx(source, html, use_external_toc=True, noconfig=True, path_config=path_config,
                          confoverrides=overrides, builder="html", warningiserror=True, keep_going=True,
                          freshenv=fresh, quiet=quiet, jobs=jobs)
    return (status if isinstance(status, int) else 1), html


# Extensions that say nothing about parallel reading, so Sphinx would read serially (and -W
# turns its notice into an error), though both are safe: sphinx_multitoc_numbering (loaded
# by sphinx-external-toc) only replaces TocTreeCollector.assign_section_numbers, which Sphinx
# calls in the main process once every page is read; sphinx-mathjax-offline only copies
# MathJax into the output when the build has finished. Neither touches a page while it is read.
PARALLEL_SAFE_EXTENSIONS = ("sphinx_multitoc_numbering", "sphinx-mathjax-offline")


def _declare_parallel_safe(names=PARALLEL_SAFE_EXTENSIONS):
    import importlib
    for name in names:
        module = importlib.import_module(name)
        if getattr(module.setup, "declared_parallel_safe", False):
            continue
        module.setup = _parallel_safe(module.setup, getattr(module, "__version__", "unknown"))


def _parallel_safe(setup, version):
    def wrapped(app):
        metadata = setup(app) or {}
        return {"version": version, **metadata, "parallel_read_safe": True, "parallel_write_safe": True}

    wrapped.declared_parallel_safe = True
    return wrapped


def _read_longest_pages_first(root):
    """Hand the reading processes one page at a time, the longest sources first.

    Sphinx splits the pages into a few alphabetical chunks of ~13; with this book's three
    long experiment pages that leaves one process working alone at the end. One page per
    task keeps both busy (each task forks the main process: milliseconds), and starting with
    the longest MyST sources (a rough proxy for the experiments they run) leaves the short
    ones and the unexecuted notebooks to fill the gaps. Reading order does not matter to parallel-safe extensions.
    """
    import sphinx.builders

    def size(docname):  # the released notebooks (.ipynb) are rendered, not executed: last
        source = root / f"{docname}.md"
        return source.stat().st_size if source.exists() else 0

    def one_page_per_task(docnames, nproc, maxbatch=10):
        longest_first = sorted(docnames, key=size, reverse=True)
        # Sphinx 7.4's ParallelTasks starts the first nproc tasks at once, then takes the
        # waiting ones last-in first-out (dict.popitem): list the rest shortest first so that
        # they run longest first.
        order = longest_first[:nproc] + longest_first[nproc:][::-1]
        return [[name] for name in order]

    sphinx.builders.make_chunks = one_page_per_task


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _share_the_cores(jobs):
    """Give each page's kernel its share of the cores (the kernels inherit the environment).

    torch and numpy's BLAS start one thread per core in every kernel: two pages at once on
    2 cores ran 4 busy threads, and the spinning cost as much as it ran. Measured: two
    concurrent processes each doing 150 (1797x500)@(500x500) matmuls + tanh took 15.3-15.8
    CPU s with 2 threads each and 7.9-9.4 CPU s with 1 (benchmarks/RESULTS.md, issue 12).
    A value the caller set is kept.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(max(1, cores // max(1, jobs or 1))))
    # ...and skips an import that no page needs (see the file).
    os.environ.setdefault("PYTHONSTARTUP", str(pathlib.Path(__file__).with_name("book_kernel_startup.py")))


def mathjax_folder():
    """The MathJax 3 that sphinx-mathjax-offline ships (its package name has hyphens)."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("sphinx-mathjax-offline is not installed (pip install -r requirements.txt)")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax"


# MathJax 3 reads $...$ only when told; notebooks (and so the feedback) use it.
MATHJAX_CONFIG = """window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true, processEnvironments: true, tags: 'ams'},
  options: {enableMenu: false}
};"""


def mathjax_script(_=None):
    """The <script> elements that render a page's maths with no network: config, then MathJax inlined.

    tex-svg-full draws glyphs as SVG paths (no font files to fetch) and includes every TeX
    package (no extension to fetch), so one self-contained page renders anywhere, e.g. a
    feedback file mailed to a student. A jinja filter: the argument is ignored.
    """
    source = (mathjax_folder() / "tex-svg-full.js").read_text(encoding="utf-8")
    if "</script" in source.lower():  # would end the inline script early
        raise ValueError("MathJax's source contains </script>: cannot inline it")
    return f"<script>\n{MATHJAX_CONFIG}\n</script>\n<script>\n{source}\n</script>"


def main(root=ROOT, output=None, jobs=DEFAULT_JOBS):
    """``python -m autograder book``: build, then say where the site is and how long it took."""
    start = time.perf_counter()
    status, html = build(root, output, jobs)
    took = time.perf_counter() - start
    if status == 0:
        print(f"built in {took:.0f} s: open {html / 'index.html'}, or serve it with "
              f"`python -m http.server -d {os.path.relpath(html)}` and open http://127.0.0.1:8000")
    else:
        print(f"the book did not build ({took:.0f} s): see the warnings above", file=sys.stderr)
    return status


TEMPLATES = pathlib.Path(__file__).resolve().parent / "templates"


def offline_feedback_maths(c):
    """Make nbgrader's HTML feedback render its maths offline (traitlets config ``c``).

    nbgrader's ``feedback`` template imports nbconvert's ``mathjax`` macro, which loads MathJax
    from a CDN. Our template folder comes first on the template path, so its
    ``feedback/mathjax.html.j2`` is the one imported: it inlines the bundled MathJax through
    the ``offline_mathjax`` filter. nbgrader's own templates stay on the path after ours.
    """
    import nbgrader
    nbgrader_templates = pathlib.Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(nbgrader_templates)]
    c.HTMLExporter.filters = {"offline_mathjax": "autograder.book.mathjax_script"}
    return c


# ---------------------------------------------------------------- the book's Sphinx extension
# Listed in _config.yml (sphinx.extra_extensions): it runs in `jupyter-book build` too.


def _derive_baseurl(app, config):
    """html_baseurl comes from repository.url (autograder.links): one setting for both."""
    from .links import book_url
    repo = (config.html_theme_options or {}).get("repository_url", "")
    if not repo:
        raise ValueError("_config.yml sets no repository.url: the book's address is derived from it")
    config.html_baseurl = book_url(repo.rstrip("/")) + "/"


def _create_execution_cache(app, env, docnames):
    """Create jupyter-cache's database before the pages are read in parallel.

    myst-nb opens it lazily from each reading process: on a fresh build two processes created
    its tables at once ("table nbproject already exists", a 7-page build failed in 2 s)."""
    config = getattr(env, "mystnb_config", None)
    if config is not None and config.execution_mode == "cache":
        from jupyter_cache import get_cache
        get_cache(config.execution_cache_path).db  # noqa: B018 (the property creates the tables)


def _course_style(app, config):
    """Serve autograder/templates/static/ (course-site.css) with the site."""
    config.html_static_path = [*config.html_static_path, str(TEMPLATES / "static")]


def _theme_defaults(app, config):
    """A first visit (nothing in localStorage) must not log "Got invalid theme mode" in the
    console: pydata-sphinx-theme's layout wants a default mode (html_context), and "auto"
    follows the system's light or dark."""
    config.html_context = {**(config.html_context or {})}
    config.html_context.setdefault("default_mode", "auto")


def _unique_scripts(app, pagename, templatename, context, doctree):
    """Include each script once. sphinx-thebe adds its inline `const THEBE_JS_URL = ...` in
    env-before-read-docs, which runs twice in a Jupyter Book build: the second copy throws
    "Identifier 'THEBE_JS_URL' has already been declared" on every page."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        # An inline script's filename is None or "" depending on who added it.
        key = (str(getattr(script, "filename", script) or ""), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def _launch_only_notebooks(app, pagename, templatename, context, doctree):
    """Keep the Binder/Colab launch buttons on notebook (.ipynb) pages only.

    A MyST page's buttons would open its .md source: Colab cannot read it, and Binder's
    JupyterLab opens it as text. The assignment pages are notebooks: their buttons open
    exercises/<assignment>/<assignment>.ipynb, which is what students should run.
    """
    if pagename not in app.env.all_docs or str(app.env.doc2path(pagename)).endswith(".ipynb"):
        return
    buttons = context.get("header_buttons")
    if buttons:
        buttons[:] = [b for b in buttons if b.get("label") != "launch-buttons"]


def _fill_links(app, docname, source):
    """Pages may write {{ repository_url }} / {{ book_url }} (even in code blocks): the one setting
    in _config.yml fills them, as release does for the notebooks (autograder/links.py)."""
    from . import links
    if links.PLACEHOLDER.search(source[0]):
        source[0] = links.fill(source[0], links.values(app.srcdir))


def setup(app):
    app.connect("source-read", _fill_links)
    app.connect("config-inited", _derive_baseurl)
    app.connect("config-inited", _theme_defaults)
    app.connect("config-inited", _course_style)
    app.add_css_file("course-site.css")
    app.connect("env-before-read-docs", _create_execution_cache)
    app.connect("html-page-context", _unique_scripts)
    # sphinx-book-theme adds the launch buttons at priority 501.
    app.connect("html-page-context", _launch_only_notebooks, priority=502)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
