"""The Beta family (R-INLA ``beta``).

y_i ∈ (0, 1) ~ Beta(a_i, b_i) with mean μ_i = g⁻¹(η_i) and precision φ_i = exp(θ) s_i:
a = μ φ, b = (1 − μ) φ, s = ``scale``:

    log π(y_i | η_i, θ) = −log B(a, b) + (a − 1) log y + (b − 1) log(1 − y)

(``loglikelihood_beta``, without ``beta.censor.value``). θ: "intern precision-parameter for
the beta observations", loggamma(1, 0.1), initial log 10. Links: logit (default), probit,
cloglog, loglog, cauchit. The cdf is I_y(a, b).

Observation data: ``scale`` (default 1), ``weights``.

Example:
    >>> BetaLikelihood().hyperparameters[0].name
    'precision parameter for the beta observations'
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, gammaln

from ._family import Family, HyperSpec
from .binomial import PROBABILITY_LINKS


class BetaLikelihood(Family):
    family = "beta"
    links = PROBABILITY_LINKS
    data_names = ("scale",)
    hyper_specs = (
        HyperSpec(
            key="phi",
            theta_key="theta",
            internal_name="intern precision-parameter for the beta observations",
            name="precision parameter for the beta observations",
            to_user=jnp.exp,
            prior="loggamma",
            param=(1.0, 0.1),
            initial=float(np.log(10.0)),
        ),
    )

    def _log_density(self, y, eta, theta, data):
        phi = jnp.exp(theta[0]) * self._get(data, "scale", y, 1.0)
        a = phi * jnp.exp(self.link.log_p(eta))
        b = phi * jnp.exp(self.link.log_1mp(eta))
        ys = jnp.where((y > 0) & (y < 1), y, 0.5)
        # log B(a, b) from log-gammas: jax's betaln loses ~7 digits for some arguments
        return gammaln(phi) - gammaln(a) - gammaln(b) + (a - 1.0) * jnp.log(ys) + (b - 1.0) * jnp.log1p(-ys)

    def _cdf(self, y, eta, theta, data):
        phi = jnp.exp(theta[0]) * self._get(data, "scale", y, 1.0)
        a = phi * jnp.exp(self.link.log_p(eta))
        b = phi * jnp.exp(self.link.log_1mp(eta))
        return betainc(a, b, jnp.clip(y, 0.0, 1.0))

    def _check_rows(self, y, data, observed):
        self._require(observed & ~((y > 0) & (y < 1)), y, "y", "is outside the open interval (0, 1)")
        if "scale" in data:
            self._require_positive(data["scale"], observed, "scale")
