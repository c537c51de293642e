"""Checks for the initialisation assignment (chapter 3): a table, built by ``checking.build``.

The notebook's test cells call one check each::

    checks.kaiming_normal(kaiming_normal)                 # public cases
    checks.kaiming_normal(kaiming_normal, hidden=True)    # and the hidden ones

Rows (``autograder/sampling.py`` and ``autograder/transforms.py``):

- ``calculate_gain`` and ``fan_in_and_fan_out`` are :class:`~autograder.sampling.Exact`: the same
  values as torch (floats to 1e-12), the same exception type where torch raises;
- the samplers are :class:`~autograder.sampling.Sampler`: their samples are judged by statistical
  tests against the law torch.nn.init draws from (a correct sampler fails a check with probability
  below 1e-6: the bound is derived in sampling.py's docstring), their use of ``rng`` (same seed,
  same array; numpy's global state untouched), orthogonality to 1e-10 and, over all of an
  orthogonal check's matrices, the signs a Haar-distributed matrix has;
- ``layer_statistics`` is a :class:`~autograder.transforms.Transform` run with a deterministic
  ``init`` (it draws from the rng it is given, in the order of the layers): its means and stds
  equal the reference's forward pass in torch.

The mistakes the syllabus lists are recognised by the law the student's sample follows (a
sample that passes every test against the mistake's law names it). This module imports
neither torch nor scipy: the kernel only records, the grader judges.
"""
import math

import numpy as np

from .. import capstone
from ..checking import Case, Mistake, Spec, build, hidden
from ..sampling import ALPHA, Exact, Sampler, follows
from ..transforms import Transform

# ---------------------------------------------------------------- inputs

SAMPLERS = ("xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal")


def spec(shape=(), **params):
    return Spec(tuple(shape), params=params)


def _params_label(params):
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def make_gain(spec, rng):
    p = spec.params
    label = f"calculate_gain({p['nonlinearity']!r}" + (f", param={p['param']!r})" if "param" in p else ")")
    return Case(label, {"nonlinearity": p["nonlinearity"], "param": p.get("param")},
                tags=frozenset({"calculate_gain", "exact"}))


def make_fans(spec, rng):
    return Case(f"shape {spec.shape}", {"shape": spec.shape}, tags=frozenset({"fans", "exact"}))


def make_sampler(name):
    def make(spec, rng):
        params = dict(spec.params)
        label = f"shape {spec.shape}" + (f", {_params_label(params)}" if params else " (default arguments)")
        return Case(label, {"shape": spec.shape, "params": params}, tags=frozenset({name}))
    make.__name__ = f"make_{name}"
    return make


class ScaledGaussian:
    """The deterministic init that layer_statistics is checked with: N(0, (gain / sqrt(fan_in))^2)
    drawn from the rng it is given (or a fixed std when ``std`` is set)."""

    def __init__(self, gain=1.0, std=None):
        self.gain, self.std = gain, std

    def __call__(self, shape, rng):
        std = self.std if self.std is not None else self.gain / math.sqrt(shape[1])
        return rng.standard_normal(shape) * std

    def __repr__(self):
        return f"N(0, {self.std}^2)" if self.std is not None else f"N(0, ({self.gain:g} / sqrt(fan_in))^2)"


def make_layers(spec, rng):
    p = spec.params
    X = rng.standard_normal(spec.shape)
    init = ScaledGaussian(**p["init"])
    label = (f"X {spec.shape} unit Gaussian, layer_sizes={p['sizes']}, init={init!r}, "
             f"nonlinearity={p['f']!r}, rng=default_rng({p['seed']})")
    return Case(label, {"X": X, "layer_sizes": list(p["sizes"]), "init": init, "nonlinearity": p["f"],
                        "rng": np.random.default_rng(p["seed"])}, tags=frozenset({"layer_statistics"}))


# ---------------------------------------------------------------- what wrong implementations return


def _fans(shape, swap=False, receptive_field=True):
    shape = tuple(shape)
    rf = int(np.prod(shape[2:])) if receptive_field else 1
    fan_in, fan_out = shape[1] * rf, shape[0] * rf
    return (fan_out, fan_in) if swap else (fan_in, fan_out)


GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 0.75}


def _gain(nonlinearity, a):
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a ** 2))
    return GAINS.get(nonlinearity, 1.0)


def _law(name, case, swap=False, receptive_field=True, mode=None, gain=None, he_power=1.0, sqrt3=True):
    """The law of ``name``'s sample with the given mistakes (numpy; the right one is torch's)."""
    shape, p = case.inputs["shape"], case.inputs["params"]
    fan_in, fan_out = _fans(shape, swap, receptive_field)
    if name.startswith("xavier"):
        std = p.get("gain", 1.0) * math.sqrt(2.0 / (fan_in + fan_out))
    else:
        g = gain if gain is not None else _gain(p.get("nonlinearity", "leaky_relu"), p.get("a", 0.0))
        fan = fan_in if (mode or p.get("mode", "fan_in")) == "fan_in" else fan_out
        std = g ** he_power / math.sqrt(fan)
    if name.endswith("uniform"):
        return ("uniform", (math.sqrt(3.0) if sqrt3 else 1.0) * std)
    return ("normal", std)


def _relu_family(case):
    return case.inputs["params"].get("nonlinearity", "leaky_relu") in ("relu", "leaky_relu")


def _has_receptive_field(case):
    return len(case.inputs["shape"]) > 2


# ---------------------------------------------------------------- mistakes
# One Mistake per id (checking.registry): each recognises its mistake from an exact function's
# value ("value"), from a sampler's sample ("sample": it follows the mistake's law) or both.


def _sampler(case):
    return next((t for t in case.tags if t in SAMPLERS), None)


def _mode(case):
    return case.inputs["params"].get("mode", "fan_in")


def _recognised(value_test=None, law=None, when=lambda case: True):
    """observed(got, case, what) from a test of an exact value and/or a sampler's wrong law."""
    def observed(got, case, what):
        if what == "value" and value_test is not None and "exact" in case.tags:
            return bool(value_test(got, case))
        name = _sampler(case)
        if what == "sample" and law is not None and name is not None and when(case):
            wrong = law(name, case)
            return wrong is not None and follows(got, wrong)
        return False
    return observed


def _fans_value_swapped(got, case):
    f = _fans(case.inputs["shape"])
    return "fans" in case.tags and f[0] != f[1] and got == (f[1], f[0])


FANS_SWAPPED = Mistake(
    "init.fans_swapped", "fan_in and fan_out swapped",
    "torch stores a Linear weight as (out_features, in_features): fan_in is shape[1] (the inputs each "
    "output sums over) and fan_out is shape[0]. For a conv weight (C_out, C_in, kH, kW) likewise, "
    "each times the receptive field kH * kW.",
    observed=_recognised(_fans_value_swapped,
                         lambda name, case: _law(name, case, swap=True) if name.startswith("kaiming") else None,
                         lambda case: _mode(case) == "fan_in"),
    explains=("value", "sample"))

RF_FORGOTTEN = Mistake(
    "init.receptive_field_forgotten", "the receptive field forgotten in the fans",
    "For a conv weight (C_out, C_in, kH, kW) each output sums over C_in * kH * kW inputs: "
    "fan_in = C_in * kH * kW and fan_out = C_out * kH * kW (the receptive field is the product "
    "of all the dimensions after the first two; 1 for a Linear weight).",
    observed=_recognised(lambda got, case: "fans" in case.tags and len(case.inputs["shape"]) > 2
                         and got == _fans(case.inputs["shape"], receptive_field=False),
                         lambda name, case: _law(name, case, receptive_field=False),
                         lambda case: len(case.inputs["shape"]) > 2),
    explains=("value", "sample"))


def _leaky_value(got, case):
    p = case.inputs.get("param")
    if case.inputs.get("nonlinearity") != "leaky_relu" or p is None or isinstance(p, bool) \
            or not isinstance(p, (int, float)) or p == 0.01 or isinstance(got, (tuple, bool)) \
            or not isinstance(got, (int, float)):
        return False
    return any(abs(got - g) <= 1e-12 for g in (math.sqrt(2.0), _gain("leaky_relu", 0.01)))


LEAKY_IGNORES_A = Mistake(
    "init.leaky_gain_ignores_a", "leaky ReLU's gain ignores the slope",
    "Leaky ReLU's gain depends on its negative slope a: sqrt(2 / (1 + a^2)) (a = 0: ReLU's sqrt(2); "
    "a = 1: the identity's 1). Use `param` when it is given, 0.01 when it is None.",
    observed=_recognised(_leaky_value, lambda name, case: _law(name, case, gain=math.sqrt(2.0))
                         if name.startswith("kaiming") else None,
                         lambda case: case.inputs["params"].get("nonlinearity", "leaky_relu") == "leaky_relu"
                         and case.inputs["params"].get("a", 0.0) not in (0, 0.01)),
    explains=("value", "sample"))

MODE_IGNORED = Mistake(
    "init.mode_ignored", "mode='fan_out' ignored",
    "With mode='fan_out' the std is gain / sqrt(fan_out): it preserves the variance of the gradients in "
    "the backward pass (each input's gradient sums over fan_out outputs) instead of the activations'. "
    "Choose the fan by `mode`.",
    observed=_recognised(law=lambda name, case: _law(name, case, mode="fan_in") if name.startswith("kaiming") else None,
                         when=lambda case: _mode(case) == "fan_out"),
    explains=("sample",))


def _kaiming_gain(case):
    p = case.inputs["params"]
    return _gain(p.get("nonlinearity", "leaky_relu"), p.get("a", 0.0))


HE_WITHOUT_2 = Mistake(
    "init.he_without_2", "He's factor 2 missing (Var = 1 / fan)",
    "ReLU zeroes half of its inputs, so E[relu(z)^2] = Var(z) / 2: keeping the variance needs "
    "Var(W) = 2 / fan_in, std = sqrt(2 / fan_in) (the gain sqrt(2); sqrt(2 / (1 + a^2)) for leaky ReLU).",
    observed=_recognised(law=lambda name, case: _law(name, case, gain=_kaiming_gain(case) / math.sqrt(2.0))
                         if name.startswith("kaiming") else None, when=lambda case: _relu_family(case)),
    explains=("sample",))

HE_2_ON_STD = Mistake(
    "init.he_2_on_std", "the 2 put on the standard deviation (std = 2 / sqrt(fan))",
    "The 2 of He et al. is on the VARIANCE: Var(W) = 2 / fan_in, so std = sqrt(2 / fan_in) = gain / "
    "sqrt(fan_in) with gain sqrt(2). 2 / sqrt(fan_in) is sqrt(2) times too large.",
    observed=_recognised(law=lambda name, case: _law(name, case, he_power=2.0) if name.startswith("kaiming") else None,
                         when=lambda case: _relu_family(case)),
    explains=("sample",))

UNIFORM_WITHOUT_SQRT3 = Mistake(
    "init.uniform_without_sqrt3", "uniform bound equal to the std (sqrt(3) missing)",
    "U(-b, b) has variance b^2 / 3: for a standard deviation std the bound is b = sqrt(3) * std. A bound "
    "of std gives a standard deviation std / sqrt(3).",
    observed=_recognised(law=lambda name, case: _law(name, case, sqrt3=False) if name.endswith("uniform") else None),
    explains=("sample",))

GLOBAL_RNG = Mistake(
    "init.global_rng", "numpy's global random generator used instead of `rng`",
    "np.random.normal / np.random.uniform / np.random.randn draw from numpy's global state: the result "
    "is not reproducible from the seed you are given, and it changes everyone else's random numbers. "
    "Draw from the Generator you are given: rng.normal(0.0, std, size=shape), rng.uniform(-b, b, size=shape).",
    observed=lambda got, case, what: what == "rng" and not got["global_state_unchanged"], explains=("rng",))


def _no_sign_fix(got, case, what):
    from ..sampling import binomial_p
    negative, total = got
    return what == "signs" and negative > total / 2 and binomial_p(negative, total) < ALPHA


ORTHOGONAL_NO_SIGN = Mistake(
    "init.orthogonal_no_sign_fix", "Q of a plain QR, without the sign correction",
    "np.linalg.qr's R has a diagonal whose signs depend on the data (LAPACK makes Q's diagonal entries "
    "mostly negative): Q is orthogonal but not uniformly distributed. Multiply each column of Q by the "
    "sign of R's diagonal entry, q * np.sign(np.diag(r)), as torch's orthogonal_ does (Mezzadri, 2007).",
    observed=_no_sign_fix, explains=("signs",))


def _preactivation(case):
    import copy
    rng = copy.deepcopy(case.inputs["rng"])
    f = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "linear": lambda z: z}[case.inputs["nonlinearity"]]
    means, stds, h = [], [], case.inputs["X"].astype(np.float64)
    for size in case.inputs["layer_sizes"]:
        z = h @ case.inputs["init"]((size, h.shape[1]), rng).T
        means.append(z.mean())
        stds.append(z.std())
        h = f(z)
    return {"means": np.array(means), "stds": np.array(stds)}


PREACTIVATION = Mistake(
    "init.preactivation_statistics", "statistics of the pre-activations z = h W^T, not of f(z)",
    "The chapter's plots (and this function) show the ACTIVATIONS, h = f(h_prev W^T), after the "
    "nonlinearity: for tanh they saturate at +-1, for ReLU half are 0. Compute mean and std after f.",
    wrong=lambda case: _preactivation(case) if case.inputs["nonlinearity"] != "linear" else {},
    explains=("means", "stds"))

def _lsuv(case, power=1.0, sequential=True):
    W = case.inputs["W"].astype(np.float64).copy()
    f = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0), "linear": lambda z: z}[case.inputs["nonlinearity"]]
    h = h_original = case.inputs["X"].astype(np.float64)
    for layer in range(W.shape[0]):
        source = h if sequential else h_original
        for _ in range(case.inputs["max_iter"]):
            std = f(source @ W[layer].T).std()
            if abs(std - 1.0) < case.inputs["tol"]:
                break
            W[layer] = W[layer] / std ** power
        h = f(h @ W[layer].T)
        h_original = f(h_original @ case.inputs["W"][layer].T)
    return {"lsuv": W}


LSUV_VARIANCE = Mistake(
    "init.lsuv_by_variance", "the weight divided by the variance instead of the standard deviation",
    "Dividing W by c divides the layer's outputs by c (before the nonlinearity), so their standard "
    "deviation by c: to bring it to 1, divide by the standard deviation itself, not by the variance "
    "(Mishkin and Matas write sqrt(Var)).",
    wrong=lambda case: _lsuv(case, power=2.0), explains=("lsuv",))

LSUV_NOT_SEQUENTIAL = Mistake(
    "init.lsuv_not_sequential", "each layer measured on the input of the un-rescaled network",
    "LSUV is layer-SEQUENTIAL: layer l's statistics are measured on the batch after it has gone through "
    "layers 1..l-1 with their NEW (rescaled) weights. Update h with the rescaled weight before moving on.",
    wrong=lambda case: _lsuv(case, sequential=False), explains=("lsuv",))


def make_lsuv(spec, rng):
    L, H = spec.shape
    p = dict(spec.params)
    q, r = np.linalg.qr(rng.standard_normal((L, H, H)))
    W = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :] * p.pop("scale", 1.0)
    X = rng.standard_normal((p.pop("N", 64), H))
    inputs = {"W": W, "X": X, "nonlinearity": p["f"], "tol": p.get("tol", 0.01), "max_iter": p.get("max_iter", 10)}
    label = (f"W {W.shape} orthogonal x {spec.params.get('scale', 1.0)}, X {X.shape} unit Gaussian, "
             f"nonlinearity={p['f']!r}, tol={inputs['tol']}, max_iter={inputs['max_iter']}")
    return Case(label, inputs, tags=frozenset({"lsuv"}))


KAIMING_MISTAKES = [FANS_SWAPPED, RF_FORGOTTEN, MODE_IGNORED, HE_WITHOUT_2, HE_2_ON_STD, LEAKY_IGNORES_A]


# ---------------------------------------------------------------- the table

GAIN_SPECS = [spec(nonlinearity=n) for n in ("linear", "conv2d", "sigmoid", "tanh", "relu", "selu")] + [
    spec(nonlinearity="leaky_relu"), spec(nonlinearity="leaky_relu", param=0.2),
    spec(nonlinearity="softmax"),
    *hidden(spec(nonlinearity="conv1d"), spec(nonlinearity="conv3d"), spec(nonlinearity="conv_transpose2d"),
            spec(nonlinearity="tanh", param=3.0), spec(nonlinearity="leaky_relu", param=0),
            spec(nonlinearity="leaky_relu", param=1), spec(nonlinearity="leaky_relu", param=0.5),
            spec(nonlinearity="leaky_relu", param=True), spec(nonlinearity="leaky_relu", param="0.1"),
            spec(nonlinearity="Tanh"))]

FAN_SPECS = [spec((3, 5)), spec((10, 4)), spec((8, 3, 3, 3)), spec((4, 2, 5)), spec((5,)),
             *hidden(spec((6, 6)), spec((2, 3, 2, 3, 4)), spec((1, 7)), spec((64, 3, 7, 7)), spec(()),
                     spec((16, 1, 1, 1)))]

XAVIER_SPECS = [spec((60, 150)), spec((32, 16, 3, 3), gain=5.0 / 3), spec((100, 50), gain=1.0),
                *hidden(spec((150, 60), gain=2.0), spec((16, 8, 5, 5)), spec((20, 10, 7)), spec((400, 30)))]

KAIMING_SPECS = [spec((60, 150)), spec((150, 60), nonlinearity="relu", mode="fan_out"),
                 spec((32, 16, 3, 3), nonlinearity="relu"), spec((60, 150), a=0.5),
                 spec((100, 50), nonlinearity="tanh"),
                 *hidden(spec((256, 40), a=1.0, mode="fan_out"), spec((16, 8, 5, 5)),
                         spec((50, 200), nonlinearity="linear"), spec((64, 3, 7, 7), nonlinearity="relu", mode="fan_out"),
                         spec((90, 90), nonlinearity="selu"))]

ORTHOGONAL_SPECS = [spec((100, 100)), spec((60, 150)), spec((150, 60)), spec((16, 8, 3, 3)), spec((64, 64), gain=2.0),
                    *hidden(spec((80, 80), gain=1.5), spec((200, 30)), spec((12, 4, 5)), spec((120, 120)))]

LAYER_SPECS = [spec((50, 40), sizes=(40, 40, 40), init={"std": 0.01}, f="tanh", seed=1),
               spec((50, 40), sizes=(40, 30, 20), init={"gain": 1.0}, f="tanh", seed=2),
               spec((30, 20), sizes=(60, 60, 60, 10), init={"gain": math.sqrt(2.0)}, f="relu", seed=3),
               *hidden(spec((20, 10), sizes=(10,), init={"std": 1.0}, f="tanh", seed=4),
                       spec((40, 25), sizes=(50, 50, 50, 50, 50), init={"gain": 1.0}, f="relu", seed=5),
                       spec((10, 5), sizes=(7, 3), init={"gain": 1.0}, f="linear", seed=6))]

LSUV_SPECS = [spec((4, 20), f="relu", scale=0.3), spec((5, 16), f="tanh", scale=2.0),
              spec((3, 12), f="tanh", scale=0.2, max_iter=2),
              *hidden(spec((6, 32), f="relu", scale=3.0, tol=0.05), spec((2, 8), f="linear", scale=0.5),
                      spec((4, 24), f="tanh", scale=1.5, tol=1e-3, max_iter=20, N=128))]


def _sampler_mistakes(name):
    return ([*KAIMING_MISTAKES] if name.startswith("kaiming") else [RF_FORGOTTEN]) + \
        ([UNIFORM_WITHOUT_SQRT3] if name.endswith("uniform") else []) + [GLOBAL_RNG]


TABLE = [
    Exact("calculate_gain", "calculate_gain", GAIN_SPECS, make_gain, [LEAKY_IGNORES_A]),
    Exact("fan_in_and_fan_out", "fan_in_and_fan_out", FAN_SPECS, make_fans, [FANS_SWAPPED, RF_FORGOTTEN],
          kind="ints"),
    *(Sampler(name, name, XAVIER_SPECS if name.startswith("xavier") else KAIMING_SPECS, make_sampler(name),
              _sampler_mistakes(name), law_kind=name.split("_")[1]) for name in SAMPLERS),
    Sampler("orthogonal", "orthogonal", ORTHOGONAL_SPECS, make_sampler("orthogonal"), [GLOBAL_RNG, ORTHOGONAL_NO_SIGN],
            law_kind="orthogonal"),
    Transform("layer_statistics", "layer_statistics", LAYER_SPECS, make_layers, [PREACTIVATION],
              outputs=("means", "stds")),
    Transform("lsuv_init", "lsuv_init", LSUV_SPECS, make_lsuv, [LSUV_VARIANCE, LSUV_NOT_SEQUENTIAL],
              outputs=("lsuv",), labels=("W",)),
]

# ---------------------------------------------------------------- capstone: a deep net with your initialisers
#
# Two 10-layer nets of 32 units on 500 standardised digits: tanh with your xavier_normal (gain
# calculate_gain("tanh")), ReLU with your kaiming_normal (nonlinearity "relu"), and the tanh net
# with N(0, 0.01^2) weights (the provided baseline). The hidden weights are drawn in order with
# np.random.default_rng(0) and rounded to float32 (so that the record stays small); the output
# layer (10 x 32) is provided. Measured: the std of every hidden layer's activations at
# initialisation, and the loss over 40 full-batch SGD steps (learning rate 0.2). The grader tests
# your weights against torch.nn.init's laws (as the samplers' checks do), then re-runs the nets from
# them (the provided numpy training, in the grader).

DEEP = {"depth": 10, "width": 32, "examples": 500, "steps": 40, "lr": 0.2}
DEEP_NETS = ("tanh, xavier_normal", "relu, kaiming_normal", "tanh, N(0, 0.01^2)")


def _deep_shapes():
    d, w = DEEP["depth"], DEEP["width"]
    return [(w, 64)] + [(w, w)] * (d - 1)


def _deep_weights(functions, state):
    """{net: (depth, ...) hidden weights}: your initialisers' (rounded to float32) and the baseline's."""
    rng = np.random.default_rng(0)
    drawn = {"tanh": [], "relu": []}
    state["where"] = 'calculate_gain("tanh")'
    gain = capstone.as_float(functions["calculate_gain"]("tanh"), "calculate_gain")
    for shape in _deep_shapes():
        state["where"] = f"xavier_normal({shape}, rng, gain={gain:.4g})"
        drawn["tanh"].append(capstone.as_array(functions["xavier_normal"](shape, rng, gain), "xavier_normal", shape))
        state["where"] = f'kaiming_normal({shape}, rng, nonlinearity="relu")'
        drawn["relu"].append(capstone.as_array(functions["kaiming_normal"](shape, rng, 0.0, "fan_in", "relu"),
                                               "kaiming_normal", shape))
    return {name: [W.astype(np.float32).astype(np.float64) for W in Ws] for name, Ws in drawn.items()}


def _flat(weights):
    return np.concatenate([W.ravel() for W in weights])


def _unflat(flat):
    out, start = [], 0
    for shape in _deep_shapes():
        size = shape[0] * shape[1]
        out.append(flat[start:start + size].reshape(shape))
        start += size
    return out


def _deep_nets(hidden_weights, layer_pairs, state):
    """(per-layer activation std at init (3, depth), losses (3, steps)) of the three nets."""
    X, y, _, _ = capstone.digits_split(DEEP["examples"], 0)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)
    baseline = [np.random.default_rng(2).standard_normal(shape) * 0.01 for shape in _deep_shapes()]
    stds, losses = [], []
    for net_name, weights, (act, pair_) in zip(DEEP_NETS, [hidden_weights["tanh"], hidden_weights["relu"], baseline],
                                               [("tanh", layer_pairs["tanh"]), ("relu", layer_pairs["relu"]),
                                                ("tanh", layer_pairs["tanh"])]):
        output = np.random.default_rng(1).standard_normal((10, DEEP["width"])) / np.sqrt(DEEP["width"])
        layers = [capstone.Activation(*pair_, act) for _ in weights]
        net = capstone.MLP([(W, np.zeros(W.shape[0])) for W in weights] + [(output, np.zeros(10))], layers, state)
        state["where"] = f"the net {net_name}"
        _, caches, pre = net.forward(X, keep=True)
        stds.append([np.std(h) for h, _ in caches[1:]])  # the input of layer i + 1 is layer i's activation
        losses.append([net.sgd_step(X, y, DEEP["lr"]) for _ in range(DEEP["steps"])])
    return np.array(stds), np.array(losses)


def _numpy_pair(name):
    if name == "tanh":
        return (lambda z: (np.tanh(z), np.tanh(z))), (lambda d, out: d * (1 - out ** 2))
    return (lambda z: (np.maximum(z, 0), z)), (lambda d, z: d * (z > 0))


def deep_net_run(functions, state):
    weights = _deep_weights(functions, state)
    stds, losses = _deep_nets(weights, {"tanh": _numpy_pair("tanh"), "relu": _numpy_pair("relu")}, state)
    return {"tanh_weights": _flat(weights["tanh"]).astype(np.float32),
            "relu_weights": _flat(weights["relu"]).astype(np.float32), "activation_std": stds, "losses": losses}


def deep_net_reference(found):
    """The same nets re-run in the grader from the student's recorded weights (the provided numpy
    training: the student wrote no layer here, only the weights, which ``deep_net_law`` judges; numpy
    is 15 times faster than torch's autograd on these 32-unit layers, 1.2 s against 18 s measured)."""
    weights = {name: _unflat(np.asarray(found[f"{name}_weights"], dtype=np.float64)) for name in ("tanh", "relu")}
    stds, losses = _deep_nets(weights, {"tanh": _numpy_pair("tanh"), "relu": _numpy_pair("relu")}, {})
    return {"tanh_weights": found["tanh_weights"], "relu_weights": found["relu_weights"],
            "activation_std": stds, "losses": losses}


def deep_net_law(found):
    """Failures of the recorded weights against torch.nn.init's laws (the samplers' tests)."""
    from . import reference
    from ..sampling import describe_law, law_tests
    failures = []
    for name, key, law_of in (("xavier_normal", "tanh_weights",
                               lambda s: reference.law("xavier_normal", s, gain=reference.calculate_gain("tanh"))),
                              ("kaiming_normal", "relu_weights",
                               lambda s: reference.law("kaiming_normal", s, nonlinearity="relu"))):
        flat = found.get(key)
        if not isinstance(flat, np.ndarray) or flat.shape != (sum(a * b for a, b in _deep_shapes()),):
            return [f"  the record of {name}'s weights is unreadable"]
        for layer, (W, shape) in enumerate(zip(_unflat(flat.astype(np.float64)), _deep_shapes())):
            law = law_of(shape)
            bad = [what for ok, what in law_tests(W, law).values() if not ok]
            if bad:
                failures.append(f"  {name}, hidden layer {layer + 1} {shape}: expected {describe_law(law)}; {bad[0]}")
                break
    return failures


def _std_ratio(net):
    return lambda found: float(found["activation_std"][net, -1] / found["activation_std"][net, 0])


INIT_ADVICE = ("the std of a layer's activations stays put when Var(w) = gain^2 / fan (xavier: 2 / (fan_in + "
               "fan_out); kaiming: 1 / fan_in with gain sqrt(2) for ReLU): make the checks of calculate_gain, "
               "fan_in_and_fan_out, xavier_normal and kaiming_normal pass.")
CAPSTONE = capstone.Capstone(
    "capstone_deep_net", ("xavier_normal", "kaiming_normal", "calculate_gain"), deep_net_run, deep_net_reference,
    [capstone.Outcome("tanh + your xavier_normal: activation std, layer 10 / layer 1", _std_ratio(0),
                      at_least=0.4, at_most=2.5, fmt="{:.2f}", advice=INIT_ADVICE),
     capstone.Outcome("ReLU + your kaiming_normal: activation std, layer 10 / layer 1", _std_ratio(1),
                      at_least=0.4, at_most=2.5, fmt="{:.2f}", advice=INIT_ADVICE),
     capstone.Outcome("tanh + N(0, 0.01^2) (provided): activation std, layer 10 / layer 1", _std_ratio(2),
                      at_most=1e-6, fmt="{:.1e}", advice="this run is the provided code alone: tell your instructor."),
     capstone.Outcome(f"tanh + your xavier_normal: loss after {DEEP['steps']} steps",
                      lambda f: float(f["losses"][0, -1]), at_most=1.6, fmt="{:.2f}", advice=INIT_ADVICE),
     capstone.Outcome(f"ReLU + your kaiming_normal: loss after {DEEP['steps']} steps",
                      lambda f: float(f["losses"][1, -1]), at_most=1.6, fmt="{:.2f}", advice=INIT_ADVICE),
     capstone.Outcome(f"tanh + N(0, 0.01^2): loss after {DEEP['steps']} steps (does not train; ln 10 = 2.30)",
                      lambda f: float(f["losses"][2, -1]), at_least=2.2, fmt="{:.2f}",
                      advice="this run is the provided code alone: tell your instructor.")],
    rtol={"tanh_weights": 0.0, "relu_weights": 0.0, "activation_std": 1e-6, "losses": 1e-6},
    atol={"tanh_weights": 0.0, "relu_weights": 0.0, "activation_std": 1e-12, "losses": 1e-9},
    law=deep_net_law,
    labels={"activation_std": "net {0} (1 tanh + xavier, 2 ReLU + kaiming, 3 tanh + 0.01): the std of layer {1}",
            "losses": "net {0} (1 tanh + xavier, 2 ReLU + kaiming, 3 tanh + 0.01): the loss at step {1}"},
    summary="your initialisers keep a 10-layer net's signal alive and let it train; std 0.01 does not")
TABLE.append(CAPSTONE)

CHECKS = build(__name__, TABLE)
globals().update(CHECKS)  # checks.calculate_gain, checks.xavier_uniform, ...
__all__ = sorted(CHECKS)
