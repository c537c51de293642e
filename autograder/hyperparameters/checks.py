"""Checks for the hyperparameter-search assignment (chapter 5): a table, built by ``checking.build``.

The notebook's test cells call one check each::

    checks.random_search(random_search)                 # public cases
    checks.random_search(random_search, hidden=True)    # and the hidden ones

Rows, and how each is judged (by the grader, from the kernel's records: autograder/verdicts.py):

- ``expected_initial_loss``, ``update_ratio``: ``checking.Function`` rows, the value against
  torch's (reference.py) to 1e-9 relative;
- ``should_abort``, ``grid_search``, ``on_boundary``, ``refine_space``, ``successive_halving``:
  :class:`Row` rows of :class:`ReturnsCheck`: the value returned equals the reference's (torch primitives) exactly
  (floats to 1e-9 relative; NaN equals NaN), on inputs that include ties, empty results, a
  single trial and NaN losses or scores. The searches are given a deterministic stand-in for a
  training run (:class:`Objective`), which records its calls: grid and successive halving are
  also judged on which configs they trained, for how many epochs (as a multiset: order is free);
- ``out_of_fold_predictions``: the array against scikit-learn's ``cross_val_predict`` with an
  unshuffled ``KFold(k)`` to the float64 tolerance, the model a ridge classifier given here;
- ``log_uniform``, ``sample_config``, ``random_search``: :class:`DrawsCheck` rows, judged by
  statistical tests with fixed seeds (autograder/sampling.py's tests: a log parameter's log10 is
  U(log10 low, log10 high): inside, fills the range, second moment in Hoeffding's band,
  Kolmogorov-Smirnov; an integer or categorical parameter by a chi-square test of its counts),
  each at p < ``ALPHA`` = 1e-8, at most 60 tests per check: a correct sampler fails a check with
  probability below 60 * 1e-8 < 1e-6. Also: same seed, same draws; numpy's global random state
  untouched; random_search's scores are the objective's for its configs;
- ``capstone_optuna``: :class:`OptunaStudy`: the kernel runs a seeded Optuna study (TPE,
  MedianPruner) of the student's ``objective(trial)`` in a temporary SQLite file in the working
  directory (``STUDY_TRIALS``: 10 trials, 8 in the hidden one; at most ``STUDY_SECONDS`` s) and records every trial's
  declared distributions, state, params and intermediate values; the grader judges them (log
  scales for lr and weight_decay, some trials pruned, the best validation accuracy at least
  ``THRESHOLD``) and re-runs ``training.train`` itself for the best trial and the first pruned
  ones: the reported values must be that run's.

The syllabus's mistakes are recognised from the value returned (``observed``), each proven by a
mutant in instructor/mutants/hyperparameters.py. This module imports neither torch, scipy,
scikit-learn nor optuna at import time: the kernel only records, the grader judges.
"""
from __future__ import annotations

import collections
import copy
import dataclasses
import functools
import hashlib
import json
import math
import os
import shutil
import tempfile
from typing import Callable, ClassVar, Sequence

import numpy as np

from .. import records
from ..checking import (Case, Check, Function, Mistake, Problem, Spec, Verdict, _fmt, _oracle_modules,
                        _student_frames, _time_limit, _TimeLimit, build, fail_text, hidden)
from ..numerics import matches
from ..sampling import ALPHA, _state_digest, uniform_tests

# ---------------------------------------------------------------- the stand-in for a training run

# Where each known parameter's score peaks (log10 for positive ones) and how much it matters.
PEAKS = {"lr": (-2.0, 1.0, True), "weight_decay": (-4.0, 0.1, True), "hidden": (64.0, 0.3 / 64 ** 2, False),
         "momentum": (0.9, 2.0, False), "dropout": (0.2, 1.0, False)}
CHOICES = {"activation": {"relu": 0.0, "tanh": 0.05, "sigmoid": 0.3}}


def score(config, epochs=None, kind="smooth"):
    """A deterministic validation accuracy for ``config`` (after ``epochs`` epochs if given):
    peaked in log10(lr) and log10(weight_decay), a learning curve that rises with the epochs
    (faster for larger learning rates). ``kind``: "ties" rounds to 0.1 (many equal scores),
    "nan" makes every lr above 0.3 diverge (NaN)."""
    penalty = 0.0
    for name, value in config.items():
        if name in CHOICES:
            penalty += CHOICES[name].get(value, 0.5)
        elif name in PEAKS:
            peak, weight, log = PEAKS[name]
            x = math.log10(value) if log else float(value)
            penalty += weight * (x - peak) ** 2
    accuracy = 0.98 * math.exp(-0.3 * penalty)
    if epochs is not None:
        lr = config.get("lr", 0.01)
        tau = 1.0 + 2.0 * abs(math.log10(lr) + 1.0)
        accuracy *= 1.0 - math.exp(-epochs / tau)
    if kind == "nan" and config.get("lr", 0.0) > 0.3:
        return math.nan
    return round(accuracy, 1) if kind == "ties" else accuracy


class Objective:
    """What the searches are given in the checks: ``objective(config[, epochs]) -> score``, the
    function :func:`score`, recording each call (a copy of the config, the epochs)."""

    def __init__(self, kind="smooth"):
        self.kind = kind
        self.calls = []

    def __call__(self, config, epochs=None):
        self.calls.append((dict(config), epochs))
        return score(dict(config), epochs, self.kind)

    def __repr__(self):
        return f"Objective({self.kind!r})"


class RidgeModel:
    """The model out_of_fold_predictions is checked with: ridge regression of one-hot labels
    (``n_classes`` columns) with a bias, ``fit(X, y)`` then ``predict(X) -> (n, n_classes)``."""

    def __init__(self, alpha=1.0, n_classes=3):
        self.alpha, self.n_classes = alpha, n_classes

    def fit(self, X, y):
        Xb = np.hstack([X, np.ones((len(X), 1))])
        Y = np.eye(self.n_classes)[np.asarray(y)]
        self.W = np.linalg.solve(Xb.T @ Xb + self.alpha * np.eye(Xb.shape[1]), Xb.T @ Y)
        return self

    def predict(self, X):
        return np.hstack([X, np.ones((len(X), 1))]) @ self.W

    def __repr__(self):
        return f"RidgeModel(alpha={self.alpha}, n_classes={self.n_classes})"


def in_fold_predictions(X, y, make_model):
    """What a model fitted on ALL the data predicts for it (the leak the check recognises)."""
    return make_model().fit(X, y).predict(X)


# ---------------------------------------------------------------- comparing plain values


def same(got, want, rtol=1e-9):
    """True when ``got`` equals ``want``: floats to ``rtol`` relative (NaN equals NaN), ints and
    strings exactly, lists and tuples item by item (either kind), dicts key by key."""
    if isinstance(want, (bool, np.bool_)):
        return isinstance(got, (bool, np.bool_)) and bool(got) == bool(want)
    if isinstance(want, (int, float, np.integer, np.floating)):
        if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
            return False
        g, w = float(got), float(want)
        if math.isnan(w) or math.isnan(g):
            return math.isnan(w) and math.isnan(g)
        return g == w or abs(g - w) <= rtol * max(abs(g), abs(w))
    if isinstance(want, str):
        return isinstance(got, str) and got == want
    if want is None:
        return got is None
    if isinstance(want, (list, tuple)):
        return isinstance(got, (list, tuple)) and len(got) == len(want) and all(map(same, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and set(got) == set(want) and all(same(got[k], want[k]) for k in want)
    if isinstance(want, np.ndarray):  # float64 arrays: the course's relative error and tolerance
        return isinstance(got, np.ndarray) and got.dtype.kind == "f" and matches(got, want)
    return got == want


def show(value, limit=300):
    """A value as a student reads it (short)."""
    if isinstance(value, float) or isinstance(value, np.floating):
        return _fmt(float(value))
    if isinstance(value, records.Opaque):
        return f"a {value.type}"
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {show(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        inner = ", ".join(show(v) for v in value)
        text = f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[:limit] + " ..."


def named(mistakes, what, got, case):
    return [(m, "") for m in mistakes if m.applies(what, got, case)]


# ---------------------------------------------------------------- rows


@dataclasses.dataclass(frozen=True)
class Row:
    """A table row of this chapter's own kinds: checks ``<name>`` with ``kind`` (a Check class).

    reference: the function of reference.py;  specs, make, mistakes: as for ``checking.Layer``
    """

    name: str
    reference: str
    specs: Sequence
    make: Callable
    kind: type = None
    mistakes: Sequence[Mistake] = ()
    failed_inputs: int = 1

    def checks(self, module):
        return [self.kind(module, self)]


def _objective_of(args):
    return next((v for v in args.values() if isinstance(v, Objective)), None)


def _call_log(objective, configs=None):
    """The objective's calls as (config, epochs) pairs (at most 60), or config indices into
    ``configs`` when given (-1: a config that is not one of them)."""
    if objective is None:
        return []
    calls = objective.calls[:60]
    if configs is None:
        return [(c, e) for c, e in calls]
    return [(next((i for i, k in enumerate(configs) if k == c), -1), e) for c, e in calls]


class ReturnsCheck(Check):
    """``value = function(*inputs)``: the reference's value exactly, and (for searches) the same
    trainings as the reference's (which configs, for how many epochs)."""

    def doc(self):
        return f"Check {self.name}(...) against reference.{self.row.reference}: the same value, the same trainings."

    # -- kernel

    def run_case(self, functions, case):
        args, result, observation = self._call_on_inputs(functions[0], case)
        if "error" in observation:
            return observation
        configs = args.get("configs")
        return {**observation, "value": records.encode(result),
                "calls": records.encode(_call_log(_objective_of(args), configs)),
                "n_calls": records.encode(len(getattr(_objective_of(args), "calls", [])))}

    # -- grader

    def compute_expected(self, case):
        args = copy.deepcopy(case.inputs)
        value = self.reference()(**args)
        objective = _objective_of(args)
        return {"value": value, "calls": _call_log(objective, args.get("configs")),
                "n_calls": len(getattr(objective, "calls", []))}

    def judge_case(self, observation, case, hidden, index):
        expected = self.expected(case, hidden, index, self.compute_expected)
        problems = []
        got = observation.get("value")
        if not same(got, expected["value"]):
            problems.append(Problem("returned the wrong value.", [f"  got       {show(got)}",
                                                                  f"  expected  {show(expected['value'])}"],
                                    named(self.mistakes(), "value", got, case)))
        calls = observation.get("calls")
        if (_objective_of(case.inputs) is not None and not self._same_calls(calls, expected["calls"])) \
                or observation.get("n_calls") != expected["n_calls"]:
            got_calls = calls if isinstance(calls, list) else []
            problems.append(Problem(
                f"trained other configs or budgets than expected ({observation.get('n_calls')} calls of the "
                f"objective, expected {expected['n_calls']}).",
                [f"  got       {self._show_calls(got_calls)}", f"  expected  {self._show_calls(expected['calls'])}"],
                named(self.mistakes(), "calls", got_calls, case)))
        return problems, 0.0

    @staticmethod
    def _same_calls(got, want):
        """The same (config, epochs) calls, in any order."""
        if not isinstance(got, list):
            return False
        return collections.Counter(json.dumps(c, sort_keys=True, default=str) for c in got) == \
            collections.Counter(json.dumps(list(c), sort_keys=True, default=str) for c in want)

    @staticmethod
    def _show_calls(calls):
        counts = collections.Counter((e, c if not isinstance(c, dict) else json.dumps(c, default=str))
                                     for c, e in (x for x in calls if isinstance(x, (list, tuple)) and len(x) == 2))
        by_epochs = collections.defaultdict(list)
        for (epochs, config), n in counts.items():
            by_epochs[epochs].extend([config] * n)
        return "; ".join(f"{epochs} epochs: configs[{', '.join(sorted(map(str, cs)))}]" for epochs, cs in
                         sorted(by_epochs.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)))[:500] or "no call"

    def mistakes(self):
        return tuple(self.row.mistakes)


def calls_of(what, **reference_options):
    """observed(got, case, "calls"): the calls equal those of the reference run with the options
    (``keep_best=False``, ``grow=False``: the diagnosed mistakes), where those differ from the right ones."""
    def observed(got, case, kind):
        if kind != what:
            return False
        from importlib import import_module
        reference = import_module(f"{__name__.rsplit('.', 1)[0]}.reference")
        args, right = copy.deepcopy(case.inputs), copy.deepcopy(case.inputs)
        reference.successive_halving(**args, **reference_options)
        reference.successive_halving(**right)
        wrong_calls = _call_log(args["objective"], args["configs"])
        right_calls = _call_log(right["objective"], right["configs"])
        return not ReturnsCheck._same_calls([list(c) for c in right_calls], wrong_calls) and \
            ReturnsCheck._same_calls(got, wrong_calls)
    return observed


# ---------------------------------------------------------------- draws: statistical tests


def chi_square_p(values, options_count):
    """p-value of a chi-square test that ``values`` (integers 0..options_count-1) are uniform."""
    from scipy import stats
    counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=options_count)
    return float(stats.chisquare(counts).pvalue)


def column_tests(column, spec):
    """{test: (passed, what it measured)} for the draws ``column`` of one parameter of ``spec``."""
    kind = spec[0]
    x = np.asarray(column, dtype=np.float64)
    if kind in ("log", "uniform"):
        low, high = float(spec[1]), float(spec[2])
        if np.any(x < low * (1 - 1e-12)) or np.any(x > high * (1 + 1e-12)):
            return {"inside": (False, f"values from {_fmt(float(x.min()))} to {_fmt(float(x.max()))}, "
                                      f"outside [{_fmt(low)}, {_fmt(high)}]")}
        if kind == "log":
            x, low, high = np.log10(x), math.log10(low), math.log10(high)
        mid, half = (low + high) / 2, (high - low) / 2
        scale = " of log10" if kind == "log" else ""
        return {f"{name}{scale}": result for name, result in uniform_tests(x - mid, half).items()}
    if kind == "int":
        low, high = int(spec[1]), int(spec[2])
        if np.any(x != np.round(x)) or np.any(x < low) or np.any(x > high):
            return {"inside": (False, f"values must be integers from {low} to {high} (both included); got "
                                      f"{_fmt(float(x.min()))} to {_fmt(float(x.max()))}")}
        p = chi_square_p(x - low, high - low + 1)
        return {"counts": (p >= ALPHA, f"chi-square p = {p:.2g} for equal counts of {low}..{high}")}
    options = len(spec[1])
    if np.any(x < 0):
        return {"inside": (False, f"a value that is not one of the options {spec[1]}")}
    p = chi_square_p(x, options)
    return {"counts": (p >= ALPHA, f"chi-square p = {p:.2g} for equal counts of the {options} options")}


def follows_linear_uniform(column, spec):
    """A log parameter's draws that follow U(low, high) in linear space (the diagnosed mistake)."""
    if spec[0] != "log" or not isinstance(column, np.ndarray) or column.dtype.kind not in "fiu" or column.size < 100:
        return False
    x = column.astype(np.float64)
    low, high = float(spec[1]), float(spec[2])
    return bool(np.all(np.isfinite(x))) and all(ok for ok, _ in uniform_tests(x - (low + high) / 2,
                                                                              (high - low) / 2).values())


def _columns(configs, space):
    """Draws as one float array per parameter (a categorical one as the option's index, -1 when
    it is none of them), or a string saying why they cannot be."""
    if not isinstance(configs, list):
        return f"a {type(configs).__name__}"
    columns = {name: [] for name in space}
    for config in configs:
        if not isinstance(config, dict) or set(config) != set(space):
            keys = sorted(config) if isinstance(config, dict) else type(config).__name__
            return f"a config with keys {keys}, expected {sorted(space)}"
        for name, spec in space.items():
            value = config[name]
            if spec[0] == "choice":
                value = next((i for i, o in enumerate(spec[1]) if o == value), -1)
            elif isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
                return f"{name} = {value!r}, not a number"
            columns[name].append(float(value))
    return {name: np.asarray(v, dtype=np.float64) for name, v in columns.items()}


def json_digest(encoded):
    """A digest of recorded (encoded) draws: the kernel's and the grader's agree exactly when the
    draws do."""
    return hashlib.sha256(json.dumps(encoded, sort_keys=True).encode()).hexdigest()[:32]


class DrawsCheck(Check):
    """A function that draws from ``rng``: its draws pass the statistical tests of their law, the
    same seed gives the same draws, numpy's global random state is untouched."""

    def doc(self):
        return (f"Check {self.name}(...): statistical tests of its draws at p < 1e-8 each (false alarms below "
                "1e-6 per check), the rng it is given used alone.")

    def report(self, count, worst):
        return f"✓ {self.name} passed {count} cases (statistical tests at p < 1e-8 each, same seed, same draws)"

    def mistakes(self):
        return tuple(self.row.mistakes)

    # -- kernel

    def _draw(self, function, case, seed):
        """The draws for ``seed`` in recordable form: {"columns": {...}, "scores": ...} or {"sample": x}."""
        inputs = copy.deepcopy(case.inputs)
        space, kind = inputs.get("space"), case.inputs["draw"]
        rng = np.random.default_rng(seed)
        if kind == "log_uniform":
            return {"sample": function(inputs["low"], inputs["high"], inputs["size"], rng)}, None
        if kind == "sample_config":
            return {"configs": [function(space, rng) for _ in range(inputs["n"])]}, None
        objective = Objective()
        return {"results": function(objective, space, inputs["n_trials"], rng)}, objective

    def run_case(self, functions, case):
        before = _state_digest()
        outs = []
        for seed in (case.seed, case.seed, case.seed + 1):
            result, observation = self._call(lambda: self._draw(functions[0], case, seed), self.name, [], case)
            if "error" in observation:
                return observation
            outs.append(result)
        after = _state_digest()
        digests = [self._digest(out[0], case) for out in outs]
        record = {**observation, "draws": records.encode(self._recordable(outs[0][0], case)),
                  "again_digest": digests[1], "other_digest": digests[2], "first_digest": digests[0],
                  "state_before": before, "state_after": after}
        if outs[0][1] is not None:
            record["n_calls"] = len(outs[0][1].calls)
        return record

    @staticmethod
    def _recordable(out, case):
        if "sample" in out:
            return {"sample": out["sample"]}
        space = case.inputs["space"]
        if "configs" in out:
            columns = _columns(out["configs"], space)
            return {"columns": columns} if isinstance(columns, dict) else {"malformed": columns}
        results = out["results"]
        if not isinstance(results, list) or not all(isinstance(r, tuple) and len(r) == 2 for r in results):
            return {"malformed": "must return a list of (config, score) tuples, got "
                                 f"{show(results, 120) if not isinstance(results, list) else 'a list of ' + show(results[:2], 120)}"}
        columns = _columns([c for c, _ in results], space)
        if not isinstance(columns, dict):
            return {"malformed": columns}
        scores = [s for _, s in results]
        if not all(isinstance(s, (int, float, np.integer, np.floating)) and not isinstance(s, bool) for s in scores):
            return {"malformed": "a score that is not a number"}
        return {"columns": columns, "scores": np.asarray(scores, dtype=np.float64)}

    def _digest(self, out, case):
        return json_digest(records.encode(self._recordable(out, case)))

    @staticmethod
    def _decode_observation(obs):
        if isinstance(obs, dict) and "error" not in obs:
            digests = [obs.get(k) for k in ("first_digest", "again_digest", "other_digest", "state_before",
                                            "state_after")]
            if not all(isinstance(d, str) for d in digests):
                raise records.RecordError("malformed record (no digests)")
            draws = records.decode(obs.get("draws"))
            n_calls = obs.get("n_calls")
            return {"draws": draws if isinstance(draws, dict) else {}, "first": digests[0],
                    "same_seed_same": digests[0] == digests[1], "other_seed_differs": digests[0] != digests[2],
                    "global_state_unchanged": digests[3] == digests[4],
                    "n_calls": n_calls if type(n_calls) is int else None,
                    "warnings": [str(w)[:300] for w in obs.get("warnings", [])][:5]
                    if isinstance(obs.get("warnings"), list) else []}
        return Check._decode_observation(obs)

    # -- grader

    def compute_expected(self, case):
        return None

    def judge_case(self, observation, case, hidden, index):
        draws = observation["draws"]
        # The digest must be of these very draws: a record cannot claim another run's determinism.
        if json_digest(records.encode(draws)) != observation["first"]:
            return [Problem("the check's results are inconsistent (the draws are not those digested).")], 0.0
        if "malformed" in draws:
            return [Problem(f"returned {draws['malformed']}.")], 0.0
        problems = []
        if not observation["global_state_unchanged"] or not observation["same_seed_same"]:
            what = [] if observation["global_state_unchanged"] else ["numpy's global random state changed"]
            what += [] if observation["same_seed_same"] else ["two calls with the same seed gave different draws"]
            problems.append(Problem(f"does not draw from the rng it is given: {' and '.join(what)}.",
                                    ["  draw every random number from `rng` (rng.uniform, rng.integers), never "
                                     "from np.random.* (numpy's global generator)"]))
        elif not observation["other_seed_differs"] and self._size(case) > 1:
            problems.append(Problem("gave the same draws for two different seeds: draw from `rng`."))
        return problems + self._law_problems(draws, observation, case), 0.0

    @staticmethod
    def _size(case):
        i = case.inputs
        return i.get("size", i.get("n", i.get("n_trials", 0)))

    def _law_problems(self, draws, observation, case):
        inputs = case.inputs
        if inputs["draw"] == "log_uniform":
            x = draws.get("sample")
            size = inputs["size"]
            shape = (size,) if isinstance(size, int) else tuple(size)
            if not isinstance(x, np.ndarray) or x.shape != shape or x.dtype != np.float64:
                what = f"shape {x.shape}, dtype {x.dtype}" if isinstance(x, np.ndarray) else f"a {type(x).__name__}"
                return [Problem(f"must return a float64 array of shape {shape}; got {what}.")]
            spec = ("log", inputs["low"], inputs["high"])
            columns, space = {"x": x.ravel()}, {"x": spec}
        else:
            columns, space = draws.get("columns"), inputs["space"]
            n = inputs.get("n", inputs.get("n_trials"))
            if not isinstance(columns, dict) or set(columns) != set(space) or any(
                    not isinstance(c, np.ndarray) or c.shape != (n,) for c in columns.values()):
                return [Problem(f"must give {n} configs with the keys {list(space)}.")]
        problems = []
        if inputs["draw"] == "random_search":
            problems += self._search_problems(draws, observation, case)
        if self._size(case) < 100:  # too few draws for a test: determinism and shape only
            return problems
        for name, spec in space.items():
            failed = [text for ok, text in column_tests(columns[name], spec).values() if not ok]
            if failed:
                label = "the samples" if inputs["draw"] == "log_uniform" else f"the draws of {name!r}"
                where = ["  (tested on log10 of the draws, centred on the middle of the log range)"] \
                    if spec[0] == "log" else []
                problems.append(Problem(f"{label} do not follow {describe(spec)}.", [f"  {t}" for t in failed] + where,
                                        named(self.mistakes(), "draws", (columns[name], spec), case)))
        return problems

    @staticmethod
    def _search_problems(draws, observation, case):
        space, columns, scores = case.inputs["space"], draws["columns"], draws.get("scores")
        n = case.inputs["n_trials"]
        problems = []
        if observation.get("n_calls") != n:
            problems.append(Problem(f"called the objective {observation.get('n_calls')} times for n_trials={n}: "
                                    "once per trial."))
        if not isinstance(scores, np.ndarray) or scores.shape != (n,):
            return problems + [Problem("must return one (config, score) pair per trial.")]
        for i in range(n):
            config = {name: (spec[1][int(columns[name][i])] if spec[0] == "choice" else float(columns[name][i]))
                      for name, spec in space.items()}
            if any(spec[0] == "choice" and columns[name][i] < 0 for name, spec in space.items()):
                continue  # reported by the tests of the draws
            want = score(config)
            if not same(float(scores[i]), want):
                problems.append(Problem(f"trial {i}'s score is not the objective's for its config.",
                                        [f"  config    {show(config)}", f"  got       {_fmt(float(scores[i]))}",
                                         f"  expected  {_fmt(want)} (objective(config))"]))
                break
        return problems


def describe(spec):
    kind = spec[0]
    if kind == "log":
        return f"a log-uniform law on [{_fmt(spec[1])}, {_fmt(spec[2])}] (log10 uniform)"
    if kind == "uniform":
        return f"U({_fmt(spec[1])}, {_fmt(spec[2])})"
    if kind == "int":
        return f"equal probabilities on the integers {spec[1]}..{spec[2]}"
    return f"equal probabilities on the options {spec[1]}"


# ---------------------------------------------------------------- the Optuna study (capstone)

STUDY_TRIALS = {False: 10, True: 8}  # the trial budgets of the public and the hidden study
STUDY_SECONDS = 25.0        # and its time limit (no new trial after it; the cell stops at 30 s)
STUDY_EPOCHS = 8            # the epochs objective(trial) trains for (the notebook's EPOCHS)
THRESHOLD = 0.94            # the best complete trial's validation accuracy must reach this
RERUNS = 3                  # trials the grader re-trains: the best complete one and the first pruned ones
SAMPLER_SEEDS = {False: 0, True: 1}  # public, hidden
# What objective(trial) must declare: name -> (distribution, low, high, log required).
DECLARED = {"lr": ("FloatDistribution", 1e-4, 1.0, True), "weight_decay": ("FloatDistribution", 1e-6, 1e-1, True),
            "hidden": ("IntDistribution", 16, 128, None)}
OPTIONAL = {"momentum", "batch_size", "init_scale"}  # further train() arguments it may search
SAME_ACCURACY = 1.5 / 449   # a reported accuracy equals the re-run's up to one validation example


def _quiet_sqlite(dbapi_connection, connection_record):
    """A throwaway study file: no fsync per write (10x faster; durability is not needed)."""
    dbapi_connection.execute("PRAGMA synchronous=OFF")
    dbapi_connection.execute("PRAGMA journal_mode=MEMORY")


def run_study(objective, seed, trials=STUDY_TRIALS[False], seconds=STUDY_SECONDS, folder=None):
    """Run the check's study of ``objective`` (TPE seeded by ``seed``, MedianPruner) in a new SQLite
    file in ``folder`` (default: the working directory), deleted afterwards; returns its trials."""
    import optuna
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    where = tempfile.mkdtemp(prefix=".optuna-check-", dir=folder or os.getcwd())
    event.listen(Engine, "connect", _quiet_sqlite)
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{os.path.join(where, 'study.db')}")
        study = optuna.create_study(storage=storage, study_name="check", direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1))
        study.optimize(objective, n_trials=trials, timeout=seconds)
        found = study.get_trials(deepcopy=True)
        storage.engine.dispose()
        return found
    finally:
        event.remove(Engine, "connect", _quiet_sqlite)
        optuna.logging.set_verbosity(verbosity)
        shutil.rmtree(where, ignore_errors=True)


def trial_record(trial):
    """What the grader reads of one trial (plain data)."""
    from optuna.distributions import distribution_to_json
    return {"number": trial.number, "state": trial.state.name, "params": dict(trial.params),
            "distributions": {k: distribution_to_json(d) for k, d in trial.distributions.items()},
            "intermediate": [[int(s), float(v)] for s, v in sorted(trial.intermediate_values.items())],
            "value": trial.value}


class OptunaCheck(Check):
    """``checks.capstone_optuna(objective)``: a seeded study of the student's objective (kernel),
    judged on its recorded trials and on re-runs of the training by the grader."""

    def doc(self):
        return (f"Capstone: a seeded Optuna study of your objective(trial) ({STUDY_TRIALS[False]} trials, TPE, "
                f"MedianPruner, SQLite): log scales, pruning, best accuracy >= {THRESHOLD}, reports re-checked.")

    def mistakes(self):
        return tuple(self.row.mistakes)

    # -- kernel

    def run(self, functions, hidden):
        record = {"check": self.name, "hidden": bool(hidden)}
        objective = functions[0]
        try:
            with _time_limit(STUDY_SECONDS + 5):
                trials = run_study(objective, SAMPLER_SEEDS[bool(hidden)], STUDY_TRIALS[bool(hidden)])
            record["trials"] = records.encode([trial_record(t) for t in trials])
        except _TimeLimit:
            record["error"] = [f"{self.name}: the study did not finish within {STUDY_SECONDS + 5:g} s."]
        except NotImplementedError:
            record["error"] = ["objective is not implemented yet: replace `raise NotImplementedError()` with "
                               "your code."]
        except ModuleNotFoundError as exc:
            record["error"] = [f"{self.name}: {exc} (pip install optuna)"]
        except (Exception, SystemExit) as exc:  # the student's objective raised: optuna re-raises it
            record["error"] = [f"objective raised {type(exc).__name__}: {str(exc)[:400]}",
                               "  during    the check's Optuna study", *_student_frames(exc)]
        record["modules"] = _oracle_modules()
        return record

    # -- grader

    def judge(self, record, hidden):
        try:
            trials = self._decode(record, hidden)
        except records.RecordError as exc:
            return Verdict(False, f"{self.name}: the check's results are unreadable ({exc}).")
        if trials and isinstance(trials[0], str):  # the study stopped: an error, said in lines
            first = trials[0] if trials[0].startswith(f"{self.name}:") else f"{self.name}: {trials[0]}"
            return Verdict(False, "\n".join([first, *trials[1:8]]))
        problems = self._declared(trials) or self._seeded(trials, SAMPLER_SEEDS[bool(hidden)])
        problems += self._pruning(trials)
        best = max((t for t in trials if t["state"] == "COMPLETE" and _number(t["value"]) is not None),
                   key=lambda t: t["value"], default=None)
        if best is None:
            problems.append(Problem("no trial completed.", ["  a complete trial returns the final validation "
                                                            "accuracy (a number)"]))
        elif best["value"] < THRESHOLD:
            problems.append(Problem(f"the best validation accuracy is {best['value']:.3f}, below {THRESHOLD}.",
                                    ["  train with the parameters the trial suggested, for EPOCHS epochs, and "
                                     "return run.val_accuracy[-1]; search lr on [1e-4, 1] (log)"]))
        if not problems:
            problems += self._reruns(trials, best)
        if problems:
            if not problems[0].header.startswith("trial") or "reference run" not in problems[0].header:
                problems[0].header = f"outcome not reached: {problems[0].header}"
            text = fail_text(self.name, problems, None)
            return Verdict(False, text, tuple(dict.fromkeys(m.id for p in problems for m, _ in p.mistakes)))
        pruned = sum(t["state"] == "PRUNED" for t in trials)
        return Verdict(True, f"✓ {self.name}: {len(trials)} trials, {pruned} pruned, best validation accuracy "
                             f"{best['value']:.3f} (>= {THRESHOLD}); lr and weight_decay on log scales; the "
                             f"reports of {min(RERUNS, 1 + pruned)} trials match the grader's re-runs")

    def _decode(self, record, hidden):
        if not isinstance(record, dict) or record.get("check") != self.name or record.get("hidden") != bool(hidden):
            raise records.RecordError("they belong to another check")
        if "error" in record:
            error = record["error"]
            if not isinstance(error, list) or not all(isinstance(line, str) for line in error) or not error:
                raise records.RecordError("malformed error")
            return [str(line)[:600] for line in error]
        trials = records.decode(record.get("trials"))
        if not isinstance(trials, list) or len(trials) > STUDY_TRIALS[bool(hidden)]:
            raise records.RecordError("no trials")
        out = []
        for t in trials:
            if not (isinstance(t, dict) and isinstance(t.get("params"), dict) and isinstance(t.get("state"), str)
                    and isinstance(t.get("distributions"), dict) and isinstance(t.get("intermediate"), list)):
                raise records.RecordError("malformed trial")
            steps = []
            for item in t["intermediate"]:
                if not (isinstance(item, (list, tuple)) and len(item) == 2 and _number(item[1]) is not None
                        and type(item[0]) is int):
                    raise records.RecordError("malformed intermediate value")
                steps.append((item[0], float(item[1])))
            out.append({**t, "intermediate": steps, "value": _number(t.get("value"))})
        return out

    def _declared(self, trials):
        """Problems with the distributions the objective declared (first trial that has one)."""
        for t in trials:
            dists = {}
            for name, text in t["distributions"].items():
                try:
                    parsed = json.loads(text)
                    dists[name] = (parsed["name"], parsed["attributes"])
                except (TypeError, ValueError, KeyError):
                    return [Problem(f"trial {t.get('number')}'s distribution of {name!r} is unreadable.")]
            missing = [n for n in DECLARED if n not in dists]
            extra = [n for n in dists if n not in DECLARED and n not in OPTIONAL]
            if missing or extra:
                return [Problem(f"trial {t.get('number')} suggested {sorted(dists)}: expected "
                                f"{sorted(DECLARED)}" + (f" (and optionally {sorted(OPTIONAL)})" if extra else "")
                                + ".", ["  suggest exactly the parameters the notebook lists, under train()'s "
                                        "argument names"])]
            problems = []
            for name, (kind, low, high, log) in DECLARED.items():
                got_kind, attributes = dists[name]
                got = (got_kind, attributes.get("low"), attributes.get("high"))
                if got != (kind, low, high):
                    problems.append(Problem(f"{name} is declared as {got_kind}({attributes.get('low')}, "
                                            f"{attributes.get('high')}), expected {kind}({low}, {high}).",
                                            ["  use trial.suggest_float for floats, trial.suggest_int for integers, "
                                             "with the ranges the notebook states"]))
                elif log and not attributes.get("log"):
                    problems.append(Problem(f"{name} is searched on a linear scale (log=False).", [],
                                            named(self.mistakes(), "distributions", (name, attributes), None)))
            return problems
        return [Problem("no trial suggested any parameter.")] if trials else [Problem("the study has no trial.")]

    @staticmethod
    def _seeded(trials, seed, replayed=3):
        """The first trials' params must be what the check's seeded sampler draws for the declared
        distributions (its first trials are random): a record of another study does not pass."""
        import optuna
        from optuna.distributions import json_to_distribution
        study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed,
                                                                                             n_startup_trials=5))
        for t in trials[:replayed]:
            try:
                asked = study.ask({k: json_to_distribution(v) for k, v in t["distributions"].items()})
            except (TypeError, ValueError, KeyError) as exc:
                return [Problem(f"trial {t.get('number')}'s distributions are unreadable ({exc}).")]
            if not same(asked.params, t["params"]):
                return [Problem(f"trial {t.get('number')} is not one of the check's study: its params are not "
                                f"what the seeded sampler draws (seed {seed}).",
                                ["  this record was not produced by this check's study"])]
            study.tell(asked, state=optuna.trial.TrialState.PRUNED)
        return []

    def _pruning(self, trials):
        reported = [t for t in trials if t["intermediate"]]
        if not reported:
            return [Problem("no trial reported an intermediate value, so none could be pruned.", [],
                            named(self.mistakes(), "reports", trials, None))]
        if not any(t["state"] == "PRUNED" for t in trials):
            return [Problem("no trial was pruned.", ["  after each epoch: trial.report(accuracy, epoch); "
                                                     "if trial.should_prune(): raise optuna.TrialPruned()"])]
        for t in reported:
            steps = [s for s, _ in t["intermediate"]]
            if steps != list(range(1, len(steps) + 1)) or len(steps) > STUDY_EPOCHS:
                return [Problem(f"trial {t['number']} reported at steps {steps[:10]}: report once per epoch, "
                                f"step = the epoch (1..{STUDY_EPOCHS}).")]
            if t["state"] == "COMPLETE" and (len(steps) != STUDY_EPOCHS or t["value"] != t["intermediate"][-1][1]):
                return [Problem(f"trial {t['number']} completed after reporting {len(steps)} epochs, returning "
                                f"{t['value']}: train for EPOCHS = {STUDY_EPOCHS} epochs and return the last "
                                "validation accuracy.")]
        return []

    def _reruns(self, trials, best):
        """The grader trains again (trusted code) and compares with the reported values."""
        from .training import train
        chosen = [best] + [t for t in trials if t["state"] == "PRUNED"][:RERUNS - 1]
        for t in chosen:
            params = {k: v for k, v in t["params"].items() if k in DECLARED or k in OPTIONAL}
            reported = [v for _, v in t["intermediate"]]
            try:
                run = train(**params, epochs=len(reported))
            except (TypeError, ValueError) as exc:
                return [Problem(f"trial {t['number']}'s params {show(t['params'])} cannot be trained: {exc}.")]
            for epoch, (got, want) in enumerate(zip(reported, run.val_accuracy), start=1):
                if not abs(got - want) <= SAME_ACCURACY:
                    return [Problem(f"trial {t['number']}: what it reported is not the reference run: training.train "
                                    f"does not give these validation accuracies for its params.",
                                    [f"  params    {show(t['params'])}", f"  epoch     {epoch}",
                                     f"  reported  {got:.4f}", f"  re-run    {want:.4f} (training.train(**params, "
                                                                  f"epochs={len(reported)}), seed 0)",
                                     "  report run.val_accuracy[-1] after each epoch, with train's default data "
                                     "and seed"])]
        return []


def _number(value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    return float(value) if math.isfinite(float(value)) else None


@dataclasses.dataclass(frozen=True)
class OptunaStudy:
    """The capstone row: checks ``<name>(objective)`` with :class:`OptunaCheck`."""

    name: str
    mistakes: Sequence[Mistake] = ()
    check_kinds: ClassVar[tuple] = (OptunaCheck,)

    def checks(self, module):
        return [kind(module, self) for kind in self.check_kinds]


# ---------------------------------------------------------------- mistakes

LINEAR_NOT_LOG = Mistake(
    "hp.uniform_not_log_uniform", "uniform instead of log-uniform sampling",
    "A parameter like the learning rate matters by its order of magnitude: draw its exponent uniformly, "
    "10 ** rng.uniform(log10(low), log10(high)). Uniform draws on [1e-6, 1e-2] land above 1e-3 nine times "
    "in ten, and almost never near 1e-6.",
    observed=lambda got, case, what: what == "draws" and follows_linear_uniform(*got), explains=("draws",))


def _previous_rule(losses, factor):
    """The abort rule that compares each loss with the PREVIOUS one (NaN still aborting)."""
    losses = [float(x) for x in losses]
    if any(not math.isfinite(x) for x in losses):
        return True
    return any(b > factor * a for a, b in zip(losses, losses[1:]))


ABORT_VS_PREVIOUS = Mistake(
    "hp.abort_vs_previous", "the loss compared with the previous loss, not the first",
    "The rule is about the whole run: abort once a loss exceeds factor times the INITIAL loss (losses[0]). "
    "A slow climb (2.3, 3.0, 4.2, 5.6, 7.0) never triples from one epoch to the next but has left the "
    "initial loss far behind; a single jump back from a low loss is no divergence.",
    observed=lambda got, case, what: what == "value" and isinstance(got, (bool, np.bool_)) and
    bool(got) == _previous_rule(case.inputs["losses"], case.inputs["factor"]), explains=("value",))

NAN_NOT_ABORTING = Mistake(
    "hp.nan_not_aborting", "a NaN loss does not abort",
    "Every comparison with NaN is False, so `loss > factor * losses[0]` never fires on a NaN: test "
    "np.isfinite(loss) (NaN and inf) first. A NaN loss never comes back.",
    observed=lambda got, case, what: what == "value" and got is not None and not bool(got) and
    any(math.isnan(float(x)) for x in case.inputs["losses"]), explains=("value",))


def _refined_linearly(got, case, what):
    from importlib import import_module
    if what != "value":
        return False
    reference = import_module(f"{__name__.rsplit('.', 1)[0]}.reference")
    args = copy.deepcopy(case.inputs)
    wrong = reference.refine_space(**args, log_space=False)
    return not same(wrong, reference.refine_space(**copy.deepcopy(case.inputs))) and same(got, wrong)


REFINE_LINEAR = Mistake(
    "hp.refine_linear_for_log", "a log parameter's range refined in linear space",
    "For a log parameter, take log10 of the top configs' values, pad by 10 % of log10(high) - log10(low) "
    "and go back with 10 **: in linear space the padding of a range like [1e-5, 1e-1] is 0.01, which "
    "swallows every small value.",
    observed=_refined_linearly, explains=("value",))

HALVING_KEEPS_WORST = Mistake(
    "hp.halving_keeps_worst", "successive halving keeps the worst configs",
    "Keep the configs with the HIGHEST scores (a NaN score is the lowest): sort by score descending "
    "before taking the first n // eta.", observed=calls_of("calls", keep_best=False), explains=("calls",))

HALVING_FIXED_BUDGET = Mistake(
    "hp.halving_budget_not_multiplied", "the epochs not multiplied by eta after each round",
    "Successive halving moves the budget from the many bad configs to the few good ones: each round keeps "
    "1/eta of the configs and trains them eta times longer (min_epochs, eta * min_epochs, ...).",
    observed=calls_of("calls", grow=False), explains=("calls",))


def _leaked(got, case, what):
    if what != "value" or not isinstance(got, np.ndarray):
        return False
    leak = in_fold_predictions(case.inputs["X"], case.inputs["y"], case.inputs["make_model"])
    return got.shape == leak.shape and np.allclose(got, leak, rtol=1e-7, atol=1e-10)


OOF_LEAK = Mistake(
    "hp.oof_leaks_labels", "the model that predicts a fold was fitted on that fold too",
    "Out-of-fold means: for fold i, fit a NEW model (make_model()) on the other k - 1 folds only, and "
    "predict fold i with it. A model that saw the fold's labels predicts them too well, and the "
    "second-level model learns to trust it more than it deserves.", observed=_leaked, explains=("value",))

OPTUNA_NOT_LOG = Mistake(
    "hp.optuna_linear_scale", "lr or weight_decay suggested on a linear scale",
    "trial.suggest_float(name, low, high) samples uniformly: on [1e-4, 1] 90 % of the learning rates "
    "are above 0.1. Pass log=True for the learning rate and the weight decay.",
    observed=lambda got, case, what: what == "distributions", explains=("distributions",))

OPTUNA_NO_REPORTS = Mistake(
    "hp.optuna_no_reports", "no intermediate values reported (the pruner cannot prune)",
    "A pruner compares a running trial's intermediate values with the other trials' at the same step: "
    "call trial.report(accuracy, epoch) after each epoch (training.train's on_epoch), then "
    "`if trial.should_prune(): raise optuna.TrialPruned()`.",
    observed=lambda got, case, what: what == "reports", explains=("reports",))


# ---------------------------------------------------------------- inputs


def spec(**params):
    return Spec((), params=params)


def make_initial_loss(spec, rng):
    C = spec.params["C"]
    return Case(f"num_classes={C}", {"num_classes": C}, tags=frozenset({"initial_loss"}))


def make_ratio(spec, rng):
    p = spec.params
    W = rng.standard_normal(p["shape"]) * p.get("scale", 0.1)
    dW = rng.standard_normal(p["shape"]) * p.get("grad", 0.01)
    return Case(f"W {p['shape']} (std {p.get('scale', 0.1)}), dW (std {p.get('grad', 0.01)}), lr={p['lr']}",
                {"W": W, "dW": dW, "lr": p["lr"]}, tags=frozenset({"ratio"}))


def make_abort(spec, rng):
    p = spec.params
    losses = p["losses"]
    losses = np.array(losses) if p.get("array") else list(losses)
    kind = "np.array(" if p.get("array") else ""
    label = f"losses={kind}{show(list(map(float, losses)))}{')' if kind else ''}, factor={p.get('factor', 3.0)}"
    return Case(label, {"losses": losses, "factor": p.get("factor", 3.0)}, tags=frozenset({"abort"}))


def make_grid(spec, rng):
    p = spec.params
    return Case(f"grid={show(p['grid'])}, objective={p.get('kind', 'smooth')!r} stand-in",
                {"objective": Objective(p.get("kind", "smooth")), "grid": copy.deepcopy(p["grid"])},
                tags=frozenset({"grid"}))


def make_boundary(spec, rng):
    p = spec.params
    return Case(f"config={show(p['config'])}, space={show(p['space'])}",
                {"config": dict(p["config"]), "space": copy.deepcopy(p["space"])}, tags=frozenset({"boundary"}))


def _results(space, n, kind, rng):
    """n configs drawn on the space (numpy, seeded) and their stand-in scores."""
    out = []
    for _ in range(n):
        config = {}
        for name, s in space.items():
            if s[0] == "log":
                config[name] = float(10 ** rng.uniform(math.log10(s[1]), math.log10(s[2])))
            elif s[0] == "uniform":
                config[name] = float(rng.uniform(s[1], s[2]))
            elif s[0] == "int":
                config[name] = int(rng.integers(s[1], s[2] + 1))
            else:
                config[name] = s[1][int(rng.integers(len(s[1])))]
        out.append((config, score(config, None, kind)))
    return out


def make_refine(spec, rng):
    p = spec.params
    results = p.get("results")
    if results is None:
        results = _results(p["space"], p["n"], p.get("kind", "smooth"), rng)
    what = f"{len(results)} results" + (f" ({p['kind']} scores)" if p.get("kind") else "")
    return Case(f"{what}, space={show(p['space'])}, top_k={p['top_k']}",
                {"results": results, "space": copy.deepcopy(p["space"]), "top_k": p["top_k"]},
                tags=frozenset({"refine"}))


def make_halving(spec, rng):
    p = spec.params
    configs = [c for c, _ in _results(p["space"], p["n"], "smooth", rng)]
    kind = p.get("kind", "smooth")
    return Case(f"{len(configs)} configs on {show(p['space'])}, objective={kind!r} stand-in, "
                f"min_epochs={p['min_epochs']}, eta={p['eta']}",
                {"configs": configs, "objective": Objective(kind), "min_epochs": p["min_epochs"], "eta": p["eta"]},
                tags=frozenset({"halving"}))


def make_oof(spec, rng):
    p = spec.params
    n, d, C = p["n"], p["d"], p.get("C", 3)
    y = np.arange(n) % C
    X = rng.standard_normal((n, d)) + 0.8 * np.eye(C, d)[y]
    make_model = functools.partial(RidgeModel, alpha=p.get("alpha", 0.5), n_classes=C)
    return Case(f"X ({n}, {d}), y with {C} classes, make_model=RidgeModel(alpha={p.get('alpha', 0.5)}), k={p['k']}",
                {"X": X, "y": y, "make_model": make_model, "k": p["k"]}, tags=frozenset({"oof"}))


def make_draws(draw):
    def make(spec, rng):
        p = dict(spec.params)
        if draw == "log_uniform":
            label = f"low={p['low']}, high={p['high']}, size={p['size']}"
        elif draw == "sample_config":
            label = f"space={show(p['space'])}, {p['n']} draws from one rng"
        else:
            label = f"space={show(p['space'])}, n_trials={p['n_trials']}, objective='smooth' stand-in"
        return Case(label, {"draw": draw, **p}, tags=frozenset({draw}))
    make.__name__ = f"make_{draw}"
    return make


# ---------------------------------------------------------------- the table

SPACE = {"lr": ("log", 1e-5, 1e-1), "weight_decay": ("log", 1e-6, 1e-2), "hidden": ("int", 16, 128),
         "momentum": ("uniform", 0.5, 0.99), "activation": ("choice", ["relu", "tanh", "sigmoid"])}
SMALL = {"lr": ("log", 1e-4, 1.0), "hidden": ("int", 1, 6), "activation": ("choice", ["relu", "tanh"])}
LR_ONLY = {"lr": ("log", 1e-6, 1e-2)}

INITIAL_LOSS_SPECS = [spec(C=10), spec(C=2), *hidden(spec(C=3), spec(C=1000), spec(C=1), spec(C=100))]

RATIO_SPECS = [spec(shape=(64, 64), lr=0.1), spec(shape=(10, 64), lr=1e-3, scale=1.0, grad=0.5),
               *hidden(spec(shape=(3, 5), lr=1.0), spec(shape=(128, 32), lr=1e-5, scale=0.01, grad=10.0))]

ABORT_SPECS = [spec(losses=[2.3, 2.0, 1.5]), spec(losses=[2.3, 3.0, 4.2, 5.6, 7.0]), spec(losses=[2.3, math.nan]),
               spec(losses=[2.3, 0.4, 1.5]), spec(losses=[1.0, 1.5, 2.1], factor=2.0),
               *hidden(spec(losses=[]), spec(losses=[2.3]), spec(losses=[math.nan]), spec(losses=[2.3, math.inf]),
                       spec(losses=[2.0, 6.0]), spec(losses=[2.0, 1.0, 2.5, 6.5]),
                       spec(losses=[2.3, math.nan, 1.0]), spec(losses=[2.3, 2.1, 1.9, 8.0], array=True),
                       spec(losses=[2.3, 0.1, 0.5], factor=10.0))]

GRID_SPECS = [spec(grid={"lr": [1e-3, 1e-2, 1e-1], "hidden": [32, 64]}), spec(grid={"lr": [0.01]}),
              *hidden(spec(grid={"lr": [], "hidden": [32]}),
                      spec(grid={"lr": [1e-4, 1e-2], "weight_decay": [1e-5, 1e-3], "activation": ["relu", "tanh"]},
                           kind="ties"),
                      spec(grid={"lr": [0.01, 1.0, 0.5]}, kind="nan"))]

BOUNDARY_SPECS = [
    spec(config={"lr": 0.01, "hidden": 64}, space={"lr": ("log", 1e-5, 1e-1), "hidden": ("int", 16, 128)}),
    spec(config={"lr": 2e-5, "hidden": 120}, space={"lr": ("log", 1e-5, 1e-1), "hidden": ("int", 16, 128)}),
    spec(config={"lr": 0.009, "momentum": 0.6}, space={"lr": ("log", 1e-5, 1e-2), "momentum": ("uniform", 0.5, 1.0)}),
    *hidden(spec(config={"lr": 1e-4, "activation": "tanh"},  # 1e-4 is at 25 % in log space, at 0.1 % linearly
                 space={"lr": ("log", 1e-5, 1e-1), "activation": ("choice", ["relu", "tanh"])}),
            spec(config={"lr": 1e-5, "hidden": 16}, space={"lr": ("log", 1e-5, 1e-1), "hidden": ("int", 16, 128)}),
            spec(config={"lr": 0.5}, space={"lr": ("log", 1e-5, 1e-1)}),
            spec(config={"momentum": 0.53, "hidden": 60}, space={"momentum": ("uniform", 0.5, 1.0),
                                                                 "hidden": ("int", 16, 128)}))]

REFINE_SPECS = [spec(space=SPACE, n=30, top_k=5), spec(space={"lr": ("log", 1e-6, 1e-1)}, n=20, top_k=3),
                spec(space=SPACE, results=[], top_k=3),
                *hidden(spec(space=SPACE, n=1, top_k=3), spec(space=SPACE, n=40, top_k=8, kind="ties"),
                        spec(space={"lr": ("log", 1e-4, 10.0), "hidden": ("int", 16, 128)}, n=25, top_k=4, kind="nan"),
                        spec(space={"lr": ("log", 1e-5, 1e-1)}, results=[({"lr": 1.0}, math.nan)], top_k=2),
                        spec(space=SMALL, n=50, top_k=50))]

HALVING_SPECS = [spec(space=SPACE, n=9, min_epochs=1, eta=3), spec(space=SPACE, n=8, min_epochs=2, eta=2),
                 spec(space=SPACE, n=1, min_epochs=1, eta=3),
                 *hidden(spec(space=SPACE, n=0, min_epochs=1, eta=3), spec(space=SPACE, n=27, min_epochs=1, eta=3),
                         spec(space=SPACE, n=10, min_epochs=1, eta=3, kind="ties"),
                         spec(space={"lr": ("log", 1e-3, 10.0)}, n=12, min_epochs=1, eta=2, kind="nan"),
                         spec(space=SPACE, n=5, min_epochs=3, eta=4))]

OOF_SPECS = [spec(n=30, d=5, k=5), spec(n=31, d=4, k=4), *hidden(spec(n=10, d=3, k=10), spec(n=50, d=8, k=3, C=4),
                                                                spec(n=7, d=2, k=2, C=2, alpha=0.1))]

LOG_UNIFORM_SPECS = [spec(low=1e-6, high=1e-2, size=2000), spec(low=1e-4, high=1.0, size=3),
                     *hidden(spec(low=1.0, high=1000.0, size=5000), spec(low=0.5, high=2.0, size=1000),
                             spec(low=1e-3, high=1e-1, size=1))]

SAMPLE_CONFIG_SPECS = [spec(space=SPACE, n=1500), spec(space=LR_ONLY, n=5),
                       *hidden(spec(space=SMALL, n=2000), spec(space={"lr": ("log", 1e-8, 1e-1)}, n=1000))]

RANDOM_SEARCH_SPECS = [spec(space=SPACE, n_trials=10), spec(space=LR_ONLY, n_trials=1), spec(space=SPACE, n_trials=0),
                       *hidden(spec(space=SPACE, n_trials=600), spec(space=SMALL, n_trials=7))]

TABLE = [
    Function("expected_initial_loss", "expected_initial_loss", INITIAL_LOSS_SPECS, make_initial_loss, [
        Mistake("hp.initial_loss_log10", "log base 10 instead of the natural logarithm",
                "Cross-entropy uses the natural logarithm (np.log): -ln(1/C) = ln C, 2.303 for 10 classes.",
                wrong=lambda case: {"value": math.log10(case.inputs["num_classes"])}, explains=("value",)),
        Mistake("hp.initial_loss_sign", "the log-probability instead of the loss (sign)",
                "The loss is MINUS the log-probability of the right class: -ln(1/C) = ln C > 0.",
                wrong=lambda case: {"value": -math.log(case.inputs["num_classes"])}, explains=("value",))]),
    Function("update_ratio", "update_ratio", RATIO_SPECS, make_ratio, [
        Mistake("hp.ratio_without_lr", "the gradient's norm instead of the update's",
                "The update is lr * dW: the ratio is ||lr * dW|| / ||W||.",
                wrong=lambda case: {"value": float(np.linalg.norm(case.inputs["dW"]) / np.linalg.norm(case.inputs["W"]))},
                explains=("value",)),
        Mistake("hp.ratio_inverted", "the ratio upside down",
                "The update's norm over the weights' norm: ||lr * dW|| / ||W|| (about 1e-3 when training is healthy).",
                wrong=lambda case: {"value": float(np.linalg.norm(case.inputs["W"]) /
                                                   np.linalg.norm(case.inputs["lr"] * case.inputs["dW"]))},
                explains=("value",))]),
    Row("should_abort", "should_abort", ABORT_SPECS, make_abort, ReturnsCheck, [ABORT_VS_PREVIOUS, NAN_NOT_ABORTING]),
    Row("log_uniform", "log_uniform", LOG_UNIFORM_SPECS, make_draws("log_uniform"), DrawsCheck, [LINEAR_NOT_LOG]),
    Row("sample_config", "sample_config", SAMPLE_CONFIG_SPECS, make_draws("sample_config"), DrawsCheck,
        [LINEAR_NOT_LOG]),
    Row("grid_search", "grid_search", GRID_SPECS, make_grid, ReturnsCheck),
    Row("random_search", "random_search", RANDOM_SEARCH_SPECS, make_draws("random_search"), DrawsCheck,
        [LINEAR_NOT_LOG]),
    Row("on_boundary", "on_boundary", BOUNDARY_SPECS, make_boundary, ReturnsCheck),
    Row("refine_space", "refine_space", REFINE_SPECS, make_refine, ReturnsCheck, [REFINE_LINEAR]),
    Row("successive_halving", "successive_halving", HALVING_SPECS, make_halving, ReturnsCheck,
        [HALVING_KEEPS_WORST, HALVING_FIXED_BUDGET]),
    Row("out_of_fold_predictions", "out_of_fold_predictions", OOF_SPECS, make_oof, ReturnsCheck, [OOF_LEAK]),
    OptunaStudy("capstone_optuna", [OPTUNA_NOT_LOG, OPTUNA_NO_REPORTS]),
]

CHECKS = build(__name__, TABLE)
globals().update(CHECKS)  # checks.should_abort, checks.capstone_optuna, ...
__all__ = sorted(CHECKS)
