"""R-INLA's ``inla.group``: group a covariate into ``n`` classes, each replaced by its median.

R-INLA's definition (``rinla/R/group.R``)::

    inla.group(x, n = 25, method = c("cut", "quantile"), idx.only = FALSE)

* missing values (``NA``) stay missing; the rest is grouped on its own;
* ``n < 1`` is an error; ``n == 1`` gives ``median(x)`` for every value (also with
  ``idx.only = TRUE``, as in R-INLA);
* ``method = "cut"``: ``cut(x, n)``, i.e. ``n`` equal-length intervals over ``range(x)``,
  right-closed ``(a, b]``; R's breaks are ``seq(min, max, length.out = n + 1)`` with the two
  end points pushed out by ``diff(range(x)) / 1000`` so the minimum falls in the first;
* ``method = "quantile"``: ``cut(x, unique(quantile(x, c(0, ppoints(n - 1), 1))),
  include.lowest = TRUE)`` (``quantile`` of type 7; ``ppoints(m) = (1:m - a) / (m + 1 - 2a)``,
  ``a = 3/8`` when ``m <= 10`` else ``1/2``), so there can be fewer than ``n`` classes;
* each value is replaced by the median of the ``x`` values in its class; with
  ``idx.only = TRUE`` by the 1-based class number instead (empty classes keep their number).

One deliberate difference: a constant ``x`` with ``method = "quantile"`` is one class here
(values unchanged, class 1), where R's ``cut`` reads the single break as a number of intervals.

There is no shortcut for ``x`` with ``n`` or fewer distinct values: they are grouped like any
other ``x`` (with ``"cut"`` two close values can still share a class).

Example:
    >>> inla_group(np.arange(1.0, 11.0), n=2)   # R-INLA's help page: "this gives groups 3 and 8"
    array([3., 3., 3., 3., 3., 8., 8., 8., 8., 8.])
    >>> inla_group([0.0, 1.0, 2.0, np.nan, 10.0], n=2, idx_only=True)
    array([ 1.,  1.,  1., nan,  2.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DataError
from .allowed import check_size

__all__ = ["inla_group", "match_method"]

METHODS = ("cut", "quantile")


def match_method(method: str) -> str:
    """R's ``match.arg`` over ``c("cut", "quantile")``: an exact name or a unique prefix."""
    if not isinstance(method, str):
        raise DataError(f"inla.group(): method must be \"cut\" or \"quantile\", not {method!r}")
    if method in METHODS:
        return method
    hits = [m for m in METHODS if method and m.startswith(method)]
    if len(hits) != 1:
        raise DataError(f"inla.group(): 'method' should be one of \"cut\", \"quantile\", not {method!r}")
    return hits[0]


def _r_seq(start: float, stop: float, length_out: int) -> np.ndarray:
    """R's ``seq.int(from, to, length.out=)`` (the first half counted up, the rest down)."""
    out = np.empty(length_out)
    if length_out > 2:
        by = (stop - start) / (length_out - 1)
        i = np.arange(length_out)
        out[:] = np.where(i < length_out // 2, start + i * by, stop - (length_out - 1 - i) * by)
    out[0] = start
    out[-1] = stop
    return out


def _cut_breaks_n(x: np.ndarray, breaks: float) -> np.ndarray:
    """R's ``cut(x, breaks)`` breaks for a single number ``breaks`` (the number of intervals)."""
    if not np.isfinite(breaks) or breaks < 2:
        raise DataError(f"inla.group(): invalid number of intervals ({breaks:g})")
    nb = int(breaks + 1)
    lo, hi = float(np.min(x)), float(np.max(x))
    dx = hi - lo
    if dx == 0:
        dx = abs(lo) if lo != 0 else 1.0
        return _r_seq(lo - dx / 1000, hi + dx / 1000, nb)
    b = _r_seq(lo, hi, nb)
    b[0], b[-1] = lo - dx / 1000, hi + dx / 1000
    return b


def _bincode(x: np.ndarray, breaks: np.ndarray, include_lowest: bool) -> np.ndarray:
    """R's ``.bincode(x, breaks, right = TRUE, include.lowest)``: 0-based class, -1 outside."""
    idx = np.searchsorted(breaks, x, side="left") - 1        # breaks[i] < x <= breaks[i + 1]
    if include_lowest:
        idx[x == breaks[0]] = 0
    idx[(x < breaks[0]) | (x > breaks[-1])] = -1
    return idx


def _r_quantile7(x: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """R's ``quantile(x, probs)`` of type 7, with R's interpolation formula."""
    xs = np.sort(x)
    index = 1 + (len(xs) - 1) * probs
    lo = np.floor(index).astype(int)
    hi = np.ceil(index).astype(int)
    qs = xs[lo - 1].copy()
    xhi = xs[hi - 1]
    i = (index > lo) & (xhi != qs)
    h = (index - lo)[i]
    qs[i] = (1 - h) * qs[i] + h * xhi[i]
    return qs


def _ppoints(m: int) -> np.ndarray:
    a = 3 / 8 if m <= 10 else 1 / 2
    return (np.arange(1, m + 1) - a) / (m + 1 - 2 * a)


def _r_median(v: np.ndarray) -> float:
    """R's ``median``: the mean of the two middle values (in extended precision, like R)."""
    v = np.sort(v)
    k = len(v)
    if k % 2:
        return float(v[k // 2])
    return float((np.longdouble(v[k // 2 - 1]) + np.longdouble(v[k // 2])) / 2)


def _group_core(x: np.ndarray, n: float, method: str, idx_only: bool) -> np.ndarray:
    if n == 1:
        return np.full(len(x), _r_median(x))
    if method == "cut":
        code = _bincode(x, _cut_breaks_n(x, n), include_lowest=False)
    else:
        probs = np.concatenate([[0.0], _ppoints(int(n - 1)), [1.0]])
        aq = np.unique(_r_quantile7(x, probs))
        # one break left (all x equal): R's cut() would read it as a number of intervals
        # (an error for x in [0, 2), an arbitrary class number otherwise); one class here
        code = np.zeros(len(x), dtype=np.int64) if len(aq) == 1 else _bincode(x, aq, include_lowest=True)
    if idx_only:
        return code + 1.0
    values = np.full(int(code.max()) + 1, np.nan)
    for k in np.unique(code):
        values[k] = _r_median(x[code == k])
    return values[code]


def inla_group(x: Any, n: float = 25, method: str = "cut", idx_only: bool = False) -> np.ndarray:
    """R-INLA's ``inla.group(x, n, method, idx.only)`` (see the module doc for the rule).

    Args:
        x: 1-d numbers; NaN (R's NA) stays NaN.
        n: number of classes (``>= 1``); R truncates a fractional ``n`` in ``cut``.
        method: ``"cut"`` (equal-length intervals) or ``"quantile"`` (R's ``match.arg``:
            a unique prefix such as ``"q"`` works too).
        idx_only: return the 1-based class of each value instead of the class median.

    Returns:
        (len(x),) float64: the class medians, or the class numbers with ``idx_only``.

    Raises:
        DataError: ``n < 1``, an unknown method, or an ``x`` that is not 1-d numbers.

    Example:
        >>> inla_group([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], n=2)   # R: inla.group(x, n = 2)
        array([2.5, 2.5, 2.5, 2.5, 6.5, 6.5, 6.5, 6.5])
        >>> inla_group([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], n=2, idx_only=True)
        array([1., 1., 1., 1., 2., 2., 2., 2.])
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError("inla.group(): x must be numbers") from None
    if arr.ndim != 1:
        raise DataError(f"inla.group(): x must be a vector (1-d), not shape {arr.shape}")
    try:
        n = float(n)
    except (TypeError, ValueError):
        raise DataError(f"inla.group(): n must be a number, not {n!r}") from None
    if not n >= 1:
        raise DataError("inla.group(): Number of groups must be > 0")
    check_size(n + 1, "inla.group(n=)")  # the breaks: formula text must not exhaust memory
    method = match_method(method)
    ok = ~np.isnan(arr)
    out = arr.copy()
    if ok.any():
        out[ok] = _group_core(arr[ok], n, method, bool(idx_only))
    return out
