"""The chapter-4 mistakes of the syllabus, as wrong implementations (see autograder.mutants).

Each mutant lists the ids of the mistakes (autograder/normalization/checks.py) that its
failing cells name. Most mistakes are in batchnorm_forward; the solution's spatial batch
norm reuses batchnorm_forward and batchnorm_backward, so those mutants fail (and must be
diagnosed in) the spatial cells too, sometimes as the spatial form of the mistake. A
mutant of a forward pass keeps the solution's cache layout, so the solution's backward
passes still run on it (a mutant whose cache cannot brings its own backward pass).
"""
import dataclasses

from autograder.mutants import Mutant



_BN_FORWARD = '''
def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.1)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.ones(D, dtype=x.dtype))
    cache = None
    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc ** 2).mean(axis=0)
        std = np.sqrt(var + eps)
{normalise}
        xhat = xc / std
        out = gamma * xhat + beta
        running_mean = (1 - momentum) * running_mean + momentum * mu
        running_var = (1 - momentum) * running_var + momentum * var * (N / (N - 1))
{update}
        cache = (xc, std, xhat, gamma)
    else:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
{test}
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache
'''


def _bn_forward(normalise="", update="", test=""):
    """The solution's batchnorm_forward with some lines overridden (each block indented as shown)."""
    return _BN_FORWARD.format(normalise=normalise.rstrip() or "        pass",
                              update=update.rstrip() or "        pass",
                              test=test.rstrip() or "        pass")


_UVJ = '''
def unit_vector_jacobian(u):
    N, D = u.shape
    norm = np.sqrt((u ** 2).sum(axis=1, keepdims=True))
    u_hat = u / norm
    {J}
    return J
'''


def _uvj(line):
    """The solution's unit_vector_jacobian with the line computing J replaced."""
    return _UVJ.format(J=line)


MUTANTS = [
    Mutant("bn_unbiased_normalise", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        normalise="        std = np.sqrt(x.var(axis=0, ddof=1) + eps)   # divides by N - 1"),
        ("bn.unbiased_normalise",)),
    Mutant("bn_momentum_old", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        update="        running_mean = momentum * bn_param.get('running_mean', np.zeros(D)) + (1 - momentum) * mu\n"
               "        running_var = momentum * bn_param.get('running_var', np.ones(D)) + (1 - momentum) * var * (N / (N - 1))"),
        ("bn.momentum_old",)),
    Mutant("bn_running_var_biased", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        update="        running_var = (1 - momentum) * bn_param.get('running_var', np.ones(D)) + momentum * var"),
        ("bn.running_var_biased",)),
    Mutant("bn_eps_outside", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        normalise="        std = np.sqrt(var) + eps",
        test="        out = gamma * (x - running_mean) / (np.sqrt(running_var) + eps) + beta"),
        ("bn.eps_outside",)),
    Mutant("bn_per_sample_axis", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        normalise="        mu = x.mean(axis=1, keepdims=True)\n"
                  "        xc = x - mu\n"
                  "        var = (xc ** 2).mean(axis=1, keepdims=True)\n"
                  "        std = np.sqrt(var + eps)"),
        # spatial batch norm reuses it on x reshaped to (N*H*W, C): per pixel over the channels
        ("bn.per_sample_axis",)),
    Mutant("bn_test_uses_batch_stats", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        test="        out = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta"),
        ("bn.test_uses_batch_stats",)),
    Mutant("bn_dgamma_not_summed", "batchnorm_backward", ("batchnorm", "spatial_batchnorm"), '''
def batchnorm_backward(dout, cache):
    xc, std, xhat, gamma = cache
    N = dout.shape[0]
    dbeta = dout                    # one row per example: not summed
    dgamma = dout * xhat
    dx = (gamma / (N * std)) * (N * dout - dout.sum(axis=0) - xhat * (dout * xhat).sum(axis=0))
    return dx, dgamma, dbeta
''', ("norm.dgamma_not_summed",)),
    Mutant("ln_per_feature_axis", "layernorm_forward", ("layernorm",), '''
def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=0, keepdims=True)          # over the batch: that is batch norm
    xc = x - mu
    std = np.sqrt((xc ** 2).mean(axis=0, keepdims=True) + eps)
    xhat = xc / std
    out = gamma * xhat + beta
    return out, (xhat, std, gamma)
''', ("ln.per_feature_axis",)),
    Mutant("bn_running_updated_in_test", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        test="        running_mean = (1 - momentum) * running_mean + momentum * x.mean(axis=0)\n"
             "        running_var = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)"),
        ("bn.running_updated_in_test",)),
    # Seen in real students' code (issue 6): test mode normalises and stops there.
    Mutant("bn_test_without_affine", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        test="        out = (x - running_mean) / np.sqrt(running_var + eps)"),
        ("bn.test_without_affine",)),
    # A CS231n-trained student (issue 6): running statistics from zeros, momentum 0.9 on the
    # old value, running_var biased, and test mode without gamma and beta. One message names all four.
    Mutant("bn_cs231n_style", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), '''
def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))
    out, cache = None, None
    if mode == "train":
        mu = x.mean(axis=0)
        xc = x - mu
        var = (xc ** 2).mean(axis=0)
        std = np.sqrt(var + eps)
        xhat = xc / std
        out = gamma * xhat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (xc, std, xhat, gamma)
    elif mode == "test":
        out = (x - running_mean) / np.sqrt(running_var + eps)
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache
''', ("bn.running_var_from_zeros", "bn.running_var_biased", "bn.momentum_old", "bn.test_without_affine")),
    # Seen in real students' code (issue 6): batch norm's closed form kept for layer norm,
    # its sums over the batch axis and gamma outside them.
    Mutant("ln_backward_batch_axis", "layernorm_backward", ("layernorm",), '''
def layernorm_backward(dout, cache):
    xhat, std, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = (gamma / (N * std)) * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
''', ("ln.backward_batch_axis",)),
    # Seen in real students' code (issue 6): each pixel normalised over its group's channels
    # only; the backward pass matches that forward pass.
    Mutant("gn_per_pixel_stats", "groupnorm_forward", ("groupnorm",), '''
def groupnorm_forward(x, gamma, beta, G, gn_param):
    eps = gn_param.get("eps", 1e-5)
    N, C, H, W = x.shape
    xg = x.reshape(N, G, C // G, H, W)
    xc = xg - xg.mean(axis=2, keepdims=True)
    std = np.sqrt((xc ** 2).mean(axis=2, keepdims=True) + eps)   # (N, G, 1, H, W): per pixel
    xhat = (xc / std).reshape(N, C, H, W)
    out = gamma.reshape(1, C, 1, 1) * xhat + beta.reshape(1, C, 1, 1)
    return out, (xhat, std, gamma, G)


def groupnorm_backward(dout, cache):
    xhat, std, gamma, G = cache
    N, C, H, W = dout.shape
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    g = (dout * gamma.reshape(1, C, 1, 1)).reshape(N, G, C // G, H, W)
    xh = xhat.reshape(N, G, C // G, H, W)
    dx = (g - g.mean(axis=2, keepdims=True) - xh * (g * xh).mean(axis=2, keepdims=True)) / std
    return dx.reshape(N, C, H, W), dgamma, dbeta
''', ("gn.per_pixel_stats",)),
    Mutant("wn_dg_flat", "weightnorm_backward", ("weightnorm",), '''
def weightnorm_backward(dout, cache):
    x, v, g, norm, W = cache
    dW = dout.T @ x
    v_hat = v / norm
    dg = (dW * v_hat).sum(axis=1, keepdims=True)
    return dout @ W, g / norm * (dW - v_hat * dg), dg.ravel(), dout.sum(axis=0)   # dg (out,), not (out, 1)
''', ("wn.dg_shape",)),
    Mutant("wn_db_not_summed", "weightnorm_backward", ("weightnorm",), '''
def weightnorm_backward(dout, cache):
    x, v, g, norm, W = cache
    dW = dout.T @ x
    v_hat = v / norm
    dg = (dW * v_hat).sum(axis=1, keepdims=True)
    return dout @ W, g / norm * (dW - v_hat * dg), dg, dout   # db: one row per example
''', ("wn.db_not_summed",)),
    # The key step of weight norm's and cosine norm's backward passes (section 7): the Jacobian of
    # u -> u / ||u||. The solution's weightnorm and cosinenorm do not call it, so these fail its cell only.
    Mutant("uvj_projection_forgotten", "unit_vector_jacobian", ("unit_vector_jacobian",), _uvj(
        "J = np.broadcast_to(np.eye(D, dtype=u.dtype), (N, D, D)) / norm[:, :, None]   # ||u|| held constant"),
        ("uvj.projection_forgotten",)),
    Mutant("uvj_norm_factor_forgotten", "unit_vector_jacobian", ("unit_vector_jacobian",), _uvj(
        "J = np.eye(D, dtype=u.dtype) - u_hat[:, :, None] * u_hat[:, None, :]   # no 1 / ||u||"),
        ("uvj.norm_factor_forgotten",)),
    Mutant("uvj_inner_product", "unit_vector_jacobian", ("unit_vector_jacobian",), _uvj(
        "J = np.stack([(np.eye(D, dtype=u.dtype) - h @ h.T) / n for h, n in zip(u_hat, norm)])   # h @ h.T: a scalar"),
        ("uvj.inner_product",)),
    Mutant("uvj_sign", "unit_vector_jacobian", ("unit_vector_jacobian",), _uvj(
        "J = (np.eye(D, dtype=u.dtype) + u_hat[:, :, None] * u_hat[:, None, :]) / norm[:, :, None]"),
        ("uvj.sign",)),
    Mutant("uvj_norm_power", "unit_vector_jacobian", ("unit_vector_jacobian",), _uvj(
        "J = np.eye(D, dtype=u.dtype) / norm[:, :, None] - u_hat[:, :, None] * u_hat[:, None, :]   # u u^T / ||u||^2"),
        ("uvj.norm_power",)),
]

# The mutants that fail the capstone too (the 6-layer net of autograder/normalization/checks.py),
# measured: every mistake of batch norm's forward or backward pass changes the run, so its records
# leave the reference run (or miss the test-mode outcome, or break a shape); the other layers'
# mistakes do not touch it.
FAIL_THE_CAPSTONE = {"bn_unbiased_normalise", "bn_momentum_old", "bn_running_var_biased", "bn_eps_outside",
                     "bn_per_sample_axis", "bn_test_uses_batch_stats", "bn_dgamma_not_summed",
                     "bn_running_updated_in_test", "bn_test_without_affine", "bn_cs231n_style"}
MUTANTS = [dataclasses.replace(m, capstones=("capstone_batchnorm",)) if m.name in FAIL_THE_CAPSTONE else m
           for m in MUTANTS]
