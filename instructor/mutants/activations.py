"""The chapter-1 mistakes of the syllabus, and bugs seen in real students' code, as wrong
implementations (see autograder.mutants)."""
from autograder.mutants import Mutant

MUTANTS = [
    Mutant("naive_sigmoid", "sigmoid_forward", ("sigmoid", "silu"),  # silu reuses sigmoid_forward
            '''
def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, out
''', ("sigmoid.naive_overflow",)),
    Mutant("relu_grad_at_zero", "relu_backward", ("relu",), '''
def relu_backward(dout, cache):
    return dout * (cache >= 0)
''', ("relu.grad_at_zero",)),
    # Seen in a real CS231n submission: the mask is built in the cached input itself, which
    # turns the caller's x into zeros and ones; every value returned is right.
    Mutant("relu_backward_rewrites_cache", "relu_backward", ("relu",), '''
def relu_backward(dout, cache):
    mask = cache
    mask[mask <= 0] = 0
    mask[mask > 0] = 1
    return dout * mask
''', ("contract.cache_mutated",)),
    # An integer mask promotes a float32 gradient to float64.
    Mutant("relu_backward_int_mask", "relu_backward", ("relu",), '''
def relu_backward(dout, cache):
    return dout * (cache > 0).astype(int)
''', ("contract.dtype",)),
    # A placeholder left in: the message is about the value returned, not the forward pass.
    Mutant("tanh_backward_returns_zero", "tanh_backward", ("tanh",), '''
def tanh_backward(dout, cache):
    dx = 0
    return dx
''', (), message="tanh_backward: dx must be a numpy array, got int."),
    Mutant("prelu_dalpha_not_summed", "prelu_backward", ("prelu",), '''
def prelu_backward(dout, cache):
    x, alpha = cache
    a = alpha.reshape((1, -1) + (1,) * (x.ndim - 2))
    dx = np.where(x > 0, dout, a * dout)
    dalpha = np.where(x > 0, 0, x * dout)
    return dx, dalpha
''', ("prelu.dalpha_not_summed",)),
    Mutant("elu_where_both_branches", "elu_forward", ("elu",), '''
def elu_forward(x, alpha=1.0):
    out = np.where(x > 0, x, alpha * (np.exp(x) - 1)).astype(x.dtype)
    return out, (x, alpha)
''', ("elu.where_evaluates_both",)),
    Mutant("maxout_ties", "maxout_backward", ("maxout",), '''
def maxout_forward(x, W, b):
    z = np.einsum("nd,kmd->nkm", x, W) + b[None]
    out = z.max(axis=1)
    return out, (x, W, z, out)


def maxout_backward(dout, cache):
    x, W, z, out = cache
    mask = (z == out[:, None, :]) * dout[:, None, :]   # every tied piece gets dout
    return np.einsum("nkm,kmd->nd", mask, W), np.einsum("nkm,nd->kmd", mask, x), mask.sum(axis=0)
''', ("maxout.ties_to_every_piece",)),
    # The mutants below break a capstone too (autograder/activations/checks.py), and say so.
    Mutant("dead_zero_entries_counted", "dead_unit_fraction", ("dead_unit",), '''
def dead_unit_fraction(pre_activations):
    return float(np.mean(pre_activations <= 0))
''', ("dead_units.zero_entries_counted",), capstones=("capstone_dead_units",)),
    Mutant("leaky_backward_without_slope", "leaky_relu_backward", ("leaky_relu",), '''
def leaky_relu_backward(dout, cache):
    x, negative_slope = cache
    return dout * (x > 0)
''', (), message="leaky_relu_backward: dx is wrong.", capstones=("capstone_dead_units",)),
    Mutant("sigmoid_backward_without_one_minus", "sigmoid_backward", ("sigmoid",), '''
def sigmoid_backward(dout, cache):
    return dout * cache
''', (), message="sigmoid_backward: dx is wrong.", capstones=("capstone_saturation",)),
]
