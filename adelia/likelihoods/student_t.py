"""The Student-t family (R-INLA ``t``).

(y_i − μ_i) √(τ s_i) is a Student-t with ν degrees of freedom scaled to unit variance,
μ_i = η_i, τ = exp(θ₁), ν = 2 + exp(θ₂), s = ``scale``. With f = √(τ s ν/(ν − 2)):

    log π(y_i | η_i, θ) = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(πν) + log f
                          − (ν+1)/2 · log(1 + f²(y − μ)²/ν)

(``loglikelihood_t``). θ₁: "log precision for the student-t observations",
loggamma(1, 5e-5), initial 0; θ₂: "dof_intern for student-t", pc.dof(15, 0.5), initial 5.
The cdf is F_ν((y − μ) f), F_ν the t_ν cdf.

Observation data: ``scale`` (default 1), ``weights``.

Example:
    >>> [h.name for h in StudentTLikelihood().hyperparameters]
    ['precision for the student-t observations', 'degrees of freedom for student-t']
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import betainc, gammaln

from ._family import Family, HyperSpec


def _dof(theta):
    return 2.0 + jnp.exp(theta)


def student_t_cdf(x, nu):
    """P(T ≤ x) for T ~ t_ν: 1 − ½ I_{ν/(ν+x²)}(ν/2, ½) for x ≥ 0, by symmetry for x < 0."""
    tail = 0.5 * betainc(0.5 * nu, 0.5, nu / (nu + x**2))
    return jnp.where(x >= 0, 1.0 - tail, tail)


class StudentTLikelihood(Family):
    family = "t"
    links = ("identity",)
    data_names = ("scale",)
    hyper_specs = (
        HyperSpec(
            key="prec",
            theta_key="theta1",
            internal_name="log precision for the student-t observations",
            name="precision for the student-t observations",
            to_user=jnp.exp,
            prior="loggamma",
            param=(1.0, 5e-5),
            initial=0.0,
        ),
        HyperSpec(
            key="dof",
            theta_key="theta2",
            internal_name="dof_intern for student-t",
            name="degrees of freedom for student-t",
            to_user=_dof,
            prior="pc.dof",
            param=(15.0, 0.5),
            initial=5.0,
        ),
    )

    def _log_factor(self, y, theta, data):
        """log f = ½ log(τ s ν/(ν − 2)): (y − μ) f is t_ν distributed."""
        prec = jnp.exp(theta[0]) * self._get(data, "scale", y, 1.0)
        nu = _dof(theta[1])
        return 0.5 * (jnp.log(nu) - jnp.log(nu - 2.0) + jnp.log(prec))

    def _cdf(self, y, eta, theta, data):
        return student_t_cdf((y - self.link.inverse(eta)) * jnp.exp(self._log_factor(y, theta, data)), _dof(theta[1]))

    def _log_density(self, y, eta, theta, data):
        nu = _dof(theta[1])
        log_fac = self._log_factor(y, theta, data)
        z2 = (y - self.link.inverse(eta)) ** 2 * jnp.exp(2.0 * log_fac)
        return (
            gammaln(0.5 * (nu + 1.0))
            - gammaln(0.5 * nu)
            - 0.5 * jnp.log(jnp.pi * nu)
            + log_fac
            - 0.5 * (nu + 1.0) * jnp.log1p(z2 / nu)
        )

    def _check_rows(self, y, data, observed):
        self._require_finite(y, observed)
        if "scale" in data:
            self._require_positive(data["scale"], observed, "scale")
