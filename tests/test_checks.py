"""The checks, run in-process on the solution, the released stubs and every mutant.

Fast: no kernel, no nbgrader. Each test cell's source (hidden tests included) is
executed in the namespace of the notebook's other cells, exactly as the autograder
would, and its outcome recorded.
"""
import pytest

import notebooks
from autograder.checking import CheckFailed
from autograder.mutants import for_assignment
from conftest import ASSIGNMENTS, release_path, solution_path


def run_tests(nb):
    """{test grade_id: None if passed, else the failure message}."""
    ns = notebooks.namespace(nb, skip_errors=True)
    outcome = {}
    for cell in nb.cells:
        if notebooks.is_test(cell):
            try:
                exec(cell.source, ns)
                outcome[notebooks.grade_id(cell)] = None
            except CheckFailed as exc:
                outcome[notebooks.grade_id(cell)] = str(exc)
            except Exception as exc:  # noqa: BLE001: anything else is also a failure
                outcome[notebooks.grade_id(cell)] = f"{type(exc).__name__}: {exc}"
    return outcome


@pytest.fixture(scope="module", params=ASSIGNMENTS)
def solution_outcome(request):
    nb = notebooks.load(solution_path(request.param))
    return request.param, nb, run_tests(nb)


def test_solution_passes_every_check(solution_outcome):
    _, _, outcome = solution_outcome
    assert outcome, "no test cells found"
    failed = {k: v for k, v in outcome.items() if v is not None}
    assert not failed


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_stubs_fail_every_check_with_not_implemented(assignment):
    # The released notebook has no hidden tests: put the solution's test cells back.
    solution = notebooks.load(solution_path(assignment))
    released = notebooks.load(release_path(assignment))
    tests = {notebooks.grade_id(c): c.source for c in solution.cells if notebooks.is_test(c)}
    for cell in released.cells:
        if notebooks.is_test(cell):
            cell.source = tests[notebooks.grade_id(cell)]
    outcome = run_tests(released)
    assert set(outcome) == set(tests)
    for name, message in outcome.items():
        assert message is not None, f"{name} passed on the released stub"
        assert "not implemented yet" in message, (name, message)


def mutant_params():
    return [pytest.param(a, m, id=f"{a}-{m.name}") for a in ASSIGNMENTS for m in for_assignment(a)]


@pytest.mark.parametrize("assignment, mutant", mutant_params())
def test_mutant_fails_only_its_layers_and_names_exactly_its_mistakes(assignment, mutant):
    nb = notebooks.with_mutant(notebooks.load(solution_path(assignment)), mutant)
    outcome = run_tests(nb)
    own = lambda name: any(name.startswith(f"test_{layer}_") for layer in mutant.layers)
    failed = {k: v for k, v in outcome.items() if v is not None}
    assert failed, "the mistake went unnoticed"
    capstones = {k for k in failed if k.startswith("capstone")}
    assert capstones == set(mutant.capstones), f"capstones failed: {sorted(capstones)}, expected {mutant.capstones}"
    assert all(own(k) for k in set(failed) - capstones), f"failed cells outside {mutant.layers}: {sorted(failed)}"
    for name, message in failed.items():
        if name in capstones:
            assert notebooks.clear_capstone_message(name, message), f"{name}:\n{message}"
            continue
        assert notebooks.named_mistakes(message) == set(mutant.mistakes), f"{name}:\n{message}"
        assert mutant.message in message, f"{name}:\n{message}"
