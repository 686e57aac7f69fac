"""adelia.models: R-INLA's latent models (registered by name for ``f(..., model="<name>")``)
and :func:`custom`, a latent model of your own written in JAX."""

from .custom import custom as custom
