"""R-INLA's ``generic2`` and ``generic3`` latent models (``inla-Qfunc.c``, ``inla-parse.c``;
documentation pages ``generic2.pdf``, ``generic3.pdf``).

generic2, ``f(idx, model="generic2", Cmatrix=C)``: the 2n-vector x = (v, u) with

    u ~ N(0, (τ_u C)⁻¹),   v = u + ε,   ε ~ N(0, τ_v⁻¹ I),

so Q = [[τ_v I, −τ_v I], [−τ_v I, τ_v I + τ_u C]] (``Qfunc_generic2``: the first n nodes are
"the sum" v, the last n the Cmatrix part u; the index of a row refers to v). R-INLA's θ:

* θ₁ = log τ_u: "Log precision-cmatrix for x" / "Precision-cmatrix for x", loggamma(1, 5e-05),
  initial 4;
* θ₂ = logit h², the "heritability" h² = τ_u⁻¹/(τ_u⁻¹ + τ_v⁻¹) ∈ (0, 1), so τ_v = τ_u h²/(1 − h²)
  and log τ_v = θ₁ + θ₂: "h2-intern for x" / "h2 for x" (user scale h² = logistic(θ₂)), initial 4.
  Its prior (default loggamma(1, 0.001), ``prec.random`` in ``hyper``) is a prior on
  log τ_v = θ₁ + θ₂, evaluated there (the map (θ₁, θ₂) ↦ (θ₁, θ₁ + θ₂) has Jacobian 1), as
  R-INLA's ``extra()`` does.

``constr=TRUE`` puts the sum-to-zero constraint on u (R-INLA's ``aug.constr = 2``). The rank
deficiency is that of C. Normalising constant: ½ n log τ_v + ½ (n − r) log τ_u + ½ log|C|*
− ½ (2n − r) log 2π; R-INLA's ``extra()`` uses LOG_NORMC·(n/2 + (n − r)/2) + ½(n − r) θ₁ + ½ n
(θ₁ + θ₂) (half of the 2π terms, no ½ log|C|*), which :meth:`Generic2Model.rinla_log_normaliser`
reproduces so that the marginal likelihood is R-INLA's. The summary has 2n rows, IDs 1..2n.

generic3, ``f(idx, model="generic3", Cmatrix=list(C1, ..., Cm))``, 1 ≤ m ≤ 10:

    Q = τ_common Σ_k τ_k C_k,

θ_k = log τ_k, k = 1..m: "Log precision for Cmatrix[[k]] for x" / "Precision for Cmatrix[[k]]
for x", loggamma(1, 5e-05), initial 4; θ₁₁ = log τ_common: "Log common precision for x" /
"Common precision for x", loggamma(1, 5e-05), initial 0, *fixed* by default (``theta11`` in
``hyper``). The unused θ_{m+1..10} are fixed (R-INLA) and dropped here. Normalising constant:
½ log|Q(θ)| − ½ n log 2π from the sparse Cholesky factor (R-INLA evaluates it numerically
too); when Σ_k C_k is singular (its null space, common to all C_k, does not depend on θ) adelia
computes ½ log det(Q + N Nᵀ) densely (up to 2000 nodes).

Example:
    >>> import numpy as np
    >>> C = np.array([[1.0, -1.0], [-1.0, 2.0]])
    >>> m, idx, ids = Generic2Model.from_term("i", np.array([1.0, 2.0]), {"Cmatrix": C})
    >>> np.asarray(m.precision_dense([0.0, 0.0])).tolist()   # τ_u = 1, h² = ½: τ_v = 1
    [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0], [-1.0, 0.0, 2.0, -1.0], [0.0, -1.0, -1.0, 3.0]]
    >>> ids.tolist(), [h.name for h in m.hyperparameters]
    ([1, 2, 3, 4], ['Precision-cmatrix for i', 'h2 for i'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel, LinearConstraints, Prior
from .build import resolve_index
from .constraints import model_constraints, parse_extraconstr, rinla_rankdef
from .generic import _numerical_null_basis, check_model_args, half_log_pseudo_determinant, parse_cmatrix
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_probability
from .priors import LOG_NORMC_GAUSSIAN, NonePrior
from .registry import register_model

__all__ = ["Generic2Model", "Generic3Model", "GENERIC2_HYPER", "GENERIC3_HYPER", "GENERIC3_MAX"]

#: ``inla.models()$latent$generic2$hyper``; names from ``inla-parse.c``
GENERIC2_HYPER = (
    HyperSpec("theta1", "prec", "log precision cmatrix", "Log precision-cmatrix for {label}",
              "Precision-cmatrix for {label}", "loggamma", (1.0, 0.00005), 4.0),
    HyperSpec("theta2", "prec.random", "log precision random", "h2-intern for {label}", "h2 for {label}",
              "loggamma", (1.0, 0.001), 4.0, False, to_probability),
)

#: the largest number of matrices of generic3 (R-INLA's GENERIC3_MAXTHETA − 1)
GENERIC3_MAX = 10

#: ``inla.models()$latent$generic3$hyper``; names from ``inla-parse.c``
GENERIC3_HYPER = tuple(
    HyperSpec(f"theta{k}", f"prec{k}", f"log precision{k}", f"Log precision for Cmatrix[[{k}]] for {{label}}",
              f"Precision for Cmatrix[[{k}]] for {{label}}", "loggamma", (1.0, 0.00005), 4.0)
    for k in range(1, GENERIC3_MAX + 1)
) + (
    HyperSpec("theta11", "prec.common", "log precision common", "Log common precision for {label}",
              "Common precision for {label}", "loggamma", (1.0, 0.00005), 0.0, True),
)

#: the largest generic3 model whose singular Σ C_k gets a dense normalising constant
DENSE_MAX_NODES = 2000


class _Generic2JointPrior(Prior):
    """π₁(θ₁) + π₂(θ₁ + θ₂) on the block (θ₁, θ₂): R-INLA puts generic2's second prior on
    log τ_v = θ₁ + θ₂ (Jacobian 1)."""

    name = "generic2"
    dimension = 2

    def __init__(self, prior_cmatrix: Prior, prior_random: Prior):
        self.prior_cmatrix, self.prior_random = prior_cmatrix, prior_random
        self.param = ()

    def log_density(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return self.prior_cmatrix.log_density(theta[0]) + self.prior_random.log_density(theta[0] + theta[1])

    def __repr__(self) -> str:
        return f"generic2({self.prior_cmatrix!r} on log prec-cmatrix, {self.prior_random!r} on log prec-random)"


class _ShiftedPrior(Prior):
    """π(θ + c): generic2's prior of log τ_v when θ₁ = c is fixed."""

    name = "shifted"

    def __init__(self, prior: Prior, shift: float):
        self.prior, self.shift = prior, float(shift)
        self.param = ()

    def log_density(self, theta):
        return self.prior.log_density(jnp.asarray(theta, dtype=jnp.float64) + self.shift)

    def __repr__(self) -> str:
        return f"{self.prior!r} at theta + {self.shift:g}"


def _generic2_priors(hyper):
    """Re-attach generic2's priors so that the second acts on θ₁ + θ₂ for every fixed pattern."""
    from dataclasses import replace

    h1, h2 = hyper
    if not h1.fixed and not h2.fixed:
        return (replace(h1, prior=_Generic2JointPrior(h1.prior, h2.prior)), replace(h2, prior=NonePrior()))
    if h1.fixed and not h2.fixed:
        return (h1, replace(h2, prior=_ShiftedPrior(h2.prior, h1.initial)))
    return (h1, h2)  # θ₂ fixed: only θ₁'s own prior counts


def _index_and_ids(cls_name: str, label: str, covariate, args, n: int):
    values = args.get("values")
    index, ids = resolve_index(label, covariate, values, None,
                               default_values=None if values is not None else np.arange(1.0, n + 1.0), model=cls_name)
    if ids.size != n:
        raise ModelError(f'f({label}, model="{cls_name}"): {ids.size} values for a {n} x {n} Cmatrix')
    return index, ids


@register_model("generic2")
class Generic2Model(LatentModel):
    """x = (v, u), v = u + ε, Q_u = τ_u C, ε ~ N(0, 1/τ_v), θ = (log τ_u, logit h²) (module doc)."""

    model_name = "generic2"
    default_constr: ClassVar[bool] = False

    def __init__(self, label: str, C, hyperparameters, *, constraints: LinearConstraints | None = None,
                 rinla_rankdef_value: float = 0.0, diagonal: float = 0.0):
        self.label = label
        C = sp.csc_matrix(C, dtype=float)
        self.m = m = C.shape[0]
        self.n = 2 * m
        self.C = C
        self.hyperparameters = tuple(hyperparameters)
        null = _numerical_null_basis(C) if m <= DENSE_MAX_NODES else None
        self.rank_deficiency = 0 if null is None else int(null.shape[1])
        self.structure_log_det_constant = half_log_pseudo_determinant(C, null if self.rank_deficiency else None)
        self.rinla_rankdef = float(rinla_rankdef_value)
        self._constraints = constraints
        self.diagonal = float(diagonal)
        cp = SparsePattern.from_scipy(C)
        i = np.arange(m)
        rows = np.concatenate([i, m + i, m + cp.rows])
        cols = np.concatenate([i, i, m + cp.cols])
        self._pattern = pat = SparsePattern.from_entries(self.n, rows, cols)
        t = np.zeros((3, pat.nnz))
        t[0, pat.index_of(i, i)] = 1.0            # τ_v on the v block
        t[0, pat.index_of(m + i, m + i)] += 1.0   # τ_v on the u block
        t[1, pat.index_of(m + i, i)] = -1.0       # −τ_v across
        t[2, pat.index_of(m + cp.rows, m + cp.cols)] = cp.values_from_scipy(C)  # τ_u C on the u block
        self._templates = t
        self._on_diag = (pat.rows == pat.cols).astype(float)

    @classmethod
    def from_term(cls, label, covariate, args):
        where = f'f({label}, model="generic2")'
        check_model_args(args, cls.model_name, label, cmatrix=True)
        C = parse_cmatrix(args.get("Cmatrix"), label, cls.model_name)
        m = C.shape[0]
        if args.get("n") is not None and int(args["n"]) not in (m, 2 * m):
            raise ModelError(f"{where}: n={args['n']} but Cmatrix is {m} x {m} (the model has 2n = {2 * m} nodes)")
        index, ids = _index_and_ids(cls.model_name, label, covariate, args, m)
        ids = np.arange(1, 2 * m + 1) if args.get("values") is None else np.concatenate([ids, ids])
        constr = bool(args.get("constr", False))
        parts = [LinearConstraints(np.hstack([np.zeros((1, m)), np.ones((1, m))]), np.zeros(1)) if constr else None]
        extra = parse_extraconstr(args.get("extraconstr"), 2 * m, label)
        parts.append(extra)
        rd = rinla_rankdef(0, constr, 0 if extra is None else extra.k, args.get("rankdef"))
        hyper = build_hyperparameters(GENERIC2_HYPER, label, args.get("hyper"), **obsolete_hyper_args(args), where=where)
        model = cls(label, C, _generic2_priors(hyper), constraints=LinearConstraints.stack(parts),
                    rinla_rankdef_value=rd, diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self) -> SparsePattern:
        return self._pattern

    def precision_values(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        tau_v = jnp.exp(theta[0] + theta[1])
        coef = jnp.stack([tau_v, tau_v, jnp.exp(theta[0])])
        return coef @ jnp.asarray(self._templates) + self.diagonal * jnp.asarray(self._on_diag)

    def log_normaliser(self, theta):
        """½ n log τ_v + ½ (n − r) log τ_u + ½ log|C|* − ½ (2n − r) log 2π (None if ½ log|C|* is
        unknown: C singular and too large for its null space)."""
        if not np.isfinite(self.structure_log_det_constant):
            return None
        theta = jnp.asarray(theta, dtype=jnp.float64)
        m, r = self.m, self.rank_deficiency
        return (0.5 * m * (theta[0] + theta[1]) + 0.5 * (m - r) * theta[0] + self.structure_log_det_constant
                + (2 * m - r) * LOG_NORMC_GAUSSIAN)

    def rinla_log_normaliser(self, theta):
        """R-INLA's ``extra()`` term for generic2: LOG_NORMC·(n/2 + (n − r')/2) + ½ (n − r') θ₁
        + ½ n (θ₁ + θ₂), r' its rank deficiency (``rankdef``, 1 with constr=TRUE)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        m, rd = self.m, self.rinla_rankdef
        return LOG_NORMC_GAUSSIAN * (m / 2.0 + (m - rd) / 2.0) + 0.5 * (m - rd) * theta[0] + 0.5 * m * (theta[0] + theta[1])

    def constraints(self):
        return self._constraints


def _cmatrix_list(value, label: str) -> list[sp.csc_matrix]:
    where = f'f({label}, model="generic3")'
    if value is None:
        raise ModelError(f"{where}: Cmatrix is required: a list of 1 to {GENERIC3_MAX} matrices, Cmatrix=list(C1, C2, ...)")
    if isinstance(value, Mapping) and not {str(k).lower() for k in value} >= {"i", "j"}:
        items = list(value.values())  # R's named list
    elif sp.issparse(value) or isinstance(value, Mapping) or (isinstance(value, np.ndarray) and value.ndim == 2):
        items = [value]
    elif isinstance(value, Sequence) or isinstance(value, np.ndarray):
        items = list(value)
    else:
        raise ModelError(f"{where}: Cmatrix must be a list of matrices, got {type(value).__name__}")
    if not 1 <= len(items) <= GENERIC3_MAX:
        raise ModelError(f"{where}: Cmatrix must hold 1 to {GENERIC3_MAX} matrices, got {len(items)}")
    mats = []
    for k, c in enumerate(items, start=1):
        try:
            mats.append(parse_cmatrix(c, label, "generic3"))
        except ModelError as exc:
            raise ModelError(f"{where}: Cmatrix[[{k}]]: {exc}") from None
    sizes = {M.shape[0] for M in mats}
    if len(sizes) > 1:
        raise ModelError(f"{where}: the matrices in Cmatrix have different sizes {[M.shape[0] for M in mats]}; all must be n x n")
    return mats


@register_model("generic3")
class Generic3Model(LatentModel):
    """Q = τ_common Σ_k τ_k C_k, k = 1..m ≤ 10 (module doc)."""

    model_name = "generic3"
    default_constr: ClassVar[bool] = False

    def __init__(self, label: str, mats: list, hyperparameters, *, constraints: LinearConstraints | None = None,
                 diagonal: float = 0.0):
        self.label = label
        self.mats = [sp.csc_matrix(M, dtype=float) for M in mats]
        self.n_matrices = k = len(self.mats)
        self.n = n = self.mats[0].shape[0]
        self.hyperparameters = tuple(hyperparameters)
        if len(self.hyperparameters) != k + 1:
            raise ModelError(f'f({label}, model="generic3"): {len(self.hyperparameters)} hyperparameters for {k} matrices')
        self._constraints = constraints
        self.diagonal = float(diagonal)
        pat = SparsePattern.from_scipy(self.mats[0])
        for M in self.mats[1:]:
            pat = pat.union(SparsePattern.from_scipy(M))
        self._pattern = pat
        self._templates = np.stack([pat.values_from_scipy(M) for M in self.mats])
        self._on_diag = (pat.rows == pat.cols).astype(float)
        self.rank_deficiency = 0
        self.null_basis = None
        if n <= DENSE_MAX_NODES:
            S = sum(M for M in self.mats).toarray()
            w, V = np.linalg.eigh(S)
            tol = 1e-10 * max(float(np.max(np.abs(w))), 1e-300)
            r = int(np.sum(np.abs(w) <= tol))
            if r:
                N = V[:, np.abs(w) <= tol]
                if any(np.abs(M @ N).max() > 1e-8 * max(abs(M).max(), 1e-300) for M in self.mats):
                    raise ModelError(f'f({label}, model="generic3"): Σ_k Cmatrix[[k]] is singular but the matrices do not '
                                     "share its null space, so Q(θ) is singular for some θ")
                self.rank_deficiency, self.null_basis = r, N

    @classmethod
    def from_term(cls, label, covariate, args):
        where = f'f({label}, model="generic3")'
        mats = _cmatrix_list(args.get("Cmatrix"), label)
        args = {**args, "Cmatrix": None}
        check_model_args(args, cls.model_name, label, cmatrix=True)
        n = mats[0].shape[0]
        if args.get("n") is not None and int(args["n"]) != n:
            raise ModelError(f"{where}: n={args['n']} but the matrices in Cmatrix are {n} x {n}")
        index, ids = _index_and_ids(cls.model_name, label, covariate, args, n)
        cons = model_constraints(n, bool(args.get("constr", False)), args.get("extraconstr"), label)
        hyper = build_hyperparameters(GENERIC3_HYPER, label, args.get("hyper"), **obsolete_hyper_args(args), where=where)
        k = len(mats)
        model = cls(label, mats, hyper[:k] + hyper[GENERIC3_MAX:], constraints=cons,
                    diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self) -> SparsePattern:
        return self._pattern

    def _raw_values(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        k = self.n_matrices
        coef = jnp.exp(theta[:k] + theta[k])
        return coef @ jnp.asarray(self._templates)

    def precision_values(self, theta):
        return self._raw_values(theta) + self.diagonal * jnp.asarray(self._on_diag)

    def log_normaliser(self, theta):
        """None (a proper model: ½ log|Q(θ)| from the compiler's sparse Cholesky), or for a
        singular Σ C_k the dense ½ log det(Q(θ) + N Nᵀ) − ½ (n − r) log 2π."""
        if self.rank_deficiency == 0:
            return None
        N = jnp.asarray(self.null_basis)
        L = jax.numpy.linalg.cholesky(self._pattern.to_dense_jax(self._raw_values(theta)) + N @ N.T)
        return jnp.sum(jnp.log(jnp.diagonal(L))) + (self.n - self.rank_deficiency) * LOG_NORMC_GAUSSIAN

    def constraints(self):
        return self._constraints
