"""The negative binomial families (R-INLA ``nbinomial`` and ``nbinomial2``).

y_i ~ NegBinomial(size n_i, mean μ_i), μ_i = E_i exp(η_i), Var = μ + μ²/n:

    log π(y_i | η_i, θ) = log Γ(y+n) − log Γ(n) − log y! + n log(n/(n+μ)) + y log(μ/(n+μ))

(``loglikelihood_negative_binomial``). The size depends on R-INLA's ``variant``:
0 (default) n = exp(θ); 1 n = E_i exp(θ); 2 n = S_i exp(θ) with S = ``scale``.
θ: "log size for the nbinomial observations (1/overdispersion)", pc.mgamma(7),
initial log 10. The cdf is P(Y ≤ y) = I_q(n, y + 1), q = n/(n + μ).

Observation data: ``E`` (default 1), ``scale`` (variant 2, default 1), ``weights``.

``nbinomial2`` (``loglikelihood_nbinomial2``) is the count of failures y before the n-th
success, n = ``Ntrials`` (a positive integer), with success probability p = g⁻¹(η) (logit
default; probit, cloglog, loglog, cauchit):

    log π(y | η) = log C(y + n − 1, n − 1) + y log(1 − p) + n log p,

no hyperparameters; the fitted value is p and the cdf is I_p(n, y + 1). With the logit link
the η-derivatives are n − (n + y) p and −(n + y) p (1 − p). Observation data:
``Ntrials`` (default 1), ``weights``.

Example:
    >>> import jax.numpy as jnp
    >>> lik = NBinomialLikelihood()
    >>> lik.hyperparameters[0].name
    'size for the nbinomial observations (1/overdispersion)'
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import betainc, gammaln

from ._family import Family, HyperSpec
from .binomial import PROBABILITY_LINKS


def nbinomial_log_pmf(y, log_size, log_mu):
    """log NegBinomial(y; size = exp(log_size), mean = exp(log_mu)), stable in both limits."""
    size = jnp.exp(log_size)
    lse = jnp.logaddexp(log_size, log_mu)  # log(n + μ)
    return gammaln(y + size) - gammaln(size) - gammaln(y + 1.0) + size * (log_size - lse) + y * (log_mu - lse)


def nbinomial_cdf(y, log_size, log_mu):
    """P(Y ≤ y) for Y ~ NegBinomial(size n, mean μ) = I_q(n, y + 1), q = n/(n + μ)."""
    q = jnp.exp(log_size - jnp.logaddexp(log_size, log_mu))
    return betainc(jnp.exp(log_size), y + 1.0, q)


def nbinomial_size_spec(internal_name: str, name: str, theta_key: str = "theta") -> HyperSpec:
    return HyperSpec(
        key="size",
        theta_key=theta_key,
        internal_name=internal_name,
        name=name,
        to_user=jnp.exp,
        prior="pc.mgamma",
        param=(7.0,),
        initial=float(np.log(10.0)),
    )


class NBinomialLikelihood(Family):
    family = "nbinomial"
    links = ("log",)
    data_names = ("E", "scale")
    variants = (0, 1, 2)
    hyper_specs = (
        nbinomial_size_spec(
            "log size for the nbinomial observations (1/overdispersion)",
            "size for the nbinomial observations (1/overdispersion)",
        ),
    )

    def _log_size(self, y, theta, data):
        log_size = theta[0] * jnp.ones_like(y)
        if self.variant == 1:
            log_size = log_size + jnp.log(self._get(data, "E", y, 1.0))
        elif self.variant == 2:
            log_size = log_size + jnp.log(self._get(data, "scale", y, 1.0))
        return log_size

    def _log_density(self, y, eta, theta, data):
        E = self._get(data, "E", y, 1.0)
        return nbinomial_log_pmf(y, self._log_size(y, theta, data), jnp.log(E) + eta)

    def _cdf(self, y, eta, theta, data):
        E = self._get(data, "E", y, 1.0)
        return nbinomial_cdf(y, self._log_size(y, theta, data), jnp.log(E) + eta)

    def _check_rows(self, y, data, observed):
        self._require_counts(y, observed)
        if "E" in data:
            self._require_positive(data["E"], observed, "E")
        if "scale" in data and self.variant == 2:
            self._require_positive(data["scale"], observed, "scale")


class NBinomial2Likelihood(Family):
    family = "nbinomial2"
    links = PROBABILITY_LINKS
    data_names = ("Ntrials",)

    def _log_density(self, y, eta, theta, data):
        n = self._get(data, "Ntrials", y, 1.0)
        # log C(y + n − 1, n − 1) = log Γ(y + n) − log Γ(n) − log Γ(y + 1)
        norm = gammaln(y + n) - gammaln(n) - gammaln(y + 1.0)
        return norm + jnp.where(y > 0, y * self.link.log_1mp(eta), 0.0) + n * self.link.log_p(eta)

    def _cdf(self, y, eta, theta, data):
        n = self._get(data, "Ntrials", y, 1.0)
        return betainc(n, y + 1.0, self.link.inverse(eta))

    def d_log_density(self, y, eta, theta, data):
        if self.link.name != "logit":
            return super().d_log_density(y, eta, theta, data)
        y, eta = jnp.asarray(y, dtype=jnp.float64), jnp.asarray(eta, dtype=jnp.float64)
        n = self._get(data, "Ntrials", y, 1.0)
        p = jax.nn.sigmoid(eta)
        # d log p/dη = 1 − p, d log(1 − p)/dη = −p
        return self._weighted(n - (n + y) * p, data), self._weighted(-(n + y) * p * (1.0 - p), data)

    def _check_rows(self, y, data, observed):
        self._require_counts(y, observed)
        n = data.get("Ntrials", np.ones_like(y))
        self._require(
            observed & ((n < 1) | (n != np.round(n)) | ~np.isfinite(n)),
            n,
            "Ntrials",
            "is not a positive integer (the number of successes of nbinomial2)",
        )
