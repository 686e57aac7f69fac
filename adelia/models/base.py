"""The latent-model interface: one f() component of the latent field (DESIGN.md §1, §2).

A latent model is x_k | θ_k ~ N(0, Q_k(θ_k)⁻¹), possibly intrinsic (rank deficient),
possibly under linear constraints C_k x_k = e_k, with hyperparameters θ_k on R-INLA's
internal scale. The sparsity pattern of Q_k is static host data; its values are a pure
jit-able function of θ_k.

Three small interfaces live here:

* :class:`Prior` — a log-density on the internal scale, Jacobian included, as R-INLA
  evaluates it.
* :class:`Hyperparameter` — name (internal and user scale), prior, initial value, fixed.
* :class:`LatentModel` — pattern, precision values, normalising constant, constraints.

and one record, :class:`Component`: a latent model bound to the rows of the data (which
node each row's linear predictor picks up, with which weight).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.pattern import SparsePattern


class Prior(abc.ABC):
    """A prior density for one hyperparameter, on R-INLA's internal scale.

    ``log_density(theta)`` is log π(θ) for the *internal* θ (e.g. θ = log τ), Jacobian of
    the user-to-internal transformation included, normalised as R-INLA normalises it.
    """

    name: ClassVar[str]
    param: tuple[float, ...]

    @abc.abstractmethod
    def log_density(self, theta: jax.Array) -> jax.Array: ...

    @classmethod
    def from_param(cls, param, **context) -> "Prior":
        """Build from R-INLA's ``param`` vector (and model context where needed)."""
        return cls(*([] if param is None else list(np.atleast_1d(param))), **context)

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{p:g}' for p in self.param)})"


@dataclass(frozen=True)
class Hyperparameter:
    """One hyperparameter θ_j.

    Attributes:
        key: R-INLA's key in ``hyper=list(<key>=list(...))`` ("prec", "rho", "phi", "theta1").
        internal_name: the row name in ``internal_summary_hyperpar`` ("Log precision for plate").
        name: the row name in ``summary_hyperpar`` ("Precision for plate").
        to_user: internal -> user scale (jnp-traceable, monotone), e.g. ``jnp.exp``.
        prior: the prior on the internal scale.
        initial: R-INLA's initial value (internal scale).
        fixed: held at ``initial`` (not estimated, not reported in the summaries).
    """

    key: str
    internal_name: str
    name: str
    to_user: Callable[[jax.Array], jax.Array]
    prior: Prior
    initial: float
    fixed: bool = False


@dataclass(frozen=True)
class LinearConstraints:
    """Hard linear constraints C x = e on one component (k constraints on n nodes)."""

    C: np.ndarray  # (k, n)
    e: np.ndarray  # (k,)

    def __post_init__(self):
        C = np.atleast_2d(np.asarray(self.C, dtype=float))
        e = np.atleast_1d(np.asarray(self.e, dtype=float))
        if e.shape != (C.shape[0],):
            raise ValueError(f"constraints: C has {C.shape[0]} rows but e has shape {e.shape}")
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "e", e)

    @property
    def k(self) -> int:
        return self.C.shape[0]

    @staticmethod
    def stack(parts: list["LinearConstraints"]) -> "LinearConstraints | None":
        parts = [p for p in parts if p is not None and p.k > 0]
        if not parts:
            return None
        return LinearConstraints(np.vstack([p.C for p in parts]), np.concatenate([p.e for p in parts]))


class LatentModel(abc.ABC):
    """One latent component x_k (size n) with precision Q_k(θ_k).

    Subclasses set ``model_name`` (R-INLA's name, e.g. "iid"), and in ``__init__`` the
    attributes ``label`` (the term's name in R-INLA output, e.g. "plate"), ``n``,
    ``hyperparameters`` (tuple of :class:`Hyperparameter`, in R-INLA's order) and
    ``rank_deficiency`` (dimension of the null space of Q_k; 0 for proper models).
    """

    model_name: ClassVar[str]
    label: str
    n: int
    hyperparameters: tuple[Hyperparameter, ...]
    rank_deficiency: int = 0

    @property
    def n_theta(self) -> int:
        return len(self.hyperparameters)

    @abc.abstractmethod
    def pattern(self) -> SparsePattern:
        """Static lower-triangular pattern of Q_k (local node indices 0..n-1)."""

    @abc.abstractmethod
    def precision_values(self, theta: jax.Array) -> jax.Array:
        """Values of Q_k(θ_k) on :meth:`pattern`, shape (nnz,); θ_k has shape (n_theta,)."""

    def log_normaliser(self, theta: jax.Array) -> jax.Array | None:
        """½ log|Q_k(θ)|* − ½ (n − r) log 2π, with |·|* the generalised determinant
        (product of non-zero eigenvalues) in R-INLA's convention, when it has a closed
        form (or a precomputed constant plus a closed-form θ part). ``None`` means: no closed
        form; the compiler computes ½ log|Q_k(θ)| with a solver (proper models only)."""
        return None

    def constraints(self) -> LinearConstraints | None:
        """Hard linear constraints on this component (R-INLA's ``constr``/``extraconstr``)."""
        return None

    #: θ-free part of :meth:`log_normaliser`: ½ log|R|* of the structure matrix for models
    #: Q = τ R (0 when the model has no such split). Kept apart so that the marginal
    #: likelihood can follow R-INLA's convention for intrinsic models exactly.
    structure_log_det_constant: float = 0.0

    @classmethod
    def from_term(cls, label: str, covariate: "np.ndarray | None", args: dict[str, Any]) -> "tuple[LatentModel, np.ndarray, np.ndarray]":
        """Build the model for ``f(covariate, model=<name>, **args)``.

        Args:
            label: the term's output name (the covariate's name).
            covariate: the f() covariate column (effects-level rows), float with NaN for NA,
                or None for f() terms without one.
            args: the f() keyword arguments in Python spelling (``hyper``, ``constr``,
                ``scale_model``, ``graph``, ``values``, ``n``, ...) with names already resolved;
                ``group``/``replicate``/``control_group``/``copy``/weights are handled by the
                caller, not here.

        Returns:
            (model, index, ids): index = 0-based node per row (-1 where the covariate is NA),
            ids = R-INLA's ``values`` (the ``ID`` column of ``summary_random``).
        """
        raise NotImplementedError(f"model {cls.model_name!r} cannot be built from an f() term")

    # --- helpers -------------------------------------------------------------------------
    def precision_dense(self, theta) -> jax.Array:
        """Q_k(θ) as a dense matrix (tests, small models)."""
        return self.pattern().to_dense_jax(self.precision_values(jnp.asarray(theta, dtype=jnp.float64)))

    def initial_theta(self) -> np.ndarray:
        return np.array([h.initial for h in self.hyperparameters], dtype=float)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r}, n={self.n}, theta={[h.internal_name for h in self.hyperparameters]})"


@dataclass
class Component:
    """A latent model bound to the data: row i of the (effects-level) data adds
    ``weights[i] * x_k[index[i]]`` to the linear predictor; ``index[i] = -1`` means the row
    does not use this component (NA in the f() covariate).

    Attributes:
        model: the latent model.
        index: int array (n_rows,), 0-based node per row, -1 for none.
        weights: float array (n_rows,), the f() weights (1 when not given).
        ids: the ``ID`` column of ``summary_random[label]`` (R-INLA's ``values``), length model.n.
        extra: per-model information for the results layer (e.g. bym2's split into total and
            structured parts).
    """

    model: LatentModel
    index: np.ndarray
    weights: np.ndarray
    ids: np.ndarray
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.model.label
