"""The chapter-2 references against scikit-learn, torch and their defining properties,
and the Transform engine's sign alignment and floors on them."""
import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from autograder import transforms
from autograder.data import load_digits
from autograder.preprocessing import reference as ref
from autograder.preprocessing.checks import _data


@pytest.fixture(scope="module")
def digits():
    return load_digits()[0]


def correlated(n=200, d=6, seed=0):
    return _data(np.random.default_rng(seed), (n, d), "float64")


def test_standardizer_equals_standardscaler_with_constant_columns(digits):
    mean, std = ref.fit_standardizer(digits)
    assert (std == 0).sum() >= 1  # the digits' border pixels
    scaler = StandardScaler().fit(digits)
    with np.errstate(all="raise"):  # no division by zero
        out = ref.standardize(digits, mean, std)
    np.testing.assert_allclose(out, scaler.transform(digits), rtol=1e-12, atol=1e-12)
    test = digits[::7] + 1.0  # a border pixel that is not 0 at test time: centred, not scaled
    np.testing.assert_allclose(ref.standardize(test, mean, std), scaler.transform(test), rtol=1e-12, atol=1e-12)


def test_standardizer_uses_the_population_std():
    x = correlated()
    np.testing.assert_allclose(ref.fit_standardizer(x)[1], x.std(axis=0), rtol=1e-12)
    one = x[:1]
    mean, std = ref.fit_standardizer(one)
    assert np.array_equal(mean, one[0]) and np.all(std == 0)


def test_channel_mean_is_torch_mean_over_examples_and_pixels():
    x = np.random.default_rng(1).uniform(size=(5, 3, 4, 4))
    np.testing.assert_allclose(ref.channel_mean(x), x.transpose(1, 0, 2, 3).reshape(3, -1).mean(axis=1))


@pytest.mark.parametrize("n, d, k", [(200, 6, 3), (200, 6, 6), (8, 12, 5)])
def test_pca_matches_torch_eigh_up_to_sign(n, d, k):
    x = correlated(n, d)
    components, variance = ref.pca(x, k)
    xc = torch.tensor(x - x.mean(axis=0))
    lam, U = torch.linalg.eigh(xc.T @ xc / (n - 1))
    want = U.flip(1)[:, :k].T.numpy()
    np.testing.assert_allclose(variance, lam.flip(0)[:k].numpy(), rtol=1e-9)
    np.testing.assert_allclose(transforms.align(components, want, "rows"), want, atol=1e-9)
    assert np.all(np.diff(variance) <= 0)
    np.testing.assert_allclose(components @ components.T, np.eye(k), atol=1e-12)
    # scikit-learn's sign convention: the largest entry of each component is positive
    assert np.all(components[np.arange(k), np.argmax(np.abs(components), axis=1)] > 0)


def test_pca_whiten_equals_sklearn_whiten_and_has_identity_covariance():
    x = correlated()
    np.testing.assert_allclose(ref.pca_whiten(x, 4, eps=0.0), PCA(4, whiten=True).fit_transform(x), atol=1e-10)
    out = ref.pca_whiten(x, 4)
    lam = ref.pca(x, 4)[1]
    # cov = diag(lam / (lam + eps)): the identity to eps / lam_min
    assert np.max(np.abs(np.cov(out, rowvar=False) - np.eye(4))) <= 1e-5 / lam.min() + 1e-12


def test_pca_reconstruct_equals_inverse_transform_and_is_exact_at_k_equal_d():
    x = correlated()
    model = PCA(3).fit(x)
    np.testing.assert_allclose(ref.pca_reconstruct(x, 3), model.inverse_transform(model.transform(x)), atol=1e-10)
    np.testing.assert_allclose(ref.pca_reconstruct(x, x.shape[1]), x, atol=1e-10)


def test_zca_whitening_has_identity_covariance_and_is_closest_to_the_input():
    x = correlated(500, 5)
    z = ref.zca_whiten(x, eps=0.0)
    np.testing.assert_allclose(np.cov(z, rowvar=False), np.eye(5), atol=1e-10)
    xc = x - x.mean(axis=0)
    p = ref.pca_whiten(x, 5, eps=0.0)
    assert np.linalg.norm(z - xc) < np.linalg.norm(p - xc)
    # every whitening is z @ Q for an orthogonal Q: none is closer (Kessy et al., 2018)
    rng = np.random.default_rng(0)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
        assert np.linalg.norm(z - xc) <= np.linalg.norm(z @ q - xc) + 1e-9
    # ZCA is symmetric: W = U diag U^T, so out = xc W with W = xc^+ out symmetric
    W = np.linalg.lstsq(xc, z, rcond=None)[0]
    np.testing.assert_allclose(W, W.T, atol=1e-8)


def test_zca_with_eps_keeps_constant_pixels_at_zero(digits):
    with np.errstate(all="raise"):
        z = ref.zca_whiten(digits, eps=0.1)
    constant = digits.std(axis=0) == 0
    assert np.max(np.abs(z[:, constant])) < 1e-9
    diag = np.cov(z, rowvar=False).diagonal()[~constant]
    assert 0 < diag.min() and diag.max() < 1.0  # eps shrinks every variance, the rare pixels most


def test_align_flips_rows_or_columns_only():
    a = np.arange(1.0, 7.0).reshape(2, 3)
    assert np.array_equal(transforms.align(-a, a, "rows"), a)
    assert np.array_equal(transforms.align(a * [[1, -1, 1]], a, "columns"), a)
    assert transforms.align(a[:1], a, "rows").shape == (1, 3)  # other shapes untouched
