"""Latent marginals beyond the Gaussian: the strategies "simplified.laplace" and "laplace".

INLA approximates π(x_i | y) ≈ Σ_k w_k π̃(x_i | θ_k, y) (Rue, Martino & Chopin 2009, eq. 5).
R-INLA's compact mode (``strategy="auto"``/``"gaussian"`` here) takes π̃ = the Gaussian
marginal of π_G(x | θ_k, y) with a VB-corrected mean. The classic strategies of RMC 2009
§3.2 improve on it; both are centred at the mode x* of π_G with σ_i² = Var_G(x_i), and both
respect hard constraints C x = e (every covariance below is the kriging-corrected one).

Full Laplace ("laplace", RMC 2009 eq. 6). With x_i = x*_i + σ_i z fixed,

    π̃_LA(x_i | θ, y) ∝ π(x, y | θ) / π̃_GG(x_{-i} | x_i, θ, y)  at  x = x̂(x_i),

x̂(x_i) the mode of π(x | y, θ) on {C x = e, x_i fixed} (constrained Newton, started at the
Gaussian conditional mean x* + Σ_{:,i} z/σ_i), and π̃_GG the Gaussian approximation there.
Treating "x_i = v" as one more linear constraint, C⁺ = [C; e_iᵀ], conditioning by kriging
gives log π̃_GG(x̂ | x_i) = ½ log|Q_c(x̂)| + ½ log|C⁺ Q_c(x̂)⁻¹ C⁺ᵀ| + const, so

    log π̃_LA(z) = log π(y | x̂) − ½ (x̂ − μ)ᵀ Q (x̂ − μ) − ½ log|Q_c(x̂)| − ½ log|S⁺(x̂)| + const.

It is evaluated on the standardised grid ``LAPLACE_GRID`` and stored as a log correction
c(z) = log π̃_LA(z) + ½ z² of the Gaussian (a natural cubic spline in z, constant beyond the
grid): R-INLA's spline-corrected Gaussian. :class:`LaplaceMixture` holds these. (R-INLA
approximates x̂ by the Gaussian conditional mean and the determinant within a neighbourhood
of i, RMC 2009 §3.2.2; here both are exact, at the price of one Newton per grid point.)

Simplified Laplace ("simplified.laplace", RMC 2009 §3.2.3; R-INLA's
``GMRFLib_ai_marginal_hidden`` with ``MEANSKEWCORRECTED_GAUSSIAN``). Expanding log π̃_LA to
third order in z, with η = A x the linear predictor, d⁽³⁾_o = ∂³ log π(y_o | η_o)/∂η_o³ at η*,
v_o = Var_G(η_o) and b_o = Cov_G(η_o, x_i)/σ_i (the change of E_G(η_o | x_i) per unit z):

    log π̃_SLA(z) = −½ z² + γ₁ z + γ₃ z³/6,
    γ₁ = ½ Σ_o d⁽³⁾_o b_o (v_o − b_o²),     γ₃ = Σ_o d⁽³⁾_o b_o³.

(γ₃ is the cubic term of log π(y | E_G(x | x_i)); γ₁ is −½ d/dz log|Q_c restricted to x_{-i}|,
d log|Q| = tr(Q⁻¹ dQ) with dQ_c = Aᵀ diag(−d⁽³⁾ b) A, and Var(η_o | x_i) = v_o − b_o².)
A skew-normal SN(ξ, ω, α) in z is fitted as R-INLA does (``improved.simplified.laplace =
FALSE``): mean γ₁, variance 1, and (α/ω)³ = γ₃ / 0.2180136141449902, i.e. with
c = ω/α, s = α² the positive root of c²(1 − 2/π) s² + (c² − 1) s − 1 = 0.

Cost (n latent nodes, n_obs observations, K design points, G grid points):
- simplified Laplace: per design point and node one extra solve with the factorised Q_c
  (the column Σ_{:,i}, in chunks of ``chunk`` right-hand sides) and an n_obs-vector product:
  O(|nodes| · cost(solve)) — as R-INLA, which also solves once per node. By default all
  nodes when n ≤ ``SLA_ALL_NODES_LIMIT`` (R-INLA's own limit for simplified Laplace), else the
  fixed effects and the f() terms of size ≤ ``SMALL_TERM_LIMIT`` (Gaussian for the rest).
- Laplace: per design point, node and grid point one constrained Newton (2–5 factorisations):
  O(K · |nodes| · G · cost(Newton)). By default the fixed effects and the f() terms of size
  ≤ ``SMALL_TERM_LIMIT``; the other nodes get the simplified Laplace (as above).
Nodes whose Gaussian variance vanishes (fixed by the constraints) keep the Gaussian.

Example:
    >>> res = adelia.inla("y ~ 1", {"y": [4.0], "E": [0.25]}, family="poisson", E="E",
    ...                   control_inla={"strategy": "laplace"})  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy import interpolate, special

from ..engine.hoisted_jit import hoisted_jit
from ..errors import unknown_choice
from ..user_warnings import warn
from .constraints import constrained_solve, log_det_spd
from .combined import combined_marginal, combined_summary
from .summaries import MARGINAL_GRID, Mixture, summary_columns

#: simplified Laplace for every node up to this latent size (R-INLA: "auto" -> SLA below 5000)
SLA_ALL_NODES_LIMIT = 5000
#: f() terms of at most this many nodes get the full Laplace (and the SLA above the limit)
SMALL_TERM_LIMIT = 25
#: standardised abscissae z of the full-Laplace evaluations (symmetric, contains 0)
LAPLACE_GRID = np.array(
    [-8.0, -6.0, -5.0, -4.0, -3.25, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.25, 4.0, 5.0, 6.0, 8.0]
)
#: R-INLA's constant linking γ₃ to (α/ω)³ in the standard skew-normal fit
SN_THIRD_DERIVATIVE_CONSTANT = 0.2180136141449902
STRATEGIES = ("simplified.laplace", "laplace")

_GL_X, _GL_W = np.polynomial.legendre.leggauss(8)


# ------------------------------------------------------------------------------------------
# node selection
# ------------------------------------------------------------------------------------------


def small_term_nodes(graph, limit: int = SMALL_TERM_LIMIT) -> np.ndarray:
    """Latent indices of every fixed effect and of every f() term with at most ``limit`` nodes."""
    out = [b.start + np.arange(b.size) for b in graph.blocks if b.kind == "fixed" or b.size <= limit]
    return np.unique(np.concatenate(out)).astype(np.int64) if out else np.zeros(0, np.int64)


def default_nodes(graph, strategy: str) -> np.ndarray:
    """The nodes a strategy treats by default (see the module docstring for the costs).

    "simplified.laplace": all nodes when n_latent ≤ ``SLA_ALL_NODES_LIMIT``, else the fixed
    effects and the small f() terms. "laplace": the fixed effects and the small f() terms."""
    if strategy == "simplified.laplace" and graph.n_latent <= SLA_ALL_NODES_LIMIT:
        return np.arange(graph.n_latent, dtype=np.int64)
    if strategy not in STRATEGIES:
        raise ValueError(unknown_choice("latent strategy", strategy, STRATEGIES))
    return small_term_nodes(graph)


# ------------------------------------------------------------------------------------------
# jit-compiled kernels (one design point at a time; cached on the model)
# ------------------------------------------------------------------------------------------


def _third_derivative(obs, eta, theta):
    """∂³ log π(y_o | η_o)/∂η_o³ per row: the families are elementwise in η, so the Jacobian
    of ∂² is diagonal and one JVP with a vector of ones gives it."""
    d2 = lambda e: obs.derivatives(e, theta)[1]
    return jax.jvp(d2, (eta,), (jnp.ones_like(eta),))[1]


def _kernels(model) -> dict:
    cache = getattr(model, "_latent_strategy_kernels", None)
    if cache is None:
        pool = getattr(model, "_const_pool", None)
        cache = {"sla": hoisted_jit(_sla_kernel(model.laplace), pool), "laplace": hoisted_jit(_laplace_kernel(model.laplace), pool)}
        model._latent_strategy_kernels = cache
    return cache


def _sla_kernel(lap):
    """(θ, x*, Var(η), nodes (m,)) -> (Σ_{:,nodes} (n, m), σ (m,), γ₁ (m,), γ₃ (m,))."""
    g = lap.graph
    n = g.n_latent

    def kernel(theta, x_mode, eta_var, nodes):
        qv = g.prior_values(theta)
        av = g.a_values(theta)
        eta, _, _, qcv = lap._curvature(x_mode, theta, qv, av)
        d3 = _third_derivative(lap.obs, eta, theta)
        m = nodes.shape[0]
        E = jnp.zeros((n, m)).at[nodes, jnp.arange(m)].set(1.0)
        cols, _, _ = constrained_solve(g.solver, qcv, E, lap.C, None)
        sd = jnp.sqrt(jnp.maximum(cols[nodes, jnp.arange(m)], 1e-300))
        b = g.predictor(av, cols) / sd  # (n_obs, m): Cov(η_o, x_i)/σ_i
        gamma3 = d3 @ b**3
        gamma1 = 0.5 * ((d3 * eta_var) @ b - gamma3)
        return cols, sd, gamma1, gamma3

    return kernel


def _constrained_newton(lap, theta, qv, av, C, e, x0):
    """Mode of g(x) = log π(y | x) + log π(x | θ) on {C x = e} from a feasible x0: damped
    Newton (step halving while g decreases), as :meth:`LaplaceApproximation._newton`."""
    g = lap.graph
    opts = lap.newton
    off = jnp.asarray(lap.obs.offset)
    prior_mean = jnp.asarray(g.prior_mean)
    obj = lambda x: lap._log_joint(x, theta, qv, av)

    def step(x):
        eta, d1, D, qcv = lap._curvature(x, theta, qv, av)
        b = g.prior_matvec(qv, prior_mean) + g.predictor_transpose(av, d1 + D * (eta - off))
        return constrained_solve(g.solver, qcv, b, C, e)[0]

    def halve(x, x_new, f_old):
        def cond(s):
            _, f_try, h = s
            worse = (f_try < f_old - 1e-12 * (1.0 + jnp.abs(f_old))) | ~jnp.isfinite(f_try)
            return worse & (h < opts.max_halvings)

        def body(s):
            d, _, h = s
            d = 0.5 * d
            return d, obj(x + d), h + 1

        d, f_new, _ = jax.lax.while_loop(cond, body, (x_new - x, obj(x_new), 0))
        return x + d, f_new

    def cond(state):
        it, x, _, delta = state
        return (it < opts.max_iter) & (delta > opts.tol * (1.0 + jnp.max(jnp.abs(x)))) & jnp.isfinite(delta)

    def body(state):
        it, x, f, _ = state
        x_next, f_next = halve(x, step(x), f)
        return it + 1, x_next, f_next, jnp.max(jnp.abs(x_next - x))

    it, x, _, delta = jax.lax.while_loop(cond, body, (0, x0, obj(x0), jnp.asarray(1e300)))
    converged = (delta <= opts.tol * (1.0 + jnp.max(jnp.abs(x)))) & jnp.all(jnp.isfinite(x))
    return x, converged


def _laplace_kernel(lap):
    """(θ, x*, Σ_{:,nodes} (n, m), σ (m,), nodes (m,), z (G,)) -> log π̃_LA (m, G) up to a
    constant per node, and the Newton convergence flags (m, G)."""
    g = lap.graph
    n = g.n_latent
    C = None if lap.C is None else jnp.asarray(lap.C)
    e = None if lap.e is None else jnp.asarray(lap.e)

    def one(theta, x_mode, col, sd, i, z):
        qv = g.prior_values(theta)
        av = g.a_values(theta)
        row = jnp.zeros((1, n)).at[0, i].set(1.0)
        value = x_mode[i] + sd * z
        C_aug = row if C is None else jnp.concatenate([C, row], axis=0)
        e_aug = value[None] if e is None else jnp.concatenate([e, value[None]])
        # the Gaussian conditional mean E_G(x | x_i): feasible, and close to x̂
        x0 = x_mode + col * (z / sd)
        x, ok = _constrained_newton(lap, theta, qv, av, C_aug, e_aug, x0)
        _, _, _, qcv = lap._curvature(x, theta, qv, av)
        W = g.solver.solve(qcv, C_aug.T)
        S = C_aug @ W
        val = lap._log_joint(x, theta, qv, av) - 0.5 * g.solver.logdet(qcv) - 0.5 * log_det_spd(S)
        return val, ok

    over_grid = jax.vmap(one, in_axes=(None, None, None, None, None, 0))
    return jax.vmap(over_grid, in_axes=(None, None, 1, 0, 0, None))


# ------------------------------------------------------------------------------------------
# per design point, on the host
# ------------------------------------------------------------------------------------------


def _chunks(nodes: np.ndarray, size: int):
    """Fixed-size chunks (the last padded with its first node) so that each kernel compiles once."""
    for s in range(0, nodes.size, size):
        part = nodes[s : s + size]
        pad = size - part.size
        yield part, (np.concatenate([part, np.full(pad, part[0])]) if pad else part)


def skew_normal_from_sla(gamma1, gamma3):
    """R-INLA's standard skew-normal fit to −½z² + γ₁z + γ₃z³/6: returns (ξ, ω, α) with mean
    γ₁, variance 1 and (α/ω)³ = γ₃/0.2180136141449902 (arrays of any common shape)."""
    g1 = np.asarray(gamma1, dtype=float)
    g3 = np.asarray(gamma3, dtype=float)
    skew = np.abs(g3) > 1e-12
    safe = np.where(skew, g3, 1.0)
    c = 1.0 / np.cbrt(safe / SN_THIRD_DERIVATIVE_CONSTANT)
    A = c**2 * (1.0 - 2.0 / np.pi)
    B = c**2 - 1.0
    root = np.sqrt(B**2 + 4.0 * A)
    # the positive root of A s² + B s − 1 = 0 without cancellation
    s = np.where(B >= 0, 2.0 / (B + root), (root - B) / (2.0 * A))
    alpha = np.where(skew, np.sqrt(s) * np.sign(g3), 0.0)
    delta = alpha / np.sqrt(1.0 + alpha**2)
    omega = 1.0 / np.sqrt(1.0 - 2.0 * delta**2 / np.pi)
    xi = g1 - omega * np.sqrt(2.0 / np.pi) * delta
    return xi, omega, alpha


def _point_strategies(kern, theta, x_mode, eta_var, sla_nodes, lap_nodes, grid, chunk):
    """At one θ: SLA (ξ, ω, α) and finiteness flags for ``sla_nodes``, Laplace log densities
    (|lap_nodes|, G) and Newton convergence flags."""
    theta = jnp.asarray(theta)
    xm = jnp.asarray(x_mode)
    ev = jnp.asarray(eta_var)
    xi = np.zeros(sla_nodes.size)
    om = np.ones(sla_nodes.size)
    al = np.zeros(sla_nodes.size)
    sla_ok = np.ones(sla_nodes.size, dtype=bool)
    s = 0
    for part, padded in _chunks(sla_nodes, chunk):
        _, _, g1, g3 = kern["sla"](theta, xm, ev, jnp.asarray(padded))
        g1, g3 = np.asarray(g1)[: part.size], np.asarray(g3)[: part.size]
        finite = np.isfinite(g1) & np.isfinite(g3)
        sla_ok[s : s + part.size] = finite
        a, b, c = skew_normal_from_sla(np.where(finite, g1, 0.0), np.where(finite, g3, 0.0))
        xi[s : s + part.size], om[s : s + part.size], al[s : s + part.size] = a, b, c
        s += part.size
    logd = np.zeros((lap_nodes.size, grid.size))
    ok = np.ones((lap_nodes.size, grid.size), dtype=bool)
    lap_chunk = max(1, min(lap_nodes.size, 256 // grid.size))
    s = 0
    for part, padded in _chunks(lap_nodes, lap_chunk):
        cols, sd, _, _ = kern["sla"](theta, xm, ev, jnp.asarray(padded))
        val, conv = kern["laplace"](theta, xm, cols, sd, jnp.asarray(padded), jnp.asarray(grid))
        logd[s : s + part.size] = np.asarray(val)[: part.size]
        ok[s : s + part.size] = np.asarray(conv)[: part.size]
        s += part.size
    return (xi, om, al), sla_ok, logd, ok


def latent_marginals(model, points, probabilities, strategy: str, nodes=None, *, grid=LAPLACE_GRID, chunk: int = 64):
    """The latent marginals for ``strategy`` "simplified.laplace" or "laplace".

    Args:
        model: the compiled :class:`adelia.model.Model`.
        points: the design-point results (:class:`adelia.inference.run.PointResults`): per
            point the full θ, the mode x* of π_G, its constrained variances, the (VB) means
            and Var(η).
        probabilities: (K,) mixture weights of the design points (pruned ones 0; dropped).
        strategy: "simplified.laplace" or "laplace".
        nodes: latent indices that get the strategy (default :func:`default_nodes`). For
            "laplace" the other nodes of :func:`default_nodes` ("simplified.laplace") get the
            simplified Laplace; nodes outside both keep the Gaussian N(mean, var) of ``points``.
        grid: standardised abscissae of the full-Laplace evaluations (symmetric, with 0).
        chunk: right-hand sides per solve for the Σ columns.

    Returns:
        "simplified.laplace": a :class:`Mixture` of skew-normals over the kept design points;
        "laplace": a :class:`LaplaceMixture` (the same interface).

    Example:
        >>> latent = latent_marginals(model, pts, p_latent, "simplified.laplace")  # doctest: +SKIP
        >>> latent.summary()["mean"]  # doctest: +SKIP
    """
    if strategy not in STRATEGIES:
        raise ValueError(unknown_choice('control_inla "strategy" for latent_marginals', strategy, STRATEGIES))
    graph = model.graph
    n = graph.n_latent
    p = np.asarray(probabilities, dtype=float)
    keep = np.flatnonzero(p > 0)
    w = p[keep]
    mode = np.asarray(points.mode)[keep]
    sd = np.sqrt(np.maximum(np.asarray(points.var)[keep], 0.0))
    grid = np.asarray(grid, dtype=float)
    if not (np.allclose(grid, -grid[::-1]) and np.any(grid == 0.0) and np.all(np.diff(grid) > 0)):
        raise ValueError("grid must be increasing, symmetric about 0 and contain 0")

    chosen = default_nodes(graph, strategy) if nodes is None else np.unique(np.asarray(nodes, dtype=np.int64))
    if chosen.size and (chosen.min() < 0 or chosen.max() >= n):
        raise ValueError(f"nodes must be latent indices in [0, {n}), got {chosen.min()}..{chosen.max()}")
    # nodes pinned by the constraints (zero variance) keep the Gaussian
    degenerate = np.any(sd <= 1e-10 * (1.0 + np.abs(mode)), axis=0)
    chosen = chosen[~degenerate[chosen]]
    if strategy == "laplace":
        lap_nodes = chosen
        sla_nodes = np.setdiff1d(default_nodes(graph, "simplified.laplace"), lap_nodes)
        sla_nodes = sla_nodes[~degenerate[sla_nodes]]
    else:
        lap_nodes = np.zeros(0, np.int64)
        sla_nodes = chosen

    loc = np.array(np.asarray(points.mean)[keep], dtype=float)
    scale = sd.copy()
    shape = np.zeros_like(loc)
    K = keep.size
    corr = np.zeros((K, grid.size, lap_nodes.size))
    kern = _kernels(model)
    failed = []
    for k in range(K):
        j = keep[k]
        (xi, om, al), sla_ok, logd, ok = _point_strategies(
            kern, points.theta_full[j], points.mode[j], points.eta_var[j], sla_nodes, lap_nodes, grid, chunk
        )
        s = sd[k, sla_nodes]
        loc[k, sla_nodes] = mode[k, sla_nodes] + s * xi
        scale[k, sla_nodes] = s * om
        shape[k, sla_nodes] = al
        failed.extend(sla_nodes[~sla_ok].tolist())  # non-finite γ: the Gaussian there
        if lap_nodes.size:
            loc[k, lap_nodes] = mode[k, lap_nodes]
            c = logd + 0.5 * grid[None, :] ** 2
            bad = ~np.all(np.isfinite(c) & ok, axis=1)
            if np.any(bad):
                failed.extend(lap_nodes[bad].tolist())
                c[bad] = 0.0  # the Gaussian for this node at this θ
            c = c - np.max(c, axis=1, keepdims=True)
            corr[k] = c.T
    if failed:
        warn(
            f"strategy {strategy!r}: the correction could not be computed (non-finite values or no convergence of the "
            f"conditional mode) for latent node(s) {sorted(set(failed))[:10]} at some design point(s); the Gaussian "
            "approximation is used there",
            UserWarning
        )
    base = Mixture(w, loc, scale, shape)
    if strategy == "simplified.laplace":
        return base
    corrected = np.zeros(n, dtype=bool)
    corrected[lap_nodes] = True
    return LaplaceMixture(base, corrected, grid, corr)


# ------------------------------------------------------------------------------------------
# the representation of the full-Laplace marginals
# ------------------------------------------------------------------------------------------


@dataclass
class LaplaceMixture:
    """Per-node mixtures over design points whose components are, for the ``corrected``
    nodes, spline-corrected Gaussians (R-INLA's SCGAUSSIAN density):

        p_k(x) = φ(z) exp(c_k(z)) / (Z_k ω_k),   z = (x − ξ_k)/ω_k,

    c_k a natural cubic spline through ``correction[k, :, j]`` on ``grid``, held constant beyond
    it, Z_k its normaliser (Gauss–Legendre per grid interval, closed-form tails); the other
    nodes are the skew-normal/Gaussian components of ``base``. Quacks like :class:`Mixture`
    (``mean, sd, pdf, cdf, quantile, mode, summary, marginal_grid``; ``weights, loc, scale``
    are the base's: for corrected nodes the standardisation ξ_k, ω_k).

    Attributes:
        base: a :class:`Mixture` over all n nodes (K components).
        corrected: (n,) bool, the nodes with a Laplace correction.
        grid: (G,) standardised abscissae, symmetric about 0.
        correction: (K, G, n_c) log corrections of the corrected nodes (in index order).
    """

    base: Mixture
    corrected: np.ndarray
    grid: np.ndarray
    correction: np.ndarray

    def __post_init__(self):
        self.corrected = np.asarray(self.corrected, dtype=bool)
        self._idx = np.flatnonzero(self.corrected)
        self._plain = np.flatnonzero(~self.corrected)
        if self.base.shape is not None and np.any(self.base.shape[:, self._idx]):
            raise ValueError("corrected nodes must have Gaussian base components (shape 0)")
        self.correction = np.asarray(self.correction, dtype=float).reshape(self.base.loc.shape[0], self.grid.size, self._idx.size)
        self._prepare()

    # --- Mixture-like attributes -----------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        return self.base.weights

    @property
    def loc(self) -> np.ndarray:
        return self.base.loc

    @property
    def scale(self) -> np.ndarray:
        return self.base.scale

    @property
    def shape(self) -> np.ndarray | None:
        return self.base.shape

    @property
    def n(self) -> int:
        return self.base.n

    # --- node subsets and scaling (results tables, copy terms) ---------------------------------------
    def select(self, columns) -> "LaplaceMixture":
        """The marginals of the nodes ``columns`` (a slice or index array)."""
        cols = np.arange(self.n)[columns]
        pos = np.full(self.n, -1)
        pos[self._idx] = np.arange(self._idx.size)
        sub = pos[cols]
        return LaplaceMixture(select_nodes(self.base, cols), self.corrected[cols], self.grid, self.correction[:, :, sub[sub >= 0]])

    def scaled(self, factor) -> "LaplaceMixture":
        """The marginals of factor_k · x per component (``copy`` terms with β per design point)."""
        f = np.broadcast_to(np.asarray(factor, dtype=float), (self.base.loc.shape[0],))
        corr = np.where((f < 0)[:, None, None], self.correction[:, ::-1, :], self.correction)
        return LaplaceMixture(scale_components(self.base, f), self.corrected, self.grid, corr)

    # --- the spline-corrected components -------------------------------------------------------------
    def _prepare(self):
        """Spline coefficients, normalisers, knot cdfs and moments of the corrected components."""
        K, G, m = self.correction.shape
        z = self.grid
        if m == 0:
            return
        self._coef = interpolate.CubicSpline(z, self.correction, axis=1, bc_type="natural").c  # (4, G-1, K, m)
        h = np.diff(z)
        t = z[:-1, None] + 0.5 * h[:, None] * (_GL_X[None, :] + 1.0)  # (G-1, Q)
        wq = 0.5 * h[:, None] * _GL_W[None, :]
        dt = t - z[:-1, None]
        cval = sum(self._coef[p][:, None] * dt[:, :, None, None] ** (3 - p) for p in range(4))  # (G-1, Q, K, m)
        f = np.exp(cval) * _phi(t)[:, :, None, None] * wq[:, :, None, None]
        inner = f.sum(axis=1)  # (G-1, K, m)
        c_lo, c_hi = np.exp(self.correction[:, 0, :]), np.exp(self.correction[:, -1, :])
        lo, hi = z[0], z[-1]
        tail_lo = c_lo * special.ndtr(lo)
        tail_hi = c_hi * special.ndtr(-hi)
        Z = inner.sum(axis=0) + tail_lo + tail_hi
        self._Z = Z
        self._cdf_knots = np.concatenate([tail_lo[None], tail_lo[None] + np.cumsum(inner, axis=0)], axis=0) / Z  # (G, K, m)
        m1 = (f * t[:, :, None, None]).sum(axis=(0, 1)) - c_lo * _phi(lo) + c_hi * _phi(hi)
        m2 = (f * t[:, :, None, None] ** 2).sum(axis=(0, 1)) + c_lo * (special.ndtr(lo) - lo * _phi(lo)) + c_hi * (special.ndtr(-hi) + hi * _phi(hi))
        mz, vz = m1 / Z, m2 / Z - (m1 / Z) ** 2
        self._cmean = self.base.loc[:, self._idx] + self.base.scale[:, self._idx] * mz
        self._cvar = self.base.scale[:, self._idx] ** 2 * np.maximum(vz, 0.0)

    def component_means(self) -> np.ndarray:
        """The mean of each component, (K, n): the spline-corrected density's for the
        corrected nodes, the base component's for the others (R-INLA's ``dens[i][k]->user_mean``)."""
        out = self.base.component_means()
        out[:, self._idx] = self._cmean
        return out

    def _spline(self, zc, j):
        """c(zc) on interval j (zc already within the grid), shapes (..., K, m)."""
        shp = zc.shape
        K, m = shp[-2:]
        jj = j.reshape(-1, K, m)
        dt = zc - self.grid[j]
        out = np.zeros(shp)
        for p in range(4):
            cp = np.take_along_axis(self._coef[p], jj, axis=0).reshape(shp)
            out = out + cp * dt ** (3 - p)
        return out

    def _interval(self, z):
        zc = np.clip(z, self.grid[0], self.grid[-1])
        j = np.clip(np.searchsorted(self.grid, zc, side="right") - 1, 0, self.grid.size - 2)
        return zc, j

    def _standardise(self, x):
        """x (..., m) of the corrected nodes -> z (..., K, m)."""
        loc = self.base.loc[:, self._idx]
        scale = self.base.scale[:, self._idx]
        return (np.asarray(x, dtype=float)[..., None, :] - loc) / scale

    def _pdf_corrected(self, x):
        z = self._standardise(x)
        zc, j = self._interval(z)
        comp = _phi(z) * np.exp(self._spline(zc, j)) / (self._Z * self.base.scale[:, self._idx])
        return np.einsum("k,...km->...m", self.weights, comp)

    def _cdf_corrected(self, x):
        z = self._standardise(x)
        zc, j = self._interval(z)
        lo, hi = self.grid[0], self.grid[-1]
        # within the grid: knot cdf + ∫_{z_j}^{z} φ e^c by 8-point Gauss–Legendre
        a = self.grid[j]
        half = 0.5 * (zc - a)
        t = a[None] + half[None] * (_GL_X.reshape((-1,) + (1,) * z.ndim) + 1.0)
        jt = np.broadcast_to(j, t.shape)
        part = np.sum(_GL_W.reshape((-1,) + (1,) * z.ndim) * _phi(t) * np.exp(self._spline(t, jt)), axis=0) * half
        K, m = z.shape[-2:]
        knot = np.take_along_axis(self._cdf_knots, j.reshape(-1, K, m), axis=0).reshape(z.shape)
        inside = knot + part / self._Z
        c_lo = np.exp(self.correction[:, 0, :])
        c_hi = np.exp(self.correction[:, -1, :])
        below = c_lo * special.ndtr(np.minimum(z, lo)) / self._Z
        above = 1.0 - c_hi * special.ndtr(-np.maximum(z, hi)) / self._Z
        comp = np.where(z < lo, below, np.where(z > hi, above, inside))
        return np.einsum("k,...km->...m", self.weights, np.clip(comp, 0.0, 1.0))

    # --- the Mixture interface ----------------------------------------------------------------------
    def _merge(self, plain_values, corrected_values, lead_shape=()):
        out = np.empty(tuple(lead_shape) + (self.n,))
        if self._plain.size:
            out[..., self._plain] = plain_values()
        if self._idx.size:
            out[..., self._idx] = corrected_values()
        return out

    def _plain_mixture(self) -> Mixture:
        return select_nodes(self.base, self._plain)

    def mean(self) -> np.ndarray:
        return self._merge(lambda: self._plain_mixture().mean(), lambda: self.weights @ self._cmean)

    def sd(self) -> np.ndarray:
        def corrected():
            mu = self.weights @ self._cmean
            second = self.weights @ (self._cvar + self._cmean**2)
            return np.sqrt(np.maximum(second - mu**2, 0.0))

        return self._merge(lambda: self._plain_mixture().sd(), corrected)

    def pdf(self, x) -> np.ndarray:
        """Density at x of shape (..., n)."""
        x = np.asarray(x, dtype=float)
        return self._merge(
            lambda: self._plain_mixture().pdf(x[..., self._plain]), lambda: self._pdf_corrected(x[..., self._idx]), x.shape[:-1]
        )

    def cdf(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return self._merge(
            lambda: self._plain_mixture().cdf(x[..., self._plain]), lambda: self._cdf_corrected(x[..., self._idx]), x.shape[:-1]
        )

    def _quantile_corrected(self, p: float) -> np.ndarray:
        loc = self.base.loc[:, self._idx]
        scale = self.base.scale[:, self._idx]
        lo = np.min(loc + (self.grid[0] - 12.0) * scale, axis=0)
        hi = np.max(loc + (self.grid[-1] + 12.0) * scale, axis=0)
        x = 0.5 * (lo + hi)
        for _ in range(200):
            F = self._cdf_corrected(x)
            lo = np.where(F < p, x, lo)
            hi = np.where(F >= p, x, hi)
            x = 0.5 * (lo + hi)
            if np.max(hi - lo) <= 1e-13 * (1.0 + np.max(np.abs(x))):
                break
        return x

    def quantile(self, p: float) -> np.ndarray:
        """The p-quantile per node (bisection on the mixture cdf)."""
        return self._merge(lambda: self._plain_mixture().quantile(p), lambda: self._quantile_corrected(p))

    def _mode_corrected(self) -> np.ndarray:
        mu = self.weights @ self._cmean
        sd = np.sqrt(np.maximum(self.weights @ (self._cvar + self._cmean**2) - mu**2, 1e-300))
        grid = mu + sd * np.linspace(-5.0, 5.0, 401)[:, None]
        j = np.argmax(self._pdf_corrected(grid), axis=0)
        x = grid[j, np.arange(mu.size)]
        h = 10.0 * sd / 400
        for _ in range(60):
            f0, fm, fp = (self._pdf_corrected(v) for v in (x, x - h, x + h))
            curv = fp - 2.0 * f0 + fm
            step = np.where(curv < 0, -0.5 * h * (fp - fm) / np.where(curv < 0, curv, -1.0), np.sign(fp - fm) * h)
            x = x + np.clip(step, -h, h)
            h = np.maximum(0.5 * h, 1e-9 * sd)
        return x

    def mode(self) -> np.ndarray:
        return self._merge(lambda: self._plain_mixture().mode(), self._mode_corrected)

    def summary(self, quantiles=(0.025, 0.5, 0.975), method: str = "combined") -> dict[str, np.ndarray]:
        """R-INLA's summary columns: mean, sd, <q>quant..., mode; "combined": of R-INLA's
        spline-corrected Gaussian of the mixture (:mod:`adelia.inference.combined`), "exact":
        of the mixture itself (see :meth:`Mixture.summary`)."""
        if method == "combined" and self.base.loc.shape[0] > 1:
            return combined_summary(self, quantiles)
        return summary_columns(self, quantiles)

    def marginal_grid(self, n_points: int | None = None, method: str = "combined") -> tuple[np.ndarray, np.ndarray]:
        """(x, density) per node: arrays of shape (n_grid, n); "combined" (with ``n_points``
        None): R-INLA's returned marginal (:func:`adelia.inference.combined.combined_marginal`),
        else the exact mixture on a standardised grid."""
        if method == "combined" and n_points is None and self.base.loc.shape[0] > 1:
            return combined_marginal(self)
        z = MARGINAL_GRID if n_points is None else np.linspace(-6, 6, n_points)
        x = self.mean() + self.sd() * z[:, None]
        return x, self.pdf(x)


def _phi(z):
    return np.exp(-0.5 * np.asarray(z) ** 2) / np.sqrt(2.0 * np.pi)


# ------------------------------------------------------------------------------------------
# helpers for results tables (work on Mixture and LaplaceMixture alike)
# ------------------------------------------------------------------------------------------


def select_nodes(mixture, columns):
    """The marginals of a subset of nodes (slice or index array), shape parameters included."""
    if isinstance(mixture, LaplaceMixture):
        return mixture.select(columns)
    shape = None if mixture.shape is None else mixture.shape[:, columns]
    return type(mixture)(mixture.weights, mixture.loc[:, columns], mixture.scale[:, columns], shape)  # subclasses kept


def scale_components(mixture, factor):
    """The marginals of factor_k · x, factor per component (K,) or scalar (copy terms)."""
    if isinstance(mixture, LaplaceMixture):
        return mixture.scaled(factor)
    f = np.broadcast_to(np.asarray(factor, dtype=float), (mixture.loc.shape[0],))[:, None]
    shape = None if mixture.shape is None else mixture.shape * np.sign(f)
    return type(mixture)(mixture.weights, mixture.loc * f, mixture.scale * np.abs(f), shape)
