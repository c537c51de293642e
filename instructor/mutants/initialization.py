"""The chapter-3 mistakes of issue 9, as wrong implementations (see autograder.mutants).

The solution's samplers call its ``fan_in_and_fan_out`` and ``calculate_gain``, as torch's do: a
mutant of those fails their own test cells and the samplers' cells that depend on them (``layers``),
each naming the same mistake.
"""
import dataclasses

from autograder.mutants import Mutant

KAIMING = ("kaiming_uniform", "kaiming_normal")

MUTANTS = [
    Mutant("fans_swapped", "fan_in_and_fan_out", ("fan_in_and_fan_out", *KAIMING), '''
def fan_in_and_fan_out(shape):
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError("fewer than 2 dimensions")
    rf = int(np.prod(shape[2:]))
    return shape[0] * rf, shape[1] * rf                 # (out, in): swapped
''', ("init.fans_swapped",)),
    Mutant("receptive_field_forgotten", "fan_in_and_fan_out",
           ("fan_in_and_fan_out", "xavier_uniform", "xavier_normal", *KAIMING), '''
def fan_in_and_fan_out(shape):
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError("fewer than 2 dimensions")
    return shape[1], shape[0]
''', ("init.receptive_field_forgotten",)),
    Mutant("leaky_gain_ignores_a", "calculate_gain", ("calculate_gain", *KAIMING), '''
_right_gain = calculate_gain
def calculate_gain(nonlinearity, param=None):
    if nonlinearity == "leaky_relu":
        return float(np.sqrt(2.0 / (1 + 0.01 ** 2)))     # the default slope, whatever param says
    return _right_gain(nonlinearity, param)
''', ("init.leaky_gain_ignores_a",)),
    Mutant("he_without_2", "kaiming_normal", ("kaiming_normal",), '''
def kaiming_normal(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return rng.normal(0.0, np.sqrt(1.0 / fan), size=shape)
''', ("init.he_without_2",)),
    Mutant("he_2_on_std", "kaiming_uniform", ("kaiming_uniform",), '''
def kaiming_uniform(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    std = calculate_gain(nonlinearity, a) ** 2 / np.sqrt(fan)      # 2 / sqrt(fan) for ReLU
    return rng.uniform(-np.sqrt(3.0) * std, np.sqrt(3.0) * std, size=shape)
''', ("init.he_2_on_std",)),
    Mutant("mode_ignored", "kaiming_normal", ("kaiming_normal",), '''
def kaiming_normal(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return rng.normal(0.0, calculate_gain(nonlinearity, a) / np.sqrt(fan_in), size=shape)
''', ("init.mode_ignored",)),
    Mutant("uniform_without_sqrt3", "xavier_uniform", ("xavier_uniform",), '''
def xavier_uniform(shape, rng, gain=1.0):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    bound = gain * np.sqrt(2.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)
''', ("init.uniform_without_sqrt3",)),
    Mutant("global_rng", "xavier_normal", ("xavier_normal",), '''
def xavier_normal(shape, rng, gain=1.0):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    return np.random.normal(0.0, gain * np.sqrt(2.0 / (fan_in + fan_out)), size=shape)
''', ("init.global_rng",)),
    Mutant("orthogonal_no_sign_fix", "orthogonal", ("orthogonal",), '''
def orthogonal(shape, rng, gain=1.0):
    rows, cols = shape[0], int(np.prod(shape[1:]))
    q, r = np.linalg.qr(rng.standard_normal((max(rows, cols), min(rows, cols))))
    return gain * (q.T if rows < cols else q).reshape(shape)
''', ("init.orthogonal_no_sign_fix",)),
    Mutant("preactivation_statistics", "layer_statistics", ("layer_statistics",), '''
def layer_statistics(X, layer_sizes, init, nonlinearity, rng):
    f = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z}[nonlinearity]
    h, means, stds = X, [], []
    for size in layer_sizes:
        z = h @ init((size, h.shape[1]), rng).T
        means.append(z.mean())
        stds.append(z.std())
        h = f(z)
    return np.array(means), np.array(stds)
''', ("init.preactivation_statistics",)),
    Mutant("lsuv_by_variance", "lsuv_init", ("lsuv_init",), '''
def lsuv_init(W, X, nonlinearity, tol=0.01, max_iter=10):
    f = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z}[nonlinearity]
    out, h = W.copy(), X
    for layer in range(out.shape[0]):
        for _ in range(max_iter):
            var = f(h @ out[layer].T).var()
            if abs(np.sqrt(var) - 1.0) < tol:
                break
            out[layer] = out[layer] / var
        h = f(h @ out[layer].T)
    return out
''', ("init.lsuv_by_variance",)),
    Mutant("lsuv_not_sequential", "lsuv_init", ("lsuv_init",), '''
def lsuv_init(W, X, nonlinearity, tol=0.01, max_iter=10):
    f = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z}[nonlinearity]
    out, h = W.copy(), X
    for layer in range(out.shape[0]):
        for _ in range(max_iter):
            std = f(h @ out[layer].T).std()
            if abs(std - 1.0) < tol:
                break
            out[layer] = out[layer] / std
        h = f(h @ W[layer].T)                    # the original weight: not sequential
    return out
''', ("init.lsuv_not_sequential",)),
]

# The mutants that fail the capstone too (the deep nets of autograder/initialization/checks.py),
# measured: the capstone draws with xavier_normal and kaiming_normal (the layers are square but for
# the first, 32 x 64); the grader tests those weights against torch.nn.init's laws.
FAIL_THE_CAPSTONE = {"fans_swapped", "he_without_2"}
MUTANTS = [dataclasses.replace(m, capstones=("capstone_deep_net",)) if m.name in FAIL_THE_CAPSTONE else m
           for m in MUTANTS]
