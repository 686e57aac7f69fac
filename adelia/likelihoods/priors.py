"""Family-specific penalised-complexity (PC) priors, on the internal scale of the
hyperparameter they belong to, as R-INLA evaluates them (``inlaprog/src/inla-priors.c``).

Each prior is a density for the internal θ, Jacobian included, registered under R-INLA's
name (and its dot-less spelling) so that ``control_family={"hyper": {...: {"prior": name}}}``
finds it through :func:`adelia.models.registry.make_prior`.

* ``pc.gamma(λ)``: PC prior for a in Gamma(1/a, 1/a), base a = 0, θ = log a
  (Simpson et al. 2017, §A; R's ``inla.pc.dgamma``). With d(a) = √(2(log(1/a) − ψ(1/a))),
  π(a) = λ exp(−λ d) |d′(a)| and |d′(a)| = (ψ′(1/a) − a) / (a² d).
* ``pc.mgamma(λ)``: the same prior for a = 1/size, on θ = log size = −log a
  (default prior of the nbinomial size).
* ``pc.dof(u, α)``: PC prior for the Student-t degrees of freedom ν, base ν = ∞,
  θ = log(ν − 2), P(ν < u) = α. d(ν) = √(2 KLD(ν)) where KLD is the Kullback-Leibler
  divergence of the unit-variance Student-t from N(0, 1), in closed form
  KLD = ½(1 + log 2π) − H(ν), H the entropy of the unit-variance t (R-INLA tabulates it
  with a spline for ν < 9 and a series beyond); λ = −log α / d(u) and
  π(θ) = λ exp(−λ d(ν)) |d′(ν)| (ν − 2).
* ``pc.alphaw(λ)``: PC prior for the Weibull shape α, base α = 1, θ = log(α) / 0.1
  (R-INLA's ``INLA_WEIBULL_ALPHA_SCALE``). KLD(α) = Γ(1 + 1/α) + log α − γ + γ/α − 1,
  D = √(2 KLD), half the mass on each side of α = 1. Below α = e⁻⁵ (θ < −50, density
  ≈ exp(−10¹²⁸)) the value is held constant so that it and its gradient stay finite.

R-INLA quirk kept on purpose: ``priorfunc_pc_alphaw`` adds ``+ λ`` where the PC prior has
``+ log λ``, so R-INLA's pc.alphaw log-density (and hence its marginal likelihood) is the
normalised one plus the constant λ − log λ. adelia reproduces R-INLA's value
(:attr:`PCAlphaWPrior.r_inla_offset`).
"""

from __future__ import annotations

import functools
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import numpy.polynomial.polynomial as P
import scipy.special as sps
from jax.scipy import special as jsp
from jax.scipy.special import gammaln

from ..errors import PriorError
from ..models.base import Prior
from ..models.registry import register_prior

_EULER_GAMMA = 0.57721566490153286061
#: R-INLA's ``INLA_WEIBULL_ALPHA_SCALE``: α = exp(0.1 θ) for the Weibull families.
WEIBULL_ALPHA_SCALE = 0.1


class _FamilyPrior(Prior):
    """Parameter handling shared by the family priors: R-INLA's ``param`` vector, either
    absent (the prior's defaults) or exactly ``len(param_names)`` values, else PriorError
    (a partial vector is never completed from defaults silently)."""

    param_names: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_param(cls, param, **context) -> Prior:
        vals = [] if param is None else [float(v) for v in np.atleast_1d(np.asarray(param, dtype=float))]
        if param is not None and len(vals) != len(cls.param_names):
            k = len(cls.param_names)
            raise PriorError(
                f'prior "{cls.name}" needs {k} parameter{"s" if k != 1 else ""} '
                f"({', '.join(cls.param_names)}), got {len(vals)}: {vals}"
            )
        return cls(*vals)

    def _fail(self, what: str):
        raise PriorError(f'prior "{self.name}": {what}')


def _trigamma(x):
    return jsp.polygamma(1, x)


# --------------------------------------------------------------------------------------------
# pc.gamma / pc.mgamma
# --------------------------------------------------------------------------------------------
def _log_minus_digamma(y):
    """log y − ψ(y) for y > 0; asymptotic series for large y (no cancellation)."""
    ys = jnp.where(y > 1e4, 1.0, y)
    direct = jnp.log(ys) - jsp.digamma(ys)
    yl = jnp.where(y > 1e4, y, 1e4)
    r = 1.0 / yl
    series = r / 2 + r**2 / 12 - r**4 / 120 + r**6 / 252
    return jnp.where(y > 1e4, series, direct)


def _log_trigamma_minus_inverse(y):
    """log(ψ′(y) − 1/y) for y > 0; ψ′(y) ~ 1/y + 1/(2y²) + 1/(6y³) − 1/(30y⁵) + 1/(42y⁷)."""
    ys = jnp.where(y > 1e4, 1.0, y)
    direct = jnp.log(_trigamma(ys) - 1.0 / ys)
    yl = jnp.where(y > 1e4, y, 1e4)
    r = 1.0 / yl
    series = -jnp.log(2.0) + 2 * jnp.log(r) + jnp.log1p(r / 3 - r**3 / 15 + r**5 / 21)
    return jnp.where(y > 1e4, series, direct)


def pc_gamma_log_density(log_a, lam):
    """log π(log a) of the PC prior for a in Gamma(1/a, 1/a) (base a = 0)."""
    log_a = jnp.asarray(log_a, dtype=jnp.float64)
    y = jnp.exp(-log_a)  # 1/a
    d = jnp.sqrt(2.0 * _log_minus_digamma(y))
    return jnp.log(lam) - lam * d - 2.0 * log_a - jnp.log(d) + _log_trigamma_minus_inverse(y) + log_a


@register_prior("pc.gamma", "pcgamma")
class PCGammaPrior(_FamilyPrior):
    """PC prior for a in Gamma(1/a, 1/a), θ = log a; ``param = (λ,)``.

    Example:
        >>> from adelia.models.registry import make_prior
        >>> p = make_prior("pc.gamma", 1.0)
        >>> bool(jnp.isfinite(p.log_density(0.0)))
        True
    """

    name: ClassVar[str] = "pc.gamma"
    param_names = ("lambda",)

    def __init__(self, lam: float = 1.0):
        if not lam > 0:
            self._fail(f"needs lambda > 0, got {lam}")
        self.param = (float(lam),)

    def log_density(self, theta):
        return pc_gamma_log_density(theta, self.param[0])


@register_prior("pc.mgamma", "pcmgamma")
class PCMGammaPrior(_FamilyPrior):
    """pc.gamma for a = 1/size on θ = log size (R-INLA's ``priorfunc_pc_mgamma``);
    ``param = (λ,)``, default of the nbinomial size is λ = 7.

    Example:
        >>> from adelia.models.registry import make_prior
        >>> p = make_prior("pc.mgamma", 7)
        >>> bool(jnp.isfinite(p.log_density(2.0)))
        True
    """

    name: ClassVar[str] = "pc.mgamma"
    param_names = ("lambda",)

    def __init__(self, lam: float = 7.0):
        if not lam > 0:
            self._fail(f"needs lambda > 0, got {lam}")
        self.param = (float(lam),)

    def log_density(self, theta):
        return pc_gamma_log_density(-jnp.asarray(theta, dtype=jnp.float64), self.param[0])


# --------------------------------------------------------------------------------------------
# pc.dof
# --------------------------------------------------------------------------------------------
_BERNOULLI_2K = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730)


def _student_t_kld_large(nu):
    """KLD for large ν from the Stirling/digamma asymptotic series in t = 1/ν, written so that
    nothing cancels (derived from the closed form below with m = ν/2, 1 + 1/(2m) = 1 + t):

    KLD = −½ log(1+t) − t/2 − ½ log(1−2t) + (1+t)/(2t) S_ψ − S_Γ,
    S_ψ = Σ_k B_2k/(2k) (2t)^2k [(1+t)^−2k − 1],  S_Γ = Σ_k B_2k/(2k(2k−1)) (2t)^(2k−1) [1 − (1+t)^(1−2k)].
    """
    t = 1.0 / nu
    l1t = jnp.log1p(t)
    s_psi = 0.0
    s_gam = 0.0
    for k, b in enumerate(_BERNOULLI_2K, start=1):
        s_psi = s_psi + b / (2 * k) * (2 * t) ** (2 * k) * jnp.expm1(-2 * k * l1t)
        s_gam = s_gam - b / (2 * k * (2 * k - 1)) * (2 * t) ** (2 * k - 1) * jnp.expm1((1 - 2 * k) * l1t)
    return -0.5 * l1t - 0.5 * t - 0.5 * jnp.log1p(-2 * t) + (1 + t) / (2 * t) * s_psi - s_gam


def student_t_kld(dof):
    """KLD of the unit-variance Student-t with ν = ``dof`` > 2 from N(0, 1).

    KLD = ½(1 + log 2π) − H, H = (ν+1)/2 [ψ((ν+1)/2) − ψ(ν/2)] + log(√ν B(ν/2, ½)) + log s,
    s = √((ν−2)/ν) the scale that gives unit variance. For ν > 20 the cancellation-free
    asymptotic form :func:`_student_t_kld_large` is used (the two agree to ~1e-14 there), and
    for ν > 1000 its power series in t = 1/ν, Σ c_n t^n with c = 3/4, 3/2, 17/8, 29/10,
    61/12, 145/14, 273/16 (n = 2..8; expanded with exact rational arithmetic; R-INLA's
    ``inla_pcp_dof_kld_approx`` has the same coefficients).
    """
    dof = jnp.asarray(dof, dtype=jnp.float64)
    big = dof > 20.0
    huge = dof > 1000.0
    nu = jnp.where(big, 10.0, dof)
    log_beta = gammaln(0.5 * nu) + 0.5 * jnp.log(jnp.pi) - gammaln(0.5 * (nu + 1.0))
    entropy = (
        0.5 * (nu + 1.0) * (jsp.digamma(0.5 * (nu + 1.0)) - jsp.digamma(0.5 * nu))
        + 0.5 * jnp.log(nu)
        + log_beta
        + 0.5 * jnp.log((nu - 2.0) / nu)
    )
    direct = 0.5 * (1.0 + jnp.log(2.0 * jnp.pi)) - entropy
    large = _student_t_kld_large(jnp.where(big & ~huge, dof, 100.0))
    t = 1.0 / jnp.where(huge, dof, 1e4)
    series = t**2 * (3 / 4 + t * (3 / 2 + t * (17 / 8 + t * (29 / 10 + t * (61 / 12 + t * (145 / 14 + t * 273 / 16))))))
    return jnp.where(huge, series, jnp.where(big, large, direct))


def student_t_distance(dof):
    """d(ν) = √(2 KLD(ν)), the PC distance of Student-t(ν) from the Gaussian."""
    return jnp.sqrt(2.0 * student_t_kld(dof))


@register_prior("pc.dof", "pcdof")
class PCDofPrior(_FamilyPrior):
    """PC prior for Student-t degrees of freedom on θ = log(ν − 2); ``param = (u, α)`` with
    P(ν < u) = α (R-INLA default ``(15, 0.5)``).

    Example:
        >>> from adelia.models.registry import make_prior
        >>> p = make_prior("pc.dof", (15, 0.5))
        >>> bool(jnp.isfinite(p.log_density(1.0)))
        True
    """

    name: ClassVar[str] = "pc.dof"
    param_names = ("u", "alpha")

    def __init__(self, u: float = 15.0, alpha: float = 0.5):
        if not (u > 2 and 0 < alpha < 1):
            self._fail(f"needs u > 2 and 0 < alpha < 1 (P(dof < u) = alpha), got u={u}, alpha={alpha}")
        self.param = (float(u), float(alpha))
        self.lam = -np.log(alpha) / float(student_t_distance(u))

    def log_density(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        dof = 2.0 + jnp.exp(theta)
        d, dd = jax.jvp(student_t_distance, (dof,), (jnp.ones_like(dof),))
        return jnp.log(self.lam) - self.lam * d + jnp.log(jnp.abs(dd)) + theta


# --------------------------------------------------------------------------------------------
# pc.alphaw
# --------------------------------------------------------------------------------------------
def weibull_kld(alpha):
    """KLD of Weibull(shape α) from the exponential (α = 1): Γ(1+1/α) + log α − γ + γ/α − 1."""
    alpha = jnp.asarray(alpha, dtype=jnp.float64)
    return jnp.exp(gammaln(1.0 + 1.0 / alpha)) + jnp.log(alpha) - _EULER_GAMMA + _EULER_GAMMA / alpha - 1.0


def _weibull_kld_deriv(alpha):
    g = jnp.exp(gammaln(1.0 + 1.0 / alpha))
    return -g * jsp.digamma(1.0 + 1.0 / alpha) / alpha**2 + 1.0 / alpha - _EULER_GAMMA / alpha**2


@functools.lru_cache(maxsize=1)
def _weibull_kld_taylor() -> tuple[float, float, float]:
    """(k2, k3, k4): KLD(1 + ε) = k2 ε² + k3 ε³ + k4 ε⁴ + O(ε⁵), on the host.

    With δ = 1/(1+ε) − 1: Γ(1 + 1/α) = Γ(2 + δ) = exp(Σₙ ψ⁽ⁿ⁻¹⁾(2) δⁿ/n!), log α = log(1+ε),
    γ/α = γ(1 + δ); the truncated power series are composed with numpy.
    """
    order = 5

    def mul(a, b):
        return P.polymul(a, b)[:order]

    delta = np.array([0.0, -1.0, 1.0, -1.0, 1.0])
    log_gamma = np.zeros(order)
    power = np.array([1.0, 0, 0, 0, 0])
    for n in range(1, order):
        power = mul(power, delta)
        log_gamma = log_gamma + sps.polygamma(n - 1, 2.0) / math.factorial(n) * power
    gamma_ = np.zeros(order)
    power = np.array([1.0, 0, 0, 0, 0])
    for n in range(order):
        gamma_ = gamma_ + power / math.factorial(n)
        power = mul(power, log_gamma)
    log_alpha = np.array([0.0, 1.0, -1 / 2, 1 / 3, -1 / 4])
    kld = gamma_ + log_alpha + _EULER_GAMMA * delta
    kld[0] -= 1.0  # −γ + γ·1 − 1 (the constant parts of γ/α and −γ cancel)
    return float(kld[2]), float(kld[3]), float(kld[4])


#: Below α = e⁻⁵ (θ < −50) the pc.alphaw density (≈ exp(−5·10¹²⁸)) is held at its value
#: there, so that it stays finite with a finite gradient.
_LOG_ALPHA_MIN = -5.0


def weibull_distance(alpha):
    """(D(α), log|D′(α)|) with D = √(2 KLD), in three regimes: a Taylor expansion near α = 1
    (where D has a kink), log-gamma space for α < ½ (where Γ(1 + 1/α) is huge), direct."""
    alpha = jnp.maximum(jnp.asarray(alpha, dtype=jnp.float64), np.exp(_LOG_ALPHA_MIN))
    k2, k3, k4 = _weibull_kld_taylor()
    eps = alpha - 1.0
    near = jnp.abs(eps) < 1e-3
    small = alpha < 0.5
    # near α = 1: D = |ε| g(ε), g = √(2 q), q = KLD/ε²
    e = jnp.where(near, eps, 0.0)
    q = k2 + k3 * e + k4 * e**2
    g = jnp.sqrt(2.0 * q)
    dg = (k3 + 2.0 * k4 * e) / g
    d_near = jnp.abs(e) * g
    ldd_near = jnp.log(jnp.abs(g + e * dg))
    # α < ½: KLD = Γ (1 + r), KLD′ = −Γ (ψ + (γ − α) / Γ) / α², Γ = Γ(1 + 1/α), r small
    a = jnp.where(small, alpha, 0.25)
    lg = gammaln(1.0 + 1.0 / a)
    inv_g = jnp.exp(-lg)
    log_kld = lg + jnp.log1p((jnp.log(a) - _EULER_GAMMA + _EULER_GAMMA / a - 1.0) * inv_g)
    log_d_small = 0.5 * (jnp.log(2.0) + log_kld)
    ldd_small = lg + jnp.log(jsp.digamma(1.0 + 1.0 / a) + (_EULER_GAMMA - a) * inv_g) - 2.0 * jnp.log(a) - log_d_small
    # otherwise: D = √(2 KLD), D′ = KLD′ / D
    b = jnp.where(near | small, 2.0, alpha)
    d_far = jnp.sqrt(2.0 * weibull_kld(b))
    ldd_far = jnp.log(jnp.abs(_weibull_kld_deriv(b))) - jnp.log(d_far)
    d = jnp.where(near, d_near, jnp.where(small, jnp.exp(log_d_small), d_far))
    ldd = jnp.where(near, ldd_near, jnp.where(small, ldd_small, ldd_far))
    return d, ldd


@register_prior("pc.alphaw", "pcalphaw")
class PCAlphaWPrior(_FamilyPrior):
    """PC prior for the Weibull shape α on θ = log(α)/0.1; ``param = (λ,)`` (default 5).

    log π(θ) = log ½ + λ − λ D(α) + log|D′(α)| + log(0.1 α)  — R-INLA's value, which is
    the normalised PC density plus :attr:`r_inla_offset` = λ − log λ (see module docstring).

    Example:
        >>> from adelia.models.registry import make_prior
        >>> p = make_prior("pc.alphaw", 5)
        >>> bool(jnp.isfinite(p.log_density(0.0)))
        True
    """

    name: ClassVar[str] = "pc.alphaw"
    param_names = ("lambda",)

    def __init__(self, lam: float = 5.0):
        if not lam > 0:
            self._fail(f"needs lambda > 0, got {lam}")
        self.param = (float(lam),)
        #: R-INLA's log-density minus the normalised one (``+λ`` instead of ``+log λ``).
        self.r_inla_offset = float(lam) - float(np.log(lam))

    def log_density(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        lam = self.param[0]
        alpha = jnp.exp(WEIBULL_ALPHA_SCALE * theta)
        d, log_dd = weibull_distance(alpha)
        return jnp.log(0.5) + lam - lam * d + log_dd + jnp.log(WEIBULL_ALPHA_SCALE) + jnp.log(alpha)
