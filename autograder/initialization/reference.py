"""Reference implementations for chapter 3 (weight initialisation): torch.nn.init, float64.

Only imported by the grader and the tests, never in a student's kernel. Two kinds of
function:

- the deterministic ones, ``calculate_gain`` and ``fan_in_and_fan_out``, return exactly what
  torch returns (or raise what torch raises);
- the samplers (``xavier_uniform``, ..., ``orthogonal``) draw with torch.nn.init from a torch
  generator seeded by the numpy ``rng`` they are given. Checks never compare a student's
  random numbers with these: they compare distributions with the *law* torch draws from,
  which :func:`law` returns (``("uniform", bound)``, ``("normal", std)`` or
  ``("orthogonal", gain)``), computed with torch's own fan rule and gain.

Conventions (torch's): a Linear weight is ``(out_features, in_features)``, a conv weight
``(C_out, C_in, *kernel)``; fan_in = C_in * receptive field, fan_out = C_out * receptive
field, receptive field = the product of the kernel's sizes (1 for Linear). The derivations
(forward and backward conditions, Glorot's compromise, He's factor 2, gains, fans of
convolutions) are in book/initialization/derivations.md.
"""
import copy
import math

import numpy as np
import torch
from torch.nn import init as tinit


def calculate_gain(nonlinearity, param=None):
    """``torch.nn.init.calculate_gain``: the factor by which a nonlinearity changes the
    variance's square root (1 for linear/conv/sigmoid, 5/3 for tanh, sqrt(2) for relu,
    sqrt(2 / (1 + a^2)) for leaky_relu with slope ``param`` (default 0.01), 3/4 for selu).
    Raises ValueError for an unknown nonlinearity or an invalid slope, as torch.
    Explained in book/initialization/derivations.md (He's factor 2, gains in torch)."""
    return float(tinit.calculate_gain(nonlinearity, param))


def fan_in_and_fan_out(shape):
    """torch's fan rule for a weight of ``shape``: Linear ``(out, in)`` -> (in, out);
    conv ``(C_out, C_in, k1, ..., kd)`` -> (C_in * k1...kd, C_out * k1...kd).
    Raises ValueError for fewer than 2 dimensions, as torch. Returns a tuple of 2 ints.
    Explained in book/initialization/derivations.md (fans of convolutions)."""
    fan_in, fan_out = tinit._calculate_fan_in_and_fan_out(torch.empty(tuple(shape)))
    return int(fan_in), int(fan_out)


def _fan(shape, mode):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    return fan_in if mode == "fan_in" else fan_out


def law(name, shape, gain=1.0, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """The law torch.nn.init's ``<name>_`` draws from for a weight of ``shape``:
    ``("uniform", bound)`` (U(-bound, bound)), ``("normal", std)`` (N(0, std^2)) or
    ``("orthogonal", gain)``; bound = sqrt(3) * std, where

    - xavier: std = gain * sqrt(2 / (fan_in + fan_out))   (Glorot and Bengio, 2010)
    - kaiming: std = calculate_gain(nonlinearity, a) / sqrt(fan)  (He et al., 2015),
      fan = fan_in or fan_out by ``mode``.

    Explained in book/initialization/derivations.md.
    """
    if name == "orthogonal":
        return ("orthogonal", float(gain))
    if name.startswith("xavier"):
        fan_in, fan_out = fan_in_and_fan_out(shape)
        std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    else:
        std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return ("uniform", math.sqrt(3.0) * std) if name.endswith("uniform") else ("normal", std)


def _generator(rng):
    return torch.Generator().manual_seed(int(copy.deepcopy(rng).integers(2 ** 62)))


def _draw(fill, shape, rng, **kwargs):
    tensor = torch.empty(tuple(shape), dtype=torch.float64)
    fill(tensor, generator=_generator(rng), **kwargs)
    return tensor.numpy()


def xavier_uniform(shape, rng, gain=1.0):
    """A sample of ``torch.nn.init.xavier_uniform_``: shape ``shape``, float64."""
    return _draw(tinit.xavier_uniform_, shape, rng, gain=gain)


def xavier_normal(shape, rng, gain=1.0):
    """A sample of ``torch.nn.init.xavier_normal_``: shape ``shape``, float64."""
    return _draw(tinit.xavier_normal_, shape, rng, gain=gain)


def kaiming_uniform(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """A sample of ``torch.nn.init.kaiming_uniform_`` (torch's defaults): shape ``shape``, float64."""
    return _draw(tinit.kaiming_uniform_, shape, rng, a=a, mode=mode, nonlinearity=nonlinearity)


def kaiming_normal(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """A sample of ``torch.nn.init.kaiming_normal_`` (torch's defaults): shape ``shape``, float64."""
    return _draw(tinit.kaiming_normal_, shape, rng, a=a, mode=mode, nonlinearity=nonlinearity)


def orthogonal(shape, rng, gain=1.0):
    """A sample of ``torch.nn.init.orthogonal_`` (Saxe et al., 2014): the weight flattened to
    (shape[0], rest) has orthonormal rows or columns (whichever the shape allows), times gain."""
    return _draw(tinit.orthogonal_, shape, rng, gain=gain)


_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda z: z}


def layer_statistics(X, layer_sizes, init, nonlinearity, rng):
    """Per-layer mean and standard deviation of the activations of a bias-free MLP.

    X: (N, D). For each size H in ``layer_sizes``, in order: W = init((H, fan_in), rng)
    (torch's layout (out, in): fan_in is the previous layer's width), h = f(h @ W.T) with f
    the ``nonlinearity`` ("tanh", "relu" or "linear"). Returns a tuple of means (L,) and
    stds (L,), each over all N * H activations of the layer (population std, ddof=0).
    The forward pass runs in torch float64; ``rng`` is copied, never advanced.
    The experiment it measures is in book/initialization/experiments.md.
    """
    rng = copy.deepcopy(rng)
    h = torch.tensor(np.asarray(X, dtype=np.float64))
    f = _ACTIVATIONS[nonlinearity]
    means, stds = [], []
    for size in layer_sizes:
        W = torch.tensor(np.asarray(init((int(size), h.shape[1]), rng), dtype=np.float64))
        h = f(h @ W.T)
        means.append(float(h.mean()))
        stds.append(float(h.std(correction=0)))
    return np.array(means), np.array(stds)


def lsuv_init(W, X, nonlinearity, tol=0.01, max_iter=10):
    """Layer-sequential unit variance (Mishkin and Matas, 2016) on a stack of square weights.

    W: (L, H, H), layer l's weight in torch's layout (out, in); X: (N, H) a batch.
    Layer by layer from the input: up to ``max_iter`` times, compute the std (ddof=0) of the
    layer's activations f(h @ W[l].T) on the batch; stop if it is within ``tol`` of 1, else
    divide W[l] by it. Then h = f(h @ W[l].T) with the rescaled weight. Returns the rescaled
    stack (L, H, H), a new array. Explained in book/initialization/orthogonal-and-beyond.md.
    """
    f = _ACTIVATIONS[nonlinearity]
    W = torch.tensor(np.asarray(W, dtype=np.float64)).clone()
    h = torch.tensor(np.asarray(X, dtype=np.float64))
    for layer in range(W.shape[0]):
        for _ in range(max_iter):
            std = f(h @ W[layer].T).std(correction=0)
            if abs(float(std) - 1.0) < tol:
                break
            W[layer] = W[layer] / std
        h = f(h @ W[layer].T)
    return W.numpy()
