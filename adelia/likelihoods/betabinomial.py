"""The beta-binomial family (R-INLA ``betabinomial``).

y_i ~ BetaBinomial(n_i, a_i, b_i) with p_i = g⁻¹(η_i) = a/(a+b) and overdispersion
ρ = 1/(a + b + 1) = expit(θ): a = p(1 − ρ)/ρ, b = (1 − p)(1 − ρ)/ρ,

    log π(y_i | η_i, θ) = log C(n, y) + log B(y + a, n − y + b) − log B(a, b)

(``loglikelihood_betabinomial``; R-INLA's linear extrapolation for p > 0.999 is not
reproduced — the exact value is used). θ: "intern overdispersion for the betabinomial
observations", gaussian(0, 0.4), initial 0. Links as binomial.

Observation data: ``Ntrials`` (default 1), ``weights``.

Example:
    >>> BetaBinomialLikelihood().hyperparameters[0].name
    'overdispersion for the betabinomial observations'
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import expit, gammaln

from ._family import Family, HyperSpec
from .binomial import PROBABILITY_LINKS, check_binomial_rows, log_choose


class BetaBinomialLikelihood(Family):
    family = "betabinomial"
    links = PROBABILITY_LINKS
    data_names = ("Ntrials",)
    hyper_specs = (
        HyperSpec(
            key="rho",
            theta_key="theta",
            internal_name="intern overdispersion for the betabinomial observations",
            name="overdispersion for the betabinomial observations",
            to_user=expit,
            prior="gaussian",
            param=(0.0, 0.4),
            initial=0.0,
        ),
    )

    def _log_density(self, y, eta, theta, data):
        n = self._get(data, "Ntrials", y, 1.0)
        scale = jnp.exp(-theta[0])  # (1 − ρ)/ρ
        a = scale * jnp.exp(self.link.log_p(eta))
        b = scale * jnp.exp(self.link.log_1mp(eta))
        # log B(y+a, n−y+b) − log B(a, b) as three log rising factorials (log-gammas;
        # jax's betaln loses ~7 digits for some arguments)
        rising = lambda x, k: gammaln(x + k) - gammaln(x)  # noqa: E731
        return log_choose(n, y) + rising(a, y) + rising(b, n - y) - rising(a + b, n)

    def _check_rows(self, y, data, observed):
        check_binomial_rows(self, y, data, observed)
