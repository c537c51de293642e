"""Forgeries: students who try to earn points without doing the work, under a real nbgrader autograde.

Each forger submits the released notebook (every graded function a stub) with code added to
its first solution cell that attacks the checks where they run: the student's own kernel.
The verdicts are computed by the grader (autograder.verdicts.TrustedVerdicts), so every
forgery must score zero, while a correct and an empty control in the same batch score what
they score alone. One batch, graded once (module fixture); marked slow.
"""
import nbformat
import pytest

from autograder import demo, pipeline, records

pytestmark = pytest.mark.slow
ASSIGNMENT = "activations"
TIMEOUT = 20

PASS_LINE = 'print("✓ passed 3 cases (max relative error 0)")'

FORGERIES = {
    # The table: a fake `checks` whose every attribute prints a pass.
    "rebinds_checks": f'''
class _P:
    def __getattr__(self, name):
        return lambda *a, **k: {PASS_LINE}
checks = _P()
''',
    "patches_every_check": '''
for _n in dir(checks):
    if not _n.startswith("__"):
        setattr(checks, _n, lambda *a, **k: None)
''',
    "patches_every_autograder_function": '''
import sys, types
for _name, _mod in list(sys.modules.items()):
    if _name.startswith("autograder") and isinstance(_mod, types.ModuleType):
        for _attr in dir(_mod):
            if callable(getattr(_mod, _attr, None)) and not _attr.startswith("__"):
                try:
                    setattr(_mod, _attr, lambda *a, **k: True)
                except (AttributeError, TypeError):
                    pass
''',
    "patches_comparisons_and_builtins": '''
import builtins, numpy
numpy.allclose = numpy.array_equal = numpy.isclose = lambda *a, **k: True
numpy.max = numpy.nanmax = lambda *a, **k: 0.0
builtins.abs = lambda x: 0
builtins.isinstance = lambda *a: True
''',
    "input_transformer_blanks_the_tests": '''
def _blank(lines):
    return ["pass\\n"] if any("checks." in line for line in lines) else lines
get_ipython().input_transformers_post.append(_blank)
''',
    "input_transformer_returns_a_number": '''
def _number(lines):
    return ["1.0\\n"] if any("checks." in line for line in lines) else lines
get_ipython().input_transformers_post.append(_number)
''',
    "display_hook_prints_full_marks": '''
import sys
def _hook(value):
    print("1.0")
sys.displayhook = _hook
get_ipython().display_formatter.formatters["text/plain"].for_type(type(None), lambda *a: "1.0")
''',
    "shadowing_fake_package": f'''
import os, sys
os.makedirs("autograder/activations", exist_ok=True)
open("autograder/__init__.py", "w").write("")
open("autograder/activations/__init__.py", "w").write("")
open("autograder/activations/checks.py", "w").write(
    "def __getattr__(name):\\n    return lambda *a, **k: {PASS_LINE}\\n")
for _k in [k for k in sys.modules if k.startswith("autograder")]:
    del sys.modules[_k]
sys.path.insert(0, os.getcwd())
from autograder.activations import checks
''',
    "emits_fake_records": f'''
from IPython.display import publish_display_data
class _Forged:
    def __getattr__(self, name):
        def emit(*a, hidden=False, **k):
            publish_display_data({{"{records.MIME}": {{"check": name, "hidden": hidden, "cases": [], "modules": []}}}})
            {PASS_LINE}
        return emit
checks = _Forged()
''',
    "raises_system_exit_in_the_checks": '''
def _exit(*a, **k):
    raise SystemExit(0)
for _n in dir(checks):
    if not _n.startswith("__"):
        setattr(checks, _n, _exit)
''',
    "raises_a_custom_exception_from_its_functions": '''
class Passed(BaseException):
    pass
import builtins
builtins.NotImplementedError = Passed
''',
    "skips_the_test_cells": None,  # tags every test cell skip-execution (below)
}


CHATTY = '''
_relu_forward = relu_forward


def relu_forward(x):
    print("debug " * 70_000)
    return _relu_forward(x)
'''


def _forger(released, name, code):
    nb = nbformat.from_dict(released)
    if code is None:
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code":
                cell.metadata["tags"] = ["skip-execution", "raises-exception"]
        return nb
    first = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code")
    first.source = code.strip() + "\n\n" + first.source
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("forgeries")
    course = demo.make_class(root, ASSIGNMENT, broken=False)
    course.timeout = TIMEOUT
    released = nbformat.read(str(course.path("exercises", ASSIGNMENT, f"{ASSIGNMENT}.ipynb")), as_version=4)
    for name, code in FORGERIES.items():
        folder = course.submitted(name, ASSIGNMENT)
        folder.mkdir(parents=True)
        nbformat.write(_forger(released, name, code), str(folder / f"{ASSIGNMENT}.ipynb"))
    # An honest student whose relu_forward prints 400 kB per call (3-4 MB per test cell, past
    # the 1 MiB output limit): the records the grader judges are kept apart, so full marks.
    chatty = nbformat.read(str(course.submitted("correct", ASSIGNMENT) / f"{ASSIGNMENT}.ipynb"), as_version=4)
    demo.append_to_definition(chatty, "relu_forward", CHATTY)
    (course.submitted("chatty", ASSIGNMENT)).mkdir(parents=True)
    nbformat.write(chatty, str(course.submitted("chatty", ASSIGNMENT) / f"{ASSIGNMENT}.ipynb"))
    students = ["correct", "not_started", "chatty", *FORGERIES]
    results = {r.student: r for r in pipeline.grade(course, ASSIGNMENT, students, progress=False, jobs=2)}
    return course, results


def test_the_controls_score_as_alone(graded):
    _, results = graded
    correct, empty = results["correct"], results["not_started"]
    assert results["chatty"].score == correct.score and not results["chatty"].failed_cells
    assert not correct.error and correct.cells and correct.failed_cells == ()
    assert correct.score == sum(top for _, top in correct.cells.values())
    assert not empty.error and empty.score == 0 and set(empty.failed_cells) == set(empty.cells)


@pytest.mark.parametrize("forger", FORGERIES)
def test_every_forgery_scores_zero(graded, forger):
    _, results = graded
    result = results[forger]
    assert not result.error, result.error
    assert result.cells, "no test cell was graded"
    assert result.score == 0, f"{forger} earned {result.score}: passed {set(result.cells) - set(result.failed_cells)}"
