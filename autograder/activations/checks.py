"""Checks for the activations assignment (chapter 1): a table, built by ``checking.build``.

The notebook's test cells call one check each::

    checks.relu_forward(relu_forward)                                # public cases
    checks.relu_backward(relu_forward, relu_backward, hidden=True)   # and the hidden ones

Each row of ``TABLE`` names a layer (or a diagnostic), its inputs (``Spec``s: shape,
dtype, special values, parameters), its torch reference (``reference.py``) and the
mistakes the syllabus diagnoses. Every special input (exact zeros, +-1000, ties) is in
the public cases, so a student who passes the notebook's checks has seen every kind of
input; the hidden ones add shapes and seeds.
"""
import dataclasses

import numpy as np

from .. import capstone
from ..checking import Case, Function, Layer, Mistake, Spec, _to_torch, build, hidden

# ---------------------------------------------------------------- inputs

SHAPES = [Spec((4, 5)), Spec((4, 5), "float32"), Spec((2, 3, 4)),
          *hidden(Spec((1, 7)), Spec((16, 32)), Spec((3, 2, 5, 5)), Spec((64,)))]


def variants(specs, special=(), **params):
    """The specs with special values and parameters added."""
    return [dataclasses.replace(s, special=frozenset(special), params={**s.params, **params}) for s in specs]


def _x(rng, spec):
    x = (3.0 * rng.standard_normal(spec.shape)).astype(spec.dtype)
    flat = x.reshape(-1)
    if "zeros" in spec.special:
        flat[::3] = 0.0  # exact zeros: where gradient conventions matter
    if "large" in spec.special:
        flat[:2] = [1000.0, -1000.0][: flat.size]
    return x


def _label(name, arr, spec=None):
    special = spec.special if spec else ()
    notes = (" with exact zeros" if "zeros" in special else "") + (" and +-1000" if "large" in special else "")
    return f"{name} {tuple(arr.shape)} {arr.dtype}{notes}"


def make_elementwise(spec, rng):
    """x, then the spec's parameters (negative_slope=..., alpha=...)."""
    x = _x(rng, spec)
    params = "".join(f", {k}={v}" for k, v in spec.params.items())
    return Case(_label("x", x, spec) + params, {"x": x, **spec.params}, tags=spec.special)


def make_prelu(spec, rng):
    x = _x(rng, spec)
    channels = 1 if spec.params.get("shared") else spec.shape[1]
    alpha = rng.uniform(0.05, 0.5, size=channels).astype(spec.dtype)
    return Case(f"{_label('x', x, spec)}, alpha {alpha.shape}", {"x": x, "alpha": alpha}, grads=("x", "alpha"),
                tags=spec.special)


def make_maxout(spec, rng):
    (n, d), k, m = spec.shape, spec.params["pieces"], spec.params["units"]
    if "ties" in spec.special:  # two identical pieces, integer-valued so every sum is exact
        x, W, b = (rng.integers(-3, 4, size=s).astype(spec.dtype) for s in ((n, d), (k, m, d), (k, m)))
        W[1], b[1] = W[0], b[0]
        note = ", pieces 0 and 1 identical (ties)"
    else:
        x, W, b = (rng.standard_normal(s).astype(spec.dtype) for s in ((n, d), (k, m, d), (k, m)))
        note = ""
    return Case(f"x {x.shape}, W {W.shape}, b {b.shape}, {x.dtype}{note}", {"x": x, "W": W, "b": b},
                grads=("x", "W", "b"), tags=spec.special)


def make_saturation(spec, rng):
    threshold = spec.params["threshold"]
    h = np.tanh(2.5 * rng.standard_normal(spec.shape))
    h.reshape(-1)[:3] = [threshold, -threshold, 1.0][: h.size]  # exactly at the threshold: not saturated
    return Case(f"h {h.shape} (tanh outputs, some exactly +-threshold), threshold={threshold}",
                {"h": h, "threshold": threshold}, tags=frozenset({"boundary"}))


def make_dead(spec, rng):
    pre = rng.standard_normal(spec.shape) + rng.uniform(-4, 1, size=spec.shape[1])
    pre[:, 0] = 0.0  # exactly zero everywhere: dead (ReLU gives 0, gradient 0)
    return Case(f"pre_activations {pre.shape} (column 0 exactly zero)", {"pre_activations": pre})


# ---------------------------------------------------------------- mistakes


def _overflowed(warnings, case, what):
    return "large" in case.tags and any("overflow" in w for w in warnings)


NAIVE_SIGMOID = Mistake(
    "sigmoid.naive_overflow", "naive 1/(1 + exp(-x)) overflows",
    "For x = -1000, exp(-x) = exp(1000) does not fit in a float. Use the stable form: "
    "1/(1 + exp(-x)) where x >= 0 and exp(x)/(1 + exp(x)) where x < 0, computing each exp "
    "only on its own entries (or np.exp(-np.logaddexp(0, -x))).",
    observed=_overflowed, explains=("warnings",))

WHERE_EVALUATES_BOTH = Mistake(
    "elu.where_evaluates_both", "np.where evaluates both branches",
    "exp(x) is computed for every entry, and exp(1000) overflows even though np.where then "
    "discards it. Exponentiate only non-positive values: np.exp(np.minimum(x, 0)).",
    observed=_overflowed, explains=("warnings",))


def _has_zeros(case):
    return "zeros" in case.tags


def _gradient_at_zero(id, function, convention, negative_slope):
    """A backward pass that treats x == 0 as positive (``x >= 0`` instead of ``x > 0``)."""
    def wrong(case):
        x = case.inputs["x"]
        return {"dx": case.dout * np.where(x >= 0, 1.0, negative_slope(case))}

    return Mistake(id, f"gradient of {function} at exactly 0",
                   f"PyTorch's convention is {convention} at x == 0: use `x > 0`, not `x >= 0`, "
                   "to select the positive branch.", wrong=wrong, when=_has_zeros, explains=("dx",))


def _channel_slope(case):
    x, alpha = case.inputs["x"], case.inputs["alpha"]
    return alpha.reshape((1, -1) + (1,) * (x.ndim - 2))


RELU_AT_ZERO = _gradient_at_zero("relu.grad_at_zero", "ReLU", "gradient 0", lambda case: 0.0)
LEAKY_AT_ZERO = _gradient_at_zero("leaky_relu.grad_at_zero", "Leaky ReLU", "the negative slope",
                                  lambda case: case.inputs["negative_slope"])
PRELU_AT_ZERO = _gradient_at_zero("prelu.grad_at_zero", "PReLU", "the channel's slope alpha", _channel_slope)

ELU_AT_ZERO = Mistake(
    "elu.grad_at_zero", "gradient of ELU at exactly 0",
    "PyTorch uses the negative branch at x == 0, so the gradient there is alpha * exp(0) = alpha: "
    "use `x > 0` to select the positive branch.",
    wrong=lambda case: {"dx": case.dout * np.where(case.inputs["x"] >= 0, 1.0, case.inputs["alpha"]
                                                   * np.exp(np.minimum(case.inputs["x"], 0)))},
    when=lambda case: "zeros" in case.tags and case.inputs["alpha"] != 1.0,  # alpha = 1: both agree
    explains=("dx",))


def _prelu_dalpha(case):
    """The correct dalpha (torch.autograd, grader side): the averaged mistake divides it."""
    from . import reference
    x, alpha, dout = (_to_torch(case.inputs["x"]), _to_torch(case.inputs["alpha"]), _to_torch(case.dout))
    return reference.prelu_dalpha(x, alpha, dout).numpy()


PRELU_DALPHA_NOT_SUMMED = Mistake(
    "prelu.dalpha_not_summed", "dalpha not summed over the batch",
    "alpha is shared by every example (and every pixel) of a channel, so its gradient is the SUM "
    "of their contributions: sum over axis 0 and the spatial axes, keeping one value per channel "
    "(shape (C,), or (1,) for a shared slope).",
    observed=lambda got, case, what: np.ndim(got) >= 2 and np.shape(got) != case.inputs["alpha"].shape,
    explains=("dalpha",))

PRELU_DALPHA_AVERAGED = Mistake(
    "prelu.dalpha_averaged", "dalpha averaged instead of summed",
    "The loss depends on alpha through every example; the chain rule adds these "
    "contributions, it does not average them.",
    wrong=lambda case: {"dalpha": [_prelu_dalpha(case) / n for n in sorted({
        case.inputs["x"].shape[0], case.inputs["x"].size // case.inputs["x"].shape[1], case.inputs["x"].size})]},
    explains=("dalpha",))


def _maxout_all_ties(case):
    """The backward pass that sends dout to EVERY piece tied for the maximum (torch, grader side)."""
    from . import reference
    dx, dW, db = reference.maxout_grads_to_every_tied_piece(
        *(_to_torch(case.inputs[k]) for k in ("x", "W", "b")), _to_torch(case.dout))
    return {"dx": dx.numpy(), "dW": dW.numpy(), "db": db.numpy()}


MAXOUT_TIES = Mistake(
    "maxout.ties_to_every_piece", "maxout gradient sent to every tied piece",
    "When several pieces reach the maximum, the output is ONE of them: send dout to the first "
    "maximal piece only (np.argmax), not to every piece equal to the max (`z == z.max(...)`).",
    wrong=_maxout_all_ties, when=lambda case: "ties" in case.tags, explains=("dx", "dW", "db"))

STRICT_THRESHOLD = Mistake(
    "saturation.non_strict_threshold", "|h| >= threshold counted as saturated",
    "A unit is saturated when |h| is strictly above the threshold (|h| > threshold).",
    wrong=lambda case: {"value": np.mean(np.abs(case.inputs["h"]) >= case.inputs["threshold"])}, explains=("value",))

DEAD_PER_EXAMPLE = Mistake(
    "dead_units.zero_entries_counted", "counted zero activations instead of dead units",
    "A unit is dead when it is inactive for EVERY example of the batch: reduce with .all(axis=0) "
    "over examples, then average over units. The mean of (pre <= 0) over all entries is the "
    "sparsity, not the dead fraction.",
    wrong=lambda case: {"value": np.mean(case.inputs["pre_activations"] <= 0)}, explains=("value",))

DEAD_STRICT = Mistake(
    "dead_units.zero_counted_alive", "a unit with pre-activation exactly 0 counted as alive",
    "ReLU(0) = 0 and its gradient at 0 is 0, so a unit whose pre-activations are <= 0 "
    "everywhere is dead: use `pre <= 0`.",
    wrong=lambda case: {"value": np.mean(np.all(case.inputs["pre_activations"] < 0, axis=0))}, explains=("value",))


# ---------------------------------------------------------------- the table

PRELU_SPECS = [Spec((4, 3)), Spec((4, 3), "float32"), Spec((2, 3, 4, 4)), Spec((5, 1), params={"shared": True}),
               *hidden(Spec((16, 8)), Spec((3, 5, 2, 2)), Spec((1, 4), params={"shared": True}))]
MAXOUT_SPECS = [Spec((4, 5), params={"pieces": 3, "units": 6}), Spec((4, 5), "float32", params={"pieces": 3, "units": 6}),
                Spec((10, 3), params={"pieces": 2, "units": 4}),
                Spec((6, 4), special=frozenset({"ties"}), params={"pieces": 3, "units": 5}),
                *hidden(Spec((1, 8), params={"pieces": 4, "units": 3}), Spec((32, 16), params={"pieces": 5, "units": 10}))]

TABLE = [
    Layer("sigmoid", "sigmoid", variants(SHAPES, {"large"}), make_elementwise, [NAIVE_SIGMOID]),
    Layer("tanh", "tanh", variants(SHAPES, {"large"}), make_elementwise),
    Layer("relu", "relu", variants(SHAPES, {"zeros"}), make_elementwise, [RELU_AT_ZERO]),
    Layer("leaky_relu", "leaky_relu", variants(SHAPES, {"zeros"}, negative_slope=0.01)
          + variants(SHAPES[:2], {"zeros"}, negative_slope=0.2), make_elementwise, [LEAKY_AT_ZERO]),
    Layer("prelu", "prelu", variants(PRELU_SPECS, {"zeros"}), make_prelu,
          [PRELU_AT_ZERO, PRELU_DALPHA_NOT_SUMMED, PRELU_DALPHA_AVERAGED]),
    Layer("elu", "elu", variants(SHAPES, {"zeros", "large"}, alpha=1.0)
          + variants(SHAPES[:2], {"zeros"}, alpha=0.5), make_elementwise, [WHERE_EVALUATES_BOTH, ELU_AT_ZERO]),
    Layer("maxout", "maxout", MAXOUT_SPECS, make_maxout, [MAXOUT_TIES]),
    Layer("gelu", "gelu", variants(SHAPES, {"large"}), make_elementwise),
    Layer("silu", "silu", variants(SHAPES, {"large"}), make_elementwise, [NAIVE_SIGMOID]),
    Function("saturation_fraction", "saturation_fraction",
             [Spec((100, 20), params={"threshold": 0.99}), Spec((50, 10), params={"threshold": 0.9}),
              *hidden(Spec((7,), params={"threshold": 0.5}), Spec((300, 3), params={"threshold": 0.999}))],
             make_saturation, [STRICT_THRESHOLD]),
    Function("dead_unit_fraction", "dead_unit_fraction",
             [Spec((64, 20)), Spec((8, 5)), *hidden(Spec((1, 10)), Spec((200, 50)))],
             make_dead, [DEAD_PER_EXAMPLE, DEAD_STRICT]),
]

# ---------------------------------------------------------------- capstones: the book's two findings, with your functions
#
# 1. Dead ReLUs (book/activations/experiments.md, experiment 2): a 64-100-100-10 net (He
#    initialisation, seed 0) on 500 standardised digits, full batch. One first step with eta = 0.1
#    (normal) or eta = 30 (too large), then 30 steps with eta = 0.1, with your ReLU and your Leaky
#    ReLU; your dead_unit_fraction measures each hidden layer on the training set before every step.
# 2. Saturation (experiment 1): a 10-layer sigmoid net (64 units, N(0, g^2 / fan_in) weights, seed
#    0) on 256 standardised digits, gains 1, 4 and 16: your saturation_fraction on 2 sigmoid(z) - 1
#    (= tanh(z / 2)) of every hidden layer, and the ratio of the first layer's weight-gradient
#    norm to the last hidden layer's, through your sigmoid's backward pass.
# The grader re-runs both with torch's functions (reference.py) and compares the records.

DEAD_RUNS = (("relu", 0.1), ("relu", 30.0), ("leaky_relu", 30.0))   # (activation, first learning rate)
DEAD_STEPS, DEAD_LR = 30, 0.1
SATURATION_GAINS = (1.0, 4.0, 16.0)


def _standardised_digits(n):
    X, y, _, _ = capstone.digits_split(n, 0)
    return (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8), y


def dead_units_run(functions, state):
    X, y = _standardised_digits(500)
    losses, dead = [], []
    for name, first_lr in DEAD_RUNS:
        layers = [capstone.Activation(functions[f"{name}_forward"], functions[f"{name}_backward"], name)
                  for _ in range(2)]
        net = capstone.MLP(capstone.he_weights([64, 100, 100, 10], np.random.default_rng(0)), layers, state)
        run_losses, run_dead = [], []
        for step in range(DEAD_STEPS + 1):
            state["where"] = f"the {name} net, step {step + 1} (learning rate {first_lr if step == 0 else DEAD_LR:g})"
            if step:
                _, _, pre = net.forward(X, keep=True)
                run_dead.append([capstone.as_float(functions["dead_unit_fraction"](z), "dead_unit_fraction")
                                 for z in pre])
            run_losses.append(net.sgd_step(X, y, first_lr if step == 0 else DEAD_LR))
        losses.append(run_losses)
        dead.append(run_dead)
    return {"losses": np.array(losses), "dead": np.array(dead)}


def dead_units_reference(found):
    from . import reference
    functions = {"dead_unit_fraction": capstone.torch_value(reference.dead_unit_fraction)}
    for name in ("relu", "leaky_relu"):
        functions[f"{name}_forward"], functions[f"{name}_backward"] = capstone.torch_layer(getattr(reference, name))
    return dead_units_run(functions, {})


def saturation_run(functions, state):
    X, y = _standardised_digits(256)
    saturated, ratios = [], []
    for gain in SATURATION_GAINS:
        state["where"] = f"the sigmoid net with gain {gain:g}"
        layers = [capstone.Activation(functions["sigmoid_forward"], functions["sigmoid_backward"], "sigmoid")
                  for _ in range(10)]
        weights = capstone.he_weights([64] * 11 + [10], np.random.default_rng(0), gain=gain)
        net = capstone.MLP(weights, layers, state)
        _, _, pre = net.forward(X, keep=True)
        fractions = []
        for z in pre:
            h, _ = capstone.pair(functions["sigmoid_forward"](z), "sigmoid_forward")
            fractions.append(capstone.as_float(functions["saturation_fraction"](2 * h - 1, 0.99), "saturation_fraction"))
        _, grads = net.backprop(X, y)
        saturated.append(np.mean(fractions))
        ratios.append(np.linalg.norm(grads[0][0]) / np.linalg.norm(grads[9][0]))
    return {"saturated": np.array(saturated), "gradient_ratio": np.array(ratios)}


def saturation_reference(found):
    from . import reference
    forward, backward = capstone.torch_layer(reference.sigmoid)
    return saturation_run({"sigmoid_forward": forward, "sigmoid_backward": backward,
                           "saturation_fraction": capstone.torch_value(reference.saturation_fraction)}, {})


def _dead(run, layer, when):
    return lambda found: float(found["dead"][run, when, layer])


DEAD_ADVICE = ("a unit is dead when its pre-activation is <= 0 for EVERY example (dead_unit_fraction), and "
               "a dead ReLU gets exactly zero gradient (relu_backward): make both checks pass.")
CAPSTONES = [
    capstone.Capstone(
        "capstone_dead_units",
        ("relu_forward", "relu_backward", "leaky_relu_forward", "leaky_relu_backward", "dead_unit_fraction"),
        dead_units_run, dead_units_reference,
        [capstone.Outcome("ReLU, layer 2 dead after a normal first step (eta 0.1)", _dead(0, 1, 0), at_most=0.0,
                          fmt="{:.0%}", advice=DEAD_ADVICE),
         capstone.Outcome("ReLU, layer 2 dead after a first step with eta 30", _dead(1, 1, 0), at_least=0.3,
                          fmt="{:.0%}", advice=DEAD_ADVICE),
         capstone.Outcome("ReLU, layer 1 (centred inputs) dead after that step", _dead(1, 0, 0), at_most=0.05,
                          fmt="{:.0%}", advice=DEAD_ADVICE),
         capstone.Outcome(f"ReLU, layer 2 dead {DEAD_STEPS} steps later (they stay dead)",
                          lambda f: float(f["dead"][1, :, 1].min()), at_least=0.3, fmt="{:.0%}", advice=DEAD_ADVICE),
         capstone.Outcome(f"Leaky ReLU, layer 2 units with pre-activation <= 0 everywhere, {DEAD_STEPS} steps "
                          "after the same step (they recover)", _dead(2, 1, -1), at_most=0.1, fmt="{:.0%}",
                          advice="a Leaky ReLU unit whose pre-activations are all negative still gets "
                                 "negative_slope times the gradient (leaky_relu_backward), which brings it back.")],
        rtol={"losses": 1e-6, "dead": 0.0}, atol={"losses": 1e-9, "dead": 0.011},
        labels={"losses": "run {0}, the loss at step {1}", "dead": "run {0}, the dead fraction of layer {2} before step {1}"},
        summary="a too-large step kills ReLUs for good, Leaky ReLUs recover (book: activations, experiments)"),
    capstone.Capstone(
        "capstone_saturation", ("sigmoid_forward", "sigmoid_backward", "saturation_fraction"),
        saturation_run, saturation_reference,
        [capstone.Outcome("gain 1: first/last hidden layer weight-gradient norm (vanishing)",
                          lambda f: float(f["gradient_ratio"][0]), at_most=1e-3, fmt="{:.1e}",
                          advice="the sigmoid's derivative is at most 1/4: sigmoid_backward must multiply dout by "
                                 "s (1 - s), s = sigmoid(x)."),
         capstone.Outcome("gain 1: saturated fraction", lambda f: float(f["saturated"][0]), at_most=0.05,
                          fmt="{:.0%}", advice="saturated means |h| > threshold, strictly (saturation_fraction)."),
         capstone.Outcome("gain 16: saturated fraction", lambda f: float(f["saturated"][2]), at_least=0.3,
                          fmt="{:.0%}", advice="saturated means |h| > threshold (saturation_fraction), and "
                                               "sigmoid_forward must be right for large |x|."),
         capstone.Outcome("gain 16: gradient ratio / gain 1's (a larger gain helps the gradient)",
                          lambda f: float(f["gradient_ratio"][2] / f["gradient_ratio"][0]), at_least=100.0,
                          fmt="{:.3g}", advice="sigmoid_backward must use the forward pass's cache.")],
        rtol=1e-6, atol=1e-12,
        labels={"saturated": "the saturated fraction at gain number {0}",
                "gradient_ratio": "the gradient ratio at gain number {0}"},
        summary="vanishing gradients at gain 1, saturated units at gain 16 (book: activations, experiments)"),
]
TABLE.extend(CAPSTONES)

CHECKS = build(__name__, TABLE)
globals().update(CHECKS)  # checks.relu_forward, checks.relu_backward, ...
__all__ = sorted(CHECKS)
