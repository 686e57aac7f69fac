"""The Poisson family (R-INLA ``poisson``).

y_i ~ Poisson(E_i λ_i), λ_i = exp(η_i) (log link):

    log π(y_i | η_i) = y_i log(E_i λ_i) − E_i λ_i − log y_i!

with the convention of R-INLA's ``loglikelihood_poisson`` that E_i = 0 gives y_i η_i (the
y log E term is dropped). No hyperparameters. R-INLA's fitted value is λ_i = exp(η_i),
without E_i. The cdf is P(Y ≤ y) = Q(y + 1, E λ) (regularised upper incomplete gamma).

Observation data: ``E`` (default 1), ``weights``.

Example:
    >>> import jax.numpy as jnp
    >>> lik = PoissonLikelihood()
    >>> round(float(lik.log_density(jnp.array([2.0]), jnp.array([0.0]), jnp.zeros(0), {})[0]), 6)
    -1.693147
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaincc, gammaln

from ._family import Family


class PoissonLikelihood(Family):
    family = "poisson"
    links = ("log",)
    data_names = ("E",)

    def _log_density(self, y, eta, theta, data):
        E = self._get(data, "E", y, 1.0)
        log_E = jnp.log(jnp.where(E > 0, E, 1.0))
        return y * (eta + log_E) - E * jnp.exp(eta) - gammaln(y + 1.0)

    def _cdf(self, y, eta, theta, data):
        # P(Y ≤ y) = Q(y + 1, μ), the regularised upper incomplete gamma function
        return gammaincc(y + 1.0, self._get(data, "E", y, 1.0) * jnp.exp(eta))

    def d_log_density(self, y, eta, theta, data):
        y, eta = jnp.asarray(y, dtype=jnp.float64), jnp.asarray(eta, dtype=jnp.float64)
        mu = self._get(data, "E", y, 1.0) * jnp.exp(eta)
        return self._weighted(y - mu, data), self._weighted(-mu, data)

    def _check_rows(self, y, data, observed):
        self._require_counts(y, observed)
        if "E" in data:
            E = data["E"]
            self._require(observed & ~((E >= 0) & np.isfinite(E)), E, "E", "must be non-negative and finite")
            # R-INLA errors too: with E = 0 the Poisson mean E·exp(η) is 0, so a count y > 0 is
            # impossible (and log E would silently be replaced)
            self._require(
                observed & (E == 0) & (y > 0), E, "E",
                "with a count y > 0: a Poisson mean E·exp(η) of 0 cannot produce counts; give the row a positive E or drop it",
            )
