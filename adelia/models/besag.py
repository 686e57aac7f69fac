"""The besag (intrinsic CAR) model on a graph, with R-INLA's handling of components and islands.

Besag, York & Mollié (1991); Rue & Held (2005), §3.3.2. For x on the n nodes of a graph,

    x_i | x_-i ~ N( mean of x over the neighbours of i, 1/(n_i τ) ),    Q = τ R,
    R = D - W   (the graph Laplacian: R_ii = n_i neighbours, R_ij = -1 for neighbours).

θ = log τ, prior loggamma(1, 5e-5), initial 4 (``inla.models()$latent$besag``).

R-INLA's conventions (``rinla/R/f.R``, ``r-inla.org/doc/latent/besag-details.tex``,
``Qfunc_besag`` in ``inlaprog/src``), with cc.n1 = number of isolated nodes (singletons) and
cc.n2 = number of connected components of size >= 2:

* ``scale_model=False`` (default): R is the Laplacian; a singleton has R_ii = 0 (a flat prior).
  Null space: one constant vector per component, singletons included: rank deficiency
  cc.n2 + cc.n1.
* ``scale_model=True``: each component of size >= 2 is multiplied by the geometric mean of the
  marginal variances of its generalised inverse (Sørbye & Rue 2014), so that those variances have
  geometric mean 1 on every component; a singleton gets R_ii = 1 (x_i ~ N(0, 1/τ)). Rank
  deficiency cc.n2.
* ``constr=True`` (default) with ``adjust_for_con_comp=True`` (default): one sum-to-zero
  constraint per component of size >= 2 (for a connected graph: the usual 1ᵀx = 0); singletons
  are not constrained. With ``adjust_for_con_comp=False``: a single sum-to-zero constraint over
  the whole graph. ``extraconstr`` rows come after these.
* R-INLA's ``rankdef`` (the rank deficiency in the normalising constant) is the rank deficiency
  above plus the number of ``extraconstr`` rows, unless the user gives ``rankdef``.

``scale_model=True`` with ``adjust_for_con_comp=False`` on a graph with two or more components of
size >= 2 is refused: a single constraint leaves the other components improper, so their marginal
variances (and the scaling) are undefined.

The normalising constant (full value): ½ log|Q|* - ½ (n - r) log 2π = ½ (n - r) θ + ½ log|R|*
- ½ (n - r) log 2π, where |R|* (product of the nonzero eigenvalues) comes from the matrix-tree
theorem per component (|L_k|* = n_k · det L_k with one row and column removed), computed once on
the host with a sparse LU.

Example:
    >>> import numpy as np
    >>> m, idx, ids = Besag.from_term("region", np.array([1.0, 2.0, 3.0, np.nan]),
    ...                               {"graph": "3 1 1 2 2 1 1 3 0"})
    >>> m.n, m.rank_deficiency, idx.tolist(), ids.tolist()
    (3, 2, [0, 1, 2, -1], [1, 2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel, LinearConstraints
from .constraints import parse_extraconstr
from .graph import Graph, as_graph
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args
from .registry import register_model
from .scaling import scale_model as _scale_model

__all__ = ["Besag", "BesagStructure", "graph_node_index", "LOG_2PI"]

LOG_2PI = float(np.log(2.0 * np.pi))

#: ``inla.models()$latent$besag$hyper``
BESAG_HYPER = (
    HyperSpec("theta", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "loggamma", (1.0, 5e-05), 4.0),
)


@dataclass(frozen=True, eq=False)
class BesagStructure:
    """The structure matrix R of the besag model on a graph (host data, static).

    Attributes:
        graph: the graph.
        scale_model: whether R is scaled per connected component (R-INLA's ``scale.model``).
        adjust_for_con_comp: R-INLA's ``adjust.for.con.comp`` (constraints per component).
        component_scale: the factor s_k of every node's component (1 when not scaled or for
            singletons), shape (n,).
    """

    graph: Graph
    scale_model: bool
    adjust_for_con_comp: bool
    component_scale: np.ndarray

    @classmethod
    def build(cls, graph, *, scale_model: bool = False, adjust_for_con_comp: bool = True, where: str = "besag") -> "BesagStructure":
        """R (scaled or not) for ``graph``; ModelError when the combination is undefined."""
        graph = as_graph(graph, name=f"graph of {where}")
        scale = np.ones(graph.n)
        if scale_model:
            if not adjust_for_con_comp and graph.n_proper_components > 1:
                raise ModelError(
                    f"{where}: scale_model=True with adjust_for_con_comp=False is undefined for a graph with "
                    f"{graph.n_proper_components} connected components of two or more nodes (a single sum-to-zero "
                    "constraint leaves the marginal variances infinite); use adjust_for_con_comp=True"
                )
            # exact generalised-inverse marginal variances, component by component (eps = 0)
            _, factors = _scale_model(graph.laplacian, None, eps=0.0)
            scale = np.where(np.isnan(factors), 1.0, factors)
        return cls(graph, bool(scale_model), bool(adjust_for_con_comp), scale)

    @property
    def n(self) -> int:
        return self.graph.n

    @cached_property
    def unit_singletons(self) -> np.ndarray:
        """Nodes whose R_ii is 1 (singletons of a scaled model), boolean (n,)."""
        return (self.graph.nnbs == 0) & self.scale_model

    @cached_property
    def matrix(self) -> sp.csr_matrix:
        """R as a symmetric scipy matrix."""
        g = self.graph
        s = self.component_scale
        diag = s * g.nnbs + self.unit_singletons.astype(float)
        off = sp.diags(s) @ g.adjacency  # both ends of an edge share a component, hence s
        return (sp.diags(diag) - off).tocsr()

    @cached_property
    def rank_deficiency(self) -> int:
        """Dimension of the null space of R: cc.n2 (+ cc.n1 when not scaled)."""
        g = self.graph
        return g.n_proper_components + (0 if self.scale_model else g.n_singletons)

    @cached_property
    def log_pdet(self) -> float:
        """log|R|*: the sum of the logs of the nonzero eigenvalues of R."""
        g = self.graph
        total = 0.0
        lap = g.laplacian.tocsc()
        for nodes in g.component_nodes:
            k = nodes.size
            if k == 1:
                continue  # R_ii = 1 (log 1 = 0) or 0 (not an eigenvalue of the range)
            sub = lap[nodes][:, nodes][1:, 1:].tocsc()
            lu = spla.splu(sub, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
            total += np.log(k) + float(np.sum(np.log(np.abs(lu.U.diagonal())))) + (k - 1) * np.log(self.component_scale[nodes[0]])
        return float(total)

    def sum_to_zero(self) -> np.ndarray:
        """The constraint rows that ``constr=True`` means (R-INLA): one per component of size
        >= 2 when adjusting for connected components and the graph is not connected, else one
        row of ones. Shape (k, n)."""
        g = self.graph
        if self.adjust_for_con_comp and g.n_components > 1:
            rows = [nodes for nodes in g.component_nodes if nodes.size >= 2]
            C = np.zeros((len(rows), g.n))
            for r, nodes in enumerate(rows):
                C[r, nodes] = 1.0
            return C
        return np.ones((1, g.n))

    @cached_property
    def pattern_and_values(self) -> tuple[SparsePattern, np.ndarray]:
        """Lower-triangular pattern of R (diagonal included) and R's values on it."""
        R = self.matrix
        pattern = SparsePattern.from_scipy(R)
        return pattern, pattern.values_from_scipy(R)


def graph_node_index(covariate, n: int, values=None, *, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows -> 0-based graph nodes for an areal term (index, ids).

    The covariate holds node numbers 1..n (R-INLA: ``values = 1:n``); NaN rows get -1. With
    ``values`` (length n) the covariate is matched against them instead. Anything else raises
    ModelError naming the term and the offending values.
    """
    if covariate is None:
        raise ModelError(f"{where}: the term needs a covariate holding the graph node of every row")
    x = np.asarray(covariate, dtype=float).ravel()
    index = np.full(x.shape, -1, dtype=np.int64)
    ok = ~np.isnan(x)
    if values is None:
        ids = np.arange(1, n + 1)
        good = ok & (x == np.round(x)) & (x >= 1) & (x <= n)
        bad = ok & ~good
        if np.any(bad):
            vals = np.unique(x[bad])
            rows = np.flatnonzero(bad)[:5] + 1
            raise ModelError(
                f"{where}: the covariate must hold graph node numbers 1..{n}; found "
                + ", ".join(f"{v:g}" for v in vals[:10]) + ("" if vals.size <= 10 else f", ... ({vals.size} values)")
                + f" (rows {', '.join(map(str, rows))}{', ...' if bad.sum() > 5 else ''})"
            )
        index[good] = x[good].astype(np.int64) - 1
        return index, ids
    vals = np.asarray(values, dtype=float).ravel()
    if vals.size != n:
        raise ModelError(f"{where}: values has {vals.size} entries but the graph has {n} nodes")
    if np.unique(vals).size != n:
        raise ModelError(f"{where}: values must be distinct")
    order = np.argsort(vals)
    pos = np.searchsorted(vals[order], x[ok])
    pos_c = np.minimum(pos, n - 1)
    hit = vals[order][pos_c] == x[ok]
    if not np.all(hit):
        missing = np.unique(x[ok][~hit])
        raise ModelError(
            f"{where}: covariate values not in values: " + ", ".join(f"{v:g}" for v in missing[:10])
            + ("" if missing.size <= 10 else f", ... ({missing.size} values)")
        )
    index[ok] = order[pos_c]
    return index, vals


def _as_flag(args: dict, key: str, default: bool, where: str) -> bool:
    v = args.get(key)
    if v is None:
        return default
    if isinstance(v, (bool, np.bool_)) or (isinstance(v, (int, np.integer)) and v in (0, 1)):
        return bool(v)
    raise ModelError(f"{where}: {key} must be True or False, got {v!r}")


def _check_n(args: dict, n: int, where: str) -> None:
    if args.get("n") is not None and int(args["n"]) != n:
        raise ModelError(f"{where}: n = {args['n']} does not match the graph's {n} nodes")


@register_model("besag")
class Besag(LatentModel):
    """The besag model: Q = τ R on the graph (module docstring for R-INLA's conventions).

    Args:
        label: the term's name.
        structure: the :class:`BesagStructure`.
        hyperparameters: (log τ,).
        constraints: the component's constraints (None for none).
        rankdef: R-INLA's rank deficiency for the normalising constant (``rankdef``); the null
            space dimension of R plus the extra constraints when not given.
    """

    model_name = "besag"

    def __init__(self, label: str, structure: BesagStructure, hyperparameters, constraints: LinearConstraints | None = None,
                 rankdef: float | None = None, n_extra: int = 0):
        self.label = label
        self.structure = structure
        self.n = structure.n
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = structure.rank_deficiency
        self._constraints = constraints
        self.rinla_rankdef = float(self.rank_deficiency + n_extra if rankdef is None else rankdef)
        # the τ exponent R-INLA uses: (n - rankdef)/2 with rankdef net of the extra constraints,
        # which the constraint machinery accounts for itself
        self._normaliser_rank = self.rinla_rankdef - n_extra
        self._pattern, self._values = structure.pattern_and_values
        self.structure_log_det_constant = 0.5 * structure.log_pdet

    @classmethod
    def from_term(cls, label, covariate, args: dict[str, Any]):
        where = f"f({label}, model='besag')"
        graph = as_graph(args.get("graph"), name=f"graph of {where}")
        _check_n(args, graph.n, where)
        structure = BesagStructure.build(
            graph,
            scale_model=_as_flag(args, "scale_model", False, where),
            adjust_for_con_comp=_as_flag(args, "adjust_for_con_comp", True, where),
            where=where,
        )
        constr = _as_flag(args, "constr", True, where)
        extra = parse_extraconstr(args.get("extraconstr"), graph.n, label)
        stz = structure.sum_to_zero()
        parts = [LinearConstraints(stz, np.zeros(stz.shape[0])) if constr else None, extra]
        hyper = build_hyperparameters(BESAG_HYPER, label, args.get("hyper"), **obsolete_hyper_args(args), where=where)
        index, ids = graph_node_index(covariate, graph.n, args.get("values"), where=where)
        model = cls(label, structure, hyper, LinearConstraints.stack(parts), args.get("rankdef"), 0 if extra is None else extra.k)
        model.diagonal = float(args.get("diagonal") or 0.0)
        return model, index, ids

    def pattern(self) -> SparsePattern:
        return self._pattern

    #: R-INLA's f(..., diagonal=): added to Q's diagonal (1e-4 by default when constr=TRUE)
    diagonal: float = 0.0

    def precision_values(self, theta: jax.Array) -> jax.Array:
        """τ R + diagonal·I on the pattern, τ = exp(θ₀)."""
        on_diag = jnp.asarray(self._pattern.rows == self._pattern.cols, dtype=jnp.float64)
        return jnp.exp(theta[0]) * jnp.asarray(self._values) + self.diagonal * on_diag

    def log_normaliser(self, theta: jax.Array) -> jax.Array:
        """½ log|τR|* - ½ (n - r) log 2π = ½ (n - r)(θ₀ - log 2π) + ½ log|R|*."""
        m = self.n - self._normaliser_rank
        return 0.5 * m * (theta[0] - LOG_2PI) + self.structure_log_det_constant

    def constraints(self) -> LinearConstraints | None:
        return self._constraints
