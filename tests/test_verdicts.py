"""TrustedVerdicts, the grader's preprocessor, on notebooks built in-process (fast, no kernel).

The test cells' outputs are what a kernel would have emitted (records made by running the
checks here in record mode, plus whatever a student's code printed); the preprocessor must
replace them with its own verdicts, and read the student's code for uses of the oracle.
"""
import copy

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

import notebooks
from autograder import checking, records
from autograder.verdicts import TrustedVerdicts, check_calls, oracle_uses
from conftest import solution_path

ASSIGNMENT = "activations"
RESOURCES = {"nbgrader": {"assignment": ASSIGNMENT, "student": "s", "notebook": ASSIGNMENT}}


def _executed(nb, monkeypatch):
    """The notebook as the grader gets it back: each test cell's outputs hold the records its
    checks emitted (run here, in record mode, on the notebook's own functions)."""
    ns = notebooks.namespace(nb, skip_errors=True)
    published = []
    shell = InteractiveShell.instance()
    monkeypatch.setattr(shell.display_pub, "publish", lambda data, **kw: published.append(data))
    monkeypatch.setenv(checking.RECORD_ENV, "1")
    # This test process has imported torch (other tests judged checks here); a kernel has not.
    monkeypatch.setattr(checking, "_oracle_modules", lambda: [])
    for cell in nb.cells:
        if notebooks.is_test(cell):
            published.clear()
            try:
                exec(cell.source, ns)
            except Exception as exc:  # noqa: BLE001 (a stub's NameError, say: recorded as an error output)
                cell.outputs = [nbformat.v4.new_output("error", ename=type(exc).__name__, evalue=str(exc),
                                                       traceback=[])]
                continue
            cell.outputs = [nbformat.v4.new_output("display_data", data=d) for d in published]
    return nb


def _judged(nb, policy="flag"):
    nb, _ = TrustedVerdicts(oracle_policy=policy).preprocess(copy.deepcopy(nb), RESOURCES)
    return {notebooks.grade_id(c): c for c in nb.cells if notebooks.is_test(c)}, nb.metadata["nn_course"]["flags"]


def _passed(cell):
    return cell.outputs and all(o.output_type == "stream" and o.text.startswith("✓") for o in cell.outputs)


@pytest.fixture(scope="module")
def solution():
    return notebooks.load(solution_path(ASSIGNMENT))


def test_the_solution_passes_every_cell(solution, monkeypatch):
    cells, flags = _judged(_executed(copy.deepcopy(solution), monkeypatch))
    assert cells and all(_passed(c) for c in cells.values())
    assert flags == []


def test_student_output_in_a_test_cell_is_replaced_by_the_verdict(solution, monkeypatch):
    nb = _executed(copy.deepcopy(solution), monkeypatch)
    cell = next(c for c in nb.cells if notebooks.grade_id(c) == "test_relu_forward")
    cell.outputs.insert(0, nbformat.v4.new_output("stream", name="stderr", text="WARNING: a log line\n"))
    cell.outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": "0.5"}, execution_count=1))
    cells, _ = _judged(nb)
    assert _passed(cells["test_relu_forward"])  # stderr and a value no longer cost (or earn) points


def test_a_missing_record_fails_and_says_why(solution, monkeypatch):
    nb = _executed(copy.deepcopy(solution), monkeypatch)
    for cell in nb.cells:
        if notebooks.grade_id(cell) == "test_relu_forward":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓ relu_forward passed\n")]
        if notebooks.grade_id(cell) == "test_tanh_forward":
            cell.outputs = [nbformat.v4.new_output("error", ename="NameError",
                                                   evalue="name 'tanh_forward' is not defined", traceback=[])]
    cells, _ = _judged(nb)
    relu = cells["test_relu_forward"].outputs
    assert [o.output_type for o in relu] == ["error"] and "results are missing" in relu[0].evalue
    assert "could not run: NameError: name 'tanh_forward' is not defined" in cells["test_tanh_forward"].outputs[0].evalue


def test_a_wrong_function_is_judged_with_the_diagnosis_and_its_id_stored(solution, monkeypatch):
    from autograder.mutants import for_assignment
    mutant = next(m for m in for_assignment("activations") if m.name == "relu_grad_at_zero")
    cells, _ = _judged(_executed(notebooks.with_mutant(solution, mutant), monkeypatch))
    cell = cells["test_relu_backward"]
    assert cell.outputs[-1].output_type == "error" and "likely mistake [relu.grad_at_zero]" in cell.outputs[-1].evalue
    assert cell.metadata["nn_course"]["mistakes"] == ["relu.grad_at_zero"]
    assert _passed(cells["test_relu_forward"])


TORCH_SOLUTION = '''
import torch as T


def _ref(x):
    return T.relu(T.tensor(x)).numpy()


def relu_forward(x):
    return _ref(x), x
'''


def test_oracle_use_is_flagged_and_can_score_zero(solution, monkeypatch):
    nb = notebooks.with_mutant(solution, type("M", (), {"function": "relu_forward", "source": TORCH_SOLUTION})())
    tainted = oracle_uses(nb)
    assert tainted["T"] == "imports torch"
    assert "relu_forward" in tainted and "_ref" in tainted  # through the helper that uses torch
    executed = _executed(nb, monkeypatch)
    cells, flags = _judged(executed)
    assert _passed(cells["test_relu_forward"])  # flagged only, by default
    assert any(f.startswith("relu_forward: uses _ref") for f in flags), flags
    cells, _ = _judged(executed, policy="zero")
    assert "scored 0 by the course's rules" in cells["test_relu_forward"].outputs[0].evalue
    assert _passed(cells["test_sigmoid_forward"])  # only that function's cells


@pytest.mark.parametrize("source, flagged", [
    ("from autograder.activations import reference\ndef relu_forward(x):\n    return reference.relu(x), x", True),
    ("def relu_forward(x):\n    return eval('__import__(\"torch\")'), x", True),
    ("from sklearn.decomposition import PCA\ndef relu_forward(x):\n    return PCA(2).fit(x), x", True),
    ("import numpy as np\ndef relu_forward(x):\n    return np.maximum(x, 0), x", False),
    ("checks.relu_forward(relu_forward)  # students try their checks in their own cells", False),
])
def test_oracle_scan(source, flagged):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    assert ("relu_forward" in oracle_uses(nb)) is flagged


def test_check_calls_are_read_from_the_source_in_order():
    cell = nbformat.v4.new_code_cell("checks.a(f)\n### BEGIN HIDDEN TESTS\nchecks.a(f, g, hidden=True)\n### END HIDDEN TESTS")
    assert check_calls(cell) == [("a", False, ["f"]), ("a", True, ["f", "g"])]


def test_forged_records_with_wrong_numbers_fail(solution, monkeypatch):
    nb = _executed(copy.deepcopy(solution), monkeypatch)
    cell = next(c for c in nb.cells if notebooks.grade_id(c) == "test_relu_forward")
    record = cell.outputs[0].data[records.MIME]
    for observation in record["cases"]:
        observation["out"] = records.encode(records.decode(observation["out"]) + 1)
    cells, _ = _judged(nb)
    assert cells["test_relu_forward"].outputs[0].output_type == "error"


def test_torch_imported_in_the_kernel_is_flagged(solution, monkeypatch):
    nb = _executed(copy.deepcopy(solution), monkeypatch)
    cell = next(c for c in nb.cells if notebooks.grade_id(c) == "test_relu_forward")
    cell.outputs[0].data[records.MIME]["modules"] = ["torch"]
    _, flags = _judged(nb)
    assert flags == ["the kernel imported torch while grading"]


def test_records_outside_test_cells_are_dropped(solution, monkeypatch):
    nb = _executed(copy.deepcopy(solution), monkeypatch)
    record = next(c for c in nb.cells if notebooks.grade_id(c) == "test_relu_forward").outputs[0]
    own = next(c for c in nb.cells if notebooks.grade_id(c) == "relu")  # the student's own cell called a check
    own.outputs = [record, nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    judged, _ = TrustedVerdicts().preprocess(copy.deepcopy(nb), RESOURCES)
    own = next(c for c in judged.cells if notebooks.grade_id(c) == "relu")
    assert [o.output_type for o in own.outputs] == ["stream"]


def test_an_assignment_without_checks_keeps_nbgraders_verdicts_and_a_broken_one_stops(monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    resources = {"nbgrader": {"assignment": "no_such_chapter"}}
    assert TrustedVerdicts().preprocess(copy.deepcopy(nb), resources)[0] == nb

    def broken(assignment):
        raise ModuleNotFoundError("No module named 'scipy.missing'", name="scipy.missing")
    monkeypatch.setattr("autograder.verdicts.chapter_checks", broken)
    with pytest.raises(ModuleNotFoundError):
        TrustedVerdicts().preprocess(copy.deepcopy(nb), RESOURCES)
