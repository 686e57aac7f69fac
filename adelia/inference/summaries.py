"""Posterior marginals as finite mixtures over the integration points, and their summaries.

INLA's marginal of a latent node is π(x_i | y) ≈ Σ_k w_k π̃(x_i | θ_k, y) (Rue, Martino &
Chopin 2009, eq. 5): a mixture over the design points θ_k with weights w_k ∝ π̃(θ_k|y)·Δ_k.
Each component is a Gaussian (strategy "gaussian") or a skew-normal fitted to the
simplified-Laplace expansion; both are described by (location ξ, scale ω, shape α) with α = 0
for the Gaussian:

    p(x) = 2/ω φ(z) Φ(α z),   F(x) = Φ(z) − 2 T(z, α),   z = (x − ξ)/ω

(T is Owen's T function). R-INLA reports, for a mixture of two or more components, the mean,
sd, quantiles, mode and marginal of the spline-corrected Gaussian it makes of the mixture on
±5 mixture sds (``GMRFLib_density_combine``): :meth:`Mixture.summary` and
:meth:`Mixture.marginal_grid` do the same by default (``method="combined"``,
:mod:`adelia.inference.combined`). ``method="exact"`` gives the exact mixture's: mean and sd
of the mixture, quantiles of the mixture cdf, the mode of the mixture density (the methods
``mean``, ``sd``, ``quantile``, ``mode``, ``pdf``, ``cdf`` are always the exact mixture's);
``kld`` is the symmetric KL divergence to the Gaussian with the same moments by quadrature
on ±7 sd (:func:`kld_gaussian_vs`).

The exact summaries of Gaussian mixtures (every node of a large model) are computed node by node in numba
kernels (:func:`_gm_summary_kernel`, :func:`_gm_kld_kernel`), split over the host's cores:
no temporaries beyond the outputs, each node iterating until it has converged itself.

* quantiles: safeguarded Halley iterations on F(x) − p (bracket, Newton and bisection
  fallbacks) from the Cornish–Fisher start (mixture skewness and kurtosis), which is within
  ~1e-8 sd of the answer for the nearly Gaussian mixtures of INLA, so that one evaluation of
  the K components usually suffices; an iteration stops when the step's own error estimate
  (C·dx³ from the derivatives at hand) is below 1e-15 sd.
* mode: all stationary points of a Gaussian mixture lie in the hull [min ξ_k, max ξ_k] of
  the component means (they are fixed points of the mean-shift map, a convex combination of
  the ξ_k); when every |x − ξ_k| ≤ ω_k there (the hull is narrower than each component's
  scale) every component is concave on it, so is the mixture, and the mode is the unique root
  of p' in the hull: safeguarded Halley from the mean. Otherwise (possibly multimodal) the
  best point of a 33-point grid over ±4 sd, mean-shift iterations to the local maximum and a
  Halley polish.
* kld: the 71-point quadrature of each component's density exp(−t²/2), t = A + B z_j affine
  in the grid, by the recurrence e_{j±1} = e_j r_j, r_{j±1} = r_j exp(−δ²) (δ = BΔz), going
  away from the component's centre (so the ratios are ≤ 1: no overflow) and re-anchored with
  a direct exp every 16 points (rounding errors stay below ~1e-14 relative).

Skew-normal mixtures (the simplified-Laplace nodes: small models and small terms) keep the
vectorised numpy path: safeguarded Newton on the cdf for quantiles, grid and parabola for the
mode. Its summaries, densities and KL divergences run over blocks of nodes (:func:`node_blocks`)
so that their temporaries — (grid points × K × nodes) arrays — stay at
``SUMMARY_BLOCK_ELEMENTS`` numbers whatever n is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy import special

from ..engine.host_cores import claim_cores, kernel_threads, run_concurrently
from ..engine.numba_cache import cached_njit
from ..errors import unknown_choice

SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)

#: standardised abscissae of the grid on which marginal densities are returned (43 points,
#: denser in the centre, out to ±6 sd), as R-INLA returns 43-point marginals.
MARGINAL_GRID = np.concatenate(
    [-np.geomspace(6.0, 0.05, 21), [0.0], np.geomspace(0.05, 6.0, 21)]
)

#: how :meth:`Mixture.summary` and :meth:`Mixture.marginal_grid` summarise a mixture: "combined"
#: (R-INLA's spline-corrected Gaussian, :mod:`adelia.inference.combined`) or "exact"
SUMMARY_METHODS = ("combined", "exact")

#: the largest temporary (grid points × mixture components × nodes, float64) that the node-wise
#: computations of a :class:`Mixture` allocate at once: 2²² numbers = 32 MiB
SUMMARY_BLOCK_ELEMENTS = 2**22
#: abscissae of the KL-divergence quadrature (:func:`kld_gaussian_vs`)
_KLD_GRID = np.linspace(-7, 7, 71)
#: standardised start grid of :meth:`Mixture.mode`
_MODE_GRID = np.linspace(-4, 4, 33)


#: nodes per thread below which the Gaussian-mixture kernels are not split over cores
_NODES_PER_THREAD = 20_000
#: KL quadrature: a direct exp every this many grid points of the recurrence
_KLD_REANCHOR = 16
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT1_2 = math.sqrt(0.5)


# ------------------------------------------------------------------------------------------
# numba kernels for mixtures of Gaussians (one node at a time; see the module docstring)
# ------------------------------------------------------------------------------------------


@cached_njit(nogil=True, error_model="numpy")
def _root_step(x, h, h1, h2, h3, lo, hi, tol, small):
    """One safeguarded Halley step for the root of an increasing function h with derivatives
    h1 > 0, h2, h3 at x, inside the bracket [lo, hi] (narrowed here with the sign of h).

    Halley's step dx = −(h/h1) / (1 − h·h2/(2 h1²)) when it stays in the bracket, else
    Newton's, else bisection. Converged (``done``) when h = 0, when the error left by the
    step, estimated as (h3/(6 h1) − (h2/(2 h1))²)·dx³ (Halley) or h2/(2 h1)·dx² (Newton),
    is at most ``tol`` while |dx| ≤ ``small`` (where the Taylor estimate holds), or when the
    bracket is narrower than ``tol`` or than the floating-point resolution.
    Returns (x_new, lo, hi, done)."""
    if h == 0.0:
        return x, x, x, True
    if h < 0.0:
        lo = x
    else:
        hi = x
    if h1 > 0.0 and h1 < np.inf:
        newton = -h / h1
        den = 1.0 - 0.5 * h * h2 / (h1 * h1)
        if den > 0.5 and den < 2.0:
            dx = newton / den
            xn = x + dx
            if xn >= lo and xn <= hi:
                est = (h3 / (6.0 * h1) - (0.5 * h2 / h1) ** 2) * dx**3
                return xn, lo, hi, abs(dx) <= small and abs(est) <= tol
        xn = x + newton
        if xn >= lo and xn <= hi:
            est = 0.5 * h2 / h1 * newton * newton
            return xn, lo, hi, abs(newton) <= small and abs(est) <= tol
    xn = 0.5 * (lo + hi)
    width = hi - lo
    return xn, lo, hi, not (width > tol and width > 4e-16 * max(abs(lo), abs(hi)))


@cached_njit(nogil=True, error_model="numpy")
def _gm_derivatives(x, w, loc, scale, i, order):
    """p, p', p'', p''' (up to ``order``, the rest 0) of the Gaussian mixture of node i at x."""
    f0 = 0.0
    f1 = 0.0
    f2 = 0.0
    f3 = 0.0
    for k in range(w.size):
        s = scale[k, i]
        t = (x - loc[k, i]) / s
        e = w[k] * math.exp(-0.5 * t * t) / s
        f0 += e
        if order >= 1:
            e = e / s
            f1 -= e * t
            if order >= 2:
                e = e / s
                f2 += e * (t * t - 1.0)
                if order >= 3:
                    f3 += e / s * t * (3.0 - t * t)
    return f0 * _INV_SQRT_2PI, f1 * _INV_SQRT_2PI, f2 * _INV_SQRT_2PI, f3 * _INV_SQRT_2PI


@cached_njit(nogil=True, error_model="numpy")
def _gm_fourth(x, w, loc, scale, i):
    """p'''' of the Gaussian mixture of node i at x."""
    f4 = 0.0
    for k in range(w.size):
        s = scale[k, i]
        t = (x - loc[k, i]) / s
        t2 = t * t
        f4 += w[k] * math.exp(-0.5 * t2) / s**5 * (t2 * t2 - 6.0 * t2 + 3.0)
    return f4 * _INV_SQRT_2PI


@cached_njit(nogil=True, error_model="numpy")
def _gm_summary_kernel(w, loc, scale, mu, sd, probs, zp, mode_grid, do_mode, start, stop, q_out, mode_out):
    """Quantiles (``probs``, with ``zp`` = Φ⁻¹(probs)) and, if ``do_mode``, the mode of the
    Gaussian mixtures of nodes start..stop−1 (see the module docstring)."""
    K = w.size
    for i in range(start, stop):
        m = mu[i]
        s_ = sd[i]
        lo0 = np.inf
        hi0 = -np.inf
        a = np.inf
        b = -np.inf
        smin = np.inf
        k3 = 0.0
        k4 = 0.0
        for k in range(K):
            xi = loc[k, i]
            om = scale[k, i]
            lo0 = min(lo0, xi - 12.0 * om)
            hi0 = max(hi0, xi + 12.0 * om)
            a = min(a, xi)
            b = max(b, xi)
            smin = min(smin, om)
            d = xi - m
            v = om * om
            k3 += w[k] * d * (d * d + 3.0 * v)
            k4 += w[k] * (d**4 + 6.0 * d * d * v + 3.0 * v * v)
        if not (s_ > 0.0 and smin > 0.0):  # a degenerate (pinned) node: a point mass
            for r in range(probs.size):
                q_out[r, i] = min(max(m, lo0), hi0)
            if do_mode:
                mode_out[i] = m
            continue
        g1 = k3 / s_**3
        g2 = k4 / s_**4 - 3.0
        tol = 1e-15 * s_
        small = 1e-3 * smin
        # --- quantiles: Halley on F(x) - p from the Cornish-Fisher start ----------------------
        for r in range(probs.size):
            p = probs[r]
            z = zp[r]
            cf = z + (z * z - 1.0) * g1 / 6.0 + z * (z * z - 3.0) * g2 / 24.0 - z * (2.0 * z * z - 5.0) * g1 * g1 / 36.0
            x = m + s_ * cf
            if not (x >= lo0 and x <= hi0):
                x = min(max(m + s_ * z, lo0), hi0)
            lo = lo0
            hi = hi0
            for _ in range(100):
                F = 0.0
                for k in range(K):
                    F += w[k] * (0.5 * math.erfc(-(x - loc[k, i]) / scale[k, i] * _SQRT1_2))
                F = min(max(F, 0.0), 1.0)
                f0, f1, f2, _f3 = _gm_derivatives(x, w, loc, scale, i, 2)
                x, lo, hi, done = _root_step(x, F - p, f0, f1, f2, lo, hi, tol, small)
                if done:
                    break
            q_out[r, i] = x
        if not do_mode:
            continue
        # --- mode -------------------------------------------------------------------------------
        if a == b:  # every component centred at the same point
            mode_out[i] = a
            continue
        concave = True
        for k in range(K):
            if max(loc[k, i] - a, b - loc[k, i]) > scale[k, i]:
                concave = False
                break
        if concave:
            # the unique root of p' in [a, b], where h = -p' is increasing
            x = min(max(m - 0.5 * g1 * s_, a), b)
            lo = a
            hi = b
            for _ in range(100):
                _f0, f1, f2, f3 = _gm_derivatives(x, w, loc, scale, i, 3)
                f4 = _gm_fourth(x, w, loc, scale, i)
                x, lo, hi, done = _root_step(x, -f1, -f2, -f3, -f4, lo, hi, tol, small)
                if done:
                    break
            mode_out[i] = x
            continue
        # possibly multimodal: the best grid point, mean shift to its local maximum, Halley polish
        best = -1.0
        x = m
        for j in range(mode_grid.size):
            xj = m + s_ * mode_grid[j]
            fj, _f1, _f2, _f3 = _gm_derivatives(xj, w, loc, scale, i, 0)
            if fj > best:
                best = fj
                x = xj
        for _ in range(200):
            num = 0.0
            den = 0.0
            for k in range(K):
                om = scale[k, i]
                t = (x - loc[k, i]) / om
                rk = w[k] * math.exp(-0.5 * t * t) / (om * om * om)
                num += rk * loc[k, i]
                den += rk
            x_new = num / max(den, 1e-300)
            step = abs(x_new - x)
            x = x_new
            if step <= 1e-10 * (1e-12 + s_):
                break
        for _ in range(20):
            _f0, f1, f2, f3 = _gm_derivatives(x, w, loc, scale, i, 3)
            if not (f2 < 0.0) or abs(f1 / f2) > 1e-3 * s_:
                break
            f4 = _gm_fourth(x, w, loc, scale, i)
            x, _lo, _hi, done = _root_step(x, -f1, -f2, -f3, -f4, -np.inf, np.inf, tol, small)
            if done:
                break
        mode_out[i] = x


@cached_njit(nogil=True, error_model="numpy")
def _add_gaussian_on_grid(acc, z, A, B, coef, every):
    """acc[j] += coef · exp(−t_j²/2), t_j = A + B z_j on the equispaced grid z: the recurrence
    of the module docstring, outwards from the grid point nearest t = 0, with a direct exp
    every ``every`` points."""
    J = z.size
    dz = (z[J - 1] - z[0]) / (J - 1)
    if not (B > 0.0 and B < np.inf and abs(A) < np.inf):
        for j in range(J):
            t = A + B * z[j]
            acc[j] += coef * math.exp(-0.5 * t * t)
        return
    delta = B * dz
    c = math.exp(-delta * delta)
    jc = (-A / B - z[0]) / dz
    if jc <= 0.0:
        j0 = 0
    elif jc >= J - 1:
        j0 = J - 1
    else:
        j0 = int(jc + 0.5)
    half = 0.5 * delta * delta
    e = 0.0
    r = 0.0
    left = 0
    for j in range(j0, J):
        if left == 0:
            t = A + B * z[j]
            e = coef * math.exp(-0.5 * t * t)
            r = math.exp(-delta * t - half)
            left = every
        acc[j] += e
        e *= r
        r *= c
        left -= 1
    left = 0
    for j in range(j0 - 1, -1, -1):
        if left == 0:
            t = A + B * z[j]
            e = coef * math.exp(-0.5 * t * t)
            r = math.exp(delta * t - half)
            left = every
        acc[j] += e
        e *= r
        r *= c
        left -= 1


@cached_njit(nogil=True, error_model="numpy")
def _gm_kld_kernel(w, loc, scale, mu, sd, gw, gloc, gscale, z, every, start, stop, out):
    """Symmetric KL divergence, by quadrature on mu + sd·z, between the Gaussian mixtures
    (w, loc, scale) and (gw, gloc, gscale) of nodes start..stop−1."""
    J = z.size
    p = np.empty(J)
    q = np.empty(J)
    for i in range(start, stop):
        m = mu[i]
        s_ = sd[i]
        if not (s_ > 0.0):
            out[i] = 0.0
            continue
        p[:] = 0.0
        q[:] = 0.0
        for k in range(w.size):
            om = scale[k, i]
            _add_gaussian_on_grid(p, z, (m - loc[k, i]) / om, s_ / om, w[k] * _INV_SQRT_2PI / om, every)
        for k in range(gw.size):
            om = gscale[k, i]
            _add_gaussian_on_grid(q, z, (m - gloc[k, i]) / om, s_ / om, gw[k] * _INV_SQRT_2PI / om, every)
        total = 0.0
        for j in range(J):
            pj = max(p[j], 1e-300)
            qj = max(q[j], 1e-300)
            total += (pj - qj) * math.log(pj / qj)
        out[i] = 0.5 * max(total * s_ * (z[1] - z[0]), 0.0)


def _over_nodes(kernel, n: int) -> None:
    """``kernel(start, stop)`` over the nodes [0, n), split over the free host cores when n is
    large (the kernels release the GIL; a node's result does not depend on the split)."""
    want = max(1, min(kernel_threads(), n // _NODES_PER_THREAD))
    if want <= 1:
        kernel(0, n)
        return
    with claim_cores(want) as held:
        bounds = np.linspace(0, n, held + 1).astype(np.int64)
        run_concurrently([partial(kernel, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])])


def _gaussian_arrays(mix: "Mixture"):
    return (
        np.ascontiguousarray(mix.weights, dtype=np.float64),
        np.ascontiguousarray(mix.loc, dtype=np.float64),
        np.ascontiguousarray(mix.scale, dtype=np.float64),
    )


def _gm_summaries(mix: "Mixture", probs, do_mode: bool, mu=None, sd=None):
    """(quantiles of shape (len(probs), n), mode (n,) or None) of a Gaussian mixture."""
    w, loc, scale = _gaussian_arrays(mix)
    mu, sd = mix._moments() if mu is None else (mu, sd)
    mu = np.ascontiguousarray(mu, dtype=np.float64)
    sd = np.ascontiguousarray(sd, dtype=np.float64)
    probs = np.ascontiguousarray(np.asarray(probs, dtype=np.float64).ravel())
    zp = special.ndtri(probs)
    q = np.empty((probs.size, mix.n))
    mode = np.empty(mix.n if do_mode else 0)

    def kernel(start, stop):
        _gm_summary_kernel(w, loc, scale, mu, sd, probs, zp, _MODE_GRID, do_mode, start, stop, q, mode)

    _over_nodes(kernel, mix.n)
    return q, (mode if do_mode else None)


def _gm_kld(mixture: "Mixture", gaussian: "Mixture") -> np.ndarray:
    """:func:`kld_gaussian_vs` for two Gaussian mixtures, by the kernel."""
    w, loc, scale = _gaussian_arrays(mixture)
    gw, gloc, gscale = _gaussian_arrays(gaussian)
    mu, sd = mixture._moments()
    out = np.empty(mixture.n)

    def kernel(start, stop):
        _gm_kld_kernel(w, loc, scale, mu, sd, gw, gloc, gscale, _KLD_GRID, _KLD_REANCHOR, start, stop, out)

    _over_nodes(kernel, mixture.n)
    return out


def node_blocks(n: int, per_node: int):
    """Consecutive slices of range(n) whose (per_node × block) temporaries hold at most
    ``SUMMARY_BLOCK_ELEMENTS`` numbers (at least one node per block)."""
    size = max(1, SUMMARY_BLOCK_ELEMENTS // max(int(per_node), 1))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _blockwise(fun, mixtures, n: int, per_node: int):
    """``fun(*mixtures)`` evaluated on node blocks and concatenated along the node axis (the
    last axis of every returned array; a dict of arrays is concatenated per key). One block
    (n within the budget) is the unblocked call itself."""
    slices = list(node_blocks(n, per_node))
    if len(slices) <= 1:
        return fun(*mixtures)
    parts = [fun(*(m.columns(sl) for m in mixtures)) for sl in slices]
    if isinstance(parts[0], dict):
        return {key: np.concatenate([p[key] for p in parts], axis=-1) for key in parts[0]}
    return np.concatenate(parts, axis=-1)


def summary_columns(marginal, quantiles=(0.025, 0.5, 0.975)) -> dict[str, np.ndarray]:
    """R-INLA's summary columns of a mixture of marginals (anything with mean, sd, quantile
    and mode): mean, sd, <q>quant..., mode."""
    out = {"mean": marginal.mean(), "sd": marginal.sd()}
    for q in quantiles:
        out[f"{q:g}quant"] = marginal.quantile(q)
    out["mode"] = marginal.mode()
    return out


@dataclass
class Mixture:
    """Per-node mixtures: ``weights`` (K,), and (K, n) arrays ``loc``, ``scale``, ``shape``."""

    weights: np.ndarray
    loc: np.ndarray
    scale: np.ndarray
    shape: np.ndarray | None = None

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=float)
        self.weights = w / w.sum()
        self.loc = np.atleast_2d(np.asarray(self.loc, dtype=float))
        self.scale = np.atleast_2d(np.asarray(self.scale, dtype=float))
        if self.shape is not None:
            self.shape = np.atleast_2d(np.asarray(self.shape, dtype=float))
            if not np.any(self.shape):
                self.shape = None

    @property
    def n(self) -> int:
        return self.loc.shape[1]

    def columns(self, nodes: slice) -> "Mixture":
        """The mixtures of the nodes ``nodes`` as views, with the same (already normalised)
        weights and the same ``shape`` convention, so that results computed per block are
        those of the whole."""
        out = object.__new__(Mixture)
        out.weights = self.weights
        out.loc = self.loc[:, nodes]
        out.scale = self.scale[:, nodes]
        out.shape = None if self.shape is None else self.shape[:, nodes]
        return out

    # --- component moments ------------------------------------------------------------------------
    def _component_moments(self):
        if self.shape is None:
            return self.loc, self.scale**2
        delta = self.shape / np.sqrt(1.0 + self.shape**2)
        mean = self.loc + self.scale * delta * SQRT_2_OVER_PI
        var = self.scale**2 * (1.0 - 2.0 * delta**2 / np.pi)
        return mean, var

    def component_means(self) -> np.ndarray:
        """The mean of each component, (K, n): the skew-normal's ξ + ω δ √(2/π) (R-INLA's
        ``dens[i][k]->user_mean``)."""
        return np.array(self._component_moments()[0], dtype=float)

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean, sd) per node, remembered while weights, loc, scale and shape are the same
        arrays (the summaries, the KL grid and the tables ask for them several times)."""
        arrays = (self.weights, self.loc, self.scale, self.shape)
        cache = self.__dict__.get("_moments_cache")
        if cache is not None and all(a is b for a, b in zip(cache[0], arrays)):
            return cache[1], cache[2]
        m, v = self._component_moments()
        mu = self.weights @ m
        second = self.weights @ (v + m**2)
        sd = np.sqrt(np.maximum(second - mu**2, 0.0))
        self.__dict__["_moments_cache"] = (arrays, mu, sd)
        return mu, sd

    def mean(self) -> np.ndarray:
        return self._moments()[0].copy()

    def sd(self) -> np.ndarray:
        return self._moments()[1].copy()

    # --- density and cdf ---------------------------------------------------------------------------------
    def pdf(self, x: np.ndarray) -> np.ndarray:
        """Density at x of shape (..., n) (broadcast against the nodes)."""
        x = np.asarray(x, dtype=float)
        if x.shape[-1:] == (self.n,) and x.ndim > 1:
            # node blocks bound the (..., K, block) temporaries
            lead = int(np.prod(x.shape[:-1]))
            slices = list(node_blocks(self.n, lead * self.loc.shape[0]))
            if len(slices) > 1:
                return np.concatenate([self.columns(sl)._pdf(x[..., sl]) for sl in slices], axis=-1)
        return self._pdf(x)

    def _pdf(self, x: np.ndarray) -> np.ndarray:
        z = (x[..., None, :] - self.loc) / self.scale
        comp = np.exp(-0.5 * z**2) / (np.sqrt(2 * np.pi) * self.scale)
        if self.shape is not None:
            comp = comp * 2.0 * special.ndtr(self.shape * z)
        return np.einsum("k,...kn->...n", self.weights, comp)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        z = (x[..., None, :] - self.loc) / self.scale
        comp = special.ndtr(z)
        if self.shape is not None:
            comp = comp - 2.0 * special.owens_t(z, self.shape)
        return np.einsum("k,...kn->...n", self.weights, np.clip(comp, 0.0, 1.0))

    def _gaussian_kernels(self) -> bool:
        """Whether the numba kernels apply: a mixture of two or more Gaussians."""
        return self.shape is None and self.loc.shape[0] > 1

    def quantile(self, p: float) -> np.ndarray:
        """The p-quantile per node: safeguarded Halley (Gaussian mixtures, numba kernel) or
        Newton (skew-normal components) iterations on the mixture cdf, bisection fallback."""
        if self.loc.shape[0] == 1 and self.shape is None:
            return self.loc[0] + self.scale[0] * special.ndtri(p)
        if self._gaussian_kernels() and np.ndim(p) == 0:
            return _gm_summaries(self, [p], False)[0][0]
        mu, sd = self.mean(), self.sd()
        lo = np.min(self.loc - 12 * self.scale, axis=0)
        hi = np.max(self.loc + 12 * self.scale, axis=0)
        x = np.clip(mu + sd * special.ndtri(p), lo, hi)
        for _ in range(100):
            F = self.cdf(x)
            lo = np.where(F < p, x, lo)
            hi = np.where(F >= p, x, hi)
            dens = self.pdf(x)
            newton = x - (F - p) / np.maximum(dens, 1e-300)
            # inclusive: a converged Newton iterate sits on the bracket end it has just moved
            inside = (newton >= lo) & (newton <= hi) & np.isfinite(newton)
            x_new = np.where(inside, newton, 0.5 * (lo + hi))
            done = np.max(np.abs(x_new - x) / (1.0 + np.abs(x))) <= 1e-12
            x = x_new
            if done:
                break
        return x

    def mode(self) -> np.ndarray:
        """The mode per node. Gaussian mixtures: the numba kernel (module docstring); skew
        components: the best point of a coarse grid refined by parabolas."""
        if self.loc.shape[0] == 1 and self.shape is None:
            return self.loc[0].copy()
        if self._gaussian_kernels():
            return _gm_summaries(self, [], True)[1]
        mu, sd = self.mean(), self.sd()
        grid = mu + sd * _MODE_GRID[:, None]
        dens = self.pdf(grid)
        x = grid[np.argmax(dens, axis=0), np.arange(self.n)]
        if self.shape is None:
            inv_var = 1.0 / self.scale**2
            for _ in range(200):
                z = (x[None, :] - self.loc) / self.scale
                r = self.weights[:, None] * np.exp(-0.5 * z**2) / self.scale * inv_var
                x_new = np.sum(r * self.loc, axis=0) / np.maximum(np.sum(r, axis=0), 1e-300)
                done = np.max(np.abs(x_new - x) / (1e-12 + sd)) <= 1e-10
                x = x_new
                if done:
                    break
            return x
        h = 8 * sd / 32
        for _ in range(40):
            f0, fm, fp = self.pdf(x), self.pdf(x - h), self.pdf(x + h)
            denom = fp - 2 * f0 + fm
            step = np.where(denom < 0, -0.5 * h * (fp - fm) / np.where(denom < 0, denom, -1.0), 0.0)
            step = np.clip(step, -h, h)
            x = x + step
            h = np.maximum(h * 0.5, 1e-10 * (1 + np.abs(x)))
        return x

    def summary(self, quantiles=(0.025, 0.5, 0.975), method: str = "combined") -> dict[str, np.ndarray]:
        """R-INLA's summary columns: mean, sd, <q>quant..., mode.

        ``method="combined"`` (the default, what R-INLA reports): those of the spline-corrected
        Gaussian that R-INLA makes of the mixture (``GMRFLib_density_combine``, see
        :mod:`adelia.inference.combined`), which ignores the mixture beyond ±5 of its sds; a
        single component keeps its closed forms. ``method="exact"``: the exact mixture's (Gaussian
        mixtures: one pass of the numba kernel; skew components: over node blocks, the quantile
        and mode iterations stopping per block, when that block has converged).

        Example:
            >>> mix = Mixture(np.array([0.9, 0.1]), np.array([[0.0], [0.0]]), np.array([[1.0], [4.0]]))
            >>> round(float(mix.summary(method="exact")["sd"][0]), 3), round(float(mix.summary()["sd"][0]), 3)
            (1.581, 1.447)
        """
        if method not in SUMMARY_METHODS:
            raise ValueError(unknown_choice("summary method", method, SUMMARY_METHODS))
        if method == "combined" and self.loc.shape[0] > 1:
            from .combined import combined_summary

            return combined_summary(self, quantiles)
        if self._gaussian_kernels():
            mu, sd = self.mean(), self.sd()
            q, mode = _gm_summaries(self, quantiles, True)
            out = {"mean": mu, "sd": sd}
            for r, p in enumerate(quantiles):
                out[f"{p:g}quant"] = q[r]
            out["mode"] = mode
            return out
        per_node = _MODE_GRID.size * self.loc.shape[0]
        return _blockwise(lambda m: summary_columns(m, quantiles), (self,), self.n, per_node)

    def marginal_grid(self, n_points: int | None = None, method: str = "combined") -> tuple[np.ndarray, np.ndarray]:
        """(x, density) per node: arrays of shape (n_grid, n).

        ``method="combined"`` with ``n_points=None`` (the default, R-INLA's ``marginals.fixed``
        and ``marginals.random``): the spline-corrected Gaussian R-INLA makes of a mixture of two
        or more components, at its quantiles of the 43 probabilities of
        :data:`adelia.inference.combined.LAYOUT_PROBS`; one Gaussian component: the Gaussian at
        those quantiles. Otherwise the exact mixture on ``MARGINAL_GRID`` (or ``n_points``
        equispaced points over ±6 sd).
        """
        if method not in SUMMARY_METHODS:
            raise ValueError(unknown_choice("marginal method", method, SUMMARY_METHODS))
        if method == "combined" and n_points is None:
            from .combined import LAYOUT_PROBS, combined_marginal

            if self.loc.shape[0] > 1:
                return combined_marginal(self)
            if self.shape is None:
                x = self.loc[0] + self.scale[0] * special.ndtri(LAYOUT_PROBS)[:, None]
                return x, self.pdf(x)
        z = MARGINAL_GRID if n_points is None else np.linspace(-6, 6, n_points)
        mu, sd = self.mean(), self.sd()
        x = mu + sd * z[:, None]
        return x, self.pdf(x)


def kld_gaussian_vs(mixture: Mixture, gaussian: Mixture) -> np.ndarray:
    """Symmetric Kullback–Leibler divergence per node between a marginal and its Gaussian
    approximation, by quadrature on a fine grid (R-INLA's ``kld`` column): the integrand
    (p − q)·log(p/q) on mixture mean ± 7 sd (71 points), p the mixture's density, q the other's."""
    if isinstance(mixture, Mixture) and isinstance(gaussian, Mixture):
        if mixture.shape is None and gaussian.shape is None and gaussian.n == mixture.n:
            return _gm_kld(mixture, gaussian)
        per_node = _KLD_GRID.size * (mixture.loc.shape[0] + gaussian.loc.shape[0])
        if len(list(node_blocks(mixture.n, per_node))) > 1:
            return _blockwise(_kld, (mixture, gaussian), mixture.n, per_node)
    return _kld(mixture, gaussian)


def _kld(mixture, gaussian) -> np.ndarray:
    mu, sd = mixture.mean(), mixture.sd()
    z = _KLD_GRID
    x = mu + sd * z[:, None]
    p = np.maximum(mixture.pdf(x), 1e-300)
    q = np.maximum(gaussian.pdf(x), 1e-300)
    dx = sd * (z[1] - z[0])
    kl_pq = np.sum(p * np.log(p / q), axis=0) * dx
    kl_qp = np.sum(q * np.log(q / p), axis=0) * dx
    return 0.5 * np.maximum(kl_pq + kl_qp, 0.0)


def grid_summary(x: np.ndarray, density: np.ndarray, quantiles=(0.025, 0.5, 0.975)) -> dict[str, float]:
    """Summaries of a density given on an increasing grid (trapezoid rule, linear cdf).

    The density need not be normalised. Returns mean, sd, the quantiles and the mode (a
    parabola through the best grid point and its neighbours)."""
    x = np.asarray(x, dtype=float)
    f = np.maximum(np.asarray(density, dtype=float), 0.0)
    dx = np.diff(x)
    cell = 0.5 * (f[1:] + f[:-1]) * dx
    total = cell.sum()
    f = f / total
    cell = cell / total
    # exact trapezoid moments of the piecewise-linear density
    m1 = np.sum(dx * (f[:-1] * (2 * x[:-1] + x[1:]) + f[1:] * (x[:-1] + 2 * x[1:])) / 6.0)
    m2 = np.sum(dx * (f[:-1] * (3 * x[:-1] ** 2 + 2 * x[:-1] * x[1:] + x[1:] ** 2) + f[1:] * (x[:-1] ** 2 + 2 * x[:-1] * x[1:] + 3 * x[1:] ** 2)) / 12.0)
    out = {"mean": float(m1), "sd": float(np.sqrt(max(m2 - m1**2, 0.0)))}
    cdf = np.concatenate([[0.0], np.cumsum(cell)])
    for q in quantiles:
        out[f"{q:g}quant"] = float(_invert_piecewise_linear_cdf(x, f, cdf, q))
    j = int(np.argmax(f))
    if 0 < j < x.size - 1:
        x0, x1, x2 = x[j - 1 : j + 2]
        y0, y1, y2 = f[j - 1 : j + 2]
        denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
        a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
        b = (x2**2 * (y0 - y1) + x1**2 * (y2 - y0) + x0**2 * (y1 - y2)) / denom
        out["mode"] = float(-b / (2 * a)) if a < 0 else float(x1)
    else:
        out["mode"] = float(x[j])
    return out


def _invert_piecewise_linear_cdf(x, f, cdf, q):
    """Quantile of a piecewise-linear density: solve the quadratic within the cell."""
    k = int(np.clip(np.searchsorted(cdf, q) - 1, 0, x.size - 2))
    h = x[k + 1] - x[k]
    r = q - cdf[k]
    slope = (f[k + 1] - f[k]) / h
    if abs(slope) < 1e-14 * max(f[k], 1e-300):
        return x[k] + (r / f[k] if f[k] > 0 else 0.0)
    # f[k] t + slope t²/2 = r
    disc = f[k] ** 2 + 2 * slope * r
    t = (-f[k] + np.sqrt(max(disc, 0.0))) / slope
    return x[k] + np.clip(t, 0.0, h)
