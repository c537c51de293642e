"""Contracts of the checker engine (``autograder.checking``) and of ``autograder.gradcheck``.

Driven through the chapter-1 checks (``autograder.activations.checks``) with small student
functions written inline, right or wrong on purpose. Every test asserts something that a
plausible regression of the engine would break: the message a student reads, the input
that is caught, the upstream gradient that is used.
"""
import inspect
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from autograder import checking, gradcheck, numerics, records
from autograder.activations import checks
from autograder.checking import CheckFailed
from notebooks import named_mistakes as notebook_ids

ANSI = re.compile(r"\x1b\[[0-9;]*m")
REPORT = re.compile(r"✓ (\w+) passed (\d+) cases \(max relative error ([^)]+)\)")


def _passes(capsys, check, *student, **options):
    """Run a public check that must pass. It prints its one-line report and returns None (a
    test cell must not end with a value: nbgrader would read it as partial credit).
    Returns (function name, number of cases, max relative error) read from the report."""
    capsys.readouterr()
    assert check(*student, **options) is None
    printed = capsys.readouterr().out
    match = REPORT.fullmatch(printed.strip())
    assert match, printed
    return match[1], int(match[2]), float(match[3])


def _failure(check, *student):
    """Run a check that must fail; return its CheckFailed."""
    with pytest.raises(CheckFailed) as info:
        check(*student)
    return info.value


def _frame(func, text):
    """How the engine shows the line of ``func`` containing ``text`` (see checking._student_frames)."""
    lines, start = inspect.getsourcelines(func)
    i = next(i for i, line in enumerate(lines) if text in line)
    return f"  in {func.__name__}, line {start + i}: {lines[i].strip()}"


# ---------------------------------------------------------------- students


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, x):
    return dout * (x > 0)


def relu_backward_at_zero(dout, x):
    return dout * (x >= 0)  # the classic mistake: x == 0 taken as positive


def relu_forward_inplace(x):
    x[x < 0] = 0
    return x, x


def relu_forward_float64(x):
    return np.maximum(x, 0).astype(np.float64), x


def relu_forward_flat(x):
    return np.maximum(x, 0).reshape(-1), x


def relu_forward_list(x):
    return np.maximum(x, 0).tolist(), x


def relu_forward_raises(x):
    out = x @ np.ones((3, 3))  # shapes do not match: numpy raises from this line
    return out, x


def _helper(x):
    return x[:, 99]  # IndexError two frames down


def relu_forward_raises_in_helper(x):
    out = _helper(x) + 1
    return out, x


def relu_forward_reshape(x):
    out = np.reshape(x, (7,))  # raises inside numpy's Python code (fromnumeric.py)
    return out, x


def relu_forward_stub(x):
    raise NotImplementedError()


def sigmoid_forward_naive(x):
    out = 1 / (1 + np.exp(-x))
    return out, out


def sigmoid_forward_stable(x):
    out = np.exp(-np.logaddexp(0, -x))
    return out, out


# ---------------------------------------------------------------- rel_error


def _cs231n_rel_error(x, y):
    """As in CS231n's assignments."""
    return np.max(np.abs(x - y) / (np.maximum(1e-8, np.abs(x) + np.abs(y))))


def test_one_rel_error_for_the_course():
    assert checking.rel_error is numerics.rel_error and gradcheck.rel_error is numerics.rel_error


def test_rel_error_is_cs231n_formula():
    rel_error = numerics.rel_error
    rng = np.random.default_rng(0)
    for scale in (1e-12, 1e-6, 1.0, 1e6):
        a = scale * rng.standard_normal((5, 4))
        b = a + scale * 1e-3 * rng.standard_normal((5, 4))
        assert rel_error(a, b) == pytest.approx(_cs231n_rel_error(a, b), rel=1e-15, abs=0)
    # worked by hand: the elementwise maximum, the 1e-8 floor, symmetric
    assert rel_error(np.array([1.0, 2.0]), np.array([1.1, 2.0])) == pytest.approx(0.1 / 2.1, rel=1e-12)
    assert rel_error(np.array([1e-10]), np.array([0.0])) == pytest.approx(1e-2, rel=1e-12)
    assert rel_error(np.array([0.0]), np.array([0.0])) == 0.0
    assert rel_error(np.array([3.0]), np.array([-3.0])) == 1.0
    assert rel_error(np.array([1.0, 5.0]), np.array([2.0, 5.0])) == rel_error(np.array([2.0, 5.0]),
                                                                             np.array([1.0, 5.0]))


def test_rel_error_nan_handling():
    nan = np.nan
    assert checking.rel_error(np.array([nan, 1.0]), np.array([nan, 1.0])) == 0.0  # NaN where expected
    assert checking.rel_error(np.array([nan, 1.0]), np.array([1.0, 1.0])) == np.inf  # a NaN is never right


# ---------------------------------------------------------------- how failures are shown


def test_render_traceback_is_the_message_only():
    exc = _failure(checks.relu_forward, relu_forward_flat)
    assert exc.__traceback__ is not None  # there is a traceback to hide
    message_lines = str(exc).splitlines()
    assert len(message_lines) >= 2

    rendered = [ANSI.sub("", line) for line in exc._render_traceback_()]
    assert rendered == [f"✗ {message_lines[0]}", *message_lines[1:]]
    assert not any(line.lstrip().startswith(("File ", "Traceback")) for line in rendered)
    assert not any("checking.py" in line or "site-packages" in line for line in rendered)


def test_ipython_shows_the_message_only(capsys):
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    from traitlets.config import Config

    shell = interactiveshell.InteractiveShell.instance(config=Config(HistoryManager={"enabled": False}))
    shell.user_ns.update(checks=checks, relu_forward_flat=relu_forward_flat)
    result = shell.run_cell("checks.relu_forward(relu_forward_flat)")
    printed = ANSI.sub("", capsys.readouterr().out)

    assert isinstance(result.error_in_exec, CheckFailed)
    assert printed.splitlines() == ["✗ " + str(result.error_in_exec).splitlines()[0],
                                    *str(result.error_in_exec).splitlines()[1:]]
    assert "Traceback" not in printed and "File " not in printed


def test_student_exception_shows_student_line_only():
    exc = _failure(checks.relu_forward, relu_forward_raises)
    message = str(exc)

    assert message.startswith("relu_forward raised ValueError: ")
    assert "  input     x (4, 5) float64" in message
    assert message.splitlines()[-1] == _frame(relu_forward_raises, "x @ np.ones")
    # no frame of the package: not the engine's functions, not its files
    for ours in ("call_student", "run_case", "judge", "checking.py", "checks.py", "autograder"):
        assert ours not in message
    assert exc.__cause__ is None and exc.__context__ is None  # raised by the judge, not from the student's error


def test_student_exception_in_a_helper_shows_both_student_frames():
    message = str(_failure(checks.relu_forward, relu_forward_raises_in_helper))
    assert message.startswith("relu_forward raised IndexError: ")
    assert message.splitlines()[-2:] == [_frame(relu_forward_raises_in_helper, "out = _helper"),
                                         _frame(_helper, "x[:, 99]")]


def test_student_exception_inside_numpy_still_shows_student_line():
    message = str(_failure(checks.relu_forward, relu_forward_reshape))
    assert _frame(relu_forward_reshape, "np.reshape") in message.splitlines()


def test_not_implemented_stub():
    message = str(_failure(checks.relu_forward, relu_forward_stub))
    assert "relu_forward is not implemented yet" in message
    assert "raise NotImplementedError()" in message  # tells the student what to replace
    assert "raised NotImplementedError" not in message  # not reported as a crash
    message = str(_failure(checks.relu_backward, relu_forward, lambda dout, cache: relu_forward_stub(dout)))
    assert "relu_backward is not implemented yet" in message


# ---------------------------------------------------------------- check_forward


def test_check_forward_passes_a_correct_function(capsys):
    name, cases, max_error = _passes(capsys, checks.relu_forward, relu_forward)
    assert name == "relu_forward"
    assert cases == len(checks.relu_forward.cases(False))  # every public case of the table
    assert max_error == 0.0
    assert _passes(capsys, checks.relu_forward, relu_forward, hidden=True)[1] > cases


def test_check_forward_detects_inplace_modification_of_input():
    message = str(_failure(checks.relu_forward, relu_forward_inplace))
    assert "relu_forward: modified its input `x` in place." in message
    assert "likely mistake [contract.in_place]: in-place update of an input" in message


def test_check_forward_detects_changed_dtype():
    message = str(_failure(checks.relu_forward, relu_forward_float64))
    assert "out has dtype float64, expected float32 (the input's dtype); its values are right." in message
    assert "input     x (4, 5) float32" in message  # passes the float64 cases, fails the float32 one
    assert "likely mistake [contract.dtype]: float32 input, float64 result" in message
    assert "integer mask" in message  # names the usual cause


def test_check_forward_detects_wrong_shape():
    message = str(_failure(checks.relu_forward, relu_forward_flat))
    assert "out has shape (20,), expected (4, 5)." in message


def test_check_forward_detects_non_array():
    message = str(_failure(checks.relu_forward, relu_forward_list))
    assert "out must be a numpy array, got list." in message


def test_check_forward_detects_wrong_values():
    message = str(_failure(checks.relu_forward, lambda x: (np.abs(x), x)))
    assert "relu_forward: out is wrong." in message
    assert re.search(r"relative error \S+ \(expected below 1e-07 for float64\)", message)
    assert re.search(r"  got       out\[\d+, \d+\] = ", message)


def test_check_forward_reports_numpy_overflow_as_naive_sigmoid(capsys):
    message = str(_failure(checks.sigmoid_forward, sigmoid_forward_naive))
    assert "sigmoid_forward: numpy warned: overflow encountered in exp." in message
    assert "+-1000" in message  # names the input that overflowed
    assert "likely mistake [sigmoid.naive_overflow]: naive 1/(1 + exp(-x)) overflows" in message
    # the stable form passes the same cases, warnings and all
    assert _passes(capsys, checks.sigmoid_forward, sigmoid_forward_stable)[1] == len(checks.sigmoid_forward.cases(False))


def test_check_forward_wrong_return_arity():
    message = str(_failure(checks.relu_forward, lambda x: (np.maximum(x, 0), x, x)))
    assert "must return a tuple (out, cache); got a tuple of 3." in message


# ---------------------------------------------------------------- check_backward


def test_check_backward_passes_correct_relu(capsys):
    name, cases, max_error = _passes(capsys, checks.relu_backward, relu_forward, relu_backward)
    assert name == "relu_backward"
    assert cases == len(checks.relu_backward.cases(False))
    assert max_error <= checking.TOL[np.dtype(np.float64)]
    assert _passes(capsys, checks.relu_backward, relu_forward, relu_backward, hidden=True)[1] > cases


def test_check_backward_names_relu_gradient_at_zero():
    message = str(_failure(checks.relu_backward, relu_forward, relu_backward_at_zero))
    assert "relu_backward: dx is wrong." in message
    assert "with exact zeros" in message
    assert "likely mistake [relu.grad_at_zero]: gradient of ReLU at exactly 0" in message
    assert "`x > 0`, not `x >= 0`" in message


def test_check_backward_upstream_gradient_is_random(capsys):
    seen = []

    def recording_backward(dout, x):
        seen.append(dout.copy())
        return relu_backward(dout, x)

    _passes(capsys, checks.relu_backward, relu_forward, recording_backward)
    cases = checks.relu_backward.cases(False)
    assert len(seen) == len(cases)
    for dout, case in zip(seen, cases):
        assert dout.shape == case.inputs["x"].shape and dout.dtype == case.dtype
        assert not np.all(dout == 1.0)
        assert len(np.unique(dout)) == dout.size  # no repeated value: not a constant
        assert (dout < 0).any() and (dout > 0).any()
        assert np.array_equal(dout, checking.random_upstream(dout.shape, case.seed).astype(case.dtype))


def test_check_backward_fails_a_backward_that_ignores_dout():
    """Right for dout = 1 only: a random upstream gradient catches it."""
    message = str(_failure(checks.relu_backward, relu_forward,
                           lambda dout, x: (x > 0).astype(x.dtype)))
    assert "relu_backward: dx is wrong." in message


def test_check_backward_detects_modified_dout():
    def backward_inplace(dout, x):
        dout[x <= 0] = 0
        return dout

    message = str(_failure(checks.relu_backward, relu_forward, backward_inplace))
    assert "relu_backward: modified `dout` in place." in message
    assert "likely mistake [contract.dout_modified]" in message


# ---------------------------------------------------------------- check_value


def test_check_value_saturation_fraction(capsys):
    assert (_passes(capsys, checks.saturation_fraction, lambda h, t: np.mean(np.abs(h) > t))[1]
            == len(checks.saturation_fraction.cases(False)))
    message = str(_failure(checks.saturation_fraction, lambda h, t: np.mean(np.abs(h) >= t)))
    assert "saturation_fraction: returned the wrong value." in message
    assert "likely mistake [saturation.non_strict_threshold]: |h| >= threshold counted as saturated" in message


def test_check_value_dead_unit_fraction(capsys):
    assert (_passes(capsys, checks.dead_unit_fraction, lambda pre: np.mean(np.all(pre <= 0, axis=0)))[1]
            == len(checks.dead_unit_fraction.cases(False)))
    message = str(_failure(checks.dead_unit_fraction, lambda pre: np.mean(np.all(pre < 0, axis=0))))
    assert "likely mistake [dead_units.zero_counted_alive]: a unit with pre-activation exactly 0 counted as alive" in message


# ---------------------------------------------------------------- gradcheck.gradient_check


def _prelu_forward(x, alpha):
    a = alpha.reshape(1, -1)
    return np.where(x > 0, x, a * x), (x, a)


def _prelu_backward(dout, cache):
    x, a = cache
    return np.where(x > 0, dout, a * dout), np.where(x > 0, 0.0, x * dout).sum(axis=0)


def _prelu_backward_averaged(dout, cache):
    dx, dalpha = _prelu_backward(dout, cache)
    return dx, dalpha / dout.shape[0]


def _inputs_away_from_zero(seed, shape):
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)  # no kink within h = 1e-5 of an entry


def test_gradient_check_small_for_correct_relu(capsys):
    x = _inputs_away_from_zero(0, (4, 5))
    errors = gradcheck.gradient_check(relu_forward, relu_backward, {"x": x})
    assert set(errors) == {"x"}
    assert errors["x"] < 1e-8
    printed = capsys.readouterr().out
    assert printed.startswith("dx: relative error") and "(ok)" in printed


def test_gradient_check_large_for_wrong_relu(capsys):
    x = _inputs_away_from_zero(0, (4, 5))
    errors = gradcheck.gradient_check(relu_forward, lambda dout, x: dout, {"x": x})  # forgot the mask
    assert errors["x"] > 1e-3
    assert "CHECK THIS" in capsys.readouterr().out


def test_gradient_check_two_inputs():
    x, alpha = _inputs_away_from_zero(1, (6, 3)), np.array([0.1, 0.25, 0.4])
    errors = gradcheck.gradient_check(_prelu_forward, _prelu_backward, {"x": x, "alpha": alpha},
                                      wrt=("x", "alpha"), verbose=False)
    assert errors["x"] < 1e-8 and errors["alpha"] < 1e-8
    errors = gradcheck.gradient_check(_prelu_forward, _prelu_backward_averaged, {"x": x, "alpha": alpha},
                                      wrt=("x", "alpha"), verbose=False)
    assert errors["x"] < 1e-8 and errors["alpha"] > 1e-3


def test_gradient_check_leaves_inputs_unchanged():
    x = _inputs_away_from_zero(2, (3, 4)).astype(np.float32)
    before = x.copy()
    gradcheck.gradient_check(relu_forward, relu_backward, {"x": x}, verbose=False)
    assert np.array_equal(x, before) and x.dtype == np.float32


def test_gradient_check_flags_a_gradient_of_the_wrong_shape(capsys):
    forward = lambda x: (x.sum(axis=1), x.shape)
    backward = lambda dout, shape: dout[:, None]  # (N, 1): broadcasts, but is not dx
    errors = gradcheck.gradient_check(forward, backward, {"x": np.ones((3, 4))})
    assert errors["x"] == float("inf") and "CHECK THIS" in capsys.readouterr().out


def test_gradient_check_refuses_missing_gradients():
    forward = lambda x, a: (x * a, (x, a))
    backward = lambda dout, cache: dout * cache[1]  # dx only: da is missing
    with pytest.raises(ValueError, match="returned 1 gradient"):
        gradcheck.gradient_check(forward, backward, {"x": np.ones(3), "a": np.ones(3)}, wrt=("x", "a"))


def test_an_endless_loop_is_stopped_and_named(monkeypatch):
    monkeypatch.setattr(checking, "CALL_TIME_LIMIT", 0.2)

    def relu_forward(x):
        while True:  # a student's bug
            try:
                x = x + 0
            except Exception:
                pass

    with pytest.raises(CheckFailed) as info:
        checks.relu_forward(relu_forward)
    message = str(info.value)
    assert "relu_forward did not return within 0.2 s" in message and "in relu_forward, line" in message


# ---------------------------------------------------------------- run in the kernel, judge in the grader


def _record(check, *student, hidden=False):
    """What the kernel emits: the record, through JSON as in a notebook's output."""
    return json.loads(json.dumps(check.run(student, hidden)))


def test_a_record_judged_elsewhere_gives_the_same_verdict():
    for student, passes in [((relu_forward, relu_backward), True), ((relu_forward, relu_backward_at_zero), False)]:
        verdict = checks.relu_backward.judge(_record(checks.relu_backward, *student), False)
        assert verdict.passed is passes
        if not passes:
            assert verdict.mistakes == ("relu.grad_at_zero",)
            assert verdict.text == str(_failure(checks.relu_backward, *student))


def test_running_a_check_in_the_kernel_needs_no_torch():
    """With NN_COURSE_RECORD=1 the check only records: torch is never imported."""
    code = (
        "import sys, json, numpy as np\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "published = []\n"
        "InteractiveShell.instance().display_pub.publish = lambda data, **kw: published.append(data)\n"
        "from autograder.activations import checks\n"
        "checks.relu_forward(lambda x: (np.maximum(x, 0), x))\n"
        "(data,) = published\n"
        "record = data['application/vnd.nn-course.check-record+json']\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'check': record['check'], 'cases': len(record['cases'])}))\n"
    )
    env = {**os.environ, "NN_COURSE_RECORD": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert json.loads(out.splitlines()[-1]) == {"torch": False, "check": "relu_forward", "cases": 3}


def test_a_forged_record_passes_only_with_the_right_numbers():
    """Only computing the function earns the points: a forger who copies the
    reference's numbers into a record passes; any other record fails."""
    record = _record(checks.relu_forward, lambda x: (np.zeros_like(x), x))
    assert not checks.relu_forward.judge(record, False).passed
    for case, observation in zip(checks.relu_forward.cases(False), record["cases"]):
        observation["out"] = records.encode(np.maximum(case.inputs["x"], 0))
    assert checks.relu_forward.judge(record, False).passed


@pytest.mark.parametrize("tamper, says", [
    (lambda r: r.update(check="relu_backward"), "belong to another check"),
    (lambda r: r.update(hidden=True), "belong to another check"),
    (lambda r: r["cases"].pop(), "results are missing"),
    (lambda r: r["cases"][0]["out"]["array"].update(data="AAAA"), "does not match its shape"),
    (lambda r: r["cases"][0]["out"]["array"].update(dtype="|O"), "malformed array"),
    (lambda r: r["cases"][0].update(out={"pickle": "gASV"}), "malformed value"),
    (lambda r: r.update(cases="✓"), "no cases"),
])
def test_a_tampered_record_fails_with_a_message(tamper, says):
    record = _record(checks.relu_forward, relu_forward)
    tamper(record)
    verdict = checks.relu_forward.judge(record, False)
    assert not verdict.passed and says in verdict.text


def test_records_never_unpickle():
    assert records.decode(records.encode(np.arange(3.0))).tolist() == [0.0, 1.0, 2.0]
    assert isinstance(records.decode(records.encode(np.arange(3, dtype=object))), records.Opaque)
    assert isinstance(records.decode(records.encode(object())), records.Opaque)
    with pytest.raises(records.RecordError):
        records.decode({"array": {"dtype": "<f8", "shape": [10 ** 7], "data": ""}})


# ---------------------------------------------------------------- what real students' code showed


def test_a_backward_that_rewrites_the_cache_is_caught():
    """`mask = x; mask[...] = 0/1` turns the caller's input into a mask (a real CS231n bug)."""
    def backward(dout, x):
        mask = x
        mask[mask <= 0] = 0
        mask[mask > 0] = 1
        return dout * mask

    message = str(_failure(checks.relu_backward, relu_forward, backward))
    assert "the array `x` given to relu_forward was changed in place" in message
    assert notebook_ids(message) == {"contract.cache_mutated"}


def test_fix_the_forward_first_only_when_it_explains_the_backward():
    wrong_forward = lambda x: (np.abs(x), x)
    returns_zero = str(_failure(checks.relu_backward, wrong_forward, lambda dout, x: 0))
    assert "dx must be a numpy array, got int." in returns_zero
    assert "relu_forward" not in returns_zero  # the backward's own mistake: no blame on the forward
    wrong_values = str(_failure(checks.relu_backward, wrong_forward, lambda dout, x: dout * (x < 0)))
    assert "relu_backward: dx is wrong." in wrong_values
    assert "relu_forward's out is wrong on this input too" in wrong_values


def test_an_integer_mask_is_named_as_the_cause_of_float64():
    message = str(_failure(checks.relu_backward, relu_forward, lambda dout, x: dout * (x > 0).astype(int)))
    assert "dx has dtype float64, expected float32" in message
    assert notebook_ids(message) == {"contract.dtype"}


def test_every_difference_on_an_input_is_named_at_once():
    def forward(x):  # changes its input AND returns the wrong values
        x[0] = 0
        return np.abs(x), x

    message = str(_failure(checks.relu_forward, forward))
    assert message.startswith("relu_forward: modified its input `x` in place.")
    assert "  and also: out is wrong." in message


def test_mistakes_are_declared_with_what_they_explain_and_ids_are_unique():
    with pytest.raises(ValueError, match="explains"):
        checking.Mistake("x.y", "title", "advice", wrong=lambda case: {})
    duplicate = checking.Mistake("relu.grad_at_zero", "t", "a", wrong=lambda case: {}, explains=("dx",))
    row = checking.Layer("relu", "relu", checks.SHAPES, checks.make_elementwise, [checks.RELU_AT_ZERO, duplicate])
    with pytest.raises(ValueError, match="defined twice"):
        checking.registry(checking.build("autograder.activations.checks", [row]))
