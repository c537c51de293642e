"""The checker engine shared by every chapter.

A chapter describes its graded functions as a table (:class:`Layer` and :class:`Function`
rows: case specs, the torch reference, the known mistakes); :func:`build` turns the table
into the checks that notebooks call (``checks.relu_forward(relu_forward)``).

Every check works in two steps that never share a process when it counts:

1. **run** (in the student's kernel, numpy only): call the student's functions on the
   check's inputs and *record* what they did: the values returned, the arguments as the
   call left them, exceptions, numpy warnings, calls that did not return in time.
2. **judge** (torch, float64): recompute the inputs and the references, compare, and write
   the message a student reads: which function, which input, expected vs got, the
   relative error and its limit, and every recognised mistake by id
   (``likely mistake [relu.grad_at_zero]: ...``).

In a student's own session both steps run in the kernel: an instant ✓ line or a
:class:`CheckFailed`. When the grader runs the notebook it sets ``NN_COURSE_RECORD=1`` in
the kernel's environment; the check then only emits its record as a display output, and
the grading process judges it (``autograder.verdicts.TrustedVerdicts``). Whatever the
student's code patches in its kernel, the points are decided where it cannot reach:
forged output earns them only if it holds the right numbers for the grader's inputs.

Messages never show a traceback into this package: ``CheckFailed`` renders itself in
IPython as its message alone, and errors raised by the student's code are reported with
the student's own frames only.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import importlib
import itertools
import os
import signal
import sys
import sysconfig
import threading
import traceback
import warnings
import zlib
from typing import Any, Callable, Sequence

import numpy as np

from . import records
from .numerics import TOL, error_floor, matches, rel_error, relative_errors, tolerance  # noqa: F401 (re-exported)

RECORD_ENV = "NN_COURSE_RECORD"   # set by the grader: record, do not judge
CALL_TIME_LIMIT = 10.0            # seconds per call: every checked input is small; more means a loop
ORACLE_MODULES = ("torch", "sklearn")  # the references' libraries: a solution must not need them

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_LIBRARY_DIRS = tuple({os.path.abspath(p) for p in (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"],
                                                     sysconfig.get_paths()["platlib"], np.__file__.rsplit(os.sep, 2)[0])})


class CheckFailed(AssertionError):
    """A check failed. In a notebook, only the message is shown (no traceback)."""

    def _render_traceback_(self):
        return render(str(self))


def render(message):
    """A failure message as IPython shows it: a red ✗ first line, then the details."""
    lines = message.splitlines() or [""]
    return [f"\x1b[0;31m✗ {lines[0]}\x1b[0m", *lines[1:]]


# ---------------------------------------------------------------- tables


@dataclasses.dataclass(frozen=True)
class Spec:
    """One input of a table row, by its properties; the row's ``make`` turns it into arrays.

    shape:   the main input's shape          dtype:  its dtype ("float64", "float32")
    hidden:  only in the autograder's run    special: properties that matter ("zeros", "large", "ties")
    params:  the other arguments or settings by name (negative_slope=0.2, mode="test", G=2)
    """

    shape: tuple
    dtype: str = "float64"
    hidden: bool = False
    special: frozenset = frozenset()
    params: dict = dataclasses.field(default_factory=dict)


def hidden(*specs):
    """The same specs, run only by the autograder (``hidden=True``)."""
    return [dataclasses.replace(s, hidden=True) for s in specs]


@dataclasses.dataclass(frozen=True)
class Case:
    """One input to a checked function, as ``make(spec, rng)`` builds it.

    label:   what a student reads about this input ("x (4, 5) float64 with exact zeros")
    inputs:  the arguments by name (arrays, numbers, dicts), in call order
    grads:   the inputs the backward pass returns gradients for, in order
    tags:    properties that mistakes look at ("zeros", "large", "ties")
    seed:    set by the engine from (row, case index); seeds the upstream gradient
    dout:    set by the judge of a backward check: the upstream gradient used
    """

    label: str
    inputs: dict
    grads: tuple = ("x",)
    tags: frozenset = frozenset()
    seed: int = 0
    dout: Any = None

    @property
    def dtype(self):
        return np.asarray(next(iter(self.inputs.values()))).dtype


def _always(case):
    return True


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A recognisable wrong implementation, with a stable id (``"relu.grad_at_zero"``).

    ``explains`` names the outputs it concerns ("out", "dx", "running_var", "value",
    "warnings", "dtype", ...). Defined once, in one of two ways:
    - ``wrong(case) -> {output name: value}``: what the wrong implementation returns (a
      list holds several candidates); it is named when the student's value matches.
      Backward mistakes read the upstream gradient from ``case.dout``.
    - ``observed(got, case, what) -> bool``: a mistake recognised from the value's form
      (a shape, numpy's warnings) rather than from numbers.
    ``when(case)`` limits it to the cases where it shows. Mistakes of one ``group`` are
    also tried together (see :class:`MistakeGroup`), so that a student whose code differs
    in several known ways reads every difference at once.
    """

    id: str
    title: str
    advice: str
    wrong: Callable[[Case], dict] | None = None
    when: Callable[[Case], bool] = _always
    observed: Callable[[Any, Case, str], bool] | None = None
    explains: tuple = ()
    group: "MistakeGroup | None" = None

    def __post_init__(self):
        if not self.explains or (self.wrong is None) == (self.observed is None):
            raise ValueError(f"Mistake {self.id!r}: give `explains` and exactly one of `wrong` and `observed`")

    def applies(self, what, got, case):
        """True when this mistake explains the student's ``got`` for output ``what``.
        An exception here is a bug of ours: it propagates."""
        if what not in self.explains or not self.when(case):
            return False
        if self.observed is not None:
            return bool(self.observed(got, case, what))
        return matches_any(got, self.wrong(case).get(what), case.dtype)

    def line(self, where=""):
        return f"  likely mistake [{self.id}]: {self.title}{where}. {self.advice}"


@dataclasses.dataclass(frozen=True, eq=False)
class MistakeGroup:
    """Mistakes that can occur together in one output (batch norm's running statistics:
    started from zeros, stored biased, momentum on the old value). ``wrong(case, ids)``
    returns the outputs with every mistake of ``ids`` made at once."""

    name: str
    wrong: Callable[[Case, frozenset], dict]

    def member(self, id, title, advice, explains, when=_always):
        return Mistake(id, title, advice, wrong=lambda case: self.wrong(case, frozenset({id})), when=when,
                       explains=explains, group=self)


@dataclasses.dataclass(frozen=True)
class State:
    """A value a forward check also compares after the call, found in an argument
    (batch norm's ``bn_param['running_mean']``); ``index``: its place in the reference's
    returned tuple."""

    what: str
    arg: str
    key: str
    index: int

    @property
    def label(self):
        return f"{self.arg}['{self.key}']"


@dataclasses.dataclass(frozen=True)
class Layer:
    """A table row for a layer's forward and backward passes: checks ``<name>_forward``
    and ``<name>_backward``.

    reference: the function of the chapter's ``reference`` module (torch, float64)
    specs:     the inputs (:class:`Spec` or a chapter's own spec class with ``hidden``)
    make:      make(spec, rng) -> Case
    mistakes:  every known mistake of either pass (the output names tell which)
    in_backward(spec): whether the backward check uses this input too
    state:     values compared after the forward call besides ``out`` (:class:`State`)
    note:      added to the ✓ line of the forward check
    alternatives: names of further backward passes checked like ``<name>_backward``
               (batch norm's closed form, ``batchnorm_backward_alt``)
    failed_inputs: how many failing inputs one message may show: after the first, an input
               is shown when it names a mistake or a difference not shown yet (so that a
               student whose code differs in several known ways reads all of them at once)
    """

    name: str
    reference: str
    specs: Sequence
    make: Callable
    mistakes: Sequence[Mistake] = ()
    in_backward: Callable = _always
    state: Sequence[State] = ()
    note: str = ""
    alternatives: tuple = ()
    failed_inputs: int = 1


@dataclasses.dataclass(frozen=True)
class Function:
    """A table row for a function that returns one number (a diagnostic): checks ``<name>``."""

    name: str
    reference: str
    specs: Sequence
    make: Callable
    mistakes: Sequence[Mistake] = ()
    tol: float = 1e-9


def case_seed(row, index):
    """The seed of a row's case: the same in every process, for every student."""
    return zlib.crc32(f"{row}:{index}".encode())


def _cases(row, hidden, keep=_always):
    out = []
    for index, spec in enumerate(row.specs):
        if (hidden or not spec.hidden) and keep(spec):
            seed = case_seed(row.name, index)
            case = row.make(spec, np.random.default_rng(seed))
            out.append(dataclasses.replace(case, seed=seed))
    return out


# ---------------------------------------------------------------- contract mistakes (every chapter)


def _float_got_where_float32(got, case, what):
    return np.dtype(case.dtype) == np.float32 and getattr(got, "dtype", None) == np.float64


IN_PLACE = Mistake(
    "contract.in_place", "in-place update of an input",
    "Work on a copy (e.g. `x.copy()`, np.where, or out = ... instead of x[...] = ...) so the caller's "
    "array is left unchanged.", observed=lambda got, case, what: True, explains=("inputs",))
CACHE_MUTATED = Mistake(
    "contract.cache_mutated", "an array of the cache changed in place",
    "The cache holds the caller's own arrays (the forward pass's input, not a copy): `mask = x; "
    "mask[...] = ...` or `x[...] = ...` in the backward pass rewrites them. Build new arrays "
    "from them instead (a comparison, np.where and arithmetic all return new arrays).",
    observed=lambda got, case, what: True, explains=("cache",))
DOUT_MODIFIED = Mistake(
    "contract.dout_modified", "dout changed in place",
    "`dout[...] = ...` rewrites the upstream gradient, which the caller still needs (other "
    "layers use it). Build dx as a new array (`dx = dout * ...`, np.where), or take `dout.copy()` first.",
    observed=lambda got, case, what: True, explains=("dout",))
DTYPE_CHANGED = Mistake(
    "contract.dtype", "float32 input, float64 result",
    "Something of dtype float64 or int64 was mixed in and numpy promoted the result: an "
    "integer mask (`mask.astype(int)`: use the boolean mask itself, or `mask.astype(x.dtype)`), "
    "`np.zeros(shape)` without `dtype=x.dtype`, or an array of Python floats. "
    "np.zeros_like(x) and boolean masks keep the input's dtype.",
    observed=_float_got_where_float32, explains=("dtype",))
INTEGER_RESULT = Mistake(
    "contract.integer_result", "integer or boolean result",
    "The result is a mask or a count, not the values: a boolean or integer array has to become "
    "the values' dtype, by multiplying a float array with it or with `mask.astype(x.dtype)`, and "
    "arrays built with np.zeros_like of an integer array stay integer.",
    observed=lambda got, case, what: getattr(got, "dtype", np.dtype(float)).kind in "biu", explains=("dtype",))
CONTRACT_MISTAKES = (IN_PLACE, CACHE_MUTATED, DOUT_MODIFIED, DTYPE_CHANGED, INTEGER_RESULT)


# ---------------------------------------------------------------- calling student code (kernel side)


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


def _student_frames(exc):
    """The last lines of the traceback that are the student's code: not this
    package, not numpy or anything else installed, not the standard library."""
    def is_student(frame):
        path = os.path.abspath(frame.filename)
        return not path.startswith(_PACKAGE_DIR) and not path.startswith(_LIBRARY_DIRS)

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if is_student(f)]
    return [f"  in {f.name}, line {f.lineno}: {f.line}" for f in frames[-2:] if f.line]


def call_student(func, func_name, args, case):
    """Call student code. Returns (result, numpy warnings, error): ``error`` is None or the
    lines that describe what went wrong (an exception, a stub, an endless loop)."""
    with warnings.catch_warnings(record=True) as caught, \
            np.errstate(over="warn", divide="warn", invalid="warn", under="ignore"):
        warnings.simplefilter("always")
        try:
            with _time_limit(CALL_TIME_LIMIT):
                result = func(*args)
        except _TimeLimit as exc:
            return None, [], [f"{func_name} did not return within {CALL_TIME_LIMIT:g} s (an endless loop?)",
                              f"  input     {case.label}", *_student_frames(exc)]
        except NotImplementedError:
            return None, [], [f"{func_name} is not implemented yet: replace `raise NotImplementedError()` "
                              "with your code."]
        except (Exception, SystemExit) as exc:  # the student's bug, reported with their frames only
            return None, [], [f"{func_name} raised {type(exc).__name__}: {str(exc)[:500]}",
                              f"  input     {case.label}", *_student_frames(exc)]
    numpy_warnings = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    return result, numpy_warnings, None


def random_upstream(shape, seed):
    """A random upstream gradient: never all ones (it cancels for normalisation layers)."""
    return np.random.default_rng(10_000 + seed).standard_normal(shape)


def _oracle_modules():
    """Torch or a chapter's reference module, if the kernel has imported them."""
    return sorted(m for m in sys.modules if m.split(".")[0] in ORACLE_MODULES
                  or (m.startswith("autograder.") and m.endswith(".reference")))[:5]


# ---------------------------------------------------------------- judging helpers (grader side)


@dataclasses.dataclass
class Problem:
    """One way the student's results differ from the reference on one input."""

    header: str
    details: list = dataclasses.field(default_factory=list)
    mistakes: list = dataclasses.field(default_factory=list)   # (Mistake, where) pairs


@dataclasses.dataclass
class Verdict:
    """A check's judgement: the text a student reads and the mistakes named in it."""

    passed: bool
    text: str
    mistakes: tuple = ()

    def show(self):
        """In a notebook: print the ✓ line, or raise CheckFailed with the message."""
        if not self.passed:
            raise CheckFailed(self.text)
        print(self.text)


def _fmt(value) -> str:
    return np.format_float_positional(value, precision=6, trim="-") if np.isfinite(value) else str(value)


def _type_name(value):
    return value.type if isinstance(value, records.Opaque) else type(value).__name__


def _worst_entry(label, got, expected, floor):
    """The worst element, as 'got' and 'expected' lines."""
    err = relative_errors(got, expected, floor)
    idx = np.unravel_index(int(np.argmax(err)), err.shape) if err.ndim else ()
    where = f"{label}[{', '.join(map(str, idx))}]" if idx else label
    return [f"  got       {where} = {_fmt(np.asarray(got, dtype=np.float64)[idx])}",
            f"  expected  {where} = {_fmt(np.asarray(expected)[idx])}"]


def mismatch(label, got, expected, dtype, floor=0.0):
    """(relative error, lines showing the worst entry), the lines empty when within tolerance.

    floor: entries below this fraction of the largest expected entry are compared on that
    absolute scale (an eigendecomposition leaves 1e-13 where the exact value is 0).
    """
    with np.errstate(invalid="ignore"):
        largest = float(np.nanmax(np.abs(np.asarray(expected, dtype=np.float64)), initial=0.0))
    limit = max(error_floor(expected, dtype), floor * largest)
    err = rel_error(got, expected, limit)
    if err <= tolerance(dtype):
        return err, []
    scale = f"; entries below {floor:g} of the largest compared on that scale" if floor else ""
    return err, [*_worst_entry(label, got, expected, limit),
                 f"  relative error {err:.2g} (expected below {tolerance(dtype):g} for {np.dtype(dtype)}{scale})"]


def matches_any(got, wrong, dtype):
    """``wrong``: None (the mistake does not change this output), a value, or a list of
    candidate values (e.g. a gradient divided by one of several batch sizes)."""
    candidates = wrong if isinstance(wrong, list) else [] if wrong is None else [wrong]
    return any(matches(got, value, dtype) for value in candidates)


def diagnose(mistakes, what, got, case):
    """Every mistake that explains ``got``; if none alone does, the smallest combination
    of one group's mistakes that does (each named)."""
    found = [m for m in mistakes if m.applies(what, got, case)]
    if found:
        return found
    groups = {}
    for m in mistakes:
        if m.group is not None and what in m.explains and m.when(case):
            groups.setdefault(m.group, []).append(m)
    for group, members in groups.items():
        for size in range(2, len(members) + 1):
            for combo in itertools.combinations(members, size):
                if matches_any(got, group.wrong(case, frozenset(m.id for m in combo)).get(what), case.dtype):
                    return list(combo)
    return []


def compare(label, what, got, expected, case, mistakes, dtype=None, floor=0.0):
    """(relative error, Problem or None) for one output of the student's (``floor``: see mismatch)."""
    dtype = np.dtype(dtype or case.dtype)
    expected = np.asarray(expected)

    def problem(header, extra=(), kinds=(what,)):
        named = [m for kind in kinds for m in diagnose(mistakes, kind, got, case)]
        return Problem(header, list(extra), [(m, "") for m in dict.fromkeys(named)])

    if not isinstance(got, np.ndarray):
        return np.inf, problem(f"{label} must be a numpy array, got {_type_name(got)}.")
    if got.shape != expected.shape:
        return np.inf, problem(f"{label} has shape {got.shape}, expected {expected.shape}.")
    if got.dtype != dtype:
        err, details = mismatch(label, got, expected, dtype, floor) if got.dtype.kind in "biuf" else (np.inf, [])
        values = "its values are right" if not details else "its values are wrong too"
        return err, problem(f"{label} has dtype {got.dtype}, expected {dtype} (the input's dtype); {values}.",
                            details, kinds=(what, "dtype"))
    err, details = mismatch(label, got, expected, dtype, floor)
    return err, (problem(f"{label} is wrong.", details) if details else None)


def fail_text(func_name, problems, case):
    """The message for one input: the first problem's header, the input, then every problem."""
    lines = [f"{func_name}: {problems[0].header}"]
    if case is not None:
        lines.append(f"  input     {case.label}")
    for i, p in enumerate(problems):
        if i:
            lines.append(f"  and also: {p.header}")
        lines.extend(p.details)
        lines.extend(m.line(where) for m, where in p.mistakes)
    return "\n".join(lines)


def as_tuple(result, n):
    """The function's return value as exactly ``n`` items, or None."""
    if n == 1 and not isinstance(result, tuple):
        return (result,)
    if isinstance(result, tuple) and len(result) == n:
        return result
    return None


def _arity_problem(result, what):  # result: decoded, so lists stay lists
    got = f"a tuple of {len(result)}" if isinstance(result, tuple) else _type_name(result)
    return Problem(f"must return {what}; got {got}.")


def _mutated(inputs, after):
    """Names of the array inputs whose values the call changed."""
    return [name for name, value in inputs.items() if isinstance(value, np.ndarray)
            and not (isinstance(after.get(name), np.ndarray) and after[name].shape == value.shape
                     and np.array_equal(after[name], value, equal_nan=True))]


_REFERENCE_CACHE = {}  # (module, check, hidden, case index) -> expected arrays: shared by a whole class


def _to_torch(value, requires_grad=False):
    import torch
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return torch.tensor(value, dtype=torch.float64, requires_grad=requires_grad)
    return value


# ---------------------------------------------------------------- checks


class Check:
    """A public check: ``check(*student functions, hidden=False)``.

    Subclasses define ``run_case`` (kernel: call the student's code, record what it did)
    and ``judge_case`` (grader: compare with the reference, return Problems).
    """

    n_functions = 1

    def __init__(self, module, row):
        self.module, self.row = module, row

    @property
    def name(self):
        """The function's name in the notebook (and the check's: ``checks.<name>``)."""
        return self.row.name

    @property
    def chapter(self):
        return self.module.rsplit(".", 1)[0]

    def reference(self):
        return getattr(importlib.import_module(f"{self.chapter}.reference"), self.row.reference)

    def cases(self, hidden):
        return _cases(self.row, hidden)

    # -- the notebook's entry point

    def __call__(self, *functions, hidden=False):
        if len(functions) != self.n_functions:
            raise TypeError(f"checks.{self.name} takes {self.n_functions} function(s), got {len(functions)}")
        record = self.run(functions, hidden)
        if os.environ.get(RECORD_ENV) == "1":
            from IPython.display import publish_display_data
            publish_display_data({records.MIME: record})
            return None
        self.judge(record, hidden).show()
        return None

    # -- step 1: run (kernel)

    def run(self, functions, hidden):
        """Call the student's functions on every case; the record of what they did."""
        cases = []
        for case in self.cases(hidden):
            observation = self.run_case(functions, case)
            cases.append(observation)
            if "error" in observation:  # the judge stops at the first failing case anyway
                break
        return {"check": self.name, "hidden": bool(hidden), "cases": cases, "modules": _oracle_modules()}

    def _call(self, func, name, args, case):
        result, numpy_warnings, error = call_student(func, name, args, case)
        return result, ({"error": error} if error else {"warnings": numpy_warnings[:5]})

    def _call_on_inputs(self, func, case, name=None):
        """``func(*inputs)`` on a deep copy of the case's inputs (so that what the student's code did
        to them can be recorded): (the copies, the result, the observation)."""
        args = copy.deepcopy(case.inputs)
        result, observation = self._call(func, name or self.name, list(args.values()), case)
        return args, result, observation

    # -- step 2: judge (grader, or the kernel in a student's own session)

    def judge(self, record, hidden):
        """The Verdict on a record (decoded from the kernel's JSON, never trusted)."""
        cases = self.cases(hidden)
        try:
            observations = self._observations(record, hidden, len(cases))
        except records.RecordError as exc:
            return Verdict(False, f"{self.name}: the check's results are unreadable ({exc}).")
        worst, count, shown, ids, headers = 0.0, 0, [], {}, set()
        for index, case in enumerate(cases):
            if index >= len(observations) or "error" in observations[index]:
                lines = (observations[index]["error"][:8] if index < len(observations) else
                         [f"{self.name}: the check stopped before the input {case.label}: its results are missing."])
                text = "\n".join(str(line)[:600] for line in lines)
                shown.append(text if not shown else "and then " + text)
                break
            problems, error = self.judge_case(observations[index], case, hidden, index)
            if not problems:
                worst, count = max(worst, error), count + 1
                continue
            # After the first failing input, show another only if it says something new.
            named = {m.id: None for p in problems for m, _ in p.mistakes}
            if shown and not (named.keys() - ids.keys()) and not ({p.header for p in problems} - headers):
                continue
            shown.append(fail_text(self.name if not shown else "also", problems, case))
            ids.update(named)
            headers.update(p.header for p in problems)
            if len(shown) >= getattr(self.row, "failed_inputs", 1):
                break
        return Verdict(False, "\n".join(shown), tuple(ids)) if shown else Verdict(True, self.report(count, worst))

    def _observations(self, record, hidden, count):
        """The first ``count`` observations of a record, decoded (the rest is never read)."""
        if not isinstance(record, dict) or record.get("check") != self.name or record.get("hidden") != bool(hidden):
            raise records.RecordError("they belong to another check")
        cases = record.get("cases")
        if not isinstance(cases, list):
            raise records.RecordError("no cases")
        return [self._decode_observation(obs) for obs in cases[:count]]

    @staticmethod
    def _decode_observation(obs):
        if not isinstance(obs, dict):
            raise records.RecordError("malformed case")
        if "error" in obs:
            error = obs["error"]
            if not isinstance(error, list) or not all(isinstance(line, str) for line in error):
                raise records.RecordError("malformed error")
            return {"error": error}
        out = {}
        for key, value in obs.items():
            if key == "warnings":
                out[key] = [str(w)[:300] for w in value][:5] if isinstance(value, list) else []
            elif key == "dout_modified":
                out[key] = value is True
            else:
                out[key] = records.decode(value)
        return out

    def expected(self, case, hidden, index, compute):
        key = (self.module, self.name, hidden, index)
        if key not in _REFERENCE_CACHE:
            _REFERENCE_CACHE[key] = compute(case)
        return _REFERENCE_CACHE[key]

    def report(self, count, worst):
        text = f"✓ {self.name} passed {count} cases (max relative error {worst:.1g})"
        note = getattr(self.row, "note", "")
        return text + (f"; {note}" if note else "")

    def mistakes(self):
        return tuple(self.row.mistakes) + CONTRACT_MISTAKES

    def doc(self):
        return f"Check {self.name}(...) against reference.{self.row.reference}."


def _contract_problems(observation, case, mistakes):
    """Numpy's warnings and changed inputs: what any function's check also looks at."""
    problems = []
    if observation.get("warnings"):
        named = diagnose(mistakes, "warnings", observation["warnings"], case)
        problems.append(Problem(f"numpy warned: {observation['warnings'][0]}.", [], [(m, "") for m in named]))
    after = observation.get("args")
    changed = _mutated(case.inputs, after if isinstance(after, dict) else {})
    if changed:
        problems.append(Problem(f"modified its input `{changed[0]}` in place.", [], [(IN_PLACE, "")]))
    return problems


class ForwardCheck(Check):
    """``out, cache = forward(*inputs)`` (and the row's State values) against the reference."""

    @property
    def name(self):
        return f"{self.row.name}_forward"

    def run_case(self, functions, case):
        args, result, observation = self._call_on_inputs(functions[0], case)
        if "error" in observation:
            return observation
        out = result[0] if isinstance(result, tuple) and len(result) == 2 else result
        return {**observation, **_returned(result), "out": records.encode(out), "args": records.encode(args)}

    def doc(self):
        return f"Check {self.name}(...) -> (out, cache) against torch (reference.{self.row.reference})."

    def compute_expected(self, case):
        result = self.reference()(**{k: _to_torch(v) for k, v in case.inputs.items()})
        return [t.detach().numpy() for t in (result if isinstance(result, tuple) else (result,))]

    def judge_case(self, observation, case, hidden, index):
        expected = self.expected(case, hidden, index, self.compute_expected)
        mistakes = self.mistakes()
        problems = _contract_problems(observation, case, mistakes)
        if observation.get("returned") != "a tuple of 2":
            return problems + [Problem(f"must return a tuple (out, cache); got {observation.get('returned')}.")], 0.0
        worst, out_problem = compare("out", "out", observation["out"], expected[0], case, mistakes)
        problems += [out_problem] if out_problem else []
        args = observation.get("args") if isinstance(observation.get("args"), dict) else {}
        for state in self.row.state:
            error, problem = self._compare_state(state, args, expected[state.index], case, mistakes, out_problem)
            worst = max(worst, error)
            problems += [problem] if problem else []
        return problems, worst

    def _compare_state(self, state, args, expected, case, mistakes, out_problem):
        holder = args.get(state.arg)
        mode = case.inputs.get(state.arg, {}).get("mode", "")
        when = f" after a {mode}-mode call" if mode else " after the call"
        if not isinstance(holder, dict) or state.key not in holder:
            return np.inf, Problem(f"{state.label} is missing{when}. Store it back into {state.arg} "
                                   f"({state.label} = ...), so that the next call and test mode use it.")
        got = holder[state.key]
        if isinstance(got, (int, float)) and not isinstance(got, bool):
            got = np.asarray(got, dtype=np.float64)
        if isinstance(got, np.ndarray) and got.dtype.kind == "f":
            got = got.astype(np.float64)  # running statistics may be kept in float64: not checked
        return self._compare_values(state, when, got, expected, case, mistakes, out_problem)

    def _compare_values(self, state, when, got, expected, case, mistakes, out_problem):
        if not isinstance(got, np.ndarray) or got.shape != expected.shape:
            shape = getattr(got, "shape", None)
            what = f"has shape {shape}" if shape is not None else f"is a {_type_name(got)}"
            named = diagnose(mistakes, state.what, got, case)
            return np.inf, Problem(f"{state.label}{when} {what}, expected shape {expected.shape} "
                                   "(one value per feature or channel).", [], [(m, "") for m in named])
        err, details = mismatch(state.label, got, expected, case.dtype)
        if not details:
            return err, None
        named = diagnose(mistakes, state.what, got, case)
        right = "" if out_problem else " (out is right)"
        return err, Problem(f"{state.label}{when} is wrong{right}.", details, [(m, "") for m in named])


def _returned(result):
    """What a function returned, in words, for the arity check ("a tuple of 2", "ndarray")."""
    kind = f"a tuple of {len(result)}" if isinstance(result, tuple) else type(result).__name__
    return {"returned": records.encode(kind)}


class BackwardCheck(Check):
    """``grads = backward(dout, cache)`` against torch.autograd, the cache from the student's
    own forward pass and ``dout`` random (seeded by the case). ``name``: another backward
    pass of the same layer (``Layer.alternatives``)."""

    n_functions = 2

    def __init__(self, module, row, name=None):
        super().__init__(module, row)
        self._name = name or f"{row.name}_backward"

    @property
    def name(self):
        return self._name

    @property
    def forward_name(self):
        return f"{self.row.name}_forward"

    def cases(self, hidden):
        return _cases(self.row, hidden, self.row.in_backward)

    def doc(self):
        return f"Check {self.name}(dout, cache) against torch.autograd, with the cache of {self.forward_name}."

    def run_case(self, functions, case):
        forward, backward = functions
        args, result, observation = self._call_on_inputs(forward, case, self.forward_name)
        if "error" in observation:
            return observation
        if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], np.ndarray)):
            return {**_returned(result), "forward_out": records.encode(result[0] if isinstance(result, tuple)
                                                                          and result else result)}
        out, cache = result
        dout = random_upstream(out.shape, case.seed).astype(case.dtype)
        given = dout.copy()
        grads, observation = self._call(backward, self.name, [given, cache], case)
        if "error" in observation:
            return observation
        return {**observation, **_returned(result), "forward_out": records.encode(out),
                "grads": records.encode(grads), "dout_modified": not np.array_equal(given, dout),
                "args": records.encode(args)}

    def compute_expected(self, case):
        import torch
        tensors = {k: _to_torch(v, requires_grad=k in case.grads) for k, v in case.inputs.items()}
        out = self.reference()(**tensors)
        out = out[0] if isinstance(out, tuple) else out
        dout = random_upstream(tuple(out.shape), case.seed).astype(case.dtype)
        out.backward(torch.tensor(dout, dtype=torch.float64))
        return {"out": out.detach().numpy(), "dout": dout,
                "grads": [tensors[name].grad.numpy() for name in case.grads]}

    def judge_case(self, observation, case, hidden, index):
        expected = self.expected(case, hidden, index, self.compute_expected)
        case = dataclasses.replace(case, dout=expected["dout"])
        mistakes = self.mistakes()
        forward_out = observation.get("forward_out")
        if observation.get("returned") != "a tuple of 2" or not isinstance(forward_out, np.ndarray):
            return [Problem(f"cannot be checked: {self.forward_name} must return a tuple (out, cache) with "
                            f"out a numpy array; make {self.forward_name}'s check pass first.")], 0.0
        if forward_out.shape != expected["out"].shape:
            return [Problem(f"cannot be checked: {self.forward_name} returned out of shape {forward_out.shape}, "
                            f"expected {expected['out'].shape}; make {self.forward_name}'s check pass first.")], 0.0
        problems = []
        if observation.get("dout_modified"):
            problems.append(Problem("modified `dout` in place.", [], [(DOUT_MODIFIED, "")]))
        if observation.get("warnings"):
            named = diagnose(mistakes, "warnings", observation["warnings"], case)
            problems.append(Problem(f"numpy warned: {observation['warnings'][0]}.", [], [(m, "") for m in named]))
        changed = _mutated(case.inputs, observation["args"] if isinstance(observation.get("args"), dict) else {})
        if changed:
            problems.append(Problem(
                f"the array `{changed[0]}` given to {self.forward_name} was changed in place by the time "
                f"{self.name} returned (the cache holds the caller's arrays).", [], [(CACHE_MUTATED, "")]))
        names = ", ".join(f"d{g}" for g in case.grads)
        grads = as_tuple(observation.get("grads"), len(case.grads))
        if grads is None:
            what = f"{'a tuple ' if len(case.grads) > 1 else ''}({names})"
            return problems + [_arity_problem(observation.get("grads"), what)], 0.0
        worst, value_problems = 0.0, []
        for name, got, want in zip(case.grads, grads, expected["grads"]):
            error, problem = compare(f"d{name}", f"d{name}", got, want, case, mistakes)
            worst = max(worst, error)
            if problem:
                (value_problems if problem.header.endswith("is wrong.") else problems).append(problem)
        if value_problems:
            self._explain_by_forward(value_problems[0], forward_out, expected["out"], case)
        return problems + value_problems, worst

    def _explain_by_forward(self, problem, forward_out, expected_out, case):
        """Blame the forward pass only when its output is wrong too (the cache comes from it)."""
        if matches(forward_out, expected_out, case.dtype):
            return
        named = diagnose(self.mistakes(), "out", forward_out, case)
        where = f" (in {self.forward_name}; the backward check uses your forward pass's cache: fix it first)"
        problem.mistakes.extend((m, where) for m in named if (m, where) not in problem.mistakes)
        if not named:
            problem.details.append(f"  {self.forward_name}'s out is wrong on this input too, and this check "
                                   f"uses its cache: make {self.forward_name}'s check pass first.")


class ValueCheck(Check):
    """A function returning one number, against the reference within ``row.tol``."""

    def run_case(self, functions, case):
        args, result, observation = self._call_on_inputs(functions[0], case)
        if "error" in observation:
            return observation
        return {**observation, "value": records.encode(result), "args": records.encode(args)}

    def compute_expected(self, case):
        return float(self.reference()(**{k: _to_torch(v) for k, v in case.inputs.items()}))

    def judge_case(self, observation, case, hidden, index):
        expected = self.expected(case, hidden, index, self.compute_expected)
        mistakes = self.mistakes()
        problems = _contract_problems(observation, case, mistakes)
        got = observation.get("value")
        value = _as_number(got)
        if value is None:
            named = diagnose(mistakes, "value", got, case)
            return problems + [Problem(f"must return a number, got {_type_name(got)}.", [],
                                       [(m, "") for m in named])], 0.0
        if not abs(value - expected) <= self.row.tol * max(1.0, abs(expected)):
            named = diagnose(mistakes, "value", value, case)
            problems.append(Problem("returned the wrong value.", [f"  got       {_fmt(value)}",
                                                                  f"  expected  {_fmt(expected)}"],
                                    [(m, "") for m in named]))
        return problems, rel_error(value, expected)

    def mistakes(self):
        return tuple(self.row.mistakes) + (IN_PLACE,)


def _as_number(value):
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.number)):
        return float(value)
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        return float(value.reshape(()))
    return None


# ---------------------------------------------------------------- the factory


def build(module, table):
    """The public checks of a chapter's table: {name: check}, e.g. relu_forward, relu_backward.

    A row of another kind (a chapter's own) supplies its checks with ``row.checks(module)``.
    """
    checks = {}
    for row in table:
        for check in _checks_of(module, row):
            check.__doc__ = check.doc()
            checks[check.name] = check
    return checks


def _checks_of(module, row):
    if isinstance(row, Layer):
        return [ForwardCheck(module, row), BackwardCheck(module, row),
                *(BackwardCheck(module, row, name) for name in row.alternatives)]
    if isinstance(row, Function):
        return [ValueCheck(module, row)]
    return row.checks(module)


def registry(checks):
    """Every mistake the checks can name, by id (each id defined once)."""
    found = {}
    for check in checks.values():
        for m in check.mistakes():
            if found.setdefault(m.id, m) is not m:
                raise ValueError(f"mistake id {m.id!r} is defined twice")
    return found


@functools.lru_cache(maxsize=None)
def chapter_checks(chapter):
    """The checks of ``autograder.<chapter>.checks`` (the grader looks them up by name)."""
    return importlib.import_module(f"autograder.{chapter}.checks").CHECKS
