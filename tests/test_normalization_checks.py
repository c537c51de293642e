"""The chapter-4 checks' own diagnoses (autograder/normalization/checks.py).

- the new diagnoses from real students' code (issue 6), each named on a function written here;
- a CS231n-style batch norm reads its four differences in one message;
- every registered mistake of the chapter can be named: a *replay* (a fake student whose
  functions return the mistake's wrong outputs where it applies, torch's elsewhere) fails
  the check naming that id; mistakes recognised from a value's form are named by a mutant;
- the checks module and the speed comparison import no torch (the kernel has none).
"""
import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from autograder import checking
from autograder.mutants import for_assignment
from autograder.normalization import checks, reference
from autograder.speed import SpeedReport, compare_speed


def verdict(check, *functions, hidden=True):
    """The check's Verdict on the functions (run, then judged, as in the grader)."""
    return check.judge(check.run(functions, hidden), hidden)


# ---------------------------------------------------------------- correct layers (numpy)


def batchnorm_forward(x, gamma, beta, bn_param, test_affine=True):
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.1)
    N = x.shape[0]
    running_mean = bn_param.get("running_mean", np.zeros(x.shape[1], dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(x.shape[1], dtype=x.dtype))
    cache = None
    if bn_param["mode"] == "train":
        mu, var = x.mean(axis=0), x.var(axis=0)
        std = np.sqrt(var + eps)
        xhat = (x - mu) / std
        out = gamma * xhat + beta
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var = (1 - momentum) * running_var + momentum * var * N / (N - 1)
        cache = (xhat, std, gamma)
    else:
        out = (x - running_mean) / np.sqrt(running_var + eps)
        out = gamma * out + beta if test_affine else out
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out, cache


def layernorm_forward(x, gamma, beta, ln_param):
    xc = x - x.mean(axis=1, keepdims=True)
    std = np.sqrt((xc ** 2).mean(axis=1, keepdims=True) + ln_param.get("eps", 1e-5))
    xhat = xc / std
    return gamma * xhat + beta, (x, xhat, std, gamma, ln_param.get("eps", 1e-5))


def layernorm_backward(dout, cache):
    x, xhat, std, gamma, eps = cache
    g = dout * gamma
    dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def groupnorm_forward(x, gamma, beta, G, gn_param):
    N, C, H, W = x.shape
    xg = x.reshape(N, G, -1)
    xc = xg - xg.mean(axis=2, keepdims=True)
    xhat = (xc / np.sqrt((xc ** 2).mean(axis=2, keepdims=True) + gn_param.get("eps", 1e-5))).reshape(x.shape)
    return gamma.reshape(1, C, 1, 1) * xhat + beta.reshape(1, C, 1, 1), None


def test_the_correct_layers_here_pass():
    assert verdict(checks.batchnorm_forward, batchnorm_forward).passed
    assert verdict(checks.layernorm_backward, layernorm_forward, layernorm_backward).passed
    assert verdict(checks.groupnorm_forward, groupnorm_forward).passed


# ---------------------------------------------------------------- the new diagnoses (issue 6)


def test_test_mode_without_gamma_and_beta_is_named():
    def forgets_affine(x, gamma, beta, bn_param):
        return batchnorm_forward(x, gamma, beta, bn_param, test_affine=False)

    result = verdict(checks.batchnorm_forward, forgets_affine)
    assert result.mistakes == ("bn.test_without_affine",), result.text
    assert "out is wrong" in result.text and "mode': 'test'" in result.text


def cs231n_batchnorm_forward(x, gamma, beta, bn_param):
    """CS231n's conventions: running statistics from zeros, momentum 0.9 on the old value,
    running_var biased; and a real bug: test mode without gamma and beta."""
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    running_mean = bn_param.get("running_mean", np.zeros(x.shape[1], dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(x.shape[1], dtype=x.dtype))
    if bn_param["mode"] == "train":
        mu, var = x.mean(axis=0), x.var(axis=0)
        out = gamma * (x - mu) / np.sqrt(var + eps) + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    else:
        out = (x - running_mean) / np.sqrt(running_var + eps)
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out, None


RUNNING_IDS = {"bn.running_var_from_zeros", "bn.running_var_biased", "bn.momentum_old"}


@pytest.mark.parametrize("hidden", [False, True])
def test_cs231n_style_batchnorm_reads_every_difference_in_one_message(hidden):
    result = verdict(checks.batchnorm_forward, cs231n_batchnorm_forward, hidden=hidden)
    assert set(result.mistakes) == RUNNING_IDS | {"bn.test_without_affine"}, result.text
    # the three differences of running_var, tried together, on one input
    running_var = result.text.split("bn_param['running_var']", 1)[1].split("\nalso: ")[0]
    assert all(f"[{id}]" in running_var for id in RUNNING_IDS), result.text
    test_mode = result.text.split("\nalso: out is wrong.\n", 1)[1]  # a later input, in test mode
    assert test_mode.startswith("  input") and "'mode': 'test'" in test_mode.splitlines()[0], result.text


def test_a_later_exception_is_reported_with_the_first_failure():
    def crashes_in_test_mode(x, gamma, beta, bn_param):
        if bn_param["mode"] == "test":
            raise KeyError("running_mean")
        return cs231n_batchnorm_forward(x, gamma, beta, bn_param)

    result = verdict(checks.batchnorm_forward, crashes_in_test_mode, hidden=False)
    assert set(result.mistakes) == RUNNING_IDS
    assert "and then batchnorm_forward raised KeyError" in result.text


def test_the_same_mistake_in_both_modes_is_named_once():
    def eps_outside(x, gamma, beta, bn_param):
        given = dict(bn_param)  # the running statistics before the call
        _, cache = batchnorm_forward(x, gamma, beta, bn_param)  # updates them right
        eps = given.get("eps", 1e-5)
        if given["mode"] == "train":
            mu, std = x.mean(axis=0), x.std(axis=0)
        else:
            mu, std = given["running_mean"], np.sqrt(given["running_var"])
        return gamma * (x - mu) / (std + eps) + beta, cache

    result = verdict(checks.batchnorm_forward, eps_outside, hidden=False)
    assert result.mistakes == ("bn.eps_outside",), result.text
    assert "also" not in result.text


@pytest.mark.parametrize("form", ["via xhat", "via x - mean"])
def test_layernorm_backward_with_batch_norms_sums_is_named(form):
    def batch_axis_backward(dout, cache):
        x, xhat, std, gamma, eps = cache
        N = dout.shape[0]
        if form == "via xhat":
            dx = gamma / (N * std) * (N * dout - dout.sum(axis=0) - xhat * (dout * xhat).sum(axis=0))
        else:  # as in CS231n's batch norm, with layer norm's mean and var
            xc, var = x - x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
            dx = (1.0 / N) * gamma * (var + eps) ** -0.5 * (
                N * dout - dout.sum(axis=0) - xc * (var + eps) ** -1.0 * (dout * xc).sum(axis=0))
        return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)

    result = verdict(checks.layernorm_backward, layernorm_forward, batch_axis_backward)
    assert result.mistakes == ("ln.backward_batch_axis",), result.text
    assert "layernorm_backward: dx is wrong." in result.text


def test_groupnorm_statistics_per_pixel_are_named():
    def per_pixel(x, gamma, beta, G, gn_param):
        N, C, H, W = x.shape
        xg = x.reshape(N, G, C // G, H, W)
        xc = xg - xg.mean(axis=2, keepdims=True)
        xhat = (xc / np.sqrt((xc ** 2).mean(axis=2, keepdims=True) + gn_param.get("eps", 1e-5))).reshape(x.shape)
        return gamma.reshape(1, C, 1, 1) * xhat + beta.reshape(1, C, 1, 1), None

    result = verdict(checks.groupnorm_forward, per_pixel)
    assert result.mistakes == ("gn.per_pixel_stats",), result.text


# ---------------------------------------------------------------- every mistake can be named


def _rows(mistake):
    return [row for row in checks.TABLE if mistake in row.mistakes]


def _cases(check):
    return check.cases(hidden=True)


def _key(x):
    return (x.shape, x.dtype.str, x.tobytes())


def _first(value):
    return value[0] if isinstance(value, list) else value


def _replay_forward(check, mistake):
    """A forward pass returning the mistake's wrong out and running statistics where it
    applies, and torch's elsewhere."""
    expected = {_key(case.inputs["x"]): (case, check.compute_expected(case)) for case in _cases(check)}

    def forward(*args):
        case, (out, *state) = expected[_key(args[0])]
        wrong = mistake.wrong(case) if mistake.when(case) else {}
        values = {"out": out, **{s.what: state[s.index - 1] for s in check.row.state}}
        values.update({k: _first(v) for k, v in wrong.items() if k in mistake.explains})
        for s in check.row.state:
            args[list(case.inputs).index(s.arg)][s.key] = values[s.what]
        return values["out"].astype(case.dtype), case

    return (forward,)


def _replay_backward(check, mistake):
    """A correct forward pass (torch's out; the case as cache) and a backward pass returning
    the mistake's wrong gradients where it applies, torch's elsewhere."""
    expected = {_key(case.inputs["x"]): (case, check.compute_expected(case)) for case in _cases(check)}

    def forward(*args):
        case, result = expected[_key(args[0])]
        return result["out"].astype(case.dtype), _key(args[0])

    def backward(dout, key):
        case, result = expected[key]
        case = dataclasses.replace(case, dout=np.asarray(dout, dtype=np.float64))
        wrong = mistake.wrong(case) if mistake.when(case) else {}
        return tuple(_first(wrong.get(f"d{name}", grad)) for name, grad in zip(case.grads, result["grads"]))

    return forward, backward


def _replay_transform(check, mistake):
    """A function returning the mistake's wrong output where it applies, torch's elsewhere."""
    expected = {_key(case.inputs["u"]): (case, check.compute_expected(case)) for case in _cases(check)}

    def function(u):  # one output: unit_vector_jacobian's J
        case, values = expected[_key(u)]
        wrong = mistake.wrong(case) if mistake.when(case) else {}
        return np.asarray(_first(wrong.get("J", values["J"])), dtype=case.dtype)

    return (function,)


def _replayed(mistake):
    """(check name, Verdict) for every check of a row that has the mistake."""
    for row in _rows(mistake):
        if row.name in checks.CHECKS:  # a function's row (transforms.Transform), not a layer's
            yield row.name, verdict(checks.CHECKS[row.name], *_replay_transform(checks.CHECKS[row.name], mistake))
            continue
        forward = checks.CHECKS[f"{row.name}_forward"]
        if set(mistake.explains) & {"out", *(s.what for s in row.state)}:
            yield forward.name, verdict(forward, *_replay_forward(forward, mistake))
        if any(what.startswith("d") for what in mistake.explains):
            backward = checks.CHECKS[f"{row.name}_backward"]
            # BackwardCheck.compute_expected gives out, dout and the gradients
            yield backward.name, verdict(backward, *_replay_backward(backward, mistake))


REGISTRY = checking.registry(checks.CHECKS)
WRONG = sorted(id for id, m in REGISTRY.items() if m.wrong is not None)
OBSERVED = sorted(id for id, m in REGISTRY.items() if m.observed is not None and not id.startswith("contract."))


@pytest.mark.parametrize("id", WRONG)
def test_every_wrong_reference_is_named_when_replayed(id):
    mistake = REGISTRY[id]
    replays = list(_replayed(mistake))
    assert replays, f"{id} is in no row of the table"
    for name, result in replays:
        assert not result.passed, f"{name}: {id} replayed passes: its `when` never holds or its output is right"
        assert id in result.mistakes, f"{name} does not name {id}:\n{result.text}"


@pytest.mark.parametrize("id", OBSERVED)
def test_every_mistake_seen_in_a_value_s_form_has_a_mutant(id):
    assert any(id in mutant.mistakes for mutant in for_assignment("normalization")), id


def test_every_mutant_names_registered_mistakes_only():
    for mutant in for_assignment("normalization"):
        assert set(mutant.mistakes) <= set(REGISTRY), mutant.name


def test_the_contract_mistakes_are_the_engine_s():
    contract = {id for id in REGISTRY if id.startswith("contract.")}
    assert contract == {m.id for m in checking.CONTRACT_MISTAKES}


# ---------------------------------------------------------------- no torch in the kernel


def test_the_checks_and_the_speed_comparison_import_no_torch():
    code = ("import sys, autograder.normalization.checks, autograder.speed; "
            "bad = [m for m in sys.modules if m.split('.')[0] == 'torch' or m.endswith('.reference')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_defaults_are_torch_s():
    assert (checks.EPS, checks.MOMENTUM) == (reference.EPS, reference.MOMENTUM)


def test_compare_speed_reports_and_never_fails(capsys):
    def backward(dout, cache):
        xhat, std, gamma = cache
        N = dout.shape[0]
        dbeta, dgamma = dout.sum(axis=0), (dout * xhat).sum(axis=0)
        return (gamma / (N * std)) * (N * dout - dbeta - xhat * dgamma), dgamma, dbeta

    report = checks.compare_speed(backward, backward, batchnorm_forward, shape=(32, 8), repeats=3)
    assert isinstance(report, SpeedReport) and report.agreement == 0.0
    assert "Informative" in repr(report)

    def stub(dout, cache):
        raise NotImplementedError()

    assert compare_speed(backward, stub, batchnorm_forward, shape=(32, 8), repeats=3) is None
    assert "not implemented yet" in capsys.readouterr().out
