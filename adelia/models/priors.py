"""Hyperparameter priors on R-INLA's internal scale, as R-INLA's C code evaluates them.

Every prior is a log-density of the *internal* θ (the value the optimiser sees: log τ for a
precision, log((1+ρ)/(1-ρ)) for a lag-one correlation, ...), Jacobian included, transcribed
from ``inlaprog/src/inla-priors.c`` (``priorfunc_*``) and registered under R-INLA's name, its
alias and its dot-less spelling (R-INLA's C code compares the dot-less, upper-case name).

=====================  ===========================  ==========================================
name(s)                param                        log π(θ)
=====================  ===========================  ==========================================
loggamma               (a, b) shape, rate of τ      a log b − log Γ(a) + a θ − b e^θ
gamma                  (a, b)                       Gamma(a, b) density of θ itself (θ > 0)
normal, gaussian       (μ, precision κ)             −0.9189385332 + ½ log κ − ½ κ (θ−μ)²
                                                    (κ = 0: flat, log π = 0)
flat, uniform, none    ()                           0
logflat, logiflat      ()                           e^θ and e^−θ (R-INLA's code, see below)
logtnormal,            (μ, κ) of σ = e^−θ/2         truncated N(μ, 1/κ) on σ > 0, Jacobian ½σ
logtgaussian
pc.prec                (u, α): P(σ > u) = α         log(λ/2) − λ e^−θ/2 − θ/2, λ = −log α / u
pc.cor0 (pc.rho0)      (u, α): P(|ρ| > u) = α       ρ = tanh(θ/2), μ = √(−log(1−ρ²)):
                                                    log λ − λμ + log(|ρ|/μ) − log 2
pc.cor1 (pc.rho1)      (u, α): P(ρ > u) = α         μ = √(1−ρ): truncated Exp(λ) on μ ≤ √2
betacorrelation,       (a, b)                       p = logistic(θ) ~ Beta(a, b), Jacobian p(1−p)
logitbeta
mvnorm, mvgaussian     (mean_1..d, Q column-major)  N_d(mean, Q⁻¹) of a block of d θ's
pcmatern, pc.matern    (λ₁, λ₂, d)                  joint (log range, log σ) PC prior of SPDE
=====================  ===========================  ==========================================

R-INLA quirks kept on purpose (the marginal likelihood must match R-INLA's):

* ``normal`` uses the constant 0.9189385332 (R-INLA's truncated ½ log 2π, off by 4.7e-12).
* ``pc.cor0``: R-INLA's C density lacks the ½ of the two-sided mapping, so it integrates to 2
  over θ; :attr:`PCCor0Prior.r_inla_offset` = log 2 is that excess.
* ``logflat``/``logiflat``: R-INLA's code returns e^θ / e^−θ as the *log*-density (improper
  either way); reproduced literally.
* ``pc.cor0`` and ``pc.cor1`` always take θ = log((1+ρ)/(1−ρ)), whatever the model's own
  map from θ to ρ (R-INLA's ``map_rho``) — so no model context is needed.

Multivariate priors (``mvnorm``, ``pcmatern``) have ``dimension > 1``: a model that uses one
puts it on the *first* hyperparameter of a block of ``dimension`` consecutive θ's and gives the
other members of the block the prior ``none`` (exactly R-INLA's convention: theta2..thetaD carry
``prior = "none"``); the evaluator calls ``prior.log_density(theta[j:j + dimension])``.
Separable joint priors also offer :meth:`log_density_parts` (one term per member) so that fixed
members can be dropped, as R-INLA does for ``pcmatern`` (it passes NaN for fixed ones).

The name ``"pc"`` (bym2's adaptive φ prior) is left to :mod:`adelia.models.pc_bym_phi`, and
``"pc.range"``/``"pc.sigma"`` (the two factors of ``pcmatern``) to :mod:`adelia.spde.priors`;
the likelihood priors (``pc.gamma``, ``pc.mgamma``, ``pc.dof``, ``pc.alphaw``) live in
:mod:`adelia.likelihoods.priors`.

Reference: Simpson, Rue, Riebler, Martins & Sørbye (2017), Penalising model component
complexity, Statist. Sci. 32(1); Rue & Held (2005); R-INLA ``inla-priors.c``.

Example:
    >>> from adelia.models.registry import make_prior
    >>> p = make_prior("pc.prec", (1.0, 0.01))
    >>> round(float(p.log_density(0.0)), 6)
    -3.771138
"""

from __future__ import annotations

import math

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.special
import scipy.optimize
from jax.scipy import special as jsp

from ..errors import PriorError
from .base import Prior
from .registry import register_prior

__all__ = [
    "LOG_NORMC_GAUSSIAN",
    "R_NORMAL_CONSTANT",
    "LogGammaPrior",
    "GammaPrior",
    "NormalPrior",
    "FlatPrior",
    "NonePrior",
    "LogFlatPrior",
    "LogIFlatPrior",
    "LogTNormalPrior",
    "PCPrecPrior",
    "PCCor0Prior",
    "PCCor1Prior",
    "BetaCorrelationPrior",
    "LogitBetaPrior",
    "MVNormPrior",
    "PCMaternPrior",
    "rho_from_theta",
]

#: −½ log 2π exactly (R-INLA's ``LOG_NORMC_GAUSSIAN``).
LOG_NORMC_GAUSSIAN = -0.91893853320467274178032973640560
#: The truncated ½ log 2π that ``priorfunc_normal`` uses.
R_NORMAL_CONSTANT = 0.9189385332


def rho_from_theta(theta):
    """R-INLA's ``map_rho``: ρ = 2/(1 + e^−θ) − 1 = tanh(θ/2), θ = log((1+ρ)/(1−ρ))."""
    return jnp.tanh(0.5 * jnp.asarray(theta, dtype=jnp.float64))


def _as_params(cls, param, k: int) -> tuple[float, ...]:
    """``param`` as a tuple of exactly ``k`` finite floats, else PriorError naming the prior."""
    vals = () if param is None else tuple(float(v) for v in np.atleast_1d(np.asarray(param, dtype=float)))
    if len(vals) != k:
        raise PriorError(
            f'prior "{cls.name}" needs {k} parameter{"s" if k != 1 else ""} '
            f"({cls.param_doc}), got {len(vals)}: {list(vals)}"
        )
    if not all(np.isfinite(vals)):
        raise PriorError(f'prior "{cls.name}": parameters must be finite, got {list(vals)}')
    return vals


class _Prior(Prior):
    """Common machinery: fixed parameter count and its validation."""

    #: Number of parameters in R-INLA's ``param`` (None: variable, e.g. mvnorm).
    n_param: ClassVar[int | None] = 0
    #: What the parameters mean (for error messages).
    param_doc: ClassVar[str] = ""
    #: How many consecutive θ's the prior is a density of.
    dimension: ClassVar[int] = 1
    #: log ∫ exp(log_density) dθ − 0 for proper priors whose R-INLA density is not normalised.
    r_inla_offset: ClassVar[float] = 0.0

    def __init__(self, *param):
        self.param = _as_params(type(self), param, self.n_param)
        self._check()

    def _check(self) -> None:
        """Validate the parameter values (PriorError naming the prior)."""

    @classmethod
    def from_param(cls, param, **context) -> "Prior":
        return cls(*_as_params(cls, param, cls.n_param))

    def _fail(self, what: str):
        raise PriorError(f'prior "{self.name}" with param={list(self.param)}: {what}')


# -------------------------------------------------------------------------------------------
# precisions and unrestricted parameters
# -------------------------------------------------------------------------------------------
@register_prior("loggamma")
class LogGammaPrior(_Prior):
    """τ = e^θ ~ Gamma(shape a, rate b): log π(θ) = a log b − log Γ(a) + aθ − b e^θ."""

    name = "loggamma"
    n_param = 2
    param_doc = "shape a and rate b of the precision"

    def _check(self):
        a, b = self.param
        if a <= 0 or b <= 0:
            self._fail("shape and rate must be positive")

    def log_density(self, theta):
        a, b = self.param
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return a * np.log(b) - math.lgamma(a) + a * theta - b * jnp.exp(theta)


@register_prior("gamma")
class GammaPrior(_Prior):
    """θ itself ~ Gamma(shape a, rate b) (no transformation; R-INLA's ``priorfunc_gamma``)."""

    name = "gamma"
    n_param = 2
    param_doc = "shape a and rate b"

    def _check(self):
        a, b = self.param
        if a <= 0 or b <= 0:
            self._fail("shape and rate must be positive")

    def log_density(self, theta):
        a, b = self.param
        theta = jnp.asarray(theta, dtype=jnp.float64)
        safe = jnp.where(theta > 0, theta, 1.0)
        val = a * np.log(b) - math.lgamma(a) + (a - 1.0) * jnp.log(safe) - b * safe
        return jnp.where(theta > 0, val, -jnp.inf)


@register_prior("normal", "gaussian")
class NormalPrior(_Prior):
    """θ ~ N(mean, 1/precision); precision 0 is R-INLA's flat prior (log π = 0)."""

    name = "normal"
    n_param = 2
    param_doc = "mean and precision"

    def _check(self):
        if self.param[1] < 0:
            self._fail("the precision must be >= 0")

    def log_density(self, theta):
        mean, prec = self.param
        theta = jnp.asarray(theta, dtype=jnp.float64)
        if prec == 0.0:
            return jnp.zeros_like(theta)
        return -R_NORMAL_CONSTANT + 0.5 * np.log(prec) - 0.5 * prec * (theta - mean) ** 2


@register_prior("flat", "uniform")
class FlatPrior(_Prior):
    """Constant (improper) prior on the internal scale: log π(θ) = 0."""

    name = "flat"

    def log_density(self, theta):
        return jnp.zeros_like(jnp.asarray(theta, dtype=jnp.float64))


@register_prior("none")
class NonePrior(FlatPrior):
    """No prior contribution: the members 2..d of a multivariate prior's block, or a θ whose
    density another hyperparameter's joint prior carries."""

    name = "none"


@register_prior("logflat")
class LogFlatPrior(_Prior):
    """R-INLA's ``priorfunc_logflat``: returns e^θ as the log-density (improper; literal copy)."""

    name = "logflat"

    def log_density(self, theta):
        return jnp.exp(jnp.asarray(theta, dtype=jnp.float64))


@register_prior("logiflat")
class LogIFlatPrior(_Prior):
    """R-INLA's ``priorfunc_logiflat``: returns e^−θ as the log-density (improper)."""

    name = "logiflat"

    def log_density(self, theta):
        return jnp.exp(-jnp.asarray(theta, dtype=jnp.float64))


@register_prior("logtnormal", "logtgaussian", "minuslogsqrtruncnormal", "minuslogsqrtruncgaussian")
class LogTNormalPrior(_Prior):
    """σ = e^−θ/2 (θ = log τ) has a N(mean, 1/precision) density truncated to σ > 0.

    log π(θ) = log N(σ; μ, 1/κ) − log P(N(μ, 1/κ) > 0) + log(σ/2)."""

    name = "logtnormal"
    n_param = 2
    param_doc = "mean and precision of the standard deviation before truncation"

    def _check(self):
        if self.param[1] <= 0:
            self._fail("the precision must be positive")

    def log_density(self, theta):
        mean, prec = self.param
        sigma = jnp.exp(-0.5 * jnp.asarray(theta, dtype=jnp.float64))
        normal = -R_NORMAL_CONSTANT + 0.5 * np.log(prec) - 0.5 * prec * (sigma - mean) ** 2
        log_trunc = float(scipy.special.log_ndtr(mean * np.sqrt(prec)))
        return normal - log_trunc + jnp.log(0.5 * sigma)


# -------------------------------------------------------------------------------------------
# penalised-complexity priors
# -------------------------------------------------------------------------------------------
@register_prior("pc.prec", "pcprec")
class PCPrecPrior(_Prior):
    """PC prior for a precision τ = e^θ: σ = τ^−½ ~ Exp(λ), P(σ > u) = α, λ = −log α / u.

    log π(θ) = log(λ/2) − λ e^−θ/2 − θ/2 (Simpson et al. 2017, §3.3)."""

    name = "pc.prec"
    n_param = 2
    param_doc = "u and alpha with P(sigma > u) = alpha"

    def _check(self):
        u, alpha = self.param
        if u <= 0 or not (0 < alpha < 1):
            self._fail("need u > 0 and 0 < alpha < 1")

    @property
    def rate(self) -> float:
        u, alpha = self.param
        return -np.log(alpha) / u

    def log_density(self, theta):
        lam = self.rate
        half = 0.5 * jnp.asarray(theta, dtype=jnp.float64)
        return np.log(lam / 2.0) - lam * jnp.exp(-half) - half


def _mu_over_abs_rho_squared(theta):
    """h = μ²/ρ² = −log(1−ρ²)/ρ² for ρ = tanh(θ/2): smooth, h(0) = 1 (series for small ρ²;
    1−ρ² = sech²(θ/2) avoids cancellation for large |θ|)."""
    s = jnp.tanh(0.5 * theta) ** 2
    small = s < 1e-4
    series = 1.0 + s / 2 + s**2 / 3 + s**3 / 4
    direct = 2.0 * _log_cosh(0.5 * theta) / jnp.where(small, 1.0, s)
    return jnp.where(small, series, direct)


def _log_cosh(x):
    ax = jnp.abs(x)
    return ax + jnp.log1p(jnp.exp(-2.0 * ax)) - np.log(2.0)


@register_prior("pc.cor0", "pccor0", "pc.rho0", "pcrho0")
class PCCor0Prior(_Prior):
    """PC prior for a correlation with base model ρ = 0, P(|ρ| > u) = α, on θ = log((1+ρ)/(1−ρ)).

    μ(ρ) = √(−log(1−ρ²)) ~ Exp(λ), λ = −log α / μ(u). R-INLA's ``priorfunc_pc_cor0``:
    log π(θ) = log λ − λμ + log(|ρ| / ((1−ρ²) μ)) + log|dρ/dθ|, dρ/dθ = (1−ρ²)/2 — without the
    ½ that splits the mass between ±ρ, so it integrates to 2 (:attr:`r_inla_offset` = log 2).
    (R-INLA uses λ = u when α is outside (0, 1); kept.)"""

    name = "pc.cor0"
    n_param = 2
    param_doc = "u and alpha with P(|rho| > u) = alpha"
    r_inla_offset = float(np.log(2.0))

    def _check(self):
        u, alpha = self.param
        if not (0 < u < 1):
            self._fail("need 0 < u < 1")

    @property
    def rate(self) -> float:
        u, alpha = self.param
        if alpha <= 0 or alpha >= 1:
            return u
        return -np.log(alpha) / np.sqrt(-np.log1p(-(u**2)))

    def log_density(self, theta):
        lam = self.rate
        theta = jnp.asarray(theta, dtype=jnp.float64)
        h = _mu_over_abs_rho_squared(theta)
        # μ = |ρ|·√h (the kink of the PC prior at ρ = 0 gets the subgradient 0), |ρ|/μ = h^−½
        mu = jnp.abs(jnp.tanh(0.5 * theta)) * jnp.sqrt(h)
        return np.log(lam) - lam * mu - 0.5 * jnp.log(h) - np.log(2.0)


@register_prior("pc.cor1", "pccor1", "pc.rho1", "pcrho1")
class PCCor1Prior(_Prior):
    """PC prior for a correlation with base model ρ = 1, P(ρ > u) = α, on θ = log((1+ρ)/(1−ρ)).

    μ(ρ) = √(1−ρ) ∈ (0, √2) has an Exp(λ) density truncated to (0, √2), λ solving
    (1 − e^−λ√(1−u)) / (1 − e^−λ√2) = α (which needs α > √((1−u)/2)):
    log π(θ) = log λ − λμ − log(1 − e^−λ√2) − log(2μ) + log|dρ/dθ|."""

    name = "pc.cor1"
    n_param = 2
    param_doc = "u and alpha with P(rho > u) = alpha"

    def _check(self):
        u, alpha = self.param
        if not (-1 < u < 1 and np.sqrt((1 - u) / 2) < alpha < 1):
            self._fail("need -1 < u < 1 and sqrt((1-u)/2) < alpha < 1 (see inla.doc('pc.rho1'))")
        f = lambda lam: -np.expm1(-lam * np.sqrt(1 - u)) / -np.expm1(-lam * np.sqrt(2.0)) - alpha
        hi = 1.0
        while f(hi) < 0:
            hi *= 2.0
        lo = 1.0
        while f(lo) > 0:
            lo /= 2.0
        self._rate = float(scipy.optimize.brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps))

    @property
    def rate(self) -> float:
        return self._rate

    def log_density(self, theta):
        lam = self.rate
        theta = jnp.asarray(theta, dtype=jnp.float64)
        log_1m_rho = np.log(2.0) + jax.nn.log_sigmoid(-theta)  # 1 − ρ = 2/(1 + e^θ)
        log_1p_rho = np.log(2.0) + jax.nn.log_sigmoid(theta)
        mu = jnp.exp(0.5 * log_1m_rho)
        ldens = np.log(lam) - lam * mu - np.log(-np.expm1(-lam * np.sqrt(2.0))) - np.log(2.0) - 0.5 * log_1m_rho
        return ldens + log_1m_rho + log_1p_rho - np.log(2.0)


# -------------------------------------------------------------------------------------------
# correlations / probabilities
# -------------------------------------------------------------------------------------------
@register_prior("betacorrelation")
class BetaCorrelationPrior(_Prior):
    """(ρ + 1)/2 = logistic(θ) ~ Beta(a, b), θ = log((1+ρ)/(1−ρ)):
    log π(θ) = a log σ(θ) + b log σ(−θ) − log B(a, b)."""

    name = "betacorrelation"
    n_param = 2
    param_doc = "Beta shape parameters a and b"

    def _check(self):
        if min(self.param) <= 0:
            self._fail("a and b must be positive")

    def log_density(self, theta):
        a, b = self.param
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return a * jax.nn.log_sigmoid(theta) + b * jax.nn.log_sigmoid(-theta) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))


@register_prior("logitbeta")
class LogitBetaPrior(BetaCorrelationPrior):
    """p = logistic(θ) ~ Beta(a, b) (θ = logit p); the same formula as betacorrelation."""

    name = "logitbeta"


# -------------------------------------------------------------------------------------------
# joint priors on several θ's
# -------------------------------------------------------------------------------------------
@register_prior("mvnorm", "mvgaussian")
class MVNormPrior(_Prior):
    """A block of d θ's ~ N_d(mean, Q⁻¹); ``param`` = (mean_1..d, Q in column-major order),
    d + d² numbers as in R-INLA (which infers d from the length)."""

    name = "mvnorm"
    n_param = None
    param_doc = "the mean vector (d) followed by the d x d precision matrix, column-major"

    def __init__(self, *param):
        vals = tuple(float(v) for v in param)
        d = 0
        while d + d * d < len(vals):
            d += 1
        if d == 0 or d + d * d != len(vals):
            raise PriorError(
                f'prior "mvnorm": {len(vals)} parameters do not match any dimension d '
                "(need d + d^2: the mean followed by the precision matrix)"
            )
        self.param = vals
        self.dim = d
        self.mean = np.asarray(vals[:d])
        self.Q = np.asarray(vals[d:]).reshape(d, d, order="F")
        if not np.allclose(self.Q, self.Q.T):
            self._fail("the precision matrix is not symmetric")
        evals = np.linalg.eigvalsh(0.5 * (self.Q + self.Q.T))
        if evals.min() <= 0:
            self._fail("the precision matrix is not positive definite")
        self._half_logdet = 0.5 * float(np.sum(np.log(evals)))

    @property
    def dimension(self) -> int:  # type: ignore[override]
        return self.dim

    @classmethod
    def from_param(cls, param, **context):
        return cls(*np.atleast_1d(np.asarray(param, dtype=float)).tolist())

    def log_density(self, theta):
        x = jnp.asarray(theta, dtype=jnp.float64).reshape(self.dim) - self.mean
        return self.dim * LOG_NORMC_GAUSSIAN + self._half_logdet - 0.5 * x @ (jnp.asarray(self.Q) @ x)


@register_prior("pcmatern", "pc.matern")
class PCMaternPrior(_Prior):
    """Joint PC prior of a Matérn field's (θ₁ = log range, θ₂ = log σ) in dimension d
    (Fuglstad, Simpson, Lindgren & Rue 2019), R-INLA's ``priorfunc_pc_matern``:

        log π = log(λ₁ d/2) − (d/2)θ₁ − λ₁ e^{−(d/2)θ₁}  +  log λ₂ + θ₂ − λ₂ e^{θ₂}

    with ``param`` = (λ₁, λ₂, d) as R-INLA stores it; build from the user's statements
    P(range < r₀) = p_r, P(σ > σ₀) = p_σ with :meth:`from_quantiles`
    (λ₁ = −log(p_r) r₀^{d/2}, λ₂ = −log(p_σ)/σ₀)."""

    name = "pcmatern"
    n_param = 3
    param_doc = "lambda1 (range), lambda2 (sigma) and the dimension d"
    dimension = 2

    def _check(self):
        lam1, lam2, d = self.param
        if lam1 <= 0 or lam2 <= 0 or d <= 0:
            self._fail("lambda1, lambda2 and d must be positive")

    @classmethod
    def from_quantiles(cls, range0: float, p_range: float, sigma0: float, p_sigma: float, d: float = 2.0):
        """P(range < range0) = p_range, P(sigma > sigma0) = p_sigma, in dimension d."""
        return cls(-np.log(p_range) * range0 ** (d / 2.0), -np.log(p_sigma) / sigma0, d)

    def log_density_parts(self, theta):
        lam1, lam2, d = self.param
        theta = jnp.asarray(theta, dtype=jnp.float64).reshape(2)
        dh = d / 2.0
        range_part = np.log(lam1 * dh) - dh * theta[0] - lam1 * jnp.exp(-dh * theta[0])
        sigma_part = np.log(lam2) + theta[1] - lam2 * jnp.exp(theta[1])
        return jnp.stack([range_part, sigma_part])

    def log_density(self, theta):
        return jnp.sum(self.log_density_parts(theta))
