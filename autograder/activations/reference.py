"""Torch reference implementations for chapter 1 (activation functions).

Every function takes and returns float64 tensors. Where torch has the function we
call it (``torch.sigmoid``, ``F.relu``, ``F.prelu``, ...); maxout and the two
diagnostics are built from torch primitives and tested against properties and a
numerical gradient in ``tests/test_activations_reference.py``.
"""
import torch
import torch.nn.functional as F


def sigmoid(x):
    """Explained in book/activations/saturating.md."""
    return torch.sigmoid(x)


def tanh(x):
    """Explained in book/activations/saturating.md."""
    return torch.tanh(x)


def relu(x):
    """Explained in book/activations/relu-family.md. Gradient at exactly 0 is 0."""
    return F.relu(x)


def leaky_relu(x, negative_slope=0.01):
    """Explained in book/activations/relu-family.md."""
    return F.leaky_relu(x, negative_slope)


def prelu(x, alpha):
    """PReLU with one slope per channel (axis 1), like ``torch.nn.PReLU(num_parameters=C)``.

    x: (N, C) or (N, C, H, W); alpha: (C,) or (1,) for one shared slope.
    Explained in book/activations/relu-family.md.
    """
    return F.prelu(x, alpha)


def elu(x, alpha=1.0):
    """Explained in book/activations/relu-family.md."""
    return F.elu(x, alpha)


def maxout(x, W, b):
    """Maxout with K linear pieces: out = max_j (x W_j^T + b_j).

    x: (N, D); W: (K, M, D) (each W_j in torch's Linear layout); b: (K, M).
    Returns out: (N, M). The gradient goes to the FIRST maximal piece on ties
    (``torch.argmax`` returns the first maximal index), like ``np.argmax``.
    Explained in book/activations/maxout-gelu-silu.md.
    """
    z = torch.einsum("nd,kmd->nkm", x, W) + b.unsqueeze(0)  # (N, K, M)
    best = torch.argmax(z, dim=1, keepdim=True)
    return z.gather(1, best).squeeze(1)


def gelu(x):
    """Exact GELU, x * Phi(x) with the erf form (``F.gelu(approximate='none')``).

    Explained in book/activations/maxout-gelu-silu.md.
    """
    return F.gelu(x)


def silu(x):
    """SiLU (swish), x * sigmoid(x). Explained in book/activations/maxout-gelu-silu.md."""
    return F.silu(x)


def saturation_fraction(h, threshold=0.99):
    """Fraction of the entries of tanh activations h with |h| > threshold.

    Explained in book/activations/experiments.md.
    """
    return (h.abs() > threshold).double().mean()


def dead_unit_fraction(pre_activations):
    """Fraction of ReLU units (columns of an (N, D) batch of pre-activations) that
    are not positive for any example: their output and gradient are 0 on the batch.

    Explained in book/activations/experiments.md.
    """
    return (pre_activations <= 0).all(dim=0).double().mean()


# ---------------------------------------------------------------- for the diagnosed mistakes
# The grader computes what a mistaken backward pass returns with torch.autograd, so that the
# package students install holds no numpy code of a graded backward pass.


def prelu_dalpha(x, alpha, dout):
    """torch.autograd's dL/dalpha of PReLU for the upstream gradient ``dout`` (shape of alpha)."""
    alpha = alpha.detach().clone().requires_grad_(True)
    (F.prelu(x, alpha) * dout).sum().backward()
    return alpha.grad


def maxout_grads_to_every_tied_piece(x, W, b, dout):
    """(dx, dW, db) of maxout when dout goes to EVERY piece equal to the maximum (a mistake:
    the output is one piece). Autograd through sum_j [z_j == max] z_j with the mask held fixed."""
    x, W, b = (t.detach().clone().requires_grad_(True) for t in (x, W, b))
    z = torch.einsum("nd,kmd->nkm", x, W) + b.unsqueeze(0)
    tied = (z == z.max(dim=1, keepdim=True).values).to(z.dtype).detach()
    ((z * tied).sum(dim=1) * dout).sum().backward()
    return x.grad, W.grad, b.grad
