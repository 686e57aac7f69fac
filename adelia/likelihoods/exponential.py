"""The exponential families (R-INLA ``exponential`` and ``exponentialsurv``).

y_i ~ Exponential(rate λ_i), λ_i = g⁻¹(η_i) (log link; ``exponentialsurv`` also neglog):

    log f(y) = log λ − λ y,   log S(t) = −λ t

(``loglikelihood_exp``; the survival version adds right/left/interval censoring and left
truncation, :mod:`adelia.likelihoods.surv`). No hyperparameters (R-INLA's cure-model
betas of ``exponentialsurv`` are not implemented). The fitted value is λ. The cdf of
``exponential`` is 1 − exp(−λ y); ``exponentialsurv`` has none (no PIT for censored data).

Observation data: ``exponential``: ``weights``; ``exponentialsurv``: ``event`` (default 1),
``time2`` (0), ``truncation`` (0), ``weights``.

Example:
    >>> import jax.numpy as jnp
    >>> lik = ExponentialSurvLikelihood()
    >>> float(lik.log_density(jnp.array([2.0]), jnp.array([0.0]), jnp.zeros(0), {"event": jnp.array([0.0])})[0])
    -2.0
"""

from __future__ import annotations

import jax.numpy as jnp

from ._family import Family
from .surv import SURVIVAL_DATA, censored_log_likelihood, censored_pit_message, check_survival_rows


class ExponentialLikelihood(Family):
    family = "exponential"
    links = ("log",)

    def _log_density(self, y, eta, theta, data):
        return self.link.log_mu(eta) - self.link.inverse(eta) * y

    def _cdf(self, y, eta, theta, data):
        return -jnp.expm1(-self.link.inverse(eta) * jnp.maximum(y, 0.0))

    def _check_rows(self, y, data, observed):
        self._require_positive(y, observed)


class ExponentialSurvLikelihood(Family):
    family = "exponentialsurv"
    links = ("log", "neglog")
    data_names = SURVIVAL_DATA

    def _log_density(self, y, eta, theta, data):
        log_rate = self.link.log_mu(eta)
        rate = jnp.exp(log_rate)
        return censored_log_likelihood(y, data, log_pdf=lambda t: log_rate - rate * t, log_sf=lambda t: -rate * t)

    def _cdf(self, y, eta, theta, data):
        raise NotImplementedError(censored_pit_message(self.family))

    def _check_rows(self, y, data, observed):
        check_survival_rows(self, y, data, observed)
