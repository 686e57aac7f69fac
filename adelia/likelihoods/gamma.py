"""The Gamma family (R-INLA ``gamma``).

y_i ~ Gamma with mean μ_i = exp(η_i) and precision parameter φ_i = exp(θ) s_i (shape φ,
rate φ/μ, Var = μ²/φ), s = ``scale``:

    log π(y_i | η_i, θ) = −log Γ(φ) + (φ − 1) log y + φ log φ − φ (log μ + y/μ)

(``loglikelihood_gamma``). θ: "Intern precision-parameter for the Gamma observations",
loggamma(1, 0.01), initial log 100. The cdf is P(φ, φ y/μ) (regularised lower incomplete
gamma function).

Observation data: ``scale`` (default 1), ``weights``.

Example:
    >>> GammaLikelihood().hyperparameters[0].name
    'Precision-parameter for the Gamma observations'
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammainc, gammaln

from ._family import Family, HyperSpec


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
