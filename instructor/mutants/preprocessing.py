"""The chapter-2 mistakes of the issue, as wrong implementations (see autograder.mutants).

Each solution function of this assignment is self-contained (pca_whiten does not call pca),
so a mutant fails only its own function's test cell, ``test_<function>_check``.
"""
import dataclasses

from autograder.mutants import Mutant

_EIGH = '''
    Xc = X - X.mean(axis=0)
    lam, U = np.linalg.eigh(Xc.T @ Xc / (X.shape[0] - 1))
'''

MUTANTS = [
    Mutant("std_ddof1", "fit_standardizer", ("fit_standardizer",), '''
def fit_standardizer(X):
    return X.mean(axis=0), X.std(axis=0, ddof=1)
''', ("preprocessing.std_ddof1",)),
    Mutant("per_sample_statistics", "fit_standardizer", ("fit_standardizer",), '''
def fit_standardizer(X):
    return X.mean(axis=1), X.std(axis=1)
''', ("preprocessing.per_sample_statistics",)),
    Mutant("test_statistics", "standardize", ("standardize",), '''
def standardize(X, mean, std, eps=1e-8):
    mean, std = X.mean(axis=0), X.std(axis=0)        # the statistics of the set being transformed
    return (X - mean) / np.where(std > eps, std, np.ones_like(std))
''', ("preprocessing.test_statistics",)),
    Mutant("standardize_without_eps", "standardize", ("standardize",), '''
def standardize(X, mean, std, eps=1e-8):
    return (X - mean) / std
''', ("preprocessing.eps_missing",)),
    Mutant("mean_image", "channel_mean", ("channel_mean",), '''
def channel_mean(X):
    return X.mean(axis=0)
''', ("preprocessing.mean_image",)),
    Mutant("pca_not_centred", "pca", ("pca",), '''
def pca(X, k):
    U, s, Vt = np.linalg.svd(X, full_matrices=False)    # X itself, not X - mean
    return Vt[:k], s[:k] ** 2 / (X.shape[0] - 1)
''', ("preprocessing.not_centred",)),
    Mutant("pca_components_as_columns", "pca", ("pca",), f'''
def pca(X, k):{_EIGH}    order = np.argsort(lam)[::-1][:k]
    return U[:, order], lam[order]
''', ("preprocessing.components_as_columns",)),
    Mutant("pca_eigenvalues_unsorted", "pca", ("pca",), f'''
def pca(X, k):{_EIGH}    return U[:, :k].T, lam[:k]                        # eigh's order: increasing
''', ("preprocessing.eigenvalues_unsorted",)),
    Mutant("pca_biased_variance", "pca", ("pca",), '''
def pca(X, k):
    Xc = X - X.mean(axis=0)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    return Vt[:k], s[:k] ** 2 / X.shape[0]
''', ("preprocessing.pca_biased_variance",)),
    Mutant("reconstruct_without_mean", "pca_reconstruct", ("pca_reconstruct",), f'''
def pca_reconstruct(X, k):{_EIGH}    V = U[:, np.argsort(lam)[::-1][:k]]
    return Xc @ V @ V.T
''', ("preprocessing.reconstruct_without_mean",)),
    Mutant("whiten_by_eigenvalue", "pca_whiten", ("pca_whiten",), f'''
def pca_whiten(X, k, eps=1e-5):{_EIGH}    order = np.argsort(lam)[::-1][:k]
    return Xc @ U[:, order] / (lam[order] + eps)
''', ("preprocessing.whiten_by_eigenvalue",)),
    Mutant("pca_whiten_not_centred", "pca_whiten", ("pca_whiten",), f'''
def pca_whiten(X, k, eps=1e-5):{_EIGH}    order = np.argsort(lam)[::-1][:k]
    return X @ U[:, order] / np.sqrt(np.maximum(lam[order], 0) + eps)   # projects X, not Xc
''', ("preprocessing.not_centred",)),
    Mutant("zca_without_eps", "zca_whiten", ("zca_whiten",), f'''
def zca_whiten(X, eps=1e-5):{_EIGH}    return Xc @ (U / np.sqrt(lam)) @ U.T
''', ("preprocessing.eps_missing",)),
    Mutant("zca_not_rotated_back", "zca_whiten", ("zca_whiten",), f'''
def zca_whiten(X, eps=1e-5):{_EIGH}    return Xc @ U / np.sqrt(np.maximum(lam, 0) + eps)
''', ("preprocessing.zca_not_rotated_back",)),
]

# The mutants that fail the capstone too (the pipeline of autograder/preprocessing/checks.py),
# measured: the pipeline calls fit_standardizer, standardize and pca on the training set. pca
# without centring passes it (the standardised data it gets is centred already), and so do the
# mutants of the functions it does not call.
FAIL_THE_CAPSTONE = {"std_ddof1", "per_sample_statistics", "test_statistics", "standardize_without_eps",
                     "pca_components_as_columns", "pca_eigenvalues_unsorted", "pca_biased_variance"}
MUTANTS = [dataclasses.replace(m, capstones=("capstone_pipeline",)) if m.name in FAIL_THE_CAPSTONE else m
           for m in MUTANTS]
