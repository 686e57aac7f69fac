"""The binomial family (R-INLA ``binomial``).

y_i ~ Binomial(n_i, p_i), p_i = g⁻¹(η_i), n_i = ``Ntrials``:

    log π(y_i | η_i) = log C(n_i, y_i) + y_i log p_i + (n_i − y_i) log(1 − p_i)

(``loglikelihood_binomial``; n_i = y_i = 0 contributes 0). Links: logit (default), probit,
cloglog, loglog, cauchit; log p and log(1 − p) are evaluated in tail-accurate forms as
R-INLA does. No hyperparameters; the fitted value is p_i. The cdf (for PIT values) is
P(Y ≤ y) = I_{1−p}(n − y, y + 1).

Observation data: ``Ntrials`` (default 1), ``weights``.

Example:
    >>> import jax.numpy as jnp
    >>> lik = BinomialLikelihood({"link": "probit"})
    >>> round(float(lik.log_density(jnp.array([1.0]), jnp.array([0.0]), jnp.zeros(0), {"Ntrials": jnp.array([2.0])})[0]), 6)
    -0.693147
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, gammaln

from ._family import Family

PROBABILITY_LINKS = ("logit", "probit", "cloglog", "loglog", "cauchit")


def log_choose(n, k):
    """log C(n, k) via log-gamma."""
    return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)


def binomial_cdf(y, n, log_1mp):
    """P(Y ≤ y) for Y ~ Binomial(n, p) = I_{1−p}(n − y, y + 1) (regularised incomplete beta);
    1 for y ≥ n. ``log_1mp`` = log(1 − p), so that 1 − p stays accurate for p near 1."""
    below = y < n
    a = jnp.where(below, n - y, 1.0)
    return jnp.where(below, betainc(a, y + 1.0, jnp.exp(log_1mp)), 1.0)


def check_binomial_rows(fam: Family, y, data, observed) -> None:
    """y and Ntrials non-negative integers with y ≤ Ntrials (binomial and betabinomial)."""
    fam._require_counts(y, observed)
    n = data.get("Ntrials", np.ones_like(y))
    fam._require(observed & ((n < 0) | (n != np.round(n)) | ~np.isfinite(n)), n, "Ntrials", "is not a non-negative integer")
    bad = observed & (y > n)
    idx = np.flatnonzero(bad)
    if idx.size:
        i = int(idx[0])
        fam._require(bad, y, "y", f"exceeds Ntrials = {n[i]:g}")


class BinomialLikelihood(Family):
    family = "binomial"
    links = PROBABILITY_LINKS
    data_names = ("Ntrials",)

    def _log_density(self, y, eta, theta, data):
        n = self._get(data, "Ntrials", y, 1.0)
        if self.link.name == "logit":
            kernel = y * eta - n * jax.nn.softplus(eta)
        else:
            kernel = jnp.where(y > 0, y * self.link.log_p(eta), 0.0) + jnp.where(
                n - y > 0, (n - y) * self.link.log_1mp(eta), 0.0
            )
        return log_choose(n, y) + kernel

    def _cdf(self, y, eta, theta, data):
        return binomial_cdf(y, self._get(data, "Ntrials", y, 1.0), self.link.log_1mp(eta))

    def d_log_density(self, y, eta, theta, data):
        if self.link.name != "logit":
            return super().d_log_density(y, eta, theta, data)
        y, eta = jnp.asarray(y, dtype=jnp.float64), jnp.asarray(eta, dtype=jnp.float64)
        n = self._get(data, "Ntrials", y, 1.0)
        p = jax.nn.sigmoid(eta)
        return self._weighted(y - n * p, data), self._weighted(-n * p * (1.0 - p), data)

    def _check_rows(self, y, data, observed):
        check_binomial_rows(self, y, data, observed)
