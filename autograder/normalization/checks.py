"""Checks for the normalization assignment (chapter 4): a table, built by ``checking.build``.

The notebook's test cells call one check each::

    checks.batchnorm_forward(batchnorm_forward)                                   # public cases
    checks.batchnorm_backward(batchnorm_forward, batchnorm_backward, hidden=True)  # and the hidden ones

Each row of ``TABLE`` names a layer, its inputs (``Spec``s: shape, dtype, the layer's
parameters), its torch reference (a function of ``reference.py``, looked up by name only
when a check is judged: this module imports neither torch nor the reference) and the
mistakes the syllabus diagnoses, each a wrong reference with a stable id. Every kind of
input (train and test mode, running statistics absent or given, non-default momentum and
eps, a variance comparable to eps, G = C) is in the public cases; the hidden ones add
shapes, seeds, modes and dtypes. The layers are explained in book/normalization/batchnorm.md
(batch norm, spatial batch norm) and book/normalization/other-norms.md (the others).

One row is not a layer: ``unit_vector_jacobian(u)`` (a ``transforms.Transform``), the
Jacobian of u -> u / ||u|| per row, the key step of weight norm's dv and cosine norm's dx
and dw, checked against autograd's Jacobian of ``F.normalize``. When it is wrong, the
message also reports two properties of the student's J (J u = 0, J symmetric).

Batch norm's forward checks also compare ``bn_param['running_mean']`` and
``bn_param['running_var']`` after every call with torch's, and name every recognised
difference of a failing submission at once: the running-statistics mistakes are tried in
combination (a ``MistakeGroup``), and a failure in the other mode, or one that names a
mistake not named yet, is reported in the same message (``Layer.failed_inputs``).

``compare_speed`` (in ``autograder.speed``) times the two batch-norm backward passes; it
only reports, it is never judged.
"""
import dataclasses

import numpy as np

from .. import capstone
from ..checking import DTYPE_CHANGED, Case, Layer, Mistake, MistakeGroup, Spec, State, build, hidden
from ..speed import SpeedReport, compare_speed  # noqa: F401 (the notebook calls checks.compare_speed)
from ..numerics import matches, tolerance
from ..transforms import Transform

# torch's defaults, as in reference.py (which imports torch: tests/test_normalization_checks.py
# checks that both agree)
EPS, MOMENTUM = 1e-5, 0.1


# ---------------------------------------------------------------- inputs


def bn(shape, dtype="float64", mode="train", running=False, small=False, **bn_param):
    """A batch-norm input: x of ``shape``, bn_param = {'mode': mode, **bn_param}.

    running: bn_param already holds running statistics (different from the batch's, so
             that test mode and the update are recognisable); otherwise they start from
             zeros (mean) and ones (variance).
    small:   a variance comparable to eps (where eps inside or outside the root shows).
    """
    special = {"running"} if running else set()
    special |= {"small"} if small else set()
    return Spec(tuple(shape), dtype, special=frozenset(special), params={"mode": mode, **bn_param})


def _label(name, arr):
    return f"{name} {tuple(arr.shape)} {arr.dtype}"


def _param_label(param):
    shown = {k: v for k, v in param.items() if not isinstance(v, np.ndarray)}
    text = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in shown.items()) + "}"
    given = [k for k in param if isinstance(param[k], np.ndarray)]
    return text + (f" with {' and '.join(given)} given" if given else "")


def _per_channel_data(rng, shape, dtype, scale=1.0):
    """Each feature/channel (axis 1) with its own mean and spread, so that the axes matter."""
    view = (1, shape[1]) + (1,) * (len(shape) - 2)
    loc = rng.uniform(-3, 3, shape[1]).reshape(view)
    spread = rng.uniform(0.5, 3, shape[1]).reshape(view)
    return (scale * (loc + spread * rng.standard_normal(shape))).astype(dtype)


def _gamma_beta(rng, C, dtype):
    return rng.uniform(0.5, 1.5, C).astype(dtype), rng.standard_normal(C).astype(dtype)


def make_batchnorm(spec, rng):
    """x (N, D) or (N, C, H, W), gamma and beta, bn_param (book/normalization/batchnorm.md)."""
    C, small = spec.shape[1], "small" in spec.special
    x = _per_channel_data(rng, spec.shape, spec.dtype, scale=3e-3 if small else 1.0)
    gamma, beta = _gamma_beta(rng, C, spec.dtype)
    bn_param = dict(spec.params)
    if "running" in spec.special:
        bn_param["running_mean"] = (rng.uniform(-2, 2, C) * (3e-3 if small else 1.0)).astype(spec.dtype)
        bn_param["running_var"] = (rng.uniform(0.5, 4, C) * (1e-5 if small else 1.0)).astype(spec.dtype)
    label = f"{_label('x', x)}{' (variance comparable to eps)' if small else ''}, gamma/beta ({C},), " \
            f"bn_param {_param_label(bn_param)}"
    if "running" not in spec.special and spec.params["mode"] == "train":
        label += " (no running statistics yet: start from zeros and ones)"
    return Case(label, {"x": x, "gamma": gamma, "beta": beta, "bn_param": bn_param}, grads=("x", "gamma", "beta"),
                tags=spec.special)


def make_layernorm(spec, rng):
    """x (N, D), gamma and beta, ln_param (book/normalization/other-norms.md)."""
    (N, D), small = spec.shape, "small" in spec.special
    # each example with its own mean and spread (and each feature with its own offset)
    x = (rng.uniform(-3, 3, (N, 1)) + rng.uniform(-1, 1, (1, D))
         + rng.uniform(0.5, 3, (N, 1)) * rng.standard_normal((N, D)))
    x = (x * (3e-3 if small else 1.0)).astype(spec.dtype)
    gamma, beta = _gamma_beta(rng, D, spec.dtype)
    note = " (variance comparable to eps)" if small else ""
    return Case(f"{_label('x', x)}{note}, gamma/beta ({D},), ln_param {_param_label(spec.params)}",
                {"x": x, "gamma": gamma, "beta": beta, "ln_param": dict(spec.params)}, grads=("x", "gamma", "beta"),
                tags=spec.special)


def make_groupnorm(spec, rng):
    """x (N, C, H, W), gamma and beta, G, gn_param (book/normalization/other-norms.md)."""
    G, gn_param = spec.params["G"], {k: v for k, v in spec.params.items() if k != "G"}
    N, C = spec.shape[:2]
    x = _per_channel_data(rng, spec.shape, spec.dtype)
    x += rng.uniform(-2, 2, (N, 1, 1, 1)).astype(spec.dtype)  # and each example its own offset
    gamma, beta = _gamma_beta(rng, C, spec.dtype)
    kind = ("instance norm, checked against F.instance_norm" if G == C else
            "one group: each sample over (C, H, W)" if G == 1 else f"groups of {C // G} channels")
    return Case(f"{_label('x', x)}, G={G} ({kind}), gamma/beta ({C},), gn_param {_param_label(gn_param)}",
                {"x": x, "gamma": gamma, "beta": beta, "G": G, "gn_param": gn_param}, grads=("x", "gamma", "beta"))


def make_weightnorm(spec, rng):
    """x (N, in), v (out, in) with rows of different lengths, g (out, 1) some negative, b (out,)."""
    (N, n_in), n_out, dtype = spec.shape, spec.params["out"], spec.dtype
    x = rng.standard_normal((N, n_in)).astype(dtype)
    v = (rng.standard_normal((n_out, n_in)) * rng.uniform(0.2, 5, (n_out, 1))).astype(dtype)
    g = (rng.uniform(0.5, 2, (n_out, 1)) * np.where(np.arange(n_out)[:, None] % 3 == 2, -1, 1)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    return Case(f"{_label('x', x)}, v {v.shape} (rows of different lengths), g {g.shape}, b {b.shape}",
                {"x": x, "v": v, "g": g, "b": b}, grads=("x", "v", "g", "b"))


def make_cosinenorm(spec, rng):
    """x (N, D) and w (M, D), rows of different lengths, optionally scaled (the output must not care)."""
    (N, D), M, dtype = spec.shape, spec.params["M"], spec.dtype
    x_scale, w_scale = spec.params.get("x_scale", 1.0), spec.params.get("w_scale", 1.0)
    x = (x_scale * rng.standard_normal((N, D)) * rng.uniform(0.3, 3, (N, 1))).astype(dtype)
    w = (w_scale * rng.standard_normal((M, D)) * rng.uniform(0.3, 3, (M, 1))).astype(dtype)
    note = f" (x scaled by {x_scale:g}, w by {w_scale:g})" if (x_scale, w_scale) != (1.0, 1.0) else ""
    return Case(f"{_label('x', x)}, w {w.shape}{note}", {"x": x, "w": w}, grads=("x", "w"))


def make_unit_vectors(spec, rng):
    """u (N, D), rows of different lengths (no zero row), all scaled by ``scale`` (1e3: large
    norms, 1e-3: small ones: J scales like 1/||u||)."""
    (N, D), scale = spec.shape, spec.params.get("scale", 1.0)
    u = (scale * rng.standard_normal((N, D)) * rng.uniform(0.3, 3, (N, 1))).astype(spec.dtype)
    note = f" (rows scaled by {scale:g})" if scale != 1.0 else ""
    note += " (D = 1: each row is a number, its unit vector its sign)" if D == 1 else ""
    return Case(f"{_label('u', u)}{note}", {"u": u})


def train_float64(spec):
    """The backward checks' inputs: train mode (test mode has no backward pass) and float64."""
    return spec.params.get("mode", "train") == "train" and spec.dtype == "float64"


# ---------------------------------------------------------------- wrong computations (numpy, float64)


def _f64(a):
    return np.asarray(a, dtype=np.float64)


def _eps(case):
    param = next(case.inputs[k] for k in ("bn_param", "ln_param", "gn_param") if k in case.inputs)
    return param.get("eps", EPS)


def _mode(case):
    return case.inputs["bn_param"]["mode"]


def _train(case):
    return _mode(case) == "train"


def _test(case):
    return _mode(case) == "test"


def _channel_view(v, ndim):
    """A (C,) vector shaped to broadcast along axis 1 of an ndim array."""
    return _f64(v).reshape((1, -1) + (1,) * (ndim - 2))


def _channel_axes(x):
    """Batch norm's statistics: over N, or over N, H and W for (N, C, H, W)."""
    return (0,) if x.ndim == 2 else (0, 2, 3)


def _standardise(x, mean, var, eps, eps_outside=False):
    std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
    return (x - mean) / std


def _batch_standardise(x, axes, eps, ddof=0, eps_outside=False):
    return _standardise(x, x.mean(axis=axes, keepdims=True), x.var(axis=axes, ddof=ddof, keepdims=True), eps,
                        eps_outside)


def _affine(xhat, case):
    return _channel_view(case.inputs["gamma"], xhat.ndim) * xhat + _channel_view(case.inputs["beta"], xhat.ndim)


def _bn_train_out(case, axes=None, ddof=0, eps_outside=False):
    """Train-mode batch norm, normalised over ``axes`` with the batch statistics."""
    x = _f64(case.inputs["x"])
    return _affine(_batch_standardise(x, axes or _channel_axes(x), _eps(case), ddof, eps_outside), case)


def _bn_test_out(case, eps_outside=False, affine=True):
    """Test-mode batch norm, with bn_param's running statistics."""
    x, p = _f64(case.inputs["x"]), case.inputs["bn_param"]
    xhat = _standardise(x, _channel_view(p["running_mean"], x.ndim), _channel_view(p["running_var"], x.ndim),
                        _eps(case), eps_outside)
    return _affine(xhat, case) if affine else xhat


def _bn_out(case, **wrong):
    return _bn_train_out(case, **wrong) if _train(case) else _bn_test_out(case, **wrong)


def _reshape_without_transpose(case):
    """Spatial batch norm through batchnorm_forward on x.reshape(-1, C): mixed-up channels."""
    x = _f64(case.inputs["x"])
    flat_case = dataclasses.replace(case, inputs={**case.inputs, "x": x.reshape(-1, x.shape[1])})
    return _bn_out(flat_case).reshape(x.shape)


def _layernorm_out(case, axes=(1,), ddof=0, eps_outside=False):
    return _affine(_batch_standardise(_f64(case.inputs["x"]), axes, _eps(case), ddof, eps_outside), case)


def _groupnorm_out(case, G=None, axes=(2,), ddof=0, eps_outside=False):
    """Group norm's statistics over ``axes`` of x.reshape(N, G, -1)."""
    x = _f64(case.inputs["x"])
    grouped = x.reshape(x.shape[0], G or case.inputs["G"], -1)
    return _affine(_batch_standardise(grouped, axes, _eps(case), ddof, eps_outside).reshape(x.shape), case)


def _groupnorm_over(case, grouped_shape, axes):
    """Group norm's statistics over ``axes`` of x.reshape(grouped_shape)."""
    x = _f64(case.inputs["x"])
    return _affine(_batch_standardise(x.reshape(grouped_shape), axes, _eps(case)).reshape(x.shape), case)


def _groupnorm_interleaved(case):
    """Channel c in group c % G: x.reshape(N, C // G, G, H, W), statistics over all but G."""
    (N, C, H, W), G = case.inputs["x"].shape, case.inputs["G"]
    return {"out": _groupnorm_over(case, (N, C // G, G, H, W), (1, 3, 4))}


def _groupnorm_per_pixel(case):
    """Statistics over the group's channels only, one per pixel: axis 2 of (N, G, C // G, H, W)."""
    (N, C, H, W), G = case.inputs["x"].shape, case.inputs["G"]
    return {"out": _groupnorm_over(case, (N, G, C // G, H, W), (2,))}


def _layer_or_group_out(case, **wrong):
    return _groupnorm_out(case, **wrong) if "G" in case.inputs else _layernorm_out(case, **wrong)


def _layernorm_backward_batch_axis(case):
    """Batch norm's closed-form backward pass on layer norm's statistics: the sums over the
    batch axis (0) and gamma outside them. Two forms seen: through xhat, and through
    x - mean and var + eps (which weigh each example's term by its own std)."""
    x, gamma, dout = _f64(case.inputs["x"]), _f64(case.inputs["gamma"]), case.dout
    N = x.shape[0]
    xc = x - x.mean(axis=1, keepdims=True)
    var_eps = (xc ** 2).mean(axis=1, keepdims=True) + _eps(case)
    xhat = xc / np.sqrt(var_eps)
    via_xhat = gamma / (N * np.sqrt(var_eps)) * (N * dout - dout.sum(axis=0) - xhat * (dout * xhat).sum(axis=0))
    via_xc = gamma / (N * np.sqrt(var_eps)) * (N * dout - dout.sum(axis=0) - xc / var_eps * (dout * xc).sum(axis=0))
    return {"dx": [via_xhat, via_xc]}


def _rows_normalised(a, axis=1):
    a = _f64(a)
    return a / np.sqrt((a * a).sum(axis=axis, keepdims=True))


def _weightnorm_out(case, v_hat):
    x, g, b = (_f64(case.inputs[k]) for k in ("x", "g", "b"))
    return x @ (g * v_hat).T + b


def _weightnorm_norm_constant(case):
    """dv with ||v|| held constant: g / ||v|| * dW only."""
    x, v, g = (_f64(case.inputs[k]) for k in ("x", "v", "g"))
    return {"dv": g / np.linalg.norm(v, axis=1, keepdims=True) * (case.dout.T @ x)}


def _cosine(case, normalise_x=True, normalise_w=True, axis=1):
    x, w = _f64(case.inputs["x"]), _f64(case.inputs["w"])
    x = _rows_normalised(x, axis) if normalise_x else x
    w = _rows_normalised(w, axis) if normalise_w else w
    return x @ w.T


def _cosinenorm_norms_constant(case):
    x, w = _f64(case.inputs["x"]), _f64(case.inputs["w"])
    xn, wn = np.linalg.norm(x, axis=1, keepdims=True), np.linalg.norm(w, axis=1, keepdims=True)
    return {"dx": case.dout @ (w / wn) / xn, "dw": case.dout.T @ (x / xn) / wn}


def _jacobian_parts(case):
    """(I, u_hat u_hat^T, ||u||) per row, shapes (N, D, D), (N, D, D), (N, 1, 1): what the wrong
    Jacobians below are made of (each mistake writes its own; none is the right one)."""
    u = _f64(case.inputs["u"])
    N, D = u.shape
    norm = np.sqrt((u * u).sum(axis=1))[:, None, None]
    u_hat = u / norm[:, :, 0]
    return np.broadcast_to(np.eye(D), (N, D, D)), u_hat[:, :, None] * u_hat[:, None, :], norm


def _jacobian_norm_constant(case):
    eye, _, norm = _jacobian_parts(case)
    return eye / norm


def _jacobian_unscaled(case):
    eye, outer, _ = _jacobian_parts(case)
    return eye - outer


def _jacobian_plus(case):
    eye, outer, norm = _jacobian_parts(case)
    return (eye + outer) / norm


def _jacobian_power_lost(case):
    eye, outer, norm = _jacobian_parts(case)
    return eye / norm - outer


def _jacobian_with_dot_product(case):
    """u_hat u_hat^T taken as the scalar u_hat . u_hat = 1 (1-D rows: `h @ h.T`), broadcast over the
    matrix: (I - ones) / ||u||; or as the identity times it: 0."""
    eye, _, norm = _jacobian_parts(case)
    return [(eye - 1.0) / norm, np.zeros(eye.shape)]


def _dims(case):
    return case.inputs["u"].shape[1]


def _jacobian_properties(what, got, expected, case):
    """Two properties of the student's J, shown when it is wrong: J[n] @ u[n] = 0 (u_hat does
    not change when u is scaled) and J[n] symmetric."""
    u = case.inputs["u"]
    if not (isinstance(got, np.ndarray) and got.dtype.kind == "f" and got.shape == u.shape + u.shape[1:]) \
            or matches(got, expected[what], case.dtype):  # right values (a wrong dtype only)
        return []
    J, u = got.astype(np.float64), u.astype(np.float64)
    with np.errstate(all="ignore"):
        size = max(float(np.max(np.abs(expected[what]))), float(np.max(np.abs(J))), 1e-300)  # |J|
        along = float(np.max(np.abs(np.einsum("nij,nj->ni", J, u)))) / (size * float(np.max(np.abs(u))))
        asym = float(np.max(np.abs(J - J.transpose(0, 2, 1)))) / size
    if not (np.isfinite(along) and np.isfinite(asym)):
        return []
    limit = 10 * tolerance(case.dtype)

    def show(value, why):
        return f"{value:.2g}: " + (f"it should be 0 ({why})" if value > limit else "0 up to rounding, right")

    return [f"  your J: max |J[n] @ u[n]| / (|J| |u|) = {show(along, 'scaling u does not change u_hat')}",
            f"  your J: max |J[n] - J[n].T| / |J| = {show(asym, 'J is symmetric')}"]


UVJ_PROJECTION_FORGOTTEN = Mistake(
    "uvj.projection_forgotten", "||u|| treated as a constant: J = I / ||u||",
    "||u|| depends on u too: differentiate the factor 1 / ||u|| as well (product rule, with "
    "d||u||/du = u / ||u||). Its term removes the part of J along u: J @ u must be 0, since u_hat "
    "does not change when u is scaled.",
    wrong=lambda case: {"J": _jacobian_norm_constant(case)}, explains=("J",))

UVJ_NORM_FACTOR_FORGOTTEN = Mistake(
    "uvj.norm_factor_forgotten", "the factor 1 / ||u|| forgotten: J = I - u_hat u_hat^T",
    "Your J does not change when u is doubled, but u_hat moves half as much for the same step "
    "du when u is twice as long: every entry of J must scale like 1 / ||u||.",
    wrong=lambda case: {"J": _jacobian_unscaled(case)}, explains=("J",), when=lambda case: _dims(case) > 1)

UVJ_INNER_PRODUCT = Mistake(
    "uvj.inner_product", "u_hat u_hat^T computed as the scalar u_hat . u_hat",
    "u_hat u_hat^T is the OUTER product, a (D, D) matrix per row: u_hat[:, :, None] * u_hat[:, None, :] "
    "(or np.einsum('ni,nj->nij', u_hat, u_hat)). On 1-D rows `u_hat @ u_hat.T` is the dot product "
    "(.T does nothing to a 1-D array), which is 1 here and broadcasts over the matrix.",
    wrong=lambda case: {"J": _jacobian_with_dot_product(case)}, explains=("J",), when=lambda case: _dims(case) > 1)

UVJ_SIGN = Mistake(
    "uvj.sign", "J = (I + u_hat u_hat^T) / ||u||: the sign of the second term",
    "Check the sign of the derivative of 1 / ||u||: it decreases as u grows along u_hat. "
    "With the right sign, J @ u = 0 (u_hat does not change when u is scaled).",
    wrong=lambda case: {"J": _jacobian_plus(case)}, explains=("J",))

UVJ_NORM_POWER = Mistake(
    "uvj.norm_power", "J = I / ||u|| - u_hat u_hat^T: a power of ||u|| lost",
    "Check the power of ||u|| in the derivative of 1 / ||u|| (chain rule through ||u||): both terms "
    "of J must scale like 1 / ||u||, so that doubling u halves J and J @ u = 0.",
    wrong=lambda case: {"J": _jacobian_power_lost(case)}, explains=("J",))

UVJ_MISTAKES = [UVJ_PROJECTION_FORGOTTEN, UVJ_NORM_FACTOR_FORGOTTEN, UVJ_INNER_PRODUCT, UVJ_SIGN, UVJ_NORM_POWER]


# ---------------------------------------------------------------- mistakes: batch norm

UNBIASED_NORMALISE = Mistake(
    "bn.unbiased_normalise", "unbiased variance used to normalise",
    "Normalise with the BIASED batch variance, the mean of (x - mean)**2 (divide by N, "
    "np.var's default ddof=0). The unbiased variance (divide by N - 1) is only what "
    "running_var stores.",
    wrong=lambda case: {"out": _bn_train_out(case, ddof=1)}, explains=("out",), when=_train)

EPS_OUTSIDE = Mistake(
    "bn.eps_outside", "eps outside the square root",
    "Divide by sqrt(var + eps), not sqrt(var) + eps (PyTorch's convention), in train and test "
    "mode. The difference is largest when the variance is comparable to eps.",
    wrong=lambda case: {"out": _bn_out(case, eps_outside=True)}, explains=("out",))

TEST_USES_BATCH_STATS = Mistake(
    "bn.test_uses_batch_stats", "test mode used the batch statistics",
    "In test mode, normalise with bn_param['running_mean'] and bn_param['running_var'], "
    "not with the mean and variance of the test batch: at test time the output for one "
    "example must not depend on the other examples of the batch.",
    wrong=lambda case: {"out": [_bn_train_out(case), _bn_train_out(case, ddof=1)]}, explains=("out",),
    when=_test)

TEST_WITHOUT_AFFINE = Mistake(
    "bn.test_without_affine", "test mode forgot gamma and beta",
    "Test mode normalises with the running statistics and then scales and shifts like train "
    "mode: out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.",
    wrong=lambda case: {"out": _bn_test_out(case, affine=False)}, explains=("out",), when=_test)

# One id in both layers: the solution's spatial batch norm calls batchnorm_forward, so the
# same line of code is the cause of both failures (per pixel, over the channels, in (N, C, H, W)).
BN_PER_SAMPLE_AXIS = Mistake(
    "bn.per_sample_axis", "wrong axis: statistics per example (per pixel) instead of per feature (per channel)",
    "Batch norm averages over the batch: mean and variance over axis 0 of an (N, D) array, one value "
    "per feature (shape (D,)). Averaging over axis 1 normalises each example instead, which is layer "
    "norm; in spatial batch norm it normalises each pixel over its C channels. If you reshape to "
    "(N*H*W, C) and call batchnorm_forward, its statistics must be over axis 0 (per column, i.e. per channel).",
    wrong=lambda case: {"out": _bn_train_out(case, axes=(1,))}, explains=("out",), when=_train)


def _spatial(case):
    return case.inputs["x"].ndim == 4


def _spatial_with_pixels(case):
    """Over N only or over N, H, W: the same when H = W = 1."""
    return _spatial(case) and case.inputs["x"].shape[2] * case.inputs["x"].shape[3] > 1


SPATIAL_PER_SAMPLE = Mistake(
    "spatial.per_sample_axis", "wrong axis: per-sample statistics instead of per-channel",
    "Spatial batch norm computes one mean and variance per CHANNEL, over axes (0, 2, 3) "
    "(N * H * W values each); averaging over axes (1, 2, 3) normalises each example instead.",
    wrong=lambda case: {"out": _bn_train_out(case, axes=(1, 2, 3))}, explains=("out",),
    when=lambda case: _train(case) and _spatial(case))

SPATIAL_N_ONLY = Mistake(
    "spatial.n_only", "wrong axis: statistics over N only, not over N, H and W",
    "One gamma/beta per channel means one mean and variance per channel, over all N * H * W "
    "values of that channel: average over axes (0, 2, 3), not only over axis 0.",
    wrong=lambda case: {"out": _bn_train_out(case, axes=(0,))}, explains=("out",),
    when=lambda case: _train(case) and _spatial_with_pixels(case))

SPATIAL_RESHAPE = Mistake(
    "spatial.reshape_without_transpose", "channels mixed up by a reshape without transpose",
    "x.reshape(-1, C) on an (N, C, H, W) array does not put the channels in the columns. "
    "Move the channel axis last first: x.transpose(0, 2, 3, 1).reshape(-1, C), and undo both on the output.",
    wrong=lambda case: {"out": _reshape_without_transpose(case)}, explains=("out",), when=_spatial_with_pixels)


# The running statistics after a train-mode call. CS231n's batch norm differs from torch's
# in three ways at once (issue 6): tried together, each difference is named.
FROM_ZEROS, BIASED, MOMENTUM_OLD, NOT_UPDATED = (
    "bn.running_var_from_zeros", "bn.running_var_biased", "bn.momentum_old", "bn.running_not_updated")


def _running_statistics(case, ids):
    """bn_param's running statistics after a train-mode call made with the mistakes ``ids``."""
    x, p = _f64(case.inputs["x"]), case.inputs["bn_param"]
    C, axes, momentum = x.shape[1], _channel_axes(x), p.get("momentum", MOMENTUM)
    mean0 = _f64(p.get("running_mean", np.zeros(C)))
    var0 = _f64(p.get("running_var", np.zeros(C) if FROM_ZEROS in ids else np.ones(C)))
    if NOT_UPDATED in ids:
        return {"running_mean": mean0, "running_var": var0}
    new = 1 - momentum if MOMENTUM_OLD in ids else momentum  # the weight of the batch statistic
    var = x.var(axis=axes, ddof=0 if BIASED in ids else 1)
    return {"running_mean": (1 - new) * mean0 + new * x.mean(axis=axes), "running_var": (1 - new) * var0 + new * var}


RUNNING = MistakeGroup("bn.running_statistics", _running_statistics)

RUNNING_VAR_FROM_ZEROS = RUNNING.member(
    FROM_ZEROS, "running_var initialised to zeros",
    "When bn_param has no running_var yet, start from ones, like PyTorch (running_mean starts "
    "from zeros). CS231n's code starts both from zeros.", ("running_var",),
    when=lambda case: _train(case) and "running_var" not in case.inputs["bn_param"])

RUNNING_VAR_BIASED = RUNNING.member(
    BIASED, "running_var stored biased",
    "running_var stores the UNBIASED batch variance (divide by N - 1, or by N*H*W - 1 for "
    "spatial batch norm), as PyTorch does; the output is still normalised with the biased one. "
    "Multiply the biased variance by N / (N - 1) before the update.", ("running_var",), when=_train)

MOMENTUM_ON_OLD = RUNNING.member(
    MOMENTUM_OLD, "momentum applied to the old value",
    "PyTorch's momentum (0.1) weighs the NEW batch statistic: "
    "running = (1 - momentum) * running + momentum * batch_stat. "
    "CS231n's convention (momentum 0.9 on the old value) is the other way round.", ("running_mean", "running_var"),
    # with momentum 0.5 both conventions agree
    when=lambda case: _train(case) and case.inputs["bn_param"].get("momentum", MOMENTUM) != 0.5)

RUNNING_NOT_UPDATED = RUNNING.member(
    NOT_UPDATED, "running statistics not updated in train mode",
    "In train mode, update bn_param['running_mean'] and bn_param['running_var'] with the "
    "batch statistics and store them back into bn_param.", ("running_mean", "running_var"), when=_train)


def _changed_in_place_of(got, case, what):
    """Any other value than the given one (the check only asks when the value is wrong), of its shape."""
    return np.shape(got) == np.shape(case.inputs["bn_param"][what])


RUNNING_UPDATED_IN_TEST = Mistake(
    "bn.running_updated_in_test", "running statistics updated in test mode",
    "Test mode only reads bn_param['running_mean'] and bn_param['running_var']; it must leave them unchanged.",
    # any change is this mistake, whatever the update was
    observed=_changed_in_place_of, explains=("running_mean", "running_var"), when=_test)


def _not_summed(got, case, what):
    shape = np.shape(case.inputs["gamma"])
    return np.shape(got) != shape and np.size(got) > int(np.prod(shape))


DGAMMA_NOT_SUMMED = Mistake(
    "norm.dgamma_not_summed", "dgamma/dbeta not summed over the batch",
    "gamma and beta are shared by every example (and every pixel, for the (N, C, H, W) layers), "
    "so their gradients are SUMS of the contributions over all those axes, one value per "
    "feature or channel: dgamma and dbeta must have gamma's shape.",
    observed=_not_summed, explains=("dgamma", "dbeta"))

RUNNING_MISTAKES = [RUNNING_UPDATED_IN_TEST, MOMENTUM_ON_OLD, RUNNING_VAR_BIASED, RUNNING_VAR_FROM_ZEROS,
                    RUNNING_NOT_UPDATED]
BN_MISTAKES = [UNBIASED_NORMALISE, EPS_OUTSIDE, TEST_USES_BATCH_STATS, TEST_WITHOUT_AFFINE, BN_PER_SAMPLE_AXIS,
               *RUNNING_MISTAKES, DGAMMA_NOT_SUMMED]
SPATIAL_MISTAKES = [UNBIASED_NORMALISE, EPS_OUTSIDE, TEST_USES_BATCH_STATS, TEST_WITHOUT_AFFINE, SPATIAL_PER_SAMPLE,
                    BN_PER_SAMPLE_AXIS, SPATIAL_N_ONLY, SPATIAL_RESHAPE, *RUNNING_MISTAKES, DGAMMA_NOT_SUMMED]


# ---------------------------------------------------------------- mistakes: layer and group norm

NORM_UNBIASED_NORMALISE = Mistake(
    "norm.unbiased_normalise", "unbiased variance used to normalise",
    "Normalise with the BIASED variance, the mean of (x - mean)**2 over the values that share "
    "it (np.var's default ddof=0), as torch does; not with ddof=1.",
    wrong=lambda case: {"out": _layer_or_group_out(case, ddof=1)}, explains=("out",))

NORM_EPS_OUTSIDE = Mistake(
    "norm.eps_outside", "eps outside the square root",
    "Divide by sqrt(var + eps), not sqrt(var) + eps (PyTorch's convention). The difference "
    "is largest when the variance is comparable to eps.",
    wrong=lambda case: {"out": _layer_or_group_out(case, eps_outside=True)}, explains=("out",))

LN_PER_FEATURE_AXIS = Mistake(
    "ln.per_feature_axis", "wrong axis: per-feature statistics instead of per-sample",
    "Layer norm normalises each example over its own D features: mean and variance over "
    "axis 1 (keepdims=True, shape (N, 1)). Averaging over axis 0 is batch norm.",
    wrong=lambda case: {"out": _layernorm_out(case, axes=(0,))}, explains=("out",))

LN_BACKWARD_BATCH_AXIS = Mistake(
    "ln.backward_batch_axis", "batch norm's backward formula: sums over the batch axis",
    "Layer norm's statistics are per example, so the two sums of the dx formula run over the "
    "FEATURES of each example (axis 1, keepdims=True), with gamma inside them: with "
    "g = dout * gamma, dx = (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, "
    "keepdims=True)) / std. Only dgamma and dbeta sum over the batch (axis 0).",
    wrong=_layernorm_backward_batch_axis, explains=("dx",))


def _groups(case):
    return case.inputs["G"]


def _channels(case):
    return case.inputs["x"].shape[1]


GN_PER_CHANNEL = Mistake(
    "gn.per_channel", "wrong axis: per-channel statistics (instance norm) instead of per group",
    "Group norm shares one mean and variance among the C // G channels of a group: reshape to "
    "(N, G, C // G * H * W) and average over the last axis.",
    wrong=lambda case: {"out": _groupnorm_out(case, G=_channels(case))}, explains=("out",),
    when=lambda case: _groups(case) != _channels(case))

GN_ONE_GROUP = Mistake(
    "gn.one_group", "wrong axis: statistics over all channels (layer norm) instead of per group",
    "Each of the G groups has its own mean and variance: reshape to (N, G, -1), not (N, -1).",
    wrong=lambda case: {"out": _groupnorm_out(case, G=1)}, explains=("out",), when=lambda case: _groups(case) != 1)

GN_OVER_BATCH = Mistake(
    "gn.over_batch", "wrong axis: statistics over the batch too",
    "Group norm is computed per example: average over the last axis of the (N, G, -1) array "
    "only, not over axis 0.",
    wrong=lambda case: {"out": _groupnorm_out(case, axes=(0, 2))}, explains=("out",),
    when=lambda case: case.inputs["x"].shape[0] > 1)

GN_INTERLEAVED = Mistake(
    "gn.interleaved_groups", "groups of non-consecutive channels",
    "A group is C // G CONSECUTIVE channels (channels 0..C/G-1 form group 0), as in "
    "torch.nn.GroupNorm: x.reshape(N, G, C // G, H, W), not x.reshape(N, C // G, G, H, W).",
    wrong=_groupnorm_interleaved, explains=("out",),
    when=lambda case: 1 < _groups(case) < _channels(case))

GN_PER_PIXEL_STATS = Mistake(
    "gn.per_pixel_stats", "statistics per pixel, over the group's channels only",
    "A group's mean and variance are over all its C // G channels AND all H * W pixels: "
    "average x.reshape(N, G, -1) over its last axis, not x.reshape(N, G, C // G, H, W) over "
    "axis 2 only.",
    wrong=_groupnorm_per_pixel, explains=("out",),
    when=lambda case: _channels(case) // _groups(case) > 1)  # one channel per group: no statistics at all

LN_MISTAKES = [NORM_UNBIASED_NORMALISE, NORM_EPS_OUTSIDE, LN_PER_FEATURE_AXIS, LN_BACKWARD_BATCH_AXIS,
               DGAMMA_NOT_SUMMED]
GN_MISTAKES = [NORM_UNBIASED_NORMALISE, NORM_EPS_OUTSIDE, GN_PER_CHANNEL, GN_ONE_GROUP, GN_OVER_BATCH, GN_INTERLEAVED,
               GN_PER_PIXEL_STATS, DGAMMA_NOT_SUMMED]


# ---------------------------------------------------------------- mistakes: weight norm and cosine norm

WN_COLUMN_NORM = Mistake(
    "wn.column_norm", "wrong axis: ||v|| over the columns instead of each row",
    "Each output unit j has its own weight vector, the row v[j] (torch's (out, in) layout): "
    "divide each row by its norm, np.linalg.norm(v, axis=1, keepdims=True), shape (out, 1).",
    wrong=lambda case: {"out": _weightnorm_out(case, _rows_normalised(case.inputs["v"], axis=0))}, explains=("out",))

WN_MATRIX_NORM = Mistake(
    "wn.matrix_norm", "||v|| of the whole matrix instead of each row",
    "Weight norm gives every output unit its own length g[j]: divide each ROW of v by its own norm "
    "(axis=1, keepdims=True), not the whole matrix by one number.",
    wrong=lambda case: {"out": _weightnorm_out(case, _f64(case.inputs["v"]) / np.linalg.norm(_f64(case.inputs["v"])))},
    explains=("out",), when=lambda case: case.inputs["v"].shape[0] > 1)  # one row: the same norm

WN_NORM_CONSTANT = Mistake(
    "wn.norm_constant", "||v|| treated as a constant in the backward pass",
    "||v|| depends on v too: dv_j = g_j J(v_j) dW_j with J the Jacobian of v -> v / ||v|| "
    "(unit_vector_jacobian), not g_j dW_j / ||v_j||; apply J to dW_j with one dot product per row. "
    "Check: each dv_j must be orthogonal to v_j.",
    wrong=_weightnorm_norm_constant, explains=("dv",))

WN_DG_SHAPE = Mistake(
    "wn.dg_shape", "dg does not have g's shape (out, 1)",
    "Return dg with g's shape: sum with keepdims=True, or dg.reshape(g.shape).",
    observed=lambda got, case, what: np.size(got) == case.inputs["g"].size and np.shape(got) != case.inputs["g"].shape,
    explains=("dg",))

WN_DB_NOT_SUMMED = Mistake(
    "wn.db_not_summed", "db not summed over the batch",
    "The bias is shared by every example: db = dout.sum(axis=0), shape (out,).",
    observed=lambda got, case, what: np.ndim(got) == 2, explains=("db",))

CN_X_NOT_NORMALISED = Mistake(
    "cn.x_not_normalised", "x not normalised",
    "Divide by ||x_n|| too (one norm per example, shape (N, 1)): cosine normalisation "
    "makes the output independent of the scale of x as well as of w.",
    wrong=lambda case: {"out": _cosine(case, normalise_x=False)}, explains=("out",))

CN_W_NOT_NORMALISED = Mistake(
    "cn.w_not_normalised", "w not normalised",
    "Divide by ||w_j|| too (one norm per row of w, shape (M, 1), transposed to (1, M)).",
    wrong=lambda case: {"out": _cosine(case, normalise_w=False)}, explains=("out",))

CN_WRONG_AXIS = Mistake(
    "cn.wrong_axis", "wrong axis: norms over the columns instead of each row",
    "x_n is a row of x and w_j a row of w: take norms over axis 1 (keepdims=True).",
    wrong=lambda case: {"out": _cosine(case, axis=0)}, explains=("out",))

CN_NORMS_CONSTANT = Mistake(
    "cn.norms_constant", "norms treated as constants in the backward pass",
    "||x_n|| and ||w_j|| depend on x and w: dx_n = J(x_n) dx_hat_n and dw_j = J(w_j) dw_hat_j, with J "
    "the Jacobian of u -> u / ||u|| (unit_vector_jacobian), not dx_hat_n / ||x_n||. Check: each dx_n "
    "must be orthogonal to x_n, and each dw_j to w_j.",
    wrong=_cosinenorm_norms_constant, explains=("dx", "dw"))

WN_MISTAKES = [WN_COLUMN_NORM, WN_MATRIX_NORM, WN_NORM_CONSTANT, WN_DG_SHAPE, WN_DB_NOT_SUMMED]
CN_MISTAKES = [CN_X_NOT_NORMALISED, CN_W_NOT_NORMALISED, CN_WRONG_AXIS, CN_NORMS_CONSTANT]


# ---------------------------------------------------------------- the table

# The first train input has an explicit momentum and no running statistics: there a
# CS231n-style batch norm differs in all three ways at once, and its message names all three.
BN_SPECS = [
    bn((16, 3), momentum=0.3, eps=1e-3), bn((8, 5)), bn((8, 5), "float32"), bn((10, 4), running=True, small=True),
    bn((6, 5), mode="test", running=True),
    *hidden(bn((2, 7), running=True), bn((64, 32)), bn((32, 6), "float32", mode="test", running=True, eps=1e-3),
            bn((5, 3), mode="test", running=True, small=True), bn((12, 9), "float32", running=True, momentum=0.05),
            bn((20, 10), running=True, small=True, eps=1e-4)),
]
SPATIAL_SPECS = [
    bn((4, 2, 3, 3), momentum=0.3, eps=1e-3), bn((2, 3, 4, 4)), bn((2, 3, 4, 4), "float32"),
    bn((3, 4, 2, 2), running=True, small=True), bn((2, 3, 4, 5), mode="test", running=True),
    *hidden(bn((1, 3, 3, 3), running=True), bn((8, 6, 5, 5)),
            bn((4, 5, 3, 2), "float32", mode="test", running=True, eps=1e-3),
            bn((3, 2, 1, 1), running=True, momentum=0.5), bn((2, 4, 3, 3), mode="test", running=True, small=True)),
]
LN_SPECS = [
    Spec((4, 6)), Spec((4, 6), "float32"), Spec((3, 10), params={"eps": 1e-3}),
    Spec((5, 4), special=frozenset({"small"})),
    *hidden(Spec((1, 8)), Spec((32, 64)), Spec((7, 3), "float32", params={"eps": 1e-3}),
            Spec((6, 5), special=frozenset({"small"}), params={"eps": 1e-4})),
]
GN_SPECS = [
    Spec((2, 6, 4, 4), params={"G": 3}), Spec((2, 6, 4, 4), "float32", params={"G": 3}),
    Spec((3, 4, 3, 3), params={"G": 4}), Spec((2, 4, 2, 3), params={"G": 1, "eps": 1e-3}),
    *hidden(Spec((1, 8, 5, 5), params={"G": 2}), Spec((4, 6, 3, 3), "float32", params={"G": 6}),
            Spec((2, 12, 4, 4), params={"G": 4}), Spec((5, 3, 2, 2), params={"G": 3, "eps": 1e-3})),
]
WN_SPECS = [  # x (N, in); out: the number of output units
    Spec((5, 4), params={"out": 3}), Spec((5, 4), "float32", params={"out": 3}), Spec((7, 6), params={"out": 2}),
    *hidden(Spec((1, 3), params={"out": 5}), Spec((32, 20), params={"out": 10}),
            Spec((6, 8), "float32", params={"out": 4})),
]
CN_SPECS = [  # x (N, D); w (M, D)
    Spec((4, 5), params={"M": 3}), Spec((4, 5), "float32", params={"M": 3}),
    Spec((6, 3), params={"M": 2, "x_scale": 1e3, "w_scale": 1e-3}), Spec((1, 4), params={"M": 5}),
    *hidden(Spec((16, 8), params={"M": 10}), Spec((3, 2), params={"M": 3, "x_scale": 1e-3, "w_scale": 1e2}),
            Spec((8, 6), "float32", params={"M": 4, "x_scale": 1e2, "w_scale": 1e-2}),
            Spec((32, 64), params={"M": 16})),
]

UVJ_SPECS = [  # u (N, D); scale: every row multiplied by it
    Spec((4, 3)), Spec((4, 3), "float32"), Spec((3, 1)), Spec((2, 5), params={"scale": 1e3}),
    Spec((3, 4), params={"scale": 1e-3}),
    *hidden(Spec((1, 6)), Spec((16, 8)), Spec((5, 1), "float32"), Spec((6, 4), "float32", params={"scale": 1e2}),
            Spec((3, 7), params={"scale": 1e-4}), Spec((8, 2), params={"scale": 1e5})),
]

# reference.batchnorm returns (out, running_mean, running_var)
RUNNING_STATE = (State("running_mean", "bn_param", "running_mean", 1),
                 State("running_var", "bn_param", "running_var", 2))

RUNNING_NOTE = "bn_param's running_mean and running_var match torch's after every call"
TABLE = [
    # Batch norm: a CS231n-trained student differs on several inputs (train-mode running
    # statistics, test mode): up to 3 failing inputs in one message, each showing something new.
    Layer("batchnorm", "batchnorm", BN_SPECS, make_batchnorm, BN_MISTAKES, in_backward=train_float64,
          state=RUNNING_STATE, note=RUNNING_NOTE, failed_inputs=3, alternatives=("batchnorm_backward_alt",)),
    Layer("spatial_batchnorm", "batchnorm", SPATIAL_SPECS, make_batchnorm, SPATIAL_MISTAKES, in_backward=train_float64,
          state=RUNNING_STATE, note=RUNNING_NOTE, failed_inputs=3),
    Layer("layernorm", "layernorm", LN_SPECS, make_layernorm, LN_MISTAKES, in_backward=train_float64),
    Layer("groupnorm", "groupnorm", GN_SPECS, make_groupnorm, GN_MISTAKES, in_backward=train_float64),
    Transform("unit_vector_jacobian", "unit_vector_jacobian", UVJ_SPECS, make_unit_vectors, UVJ_MISTAKES,
              outputs=("J",), explain=_jacobian_properties, contract=(DTYPE_CHANGED,),
              note="each J[n] symmetric, with J[n] @ u[n] = 0"),
    Layer("weightnorm", "weightnorm", WN_SPECS, make_weightnorm, WN_MISTAKES, in_backward=train_float64),
    Layer("cosinenorm", "cosinenorm", CN_SPECS, make_cosinenorm, CN_MISTAKES, in_backward=train_float64),
]


# ---------------------------------------------------------------- capstone: a 6-layer net with your batch norm
#
# The BN paper's comparison in miniature: the same 6-layer ReLU net (5 hidden Linear layers of 64
# units, He initialisation, seed 0) trained with plain SGD on 500 digits (pixels / 16), mini-batches
# of 50, 4 epochs, at a learning rate (1.0) where the net without batch norm does not train; then
# the test set is classified one example at a time in test mode, which only running statistics
# can do (a batch of one has variance 0). The grader re-runs it with torch's batch norm.

BN_CAPSTONE = {"lr": 1.0, "width": 64, "hidden": 5, "train": 500, "test": 300, "batch": 50, "epochs": 4}


class BatchNormReLU(capstone.Layer):
    """Batch norm (the given forward and backward passes), then the provided ReLU (``capstone.ReLU``:
    numpy, since torch is hidden from the grading kernel where this trains; this module does not
    write chapter 1's graded formulas out again)."""

    def __init__(self, forward, backward, width):
        self.f, self.b = forward, backward
        self.relu = capstone.ReLU()
        self.gamma, self.beta = np.ones(width), np.zeros(width)
        self.bn_param = {"mode": "train"}
        self.grads = None

    def forward(self, z, mode):
        self.bn_param["mode"] = mode
        out, cache = capstone.pair(self.f(z, self.gamma.copy(), self.beta.copy(), self.bn_param), "batchnorm_forward")
        out = capstone.as_array(out, "batchnorm_forward", z.shape)
        a, relu_cache = self.relu.forward(out, mode)
        return a, (cache, relu_cache)

    def backward(self, da, cache):
        cache, relu_cache = cache
        grads = self.b(self.relu.backward(da, relu_cache), cache)
        if not (isinstance(grads, tuple) and len(grads) == 3):
            raise capstone.StudentFailed(["batchnorm_backward must return a tuple (dx, dgamma, dbeta)."])
        dx, dgamma, dbeta = (capstone.as_array(g, "batchnorm_backward", shape)
                             for g, shape in zip(grads, (da.shape, self.gamma.shape, self.beta.shape)))
        self.grads = dgamma, dbeta
        return dx

    def step(self, lr):
        self.gamma, self.beta = self.gamma - lr * self.grads[0], self.beta - lr * self.grads[1]

    def running(self, key):
        value = self.bn_param.get(key)
        if not isinstance(value, np.ndarray) or value.shape != self.gamma.shape:
            raise capstone.StudentFailed([f"bn_param['{key}'] is missing or not an array of shape "
                                          f"{self.gamma.shape} after training: batchnorm_forward must store it."])
        return value.astype(np.float64)


def _bn_training(layer_pair, state):
    """(the net's losses per step, its layers): batch norm from ``layer_pair``, or none."""
    c = BN_CAPSTONE
    X, y, _, _ = capstone.digits_split(c["train"], c["test"])
    rng = np.random.default_rng(0)
    weights = capstone.he_weights([64] + [c["width"]] * c["hidden"] + [10], rng)
    layers = [BatchNormReLU(*layer_pair, c["width"]) if layer_pair else capstone.ReLU() for _ in range(c["hidden"])]
    net = capstone.MLP(weights, layers, state)
    losses = []
    for epoch in range(c["epochs"]):
        order = rng.permutation(len(y))
        for start in range(0, len(y), c["batch"]):
            state["where"] = f"training{' with batch norm' if layer_pair else ''}, epoch {epoch + 1}, step {len(losses) + 1}"
            batch = order[start:start + c["batch"]]
            losses.append(net.sgd_step(X[batch] / 16, y[batch], c["lr"]))
    return np.array(losses), net


def bn_capstone_run(functions, state, layer_pair=None):
    """The kernel's run (the student's functions), or the reference run (``layer_pair``)."""
    layer_pair = layer_pair or (functions["batchnorm_forward"], functions["batchnorm_backward"])
    plain, _ = _bn_training(None, state)
    losses, net = _bn_training(layer_pair, state)
    _, _, X_test, _ = capstone.digits_split(BN_CAPSTONE["train"], BN_CAPSTONE["test"])
    scores = []
    for i in range(len(X_test)):  # one example at a time: test mode must use the running statistics
        state["where"] = f"test mode, test example {i} alone"
        scores.append(net.forward(X_test[i:i + 1] / 16, "test")[0][0])
    return {"plain_losses": plain, "bn_losses": losses, "eval_scores": np.array(scores),
            "running_mean": np.array([layer.running("running_mean") for layer in net.layers]),
            "running_var": np.array([layer.running("running_var") for layer in net.layers])}


def bn_capstone_reference(found):
    from . import reference
    return bn_capstone_run(None, {}, reference.batchnorm_layer())


def _test_accuracy(found):
    _, _, _, y_test = capstone.digits_split(BN_CAPSTONE["train"], BN_CAPSTONE["test"])
    scores = found["eval_scores"]
    return capstone.accuracy(scores, y_test) if scores.shape == (len(y_test), 10) else 0.0


BN_CAPSTONE_ROW = capstone.Capstone(
    "capstone_batchnorm", ("batchnorm_forward", "batchnorm_backward"), bn_capstone_run, bn_capstone_reference,
    [capstone.Outcome("without batch norm, mean loss of the last 10 steps at lr 1.0 (chance: ln 10 = 2.30)",
                      lambda f: float(np.mean(f["plain_losses"][-10:])), at_least=2.0, fmt="{:.2f}",
                      advice="this run is the provided code alone: tell your instructor."),
     capstone.Outcome("with your batch norm, mean loss of the last 10 steps at lr 1.0",
                      lambda f: float(np.mean(f["bn_losses"][-10:])), at_most=0.4, fmt="{:.2f}",
                      advice="the net does not train with your batch norm: its backward pass (dx, and "
                             "dgamma, dbeta summed over the batch) is what SGD follows; make "
                             "batchnorm_backward's check pass."),
     capstone.Outcome("test accuracy in test mode, one test example at a time",
                      _test_accuracy, at_least=0.85, fmt="{:.1%}",
                      advice="in test mode batch norm must normalise with bn_param's running_mean and "
                             "running_var, updated in train mode (momentum 0.1 on the new statistic); "
                             "a batch of one example has variance 0, so its own statistics send every "
                             "example to beta.")],
    rtol={"plain_losses": 1e-6, "bn_losses": 1e-6, "eval_scores": 1e-5, "running_mean": 1e-6, "running_var": 1e-6},
    atol=1e-8,
    labels={"plain_losses": "the loss without batch norm at training step {}",
            "bn_losses": "the loss with batch norm at training step {}",
            "eval_scores": "test mode: score {1} of 10 for test example {0}, fed alone",
            "running_mean": "running_mean of hidden layer {0}, feature {1}, after training",
            "running_var": "running_var of hidden layer {0}, feature {1}, after training"},
    summary="the 6-layer net trains at a learning rate where it does not without batch norm, and test "
            "mode uses the running statistics")
TABLE.append(BN_CAPSTONE_ROW)

CHECKS = build(__name__, TABLE)
globals().update(CHECKS)  # checks.batchnorm_forward, checks.batchnorm_backward, ...
__all__ = sorted(CHECKS) + ["compare_speed"]
