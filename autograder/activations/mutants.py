"""The chapter-1 mistakes of the syllabus, as wrong implementations (see autograder.mutants)."""
from ..mutants import Mutant

MUTANTS = [
    Mutant("naive_sigmoid", "sigmoid_forward", ("sigmoid", "silu"),  # silu reuses sigmoid_forward
            '''
def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, out
''', "naive 1/(1 + exp(-x)) overflows"),
    Mutant("relu_grad_at_zero", "relu_backward", ("relu",), '''
def relu_backward(dout, cache):
    return dout * (cache >= 0)
''', "gradient of ReLU at exactly 0"),
    Mutant("prelu_dalpha_not_summed", "prelu_backward", ("prelu",), '''
def prelu_backward(dout, cache):
    x, alpha = cache
    a = alpha.reshape((1, -1) + (1,) * (x.ndim - 2))
    dx = np.where(x > 0, dout, a * dout)
    dalpha = np.where(x > 0, 0, x * dout)
    return dx, dalpha
''', "dalpha not summed over the batch"),
    Mutant("maxout_ties", "maxout_backward", ("maxout",), '''
def maxout_forward(x, W, b):
    z = np.einsum("nd,kmd->nkm", x, W) + b[None]
    out = z.max(axis=1)
    return out, (x, W, z, out)


def maxout_backward(dout, cache):
    x, W, z, out = cache
    mask = (z == out[:, None, :]) * dout[:, None, :]   # every tied piece gets dout
    return np.einsum("nkm,kmd->nd", mask, W), np.einsum("nkm,nd->kmd", mask, x), mask.sum(axis=0)
''', "maxout gradient sent to every tied piece"),
]
