"""``python -m autograder publish DIR`` writes a students' repository that holds no solution.

The published tree is grepped for every secret of every assignment (course.ASSIGNMENTS, so a
new chapter is covered with no edit here): each non-trivial line of code between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` in solutions/*/*.ipynb, every sentence of every
model answer (markdown solution cells), every line of every hidden test block. The published
package is built into a wheel (no network) and every chapter's checks module, and every
``autograder`` module a released notebook or a book page imports, is imported from it in a
clean subprocess (``python -S``: no .pth, so not the editable install of this repository)
whose PYTHONPATH is that wheel's content only (then the third-party packages). A tree with a solution file
added is caught (the grep can fail). About 10 s (the wheel build): marked slow.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import nbformat
import pytest

from conftest import ASSIGNMENTS, ROOT, solution_path
from autograder import publish

pytestmark = pytest.mark.slow

# A solution line shorter than this (``return out, cache``, ``N, C, H, W = x.shape``) is code any
# implementation or page has; it gives nothing away. Lines the released notebook itself shows
# (a formula given in the instructions, a provided call) are not secrets either.
MIN_LINE = 30
MIN_SENTENCE = 40  # model answers are compared sentence by sentence, whitespace-normalised

# Solution lines that the published package holds today, each with the reason. ACCEPTED: by
# design (the torch references are published, and a reference of a numpy function reads like
# it). The diagnosed mistakes' wrong implementations are computed with torch on the grader's side
# (autograder/activations/reference.py), so no checks module starts from the right computation.
ACCEPTED = {
    "return np.array(means), np.array(stds)": "autograder/initialization/reference.py: layer_statistics' torch "
                                              "reference returns numpy arrays like the solution",
    'if nonlinearity == "leaky_relu":': "control flow every gain function has (calculate_gain's reference too)",
    "for name, spec in space.items():": "iterating over a search space: any code that reads one does",
    "for name, spec in space.items()}": "iterating over a search space: any code that reads one does",
    "config = dict(zip(names, values))": "naming a grid point's values: any code that reads a grid does",
}


def _code(line):
    return " ".join(line.split("#")[0].split())


def _words(text):
    return " ".join(text.split())


def secrets(assignment, notebook=None):
    """{kind: {text}} of one solution notebook: solution lines, model-answer sentences, hidden-test lines."""
    nb = nbformat.read(str(notebook or solution_path(assignment)), as_version=4)
    released = _released_text(assignment)
    found = {"solution": set(), "answer": set(), "hidden": set()}
    for cell in nb.cells:
        for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", cell.source, re.S):
            found["solution"] |= {_code(line) for line in block.splitlines()
                                  if len(_code(line)) >= MIN_LINE and _code(line) not in released}
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", cell.source, re.S):
            found["hidden"] |= {_code(line) for line in block.splitlines() if _code(line)}
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            sentences = re.split(r"(?<=[.!?])\s+", _words(cell.source))
            found["answer"] |= {s for s in sentences if len(s) >= MIN_SENTENCE}
    return found


def _released_text(assignment):
    nb = nbformat.read(str(ROOT / "exercises" / assignment / f"{assignment}.ipynb"), as_version=4)
    return {_code(line) for cell in nb.cells for line in cell.source.splitlines()}


def published_texts(tree):
    """{relative path: text} of every text file of the tree; a notebook as its cells' sources and outputs."""
    texts = {}
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or ".git" in path.relative_to(tree).parts:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        if path.suffix == ".ipynb":
            nb = json.loads(text)
            text = "\n".join("".join(c.get("source", "")) + "\n" + json.dumps(c.get("outputs", []))
                             for c in nb.get("cells", []))
        texts[path.relative_to(tree).as_posix()] = text
    return texts


def leaks(tree, assignments=ASSIGNMENTS, notebooks=None):
    """[(kind, secret, published file)] for every secret found in the tree."""
    texts = published_texts(tree)
    by_line = {name: {_code(line) for line in text.splitlines()} for name, text in texts.items()}
    flat = {name: _words(text) for name, text in texts.items()}
    found = []
    for assignment in assignments:
        kinds = secrets(assignment, (notebooks or {}).get(assignment))
        for line in kinds["solution"]:
            found += [("solution", line, name) for name, lines in by_line.items() if line in lines]
        for sentence in kinds["answer"]:
            found += [("answer", sentence, name) for name, text in flat.items() if sentence in text]
        for line in kinds["hidden"]:
            # The package's checks modules document the call (``checks.x(..., hidden=True)`` in
            # their docstring): only the notebooks and pages must not show the hidden tests.
            found += [("hidden", line, name) for name, lines in by_line.items()
                      if line in lines and not name.endswith(".py")]
    return found


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    out = tmp_path_factory.mktemp("published") / "course"
    written = publish.publish(ROOT, out)
    assert written
    return out


def test_the_secrets_are_found():
    for assignment in ASSIGNMENTS:
        kinds = secrets(assignment)
        assert kinds["solution"] and kinds["hidden"], f"{assignment}: the grep would prove nothing"
    assert any(secrets(a)["answer"] for a in ASSIGNMENTS)


def test_the_published_tree_has_what_students_need(tree):
    for assignment in ASSIGNMENTS:
        assert (tree / "exercises" / assignment / f"{assignment}.ipynb").is_file()
        assert (tree / "autograder" / assignment / "checks.py").is_file()
        assert list((tree / "book" / assignment).glob("*.md")), assignment
    for name in ("README.md", "pyproject.toml", "_config.yml", "_toc.yml", "autograder/gradcheck.py",
                 "autograder/data.py", "autograder/checking.py"):
        assert (tree / name).is_file(), name
    # Every file the table of contents names is there (the students' book builds).
    toc = (tree / "_toc.yml").read_text()
    for page in re.findall(r"file:\s*(\S+)", toc):
        assert any((tree / f"{page}{ext}").is_file() for ext in (".md", ".ipynb")), page


def test_the_published_tree_has_no_instructor_side(tree):
    names = {p.relative_to(tree).as_posix() for p in tree.rglob("*")}
    assert not {"solutions", "instructor", "grading", "tests"} & {n.split("/")[0] for n in names}
    for module in ("pipeline", "cli", "__main__", "demo", "intake", "course", "verdicts", "mutants",
                   "notebook_builder", "publish"):
        assert f"autograder/{module}.py" not in names, module
    assert not [n for n in names if "mutants" in n or "solution" in n]
    texts = published_texts(tree)
    for marker in ("### BEGIN SOLUTION", "### BEGIN HIDDEN TESTS", "BEGIN MARK SCHEME"):
        assert not [name for name, text in texts.items() if marker in text], marker


def test_no_solution_model_answer_or_hidden_test_is_published(tree):
    found = sorted({(name, kind, text) for kind, text, name in leaks(tree) if text not in ACCEPTED})
    assert not found, "published secrets (file, kind, text):\n" + "\n".join(map(str, found))


def course_copy(tmp_path, *extra):
    """A copy of what publish reads (book, exercises, the package, the book's configuration, and
    ``extra`` folders) in tmp_path/course, to plant things in."""
    course = tmp_path / "course"
    for name in ("book", "exercises", "autograder", *extra):
        shutil.copytree(ROOT / name, course / name, ignore=shutil.ignore_patterns("__pycache__", "_build"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, course / name)
    return course


def test_the_grep_catches_a_leak(tmp_path):
    """A course whose book gained a page with a solution, a model answer and a hidden test, and
    whose package gained a solutions module and a mutants module, publishes a tree the grep flags."""
    course = course_copy(tmp_path, "solutions")
    first = ASSIGNMENTS[0]
    kinds = secrets(first)
    solution, answer, hidden = sorted(kinds["solution"])[0], sorted(kinds["answer"] or ["-"])[0], sorted(kinds["hidden"])[0]
    (course / "book" / first / "cheatsheet.md").write_text(
        f"# Cheat sheet\n\n```python\n{solution}\n{hidden}\n```\n\n{answer}\n")
    (course / "autograder" / first / "mutants.py").write_text(f"def f(x):\n    {solution}\n")
    out = tmp_path / "published"
    publish.publish(course, out)
    assert not (out / "autograder" / first / "mutants.py").exists()
    found = {(kind, name) for kind, _, name in leaks(out, [first])}
    expected = {("solution", f"book/{first}/cheatsheet.md"), ("hidden", f"book/{first}/cheatsheet.md")}
    if answer != "-":
        expected.add(("answer", f"book/{first}/cheatsheet.md"))
    assert expected <= found


# ---------------------------------------------------------------- numpy formulas of graded activations

# Chapter 1 grades the students' numpy forward and backward passes of the activations (see
# autograder/activations/checks.py). A published module or a book page that computes one of them in
# numpy shows a graded solution: the pages explain with maths and torch. Each pattern is a formula
# of a graded activation written as numpy code (a name: a variable, ``a.b`` or ``a[...]``).
_NAME = r"[A-Za-z_][\w.]*(?:\[[^\]]*\])?"
_ZERO, _ONE = r"0(?:\.0*)?", r"1(?:\.0*)?"
_NOT_A_CALL = r"(?<![\w.\]])"  # "(": not the argument list of a call, np.sqrt(1 - c ** 2)
GRADED_FORMULAS = {
    "relu_mask": rf"\*\s*\(\s*{_NAME}\s*>=?\s*{_ZERO}\s*\)|{_NOT_A_CALL}\(\s*{_NAME}\s*>=?\s*{_ZERO}\s*\)\s*\*",
    "relu_maximum": rf"np\.maximum\(\s*(?:{_NAME}\s*,\s*{_ZERO}|{_ZERO}\s*,\s*{_NAME})\s*\)",
    "tanh_derivative": rf"{_NOT_A_CALL}\(\s*{_ONE}\s*-\s*{_NAME}\s*\*\*\s*2\s*\)",
    "sigmoid_derivative": rf"\b({_NAME})\s*\*\s*\(\s*{_ONE}\s*-\s*\1\s*\)",
    "sigmoid_exp": rf"(?:{_ONE}|{_NAME})\s*/\s*\(\s*{_ONE}\s*\+\s*(?:np|numpy|math)\.exp\(\s*-",
    "where_negative_branch": rf"np\.where\(\s*{_NAME}\s*>=?\s*{_ZERO}[^)\n]*,[^,\n]*,[^)\n]*\*",
    "elu_exp_minus_one": rf"(?:np|numpy|math)\.exp\(\s*{_NAME}\s*\)\s*-\s*{_ONE}(?![\d.])|(?:np|numpy)\.expm1\(",
    "gelu_phi": rf"{_NAME}\s*\*\s*(?:\w+\.)*(?:norm\.cdf|ndtr)\(|erf\(\s*{_NAME}\s*/\s*(?:np\.|math\.)?sqrt\(\s*2",
}
# A line of each kind that must be flagged, and lines that must not (test_the_formula_grep_...).
FORMULA_EXAMPLES = {
    "relu_mask": "dx = dout * (x > 0)",
    "relu_maximum": "out = np.maximum(0, x)",
    "tanh_derivative": "return dout * (1 - out ** 2)",
    "sigmoid_derivative": "dx = dout * s * (1.0 - s)",
    "sigmoid_exp": "out = 1 / (1 + np.exp(-x))",
    "where_negative_branch": "out = np.where(x > 0, x, alpha * (np.exp(x) - 1))",
    "elu_exp_minus_one": "neg = alpha * np.expm1(x)",
    "gelu_phi": "out = x * norm.cdf(x)",
}
NOT_FORMULAS = (
    "z[:, 1] = correlation * z[:, 0] + np.sqrt(1 - correlation ** 2) * z[:, 1]",  # why-scale.md
    "glue('mean_elu', phi0 + exp(0.5) * 0.5 * (1 + erf(-1 / sqrt(2))) - 0.5)",   # activations/index.md
    "masks = rng.random((100_000, xs_mc.size)) < norm.cdf(xs_mc)",               # maxout-gelu-silu.md
)
# (published file, pattern): why it stays. The provided numpy layers of the later chapters'
# capstones and checks: torch is hidden from the grading kernel (autograder/course.py,
# hide_oracle), where they run, so they cannot call torch; the book derives the same formulas
# (chapter 1's pages and assignment). Matched by file and pattern, not line: any occurrence in
# another file, or of another pattern, fails. (The chapter-4 capstone's BN+ReLU layer uses
# capstone.ReLU: autograder/normalization/checks.py has no entry, so a formula written there fails.)
_PROVIDED_LAYER = ("provided ReLU/tanh layer of a capstone of chapters 3-5, run in the grading kernel "
                   "without torch (hide_oracle); the book derives the same formulas")
ACCEPTED_FORMULAS = {
    ("autograder/capstone.py", "relu_maximum"): "capstone.ReLU.forward: " + _PROVIDED_LAYER,
    ("autograder/capstone.py", "relu_mask"): "capstone.ReLU.backward: " + _PROVIDED_LAYER,
    ("autograder/initialization/checks.py", "relu_maximum"):
        "_numpy_pair, and the ReLU of the mistakes' re-computations (_preactivation, _lsuv): " + _PROVIDED_LAYER,
    ("autograder/initialization/checks.py", "relu_mask"): "_numpy_pair's ReLU backward: " + _PROVIDED_LAYER,
    ("autograder/initialization/checks.py", "tanh_derivative"): "_numpy_pair's tanh backward: " + _PROVIDED_LAYER,
    ("autograder/hyperparameters/training.py", "relu_maximum"): "the provided MLP's forward: " + _PROVIDED_LAYER,
    ("autograder/hyperparameters/training.py", "relu_mask"): "the provided MLP's backward: " + _PROVIDED_LAYER,
    ("autograder/preprocessing/checks.py", "relu_maximum"):
        "np.sqrt(np.maximum(eigenvalues, 0) + eps): eigenvalues that rounding made slightly negative "
        "clamped at 0 before a square root (the notebook asks for it), not an activation",
}


def graded_formulas(package, book):
    """{(file, pattern): [line, ...]} for every numpy formula of a graded activation in the
    package's modules (package/**/*.py) and the book's pages (book/**/*.md); file relative to
    the parent of each folder (``autograder/capstone.py``, ``book/intro.md``)."""
    found = {}
    for folder, glob in ((package, "*.py"), (book, "*.md")):
        for path in sorted(folder.rglob(glob)):
            name = path.relative_to(folder.parent).as_posix()
            for line in path.read_text().splitlines():
                for kind, pattern in GRADED_FORMULAS.items():
                    if re.search(pattern, line):
                        found.setdefault((name, kind), []).append(line.strip())
    return found


def test_the_formula_grep_flags_each_formula_and_not_the_look_alikes():
    for kind, line in FORMULA_EXAMPLES.items():
        assert re.search(GRADED_FORMULAS[kind], line), (kind, line)
    for line in NOT_FORMULAS:
        assert not [k for k, p in GRADED_FORMULAS.items() if re.search(p, line)], line
    assert set(FORMULA_EXAMPLES) == set(GRADED_FORMULAS)
    assert {kind for _, kind in ACCEPTED_FORMULAS} <= set(GRADED_FORMULAS)


def test_no_numpy_formula_of_a_graded_activation_is_published(tree):
    found = graded_formulas(tree / "autograder", tree / "book")
    new = {key: lines for key, lines in found.items() if key not in ACCEPTED_FORMULAS}
    assert not new, "numpy formulas of graded activations (file, pattern): lines\n" + "\n".join(
        f"{key}: {lines}" for key, lines in sorted(new.items()))


def test_the_formula_grep_catches_a_planted_formula(tmp_path):
    """A course whose book gained a page computing ReLU's backward and the sigmoid's derivative in
    numpy, whose chapter package gained a module with the ELU forward, and whose capstone (accepted
    for ReLU) gained a tanh derivative, publishes a tree the grep flags, on each of the four."""
    course = course_copy(tmp_path)
    (course / "book" / "activations" / "cheatsheet.md").write_text(
        "# Cheat sheet\n\n```python\ndx = dout * (x > 0)\nds = s * (1 - s)\n```\n")
    (course / "autograder" / "activations" / "helpers.py").write_text(
        "import numpy as np\n\n\ndef elu(x, alpha):\n    return np.where(x > 0, x, alpha * (np.exp(x) - 1))\n")
    with open(course / "autograder" / "capstone.py", "a") as f:
        f.write("\n\ndef tanh_backward(dout, out):\n    return dout * (1 - out ** 2)\n")
    out = tmp_path / "published"
    publish.publish(course, out)
    found = graded_formulas(out / "autograder", out / "book")
    new = {key for key in found if key not in ACCEPTED_FORMULAS}
    assert {("book/activations/cheatsheet.md", "relu_mask"), ("book/activations/cheatsheet.md", "sigmoid_derivative"),
            ("autograder/activations/helpers.py", "where_negative_branch"),
            ("autograder/activations/helpers.py", "elu_exp_minus_one"),
            ("autograder/capstone.py", "tanh_derivative")} <= new, sorted(new)


def test_publish_stops_on_a_solution_marker(tmp_path):
    course = course_copy(tmp_path)
    (course / "book" / "copied-cell.md").write_text("```python\n### BEGIN SOLUTION\nreturn x\n### END SOLUTION\n```\n")
    with pytest.raises(ValueError, match="book/copied-cell.md"):
        publish.publish(course, tmp_path / "published")


def test_publish_refuses_a_foreign_folder_and_replaces_its_own(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        publish.publish(ROOT, out)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    first = publish.publish(ROOT, out)
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref")
    assert publish.publish(ROOT, out) == first  # a second publish replaces the first, keeps .git
    assert (out / ".git" / "HEAD").exists()
    with pytest.raises(ValueError, match="inside the course"):
        publish.publish(ROOT, ROOT / "_build" / "published")


def _imports(text):
    return set(re.findall(r"^\s*(?:from|import)\s+(autograder(?:\.\w+)*)", text, re.M))


def test_the_published_package_builds_and_imports_alone(tree, tmp_path):
    wheels = tmp_path / "wheels"
    build = tmp_path / "source"
    shutil.copytree(tree, build)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(build)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("autograder-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
        names = set(zf.namelist())
    assert "autograder/checking.py" in names and "autograder/pipeline.py" not in names
    modules = {f"autograder.{a}.checks" for a in ASSIGNMENTS} | {"autograder.gradcheck", "autograder.data"}
    for notebook in (tree / "exercises").rglob("*.ipynb"):
        modules |= _imports("\n".join(c.source for c in nbformat.read(str(notebook), as_version=4).cells))
    for page in (tree / "book").rglob("*.md"):
        modules |= _imports(page.read_text())
    # The Sphinx extensions the published _config.yml loads from the package (the book builds).
    modules |= set(re.findall(r"^\s*-\s*(autograder(?:\.\w+)+)", (tree / "_config.yml").read_text(), re.M))
    # -S: no site-packages processing, so the editable install of this repository (a .pth file
    # and its import hook) is not active; numpy, torch, ... come from the third-party folder added
    # after the published package.
    third_party = sysconfig.get_paths()["purelib"]
    script = (
        "import importlib, sys\n"
        f"sys.path.append({third_party!r})\n"
        f"for name in {sorted(modules)!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(site)!r}), (name, module.__file__)\n"
        "for name in ('autograder.pipeline', 'autograder.cli', 'autograder.verdicts', 'autograder.course'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        continue\n"
        "    sys.exit(f'{name} is importable from the student package')\n"
        "print('ok')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONPATH"] = str(site)
    out = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr


def test_the_cli_publishes(tmp_path, capsys):
    from autograder import cli
    assert cli.main(["--course-dir", str(ROOT), "publish", str(tmp_path / "out")]) == 0
    assert "published" in capsys.readouterr().out
    assert (tmp_path / "out" / "exercises").is_dir()
    assert cli.main(["--course-dir", str(ROOT), "publish", str(ROOT / "_build" / "out")]) == 2  # inside the course
