"""Checks for the activations assignment (chapter 1).

One function per graded function, called from the notebook's test cells::

    checks.relu_forward(relu_forward)                       # public cases
    checks.relu_backward(relu_forward, relu_backward, hidden=True)  # more shapes and seeds

Public and hidden checks run the same code; ``hidden=True`` adds shapes, seeds and
dtypes. Every special input (exact zeros, +-1000, ties) is in the public cases, so
a student who passes the notebook's checks has seen every kind of input.
"""
import numpy as np

from ..checking import Case, Mistake, check_backward, check_forward, check_value, matches, public_check
from . import reference as ref

PUBLIC_SHAPES = [(4, 5), (2, 3, 4)]
HIDDEN_SHAPES = [(1, 7), (16, 32), (3, 2, 5, 5), (64,)]


# ---------------------------------------------------------------- inputs


def _label(name, arr, extra=""):
    return f"{name} {tuple(arr.shape)} {arr.dtype}{extra}"


def _x(rng, shape, dtype, zeros=False, large=False, scale=3.0):
    x = (scale * rng.standard_normal(shape)).astype(dtype)
    flat = x.reshape(-1)
    if zeros:
        flat[:: 3] = 0.0  # exact zeros: where gradient conventions matter
    if large:
        flat[:2] = [1000.0, -1000.0][: flat.size]
    return x


def _elementwise_cases(hidden, zeros=False, large=False, extra=None):
    """Cases for a function of x alone (plus fixed keyword values in ``extra``)."""
    shapes = PUBLIC_SHAPES + (HIDDEN_SHAPES if hidden else [])
    seed0 = 100 if hidden else 0
    cases = []
    for i, shape in enumerate(shapes):
        for dtype in (np.float64, np.float32) if i == 0 else (np.float64,):
            rng = np.random.default_rng(seed0 + i)
            x = _x(rng, shape, dtype, zeros=zeros, large=large)
            special = (" with exact zeros" if zeros else "") + (" and +-1000" if large else "")
            inputs = {"x": x, **(extra or {})}
            kw = "".join(f", {k}={v}" for k, v in (extra or {}).items())
            cases.append(Case(_label("x", x, special) + kw, inputs, tags=frozenset(
                tag for tag, on in (("zeros", zeros), ("large", large)) if on), seed=seed0 + i))
    return cases


# ---------------------------------------------------------------- mistakes


def _overflow(numpy_warnings, case, what):
    return what == "warnings" and "large" in case.tags and any("overflow" in w for w in numpy_warnings)


NAIVE_SIGMOID = Mistake(
    "naive 1/(1 + exp(-x)) overflows",
    "For x = -1000, exp(-x) = exp(1000) does not fit in a float. Use the stable form: "
    "1/(1 + exp(-x)) where x >= 0 and exp(x)/(1 + exp(x)) where x < 0, computing each exp "
    "only on its own entries (or np.exp(-np.logaddexp(0, -x))).",
    _overflow,
)

WHERE_EVALUATES_BOTH = Mistake(
    "np.where evaluates both branches",
    "exp(x) is computed for every entry, and exp(1000) overflows even though np.where then "
    "discards it. Exponentiate only non-positive values: np.exp(np.minimum(x, 0)).",
    _overflow,
)


def _gradient_at_zero(positive_slope, negative_slope_of):
    """Matches a backward pass that treats x == 0 as positive (x >= 0 instead of x > 0)."""

    def applies(got, case, what):
        if what != "dx" or "zeros" not in case.tags:
            return False
        x = case.inputs["x"]
        slope = np.where(x >= 0, positive_slope, negative_slope_of(case))
        return matches(got, case.dout * slope, case.dtype)

    return applies


def _zero_slope_mistake(function, convention):
    return lambda neg: Mistake(
        f"gradient of {function} at exactly 0",
        f"PyTorch's convention is {convention} at x == 0: use `x > 0`, not `x >= 0`, "
        "to select the positive branch.",
        _gradient_at_zero(1.0, neg),
    )


RELU_AT_ZERO = _zero_slope_mistake("ReLU", "gradient 0")(lambda case: 0.0)
LEAKY_AT_ZERO = _zero_slope_mistake("Leaky ReLU", "the negative slope")(
    lambda case: case.inputs["negative_slope"])


def _prelu_negative_slope(case):
    x, alpha = case.inputs["x"], case.inputs["alpha"]
    return alpha.reshape((1, -1) + (1,) * (x.ndim - 2))


PRELU_AT_ZERO = _zero_slope_mistake("PReLU", "the channel's slope alpha")(_prelu_negative_slope)


def _elu_at_zero(got, case, what):
    if what != "dx" or "zeros" not in case.tags:
        return False
    x, alpha = case.inputs["x"], case.inputs["alpha"]
    slope = np.where(x >= 0, 1.0, alpha * np.exp(np.minimum(x, 0)))
    return matches(got, case.dout * slope, case.dtype)


ELU_AT_ZERO = Mistake(
    "gradient of ELU at exactly 0",
    "PyTorch uses the negative branch at x == 0, so the gradient there is alpha * exp(0) = alpha: "
    "use `x > 0` to select the positive branch.", _elu_at_zero)


def _dalpha_not_summed(got, case, what):
    if what != "dalpha":
        return False
    got = np.asarray(got)
    return got.shape != case.inputs["alpha"].shape and got.ndim >= 2


PRELU_DALPHA_NOT_SUMMED = Mistake(
    "dalpha not summed over the batch",
    "alpha is shared by every example (and every pixel) of a channel, so its gradient is the SUM "
    "of their contributions: sum over axis 0 and the spatial axes, keeping one value per channel "
    "(shape (C,), or (1,) for a shared slope).", _dalpha_not_summed)


def _dalpha_averaged(got, case, what):
    if what != "dalpha":
        return False
    x = case.inputs["x"]
    expected = _prelu_dalpha(case)
    return any(matches(got, expected / n, case.dtype) for n in {x.shape[0], x.size // x.shape[1], x.size})


def _prelu_dalpha(case):
    x, alpha, dout = case.inputs["x"], case.inputs["alpha"], case.dout
    contrib = np.where(x > 0, 0.0, x) * dout
    axes = tuple(i for i in range(x.ndim) if i != 1 or alpha.size == 1)
    return contrib.sum(axis=axes).reshape(alpha.shape)


PRELU_DALPHA_AVERAGED = Mistake(
    "dalpha averaged instead of summed",
    "The loss depends on alpha through every example; the chain rule adds these "
    "contributions, it does not average them.", _dalpha_averaged)


def _maxout_mask_grads(case):
    """The backward pass that sends dout to EVERY piece tied for the maximum."""
    x, W, b, dout = case.inputs["x"], case.inputs["W"], case.inputs["b"], case.dout
    z = np.einsum("nd,kmd->nkm", x, W) + b[None]
    mask = (z == z.max(axis=1, keepdims=True)) * dout[:, None, :]
    return {"dx": np.einsum("nkm,kmd->nd", mask, W), "dW": np.einsum("nkm,nd->kmd", mask, x),
            "db": mask.sum(axis=0)}


MAXOUT_TIES = Mistake(
    "maxout gradient sent to every tied piece",
    "When several pieces reach the maximum, the output is ONE of them: send dout to the first "
    "maximal piece only (np.argmax), not to every piece equal to the max (`z == z.max(...)`).",
    lambda got, case, what: "ties" in case.tags and what in ("dx", "dW", "db")
    and matches(got, _maxout_mask_grads(case)[what], case.dtype))


# ---------------------------------------------------------------- cases per layer


def _sigmoid_cases(hidden):
    return _elementwise_cases(hidden, large=True)


def _relu_cases(hidden):
    return _elementwise_cases(hidden, zeros=True)


def _leaky_cases(hidden):
    cases = _elementwise_cases(hidden, zeros=True, extra={"negative_slope": 0.01})
    return cases + _elementwise_cases(hidden, zeros=True, extra={"negative_slope": 0.2})[:2]


def _elu_cases(hidden):
    cases = _elementwise_cases(hidden, zeros=True, large=True, extra={"alpha": 1.0})
    return cases + _elementwise_cases(hidden, zeros=True, extra={"alpha": 0.5})[:2]


def _prelu_cases(hidden):
    shapes = [(4, 3), (2, 3, 4, 4), (5, 1)] + ([(16, 8), (3, 5, 2, 2), (1, 4)] if hidden else [])
    seed0 = 200 if hidden else 20
    cases = []
    for i, shape in enumerate(shapes):
        for dtype in (np.float64, np.float32) if i == 0 else (np.float64,):
            rng = np.random.default_rng(seed0 + i)
            x = _x(rng, shape, dtype, zeros=True)
            channels = shape[1] if i % 3 != 2 else 1  # every third case: one shared slope
            alpha = rng.uniform(0.05, 0.5, size=channels).astype(dtype)
            cases.append(Case(f"{_label('x', x, ' with exact zeros')}, alpha {alpha.shape}",
                              {"x": x, "alpha": alpha}, grads=("x", "alpha"),
                              tags=frozenset({"zeros"}), seed=seed0 + i))
    return cases


def _maxout_cases(hidden):
    dims = [(4, 5, 3, 6), (10, 3, 2, 4)] + ([(1, 8, 4, 3), (32, 16, 5, 10)] if hidden else [])
    seed0 = 300 if hidden else 30
    cases = []
    for i, (n, d, k, m) in enumerate(dims):
        for dtype in (np.float64, np.float32) if i == 0 else (np.float64,):
            rng = np.random.default_rng(seed0 + i)
            x, W, b = (rng.standard_normal(s).astype(dtype) for s in ((n, d), (k, m, d), (k, m)))
            cases.append(Case(f"x {x.shape}, W {W.shape}, b {b.shape}, {x.dtype}",
                              {"x": x, "W": W, "b": b}, grads=("x", "W", "b"), seed=seed0 + i))
    # Exact ties: two identical pieces, integer-valued so every sum is exact.
    rng = np.random.default_rng(seed0 + 99)
    x = rng.integers(-3, 4, size=(6, 4)).astype(np.float64)
    W = rng.integers(-3, 4, size=(3, 5, 4)).astype(np.float64)
    b = rng.integers(-3, 4, size=(3, 5)).astype(np.float64)
    W[1], b[1] = W[0], b[0]
    cases.append(Case(f"x {x.shape}, W {W.shape}, b {b.shape}, float64, pieces 0 and 1 identical (ties)",
                      {"x": x, "W": W, "b": b}, grads=("x", "W", "b"), tags=frozenset({"ties"}),
                      seed=seed0 + 99))
    return cases


# ---------------------------------------------------------------- public checks


def _pair(name, reference, cases, mistakes=()):
    """Define the forward and backward checks of one layer."""

    def forward_check(forward, hidden=False):
        return check_forward(forward, f"{name}_forward", cases(hidden), reference, mistakes)

    def backward_check(forward, backward, hidden=False):
        return check_backward(forward, backward, f"{name}_backward", cases(hidden), reference, mistakes)

    forward_check.__name__, backward_check.__name__ = f"{name}_forward", f"{name}_backward"
    forward_check.__doc__ = f"Check {name}_forward(...) -> (out, cache) against torch."
    backward_check.__doc__ = f"Check {name}_backward(dout, cache) against torch.autograd."
    return public_check(forward_check), public_check(backward_check)


sigmoid_forward, sigmoid_backward = _pair("sigmoid", ref.sigmoid, _sigmoid_cases, [NAIVE_SIGMOID])
tanh_forward, tanh_backward = _pair("tanh", ref.tanh, _sigmoid_cases)
relu_forward, relu_backward = _pair("relu", ref.relu, _relu_cases, [RELU_AT_ZERO])
leaky_relu_forward, leaky_relu_backward = _pair("leaky_relu", ref.leaky_relu, _leaky_cases,
                                                [LEAKY_AT_ZERO])
prelu_forward, prelu_backward = _pair("prelu", ref.prelu, _prelu_cases,
                                      [PRELU_AT_ZERO, PRELU_DALPHA_NOT_SUMMED, PRELU_DALPHA_AVERAGED])
elu_forward, elu_backward = _pair("elu", ref.elu, _elu_cases, [WHERE_EVALUATES_BOTH, ELU_AT_ZERO])
maxout_forward, maxout_backward = _pair("maxout", ref.maxout, _maxout_cases, [MAXOUT_TIES])
gelu_forward, gelu_backward = _pair("gelu", ref.gelu, lambda h: _elementwise_cases(h, large=True))
silu_forward, silu_backward = _pair("silu", ref.silu, _sigmoid_cases, [NAIVE_SIGMOID])


# ---------------------------------------------------------------- diagnostics


def _saturation_cases(hidden):
    cases = []
    for i, (shape, threshold) in enumerate([((100, 20), 0.99), ((50, 10), 0.9)]
                                           + ([((7,), 0.5), ((300, 3), 0.999)] if hidden else [])):
        rng = np.random.default_rng(400 + i + 50 * hidden)
        h = np.tanh(2.5 * rng.standard_normal(shape))
        h.reshape(-1)[:3] = [threshold, -threshold, 1.0][: h.size]  # exactly at the threshold: not saturated
        cases.append(Case(f"h {h.shape} (tanh outputs, some exactly +-threshold), threshold={threshold}",
                          {"h": h, "threshold": threshold}, tags=frozenset({"boundary"})))
    return cases


def _dead_cases(hidden):
    cases = []
    for i, shape in enumerate([(64, 20), (8, 5)] + ([(1, 10), (200, 50)] if hidden else [])):
        rng = np.random.default_rng(500 + i + 50 * hidden)
        pre = rng.standard_normal(shape) + rng.uniform(-4, 1, size=shape[1])
        pre[:, 0] = 0.0  # exactly zero everywhere: dead (ReLU gives 0, gradient 0)
        cases.append(Case(f"pre_activations {pre.shape} (column 0 exactly zero)", {"pre_activations": pre}))
    return cases


STRICT_THRESHOLD = Mistake(
    "|h| >= threshold counted as saturated",
    "A unit is saturated when |h| is strictly above the threshold (|h| > threshold).",
    lambda got, case, what: np.isclose(float(got), float(np.mean(np.abs(case.inputs["h"]) >= case.inputs["threshold"]))))

DEAD_PER_EXAMPLE = Mistake(
    "counted zero activations instead of dead units",
    "A unit is dead when it is inactive for EVERY example of the batch: reduce with .all(axis=0) "
    "over examples, then average over units. The mean of (pre <= 0) over all entries is the "
    "sparsity, not the dead fraction.",
    lambda got, case, what: np.isclose(float(got), float(np.mean(case.inputs["pre_activations"] <= 0))))

DEAD_STRICT = Mistake(
    "a unit with pre-activation exactly 0 counted as alive",
    "ReLU(0) = 0 and its gradient at 0 is 0, so a unit whose pre-activations are <= 0 "
    "everywhere is dead: use `pre <= 0`.",
    lambda got, case, what: np.isclose(float(got), float(np.mean(np.all(case.inputs["pre_activations"] < 0, axis=0)))))


@public_check
def saturation_fraction(func, hidden=False):
    """Check saturation_fraction(h, threshold) -> float."""
    return check_value(func, "saturation_fraction", _saturation_cases(hidden), ref.saturation_fraction,
                       [STRICT_THRESHOLD])


@public_check
def dead_unit_fraction(func, hidden=False):
    """Check dead_unit_fraction(pre_activations) -> float."""
    return check_value(func, "dead_unit_fraction", _dead_cases(hidden), ref.dead_unit_fraction,
                       [DEAD_PER_EXAMPLE, DEAD_STRICT])
