"""The checker engine shared by every chapter.

A check calls the student's function on a list of :class:`Case` inputs, compares
the result with a torch reference and, on the first disagreement, raises
:class:`CheckFailed` with a message written for a student: which function, which
input, expected vs got, the relative error and the range expected, and the likely
mistake by name (see :class:`Mistake`).

Messages never show a traceback into this package: ``CheckFailed`` renders itself
in IPython as its message alone (``_render_traceback_``), and errors raised by the
student's code are reported with the student's own frames only.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import os
import signal
import sysconfig
import threading
import time
import traceback
import warnings
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

# Relative-error limits (CS231n's elementwise relative error, see rel_error).
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_DIRS = tuple({os.path.abspath(p) for p in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                                     sysconfig.get_paths()["platlib"], np.__file__.rsplit(os.sep, 2)[0])})

TOL = {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 1e-3}


class CheckFailed(AssertionError):
    """A check failed. In a notebook, only the message is shown (no traceback)."""

    def _render_traceback_(self):
        lines = str(self).splitlines() or [""]
        return [f"\x1b[0;31m✗ {lines[0]}\x1b[0m", *lines[1:]]


@dataclasses.dataclass
class Case:
    """One input to a checked function.

    label:   what a student should read about this input ("x (4, 5) float64 with exact zeros")
    inputs:  positional arguments by name (arrays, numbers, dicts), in call order
    grads:   names of the inputs the backward pass returns gradients for, in order
    tags:    free-form flags that diagnoses look at ("zeros", "ties", "large")
    """

    label: str
    inputs: dict
    grads: tuple = ("x",)
    tags: frozenset = frozenset()
    seed: int = 0
    dout: Any = None  # set by check_backward: the upstream gradient used

    @property
    def dtype(self):
        return np.asarray(next(iter(self.inputs.values()))).dtype


@dataclasses.dataclass
class Mistake:
    """A recognisable wrong implementation.

    name:     short name shown to the student ("ReLU gradient at exactly 0")
    advice:   one or two sentences: what went wrong and how to fix it
    applies:  predicate(got, case) -> bool; true when the student's wrong output is
              explained by this mistake (typically: it matches a wrong reference)
    """

    name: str
    advice: str
    applies: Callable[..., bool]


# ---------------------------------------------------------------- numerics


def rel_error(got, expected, floor=1e-8) -> float:
    """max |a - b| / max(floor, |a| + |b|), elementwise (CS231n's definition, floor 1e-8)."""
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        err = np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))
    both_nan = np.isnan(a) & np.isnan(b)
    err = np.where(both_nan, 0.0, err)
    return float(np.nanmax(np.where(np.isnan(err), np.inf, err)))


def error_floor(expected, dtype):
    """float32 keeps ~7 digits, so entries 1e4 times smaller than the largest carry
    cancellation noise: compare them on the scale of the largest entry instead."""
    if np.dtype(dtype) == np.float32 and np.size(expected):
        return max(1e-8, 1e-4 * float(np.max(np.abs(expected))))
    return 1e-8


def matches(got, expected, dtype=np.float64) -> bool:
    """True when ``got`` equals ``expected`` up to the tolerance of ``dtype``."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if got.shape != np.shape(expected):
        return False
    return rel_error(got, expected, error_floor(expected, dtype)) <= TOL[np.dtype(dtype)]


def to_torch(value, requires_grad=False):
    """float arrays become float64 tensors (references always run in float64)."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return torch.tensor(value, dtype=torch.float64, requires_grad=requires_grad)
    return value


def to_numpy(tensor):
    return tensor.detach().numpy()


def random_upstream(shape, seed):
    """A random upstream gradient: never all ones (it cancels for normalisation layers)."""
    return np.random.default_rng(10_000 + seed).standard_normal(shape)


# ---------------------------------------------------------------- messages


def _fmt(value) -> str:
    return np.format_float_positional(value, precision=6, trim="-") if np.isfinite(value) else str(value)


def _describe_difference(name, got, expected, floor):
    """The worst element, as 'got' and 'expected' lines."""
    got = np.asarray(got, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        err = np.abs(got - expected) / np.maximum(floor, np.abs(got) + np.abs(expected))
    err = np.where(np.isnan(err), np.inf, err)
    idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    where = f"{name}[{', '.join(map(str, idx))}]" if idx else name
    return [
        f"  got       {where} = {_fmt(got[idx])}",
        f"  expected  {where} = {_fmt(expected[idx])}",
    ]


def _student_frames(exc):
    """The last lines of the traceback that are the student's code: not this
    package, not numpy or anything else installed, not the standard library."""
    def is_student(frame):
        path = os.path.abspath(frame.filename)
        return not path.startswith(_PACKAGE_DIR) and not path.startswith(_LIBRARY_DIRS)

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_student(f)]
    return [f"  in {f.name}, line {f.lineno}: {f.line}" for f in frames[-2:] if f.line]


def fail(func_name, problem, case=None, details=(), mistake=None):
    lines = [f"{func_name}: {problem}"]
    if case is not None:
        lines.append(f"  input     {case.label}")
    lines.extend(details)
    if mistake is not None:
        lines.append(f"  likely mistake: {mistake.name}. {mistake.advice}")
    raise CheckFailed("\n".join(lines))


# ---------------------------------------------------------------- calling


CALL_TIME_LIMIT = 10.0  # seconds: every checked input is small; more means a loop


class _TimeLimit(BaseException):
    """Raised in the student's code when a call runs too long (BaseException, so that
    an ``except Exception`` in the student's code does not swallow it)."""


@contextlib.contextmanager
def _time_limit(seconds):
    """Interrupt the block after ``seconds`` (main thread on POSIX only; else no limit)."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise _TimeLimit()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def call_student(func, func_name, args, case):
    """Call student code; report exceptions, numpy warnings and endless loops as CheckFailed.

    Returns (result, runtime_warnings).
    """
    with warnings.catch_warnings(record=True) as caught, \
            np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            with _time_limit(CALL_TIME_LIMIT):
                result = func(*args)
        except _TimeLimit as exc:
            raise CheckFailed("\n".join([
                f"{func_name} did not return within {CALL_TIME_LIMIT:g} s (an endless loop?)",
                f"  input     {case.label}", *_student_frames(exc),
            ])) from None
        except NotImplementedError:
            raise CheckFailed(
                f"{func_name} is not implemented yet: replace `raise NotImplementedError()` with your code."
            ) from None
        except Exception as exc:  # the student's bug, reported with their frames only
            details = _student_frames(exc)
            raise CheckFailed("\n".join([
                f"{func_name} raised {type(exc).__name__}: {exc}",
                f"  input     {case.label}", *details,
            ])) from None
    numpy_warnings = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    return result, numpy_warnings


def as_tuple(result, n, func_name, what):
    """Unpack a function's return value into exactly ``n`` items."""
    if n == 1 and not isinstance(result, tuple):
        return (result,)
    if not isinstance(result, tuple) or len(result) != n:
        got = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
        raise CheckFailed(f"{func_name} must return {what}; got {got}.")
    return result


def check_array(func_name, what, got, expected, case, mistakes=(), dtype=None):
    """Compare one returned array with the reference; fail with a diagnosis."""
    dtype = np.dtype(dtype or case.dtype)
    diagnose = lambda: next((m for m in mistakes if _safe(m.applies, got, case, what)), None)
    if not isinstance(got, np.ndarray):
        fail(func_name, f"{what} must be a numpy array, got {type(got).__name__}.", case, mistake=diagnose())
    if got.shape != expected.shape:
        fail(func_name, f"{what} has shape {got.shape}, expected {expected.shape}.", case, mistake=diagnose())
    if got.dtype != dtype:
        fail(func_name, f"{what} has dtype {got.dtype}, expected {dtype} (the input's dtype).", case,
             mistake=diagnose() or Mistake(
                 "dtype changed", "Keep the input's dtype: avoid np.zeros(shape) without dtype=x.dtype "
                 "and float64 constant arrays; np.zeros_like(x) keeps it.", lambda *a: True))
    err, details = mismatch(what, got, expected, dtype)
    if details:
        fail(func_name, f"{what} is wrong.", case, details, mistake=diagnose())
    return err


def mismatch(what, got, expected, dtype):
    """(relative error, lines showing the worst entry), the lines empty when within tolerance."""
    dtype = np.dtype(dtype)
    floor = error_floor(expected, dtype)
    err = rel_error(got, expected, floor)
    if err <= TOL[dtype]:
        return err, []
    return err, [*_describe_difference(what, got, expected, floor),
                 f"  relative error {err:.2g} (expected below {TOL[dtype]:g} for {dtype})"]


def _safe(predicate, *args):
    try:
        return bool(predicate(*args))
    except Exception:
        return False


def check_not_mutated(func_name, before, after, case):
    for name, value in before.items():
        if isinstance(value, np.ndarray) and not np.array_equal(value, after[name], equal_nan=True):
            fail(func_name, f"modified its input `{name}` in place.", case,
                 mistake=Mistake("in-place update", f"Work on a copy (e.g. `{name}.copy()` or np.where) "
                                 "so the caller's array is left unchanged.", lambda *a: True))


def check_no_warnings(func_name, numpy_warnings, case, mistakes=()):
    if numpy_warnings:
        mistake = next((m for m in mistakes if _safe(m.applies, numpy_warnings, case, "warnings")), None)
        fail(func_name, f"numpy warned: {numpy_warnings[0]}.", case, mistake=mistake)


# ---------------------------------------------------------------- reports


@dataclasses.dataclass
class Report:
    func_name: str
    cases: int
    max_error: float
    seconds: float
    note: str = ""

    def __repr__(self):
        text = (f"✓ {self.func_name} passed {self.cases} cases "
                f"(max relative error {self.max_error:.1g})")
        return text + (f"; {self.note}" if self.note else "")

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))


def public_check(check):
    """Decorate a check that notebooks call: print its one-line report, return None.

    A test cell must not end with a value: nbgrader reads a test cell's result as
    partial credit (and warns that it will treat anything else as an error).
    """
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        print(check(*args, **kwargs))

    return wrapper


# ---------------------------------------------------------------- generic checks


def check_forward(func, func_name, cases: Iterable[Case], reference, mistakes: Sequence[Mistake] = (),
                  n_outputs=2, after=None, note=""):
    """Check ``out, cache = func(*inputs)`` (or ``out = func(...)`` when n_outputs == 1).

    reference(**inputs as float64 tensors) -> the expected output tensor, or a tuple
    whose first item is. after(args, expected, case) -> relative error: further checks
    of the call (``args``: the inputs as the student's function left them; ``expected``:
    the reference's results as numpy arrays).
    """
    start, worst, count = time.perf_counter(), 0.0, 0
    for case in cases:
        args = copy.deepcopy(case.inputs)
        result, numpy_warnings = call_student(func, func_name, list(args.values()), case)
        check_not_mutated(func_name, case.inputs, args, case)
        check_no_warnings(func_name, numpy_warnings, case, mistakes)
        out = as_tuple(result, n_outputs, func_name,
                       "a tuple (out, cache)" if n_outputs == 2 else "one value")[0]
        expected = reference(**{k: to_torch(v) for k, v in case.inputs.items()})
        expected = [to_numpy(t) for t in (expected if isinstance(expected, tuple) else (expected,))]
        worst = max(worst, check_array(func_name, "out", out, expected[0], case, mistakes))
        if after is not None:
            worst = max(worst, after(args, expected, case))
        count += 1
    return Report(func_name, count, worst, time.perf_counter() - start, note)


def check_backward(forward, backward, func_name, cases: Iterable[Case], reference,
                   mistakes: Sequence[Mistake] = (), forward_name=None):
    """Check ``grads = backward(dout, cache)`` against torch.autograd.

    The upstream gradient is random (seeded by the case). ``case.grads`` names the
    inputs whose gradients ``backward`` returns, in order.
    """
    start, worst, count = time.perf_counter(), 0.0, 0
    forward_name = forward_name or func_name.replace("_backward", "_forward")
    for case in cases:
        args = copy.deepcopy(case.inputs)
        result, _ = call_student(forward, forward_name, list(args.values()), case)
        _, cache = as_tuple(result, 2, forward_name, "a tuple (out, cache)")
        tensors = {k: to_torch(v, requires_grad=k in case.grads) for k, v in case.inputs.items()}
        expected_out = reference(**tensors)
        dout = random_upstream(expected_out.shape, case.seed).astype(case.dtype)
        expected_out.backward(torch.tensor(dout, dtype=torch.float64))
        dout_before = dout.copy()
        result, numpy_warnings = call_student(backward, func_name, [dout, cache], case)
        if not np.array_equal(dout, dout_before):
            fail(func_name, "modified `dout` in place.", case)
        check_no_warnings(func_name, numpy_warnings, case, mistakes)
        names = ", ".join(f"d{g}" for g in case.grads)
        grads = as_tuple(result, len(case.grads), func_name,
                         f"{'a tuple ' if len(case.grads) > 1 else ''}({names})")
        case.dout = dout
        for name, got in zip(case.grads, grads):
            expected = to_numpy(tensors[name].grad)
            worst = max(worst, check_array(func_name, f"d{name}", got, expected, case, mistakes))
        count += 1
    return Report(func_name, count, worst, time.perf_counter() - start)


def check_value(func, func_name, cases, reference, mistakes=(), tol=1e-9):
    """Check a function that returns a number (a diagnostic such as a fraction)."""
    start, count, worst = time.perf_counter(), 0, 0.0
    for case in cases:
        args = copy.deepcopy(case.inputs)
        got, numpy_warnings = call_student(func, func_name, list(args.values()), case)
        check_not_mutated(func_name, case.inputs, args, case)
        check_no_warnings(func_name, numpy_warnings, case, mistakes)
        expected = float(reference(**{k: to_torch(v) for k, v in case.inputs.items()}))
        diagnose = lambda: next((m for m in mistakes if _safe(m.applies, got, case, "value")), None)
        try:
            value = float(got)
        except (TypeError, ValueError):
            fail(func_name, f"must return a number, got {type(got).__name__}.", case, mistake=diagnose())
        if not abs(value - expected) <= tol * max(1.0, abs(expected)):
            fail(func_name, "returned the wrong value.", case,
                 [f"  got       {_fmt(value)}", f"  expected  {_fmt(expected)}"], mistake=diagnose())
        worst = max(worst, rel_error(value, expected))
        count += 1
    return Report(func_name, count, worst, time.perf_counter() - start)
