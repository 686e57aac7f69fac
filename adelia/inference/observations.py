"""The observation side of the model: responses, families, offsets (DESIGN.md §2).

Observation row i has a response y_i (NaN = missing, i.e. "predict here": no likelihood
term), a family (one of several for multi-likelihood models), an offset, and family data
(E, Ntrials, scale, weights, censoring). Everything is host data fixed at compile time;
:meth:`ObservationModel.log_likelihood` and :meth:`derivatives` are jit-able in (η, θ).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..likelihoods.base import Likelihood


@dataclass(eq=False)
class FamilyBlock:
    """The observed rows of one family: ``rows`` (indices into the n_obs observations),
    their responses and family data, and the family's θ indices in the full θ vector."""

    likelihood: Likelihood
    rows: np.ndarray
    y: np.ndarray
    data: dict[str, np.ndarray]
    theta_index: np.ndarray

    def theta(self, theta_full: jax.Array) -> jax.Array:
        if self.theta_index.size == 0:
            return jnp.zeros((0,))
        return theta_full[jnp.asarray(self.theta_index)]

    def jdata(self) -> dict[str, jax.Array]:
        return {k: jnp.asarray(v) for k, v in self.data.items()}


@dataclass(eq=False)
class ObservationModel:
    """All observations: ``families`` partition the *observed* rows; missing rows are in none.

    Attributes:
        n_obs: number of observation rows (= rows of A).
        offset: shape (n_obs,).
        families: one :class:`FamilyBlock` per likelihood, in R-INLA order.
        family_of: shape (n_obs,), the family index of each row (also for missing rows: the
            family a prediction at that row would use), for fitted values.
        data_all: per family, the family data on *all* n_obs rows (for fitted values/CPO).
    """

    n_obs: int
    offset: np.ndarray
    families: tuple[FamilyBlock, ...]
    family_of: np.ndarray
    observed: np.ndarray  # bool (n_obs,)

    @property
    def quadratic(self) -> bool:
        """Whether the log-likelihood is quadratic in η (Gaussian identity-link families only):
        π(x | y, θ) is then Gaussian and one Newton step from any x is its mode."""
        return all(fb.likelihood.quadratic_in_eta for fb in self.families)

    def log_likelihood(self, eta: jax.Array, theta_full: jax.Array) -> jax.Array:
        """Σ_i log π(y_i | η_i, θ) over observed rows (η includes the offset)."""
        total = jnp.asarray(0.0)
        for fb in self.families:
            e = eta[jnp.asarray(fb.rows)]
            total = total + jnp.sum(fb.likelihood.log_density(jnp.asarray(fb.y), e, fb.theta(theta_full), fb.jdata()))
        return total

    def pointwise_log_likelihood(self, eta: jax.Array, theta_full: jax.Array) -> jax.Array:
        """log π(y_i | η_i, θ) per row, shape (n_obs,), 0 on missing rows."""
        out = jnp.zeros(self.n_obs)
        for fb in self.families:
            e = eta[jnp.asarray(fb.rows)]
            ll = fb.likelihood.log_density(jnp.asarray(fb.y), e, fb.theta(theta_full), fb.jdata())
            out = out.at[jnp.asarray(fb.rows)].set(ll)
        return out

    def derivatives(self, eta: jax.Array, theta_full: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(∂/∂η, ∂²/∂η²) of the log-likelihood per row, shape (n_obs,) each, 0 on missing rows."""
        d1 = jnp.zeros(self.n_obs)
        d2 = jnp.zeros(self.n_obs)
        for fb in self.families:
            rows = jnp.asarray(fb.rows)
            g, h = fb.likelihood.d_log_density(jnp.asarray(fb.y), eta[rows], fb.theta(theta_full), fb.jdata())
            d1 = d1.at[rows].set(g)
            d2 = d2.at[rows].set(h)
        return d1, d2
