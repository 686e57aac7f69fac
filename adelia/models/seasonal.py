"""The seasonal model: every window of ``season_length`` s consecutive values sums to ≈ 0.

π(x | τ) ∝ τ^{(n−s+1)/2} exp(−τ/2 Σ_{t=1}^{n−s+1} (x_t + ... + x_{t+s−1})²), so
Q = τ R, R = Σ_t a_t a_tᵀ with a_t the indicator of the window [t, t+s−1] (``GMRFLib_seasonal``):
R_ij = number of windows containing both i and j. The null space is the (s−1)-dimensional set
of s-periodic sequences summing to zero over a period (rank deficiency s − 1). θ = log τ,
loggamma(1, 5e-05), initial 4, ``constr`` FALSE by default. R-INLA's f() does not allow
``cyclic`` for this model.

scale.model (``GMRFLib_seasonal_scale``): geometric mean of the marginal variances of the model
on n' = s⌊n/s⌋ nodes, under the s − 1 constraints Σ_k (x_{ks+j} − x_{ks+s−1}) = 0,
j = 0..s−2, with ε = DBL_EPSILON^{3/4} added to the diagonal.

Example:
    >>> import numpy as np
    >>> m, idx, ids = SeasonalModel.from_term("t", np.arange(1.0, 7.0), {"season_length": 3})
    >>> m.rank_deficiency, np.asarray(m.precision_dense([0.0]))[2].tolist()
    (2, [1.0, 2.0, 3.0, 2.0, 1.0, 0.0])
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import ModelError
from .build import resolve_index
from .generic import StructureModel, check_model_args
from .registry import register_model
from .scaling import constrained_marginal_variances

__all__ = ["SeasonalModel", "seasonal_structure", "seasonal_scale_factor"]

#: GMRFLib's ε for the seasonal scaling: √DBL_EPSILON · DBL_EPSILON^{1/4}.
SEASONAL_EPS = float(np.finfo(float).eps ** 0.75)


def seasonal_structure(n: int, s: int) -> sp.csc_matrix:
    """R = Σ_t a_t a_tᵀ over the n − s + 1 windows of length s."""
    if not (1 <= s <= n):
        raise ModelError(f"seasonal: need 1 <= season_length <= n, got season_length={s}, n={n}")
    rows = np.arange(n - s + 1)
    A = sp.csr_matrix(
        (np.ones((n - s + 1) * s), (np.repeat(rows, s), (rows[:, None] + np.arange(s)[None, :]).ravel())),
        shape=(n - s + 1, n),
    )
    return (A.T @ A).tocsc()


def seasonal_null_basis(n: int, s: int) -> np.ndarray:
    """Orthonormal basis of the s-periodic zero-sum sequences (dimension s − 1)."""
    if s == 1:
        return np.zeros((n, 0))
    t = np.arange(n) % s
    B = np.column_stack([(t == j).astype(float) - (t == s - 1) for j in range(s - 1)])
    Q, _ = np.linalg.qr(B)
    return Q


def seasonal_scale_factor(n: int, s: int, eps: float = SEASONAL_EPS) -> float:
    """R-INLA's ``GMRFLib_seasonal_scale`` factor (see the module doc)."""
    if s == 1:
        return 1.0
    m = (n // s) * s
    R = seasonal_structure(m, s).toarray()
    t = np.arange(m) % s
    A = np.vstack([(t == j).astype(float) - (t == s - 1) for j in range(s - 1)])
    v = constrained_marginal_variances(R, A, eps)
    return float(np.exp(np.mean(np.log(v))))


@register_model("seasonal")
class SeasonalModel(StructureModel):
    """Seasonal component of period ``season_length`` (``f(t, model="seasonal", season.length=s)``)."""

    model_name = "seasonal"
    default_constr: ClassVar[bool] = False

    @classmethod
    def from_term(cls, label, covariate, args):
        check_model_args(args, cls.model_name, label, scale=True)
        s = args.get("season_length")
        if s is None:
            raise ModelError(f'f({label}, model="seasonal"): season_length (R: season.length) must be given')
        if int(s) != s or s < 1:
            raise ModelError(f'f({label}, model="seasonal"): season_length must be a positive integer, got {s!r}')
        s = int(s)
        index, ids = resolve_index(label, covariate, args.get("values"), args.get("n"), model=cls.model_name)
        n = ids.size
        if s > n:
            raise ModelError(f'f({label}, model="seasonal"): season_length={s} is larger than the number of nodes n={n}')
        R = seasonal_structure(n, s)
        factor = 1.0
        if args.get("scale_model"):
            factor = seasonal_scale_factor(n, s)
            R = factor * R
        cons, rd, hyper = cls._common(cls.model_name, label, args, n, s - 1)
        model = cls(
            label, R, hyper, rank_deficiency=s - 1, null_basis=seasonal_null_basis(n, s), constraints=cons,
            rinla_rankdef_value=rd, diagonal=float(args.get("diagonal") or 0.0), scale_factor=factor,
        )
        model.season_length = s
        return model, index, ids
