"""Reference implementations for chapter 5 (hyperparameter search): torch and scikit-learn.

Only imported by the grader and the tests, never in a student's kernel. Where a library has
the function, it is the library's: the initial loss is torch's cross-entropy of a network
that scores every class equally, the update ratio torch's norms, the out-of-fold predictions
scikit-learn's ``cross_val_predict`` with an unshuffled ``KFold``. The search procedures have
no library equivalent with this interface; they are built from torch primitives (a stable
``torch.sort`` for the ranking, ``torch.cartesian_prod`` for the grid, ``torch.log10`` and
``clamp`` for the ranges) and tested (tests/test_hyperparameters_reference.py) against brute
force and hand-written properties.

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
    """True when a loss is NaN or infinite, or exceeds ``factor`` times the first (initial) loss
    (torch.isfinite, a comparison with the first entry)."""
    import torch
    t = torch.as_tensor(np.asarray(losses, dtype=np.float64).reshape(-1))
    if t.numel() == 0:
        return False
    return bool((~torch.isfinite(t)).any() or (t > factor * t[0]).any())


def ranked(results):
    """Indices of ``results`` best first: higher score first, NaN last, ties in trial order
    (two stable torch.sorts: by the negated score, then NaN after every number)."""
    import torch
    if not results:
        return []
    scores = torch.tensor([math.nan if s is None else float(s) for _, s in results], dtype=torch.float64)
    nan = torch.isnan(scores)
    by_score = torch.sort(torch.where(nan, torch.zeros_like(scores), -scores), stable=True).indices
    nan_last = torch.sort(nan[by_score].to(torch.int8), stable=True).indices  # below -inf too
    return by_score[nan_last].tolist()


def grid_search(objective, grid):
    """Every combination of ``grid``'s values (keys in order, the last varying fastest: the order
    of torch.cartesian_prod), tried in that order: [(config, objective(config)), ...]."""
    import torch
    names = list(grid)
    if not names or any(len(grid[n]) == 0 for n in names):
        return [] if names else [({}, objective({}))]
    axes = [torch.arange(len(grid[n])) for n in names]
    combos = torch.cartesian_prod(*axes).reshape(-1, len(names)).tolist()
    tried = [{n: grid[n][i] for n, i in zip(names, combo)} for combo in combos]
    return [(config, objective(dict(config))) for config in tried]


def _positions(config, space):
    """{name: where the value lies in its range, 0 at low and 1 at high} (log10 for "log"), torch."""
    import torch
    out = {}
    for name, (kind, *bounds) in space.items():
        if kind == "choice" or name not in config:
            continue
        v = torch.tensor([config[name], bounds[0], bounds[1]], dtype=torch.float64)
        if kind == "log":
            v = torch.log10(v)
        out[name] = float((v[0] - v[1]) / (v[2] - v[1]))
    return out


def on_boundary(config, space):
    """Names of the numeric parameters (space order) whose value lies in the outer EDGE of its
    range, measured in log space for log parameters (a categorical one never is)."""
    return [name for name, t in _positions(config, space).items() if t <= EDGE or t >= 1 - EDGE]


def _refine(spec, values, log_space=True):
    import torch
    kind = spec[0]
    if kind == "choice":
        return ("choice", [o for o in spec[1] if any(v == o for v in values)])
    in_log = kind == "log" and log_space
    ends = torch.tensor([spec[1], spec[2]], dtype=torch.float64)
    seen = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if in_log:
        ends, seen = torch.log10(ends), torch.log10(seen)
    margin = PAD * (ends[1] - ends[0])
    span = torch.stack([seen.min() - margin, seen.max() + margin]).clamp(ends[0], ends[1])
    if kind == "int":
        return ("int", int(torch.floor(span[0])), int(torch.ceil(span[1])))
    new = torch.pow(10.0, span) if in_log else span
    # 10 ** log10(x) is not always x: an end clipped to the old range keeps the old value exactly
    low = spec[1] if bool(span[0] == ends[0]) else float(new[0])
    high = spec[2] if bool(span[1] == ends[1]) else float(new[1])
    return (kind, float(low), float(high))


def refine_space(results, space, top_k, log_space=True):
    """Coarse to fine: a new space spanning the ``top_k`` best configs (NaN scores ignored), each
    numeric range padded by PAD of the old width on both sides and clipped to the old range,
    in log space for log parameters; a categorical keeps the options the top configs used.
    No finite result: the space unchanged. (``log_space=False`` is the diagnosed mistake.)"""
    kept = [r for r in results if r[1] is not None and not math.isnan(r[1])]
    if not kept or top_k < 1:
        return {name: (spec[0], list(spec[1])) if spec[0] == "choice" else tuple(spec) for name, spec in space.items()}
    best = [kept[i][0] for i in ranked(kept)[:top_k]]
    return {name: _refine(spec, [c[name] for c in best], log_space) for name, spec in space.items()}


def successive_halving(configs, objective, min_epochs, eta, keep_best=True, grow=True):
    """Successive halving (Jamieson and Talwalkar, 2016): train every config for ``min_epochs``
    epochs, keep the best ``max(1, n // eta)`` (ranked as :func:`ranked`), multiply the epochs by
    ``eta``, repeat until one config is left after being trained at the current budget; return
    it (None for no configs). (``keep_best=False`` and ``grow=False`` are the diagnosed mistakes.)"""
    alive, budget = list(range(len(configs))), min_epochs
    while alive:
        trained = [(configs[i], objective(dict(configs[i]), budget)) for i in alive]
        if len(alive) == 1:
            return configs[alive[0]]
        best_first = ranked(trained) if keep_best else ranked(trained)[::-1]
        n_kept = max(1, len(alive) // eta)
        alive = [alive[j] for j in best_first][:n_kept]
        if grow:
            budget *= eta
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
