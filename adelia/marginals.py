"""Functions on posterior marginals: R-INLA's ``inla.dmarginal``, ``inla.qmarginal`` & co.

A *marginal* is a density given at increasing points: what ``res.marginals_fixed["x1"]``,
``res.marginals_hyperpar[...]`` and ``res.marginals_random["idx"].sel(ID=3)`` hold. Every
function here accepts

* an xarray ``DataArray`` over a coordinate ``x`` (density values),
* an xarray ``Dataset`` with variables ``x`` and ``density`` (or ``y``) on one node
  (e.g. ``res.marginals_random["plate"].sel(ID=3)``),
* an ``(n, 2)`` array (R's matrix form: x in column 0, density in column 1),
* a pair ``(x, y)``, a mapping ``{"x": ..., "y": ...}`` or a DataFrame with columns x, y.

The semantics are R-INLA's (``rinla/R/marginal.R``): the density is interpolated by a cubic
spline in log-density (``smarginal``) and is zero outside the range of the given points (no
extrapolation). Differences, all in accuracy and not in meaning:

* the log-density spline is in x (exact for Gaussian marginals; R splines on a warped axis);
* the cdf is the running integral of a cubic spline through the density on ``length``
  equidistant points merged with the interpolation points (R: a cumulative sum on the
  equidistant points, half a cell off); monotone interpolation is PCHIP (R: Hyman splines);
* expectations use the composite Simpson rule for unequal cells on that same grid (R:
  Simpson weights on the unequal interpolation grid);
* ``tmarginal`` places its points at the quantiles Φ(z), z equidistant in [−6, 6] (R: at
  i/(n+1), which cuts 2/(n+1) of the mass from the tails), and differentiates ``fun`` by a
  fourth-order central difference (R: the Deriv/numDeriv packages);
* ``zmarginal`` returns its numbers and prints only with ``silent=False``.

Example:
    >>> import numpy as np, scipy.stats as st
    >>> x = np.linspace(-6, 6, 61)
    >>> m = np.column_stack([x, st.norm.pdf(x)])
    >>> round(float(qmarginal(0.975, m)), 3)
    1.96
    >>> round(float(emarginal(lambda t: t**2, m)), 4)
    1.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import optimize, special
from scipy.interpolate import CubicSpline, PchipInterpolator

from .errors import DataError

__all__ = [
    "dmarginal",
    "emarginal",
    "hpdmarginal",
    "mmarginal",
    "pmarginal",
    "qmarginal",
    "rmarginal",
    "smarginal",
    "tmarginal",
    "zmarginal",
]

_EPS = np.finfo(float).eps


# ----------------------------------------------------------------------------------------------
# input and output forms
# ----------------------------------------------------------------------------------------------
def _as_xy(marginal: Any) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) as float arrays, sorted by x, without NaN densities."""
    if isinstance(marginal, xr.DataArray):
        if marginal.ndim != 1 or "x" not in marginal.coords:
            raise DataError(
                f"a marginal DataArray must be 1-D over a coordinate 'x' (density values); got dims {marginal.dims} "
                f"and coordinates {list(marginal.coords)}"
            )
        x, y = marginal["x"].values, marginal.values
    elif isinstance(marginal, xr.Dataset):
        yname = "density" if "density" in marginal else "y"
        if "x" not in marginal or yname not in marginal:
            raise DataError(f"a marginal Dataset needs variables 'x' and 'density'; it has {list(marginal.data_vars)}")
        x, y = marginal["x"].values, marginal[yname].values
        if x.ndim != 1:
            extra = {d: n for d, n in marginal["x"].sizes.items() if d != "point"}
            raise DataError(
                f"the marginal Dataset holds several nodes ({extra}); select one, e.g. marginals_random[label].sel(ID=...)"
            )
    elif isinstance(marginal, pd.DataFrame):
        if not {"x", "y"} <= set(marginal.columns):
            raise DataError(f"a marginal DataFrame needs columns 'x' and 'y'; it has {list(marginal.columns)}")
        x, y = marginal["x"].to_numpy(), marginal["y"].to_numpy()
    elif isinstance(marginal, Mapping):
        if "x" not in marginal or "y" not in marginal:
            raise DataError(f"a marginal mapping needs keys 'x' and 'y'; it has {list(marginal)}")
        x, y = marginal["x"], marginal["y"]
    elif isinstance(marginal, tuple | list) and len(marginal) == 2:
        x, y = marginal
    else:
        arr = np.asarray(marginal, dtype=float)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise DataError(
                f"a marginal must be a DataArray over 'x', a one-node Dataset, an (n, 2) array, (x, y) or "
                f"{{'x':..., 'y':...}}; got {type(marginal).__name__} of shape {arr.shape}"
            )
        x, y = arr[:, 0], arr[:, 1]
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise DataError(f"the marginal's x ({x.size} values) and density ({y.size} values) differ in length")
    ok = np.isfinite(x) & ~np.isnan(y)
    order = np.argsort(x[ok], kind="stable")
    return x[ok][order], y[ok][order]


def _like(marginal: Any, x: np.ndarray, y: np.ndarray):
    """A new marginal (x, y) in the form of the input ``marginal``."""
    if isinstance(marginal, xr.DataArray | xr.Dataset):
        name = marginal.name if isinstance(marginal, xr.DataArray) else None
        return xr.DataArray(y, coords={"x": x}, dims="x", name=name)
    if isinstance(marginal, pd.DataFrame):
        return pd.DataFrame({"x": x, "y": y})
    if isinstance(marginal, Mapping):
        return {"x": x, "y": y}
    if isinstance(marginal, tuple | list):
        return x, y
    return np.column_stack([x, y])


def _fix(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop points with zero or negligible density (R's ``inla.marginal.fix``): the spline is
    in log-density."""
    if y.size == 0 or not np.any(y > 0):
        raise DataError("the marginal has no positive density values")
    keep = (y > 0) & (np.abs(y / np.max(y)) > 1000 * _EPS)
    x, y = x[keep], y[keep]
    # repeated x values cannot be interpolated: keep the first
    first = np.concatenate([[True], np.diff(x) > 0])
    return x[first], y[first]


# ----------------------------------------------------------------------------------------------
# the interpolated density
# ----------------------------------------------------------------------------------------------
def _smooth(x: np.ndarray, y: np.ndarray, extrapolate: float = 0.0, factor: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """R's ``inla.smarginal`` in log scale: (x_fine, log density), each cell of the given
    points split into ``factor`` (about ``factor`` × as many points; dense where the given
    points are dense).

    The log-density is interpolated by a not-a-knot cubic spline in x, which reproduces a
    Gaussian (log-quadratic) marginal exactly; R-INLA splines on a warped axis (cell widths
    d_i mapped to √d_i) instead, which is not exact for Gaussians on uneven grids."""
    x, y = _fix(x, y)
    ly = np.log(y)
    if x.size < 2:
        raise DataError(f"a marginal needs at least 2 points with positive density, got {x.size}")
    r = x[-1] - x[0]
    knots = np.concatenate([[x[0] - extrapolate * r], x, [x[-1] + extrapolate * r]]) if extrapolate else x
    n_fine = int(factor) * (knots.size - 1) + 1
    fine_x = np.interp(np.linspace(0.0, knots.size - 1.0, n_fine), np.arange(knots.size), knots)
    if x.size >= 4:
        fine = CubicSpline(x, ly, bc_type="not-a-knot", extrapolate=True)(fine_x)
    else:
        fine = np.interp(fine_x, x, ly)
    return fine_x, fine


class _Interpolated:
    """The smoothed marginal: log-density spline on [lo, hi], its cdf on ``length`` points."""

    def __init__(self, marginal: Any, length: int = 2048):
        xs, ly = _smooth(*_as_xy(marginal))
        # R's inla.sfmarginal: a spline through the smoothed points (after inla.marginal.fix)
        keep = ly - np.max(ly) > np.log(1000 * _EPS)
        xs, ly = xs[keep], ly[keep]
        self.lo, self.hi = float(xs[0]), float(xs[-1])
        self._log_spline = CubicSpline(xs, ly) if xs.size >= 4 else None
        self._xs, self._ly = xs, ly
        self.length = int(length)
        self._cdf_cache: tuple[np.ndarray, np.ndarray] | None = None

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log density (−inf outside [lo, hi]); not renormalised (R's ``inla.dmarginal``)."""
        x = np.asarray(x, dtype=float)
        inside = (x >= self.lo) & (x <= self.hi)
        xc = np.clip(x, self.lo, self.hi)
        val = self._log_spline(xc) if self._log_spline is not None else np.interp(xc, self._xs, self._ly)
        return np.where(inside, val, -np.inf)

    def cdf_table(self) -> tuple[np.ndarray, np.ndarray]:
        """(grid, cdf): the normalised running integral of the density on ``length`` equidistant points
        merged with the interpolation points (which are dense where the given points are, e.g.
        near 0 for a transformed marginal whose equidistant grid would be too coarse there)."""
        if self._cdf_cache is None:
            grid = np.union1d(np.linspace(self.lo, self.hi, self.length), self._xs)
            dens = np.exp(self.log_density(grid))
            # integral of the cubic spline through the density values (4th order; a
            # running maximum removes round-off wiggles where the density is ~0)
            cdf = CubicSpline(grid, dens).antiderivative()(grid)
            cdf = np.maximum.accumulate(cdf - cdf[0])
            self._cdf_cache = (grid, cdf / cdf[-1])
        return self._cdf_cache

    def cdf(self, q: np.ndarray) -> np.ndarray:
        grid, cdf = self.cdf_table()
        return np.clip(PchipInterpolator(grid, cdf)(np.clip(q, self.lo, self.hi)), 0.0, 1.0)

    def quantile(self, p: np.ndarray) -> np.ndarray:
        grid, cdf = self.cdf_table()
        # the inverse needs a strictly increasing cdf: drop flat stretches (R drops repeated 0s and 1s)
        keep = np.concatenate([[True], np.diff(cdf) > 0])
        return PchipInterpolator(cdf[keep], grid[keep])(np.clip(p, 0.0, 1.0))

    def expectation_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The cdf grid and composite Simpson weights (for unequal cells) times the
        unnormalised density: E[g(X)] ≈ Σ w_i g(x_i) / Σ w_i."""
        grid, _ = self.cdf_table()
        dens = np.exp(self.log_density(grid))
        return grid, _simpson_weights(grid) * dens


def _simpson_weights(x: np.ndarray) -> np.ndarray:
    """Quadrature weights of the composite Simpson rule on increasing, unequally spaced x
    (parabola through each pair of cells; a trailing odd cell by the trapezoid rule)."""
    w = np.zeros(x.size)
    h = np.diff(x)
    m = (h.size // 2) * 2
    h0, h1 = h[0:m:2], h[1:m:2]
    s = h0 + h1
    w[0 : m : 2] += s / 6.0 * (2.0 - h1 / h0)
    w[1 : m : 2] += s**3 / (6.0 * h0 * h1)
    w[2 : m + 1 : 2] += s / 6.0 * (2.0 - h0 / h1)
    if m < h.size:
        w[-2:] += 0.5 * h[-1]
    return w


def _scalar_or_array(value: np.ndarray, like: Any):
    return float(value) if np.ndim(like) == 0 else value


# ----------------------------------------------------------------------------------------------
# public functions
# ----------------------------------------------------------------------------------------------
def smarginal(marginal: Any, log: bool = False, extrapolate: float = 0.0, factor: int = 15):
    """The marginal interpolated on about ``factor`` times as many points (R's ``inla.smarginal``).

    The interpolation is a cubic spline in log-density (see :func:`_smooth`), the same that
    every other function here uses.

    Args:
        marginal: a marginal (see the module docstring).
        log: return the log-density.
        extrapolate: extend the range by this fraction of it on each side.
        factor: each cell between given points is split into this many.

    Returns:
        A marginal of the same form as the input (a DataArray over ``x`` for xarray input).

    Example:
        >>> m = smarginal(np.column_stack([np.linspace(-5, 5, 21), np.exp(-0.5 * np.linspace(-5, 5, 21) ** 2)]))
        >>> m.shape   # 20 cells, each split into 15
        (301, 2)
    """
    xs, ly = _smooth(*_as_xy(marginal), extrapolate=extrapolate, factor=factor)
    if log:
        return _like(marginal, xs, ly)
    y = np.exp(ly)
    keep = (y > 0) & (y / np.max(y) > 1000 * _EPS)
    return _like(marginal, xs[keep], y[keep])


def dmarginal(x, marginal: Any, log: bool = False):
    """Density of the marginal at ``x`` (R's ``inla.dmarginal``): 0 (or −inf) outside its range,
    not renormalised.

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> round(float(dmarginal(0.0, np.column_stack([x, np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)]))), 4)
        0.3989
    """
    ld = _Interpolated(marginal).log_density(np.asarray(x, dtype=float))
    return _scalar_or_array(ld if log else np.exp(ld), x)


def pmarginal(q, marginal: Any, length: int = 2048):
    """Distribution function P(X ≤ q) (R's ``inla.pmarginal``; ``length`` is R's ``len``).

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> round(float(pmarginal(0.0, np.column_stack([x, np.exp(-x**2 / 2)]))), 4)
        0.5
    """
    return _scalar_or_array(_Interpolated(marginal, length).cdf(np.asarray(q, dtype=float)), q)


def qmarginal(p, marginal: Any, length: int = 2048):
    """Quantile function (R's ``inla.qmarginal``).

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> np.round(qmarginal([0.025, 0.975], np.column_stack([x, np.exp(-x**2 / 2)])), 3)
        array([-1.96,  1.96])
    """
    return _scalar_or_array(_Interpolated(marginal, length).quantile(np.asarray(p, dtype=float)), p)


def rmarginal(n: int, marginal: Any, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """``n`` random draws by inversion, ``qmarginal(U)`` (R's ``inla.rmarginal``).

    Args:
        seed: an int seed or a numpy Generator (None: fresh entropy).

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> rmarginal(3, np.column_stack([x, np.exp(-x**2 / 2)]), seed=1).shape
        (3,)
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _Interpolated(marginal).quantile(rng.uniform(size=int(n)))


def emarginal(fun: Callable, marginal: Any, *args, **kwargs):
    """E[fun(X)] (R's ``inla.emarginal``), by Simpson's rule on the interpolated density,
    normalised so that E[1] = 1.

    ``fun`` is vectorised; it may return one value per point (the result is a float) or a
    stack of k values per point, shape (k, n) (the result has shape (k,)), e.g.
    ``emarginal(lambda x: np.stack([x, x**2]), m)``.

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> round(float(emarginal(lambda t: t**2, np.column_stack([x, np.exp(-x**2 / 2)]))), 4)
        1.0
    """
    grid, w = _Interpolated(marginal).expectation_grid()
    vals = np.asarray(fun(grid, *args, **kwargs), dtype=float)
    n = grid.size
    if vals.ndim == 0:
        vals = np.full(n, float(vals))
    if vals.shape[-1] != n:
        if vals.ndim == 1 and vals.size % n == 0:  # R style: c(f1(x), f2(x)) flattened
            vals = vals.reshape(-1, n)
        else:
            raise DataError(f"emarginal: fun returned shape {vals.shape}; expected ({n},) or (k, {n}) for {n} points")
    e = vals @ w / np.sum(w)
    return float(e) if e.ndim == 0 else e


def mmarginal(marginal: Any) -> float:
    """The mode of the marginal (R's ``inla.mmarginal``).

    Example:
        >>> x = np.linspace(-5, 7, 61)
        >>> round(mmarginal(np.column_stack([x, np.exp(-(x - 1)**2 / 2)])), 4)
        1.0
    """
    f = _Interpolated(marginal)
    p = np.arange(1, 100) / 100.0
    x = f.quantile(p)
    j = int(np.argmax(f.log_density(x)))
    lo, hi = x[max(j - 1, 0)], x[min(j + 1, x.size - 1)]
    if hi <= lo:
        return float(x[j])
    res = optimize.minimize_scalar(lambda t: -f.log_density(t), bounds=(lo, hi), method="bounded", options={"xatol": 1e-10 * (1 + abs(x[j]))})
    return float(res.x)


def hpdmarginal(p, marginal: Any, length: int = 2048) -> pd.DataFrame:
    """Highest-posterior-density intervals of (unimodal) marginals (R's ``inla.hpdmarginal``).

    For each level p the shortest interval [F⁻¹(a), F⁻¹(a + p)] over a ∈ [0, 1 − p].

    Returns:
        A DataFrame with columns ``low``, ``high`` and rows ``level:0.95`` (R's layout).

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> hpdmarginal(0.95, np.column_stack([x, np.exp(-x**2 / 2)])).round(3)
                     low  high
        level:0.95 -1.96  1.96
    """
    f = _Interpolated(marginal, length)
    levels = np.atleast_1d(np.asarray(p, dtype=float))
    out = np.empty((levels.size, 2))
    for i, level in enumerate(np.clip(levels, 0.0, 1.0)):
        slack = 1.0 - level
        if slack <= 0:
            out[i] = f.lo, f.hi
            continue

        def width(a):
            return float(f.quantile(a + level) - f.quantile(a))

        res = optimize.minimize_scalar(width, bounds=(0.0, slack), method="bounded", options={"xatol": 1e-9})
        a = float(res.x)
        out[i] = np.clip([f.quantile(a), f.quantile(a + level)], f.lo, f.hi)
    index = [f"level:{v:.6g}" for v in levels]
    return pd.DataFrame(out, index=index, columns=["low", "high"])


def _derivative(fun: Callable, x: np.ndarray, h_diff: float) -> np.ndarray:
    """Fourth-order central difference (f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)) / 12h."""
    h = h_diff * np.maximum(1.0, np.abs(x))
    f = lambda t: np.asarray(fun(t), dtype=float)
    return (f(x - 2 * h) - 8 * f(x - h) + 8 * f(x + h) - f(x + 2 * h)) / (12 * h)


def tmarginal(fun: Callable, marginal: Any, n: int = 2048, h_diff: float = _EPS ** (1 / 3), method: str = "quantile"):
    """The marginal of fun(X) for a monotone ``fun`` (R's ``inla.tmarginal``):
    density p_X(x) / |fun'(x)| at the points fun(x).

    Args:
        fun: a vectorised monotone function (numpy or jax), e.g. ``np.exp`` or
            ``lambda t: 1 / np.sqrt(np.exp(t))``.
        n: number of points of the new marginal.
        h_diff: relative step of the numerical derivative of ``fun``.
        method: "quantile" (points at the quantiles Φ(z) of X for z equidistant in [−6, 6];
            R: at the quantiles i/(n+1)) or "linear" (equidistant).

    Returns:
        A marginal of the same form as the input.

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> lognormal = tmarginal(np.exp, np.column_stack([x, np.exp(-x**2 / 2)]))
        >>> round(float(qmarginal(0.5, lognormal)), 3)
        1.0
    """
    if method not in ("quantile", "linear"):
        from .errors import unknown_choice

        raise DataError(unknown_choice("tmarginal method", method, ("quantile", "linear")))
    f = _Interpolated(marginal)
    if method == "quantile":
        # R takes the quantiles i/(n+1), which cuts 2/(n+1) of the mass off the tails; the
        # probabilities Φ(z), z equidistant in [−6, 6], reach into the tails gradually instead
        x = np.unique(f.quantile(special.ndtr(np.linspace(-6.0, 6.0, n))))
    else:
        x = np.linspace(f.lo, f.hi, n)
    fx = np.asarray(fun(x), dtype=float)
    dens = np.exp(f.log_density(x)) / np.abs(_derivative(fun, x, h_diff))
    if fx[0] > fx[-1]:
        fx, dens = fx[::-1], dens[::-1]
    if np.any(np.diff(fx) <= 0):
        raise DataError("tmarginal: fun is not strictly monotone over the range of the marginal")
    return _like(marginal, fx, dens)


def zmarginal(marginal: Any, silent: bool = True) -> pd.Series:
    """Summary statistics of a marginal (R's ``inla.zmarginal``): mean, sd and the quantiles
    0.025, 0.25, 0.5, 0.75, 0.975 (named as R names them).

    Unlike R, nothing is printed unless ``silent=False``: the Series is the result.

    Example:
        >>> x = np.linspace(-6, 6, 61)
        >>> zmarginal(np.column_stack([x, np.exp(-x**2 / 2)]))[["sd", "quant0.975"]].round(4).tolist()
        [1.0, 1.96]
    """
    m1, m2 = emarginal(lambda t: np.stack([t, t**2]), marginal)
    q = qmarginal(np.array([0.025, 0.25, 0.5, 0.75, 0.975]), marginal)
    out = pd.Series(
        [m1, np.sqrt(max(0.0, m2 - m1**2)), *q],
        index=["mean", "sd", "quant0.025", "quant0.25", "quant0.5", "quant0.75", "quant0.975"],
    )
    if not silent:
        labels = ["Mean           ", "Stdev          ", "Quantile  0.025", "Quantile  0.25 ", "Quantile  0.5  ", "Quantile  0.75 ", "Quantile  0.975"]
        for lab, v in zip(labels, out.to_numpy()):
            print(lab, f"{v:.6g}")
    return out
