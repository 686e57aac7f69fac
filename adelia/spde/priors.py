"""PC priors of Matérn fields (Fuglstad, Simpson, Lindgren & Rue 2019), as R-INLA evaluates them.

R-INLA's ``pcmatern`` prior on θ = (log ρ, log σ) (``priorfunc_pc_matern`` in inla.c) is

    log π(θ) = log(λ₁ d/2) − (d/2) θ₁ − λ₁ exp(−(d/2) θ₁)      (range ρ = exp θ₁)
             + log λ₂ + θ₂ − λ₂ exp(θ₂)                          (std. dev. σ = exp θ₂)

with λ₁ = −log(p_ρ) ρ₀^{d/2}, so that P(ρ < ρ₀) = p_ρ, and λ₂ = −log(p_σ)/σ₀, so that
P(σ > σ₀) = p_σ. It factorises, so it is represented here as two one-dimensional priors:

* ``pc.range`` (param (ρ₀, p_ρ), model context ``d``): R-INLA's ``pc.range`` prior;
* ``pc.sigma`` (param (σ₀, p_σ)): the σ factor (an exponential prior on σ, i.e. R-INLA's
  ``pc.prec`` expressed on log σ = −½ log τ).

INLAspacetime's space-time models use the same forms with d = 1 for the temporal range.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from ..errors import PriorError
from ..models.base import Prior
from ..models.registry import register_prior


def _check_tail(name: str, q: float, p: float, what: str) -> None:
    if not (math.isfinite(q) and q > 0):
        raise PriorError(f"{name}: {what}0 must be a positive number, got {q}")
    if not (0.0 < p < 1.0):
        raise PriorError(f"{name}: the tail probability must be strictly between 0 and 1, got {p}")


@register_prior("pc.range")
class PCRange(Prior):
    """PC prior for a Matérn range ρ on θ = log ρ: P(ρ < ρ₀) = p.

    log π(θ) = log(λ d/2) − (d/2) θ − λ e^{−(d/2) θ}, λ = −log(p) ρ₀^{d/2}.

    Example:
        >>> float(PCRange(0.3, 0.5).lam)  # doctest: +ELLIPSIS
        0.2079...
    """

    name = "pc.range"

    def __init__(self, range0: float, prob: float, d: float = 2.0):
        range0, prob, d = float(range0), float(prob), float(d)
        _check_tail("pc.range", range0, prob, "range")
        if not d > 0:
            raise PriorError(f"pc.range: the dimension d must be positive, got {d}")
        self.param = (range0, prob)
        self.d = d
        self.lam = -math.log(prob) * range0 ** (d / 2.0)

    @classmethod
    def from_lambda(cls, lam: float, d: float) -> "PCRange":
        """From R-INLA's internal (λ, d) parametrisation (``pcmatern`` param[0], param[2])."""
        obj = cls.__new__(cls)
        obj.lam, obj.d = float(lam), float(d)
        obj.param = ((obj.lam / math.log(2.0)) ** (2.0 / obj.d), 0.5)  # (median ρ, 0.5)
        return obj

    def log_density(self, theta):
        h = self.d / 2.0
        return jnp.log(self.lam * h) - h * theta - self.lam * jnp.exp(-h * theta)


@register_prior("pc.sigma")
class PCSigma(Prior):
    """PC prior for a standard deviation σ on θ = log σ: P(σ > σ₀) = p.

    log π(θ) = log λ + θ − λ e^{θ}, λ = −log(p)/σ₀ (σ is exponential with rate λ).

    Example:
        >>> round(PCSigma(1.0, 0.01).lam, 5)
        4.60517
    """

    name = "pc.sigma"

    def __init__(self, sigma0: float, prob: float):
        sigma0, prob = float(sigma0), float(prob)
        _check_tail("pc.sigma", sigma0, prob, "sigma")
        self.param = (sigma0, prob)
        self.lam = -math.log(prob) / sigma0

    @classmethod
    def from_lambda(cls, lam: float) -> "PCSigma":
        """From R-INLA's internal λ (``pcmatern`` param[1])."""
        obj = cls.__new__(cls)
        obj.lam = float(lam)
        obj.param = (math.log(2.0) / obj.lam, 0.5)  # (median σ, 0.5)
        return obj

    def log_density(self, theta):
        return jnp.log(self.lam) + theta - self.lam * jnp.exp(theta)


class ThetaNormal(Prior):
    """One coordinate of R-INLA's ``mvnorm`` prior on spde2 θ when ``theta.Q`` is diagonal:
    N(mean, 1/precision) on the internal θ (not registered; the generic ``normal`` prior
    lives in :mod:`adelia.models.priors`)."""

    name = "mvnorm"

    def __init__(self, mean: float, precision: float):
        self.param = (float(mean), float(precision))
        if not precision > 0:
            raise PriorError(f"spde2 theta prior: precision must be positive, got {precision}")

    def log_density(self, theta):
        mean, prec = self.param
        return 0.5 * jnp.log(prec / (2.0 * jnp.pi)) - 0.5 * prec * (theta - mean) ** 2


class FixedValue(Prior):
    """Placeholder prior of a hyperparameter held fixed (R-INLA skips its prior term)."""

    name = "none"

    def __init__(self, value: float):
        self.param = (float(value),)

    def log_density(self, theta):
        return jnp.zeros_like(jnp.asarray(theta, dtype=jnp.float64))
