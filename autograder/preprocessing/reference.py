"""Reference implementations for chapter 2 (data preprocessing), in float64.

scikit-learn where it has the function (``StandardScaler``, ``PCA``, also with
``whiten=True``), torch float64 primitives (``torch.linalg.eigh``) where it has not (ZCA
whitening, the per-channel mean, standardising with given statistics). Every function
takes numpy arrays and returns numpy float64 arrays; ``tests/test_preprocessing_reference.py``
checks them against each other, against scikit-learn and against their properties
(whitened covariance = identity, ZCA = the whitening closest to its input).

Conventions (scikit-learn's): X is (N, D), one example per row. The standardiser uses the
population standard deviation (N in the denominator, ``StandardScaler``); PCA's explained
variance and the covariance that whitening inverts use N - 1 (``PCA.explained_variance_``).
Only imported by the grader and the tests: never in a student's kernel.
"""
import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler


def _f64(X):
    return np.asarray(X, dtype=np.float64)


def fit_standardizer(X):
    """Per-feature mean and standard deviation of X, as ``StandardScaler`` fits them.

    X: (N, D). Returns a tuple of mean (D,) and std (D,) (population std, ddof=0;
    0 for a constant feature). Explained in book/preprocessing/centring-and-whitening.md.
    """
    scaler = StandardScaler().fit(_f64(X))
    return scaler.mean_, np.sqrt(scaler.var_)


def standardize(X, mean, std, eps=1e-8):
    """(X - mean) / std with given statistics; features with std <= eps are centred and
    not scaled, as ``StandardScaler`` leaves a constant feature (its scale_ is 1).

    X: (N, D); mean, std: (D,). Returns out (N, D).
    Explained in book/preprocessing/centring-and-whitening.md.
    """
    x, m, s = (torch.tensor(_f64(a)) for a in (X, mean, std))
    scale = torch.where(s > eps, s, torch.ones_like(s))
    return ((x - m) / scale).numpy()


def channel_mean(X):
    """Mean of each channel of a batch of images over examples and pixels.

    X: (N, C, H, W). Returns mean (C,). Explained in book/preprocessing/images.md.
    """
    return torch.tensor(_f64(X)).mean(dim=(0, 2, 3)).numpy()


def pca(X, k):
    """The top k principal components of X, as ``PCA(n_components=k)`` fits them.

    X: (N, D) with N >= 2; 1 <= k <= min(N, D). Returns a tuple of components (k, D) (unit
    rows, sorted by decreasing variance; each defined up to its sign) and explained_variance
    (k,) (the variance of X along each component, N - 1 in the denominator).
    Explained in book/preprocessing/centring-and-whitening.md.
    """
    model = PCA(n_components=k, svd_solver="full").fit(_f64(X))
    return model.components_, model.explained_variance_


def pca_whiten(X, k, eps=1e-5):
    """PCA whitening: the centred data's coordinates along the top k components, each
    divided by sqrt(variance + eps). With eps = 0 this is ``PCA(k, whiten=True).fit_transform``.

    X: (N, D); Returns out (N, k) (each column defined up to its sign).
    Explained in book/preprocessing/centring-and-whitening.md.
    """
    X = _f64(X)
    model = PCA(n_components=k, svd_solver="full").fit(X)
    return (X - model.mean_) @ model.components_.T / np.sqrt(model.explained_variance_ + eps)


def pca_reconstruct(X, k):
    """X projected onto its top k principal components and mapped back to the input space:
    ``PCA(k).inverse_transform(PCA(k).transform(X))`` (the best rank-k approximation of
    the data around its mean).

    X: (N, D). Returns out (N, D). Explained in book/preprocessing/centring-and-whitening.md.
    """
    X = _f64(X)
    model = PCA(n_components=k, svd_solver="full").fit(X)
    return model.inverse_transform(model.transform(X))


def zca_whiten(X, eps=1e-5):
    """ZCA (Mahalanobis) whitening: (X - mean) @ W with W = U diag(1/sqrt(lambda + eps)) U^T,
    U and lambda the eigenvectors and eigenvalues of the covariance (N - 1 in the denominator).

    X: (N, D). Returns out (N, D): with eps = 0 and a full-rank covariance, its covariance is
    the identity and it is, of all whitenings of X, the closest to the centred X.
    Explained in book/preprocessing/centring-and-whitening.md.
    """
    x = torch.tensor(_f64(X))
    xc = x - x.mean(dim=0)
    cov = xc.T @ xc / (x.shape[0] - 1)
    lam, U = torch.linalg.eigh(cov)
    lam = lam.clamp(min=0.0)  # rounding may leave -1e-16 where the variance is 0
    W = U @ torch.diag(1.0 / torch.sqrt(lam + eps)) @ U.T
    return (xc @ W).numpy()
