"""The bym and bym2 models: a besag field plus unstructured noise, as R-INLA augments them.

Both are latent vectors of length 2n on a graph of n nodes, x = (v, u): the first half v is the
*total* area effect (what the linear predictor picks up: an f(region, model="bym") term adds
v[region]); the second half u is the structured (besag) part. ``summary_random`` rows 1..n are
v, rows n+1..2n are u; the sum-to-zero constraints (one per connected component of size >= 2,
as for besag) act on u.

**bym** (Besag, York & Mollié 1991; ``Qfunc_bym``): v = u + ε, ε ~ N(0, I/τ_iid),
u ~ besag(τ_besag) (scaled per component when ``scale_model=True``):

    Q = [[ τ_iid I,        -τ_iid I            ],
         [ -τ_iid I,   τ_iid I + τ_besag R     ]],

θ = (log τ_iid, log τ_besag), both loggamma(1, 0.0005), initial 4; rows "Precision for X (iid
component)" and "Precision for X (spatial component)". This is a reparametrisation of
f(region.struct, "besag") + f(region, "iid"): v - u is the iid term, u the besag term, with the
same priors and the same linear predictor.

**bym2** (Riebler, Sørbye, Simpson & Rue 2016; ``Qfunc_bym2``): v = (√(1-φ) ε + √φ u)/√τ with
ε ~ N(0, I) and u ~ N(0, R*⁻) the *scaled* besag field (``scale_model`` is forced), so the
marginal precision of v is τ and φ is the share of its (generalised) variance that is spatial.
From v | u ~ N(√(φ/τ) u, (1-φ)/τ I):

    Q = [[ τ/(1-φ) I,            -√(φτ)/(1-φ) I   ],
         [ -√(φτ)/(1-φ) I,    R* + φ/(1-φ) I      ]],

θ = (log τ, logit φ); priors pc.prec(1, 0.01) and pc(0.5, 0.5) — R-INLA's tabulated PC prior of
φ (:mod:`adelia.models.pc_bym_phi`) — with initial values 4 and -3; rows "Precision for X" and
"Phi for X" ("Log precision for X", "Logit phi for X" on the internal scale).

Normalising constants. The constraints are on u, and the constrained density lives on
S = {(v, u): C u = 0}. The volume-preserving change of variables w = v - c u (c = 1 for bym,
c = √(φ/τ) for bym2) maps S to itself and Q to blockdiag(Q_vv, Q_uu - Q_uv Q_vv⁻¹ Q_vu), so the
normaliser of the density on S is

    bym:   ½ n log τ_iid + ½ (n - r) log τ_besag + ½ log|R|*  - ½ (2n - r) log 2π,
    bym2:  ½ n (log τ - log(1 - φ))              + ½ log|R*|* - ½ (2n - r) log 2π,

r the rank deficiency of R (as for besag). This is what :meth:`log_normaliser` returns; it is R-INLA's
convention. (It is *not* the generalised determinant of the 2n x 2n matrix: that differs by the
factor the null vectors (c 1_k, 1_k) contribute, ½ r log(1 + c²) — a constant for bym, but
θ-dependent for bym2.) Both are closed forms in θ; ½ log|R|* is computed once on the host.

Example:
    >>> import numpy as np
    >>> m, idx, ids = BYM.from_term("region", np.array([1.0, 3.0]), {"graph": "3 1 1 2 2 1 1 3 0"})
    >>> m.n, idx.tolist(), ids.tolist()
    (6, [0, 2], [1, 2, 3, 4, 5, 6])
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel, LinearConstraints
from .besag import LOG_2PI, BesagStructure, _as_flag, _check_n, graph_node_index
from .constraints import parse_extraconstr
from .graph import as_graph
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_probability
from .registry import register_model
from . import pc_bym_phi  # noqa: F401  (registers the "pc" prior of φ)

__all__ = ["BYM", "BYM2"]

#: ``inla.models()$latent$bym$hyper``; the internal name of θ1 is R-INLA's, typo included
#: ("idd component": scripts index ``internal.marginals.hyperpar`` by it), its user-scale
#: name is "(iid component)"
BYM_HYPER = (
    HyperSpec("theta1", "prec.unstruct", "log unstructured precision", "Log precision for {label} (idd component)",
              "Precision for {label} (iid component)", "loggamma", (1.0, 0.0005), 4.0),
    HyperSpec("theta2", "prec.spatial", "log spatial precision", "Log precision for {label} (spatial component)",
              "Precision for {label} (spatial component)", "loggamma", (1.0, 0.0005), 4.0),
)

#: ``inla.models()$latent$bym2$hyper``
BYM2_HYPER = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "pc.prec", (1.0, 0.01), 4.0),
    HyperSpec("theta2", "phi", "logit phi", "Logit phi for {label}", "Phi for {label}",
              "pc", (0.5, 0.5), -3.0, to_user=to_probability),
)


class _Augmented(LatentModel):
    """Shared machinery of bym and bym2: x = (v, u) of length 2n, Q linear in four static
    templates on a fixed pattern: Q = a·[vv diag] + c·[uv cross] + d·[uu diag] + b·[R on uu]."""

    def __init__(self, label: str, structure: BesagStructure, hyperparameters, constraints: LinearConstraints | None,
                 rankdef: float | None, n_extra: int):
        self.label = label
        self.structure = structure
        self.n_graph = m = structure.n
        self.n = 2 * m
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = structure.rank_deficiency
        self._constraints = constraints
        self.rinla_rankdef = float(self.rank_deficiency + n_extra if rankdef is None else rankdef)
        self._normaliser_rank = self.rinla_rankdef - n_extra
        self.structure_log_det_constant = 0.5 * structure.log_pdet

        r_pattern, r_values = structure.pattern_and_values
        i = np.arange(m)
        rows = np.concatenate([i, m + i, m + r_pattern.rows])
        cols = np.concatenate([i, i, m + r_pattern.cols])
        self._pattern = SparsePattern.from_entries(self.n, rows, cols)
        pos_vv = self._pattern.index_of(i, i)
        pos_uv = self._pattern.index_of(m + i, i)
        pos_uu = self._pattern.index_of(m + i, m + i)
        pos_r = self._pattern.index_of(m + r_pattern.rows, m + r_pattern.cols)
        t = np.zeros((4, self._pattern.nnz))
        t[0, pos_vv] = 1.0
        t[1, pos_uv] = 1.0
        t[2, pos_uu] = 1.0
        t[3, pos_r] = r_values
        self._templates = t  # rows: vv diagonal, uv cross, uu diagonal, R on the uu block

    @classmethod
    def _parts(cls, label: str, covariate, args: dict[str, Any], where: str, *, scale_default: bool):
        graph = as_graph(args.get("graph"), name=f"graph of {where}")
        _check_n(args, graph.n, where)
        structure = BesagStructure.build(
            graph,
            scale_model=_as_flag(args, "scale_model", scale_default, where),
            adjust_for_con_comp=_as_flag(args, "adjust_for_con_comp", True, where),
            where=where,
        )
        m = graph.n
        constr = _as_flag(args, "constr", True, where)
        parts = []
        if constr:
            s = structure.sum_to_zero()
            parts.append(LinearConstraints(np.hstack([np.zeros_like(s), s]), np.zeros(s.shape[0])))
        extra = parse_extraconstr(args.get("extraconstr"), 2 * m, label)
        parts.append(extra)
        index, ids = graph_node_index(covariate, m, args.get("values"), where=where)
        ids = np.arange(1, 2 * m + 1) if args.get("values") is None else np.concatenate([ids, ids])
        return structure, LinearConstraints.stack(parts), 0 if extra is None else extra.k, index, ids

    def pattern(self) -> SparsePattern:
        return self._pattern

    def _coefficients(self, theta: jax.Array) -> jax.Array:
        """(a, c, d, b): the multipliers of the four templates."""
        raise NotImplementedError

    #: R-INLA's f(..., diagonal=): added to all 2n diagonal entries (1e-4 by default with constr)
    diagonal: float = 0.0

    def precision_values(self, theta: jax.Array) -> jax.Array:
        coef = self._coefficients(jnp.asarray(theta))
        on_diag = jnp.asarray(self._pattern.rows == self._pattern.cols, dtype=jnp.float64)
        return coef @ jnp.asarray(self._templates) + self.diagonal * on_diag

    def constraints(self) -> LinearConstraints | None:
        return self._constraints


@register_model("bym")
class BYM(_Augmented):
    """bym: x = (v = u + ε, u), θ = (log τ_iid, log τ_besag) (module docstring)."""

    model_name = "bym"

    @classmethod
    def from_term(cls, label, covariate, args: dict[str, Any]):
        where = f"f({label}, model='bym')"
        structure, constraints, n_extra, index, ids = cls._parts(label, covariate, args, where, scale_default=False)
        hyper = build_hyperparameters(BYM_HYPER, label, args.get("hyper"), **obsolete_hyper_args(args), where=where)
        model = cls(label, structure, hyper, constraints, args.get("rankdef"), n_extra)
        model.diagonal = float(args.get("diagonal") or 0.0)
        return model, index, ids

    def _coefficients(self, theta):
        a = jnp.exp(theta[0])  # τ_iid
        b = jnp.exp(theta[1])  # τ_besag
        return jnp.stack([a, -a, a, b])

    def log_normaliser(self, theta: jax.Array) -> jax.Array:
        """½ n log τ_iid + ½ (n - r) log τ_besag + ½ log|R|* - ½ (2n - r) log 2π."""
        m, r = self.n_graph, self._normaliser_rank
        return 0.5 * (m * theta[0] + (m - r) * theta[1] - (2 * m - r) * LOG_2PI) + self.structure_log_det_constant


@register_model("bym2")
class BYM2(_Augmented):
    """bym2: x = (v = (√(1-φ) ε + √φ u)/√τ, u), θ = (log τ, logit φ) (module docstring)."""

    model_name = "bym2"
    default_scale_model = True

    @classmethod
    def from_term(cls, label, covariate, args: dict[str, Any]):
        where = f"f({label}, model='bym2')"
        if args.get("scale_model") is not None and not _as_flag(args, "scale_model", True, where):
            raise ModelError(f"{where}: model 'bym2' requires scale_model=True (R-INLA scales its besag part always)")
        structure, constraints, n_extra, index, ids = cls._parts(label, covariate, args, where, scale_default=True)
        hyper = build_hyperparameters(
            BYM2_HYPER, label, args.get("hyper"), **obsolete_hyper_args(args), where=where,
            prior_context={"graph": structure.graph},
        )
        model = cls(label, structure, hyper, constraints, args.get("rankdef"), n_extra)
        model.diagonal = float(args.get("diagonal") or 0.0)
        return model, index, ids

    def _coefficients(self, theta):
        tau = jnp.exp(theta[0])
        phi = jax.nn.sigmoid(theta[1])
        one_minus = jax.nn.sigmoid(-theta[1])  # 1 - φ without cancellation
        odds = jnp.exp(theta[1])  # φ/(1-φ)
        return jnp.stack([tau / one_minus, -jnp.sqrt(phi * tau) / one_minus, odds, jnp.ones_like(tau)])

    def log_normaliser(self, theta: jax.Array) -> jax.Array:
        """½ n (log τ - log(1-φ)) + ½ log|R*|* - ½ (2n - r) log 2π, log(1-φ) = -softplus(θ₂)."""
        m, r = self.n_graph, self._normaliser_rank
        return 0.5 * (m * (theta[0] + jax.nn.softplus(theta[1])) - (2 * m - r) * LOG_2PI) + self.structure_log_det_constant

    def rinla_log_normaliser(self, theta: jax.Array) -> jax.Array:
        """R-INLA's normalising constant of bym2 (its ``extra()``): ½ n (log τ − log(1−φ))
        − ½ n log 2π — the density of the n-vector v given u; the structured part u enters
        without ½ log|R*|* and without its own 2π terms. Verified against the scotland_bym2
        reference fit (log marginal likelihood to 1e-3; the full 2n-dimensional normaliser
        above differs from it by the constant ½ log|R*|* − ½ (n − r) log 2π)."""
        m = self.n_graph
        return 0.5 * m * (theta[0] + jax.nn.softplus(theta[1]) - LOG_2PI)
