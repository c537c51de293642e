"""The chapter-4 mistakes of the syllabus, as wrong implementations (see autograder.mutants).

Most mistakes are in batchnorm_forward; the solution's spatial batch norm reuses
batchnorm_forward and batchnorm_backward, so those mutants may fail (and must be
diagnosed in) the spatial cells too. A mutant of a forward pass keeps the solution's
cache layout, so the solution's backward passes still run on it.
"""
from ..mutants import Mutant

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


MUTANTS = [
    Mutant("bn_unbiased_normalise", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        normalise="        std = np.sqrt(x.var(axis=0, ddof=1) + eps)   # divides by N - 1"),
        "unbiased variance used to normalise"),
    Mutant("bn_momentum_old", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        update="        running_mean = momentum * bn_param.get('running_mean', np.zeros(D)) + (1 - momentum) * mu\n"
               "        running_var = momentum * bn_param.get('running_var', np.ones(D)) + (1 - momentum) * var * (N / (N - 1))"),
        "momentum applied to the old value"),
    Mutant("bn_running_var_biased", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        update="        running_var = (1 - momentum) * bn_param.get('running_var', np.ones(D)) + momentum * var"),
        "running_var stored biased"),
    Mutant("bn_eps_outside", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        normalise="        std = np.sqrt(var) + eps",
        test="        out = gamma * (x - running_mean) / (np.sqrt(running_var) + eps) + beta"),
        "eps outside the square root"),
    Mutant("bn_per_sample_axis", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        normalise="        mu = x.mean(axis=1, keepdims=True)\n"
                  "        xc = x - mu\n"
                  "        var = (xc ** 2).mean(axis=1, keepdims=True)\n"
                  "        std = np.sqrt(var + eps)"),
        "wrong axis"),
    Mutant("bn_test_uses_batch_stats", "batchnorm_forward", ("batchnorm", "spatial_batchnorm"), _bn_forward(
        test="        out = gamma * (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps) + beta"),
        "test mode used the batch statistics"),
    Mutant("bn_dgamma_not_summed", "batchnorm_backward", ("batchnorm", "spatial_batchnorm"), '''
def batchnorm_backward(dout, cache):
    xc, std, xhat, gamma = cache
    N = dout.shape[0]
    dbeta = dout                    # one row per example: not summed
    dgamma = dout * xhat
    dx = (gamma / (N * std)) * (N * dout - dout.sum(axis=0) - xhat * (dout * xhat).sum(axis=0))
    return dx, dgamma, dbeta
''', "dgamma/dbeta not summed over the batch"),
    Mutant("ln_per_feature_axis", "layernorm_forward", ("layernorm",), '''
def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=0, keepdims=True)          # over the batch: that is batch norm
    xc = x - mu
    std = np.sqrt((xc ** 2).mean(axis=0, keepdims=True) + eps)
    xhat = xc / std
    out = gamma * xhat + beta
    return out, (xhat, std, gamma)
''', "wrong axis: per-feature statistics instead of per-sample"),
]
