"""Table rows for chapter 3's functions: exact values, and samplers judged by statistical tests.

Two row kinds for the checker engine (besides ``checking.Layer``, ``checking.Function`` and
``transforms.Transform``), plugged into ``checking.build`` through ``row.checks(module)``:

:class:`Exact` -- a deterministic function (``calculate_gain``, ``fan_in_and_fan_out``): the
value returned equals the reference's (torch's) exactly (floats to 1e-12 relative), and where
torch raises (an unknown nonlinearity, a shape with fewer than 2 dimensions) the student's
function must raise the same exception type.

:class:`Sampler` -- a function ``f(shape, rng, **params)`` returning a new random float64 array.
Its numbers are never compared with torch's: torch's random stream is not numpy's. The kernel
(numpy only) calls ``f`` with ``np.random.default_rng(seed)`` three times (seed, seed again, seed
+ 1) and records the first array, a digest of the second and of the third (sha256 of shape, dtype
and bytes), a digest of ``np.random.get_state()`` before and after, and whether the same object
came back twice (identity cannot be recorded otherwise). The grader, not the kernel, decides
from those digests whether the same seed gave the same array, another seed another one, and
numpy's global state stayed untouched. The grader then judges, with the law that the
reference (torch.nn.init's formulas, ``reference.law``) gives for the case:

- uniform U(-b, b): every entry within [-b, b] (exact, 1e-12 relative for rounding); the
  sample fills the interval: max > b (1 - t) and min < -b (1 - t), with
  t = 2 (1 - alpha^(1/n)), since P(max < b (1 - t)) = (1 - t/2)^n = alpha for a correct sampler;
- normal N(0, s^2): the sample's second moment m2 = mean(x^2) in a two-sided chi-square band:
  n m2 / s^2 ~ chi2(n) exactly, the band holds with probability 1 - alpha;
- uniform: m2 within b^2 sqrt(log(2 / alpha) / (2 n)) of b^2 / 3 (Hoeffding's inequality, x^2 in
  [0, b^2]: a bound, not an approximation);
- both: a Kolmogorov-Smirnov test of the whole sample against the law, failing at p < alpha
  (scipy's exact distribution up to n = 10000, asymptotic beyond, which errs on the side of a
  larger p);
- orthogonal: W flattened to (rows, cols) has W W^T = gain^2 I (rows <= cols) or W^T W = gain^2 I,
  to 1e-10; and over all cases together, the signs of the diagonal entries: for a Haar-distributed
  W (torch's QR with the sign correction) flipping the sign of row i (tall) or column i (wide)
  gives the same law, so the number of negative diagonal entries is Binomial(m, 1/2); a plain QR
  (LAPACK's R has a diagonal of either sign chosen by the data, Q's first column always has a
  negative first entry) makes about 77% of them negative. Two-sided binomial test at p < alpha.

``ALPHA = 1e-8`` per test, and one check runs at most ``MAX_TESTS`` = 60 tests, so a correct
implementation fails a check with probability below 60 * 1e-8 < 1e-6 (the union bound; the
samples of different cases are independent anyway). A mistake is named when the student's
sample passes the same tests against the mistake's law: the check says which law it follows.

scipy is imported by the judge only (never in the kernel); neither is torch.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
from typing import Callable, ClassVar, Sequence

import numpy as np

from . import records
from .checking import Check, Mistake, Problem, _fmt, _type_name

ALPHA = 1e-8
MAX_TESTS = 60
ORTHOGONALITY_TOL = 1e-10


# ---------------------------------------------------------------- exact values


def _attempt(func, args, kwargs):
    """Call the student's function; an exception other than NotImplementedError is a result."""
    def call():
        try:
            return ("returned", func(*args, **kwargs))
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001: what the student's code raised is the result
            return ("raised", type(exc).__name__, str(exc)[:300])
    return call


class ExactCheck(Check):
    """``value = function(*inputs)`` equal to the reference's value, or the same exception."""

    def doc(self):
        return f"Check {self.name}(...) against torch (reference.{self.row.reference}): the same values, the same errors."

    def run_case(self, functions, case):
        args = copy.deepcopy(case.inputs)
        result, observation = self._call(_attempt(functions[0], list(args.values()), {}), self.name, [], case)
        if "error" in observation:
            return observation
        return {**observation, "result": records.encode(result)}

    def compute_expected(self, case):
        try:
            return ("returned", self.reference()(**case.inputs))
        except Exception as exc:  # noqa: BLE001: torch's error is the expected result
            return ("raised", type(exc).__name__, str(exc))

    def judge_case(self, observation, case, hidden, index):
        expected = self.expected(case, hidden, index, self.compute_expected)
        result = observation.get("result")
        if not (isinstance(result, tuple) and len(result) >= 2 and result[0] in ("returned", "raised")):
            return [Problem("the check's results are unreadable.")], 0.0
        mistakes = self.mistakes()
        if expected[0] == "raised":
            if result[0] == "raised" and result[1] == expected[1]:
                return [], 0.0
            got = f"raised {result[1]}" if result[0] == "raised" else f"returned {self._show(result[1])}"
            return [Problem(f"should raise {expected[1]}, as torch does; it {got}.",
                            [f"  torch's message: {expected[2]}"],
                            [(m, "") for m in mistakes if m.applies("value", result, case)])], 0.0
        if result[0] == "raised":
            return [Problem(f"raised {result[1]}: {result[2]}", [f"  expected  {self._show(expected[1])}"])], 0.0
        got, want = result[1], expected[1]
        ok, error = self.row.equal(got, want)
        if ok:
            return [], error
        named = [m for m in mistakes if m.applies("value", got, case)]
        return [Problem("returned the wrong value.", [f"  got       {self._show(got)}",
                                                      f"  expected  {self._show(want)}"],
                        [(m, "") for m in named])], error

    @staticmethod
    def _show(value):
        if isinstance(value, float):
            return _fmt(value)
        if isinstance(value, tuple):
            return "(" + ", ".join(ExactCheck._show(v) for v in value) + ")"
        if isinstance(value, (int, str)) or value is None:
            return repr(value)
        return f"a {_type_name(value)}" if not isinstance(value, np.ndarray) else f"an array {value.shape}"

    def mistakes(self):
        return tuple(self.row.mistakes)


def _float_equal(got, want):
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.floating, np.integer)):
        return False, math.inf
    error = abs(float(got) - want) / max(1.0, abs(want))
    return error <= 1e-12, error


def _ints_equal(got, want):
    if not (isinstance(got, tuple) and len(got) == len(want)):
        return False, math.inf
    ok = all(isinstance(g, (int, np.integer)) and not isinstance(g, (bool, np.bool_)) and int(g) == w
             for g, w in zip(got, want))
    return ok, 0.0 if ok else math.inf


@dataclasses.dataclass(frozen=True)
class Exact:
    """A table row for a deterministic function: checks ``<name>``.

    specs, make, mistakes: as for ``checking.Layer``; a mistake's ``observed(got, case,
    "value")`` sees the value returned, or ``("raised", type, message)``.
    equal: equal(got, want) -> (ok, error): ``"float"`` (1e-12 relative) or ``"ints"`` (a tuple
           of ints, exactly)
    """

    name: str
    reference: str
    specs: Sequence
    make: Callable
    mistakes: Sequence[Mistake] = ()
    kind: str = "float"
    failed_inputs: int = 1

    def equal(self, got, want):
        return (_float_equal if self.kind == "float" else _ints_equal)(got, want)

    def checks(self, module):
        return [ExactCheck(module, self)]


# ---------------------------------------------------------------- samplers: statistics (judge only)


def _state_digest():
    state = np.random.get_state()
    return hashlib.sha256(repr(state[0]).encode() + np.asarray(state[1]).tobytes()
                          + repr(state[2:]).encode()).hexdigest()[:16]


def array_digest(x):
    """A digest of what a sampler returned, the same in the kernel and in the grader: two arrays
    have the same digest exactly when they have the same shape, dtype and bytes (anything else
    digests its type, so it never equals an array's)."""
    if not isinstance(x, np.ndarray):
        return f"not an array: {type(x).__name__}"
    x = np.ascontiguousarray(x)
    return hashlib.sha256(repr((x.shape, x.dtype.str)).encode() + x.tobytes()).hexdigest()[:32]


def uniform_tests(x, bound):
    """{test: (passed, what it measured)} for x ~ U(-bound, bound) (see the module's docstring)."""
    from scipy import stats
    n = x.size
    t = 2.0 * (1.0 - ALPHA ** (1.0 / n))
    m2 = float(np.mean(x ** 2))
    slack = bound ** 2 * math.sqrt(math.log(2.0 / ALPHA) / (2.0 * n))
    p = float(stats.kstest(x.ravel(), "uniform", args=(-bound, 2 * bound)).pvalue)
    return {
        "inside": (float(np.max(np.abs(x))) <= bound * (1 + 1e-12),
                   f"largest |w| {_fmt(float(np.max(np.abs(x))))}, bound {_fmt(bound)}"),
        "fills": (float(np.max(x)) > bound * (1 - t) and float(np.min(x)) < -bound * (1 - t),
                  f"min {_fmt(float(np.min(x)))}, max {_fmt(float(np.max(x)))}, bound {_fmt(bound)}"),
        "moment": (abs(m2 - bound ** 2 / 3) <= slack,
                   f"std (root mean square) {_fmt(math.sqrt(m2))}, expected {_fmt(bound / math.sqrt(3))}"),
        "ks": (p >= ALPHA, f"Kolmogorov-Smirnov p = {p:.2g} against U(-{_fmt(bound)}, {_fmt(bound)})"),
    }


def normal_tests(x, std):
    """{test: (passed, what it measured)} for x ~ N(0, std^2) (see the module's docstring)."""
    from scipy import stats
    n = x.size
    m2 = float(np.mean(x ** 2))
    low, high = stats.chi2.ppf(ALPHA / 2, n) / n, stats.chi2.isf(ALPHA / 2, n) / n
    p = float(stats.kstest(x.ravel(), "norm", args=(0.0, std)).pvalue)
    return {
        "moment": (low * std ** 2 <= m2 <= high * std ** 2,
                   f"std (root mean square) {_fmt(math.sqrt(m2))}, expected {_fmt(std)} "
                   f"(band [{_fmt(math.sqrt(low) * std)}, {_fmt(math.sqrt(high) * std)}] for {n} samples)"),
        "ks": (p >= ALPHA, f"Kolmogorov-Smirnov p = {p:.2g} against N(0, {_fmt(std)}^2)"),
    }


def orthogonality_error(w, gain):
    rows = w.shape[0]
    m = w.reshape(rows, -1).astype(np.float64) / gain
    gram = m @ m.T if rows <= m.shape[1] else m.T @ m
    return float(np.max(np.abs(gram - np.eye(gram.shape[0]))))


def law_tests(x, law):
    kind, value = law
    if kind == "uniform":
        return uniform_tests(x, value)
    if kind == "normal":
        return normal_tests(x, value)
    error = orthogonality_error(x, value)
    return {"orthogonal": (error <= ORTHOGONALITY_TOL, f"max |W W^T / gain^2 - I| = {error:.2g}")}


def follows(x, law):
    """True when the sample x passes every test against ``law``."""
    return isinstance(x, np.ndarray) and x.dtype.kind == "f" and np.all(np.isfinite(x)) and \
        all(ok for ok, _ in law_tests(x.astype(np.float64), law).values())


def negative_diagonal(x):
    """(negative diagonal entries, diagonal entries) of x flattened to (rows, cols)."""
    d = np.diagonal(x.reshape(x.shape[0], -1))
    return int(np.sum(d < 0)), int(d.size)


def binomial_p(k, m):
    from scipy import stats
    return float(stats.binomtest(k, m, 0.5).pvalue) if m else 1.0


def describe_law(law):
    kind, value = law
    return {"uniform": f"U(-{_fmt(value)}, {_fmt(value)})", "normal": f"N(0, {_fmt(value)}^2)",
            "orthogonal": f"orthogonal times gain {_fmt(value)}"}[kind]


def law_mistake(id, title, advice, wrong_law, when=lambda case: True):
    """A mistake recognised when the student's sample follows ``wrong_law(case)`` (a law or None)."""
    def observed(got, case, what):
        law = wrong_law(case) if what == "sample" and when(case) else None
        return law is not None and follows(got, law)
    return Mistake(id, title, advice, observed=observed, explains=("sample",))


# ---------------------------------------------------------------- samplers: the check


class SamplerCheck(Check):
    """``w = sampler(shape, rng, **params)``: its law, its use of ``rng``, its orthogonality."""

    def doc(self):
        return (f"Check {self.name}(shape, rng, ...) against the law of torch.nn.init's {self.name}_ "
                "(statistical tests, false-alarm rate below 1e-6: see autograder/sampling.py).")

    # -- kernel: numpy only

    def run_case(self, functions, case):
        f = functions[0]
        shape, params, seed = case.inputs["shape"], case.inputs["params"], case.seed
        before = _state_digest()
        first, observation = self._call(_plain(f, shape, seed, params), self.name, [], case)
        if "error" in observation:
            return observation
        again, observation2 = self._call(_plain(f, shape, seed, params), self.name, [], case)
        other, observation3 = self._call(_plain(f, shape, seed + 1, params), self.name, [], case)
        after = _state_digest()
        for o in (observation2, observation3):
            if "error" in o:
                return o
        # Digests, not verdicts: the grader compares them (see the module's docstring).
        return {**observation, "sample": records.encode(first), "again_digest": array_digest(again),
                "other_digest": array_digest(other), "same_object": first is again and first is not None,
                "state_before": before, "state_after": after}

    @staticmethod
    def _decode_observation(obs):
        if isinstance(obs, dict) and "error" not in obs:
            out = {"same_object": obs.get("same_object") is True}
            out["sample"] = records.decode(obs.get("sample"))
            digests = [obs.get(k) for k in ("again_digest", "other_digest", "state_before", "state_after")]
            if not all(isinstance(d, str) for d in digests):
                raise records.RecordError("malformed sampler record (no digests)")
            first = array_digest(out["sample"])
            out["same_seed_same"] = first == digests[0]
            out["other_seed_differs"] = first != digests[1]
            out["global_state_unchanged"] = digests[2] == digests[3]
            out["warnings"] = [str(w)[:300] for w in obs.get("warnings", [])][:5] \
                if isinstance(obs.get("warnings"), list) else []
            return out
        return Check._decode_observation(obs)

    # -- grader

    def compute_expected(self, case):
        from importlib import import_module
        law = getattr(import_module(f"{self.chapter}.reference"), "law")
        return law(self.row.reference, case.inputs["shape"], **case.inputs["params"])

    def judge(self, record, hidden):
        verdict = super().judge(record, hidden)
        if not verdict.passed or self.row.law_kind != "orthogonal":
            return verdict
        return self._judge_haar(record, hidden, verdict)

    def _judge_haar(self, record, hidden, verdict):
        """The signs of the diagonals over all cases: Binomial(m, 1/2) for a Haar matrix."""
        from .checking import Verdict, fail_text
        negative = total = 0
        for obs in self._observations(record, hidden, len(self.cases(hidden))):
            k, m = negative_diagonal(obs["sample"])
            negative, total = negative + k, total + m
        p = binomial_p(negative, total)
        if p >= ALPHA:
            return verdict
        mistakes = [m for m in self.mistakes() if m.applies("signs", (negative, total), None)]
        problem = Problem("its matrices are orthogonal but not uniformly distributed (not Haar).",
                          [f"  {negative} of the {total} diagonal entries of all the matrices are negative "
                           f"(binomial p = {p:.2g}); a uniformly distributed orthogonal matrix has each sign "
                           "with probability 1/2"], [(m, "") for m in mistakes])
        return Verdict(False, fail_text(self.name, [problem], None), tuple(m.id for m in mistakes))

    def judge_case(self, observation, case, hidden, index):
        law = self.expected(case, hidden, index, self.compute_expected)
        mistakes = self.mistakes()
        problems = []
        x = observation.get("sample")
        shape = tuple(case.inputs["shape"])
        if not isinstance(x, np.ndarray):
            return [Problem(f"must return a numpy array, got {_type_name(x)}.")], 0.0
        if x.shape != shape:
            return [Problem(f"returned shape {x.shape}, expected {shape} (the shape it is given).")], 0.0
        if x.dtype != np.float64:
            return [Problem(f"returned dtype {x.dtype}, expected float64.")], 0.0
        if not observation["global_state_unchanged"] or not observation["same_seed_same"]:
            what = [] if observation["global_state_unchanged"] else ["numpy's global random state changed"]
            what += [] if observation["same_seed_same"] else ["two calls with the same seed gave different arrays"]
            problems.append(Problem(f"does not draw from the rng it is given: {' and '.join(what)}.", [],
                                    [(m, "") for m in mistakes if m.applies("rng", observation, case)]))
        elif not observation["other_seed_differs"]:
            problems.append(Problem("gave the same array for two different seeds: draw from `rng`."))
        if observation["same_object"]:
            problems.append(Problem("returned the same array object twice: return a new array each call."))
        if not np.all(np.isfinite(x)):
            return problems + [Problem("returned inf or nan.")], 0.0
        failed = [text for ok, text in law_tests(x, law).values() if not ok]
        if failed:
            named = [m for m in mistakes if m.applies("sample", x, case)]
            problems.append(Problem(f"the samples do not follow {describe_law(law)}.",
                                    [f"  {text}" for text in failed], [(m, "") for m in named]))
        return problems, 0.0

    def report(self, count, worst):
        return f"✓ {self.name} passed {count} cases (statistical tests at p < 1e-8 each, same seed, same array)"

    def mistakes(self):
        return tuple(self.row.mistakes)


def _plain(f, shape, seed, params):
    return lambda: f(tuple(shape), np.random.default_rng(seed), **params)


@dataclasses.dataclass(frozen=True)
class Sampler:
    """A table row for a sampler ``f(shape, rng, **params)``: checks ``<name>``.

    reference: the name torch.nn.init gives it (``reference.law(reference, shape, **params)``)
    specs, make, mistakes: as for ``checking.Layer``; make returns a Case whose inputs are
               {"shape": ..., "params": {...}}; mistakes see ``"sample"`` (the array),
               ``"rng"`` (the observation) or ``"signs"`` ((negative, total), orthogonal only)
    law_kind:  "uniform", "normal" or "orthogonal"
    """

    name: str
    reference: str
    specs: Sequence
    make: Callable
    mistakes: Sequence[Mistake] = ()
    law_kind: str = "normal"
    failed_inputs: int = 1

    check_kinds: ClassVar[tuple] = (SamplerCheck,)

    def __post_init__(self):
        if len(self.specs) * 4 + 1 > MAX_TESTS:
            raise ValueError(f"Sampler {self.name!r}: too many cases for the false-alarm bound")

    def checks(self, module):
        return [kind(module, self) for kind in self.check_kinds]
