"""A table row for functions that return arrays: ``mean, std = fit_standardizer(X)``.

:class:`Transform` is the third kind of row of the checker engine (after ``checking.Layer``
and ``checking.Function``): a function that returns one array or a tuple of arrays, each
compared with the reference output by output. Chapter 2 (preprocessing) is written with it.

Two things differ from a layer's forward pass:

- some outputs are defined only up to a sign: a principal component ``v`` and ``-v`` are
  equally right, and so are the columns of a PCA-whitened matrix. ``signs`` names those
  outputs and the axis along which each slice may flip (``"rows"`` or ``"columns"``); the
  student's slices are aligned with the reference's before comparing, and with each
  mistake's values before recognising it;
- outputs computed through an eigendecomposition carry absolute rounding noise where the
  exact value is 0 (a whitened constant pixel is 1e-13, not 0): ``floor`` sets, per output,
  the fraction of the largest expected entry below which entries are compared on that
  absolute scale instead of relatively (float32's own floor, 1e-4, is kept when larger).

The kernel side (``run_case``) only calls the student's function and records the values
returned and the arguments as the call left them: numpy only, no torch, no scikit-learn.
The judge side computes the reference lazily (``reference.<name>`` of the chapter, which
may import scikit-learn and torch), compares, and names mistakes by id as every check does.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, ClassVar, Sequence

import numpy as np

from . import records
from .checking import IN_PLACE, Check, Mistake, Problem, _contract_problems, _type_name, as_tuple, compare
from .numerics import matches

SIGN_AXES = {"rows": 1, "columns": 0}  # the axis summed over to compare one slice's direction


def align(got, reference, signs):
    """``got`` with each row (``signs="rows"``) or column (``"columns"``) multiplied by -1
    where that points it the same way as ``reference``'s; anything that is not a float array
    of the reference's shape is returned unchanged."""
    if signs is None or not isinstance(got, np.ndarray) or got.dtype.kind != "f":
        return got
    reference = np.asarray(reference)
    if got.shape != reference.shape or got.ndim != 2:
        return got
    axis = SIGN_AXES[signs]
    with np.errstate(all="ignore"):
        dots = np.sum(got.astype(np.float64) * reference, axis=axis, keepdims=True)
    return np.where(dots < 0, -got, got).astype(got.dtype)


def _candidates(value):
    return value if isinstance(value, list) else [] if value is None else [value]


def sign_aware(mistake, signs):
    """The mistake, recognised up to signs: a wrong PCA whose components point the other way
    is still that wrong PCA. Mistakes defined by their values become ``observed`` ones that
    align the student's value with each wrong value first, along the axis ``signs`` gives
    for that output and then the other, or along either axis for an output defined without
    sign ambiguity (a wrong implementation's eigenvectors may have any signs). Same id,
    title and advice."""
    if mistake.wrong is None:
        return mistake

    def observed(got, case, what):
        tries = (signs[what], "columns" if signs[what] == "rows" else "rows") if what in signs else \
            (None, "columns", "rows")  # a wrong eigendecomposition's values come with arbitrary signs
        return any(matches(align(got, value, axis), value, case.dtype)
                   for value in _candidates(mistake.wrong(case).get(what)) for axis in tries)

    return dataclasses.replace(mistake, wrong=None, observed=observed)


class TransformCheck(Check):
    """``outputs = function(*inputs)`` against the reference, output by output."""

    def doc(self):
        returns = ", ".join(self.row.labels)
        return f"Check {self.name}(...) -> {returns} against reference.{self.row.reference}."

    # -- kernel: numpy only

    def run_case(self, functions, case):
        args, result, observation = self._call_on_inputs(functions[0], case)
        if "error" in observation:
            return observation
        return {**observation, "result": records.encode(result), "args": records.encode(args)}

    # -- grader

    def compute_expected(self, case):
        inputs = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v)
                  for k, v in case.inputs.items()}
        result = self.reference()(**inputs)
        values = as_tuple(result, len(self.row.outputs))
        return {what: np.asarray(v, dtype=np.float64) for what, v in zip(self.row.outputs, values)}

    def judging_mistakes(self):
        return tuple(sign_aware(m, self.row.signs) for m in self.mistakes())

    def judge_case(self, observation, case, hidden, index):
        expected = self.expected(case, hidden, index, self.compute_expected)
        mistakes = self.judging_mistakes()
        problems = _contract_problems(observation, case, mistakes)
        result = observation.get("result")
        got = as_tuple(result, len(self.row.outputs))
        if got is None:
            returns = ", ".join(self.row.labels)
            kind = f"a tuple of {len(result)}" if isinstance(result, tuple) else _type_name(result)
            what = f"a tuple ({returns})" if len(self.row.outputs) > 1 else f"{returns}, one array"
            return problems + [Problem(f"must return {what}; got {kind}.")], 0.0
        worst, wrong = 0.0, []
        for what, label, value in zip(self.row.outputs, self.row.labels, got):
            value = align(value, expected[what], self.row.signs.get(what))
            error, problem = compare(label, what, value, expected[what], case, mistakes,
                                     floor=self.row.floor.get(what, 0.0))
            worst = max(worst, error)
            if problem:
                if what in self.row.signs and problem.header.endswith("is wrong."):
                    problem.details.append(f"  (compared up to the sign of each {self.row.signs[what][:-1]}: "
                                           "v and -v are equally right)")
                wrong.append((what, value, problem))
        if wrong and self.row.explain is not None:
            what, value, problem = wrong[0]
            problem.details.extend(self.row.explain(what, value, expected, case))
        return problems + [p for _, _, p in wrong], worst

    def mistakes(self):
        return tuple(self.row.mistakes) + (IN_PLACE, *self.row.contract)

    # -- for tests that replay mistakes (tests/test_mistakes.py)

    def compared(self, case, expected):
        """{output: the reference's value} for the outputs this check compares."""
        return dict(expected)

    def observation_of(self, case, values):
        """A record's observation in which the function returned ``values`` ({output: value})."""
        result = tuple(values[w] for w in self.row.outputs)
        return {"result": result if len(result) > 1 else result[0], "args": dict(case.inputs), "warnings": []}


@dataclasses.dataclass(frozen=True)
class Transform:
    """A table row for a function that returns arrays: checks ``<name>``.

    reference: the function of the chapter's ``reference`` module: numpy float64 in, a numpy
               array or a tuple of them out (scikit-learn or torch inside)
    specs, make, mistakes: as for ``checking.Layer``
    outputs:   ids of the returned values, in order (the ids mistakes ``explain``; unique in
               the chapter, so that one mistake can concern several functions)
    labels:    what a student reads for each output (default: the ids)
    signs:     {output: "rows" | "columns"}: defined up to the sign of each row or column
    floor:     {output: fraction of the largest expected entry}: the relative error's floor
    explain:   explain(output, got, expected, case) -> extra lines shown when an output is
               wrong (a property of the student's value: e.g. its covariance)
    contract:  further contract mistakes (``checking.DTYPE_CHANGED`` ...)
    note:      added to the ✓ line
    """

    name: str
    reference: str
    specs: Sequence
    make: Callable
    mistakes: Sequence[Mistake] = ()
    outputs: tuple = ("out",)
    labels: tuple = ()
    signs: dict = dataclasses.field(default_factory=dict)
    floor: dict = dataclasses.field(default_factory=dict)
    explain: Callable | None = None
    contract: tuple = ()
    note: str = ""
    failed_inputs: int = 1

    check_kinds: ClassVar[tuple] = (TransformCheck,)

    def __post_init__(self):
        if not self.labels:
            object.__setattr__(self, "labels", tuple(self.outputs))
        if len(self.labels) != len(self.outputs) or set(self.signs) - set(self.outputs):
            raise ValueError(f"Transform {self.name!r}: labels and signs must name its outputs")

    def checks(self, module):
        """The checks of this row (``checking.build`` asks a row of another kind)."""
        return [kind(module, self) for kind in self.check_kinds]
