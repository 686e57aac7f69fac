"""Zero-inflated Poisson, negative binomial and binomial families (R-INLA
``zeroinflatedpoisson0``, ``zeroinflatedpoisson1``, ``zeroinflatednbinomial0``,
``zeroinflatednbinomial1``, ``zeroinflatedbinomial0``, ``zeroinflatedbinomial1``).

μ_i = E_i exp(η_i); p = expit(θ_p) is the zero probability:

* type 0 (hurdle): P(y = 0) = p, P(y) = (1 − p) f(y) / (1 − f(0)) for y > 0;
* type 1 (mixture): P(y) = p·1[y = 0] + (1 − p) f(y);

with f Poisson(μ) or NegBinomial(size = exp(θ_size), mean μ) (``loglikelihood_zeroinflated_*``;
R-INLA switches to the Poisson limit when μ/size < 10⁻⁴ — adelia keeps the exact negative
binomial, which differs from it by O(μ/size)). The cdf is p + (1 − p) F(y) (type 1) and
p + (1 − p)(F(y) − f(0))/(1 − f(0)) (type 0).

Hyperparameters (R-INLA order): the negative binomial size first ("log size for
nbinomial_1 zero-inflated observations", pc.mgamma(7), initial log 10), then the zero
probability ("intern zero-probability parameter for zero-inflated poisson_1",
gaussian(−1, 0.2), initial −1). The fitted value is exp(η).

Observation data: ``E`` (default 1), ``weights``.

The binomial versions (``loglikelihood_zeroinflated_binomial0/1``) take f = Binomial(n, π),
π = g⁻¹(η) with a probability link (logit default; probit, cloglog, loglog, cauchit),
n = ``Ntrials`` (default 1); θ: "intern zero-probability parameter for zero-inflated
binomial_0/1" with the same gaussian(−1, 0.2) prior and initial −1 (R-INLA's ``theta``,
key ``prob``). Their fitted value is π. Observation data: ``Ntrials``, ``weights``.

Example:
    >>> ZeroInflatedPoisson1Likelihood().hyperparameters[0].name
    'zero-probability parameter for zero-inflated poisson_1'
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import expit, gammaincc, gammaln

from ._family import Family, HyperSpec
from .binomial import PROBABILITY_LINKS, binomial_cdf, check_binomial_rows, log_choose
from .links import log1mexp
from .nbinomial import nbinomial_cdf, nbinomial_log_pmf, nbinomial_size_spec


def _zero_prob_spec(label: str, theta_key: str) -> HyperSpec:
    return HyperSpec(
        key="prob",
        theta_key=theta_key,
        internal_name=f"intern zero-probability parameter for zero-inflated {label}",
        name=f"zero-probability parameter for zero-inflated {label}",
        to_user=expit,
        prior="gaussian",
        param=(-1.0, 0.2),
        initial=-1.0,
    )


class _ZeroInflated(Family):
    """y = 0 / y > 0 mixture of a point mass and a count density f (type 0 or 1)."""

    links = ("log",)
    data_names = ("E",)
    zi_type: int

    def _count(self, y, log_mu, theta):
        """(log f(y), log f(0)) of the count part."""
        raise NotImplementedError

    def _count_cdf(self, y, log_mu, theta):
        """P(Y ≤ y) of the count part."""
        raise NotImplementedError

    def _logit_p(self, theta):
        return theta[-1]

    def _cdf(self, y, eta, theta, data):
        # type 1: p + (1 − p) F(y); type 0: p + (1 − p) (F(y) − f(0))/(1 − f(0)) (F(0) = f(0))
        log_mu = jnp.log(self._get(data, "E", y, 1.0)) + eta
        p = expit(self._logit_p(theta))
        F = self._count_cdf(y, log_mu, theta)
        if self.zi_type == 1:
            return p + (1.0 - p) * F
        _, log_f0 = self._count(y, log_mu, theta)
        return p + (1.0 - p) * jnp.maximum(F - jnp.exp(log_f0), 0.0) / -jnp.expm1(log_f0)

    def _log_density(self, y, eta, theta, data):
        log_mu = jnp.log(self._get(data, "E", y, 1.0)) + eta
        t = self._logit_p(theta)
        log_p, log_1mp = -jax.nn.softplus(-t), -jax.nn.softplus(t)
        log_f, log_f0 = self._count(y, log_mu, theta)
        if self.zi_type == 0:
            positive = log_1mp + log_f - log1mexp(-log_f0)
            return jnp.where(y > 0, positive, log_p * jnp.ones_like(y))
        return jnp.where(y > 0, log_1mp + log_f, jnp.logaddexp(log_p, log_1mp + log_f0))

    def _check_rows(self, y, data, observed):
        self._require_counts(y, observed)
        if "E" in data:
            self._require_positive(data["E"], observed, "E")


class _ZIPoisson(_ZeroInflated):
    def _count(self, y, log_mu, theta):
        mu = jnp.exp(log_mu)
        return y * log_mu - mu - gammaln(y + 1.0), -mu


    def _count_cdf(self, y, log_mu, theta):
        return gammaincc(y + 1.0, jnp.exp(log_mu))


class _ZINBinomial(_ZeroInflated):
    def _count(self, y, log_mu, theta):
        log_size = theta[0] * jnp.ones_like(y)
        return nbinomial_log_pmf(y, log_size, log_mu), nbinomial_log_pmf(jnp.zeros_like(y), log_size, log_mu)

    def _count_cdf(self, y, log_mu, theta):
        return nbinomial_cdf(y, theta[0] * jnp.ones_like(y), log_mu)


class ZeroInflatedPoisson0Likelihood(_ZIPoisson):
    family = "zeroinflatedpoisson0"
    zi_type = 0
    hyper_specs = (_zero_prob_spec("poisson_0", "theta"),)


class ZeroInflatedPoisson1Likelihood(_ZIPoisson):
    family = "zeroinflatedpoisson1"
    zi_type = 1
    hyper_specs = (_zero_prob_spec("poisson_1", "theta"),)


class ZeroInflatedNBinomial0Likelihood(_ZINBinomial):
    family = "zeroinflatednbinomial0"
    zi_type = 0
    hyper_specs = (
        nbinomial_size_spec(
            "log size for nbinomial_0 zero-inflated observations", "size for nbinomial_0 zero-inflated observations", "theta1"
        ),
        _zero_prob_spec("nbinomial_0", "theta2"),
    )


class ZeroInflatedNBinomial1Likelihood(_ZINBinomial):
    family = "zeroinflatednbinomial1"
    zi_type = 1
    hyper_specs = (
        nbinomial_size_spec(
            "log size for nbinomial_1 zero-inflated observations", "size for nbinomial_1 zero-inflated observations", "theta1"
        ),
        _zero_prob_spec("nbinomial_1", "theta2"),
    )


class _ZIBinomial(Family):
    """Zero-inflated Binomial(n, π): type 1 mixes a point mass at 0 with the binomial, type 0
    (hurdle) uses the zero-truncated binomial for y > 0."""

    links = PROBABILITY_LINKS
    data_names = ("Ntrials",)
    zi_type: int

    def _parts(self, y, eta, theta, data):
        n = self._get(data, "Ntrials", y, 1.0)
        t = theta[0]
        log_p, log_1mp = -jax.nn.softplus(-t), -jax.nn.softplus(t)
        log_pi, log_1mpi = self.link.log_p(eta), self.link.log_1mp(eta)
        # 0·log π is 0 even where log π = −∞ (y = 0, or y = n)
        log_binom = (
            log_choose(n, y)
            + jnp.where(y > 0, y * log_pi, 0.0)
            + jnp.where(n - y > 0, (n - y) * log_1mpi, 0.0)
        )
        return n, log_p, log_1mp, log_1mpi, log_binom

    def _log_density(self, y, eta, theta, data):
        n, log_p, log_1mp, log_1mpi, log_binom = self._parts(y, eta, theta, data)
        if self.zi_type == 1:
            # P(0) = p + (1 − p)(1 − π)^n, P(y) = (1 − p) f(y)
            return jnp.where(y > 0, log_1mp + log_binom, jnp.logaddexp(log_p, log_1mp + log_binom))
        # hurdle: P(0) = p, P(y) = (1 − p) f(y) / (1 − (1 − π)^n); 1 − f(0) = 1 − exp(n log(1 − π))
        log_f0 = jnp.where(y > 0, n * log_1mpi, -1.0)
        positive = log_1mp + log_binom - log1mexp(-log_f0)
        return jnp.where(y > 0, positive, log_p * jnp.ones_like(y))

    def _cdf(self, y, eta, theta, data):
        n = self._get(data, "Ntrials", y, 1.0)
        p = expit(theta[0])
        log_1mpi = self.link.log_1mp(eta)
        F = binomial_cdf(y, n, log_1mpi)
        if self.zi_type == 1:
            return p + (1.0 - p) * F
        f0 = jnp.exp(n * log_1mpi)
        truncated = jnp.maximum(F - f0, 0.0) / jnp.where(f0 < 1.0, -jnp.expm1(n * log_1mpi), 1.0)
        return jnp.where(y > 0, p + (1.0 - p) * truncated, p)

    def _check_rows(self, y, data, observed):
        check_binomial_rows(self, y, data, observed)


class ZeroInflatedBinomial0Likelihood(_ZIBinomial):
    family = "zeroinflatedbinomial0"
    zi_type = 0
    hyper_specs = (_zero_prob_spec("binomial_0", "theta"),)


class ZeroInflatedBinomial1Likelihood(_ZIBinomial):
    family = "zeroinflatedbinomial1"
    zi_type = 1
    hyper_specs = (_zero_prob_spec("binomial_1", "theta"),)
