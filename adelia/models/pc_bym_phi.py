"""The PC prior of bym2's mixing parameter φ, as R-INLA tabulates it (``prior = "pc"``).

Riebler, Sørbye, Simpson & Rue (2016), "An intuitive Bayesian spatial model for disease mapping
that accounts for scaling", Stat. Methods Med. Res. 25(4), §3.2. The bym2 field is
b = (√(1-φ) v + √φ u*)/√τ with v ~ N(0, I) and u* the scaled besag field (generalised
covariance Σ* = R*⁻, geometric mean of the marginal variances 1 per component). The base model
is φ = 0 (b ~ N(0, I/τ)); the distance from it is d(φ) = √(2 KLD(φ)) with

    2 KLD(φ) = n φ (tr(Σ*)/n - 1) - Σ_i log(1 + φ (γ_i⁻¹ - 1)),

γ_i the eigenvalues of R* (γ_i⁻¹ := 0 on its null space, where the term is log(1 - φ)). The PC
prior puts an exponential on d: π(φ) = λ exp(-λ d(φ)) |d'(φ)|, with λ = -log(1-α)/d(U) so that
P(φ < U) = α (R-INLA's ``param = c(U, alpha)``, default ``c(0.5, 0.5)``).

R-INLA does not evaluate this formula when it fits: ``inla.pc.bym.phi(graph = ...,
return.as.table = TRUE)`` (``rinla/R/pc-bym.R``) turns it into a table on θ = logit φ once, and
the C program interpolates that table. Matching R-INLA to the letter means building the same
table, step by step:

1. scale the besag structure per connected component the R way (``inla.scale.model.internal``:
   marginal variances of (R + max(diag R)·√ε I) under a sum-to-zero constraint, ε = machine
   epsilon; singletons get variance 1), and f = mean(scaled marginal variances) - 1;
2. d(φ) at the 52 points φ = logistic(c(seq(-15, 0, length = 40), 1:12)), using constrained
   log-determinants of R* + φ/(1-φ) I, each with (mean diagonal)·0.01√ε added
   (``inla.sparse.det.bym``); points with 2 KLD < 0 are dropped, then the first 6 points;
3. an R ``splinefun`` (method "fmm") of log d against θ, resampled on 10 000 equidistant θ, and
   a second fmm spline through the resampled points, whose derivative gives the Jacobian;
4. log π(θ) = log λ - λ d(θ) + log|d'(θ)| on the 10 000 points, renormalised by the trapezoid rule.

The table is then evaluated as GMRFLib does (``gmrflib/interpol.c``): a natural cubic spline
(GSL ``cspline``) inside the table; outside it the value at the nearest end plus a one-sided slope,
set to 0 where that slope is negative (so the right tail is flat, as in R-INLA).

Cost: one dense symmetric eigen-decomposition per connected component, once, on the host:
O(n_k³) time and O(n_k²) memory (Scotland, 56 nodes: 0.01 s; Germany, 544 nodes: 0.1 s; 5 000
nodes: about a minute and 200 MB; for much larger graphs this is the bottleneck of bym2 set-up).

Example:
    >>> from adelia.models.graph import as_graph
    >>> g = as_graph([(1, 2), (2, 3), (3, 4), (4, 1), (1, 3)])
    >>> prior = PCBym2Phi(0.5, 0.5, graph=g)
    >>> float(prior.log_density(0.0)) < 0.0
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla

from ..errors import PriorError
from .base import Prior
from .graph import Graph, as_graph
from .registry import register_prior

__all__ = ["PCBym2Phi", "Bym2Spectrum", "pc_bym2_phi_table", "pc_bym2_phi_distance", "RSplineFMM"]

_EPS = np.finfo(float).eps
_SCALE_EPS = np.sqrt(_EPS)  # inla.scale.model.internal's eps
_DET_EPS = 0.01 * np.sqrt(_EPS)  # inla.sparse.det.bym's eps


# -- R's splinefun(method = "fmm") -------------------------------------------------------------
@dataclass(frozen=True)
class RSplineFMM:
    """R's interpolating cubic spline ``splinefun(x, y, method = "fmm")`` (Forsythe, Malcolm &
    Moler 1977: end conditions match the third derivative of the cubic through the 4 end points,
    so cubics are reproduced exactly). Piece i is y_i + b_i t + c_i t² + d_i t³, t = u - x_i;
    outside the knots the end pieces are extended (as R does)."""

    x: np.ndarray
    y: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray

    @classmethod
    def fit(cls, x, y) -> "RSplineFMM":
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        n = x.size
        if n < 2 or np.any(np.diff(x) <= 0):
            raise ValueError("fmm spline needs at least 2 strictly increasing knots")
        b = np.zeros(n)
        c = np.zeros(n)
        d = np.zeros(n)
        if n < 3:
            b[:] = (y[1] - y[0]) / (x[1] - x[0])
            return cls(x, y, b, c, d)
        h = np.diff(x)
        slope = np.diff(y) / h
        # tridiagonal system for sigma (R's splines.c, fmm_spline): diagonal, off-diagonal h, rhs
        diag = np.empty(n)
        rhs = np.zeros(n)
        diag[1:-1] = 2.0 * (h[:-1] + h[1:])
        rhs[1:-1] = slope[1:] - slope[:-1]
        diag[0] = -h[0]
        diag[-1] = -h[-1]
        if n > 3:
            c0 = rhs[2] / (x[3] - x[1]) - rhs[1] / (x[2] - x[0])
            cn = rhs[-2] / (x[-1] - x[-3]) - rhs[-3] / (x[-2] - x[-4])
            rhs[0] = c0 * h[0] ** 2 / (x[3] - x[0])
            rhs[-1] = -cn * h[-1] ** 2 / (x[-1] - x[-4])
        ab = np.zeros((3, n))
        ab[0, 1:] = h
        ab[1] = diag
        ab[2, :-1] = h
        sigma = sla.solve_banded((1, 1), ab, rhs)
        b[:-1] = slope - h * (sigma[1:] + 2.0 * sigma[:-1])
        b[-1] = slope[-1] + h[-1] * (sigma[-2] + 2.0 * sigma[-1])
        d[:-1] = (sigma[1:] - sigma[:-1]) / h
        d[-1] = d[-2]
        c = 3.0 * sigma
        return cls(x, y, b, c, d)

    def __call__(self, u, deriv: int = 0) -> np.ndarray:
        u = np.asarray(u, dtype=float)
        i = np.clip(np.searchsorted(self.x, u, side="right") - 1, 0, self.x.size - 1)
        t = u - self.x[i]
        if deriv == 0:
            return self.y[i] + t * (self.b[i] + t * (self.c[i] + t * self.d[i]))
        if deriv == 1:
            return self.b[i] + t * (2.0 * self.c[i] + 3.0 * self.d[i] * t)
        raise ValueError("deriv must be 0 or 1")


# -- the scaled besag spectrum, computed the way R-INLA's R code does ------------------------------
@dataclass(frozen=True)
class Bym2Spectrum:
    """What the φ prior needs from the graph, from R-INLA's R-side scaling.

    Attributes:
        n: number of nodes.
        n_constraints: components of size >= 2 (one sum-to-zero constraint each).
        marginal_variances: scaled generalised-inverse marginal variances (1 for singletons).
        eigenvalues: the nonzero eigenvalues μ of the scaled structure R* (singletons: 1).
        mean_diagonal: mean of diag(R*).
    """

    n: int
    n_constraints: int
    marginal_variances: np.ndarray
    eigenvalues: np.ndarray
    mean_diagonal: float

    @classmethod
    def from_graph(cls, graph: Graph) -> "Bym2Spectrum":
        graph = as_graph(graph)
        n = graph.n
        var = np.ones(n)
        mus: list[np.ndarray] = []
        facs = np.ones(n)
        k = 0
        for nodes in graph.component_nodes:
            if nodes.size == 1:
                mus.append(np.ones(1))
                continue
            k += 1
            lap = graph.laplacian[nodes][:, nodes]
            lam, vec = np.linalg.eigh(lap.toarray())
            lam, vec = lam[1:], vec[:, 1:]  # drop the constant vector (eigenvalue 0)
            delta = lap.diagonal().max() * _SCALE_EPS
            v = (vec**2) @ (1.0 / (lam + delta))
            fac = float(np.exp(np.mean(np.log(v))))
            var[nodes] = v / fac
            facs[nodes] = fac
            mus.append(fac * lam)
        diag_scaled = np.where(graph.nnbs > 0, facs * graph.nnbs, 1.0)
        return cls(n, k, var, np.concatenate(mus) if mus else np.zeros(0), float(diag_scaled.mean()))

    @cached_property
    def trace_excess(self) -> float:
        """f = mean(marginal variances) - 1, i.e. tr(Σ*)/n - 1."""
        return float(np.mean(self.marginal_variances) - 1.0)

    def two_kld(self, phi: np.ndarray) -> np.ndarray:
        """2 KLD(φ) exactly as ``inla.pc.bym.phi`` evaluates it (graph route), for an array φ."""
        phi = np.atleast_1d(np.asarray(phi, dtype=float))
        c = phi / (1.0 - phi)
        aa = self.n * phi * self.trace_excess
        mu = self.eigenvalues
        d_q = self.mean_diagonal * _DET_EPS
        d_m = (self.mean_diagonal + c) * _DET_EPS
        ld_q = np.sum(np.log(mu + d_q))
        ld_m = np.array([np.sum(np.log(mu + ci + di)) for ci, di in zip(c, d_m)])
        bb = self.n * np.log((1.0 - phi) / phi) + ld_m - (ld_q - self.n * np.log(phi))
        return aa - bb


def pc_bym2_phi_distance(spectrum: Bym2Spectrum, phi) -> np.ndarray:
    """The distance d(φ) = √(2 KLD(φ)) (Riebler et al. 2016, eq. 9); NaN where rounding makes
    2 KLD negative (tiny φ), as in R-INLA."""
    two_kld = spectrum.two_kld(phi)
    return np.where(two_kld >= 0, np.sqrt(np.maximum(two_kld, 0.0)), np.nan)


#: R-INLA's grid for d(φ) on θ = logit φ (pc-bym.R, the sparse strategy used for graphs)
_THETA_KNOTS = np.concatenate([np.linspace(-15.0, 0.0, 40), np.arange(1.0, 13.0)])
_N_TABLE = 10000


def pc_bym2_phi_table(graph_or_spectrum, u: float = 0.5, alpha: float = 0.5, lam: float | None = None):
    """R-INLA's table of the PC prior of θ = logit φ: returns (theta, log_density), 10 000 points.

    Args:
        graph_or_spectrum: the bym2 graph (anything :func:`~adelia.models.graph.as_graph` takes) or a
            :class:`Bym2Spectrum`.
        u, alpha: P(φ < u) = alpha (R-INLA's ``param = c(u, alpha)``).
        lam: the rate λ directly (then u, alpha are not used), as ``inla.pc.bym.phi(lambda=)``.
    """
    spec = graph_or_spectrum if isinstance(graph_or_spectrum, Bym2Spectrum) else Bym2Spectrum.from_graph(graph_or_spectrum)
    phi = 1.0 / (1.0 + np.exp(-_THETA_KNOTS))
    d = pc_bym2_phi_distance(spec, phi)
    keep = ~np.isnan(d)
    d, phi = d[keep][6:], phi[keep][6:]
    if d.size < 4 or np.any(d <= 0):
        raise PriorError("the bym2 'pc' prior could not be tabulated: the distance d(phi) is degenerate for this graph")
    theta = np.log(phi / (1.0 - phi))
    first = RSplineFMM.fit(theta, np.log(d))
    grid = np.linspace(theta.min(), theta.max(), _N_TABLE)
    second = RSplineFMM.fit(grid, first(grid))
    log_d = second(grid)
    dist = np.exp(log_d)
    if lam is None:
        if not (0.0 < alpha < 1.0 and 0.0 < u < 1.0):
            raise PriorError(f"prior 'pc' for phi: need 0 < u < 1 and 0 < alpha < 1, got u={u}, alpha={alpha}")
        lam = -np.log(1.0 - alpha) / float(np.exp(second(np.log(u / (1.0 - u)))))
    log_jac = np.log(np.abs(dist * second(grid, deriv=1)))
    log_prior = np.log(lam) - lam * dist + log_jac
    dx = np.diff(grid)
    mass = np.sum(np.exp(log_prior) * (np.concatenate([[0.0], dx]) + np.concatenate([dx, [0.0]]))) / 2.0
    return grid, log_prior - np.log(mass)


# -- the table as a jit-able log-density ---------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _TableSpline:
    """GMRFLib's evaluation of a ``table:`` prior: natural cubic spline inside, one-sided linear
    extrapolation outside with negative slopes set to 0 (``GMRFLib_spline_eval``)."""

    x: np.ndarray
    coef: np.ndarray  # (4, n-1): c0 t³ + c1 t² + c2 t + c3 on [x_i, x_{i+1}]
    slope_low: float
    slope_high: float

    @classmethod
    def fit(cls, x, y) -> "_TableSpline":
        from scipy.interpolate import CubicSpline

        cs = CubicSpline(x, y, bc_type="natural")
        h = (x[-1] - x[0]) * 1e-4
        lo = float((cs(x[0] + h) - cs(x[0])) / h)
        hi = float((cs(x[-1]) - cs(x[-1] - h)) / h)
        return cls(np.asarray(x, float), np.asarray(cs.c, float), max(lo, 0.0), max(hi, 0.0))

    def __call__(self, theta):
        x = jnp.asarray(self.x)
        t_in = jnp.clip(theta, x[0], x[-1])
        i = jnp.clip(jnp.searchsorted(x, t_in, side="right") - 1, 0, x.shape[0] - 2)
        t = t_in - x[i]
        c = jnp.asarray(self.coef)
        val = ((c[0, i] * t + c[1, i]) * t + c[2, i]) * t + c[3, i]
        return val + jnp.where(theta < x[0], (theta - x[0]) * self.slope_low, 0.0) + jnp.where(
            theta > x[-1], (theta - x[-1]) * self.slope_high, 0.0
        )


@register_prior("pc")
class PCBym2Phi(Prior):
    """PC prior for bym2's φ on θ = logit φ, tabulated as R-INLA does (module docstring).

    ``param = (u, alpha)``: P(φ < u) = alpha; R-INLA's default is (0.5, 0.5). The model passes its
    graph as context: ``make_prior("pc", (0.5, 0.5), graph=g)``.
    """

    name = "pc"
    n_param = 2

    def __init__(self, u: float = 0.5, alpha: float = 0.5, *, graph=None, spectrum: Bym2Spectrum | None = None, **_context):
        if graph is None and spectrum is None:
            raise PriorError(
                "prior 'pc' is the PC prior of bym2's mixing parameter phi and needs the model's graph; "
                "use it as hyper = {'phi': {'prior': 'pc', 'param': (u, alpha)}} in f(..., model='bym2')"
            )
        self.param = (float(u), float(alpha))
        self.spectrum = spectrum if spectrum is not None else Bym2Spectrum.from_graph(graph)
        self.theta_grid, self.table = pc_bym2_phi_table(self.spectrum, u, alpha)
        self._spline = _TableSpline.fit(self.theta_grid, self.table)

    def log_density(self, theta):
        """log π(θ), θ = logit φ (Jacobian included), as R-INLA's table gives it."""
        return self._spline(jnp.asarray(theta, dtype=jnp.float64))
