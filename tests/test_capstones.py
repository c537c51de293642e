"""The capstones (autograder/capstone.py): the solution passes, forged records do not, misses are explained.

Each capstone runs the provided training with the student's functions in the kernel and records
its trajectory; the grader judges the stated outcomes and re-runs the training with the reference
functions. Here, in-process: the solution's record passes; records edited after the run (a
trajectory nudged to look right, an outcome claimed with made-up numbers, weights that do not
follow the law, missing or reshaped records, another check's record) fail with a message that says
why; a missed outcome names the outcome, the measured and the required value and what it suggests;
a student's exception or endless loop names the function and the step. The mutants that break a
capstone are in tests/test_checks.py and tests/test_grading.py (``Mutant.capstones``).
"""
import contextlib
import copy
import io
import subprocess
import sys
import time

import numpy as np
import pytest

import notebooks
from autograder import capstone, checking, records
from conftest import ASSIGNMENTS, solution_path

CAPSTONES = [(a, name) for a in ASSIGNMENTS for name, check in checking.chapter_checks(a).items()
             if isinstance(check, capstone.CapstoneCheck)]
KERNEL_SECONDS = 5.0  # measured 0.1-1.2 s each (benchmarks/RESULTS.md); room for a slow CI machine


@pytest.fixture(scope="module")
def solutions():
    found = {}
    for assignment in {a for a, _ in CAPSTONES}:
        with contextlib.redirect_stdout(io.StringIO()):  # the notebooks' demo cells print
            found[assignment] = notebooks.namespace(notebooks.load(solution_path(assignment)))
    return found


def _check(assignment, name):
    return checking.chapter_checks(assignment)[name]


def _run(check, namespace):
    start = time.perf_counter()
    record = check.run(tuple(namespace[f] for f in check.row.functions), False)
    return record, time.perf_counter() - start


@pytest.fixture(scope="module")
def solution_records(solutions):
    return {(a, n): _run(_check(a, n), solutions[a]) for a, n in CAPSTONES}


def _edited(record, **changes):
    """A copy of the record with some records replaced ({key: array})."""
    record = copy.deepcopy(record)
    for key, value in changes.items():
        record["records"][key] = records.encode(np.asarray(value))
    return record


def _decoded(record):
    return {k: records.decode(v) for k, v in record["records"].items()}


def test_every_assignment_of_chapters_1_to_4_has_a_capstone():
    assert {"activations", "preprocessing", "initialization", "normalization"} <= {a for a, _ in CAPSTONES}


@pytest.mark.parametrize("assignment, name", CAPSTONES)
def test_the_solution_passes_deterministically_and_fast(assignment, name, solution_records, solutions):
    check = _check(assignment, name)
    record, seconds = solution_records[(assignment, name)]
    assert "error" not in record, record.get("error")
    verdict = check.judge(record, False)
    assert verdict.passed, verdict.text
    assert verdict.text.startswith(f"✓ {name}: ") and "required" not in verdict.text
    assert seconds < KERNEL_SECONDS, f"{name} took {seconds:.1f} s in the kernel"
    again, _ = _run(check, solutions[assignment])
    assert again["records"] == record["records"]  # the same bytes: seeds, data and order are fixed


@pytest.mark.parametrize("assignment, name", CAPSTONES)
def test_a_trajectory_nudged_after_the_run_fails(assignment, name, solution_records):
    """Every record multiplied by 1 + 1e-4: the outcomes still hold, the run is not the reference's."""
    check = _check(assignment, name)
    record, _ = solution_records[(assignment, name)]
    found = _decoded(record)
    for key, value in found.items():
        if key.endswith("_weights"):  # the weights are the student's own draw: nothing to compare them with
            continue
        forged = _edited(record, **{key: value * (1 + 1e-4) + 1e-6})
        verdict = check.judge(forged, False)
        assert not verdict.passed, f"{name}: {key} nudged passes"
        assert "not the reference run" in verdict.text or "outcome not reached" in verdict.text, verdict.text


@pytest.mark.parametrize("assignment, name", CAPSTONES)
def test_missing_reshaped_or_foreign_records_fail(assignment, name, solution_records):
    check = _check(assignment, name)
    record, _ = solution_records[(assignment, name)]
    key = sorted(record["records"])[-1]
    missing = copy.deepcopy(record)
    del missing["records"][key]
    reshaped = _edited(record, **{key: np.zeros((2, 2))})
    foreign = dict(copy.deepcopy(record), check="relu_forward")
    not_array = copy.deepcopy(record)
    not_array["records"][key] = records.encode("fine")
    for forged in (missing, reshaped, foreign, not_array, {"check": name, "hidden": False}):
        verdict = check.judge(forged, False)
        assert not verdict.passed and verdict.text.startswith(f"{name}: "), verdict.text


def test_an_outcome_claimed_with_made_up_numbers_fails(solution_records):
    """The batch-norm capstone: a record whose no-BN run 'diverges' and whose BN run 'trains',
    made up rather than run, reaches every outcome and still fails."""
    check = _check("normalization", "capstone_batchnorm")
    record, _ = solution_records[("normalization", "capstone_batchnorm")]
    found = _decoded(record)
    steps = len(found["bn_losses"])
    forged = _edited(record, bn_losses=np.linspace(2.3, 0.1, steps), plain_losses=np.full(steps, 2.31))
    verdict = check.judge(forged, False)
    assert not verdict.passed and "not the reference run" in verdict.text
    assert "the loss without batch norm at training step 1" in verdict.text  # where, in words


def test_a_missed_outcome_says_what_was_measured_required_and_suggested(solution_records):
    check = _check("normalization", "capstone_batchnorm")
    record, _ = solution_records[("normalization", "capstone_batchnorm")]
    scores = _decoded(record)["eval_scores"]
    forged = _edited(record, eval_scores=np.zeros_like(scores) + np.arange(10))  # every example: class 9
    verdict = check.judge(forged, False)
    assert not verdict.passed
    lines = verdict.text.splitlines()
    assert lines[0] == "capstone_batchnorm: outcome not reached: test accuracy in test mode, one test example at a time."
    assert any(line.startswith("  measured  ") and "required >= 85.0%" in line for line in lines)
    assert any(line.startswith("  suggests  ") and "running_mean" in line for line in lines)


def test_weights_that_break_the_law_fail_even_with_a_consistent_run(solution_records):
    """Initialisation: weights 1.5 times too large, and the run re-done from them (so the trajectory
    is consistent): the grader tests the weights against torch.nn.init's law first."""
    from autograder.initialization import checks
    check = _check("initialization", "capstone_deep_net")
    record, _ = solution_records[("initialization", "capstone_deep_net")]
    found = _decoded(record)
    found["tanh_weights"] = (found["tanh_weights"] * 1.5).astype(np.float32)
    consistent = checks.deep_net_reference(found)
    forged = _edited(record, **consistent)
    verdict = check.judge(forged, False)
    assert not verdict.passed and "do not follow the law" in verdict.text
    assert "xavier_normal, hidden layer 1" in verdict.text and "expected N(0," in verdict.text


def test_a_stub_a_crash_and_a_loop_name_the_function(solutions, monkeypatch):
    check = _check("activations", "capstone_saturation")
    ns = solutions["activations"]

    def stub(x):
        raise NotImplementedError()

    def crash(dout, cache):
        out, x = cache  # the cache is one array: too many values to unpack
        return dout * out

    def loop(h, threshold=0.99):
        while True:
            pass

    verdict = check.judge(check.run((stub, ns["sigmoid_backward"], ns["saturation_fraction"]), False), False)
    assert not verdict.passed and "sigmoid_forward is not implemented yet" in verdict.text
    verdict = check.judge(check.run((ns["sigmoid_forward"], crash, ns["saturation_fraction"]), False), False)
    assert not verdict.passed and "sigmoid_backward raised ValueError" in verdict.text
    assert "during    the sigmoid net with gain 1" in verdict.text and "in crash" in verdict.text
    monkeypatch.setattr(capstone, "CALL_TIME_LIMIT", 0.5)
    verdict = check.judge(check.run((ns["sigmoid_forward"], ns["sigmoid_backward"], loop), False), False)
    assert not verdict.passed and verdict.text.startswith("capstone_saturation: the run did not finish within 0.5 s")


def test_the_kernel_side_imports_neither_torch_nor_scikit_learn():
    code = ("import sys, autograder.capstone; "
            + "; ".join(f"import autograder.{a}.checks" for a in {a for a, _ in CAPSTONES})
            + "; found = {'torch', 'sklearn'} & set(m.split('.')[0] for m in sys.modules); "
            "assert not found, found")
    subprocess.run([sys.executable, "-c", code], check=True)
