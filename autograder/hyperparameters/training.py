"""The training run chapter 5 searches over: a 2-layer MLP on the digits, in pure numpy.

Everything in the chapter (book pages, assignment, Optuna exercise and its grader) calls this
one objective, so that a search of 50-100 trials runs in seconds: a 20-epoch run takes
about 0.1-0.2 s on one core (benchmarks/RESULTS.md, "Chapter 5"). It is pure numpy because the
grading sandbox hides torch; tests/test_hyperparameters_training.py checks one step's loss,
gradients and SGD update against torch.autograd and torch.optim.SGD in float64.

The model and its training, torch's conventions:

- data: scikit-learn's 8x8 digits (:func:`load_digits_split`), a train/validation split fixed
  by a seed, every feature standardised with the TRAINING set's mean and standard deviation;
- network: ``x (N, 64) -> Linear(64, hidden) -> ReLU -> Linear(hidden, 10) -> softmax``,
  weights in torch's ``(out, in)`` layout (``W1 (hidden, 64)``, ``b1 (hidden,)``,
  ``W2 (10, hidden)``, ``b2 (10,)``); He-scaled normal init ``std = sqrt(2 / fan_in)``
  times ``init_scale``, biases 0;
- loss: mean softmax cross-entropy + ``weight_decay / 2 * (||W1||^2 + ||W2||^2)`` (weights
  only, not biases), whose gradient is what ``torch.optim.SGD(weight_decay=...)`` adds;
- optimiser: SGD with momentum as torch's (``v = momentum * v + g``, ``p -= lr * v``) on
  minibatches shuffled each epoch by ``np.random.default_rng(seed)`` (which also draws the
  init). numpy's global RNG is never touched, so a run is a function of its arguments.

A run that diverges (a non-finite loss, or a mean epoch loss above ``abort_factor`` times the
initial loss) stops early with ``diverged=True``; its NaN/inf losses are kept in the record.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field

import numpy as np

try:  # a dependency of scikit-learn; without it, BLAS keeps its own thread count
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

from autograder.data import load_digits

NUM_CLASSES = 10
NUM_FEATURES = 64
LAYERS = ("W1", "W2")


def load_digits_split(seed=0, validation=0.25):
    """The digits split into training and validation sets by ``seed``.

    Returns ``(X_train (n, 64) float64, y_train (n,) int64, X_val (m, 64), y_val (m,))`` with
    ``m = round(1797 * validation)``. Features are standardised with the training set's
    statistics only (a pixel that is constant on the training set is only centred), so no
    information leaks from the validation set. The arrays are read-only (they are cached).
    """
    if not 0 < validation < 1:
        raise ValueError(f"validation must be a fraction in (0, 1), got {validation!r}")
    return _split(int(seed), float(validation))


@functools.lru_cache(maxsize=8)
def _split(seed, validation):
    X, y = load_digits()
    order = np.random.default_rng(seed).permutation(len(X))
    n_val = int(round(len(X) * validation))
    val, tr = order[:n_val], order[n_val:]
    mean = X[tr].mean(axis=0)
    std = X[tr].std(axis=0)
    std[std == 0] = 1.0  # constant pixels (the corners) are only centred
    parts = ((X[tr] - mean) / std, y[tr], (X[val] - mean) / std, y[val])
    for array in parts:
        array.setflags(write=False)
    return parts


@dataclass
class Run:
    """What :func:`train` returns. Epoch lists have one entry per epoch run (``epochs_run``)."""
    train_loss: list = field(default_factory=list)      # mean minibatch loss (data + reg) per epoch
    val_accuracy: list = field(default_factory=list)    # validation accuracy after each epoch
    initial_loss: float = math.nan                      # loss of the initial network on the training set
    update_ratios: dict = field(default_factory=dict)   # "W1"/"W2" -> mean ||lr * v|| / ||W|| per epoch
    weights: dict = field(default_factory=dict)         # final W1, b1, W2, b2 (torch's layout)
    first_layer_snapshots: list = field(default_factory=list)  # copies of W1 at snapshot_epochs
    diverged: bool = False
    epochs_run: int = 0


def init_params(hidden, init_scale, rng):
    """He-scaled normal weights (std sqrt(2 / fan_in) * init_scale) and zero biases."""
    W1 = rng.standard_normal((hidden, NUM_FEATURES)) * (math.sqrt(2.0 / NUM_FEATURES) * init_scale)
    W2 = rng.standard_normal((NUM_CLASSES, hidden)) * (math.sqrt(2.0 / hidden) * init_scale)
    return {"W1": W1, "b1": np.zeros(hidden), "W2": W2, "b2": np.zeros(NUM_CLASSES)}


def logits(params, X):
    """The network's scores (N, 10) for inputs X (N, 64)."""
    hidden = np.maximum(X @ params["W1"].T + params["b1"], 0.0)
    return hidden @ params["W2"].T + params["b2"]


def loss_and_gradients(params, X, y, weight_decay):
    """Mean softmax cross-entropy of (X, y) plus ``weight_decay / 2 * sum ||W||^2`` over the
    weights, and the gradient of that loss for every parameter (same keys and shapes)."""
    pre = X @ params["W1"].T + params["b1"]
    hidden = np.maximum(pre, 0.0)
    scores = hidden @ params["W2"].T + params["b2"]
    shifted = scores - scores.max(axis=1, keepdims=True)  # log-sum-exp trick
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(X)
    data_loss = -log_probs[np.arange(n), y].mean()
    reg = 0.5 * weight_decay * sum(float(np.sum(params[k] ** 2)) for k in LAYERS)
    dscores = np.exp(log_probs)
    dscores[np.arange(n), y] -= 1.0
    dscores /= n
    dhidden = dscores @ params["W2"]
    dpre = dhidden * (pre > 0)  # ReLU's gradient at exactly 0 is 0, as torch's
    grads = {"W2": dscores.T @ hidden + weight_decay * params["W2"], "b2": dscores.sum(axis=0),
             "W1": dpre.T @ X + weight_decay * params["W1"], "b1": dpre.sum(axis=0)}
    return float(data_loss + reg), grads


def total_loss(params, X, y, weight_decay):
    """The loss alone (data + regularisation), e.g. of the initial network on the training set."""
    return loss_and_gradients(params, X, y, weight_decay)[0]


def accuracy(params, X, y):
    """Fraction of X whose highest score is the label (a NaN network predicts class 0)."""
    return float(np.mean(np.argmax(logits(params, X), axis=1) == y))


def _diverging(loss, initial, abort_factor):
    return not math.isfinite(loss) or (abort_factor is not None and loss > abort_factor * initial)


def train(lr=0.1, weight_decay=1e-4, hidden=64, epochs=20, batch_size=64, momentum=0.9, init_scale=1.0,
          seed=0, data=None, n_train=None, record_ratios=False, snapshot_epochs=(), abort_factor=None,
          on_epoch=None) -> Run:
    """Train the MLP for ``epochs`` epochs and return a :class:`Run`.

    ``data``: a :func:`load_digits_split` tuple (default ``load_digits_split(0)``);
    ``n_train``: train on the first ``n_train`` training examples only (the overfit-20 check);
    ``record_ratios``: also record, per weight matrix, the mean over the epoch's steps of
    ``||lr * v|| / ||W||`` (``v`` the momentum step actually applied, ``W`` before the step);
    ``snapshot_epochs``: epochs (0 = before training) at which a copy of W1 is kept;
    ``abort_factor``: stop when an epoch's mean loss exceeds ``abort_factor * initial_loss``
    (a non-finite loss always stops the run: the rest would be NaN);
    ``on_epoch(epoch, run)``: called after each epoch (1-based) with the run so far; an
    exception it raises (Optuna's TrialPruned) propagates to the caller.
    """
    if data is None:
        data = load_digits_split(0)
    X, y, X_val, y_val = data
    if n_train is not None:
        X, y = X[:n_train], y[:n_train]
    hidden, epochs, batch_size = int(hidden), int(epochs), int(batch_size)
    rng = np.random.default_rng(seed)
    params = init_params(hidden, init_scale, rng)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    run = Run()
    snapshots = set(int(e) for e in snapshot_epochs)
    # One BLAS thread: on 64x64 matrices more threads cost 3x the CPU time for no gain (measured).
    single_thread = threadpool_limits(1, user_api="blas") if threadpool_limits else contextlib.nullcontext()
    with single_thread, np.errstate(all="ignore"):  # a diverging run overflows: recorded, not warned about
        run.initial_loss = total_loss(params, X, y, weight_decay)
        if 0 in snapshots:
            run.first_layer_snapshots.append(params["W1"].copy())
        for epoch in range(1, epochs + 1):
            order = rng.permutation(len(X))
            losses, ratios = [], {k: [] for k in LAYERS}
            for start in range(0, len(X), batch_size):
                batch = order[start:start + batch_size]
                loss, grads = loss_and_gradients(params, X[batch], y[batch], weight_decay)
                losses.append(loss)
                if not math.isfinite(loss):
                    break
                for k in params:
                    velocity[k] = momentum * velocity[k] + grads[k]
                    if record_ratios and k in ratios:
                        ratios[k].append(float(np.linalg.norm(lr * velocity[k]) / np.linalg.norm(params[k])))
                    params[k] = params[k] - lr * velocity[k]
            run.train_loss.append(float(np.mean(losses)))
            run.val_accuracy.append(accuracy(params, X_val, y_val))
            if record_ratios:
                for k in LAYERS:
                    run.update_ratios.setdefault(k, []).append(float(np.mean(ratios[k])))
            if epoch in snapshots:
                run.first_layer_snapshots.append(params["W1"].copy())
            run.epochs_run = epoch
            run.diverged = _diverging(run.train_loss[-1], run.initial_loss, abort_factor)
            run.weights = {k: v.copy() for k, v in params.items()}
            if on_epoch is not None:
                on_epoch(epoch, run)
            if run.diverged:
                break
    if not run.weights:
        run.weights = {k: v.copy() for k, v in params.items()}
    return run


def objective(config: dict, epochs: int, seed=0) -> float:
    """The final validation accuracy of ``train(**config, epochs=epochs, seed=seed)``: the
    number every search in the chapter maximises (a diverged run scores its last accuracy)."""
    return train(**config, epochs=epochs, seed=seed).val_accuracy[-1]
