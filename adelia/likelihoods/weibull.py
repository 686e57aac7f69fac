"""The Weibull families (R-INLA ``weibull`` and ``weibullsurv``).

λ_i = g⁻¹(η_i) (log link by default, or neglog), shape α = exp(0.1 θ) (R-INLA's internal
scale ``INLA_WEIBULL_ALPHA_SCALE`` = 0.1). R-INLA's ``variant``:

* 0 (default): h(t) = α λ t^(α−1); log f(y) = log λ + log α + (α−1) log y − λ y^α,
  log S(t) = −λ t^α;
* 1: h(t) = α λ (λ t)^(α−1); log f(y) = α log(λ y) + log α − log y − (λ y)^α,
  log S(t) = −(λ t)^α

(``loglikelihood_weibull``; ``weibullsurv`` adds censoring and truncation,
:mod:`adelia.likelihoods.surv`). θ: "alpha_intern for weibull(surv)", user scale "alpha
parameter for weibull(surv)", pc.alphaw(5), initial −2. R-INLA's cure-model betas of
``weibullsurv`` (fixed unless cure covariates are given) are not implemented. The cdf of
``weibull`` is 1 − S(y); ``weibullsurv`` has none.

Observation data: ``weibull``: ``weights``; ``weibullsurv``: ``event``, ``time2``,
``truncation``, ``weights``.

Example:
    >>> WeibullSurvLikelihood().hyperparameters[0].internal_name
    'alpha_intern for weibullsurv'
"""

from __future__ import annotations

import jax.numpy as jnp

from ._family import Family, HyperSpec
from .priors import WEIBULL_ALPHA_SCALE
from .surv import SURVIVAL_DATA, censored_log_likelihood, censored_pit_message, check_survival_rows


def _alpha(theta):
    return jnp.exp(WEIBULL_ALPHA_SCALE * theta)


def _spec(label: str) -> HyperSpec:
    return HyperSpec(
        key="alpha",
        theta_key="theta",
        internal_name=f"alpha_intern for {label}",
        name=f"alpha parameter for {label}",
        to_user=_alpha,
        prior="pc.alphaw",
        param=(5.0,),
        initial=-2.0,
    )


class _WeibullBase(Family):
    links = ("log", "neglog")
    variants = (0, 1)

    def _parts(self, eta, theta):
        log_alpha = WEIBULL_ALPHA_SCALE * theta[0]
        return self.link.log_mu(eta), log_alpha, jnp.exp(log_alpha)

    def _log_pdf(self, t, log_lam, log_alpha, alpha):
        log_t = jnp.log(t)
        if self.variant == 0:
            return log_lam + log_alpha + (alpha - 1.0) * log_t - jnp.exp(log_lam + alpha * log_t)
        z = log_lam + log_t  # log(λ t)
        return alpha * z + log_alpha - log_t - jnp.exp(alpha * z)

    def _log_sf(self, t, log_lam, alpha):
        log_t = jnp.log(t)
        if self.variant == 0:
            return -jnp.exp(log_lam + alpha * log_t)
        return -jnp.exp(alpha * (log_lam + log_t))


class WeibullLikelihood(_WeibullBase):
    family = "weibull"
    hyper_specs = (_spec("weibull"),)

    def _log_density(self, y, eta, theta, data):
        log_lam, log_alpha, alpha = self._parts(eta, theta)
        return self._log_pdf(jnp.where(y > 0, y, 1.0), log_lam, log_alpha, alpha)

    def _cdf(self, y, eta, theta, data):
        log_lam, _, alpha = self._parts(eta, theta)
        # F = 1 − S = −expm1(log S)
        return -jnp.expm1(self._log_sf(jnp.where(y > 0, y, 1.0), log_lam, alpha)) * (y > 0)

    def _check_rows(self, y, data, observed):
        self._require_positive(y, observed)


class WeibullSurvLikelihood(_WeibullBase):
    family = "weibullsurv"
    data_names = SURVIVAL_DATA
    hyper_specs = (_spec("weibullsurv"),)

    def _log_density(self, y, eta, theta, data):
        log_lam, log_alpha, alpha = self._parts(eta, theta)
        return censored_log_likelihood(
            y,
            data,
            log_pdf=lambda t: self._log_pdf(t, log_lam, log_alpha, alpha),
            log_sf=lambda t: self._log_sf(t, log_lam, alpha),
        )

    def _cdf(self, y, eta, theta, data):
        raise NotImplementedError(censored_pit_message(self.family))

    def _check_rows(self, y, data, observed):
        check_survival_rows(self, y, data, observed)
