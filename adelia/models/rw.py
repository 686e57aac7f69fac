"""Random walks of order 1 and 2 on arbitrary locations, and their cyclic versions.

R-INLA builds rw1/rw2 (non-cyclic) with GMRFLib's ``GMRFLib_crw`` on the locations
s_1 < ... < s_n (the sorted covariate values, or ``values=``), d_i = s_{i+1} − s_i:

* rw1: independent increments x_{i+1} − x_i ~ N(0, d_i/τ), so
  R = Σ_i (1/d_i) (e_{i+1} − e_i)(e_{i+1} − e_i)ᵀ; null space: constants (rank deficiency 1).
* rw2: the Lindgren & Rue (2008) second-order walk on irregular locations,
  R = Σ_{j=2}^{n−1} 2/(d_{j−1} + d_j) · b_j b_jᵀ, b_j = e_{j−1}/d_{j−1} − (1/d_{j−1} + 1/d_j) e_j
  + e_{j+1}/d_j; null space: constants and linear trends in s (rank deficiency 2).

On unit spacing these are D₁ᵀD₁ and D₂ᵀD₂ (first/second differences); with spacing h they
are D₁ᵀD₁/h and D₂ᵀD₂/h³ — R-INLA's rw precision depends on the spacing of ``values``.

cyclic=TRUE (``GMRFLib_rw``) ignores the locations (unit spacing, as R-INLA, which warns for
unequal spacing): the circulant D_cᵀD_c with wrap-around differences; rank deficiency 1
(constants) for both orders; needs n ≥ 2·order + 1. ``constr`` defaults to TRUE (FALSE when
cyclic).

scale.model (``GMRFLib_crw_scale``): R-INLA scales the non-cyclic walks by the geometric mean
of the marginal variances *weighted by the Voronoi lengths* ℓ_i of the locations (ℓ_1 = d_1/2,
ℓ_n = d_{n−1}/2, else (d_{i−1} + d_i)/2), computed under the constraints Σ ℓ_i x_i = 0 (and
Σ c_i x_i = 0 with c the cumulated ℓ, for rw2), on the structure multiplied by Σℓ (rw1) or (Σℓ)²
(rw2) plus √ε·I, as GMRFLib does; cyclic walks use the plain geometric mean under 1ᵀx = 0
(``GMRFLib_rw_scale``).

Example:
    >>> import numpy as np
    >>> m, idx, ids = RW2Model.from_term("t", np.arange(1.0, 6.0), {})
    >>> np.asarray(m.precision_dense([0.0]))[2].tolist()
    [1.0, -4.0, 6.0, -4.0, 1.0]
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import ModelError
from ..user_warnings import warn
from .build import resolve_index
from .generic import StructureModel, check_model_args
from .registry import register_model
from .scaling import SQRT_EPS, constrained_marginal_variances

__all__ = ["RW1Model", "RW2Model", "rw_structure", "cyclic_rw_structure", "crw_scale_factor", "cyclic_rw_scale_factor", "rw_half_log_det"]

#: R-INLA's ``min.diff`` check for close locations (models.R).
MIN_DIFF = {1: 1e-5, 2: 1e-3}


def rw_structure(positions, order: int) -> sp.csc_matrix:
    """R of the non-cyclic rw of ``order`` (1 or 2) on strictly increasing ``positions``."""
    s = np.asarray(positions, dtype=float)
    n = s.size
    if n <= order:
        raise ModelError(f"an rw{order} needs more than {order} nodes, got {n}")
    d = np.diff(s)
    if np.any(d <= 0):
        raise ModelError("rw locations must be strictly increasing")
    rows, cols, vals = [], [], []
    if order == 1:
        for i in range(n - 1):
            w = 1.0 / d[i]
            rows += [i, i + 1, i, i + 1]
            cols += [i, i + 1, i + 1, i]
            vals += [w, w, -w, -w]
    elif order == 2:
        for j in range(1, n - 1):
            b = np.array([1.0 / d[j - 1], -(1.0 / d[j - 1] + 1.0 / d[j]), 1.0 / d[j]])
            w = 2.0 / (d[j - 1] + d[j])
            idx = [j - 1, j, j + 1]
            for a in range(3):
                for c in range(3):
                    rows.append(idx[a])
                    cols.append(idx[c])
                    vals.append(w * b[a] * b[c])
    else:
        raise ModelError(f"rw order must be 1 or 2, got {order}")
    return sp.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsc()


def cyclic_rw_structure(n: int, order: int) -> sp.csc_matrix:
    """R = D_cᵀD_c for the circulant difference operator of ``order`` on n nodes (unit spacing)."""
    if n < 2 * order + 1:
        raise ModelError(f"a cyclic rw{order} needs at least {2 * order + 1} nodes, got {n}")
    I = sp.identity(n, format="csr")
    S = sp.csr_matrix((np.ones(n), (np.arange(n), (np.arange(n) + 1) % n)), shape=(n, n))
    D = S - I
    if order == 2:
        D = D @ D
    return (D.T @ D).tocsc()


def _voronoi_lengths(s: np.ndarray) -> np.ndarray:
    ell = np.empty(s.size)
    ell[0] = (s[1] - s[0]) / 2.0
    ell[-1] = (s[-1] - s[-2]) / 2.0
    ell[1:-1] = (s[2:] - s[:-2]) / 2.0
    return ell


def crw_scale_factor(positions, order: int, eps: float = SQRT_EPS) -> float:
    """R-INLA's ``GMRFLib_crw_scale`` factor for the non-cyclic rw (see the module doc):
    exp(Σ ℓ_i log v_i / (s_n − s_1)), v the constrained marginal variances of the structure."""
    s = np.asarray(positions, dtype=float)
    R = rw_structure(s, order).toarray()
    ell = _voronoi_lengths(s)
    A = ell[None, :] if order == 1 else np.vstack([ell, np.cumsum(ell)])
    guess = ell.sum() if order == 1 else ell.sum() ** 2
    v = constrained_marginal_variances(guess * R, A, eps)
    return float(np.exp(np.sum(ell * np.log(v)) / (s[-1] - s[0])) * guess)


def cyclic_rw_scale_factor(n: int, order: int, eps: float = SQRT_EPS) -> float:
    """R-INLA's ``GMRFLib_rw_scale`` factor for the cyclic rw: geometric mean of the marginal
    variances under 1ᵀx = 0 (structure times (n−1)^order, plus √ε·I)."""
    R = cyclic_rw_structure(n, order).toarray()
    guess = float(n - 1) ** order
    v = constrained_marginal_variances(guess * R, np.ones((1, n)), eps)
    return float(np.exp(np.mean(np.log(v))) * guess)


def rw_half_log_det(positions, order: int, cyclic: bool = False) -> float | None:
    """Closed-form ½ log|R|* of the (unscaled) rw structure, or None where none is known.

    cyclic (unit spacing): |R|* = n² (rw1), n⁴ (rw2) — the circulant eigenvalues
    (2 − 2cos 2πk/n)^order over k ≠ 0. rw1 on any locations: |R|* = n Π 1/d_i (matrix-tree
    theorem for the weighted path). rw2 on equally spaced locations (R = D₂ᵀD₂/h³):
    |R|* = n²(n² − 1)/12 · h^{−3(n−2)}. Irregular rw2: None (sparse LU is used)."""
    s = np.asarray(positions, dtype=float)
    n = s.size
    if cyclic:
        return 0.5 * 2 * order * np.log(n)
    d = np.diff(s)
    if order == 1:
        return 0.5 * (np.log(n) - float(np.sum(np.log(d))))
    h = d[0]
    if np.all(np.abs(d - h) <= 1e-12 * h):
        return 0.5 * (2 * np.log(n) + np.log(float(n) ** 2 - 1.0) - np.log(12.0) - 3.0 * (n - 2) * np.log(h))
    return None


def _null_basis(positions: np.ndarray, order: int) -> np.ndarray:
    cols = [np.ones(positions.size)]
    if order == 2:
        cols.append(positions - positions.mean())
    Q, _ = np.linalg.qr(np.column_stack(cols))
    return Q


class _RWModel(StructureModel):
    order: ClassVar[int] = 1
    default_constr: ClassVar[bool] = True

    @classmethod
    def from_term(cls, label, covariate, args):
        check_model_args(args, cls.model_name, label, cyclic=True, scale=True)
        cyclic = bool(args.get("cyclic") or False)
        index, ids = resolve_index(
            label, covariate, args.get("values"), args.get("n"), require_sorted=not cyclic,
            min_diff=MIN_DIFF[cls.order], model=cls.model_name,
        )
        n = ids.size
        positions = ids.astype(float) if ids.dtype != object else np.arange(1.0, n + 1.0)
        if cyclic:
            if ids.dtype != object and n > 2 and not np.allclose(np.diff(positions), positions[1] - positions[0]):
                warn(
                    f'f({label}, model="{cls.model_name}", cyclic=TRUE): the values are not equally spaced; '
                    "as R-INLA, they are treated as equally spaced"
                )
            R = cyclic_rw_structure(n, cls.order)
            rank_def = 1
            null = np.full((n, 1), 1.0 / np.sqrt(n))
        else:
            if n <= cls.order:
                raise ModelError(f'f({label}, model="{cls.model_name}"): needs more than {cls.order} nodes, got {n}')
            R = rw_structure(positions, cls.order)
            rank_def = cls.order
            null = _null_basis(positions, cls.order)
        factor = 1.0
        if args.get("scale_model"):
            factor = cyclic_rw_scale_factor(n, cls.order) if cyclic else crw_scale_factor(positions, cls.order)
            R = factor * R
        half_log_det = rw_half_log_det(positions, cls.order, cyclic)
        if half_log_det is not None:
            half_log_det += 0.5 * (n - rank_def) * np.log(factor)
        cons, rd, hyper = cls._common(cls.model_name, label, args, n, rank_def)
        model = cls(
            label, R, hyper, rank_deficiency=rank_def, null_basis=null, constraints=cons, rinla_rankdef_value=rd,
            diagonal=float(args.get("diagonal") or 0.0), scale_factor=factor, structure_log_det=half_log_det,
        )
        model.cyclic = cyclic
        model.positions = positions
        return model, index, ids


@register_model("rw1")
class RW1Model(_RWModel):
    """Random walk of order 1 (``f(x, model="rw1")``): rank deficiency 1, constr=TRUE."""

    model_name = "rw1"
    order = 1


@register_model("rw2")
class RW2Model(_RWModel):
    """Random walk of order 2 (``f(x, model="rw2")``): rank deficiency 2 (1 if cyclic)."""

    model_name = "rw2"
    order = 2
