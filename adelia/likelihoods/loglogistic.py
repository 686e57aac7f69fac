"""The log-logistic families (R-INLA ``loglogistic`` and ``loglogisticsurv``).

λ_i = g⁻¹(η_i) (log link by default, or neglog), shape α = exp(θ). R-INLA's ``variant``
chooses the parametrisation of the cdf:

* 0 (default): F(t) = 1 / (1 + λ t^(−α));
* 1: F(t) = 1 / (1 + (λ t)^(−α)).

With z = log λ − α log t (variant 0) or z = −α (log λ + log t) (variant 1), both read
F = 1/(1 + e^z), so

    log f(t) = z + log α − log t − 2 log(1 + e^z),   log S(t) = z − log(1 + e^z),
    log F(t) = −log(1 + e^z)

(``loglikelihood_loglogistic``; ``loglogisticsurv`` goes through the censoring and
truncation of :mod:`adelia.likelihoods.surv`). θ: "log alpha", loggamma(25, 25),
initial 1. The fitted value is λ. The cdf of ``loglogistic`` is F(y); ``loglogisticsurv``
has none.

R-INLA naming quirk kept on purpose: the inla program labels the hyperparameter of
``loglogisticsurv`` "log alpha for qloglogisticsurv observations" (user scale "alpha for
qloglogisticsurv observations"; ``inla-parse.c`` shares the label with the quantile
version), so adelia's summaries carry the same row names as R-INLA's. ``loglogistic`` is
"log alpha for loglogistic observations". R-INLA's cure-model betas of ``loglogisticsurv``
(fixed unless cure covariates are given) are not implemented.

Observation data: ``loglogistic``: ``weights``; ``loglogisticsurv``: ``event``, ``time2``,
``truncation``, ``weights``.

Example:
    >>> import jax.numpy as jnp
    >>> lik = LogLogisticLikelihood()
    >>> # α = 1, λ = 1: F(t) = t/(1 + t), f(1) = 1/4
    >>> round(float(lik.log_density(jnp.array([1.0]), jnp.array([0.0]), jnp.array([0.0]), {})[0]), 6)
    -1.386294
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ._family import Family, HyperSpec
from .surv import SURVIVAL_DATA, censored_log_likelihood, censored_pit_message, check_survival_rows


def _spec(label: str) -> HyperSpec:
    return HyperSpec(
        key="alpha",
        theta_key="theta",
        internal_name=f"log alpha for {label} observations",
        name=f"alpha for {label} observations",
        to_user=jnp.exp,
        prior="loggamma",
        param=(25.0, 25.0),
        initial=1.0,
    )


class _LogLogisticBase(Family):
    links = ("log", "neglog")
    variants = (0, 1)

    def _z(self, t, eta, theta):
        """(z, log α): F(t) = 1/(1 + e^z)."""
        log_lam = self.link.log_mu(eta)
        log_alpha = theta[0]
        alpha = jnp.exp(log_alpha)
        log_t = jnp.log(t)
        z = log_lam - alpha * log_t if self.variant == 0 else -alpha * (log_lam + log_t)
        return z, log_alpha, log_t

    def _log_pdf(self, t, eta, theta):
        z, log_alpha, log_t = self._z(t, eta, theta)
        return z + log_alpha - log_t - 2.0 * jax.nn.softplus(z)

    def _log_sf(self, t, eta, theta):
        z, _, _ = self._z(t, eta, theta)
        return -jax.nn.softplus(-z)


class LogLogisticLikelihood(_LogLogisticBase):
    family = "loglogistic"
    hyper_specs = (_spec("loglogistic"),)

    def _log_density(self, y, eta, theta, data):
        return self._log_pdf(jnp.where(y > 0, y, 1.0), eta, theta)

    def _cdf(self, y, eta, theta, data):
        z, _, _ = self._z(jnp.where(y > 0, y, 1.0), eta, theta)
        return jnp.where(y > 0, jax.nn.sigmoid(-z), 0.0)

    def _check_rows(self, y, data, observed):
        self._require_positive(y, observed)


class LogLogisticSurvLikelihood(_LogLogisticBase):
    family = "loglogisticsurv"
    data_names = SURVIVAL_DATA
    # "qloglogisticsurv": the inla program's label for this family (module docstring)
    hyper_specs = (_spec("qloglogisticsurv"),)

    def _log_density(self, y, eta, theta, data):
        return censored_log_likelihood(
            y,
            data,
            log_pdf=lambda t: self._log_pdf(t, eta, theta),
            log_sf=lambda t: self._log_sf(t, eta, theta),
        )

    def _cdf(self, y, eta, theta, data):
        raise NotImplementedError(censored_pit_message(self.family))

    def _check_rows(self, y, data, observed):
        check_survival_rows(self, y, data, observed)
