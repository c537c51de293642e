"""Writes solutions/preprocessing/preprocessing.ipynb, the nbgrader source of assignment 2. Kept outside
solutions/preprocessing/ so that the release does not copy it. Run from the repository root:

    python solutions/build_preprocessing.py && python -m autograder release preprocessing
"""
import pathlib

from autograder.notebook_builder import answer, checked, code, md, solution, test, write

BOOK = "{{ book_url }}/book/preprocessing"



CELLS = [
    md(f"""
# Assignment 2: data preprocessing

You will implement, in numpy, the preprocessing steps of the book's chapter
[Data preprocessing]({BOOK}/index.html): fitting and applying a standardiser, the per-channel
mean of images, PCA, PCA and ZCA whitening, and the reconstruction of data from its top principal
components. The autograder compares your functions with scikit-learn's `StandardScaler` and `PCA`
and, for ZCA, with a float64 implementation in torch.

**Conventions** (scikit-learn's, so the autograder can compare):

- `X` has shape `(N, D)`: one example per **row**, one feature per column. Images are `(N, C, H, W)`.
- The standardiser uses the population standard deviation (**N** in the denominator, `np.std`'s default),
  as `StandardScaler`. PCA's explained variance and the covariance that whitening inverts use
  **N − 1** (`np.cov`'s default), as `PCA.explained_variance_`.
- Principal components are the **rows** of `components`, sorted by decreasing variance. A component
  is defined up to its sign ($v$ and $-v$ span the same line): the checks accept either.
- Keep the input's dtype (float32 in, float32 out); never modify an input in place; no numpy warnings
  (division by zero, invalid value) for any input, including constant features.

**Checks.** The cell under each function runs the checks the autograder runs (it adds more shapes and
seeds). A check prints one `✓` line or tells you which input failed, expected vs got, and the likely
mistake.
"""),
    code("""
# Run this cell first. On Colab it installs the course package (about a minute).
import numpy as np
try:
    import autograder
except ImportError:
    %pip install -q "autograder @ git+{{ repository_url }}"
from autograder.preprocessing import checks
from autograder.data import load_digits

X_digits, y_digits = load_digits()   # (1797, 64) float64 pixels in [0, 16], labels 0-9
""", "setup"),
    md("""
## 1. Standardisation

Fit the statistics on the **training** set: $\\mu_j = \\frac1N\\sum_i x_{ij}$ and
$\\sigma_j = \\sqrt{\\frac1N\\sum_i (x_{ij} - \\mu_j)^2}$, one per feature (column). Then apply them to
any set: $\\hat x_{ij} = (x_{ij} - \\mu_j)/\\sigma_j$.

A feature that is constant on the training set has $\\sigma_j = 0$: the digits' border pixels are 0 in
every training image. `StandardScaler` leaves such a feature centred but not scaled (its `scale_` is 1),
and so does your `standardize`: divide by $\\sigma_j$ where $\\sigma_j >$ `eps`, by 1 elsewhere.
"""),
    solution('''
def fit_standardizer(X):
    """Per-feature statistics of a training set.

    Inputs:
    - X: (N, D) training data, one example per row
    Returns a tuple of:
    - mean: (D,) mean of each feature, X's dtype
    - std: (D,) standard deviation of each feature (N in the denominator), X's dtype
    """
    ### BEGIN SOLUTION
    mean = X.mean(axis=0)
    std = X.std(axis=0)
    ### END SOLUTION
    return mean, std


def standardize(X, mean, std, eps=1e-8):
    """Standardise X with statistics fitted elsewhere (on the training set).

    Inputs:
    - X: (N, D) data to transform (training, validation or test set)
    - mean, std: (D,) from fit_standardizer on the training set
    - eps: features with std <= eps are centred but not scaled (as StandardScaler)
    Returns:
    - out: (N, D), X's dtype
    """
    ### BEGIN SOLUTION
    scale = np.where(std > eps, std, np.ones_like(std))
    out = (X - mean) / scale
    ### END SOLUTION
    return out
''', "standardizer"),
    checked("fit_standardizer"),
    checked("standardize"),
    md("""
## 2. The mean of images, per channel

For images, one usually only centres: subtract the mean image (one value per pixel and channel, as in
AlexNet) or, simpler and what most convnets do, the mean of each **channel** over all examples and
pixels (VGG's "subtract the mean RGB value"). For `X` of shape `(N, C, H, W)`, return the `(C,)`
vector of channel means.
"""),
    solution('''
def channel_mean(X):
    """Mean of each channel over the examples and the pixels.

    Inputs:
    - X: (N, C, H, W) images
    Returns:
    - mean: (C,), X's dtype
    """
    ### BEGIN SOLUTION
    mean = X.mean(axis=(0, 2, 3))
    ### END SOLUTION
    return mean
''', "channel_mean"),
    checked("channel_mean"),
    md("""
## 3. PCA

With $X_c = X - \\mu$ (centred) and the covariance $\\Sigma = X_c^\\top X_c / (N-1)$, the principal
components are the eigenvectors of $\\Sigma$, $\\Sigma = U \\Lambda U^\\top$, sorted by decreasing
eigenvalue; the eigenvalue $\\lambda_j$ is the variance of the data along component $j$
(scikit-learn's `explained_variance_`). Use `np.linalg.eigh` (for symmetric matrices: it returns the
eigenvalues in **increasing** order, the eigenvectors as **columns**) or the SVD of $X_c$
($\\lambda_j = s_j^2/(N-1)$). Return the top `k` components as the rows of a `(k, D)` array.
"""),
    solution('''
def pca(X, k):
    """The top k principal components of X.

    Inputs:
    - X: (N, D), N >= 2
    - k: number of components, 1 <= k <= min(N, D)
    Returns a tuple of:
    - components: (k, D), one unit vector per row, by decreasing variance, X's dtype
    - explained_variance: (k,) variance of X along each component (N - 1 in the denominator)
    """
    ### BEGIN SOLUTION
    Xc = X - X.mean(axis=0)
    lam, U = np.linalg.eigh(Xc.T @ Xc / (X.shape[0] - 1))
    order = np.argsort(lam)[::-1][:k]
    components = U[:, order].T
    explained_variance = lam[order]
    ### END SOLUTION
    return components, explained_variance
''', "pca"),
    checked("pca"),
    md("""
## 4. Reconstruction from k components

Projecting the centred data on the top $k$ components, $Z = X_c V_k^\\top$ with $V_k$ the `(k, D)`
components, and mapping back, $\\hat X = Z V_k + \\mu$, gives the best rank-$k$ approximation of the
data around its mean (scikit-learn's `inverse_transform(transform(X))`). You may call your `pca`.
"""),
    solution('''
def pca_reconstruct(X, k):
    """X projected on its top k principal components, in the input space.

    Inputs:
    - X: (N, D), N >= 2
    - k: number of components, 1 <= k <= min(N, D)
    Returns:
    - out: (N, D), X's dtype
    """
    ### BEGIN SOLUTION
    mean = X.mean(axis=0)
    Xc = X - mean
    lam, U = np.linalg.eigh(Xc.T @ Xc / (X.shape[0] - 1))
    V = U[:, np.argsort(lam)[::-1][:k]]          # (D, k)
    out = Xc @ V @ V.T + mean
    ### END SOLUTION
    return out
''', "pca_reconstruct"),
    checked("pca_reconstruct"),
    md("""
## 5. PCA whitening and ZCA whitening

**PCA whitening** keeps the top $k$ coordinates and gives each unit variance:
$X_{\\text{PCA}} = X_c V_k^\\top \\,\\mathrm{diag}\\big(1/\\sqrt{\\lambda_j + \\varepsilon}\\big)$, shape `(N, k)`
(scikit-learn's `PCA(k, whiten=True)` with $\\varepsilon = 0$). **ZCA whitening** keeps all $D$ and
rotates back to the pixels' basis: $X_{\\text{ZCA}} = X_c W$ with
$W = U\\,\\mathrm{diag}\\big(1/\\sqrt{\\lambda_j + \\varepsilon}\\big)\\,U^\\top$, shape `(N, D)`. With
$\\varepsilon = 0$ both outputs have the identity as covariance; of all such whitenings, ZCA's output is
the closest to $X_c$ (Kessy et al., 2018). $\\varepsilon$ keeps the directions of (near) zero variance
(constant pixels, more pixels than images) from being divided by 0. Eigenvalues that rounding makes
slightly negative (−1e-16) should count as 0.
"""),
    solution('''
def pca_whiten(X, k, eps=1e-5):
    """PCA whitening on the top k components.

    Inputs:
    - X: (N, D), N >= 2
    - k: number of components, 1 <= k <= min(N, D)
    - eps: added to each variance before the square root
    Returns:
    - out: (N, k), X's dtype; column j is the coordinate along component j / sqrt(lambda_j + eps)
    """
    ### BEGIN SOLUTION
    Xc = X - X.mean(axis=0)
    lam, U = np.linalg.eigh(Xc.T @ Xc / (X.shape[0] - 1))
    order = np.argsort(lam)[::-1][:k]
    out = Xc @ U[:, order] / np.sqrt(np.maximum(lam[order], 0) + eps)
    ### END SOLUTION
    return out


def zca_whiten(X, eps=1e-5):
    """ZCA whitening.

    Inputs:
    - X: (N, D), N >= 2
    - eps: added to each variance before the square root
    Returns:
    - out: (N, D), X's dtype: (X - mean) @ U diag(1 / sqrt(lambda + eps)) U^T
    """
    ### BEGIN SOLUTION
    Xc = X - X.mean(axis=0)
    lam, U = np.linalg.eigh(Xc.T @ Xc / (X.shape[0] - 1))
    W = (U / np.sqrt(np.maximum(lam, 0) + eps)) @ U.T
    out = Xc @ W
    ### END SOLUTION
    return out
''', "whitening"),
    checked("pca_whiten"),
    checked("zca_whiten"),
    md("""
## 6. On the digits

Not graded: your functions on the 1797 digits. Whitened data should have (nearly) the identity as
covariance; the printed numbers tell you how near, and why not exactly (think of eps and of the border
pixels).
"""),
    code("""
mean, std = fit_standardizer(X_digits)
print("constant pixels:", int(np.sum(std == 0)), "of", std.size)
Z = zca_whiten(X_digits, eps=0.1)
cov = np.cov(Z, rowvar=False)
print("ZCA: diagonal of the covariance between", cov.diagonal().min().round(3), "and", cov.diagonal().max().round(3))
components, variance = pca(X_digits, 64)
print("variance kept by 10 components:", (variance[:10].sum() / variance.sum()).round(3))
""", "digits_demo"),
    md("""
## 7. Capstone: your pipeline feeds a classifier

Your `fit_standardizer`, `standardize` and `pca` in a pipeline provided by the course (numpy, seeded:
the same run for everyone). The digits are split once into 1000 training and 797 test images. The
statistics and the components are fitted on the **training set only**; the standardisation and the
whitening (the coordinates along your top 40 components divided by $\\sqrt{\\lambda_j + 0.1}$) are
applied to both sets. A softmax classifier (zero initial weights, full-batch gradient descent,
learning rate 0.1) gets a small budget: 10 steps, on the raw pixels (0-16), on the standardised
pixels and on the whitened coordinates.

Outcomes (`capstone_pipeline`, 3 points): after 10 steps the whitened features reach at least 88 %
test accuracy and the standardised ones at least 85 %, and the whitened ones beat the raw pixels by
at least 20 points of accuracy (the elongated error surface of the raw pixels, measured). The grader
re-runs the same pipeline with scikit-learn's `StandardScaler` and `PCA` and compares your run with it
step by step (losses and accuracies), so only a correct pipeline passes. The classifier starts from
zero weights, so the signs of your components do not matter. A message says which outcome was missed
(measured vs required, and what it suggests) or where your run first leaves the reference run.
"""),
    test("checks.capstone_pipeline(fit_standardizer, standardize, pca)", "capstone_pipeline", 3),
    md("""
## 8. Written questions

Answer in a few sentences in the cells below; these are graded by your instructor.
"""),
    md("""
**Question 1.** Two uncorrelated features have standard deviations 1 and 10, and you fit a linear
model by least squares with plain gradient descent. Derive the condition number of the loss's Hessian
before and after standardisation, and predict how the number of steps needed to reach a given loss
changes (the book's measurement on the page "Why scale matters" is the check of your prediction).
"""),
    answer("""
*Model answer.* For $L(w) = \\frac{1}{2N}\\|Xw - y\\|^2$ the Hessian is $H = X^\\top X / N$, which for
centred uncorrelated features is $\\mathrm{diag}(\\sigma_1^2, \\sigma_2^2) = \\mathrm{diag}(1, 100)$: condition
number $\\kappa = 100$. After standardisation $H = I$, $\\kappa = 1$. Gradient descent needs a step below
$2/\\lambda_{\\max}$ for stability, and then the error along the flattest direction shrinks by
$(1 - \\lambda_{\\min}/\\lambda_{\\max})$ per step at best: the number of steps to reach a given accuracy
grows like $\\kappa \\log(1/\\epsilon)$. So about 100 times more steps on the raw features than on the
standardised ones, where a single step with $\\eta = 1$ reaches the minimum.

*Rubric (2 points).* 1 point for the Hessian $X^\\top X/N = \\mathrm{diag}(1, 100)$, $\\kappa = 100$ before and
1 after; 1 point for the prediction: steps grow like $\\kappa$ (about 100 times more on the raw features),
with the reason (the step is limited by the largest curvature, progress by the smallest).
""", "answer_condition_number", 2),
    md("""
**Question 2.** PCA-whiten the digits with $k = 64$ and $\\varepsilon = 10^{-5}$. What happens to the
directions of smallest variance (the last components: mostly pixel noise, and the border pixels)?
Explain what this does to a classifier trained on the whitened data, and what a larger $\\varepsilon$
changes.
"""),
    answer("""
*Model answer.* Whitening divides the coordinate along component $j$ by $\\sqrt{\\lambda_j + \\varepsilon}$,
so its variance becomes $\\lambda_j/(\\lambda_j + \\varepsilon)$: about 1 for every direction with
$\\lambda_j \\gg \\varepsilon$, including directions of tiny variance that carry mostly noise. Those are
amplified by $1/\\sqrt{\\lambda_j}$, by factors of 100 or more, and weigh as much as the top components,
which hold the strokes' shapes: the classifier sees the noise at the same scale as the signal and
overfits it. The exactly constant directions ($\\lambda_j = 0$) stay 0 thanks to $\\varepsilon$. A larger
$\\varepsilon$ (e.g. 0.1 for pixels in [0, 16]) acts as a soft cut-off: directions with
$\\lambda_j \\ll \\varepsilon$ are shrunk instead of amplified, and only the large-variance directions are
equalised.

*Rubric (2 points).* 1 point for the effect (every direction with $\\lambda_j \\gg \\varepsilon$ gets variance
about 1, so low-variance noise directions are amplified to the scale of the signal, and a classifier can
fit that noise); 1 point for what a larger $\\varepsilon$ does (directions with $\\lambda_j \\ll \\varepsilon$ are
shrunk, not amplified: a soft cut-off).
""", "answer_whitening_noise", 2),
    md("""
**Question 3.** A classmate standardises (or PCA-reduces) the whole data set before splitting it into
training and test sets, and reports a test accuracy. Explain why that number is biased and in which
direction, and in which settings (number of examples, number of features, kind of preprocessing) the
bias is largest. How does a scikit-learn `Pipeline` inside `cross_val_score` avoid it?
"""),
    answer("""
*Model answer.* The statistics (mean, std, components) are then computed with the test examples, so the
preprocessing has seen them: the test set is no longer data the whole procedure never saw, and the
estimate is optimistic (too high an accuracy, too low an error). The bias grows with the number of
statistics fitted per example: it is tiny for a mean and std of a few features on many examples, and
large when many parameters are estimated from few examples (PCA or feature selection with D comparable
to N): the components then align with the test points. A `Pipeline` is refitted inside each fold:
`cross_val_score` calls `fit` on the training folds only, so the scaler or PCA never sees the held-out
fold, exactly as at deployment.

*Rubric (2 points).* 1 point for the direction of the bias (optimistic: the preprocessing has seen the test
examples) and when it is largest (many statistics from few examples, e.g. PCA or feature selection with
$D$ comparable to $N$); 1 point for the `Pipeline` (refitted on the training folds only inside
`cross_val_score`).
""", "answer_leakage", 2),
]

if __name__ == "__main__":
    write(CELLS, pathlib.Path(__file__).with_name("preprocessing") / "preprocessing.ipynb")
