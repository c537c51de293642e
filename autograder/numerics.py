"""Comparing arrays: one relative error for the whole course (torch-free).

Used by the checker engine (``autograder.checking``), by ``autograder.gradcheck`` and by
the book's pages, so that "relative error" means the same number everywhere.
"""
import numpy as np

# Relative-error limits per dtype (CS231n's elementwise relative error, see rel_error).
TOL = {np.dtype(np.float64): 1e-7, np.dtype(np.float32): 1e-3}


def tolerance(dtype):
    """The limit for ``dtype``; any other dtype is compared as float64."""
    return TOL.get(np.dtype(dtype), TOL[np.dtype(np.float64)])


def relative_errors(got, expected, floor=1e-8):
    """|a - b| / max(floor, |a| + |b|), elementwise; NaN where both are NaN counts as 0,
    a NaN on one side only as infinity (a NaN is never right)."""
    a = np.asarray(got, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.abs(a - b) / np.maximum(floor, np.abs(a) + np.abs(b))
    err = np.where(np.isnan(a) & np.isnan(b), 0.0, err)
    return np.where(np.isnan(err), np.inf, err)


def rel_error(got, expected, floor=1e-8) -> float:
    """max |a - b| / max(floor, |a| + |b|), elementwise (CS231n's definition, floor 1e-8)."""
    err = relative_errors(got, expected, floor)
    return float(np.max(err)) if err.size else 0.0


def error_floor(expected, dtype):
    """float32 keeps ~7 digits, so entries 1e4 times smaller than the largest carry
    cancellation noise: compare them on the scale of the largest entry instead."""
    if np.dtype(dtype) == np.float32 and np.size(expected):
        with np.errstate(invalid="ignore"):
            largest = float(np.nanmax(np.abs(np.asarray(expected, dtype=np.float64)), initial=0.0))
        return max(1e-8, 1e-4 * largest)
    return 1e-8


def matches(got, expected, dtype=np.float64) -> bool:
    """True when ``got`` equals ``expected`` (same shape) up to the tolerance of ``dtype``."""
    try:
        got = np.asarray(got, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if got.shape != np.shape(expected):
        return False
    return rel_error(got, expected, error_floor(expected, dtype)) <= tolerance(dtype)
