"""The beta-binomial family (R-INLA ``betabinomial``).

y_i ~ BetaBinomial(n_i, a_i, b_i) with p_i = g⁻¹(η_i) = a/(a+b) and overdispersion
ρ = 1/(a + b + 1) = expit(θ): a = p(1 − ρ)/ρ, b = (1 − p)(1 − ρ)/ρ,

    log π(y_i | η_i, θ) = log C(n, y) + log B(y + a, n − y + b) − log B(a, b)

(``loglikelihood_betabinomial``; R-INLA's linear extrapolation for p > 0.999 is not
reproduced — the exact value is used). θ: "intern overdispersion for the betabinomial
observations", gaussian(0, 0.4), initial 0. Links as binomial. The cdf is Σ_{k ≤ y} π(k).

Observation data: ``Ntrials`` (default 1), ``weights``.

Example:
    >>> BetaBinomialLikelihood().hyperparameters[0].name
    'overdispersion for the betabinomial observations'
"""

from __future__ import annotations

import jax
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

    def _shapes(self, eta, theta):
        scale = jnp.exp(-theta[0])  # (1 − ρ)/ρ
        return scale * jnp.exp(self.link.log_p(eta)), scale * jnp.exp(self.link.log_1mp(eta))

    @staticmethod
    def _log_pmf(k, n, a, b):
        # log B(k+a, n−k+b) − log B(a, b) as three log rising factorials (log-gammas;
        # jax's betaln loses ~7 digits for some arguments)
        rising = lambda x, j: gammaln(x + j) - gammaln(x)  # noqa: E731
        return log_choose(n, k) + rising(a, k) + rising(b, n - k) - rising(a + b, n)

    def _log_density(self, y, eta, theta, data):
        a, b = self._shapes(eta, theta)
        return self._log_pmf(y, self._get(data, "Ntrials", y, 1.0), a, b)

    def _cdf(self, y, eta, theta, data):
        # P(Y ≤ y) = Σ_{k ≤ y} π(k): a loop over k = 0, …, max y (a while loop under jit)
        n = self._get(data, "Ntrials", y, 1.0)
        a, b = self._shapes(eta, theta)

        def add(k, total):
            k = jnp.asarray(k, dtype=jnp.float64)
            inside = k <= y
            lp = self._log_pmf(jnp.where(inside, k, 0.0), n, a, b)
            return total + jnp.where(inside, jnp.exp(lp), 0.0)

        total = jax.lax.fori_loop(0, jnp.max(y).astype(jnp.int32) + 1, add, jnp.zeros_like(y * eta))
        return jnp.minimum(total, 1.0)

    def _check_rows(self, y, data, observed):
        check_binomial_rows(self, y, data, observed)
