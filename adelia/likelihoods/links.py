"""Link functions η = g(μ) with R-INLA's definitions (``inlaprog/src/inla-map-and-link.c``).

Every link maps the linear predictor η to the family's mean parameter μ = g⁻¹(η):

=========  ======================  ==============================
name       g⁻¹(η)                  used by
=========  ======================  ==============================
identity   η                       gaussian, t, lognormal
log        exp(η)                  poisson, nbinomial, gamma, survival families
neglog     exp(−η)                 exponentialsurv, weibull(surv)
logit      1 / (1 + exp(−η))       binomial, beta, betabinomial
probit     Φ(η)                    binomial, beta, betabinomial
cloglog    1 − exp(−exp(η))        binomial, beta, betabinomial
loglog     exp(−exp(−η))           binomial, beta, betabinomial
cauchit    ½ + atan(η)/π           binomial, beta, betabinomial
=========  ======================  ==============================

Probability links also give ``log_p(η) = log g⁻¹(η)`` and ``log_1mp(η) = log(1 − g⁻¹(η))`` in
forms that stay accurate in the tails (R-INLA special-cases the same links in
``loglikelihood_binomial``); positive links give ``log_mu(η)``.

Example:
    >>> from adelia.likelihoods.links import make_link
    >>> float(make_link("cloglog").inverse(0.0))  # 1 - exp(-1)
    0.6321205588285577
"""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.scipy import special as jsp

from ..errors import ControlError, unknown_choice
from .base import Link


def log1mexp(x: jax.Array) -> jax.Array:
    """log(1 − exp(−x)) for x > 0, accurate for small and large x (Mächler 2012)."""
    x = jnp.asarray(x)
    return jnp.where(x < jnp.log(2.0), jnp.log(-jnp.expm1(-x)), jnp.log1p(-jnp.exp(-x)))


class ProbabilityLink(Link):
    """A link onto (0, 1) with tail-accurate log p and log(1 − p)."""

    def log_p(self, eta: jax.Array) -> jax.Array:
        return jnp.log(self.inverse(eta))

    def log_1mp(self, eta: jax.Array) -> jax.Array:
        return jnp.log1p(-self.inverse(eta))


class PositiveLink(Link):
    """A link onto (0, ∞) with log μ available directly."""

    def log_mu(self, eta: jax.Array) -> jax.Array:
        return jnp.log(self.inverse(eta))


class IdentityLink(Link):
    name: ClassVar[str] = "identity"

    def inverse(self, eta):
        return jnp.asarray(eta)

    def __call__(self, mu):
        return jnp.asarray(mu)


class LogLink(PositiveLink):
    name: ClassVar[str] = "log"

    def inverse(self, eta):
        return jnp.exp(eta)

    def __call__(self, mu):
        return jnp.log(mu)

    def log_mu(self, eta):
        return jnp.asarray(eta)


class NegLogLink(PositiveLink):
    """η = −log μ (R-INLA's ``neglog``, the accelerated-failure-time sign convention)."""

    name: ClassVar[str] = "neglog"

    def inverse(self, eta):
        return jnp.exp(-eta)

    def __call__(self, mu):
        return -jnp.log(mu)

    def log_mu(self, eta):
        return -jnp.asarray(eta)


class LogitLink(ProbabilityLink):
    name: ClassVar[str] = "logit"

    def inverse(self, eta):
        return jsp.expit(eta)

    def __call__(self, mu):
        return jsp.logit(mu)

    def log_p(self, eta):
        return -jax.nn.softplus(-eta)

    def log_1mp(self, eta):
        return -jax.nn.softplus(eta)


class ProbitLink(ProbabilityLink):
    name: ClassVar[str] = "probit"

    def inverse(self, eta):
        return jsp.ndtr(eta)

    def __call__(self, mu):
        return jsp.ndtri(mu)

    def log_p(self, eta):
        return jsp.log_ndtr(eta)

    def log_1mp(self, eta):
        return jsp.log_ndtr(-eta)


class CloglogLink(ProbabilityLink):
    """p = 1 − exp(−exp(η)), η = log(−log(1 − p))."""

    name: ClassVar[str] = "cloglog"

    def inverse(self, eta):
        return -jnp.expm1(-jnp.exp(eta))

    def __call__(self, mu):
        return jnp.log(-jnp.log1p(-mu))

    def log_p(self, eta):
        return log1mexp(jnp.exp(eta))

    def log_1mp(self, eta):
        return -jnp.exp(eta)


class LoglogLink(ProbabilityLink):
    """p = exp(−exp(−η)), η = −log(−log p)."""

    name: ClassVar[str] = "loglog"

    def inverse(self, eta):
        return jnp.exp(-jnp.exp(-eta))

    def __call__(self, mu):
        return -jnp.log(-jnp.log(mu))

    def log_p(self, eta):
        return -jnp.exp(-eta)

    def log_1mp(self, eta):
        return log1mexp(jnp.exp(-eta))


class CauchitLink(ProbabilityLink):
    """p = ½ + atan(η)/π."""

    name: ClassVar[str] = "cauchit"

    def inverse(self, eta):
        return 0.5 + jnp.arctan(eta) / jnp.pi

    def __call__(self, mu):
        return jnp.tan(jnp.pi * (mu - 0.5))

    def log_p(self, eta):
        # 1/2 + atan(η)/π = atan2(1, −η)/π, accurate for η → −∞
        return jnp.log(jnp.arctan2(1.0, -eta) / jnp.pi)

    def log_1mp(self, eta):
        return jnp.log(jnp.arctan2(1.0, eta) / jnp.pi)


LINKS: dict[str, type[Link]] = {
    cls.name: cls
    for cls in (IdentityLink, LogLink, NegLogLink, LogitLink, ProbitLink, CloglogLink, LoglogLink, CauchitLink)
}


def make_link(name: str, valid: tuple[str, ...] | None = None, family: str | None = None) -> Link:
    """The link called ``name``; ``"default"`` means ``valid[0]``.

    Args:
        name: R-INLA's link name (``control_family={"link": name}``).
        valid: the links the family accepts (first = default); None accepts all.
        family: the family's name, for the error message.

    Raises:
        ControlError: unknown link, or one the family does not accept (lists the valid ones).
    """
    choices = tuple(valid) if valid is not None else tuple(LINKS)
    key = str(name).lower()
    if key == "default":
        key = choices[0]
    if key not in choices or key not in LINKS:
        what = f'link for family "{family}"' if family else "link"
        raise ControlError(unknown_choice(what, name, ("default",) + choices))
    return LINKS[key]()
