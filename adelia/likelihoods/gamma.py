"""The Gamma families (R-INLA ``gamma`` and ``gammasurv``).

y_i ~ Gamma with mean μ_i = exp(η_i) and precision parameter φ_i = exp(θ) s_i (shape φ,
rate φ/μ, Var = μ²/φ), s = ``scale``:

    log π(y_i | η_i, θ) = −log Γ(φ) + (φ − 1) log y + φ log φ − φ (log μ + y/μ)

(``loglikelihood_gamma``). θ: "Intern precision-parameter for the Gamma observations",
loggamma(1, 0.01), initial log 100. The cdf is P(φ, φ y/μ) (regularised lower incomplete
gamma function).

Observation data: ``scale`` (default 1), ``weights``.

``gammasurv`` (``loglikelihood_gammasurv``) is the same density without ``scale`` (R-INLA
ignores it for the survival version) under the censoring and truncation of
:mod:`adelia.likelihoods.surv`, with log S(t) = log Q(φ, φ t/μ) (regularised upper
incomplete gamma function). θ: "Intern precision-parameter for the Gamma surv
observations", loggamma(1, 0.01), initial log 1 = 0. Observation data: ``event``,
``time2``, ``truncation``, ``weights``.

Example:
    >>> GammaLikelihood().hyperparameters[0].name
    'Precision-parameter for the Gamma observations'
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammainc, gammaincc, gammaln

from ._family import Family, HyperSpec
from .surv import SURVIVAL_DATA, censored_log_likelihood, censored_pit_message, check_survival_rows

#: log Q(φ, x) is floored here (Q underflows far in the tail): R-INLA clips its survival
#: probabilities to ≥ 1.2e-10 in the same place, so both stay finite
_LOG_SF_FLOOR = 1e-300


def gamma_log_pdf(t, log_mu, log_phi):
    """log Gamma(t; shape φ, rate φ/μ) = −log Γ(φ) + (φ − 1) log t + φ log φ − φ (log μ + t/μ)."""
    phi = jnp.exp(log_phi)
    return -gammaln(phi) + (phi - 1.0) * jnp.log(t) + phi * log_phi - phi * (log_mu + t * jnp.exp(-log_mu))


class GammaLikelihood(Family):
    family = "gamma"
    links = ("log",)
    data_names = ("scale",)
    hyper_specs = (
        HyperSpec(
            key="prec",
            theta_key="theta",
            internal_name="Intern precision-parameter for the Gamma observations",
            name="Precision-parameter for the Gamma observations",
            to_user=jnp.exp,
            prior="loggamma",
            param=(1.0, 0.01),
            initial=float(np.log(100.0)),
        ),
    )

    def _log_density(self, y, eta, theta, data):
        log_phi = theta[0] + jnp.log(self._get(data, "scale", y, 1.0))
        phi = jnp.exp(log_phi)
        log_mu = self.link.log_mu(eta)
        log_y = jnp.log(jnp.where(y > 0, y, 1.0))
        return -gammaln(phi) + (phi - 1.0) * log_y + phi * log_phi - phi * (log_mu + y * jnp.exp(-log_mu))

    def _cdf(self, y, eta, theta, data):
        # shape φ, rate φ/μ: P(φ, φ y/μ), the regularised lower incomplete gamma function
        phi = jnp.exp(theta[0]) * self._get(data, "scale", y, 1.0)
        return gammainc(phi, phi * jnp.maximum(y, 0.0) * jnp.exp(-self.link.log_mu(eta)))

    def _check_rows(self, y, data, observed):
        self._require_positive(y, observed)
        if "scale" in data:
            self._require_positive(data["scale"], observed, "scale")


class GammaSurvLikelihood(Family):
    family = "gammasurv"
    links = ("log",)
    data_names = SURVIVAL_DATA
    hyper_specs = (
        HyperSpec(
            key="prec",
            theta_key="theta",
            internal_name="Intern precision-parameter for the Gamma surv observations",
            name="Precision-parameter for the Gamma surv observations",
            to_user=jnp.exp,
            prior="loggamma",
            param=(1.0, 0.01),
            initial=0.0,
        ),
    )

    def _log_density(self, y, eta, theta, data):
        log_mu = self.link.log_mu(eta)
        log_phi = theta[0]
        phi = jnp.exp(log_phi)

        def log_sf(t):
            return jnp.log(jnp.maximum(gammaincc(phi, phi * t * jnp.exp(-log_mu)), _LOG_SF_FLOOR))

        return censored_log_likelihood(y, data, log_pdf=lambda t: gamma_log_pdf(t, log_mu, log_phi), log_sf=log_sf)

    def _cdf(self, y, eta, theta, data):
        raise NotImplementedError(censored_pit_message(self.family))

    def _check_rows(self, y, data, observed):
        check_survival_rows(self, y, data, observed)
