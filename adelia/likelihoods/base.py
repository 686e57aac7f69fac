"""The likelihood interface (DESIGN.md §2): y_i | η_i, θ_lik ~ π(y_i | η_i, θ_lik).

A family evaluates the elementwise log-density log π(y_i | η_i, θ) in JAX with R-INLA's
parametrisation, link and normalising constants, so that the Laplace objective, the mlik and
CPO match R-INLA's. The first and second η-derivatives default to JAX AD of that log-density
(elementwise, via ``jax.grad`` inside ``vmap``); families may override them with closed forms.

Observation-level data other than y (R-INLA's E, Ntrials, scale, weights, censoring
indicators, ...) travels in an :class:`ObservationData` mapping of name -> array, one entry
per observation row, validated once on the host by :meth:`Likelihood.validate`.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..models.base import Hyperparameter

ObservationData = Mapping[str, jax.Array]


class Link(abc.ABC):
    """A link g with η = g(μ); ``inverse`` maps η to the family's mean parameter."""

    name: ClassVar[str]

    @abc.abstractmethod
    def inverse(self, eta: jax.Array) -> jax.Array: ...

    @abc.abstractmethod
    def __call__(self, mu: jax.Array) -> jax.Array: ...


class Likelihood(abc.ABC):
    """One observation family.

    Subclasses set ``family`` (R-INLA's name), ``links`` (names of valid links, the first is
    the default) and build ``hyperparameters`` (tuple of :class:`Hyperparameter`, R-INLA
    order; empty for poisson/binomial) and ``link`` in ``__init__``.
    """

    family: ClassVar[str]
    links: ClassVar[tuple[str, ...]]
    hyperparameters: tuple[Hyperparameter, ...]
    link: Link

    @property
    def n_theta(self) -> int:
        return len(self.hyperparameters)

    @property
    def quadratic_in_eta(self) -> bool:
        """Whether log π(y | η, θ) is a quadratic function of η (the Gaussian family with the
        identity link): the Laplace approximation is then exact and one Newton step from any
        x reaches the conditional mode."""
        return False

    @abc.abstractmethod
    def log_density(self, y: jax.Array, eta: jax.Array, theta: jax.Array, data: ObservationData) -> jax.Array:
        """log π(y_i | η_i, θ) for every i, shape (n,), full normalising constants."""

    def validate(self, y: np.ndarray, data: Mapping[str, np.ndarray]) -> None:
        """Raise :class:`adelia.errors.DataError` naming the family, the row and the value
        for any observed y (NaN = missing, skipped) outside the family's support."""

    def fitted(self, eta: jax.Array, theta: jax.Array, data: ObservationData) -> jax.Array:
        """R-INLA's fitted value for an η: the inverse link (``summary.fitted.values``)."""
        return self.link.inverse(eta)

    # --- η-derivatives (default: AD of the log-density) -----------------------------------
    def _elementwise(self, y, eta, theta, data):
        def one(yi, ei, di):
            return self.log_density(yi[None], ei[None], theta, {k: v[None] for k, v in di.items()})[0]

        return one

    def d_log_density(self, y, eta, theta, data) -> tuple[jax.Array, jax.Array]:
        """(∂/∂η, ∂²/∂η²) of log π(y_i | η_i, θ), each shape (n,)."""
        one = self._elementwise(y, eta, theta, data)
        g = jax.grad(one, argnums=1)
        h = jax.grad(g, argnums=1)
        data = dict(data)
        return jax.vmap(g)(y, eta, data), jax.vmap(h)(y, eta, data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(link={self.link.name}, theta={[h.internal_name for h in self.hyperparameters]})"
