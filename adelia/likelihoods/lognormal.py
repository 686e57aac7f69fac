"""The log-Normal families (R-INLA ``lognormal`` and ``lognormalsurv``).

log y_i ~ N(η_i, 1/(τ s_i)), τ = exp(θ), s = ``scale`` (``lognormal`` only; R-INLA's
survival version has no scale):

    log f(y) = −½ log 2π + ½ log(τ s) − ½ τ s (log y − η)² − log y,
    log S(t) = log Φ(−(log t − η) √(τ s))

(``loglikelihood_lognormal``; ``lognormalsurv`` goes through the censoring of
:mod:`adelia.likelihoods.surv`). θ: "Log precision for the lognormal observations"
(``lognormalsurv``: "... lognormalsurv observations"), loggamma(1, 5e-5), initial 0.
The cdf of ``lognormal`` is Φ((log y − η)√(τ s)); ``lognormalsurv`` has none.

Observation data: ``lognormal``: ``scale`` (default 1), ``weights``; ``lognormalsurv``:
``event``, ``time2``, ``truncation``, ``weights``.

Example:
    >>> LogNormalLikelihood().hyperparameters[0].internal_name
    'Log precision for the lognormal observations'
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import log_ndtr, ndtr

from ._family import Family, HyperSpec
from .gaussian import LOG_NORMC_GAUSSIAN
from .surv import SURVIVAL_DATA, censored_log_likelihood, censored_pit_message, check_survival_rows


def _spec(label: str) -> HyperSpec:
    return HyperSpec(
        key="prec",
        theta_key="theta",
        internal_name=f"Log precision for the {label} observations",
        name=f"Precision for the {label} observations",
        to_user=jnp.exp,
        prior="loggamma",
        param=(1.0, 5e-5),
        initial=0.0,
    )


def _log_pdf(t, eta, prec):
    log_t = jnp.log(t)
    return LOG_NORMC_GAUSSIAN + 0.5 * jnp.log(prec) - 0.5 * prec * (log_t - eta) ** 2 - log_t


class LogNormalLikelihood(Family):
    family = "lognormal"
    links = ("identity",)
    data_names = ("scale",)
    hyper_specs = (_spec("lognormal"),)

    def _log_density(self, y, eta, theta, data):
        prec = jnp.exp(theta[0]) * self._get(data, "scale", y, 1.0)
        return _log_pdf(jnp.where(y > 0, y, 1.0), eta, prec)

    def _cdf(self, y, eta, theta, data):
        prec = jnp.exp(theta[0]) * self._get(data, "scale", y, 1.0)
        return ndtr((jnp.log(jnp.where(y > 0, y, 1.0)) - eta) * jnp.sqrt(prec))

    def _check_rows(self, y, data, observed):
        self._require_positive(y, observed)
        if "scale" in data:
            self._require_positive(data["scale"], observed, "scale")


class LogNormalSurvLikelihood(Family):
    family = "lognormalsurv"
    links = ("identity",)
    data_names = SURVIVAL_DATA
    hyper_specs = (_spec("lognormalsurv"),)

    def _log_density(self, y, eta, theta, data):
        prec = jnp.exp(theta[0])
        sd_inv = jnp.sqrt(prec)
        return censored_log_likelihood(
            y,
            data,
            log_pdf=lambda t: _log_pdf(t, eta, prec),
            log_sf=lambda t: log_ndtr(-(jnp.log(t) - eta) * sd_inv),
        )

    def _cdf(self, y, eta, theta, data):
        raise NotImplementedError(censored_pit_message(self.family))

    def _check_rows(self, y, data, observed):
        check_survival_rows(self, y, data, observed)
