"""The Gaussian family (R-INLA ``gaussian``, alias ``normal``).

y_i ~ N(μ_i, 1/(τ s_i)), μ_i = g⁻¹(η_i) (identity link by default), τ = exp(θ) the
precision, s_i the fixed ``scale`` (default 1):

    log π(y_i | η_i, θ) = −½ log 2π + ½ log(τ s_i) − ½ τ s_i (y_i − μ_i)²

(``loglikelihood_gaussian`` in R-INLA's ``inla-likelihood.c``). θ: "Log precision for the
Gaussian observations", loggamma(1, 5e-5), initial 4. The cdf is Φ((y − μ)√(τ s)).

Observation data: ``scale`` (default 1), ``weights`` (default 1).

Example:
    >>> import jax.numpy as jnp
    >>> lik = GaussianLikelihood()
    >>> round(float(lik.log_density(jnp.array([0.0]), jnp.array([0.0]), jnp.array([0.0]), {})[0]), 10)  # −½ log 2π
    -0.9189385332
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import ndtr

from ._family import Family, HyperSpec

LOG_NORMC_GAUSSIAN = -0.91893853320467274178  # −½ log 2π


class GaussianLikelihood(Family):
    family = "gaussian"
    links = ("identity", "log", "logit")
    data_names = ("scale",)
    hyper_specs = (
        HyperSpec(
            key="prec",
            theta_key="theta1",
            internal_name="Log precision for the Gaussian observations",
            name="Precision for the Gaussian observations",
            to_user=jnp.exp,
            prior="loggamma",
            param=(1.0, 5e-5),
            initial=4.0,
        ),
    )

    @property
    def quadratic_in_eta(self) -> bool:
        return self.link.name == "identity"

    def _precision(self, y, theta, data):
        return jnp.exp(theta[0]) * self._get(data, "scale", y, 1.0)

    def _log_density(self, y, eta, theta, data):
        prec = self._precision(y, theta, data)
        mu = self.link.inverse(eta)
        return LOG_NORMC_GAUSSIAN + 0.5 * jnp.log(prec) - 0.5 * prec * (y - mu) ** 2

    def _cdf(self, y, eta, theta, data):
        # Φ((y − μ) √(τ s))
        return ndtr((y - self.link.inverse(eta)) * jnp.sqrt(self._precision(y, theta, data)))

    def d_log_density(self, y, eta, theta, data):
        if self.link.name != "identity":
            return super().d_log_density(y, eta, theta, data)
        y, eta, theta = (jnp.asarray(a, dtype=jnp.float64) for a in (y, eta, theta))
        prec = self._precision(y, theta, data)
        return self._weighted(prec * (y - eta), data), self._weighted(-prec * jnp.ones_like(eta), data)

    def _check_rows(self, y, data, observed):
        self._require_finite(y, observed)
        if "scale" in data:
            self._require_positive(data["scale"], observed, "scale")
