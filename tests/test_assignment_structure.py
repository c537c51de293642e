"""Lint for assignments: what a contributor's new exercise must have for CI to trust it."""
import importlib

import pytest

import notebooks
from autograder.mutants import for_assignment
from conftest import ASSIGNMENTS, solution_path


def meta(cell):
    return cell.metadata.get("nbgrader", {})


@pytest.fixture(params=ASSIGNMENTS)
def solution(request):
    return request.param, notebooks.load(solution_path(request.param))


def test_grade_ids_are_unique(solution):
    _, nb = solution
    ids = [meta(c)["grade_id"] for c in nb.cells if meta(c).get("grade_id")]
    assert len(ids) == len(set(ids))


def test_every_test_cell_calls_a_check_publicly_and_hidden(solution):
    _, nb = solution
    tests = [c for c in nb.cells if notebooks.is_test(c)]
    assert tests
    for cell in tests:
        public, _, rest = cell.source.partition("### BEGIN HIDDEN TESTS")
        assert "checks." in public, f"{notebooks.grade_id(cell)}: no public check"
        if notebooks.grade_id(cell).startswith("capstone"):  # one run, graded on its outcome: nothing hidden
            assert "hidden=True" not in cell.source and meta(cell).get("points", 0) >= 2, notebooks.grade_id(cell)
        else:
            assert "hidden=True" in rest and "### END HIDDEN TESTS" in rest, f"{notebooks.grade_id(cell)}: no hidden check"
        assert meta(cell).get("points", 0) > 0 and meta(cell).get("locked")


def test_every_public_check_is_used(solution):
    assignment, nb = solution
    checks = importlib.import_module(f"autograder.{assignment}.checks")
    used = "\n".join(c.source for c in nb.cells if notebooks.is_test(c))
    public = sorted(checks.CHECKS)
    assert public
    unused = [name for name in public if f"checks.{name}(" not in used]
    assert not unused, f"checks never called by a test cell: {unused}"


def test_solution_cells_have_solution_markers(solution):
    _, nb = solution
    for cell in nb.cells:
        if meta(cell).get("solution") and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source, notebooks.grade_id(cell)


def test_there_are_written_answers(solution):
    _, nb = solution
    answers = [c for c in nb.cells if c.cell_type == "markdown" and meta(c).get("solution") and meta(c).get("grade")]
    assert 1 <= len(answers) <= 3


def test_mutants_name_existing_layers_and_functions(solution):
    assignment, nb = solution
    mutants = for_assignment(assignment)
    assert mutants, "every assignment needs its diagnosed mistakes as mutants"
    test_ids = [notebooks.grade_id(c) for c in nb.cells if notebooks.is_test(c)]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert len({m.name for m in mutants}) == len(mutants)
    for m in mutants:
        assert f"def {m.function}(" in code, m.name
        for layer in m.layers:
            assert any(t.startswith(f"test_{layer}_") for t in test_ids), (m.name, layer)
        assert set(m.capstones) <= set(test_ids), (m.name, m.capstones)


def test_docstrings_point_to_pages_that_exist():
    """d2l-style: each function's docstring names the book page that explains it."""
    import re
    from conftest import ROOT
    package = ROOT / "autograder"
    cited = {(path.name, page) for path in package.rglob("*.py")
             for page in re.findall(r"book/[\w/-]+\.md", path.read_text())}
    assert cited
    missing = sorted((name, page) for name, page in cited if not (ROOT / page).exists())
    assert not missing, missing


def test_notebook_builder_writes_a_valid_nbgrader_source(tmp_path):
    from nbgrader.validator import Validator
    from autograder import notebook_builder as nb
    path = tmp_path / "tiny.ipynb"
    nb.write([
        nb.md("# A tiny assignment"),
        nb.code("import numpy as np", "setup"),
        nb.solution("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION", "double"),
        nb.test("assert double(2) == 4\n### BEGIN HIDDEN TESTS\nassert double(3) == 6\n### END HIDDEN TESTS",
                "test_double", 1),
        nb.answer("Why?", "answer_why", 1),
    ], path)
    cells = notebooks.load(path).cells
    assert [meta(c).get("grade_id") for c in cells] == [None, "setup", "double", "test_double", "answer_why"]
    assert Validator().validate(str(path)) == {}
