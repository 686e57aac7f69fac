"""The z-model: a classical mixed-model term Z z (``f(idx, model="z", Z=Z)``).

η = ... + Z z with a fixed n×m matrix Z and z ~ N(0, (τ C)⁻¹), C an m×m matrix (``Cmatrix``,
default I). R-INLA augments the latent field to the (n + m)-vector (v, z), v = Z z + ε with a
tiny ε ~ N(0, κ⁻¹ I) (κ = f()'s ``precision``, default e^14): the first n nodes are Z z (the
rows of ``idx`` pick them, ``idx`` = 1..n), the last m are z. The joint precision is

    Q = ⎡ κ I      −κ Z          ⎤
        ⎣ −κ Zᵀ    κ ZᵀZ + τ C   ⎦

(R-INLA's ``Qfunc_z``: κ·A + τ·B with A, B fixed), and by the Schur complement
|Q| = κⁿ |τ C|, so ½ log|Q| = ½ n log κ + ½ m log τ + ½ log|C| (R-INLA evaluates the same
determinant numerically). θ = log τ, loggamma(1, 5e-05), initial 4 (``models.R``); names
"Precision for idx" / "Log precision for idx". ``summary_random[idx]`` has n + m rows with
ID 1..n+m: first Z z, then z.

Example:
    >>> import numpy as np
    >>> Z = np.array([[1.0, 0.0], [1.0, 0.5], [0.0, 1.0]])
    >>> m, idx, ids = ZModel.from_term("idx", np.array([1.0, 2.0, 3.0]), {"Z": Z})
    >>> m.n, idx.tolist(), ids.tolist()
    (5, [0, 1, 2], [1.0, 2.0, 3.0, 4.0, 5.0])
"""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel
from .build import resolve_index
from .constraints import model_constraints, rinla_rankdef
from .generic import check_model_args, half_log_pseudo_determinant, parse_cmatrix, precision_spec
from .hyper import build_hyperparameters, obsolete_hyper_args
from .priors import LOG_NORMC_GAUSSIAN
from .registry import register_model

__all__ = ["ZModel", "Z_DEFAULT_PRECISION"]

#: f()'s ``precision`` default (R-INLA's ``inla.set.f.default``): the precision of Z z | z.
Z_DEFAULT_PRECISION = float(np.exp(14.0))


def _as_z_matrix(Z, label: str) -> sp.csr_matrix:
    where = f'f({label}, model="z")'
    if Z is None:
        raise ModelError(f"{where}: the matrix Z= is required (n x m: one row per data row, one column per effect)")
    if sp.issparse(Z):
        M = sp.csr_matrix(Z, dtype=float)
    else:
        try:
            arr = np.asarray(Z, dtype=float)
        except (TypeError, ValueError):
            raise ModelError(f"{where}: Z must be a numeric matrix (dense or scipy sparse), got {type(Z).__name__}") from None
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ModelError(f"{where}: Z must be a 2-D matrix, got an array of shape {arr.shape}")
        M = sp.csr_matrix(arr)
    if M.shape[0] < 1 or M.shape[1] < 1:
        raise ModelError(f"{where}: Z has shape {M.shape}; it needs at least one row and one column")
    if not np.all(np.isfinite(M.data)):
        raise ModelError(f"{where}: Z contains non-finite values (NA/Inf)")
    M.eliminate_zeros()
    return M


@register_model("z")
class ZModel(LatentModel):
    """The augmented (Z z, z) model (see the module docstring)."""

    model_name = "z"
    default_constr: ClassVar[bool] = False

    def __init__(self, label, Z, hyperparameters, *, C=None, precision=Z_DEFAULT_PRECISION, constraints=None,
                 rinla_rankdef_value=0.0, diagonal=0.0):
        Z = sp.csr_matrix(Z, dtype=float)
        n_z, m = Z.shape
        C = sp.identity(m, format="csc") if C is None else sp.csc_matrix(C, dtype=float)
        if C.shape != (m, m):
            raise ModelError(f'f({label}, model="z"): Cmatrix must be {m} x {m} (Z has {m} columns), got {C.shape}')
        if not (np.isfinite(precision) and precision > 0):
            raise ModelError(f'f({label}, model="z"): precision must be a positive number, got {precision!r}')
        self.label, self.Z, self.C = label, Z, C
        self.n_rows, self.m, self.n = int(n_z), int(m), int(n_z + m)
        self.precision = float(precision)
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self.diagonal = float(diagonal)
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)
        A = sp.bmat([[sp.identity(n_z), -Z], [-Z.T, Z.T @ Z]]).tocsc()
        B = sp.bmat([[sp.csc_matrix((n_z, n_z)), None], [None, C]]).tocsc()
        pat = SparsePattern.from_scipy(A).union(SparsePattern.from_scipy(B))
        self._pattern = pat
        self._A_values = pat.values_from_scipy(A)
        self._B_values = pat.values_from_scipy(B)
        self._diag_add = np.zeros(pat.nnz)
        self._diag_add[pat.diag_index] = self.diagonal
        self.half_log_det_C = half_log_pseudo_determinant(C)
        if not np.isfinite(self.half_log_det_C):
            raise ModelError(f'f({label}, model="z"): Cmatrix must be positive definite')

    @classmethod
    def from_term(cls, label, covariate, args):
        where = f'f({label}, model="z")'
        check_model_args(args, cls.model_name, label, cmatrix=True)
        Z = _as_z_matrix(args.get("Z"), label)
        n_z, m = Z.shape
        N = n_z + m
        if covariate is not None and len(covariate) != n_z:
            raise ModelError(
                f"{where}: Z has {n_z} rows but the term has {len(covariate)} data rows; Z needs one row per "
                f"data row (the index {label!r} = 1..{n_z} picks row i of Z z)"
            )
        if args.get("n") is not None and int(args["n"]) != N:
            raise ModelError(f"{where}: n={args['n']} but the z-model has nrow(Z) + ncol(Z) = {n_z} + {m} = {N} nodes")
        values = args.get("values")
        if values is not None and len(np.asarray(values).ravel()) != N:
            raise ModelError(f"{where}: values= must have nrow(Z) + ncol(Z) = {N} entries, got {len(np.asarray(values).ravel())}")
        index, ids = resolve_index(label, covariate, values, None,
                                   default_values=None if values is not None else np.arange(1.0, N + 1.0), model=cls.model_name)
        C = args.get("Cmatrix")
        C = None if C is None else parse_cmatrix(C, label, cls.model_name)
        precision = args.get("precision")
        precision = Z_DEFAULT_PRECISION if precision is None else float(precision)
        constr = bool(args.get("constr", False))
        cons = model_constraints(N, constr, args.get("extraconstr"), label)
        n_extra = 0 if args.get("extraconstr") is None or cons is None else cons.k - (1 if constr else 0)
        rd = rinla_rankdef(0, constr, n_extra, args.get("rankdef"))
        hyper = build_hyperparameters([precision_spec()], label, args.get("hyper"), **obsolete_hyper_args(args))
        model = cls(label, Z, hyper, C=C, precision=precision, constraints=cons, rinla_rankdef_value=rd,
                    diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self):
        return self._pattern

    def precision_values(self, theta):
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return (self.precision * jnp.asarray(self._A_values) + jnp.exp(theta[0]) * jnp.asarray(self._B_values)
                + jnp.asarray(self._diag_add))

    def log_normaliser(self, theta):
        """½ log|Q| − ½ (n + m) log 2π with |Q| = κⁿ τ^m |C| (Schur complement)."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        return (0.5 * self.n_rows * np.log(self.precision) + 0.5 * self.m * theta[0] + self.half_log_det_C
                + self.n * LOG_NORMC_GAUSSIAN)

    def constraints(self):
        return self._constraints
