"""Checks for the normalization assignment (chapter 4).

One function per graded function, called from the notebook's test cells::

    checks.batchnorm_forward(batchnorm_forward)                        # public cases
    checks.batchnorm_backward(batchnorm_forward, batchnorm_backward, hidden=True)

Public and hidden checks run the same code; ``hidden=True`` adds shapes, seeds, modes
and dtypes. Every kind of input (train and test mode, running statistics absent or given,
non-default momentum and eps, a variance comparable to eps, G = C) is in the public cases.

The batch-norm forward checks also compare ``bn_param['running_mean']`` and
``bn_param['running_var']`` after every call with torch's (a separate message, so a
student sees whether ``out`` or the running statistics are wrong). A backward check
runs the student's own forward pass for the cache: when the backward pass fails because
the forward pass has a recognised mistake, the message names that mistake.

``compare_speed`` times the two batch-norm backward passes; it only reports, it never fails.
"""
import copy
import dataclasses
import time
import warnings

import numpy as np

from ..checking import (TOL, Case, CheckFailed, Mistake, _safe, as_tuple, call_student, check_backward,
                        check_forward, fail, matches, mismatch, public_check, rel_error, to_numpy, to_torch)
from . import reference as ref

EPS, MOMENTUM = ref.EPS, ref.MOMENTUM


# ---------------------------------------------------------------- wrong computations (numpy, float64)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _normalize(x, axes, eps, ddof=0, eps_outside=False):
    x = _f64(x)
    mu = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, ddof=ddof, keepdims=True)
    std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    return (x - mu) / std


def _affine(xhat, gamma, beta):
    shape = (1, -1) + (1,) * (xhat.ndim - 2)
    return _f64(gamma).reshape(shape) * xhat + _f64(beta).reshape(shape)


def _bn_axes(x):
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _bn_out(case, axes=None, ddof=0, eps_outside=False, stats="batch"):
    """Batch norm's output computed some (possibly wrong) way."""
    x, p = case.inputs["x"], case.inputs["bn_param"]
    eps = p.get("eps", EPS)
    if stats == "running":
        shape = (1, -1) + (1,) * (x.ndim - 2)
        rm = _f64(p.get("running_mean", np.zeros(x.shape[1]))).reshape(shape)
        rv = _f64(p.get("running_var", np.ones(x.shape[1]))).reshape(shape)
        std = np.sqrt(rv) + eps if eps_outside else np.sqrt(rv + eps)
        xhat = (_f64(x) - rm) / std
    else:
        xhat = _normalize(x, axes or _bn_axes(x), eps, ddof, eps_outside)
    return _affine(xhat, case.inputs["gamma"], case.inputs["beta"])


def _running(case):
    """The running statistics after a train-mode call, computed right and in known wrong ways."""
    x, p = _f64(case.inputs["x"]), case.inputs["bn_param"]
    m, axes, C = p.get("momentum", MOMENTUM), _bn_axes(x), x.shape[1]
    rm0 = _f64(p.get("running_mean", np.zeros(C)))
    rv0 = _f64(p.get("running_var", np.ones(C)))
    mean, var_b, var_u = x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)
    return {
        "mean_old_momentum": m * rm0 + (1 - m) * mean,
        "var_old_momentum": [m * rv0 + (1 - m) * var_u, m * rv0 + (1 - m) * var_b],
        "var_biased": (1 - m) * rv0 + m * var_b,
        "var_from_zeros": None if "running_var" in p else [m * var_u, m * var_b],
        "initial": {"running_mean": rm0, "running_var": rv0},
    }


def _mode(case):
    return case.inputs["bn_param"]["mode"]


# ---------------------------------------------------------------- mistakes: batch norm


UNBIASED_NORMALISE = Mistake(
    "unbiased variance used to normalise",
    "Normalise with the BIASED batch variance, the mean of (x - mean)**2 (divide by N, "
    "np.var's default ddof=0). The unbiased variance (divide by N - 1) is only what "
    "running_var stores.",
    lambda got, case, what: what == "out" and (
        "bn_param" not in case.inputs or _mode(case) == "train") and matches(
            got, _bn_out(case, ddof=1) if "bn_param" in case.inputs else _generic_out(case, ddof=1), case.dtype))

EPS_OUTSIDE = Mistake(
    "eps outside the square root",
    "Divide by sqrt(var + eps), not sqrt(var) + eps (PyTorch's convention). The difference "
    "is largest when the variance is comparable to eps.",
    lambda got, case, what: what == "out" and matches(
        got, (_bn_out(case, eps_outside=True, stats="running" if _mode(case) == "test" else "batch")
              if "bn_param" in case.inputs else _generic_out(case, eps_outside=True)), case.dtype))

EVAL_BATCH_STATS = Mistake(
    "test mode used the batch statistics",
    "In test mode, normalise with bn_param['running_mean'] and bn_param['running_var'], "
    "not with the mean and variance of the test batch: at test time the output for one "
    "example must not depend on the other examples of the batch.",
    lambda got, case, what: what == "out" and _mode(case) == "test" and (
        matches(got, _bn_out(case), case.dtype) or matches(got, _bn_out(case, ddof=1), case.dtype)))

MOMENTUM_OLD = Mistake(
    "momentum applied to the old value",
    "PyTorch's momentum (0.1) weighs the NEW batch statistic: "
    "running = (1 - momentum) * running + momentum * batch_stat. "
    "CS231n's convention (momentum 0.9 on the old value) is the other way round.",
    lambda got, case, what: _mode(case) == "train" and (
        (what == "running_mean" and matches(got, _running(case)["mean_old_momentum"], case.dtype))
        or (what == "running_var" and any(matches(got, v, case.dtype) for v in _running(case)["var_old_momentum"]))))

RUNNING_VAR_BIASED = Mistake(
    "running_var stored biased",
    "running_var stores the UNBIASED batch variance (divide by N - 1, or by N*H*W - 1 for "
    "spatial batch norm), as PyTorch does; the output is still normalised with the biased one. "
    "Multiply the biased variance by N / (N - 1) before the update.",
    lambda got, case, what: what == "running_var" and _mode(case) == "train"
    and matches(got, _running(case)["var_biased"], case.dtype))

RUNNING_VAR_ZEROS = Mistake(
    "running_var initialised to zeros",
    "When bn_param has no running_var yet, start from ones, like PyTorch (running_mean starts "
    "from zeros). CS231n's code starts both from zeros.",
    lambda got, case, what: what == "running_var" and _mode(case) == "train"
    and _running(case)["var_from_zeros"] is not None
    and any(matches(got, v, case.dtype) for v in _running(case)["var_from_zeros"]))

RUNNING_NOT_UPDATED = Mistake(
    "running statistics not updated in train mode",
    "In train mode, update bn_param['running_mean'] and bn_param['running_var'] with the "
    "batch statistics and store them back into bn_param.",
    lambda got, case, what: what in ("running_mean", "running_var") and _mode(case) == "train"
    and matches(got, _running(case)["initial"][what], case.dtype))

RUNNING_UPDATED_IN_TEST = Mistake(
    "running statistics updated in test mode",
    "Test mode only reads bn_param['running_mean'] and bn_param['running_var']; it must leave them unchanged.",
    lambda got, case, what: what in ("running_mean", "running_var") and _mode(case) == "test")


def _bn_axis_mistake(name, advice, axes):
    return Mistake(name, advice, lambda got, case, what: what == "out" and _mode(case) == "train"
                   and matches(got, _bn_out(case, axes=axes), case.dtype))


BN_WRONG_AXIS = _bn_axis_mistake(
    "wrong axis: per-sample statistics instead of per-feature",
    "Batch norm averages over the batch: mean and variance over axis 0, one value per feature "
    "(shape (D,)). Averaging over axis 1 normalises each example instead, which is layer norm.", (1,))

SPATIAL_PER_SAMPLE = _bn_axis_mistake(
    "wrong axis: per-sample statistics instead of per-channel",
    "Spatial batch norm computes one mean and variance per CHANNEL, over axes (0, 2, 3) "
    "(N * H * W values each); averaging over axes (1, 2, 3) normalises each example instead.", (1, 2, 3))

SPATIAL_PER_PIXEL = _bn_axis_mistake(
    "wrong axis: per-pixel statistics over the channels instead of per-channel",
    "Each (example, pixel) was normalised over its C channels. If you reshape to (N*H*W, C) "
    "and call batchnorm_forward, its statistics must be over axis 0 (per column, i.e. per channel).", (1,))

SPATIAL_N_ONLY = _bn_axis_mistake(
    "wrong axis: statistics over N only, not over N, H and W",
    "One gamma/beta per channel means one mean and variance per channel, over all N * H * W "
    "values of that channel: average over axes (0, 2, 3), not only over axis 0.", (0,))


def _reshape_without_transpose(case):
    x = _f64(case.inputs["x"])
    N, C, H, W = x.shape
    p = case.inputs["bn_param"]
    flat = _normalize(x.reshape(-1, C), (0,), p.get("eps", EPS))
    out = _f64(case.inputs["gamma"]) * flat + _f64(case.inputs["beta"])
    return out.reshape(N, C, H, W)


SPATIAL_RESHAPE = Mistake(
    "channels mixed up by a reshape without transpose",
    "x.reshape(-1, C) on an (N, C, H, W) array does not put the channels in the columns. "
    "Move the channel axis last first: x.transpose(0, 2, 3, 1).reshape(-1, C), and undo both on the output.",
    lambda got, case, what: what == "out" and _mode(case) == "train"
    and matches(got, _reshape_without_transpose(case), case.dtype))

_RUNNING_MISTAKES = [RUNNING_UPDATED_IN_TEST, MOMENTUM_OLD, RUNNING_VAR_BIASED, RUNNING_VAR_ZEROS,
                     RUNNING_NOT_UPDATED]
BN_MISTAKES = [UNBIASED_NORMALISE, EPS_OUTSIDE, EVAL_BATCH_STATS, BN_WRONG_AXIS, *_RUNNING_MISTAKES]
SPATIAL_MISTAKES = [UNBIASED_NORMALISE, EPS_OUTSIDE, EVAL_BATCH_STATS, SPATIAL_PER_SAMPLE, SPATIAL_PER_PIXEL,
                    SPATIAL_N_ONLY, SPATIAL_RESHAPE, *_RUNNING_MISTAKES]


def _not_summed(got, case, what):
    if what not in ("dgamma", "dbeta"):
        return False
    shape = np.shape(case.inputs["gamma"])
    return np.shape(got) != shape and np.size(got) > int(np.prod(shape))


DGAMMA_NOT_SUMMED = Mistake(
    "dgamma/dbeta not summed over the batch",
    "gamma and beta are shared by every example (and every pixel, for the (N, C, H, W) layers), "
    "so their gradients are SUMS of the contributions over all those axes, one value per "
    "feature or channel: dgamma and dbeta must have gamma's shape.", _not_summed)


# ---------------------------------------------------------------- mistakes: layer and group norm


def _generic_out(case, ddof=0, eps_outside=False, axes=None, G=None, interleaved=False):
    """Layer norm's or group norm's output computed some (possibly wrong) way."""
    x = _f64(case.inputs["x"])
    param = case.inputs.get("ln_param", case.inputs.get("gn_param", {}))
    eps = param.get("eps", EPS)
    if "G" not in case.inputs:  # layer norm
        xhat = _normalize(x, axes or (1,), eps, ddof, eps_outside)
    else:
        N, C, H, W = x.shape
        G = G or case.inputs["G"]
        if interleaved:  # channel c in group c % G
            xhat = _normalize(x.reshape(N, C // G, G, H, W), (1, 3, 4), eps, ddof, eps_outside).reshape(x.shape)
        else:
            xhat = _normalize(x.reshape(N, G, -1), axes or (2,), eps, ddof, eps_outside).reshape(x.shape)
    return _affine(xhat, case.inputs["gamma"], case.inputs["beta"])


LN_WRONG_AXIS = Mistake(
    "wrong axis: per-feature statistics instead of per-sample",
    "Layer norm normalises each example over its own D features: mean and variance over "
    "axis 1 (keepdims=True, shape (N, 1)). Averaging over axis 0 is batch norm.",
    lambda got, case, what: what == "out" and matches(got, _generic_out(case, axes=(0,)), case.dtype))

GN_PER_CHANNEL = Mistake(
    "wrong axis: per-channel statistics (instance norm) instead of per group",
    "Group norm shares one mean and variance among the C // G channels of a group: reshape to "
    "(N, G, C // G * H * W) and average over the last axis.",
    lambda got, case, what: what == "out" and case.inputs["G"] != case.inputs["x"].shape[1]
    and matches(got, _generic_out(case, G=case.inputs["x"].shape[1]), case.dtype))

GN_ONE_GROUP = Mistake(
    "wrong axis: statistics over all channels (layer norm) instead of per group",
    "Each of the G groups has its own mean and variance: reshape to (N, G, -1), not (N, -1).",
    lambda got, case, what: what == "out" and case.inputs["G"] != 1
    and matches(got, _generic_out(case, G=1), case.dtype))

GN_OVER_BATCH = Mistake(
    "wrong axis: statistics over the batch too",
    "Group norm is computed per example: average over the last axis of the (N, G, -1) array "
    "only, not over axis 0.",
    lambda got, case, what: what == "out" and matches(got, _generic_out(case, axes=(0, 2)), case.dtype))

GN_INTERLEAVED = Mistake(
    "groups of non-consecutive channels",
    "A group is C // G CONSECUTIVE channels (channels 0..C/G-1 form group 0), as in "
    "torch.nn.GroupNorm: x.reshape(N, G, C // G, H, W), not x.reshape(N, C // G, G, H, W).",
    lambda got, case, what: what == "out" and 1 < case.inputs["G"] < case.inputs["x"].shape[1]
    and matches(got, _generic_out(case, interleaved=True), case.dtype))

LN_MISTAKES = [UNBIASED_NORMALISE, EPS_OUTSIDE, LN_WRONG_AXIS]
GN_MISTAKES = [UNBIASED_NORMALISE, EPS_OUTSIDE, GN_PER_CHANNEL, GN_ONE_GROUP, GN_OVER_BATCH, GN_INTERLEAVED]


# ---------------------------------------------------------------- mistakes: weight norm and cosine norm


def _rows_normalised(a, axis=1):
    a = _f64(a)
    return a / np.sqrt((a * a).sum(axis=axis, keepdims=True))


def _wn_out(case, v_hat):
    x, g, b = (_f64(case.inputs[k]) for k in ("x", "g", "b"))
    return x @ (g * v_hat).T + b


WN_COLUMN_NORM = Mistake(
    "wrong axis: ||v|| over the columns instead of each row",
    "Each output unit j has its own weight vector, the row v[j] (torch's (out, in) layout): "
    "divide each row by its norm, np.linalg.norm(v, axis=1, keepdims=True), shape (out, 1).",
    lambda got, case, what: what == "out" and matches(got, _wn_out(case, _rows_normalised(case.inputs["v"], 0)),
                                                      case.dtype))

WN_MATRIX_NORM = Mistake(
    "||v|| of the whole matrix instead of each row",
    "Weight norm gives every output unit its own length g[j]: divide each ROW of v by its own norm "
    "(axis=1, keepdims=True), not the whole matrix by one number.",
    lambda got, case, what: what == "out" and matches(
        got, _wn_out(case, _f64(case.inputs["v"]) / np.linalg.norm(_f64(case.inputs["v"]))), case.dtype))


def _wn_norm_constant_dv(case):
    x, v, g = (_f64(case.inputs[k]) for k in ("x", "v", "g"))
    dW = case.dout.T @ x
    return g / np.linalg.norm(v, axis=1, keepdims=True) * dW


WN_NORM_CONSTANT = Mistake(
    "||v|| treated as a constant in the backward pass",
    "||v|| depends on v too: with v_hat = v / ||v||, dv = g / ||v|| * (dW - v_hat * sum(dW * v_hat, "
    "axis=1, keepdims=True)), not just g / ||v|| * dW.",
    lambda got, case, what: what == "dv" and matches(got, _wn_norm_constant_dv(case), case.dtype))

DG_SHAPE = Mistake(
    "dg does not have g's shape (out, 1)",
    "Return dg with g's shape: sum with keepdims=True, or dg.reshape(g.shape).",
    lambda got, case, what: what == "dg" and np.size(got) == case.inputs["g"].size
    and np.shape(got) != case.inputs["g"].shape)

DB_NOT_SUMMED = Mistake(
    "db not summed over the batch",
    "The bias is shared by every example: db = dout.sum(axis=0), shape (out,).",
    lambda got, case, what: what == "db" and np.ndim(got) == 2)


def _cn(case, normalise_x=True, normalise_w=True, axis=1):
    x, w = _f64(case.inputs["x"]), _f64(case.inputs["w"])
    x = _rows_normalised(x, axis) if normalise_x else x
    w = _rows_normalised(w, axis) if normalise_w else w
    return x @ w.T


CN_X_NOT_NORMALISED = Mistake(
    "x not normalised",
    "Divide by ||x_n|| too (one norm per example, shape (N, 1)): cosine normalisation "
    "makes the output independent of the scale of x as well as of w.",
    lambda got, case, what: what == "out" and matches(got, _cn(case, normalise_x=False), case.dtype))

CN_W_NOT_NORMALISED = Mistake(
    "w not normalised",
    "Divide by ||w_j|| too (one norm per row of w, shape (M, 1), transposed to (1, M)).",
    lambda got, case, what: what == "out" and matches(got, _cn(case, normalise_w=False), case.dtype))

CN_WRONG_AXIS = Mistake(
    "wrong axis: norms over the columns instead of each row",
    "x_n is a row of x and w_j a row of w: take norms over axis 1 (keepdims=True).",
    lambda got, case, what: what == "out" and matches(got, _cn(case, axis=0), case.dtype))


def _cn_norms_constant(case):
    x, w = _f64(case.inputs["x"]), _f64(case.inputs["w"])
    xn, wn = np.linalg.norm(x, axis=1, keepdims=True), np.linalg.norm(w, axis=1, keepdims=True)
    return {"dx": case.dout @ (w / wn) / xn, "dw": case.dout.T @ (x / xn) / wn}


CN_NORMS_CONSTANT = Mistake(
    "norms treated as constants in the backward pass",
    "||x_n|| and ||w_j|| depend on x and w: for x_hat = x / ||x||, dx = (dx_hat - x_hat * "
    "sum(dx_hat * x_hat, axis=1, keepdims=True)) / ||x||, and the same for w.",
    lambda got, case, what: what in ("dx", "dw") and matches(got, _cn_norms_constant(case)[what], case.dtype))

WN_MISTAKES = [WN_COLUMN_NORM, WN_MATRIX_NORM]
WN_BACKWARD_MISTAKES = [WN_NORM_CONSTANT, DG_SHAPE, DB_NOT_SUMMED]
CN_MISTAKES = [CN_X_NOT_NORMALISED, CN_W_NOT_NORMALISED, CN_WRONG_AXIS]
CN_BACKWARD_MISTAKES = [CN_NORMS_CONSTANT]


# ---------------------------------------------------------------- inputs


def _label(name, arr):
    return f"{name} {tuple(arr.shape)} {arr.dtype}"


def _param_label(param, arrays=()):
    shown = {k: v for k, v in param.items() if not isinstance(v, np.ndarray)}
    text = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in shown.items()) + "}"
    given = [k for k in param if isinstance(param[k], np.ndarray)]
    return text + (f" with {' and '.join(given)} given" if given else "")


def _channels_data(rng, shape, dtype, scale=1.0):
    """Each feature/channel (axis 1) with its own mean and spread, so axes matter."""
    C = shape[1]
    view = (1, C) + (1,) * (len(shape) - 2)
    loc = rng.uniform(-3, 3, C).reshape(view)
    sd = rng.uniform(0.5, 3, C).reshape(view)
    return (scale * (loc + sd * rng.standard_normal(shape))).astype(dtype)


def _gamma_beta(rng, C, dtype):
    return rng.uniform(0.5, 1.5, C).astype(dtype), rng.standard_normal(C).astype(dtype)


# (shape, dtype, mode, bn_param extras, running statistics given, small variance)
_BN_PUBLIC = [
    ((8, 5), np.float64, "train", {}, False, False),
    ((8, 5), np.float32, "train", {}, False, False),
    ((16, 3), np.float64, "train", {"momentum": 0.3, "eps": 1e-3}, True, False),
    ((10, 4), np.float64, "train", {}, False, True),
    ((6, 5), np.float64, "test", {}, True, False),
]
_BN_HIDDEN = [
    ((2, 7), np.float64, "train", {}, True, False),
    ((64, 32), np.float64, "train", {}, False, False),
    ((32, 6), np.float32, "test", {"eps": 1e-3}, True, False),
    ((5, 3), np.float64, "test", {}, True, True),
    ((12, 9), np.float32, "train", {"momentum": 0.05}, True, False),
    ((20, 10), np.float64, "train", {"eps": 1e-4}, True, True),
]
_SPATIAL_PUBLIC = [
    ((2, 3, 4, 4), np.float64, "train", {}, False, False),
    ((2, 3, 4, 4), np.float32, "train", {}, False, False),
    ((4, 2, 3, 3), np.float64, "train", {"momentum": 0.3, "eps": 1e-3}, True, False),
    ((3, 4, 2, 2), np.float64, "train", {}, False, True),
    ((2, 3, 4, 5), np.float64, "test", {}, True, False),
]
_SPATIAL_HIDDEN = [
    ((1, 3, 3, 3), np.float64, "train", {}, True, False),
    ((8, 6, 5, 5), np.float64, "train", {}, False, False),
    ((4, 5, 3, 2), np.float32, "test", {"eps": 1e-3}, True, False),
    ((3, 2, 1, 1), np.float64, "train", {"momentum": 0.5}, True, False),
    ((2, 4, 3, 3), np.float64, "test", {}, True, True),
]


def _bn_cases(specs, seed0, backward=False):
    cases = []
    for i, (shape, dtype, mode, extras, given, small) in enumerate(specs):
        if backward and (mode != "train" or dtype != np.float64):
            continue
        rng = np.random.default_rng(seed0 + i)
        C = shape[1]
        x = _channels_data(rng, shape, dtype, scale=3e-3 if small else 1.0)
        gamma, beta = _gamma_beta(rng, C, dtype)
        bn_param = {"mode": mode, **extras}
        if given:
            # running statistics that differ from the batch's, so test mode is recognisable
            bn_param["running_mean"] = rng.uniform(-2, 2, C).astype(dtype) * (3e-3 if small else 1.0)
            bn_param["running_var"] = rng.uniform(0.5, 4, C).astype(dtype) * (1e-5 if small else 1.0)
        note = " (variance comparable to eps)" if small else ""
        label = f"{_label('x', x)}{note}, gamma/beta ({C},), bn_param {_param_label(bn_param)}"
        if not given and mode == "train":
            label += " (no running statistics yet: start from zeros and ones)"
        cases.append(Case(label, {"x": x, "gamma": gamma, "beta": beta, "bn_param": bn_param},
                          grads=("x", "gamma", "beta"), seed=seed0 + i))
    return cases


def _ln_cases(hidden, backward=False):
    specs = [((4, 6), np.float64, {}), ((4, 6), np.float32, {}), ((3, 10), np.float64, {"eps": 1e-3}),
             ((5, 4), np.float64, {"small": True})]
    if hidden:
        specs += [((1, 8), np.float64, {}), ((32, 64), np.float64, {}), ((7, 3), np.float32, {"eps": 1e-3}),
                  ((6, 5), np.float64, {"small": True, "eps": 1e-4})]
    seed0 = 700 if hidden else 70
    cases = []
    for i, ((N, D), dtype, extras) in enumerate(specs):
        if backward and dtype != np.float64:
            continue
        rng = np.random.default_rng(seed0 + i)
        small = extras.pop("small", False)
        # each example with its own mean and spread (and each feature with its own offset)
        x = (rng.uniform(-3, 3, (N, 1)) + rng.uniform(-1, 1, (1, D))
             + rng.uniform(0.5, 3, (N, 1)) * rng.standard_normal((N, D)))
        x = (x * (3e-3 if small else 1.0)).astype(dtype)
        gamma, beta = _gamma_beta(rng, D, dtype)
        note = " (variance comparable to eps)" if small else ""
        cases.append(Case(f"{_label('x', x)}{note}, gamma/beta ({D},), ln_param {_param_label(extras)}",
                          {"x": x, "gamma": gamma, "beta": beta, "ln_param": dict(extras)},
                          grads=("x", "gamma", "beta"), seed=seed0 + i))
    return cases


def _gn_cases(hidden, backward=False):
    specs = [((2, 6, 4, 4), 3, np.float64, {}), ((2, 6, 4, 4), 3, np.float32, {}),
             ((3, 4, 3, 3), 4, np.float64, {}), ((2, 4, 2, 3), 1, np.float64, {"eps": 1e-3})]
    if hidden:
        specs += [((1, 8, 5, 5), 2, np.float64, {}), ((4, 6, 3, 3), 6, np.float32, {}),
                  ((2, 12, 4, 4), 4, np.float64, {}), ((5, 3, 2, 2), 3, np.float64, {"eps": 1e-3})]
    seed0 = 800 if hidden else 80
    cases = []
    for i, (shape, G, dtype, extras) in enumerate(specs):
        if backward and dtype != np.float64:
            continue
        rng = np.random.default_rng(seed0 + i)
        C = shape[1]
        x = _channels_data(rng, shape, dtype)
        x += rng.uniform(-2, 2, (shape[0], 1, 1, 1)).astype(dtype)  # and each example its own offset
        gamma, beta = _gamma_beta(rng, C, dtype)
        kind = ("instance norm, checked against F.instance_norm" if G == C else
                "one group: each sample over (C, H, W)" if G == 1 else f"groups of {C // G} channels")
        cases.append(Case(f"{_label('x', x)}, G={G} ({kind}), gamma/beta ({C},), gn_param {_param_label(extras)}",
                          {"x": x, "gamma": gamma, "beta": beta, "G": G, "gn_param": dict(extras)},
                          grads=("x", "gamma", "beta"), seed=seed0 + i))
    return cases


def _wn_cases(hidden, backward=False):
    specs = [(5, 4, 3, np.float64), (5, 4, 3, np.float32), (7, 6, 2, np.float64)]
    if hidden:
        specs += [(1, 3, 5, np.float64), (32, 20, 10, np.float64), (6, 8, 4, np.float32)]
    seed0 = 900 if hidden else 90
    cases = []
    for i, (N, n_in, n_out, dtype) in enumerate(specs):
        if backward and dtype != np.float64:
            continue
        rng = np.random.default_rng(seed0 + i)
        x = rng.standard_normal((N, n_in)).astype(dtype)
        v = (rng.standard_normal((n_out, n_in)) * rng.uniform(0.2, 5, (n_out, 1))).astype(dtype)  # rows of different lengths
        g = rng.uniform(0.5, 2, (n_out, 1)) * np.where(np.arange(n_out)[:, None] % 3 == 2, -1, 1)  # some g < 0
        g = g.astype(dtype)
        b = rng.standard_normal(n_out).astype(dtype)
        cases.append(Case(f"{_label('x', x)}, v {v.shape} (rows of different lengths), g {g.shape}, b {b.shape}",
                          {"x": x, "v": v, "g": g, "b": b}, grads=("x", "v", "g", "b"), seed=seed0 + i))
    return cases


def _cn_cases(hidden, backward=False):
    specs = [(4, 5, 3, np.float64, 1.0, 1.0), (4, 5, 3, np.float32, 1.0, 1.0),
             (6, 3, 2, np.float64, 1e3, 1e-3), (1, 4, 5, np.float64, 1.0, 1.0)]
    if hidden:
        specs += [(16, 8, 10, np.float64, 1.0, 1.0), (3, 2, 3, np.float64, 1e-3, 1e2),
                  (8, 6, 4, np.float32, 1e2, 1e-2), (32, 64, 16, np.float64, 1.0, 1.0)]
    seed0 = 950 if hidden else 95
    cases = []
    for i, (N, D, M, dtype, sx, sw) in enumerate(specs):
        if backward and dtype != np.float64:
            continue
        rng = np.random.default_rng(seed0 + i)
        x = (sx * rng.standard_normal((N, D)) * rng.uniform(0.3, 3, (N, 1))).astype(dtype)
        w = (sw * rng.standard_normal((M, D)) * rng.uniform(0.3, 3, (M, 1))).astype(dtype)
        note = f" (x scaled by {sx:g}, w by {sw:g})" if (sx, sw) != (1.0, 1.0) else ""
        cases.append(Case(f"{_label('x', x)}, w {w.shape}{note}", {"x": x, "w": w}, grads=("x", "w"),
                          seed=seed0 + i))
    return cases


# ---------------------------------------------------------------- check machinery


def _check_running(func_name, key, bn_param, expected, case, mistakes):
    """Compare one running statistic in bn_param after the call with torch's."""
    mode = case.inputs["bn_param"]["mode"]
    what = f"bn_param['{key}']"
    header = f"the running statistics are wrong: {what} after a {mode}-mode call"
    diagnose = lambda got: next((m for m in mistakes if _safe(m.applies, got, case, key)), None)
    if not isinstance(bn_param, dict) or key not in bn_param:
        fail(func_name, f"{header} is missing. Store the running statistics back into bn_param "
             f"({what} = ...), so that the next call and test mode use them.", case)
    try:
        got = np.asarray(bn_param[key], dtype=np.float64)
    except (TypeError, ValueError):
        fail(func_name, f"{header}: it must be an array of shape {expected.shape}, "
             f"got {type(bn_param[key]).__name__}.", case)
    if got.shape != expected.shape:
        fail(func_name, f"{header}: it has shape {got.shape}, expected {expected.shape} "
             "(one value per feature or channel).", case, mistake=diagnose(got))
    err, details = mismatch(what, got, expected, case.dtype)
    if details:
        fail(func_name, f"{header} (out is right).", case, details, mistake=diagnose(got))
    return err


def _check_bn_forward(func, func_name, cases, mistakes):
    """check_forward, plus the running statistics in bn_param after every call."""

    def running_statistics(args, expected, case):
        return max(_check_running(func_name, key, args["bn_param"], value, case, mistakes)
                   for key, value in zip(("running_mean", "running_var"), expected[1:]))

    return check_forward(func, func_name, cases, ref.batchnorm, mistakes, after=running_statistics,
                         note="bn_param's running_mean and running_var match torch's after every call")


def _student_out(forward, memo):
    """The student's forward output on a case (memoised per case), warnings silenced."""

    def out(case):
        if id(case) not in memo:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                memo[id(case)] = forward(*copy.deepcopy(case.inputs).values())[0]
        return memo[id(case)]

    return out


def _via_forward(forward, forward_name, forward_mistakes, reference_out):
    """Diagnoses for a failing backward pass whose cache comes from a wrong forward pass."""
    out = _student_out(forward, {})

    def wrap(m):
        return Mistake(f"{m.name} (in {forward_name})",
                       f"{m.advice} The backward check uses the cache of your forward pass: fix {forward_name} first.",
                       lambda got, case, what: what.startswith("d") and m.applies(out(case), case, "out"))

    def forward_wrong(got, case, what):
        expected = to_numpy(reference_out(**{k: to_torch(v) for k, v in case.inputs.items()}))
        return what.startswith("d") and not matches(out(case), expected, case.dtype)

    return [wrap(m) for m in forward_mistakes] + [Mistake(
        f"{forward_name} is wrong", f"The backward check uses the cache of your forward pass: "
        f"make {forward_name}'s check pass first.", forward_wrong)]


def _backward(forward, backward, func_name, forward_name, cases, reference_out, backward_mistakes,
              forward_mistakes):
    mistakes = [*backward_mistakes, *_via_forward(forward, forward_name, forward_mistakes, reference_out)]
    return check_backward(forward, backward, func_name, cases, reference_out, mistakes, forward_name=forward_name)


def _bn_out_ref(x, gamma, beta, bn_param):
    return ref.batchnorm(x, gamma, beta, bn_param)[0]


# ---------------------------------------------------------------- public checks


@public_check
def batchnorm_forward(func, hidden=False):
    """Check batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache), and bn_param's
    running statistics after the call, against torch's F.batch_norm."""
    cases = _bn_cases(_BN_PUBLIC + (_BN_HIDDEN if hidden else []), 10 + 100 * hidden)
    return _check_bn_forward(func, "batchnorm_forward", cases, BN_MISTAKES)


def _bn_backward_cases(hidden):
    return _bn_cases(_BN_PUBLIC + (_BN_HIDDEN if hidden else []), 10 + 100 * hidden, backward=True)


@public_check
def batchnorm_backward(forward, backward, hidden=False):
    """Check batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta) against torch.autograd (train mode)."""
    return _backward(forward, backward, "batchnorm_backward", "batchnorm_forward", _bn_backward_cases(hidden),
                     _bn_out_ref, [DGAMMA_NOT_SUMMED], BN_MISTAKES)


@public_check
def batchnorm_backward_alt(forward, backward_alt, hidden=False):
    """Check batchnorm_backward_alt(dout, cache) -> (dx, dgamma, dbeta) against torch.autograd."""
    return _backward(forward, backward_alt, "batchnorm_backward_alt", "batchnorm_forward",
                     _bn_backward_cases(hidden), _bn_out_ref, [DGAMMA_NOT_SUMMED], BN_MISTAKES)


@public_check
def spatial_batchnorm_forward(func, hidden=False):
    """Check spatial_batchnorm_forward(x, gamma, beta, bn_param) on (N, C, H, W), with the running statistics."""
    cases = _bn_cases(_SPATIAL_PUBLIC + (_SPATIAL_HIDDEN if hidden else []), 30 + 100 * hidden)
    return _check_bn_forward(func, "spatial_batchnorm_forward", cases, SPATIAL_MISTAKES)


@public_check
def spatial_batchnorm_backward(forward, backward, hidden=False):
    """Check spatial_batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta) against torch.autograd."""
    cases = _bn_cases(_SPATIAL_PUBLIC + (_SPATIAL_HIDDEN if hidden else []), 30 + 100 * hidden, backward=True)
    return _backward(forward, backward, "spatial_batchnorm_backward", "spatial_batchnorm_forward", cases,
                     _bn_out_ref, [DGAMMA_NOT_SUMMED], SPATIAL_MISTAKES)


@public_check
def layernorm_forward(func, hidden=False):
    """Check layernorm_forward(x, gamma, beta, ln_param) -> (out, cache) against F.layer_norm."""
    return check_forward(func, "layernorm_forward", _ln_cases(hidden), ref.layernorm, LN_MISTAKES)


@public_check
def layernorm_backward(forward, backward, hidden=False):
    """Check layernorm_backward(dout, cache) -> (dx, dgamma, dbeta) against torch.autograd."""
    return _backward(forward, backward, "layernorm_backward", "layernorm_forward", _ln_cases(hidden, True),
                     ref.layernorm, [DGAMMA_NOT_SUMMED], LN_MISTAKES)


@public_check
def groupnorm_forward(func, hidden=False):
    """Check groupnorm_forward(x, gamma, beta, G, gn_param) against F.group_norm (F.instance_norm for G = C)."""
    return check_forward(func, "groupnorm_forward", _gn_cases(hidden), ref.groupnorm, GN_MISTAKES)


@public_check
def groupnorm_backward(forward, backward, hidden=False):
    """Check groupnorm_backward(dout, cache) -> (dx, dgamma, dbeta) against torch.autograd."""
    return _backward(forward, backward, "groupnorm_backward", "groupnorm_forward", _gn_cases(hidden, True),
                     ref.groupnorm, [DGAMMA_NOT_SUMMED], GN_MISTAKES)


@public_check
def weightnorm_forward(func, hidden=False):
    """Check weightnorm_forward(x, v, g, b) against torch's weight_norm parametrization of a Linear."""
    return check_forward(func, "weightnorm_forward", _wn_cases(hidden), ref.weightnorm, WN_MISTAKES)


@public_check
def weightnorm_backward(forward, backward, hidden=False):
    """Check weightnorm_backward(dout, cache) -> (dx, dv, dg, db) against torch.autograd."""
    return _backward(forward, backward, "weightnorm_backward", "weightnorm_forward", _wn_cases(hidden, True),
                     ref.weightnorm, WN_BACKWARD_MISTAKES, WN_MISTAKES)


@public_check
def cosinenorm_forward(func, hidden=False):
    """Check cosinenorm_forward(x, w) -> (out, cache) against the torch-built cosine norm."""
    return check_forward(func, "cosinenorm_forward", _cn_cases(hidden), ref.cosinenorm, CN_MISTAKES)


@public_check
def cosinenorm_backward(forward, backward, hidden=False):
    """Check cosinenorm_backward(dout, cache) -> (dx, dw) against torch.autograd."""
    return _backward(forward, backward, "cosinenorm_backward", "cosinenorm_forward", _cn_cases(hidden, True),
                     ref.cosinenorm, CN_BACKWARD_MISTAKES, CN_MISTAKES)


# ---------------------------------------------------------------- speed comparison (informative)


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
        if not self.agreement <= TOL[np.dtype(np.float64)]:
            lines.append(f"Note: the two backward passes disagree (relative error {self.agreement:.2g}); "
                         "check both against their graded checks.")
        lines.append("(Informative: timing is not graded.)")
        return "\n".join(lines)

    _repr_pretty_ = lambda self, p, cycle: p.text(repr(self))


def compare_speed(batchnorm_backward, batchnorm_backward_alt, batchnorm_forward, shape=(256, 512), repeats=25):
    """Time batchnorm_backward and batchnorm_backward_alt on the same cache and report the ratio.

    Both run on one train-mode forward pass of an x of ``shape`` (float64), alternately,
    ``repeats`` times each after a warm-up call; the report gives the median time per call
    and ratio = time(batchnorm_backward) / time(batchnorm_backward_alt). Informative only:
    it never fails on timing. If a function is not implemented or raises, it prints why and
    returns None.
    """
    rng = np.random.default_rng(0)
    x = _channels_data(rng, shape, np.float64)
    gamma, beta = _gamma_beta(rng, shape[1], np.float64)
    dout = rng.standard_normal(shape)
    case = Case(f"x {shape} float64, bn_param {{'mode': 'train'}}",
                {"x": x, "gamma": gamma, "beta": beta, "bn_param": {"mode": "train"}})
    try:
        result, _ = call_student(batchnorm_forward, "batchnorm_forward", [x, gamma, beta, {"mode": "train"}], case)
        _, cache = as_tuple(result, 2, "batchnorm_forward", "a tuple (out, cache)")
        results, times = {}, {"graph": [], "alt": []}
        functions = {"graph": (batchnorm_backward, "batchnorm_backward"),
                     "alt": (batchnorm_backward_alt, "batchnorm_backward_alt")}
        for key, (func, name) in functions.items():  # warm-up call, and the results to compare
            result, _ = call_student(func, name, [dout.copy(), cache], case)
            results[key] = as_tuple(result, 3, name, "a tuple (dx, dgamma, dbeta)")
        for _ in range(repeats):
            for key, (func, name) in functions.items():
                start = time.perf_counter()
                func(dout, cache)
                times[key].append(time.perf_counter() - start)
    except CheckFailed as exc:
        print(f"speed comparison not run: {exc}")
        return None
    try:
        agreement = max(rel_error(a, b) for a, b in zip(results["graph"], results["alt"]))
    except (TypeError, ValueError):
        agreement = float("inf")
    return SpeedReport(float(np.median(times["graph"])), float(np.median(times["alt"])), tuple(shape),
                       repeats, agreement)
