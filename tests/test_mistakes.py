"""Every registered mistake is reachable, recognised, and proven by a mutant or a test.

For each chapter, ``checking.registry`` lists every mistake its checks can name. A mistake
defined by a wrong reference (``wrong(case)``) is *replayed*: a record is built whose
values are the reference's on every input except one, where one output is the mistake's
wrong value; the judge must fail on it and name the mistake's id. That proves the mistake
shows on at least one input of the table and is told apart from the right answer. A
mistake recognised from a value's form (``observed``: shapes, warnings, dtypes) has no
values to replay: a mutant or a named unit test must trigger it.
"""
import dataclasses
import pathlib

import numpy as np
import pytest

from autograder import checking, records
from autograder.mutants import for_assignment
from conftest import ASSIGNMENTS

TESTS = pathlib.Path(__file__).parent

# Mistakes recognised from a value's form, and the unit test that triggers each (by name;
# the test must mention the id).
UNIT_TESTED = {
    "contract.in_place": "test_checking.py::test_check_forward_detects_inplace_modification_of_input",
    "contract.dout_modified": "test_checking.py::test_check_backward_detects_modified_dout",
    "contract.dtype": "test_checking.py::test_an_integer_mask_is_named_as_the_cause_of_float64",
    "contract.cache_mutated": "test_checking.py::test_a_backward_that_rewrites_the_cache_is_caught",
    "contract.integer_result": "test_mistakes.py::test_an_integer_result_is_named",
    "sigmoid.naive_overflow": "test_checking.py::test_check_forward_reports_numpy_overflow_as_naive_sigmoid",
}


def _checks(assignment):
    return checking.chapter_checks(assignment)


def _replayable(assignment):
    """{mistake id: (mistake, the checks that may name it)} for mistakes with a wrong reference."""
    out = {}
    for check in _checks(assignment).values():
        for m in check.mistakes():
            if m.wrong is not None:
                out.setdefault(m.id, (m, []))[1].append(check)
    return out


def _params():
    return [pytest.param(a, i, id=f"{a}-{i}") for a in ASSIGNMENTS for i in _replayable(a)]


def _compared(check, case, expected):
    """{output name: the reference's value} for the outputs ``check`` compares."""
    if hasattr(check, "compared"):  # a row kind of a chapter's own (autograder/transforms.py)
        return check.compared(case, expected)
    if isinstance(check, checking.ForwardCheck):
        return {"out": expected[0], **{s.what: expected[s.index] for s in check.row.state}}
    if isinstance(check, checking.BackwardCheck):
        return {f"d{name}": g for name, g in zip(case.grads, expected["grads"])}
    return {"value": expected}


def _observation(check, case, expected, wrong=None):
    """A record's observation with the reference's values (in the input's dtype, as a right
    answer has them), and ``wrong`` ({output: value}) swapped in."""
    wrong = wrong or {}
    right = {what: (value if what == "value" else np.asarray(value, dtype=case.dtype))
             for what, value in _compared(check, case, expected).items()}
    values = {**right, **wrong}
    if hasattr(check, "observation_of"):
        return check.observation_of(case, values)
    args = {k: (dict(v) if isinstance(v, dict) else v) for k, v in case.inputs.items()}
    if isinstance(check, checking.ForwardCheck):
        for state in check.row.state:
            args[state.arg][state.key] = values[state.what]
        return {"returned": "a tuple of 2", "out": values["out"], "args": args, "warnings": []}
    if isinstance(check, checking.BackwardCheck):
        grads = tuple(values[f"d{name}"] for name in case.grads)
        return {"returned": "a tuple of 2", "forward_out": np.asarray(expected["out"], dtype=case.dtype),
                "grads": grads if len(grads) > 1 else grads[0], "dout_modified": False, "args": args,
                "warnings": []}
    return {"value": values["value"], "args": args, "warnings": []}


def _encoded(observation):
    return {k: (v if k in ("warnings", "dout_modified") else records.encode(v)) for k, v in observation.items()}


def _wrong_values(mistake, check, case, expected):
    """The mistake's values for the outputs the check compares, where they differ from the reference."""
    right = _compared(check, case, expected)
    out = {}
    if not set(mistake.explains) & set(right):  # e.g. a backward mistake, on the forward check
        return out
    for what, value in mistake.wrong(case).items():
        value = value[0] if isinstance(value, list) else value
        if what in right and what in mistake.explains and value is not None:
            value = float(value) if what == "value" else np.asarray(value, dtype=case.dtype)
            if not checking.matches(value, right[what], case.dtype):
                out[what] = value
    return out


@pytest.mark.parametrize("assignment, mistake_id", _params())
def test_replaying_a_mistake_names_it(assignment, mistake_id):
    mistake, owners = _replayable(assignment)[mistake_id]
    shown = 0
    for check in owners:
        for hidden in (False, True):
            cases = check.cases(hidden)
            expected = [check.expected(c, hidden, i, check.compute_expected) for i, c in enumerate(cases)]
            for index, case in enumerate(cases):
                if isinstance(check, checking.BackwardCheck):
                    case = dataclasses.replace(case, dout=expected[index]["dout"])
                wrong = _wrong_values(mistake, check, case, expected[index]) if mistake.when(case) else {}
                if not wrong:
                    continue
                observations = [_observation(check, c, e) for c, e in zip(cases, expected)]
                observations[index] = _observation(check, case, expected[index], wrong)
                record = {"check": check.name, "hidden": hidden, "cases": [_encoded(o) for o in observations]}
                verdict = check.judge(record, hidden)
                assert not verdict.passed, f"{check.name}: the wrong values pass on {case.label}"
                assert mistake.id in verdict.mistakes, f"{check.name}, {case.label}:\n{verdict.text}"
                shown += 1
    assert shown, f"{mistake_id} shows on no input of {[c.name for c in owners]}: add one, or remove it"


def test_an_integer_result_is_named():
    from autograder.activations import checks
    from test_checking import _failure, relu_forward
    message = str(_failure(checks.relu_backward, relu_forward, lambda dout, x: (x > 0)))
    assert "likely mistake [contract.integer_result]" in message


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_registered_mistake_is_triggered_by_a_mutant_or_a_test(assignment):
    registered = checking.registry(_checks(assignment))
    by_mutant = {i for m in for_assignment(assignment) for i in m.mistakes}
    replayed = set(_replayable(assignment))
    unknown = by_mutant - set(registered)
    assert not unknown, f"mutants name mistakes that are not registered: {sorted(unknown)}"
    for id_, test in UNIT_TESTED.items():
        path, name = test.split("::")
        source = (TESTS / path).read_text()
        assert f"def {name}(" in source and id_ in source, f"{test} does not exist or does not mention {id_}"
    untested = set(registered) - by_mutant - replayed - set(UNIT_TESTED)
    assert not untested, f"mistakes no mutant or test triggers: {sorted(untested)}"
