"""The chapter-5 mistakes of issue 10, as wrong implementations (see autograder.mutants).

The solution's sample_config draws its log parameters with its log_uniform, and random_search calls
sample_config: a log_uniform that samples uniformly fails all three cells, each naming the same mistake.
The Optuna objective's mistakes fail the capstone only (its cell is ``capstone_optuna``); their messages
say which outcome was missed and name the mistake.
"""
from autograder.mutants import Mutant

MUTANTS = [
    Mutant("uniform_not_log_uniform", "log_uniform", ("log_uniform", "sample_config", "random_search"), '''
def log_uniform(low, high, size, rng):
    return rng.uniform(low, high, size=size)             # uniform on [low, high]: the exponent is not uniform
''', ("hp.uniform_not_log_uniform",)),
    Mutant("abort_vs_previous", "should_abort", ("should_abort",), '''
def should_abort(losses, factor=3.0):
    losses = np.asarray(losses, dtype=np.float64)
    if not np.all(np.isfinite(losses)):
        return True
    return bool(np.any(losses[1:] > factor * losses[:-1]))   # each loss against the one before it
''', ("hp.abort_vs_previous",)),
    Mutant("nan_not_aborting", "should_abort", ("should_abort",), '''
def should_abort(losses, factor=3.0):
    losses = np.asarray(losses, dtype=np.float64)
    if losses.size == 0:
        return False
    return bool(np.any(losses > factor * losses[0]))        # nan > x is False: a NaN never aborts
''', ("hp.nan_not_aborting",)),
    Mutant("refine_linear_for_log", "refine_space", ("refine_space",), '''
def refine_space(results, space, top_k):
    finite = [(config, s) for config, s in results if not np.isnan(s)]
    if not finite or top_k < 1:
        return {name: (spec[0], list(spec[1])) if spec[0] == "choice" else tuple(spec)
                for name, spec in space.items()}
    order = sorted(range(len(finite)), key=lambda i: -finite[i][1])
    top = [finite[i][0] for i in order[:top_k]]
    refined = {}
    for name, spec in space.items():
        values = [config[name] for config in top]
        if spec[0] == "choice":
            refined[name] = ("choice", [o for o in spec[1] if o in values])
            continue
        low, high = spec[1], spec[2]                          # linear space, even for "log"
        pad = 0.1 * (high - low)
        new_low, new_high = max(low, min(values) - pad), min(high, max(values) + pad)
        if spec[0] == "int":
            refined[name] = ("int", int(np.floor(new_low)), int(np.ceil(new_high)))
        else:
            refined[name] = (spec[0], float(new_low), float(new_high))
    return refined
''', ("hp.refine_linear_for_log",)),
    Mutant("halving_keeps_worst", "successive_halving", ("successive_halving",), '''
def successive_halving(configs, objective, min_epochs, eta):
    survivors, epochs = list(configs), min_epochs
    while survivors:
        scores = [objective(config, epochs) for config in survivors]
        if len(survivors) == 1:
            return survivors[0]
        order = sorted(range(len(survivors)), key=lambda i: scores[i])   # ascending: the worst first
        survivors = [survivors[i] for i in order[:max(1, len(survivors) // eta)]]
        epochs = epochs * eta
    return None
''', ("hp.halving_keeps_worst",)),
    Mutant("halving_budget_not_multiplied", "successive_halving", ("successive_halving",), '''
def successive_halving(configs, objective, min_epochs, eta):
    survivors = list(configs)
    while survivors:
        scores = [objective(config, min_epochs) for config in survivors]   # the same budget every round
        if len(survivors) == 1:
            return survivors[0]
        order = sorted(range(len(survivors)),
                       key=lambda i: (np.isnan(scores[i]), 0.0 if np.isnan(scores[i]) else -scores[i]))
        survivors = [survivors[i] for i in order[:max(1, len(survivors) // eta)]]
    return None
''', ("hp.halving_budget_not_multiplied",)),
    Mutant("oof_leaks_labels", "out_of_fold_predictions", ("out_of_fold_predictions",), '''
def out_of_fold_predictions(X, y, make_model, k):
    model = make_model()
    model.fit(X, y)                                          # every fold's labels seen
    return np.asarray(model.predict(X), dtype=np.float64)
''', ("hp.oof_leaks_labels",)),
    Mutant("optuna_linear_scale", "objective", (), '''
def objective(trial):
    lr = trial.suggest_float("lr", 1e-4, 1.0)                           # no log=True
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1)
    hidden = trial.suggest_int("hidden", 16, 128)

    def _report_and_prune(epoch, run):
        trial.report(run.val_accuracy[-1], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    return training.train(lr=lr, weight_decay=weight_decay, hidden=hidden, epochs=EPOCHS,
                          on_epoch=_report_and_prune).val_accuracy[-1]
''', ("hp.optuna_linear_scale",), capstones=("capstone_optuna",)),
    Mutant("optuna_no_reports", "objective", (), '''
def objective(trial):
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    hidden = trial.suggest_int("hidden", 16, 128, log=True)
    return training.train(lr=lr, weight_decay=weight_decay, hidden=hidden, epochs=EPOCHS).val_accuracy[-1]
''', ("hp.optuna_no_reports",), capstones=("capstone_optuna",)),
]
