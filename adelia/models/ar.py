"""Autoregressive models: ar1 (θ = log marginal precision, logit-type lag-one correlation)
and ar(p) in the partial-autocorrelation (PACF) parametrisation.

ar1 (R-INLA's ``Qfunc_ar1``): x_1 ~ N(0, 1/κ), x_t = ρ x_{t−1} + ε_t, ε_t ~ N(0, (1−ρ²)/κ), κ the
*marginal* precision. θ₁ = log κ (loggamma(1, 5e-05), initial 4), θ₂ = log((1+ρ)/(1−ρ))
(normal(0, 0.15), initial 2), θ₃ = the mean, fixed at 0 (only 0 is supported). Q = κ/(1−ρ²)·R(ρ)
with R tridiagonal: diagonal (1, 1+ρ², ..., 1+ρ², 1), off-diagonal −ρ; cyclic=TRUE wraps
(diagonal 1+ρ² everywhere, corner −ρ). ½ log|Q| = ½ n log(κ/(1−ρ²)) + ½ log(1−ρ²) (cyclic:
½ Σ_j log(1 + ρ² − 2ρ cos(2πj/n))).

ar(p) (``ar.c``): θ₁ = log κ (marginal precision; pc.prec(3, 0.01), initial 4), θ_{k+1} =
log((1+ψ_k)/(1−ψ_k)) for the PACF ψ_1..ψ_p (pc.cor0(0.5, 0.5), (0.5, 0.4), (0.5, 0.3),
(0.5, 0.2), then (0.5, 0.1); initial 1 for ψ_1, 0 for the others). The AR coefficients φ come
from ψ by the Durbin–Levinson recursion, the autocorrelations ρ_1..ρ_p from the Yule–Walker
equations, Σ_p the p×p correlation matrix and σ² = 1 − Σ φ_k ρ_k the innovation variance of
the unit-variance process. Then

    Q = κ (E Σ_p⁻¹ Eᵀ + Lᵀ L / σ²),   (L x)_t = x_t − Σ_k φ_k x_{t−k}, t = p+1..n,

the exact precision of n consecutive values of the stationary AR(p) with marginal precision κ
(E embeds the first p nodes). ½ log|Q| = ½ log|κ Σ_p⁻¹| + ½ (n−p) log(κ/σ²).

Example:
    >>> import numpy as np
    >>> m, idx, ids = AR1Model.from_term("t", np.arange(1.0, 5.0), {})
    >>> [h.internal_name for h in m.hyperparameters]
    ['Log precision for t', 'Rho_intern for t', 'Mean for t']
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import jax.ops
import numpy as np

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel
from .build import resolve_index
from .constraints import model_constraints, rinla_rankdef
from .generic import check_model_args
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_identity, to_rho
from .priors import LOG_NORMC_GAUSSIAN
from .registry import register_model

__all__ = ["AR1Model", "ARModel", "pacf_to_phi", "ar_correlations", "AR_MAX_ORDER"]

AR_MAX_ORDER = 10

AR1_SPECS = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "loggamma", (1.0, 0.00005), 4.0),
    HyperSpec("theta2", "rho", "logit lag one correlation", "Rho_intern for {label}", "Rho for {label}",
              "normal", (0.0, 0.15), 2.0, False, to_rho),
    HyperSpec("theta3", "mean", "mean", "Mean for {label}", "Mean for {label}",
              "normal", (0.0, 1.0), 0.0, True, to_identity),
)

_PACF_PARAM = [(0.5, 0.5), (0.5, 0.4), (0.5, 0.3), (0.5, 0.2)] + [(0.5, 0.1)] * 6
AR_SPECS = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "pc.prec", (3.0, 0.01), 4.0),
) + tuple(
    HyperSpec(f"theta{k + 2}", f"pacf{k + 1}", f"pacf{k + 1}", f"Intern PACF{k + 1} for {{label}}",
              f"PACF{k + 1} for {{label}}", "pc.cor0", _PACF_PARAM[k], 1.0 if k == 0 else 0.0, False, to_rho)
    for k in range(AR_MAX_ORDER)
)


def _index_and_common(cls, label, covariate, args, *, cyclic_ok):
    check_model_args(args, cls.model_name, label, cyclic=cyclic_ok)
    index, ids = resolve_index(label, covariate, args.get("values"), args.get("n"), model=cls.model_name)
    n = ids.size
    constr = bool(args.get("constr", False))
    cons = model_constraints(n, constr, args.get("extraconstr"), label)
    n_extra = 0 if args.get("extraconstr") is None or cons is None else cons.k - (1 if constr else 0)
    rd = rinla_rankdef(0, constr, n_extra, args.get("rankdef"))
    return index, ids, n, cons, rd


@register_model("ar1")
class AR1Model(LatentModel):
    """Stationary AR(1) with marginal precision κ and lag-one correlation ρ (see module doc)."""

    model_name = "ar1"
    default_constr: ClassVar[bool] = False

    def __init__(self, label, n, hyperparameters, *, cyclic=False, constraints=None, rinla_rankdef_value=0.0, diagonal=0.0):
        if n < 2 or (cyclic and n < 3):
            raise ModelError(f'f({label}, model="ar1"): needs at least {3 if cyclic else 2} nodes, got {n}')
        self.label, self.n, self.cyclic = label, int(n), bool(cyclic)
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self.diagonal = float(diagonal)
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)
        i = np.arange(n)
        rows = np.concatenate([i, i[1:]] + ([np.array([n - 1])] if cyclic else []))
        cols = np.concatenate([i, i[:-1]] + ([np.array([0])] if cyclic else []))
        self._pattern = SparsePattern.from_entries(n, rows, cols)
        p = self._pattern
        is_diag = p.rows == p.cols
        end = is_diag & ((p.rows == 0) | (p.rows == n - 1)) & (not cyclic)
        self._diag_inner = (is_diag & ~end).astype(float)  # 1 + ρ²
        self._diag_end = end.astype(float)  # 1
        self._off = (~is_diag).astype(float)  # −ρ
        self._diag_add = self.diagonal * is_diag.astype(float)

    @classmethod
    def from_term(cls, label, covariate, args):
        index, ids, n, cons, rd = _index_and_common(cls, label, covariate, args, cyclic_ok=True)
        hyper = build_hyperparameters(AR1_SPECS, label, args.get("hyper"), **obsolete_hyper_args(args))
        if not hyper[2].fixed or hyper[2].initial != 0.0:
            raise ModelError(f'f({label}, model="ar1"): the mean hyperparameter (theta3) must stay fixed at 0')
        model = cls(label, n, hyper, cyclic=bool(args.get("cyclic") or False), constraints=cons,
                    rinla_rankdef_value=rd, diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self):
        return self._pattern

    @staticmethod
    def _rho(theta):
        return jnp.tanh(0.5 * theta[1])

    def _log_prec_noise(self, theta):
        # κ/(1−ρ²) with 1−ρ² = sech²(θ₂/2): log = θ₁ + 2 log cosh(θ₂/2)
        half = 0.5 * theta[1]
        ah = jnp.abs(half)
        return theta[0] + 2.0 * (ah + jnp.log1p(jnp.exp(-2.0 * ah)) - np.log(2.0))

    def precision_values(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        rho = self._rho(theta)
        tau = jnp.exp(self._log_prec_noise(theta))
        vals = (1.0 + rho**2) * jnp.asarray(self._diag_inner) + jnp.asarray(self._diag_end) - rho * jnp.asarray(self._off)
        return tau * vals + jnp.asarray(self._diag_add)

    def _half_logdet_R(self, theta):
        rho = self._rho(theta)
        if self.cyclic:
            j = np.arange(self.n)
            return 0.5 * jnp.sum(jnp.log1p(rho**2 - 2.0 * rho * jnp.asarray(np.cos(2.0 * np.pi * j / self.n))))
        return 0.5 * jnp.log1p(-(rho**2))

    def log_normaliser(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return 0.5 * self.n * self._log_prec_noise(theta) + self._half_logdet_R(theta) + self.n * LOG_NORMC_GAUSSIAN

    def rinla_log_normaliser(self, theta):
        """R-INLA's ``extra()`` term for ar1 (one copy, prior excluded)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        m = self.n - self.rinla_rankdef
        return m * LOG_NORMC_GAUSSIAN + 0.5 * m * self._log_prec_noise(theta) + self._half_logdet_R(theta)

    def constraints(self):
        return self._constraints


# ---------------------------------------------------------------------------------------------
# AR(p)
# ---------------------------------------------------------------------------------------------
def pacf_to_phi(pacf):
    """AR coefficients φ_1..φ_p from the partial autocorrelations (Durbin–Levinson; R's
    ``arima.c`` ``partrans``, R-INLA's ``ar_pacf2phi``). jnp-traceable; p static."""
    pacf = jnp.asarray(pacf, dtype=jnp.float64)
    p = pacf.shape[0]
    phi = [pacf[k] for k in range(p)]
    for j in range(1, p):
        a = phi[j]
        work = [phi[k] - a * phi[j - k - 1] for k in range(j)]
        phi[:j] = work
    return jnp.stack(phi)


def ar_correlations(phi):
    """(ρ_1..ρ_p, σ²): autocorrelations of the unit-variance AR(p) from the Yule–Walker
    equations, and its innovation variance σ² = 1 − Σ φ_k ρ_k (R-INLA's
    ``ar_marginal_distribution``)."""
    phi = jnp.asarray(phi, dtype=jnp.float64)
    p = phi.shape[0]
    M = np.zeros((p, p, p))
    for i in range(p):
        for j in range(p):
            if i != j:
                M[i, j, abs(i - j) - 1] = 1.0
    A = -jnp.eye(p) + jnp.einsum("ijk,j->ik", jnp.asarray(M), phi)
    rho = jnp.linalg.solve(A, -phi)
    return rho, 1.0 - jnp.dot(phi, rho)


def _toeplitz_index(p: int) -> np.ndarray:
    return np.abs(np.arange(p)[:, None] - np.arange(p)[None, :])


@register_model("ar")
class ARModel(LatentModel):
    """Stationary AR(p), ``f(t, model="ar", order=p)``, PACF parametrisation (see module doc)."""

    model_name = "ar"
    default_constr: ClassVar[bool] = False

    def __init__(self, label, n, order, hyperparameters, *, constraints=None, rinla_rankdef_value=0.0, diagonal=0.0):
        p = int(order)
        if not (1 <= p <= AR_MAX_ORDER):
            raise ModelError(f'f({label}, model="ar"): order must be an integer in 1..{AR_MAX_ORDER}, got {order!r}')
        if n < 2 * p:
            raise ModelError(f'f({label}, model="ar", order={p}): needs at least {2 * p} nodes, got {n}')
        self.label, self.n, self.order = label, int(n), p
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self.diagonal = float(diagonal)
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)
        rows, cols = [], []
        for lag in range(p + 1):
            rows.append(np.arange(lag, n))
            cols.append(np.arange(0, n - lag))
        self._pattern = SparsePattern.from_entries(n, np.concatenate(rows), np.concatenate(cols))
        pat = self._pattern
        # (a) marginal part: entries (i, j), p > i >= j
        mi, mj = np.tril_indices(p)
        self._marg_pos = pat.index_of(mi, mj)
        self._marg_ij = (mi, mj)
        # (b) conditional part: Σ_t c_a c_b at (t−p+a, t−p+b), a >= b, c = (−φ_p, ..., −φ_1, 1)
        a_idx, b_idx = np.tril_indices(p + 1)
        t = np.arange(p, n)
        r = (t[:, None] - p + a_idx[None, :]).ravel()
        c = (t[:, None] - p + b_idx[None, :]).ravel()
        self._cond_pos = pat.index_of(r, c)
        self._cond_pair = np.tile(np.arange(a_idx.size), t.size)
        self._pairs = (a_idx, b_idx)
        self._diag_add = np.zeros(pat.nnz)
        self._diag_add[pat.diag_index] = self.diagonal

    @classmethod
    def from_term(cls, label, covariate, args):
        order = args.get("order")
        if order is None or int(order) != order or int(order) < 1:
            raise ModelError(f'f({label}, model="ar"): needs order= (an integer >= 1), got {order!r}')
        index, ids, n, cons, rd = _index_and_common(cls, label, covariate, args, cyclic_ok=False)
        hyper = build_hyperparameters(AR_SPECS, label, args.get("hyper"), **obsolete_hyper_args(args))
        p = int(order)
        if p > AR_MAX_ORDER:
            raise ModelError(f'f({label}, model="ar"): order={p} is too large; max order is {AR_MAX_ORDER}')
        model = cls(label, n, p, hyper[: p + 1], constraints=cons, rinla_rankdef_value=rd,
                    diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self):
        return self._pattern

    def _parts(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        pacf = jnp.tanh(0.5 * theta[1 : self.order + 1])
        phi = pacf_to_phi(pacf)
        rho, sigma2 = ar_correlations(phi)
        acf = jnp.concatenate([jnp.ones(1), rho])
        Sigma = acf[jnp.asarray(_toeplitz_index(self.order))]
        Qmarg = jnp.linalg.inv(Sigma)
        Qmarg = 0.5 * (Qmarg + Qmarg.T)
        return theta, phi, sigma2, Qmarg

    def precision_values(self, theta):
        theta, phi, sigma2, Qmarg = self._parts(theta)
        p = self.order
        coef = jnp.concatenate([-phi[::-1], jnp.ones(1)])
        a_idx, b_idx = self._pairs
        prods = coef[jnp.asarray(a_idx)] * coef[jnp.asarray(b_idx)] / sigma2
        vals = jax.ops.segment_sum(prods[jnp.asarray(self._cond_pair)], jnp.asarray(self._cond_pos),
                                   num_segments=self._pattern.nnz)
        mi, mj = self._marg_ij
        vals = vals.at[jnp.asarray(self._marg_pos)].add(Qmarg[jnp.asarray(mi), jnp.asarray(mj)])
        return jnp.exp(theta[0]) * vals + jnp.asarray(self._diag_add)

    def _half_logdet(self, theta, n_cond):
        theta, phi, sigma2, Qmarg = self._parts(theta)
        p = self.order
        _, logdet_marg = jnp.linalg.slogdet(Qmarg)
        return 0.5 * (p * theta[0] + logdet_marg) + 0.5 * n_cond * (theta[0] - jnp.log(sigma2))

    def log_normaliser(self, theta):
        return self._half_logdet(theta, self.n - self.order) + self.n * LOG_NORMC_GAUSSIAN

    def rinla_log_normaliser(self, theta):
        """R-INLA's ``extra()`` term for ar (one copy): the p-dimensional marginal normaliser
        plus (n − p − r')·(−½ log 2π + ½ log(κ/σ²))."""
        m = self.n - self.order - self.rinla_rankdef
        return self._half_logdet(theta, m) + (self.order + m) * LOG_NORMC_GAUSSIAN

    def constraints(self):
        return self._constraints
