"""The book pages show the maths and torch's behaviour, never the solutions (issue 11).

A page that defines a numpy function named like a graded one (``relu_forward``,
``group_norm``, ``bn_train_step``, ...) or that repeats a line of a solution cell hands the
assignment to the students who read the book. These tests read the MyST sources only (no
build, no execution) and take well under a second.
"""
import re
from pathlib import Path

import nbformat
import pytest

from autograder.course import ASSIGNMENTS  # every chapter: its pages and its graded functions

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "book" / "intro.md"]
               + [p for a in ASSIGNMENTS for p in (ROOT / "book" / a).glob("*.md")])

# Earlier pages implemented these under other names: BN's train and eval steps.
EXTRA_NAMES = {"bntrainstep", "bneval", "bnforward", "bnbackward"}
# Lines that were on the pages and gave a graded computation away (weight norm's dv).
REMOVED_SNIPPETS = ("dv = g / vn * proj",)
# A solution line shorter than this (``return out, cache``, ``mu = x.mean(0)``) is too
# generic to count as a give-away when a page happens to contain it.
MIN_LINE = 30

CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(.*?)^```", re.S | re.M)
DEF = re.compile(r"^\s*def\s+(\w+)\s*\(", re.M)


def code_cells(text):
    return CODE_CELL.findall(text)


def stem(name):
    """relu_forward, relu_backward, group_norm, GroupNorm -> relu, relu, groupnorm, groupnorm."""
    key = name.lower().replace("_", "")
    return re.sub(r"(forward|backward)$", "", key)


def solution_cells(assignment):
    nb = nbformat.read(str(ROOT / "solutions" / assignment / f"{assignment}.ipynb"), as_version=4)
    return [c.source for c in nb.cells if c.cell_type == "code" and "### BEGIN SOLUTION" in c.source]


def graded_stems():
    names = set()
    for assignment in ASSIGNMENTS:
        for source in solution_cells(assignment):
            names.update(stem(n) for n in DEF.findall(source))
    return names | EXTRA_NAMES


def solution_lines():
    lines = set()
    for assignment in ASSIGNMENTS:
        for source in solution_cells(assignment):
            for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", source, re.S):
                for line in block.splitlines():
                    code = " ".join(line.split("#")[0].split())
                    if len(code) >= MIN_LINE:
                        lines.add(code)
    return lines


def give_aways(text, stems, lines):
    """What in a page's code cells reveals a solution: a list of short descriptions."""
    found = []
    for cell in code_cells(text):
        found += [f"defines {name}()" for name in DEF.findall(cell) if stem(name) in stems]
        found += [f"contains {s!r}" for s in REMOVED_SNIPPETS if s in cell]
        for line in cell.splitlines():
            code = " ".join(line.split("#")[0].split())
            if code in lines:
                found.append(f"repeats the solution line {code!r}")
    return found


@pytest.fixture(scope="module")
def graded():
    return graded_stems(), solution_lines()


def test_the_graded_names_are_found(graded):
    stems, lines = graded
    assert {"relu", "batchnorm", "groupnorm", "weightnorm", "cosinenorm", "bntrainstep"} <= stems
    assert lines, "no solution lines long enough to compare"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_shows_no_solution(page, graded):
    assert give_aways(page.read_text(), *graded) == []


def test_the_check_catches_the_old_pages(graded):
    """The implementations removed for issue 11, as they were on the pages."""
    old_cells = [
        "def relu_forward(x):\n    return np.maximum(x, 0), x\n",
        "def bn_train_step(x, gamma, beta, state, momentum=0.1, eps=1e-5):\n    mu = x.mean(axis=0)\n",
        "def bn_eval(x, gamma, beta, state, eps=1e-5):\n    return 0\n",
        "def group_norm(x, G):\n    return normalise(x.reshape(N, G, C // G, H, W), (2, 3, 4))\n",
        "    dv = g / vn * proj\n",
        "def cosine_norm(x, W, eps=1e-12):\n    return x\n",
    ]
    for cell in old_cells:
        assert give_aways(f"```{{code-cell}} ipython3\n{cell}```\n", *graded), cell
