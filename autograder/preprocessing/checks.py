"""Checks for the preprocessing assignment (chapter 2): a table, built by ``checking.build``.

The notebook's test cells call one check each::

    checks.pca(pca)                  # public cases
    checks.pca(pca, hidden=True)     # and the hidden ones

Every function of this chapter returns arrays (``mean, std = fit_standardizer(X)``), so
its rows are :class:`autograder.transforms.Transform`: each output is compared with the
reference (scikit-learn's ``StandardScaler`` and ``PCA`` where they have the function,
torch's ``eigh`` in float64 where not: ``reference.py``), principal components and
PCA-whitened columns up to their sign. The inputs are what the digits really contain:
pixels with a large mean, constant border pixels (std 0), more features than samples, a
single example, float32. This module imports neither torch nor scikit-learn: the kernel
that runs a student's notebook only records, the grader judges.
"""
import warnings

import numpy as np

from .. import capstone
from ..checking import DTYPE_CHANGED, Case, Mistake, Spec, build, hidden
from ..transforms import Transform

# ---------------------------------------------------------------- inputs


def spec(shape, dtype="float64", *special, **params):
    return Spec(tuple(shape), dtype, special=frozenset(special), params=params)


def _orthogonal(rng, d):
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def _data(rng, shape, dtype, special=(), offset=True):
    """Correlated features with well separated variances (3^2 down to 0.3^2, so that every
    principal component is well defined), a large mean (pixels are positive), and the
    digits' constant border pixels (columns 0 and -1 exactly 0) when ``"constant"``."""
    n, d = shape
    scales = np.geomspace(3.0, 0.3, d)
    x = rng.standard_normal((n, d)) * scales @ _orthogonal(rng, d).T
    if offset:
        x += rng.uniform(2.0, 8.0, size=d)
    if "constant" in special:
        x[:, [0, -1]] = 0.0
    return x.astype(dtype)


def _label(name, x, special):
    notes = {"constant": " with constant columns 0 and -1 (std 0)", "single": " (a single example)"}
    wide = " (more features than samples)" if x.ndim == 2 and x.shape[0] < x.shape[1] else ""
    return f"{name} {tuple(x.shape)} {x.dtype}" + wide + "".join(notes.get(s, "") for s in sorted(special))


def _params_label(params):
    return "".join(f", {k}={v}" for k, v in params.items())


def _case(function, spec, x, inputs):
    return Case(_label("X", x, spec.special) + _params_label(spec.params), {"X": x, **inputs, **spec.params},
                tags=spec.special | {function})


def make_fit(spec, rng):
    return _case("fit_standardizer", spec, _data(rng, spec.shape, spec.dtype, spec.special), {})


def make_standardize(spec, rng):
    """A test set X and the statistics of a training set of the same distribution (not X's:
    a function that recomputes them from X is caught). Constant training columns have std 0;
    in the test set those pixels are not always 0 (as on the digits)."""
    n, d = spec.shape
    both = _data(rng, (n + 30, d), "float64", spec.special)
    train, x = both[:30], both[30:]
    if "constant" in spec.special:
        x[::2, 0] = 1.0
    mean, std = train.mean(axis=0), train.std(axis=0)
    if "small_std" in spec.special:
        std[1] = 0.5 * spec.params["eps"]
    x, mean, std = (a.astype(spec.dtype) for a in (x, mean, std))
    label = (_label("X", x, spec.special - {"constant"}) + ", mean and std of a training set"
             + (" (std 0 for columns 0 and -1, where X is not always 0)" if "constant" in spec.special else "")
             + (", std[1] below eps" if "small_std" in spec.special else "") + _params_label(spec.params))
    return Case(label, {"X": x, "mean": mean, "std": std, **spec.params}, tags=spec.special | {"standardize"})


def make_channel_mean(spec, rng):
    n, c, h, w = spec.shape
    x = rng.uniform(0, 1, size=spec.shape) * 0.5 + rng.uniform(0.2, 0.6, size=(1, c, 1, 1))
    x = x.astype(spec.dtype)
    return Case(_label("X", x, spec.special) + " (N, C, H, W)", {"X": x}, tags=spec.special | {"channel_mean"})


def _maker(function):
    def make(spec, rng):
        return _case(function, spec, _data(rng, spec.shape, spec.dtype, spec.special), {})
    make.__name__ = f"make_{function}"
    return make


# ---------------------------------------------------------------- what wrong implementations return


def _f64(case):
    return case.inputs["X"].astype(np.float64)


def _function(case):
    return next(t for t in ("pca_whiten", "pca_reconstruct", "zca_whiten", "pca") if t in case.tags)


def _eigen(x, centre=True, ddof=1):
    """Mean, eigenvalues (decreasing) and eigenvectors (columns, largest entry positive as
    scikit-learn's PCA signs them) of the covariance."""
    mean = x.mean(axis=0) if centre else np.zeros(x.shape[1])
    xc = x - mean
    lam, U = np.linalg.eigh(xc.T @ xc / (x.shape[0] - ddof))
    lam, U = lam[::-1], U[:, ::-1]
    U = U * np.sign(U[np.argmax(np.abs(U), axis=0), np.arange(U.shape[1])])
    return mean, lam, U


def _pca_family(case, centre=True, project_centred=True, ddof=1, order="top", root=True, eps=None,
                add_mean=True, rotate_back=True):
    """{output: value} of the case's function (pca, pca_whiten, pca_reconstruct or
    zca_whiten) implemented with the given mistakes."""
    x = _f64(case)
    mean, lam, U = _eigen(x, centre, ddof)
    d = x.shape[1]
    k = case.inputs.get("k", d)
    pick = {"top": np.arange(k), "top_ascending": np.arange(k)[::-1], "smallest": np.arange(d - 1, d - 1 - k, -1),
            "eigh": np.arange(d - 1, d - 1 - k, -1)}[order]
    lam_k, U_k = lam[pick], U[:, pick]
    eps = case.inputs.get("eps", 1e-5) if eps is None else eps  # the functions' default
    xp = x - mean if project_centred else x
    with np.errstate(all="ignore"):
        scale = np.sqrt(np.maximum(lam_k, 0) + eps) if root else lam_k + eps
        function = _function(case)
        if function == "pca":
            return {"components": U_k.T, "explained_variance": lam_k}
        if function == "pca_whiten":
            return {"pca_whitened": xp @ U_k / scale}
        if function == "pca_reconstruct":
            return {"reconstruction": xp @ U_k @ U_k.T + (mean if add_mean and project_centred else 0.0)}
        if not rotate_back:
            return {"zca_whitened": [xp @ U_k / scale, (xp @ U_k / scale)[:, ::-1]]}
        return {"zca_whitened": xp @ (U_k / scale) @ U_k.T}


def _standardized(x, mean, std, eps, constant_handling=True):
    with np.errstate(all="ignore"):
        return (x - mean) / (np.where(std > eps, std, 1.0) if constant_handling else std)


def _own_statistics(case, ddof):
    x = _f64(case)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ddof=1 on one example: "Degrees of freedom <= 0"
        return _standardized(x, x.mean(axis=0), x.std(axis=0, ddof=ddof), case.inputs.get("eps", 1e-8))


# ---------------------------------------------------------------- mistakes

STD_DDOF1 = Mistake(
    "preprocessing.std_ddof1", "std with N - 1 in the denominator (ddof=1)",
    "StandardScaler (and batch norm) divide by N: use x.std(axis=0), whose default is ddof=0. "
    "np.std(ddof=1) is the unbiased estimate of the variance, not the data's own spread.",
    wrong=lambda case: {"std": _f64(case).std(axis=0, ddof=1) if _f64(case).shape[0] > 1
                        else np.full(_f64(case).shape[1], np.nan)},
    explains=("std",))

PER_SAMPLE = Mistake(
    "preprocessing.per_sample_statistics", "statistics computed per example instead of per feature",
    "X has one example per ROW: a feature's statistics are over the examples, axis=0 "
    "(for images (N, C, H, W): over axes (0, 2, 3)). axis=1 gives one number per example.",
    wrong=lambda case: {"mean": _f64(case).mean(axis=1), "std": _f64(case).std(axis=1),
                        "channel_mean": _f64(case).reshape(_f64(case).shape[0], -1).mean(axis=1)},
    explains=("mean", "std", "channel_mean"))

MEAN_IMAGE = Mistake(
    "preprocessing.mean_image", "the mean image instead of the mean of each channel",
    "X.mean(axis=0) is the mean image (C, H, W), one value per pixel and channel. The per-channel "
    "mean averages over the examples AND the pixels: X.mean(axis=(0, 2, 3)), shape (C,).",
    wrong=lambda case: {"channel_mean": _f64(case).mean(axis=0)}, explains=("channel_mean",))

TEST_STATISTICS = Mistake(
    "preprocessing.test_statistics", "the statistics of X itself used instead of the ones given",
    "standardize must use the mean and std it is given (fitted on the training set): at test time "
    "X is the test set, and recomputing its statistics lets the test set leak into the "
    "preprocessing (and gives a different transform for every batch).",
    wrong=lambda case: {"standardized": [_own_statistics(case, ddof) for ddof in (0, 1)]},
    explains=("standardized",))

EPS_ADDED_TO_STD = Mistake(
    "preprocessing.eps_added_to_std", "eps added to std: constant features blow up",
    "A feature that is constant on the training set (std 0) is divided by eps = 1e-8, so a test "
    "value that differs from the mean by 1 becomes 1e8. StandardScaler leaves such a feature "
    "centred but unscaled: divide by std where std > eps, and by 1 elsewhere (np.where).",
    wrong=lambda case: {"standardized": (_f64(case) - case.inputs["mean"])
                        / (case.inputs["std"].astype(np.float64) + case.inputs.get("eps", 1e-8))},
    when=lambda case: "constant" in case.tags or "small_std" in case.tags, explains=("standardized",))


def _eps_missing(got, case, what):
    if what == "warnings":
        return ("constant" in case.tags or "wide" in case.tags or "small_std" in case.tags) and any(
            "divide" in w or "invalid value" in w for w in got)
    if what in ("pca_whitened", "zca_whitened") and isinstance(got, np.ndarray) and got.dtype.kind == "f":
        from ..transforms import align
        wrong = _pca_family(case, eps=0.0)[what]
        return all(np.isfinite(wrong).flat) and any(
            bool(np.all(np.abs(align(got, wrong, axis) - wrong) <= 1e-7 * np.abs(wrong) + 1e-12))
            for axis in ("columns", None)) and not np.dtype(case.dtype) == np.float32
    return False


EPS_MISSING = Mistake(
    "preprocessing.eps_missing", "eps missing: a zero variance is divided by",
    "A constant feature (the digits' border pixels) or more features than examples give "
    "variances of exactly 0, and 1/0 is inf. Use eps where the function's docstring says: "
    "std where std > eps (standardize), 1 / sqrt(variance + eps) (whitening).",
    observed=_eps_missing, explains=("warnings", "pca_whitened", "zca_whitened"))

NOT_CENTRED = Mistake(
    "preprocessing.not_centred", "the data is not centred (mean not subtracted)",
    "Principal components are the eigenvectors of the COVARIANCE, (X - mean)^T (X - mean) / (N - 1): "
    "without subtracting the mean, the first 'component' points at the mean (pixels are positive). "
    "Subtract the mean before the SVD or eigh, and before projecting.",
    wrong=lambda case: {what: [_pca_family(case, centre=False)[what], _pca_family(case, project_centred=False)[what]]
                        for what in _pca_family(case)},
    explains=("components", "explained_variance", "pca_whitened", "reconstruction", "zca_whitened"))

COMPONENTS_AS_COLUMNS = Mistake(
    "preprocessing.components_as_columns", "components returned as columns",
    "np.linalg.eigh returns the eigenvectors as the COLUMNS of U (and np.linalg.svd returns Vt "
    "with them as rows). scikit-learn's layout is one component per row: components (k, D).",
    wrong=lambda case: {"components": _pca_family(case)["components"].T}, explains=("components",))

UNSORTED = Mistake(
    "preprocessing.eigenvalues_unsorted", "eigenvalues not sorted in decreasing order",
    "np.linalg.eigh returns the eigenvalues in INCREASING order: the first columns are the directions "
    "of least variance. Reverse them (lam[::-1], U[:, ::-1]) or argsort, before taking the first k.",
    wrong=lambda case: {what: [_pca_family(case, order="smallest")[what], _pca_family(case, order="top_ascending")[what]]
                        for what in _pca_family(case)},
    explains=("components", "explained_variance", "pca_whitened", "reconstruction"))

WHITEN_BY_EIGENVALUE = Mistake(
    "preprocessing.whiten_by_eigenvalue", "divided by the eigenvalue instead of its square root",
    "The eigenvalue is a VARIANCE: to give a coordinate unit variance, divide it by its standard "
    "deviation, sqrt(lambda + eps). Dividing by lambda leaves the variance 1/lambda.",
    wrong=lambda case: _pca_family(case, root=False), explains=("pca_whitened", "zca_whitened"))

BIASED_VARIANCE = Mistake(
    "preprocessing.pca_biased_variance", "variance with N in the denominator",
    "scikit-learn's PCA reports explained_variance_ with N - 1 in the denominator (np.cov's "
    "convention) and whitens with it: use (X - mean)^T (X - mean) / (N - 1), or s**2 / (N - 1) "
    "from the singular values.",
    wrong=lambda case: _pca_family(case, ddof=0), explains=("explained_variance", "pca_whitened", "zca_whitened"))

RECONSTRUCT_WITHOUT_MEAN = Mistake(
    "preprocessing.reconstruct_without_mean", "the mean not added back",
    "The projection (X - mean) V^T V reconstructs the CENTRED data: add the mean back to return "
    "to the input's space (scikit-learn's inverse_transform does).",
    wrong=lambda case: {"reconstruction": _pca_family(case, add_mean=False)["reconstruction"]},
    explains=("reconstruction",))

ZCA_NOT_ROTATED_BACK = Mistake(
    "preprocessing.zca_not_rotated_back", "PCA whitening returned instead of ZCA",
    "(X - mean) U / sqrt(lambda + eps) is PCA whitening: the data in the eigenvectors' basis. ZCA "
    "rotates it back to the pixels' basis: multiply by U^T as well, W = U diag(1/sqrt(lambda + eps)) U^T.",
    wrong=lambda case: _pca_family(case, rotate_back=False), explains=("zca_whitened",))


# ---------------------------------------------------------------- properties shown with a wrong output


def _whitening_properties(what, got, expected, case):
    if what not in ("pca_whitened", "zca_whitened") or not isinstance(got, np.ndarray) or got.ndim != 2 \
            or got.shape[0] < 2 or got.dtype.kind != "f":
        return []
    want = expected[what]
    with np.errstate(all="ignore"):
        def off_identity(a):
            return float(np.max(np.abs(np.cov(a.astype(np.float64), rowvar=False) - np.eye(a.shape[1]))))
        lines = [f"  covariance of your output: max |cov - I| = {off_identity(got):.3g} "
                 f"(the reference's: {off_identity(want):.3g}; eps keeps near-zero variances below 1)"]
        if what == "zca_whitened" and got.shape == want.shape:
            xc = _f64(case) - _f64(case).mean(axis=0)
            lines.append(f"  distance to the centred input, |out - (X - mean)|: yours {np.linalg.norm(got - xc):.4g}, "
                         f"ZCA's {np.linalg.norm(want - xc):.4g} (the smallest of all whitenings)")
    return lines


# ---------------------------------------------------------------- the table

FLOOR = 1e-6  # eigendecompositions leave ~1e-13 where a value is 0 (see autograder/transforms.py)

TABLE = [
    Transform("fit_standardizer", "fit_standardizer",
              [spec((50, 6)), spec((50, 6), "float32"), spec((40, 8), "float64", "constant"),
               spec((1, 5), "float64", "single"),
               *hidden(spec((200, 64), "float64", "constant"), spec((5, 12)), spec((3, 3), "float32"),
                       spec((1, 3), "float64", "single"))],
              make_fit, [STD_DDOF1, PER_SAMPLE], outputs=("mean", "std"), contract=(DTYPE_CHANGED,)),
    Transform("standardize", "standardize",
              [spec((20, 6)), spec((20, 6), "float32"), spec((16, 8), "float64", "constant"),
               spec((1, 5), "float64", "single"), spec((10, 4), "float64", "small_std", eps=1e-3),
               *hidden(spec((100, 64), "float64", "constant"), spec((7, 3), "float32", "constant"),
                       spec((12, 5), "float64", "small_std", eps=0.01))],
              make_standardize, [TEST_STATISTICS, EPS_ADDED_TO_STD, EPS_MISSING], outputs=("standardized",),
              labels=("out",), contract=(DTYPE_CHANGED,)),
    Transform("channel_mean", "channel_mean",
              [spec((8, 3, 4, 4)), spec((8, 3, 4, 4), "float32"), spec((1, 3, 2, 2), "float64", "single"),
               *hidden(spec((16, 1, 8, 8)), spec((5, 5, 3, 3)), spec((4, 3, 32, 32), "float32"))],
              make_channel_mean, [PER_SAMPLE, MEAN_IMAGE], outputs=("channel_mean",), labels=("mean",),
              contract=(DTYPE_CHANGED,)),
    Transform("pca", "pca",
              [spec((40, 6), k=3), spec((40, 6), "float32", k=3), spec((30, 5), k=5),
               spec((8, 12), "float64", "wide", k=4), spec((60, 10), "float64", "constant", k=4),
               *hidden(spec((100, 20), k=7), spec((10, 3), k=1), spec((6, 9), "float32", "wide", k=5),
                       spec((200, 64), "float64", "constant", k=10))],
              _maker("pca"), [NOT_CENTRED, COMPONENTS_AS_COLUMNS, UNSORTED, BIASED_VARIANCE],
              outputs=("components", "explained_variance"), signs={"components": "rows"},
              floor={"components": FLOOR, "explained_variance": FLOOR}, contract=(DTYPE_CHANGED,),
              note="components compared up to their signs"),
    Transform("pca_whiten", "pca_whiten",
              [spec((40, 6), k=3), spec((40, 6), "float32", k=3), spec((30, 5), k=5),
               spec((8, 12), "float64", "wide", k=4), spec((60, 10), "float64", "constant", k=10),
               *hidden(spec((100, 20), k=7, eps=0.1), spec((10, 3), k=1), spec((6, 9), "float32", "wide", k=5),
                       spec((200, 16), "float64", "constant", k=16, eps=1e-3))],
              _maker("pca_whiten"), [NOT_CENTRED, UNSORTED, WHITEN_BY_EIGENVALUE, BIASED_VARIANCE, EPS_MISSING],
              outputs=("pca_whitened",), labels=("out",), signs={"pca_whitened": "columns"},
              floor={"pca_whitened": FLOOR}, explain=_whitening_properties, contract=(DTYPE_CHANGED,),
              note="columns compared up to their signs"),
    Transform("pca_reconstruct", "pca_reconstruct",
              [spec((40, 6), k=2), spec((40, 6), "float32", k=2), spec((30, 5), k=5),
               spec((8, 12), "float64", "wide", k=3), spec((60, 10), "float64", "constant", k=4),
               *hidden(spec((100, 20), k=7), spec((10, 3), k=1), spec((200, 64), "float64", "constant", k=20))],
              _maker("pca_reconstruct"), [NOT_CENTRED, UNSORTED, RECONSTRUCT_WITHOUT_MEAN],
              outputs=("reconstruction",), labels=("out",), floor={"reconstruction": FLOOR},
              contract=(DTYPE_CHANGED,)),
    Transform("zca_whiten", "zca_whiten",
              [spec((40, 5)), spec((40, 5), "float32"), spec((60, 8), "float64", "constant"),
               spec((8, 10), "float64", "wide"),
               *hidden(spec((200, 16)), spec((30, 3), eps=0.1), spec((100, 12), "float32", "constant", eps=1e-2),
                       spec((6, 9), "float64", "wide", eps=1e-2))],
              _maker("zca_whiten"), [NOT_CENTRED, WHITEN_BY_EIGENVALUE, BIASED_VARIANCE, ZCA_NOT_ROTATED_BACK,
                                     EPS_MISSING],
              outputs=("zca_whitened",), labels=("out",), floor={"zca_whitened": FLOOR},
              explain=_whitening_properties, contract=(DTYPE_CHANGED,)),
]

# ---------------------------------------------------------------- capstone: your pipeline feeds a classifier
#
# The digits split once (seed 0): 1000 training, 797 test images. Your fit_standardizer and pca are
# fitted on the training set only; standardize and the whitening (the coordinates along your top
# PIPELINE["k"] components divided by sqrt(variance + eps)) are applied to both sets. A provided
# softmax classifier (zero initial weights, full-batch gradient descent, learning rate 0.1) gets a
# small budget: 10 steps. The same classifier on the raw pixels (0-16) is the baseline. Zero initial
# weights make the run independent of the components' signs (flipping a feature flips its weights).

PIPELINE = {"train": 1000, "test": 797, "k": 40, "eps": 0.1, "lr": 0.1, "steps": 10}
PIPELINE_NAMES = ("raw pixels", "standardised", "standardised + PCA-whitened")


def _softmax_classifier(F_train, y_train, F_test, y_test):
    """(losses per step, test accuracy) of the provided classifier with the capstone's budget."""
    W, b, losses = np.zeros((10, F_train.shape[1])), np.zeros(10), []
    for _ in range(PIPELINE["steps"]):
        loss, dscores = capstone.softmax_loss(F_train @ W.T + b, y_train)
        losses.append(loss)
        W, b = W - PIPELINE["lr"] * dscores.T @ F_train, b - PIPELINE["lr"] * dscores.sum(axis=0)
    return losses, capstone.accuracy(F_test @ W.T + b, y_test)


def pipeline_run(functions, state):
    X_train, y_train, X_test, y_test = capstone.digits_split(PIPELINE["train"], PIPELINE["test"])
    d, k = X_train.shape[1], PIPELINE["k"]
    state["where"] = "fitting on the training set"
    stats = functions["fit_standardizer"](X_train.copy())
    if not (isinstance(stats, tuple) and len(stats) == 2):
        raise capstone.StudentFailed(["fit_standardizer must return a tuple (mean, std)."])
    mean, std = (capstone.as_array(v, "fit_standardizer", (d,)) for v in stats)
    state["where"] = "standardising the training and the test set with the training set's statistics"
    S_train = capstone.as_array(functions["standardize"](X_train.copy(), mean, std), "standardize", X_train.shape)
    S_test = capstone.as_array(functions["standardize"](X_test.copy(), mean, std), "standardize", X_test.shape)
    state["where"] = f"pca of the standardised training set, k = {k}"
    found = functions["pca"](S_train.copy(), k)
    if not (isinstance(found, tuple) and len(found) == 2):
        raise capstone.StudentFailed(["pca must return a tuple (components, explained_variance)."])
    components = capstone.as_array(found[0], "pca (components)", (k, d))
    variance = capstone.as_array(found[1], "pca (explained_variance)", (k,))
    centre = S_train.mean(axis=0)
    scale = np.sqrt(np.maximum(variance, 0) + PIPELINE["eps"])
    features = [(X_train, X_test), (S_train, S_test),
                ((S_train - centre) @ components.T / scale, (S_test - centre) @ components.T / scale)]
    losses, accuracies = [], []
    for name, (F_train, F_test) in zip(PIPELINE_NAMES, features):
        state["where"] = f"training the classifier on the {name} features"
        run_losses, acc = _softmax_classifier(F_train, y_train, F_test, y_test)
        losses.append(run_losses)
        accuracies.append(acc)
    return {"losses": np.array(losses), "test_accuracy": np.array(accuracies)}


def pipeline_reference(found):
    from . import reference
    return pipeline_run({"fit_standardizer": reference.fit_standardizer, "standardize": reference.standardize,
                         "pca": reference.pca}, {})


PIPELINE_ADVICE = ("fit every statistic on the training set only (mean and N-denominator std; PCA's components as "
                   "unit rows sorted by decreasing variance, the variance with N - 1), and apply the same "
                   "statistics to the test set: make the checks of fit_standardizer, standardize and pca pass.")
CAPSTONE = capstone.Capstone(
    "capstone_pipeline", ("fit_standardizer", "standardize", "pca"), pipeline_run, pipeline_reference,
    [capstone.Outcome("test accuracy, standardised + PCA-whitened features, 10 steps",
                      lambda f: float(f["test_accuracy"][2]), at_least=0.88, fmt="{:.1%}", advice=PIPELINE_ADVICE),
     capstone.Outcome("test accuracy, standardised features, 10 steps",
                      lambda f: float(f["test_accuracy"][1]), at_least=0.85, fmt="{:.1%}", advice=PIPELINE_ADVICE),
     capstone.Outcome("whitened minus raw pixels' test accuracy, same budget",
                      lambda f: float(f["test_accuracy"][2] - f["test_accuracy"][0]), at_least=0.2, fmt="{:+.1%}",
                      advice=PIPELINE_ADVICE)],
    rtol=1e-6, atol=1e-9,
    labels={"losses": "the training loss of pipeline {0} (1 raw, 2 standardised, 3 whitened) at step {1}",
            "test_accuracy": "the test accuracy of pipeline {0} (1 raw, 2 standardised, 3 whitened)"},
    summary="fitted on the training set only, your preprocessing makes a small budget go far")
TABLE.append(CAPSTONE)

CHECKS = build(__name__, TABLE)
globals().update(CHECKS)  # checks.fit_standardizer, checks.pca, ...
__all__ = sorted(CHECKS)
