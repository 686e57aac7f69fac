"""NumPyro models with R-INLA's exact priors, the long-MCMC oracle of test_against_nuts.py.

Each model writes down the posterior that R-INLA (and so adelia) targets, term by term:

* fixed effects: R-INLA's ``control.fixed`` defaults, intercept flat (precision 0) and the
  other coefficients N(0, precision 0.001). A flat prior cannot be sampled by NUTS as a
  proper density only if the posterior is improper; it is not here, but we give the
  intercept N(0, 1000²) anyway, whose log-density varies by < 1e-6 over the posterior's
  range (|β₀| < 10): the difference from flat is far below Monte Carlo error.
* precisions: loggamma(1, 5e-5) on θ = log τ, i.e. τ ~ Gamma(shape 1, rate 5e-5); sampled
  on the log scale (NumPyro's positive-support transform adds the Jacobian τ).
* iid: x = u / √τ with u ~ N(0, I) (non-centred: removes the funnel of x against log τ).
* rw2 with constr=TRUE (R-INLA defaults, ``diagonal`` 1e-4): what R-INLA's Gaussian
  approximation integrates is, on the constraint set 1ᵀx = 0,

      log π(x | τ) = ½(n − 2) log τ − ½ xᵀ(τ R + d I) x + const,

  with R the rw2 structure, d = 1e-4 added to Q's diagonal (not scaled by τ), and the rank
  deficiency 2 of the model in the normalising constant (``inla.c``'s ``extra()`` term;
  adelia.models.generic.StructureModel.rinla_log_normaliser). Write x = V z with V (n, n−1)
  an orthonormal basis of {1ᵀx = 0} whose last column is the centred linear trend (the one
  direction of null(R) the constraint does not remove) and the others eigenvectors of VᵀRV
  with eigenvalues λ_k > 0. Then Vᵀ(τR + dI)V is diagonal: z_k ~ N(0, 1/(τλ_k + d)) and the
  trend coefficient ~ N(0, 1/d) (sd 100: the "very wide normal" that d makes of the flat
  trend direction, exactly as R-INLA). The density of z is N(0, diag(τλ + d)⁻¹) times the
  correction exp(½(n−2) log τ − ½ Σ_k log(τλ_k + d)) to R-INLA's normaliser, which is ~0
  for d ≪ τλ_k but is kept so both methods target the same density. Non-centred:
  z_k = w_k / √(τλ_k + d), w ~ N(0, I).

References: Rue, Martino & Chopin (2009), JRSS-B 71(2), §2; Rue & Held (2005), §3.4
(intrinsic GMRFs and their constrained densities).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

# R-INLA's default priors, shared with the quadrature oracle (which must import without NumPyro)
from seeds_quadrature import INTERCEPT_SD, PREC_RATE, PREC_SHAPE, SLOPE_SD  # noqa: E402,F401
#: R-INLA's f(..., diagonal=) default when constr=TRUE (inla.set.f.default()$diagonal).
RW_DIAGONAL = 1.0e-4


def seeds_model(x1, x2, plate, n_trials, r=None, n_plates=None):
    """r ~ x1 + x2 + f(plate, model="iid"), family binomial, Ntrials n, R-INLA's defaults.

    ``plate`` is 0-based. Sites: ``(Intercept)``, ``x1``, ``x2``, ``tau`` (plate precision),
    ``u`` (standardised effects), deterministic ``plate_effect`` = u / √τ."""
    n_plates = int(np.max(plate)) + 1 if n_plates is None else n_plates
    b0 = numpyro.sample("(Intercept)", dist.Normal(0.0, INTERCEPT_SD))
    b1 = numpyro.sample("x1", dist.Normal(0.0, SLOPE_SD))
    b2 = numpyro.sample("x2", dist.Normal(0.0, SLOPE_SD))
    tau = numpyro.sample("tau", dist.Gamma(PREC_SHAPE, PREC_RATE))
    u = numpyro.sample("u", dist.Normal(0.0, 1.0).expand([n_plates]).to_event(1))
    effect = numpyro.deterministic("plate_effect", u / jnp.sqrt(tau))
    eta = b0 + b1 * x1 + b2 * x2 + effect[plate]
    numpyro.sample("r", dist.Binomial(total_count=n_trials, logits=eta), obs=r)


def rw2_structure(n: int) -> np.ndarray:
    """R = D₂ᵀD₂ of the rw2 on unit-spaced locations 1..n (R-INLA's rw2 on integers)."""
    D = np.diff(np.eye(n), n=2, axis=0)
    return D.T @ D


def constrained_rw2_basis(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(V, λ, trend): V (n, n−2) orthonormal, spanning {1ᵀx = 0} ∩ trend⊥, with VᵀRV = diag(λ),
    λ > 0; ``trend`` the unit centred linear trend (R·trend = 0, 1ᵀtrend = 0)."""
    R = rw2_structure(n)
    t = np.arange(1.0, n + 1.0)
    ones = np.ones(n) / np.sqrt(n)
    trend = (t - t.mean()) / np.linalg.norm(t - t.mean())
    # an orthonormal basis of the complement of span{1, trend}, then diagonalise R on it
    N = np.column_stack([ones, trend])
    full, _ = np.linalg.qr(np.column_stack([N, np.eye(n)]))
    W = full[:, 2:n]
    lam, U = np.linalg.eigh(W.T @ R @ W)
    V = W @ U
    if np.min(lam) <= 0:
        raise AssertionError("rw2 basis: R is not positive definite off its null space")
    return V, lam, trend


def poisson_rw2_model(y=None, n=50):
    """y ~ 1 + f(t, model="rw2"), family poisson, R-INLA's defaults (constr=TRUE, diagonal
    1e-4, scale.model=FALSE, loggamma(1, 5e-5) on the precision) — see the module doc.

    Sites: ``(Intercept)``, ``tau``, ``w`` (standardised rw2 coordinates), ``trend_coef``,
    deterministic ``rw2`` (the n nodes, Σ = 0)."""
    V, lam, trend = constrained_rw2_basis(n)
    V, lam, trend = jnp.asarray(V), jnp.asarray(lam), jnp.asarray(trend)
    b0 = numpyro.sample("(Intercept)", dist.Normal(0.0, INTERCEPT_SD))
    tau = numpyro.sample("tau", dist.Gamma(PREC_SHAPE, PREC_RATE))
    prec = tau * lam + RW_DIAGONAL
    w = numpyro.sample("w", dist.Normal(0.0, 1.0).expand([n - 2]).to_event(1))
    c = numpyro.sample("trend_coef", dist.Normal(0.0, 1.0 / np.sqrt(RW_DIAGONAL)))
    # R-INLA's normaliser ½(n−2) log τ in place of the exact ½ Σ log(τλ_k + d) of N(0, ·)
    numpyro.factor("rinla_normaliser", 0.5 * (n - 2) * jnp.log(tau) - 0.5 * jnp.sum(jnp.log(prec)))
    x = numpyro.deterministic("rw2", V @ (w / jnp.sqrt(prec)) + c * trend)
    numpyro.sample("y", dist.Poisson(jnp.exp(b0 + x)), obs=y)


def run_nuts(model, *, num_warmup, num_samples, num_chains, seed, target_accept=0.9, **data):
    """Run ``num_chains`` NUTS chains (vectorised) and return the MCMC object."""
    from numpyro.infer import MCMC, NUTS

    kernel = NUTS(model, target_accept_prob=target_accept)
    mcmc = MCMC(kernel, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                chain_method="vectorized", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(seed), **data)
    return mcmc
