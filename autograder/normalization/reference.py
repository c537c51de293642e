"""Torch reference implementations for chapter 4 (normalisation layers).

Every function takes float64 tensors (parameter dicts such as ``bn_param`` hold numpy
arrays and numbers, and are never modified), except ``unit_vector_jacobian`` (a numpy array
in and out, as the checks' function rows expect). Where torch has the layer we call it:
``F.batch_norm`` (which also updates the running statistics), ``F.layer_norm``,
``F.group_norm``, ``F.instance_norm`` and ``torch.nn.utils.parametrizations.weight_norm``
on a ``torch.nn.Linear``; the Jacobian of u -> u / ||u|| (the key step of weight norm's and
cosine norm's backward passes) is autograd's Jacobian of ``F.normalize``. Torch has no cosine
normalisation: ``cosinenorm`` is built from torch primitives. The parts built here (cosine
norm, the weight-norm wrapper, the running-statistics update, the row-by-row Jacobian) are
tested against properties, formulas and numerical gradients in
``tests/test_normalization_reference.py``.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.nn.utils.parametrizations import weight_norm

EPS = 1e-5       # torch's default eps, inside the square root
MOMENTUM = 0.1   # torch's convention: running = (1 - momentum) * running + momentum * batch_stat


def _tensor(value):
    return torch.tensor(np.asarray(value), dtype=torch.float64)


def batchnorm(x, gamma, beta, bn_param):
    """Batch normalisation, train or test mode, as ``torch.nn.BatchNorm1d/2d``.

    x: (N, D) or (N, C, H, W) (statistics per feature / per channel, over N or N*H*W);
    gamma, beta: (D,) or (C,); bn_param: {'mode': 'train' | 'test', optional 'eps' (1e-5),
    'momentum' (0.1), 'running_mean' (zeros), 'running_var' (ones)}.

    Returns (out, running_mean, running_var), the running statistics as they are after
    the call: in train mode updated with momentum on the NEW statistic, running_var with
    the UNBIASED batch variance (the output is normalised with the biased one); in test
    mode unchanged. ``bn_param`` itself is not modified.
    Explained in book/normalization/batchnorm.md.
    """
    mode = bn_param["mode"]
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    channels = x.shape[1]
    running_mean = _tensor(bn_param.get("running_mean", np.zeros(channels)))
    running_var = _tensor(bn_param.get("running_var", np.ones(channels)))
    out = F.batch_norm(x, running_mean, running_var, gamma, beta, training=mode == "train",
                       momentum=bn_param.get("momentum", MOMENTUM), eps=bn_param.get("eps", EPS))
    return out, running_mean, running_var


def layernorm(x, gamma, beta, ln_param):
    """Layer normalisation of x: (N, D), per sample over its D features, as ``F.layer_norm``.

    gamma, beta: (D,); ln_param: {optional 'eps' (1e-5)}. Explained in book/normalization/other-norms.md.
    """
    return F.layer_norm(x, x.shape[1:], gamma, beta, ln_param.get("eps", EPS))


def groupnorm(x, gamma, beta, G, gn_param):
    """Group normalisation of x: (N, C, H, W) with G groups of C // G consecutive channels.

    Statistics per sample and group (over C // G * H * W values); gamma, beta: (C,),
    one per channel, as ``torch.nn.GroupNorm``. G = C is instance normalisation and is
    computed with ``F.instance_norm`` (so the checks compare it with torch's instance norm);
    G = 1 normalises each sample over (C, H, W). gn_param: {optional 'eps' (1e-5)}.
    Explained in book/normalization/other-norms.md.
    """
    eps = gn_param.get("eps", EPS)
    if G == x.shape[1]:
        return F.instance_norm(x, weight=gamma, bias=beta, eps=eps)
    return F.group_norm(x, G, gamma, beta, eps)


def weightnorm(x, v, g, b):
    """A Linear layer with a weight-normalised weight: out = x W^T + b, W = g * v / ||v||.

    x: (N, in); v: (out, in); g: (out, 1), one gain per output unit (row of v);
    b: (out,). ||v|| is the Euclidean norm of each row. This is
    ``torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(in, out), dim=0)``,
    whose parameters ``original0`` (= g, shape (out, 1)) and ``original1`` (= v) are
    replaced by the given tensors (``torch.func.functional_call``), so gradients flow to them.
    Explained in book/normalization/other-norms.md.
    """
    out_features, in_features = v.shape
    layer = weight_norm(torch.nn.Linear(in_features, out_features, dtype=torch.float64), dim=0)
    params = {"parametrizations.weight.original0": g, "parametrizations.weight.original1": v, "bias": b}
    return functional_call(layer, params, (x,))


def cosinenorm(x, w):
    """Cosine normalisation: out[n, j] = cos(x_n, w_j) = x_n . w_j / (||x_n|| ||w_j||).

    x: (N, D); w: (M, D). Returns out: (N, M), every entry in [-1, 1]. No eps: x and w
    must have no zero rows. Torch has no such layer; built from primitives and tested in
    tests/test_normalization_reference.py. Explained in book/normalization/other-norms.md.
    """
    x_norm = torch.sqrt((x * x).sum(dim=1, keepdim=True))   # (N, 1)
    w_norm = torch.sqrt((w * w).sum(dim=1, keepdim=True))   # (M, 1)
    return (x @ w.T) / (x_norm * w_norm.T)


def unit_vector_jacobian(u):
    """The Jacobian of u -> u / ||u|| for each row of u: J[n] = d(u_n / ||u_n||) / du_n.

    u: (N, D) numpy array, no zero rows (read in float64). Returns a float64 numpy array
    (N, D, D): ``torch.autograd.functional.jacobian`` of ``F.normalize`` at each row. Not
    ``torch.func.vmap(torch.func.jacrev(...))``, which gives the same numbers (tested) but costs
    4-7 s on its first call in a process, once per grading worker. Equal to
    (I - u_hat u_hat^T) / ||u|| (tests/test_normalization_reference.py). Used by weight norm (dv)
    and cosine norm (dx, dw); explained in book/normalization/other-norms.md.
    """
    rows = torch.tensor(np.asarray(u), dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian
    return torch.stack([jacobian(lambda r: F.normalize(r, dim=0), row) for row in rows]).numpy()


def batchnorm_layer():
    """(forward, backward) with the assignment's API (``out, cache = forward(x, gamma, beta,
    bn_param)``, storing the running statistics back into ``bn_param``; ``dx, dgamma, dbeta =
    backward(dout, cache)``), torch's batch norm and autograd inside: the reference layer of the
    capstone's re-run (autograder/normalization/checks.py)."""
    def forward(x, gamma, beta, bn_param):
        tensors = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in (x, gamma, beta)]
        out, running_mean, running_var = batchnorm(*tensors, bn_param)
        bn_param["running_mean"], bn_param["running_var"] = running_mean.numpy(), running_var.numpy()
        return out.detach().numpy().copy(), (tensors, out)

    def backward(dout, cache):
        tensors, out = cache
        return tuple(g.numpy().copy() for g in torch.autograd.grad(out, tensors, torch.tensor(dout)))

    return forward, backward
