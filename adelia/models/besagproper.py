"""Proper versions of the Besag model on a graph: ``besagproper`` and ``besagproper2`` (Leroux).

For x on the n nodes of a graph, with n_i the number of neighbours of node i and L = D − W the
graph Laplacian (L_ii = n_i, L_ij = −1 for neighbours):

* ``besagproper`` (R-INLA's ``Qfunc_besagproper``; doc ``besagproper.pdf``):

      x_i | x_-i ~ N( Σ_{j~i} x_j / (d + n_i), 1/(τ (d + n_i)) ),    Q = τ (L + d I),

  θ₁ = log τ ("Log precision for x" / "Precision for x"), loggamma(1, 5e-4), initial 2;
  θ₂ = log d ("Log diagonal for x" / "Diagonal for x"), loggamma(1, 1), initial 1.

* ``besagproper2`` (``Qfunc_besagproper2``; Leroux, Lei & Breslow 2000):

      Q = τ ((1 − λ) I + λ L),   0 < λ < 1,

  θ₁ = log τ, loggamma(1, 5e-4), initial 2; θ₂ = logit λ ("Logit lambda for x" /
  "Lambda for x"), gaussian(0, 0.45), initial 3.

Both are proper (rank deficiency 0) and ``constr=FALSE`` by default (``inla.models()``); L is
R-INLA's *unscaled* Laplacian (``scale.model`` is refused, as R-INLA's f() refuses it). A singleton
node has Q_ii = τ d (besagproper) or τ(1 − λ) (besagproper2).

Normalising constant: with μ_j the eigenvalues of L (computed once on the host),
½ log|Q| = ½ n log τ + ½ Σ_j log(μ_j + d) (besagproper) or ½ Σ_j log((1 − λ) + λ μ_j)
(besagproper2), a closed form in θ. Above :data:`EIGEN_MAX_NODES` nodes no eigenvalues are
computed and the compiler takes ½ log|Q| from a sparse Cholesky instead.

Example:
    >>> import numpy as np
    >>> m, idx, ids = BesagProper.from_term("region", np.array([1.0, 2.0, 3.0]),
    ...                                     {"graph": "3 1 1 2 2 1 1 3 0"})
    >>> np.asarray(m.precision_dense([0.0, 0.0])).tolist()
    [[2.0, -1.0, 0.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel, LinearConstraints
from .besag import graph_node_index
from .constraints import model_constraints, rinla_rankdef
from .graph import Graph, as_graph
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_probability
from .priors import LOG_NORMC_GAUSSIAN
from .registry import register_model

__all__ = ["BesagProper", "BesagProper2", "BESAGPROPER_HYPER", "BESAGPROPER2_HYPER", "EIGEN_MAX_NODES"]

#: Largest graph whose Laplacian eigenvalues are computed (dense, O(n³)) for the closed-form
#: normalising constant; larger graphs use the compiler's sparse log-determinant.
EIGEN_MAX_NODES = 4000

#: ``inla.models()$latent$besagproper$hyper``
BESAGPROPER_HYPER = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "loggamma", (1.0, 0.0005), 2.0),
    HyperSpec("theta2", "diag", "log diagonal", "Log diagonal for {label}", "Diagonal for {label}",
              "loggamma", (1.0, 1.0), 1.0),
)

#: ``inla.models()$latent$besagproper2$hyper``
BESAGPROPER2_HYPER = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "loggamma", (1.0, 0.0005), 2.0),
    HyperSpec("theta2", "lambda", "logit lambda", "Logit lambda for {label}", "Lambda for {label}",
              "gaussian", (0.0, 0.45), 3.0, False, to_probability),
)

#: f() arguments these models do not use (R-INLA's f() refuses them)
_REFUSED = ("cyclic", "scale_model", "Cmatrix", "nrow", "ncol", "nu", "season_length")


class _ProperBesag(LatentModel):
    """Shared machinery: Q(θ) = τ (a(θ) I + b(θ) L) on the Laplacian pattern of the graph."""

    hyper_specs: ClassVar[tuple[HyperSpec, ...]]
    default_constr: ClassVar[bool] = False

    def __init__(self, label: str, graph: Graph, hyperparameters, *, constraints: LinearConstraints | None = None,
                 rinla_rankdef_value: float = 0.0, diagonal: float = 0.0):
        self.label = label
        self.graph = graph
        self.n = graph.n
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)
        self.diagonal = float(diagonal)
        L = graph.laplacian.tocsc()
        pat = SparsePattern.from_scipy(L)
        # a node without neighbours still needs its diagonal entry
        pat = pat.union(SparsePattern.from_entries(self.n, np.arange(self.n), np.arange(self.n)))
        self._pattern = pat
        self._L_values = pat.values_from_scipy(L)
        self._I_values = np.zeros(pat.nnz)
        self._I_values[pat.diag_index] = 1.0
        self.laplacian_eigenvalues = None
        if self.n <= EIGEN_MAX_NODES:
            mu = np.linalg.eigvalsh(L.toarray())  # ascending
            # L has exactly one zero eigenvalue per connected component: make them exact zeros,
            # so that log(1 − λ) stays accurate as λ -> 1 (besagproper2)
            mu[: graph.n_components] = 0.0
            self.laplacian_eigenvalues = np.clip(mu, 0.0, None)

    @classmethod
    def from_term(cls, label, covariate, args: dict[str, Any]):
        where = f'f({label}, model="{cls.model_name}")'
        for key in _REFUSED:
            if args.get(key):
                raise ModelError(f"{where}: argument {key!r} is not used for model {cls.model_name!r}")
        graph = as_graph(args.get("graph"), name=f"graph of {where}")
        if args.get("n") is not None and int(args["n"]) != graph.n:
            raise ModelError(f"{where}: n = {args['n']} does not match the graph's {graph.n} nodes")
        constr = bool(args.get("constr", False))
        cons = model_constraints(graph.n, constr, args.get("extraconstr"), label)
        n_extra = 0 if cons is None else cons.k - (1 if constr else 0)
        rd = rinla_rankdef(0, constr, n_extra, args.get("rankdef"))
        hyper = build_hyperparameters(cls.hyper_specs, label, args.get("hyper"), **obsolete_hyper_args(args), where=where)
        index, ids = graph_node_index(covariate, graph.n, args.get("values"), where=where)
        model = cls(label, graph, hyper, constraints=cons, rinla_rankdef_value=rd,
                    diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    # -- the two weights of Q = τ (a I + b L) ---------------------------------------------------
    def _weights(self, theta):  # pragma: no cover - abstract
        raise NotImplementedError

    def pattern(self) -> SparsePattern:
        return self._pattern

    def precision_values(self, theta: jax.Array) -> jax.Array:
        theta = jnp.asarray(theta, dtype=jnp.float64)
        a, b = self._weights(theta)
        tau = jnp.exp(theta[0])
        return tau * (a * jnp.asarray(self._I_values) + b * jnp.asarray(self._L_values)) \
            + self.diagonal * jnp.asarray(self._I_values)

    def log_normaliser(self, theta: jax.Array) -> jax.Array | None:
        """½ log|Q| − ½ n log 2π = ½ n θ₁ + ½ Σ_j log(a + b μ_j) − ½ n log 2π (μ_j: eigenvalues
        of L); None for graphs above :data:`EIGEN_MAX_NODES` nodes."""
        if self.laplacian_eigenvalues is None:
            return None
        theta = jnp.asarray(theta, dtype=jnp.float64)
        a, b = self._weights(theta)
        mu = jnp.asarray(self.laplacian_eigenvalues)
        return 0.5 * self.n * theta[0] + 0.5 * jnp.sum(jnp.log(a + b * mu)) + self.n * LOG_NORMC_GAUSSIAN

    def constraints(self) -> LinearConstraints | None:
        return self._constraints


@register_model("besagproper")
class BesagProper(_ProperBesag):
    """``f(x, model="besagproper", graph=g)``: Q = τ (L + d I), θ = (log τ, log d)."""

    model_name = "besagproper"
    hyper_specs = BESAGPROPER_HYPER

    def _weights(self, theta):
        return jnp.exp(theta[1]), 1.0


@register_model("besagproper2")
class BesagProper2(_ProperBesag):
    """``f(x, model="besagproper2", graph=g)``: Q = τ ((1 − λ) I + λ L), θ = (log τ, logit λ)."""

    model_name = "besagproper2"
    hyper_specs = BESAGPROPER2_HYPER

    def _weights(self, theta):
        # 1 − λ = logistic(−θ₂) without cancellation for large θ₂
        return jax.nn.sigmoid(-theta[1]), jax.nn.sigmoid(theta[1])
