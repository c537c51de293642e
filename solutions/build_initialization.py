"""Writes solutions/initialization/initialization.ipynb, the nbgrader source of assignment 3. Kept outside
solutions/initialization/ so that the release does not copy it. Run from the repository root:

    python solutions/build_initialization.py && python -m autograder release initialization
"""
import pathlib

from autograder.notebook_builder import answer, checked, code, md, solution, test, write

BOOK = "{{ book_url }}/book/initialization"



CELLS = [
    md(f"""
# Assignment 3: weight initialisation

You will implement, in numpy, the initialisers of `torch.nn.init`: the gain of each nonlinearity, torch's
fan rule, Xavier (Glorot) and Kaiming (He) initialisation in their uniform and normal forms, orthogonal
initialisation, and a function that measures what an initialisation does to the activations of a deep
network. The book's chapter [Weight initialisation]({BOOK}/index.html) derives every formula used here
([Deriving the scale]({BOOK}/derivations.html)) and runs the experiments you will reproduce
([Symmetry, and the scale of a deep network]({BOOK}/experiments.html)).

**Conventions** (torch's, so the autograder can compare):

- Weight shapes are torch's: a Linear weight is `(out_features, in_features)`, a conv weight
  `(C_out, C_in, kH, kW)` (or `(C_out, C_in, k)`, `(C_out, C_in, kD, kH, kW)`).
- Every sampler takes `shape` and `rng`, a `np.random.Generator`, draws **only** from `rng` (never from
  `np.random.*`'s global state), and returns a new float64 array of that shape. Same seed, same array.
- Arguments and defaults are exactly torch's (`a=0`, `mode="fan_in"`, `nonlinearity="leaky_relu"` for
  Kaiming; `gain=1` for Xavier and orthogonal).

**Checks.** Your samplers return random numbers, so they are not compared with torch's numbers (torch's
random stream is not numpy's). The checks test the *distribution* of your samples: a Kolmogorov-Smirnov
test against the law torch draws from, the standard deviation within a confidence band computed from the
sample size, uniform samples inside their bounds and filling them. Each test is set so that a correct
implementation fails it with probability below one in a hundred million: if a check fails, your code is
wrong, not unlucky. The cell under each function runs the checks the autograder runs (it adds more shapes
and seeds); a failure names the input, what was measured, and the likely mistake.
"""),
    code("""
# Run this cell first. On Colab it installs the course package (about a minute).
import numpy as np
try:
    import autograder
except ImportError:
    %pip install -q "autograder @ git+{{ repository_url }}"
from autograder.initialization import checks
""", "setup"),
    md("""
## 1. Gains and fans

Each nonlinearity changes the scale of the signal that goes through it; its **gain** is the factor that
restores it (`torch.nn.init.calculate_gain`):

| nonlinearity | gain |
|---|---|
| `linear`, `conv1d`, `conv2d`, `conv3d`, `conv_transpose1d/2d/3d`, `sigmoid` | $1$ |
| `tanh` | $5/3$ |
| `relu` | $\\sqrt{2}$ |
| `leaky_relu` with negative slope $a$ (`param`, default $0.01$) | $\\sqrt{2/(1+a^2)}$ |
| `selu` | $3/4$ |

Anything else raises `ValueError`, as torch does; so does a `param` for leaky ReLU that is not an `int` or
a `float` (note that `True` is an `int` in Python, and torch still refuses it).

The **fans** of a weight: a Linear weight `(out, in)` has `fan_in = in` (each output sums over `in`
inputs) and `fan_out = out`. A conv weight `(C_out, C_in, k_1, ..., k_d)` has a receptive field
$r = k_1 \\cdots k_d$: `fan_in = C_in * r`, `fan_out = C_out * r`. A shape with fewer than 2 dimensions
raises `ValueError`.
"""),
    solution('''
def calculate_gain(nonlinearity, param=None):
    """The recommended gain for a nonlinearity, as torch.nn.init.calculate_gain.

    Inputs:
    - nonlinearity: a name, e.g. "relu", "tanh", "leaky_relu"
    - param: leaky ReLU's negative slope (None: 0.01); ignored by the other nonlinearities
    Returns a float; raises ValueError for an unknown nonlinearity or an invalid param.
    """
    ### BEGIN SOLUTION
    linear = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid"]
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return float(np.sqrt(2.0))
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, (int, float)):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return float(np.sqrt(2.0 / (1 + slope ** 2)))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
    ### END SOLUTION


def fan_in_and_fan_out(shape):
    """torch's fan rule.

    Inputs:
    - shape: a weight's shape, (out, in) for Linear, (C_out, C_in, k1, ..., kd) for conv
    Returns a tuple of 2 ints (fan_in, fan_out); raises ValueError for fewer than 2 dimensions.
    """
    ### BEGIN SOLUTION
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for a shape with fewer than 2 dimensions")
    receptive_field = 1
    for k in shape[2:]:
        receptive_field *= int(k)
    fan_in = int(shape[1]) * receptive_field
    fan_out = int(shape[0]) * receptive_field
    ### END SOLUTION
    return fan_in, fan_out
''', "gains_and_fans"),
    checked("calculate_gain"),
    checked("fan_in_and_fan_out"),
    md("""
## 2. Xavier (Glorot) initialisation

Glorot and Bengio (2010) keep the variance of the activations (forward: $\\mathrm{fan_{in}}\\,\\mathrm{Var}(W) = 1$)
and of the gradients (backward: $\\mathrm{fan_{out}}\\,\\mathrm{Var}(W) = 1$) as well as both allow:
$\\mathrm{Var}(W) = 2/(\\mathrm{fan_{in}} + \\mathrm{fan_{out}})$, times `gain`$^2$:

$$\\mathrm{std} = \\mathrm{gain}\\,\\sqrt{\\frac{2}{\\mathrm{fan_{in}} + \\mathrm{fan_{out}}}}, \\qquad
W \\sim \\mathcal N(0, \\mathrm{std}^2) \\quad\\text{or}\\quad W \\sim \\mathcal U(-b, b),\\ b = \\sqrt{3}\\,\\mathrm{std}.$$
"""),
    solution('''
def xavier_uniform(shape, rng, gain=1.0):
    """Xavier/Glorot uniform initialisation, as torch.nn.init.xavier_uniform_.

    Inputs:
    - shape: the weight's shape (torch's layout); rng: a np.random.Generator; gain: a scale factor
    Returns a new float64 array of that shape, U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)).
    """
    ### BEGIN SOLUTION
    fan_in, fan_out = fan_in_and_fan_out(shape)
    bound = np.sqrt(3.0) * gain * np.sqrt(2.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape)
    ### END SOLUTION


def xavier_normal(shape, rng, gain=1.0):
    """Xavier/Glorot normal initialisation, as torch.nn.init.xavier_normal_.

    Returns a new float64 array of shape `shape`, N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out)).
    """
    ### BEGIN SOLUTION
    fan_in, fan_out = fan_in_and_fan_out(shape)
    std = gain * np.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, size=shape)
    ### END SOLUTION
''', "xavier"),
    checked("xavier_uniform"),
    checked("xavier_normal"),
    md("""
## 3. Kaiming (He) initialisation

He et al. (2015): after a ReLU only half of the variance survives, $E[\\mathrm{relu}(z)^2] = \\mathrm{Var}(z)/2$,
so keeping the activations' scale needs $\\mathrm{Var}(W) = 2/\\mathrm{fan_{in}}$. In general

$$\\mathrm{std} = \\frac{\\mathrm{gain}}{\\sqrt{\\mathrm{fan}}}, \\qquad \\mathrm{gain} = \\texttt{calculate\\_gain(nonlinearity, a)},$$

with `fan` = `fan_in` (`mode="fan_in"`, the forward pass's condition) or `fan_out` (`mode="fan_out"`, the
backward pass's). Uniform: bound $b = \\sqrt{3}\\,\\mathrm{std}$. torch's defaults are `a=0`,
`mode="fan_in"`, `nonlinearity="leaky_relu"` (so, with $a = 0$, ReLU's gain $\\sqrt 2$).
"""),
    solution('''
def _kaiming_std(shape, a, mode, nonlinearity):
    fan_in, fan_out = fan_in_and_fan_out(shape)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / np.sqrt(fan)


def kaiming_uniform(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """Kaiming/He uniform initialisation, as torch.nn.init.kaiming_uniform_.

    Inputs:
    - shape, rng: as for xavier_uniform
    - a: leaky ReLU's negative slope (used with nonlinearity="leaky_relu")
    - mode: "fan_in" (preserve the activations' variance) or "fan_out" (the gradients')
    - nonlinearity: the name given to calculate_gain
    Returns a new float64 array, U(-b, b) with b = sqrt(3) * gain / sqrt(fan).
    """
    ### BEGIN SOLUTION
    bound = np.sqrt(3.0) * _kaiming_std(shape, a, mode, nonlinearity)
    return rng.uniform(-bound, bound, size=shape)
    ### END SOLUTION


def kaiming_normal(shape, rng, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """Kaiming/He normal initialisation, as torch.nn.init.kaiming_normal_.

    Returns a new float64 array of shape `shape`, N(0, std^2) with std = gain / sqrt(fan).
    """
    ### BEGIN SOLUTION
    std = _kaiming_std(shape, a, mode, nonlinearity)
    return rng.normal(0.0, std, size=shape)
    ### END SOLUTION
''', "kaiming"),
    checked("kaiming_uniform"),
    checked("kaiming_normal"),
    md(f"""
## 4. Orthogonal initialisation

Saxe et al. (2014): a weight whose rows (or columns) are orthonormal preserves the norm of every vector it
maps, in every direction, not only on average. Flatten the shape to `(rows, cols)` with `rows = shape[0]`;
draw a Gaussian matrix of shape `(max, min)` (transposed when `rows < cols`), take its QR decomposition
and return $Q$ (transposed back, reshaped, times `gain`).

One detail matters: $Q$ is uniformly distributed over the orthogonal matrices (the *Haar* distribution)
only if the decomposition is made unique, by making $R$'s diagonal positive: multiply each column of $Q$
by the sign of the matching diagonal entry of $R$. The checks can tell. The book's page
[Orthogonal, data-dependent, normalised]({BOOK}/orthogonal-and-beyond.html) shows why orthogonal
matrices matter in deep products.
"""),
    solution('''
def orthogonal(shape, rng, gain=1.0):
    """Orthogonal initialisation, as torch.nn.init.orthogonal_.

    Inputs:
    - shape: at least 2 dimensions; flattened to (shape[0], prod(shape[1:]))
    - rng: a np.random.Generator; gain: a scale factor
    Returns a new float64 array of shape `shape` whose flattened form W has W @ W.T = gain^2 I
    (rows <= cols) or W.T @ W = gain^2 I (rows > cols), uniformly distributed.
    """
    ### BEGIN SOLUTION
    rows = shape[0]
    cols = int(np.prod(shape[1:]))
    A = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(A)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return gain * q.reshape(shape)
    ### END SOLUTION
''', "orthogonal"),
    checked("orthogonal"),
    md("""
## 5. What an initialisation does to a deep network

Measure the activations of a bias-free multi-layer network: start from `h = X` `(N, D)`; for each width
`H` in `layer_sizes`, in order, draw `W = init((H, h.shape[1]), rng)` (torch's layout: `(out, in)`), then
`h = f(h @ W.T)` with `f` the `nonlinearity` (`"tanh"`, `"relu"` or `"linear"`), and record the mean and
the standard deviation of all of `h`'s entries (`np.std`, N in the denominator). Call `init` exactly once
per layer, first layer first, with the `rng` you are given: the check passes an `init` that draws from it.
"""),
    solution('''
def layer_statistics(X, layer_sizes, init, nonlinearity, rng):
    """Per-layer mean and std of the activations of a bias-free MLP.

    Inputs:
    - X: (N, D) input
    - layer_sizes: the widths H_1, ..., H_L
    - init: init(shape, rng) -> a weight of shape (out, in)
    - nonlinearity: "tanh", "relu" or "linear"
    - rng: a np.random.Generator, passed to init
    Returns a tuple of:
    - means: (L,) the mean of each layer's activations f(h W^T)
    - stds: (L,) their standard deviation (ddof=0)
    """
    ### BEGIN SOLUTION
    functions = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z}
    f = functions[nonlinearity]
    h = X
    means, stds = [], []
    for size in layer_sizes:
        W = init((size, h.shape[1]), rng)
        h = f(h @ W.T)
        means.append(h.mean())
        stds.append(h.std())
    return np.array(means), np.array(stds)
    ### END SOLUTION
''', "layer_statistics"),
    checked("layer_statistics"),
    md(f"""
## 6. Bonus: data-dependent initialisation (LSUV)

Mishkin and Matas's *layer-sequential unit variance* ([the book's section]({BOOK}/orthogonal-and-beyond.html))
measures instead of deriving. Given a stack of `L` square weights `W` `(L, H, H)` (each in torch's layout
`(out, in)`, typically orthogonal) and a batch `X` `(N, H)`, go through the layers from the input: up to
`max_iter` times, compute the standard deviation (`np.std`, N in the denominator) of the layer's
activations `f(h @ W[l].T)` on the batch; if it is within `tol` of 1, stop; otherwise divide `W[l]` by it.
Then move on with `h = f(h @ W[l].T)`, computed with the **rescaled** weight. Return the rescaled stack as
a new array (leave `W` unchanged). This cell is a bonus: its point is counted separately from the others.
"""),
    solution('''
def lsuv_init(W, X, nonlinearity, tol=0.01, max_iter=10):
    """Layer-sequential unit variance on a stack of square weights.

    Inputs:
    - W: (L, H, H) weights, layer l's in torch's layout (out, in)
    - X: (N, H) a batch of inputs
    - nonlinearity: "tanh", "relu" or "linear"
    - tol: stop rescaling a layer when |std - 1| < tol
    - max_iter: at most this many rescalings per layer
    Returns:
    - out: (L, H, H) the rescaled weights, a new array
    """
    ### BEGIN SOLUTION
    functions = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0), "linear": lambda z: z}
    f = functions[nonlinearity]
    out = W.copy()
    h = X
    for layer in range(out.shape[0]):
        for _ in range(max_iter):
            std = f(h @ out[layer].T).std()
            if abs(std - 1.0) < tol:
                break
            out[layer] = out[layer] / std
        h = f(h @ out[layer].T)
    return out
    ### END SOLUTION
''', "lsuv_init"),
    checked("lsuv_init"),
    md("""
## 7. The deep-net experiment

Not graded: your functions in the experiment of the book's chapter, ten tanh layers of 500 units on
unit-Gaussian data, then ReLU. Look at the printed standard deviations before you answer the questions.
"""),
    code("""
rng = np.random.default_rng(0)
X = rng.standard_normal((1000, 500))
inits = {
    "N(0, 0.01^2)": lambda shape, rng: rng.normal(0.0, 0.01, size=shape),
    "N(0, 1)": lambda shape, rng: rng.normal(0.0, 1.0, size=shape),
    "Xavier": lambda shape, rng: xavier_normal(shape, rng, gain=calculate_gain("tanh")),
}
for name, init in inits.items():
    _, stds = layer_statistics(X, [500] * 10, init, "tanh", np.random.default_rng(1))
    print(f"tanh, {name:12s} std per layer:", np.round(stds, 3))
for name, init in {"Xavier (gain 1)": lambda s, r: xavier_normal(s, r),
                   "He": lambda s, r: kaiming_normal(s, r, nonlinearity="relu")}.items():
    _, stds = layer_statistics(X, [500] * 10, init, "relu", np.random.default_rng(1))
    print(f"relu, {name:15s} std per layer:", np.round(stds, 3))
""", "experiment"),
    md("""
## 8. Capstone: a deep net with your initialisers

Your `xavier_normal`, `kaiming_normal` and `calculate_gain` in two 10-layer networks of 32 units
provided by the course (numpy, seeded: the same run for everyone), on 500 standardised digits: tanh
with `xavier_normal(shape, rng, calculate_gain("tanh"))` and ReLU with
`kaiming_normal(shape, rng, nonlinearity="relu")`, each hidden weight drawn in order from
`np.random.default_rng(0)`; the baseline is the tanh network with $N(0, 0.01^2)$ weights. Measured:
the standard deviation of every hidden layer's activations at initialisation, and the loss over 40
full-batch SGD steps (learning rate 0.2).

Outcomes (`capstone_deep_net`, 3 points): with your initialisers the activations' standard deviation
of layer 10 stays between 0.4 and 2.5 times layer 1's, while with std 0.01 it collapses (below
$10^{-6}$ of layer 1's); both of your networks train (loss at most 1.6 after 40 steps, from about
2.5) while the 0.01 network does not (at least 2.2; $\\ln 10 = 2.30$). The grader tests your weights
against the laws of `torch.nn.init` (the same statistical tests as the checks above), then re-runs the
networks from them itself and compares the runs, so only correct initialisers pass. A message
says which law or outcome was missed, or where your run first leaves the reference run.
"""),
    test("checks.capstone_deep_net(xavier_normal, kaiming_normal, calculate_gain)", "capstone_deep_net", 3),
    md("""
## 9. Written questions

Answer in a few sentences in the cells below; these are graded by your instructor.
"""),
    md("""
**Question 1.** A two-layer network is initialised with every weight and bias equal to 0 (or every weight
equal to the same constant $c$). Show, from the gradient of the loss with respect to the hidden units'
weight vectors, that the hidden units stay identical after any number of gradient-descent steps. What does
random initialisation break, and why does the *scale* of the random numbers not matter for this argument?
"""),
    answer("""
*Model answer.* With equal incoming weights $w_j = w$ for every hidden unit $j$ (and equal outgoing weights
$v_j = v$), every unit computes the same $h_j = f(w^\\top x)$ for every input, and its gradient is
$\\partial L/\\partial w_j = \\sum_n \\delta_n v_j f'(w^\\top x_n) x_n$, the same for every $j$ (the upstream
error $\\delta_n$ is shared and $v_j$, $w_j$ are equal). The update keeps $w_j$ equal, and likewise the $v_j$
(their gradient $\\sum_n \\delta_n h_j(x_n)$ is the same): by induction the units stay copies, and the layer
is a single unit repeated. With all zeros and ReLU or tanh, moreover, $h_j = 0$ and the gradient of the
first layer is $v_j = 0$ times something: it does not even move. Random initialisation breaks the symmetry:
distinct $w_j$ give distinct $h_j$ and distinct gradients. Any nonzero scale breaks it; the scale matters
for the variance of the signal (question 2), not for the symmetry.

*Rubric (2 points).* 1 point for the gradient argument (the same upstream error and equal weights give
every hidden unit the same gradient, so equal weights stay equal, by induction); 1 point for what random
initialisation breaks (symmetry: distinct units) and why the scale is irrelevant to it (any nonzero
spread breaks the symmetry; the scale matters for the signal's variance). No point for "zero weights
give zero gradients" alone: it does not cover the constant $c$.
""", "answer_symmetry", 2),
    md("""
**Question 2.** Derive He's factor 2: for $z = \\sum_{i=1}^{n} w_i x_i$ with $w_i$ independent, zero-mean,
of variance $\\sigma^2$, independent of the $x_i = \\mathrm{relu}(z'_i)$ where the $z'_i$ are symmetric around
0 with variance $v$, compute $\\mathrm{Var}(z)$. Which $\\sigma^2$ keeps $\\mathrm{Var}(z) = v$ from layer to
layer? Then predict, as a number, the standard deviation of the activations at layer 50 of a 500-unit ReLU
network initialised with Xavier (gain 1) instead, relative to layer 1.
"""),
    answer("""
*Model answer.* $\\mathrm{Var}(z) = \\sum_i \\mathrm{Var}(w_i x_i) = n\\,\\sigma^2 E[x_i^2]$ (zero-mean $w$,
independence; note $E[x^2]$, not $\\mathrm{Var}(x)$, since $x = \\mathrm{relu}(z')$ has a positive mean). For
$z'$ symmetric, $E[\\mathrm{relu}(z')^2] = \\frac12 E[z'^2] = v/2$. So $\\mathrm{Var}(z) = n \\sigma^2 v/2$, and
$\\mathrm{Var}(z) = v$ needs $\\sigma^2 = 2/n = 2/\\mathrm{fan_{in}}$. With Xavier on a square layer,
$\\sigma^2 = 2/(n + n) = 1/n$: each layer multiplies the variance by $1/2$, the standard deviation by
$1/\\sqrt 2$. After 49 more layers the standard deviation is $2^{-49/2} \\approx 2 \\times 10^{-8}$ of layer
1's: the activations (and the gradients, which shrink the same way) vanish.

*Rubric (2 points).* 1 point for $\\mathrm{Var}(z) = n\\sigma^2 E[x^2]$ with $E[\\mathrm{relu}(z')^2] = v/2$,
hence $\\sigma^2 = 2/\\mathrm{fan_{in}}$ (using $\\mathrm{Var}(x)$ instead of $E[x^2]$: half a point); 1 point
for the prediction, a factor $1/\\sqrt 2$ per layer, about $2^{-49/2} \\approx 2 \\times 10^{-8}$ at layer 50
(any clear equivalent form).
""", "answer_he_factor", 2),
    md("""
**Question 3.** Orthogonal matrices preserve every vector's norm. Explain why a product of 50 orthogonal
matrices is still orthogonal but a product of 50 Gaussian matrices scaled to preserve the norm *on
average* (variance $1/n$) is not: what happens to its singular values as depth grows, and why does that
matter for training a deep *linear* network (Saxe et al., 2014)? What changes once there are nonlinearities
between the layers?
"""),
    answer("""
*Model answer.* $Q_1 Q_2$ is orthogonal when $Q_1, Q_2$ are: all singular values of the product stay exactly
1, at any depth, so every direction of the input reaches the output (and every gradient direction the
input) with the same scale (dynamical isometry). A Gaussian matrix with variance $1/n$ preserves the norm
only on average: its singular values spread over $[0, 2]$ (the quarter-circle law), and in a product the
spreads multiply: the largest singular value grows and the smallest shrink exponentially with depth, so
the product becomes nearly low-rank, most directions are crushed and a few amplified; learning along the
crushed directions is exponentially slow, which is the depth-dependent slowdown Saxe et al. measure and
orthogonal initialisation removes. With nonlinearities the Jacobian includes the diagonal derivatives of
the activation, which are not orthogonal (ReLU zeroes half the directions, tanh shrinks them), so isometry
is only approximate, near the linear regime of tanh with a suitable gain.

*Rubric (2 points).* 1 point for the singular values (all exactly 1 for the orthogonal product; spreading
with depth for the Gaussian product, largest growing and smallest shrinking); 1 point for the consequence
(directions crushed or amplified, learning slow along them; isometry only approximate with
nonlinearities, whose derivatives are not orthogonal).
""", "answer_orthogonal", 2),
]

if __name__ == "__main__":
    write(CELLS, pathlib.Path(__file__).with_name("initialization") / "initialization.ipynb")
