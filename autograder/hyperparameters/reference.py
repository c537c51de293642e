"""Reference implementations for chapter 5 (hyperparameter search): torch, scikit-learn, plain Python.

Only imported by the grader and the tests, never in a student's kernel. Where a library has
the function, it is the library's: the initial loss is torch's cross-entropy of a network
that scores every class equally, the update ratio torch's norms, the out-of-fold predictions
scikit-learn's ``cross_val_predict`` with an unshuffled ``KFold``. The search procedures have
no library equivalent with this interface; they are written here in plain Python and tested
(tests/test_hyperparameters_reference.py) against brute-force properties.

Conventions shared with the assignment (documented in its notebook):

- a *space* is a dict ``{name: spec}`` with ``spec`` one of ``("log", low, high)``
  (log-uniform float), ``("uniform", low, high)``, ``("int", low, high)`` (both ends
  included) and ``("choice", [options])``;
- *results* are a list of ``(config, score)`` pairs in the order tried; a higher score is
  better, a NaN score (a diverged run) ranks below every number, and among equal scores the
  earlier trial ranks first (a stable sort);
- ``EDGE = 0.1``: a value in the outer 10 % of its range (in log space for a log parameter)
  is "on the boundary"; ``PAD = 0.1``: refinement pads the top configs' span by 10 % of the old
  range's width on each side (log space for log parameters), clipped to the old range.
"""
import itertools
import math

import numpy as np

EDGE = 0.1
PAD = 0.1


def expected_initial_loss(num_classes):
    """Softmax cross-entropy of a network that gives every one of ``num_classes`` classes the
    same score: torch's ``cross_entropy`` of equal logits, i.e. ln C (book/hyperparameters/)."""
    import torch
    logits = torch.zeros(1, int(num_classes), dtype=torch.float64)
    return float(torch.nn.functional.cross_entropy(logits, torch.tensor([0])))


def update_ratio(W, dW, lr):
    """||lr * dW|| / ||W|| (Frobenius norms, torch.linalg.norm)."""
    import torch
    W, dW = torch.as_tensor(W, dtype=torch.float64), torch.as_tensor(dW, dtype=torch.float64)
    return float(torch.linalg.norm(lr * dW) / torch.linalg.norm(W))


def should_abort(losses, factor=3.0):
    """True when a loss is NaN or infinite, or exceeds ``factor`` times the first (initial) loss."""
    losses = [float(x) for x in losses]
    if any(not math.isfinite(x) for x in losses):
        return True
    return bool(losses) and any(x > factor * losses[0] for x in losses)


def ranked(results):
    """Indices of ``results`` best first: higher score first, NaN last, ties in trial order."""
    def key(i):
        score = results[i][1]
        diverged = score is None or math.isnan(score)
        return (diverged, 0.0 if diverged else -score)
    return sorted(range(len(results)), key=key)  # sorted is stable: ties keep the trial order


def grid_search(objective, grid):
    """Every combination of ``grid``'s values (keys in order, the last varying fastest), tried in
    that order: [(config, objective(config)), ...]."""
    names = list(grid)
    results = []
    for values in itertools.product(*(grid[n] for n in names)):
        config = dict(zip(names, values))
        results.append((config, objective(dict(config))))
    return results


def _position(value, spec):
    """Where ``value`` lies in its range, 0 at low and 1 at high (log space for "log")."""
    kind, low, high = spec[0], spec[1], spec[2]
    if kind == "log":
        value, low, high = math.log10(value), math.log10(low), math.log10(high)
    return (value - low) / (high - low) if high != low else 0.5


def on_boundary(config, space):
    """Names of the numeric parameters (space order) whose value lies in the outer EDGE of its
    range, measured in log space for log parameters (a categorical one never is)."""
    out = []
    for name, spec in space.items():
        if spec[0] != "choice" and name in config:
            t = _position(config[name], spec)
            if t <= EDGE or t >= 1 - EDGE:
                out.append(name)
    return out


def _refine(spec, values, log_space=True):
    kind = spec[0]
    if kind == "choice":
        return ("choice", [o for o in spec[1] if any(v == o for v in values)])
    low, high = spec[1], spec[2]
    to = (math.log10 if kind == "log" and log_space else float)
    back = (lambda t: 10.0 ** t) if kind == "log" and log_space else (lambda t: t)
    lo, hi = to(low), to(high)
    pad = PAD * (hi - lo)
    new_lo = max(lo, min(to(v) for v in values) - pad)
    new_hi = min(hi, max(to(v) for v in values) + pad)
    if kind == "int":
        return ("int", int(max(low, math.floor(new_lo))), int(min(high, math.ceil(new_hi))))
    new_low, new_high = back(new_lo), back(new_hi)
    if kind == "log":  # 10 ** log10(x) is not always x: keep the old ends exactly
        new_low = low if new_lo == lo else new_low
        new_high = high if new_hi == hi else new_high
    return (kind, float(new_low), float(new_high))


def refine_space(results, space, top_k, log_space=True):
    """Coarse to fine: a new space spanning the ``top_k`` best configs (NaN scores ignored), each
    numeric range padded by PAD of the old width on both sides and clipped to the old range,
    in log space for log parameters; a categorical keeps the options the top configs used.
    No finite result: the space unchanged. (``log_space=False`` is the diagnosed mistake.)"""
    finite = [(c, s) for c, s in results if s is not None and not math.isnan(s)]
    if not finite or top_k < 1:
        return {name: (spec[0], list(spec[1])) if spec[0] == "choice" else tuple(spec) for name, spec in space.items()}
    top = [finite[i][0] for i in ranked(finite)[:top_k]]
    return {name: _refine(spec, [c[name] for c in top], log_space) for name, spec in space.items()}


def successive_halving(configs, objective, min_epochs, eta, keep_best=True, grow=True):
    """Successive halving (Jamieson and Talwalkar, 2016): train every config for ``min_epochs``
    epochs, keep the best ``max(1, n // eta)`` (ranked as :func:`ranked`), multiply the epochs by
    ``eta``, repeat until one config is left after being trained at the current budget; return
    it (None for no configs). (``keep_best=False`` and ``grow=False`` are the diagnosed mistakes.)"""
    survivors = list(range(len(configs)))
    epochs = min_epochs
    while survivors:
        scores = [(configs[i], objective(dict(configs[i]), epochs)) for i in survivors]
        if len(survivors) == 1:
            return configs[survivors[0]]
        order = ranked(scores)
        if not keep_best:
            order = order[::-1]
        survivors = [survivors[i] for i in order[:max(1, len(survivors) // eta)]]
        epochs = epochs * eta if grow else epochs
    return None


class SklearnModel:
    """A model built by ``make_model()`` (fit/predict), as a scikit-learn estimator, so that
    ``cross_val_predict`` can clone it: each clone builds a fresh model."""

    def __init__(self, make_model=None):
        self.make_model = make_model

    def get_params(self, deep=True):
        return {"make_model": self.make_model}

    def set_params(self, **params):
        self.make_model = params.get("make_model", self.make_model)
        return self

    def fit(self, X, y):
        self.model_ = self.make_model()
        self.model_.fit(X, y)
        return self

    def predict(self, X):
        return np.asarray(self.model_.predict(X), dtype=np.float64)


def out_of_fold_predictions(X, y, make_model, k):
    """scikit-learn's ``cross_val_predict(..., cv=KFold(k))`` (contiguous folds, no shuffling):
    each example's prediction by a model fitted on the other folds only."""
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import KFold, cross_val_predict

    class Estimator(SklearnModel, BaseEstimator):
        pass

    return np.asarray(cross_val_predict(Estimator(make_model), X, y, cv=KFold(int(k))), dtype=np.float64)
