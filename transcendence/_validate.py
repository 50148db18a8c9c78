"""Input validation shared by the public functions (done once, at the boundary).

Tolerances (stated once here, used everywhere):

* ``ROW_ATOL = 1e-6``: a probability row must sum to one within this absolute tolerance. Rows are
  never renormalised silently: a row off by more than this is an error.

Arrays must hold real numbers: complex input is refused (its imaginary part is never dropped
silently). Tolerances (``tol``, ``atol``, ...) must be finite real numbers >= 0.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

ROW_ATOL = 1e-6


def as_array(name: str, value: object, *, ndim: int | tuple[int, ...] | None = None,
             min_ndim: int | None = None) -> np.ndarray:
    """``value`` as a float64 array with the given number of dimensions, or a ValueError naming it."""
    try:
        raw = np.asarray(value)
        if np.iscomplexobj(raw):
            raise ValueError(f"{name}: complex values are not accepted (dtype {raw.dtype}); pass real "
                             f"numbers (the imaginary part is never dropped silently)")
        arr = raw.astype(np.float64, copy=False)
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(f"{name}: "):
            raise
        raise ValueError(f"{name}: expected an array of real numbers, got {type(value).__name__}") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(d) for d in allowed)
            raise ValueError(f"{name}: expected {want} dimensions, got shape {arr.shape}")
    if min_ndim is not None and arr.ndim < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: is empty (shape {arr.shape})")
    return arr


def check_finite(name: str, arr: np.ndarray) -> None:
    if not np.isfinite(arr).all():
        bad = "NaN" if np.isnan(arr).any() else "infinite"
        raise ValueError(f"{name}: contains {bad} values")


def check_distribution(name: str, arr: np.ndarray, *, what: str = "row") -> None:
    """Every slice along the last axis is a probability vector: finite, >= 0, sums to one.

    Two passes (a minimum and a sum): if the minimum is >= 0 and every sum is finite and
    within ``ROW_ATOL`` of one, all entries are finite.
    """
    lowest = arr.min()
    if np.isnan(lowest):
        raise ValueError(f"{name}: contains NaN values")
    if lowest < 0:
        where = np.unravel_index(int(np.argmin(arr)), arr.shape)
        raise ValueError(f"{name}: probabilities must be >= 0, found {lowest:.3g} at index {tuple(map(int, where))}")
    sums = arr.sum(axis=-1)
    if not np.isfinite(sums).all():
        raise ValueError(f"{name}: contains infinite values")
    off = np.abs(sums - 1.0)
    if off.max() > ROW_ATOL:
        where = np.unravel_index(int(np.argmax(off)), sums.shape)
        raise ValueError(
            f"{name}: each {what} must sum to 1 (tolerance {ROW_ATOL:g}); the {what} at index "
            f"{tuple(map(int, where))} sums to {sums[where]:.10g}. Normalise it first "
            f"(nothing is renormalised silently).")


def check_shape(name: str, arr: np.ndarray, shape: tuple[int | None, ...], *, against: str) -> None:
    """``arr.shape`` must match ``shape`` (``None`` = any size) or ValueError naming both arguments."""
    if arr.ndim != len(shape) or any(s is not None and a != s for a, s in zip(arr.shape, shape)):
        want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: shape {arr.shape} does not agree with {against} (expected {want})")


def tolerance(name: str, value: object) -> float:
    """A tolerance: a finite real number >= 0, or a ValueError naming it."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: must be a finite real number >= 0, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name}: must be a finite real number >= 0, got {value!r}")
    return v


def integer(name: str, value: object, *, minimum: int) -> int:
    """An integer >= ``minimum`` (an integral float such as 3.0 is accepted), or a ValueError naming it."""
    if isinstance(value, (bool, np.bool_)):
        pass
    elif isinstance(value, numbers.Integral):
        if int(value) >= minimum:
            return int(value)
    elif isinstance(value, numbers.Real):
        v = float(value)
        if math.isfinite(v) and v == math.floor(v) and v >= minimum:
            return int(v)
    raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")


def weights(value: object, k: int) -> np.ndarray:
    """Relative expert weights ``(k,)``: finite, >= 0, not all zero; returned normalised to sum one.

    Scaled by their maximum before summing, so weights near the float limit (1e308) do not overflow.
    """
    w = as_array("weights", value, ndim=1)
    check_shape("weights", w, (k,), against="experts (k, n_x, n_y)")
    check_finite("weights", w)
    if (w < 0).any():
        raise ValueError(f"weights: must be >= 0 (relative amount of data per expert), got {w.min():g}")
    top = w.max()
    if top <= 0:
        raise ValueError("weights: at least one expert needs a positive weight")
    w = w / top
    return w / w.sum()


def temperatures(value: object) -> tuple[np.ndarray, bool]:
    """Validated temperatures as a 1-d array, and whether the caller passed a scalar."""
    arr = as_array("temperature", value, ndim=(0, 1))
    check_finite("temperature", arr)
    if (arr < 0).any():
        raise ValueError(f"temperature: must be >= 0 (0 means argmax), got {arr.min():g}")
    return np.atleast_1d(arr), arr.ndim == 0


def mode(value: str) -> str:
    if value not in ("logit", "prob"):
        raise ValueError(f"mode: must be 'logit' (softmax(log f / tau)) or 'prob' (softmax(f / tau)), got {value!r}")
    return value
