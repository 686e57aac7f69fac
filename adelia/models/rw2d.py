"""The second-order random walk on a regular lattice (R-INLA's ``rw2d``, a thin-plate spline).

A field x on an ``nrow`` × ``ncol`` lattice, stored as R-INLA stores it (``inla.lattice2node``):
node = irow + (icol − 1)·nrow (1-based), i.e. the column-major ``vec`` of the nrow × ncol matrix.

R-INLA's precision (GMRFLib ``GMRFLib_rw2d``; Rue & Held 2005, §3.4.2) is Q = τ R with the
interior 13-point stencil

         1
      2 −8  2
    1 −8 20 −8  1
      2 −8  2
         1

and boundary corrections that make R the discretised thin-plate energy
Σ (∂²x/∂r²)² + 2 (∂²x/∂r∂c)² + (∂²x/∂c²)² on the lattice:

    R = I_c ⊗ R2_r + R2_c ⊗ I_r + 2 R1_c ⊗ R1_r,

with R1_m = D1ᵀD1 and R2_m = D2ᵀD2 the (unit spacing) rw1 and rw2 structures of length m.
Every element of GMRFLib's element-wise rule (20/18/19/11/10/4 on the diagonal, −8/−6/−4 for the
horizontal/vertical neighbours, 2 and 1 further out) is reproduced by this sum for lattices of at
least 4 × 4; ``tests/models/test_rw2d.py`` checks it element by element. The null space is spanned
by 1, irow and icol: rank deficiency 3. ``constr=TRUE`` (default) is the single sum-to-zero
constraint, as in R-INLA.

Options (R-INLA's f() arguments):

* ``cyclic=TRUE``: the torus; R = I ⊗ R2ᶜ_r + R2ᶜ_c ⊗ I + 2 R1ᶜ_c ⊗ R1ᶜ_r with the circulant
  rw structures (needs nrow, ncol ≥ 5); null space the constants (rank deficiency 1).
* ``bvalue=0``: condition on x = 0 outside the lattice: the interior stencil everywhere (a proper
  model, rank deficiency 0).
* ``scale_model=TRUE`` (``GMRFLib_rw2d_scale``): R is multiplied by the geometric mean of the
  marginal variances of (R + ε I)⁻¹ conditioned on the constraints (1, irow − nrow/2,
  icol − ncol/2) (cyclic: 1ᵀx = 0; bvalue=0: none, ε = 0), ε = ε_mach^{3/4} (GMRFLib_eps(0.75)).

θ = log τ, loggamma(1, 5e-05), initial 4 ("Log precision for x" / "Precision for x").

Example:
    >>> import numpy as np
    >>> m, idx, ids = RW2DModel.from_term("node", np.arange(1.0, 26.0), {"nrow": 5, "ncol": 5})
    >>> Q = np.asarray(m.precision_dense([0.0]))
    >>> [float(Q[12, j]) for j in (12, 13, 18, 14)], m.rank_deficiency
    ([20.0, -8.0, 2.0, 1.0], 3)
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from ..errors import ModelError
from .build import resolve_index
from .generic import StructureModel, check_model_args
from .registry import register_model
from .rw import cyclic_rw_structure, rw_structure
from .scaling import constrained_marginal_variances

__all__ = ["RW2DModel", "rw2d_structure", "lattice_null_basis", "lattice_size", "lattice_index", "RW2D_SCALE_EPS"]

#: GMRFLib_eps(0.75): the ridge GMRFLib adds before computing the scaling variances
RW2D_SCALE_EPS = float(np.finfo(float).eps ** 0.75)


def lattice_size(args: dict, model: str, label: str) -> tuple[int, int]:
    """(nrow, ncol) from the f() arguments, checked as R-INLA's f() checks them (both given,
    positive integers, ``n = nrow·ncol`` when n is given)."""
    where = f'f({label}, model="{model}")'
    nrow, ncol = args.get("nrow"), args.get("ncol")
    if nrow is None or ncol is None:
        raise ModelError(f"{where}: 'nrow' and 'ncol' must be specified for model {model!r} (the lattice is nrow x ncol)")
    for name, v in (("nrow", nrow), ("ncol", ncol)):
        ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) \
            and np.isfinite(v) and float(v) == int(v) and v > 0
        if not ok:
            raise ModelError(f"{where}: {name} = {v!r} must be a positive integer")
    nrow, ncol = int(nrow), int(ncol)
    if args.get("n") is not None and int(args["n"]) != nrow * ncol:
        raise ModelError(f"{where}: n = {args['n']} does not match nrow * ncol = {nrow} * {ncol} = {nrow * ncol}")
    return nrow, ncol


def lattice_index(label: str, covariate, values, nrow: int, ncol: int, model: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows -> 0-based lattice nodes. The covariate holds R-INLA's node numbers 1..nrow·ncol
    (``inla.lattice2node``: node = irow + (icol − 1)·nrow); ``values`` (default 1..n) as R-INLA.
    A value outside the lattice is a ModelError naming it and its rows."""
    n = nrow * ncol
    where = f'f({label}, model="{model}")'
    if values is not None and np.asarray(values).size != n:
        raise ModelError(f"{where}: values= has {np.asarray(values).size} entries but the lattice has nrow * ncol = {n} nodes")
    if covariate is not None and values is None:
        x = np.asarray(covariate, dtype=float).ravel()
        ok = ~np.isnan(x)
        bad = ok & ((x != np.round(x)) | (x < 1) | (x > n))
        if np.any(bad):
            vals = np.unique(x[bad])
            rows = np.flatnonzero(bad)[:5] + 1
            raise ModelError(
                f"{where}: the covariate {label!r} must hold lattice node numbers 1..{n} (nrow * ncol = {nrow} * {ncol}; "
                f"node = irow + (icol - 1) * nrow, see inla.lattice2node); found "
                + ", ".join(f"{v:g}" for v in vals[:10]) + ("" if vals.size <= 10 else f", ... ({vals.size} values)")
                + f" at rows {', '.join(map(str, rows))}{', ...' if bad.sum() > 5 else ''}"
            )
    default = np.arange(1.0, n + 1.0) if values is None else None
    return resolve_index(label, covariate, values, None, default_values=default, model=model)


def rw2d_structure(nrow: int, ncol: int, *, cyclic: bool = False, bvalue_zero: bool = False) -> sp.csc_matrix:
    """R of R-INLA's rw2d on the nrow × ncol lattice (column-major nodes), see the module doc.

    ``bvalue_zero``: the interior 13-point stencil on every node (x = 0 outside the lattice)."""
    if bvalue_zero:
        return _stencil_structure(nrow, ncol)
    if cyclic:
        R2r, R2c = cyclic_rw_structure(nrow, 2), cyclic_rw_structure(ncol, 2)
        R1r, R1c = cyclic_rw_structure(nrow, 1), cyclic_rw_structure(ncol, 1)
    else:
        R2r, R2c = rw_structure(np.arange(nrow, dtype=float), 2), rw_structure(np.arange(ncol, dtype=float), 2)
        R1r, R1c = rw_structure(np.arange(nrow, dtype=float), 1), rw_structure(np.arange(ncol, dtype=float), 1)
    Ir, Ic = sp.identity(nrow, format="csc"), sp.identity(ncol, format="csc")
    # vec(X) column-major: A ⊗ B acts with A on the column index, B on the row index
    R = sp.kron(Ic, R2r) + sp.kron(R2c, Ir) + 2.0 * sp.kron(R1c, R1r)
    R = sp.csc_matrix(R)
    R.eliminate_zeros()
    return R


#: the interior rw2d stencil: (row offset, column offset) -> value
_STENCIL = {(0, 0): 20.0, (1, 0): -8.0, (-1, 0): -8.0, (0, 1): -8.0, (0, -1): -8.0,
            (1, 1): 2.0, (1, -1): 2.0, (-1, 1): 2.0, (-1, -1): 2.0,
            (2, 0): 1.0, (-2, 0): 1.0, (0, 2): 1.0, (0, -2): 1.0}


def _stencil_structure(nrow: int, ncol: int) -> sp.csc_matrix:
    ir, ic = np.meshgrid(np.arange(nrow), np.arange(ncol), indexing="ij")
    ir, ic = ir.ravel(order="F"), ic.ravel(order="F")
    rows, cols, vals = [], [], []
    for (dr, dc), v in _STENCIL.items():
        jr, jc = ir + dr, ic + dc
        ok = (jr >= 0) & (jr < nrow) & (jc >= 0) & (jc < ncol)
        rows.append((ir + nrow * ic)[ok])
        cols.append((jr + nrow * jc)[ok])
        vals.append(np.full(int(ok.sum()), v))
    n = nrow * ncol
    return sp.csc_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))


def lattice_null_basis(nrow: int, ncol: int, *, cyclic: bool = False) -> np.ndarray:
    """Orthonormal basis of null(R): span{1, irow, icol} (cyclic: the constants)."""
    ir, ic = np.meshgrid(np.arange(nrow, dtype=float), np.arange(ncol, dtype=float), indexing="ij")
    cols = [np.ones(nrow * ncol)]
    if not cyclic:
        cols += [ir.ravel(order="F") - (nrow - 1) / 2.0, ic.ravel(order="F") - (ncol - 1) / 2.0]
    Q, _ = np.linalg.qr(np.column_stack(cols))
    return Q


def rw2d_scale_factor(R, nrow: int, ncol: int, *, cyclic: bool = False, bvalue_zero: bool = False) -> float:
    """``GMRFLib_rw2d_scale``: geometric mean of the marginal variances of (R + εI)⁻¹ under the
    constraints removing the null space (see the module doc)."""
    if bvalue_zero:
        v = constrained_marginal_variances(R, None, 0.0)
    else:
        ir, ic = np.meshgrid(np.arange(nrow, dtype=float), np.arange(ncol, dtype=float), indexing="ij")
        A = np.ones((1, nrow * ncol)) if cyclic else np.vstack(
            [np.ones(nrow * ncol), ir.ravel(order="F") - nrow / 2.0, ic.ravel(order="F") - ncol / 2.0])
        v = constrained_marginal_variances(R, A, RW2D_SCALE_EPS)
    return float(np.exp(np.mean(np.log(v))))


@register_model("rw2d")
class RW2DModel(StructureModel):
    """``f(node, model="rw2d", nrow=, ncol=)``: Q = τ R, R the thin-plate structure (module doc)."""

    model_name = "rw2d"
    default_constr: ClassVar[bool] = True

    @classmethod
    def from_term(cls, label, covariate, args: dict[str, Any]):
        where = f'f({label}, model="rw2d")'
        nrow, ncol = lattice_size(args, cls.model_name, label)
        check_model_args({k: v for k, v in args.items() if k not in ("nrow", "ncol", "bvalue")},
                         cls.model_name, label, cyclic=True, scale=True)
        cyclic = bool(args.get("cyclic") or False)
        bvalue = args.get("bvalue")
        bvalue_zero = bvalue is not None and not (isinstance(bvalue, float) and np.isnan(bvalue))
        if bvalue_zero and float(bvalue) != 0.0:
            raise ModelError(f"{where}: bvalue = {bvalue!r}; only bvalue = 0 (x = 0 outside the lattice) is defined")
        if bvalue_zero and cyclic:
            raise ModelError(f"{where}: bvalue = 0 and cyclic = TRUE exclude each other")
        least = 5 if cyclic else 4
        if nrow < least or ncol < least:
            raise ModelError(f"{where}: the lattice must be at least {least} x {least}{' when cyclic' if cyclic else ''}, "
                             f"got nrow = {nrow}, ncol = {ncol}")
        index, ids = lattice_index(label, covariate, args.get("values"), nrow, ncol, cls.model_name)
        R = rw2d_structure(nrow, ncol, cyclic=cyclic, bvalue_zero=bvalue_zero)
        rank_def = 0 if bvalue_zero else (1 if cyclic else 3)
        null = None if rank_def == 0 else lattice_null_basis(nrow, ncol, cyclic=cyclic)
        factor = 1.0
        if args.get("scale_model"):
            factor = rw2d_scale_factor(R, nrow, ncol, cyclic=cyclic, bvalue_zero=bvalue_zero)
            R = factor * R
        cons, rd, hyper = cls._common(cls.model_name, label, args, nrow * ncol, rank_def)
        model = cls(label, R, hyper, rank_deficiency=rank_def, null_basis=null, constraints=cons,
                    rinla_rankdef_value=rd, diagonal=float(args.get("diagonal") or 0.0), scale_factor=factor)
        model.nrow, model.ncol, model.cyclic, model.bvalue_zero = nrow, ncol, cyclic, bvalue_zero
        return model, index, ids
