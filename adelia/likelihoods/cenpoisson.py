"""The censored Poisson family (R-INLA ``cenpoisson``).

y_i ~ Poisson(μ_i), μ_i = E_i exp(η_i), where counts inside the censoring interval
I = [L, H] (``control_family={"cenpoisson.I": (L, H)}``) are only known to lie in I:

    log π(y | η) = log P(L ≤ Y ≤ H)              if L ≤ y ≤ H,
                   y log μ − μ − log y!           otherwise

(``loglikelihood_cenpoisson``). As R-INLA's ``inla.family.section``, the interval is rounded
to integers, clipped below at 0 and sorted; its default c(−1, −1) becomes [0, 0], which is
the plain Poisson likelihood. Infinite ends are an error, as in R. No hyperparameters; the
fitted value is exp(η). PIT (R-INLA's cdf with m < 0): F(y) outside I and
F(L − 1) + ½ P(I) inside.

P(L ≤ Y ≤ H) is summed term by term (log-sum-exp of the Poisson pmf) when H − L ≤ 200,
else taken as P(L, μ) − P(H + 1, μ) with P the regularised lower incomplete gamma function
(P(Y ≥ k) = P(k, μ)).

Observation data: ``E`` (default 1), ``weights``.

Example:
    >>> import jax.numpy as jnp
    >>> lik = CenPoissonLikelihood({"cenpoisson.I": (1, 3)})
    >>> lik.interval
    (1, 3)
    >>> # y = 2 is censored: log P(1 ≤ Y ≤ 3) for μ = 1
    >>> round(float(lik.log_density(jnp.array([2.0]), jnp.array([0.0]), jnp.zeros(0), {})[0]), 6)
    -0.489174
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammainc, gammaincc, gammaln, logsumexp

from ..errors import ControlError
from ._family import Family

#: widest interval summed term by term (wider ones use incomplete gamma functions)
_MAX_TERMS = 200


def censoring_interval(value) -> tuple[int, int]:
    """R-INLA's processing of ``cenpoisson.I``: two finite numbers, rounded, clipped at 0,
    sorted. ControlError names the argument otherwise."""
    if value is None:
        value = (-1, -1)
    arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if arr.size != 2:
        raise ControlError(f"control_family['cenpoisson.I'] must be a vector of length 2 (low, high), got {arr.size} values: {arr.tolist()}")
    if not np.all(np.isfinite(arr)):
        raise ControlError(f"control_family['cenpoisson.I'] must be finite (R-INLA refuses infinite ends), got {arr.tolist()}")
    low, high = np.sort(np.maximum(0.0, np.round(arr)))
    return int(low), int(high)


class CenPoissonLikelihood(Family):
    family = "cenpoisson"
    links = ("log",)
    data_names = ("E",)
    extra_control_keys = ("cenpoisson_I",)

    def __init__(self, control_family=None):
        super().__init__(control_family)
        self.interval = censoring_interval(self.family_control.get("cenpoisson_I"))

    def _log_interval_prob(self, log_mu):
        """log P(L ≤ Y ≤ H) for Y ~ Poisson(μ)."""
        low, high = self.interval
        mu = jnp.exp(log_mu)
        if high - low <= _MAX_TERMS:
            k = jnp.arange(low, high + 1, dtype=jnp.float64)
            terms = k[None, :] * log_mu[:, None] - mu[:, None] - gammaln(k + 1.0)[None, :]
            return logsumexp(terms, axis=1)
        upper = gammaincc(high + 1.0, mu)  # P(Y ≤ H)
        if low == 0:
            return jnp.log(upper)
        return jnp.log(gammainc(float(low), mu) - gammainc(high + 1.0, mu))

    def _log_density(self, y, eta, theta, data):
        log_mu = jnp.log(self._get(data, "E", y, 1.0)) + eta
        low, high = self.interval
        pmf = y * log_mu - jnp.exp(log_mu) - gammaln(y + 1.0)
        censored = (y >= low) & (y <= high)
        return jnp.where(censored, self._log_interval_prob(log_mu), pmf)

    def _cdf(self, y, eta, theta, data):
        mu = self._get(data, "E", y, 1.0) * jnp.exp(eta)
        low, high = self.interval
        F = gammaincc(y + 1.0, mu)
        below = gammaincc(float(low), mu) if low > 0 else jnp.zeros_like(mu)  # P(Y ≤ L − 1)
        inside = below + 0.5 * jnp.exp(self._log_interval_prob(jnp.log(mu)))
        return jnp.where((y >= low) & (y <= high), inside, F)

    def _check_rows(self, y, data, observed):
        self._require_counts(y, observed)
        if "E" in data:
            self._require_positive(data["E"], observed, "E")
