"""Timing batch norm's two backward passes: the graph, step by step, against the closed form.

Informative only: the notebook calls ``checks.compare_speed(...)`` in an ungraded cell, in the
student's own session, and nothing here is ever judged or recorded. The backward pass itself
is explained in book/normalization/batchnorm.md ("The batch-normalising transform").

Numpy only: it runs in the student's kernel, which has no torch while autograding.
"""
import dataclasses
import time

import numpy as np

from .checking import Case, as_tuple, call_student
from .numerics import rel_error, tolerance


@dataclasses.dataclass
class SpeedReport:
    graph_seconds: float   # median time of one batchnorm_backward call
    alt_seconds: float     # median time of one batchnorm_backward_alt call
    shape: tuple
    repeats: int
    agreement: float       # max relative error between the two backward passes' results

    @property
    def ratio(self):
        return self.graph_seconds / self.alt_seconds

    def __repr__(self):
        lines = [f"batchnorm_backward     {1e3 * self.graph_seconds:8.3f} ms per call",
                 f"batchnorm_backward_alt {1e3 * self.alt_seconds:8.3f} ms per call",
                 f"(x {self.shape} float64, median of {self.repeats} calls each)"]
        if self.ratio > 1:
            lines.append(f"speed ratio {self.ratio:.2f}: the closed form is {self.ratio:.2f}x faster.")
        else:
            lines.append(f"speed ratio {self.ratio:.2f}: the closed form is not faster here; does it "
                         "recompute intermediate arrays the cache already holds?")
        if not self.agreement <= tolerance(np.float64):
            lines.append(f"Note: the two backward passes disagree (relative error {self.agreement:.2g}); "
                         "check both against their graded checks.")
        lines.append("(Informative: timing is not graded.)")
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):
        p.text(repr(self))


class _NotTimed(Exception):
    """A function could not be timed (not implemented, raised, returned the wrong arity)."""


def _features(rng, shape):
    """x whose features each have their own mean and spread, as in the graded inputs."""
    loc = rng.uniform(-3, 3, shape[1])
    spread = rng.uniform(0.5, 3, shape[1])
    return loc + spread * rng.standard_normal(shape)


def _call(func, name, args, case, n_results):
    result, _, error = call_student(func, name, args, case)
    if error:
        raise _NotTimed("\n".join(error))
    values = as_tuple(result, n_results)
    if values is None:
        raise _NotTimed(f"{name} must return a tuple of {n_results}, got {type(result).__name__}.")
    return values


def compare_speed(batchnorm_backward, batchnorm_backward_alt, batchnorm_forward, shape=(256, 512), repeats=25):
    """Time batchnorm_backward and batchnorm_backward_alt on the same cache and report the ratio.

    Both run on one train-mode forward pass of an x of ``shape`` (float64), alternately,
    ``repeats`` times each after a warm-up call; the report gives the median time per call
    and ratio = time(batchnorm_backward) / time(batchnorm_backward_alt). Informative only:
    it never fails on timing. If a function is not implemented or raises, it prints why and
    returns None.
    """
    rng = np.random.default_rng(0)
    x = _features(rng, shape)
    gamma, beta = rng.uniform(0.5, 1.5, shape[1]), rng.standard_normal(shape[1])
    dout = rng.standard_normal(shape)
    case = Case(f"x {tuple(shape)} float64, bn_param {{'mode': 'train'}}",
                {"x": x, "gamma": gamma, "beta": beta, "bn_param": {"mode": "train"}})
    functions = {"graph": (batchnorm_backward, "batchnorm_backward"),
                 "alt": (batchnorm_backward_alt, "batchnorm_backward_alt")}
    try:
        _, cache = _call(batchnorm_forward, "batchnorm_forward", [x, gamma, beta, {"mode": "train"}], case, 2)
        # a warm-up call each, whose results are compared
        results = {key: _call(func, name, [dout.copy(), cache], case, 3) for key, (func, name) in functions.items()}
    except _NotTimed as exc:
        print(f"speed comparison not run: {exc}")
        return None
    times = {key: [] for key in functions}
    for _ in range(repeats):
        for key, (func, _) in functions.items():  # alternately, so that both see the same load
            start = time.perf_counter()
            func(dout, cache)
            times[key].append(time.perf_counter() - start)
    try:
        agreement = max(rel_error(a, b) for a, b in zip(results["graph"], results["alt"]))
    except (TypeError, ValueError):
        agreement = float("inf")
    return SpeedReport(float(np.median(times["graph"])), float(np.median(times["alt"])), tuple(shape),
                       repeats, agreement)
