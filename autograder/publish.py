"""``python -m autograder publish DIR``: the student-facing repository, without solutions.

This repository holds what students must never see: the solution notebooks (``solutions/``),
model answers and hidden tests in them, the mutants (``instructor/``: near-solutions), and the
grading pipeline. Instructors who keep it private publish the tree this module writes:

- the book (``book/``, ``_config.yml``, ``_toc.yml``, each chapter's ``references.bib``),
- the released assignments (``exercises/``: nbgrader removed the solutions and hidden tests),
- the student package: only what the notebooks and the book import (the check engine, each
  chapter's checks and torch references, ``gradient_check``, the data loaders), with a
  ``pyproject.toml`` so that the notebooks' ``%pip install`` of the repository installs it,
- a README for students.

What goes in is the declarative list ``CONTENTS`` below, each entry with the reason it is
there; everything else stays out (the pipeline, the CLI's instructor commands, the demo,
intake, the grading kernel and sandbox of ``course.py``, ``verdicts.py``, ``mutants.py``).
The chapters come from ``course.ASSIGNMENTS`` (and the book's chapter folders), so a new
chapter is published with no edit here. ``tests/test_publish.py`` greps the published tree for every solution line, model
answer and hidden test and builds and imports the published package.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import pathlib
import shutil

from . import course as settings

MANIFEST = ".published-files"  # what the last publish wrote: replaced, never anything else


@dataclasses.dataclass(frozen=True)
class Entry:
    pattern: str           # a path or glob relative to the course root: {assignment} is each of
                           # course.ASSIGNMENTS, {chapter} each chapter (see chapters())
    why: str               # why students need it
    required: bool = True  # a required entry that matches nothing stops the publish


# Modules of the package students install (the notebooks' setup cell pip-installs the
# published repository). Not here, on purpose: pipeline.py, cli.py and __main__.py (instructor
# commands), demo.py, intake.py, course.py (grading kernel, sandbox), verdicts.py (the grader's
# judge), mutants.py, notebook_builder.py (builds the solution notebooks).
STUDENT_PACKAGE = (
    Entry("autograder/checking.py", "the check engine every checks module is built on"),
    Entry("autograder/numerics.py", "the relative error and tolerances the checks print"),
    Entry("autograder/records.py", "what a check records while grading (imported by the engine)"),
    Entry("autograder/gradcheck.py", "gradient_check: the numerical gradient students call themselves"),
    Entry("autograder/sampling.py", "checks of random initialisers (chapter 3)"),
    Entry("autograder/transforms.py", "checks of fitted transforms (chapters 2 and 3)"),
    Entry("autograder/speed.py", "compare_speed, called by the normalisation notebook"),
    Entry("autograder/data.py", "load_digits, load_mnist, load_cifar10: the data loaders"),
    Entry("autograder/capstone.py", "the capstones' provided model and training loop", required=False),
    Entry("autograder/book.py", "the Sphinx extension _config.yml loads (sphinx.extra_extensions): the "
                                "students' book build needs it", required=False),
    Entry("autograder/links.py", "the repository-URL helper the book's extension imports", required=False),
    Entry("autograder/{assignment}/__init__.py", "the assignment's package"),
    Entry("autograder/{assignment}/checks.py", "the checks the assignment's notebook calls"),
    Entry("autograder/{chapter}/__init__.py", "the chapter's package", required=False),
    Entry("autograder/{chapter}/reference.py", "torch references: the expected values the checks print",
          required=False),
    Entry("autograder/{chapter}/*.py", "the chapter's other modules its notebook imports (capstone model, "
                                       "training loop), except the instructor-side names below", required=False),
)
# Never published, whatever the entries above match: near-solutions and the grader's side.
INSTRUCTOR_ONLY = ("*mutants*", "*solution*", "*answer*", "*rubric*", "*hidden*",
                   "__pycache__", "*.pyc", ".ipynb_checkpoints", "_build", ".jupyter_cache")

BOOK = (
    Entry("book/**/*", "the book's pages (executed at build time), figures' code and references.bib"),
    Entry("_config.yml", "Jupyter Book's configuration"),
    Entry("_toc.yml", "the table of contents: book pages and the released assignments"),
)
EXERCISES = (
    Entry("exercises/{assignment}/**/*", "the released assignment (nbgrader removed solutions and hidden tests)"),
)
CONTENTS = BOOK + EXERCISES + STUDENT_PACKAGE


def _init_text(course_dir):
    return ('"""Training Neural Networks, Part I: the student package.\n\n'
            "- ``autograder.<chapter>.checks``: the checks your assignment notebook calls.\n"
            "- ``autograder.<chapter>.reference``: torch reference implementations.\n"
            "- ``autograder.gradcheck.gradient_check``: compare a backward pass with a numerical gradient.\n"
            "- ``autograder.data``: the digits, MNIST and CIFAR-10 loaders.\n"
            '"""\n__version__ = "0.1.0"\n')


# What the notebooks and the package import (unpinned: Colab's own torch must do), and what
# building the book needs (pinned as in the course's requirements.txt: the versions it was built with).
STUDENT_DEPENDENCIES = ("numpy", "scipy", "scikit-learn", "torch", "matplotlib", "optuna")
BOOK_DEPENDENCIES = ("jupyter-book", "sphinxcontrib-bibtex", "sphinx-mathjax-offline", "threadpoolctl",
                     "nbgrader")  # autograder.links (imported by the book's extension) imports nbgrader


def _pinned(names, requirements):
    pins = {}
    if requirements.is_file():
        for line in requirements.read_text().splitlines():
            name, _, version = line.split("#")[0].strip().partition("==")
            pins[name.lower()] = version
    return [f"{n}=={pins[n]}" if pins.get(n) else n for n in names]


def _pyproject_text(course_dir):
    quoted = lambda names: ", ".join(f'"{n}"' for n in names)  # noqa: E731
    book = _pinned(BOOK_DEPENDENCIES, pathlib.Path(course_dir) / "requirements.txt")
    return ('[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
            '[project]\nname = "autograder"\nversion = "0.1.0"\n'
            'description = "Training Neural Networks, Part I: the checks the assignment notebooks call"\n'
            'requires-python = ">=3.10"\n'
            f'dependencies = [{quoted(STUDENT_DEPENDENCIES)}]\n\n'
            f'[project.optional-dependencies]\nbook = [{quoted(book)}]\n\n'
            '[tool.setuptools.packages.find]\ninclude = ["autograder*"]\n')


def _readme_text(course_dir):
    chapters = "\n".join(f"{i}. `book/{a}/` and the assignment `exercises/{a}/{a}.ipynb`"
                         for i, a in enumerate(settings.ASSIGNMENTS, 1))
    return f"""# Training Neural Networks, Part I (students' repository)

A book that you read online or build yourself, and notebook assignments in which you implement
neural-network layers in numpy. Each function you write has a test cell under it that checks it
against PyTorch and, when it is wrong, names the input that failed, the expected and the
obtained values, and the likely mistake.

Chapters:

{chapters}

## Do an assignment

Open `exercises/<assignment>/<assignment>.ipynb` in JupyterLab or on Colab (the launch button on
the assignment's page of the book). Its first cell installs the `autograder` package of this
repository. Implement each function, run the cell under it. Your instructor grades with the
same checks on more shapes and seeds, and grades the written answers by hand.
`autograder.gradcheck.gradient_check` compares any backward pass with a numerical gradient.

## Build the book

```bash
python3 -m venv .venv && . .venv/bin/activate
pip install ".[book]"          # the package, and the versions the book was built with
jupyter-book build . -W -n --keep-going
```

The pages are executed as they build (a few minutes on a laptop, CPU only); open
`_build/html/index.html`.
"""


GENERATED = {  # path -> (text, why)
    "autograder/__init__.py": (_init_text, "the package's docstring names only what students get"),
    "pyproject.toml": (_pyproject_text, "so that `pip install` of the published repository installs the package"),
    "README.md": (_readme_text, "what the repository is and how to do an assignment"),
}


def _excluded(relative):
    return any(fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in INSTRUCTOR_ONLY)


def chapters(root, assignments=None):
    """The assignments (course.ASSIGNMENTS), then the book's other chapters that have a package
    (a chapter whose pages are written before its assignment: its pages import its modules)."""
    assignments = tuple(assignments or settings.ASSIGNMENTS)
    others = sorted(p.name for p in (pathlib.Path(root) / "book").iterdir()
                    if p.is_dir() and p.name not in assignments and (pathlib.Path(root) / "autograder" / p.name).is_dir())
    return assignments + tuple(others)


def selected(root, assignments=None):
    """{relative path: source file} of everything ``CONTENTS`` puts in the published tree.
    A required entry that matches no file raises ValueError (an assignment without its checks)."""
    root = pathlib.Path(root)
    values = {"assignment": tuple(assignments or settings.ASSIGNMENTS), "chapter": chapters(root, assignments)}
    files = {}
    for entry in CONTENTS:
        key = next((k for k in values if "{%s}" % k in entry.pattern), None)
        for value in values[key] if key else (None,):
            pattern = entry.pattern.format(**{key: value}) if key else entry.pattern
            matches = [p for p in sorted(root.glob(pattern)) if p.is_file()]
            matches = [p for p in matches if not _excluded(p.relative_to(root))]
            if entry.required and not matches:
                raise ValueError(f"nothing to publish for {pattern!r} ({entry.why})")
            files.update({p.relative_to(root).as_posix(): p for p in matches})
    for name in GENERATED:
        files.pop(name, None)
    return files


def _clear_previous(out):
    """Remove what the previous publish wrote (listed in MANIFEST). A folder holding anything else
    (but .git) is refused before anything is removed."""
    manifest = out / MANIFEST
    listed = set(manifest.read_text().splitlines()) | {MANIFEST} if manifest.is_file() else set()
    present = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if not p.is_dir() and ".git" not in p.relative_to(out).parts}
    foreign = sorted(present - listed)
    if foreign:
        raise ValueError(f"{out} is not empty and was not written by publish ({', '.join(foreign[:5])}): "
                         "give an empty or new folder")
    for name in present:
        (out / name).unlink()
    for folder in sorted((p for p in out.rglob("*") if p.is_dir() and ".git" not in p.relative_to(out).parts),
                         reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def publish(course_dir, out, assignments=None):
    """Write the student-facing repository into ``out``; return the relative paths written."""
    course_dir, out = pathlib.Path(course_dir).resolve(), pathlib.Path(out).resolve()
    if out == course_dir or course_dir in out.parents:  # it would publish itself, or sit beside solutions/
        raise ValueError(f"{out} is inside the course repository: publish to a folder outside it")
    files = selected(course_dir, assignments)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    for name, source in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / name)
    for name, (text, _) in GENERATED.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text(course_dir))
    written = sorted([*files, *GENERATED])
    (out / MANIFEST).write_text("\n".join(written) + "\n")
    marked = _marked(out, written)
    if marked:
        raise ValueError(f"published files hold nbgrader's solution or hidden-test markers: {', '.join(marked)} "
                         f"(in {out}); remove them from the course's book/ or package and publish again")
    return written


# nbgrader's markers: a file holding one is a solution notebook or a copy of its cells.
MARKERS = ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "=== BEGIN MARK SCHEME ===")


def _marked(out, names):
    """The published files that contain one of MARKERS (a last line of defence; the tests grep
    the tree for every solution line, model answer and hidden test)."""
    found = []
    for name in names:
        try:
            text = (out / name).read_text()
        except UnicodeDecodeError:
            continue
        if any(marker in text for marker in MARKERS):
            found.append(name)
    return found
