"""Chapter 5: the references against libraries and brute force, the checks' statistics and the Optuna
capstone's grader (re-runs, forged records)."""
import copy
import dataclasses
import functools
import itertools
import math

import numpy as np
import pytest
import torch

from autograder import records
from autograder.hyperparameters import checks, reference as ref, training


# ---------------------------------------------------------------- references


@pytest.mark.parametrize("C", [1, 2, 10, 1000])
def test_initial_loss_is_ln_c_and_torchs_cross_entropy_of_equal_scores(C):
    assert ref.expected_initial_loss(C) == pytest.approx(math.log(C), abs=1e-12)
    logits = torch.randn(5, C, dtype=torch.float64) * 0 + 3.0  # any equal scores
    assert torch.nn.functional.cross_entropy(logits, torch.zeros(5, dtype=torch.long)).item() == \
        pytest.approx(math.log(C), abs=1e-12)


def test_update_ratio_is_the_frobenius_ratio():
    rng = np.random.default_rng(0)
    W, dW = rng.standard_normal((7, 3)), rng.standard_normal((7, 3))
    assert ref.update_ratio(W, dW, 0.01) == pytest.approx(0.01 * math.sqrt((dW ** 2).sum() / (W ** 2).sum()))


@pytest.mark.parametrize("losses, factor, expected", [
    ([], 3.0, False), ([2.3], 3.0, False), ([math.nan], 3.0, True), ([2.3, math.inf], 3.0, True),
    ([2.0, 6.0], 3.0, False), ([2.0, 6.0000001], 3.0, True), ([2.3, 3.0, 4.2, 5.6, 7.0], 3.0, True),
    ([2.3, 0.4, 1.5], 3.0, False), ([2.3, math.nan, 1.0], 3.0, True), ([1.0, 1.5, 2.1], 2.0, True)])
def test_should_abort_compares_with_the_first_loss_and_aborts_on_nan(losses, factor, expected):
    assert ref.should_abort(losses, factor) is expected
    assert ref.should_abort(np.array(losses), factor) is expected


def test_ranking_puts_nan_last_and_keeps_ties_in_trial_order():
    results = [({}, 0.5), ({}, math.nan), ({}, 0.9), ({}, 0.5), ({}, 0.9), ({}, -math.inf)]
    assert ref.ranked(results) == [2, 4, 0, 3, 5, 1]
    assert ref.ranked([]) == []


def test_grid_search_tries_the_product_in_order():
    calls = []
    results = ref.grid_search(lambda c: calls.append(c) or len(calls), {"a": [1, 2], "b": ["x", "y", "z"]})
    assert [c for c, _ in results] == [{"a": a, "b": b} for a, b in itertools.product([1, 2], "xyz")]
    assert [s for _, s in results] == list(range(1, 7)) and len(calls) == 6
    assert ref.grid_search(lambda c: 0.0, {"a": [], "b": [1]}) == []


def test_on_boundary_measures_log_parameters_in_log_space():
    space = {"lr": ("log", 1e-5, 1e-1), "h": ("int", 16, 128), "act": ("choice", ["relu", "tanh"])}
    assert ref.on_boundary({"lr": 1e-4, "h": 64, "act": "relu"}, space) == []  # 25 % of the log range
    assert ref.on_boundary({"lr": 2e-5, "h": 127, "act": "tanh"}, space) == ["lr", "h"]
    assert ref.on_boundary({"lr": 0.5, "h": 64}, space) == ["lr"]  # outside the range


def test_refine_space_spans_the_top_configs_in_log_space_padded_and_clipped():
    space = {"lr": ("log", 1e-6, 1.0), "h": ("int", 10, 110), "m": ("uniform", 0.0, 1.0),
             "act": ("choice", ["relu", "tanh", "gelu"])}
    results = [({"lr": 1e-3, "h": 50, "m": 0.5, "act": "tanh"}, 0.9), ({"lr": 1e-2, "h": 60, "m": 0.95, "act": "relu"}, 0.8),
               ({"lr": 1e-5, "h": 12, "m": 0.1, "act": "gelu"}, 0.1), ({"lr": 0.5, "h": 100, "m": 0.2, "act": "gelu"},
                                                                     math.nan)]
    new = ref.refine_space(results, space, top_k=2)
    pad = 0.1 * 6  # a tenth of six decades
    assert new["lr"][0] == "log"
    assert math.log10(new["lr"][1]) == pytest.approx(-3 - pad) and math.log10(new["lr"][2]) == pytest.approx(-2 + pad)
    assert new["h"] == ("int", 40, 70)
    assert new["m"] == ("uniform", pytest.approx(0.4), 1.0)  # clipped at the old end
    assert new["act"] == ("choice", ["relu", "tanh"])
    linear = ref.refine_space(results, space, top_k=2, log_space=False)
    assert linear["lr"] != new["lr"]
    assert ref.refine_space([], space, 3) == {**space, "act": ("choice", ["relu", "tanh", "gelu"])}
    assert ref.refine_space([({"lr": 1.0, "h": 10, "m": 0.0, "act": "relu"}, math.nan)], space, 3)["h"] == ("int", 10, 110)


def _halving_rounds(n, eta):
    rounds = [n]
    while rounds[-1] > 1:
        rounds.append(max(1, rounds[-1] // eta))
    return rounds


@pytest.mark.parametrize("n, eta, kind", [(9, 3, "smooth"), (8, 2, "smooth"), (27, 3, "ties"), (12, 2, "nan"),
                                          (5, 4, "smooth"), (1, 3, "smooth")])
def test_successive_halving_by_brute_force(n, eta, kind):
    rng = np.random.default_rng(n)
    space = {"lr": ("log", 1e-3, 10.0), "hidden": ("int", 16, 128)}
    configs = [c for c, _ in checks._results(space, n, "smooth", rng)]
    objective = checks.Objective(kind)
    best = ref.successive_halving(configs, objective, 2, eta)
    epochs = collections_of(objective.calls)
    assert [len(epochs[2 * eta ** r]) for r in range(len(epochs))] == _halving_rounds(n, eta)
    # Each round's survivors are the best of the previous round at its budget (NaN last, ties by order).
    for r in range(1, len(epochs)):
        before = epochs[2 * eta ** (r - 1)]
        scored = [(c, checks.score(c, 2 * eta ** (r - 1), kind)) for c in before]
        keep = [scored[i][0] for i in ref.ranked(scored)[:len(epochs[2 * eta ** r])]]
        assert epochs[2 * eta ** r] == keep
    assert best == epochs[max(epochs)][0]
    assert ref.successive_halving([], checks.Objective(), 1, 3) is None


def collections_of(calls):
    out = {}
    for config, epochs in calls:
        out.setdefault(epochs, []).append(config)
    return out


@pytest.mark.parametrize("n, k", [(30, 5), (31, 4), (10, 10), (7, 2)])
def test_out_of_fold_predictions_are_sklearns_and_a_hand_written_kfold(n, k):
    rng = np.random.default_rng(n)
    y = np.arange(n) % 3
    X = rng.standard_normal((n, 4)) + np.eye(3, 4)[y]
    make_model = functools.partial(checks.RidgeModel, alpha=0.5, n_classes=3)
    got = ref.out_of_fold_predictions(X, y, make_model, k)
    expected = np.zeros((n, 3))
    for held_out in np.array_split(np.arange(n), k):  # array_split: the first n % k parts one larger, as KFold
        rest = np.setdiff1d(np.arange(n), held_out)
        expected[held_out] = make_model().fit(X[rest], y[rest]).predict(X[held_out])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    assert not np.allclose(got, checks.in_fold_predictions(X, y, make_model), atol=1e-3)  # the leak shows


# ---------------------------------------------------------------- the checks' statistics


def _judge_log_uniform(sampler, seeds):
    check = checks.CHECKS["log_uniform"]
    verdicts = []
    for seed in seeds:
        case = checks.make_draws("log_uniform")(checks.spec(low=1e-6, high=1e-2, size=2000), None)
        case = dataclasses.replace(case, seed=seed)
        observation = check._decode_observation(check.run_case([sampler], case))
        verdicts.append(check.judge_case(observation, case, False, 0)[0])
    return verdicts


def test_a_correct_log_uniform_passes_many_seeds_and_a_uniform_one_fails_them_all():
    right = lambda low, high, size, rng: 10.0 ** rng.uniform(np.log10(low), np.log10(high), size)
    wrong = lambda low, high, size, rng: rng.uniform(low, high, size)
    assert all(not problems for problems in _judge_log_uniform(right, range(20)))
    wrong_verdicts = _judge_log_uniform(wrong, range(5))
    assert all(problems and any(m.id == "hp.uniform_not_log_uniform" for p in problems for m, _ in p.mistakes)
               for problems in wrong_verdicts)


def test_a_sampler_that_uses_numpys_global_rng_fails():
    sloppy = lambda low, high, size, rng: 10.0 ** np.random.uniform(np.log10(low), np.log10(high), size)
    (problems,) = _judge_log_uniform(sloppy, [3])
    assert problems and "does not draw from the rng" in problems[0].header


def test_draws_whose_digest_is_not_theirs_are_rejected():
    check = checks.CHECKS["log_uniform"]
    case = checks.make_draws("log_uniform")(checks.spec(low=1e-6, high=1e-2, size=2000), None)
    right = lambda low, high, size, rng: 10.0 ** rng.uniform(np.log10(low), np.log10(high), size)
    observation = check.run_case([right], case)
    forged = dict(observation, draws=records.encode({"sample": right(1e-6, 1e-2, 2000, np.random.default_rng(99))}))
    problems, _ = check.judge_case(check._decode_observation(forged), case, False, 0)
    assert problems and "inconsistent" in problems[0].header


def test_the_sampler_checks_stay_within_the_false_alarm_budget():
    from autograder.sampling import MAX_TESTS
    for name in ("log_uniform", "sample_config", "random_search"):
        row = next(r for r in checks.TABLE if r.name == name)
        tested = [s for s in row.specs if max(s.params.get(k, 0) for k in ("size", "n", "n_trials")) >= 100]
        tests = sum(4 * len(s.params.get("space", {"x": None})) for s in tested)
        assert tests <= MAX_TESTS, name


# ---------------------------------------------------------------- the Optuna capstone's grader


def right_objective(trial, reports=True):
    import optuna
    lr = trial.suggest_float("lr", 1e-4, 1.0, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True)
    hidden = trial.suggest_int("hidden", 16, 128, log=True)

    def report(epoch, run):
        trial.report(run.val_accuracy[-1], epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()

    return training.train(lr=lr, weight_decay=weight_decay, hidden=hidden, epochs=checks.STUDY_EPOCHS,
                          on_epoch=report).val_accuracy[-1]


@pytest.fixture(scope="module")
def study_record(tmp_path_factory):
    import os
    folder = tmp_path_factory.mktemp("study")
    here = os.getcwd()
    os.chdir(folder)
    try:
        record = checks.CHECKS["capstone_optuna"].run((right_objective,), False)
    finally:
        os.chdir(here)
    assert not list(folder.iterdir()), "the study's SQLite file was left behind"
    return record


def test_the_right_objective_passes_and_the_study_is_pruned(study_record):
    verdict = checks.CHECKS["capstone_optuna"].judge(copy.deepcopy(study_record), False)
    assert verdict.passed, verdict.text
    trials = records.decode(study_record["trials"])
    assert len(trials) == checks.STUDY_TRIALS[False]
    assert any(t["state"] == "PRUNED" for t in trials)


def _forged(record, edit):
    trials = records.decode(record["trials"])
    edit(trials)
    return {**record, "trials": records.encode(trials)}


def test_reported_values_that_training_does_not_give_are_caught(study_record):
    def inflate(trials):
        best = max((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
        best["intermediate"] = [[s, min(1.0, v + 0.02)] for s, v in best["intermediate"]]
        best["value"] = best["intermediate"][-1][1]
    verdict = checks.CHECKS["capstone_optuna"].judge(_forged(study_record, inflate), False)
    assert not verdict.passed and "is not the reference run" in verdict.text
    assert "does not give these validation accuracies" in verdict.text


def test_a_claimed_accuracy_without_the_run_is_caught(study_record):
    def claim(trials):
        for t in trials:
            if t["state"] == "COMPLETE":
                t["intermediate"] = [[s, 0.99] for s in range(1, checks.STUDY_EPOCHS + 1)]
                t["value"] = 0.99
    verdict = checks.CHECKS["capstone_optuna"].judge(_forged(study_record, claim), False)
    assert not verdict.passed and "re-run" in verdict.text


def test_linear_distributions_and_no_pruning_are_named(study_record):
    def linear(trials):
        for t in trials:
            t["distributions"]["lr"] = t["distributions"]["lr"].replace('"log": true', '"log": false')
    verdict = checks.CHECKS["capstone_optuna"].judge(_forged(study_record, linear), False)
    assert not verdict.passed and "hp.optuna_linear_scale" in verdict.mistakes

    def unpruned(trials):
        for t in trials:
            t["state"], t["intermediate"] = "COMPLETE", []
    verdict = checks.CHECKS["capstone_optuna"].judge(_forged(study_record, unpruned), False)
    assert not verdict.passed and "hp.optuna_no_reports" in verdict.mistakes


def test_a_record_of_another_seeds_study_does_not_pass(study_record):
    check = checks.CHECKS["capstone_optuna"]
    relabelled = {**_forged(study_record, lambda trials: trials.__delitem__(slice(checks.STUDY_TRIALS[True], None))),
                  "hidden": True}  # the public study's first trials, offered as the hidden (seed 1) study's
    verdict = check.judge(relabelled, True)
    assert not verdict.passed and "not one of the check's study" in verdict.text
    assert not check.judge({**study_record, "hidden": True}, True).passed  # too many trials for that study
