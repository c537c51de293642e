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


# --- Measured numbers are glued, and every glue reference has its glue (issue 11) -------------
# A page writes a measured number as {glue:text}`key:.2f` (or {glue}`key`, {glue:md}`key`, a
# {glue:figure} directive); its code cells glue it: glue("key", value) or, in a loop,
# glue(f"key_{x}", value). A reference to a key no cell glues is an error of the strict build
# (checked on a one-page book: "No key 'lost' found in glue data for this document", and
# -W stops the build), found only after executing every page; this check reads the sources.
GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)(?::[^`]*)?`")
GLUE_DIRECTIVE = re.compile(r"^[`:]{3,}\{glue(?::\w+)?\}\s+(\S+)", re.M)
GLUE_CALL = re.compile(r"\bglue\(\s*(f?)([\"'])(.*?)\2\s*,")
GLUE_ANY_CALL = re.compile(r"(?<![\w.])glue\(\s*(?!name\b)([^\s,)]+)")
TOC_PAGES = sorted({ROOT / f"{name}.md" for name in re.findall(r"file:\s*(book/\S+)", (ROOT / "_toc.yml").read_text())
                    if (ROOT / f"{name}.md").is_file()})


def glue_references(text):
    """The keys a page's prose uses; ``path::key`` (glued by another page) is left to the build."""
    text = re.sub(r"\{glue(?::\w+)?\}`[^`]*::[^`]*`", "", text)
    return set(GLUE_ROLE.findall(text)) | set(GLUE_DIRECTIVE.findall(text))


def glued_keys(text):
    """(literal keys, regexes of f-string keys, calls whose key is not a string) of a page's code."""
    code = "\n".join(code_cells(text))
    literal, patterns = set(), []
    for is_f, _, key in GLUE_CALL.findall(code):
        if is_f:
            patterns.append(re.compile("".join(".+" if part.startswith("{") else re.escape(part)
                                               for part in re.split(r"(\{[^}]*\})", key) if part) + "$"))
        else:
            literal.add(key)
    unreadable = [key for key in GLUE_ANY_CALL.findall(code) if key[0] not in "\"'f"]
    return literal, patterns, unreadable


def missing_glue(text):
    literal, patterns, unreadable = glued_keys(text)
    missing = sorted(key for key in glue_references(text)
                     if key not in literal and not any(p.match(key) for p in patterns))
    return missing + [f"glue({key}, ...): write the key as a string" for key in unreadable]


@pytest.mark.parametrize("page", TOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_glue_reference_is_glued_by_its_page(page):
    assert missing_glue(page.read_text()) == []


def test_the_glue_check_catches_a_missing_key():
    cell = '```{code-cell} ipython3\nfrom myst_nb import glue\nglue("loss", 0.1)\nfor g in (1, 2):\n    glue(f"acc_{g}", g)\n```\n'
    assert missing_glue(cell + "Loss {glue:text}`loss:.2f`, {glue:text}`acc_1:.0%`, {glue}`acc_2`.") == []
    assert missing_glue(cell + "Loss {glue:text}`loss:.2f` and {glue:text}`lost:.2f`.") == ["lost"]
    assert missing_glue(cell + "```{glue:figure} curve\n```\n") == ["curve"]
    assert missing_glue(cell + "From another page: {glue:text}`other::acc:.1f`.") == []
    assert missing_glue(cell.replace('glue("loss", 0.1)', "glue(key, 0.1)") + "{glue}`loss`")[-1].startswith("glue(key")


# --- The shape of a page: objectives at the top, takeaways at the end, 2-4 exercises with hints -
# Every page of a chapter listed in _toc.yml (book/<chapter>/..., so chapters added later are
# checked too; the book's intro and notation pages are not chapter pages):
#   :::{admonition} Learning objectives       before the first section (## heading)
#   :::{admonition} Key takeaways             after the last section of the page's content
#   ## Exercises                               the last section but "References": 2 to 4
#                                              numbered exercises, each with a dropdown hint
CHAPTER_PAGES = [p for p in TOC_PAGES if p.parent.parent == ROOT / "book"]
SECTION = re.compile(r"^## (.+)$", re.M)
HINT = re.compile(r"^\s*:{3,}\{admonition\}\s*Hint[^\n]*\n\s*:class:\s*dropdown", re.M)


def page_shape_problems(text):
    prose = re.sub(r"^```\{code-cell\}.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)
    sections = [(m.start(), m.group(1).strip()) for m in SECTION.finditer(prose)]
    problems = []
    objectives = prose.find("{admonition} Learning objectives")
    takeaways = prose.find("{admonition} Key takeaways")
    exercises = next((start for start, title in sections if title == "Exercises"), -1)
    if objectives < 0 or (sections and objectives > sections[0][0]):
        problems.append("no 'Learning objectives' admonition before the first section")
    content = [start for start, title in sections if title not in ("Exercises", "References")]
    if takeaways < 0 or (content and takeaways < content[-1]) or (exercises >= 0 and takeaways > exercises):
        problems.append("no 'Key takeaways' admonition after the last section (before the exercises)")
    if exercises < 0:
        return problems + ["no '## Exercises' section"]
    after = [title for start, title in sections if start > exercises]
    if any(title != "References" for title in after):
        problems.append(f"sections after the exercises: {after}")
    end = next((start for start, _ in sections if start > exercises), len(prose))
    body = prose[exercises:end]
    count = len(re.findall(r"^\d+\. ", body, re.M))
    if not 2 <= count <= 4:
        problems.append(f"{count} exercises (2 to 4 expected)")
    if len(HINT.findall(body)) < count:
        problems.append(f"{len(HINT.findall(body))} dropdown hints for {count} exercises")
    return problems


@pytest.mark.parametrize("page", CHAPTER_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_has_objectives_takeaways_and_exercises(page):
    assert page_shape_problems(page.read_text()) == []


def test_the_shape_check_can_fail():
    good = ("# T\n\n:::{admonition} Learning objectives\n- a\n:::\n\n## A\n\ntext\n\n"
            ":::{admonition} Key takeaways\n- b\n:::\n\n## Exercises\n\n"
            "1. **One.** Q?\n\n   :::{admonition} Hint\n   :class: dropdown\n   h\n   :::\n\n"
            "2. **Two.** Q?\n\n   :::{admonition} Hint\n   :class: dropdown\n   h\n   :::\n")
    assert page_shape_problems(good) == []
    assert page_shape_problems(good.replace("Learning objectives", "Goals"))
    assert page_shape_problems(good.replace(":::{admonition} Key takeaways\n- b\n:::\n", ""))
    assert page_shape_problems(good.split("2. **Two.**")[0])  # one exercise
    assert page_shape_problems(good.replace("   :class: dropdown\n", "", 1))  # a hint that is not a dropdown
    assert page_shape_problems(good + "\n## More\n")
    assert len(CHAPTER_PAGES) >= 22 and ROOT / "book" / "intro.md" not in CHAPTER_PAGES


# Numbers that were typed into the prose and are now glued from the page's code (issue 11): the
# sentence that held each, as it was. A page that brings one back is caught.
TYPED_NUMBERS_REMOVED = {
    "activations/experiments": ["more than half of them\nrecover", "between a third and two thirds of the units"],
    "normalization/experiments": ["Without BN the loss diverges from $\\eta = 1$ on.",
                                  "in the first hundred steps it is ahead of BN at $\\eta$"],
    "normalization/ics": ["settles within the first hundred steps", "keeps drifting for several hundred"],
    "activations/maxout-gelu-silu": ["at most 1.13 for GELU and 1.10 for SiLU", "minimum $-0.17$ at $-0.75$",
                                     "minimum $-0.28$ at $-1.28$"],
    "activations/index": ["| no | 0.40 | comparison | yes |", "0.40, 0.30 ($\\alpha = 0.25$)"],
    "normalization/batchnorm": ["Without BN most inputs land there", "converges in a handful of steps"],
}


@pytest.mark.parametrize("page", sorted(TYPED_NUMBERS_REMOVED))
def test_the_typed_in_numbers_are_gone(page):
    text = " ".join((ROOT / "book" / f"{page}.md").read_text().split())
    back = [phrase for phrase in TYPED_NUMBERS_REMOVED[page] if " ".join(phrase.split()) in text]
    assert back == []
