"""Correlated iid effects with a Wishart prior: iid2d, iid3d, iid4d, iid5d.

``f(i, model="iid2d", n=2*m)`` is R-INLA's k-variate Normal-Wishart model (k = 2..5): the n = k·m
nodes are k blocks of m, (u_1..u_m, v_1..v_m, ...), and the k-vectors (u_i, v_i, ...) are iid
N(0, W⁻¹). The covariance W⁻¹ = S has marginal precisions τ_a and correlations ρ_ab:

    S_aa = 1/τ_a,   S_ab = ρ_ab / √(τ_a τ_b),   Q = W ⊗ I_m  (block (a, b) of Q is W_ab·I_m).

θ = (log τ_1..log τ_k, ρ̃_12, ρ̃_13, ..., ρ̃_(k-1)k) with ρ = 2e^ρ̃/(1+e^ρ̃) − 1 = tanh(ρ̃/2),
i.e. ρ̃ = log((1+ρ)/(1−ρ)) (R-INLA's ``map_rho``). Initial values: 4 for the log precisions;
4 for iid2d's correlation, 0 for the correlations of iid3d–iid5d (``models.R``).

Prior (R-INLA's ``wishart{k}d``, fixed for these models): W ~ Wishart_k(r, R⁻¹),

    π(W) = |W|^{(r−k−1)/2} exp(−½ tr(W R)) / (2^{rk/2} |R|^{−r/2} Γ_k(r/2)),

with ``param`` = (r, R_11..R_kk, R_12, R_13, ..., R_(k-1)k) (defaults: (4, 1, 1, 0),
(7, 1, 1, 1, 0, 0, 0), (11, 1×4, 0×6), (16, 1×5, 0×10)). The density of θ adds the Jacobian of
(τ, ρ) → the k(k+1)/2 distinct entries of W, which in closed form is

    log|∂W/∂(τ, ρ)| = (k+1) log|W| − (k+3)/2 Σ_a log τ_a

((τ, ρ) → S is block triangular with |det| = Π τ_a^{−2} Π_{a<b} (τ_a τ_b)^{−½}, and inversion
S → W has |det| = |S|^{−(k+1)}; R-INLA takes the same determinant by central differences), plus
Σ_a θ_a + Σ_ab log((1 − ρ_ab²)/2) for θ → (τ, ρ) (``inla.c``, ``priorfunc_wishart_generic``).
The prior sits on θ₁ with ``dimension`` k(k+1)/2; θ₂.. carry ``none``.

Correlations that do not make a positive definite matrix (k ≥ 3) are shrunk as R-INLA's
``inla_iid_wishart_adjust`` does: all ρ's are multiplied by 0.95 until the correlation matrix is
positive definite; the model, its normalising constant and the Wishart density use the shrunk
values, the Jacobian of θ → ρ the unshrunk ones.

Normalising constant (R-INLA's ``extra()``): (m − r')·(½ log|W| − (k/2) log 2π), r' = 1 with
``constr=TRUE`` (each block sums to zero: k constraints), plus any ``extraconstr`` rows.

Output names: "Precision for <label> (component a)", "Rho<a>:<b> for <label>"; internal
"Log precision for <label> (component a)", "Rho_internal<a>:<b> for <label>".

Example:
    >>> import numpy as np
    >>> m, idx, ids = IID2DModel.from_term("i", np.arange(1.0, 7.0), {"n": 6})
    >>> [h.name for h in m.hyperparameters]
    ['Precision for i (component 1)', 'Precision for i (component 2)', 'Rho1:2 for i']
"""

from __future__ import annotations

import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.pattern import SparsePattern
from ..errors import ModelError, PriorError
from .base import LatentModel, LinearConstraints
from .build import resolve_index
from .constraints import parse_extraconstr, rinla_rankdef
from .generic import check_model_args
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_precision, to_rho
from .priors import LOG_NORMC_GAUSSIAN, NonePrior, _Prior
from .registry import register_model, register_prior

__all__ = [
    "IIDKDModel", "IID2DModel", "IID3DModel", "IID4DModel", "IID5DModel",
    "WishartPrior", "wishart_log_density", "iidkd_covariance", "SHRINK_FACTOR",
]

#: R-INLA's factor in ``inla_iid_wishart_adjust``.
SHRINK_FACTOR = 0.95
#: How many shrink steps are tried (0.95^400 ≈ 1e-9: every correlation matrix is PD by then).
_MAX_SHRINK = 400


def _pairs(k: int) -> list[tuple[int, int]]:
    """(a, b), a < b, in R-INLA's order: (0,1), (0,2), ..., (1,2), ..."""
    return [(a, b) for a in range(k) for b in range(a + 1, k)]


def _correlation_matrix(rho, k: int):
    """The k×k correlation matrix with the pair correlations ``rho`` (R-INLA's order); works on
    a leading batch axis too."""
    rho = jnp.asarray(rho)
    R = jnp.broadcast_to(jnp.eye(k), rho.shape[:-1] + (k, k))
    for p, (a, b) in enumerate(_pairs(k)):
        R = R.at[..., a, b].set(rho[..., p]).at[..., b, a].set(rho[..., p])
    return R


def _shrink(rho, k: int):
    """R-INLA's ``inla_iid_wishart_adjust``: ρ·0.95^s with the smallest s ≥ 0 that makes the
    correlation matrix positive definite. s is piecewise constant in ρ (no gradient through it)."""
    if k < 3:
        # |ρ| < 1 is always PD for k = 2; only ρ rounded to ±1 needs a step
        ok = jnp.abs(rho[0]) < 1.0
        return jnp.where(ok, rho, rho * SHRINK_FACTOR)
    factors = SHRINK_FACTOR ** np.arange(_MAX_SHRINK + 1, dtype=float)
    trial = jax.lax.stop_gradient(rho)[None, :] * jnp.asarray(factors)[:, None]
    min_eig = jnp.linalg.eigvalsh(_correlation_matrix(trial, k))[:, 0]
    first = jnp.argmax(min_eig > 1e-12)
    return rho * jax.lax.stop_gradient(jnp.asarray(factors)[first])


def iidkd_covariance(theta, k: int):
    """(τ, ρ_raw, ρ, W, log|W|) from θ = (log τ_1..k, ρ̃_12, ...): ρ after R-INLA's shrinking,
    W = S⁻¹ the k×k precision, S_aa = 1/τ_a, S_ab = ρ_ab/√(τ_a τ_b). jnp-traceable."""
    theta = jnp.asarray(theta, dtype=jnp.float64)
    log_tau = theta[:k]
    rho_raw = jnp.tanh(0.5 * theta[k:])
    rho = _shrink(rho_raw, k)
    corr = _correlation_matrix(rho, k)
    corr_inv = jnp.linalg.inv(corr)
    corr_inv = 0.5 * (corr_inv + corr_inv.T)
    sq = jnp.exp(0.5 * log_tau)
    W = sq[:, None] * corr_inv * sq[None, :]
    _, logdet_corr = jnp.linalg.slogdet(corr)
    logdet_W = jnp.sum(log_tau) - logdet_corr
    return jnp.exp(log_tau), rho_raw, rho, W, logdet_W


def wishart_log_density(W, r: float, R) -> jax.Array:
    """log of the Wishart_k(r, R⁻¹) density at W (GMRFLib's ``GMRFLib_Wishart_logdens``):
    (r−k−1)/2 log|W| − ½ tr(W R) − [rk/2 log 2 − r/2 log|R| + log Γ_k(r/2)]."""
    R = np.asarray(R, dtype=float)
    k = R.shape[0]
    log_c = (r * k / 2.0) * math.log(2.0) - (r / 2.0) * float(np.linalg.slogdet(R)[1]) \
        + k * (k - 1) / 4.0 * math.log(math.pi) + sum(math.lgamma((r + 1.0 - i) / 2.0) for i in range(1, k + 1))
    _, logdet = jnp.linalg.slogdet(W)
    return (r - k - 1.0) / 2.0 * logdet - 0.5 * jnp.trace(W @ jnp.asarray(R)) - log_c


class WishartPrior(_Prior):
    """R-INLA's ``wishart{k}d`` prior on the block θ = (log τ_1..k, ρ̃_12, ...) of an iid{k}d model
    (see the module docstring): Wishart_k(r, R⁻¹) on W, the Jacobian of (τ, ρ) → W, and the
    Jacobian of θ → (τ, ρ). ``param`` = (r, R_11..R_kk, R_12, R_13, ..., R_(k-1)k).

    Example:
        >>> from adelia.models.registry import make_prior
        >>> p = make_prior("wishart2d", (4, 1, 1, 0))  # θ = (log τ₁, log τ₂, ρ̃) jointly
        >>> p.dimension, round(float(p.log_density([0.0, 0.0, 0.0])), 6)
        (3, -4.917319)
    """

    k: ClassVar[int] = 2
    param_doc = "r followed by R_11..R_kk and the off-diagonal R_ab (a < b)"

    def _check(self):
        k = self.k
        r = self.param[0]
        if r < k + 1:
            self._fail(f"the degrees of freedom r must be >= {k + 1} (k + 1)")
        R = self.scale_matrix
        if not np.all(np.isfinite(R)) or np.linalg.eigvalsh(R).min() <= 0:
            self._fail("the matrix R is not positive definite")

    @property
    def scale_matrix(self) -> np.ndarray:
        """R (k×k) from ``param``."""
        k = self.k
        R = np.diag(np.asarray(self.param[1 : k + 1], dtype=float))
        for p, (a, b) in enumerate(_pairs(k)):
            R[a, b] = R[b, a] = self.param[1 + k + p]
        return R

    def log_density(self, theta):
        k = self.k
        theta = jnp.asarray(theta, dtype=jnp.float64).reshape(self.dimension)
        _, rho_raw, _, W, logdet_W = iidkd_covariance(theta, k)
        # Jacobian of (τ, ρ) -> distinct entries of W: (k+1) log|W| − (k+3)/2 Σ log τ
        log_jac_w = (k + 1.0) * logdet_W - 0.5 * (k + 3.0) * jnp.sum(theta[:k])
        # Jacobian of θ -> (τ, ρ): dτ/dθ = τ, dρ/dρ̃ = (1 − ρ²)/2, at the unshrunk ρ (as R-INLA)
        log_jac_theta = jnp.sum(theta[:k]) + jnp.sum(jnp.log(0.5 * (1.0 - rho_raw**2)))
        return wishart_log_density(W, self.param[0], self.scale_matrix) + log_jac_w + log_jac_theta


def _wishart_prior_class(k: int):
    name = f"wishart{k}d"
    cls = type(f"Wishart{k}DPrior", (WishartPrior,), {
        "name": name, "k": k, "n_param": 1 + k * (k + 1) // 2, "dimension": k * (k + 1) // 2,
        "__doc__": f"R-INLA's ``{name}`` prior (see :class:`WishartPrior`).",
    })
    return register_prior(name)(cls)


WISHART_PRIORS = {k: _wishart_prior_class(k) for k in (2, 3, 4, 5)}

_DEFAULT_PARAM = {
    2: (4.0, 1.0, 1.0, 0.0),
    3: (7.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0),
    4: (11.0,) + (1.0,) * 4 + (0.0,) * 6,
    5: (16.0,) + (1.0,) * 5 + (0.0,) * 10,
}


def iidkd_specs(k: int) -> tuple[HyperSpec, ...]:
    """R-INLA's default hyperparameters of iid{k}d (``models.R``), with its output names."""
    specs = []
    for a in range(k):
        specs.append(HyperSpec(
            f"theta{a + 1}", f"prec{a + 1}", f"log precision{a + 1}",
            f"Log precision for {{label}} (component {a + 1})", f"Precision for {{label}} (component {a + 1})",
            f"wishart{k}d" if a == 0 else "none", _DEFAULT_PARAM[k] if a == 0 else (), 4.0, False, to_precision,
        ))
    for p, (a, b) in enumerate(_pairs(k)):
        suffix = "" if k == 2 else f"{a + 1}{b + 1}"
        specs.append(HyperSpec(
            f"theta{k + p + 1}", f"cor{suffix}", f"logit correlation{suffix}",
            f"Rho_internal{a + 1}:{b + 1} for {{label}}", f"Rho{a + 1}:{b + 1} for {{label}}",
            "none", (), 4.0 if k == 2 else 0.0, False, to_rho,
        ))
    return tuple(specs)


class IIDKDModel(LatentModel):
    """k correlated iid blocks with a Wishart prior (see the module docstring); subclasses fix k."""

    k: ClassVar[int]
    default_constr: ClassVar[bool] = False

    def __init__(self, label, m, hyperparameters, *, constraints=None, rinla_rankdef_value=0.0, diagonal=0.0):
        k = self.k
        self.label, self.m, self.n = label, int(m), int(m) * k
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self.diagonal = float(diagonal)
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)
        j = np.arange(self.m)
        rows, cols = [], []
        for a in range(k):
            for b in range(a + 1):
                rows.append(a * self.m + j)
                cols.append(b * self.m + j)
        self._pattern = SparsePattern.from_entries(self.n, np.concatenate(rows), np.concatenate(cols))
        p = self._pattern
        self._block_row = p.rows // self.m
        self._block_col = p.cols // self.m
        self._diag_add = np.where(p.rows == p.cols, self.diagonal, 0.0)

    @classmethod
    def from_term(cls, label, covariate, args):
        k = cls.k
        name = cls.model_name
        where = f'f({label}, model="{name}")'
        check_model_args(args, name, label)
        values = args.get("values")
        n = args.get("n")
        if n is None and values is None:
            raise ModelError(f"{where}: n= is required (the total length, {k} blocks of n/{k} nodes)")
        if n is None:
            n = len(np.asarray(values).ravel())
        if int(n) != n or int(n) < k or int(n) % k != 0:
            raise ModelError(f"{where}: n={n} must be a positive multiple of {k} (the model stacks {k} blocks of n/{k} nodes)")
        n = int(n)
        index, ids = resolve_index(
            label, covariate, values, n if values is not None else None,
            default_values=None if values is not None else np.arange(1.0, n + 1.0), model=name,
        )
        if ids.size != n:
            raise ModelError(f"{where}: values= has {ids.size} entries but n={n}")
        m = n // k
        constr = bool(args.get("constr", False))
        parts = []
        if constr:  # R-INLA's aug.constr: each block sums to zero
            C = np.kron(np.eye(k), np.ones((1, m)))
            parts.append(LinearConstraints(C, np.zeros(k)))
        extra = parse_extraconstr(args.get("extraconstr"), n, label)
        parts.append(extra)
        cons = LinearConstraints.stack(parts)
        rd = rinla_rankdef(0, constr, 0 if extra is None else extra.k, args.get("rankdef"))
        hyper = build_hyperparameters(iidkd_specs(k), label, args.get("hyper"), **obsolete_hyper_args(args))
        if not isinstance(hyper[0].prior, WISHART_PRIORS[k]) or not all(isinstance(h.prior, NonePrior) for h in hyper[1:]):
            raise PriorError(f"{where}: the prior is fixed to wishart{k}d on theta1 (and none on the others); "
                             "change its parameters with hyper=list(prec1=list(param=...))")
        model = cls(label, m, hyper, constraints=cons, rinla_rankdef_value=rd,
                    diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self):
        return self._pattern

    def precision_matrix_small(self, theta):
        """W (k×k), the precision of one k-vector (u_i, v_i, ...)."""
        return iidkd_covariance(theta, self.k)[3]

    def precision_values(self, theta):
        W = self.precision_matrix_small(theta)
        return W[jnp.asarray(self._block_row), jnp.asarray(self._block_col)] + jnp.asarray(self._diag_add)

    def log_normaliser(self, theta):
        logdet_W = iidkd_covariance(theta, self.k)[4]
        return self.m * (0.5 * logdet_W + self.k * LOG_NORMC_GAUSSIAN)

    def rinla_log_normaliser(self, theta):
        """R-INLA's ``extra()`` term: (m − r')·(½ log|W| − (k/2) log 2π)."""
        logdet_W = iidkd_covariance(theta, self.k)[4]
        return (self.m - self.rinla_rankdef) * (0.5 * logdet_W + self.k * LOG_NORMC_GAUSSIAN)

    def constraints(self):
        return self._constraints


@register_model("iid2d")
class IID2DModel(IIDKDModel):
    """Bivariate iid effects, ``f(i, model="iid2d", n=2*m)`` (Wishart prior)."""

    model_name = "iid2d"
    k = 2


@register_model("iid3d")
class IID3DModel(IIDKDModel):
    """Trivariate iid effects, ``f(i, model="iid3d", n=3*m)`` (Wishart prior)."""

    model_name = "iid3d"
    k = 3


@register_model("iid4d")
class IID4DModel(IIDKDModel):
    """Four-variate iid effects, ``f(i, model="iid4d", n=4*m)`` (Wishart prior)."""

    model_name = "iid4d"
    k = 4


@register_model("iid5d")
class IID5DModel(IIDKDModel):
    """Five-variate iid effects, ``f(i, model="iid5d", n=5*m)`` (Wishart prior)."""

    model_name = "iid5d"
    k = 5
