"""Numerical gradient checks that students can run on their own layers.

Example (in an assignment notebook)::

    from autograder.gradcheck import gradient_check
    gradient_check(prelu_forward, prelu_backward, {"x": x, "alpha": alpha}, wrt=("x", "alpha"))

The check compares the analytic gradients returned by ``backward(dout, cache)``
with central differences of ``sum(forward(...)[0] * dout)`` for a random ``dout``.
Explained in book/intro.md ("Checking your gradients").
"""
import numpy as np

from .numerics import rel_error  # the course's one relative error (CS231n's definition)


def numerical_gradient(f, x, dout, h=1e-5):
    """Central-difference gradient of sum(f(x) * dout) with respect to the array x.

    f: a function of x alone returning an array with dout's shape; x is perturbed
    in place and restored. Returns an array of x's shape.
    """
    grad = np.zeros_like(x, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=["readwrite"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def gradient_check(forward, backward, inputs, wrt=("x",), seed=0, h=1e-5, verbose=True):
    """Compare backward's gradients with numerical ones, in float64.

    forward(*inputs.values()) -> (out, cache); backward(dout, cache) -> the
    gradients of the inputs named in ``wrt``, in that order (one array or a tuple).
    Returns {name: relative error}. Below about 1e-7 is right; above 1e-3 is wrong.
    """
    inputs = {k: (np.array(v, dtype=np.float64) if isinstance(v, np.ndarray) else v)
              for k, v in inputs.items()}
    out, cache = forward(*inputs.values())
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(wrt):
        raise ValueError(f"backward returned {len(grads)} gradient(s) but wrt names {len(wrt)}: {wrt}")
    errors = {}
    for name, analytic in zip(wrt, grads):
        if np.shape(analytic) != np.shape(inputs[name]):
            errors[name] = float("inf")
            if verbose:
                print(f"d{name}: shape {np.shape(analytic)}, expected {np.shape(inputs[name])} (CHECK THIS)")
            continue
        def f(value, name=name):
            return forward(*{**inputs, name: value}.values())[0]
        numeric = numerical_gradient(f, inputs[name].copy(), dout, h)
        errors[name] = rel_error(analytic, numeric)
        if verbose:
            verdict = "ok" if errors[name] < 1e-6 else "CHECK THIS"
            print(f"d{name}: relative error {errors[name]:.2e} ({verdict})")
    return errors
