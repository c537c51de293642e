"""Tests of the chapter-1 references (``autograder.activations.reference``).

- the references that wrap a torch function (sigmoid, tanh, relu, leaky_relu, prelu, elu,
  gelu, silu) against independent closed-form numpy formulas, value and derivative;
- the gradient conventions at exactly 0, which the checks' diagnoses rely on;
- ``reference.maxout``, built from torch primitives (torch has no maxout): against an explicit
  loop over the pieces, torch.autograd.gradcheck away from ties, first-maximal-piece on ties;
- the two diagnostics on hand-made inputs with known answers.

In the style of micrograd's tests: ours against the formula, float64, forward and backward
checked separately, with an explicit tolerance.
"""
import numpy as np
import pytest
import torch
from scipy.special import erf

from autograder.activations import reference as ref

TOL = 1e-12  # float64: closed forms and torch agree to a few ulps on values of size <= ~20


def _t(array, grad=False):
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def _max_diff(a, b):
    a = a.detach().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max())


def _run(fn, x_np, dout_np, *extra):
    """Forward and autograd backward of ``fn(x, *extra)`` with upstream gradient dout."""
    x = _t(x_np, True)
    out = fn(x, *extra)
    out.backward(_t(dout_np))
    return out.detach().numpy(), x.grad.numpy()


def _sigmoid_np(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- closed forms
#
# name -> (reference call, numpy value f(x), numpy derivative f'(x))

PHI = lambda x: 0.5 * (1.0 + erf(x / np.sqrt(2.0)))          # standard normal cdf
DPHI = lambda x: np.exp(-0.5 * x ** 2) / np.sqrt(2.0 * np.pi)  # standard normal pdf

ELEMENTWISE = {
    "sigmoid": (ref.sigmoid, _sigmoid_np, lambda x: _sigmoid_np(x) * (1.0 - _sigmoid_np(x))),
    "tanh": (ref.tanh, lambda x: (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x)),
             lambda x: 4.0 / (np.exp(x) + np.exp(-x)) ** 2),  # 1 - tanh^2 = sech^2
    "relu": (ref.relu, lambda x: np.where(x > 0, x, 0.0), lambda x: np.where(x > 0, 1.0, 0.0)),
    "leaky_relu(0.2)": (lambda x: ref.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
                        lambda x: np.where(x > 0, 1.0, 0.2)),
    "elu(0.5)": (lambda x: ref.elu(x, 0.5), lambda x: np.where(x > 0, x, 0.5 * (np.exp(x) - 1.0)),
                 lambda x: np.where(x > 0, 1.0, 0.5 * np.exp(x))),
    "gelu": (ref.gelu, lambda x: x * PHI(x), lambda x: PHI(x) + x * DPHI(x)),
    "silu": (ref.silu, lambda x: x * _sigmoid_np(x),
             lambda x: _sigmoid_np(x) * (1.0 + x * (1.0 - _sigmoid_np(x)))),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_against_closed_form(name):
    fn, value, derivative = ELEMENTWISE[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    x_np = 3.0 * rng.standard_normal((6, 7))
    dout_np = rng.standard_normal((6, 7))  # random upstream gradient, never all ones
    out, dx = _run(fn, x_np, dout_np)

    # forward pass went well
    assert out.shape == x_np.shape and out.dtype == np.float64
    assert _max_diff(out, value(x_np)) < TOL
    # backward pass went well: dx = dout * f'(x)
    assert _max_diff(dx, dout_np * derivative(x_np)) < TOL


def test_leaky_relu_default_slope_is_001():
    x_np = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    out, dx = _run(ref.leaky_relu, x_np, np.ones(5))
    assert _max_diff(out, [-0.02, -0.005, 0.0, 0.5, 2.0]) < TOL
    assert _max_diff(dx, [0.01, 0.01, 0.01, 1.0, 1.0]) < TOL


def test_elu_default_alpha_is_1():
    x_np = np.array([-2.0, 0.0, 3.0])
    out, _ = _run(ref.elu, x_np, np.ones(3))
    assert _max_diff(out, [np.exp(-2.0) - 1.0, 0.0, 3.0]) < TOL


def test_saturating_references_are_finite_and_exact_at_1000():
    """The checks feed +-1000 to sigmoid, silu, elu and gelu: the references must not overflow."""
    x_np = np.array([-1000.0, 1000.0])
    for fn, expected in ((ref.sigmoid, [0.0, 1.0]), (ref.tanh, [-1.0, 1.0]), (ref.silu, [0.0, 1000.0]),
                         (lambda x: ref.elu(x, 0.5), [-0.5, 1000.0]), (ref.gelu, [0.0, 1000.0])):
        out, dx = _run(fn, x_np, np.ones(2))
        assert np.isfinite(out).all() and np.isfinite(dx).all()
        assert _max_diff(out, expected) < TOL


# ---------------------------------------------------------------- prelu


def _prelu_np(x, alpha, dout):
    a = alpha.reshape((1, -1) + (1,) * (x.ndim - 2)) if alpha.size > 1 else alpha.reshape(())
    out = np.where(x > 0, x, a * x)
    dx = dout * np.where(x > 0, 1.0, a)
    contrib = np.where(x > 0, 0.0, x) * dout
    if alpha.size > 1:
        dalpha = contrib.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
    else:
        dalpha = contrib.sum().reshape(1)
    return out, dx, dalpha


@pytest.mark.parametrize("shape, channels", [((5, 4), 4), ((3, 4, 2, 5), 4), ((5, 4), 1), ((2, 3, 4, 4), 1)],
                         ids=["NC-per-channel", "NCHW-per-channel", "NC-shared", "NCHW-shared"])
def test_prelu_against_closed_form(shape, channels):
    rng = np.random.default_rng(len(shape) * 10 + channels)
    x_np = 3.0 * rng.standard_normal(shape)
    x_np.reshape(-1)[::4] = 0.0  # exact zeros: dx = alpha there, no contribution to dalpha
    alpha_np = rng.uniform(0.05, 0.5, channels)
    dout_np = rng.standard_normal(shape)
    out_np, dx_np, dalpha_np = _prelu_np(x_np, alpha_np, dout_np)

    x, alpha = _t(x_np, True), _t(alpha_np, True)
    out = ref.prelu(x, alpha)
    out.backward(_t(dout_np))

    # forward pass went well
    assert _max_diff(out, out_np) < TOL
    # backward pass went well: dalpha is summed over the batch (and the pixels), one per channel
    assert _max_diff(x.grad, dx_np) < TOL
    assert tuple(alpha.grad.shape) == (channels,)
    assert _max_diff(alpha.grad, dalpha_np) < TOL


def test_prelu_slopes_are_per_channel():
    """Channel c uses alpha[c] (axis 1), not another axis: a (N, C, H, W) with N = H = W = C
    would hide a wrong axis, so use distinct sizes and a hand-computed value."""
    x = -torch.ones(2, 3, 4, 5, dtype=torch.float64)
    out = ref.prelu(x, _t([0.1, 0.2, 0.3]))
    for c, a in enumerate([0.1, 0.2, 0.3]):
        assert _max_diff(out[:, c], torch.full((2, 4, 5), -a, dtype=torch.float64)) < TOL


# ---------------------------------------------------------------- gradient conventions at exactly 0


@pytest.mark.parametrize("fn, slope_at_zero", [
    (ref.relu, 0.0),
    (lambda x: ref.leaky_relu(x, 0.2), 0.2),
    (ref.leaky_relu, 0.01),
    (lambda x: ref.elu(x, 0.5), 0.5),
    (ref.elu, 1.0),
    (lambda x: ref.prelu(x, _t([0.3, 0.7])), torch.tensor([0.3, 0.7], dtype=torch.float64)),
], ids=["relu->0", "leaky(0.2)->0.2", "leaky->0.01", "elu(0.5)->0.5", "elu->1", "prelu->alpha_c"])
def test_gradient_at_exactly_zero(fn, slope_at_zero):
    x = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    dout = _t(np.random.default_rng(11).standard_normal((3, 2)))
    out = fn(x)
    out.backward(dout)
    # forward: f(0) = 0 for all of them
    assert out.abs().max().item() == 0.0
    # backward: the negative branch's slope, exactly
    assert _max_diff(x.grad, dout * slope_at_zero) < TOL


# ---------------------------------------------------------------- maxout


def _maxout_loop(x, W, b):
    """out[n, m] = max over pieces k of x[n] . W[k, m] + b[k, m], and the first arg-max k."""
    N, (K, M, _) = x.shape[0], W.shape
    out, first = np.empty((N, M)), np.empty((N, M), dtype=int)
    for n in range(N):
        for m in range(M):
            values = [float(x[n] @ W[k, m] + b[k, m]) for k in range(K)]
            out[n, m] = max(values)
            first[n, m] = values.index(out[n, m])  # the first maximal piece
    return out, first


def _maxout_grads_first_piece(x, W, first, dout):
    """Analytic gradients when dout[n, m] goes to piece first[n, m] only."""
    dx, dW, db = np.zeros_like(x), np.zeros_like(W), np.zeros(W.shape[:2])
    for n in range(x.shape[0]):
        for m in range(W.shape[1]):
            k = first[n, m]
            dx[n] += dout[n, m] * W[k, m]
            dW[k, m] += dout[n, m] * x[n]
            db[k, m] += dout[n, m]
    return dx, dW, db


def _maxout_inputs(seed, n=5, d=4, k=3, m=6):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((k, m, d)), rng.standard_normal((k, m))


def test_maxout_against_loop():
    x_np, W_np, b_np = _maxout_inputs(30)
    dout_np = np.random.default_rng(31).standard_normal((5, 6))
    expected, first = _maxout_loop(x_np, W_np, b_np)

    x, W, b = _t(x_np, True), _t(W_np, True), _t(b_np, True)
    out = ref.maxout(x, W, b)
    out.backward(_t(dout_np))

    # forward pass went well
    assert tuple(out.shape) == (5, 6)
    assert _max_diff(out, expected) < TOL
    assert len(np.unique(first)) > 1  # the test exercises more than one winning piece
    # backward pass went well
    dx, dW, db = _maxout_grads_first_piece(x_np, W_np, first, dout_np)
    assert _max_diff(x.grad, dx) < TOL
    assert _max_diff(W.grad, dW) < TOL
    assert _max_diff(b.grad, db) < TOL


def test_maxout_gradcheck_away_from_ties():
    x_np, W_np, b_np = _maxout_inputs(32, n=4, d=3, k=3, m=2)
    z = np.einsum("nd,kmd->nkm", x_np, W_np) + b_np[None]
    top2 = np.sort(z, axis=1)[:, -2:, :]
    assert (top2[:, 1] - top2[:, 0]).min() > 1e-3  # far from a tie compared with eps = 1e-6
    inputs = tuple(_t(a, True) for a in (x_np, W_np, b_np))
    assert torch.autograd.gradcheck(ref.maxout, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("copies", [(0, 1), (1, 2)], ids=["pieces-0-1-tied", "pieces-1-2-tied"])
def test_maxout_ties_send_gradient_to_first_maximal_piece(copies):
    # integer-valued inputs: every product and sum is exact, so the copies tie exactly
    rng = np.random.default_rng(33)
    x_np = rng.integers(-3, 4, size=(8, 4)).astype(np.float64)
    W_np = rng.integers(-3, 4, size=(3, 5, 4)).astype(np.float64)
    b_np = rng.integers(-3, 4, size=(3, 5)).astype(np.float64)
    first_copy, second_copy = copies
    W_np[second_copy], b_np[second_copy] = W_np[first_copy], b_np[first_copy]
    dout_np = rng.standard_normal((8, 5))
    expected, first = _maxout_loop(x_np, W_np, b_np)
    assert (first == first_copy).any()  # the tie is the maximum somewhere

    x, W, b = _t(x_np, True), _t(W_np, True), _t(b_np, True)
    out = ref.maxout(x, W, b)
    out.backward(_t(dout_np))

    # forward pass went well
    assert _max_diff(out, expected) == 0.0
    # backward pass went well: the later copy never receives gradient, the first copy gets all of it
    assert W.grad[second_copy].abs().max().item() == 0.0
    assert b.grad[second_copy].abs().max().item() == 0.0
    dx, dW, db = _maxout_grads_first_piece(x_np, W_np, first, dout_np)
    assert _max_diff(x.grad, dx) < TOL
    assert _max_diff(W.grad, dW) < TOL
    assert _max_diff(b.grad, db) < TOL


# ---------------------------------------------------------------- diagnostics


def test_saturation_fraction_hand_made():
    h = _t([[0.99, -0.99, 1.0, 0.5],
            [-1.0, 0.995, 0.0, -0.999]])
    # |h| > 0.99 strictly: 1.0, -1.0, 0.995, -0.999; exactly +-0.99 is not saturated
    assert ref.saturation_fraction(h).item() == 4 / 8
    assert ref.saturation_fraction(h, 0.99).item() == 4 / 8
    # threshold 0.5: 0.5 itself and 0.0 are not saturated
    assert ref.saturation_fraction(h, 0.5).item() == 6 / 8
    # threshold 1.0: nothing is strictly above
    assert ref.saturation_fraction(h, 1.0).item() == 0.0
    assert ref.saturation_fraction(_t(np.ones((3, 3))), 0.9).item() == 1.0


def test_dead_unit_fraction_hand_made():
    pre = _t([[0.0, -1.0, -2.0, 0.0, -5.0],
              [0.0, -0.5, 3.0, -1.0, 1e-300],
              [0.0, -2.0, -1.0, 0.0, -5.0]])
    # column 0: exactly zero everywhere -> dead; 1: negative -> dead; 2: one positive -> alive;
    # 3: zeros and negatives -> dead; 4: one tiny positive -> alive
    assert ref.dead_unit_fraction(pre).item() == 3 / 5
    assert ref.dead_unit_fraction(_t(np.ones((4, 2)))).item() == 0.0
    assert ref.dead_unit_fraction(_t(np.zeros((4, 2)))).item() == 1.0
    # dead per unit (column), not per entry: here 2 of 4 entries are <= 0 but no unit is dead
    assert ref.dead_unit_fraction(_t([[1.0, -1.0], [-1.0, 1.0]])).item() == 0.0
