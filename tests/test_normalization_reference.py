"""Tests of the chapter-4 references that are not a single torch call.

- ``reference.cosinenorm`` is built from torch primitives (torch has no cosine norm);
- ``reference.weightnorm`` wraps ``torch.nn.utils.parametrizations.weight_norm`` on a
  ``torch.nn.Linear`` through ``torch.func.functional_call`` (g, v, b replace its parameters);
- ``reference.batchnorm`` returns the running statistics that ``F.batch_norm`` updates;
- ``reference.groupnorm`` switches to ``F.instance_norm`` when G = C;
- ``reference.unit_vector_jacobian`` is autograd's Jacobian of ``F.normalize``, row by row.

In the style of micrograd's tests: ours against torch (or against the formula), float64,
forward and backward checked separately, with an explicit tolerance.
"""
import numpy as np
import torch
import torch.nn.functional as F

from autograder.normalization import reference as ref

TOL = 1e-12


def _t(array, grad=False):
    return torch.tensor(array, dtype=torch.float64, requires_grad=grad)


def _close(a, b, tol=TOL):
    return (a - b).abs().max().item() < tol


# ---------------------------------------------------------------- cosine norm


def test_cosinenorm_against_cosine_similarity():
    rng = np.random.default_rng(0)
    x_np, w_np = rng.standard_normal((5, 4)) * 3, rng.standard_normal((3, 4))
    dout = _t(rng.standard_normal((5, 3)))  # random upstream gradient, never all ones

    x, w = _t(x_np, True), _t(w_np, True)
    out = ref.cosinenorm(x, w)
    out.backward(dout)
    ours, dx_ours, dw_ours = out, x.grad, w.grad

    x, w = _t(x_np, True), _t(w_np, True)
    out = F.cosine_similarity(x[:, None, :], w[None, :, :], dim=2)  # clamps norms at 1e-8: none that small here
    out.backward(dout)
    theirs, dx_theirs, dw_theirs = out, x.grad, w.grad

    # forward pass went well
    assert ours.shape == (5, 3)
    assert _close(ours, theirs)
    # backward pass went well
    assert _close(dx_ours, dx_theirs)
    assert _close(dw_ours, dw_theirs)


def test_cosinenorm_properties():
    rng = np.random.default_rng(1)
    x, w = _t(rng.standard_normal((6, 3))), _t(rng.standard_normal((4, 3)))
    out = ref.cosinenorm(x, w)

    # range [-1, 1], and cos(x, x) = 1
    assert out.abs().max().item() <= 1 + 1e-15
    assert _close(torch.diagonal(ref.cosinenorm(x, x)), torch.ones(6, dtype=torch.float64))
    # invariant to the scale of x (per example) and of w (per row); odd in x
    scale_x = _t(rng.uniform(0.01, 100, (6, 1)))
    scale_w = _t(rng.uniform(0.01, 100, (4, 1)))
    assert _close(ref.cosinenorm(scale_x * x, w), out)
    assert _close(ref.cosinenorm(x, scale_w * w), out)
    assert _close(ref.cosinenorm(-x, w), -out)
    # the value is the cosine of the angle in a case worked by hand: 45 and 90 degrees
    x2, w2 = _t([[1.0, 1.0]]), _t([[2.0, 0.0], [0.0, -3.0], [5.0, 5.0]])
    assert _close(ref.cosinenorm(x2, w2), _t([[2 ** -0.5, -(2 ** -0.5), 1.0]]))


def test_cosinenorm_gradcheck():
    rng = np.random.default_rng(2)
    x, w = _t(rng.standard_normal((4, 3)), True), _t(rng.standard_normal((2, 3)), True)
    assert torch.autograd.gradcheck(ref.cosinenorm, (x, w), eps=1e-6, atol=1e-8, rtol=1e-6)


def test_cosinenorm_gradient_formula():
    """Autograd of the reference against the closed form the notebook states."""
    rng = np.random.default_rng(3)
    x_np, w_np, dout_np = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)), rng.standard_normal((5, 3))
    x, w = _t(x_np, True), _t(w_np, True)
    ref.cosinenorm(x, w).backward(_t(dout_np))

    xn = np.linalg.norm(x_np, axis=1, keepdims=True)
    wn = np.linalg.norm(w_np, axis=1, keepdims=True)
    x_hat, w_hat = x_np / xn, w_np / wn
    dx_hat, dw_hat = dout_np @ w_hat, dout_np.T @ x_hat
    dx = (dx_hat - x_hat * (dx_hat * x_hat).sum(axis=1, keepdims=True)) / xn
    dw = (dw_hat - w_hat * (dw_hat * w_hat).sum(axis=1, keepdims=True)) / wn

    # backward pass went well
    assert np.abs(x.grad.numpy() - dx).max() < TOL
    assert np.abs(w.grad.numpy() - dw).max() < TOL


# ---------------------------------------------------------------- weight norm


def test_weightnorm_g_is_out_by_1():
    """The notebook's convention for g, (out, 1), is torch's: original0 of the parametrization."""
    layer = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 3), dim=0)
    assert tuple(layer.parametrizations.weight.original0.shape) == (3, 1)
    assert tuple(layer.parametrizations.weight.original1.shape) == (3, 4)


def test_weightnorm_against_module():
    """The functional_call wrapper against the parametrized module itself, its own parameters."""
    rng = np.random.default_rng(4)
    x_np, v_np = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)) * 2
    g_np, b_np = rng.uniform(-2, 2, (3, 1)), rng.standard_normal(3)
    dout = _t(rng.standard_normal((5, 3)))

    x, v, g, b = _t(x_np, True), _t(v_np, True), _t(g_np, True), _t(b_np, True)
    out = ref.weightnorm(x, v, g, b)
    out.backward(dout)
    ours = out

    layer = torch.nn.utils.parametrizations.weight_norm(torch.nn.Linear(4, 3, dtype=torch.float64), dim=0)
    with torch.no_grad():
        layer.parametrizations.weight.original0.copy_(_t(g_np))
        layer.parametrizations.weight.original1.copy_(_t(v_np))
        layer.bias.copy_(_t(b_np))
    x_module = _t(x_np, True)
    theirs = layer(x_module)
    theirs.backward(dout)

    # forward pass went well
    assert _close(ours, theirs)
    # backward pass went well
    assert _close(x.grad, x_module.grad)
    assert _close(g.grad, layer.parametrizations.weight.original0.grad)
    assert _close(v.grad, layer.parametrizations.weight.original1.grad)
    assert _close(b.grad, layer.bias.grad)


def test_weightnorm_formula_and_invariance():
    rng = np.random.default_rng(5)
    x, v = _t(rng.standard_normal((6, 3))), _t(rng.standard_normal((4, 3)))
    g, b = _t(rng.uniform(0.5, 2, (4, 1))), _t(rng.standard_normal(4))
    out = ref.weightnorm(x, v, g, b)

    # forward pass went well: W = g * v / ||v|| row by row
    W = g * v / v.norm(dim=1, keepdim=True)
    assert _close(out, x @ W.T + b)
    # invariant to the scale of each row of v (weight-scale invariance), not to the scale of x
    assert _close(ref.weightnorm(x, _t(rng.uniform(0.1, 10, (4, 1))) * v, g, b), out)
    assert not _close(ref.weightnorm(3 * x, v, g, b), out, 1e-3)


def test_weightnorm_gradcheck():
    rng = np.random.default_rng(6)
    inputs = tuple(_t(a, True) for a in (rng.standard_normal((3, 4)), rng.standard_normal((2, 4)),
                                          rng.uniform(0.5, 2, (2, 1)), rng.standard_normal(2)))
    assert torch.autograd.gradcheck(ref.weightnorm, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)


# ---------------------------------------------------------------- the Jacobian of u -> u / ||u||


def test_unit_vector_jacobian_against_formula_and_autograd():
    rng = np.random.default_rng(8)
    u = rng.standard_normal((5, 4)) * rng.uniform(1e-3, 1e3, (5, 1))
    J = ref.unit_vector_jacobian(u)
    assert J.shape == (5, 4, 4) and J.dtype == np.float64
    norm = np.linalg.norm(u, axis=1)[:, None, None]
    u_hat = u / norm[:, :, 0]
    formula = (np.eye(4) - u_hat[:, :, None] * u_hat[:, None, :]) / norm
    assert np.abs(J - formula).max() < TOL * np.abs(formula).max()
    # torch.func's transforms (vmap of jacrev), of u / u.norm() instead of F.normalize
    theirs = torch.func.vmap(torch.func.jacrev(lambda r: r / r.norm()))(_t(u)).numpy()
    assert np.abs(J - theirs).max() < TOL * np.abs(theirs).max()


def test_unit_vector_jacobian_properties():
    rng = np.random.default_rng(9)
    u = rng.standard_normal((6, 3)) * 7
    J = ref.unit_vector_jacobian(u)
    # symmetric; u itself is sent to 0 (scaling u does not move u_hat); J scales like 1/||u||
    assert np.abs(J - J.transpose(0, 2, 1)).max() < TOL
    assert np.abs(np.einsum("nij,nj->ni", J, u)).max() < TOL
    assert np.abs(ref.unit_vector_jacobian(2 * u) - J / 2).max() < TOL
    # D = 1: u_hat = sign(u) is constant, so J = 0
    assert not ref.unit_vector_jacobian(np.array([[3.0], [-0.5]])).any()
    # float32 input: the reference reads it in float64
    assert ref.unit_vector_jacobian(u.astype(np.float32)).dtype == np.float64


def test_unit_vector_jacobian_gives_weight_norm_s_and_cosine_norm_s_gradients():
    """The notebook's claim: dv_j = g_j J(v_j) dW_j, and dx_n = J(x_n) (dout w_hat)_n."""
    rng = np.random.default_rng(10)
    x_np, v_np = rng.standard_normal((5, 4)), rng.standard_normal((3, 4)) * 2
    g_np, b_np, dout = rng.uniform(-2, 2, (3, 1)), rng.standard_normal(3), rng.standard_normal((5, 3))
    v = _t(v_np, True)
    ref.weightnorm(_t(x_np), v, _t(g_np), _t(b_np)).backward(_t(dout))
    dW = dout.T @ x_np
    assert np.abs(v.grad.numpy() - g_np * np.einsum("jik,jk->ji", ref.unit_vector_jacobian(v_np), dW)).max() < TOL
    w_np = rng.standard_normal((3, 4))
    x = _t(x_np, True)
    ref.cosinenorm(x, _t(w_np)).backward(_t(dout))
    dx_hat = dout @ (w_np / np.linalg.norm(w_np, axis=1, keepdims=True))
    assert np.abs(x.grad.numpy() - np.einsum("nik,nk->ni", ref.unit_vector_jacobian(x_np), dx_hat)).max() < TOL


# ---------------------------------------------------------------- batch norm's running statistics


def _bn_numpy(x, gamma, beta, bn_param):
    """The syllabus's convention, written out."""
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    view = (1, -1) + (1,) * (x.ndim - 2)
    C, m = x.shape[1], x.size // x.shape[1]
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.1)
    rm = bn_param.get("running_mean", np.zeros(C))
    rv = bn_param.get("running_var", np.ones(C))
    if bn_param["mode"] == "train":
        mean, var = x.mean(axis=axes), x.var(axis=axes)  # biased, to normalise
        out = (x - mean.reshape(view)) / np.sqrt(var.reshape(view) + eps)
        rm = (1 - momentum) * rm + momentum * mean
        rv = (1 - momentum) * rv + momentum * var * m / (m - 1)  # unbiased, stored
    else:
        out = (x - rm.reshape(view)) / np.sqrt(rv.reshape(view) + eps)
    return gamma.reshape(view) * out + beta.reshape(view), rm, rv


def _bn_cases():
    rng = np.random.default_rng(7)
    for shape in ((8, 5), (3, 4, 2, 5)):
        C = shape[1]
        x = rng.normal(rng.uniform(-3, 3, C).reshape((1, C) + (1,) * (len(shape) - 2)), 2.0, shape)
        gamma, beta = rng.uniform(0.5, 1.5, C), rng.standard_normal(C)
        running = {"running_mean": rng.standard_normal(C), "running_var": rng.uniform(0.5, 2, C)}
        for bn_param in ({"mode": "train"}, {"mode": "train", "momentum": 0.3, "eps": 1e-3, **running},
                         {"mode": "test", **running}, {"mode": "test", "eps": 1e-2, **running}):
            yield x, gamma, beta, bn_param


def test_batchnorm_output_and_running_statistics():
    for x, gamma, beta, bn_param in _bn_cases():
        before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in bn_param.items()}
        out, rm, rv = ref.batchnorm(_t(x), _t(gamma), _t(beta), bn_param)
        out_np, rm_np, rv_np = _bn_numpy(x, gamma, beta, bn_param)

        # forward pass went well: biased variance inside sqrt(var + eps), or the running statistics
        assert np.abs(out.numpy() - out_np).max() < TOL
        # running statistics: momentum on the new statistic, unbiased variance; unchanged in test mode
        assert np.abs(rm.numpy() - rm_np).max() < TOL
        assert np.abs(rv.numpy() - rv_np).max() < TOL
        # the reference does not touch the caller's bn_param
        assert bn_param.keys() == before.keys()
        assert all(np.array_equal(bn_param[k], before[k]) for k in before)


def test_batchnorm_backward_against_formula():
    """Train mode: autograd through F.batch_norm against the closed-form gradient."""
    rng = np.random.default_rng(8)
    x_np, gamma_np, beta_np = rng.standard_normal((6, 4)) * 2 + 1, rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)
    dout_np = rng.standard_normal((6, 4))
    x, gamma, beta = _t(x_np, True), _t(gamma_np, True), _t(beta_np, True)
    ref.batchnorm(x, gamma, beta, {"mode": "train"})[0].backward(_t(dout_np))

    N, std = x_np.shape[0], np.sqrt(x_np.var(axis=0) + 1e-5)
    xhat = (x_np - x_np.mean(axis=0)) / std
    dbeta, dgamma = dout_np.sum(axis=0), (dout_np * xhat).sum(axis=0)
    dx = gamma_np / (N * std) * (N * dout_np - dbeta - xhat * dgamma)

    # backward pass went well
    assert np.abs(x.grad.numpy() - dx).max() < TOL
    assert np.abs(gamma.grad.numpy() - dgamma).max() < TOL
    assert np.abs(beta.grad.numpy() - dbeta).max() < TOL


# ---------------------------------------------------------------- group norm's instance-norm branch


def test_groupnorm_instance_branch_equals_group_norm():
    rng = np.random.default_rng(9)
    x_np = rng.standard_normal((3, 4, 5, 5)) * 2 + 1
    gamma_np, beta_np = rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)
    dout = _t(rng.standard_normal(x_np.shape))

    x, gamma, beta = _t(x_np, True), _t(gamma_np, True), _t(beta_np, True)
    ours = ref.groupnorm(x, gamma, beta, 4, {})          # G = C: F.instance_norm
    ours.backward(dout)
    grads_ours = (x.grad, gamma.grad, beta.grad)

    x, gamma, beta = _t(x_np, True), _t(gamma_np, True), _t(beta_np, True)
    theirs = F.group_norm(x, 4, gamma, beta, 1e-5)
    theirs.backward(dout)

    # forward pass went well
    assert _close(ours, theirs)
    # backward pass went well
    for a, b in zip(grads_ours, (x.grad, gamma.grad, beta.grad)):
        assert _close(a, b)
