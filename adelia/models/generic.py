"""Models whose precision is a scaled fixed structure: Q(θ) = τ R + d·I, and generic1.

:class:`StructureModel` is the shared machinery of every "precision times a fixed matrix"
model (iid, rw1, rw2, seasonal, generic0): θ = log τ, R is host data, the values of Q on R's
pattern are ``exp(θ) * R_values`` (+ R-INLA's ``diagonal`` d on the diagonal).

Normalising constants (``LatentModel.log_normaliser``):

    ½ log|Q|* − ½(n − r) log 2π = ½(n − r) log τ + ½ log|R|* − ½(n − r) log 2π

with r = dim null(R) and |R|* the product of R's non-zero eigenvalues
(:attr:`structure_log_det_constant` = ½ log|R|*). R-INLA drops ½ log|R|* and uses its own rank
deficiency r' (which counts ``constr``/``extraconstr``, see :mod:`.constraints`):
:meth:`StructureModel.rinla_log_normaliser` = −½(n − r') log 2π + ½(n − r') log τ, exactly the
term ``extra()`` adds in ``inlaprog/src/inla.c``. ``diagonal`` is a numerical regulariser and
enters neither constant (as in R-INLA).

|R|* is computed without dense eigenvalues: with N an orthonormal basis of null(R) and T a
set of r rows where N_T is invertible, |R|* = det(R with rows/cols T removed) / det(N_T)²
(sparse LU), valid at any size.

generic0 (``f(idx, model="generic0", Cmatrix=C)``): Q = τ C (``rankdef=`` declares R-INLA's rank
deficiency). generic1: Q = τ (I − β/λ_max C), β = logistic(θ₂) ∈ (0, 1), λ_max the largest
eigenvalue of C (R-INLA's ``Qfunc_generic1``).

Example:
    >>> import numpy as np
    >>> m, idx, ids = Generic0Model.from_term("i", np.array([1., 2., 3.]), {"Cmatrix": np.eye(3) * 2})
    >>> np.asarray(m.precision_dense([0.0])).diagonal().tolist()
    [2.0, 2.0, 2.0]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel, LinearConstraints
from .build import resolve_index
from .constraints import model_constraints, rinla_rankdef
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args, to_probability
from .priors import LOG_NORMC_GAUSSIAN
from .registry import register_model

__all__ = [
    "StructureModel",
    "Generic0Model",
    "Generic1Model",
    "precision_spec",
    "half_log_pseudo_determinant",
    "parse_cmatrix",
    "check_model_args",
]


def precision_spec() -> HyperSpec:
    """The one-precision hyperparameter of iid/rw1/rw2/seasonal/generic0 (``models.R``)."""
    return HyperSpec(
        "theta", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
        "loggamma", (1.0, 0.00005), 4.0,
    )


def check_model_args(args: Mapping[str, Any], model: str, label: str, *, cyclic=False, scale=False, cmatrix=False) -> None:
    """R-INLA's f() refusals: ``cyclic``, ``scale.model``, ``Cmatrix``, ``mean.linear``/
    ``prec.linear``, ``nrow``/``ncol``, ``nu`` given to a model that does not use them."""
    where = f'f({label}, model="{model}")'
    if args.get("cyclic") and not cyclic:
        raise ModelError(f"{where}: cyclic=TRUE is defined only for rw1, rw2, rw2d, rw2diid and ar1")
    if args.get("scale_model") and not scale:
        raise ModelError(f"{where}: option scale_model is not used for model {model!r}")
    if args.get("Cmatrix") is not None and not cmatrix:
        raise ModelError(f"{where}: Cmatrix is not used for this model (only generic models)")
    for key in ("mean_linear", "prec_linear"):
        if args.get(key) is not None and model != "linear":
            raise ModelError(f"{where}: {key} is defined only for model='linear'")
    for key in ("nrow", "ncol", "nu"):
        if args.get(key) is not None:
            raise ModelError(f"{where}: {key!r} is not used for model {model!r}")


def half_log_pseudo_determinant(R, null_basis: np.ndarray | None = None) -> float:
    """½ log|R|* (product of the non-zero eigenvalues) of a symmetric PSD matrix.

    With ``null_basis`` N (n, r) orthonormal spanning null(R): choose r rows T with N_T
    invertible (pivoted QR of Nᵀ); then |R|* = det(R_{T̄T̄}) / det(N_T)² (Jacobi's complementary
    minor). Without: R must be non-singular (sparse LU). Returns NaN when the LU meets a
    (numerically) zero pivot: R singular and its null basis not given."""
    R = sp.csc_matrix(R)
    n = R.shape[0]
    keep = np.arange(n)
    corr = 0.0
    if null_basis is not None and null_basis.shape[1] > 0:
        N = np.asarray(null_basis, dtype=float)
        r = N.shape[1]
        _, _, piv = scipy.linalg.qr(N.T, pivoting=True, mode="economic")
        T = np.sort(piv[:r])
        corr = -2.0 * np.log(abs(np.linalg.det(N[T, :])))
        keep = np.setdiff1d(keep, T)
    if keep.size == 0:
        return 0.5 * corr
    sub = R[keep][:, keep].tocsc()
    try:
        lu = spla.splu(sub, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    except RuntimeError:
        return float("nan")
    d = np.abs(lu.U.diagonal())
    if d.size and d.min() <= 1e-13 * d.max():  # numerically singular: the null basis is missing
        return float("nan")
    return 0.5 * (float(np.sum(np.log(np.abs(d)))) + corr)


def parse_cmatrix(C, label: str, model: str) -> sp.csc_matrix:
    """R-INLA's ``Cmatrix``: a scipy sparse / dense matrix, or ``{"i", "j", "values"}``
    (1-based, R's list form). One triangle may be given (it is mirrored); a full matrix must be
    symmetric."""
    where = f'f({label}, model="{model}")'
    if C is None:
        raise ModelError(f"{where}: Cmatrix is required for generic models")
    if isinstance(C, Mapping):
        keys = {str(k).lower(): v for k, v in C.items()}
        try:
            i = np.asarray(keys["i"], dtype=np.int64) - 1
            j = np.asarray(keys["j"], dtype=np.int64) - 1
            v = np.asarray(keys.get("values", keys.get("x")), dtype=float)
        except KeyError:
            raise ModelError(f"{where}: Cmatrix as a dictionary needs 'i', 'j' and 'values' (1-based)") from None
        if not (i.size == j.size == v.size):
            raise ModelError(f"{where}: Cmatrix entries i, j, values have unequal lengths")
        if i.size and (i.min() < 0 or j.min() < 0):
            raise ModelError(f"{where}: Cmatrix indices i, j start at 1")
        nn = int(max(i.max(), j.max()) + 1) if i.size else 0
        M = sp.coo_matrix((v, (i, j)), shape=(nn, nn)).tocsc()
    elif sp.issparse(C):
        M = sp.csc_matrix(C, dtype=float)
    else:
        M = sp.csc_matrix(np.asarray(C, dtype=float))
    if M.shape[0] != M.shape[1]:
        raise ModelError(f"{where}: Cmatrix must be square, got shape {M.shape}")
    M.sum_duplicates()
    M.eliminate_zeros()
    lower, upper = sp.tril(M, -1), sp.triu(M, 1)
    if lower.nnz == 0 or upper.nnz == 0:
        M = (M + sp.triu(M, 1).T + sp.tril(M, -1).T).tocsc()  # one triangle given: mirror it
    elif abs(M - M.T).max() > 1e-12 * max(abs(M).max(), 1.0):
        raise ModelError(f"{where}: Cmatrix is not symmetric")
    if not np.all(np.isfinite(M.data)):
        raise ModelError(f"{where}: Cmatrix contains non-finite values")
    return M.tocsc()


class StructureModel(LatentModel):
    """Q(θ) = e^{θ₁} R + d·I with a fixed structure R (one hyperparameter θ₁ = log τ).

    Attributes (besides :class:`LatentModel`'s):
        R: the (scaled) structure, scipy CSC.
        diagonal: R-INLA's ``diagonal`` added to Q's diagonal.
        rinla_rankdef: the rank deficiency R-INLA uses in the normalising constant.
        structure_log_det_constant: ½ log|R|* (NaN if unknown: no closed-form normaliser).
        scale_factor: the factor applied to the raw structure by ``scale_model`` (1 if none).
    """

    default_constr: ClassVar[bool] = False

    def __init__(
        self,
        label: str,
        R,
        hyperparameters,
        *,
        rank_deficiency: int,
        null_basis: np.ndarray | None = None,
        constraints: LinearConstraints | None = None,
        rinla_rankdef_value: float | None = None,
        diagonal: float = 0.0,
        scale_factor: float = 1.0,
        rinla_log_scale: float = 0.0,
        extra_pattern=None,
        structure_log_det: float | None = None,
    ):
        self.label = label
        R = sp.csc_matrix(R, dtype=float)
        self.n = R.shape[0]
        self.R = R
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = int(rank_deficiency)
        self.null_basis = null_basis
        self._constraints = constraints
        self.diagonal = float(diagonal)
        self.scale_factor = float(scale_factor)
        n_extra = 0 if constraints is None else constraints.k
        self.rinla_rankdef = float(self.rank_deficiency + n_extra) if rinla_rankdef_value is None else float(rinla_rankdef_value)
        self._rinla_log_scale = float(rinla_log_scale)
        pat = SparsePattern.from_scipy(R)
        if extra_pattern is not None:
            pat = pat.union(extra_pattern)
        self._pattern = pat
        self._R_values = pat.values_from_scipy(R)
        self._diag_add = np.zeros(pat.nnz)
        self._diag_add[pat.diag_index] = self.diagonal
        # ½ log|R|*: a closed form when the model knows one (more accurate than the sparse LU for
        # ill-conditioned structures such as a long rw2), else Jacobi's complementary minor.
        self.structure_log_det_constant = (
            float(structure_log_det) if structure_log_det is not None
            else half_log_pseudo_determinant(R, null_basis if self.rank_deficiency else None)
        )

    # -- LatentModel interface ----------------------------------------------------------------
    def pattern(self) -> SparsePattern:
        return self._pattern

    def precision_values(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return jnp.exp(theta[0]) * jnp.asarray(self._R_values) + jnp.asarray(self._diag_add)

    def log_normaliser(self, theta):
        if not np.isfinite(self.structure_log_det_constant):
            return None
        theta = jnp.asarray(theta, dtype=jnp.float64)
        m = self.n - self.rank_deficiency
        return 0.5 * m * theta[0] + self.structure_log_det_constant + m * LOG_NORMC_GAUSSIAN

    def rinla_log_normaliser(self, theta):
        """The normalising-constant term R-INLA's ``extra()`` adds for this component (one
        copy, prior excluded): (n − r')·(−½ log 2π) + ½(n − r')·(log τ + mean log scale)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        m = self.n - self.rinla_rankdef
        return m * LOG_NORMC_GAUSSIAN + 0.5 * m * (theta[0] + self._rinla_log_scale)

    def constraints(self) -> LinearConstraints | None:
        return self._constraints

    # -- shared construction helpers ------------------------------------------------------------
    @staticmethod
    def _common(cls_name: str, label: str, args: Mapping[str, Any], n: int, model_rankdef: int):
        """(constraints, R-INLA rankdef, hyperparameters) from the f() arguments."""
        constr = bool(args.get("constr", False))
        cons = model_constraints(n, constr, args.get("extraconstr"), label)
        n_extra = 0 if args.get("extraconstr") is None or cons is None else cons.k - (1 if constr else 0)
        rd = rinla_rankdef(model_rankdef, constr, n_extra, args.get("rankdef"))
        hyper = build_hyperparameters([precision_spec()], label, args.get("hyper"), **obsolete_hyper_args(args))
        return cons, rd, hyper


def _orthonormal(B: np.ndarray) -> np.ndarray:
    Q, _ = np.linalg.qr(B)
    return Q


@register_model("generic0")
class Generic0Model(StructureModel):
    """Q = τ C for a user matrix C (``Cmatrix``); R-INLA's rank deficiency from ``rankdef``
    (default 0, plus constraints)."""

    model_name = "generic0"

    @classmethod
    def from_term(cls, label, covariate, args):
        check_model_args(args, cls.model_name, label, cmatrix=True)
        C = parse_cmatrix(args.get("Cmatrix"), label, cls.model_name)
        n = C.shape[0]
        if args.get("n") is not None and int(args["n"]) != n:
            raise ModelError(f'f({label}, model="{cls.model_name}"): n={args["n"]} but Cmatrix is {n} x {n}')
        index, ids = resolve_index(label, covariate, args.get("values"), None,
                                   default_values=None if args.get("values") is not None else np.arange(1.0, n + 1.0),
                                   model=cls.model_name)
        if ids.size != n:
            raise ModelError(f'f({label}, model="{cls.model_name}"): {ids.size} values for a {n} x {n} Cmatrix')
        null = _numerical_null_basis(C) if n <= 2000 else None
        r = null.shape[1] if null is not None else 0
        cons, rd, hyper = cls._common(cls.model_name, label, args, n, 0)
        model = cls(label, C, hyper, rank_deficiency=r, null_basis=null, constraints=cons, rinla_rankdef_value=rd,
                    diagonal=float(args.get("diagonal") or 0.0))
        if null is None and args.get("rankdef"):
            model.structure_log_det_constant = float("nan")
        return model, index, ids


@register_model("generic")
class GenericModel(Generic0Model):
    """R-INLA's ``generic``: an alias of generic0."""

    model_name = "generic"


def _numerical_null_basis(C: sp.csc_matrix, rtol: float = 1e-10) -> np.ndarray:
    w, V = np.linalg.eigh(C.toarray())
    if w.size and w.min() < -rtol * max(abs(w).max(), 1e-300) * 10:
        raise ModelError("Cmatrix is not positive semi-definite")
    return V[:, w <= rtol * max(abs(w).max(), 1e-300)]


@register_model("generic1")
class Generic1Model(LatentModel):
    """Q = τ (I − (β/λ_max) C), θ = (log τ, logit β), β ∈ (0, 1) (R-INLA's ``generic1``).

    ½ log|Q| = ½ n log τ + ½ Σ_j log(1 − β λ_j/λ_max) over the eigenvalues λ_j of C."""

    model_name = "generic1"
    default_constr: ClassVar[bool] = False

    SPECS = (
        HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
                  "loggamma", (1.0, 0.00005), 4.0),
        HyperSpec("theta2", "beta", "beta", "Beta_intern for {label}", "Beta for {label}",
                  "gaussian", (0.0, 0.1), 2.0, False, to_probability),
    )

    def __init__(self, label, C, hyperparameters, *, constraints=None, rinla_rankdef_value=0.0, diagonal=0.0):
        self.label = label
        self.C = sp.csc_matrix(C)
        self.n = self.C.shape[0]
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self.eigenvalues = np.linalg.eigvalsh(self.C.toarray())
        self.max_eigenvalue = float(self.eigenvalues.max())
        if self.max_eigenvalue <= 0:
            raise ModelError(f'f({label}, model="generic1"): Cmatrix needs a positive largest eigenvalue')
        pat = SparsePattern.from_scipy(self.C)
        self._pattern = pat
        self._C_values = pat.values_from_scipy(self.C)
        self._I_values = np.zeros(pat.nnz)
        self._I_values[pat.diag_index] = 1.0
        self.diagonal = float(diagonal)
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)

    @classmethod
    def from_term(cls, label, covariate, args):
        check_model_args(args, cls.model_name, label, cmatrix=True)
        C = parse_cmatrix(args.get("Cmatrix"), label, cls.model_name)
        n = C.shape[0]
        index, ids = resolve_index(label, covariate, args.get("values"), None,
                                   default_values=None if args.get("values") is not None else np.arange(1.0, n + 1.0),
                                   model=cls.model_name)
        constr = bool(args.get("constr", False))
        cons = model_constraints(n, constr, args.get("extraconstr"), label)
        n_extra = 0 if args.get("extraconstr") is None or cons is None else cons.k - (1 if constr else 0)
        rd = rinla_rankdef(0, constr, n_extra, args.get("rankdef"))
        hyper = build_hyperparameters(cls.SPECS, label, args.get("hyper"), **obsolete_hyper_args(args))
        return cls(label, C, hyper, constraints=cons, rinla_rankdef_value=rd, diagonal=float(args.get("diagonal") or 0.0)), index, ids

    def pattern(self):
        return self._pattern

    def _beta(self, theta):
        return 1.0 / (1.0 + jnp.exp(-theta[1]))

    def precision_values(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        tau = jnp.exp(theta[0])
        vals = tau * (jnp.asarray(self._I_values) - (self._beta(theta) / self.max_eigenvalue) * jnp.asarray(self._C_values))
        return vals + self.diagonal * jnp.asarray(self._I_values)

    def _half_logdet_structure(self, theta):
        return 0.5 * jnp.sum(jnp.log1p(-self._beta(theta) * jnp.asarray(self.eigenvalues) / self.max_eigenvalue))

    def log_normaliser(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return 0.5 * self.n * theta[0] + self._half_logdet_structure(theta) + self.n * LOG_NORMC_GAUSSIAN

    def rinla_log_normaliser(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        m = self.n - self.rinla_rankdef
        return m * LOG_NORMC_GAUSSIAN + 0.5 * m * theta[0] + self._half_logdet_structure(theta)

    def constraints(self):
        return self._constraints
