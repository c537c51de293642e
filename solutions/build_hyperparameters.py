"""Writes solutions/hyperparameters/hyperparameters.ipynb, the nbgrader source of assignment 5. Kept outside
solutions/hyperparameters/ so that the release does not copy it. Run from the repository root:

    python solutions/build_hyperparameters.py && python -m autograder release hyperparameters
"""
import pathlib

from autograder.notebook_builder import answer, checked, code, md, solution, test, write

BOOK = "{{ book_url }}/book/hyperparameters"

CELLS = [
    md(f"""
# Assignment 5: babysitting the learning process and hyperparameter search

You will implement, in numpy and plain Python, the tools of the book's chapter
[Hyperparameter search]({BOOK}/index.html): the sanity checks you run before any search (the initial loss,
the update-to-weight ratio, the rule that aborts a diverging run), log-scale sampling, grid and random
search, coarse-to-fine refinement, successive halving, and the out-of-fold predictions that stacking
needs. The last exercise is a real search: an Optuna objective over the course's training run.

**The training run.** `training.train(lr=..., weight_decay=..., hidden=..., epochs=...)` (provided, in
`autograder/hyperparameters/training.py`) trains a 2-layer network on scikit-learn's 8x8 digits and returns
a `Run` with `train_loss` and `val_accuracy` per epoch; `training.objective(config, epochs)` is its final
validation accuracy. One 20-epoch run takes a fraction of a second.

**A search space** is a dict `{{name: spec}}`, each `spec` one of

| spec | meaning |
|---|---|
| `("log", low, high)` | a float, log-uniform on [low, high]: log10 of it is uniform (learning rates, weight decay) |
| `("uniform", low, high)` | a float, uniform on [low, high] (momentum, dropout) |
| `("int", low, high)` | an integer, uniform on low, low + 1, ..., high (both ends included) |
| `("choice", [a, b, ...])` | one of the options, each equally likely |

for example `{{"lr": ("log", 1e-5, 1e-1), "hidden": ("int", 16, 128), "activation": ("choice", ["relu", "tanh"])}}`.
A **config** is a dict `{{name: value}}` with the same keys, in the same order.

**Results** of a search are a list of `(config, score)` tuples in the order the configs were tried. A
higher score is better; a NaN score (a run that diverged) ranks below every number; among equal scores the
earlier trial ranks first (Python's `sorted` is stable: sort by a key and ties keep their order).

**Checks.** Functions that return a value are compared with reference implementations (torch,
scikit-learn's `cross_val_predict`, searches built from torch primitives) on inputs that include ties, empty results, a single
trial and NaN losses. The searches are given a stand-in objective that records its calls, so the checks
also see which configs you trained and for how many epochs. The samplers are checked by statistical tests
of their draws (each test fails a correct sampler with probability below one in a hundred million). The
cell under each function runs the checks the autograder runs; it adds more inputs and seeds.
"""),
    code("""
# Run this cell first. On Colab it installs the course package (about a minute).
import itertools
import math

import numpy as np
try:
    import autograder
except ImportError:
    %pip install -q "autograder @ git+{{ repository_url }}" optuna
import optuna
from autograder.hyperparameters import checks, training

optuna.logging.set_verbosity(optuna.logging.WARNING)
""", "setup"),
    md(f"""
## 1. Before searching: sanity checks

**The initial loss.** A network whose weights are small scores every class about the same, so its softmax
gives each of the $C$ classes probability $1/C$ and the cross-entropy is $-\\ln(1/C)$. Check it before you
train ([Babysitting]({BOOK}/babysitting.html)): a different number means a bug in the loss or the initialisation.

**The update-to-weight ratio** $\\lVert \\mathrm{{lr}} \\cdot dW \\rVert / \\lVert W \\rVert$ (Frobenius norms): about
$10^{{-3}}$ when the learning rate is right; much larger and the weights are being rewritten each step, much
smaller and nothing moves.

**Abort a diverging run.** `should_abort(losses, factor)` gets the losses so far, `losses[0]` being the
initial loss, and says whether to stop the run: `True` as soon as one loss is NaN or infinite, or exceeds
`factor` times the initial loss (strictly greater). No loss, no reason to abort. `losses` may be a list or
a numpy array.
"""),
    solution('''
def expected_initial_loss(num_classes):
    """The softmax cross-entropy of a network that gives all num_classes classes the same score (a float)."""
    ### BEGIN SOLUTION
    return float(np.log(num_classes))
    ### END SOLUTION


def update_ratio(W, dW, lr):
    """||lr * dW|| / ||W|| with Frobenius norms (a float).

    Inputs:
    - W: a weight array; dW: its gradient (same shape); lr: the learning rate
    """
    ### BEGIN SOLUTION
    return float(np.linalg.norm(lr * dW) / np.linalg.norm(W))
    ### END SOLUTION


def should_abort(losses, factor=3.0):
    """True when a loss is NaN or inf, or exceeds factor * losses[0] (the initial loss); else False.

    Inputs:
    - losses: the losses so far (a list or an array), losses[0] the initial loss
    - factor: how many times the initial loss a run may reach
    """
    ### BEGIN SOLUTION
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        return False
    if not np.all(np.isfinite(losses)):
        return True
    return bool(np.any(losses > factor * losses[0]))
    ### END SOLUTION
''', "sanity_checks"),
    checked("expected_initial_loss"),
    checked("update_ratio"),
    checked("should_abort"),
    md("""
## 2. Sampling on a log scale

`log_uniform(low, high, size, rng)` returns a float64 array of shape `(size,)` whose log10 is uniform on
$[\\log_{10} \\mathrm{low}, \\log_{10} \\mathrm{high}]$: `lr = 10 ** uniform(-6, -3)`. `sample_config(space, rng)` draws one
config from a space (the table above), parameter by parameter in the space's order. Draw only from `rng`,
never from `np.random.*`: the same seed must give the same draws.
"""),
    solution('''
def log_uniform(low, high, size, rng):
    """size values whose log10 is uniform on [log10(low), log10(high)] (a float64 array of shape (size,))."""
    ### BEGIN SOLUTION
    return 10.0 ** rng.uniform(np.log10(low), np.log10(high), size=size)
    ### END SOLUTION


def sample_config(space, rng):
    """One config drawn from the space: {name: value}, in the space's order.

    "log": a float from log_uniform; "uniform": a float; "int": an int in [low, high];
    "choice": one of the options.
    """
    ### BEGIN SOLUTION
    config = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "log":
            config[name] = float(log_uniform(spec[1], spec[2], 1, rng)[0])
        elif kind == "uniform":
            config[name] = float(rng.uniform(spec[1], spec[2]))
        elif kind == "int":
            config[name] = int(rng.integers(spec[1], spec[2] + 1))
        elif kind == "choice":
            config[name] = spec[1][int(rng.integers(len(spec[1])))]
        else:
            raise ValueError(f"{name}: unknown kind {kind!r}")
    return config
    ### END SOLUTION
''', "sampling"),
    checked("log_uniform"),
    checked("sample_config"),
    md("""
## 3. Grid search and random search

`grid_search(objective, grid)`: `grid` is a dict `{name: [values]}`; try every combination, the keys in the
grid's order and the last key varying fastest (`itertools.product`), and return the results. A name with no
value means no config at all.

`random_search(objective, space, n_trials, rng)`: draw `n_trials` configs with `sample_config` and return the
results. Call `objective(config)` once per config, and return the config you passed.
"""),
    solution('''
def grid_search(objective, grid):
    """[(config, objective(config)), ...] for every combination of the grid's values, in product order."""
    ### BEGIN SOLUTION
    names = list(grid)
    results = []
    for values in itertools.product(*(grid[name] for name in names)):
        config = dict(zip(names, values))
        results.append((config, objective(config)))
    return results
    ### END SOLUTION


def random_search(objective, space, n_trials, rng):
    """[(config, objective(config)), ...] for n_trials configs drawn from the space with rng."""
    ### BEGIN SOLUTION
    results = []
    for _ in range(n_trials):
        config = sample_config(space, rng)
        results.append((config, objective(config)))
    return results
    ### END SOLUTION
''', "search"),
    checked("grid_search"),
    checked("random_search"),
    md(f"""
## 4. Coarse to fine

`on_boundary(config, space)`: the names (in the space's order) of the numeric parameters whose value lies in
the outer 10 % of its range, that is at a position $t \\le 0.1$ or $t \\ge 0.9$ with
$t = (v - \\mathrm{{low}}) / (\\mathrm{{high}} - \\mathrm{{low}})$, computed on $\\log_{{10}}$ of all three for a `"log"`
parameter. A value outside the range counts too; a `"choice"` parameter never does. A best value on the
boundary means the range was too narrow ([coarse to fine]({BOOK}/search.html)).

`refine_space(results, space, top_k)`: the next, finer space. Ignore results whose score is NaN; rank the
others (the ranking rule above) and keep the best `top_k` configs (all of them if there are fewer). For each
numeric parameter, the new range spans the top configs' values, padded on each side by 10 % of the OLD
range's width and clipped to the old range, all of it in $\\log_{{10}}$ space for a `"log"` parameter (and back
with `10 **`). An `"int"` range is rounded outwards (`floor` the low end, `ceil` the high end) to ints. A
`"choice"` keeps the options the top configs used, in the old order. When no result is left, return the
space unchanged. Return a new dict of tuples like the input's (`("log", low, high)`, `("choice", [...])`).
"""),
    solution('''
def on_boundary(config, space):
    """Names of the numeric parameters whose value is in the outer 10 % of their range (log10 for "log")."""
    ### BEGIN SOLUTION
    names = []
    for name, spec in space.items():
        if spec[0] == "choice" or name not in config:
            continue
        value, low, high = config[name], spec[1], spec[2]
        if spec[0] == "log":
            value, low, high = np.log10(value), np.log10(low), np.log10(high)
        position = (value - low) / (high - low)
        if position <= 0.1 or position >= 0.9:
            names.append(name)
    return names
    ### END SOLUTION


def refine_space(results, space, top_k):
    """A finer space around the top_k best configs (NaN scores ignored; log10 space for "log")."""
    ### BEGIN SOLUTION
    finite = [(config, s) for config, s in results if not np.isnan(s)]
    if not finite or top_k < 1:
        return {name: (spec[0], list(spec[1])) if spec[0] == "choice" else tuple(spec)
                for name, spec in space.items()}
    order = sorted(range(len(finite)), key=lambda i: -finite[i][1])  # stable: ties keep the trial order
    top = [finite[i][0] for i in order[:top_k]]
    refined = {}
    for name, spec in space.items():
        kind, values = spec[0], [config[name] for config in top]
        if kind == "choice":
            refined[name] = ("choice", [option for option in spec[1] if option in values])
            continue
        low, high, values = spec[1], spec[2], np.asarray(values, dtype=np.float64)
        if kind == "log":
            low, high, values = np.log10(low), np.log10(high), np.log10(values)
        pad = 0.1 * (high - low)
        new_low, new_high = max(low, values.min() - pad), min(high, values.max() + pad)
        if kind == "log":
            refined[name] = ("log", float(10 ** new_low), float(10 ** new_high))
        elif kind == "int":
            refined[name] = ("int", int(np.floor(new_low)), int(np.ceil(new_high)))
        else:
            refined[name] = ("uniform", float(new_low), float(new_high))
    return refined
    ### END SOLUTION
''', "coarse_to_fine"),
    checked("on_boundary"),
    checked("refine_space", 2),
    md("""
## 5. Successive halving

Jamieson and Talwalkar (2016): give every config a small budget, keep the best fraction, give the survivors
a larger budget, and so on. `objective(config, epochs)` returns the validation accuracy after `epochs`
epochs. Train every config of `configs` for `min_epochs` epochs; if only one config was trained, return
it; otherwise keep the best `max(1, n // eta)` of the `n` (the ranking rule above), multiply the epochs by
`eta`, and train the survivors again from scratch with the new budget. Return the last config standing
(`None` when `configs` is empty).
"""),
    solution('''
def successive_halving(configs, objective, min_epochs, eta):
    """The config that survives successive halving (None for no config).

    Inputs:
    - configs: a list of configs; objective: objective(config, epochs) -> score
    - min_epochs: the first round's epochs; eta: keep 1/eta of the configs, eta times the epochs
    """
    ### BEGIN SOLUTION
    survivors = list(configs)
    epochs = min_epochs
    while survivors:
        scores = [objective(config, epochs) for config in survivors]
        if len(survivors) == 1:
            return survivors[0]
        order = sorted(range(len(survivors)),
                       key=lambda i: (np.isnan(scores[i]), 0.0 if np.isnan(scores[i]) else -scores[i]))
        survivors = [survivors[i] for i in order[:max(1, len(survivors) // eta)]]
        epochs = epochs * eta
    return None
    ### END SOLUTION
''', "successive_halving"),
    checked("successive_halving", 2),
    md(f"""
## 6. Out-of-fold predictions (stacking)

Stacking ([after the search]({BOOK}/ensembles.html)) trains a second-level model on the first-level models'
predictions. Those predictions must come from models that did not see the example: split the `n` examples
into `k` contiguous folds as scikit-learn's `KFold(k)` without shuffling does (fold sizes `n // k`, the first
`n % k` folds one larger), and for each fold fit a NEW model (`make_model()`, with `fit(X, y)` and
`predict(X)`) on the other folds and predict the fold. Return the predictions of all examples in their
original order, an array with as many rows as `X` (and the columns `predict` gives).
"""),
    solution('''
def out_of_fold_predictions(X, y, make_model, k):
    """Each example's prediction by a model fitted on the other k - 1 folds (contiguous, as KFold(k)).

    Inputs:
    - X: (n, d) inputs; y: (n,) labels; make_model: make_model() -> a new model with fit and predict
    - k: the number of folds (2 <= k <= n)
    Returns an array with n rows: row i predicted by the model that did not see example i.
    """
    ### BEGIN SOLUTION
    n = len(X)
    sizes = np.full(k, n // k)
    sizes[: n % k] += 1
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    predictions = None
    for i in range(k):
        held_out = np.arange(bounds[i], bounds[i + 1])
        rest = np.setdiff1d(np.arange(n), held_out)
        model = make_model()
        model.fit(X[rest], y[rest])
        fold = np.asarray(model.predict(X[held_out]), dtype=np.float64)
        if predictions is None:
            predictions = np.zeros((n,) + fold.shape[1:])
        predictions[held_out] = fold
    return predictions
    ### END SOLUTION
''', "out_of_fold"),
    checked("out_of_fold_predictions", 2),
    md(f"""
## 7. Capstone: a real search with Optuna

Write `objective(trial)` for an [Optuna](https://optuna.org) study that maximises the validation accuracy of
`training.train` after `EPOCHS` epochs. Suggest exactly these parameters, under `train`'s argument names:

| name | range | scale |
|---|---|---|
| `lr` | $[10^{{-4}}, 1]$ | log (`trial.suggest_float(..., log=True)`) |
| `weight_decay` | $[10^{{-6}}, 10^{{-1}}]$ | log |
| `hidden` | the integers 16 to 128 | your choice (`trial.suggest_int`) |

Train with `training.train(lr=..., weight_decay=..., hidden=..., epochs=EPOCHS, on_epoch=...)` (its default
data and seed), and make pruning possible: after each epoch, report the validation accuracy so far with
`trial.report(run.val_accuracy[-1], epoch)` and, if `trial.should_prune()`, raise `optuna.TrialPruned()`
(`on_epoch(epoch, run)` is called by `train` after each epoch, epochs counted from 1; an exception it raises
stops the training). Return the final validation accuracy.

The check runs a seeded study of your objective (10 trials, TPE sampler, `MedianPruner`, in a temporary
SQLite file in this folder; a few seconds). It passes when lr and weight_decay are declared on log scales,
some trials were pruned, the best trial reaches a validation accuracy of 0.94, and the values your trials
reported are those that `training.train` gives for their parameters (the grader trains again to see).
The book's [Optuna page]({BOOK}/optuna.html) shows the same search with its plots, and how several workers
share one study through a database.
"""),
    code("""
EPOCHS = 8  # the epochs every trial trains for (the check's study uses this value)
""", "epochs"),
    solution('''
def objective(trial):
    """Optuna objective: the validation accuracy of training.train after EPOCHS epochs, with pruning."""
    ### BEGIN SOLUTION
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    hidden = trial.suggest_int("hidden", 16, 128, log=True)

    def _report_and_prune(epoch, run):
        trial.report(run.val_accuracy[-1], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    run = training.train(lr=lr, weight_decay=weight_decay, hidden=hidden, epochs=EPOCHS,
                         on_epoch=_report_and_prune)
    return run.val_accuracy[-1]
    ### END SOLUTION
''', "optuna_objective"),
    test("checks.capstone_optuna(objective)", "capstone_optuna", 4),
    md("""
## 8. Try it (not graded)

Your functions on the real training run: a small random search on a log scale, then the boundary test.
"""),
    code("""
space = {"lr": ("log", 1e-4, 1.0), "weight_decay": ("log", 1e-6, 1e-1)}
trials = random_search(lambda config: training.objective(config, epochs=3), space, 6, np.random.default_rng(0))
best_config, best_score = max(trials, key=lambda r: r[1])
print(f"best of 6 trials: {best_score:.3f} with", {k: f"{v:.2g}" for k, v in best_config.items()})
print("on the boundary:", on_boundary(best_config, space))
""", "try_it"),
    md("""
## 9. Written questions

Answer in a few sentences in the cells below; these are graded by your instructor.

**Question 1.** Suppose the configs whose validation accuracy is in the top 5 % of the search space are the
ones you would be happy with. What is the probability that $n$ independent random-search trials contain
at least one of them? How many trials do you need for 95 %? Explain why this number does not depend on how
many hyperparameters you search, and why a $3 \\times 3 \\times 3 \\times 3$ grid of 81 trials over four
parameters of which one matters can do much worse than 81 random trials.
"""),
    answer("""
*Model answer.* Each trial lands in the top 5 % with probability 0.05, independently, so the chance that none
of $n$ does is $0.95^n$ and the chance of at least one hit is $1 - 0.95^n$. $1 - 0.95^n \\ge 0.95$ needs
$n \\ge \\ln 0.05 / \\ln 0.95 \\approx 58.4$: 59 trials (60 is the usual rule of thumb). The argument only uses
the *volume* fraction of the good region (5 %), not its shape or the number of dimensions, so it holds for
any number of hyperparameters. A 3^4 grid tries only 3 distinct values of the one parameter that matters
(each repeated 27 times with useless variations of the others): its best config is the best of 3 values of
that parameter. 81 random trials try 81 distinct values of it (Bergstra and Bengio, 2012), so they find a
much better one.
""", "answer_random_trials", 2),
    md("""
**Question 2.** A random search over `lr` in $[10^{-5}, 10^{-2}]$ (log scale, 50 trials, 5 epochs each) finds
its best validation accuracy at `lr` $= 9 \\times 10^{-3}$, and `on_boundary` names `lr`. What does that tell
you, and what do you run next? Before you trust a larger learning rate, what would you look at in that
best run's curves, and which of this notebook's functions would you use on them?
"""),
    answer("""
*Model answer.* $\\log_{10}(9 \\times 10^{-3}) = -2.05$ is at 98 % of the log range: the accuracy was still
rising towards the upper end, so the optimum is probably *above* $10^{-2}$, outside the range searched; the
"best" value is the best the range allowed, not an optimum. Widen the range upwards (e.g. $[10^{-3}, 1]$, log
scale) and search again, then refine around the new best once it is inside the range. Larger learning
rates can diverge: check the best run's training loss and the update-to-weight ratio (`update_ratio`, about
$10^{-3}$ is healthy, $10^{-1}$ means the weights are rewritten each step), and abort trials whose loss
passes three times the initial loss or becomes NaN (`should_abort`), so that the widened search does not
waste its budget on exploding runs. With 5 epochs, small learning rates are also penalised for being slow:
a best value at the top of the range may partly reflect the short budget.
""", "answer_edge", 2),
    md("""
**Question 3.** For stacking, why must the second-level model be trained on out-of-fold predictions rather
than on the first-level models' predictions for their own training examples? Take the extreme case of a
first-level 1-nearest-neighbour classifier: what are its in-fold predictions, and what does a second-level
model trained on them learn to do on new data?
"""),
    answer("""
*Model answer.* The second-level model learns how far to trust each first-level model, and it must learn it
from predictions that behave like the ones it will see at test time: predictions on examples the model did
not fit. In-fold predictions are optimistic (the model has fitted those labels), by more for the models that
overfit most. A 1-nearest-neighbour classifier's nearest neighbour of a training example is the example
itself, so its in-fold predictions are the labels, 100 % right; the second-level model learns to copy it and
ignore the others. On new data the 1-NN is far from perfect, and the stack is no better than the 1-NN alone
(worse than a sensible blend). Out-of-fold predictions come from a model that did not see the example: they
carry each model's honest error, so the weights the second level learns carry over to new data (Wolpert,
1992).
""", "answer_stacking", 2),
]

if __name__ == "__main__":
    write(CELLS, pathlib.Path(__file__).with_name("hyperparameters") / "hyperparameters.ipynb")
