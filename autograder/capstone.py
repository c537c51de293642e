"""Capstones: the student's own functions in a small network or pipeline on the digits.

A fourth kind of row for the checker engine (after ``checking.Layer``/``Function``,
``transforms.Transform`` and ``sampling.Exact``/``Sampler``), plugged into ``checking.build``
through ``row.checks(module)``. A :class:`Capstone` row is graded on an *outcome* (a network
that trains, a diagnostic that reproduces the book's finding), never on one input:

1. **kernel** (numpy only, the student's session or the grader's sandbox): ``run(functions)``
   is the provided, seeded model and training loop (in the package, not typed into the
   notebook); it calls the student's functions and returns the *records*: the arrays that
   matter (per-step losses, accuracies, per-layer statistics, the student's weights). The
   check emits them, as every check emits its record (``autograder.checking``).
2. **grader** (``autograder.verdicts``: trusted code): ``reference(records)`` re-runs the same
   training with the chapter's torch/scikit-learn reference functions (same seed, same data;
   for a sampler, from the student's own recorded weights, whose law ``law`` judges), and
   the judge checks, in this order:
   - ``law``: grader-side tests of recorded values that are random (weights drawn by the
     student's initialiser) -- a message per failed test;
   - every :class:`Outcome`: the measured value against its bound, from the record
     (``which outcome, measured vs required, what it suggests``);
   - the trajectory: every recorded array equals the reference run's within ``rtol`` (and a
     small absolute ``atol`` where the reference is near 0), so that an outcome claimed by a
     forged record, or reached by code that is wrong but lucky, does not pass.

A student's exception, a stub (``NotImplementedError``) or a run longer than the per-call
limit (10 s) is reported like any check's: which function, where in the run, the student's
frames only. Everything is deterministic: the data (a fixed subset of the digits), the seeds,
the order of the examples.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import sys
import warnings
from typing import Callable, Sequence

import numpy as np

from . import checking, records
from .checking import CALL_TIME_LIMIT, Check, Verdict, _fmt, _student_frames, _time_limit, _TimeLimit


# ---------------------------------------------------------------- rows


@dataclasses.dataclass(frozen=True)
class Outcome:
    """A stated outcome: ``measure(records)`` must lie in [at_least, at_most].

    label:  what is measured, in words ("layer 2's dead fraction after the eta = 100 step")
    advice: what a miss suggests (the likely cause), shown with the measured and required values
    fmt:    how numbers are shown ("{:.0%}", "{:.3f}", ...)
    """

    label: str
    measure: Callable[[dict], float]
    at_least: float | None = None
    at_most: float | None = None
    advice: str = ""
    fmt: str = "{:.3g}"

    def required(self):
        parts = []
        if self.at_least is not None:
            parts.append(f">= {self.fmt.format(self.at_least)}")
        if self.at_most is not None:
            parts.append(f"<= {self.fmt.format(self.at_most)}")
        return " and ".join(parts)

    def reached(self, value):
        return (np.isfinite(value) and (self.at_least is None or value >= self.at_least)
                and (self.at_most is None or value <= self.at_most))


@dataclasses.dataclass(frozen=True)
class Capstone:
    """A table row for a capstone: checks ``<name>(*functions)`` (``name`` starts with ``capstone``).

    functions: the student's functions the check takes, by name, in call order
    run:       run({name: function}) -> {record: array}; numpy only (the kernel's side)
    reference: reference(records) -> {record: array}: the same run with the reference
               functions (grader only: may import torch and the chapter's reference module)
    outcomes:  the stated outcomes (:class:`Outcome`), judged on the student's records
    rtol, atol: the trajectory's tolerance: a float, or {record: float} (default 1e-6, 1e-9)
    law:       law(records) -> [lines]: grader-side tests of random recorded values; each
               line is a failure (empty: passed)
    summary:   the ✓ line's text after the name
    labels:    {record: what an entry is, a format string of its 1-based indices ("the loss at step {}")}
    """

    name: str
    functions: tuple
    run: Callable
    reference: Callable
    outcomes: Sequence[Outcome]
    rtol: float | dict = 1e-6
    atol: float | dict = 1e-9
    law: Callable | None = None
    summary: str = ""
    labels: dict = dataclasses.field(default_factory=dict)
    mistakes: Sequence = ()  # none by id: a capstone names the outcome missed or the first difference

    def describe(self, key, index):
        """What a record's entry is, in words: ``labels[key]`` formatted with the 1-based indices."""
        label = self.labels.get(key)
        return label.format(*(int(i) + 1 for i in index)) if label else f"{key}, entry {tuple(int(i) for i in index)}"

    def tolerance(self, key):
        rtol = self.rtol.get(key, 1e-6) if isinstance(self.rtol, dict) else self.rtol
        atol = self.atol.get(key, 1e-9) if isinstance(self.atol, dict) else self.atol
        return rtol, atol

    def checks(self, module):
        return [CapstoneCheck(module, self)]


# ---------------------------------------------------------------- the student's functions, watched


class StudentFailed(Exception):
    """A student's function raised, was a stub, or ran too long: ``lines`` say which and where."""

    def __init__(self, lines):
        super().__init__(lines[0])
        self.lines = lines


class Watched:
    """A student's function as the provided training loop calls it: an exception becomes a
    :class:`StudentFailed` naming the function and the step (``where``, set by the loop)."""

    def __init__(self, name, func, state):
        self.name, self.func, self.state = name, func, state

    def __call__(self, *args, **kwargs):
        try:
            return self.func(*args, **kwargs)
        except NotImplementedError:
            raise StudentFailed([f"{self.name} is not implemented yet: replace `raise NotImplementedError()` "
                                 "with your code."]) from None
        except (_TimeLimit, StudentFailed):
            raise
        except (Exception, SystemExit) as exc:  # the student's bug, with their frames only
            raise StudentFailed([f"{self.name} raised {type(exc).__name__}: {str(exc)[:400]}",
                                 f"  during    {self.state.get('where', 'the capstone run')}",
                                 *_student_frames(exc)]) from None


def as_float(value, name):
    """A number a student's function returned, as a float (a clear error otherwise)."""
    try:
        return float(np.asarray(value, dtype=np.float64).reshape(()))
    except (TypeError, ValueError):
        raise StudentFailed([f"{name} must return a number, got {type(value).__name__}."]) from None


def as_array(value, name, shape=None):
    """An array a student's function returned, as float64 of the expected shape (a clear error otherwise)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise StudentFailed([f"{name} must return a numpy array here, got {type(value).__name__}."])
    if shape is not None and value.shape != tuple(shape):
        raise StudentFailed([f"{name} returned shape {value.shape}, expected {tuple(shape)} in the capstone."])
    return value.astype(np.float64)


def pair(value, name):
    """(out, cache) from a forward pass (a clear error otherwise)."""
    if not (isinstance(value, tuple) and len(value) == 2):
        raise StudentFailed([f"{name} must return a tuple (out, cache); got {type(value).__name__}."])
    return value


# ---------------------------------------------------------------- provided numpy pieces (kernel side)


@contextlib.contextmanager
def one_blas_thread():
    """numpy's BLAS on one thread during a run: small matrices are 30 times faster so on a busy
    machine (measured: 0.14 s against 4 s), and the sums are done in one order (the grading kernel
    already runs with OPENBLAS_NUM_THREADS=1)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # a student's install without it: only slower
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield



@functools.lru_cache(maxsize=1)
def _digits():
    from .data import load_digits
    X, y = load_digits()
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def digits_split(n_train, n_test, seed=0):
    """A fixed random subset of the digits: (X_train, y_train, X_test, y_test), pixels in [0, 16]."""
    X, y = _digits()
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:n_train], order[n_train:n_train + n_test]
    return X[train].copy(), y[train].copy(), X[test].copy(), y[test].copy()


def softmax_loss(scores, y):
    """Mean cross-entropy and its gradient with respect to the scores (N, C)."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(len(y)), y].mean()
    dscores = np.exp(log_p)
    dscores[np.arange(len(y)), y] -= 1
    return float(loss), dscores / len(y)


def accuracy(scores, y):
    return float(np.mean(np.argmax(scores, axis=1) == y))


def he_weights(sizes, rng, gain=np.sqrt(2.0)):
    """[(W (out, in), b (out,))] of an MLP with N(0, gain^2 / fan_in) weights and zero biases."""
    return [(rng.standard_normal((m, n)) * gain / np.sqrt(n), np.zeros(m)) for n, m in zip(sizes[:-1], sizes[1:])]


class Layer:
    """What follows a hidden Linear layer of :class:`MLP`: ``forward(z, mode) -> (a, cache)``,
    ``backward(da, cache) -> dz`` (keeping its own parameters' gradients), ``step(lr)``."""

    def forward(self, z, mode):
        raise NotImplementedError

    def backward(self, da, cache):
        raise NotImplementedError

    def step(self, lr):
        pass


class ReLU(Layer):
    """The provided ReLU (numpy): not the student's. It stays numpy: torch is hidden from the grading
    kernel (``SandboxedKernelManager.hide_oracle``), where the capstones of chapters 3-5 train."""

    def forward(self, z, mode):
        return np.maximum(z, 0.0), z

    def backward(self, da, cache):
        return da * (cache > 0)


class Activation(Layer):
    """A (forward, backward) pair with the course's API (the student's, or a reference's)."""

    def __init__(self, forward, backward, name="activation"):
        self.f, self.b, self.name = forward, backward, name

    def forward(self, z, mode):
        out, cache = pair(self.f(z), f"{self.name}_forward")
        return as_array(out, f"{self.name}_forward", z.shape), cache

    def backward(self, da, cache):
        return as_array(self.b(da, cache), f"{self.name}_backward", da.shape)


class MLP:
    """Linear layers (torch's layout: W (out, in)) with a :class:`Layer` after each hidden one,
    softmax cross-entropy, plain SGD. ``state['where']`` names the step for error messages."""

    def __init__(self, weights, layers, state):
        self.weights = [(np.array(W, dtype=np.float64), np.array(b, dtype=np.float64)) for W, b in weights]
        self.layers, self.state = layers, state

    def forward(self, X, mode="train", keep=False):
        """scores, and the caches (keep=True also returns each hidden layer's pre-activations z)."""
        h, caches, pre = X, [], []
        for (W, b), layer in zip(self.weights[:-1], self.layers):
            z = h @ W.T + b
            pre.append(z)
            a, cache = layer.forward(z, mode)
            caches.append((h, cache))
            h = a
        W, b = self.weights[-1]
        scores = h @ W.T + b
        caches.append((h, None))
        return (scores, caches, pre) if keep else (scores, caches)

    def backprop(self, X, y):
        """(loss, [(dW, db) per Linear layer]) on (X, y), in train mode."""
        scores, caches = self.forward(X, "train")
        loss, dscores = softmax_loss(scores, y)
        grads, d = [], dscores
        for i in reversed(range(len(self.weights))):
            h, cache = caches[i]
            W, _ = self.weights[i]
            if i < len(self.layers):
                d = self.layers[i].backward(d, cache)
            grads.append((d.T @ h, d.sum(axis=0)))
            d = d @ W
        return loss, grads[::-1]

    def sgd_step(self, X, y, lr):
        """One SGD step on (X, y); returns the loss before the step."""
        loss, grads = self.backprop(X, y)
        self.weights = [(W - lr * dW, b - lr * db) for (W, b), (dW, db) in zip(self.weights, grads)]
        for layer in self.layers:
            layer.step(lr)
        return loss


# ---------------------------------------------------------------- reference layers (grader side)


def torch_layer(function, grads=("x",)):
    """(forward, backward) with the course's layer API, from a torch function of float64 tensors:
    ``out, cache = forward(*arrays)``, ``grads = backward(dout, cache)`` (torch.autograd, for the
    inputs named in ``grads``, in order; one array when there is one). Grader side only."""
    import inspect

    import torch
    names = list(inspect.signature(function).parameters)

    def forward(*args):
        tensors = [torch.tensor(a, dtype=torch.float64, requires_grad=n in grads)
                   if isinstance(a, np.ndarray) else a for n, a in zip(names, args)]
        out = function(*tensors)
        return out.detach().numpy().copy(), (tensors, out)

    def backward(dout, cache):
        tensors, out = cache
        wanted = [t for n, t in zip(names, tensors) if n in grads]
        found = torch.autograd.grad(out, wanted, torch.tensor(dout, dtype=torch.float64))
        found = tuple(g.numpy().copy() for g in found)
        return found if len(found) > 1 else found[0]

    return forward, backward


def torch_value(function):
    """A function of arrays returning a number, from a torch function of float64 tensors."""
    def value(*args):
        import torch
        return float(function(*(torch.tensor(a, dtype=torch.float64) if isinstance(a, np.ndarray) else a
                                for a in args)))
    return value


# ---------------------------------------------------------------- the check


@contextlib.contextmanager
def _short_switch_interval(seconds=1e-4):
    """Python threads switch every 0.1 ms during a run instead of 5 ms: a run makes thousands of small
    numpy calls that release the GIL, and with other threads busy in the kernel (a student's stray
    threads) each call waited up to a switch interval to get it back (measured with two spinning
    threads: the dead-units run 9.7 s at 5 ms, 4.5 s at 0.1 ms; 1.3 s alone)."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@contextlib.contextmanager
def _one_torch_thread():
    """Torch on one thread for the reference run: its tensors are tiny, and with several threads on
    a busy machine the run is 30 times slower (0.26 s against 8.6 s, measured)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_REFERENCE_RUNS = {}  # (module, capstone) -> the reference records: one run for a whole class


class CapstoneCheck(Check):
    """``checks.<capstone>(*functions)``: run the provided training with the student's functions
    (kernel), judge the records against the outcomes and the reference run (grader)."""

    def __init__(self, module, row):
        super().__init__(module, row)
        self.n_functions = len(row.functions)

    def doc(self):
        return (f"Capstone: the provided training with your {', '.join(self.row.functions)}; graded on "
                f"{len(self.row.outcomes)} outcome(s) and on the run matching the reference run.")

    def mistakes(self):
        return ()

    def cases(self, hidden):
        return []  # one run, not a table of inputs

    # -- kernel

    def run(self, functions, hidden):
        state = {}
        watched = {n: Watched(n, f, state) for n, f in zip(self.row.functions, functions)}
        record = {"check": self.name, "hidden": bool(hidden), "modules": []}
        try:
            with _time_limit(CALL_TIME_LIMIT), np.errstate(all="ignore"), warnings.catch_warnings(), \
                    one_blas_thread(), _short_switch_interval():
                warnings.simplefilter("ignore")  # a diverging run warns; the outcome says it
                found = self.row.run(watched, state)
            record["records"] = {k: records.encode(np.asarray(v)) for k, v in found.items()}
        except StudentFailed as exc:
            where = [] if any(line.startswith("  during") for line in exc.lines) else \
                [f"  during    {state.get('where', 'the capstone run')}"]
            record["error"] = [*exc.lines[:1], *where, *exc.lines[1:]]
        except _TimeLimit:
            record["error"] = [f"the run did not finish within {CALL_TIME_LIMIT:g} s "
                               f"(stopped during {state.get('where', 'the run')}): an endless loop, or a "
                               "very slow function?"]
        record["modules"] = checking._oracle_modules()  # looked up at call time, as the engine's checks do
        return record

    # -- grader

    def reference_records(self, found):
        if self.row.law is not None:  # runs from the student's own (random) values: not shared
            with _one_torch_thread(), one_blas_thread():
                return self.row.reference(found)
        key = (self.module, self.name)
        if key not in _REFERENCE_RUNS:
            with _one_torch_thread(), one_blas_thread():
                _REFERENCE_RUNS[key] = self.row.reference(found)
        return _REFERENCE_RUNS[key]

    def judge(self, record, hidden):
        try:
            found = self._decode(record, hidden)
        except records.RecordError as exc:
            return Verdict(False, f"{self.name}: the check's results are unreadable ({exc}).")
        if isinstance(found, list):
            return Verdict(False, "\n".join(f"{self.name}: {found[0]}" if i == 0 else line
                                            for i, line in enumerate(found[:8])))
        shapes = self._shape_problems(found)
        if shapes:
            return Verdict(False, f"{self.name}: the check's results are unreadable ({shapes}).")
        if self.row.law is not None:
            failures = self.row.law(found)
            if failures:
                return Verdict(False, "\n".join([f"{self.name}: the weights your functions drew do not follow "
                                                 "the law they should:", *failures[:6]]))
        measured, missed = [], []
        for outcome in self.row.outcomes:
            try:
                value = float(outcome.measure(found))
            except (KeyError, IndexError, ValueError, TypeError) as exc:  # a record missing or reshaped
                return Verdict(False, f"{self.name}: the check's results are unreadable (the records the run "
                                      f"produces are missing or reshaped: {type(exc).__name__} {str(exc)[:80]}).")
            shown = outcome.fmt.format(value) if np.isfinite(value) else str(value)
            measured.append(f"{outcome.label}: {shown} ({outcome.required()})")
            if not outcome.reached(value):
                missed.append((outcome, shown))
        if missed:
            lines = [f"{self.name}: outcome not reached: {missed[0][0].label}."]
            for outcome, shown in missed:
                lines.append(f"  outcome   {outcome.label}")
                lines.append(f"  measured  {shown}, required {outcome.required()}")
            for advice in dict.fromkeys(o.advice for o, _ in missed if o.advice):
                lines.append(f"  suggests  {advice}")
            return Verdict(False, "\n".join(lines))
        departure = self._departure(found, self.reference_records(found))
        if departure:
            return Verdict(False, "\n".join([
                f"{self.name}: the outcomes are reached, but your run is not the reference run (the same "
                "training, same seed and data, with the reference functions):", *departure,
                "  A function that is slightly off shows here even when the outcome is reached (and a record "
                "that was not produced by this run never matches): make every check above pass first, "
                "hidden cases included."]))
        return Verdict(True, f"✓ {self.name}: " + "; ".join(measured)
                       + (f". {self.row.summary}" if self.row.summary else ""))

    def _decode(self, record, hidden):
        if not isinstance(record, dict) or record.get("check") != self.name or record.get("hidden") != bool(hidden):
            raise records.RecordError("they belong to another check")
        if "error" in record:
            error = record["error"]
            if not isinstance(error, list) or not all(isinstance(line, str) for line in error):
                raise records.RecordError("malformed error")
            return [str(line)[:600] for line in error] or ["failed"]
        found = record.get("records")
        if not isinstance(found, dict):
            raise records.RecordError("no records")
        return {str(k): records.decode(v) for k, v in list(found.items())[:64]}

    def _shape_problems(self, found):
        """Every record must be a numeric array (its keys and shapes are compared with the reference run's)."""
        for key, value in found.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
                return f"record {key!r} is not an array"
        return ""

    def _departure(self, found, reference):
        """Lines describing the first place where the student's records leave the reference's."""
        if set(found) != set(reference):
            missing = sorted(set(reference) - set(found))
            return [f"  records missing: {missing[:5]}" if missing else "  unknown records"]
        lines = []
        for key, want in reference.items():
            got = found[key]
            want = np.asarray(want, dtype=np.float64)
            if got.shape != want.shape:
                lines.append(f"  {key}: shape {got.shape}, reference {want.shape}")
                break
            rtol, atol = self.row.tolerance(key)
            got = got.astype(np.float64)
            with np.errstate(all="ignore"):
                bad = ~(np.isclose(got, want, rtol=rtol, atol=atol) | (np.isnan(got) & np.isnan(want)))
            if bad.any():
                index = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
                where = f"{key}[{', '.join(map(str, index))}]" if index else key
                g, w = got[index], want[index]
                err = abs(g - w) / max(abs(w), 1e-300) if np.isfinite(g) and np.isfinite(w) else np.inf
                lines += [f"  first difference: {where} ({self.row.describe(key, index)})",
                          f"  got       {_fmt(g)}", f"  reference {_fmt(w)}",
                          f"  relative error {err:.2g} (limit {rtol:g}, absolute {atol:g})"]
                break
        return lines
