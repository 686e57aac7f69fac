"""The Matérn field on a regular lattice (R-INLA's ``matern2d``; GMRFLib ``GMRFLib_matern2d``).

On the infinite lattice, the GMRF with precision proportional to K^{ν+1}, K = a I − (sum of the
four nearest-neighbour shifts), a = 4 + κ², approximates the Matérn field with smoothness ν
(Lindgren, Rue & Lindström 2011, §2.2). R-INLA uses its stencil on an ``nrow`` × ``ncol``
lattice with x = 0 outside (the stencil truncated at the edge, which is the principal submatrix of
the infinite-lattice precision, so proper), and scales it so that 1/τ is the marginal variance
on the infinite lattice:

    Q = τ σ²(κ) S_ν(a),   σ²(κ) = κ^{−2ν} / (4πν),   κ = √(8ν) / r,

with r the range. The stencil S_ν (entries by (min, max) of the |row|, |column| offsets):

    ν = 1: (0,0) 4 + a², (0,1) −2a, (0,2) 1, (1,1) 2
    ν = 2: (0,0) a(a² + 12), (0,1) −3(a² + 3), (0,2) 3a, (0,3) −1, (1,1) 6a, (1,2) −3
    ν = 3: (0,0) (a² + 6)² + 12a², (0,1) −4a(a² + 9), (0,2) 2(3a² + 8), (0,3) −4a, (0,4) 1,
           (1,1) 12(a² + 2), (1,2) −12a, (1,3) 4, (2,2) 6

θ₁ = log τ ("Log precision for x" / "Precision for x"), loggamma(1, 5e-05), initial 4;
θ₂ = log r ("Log range for x" / "Range for x"), loggamma(1, 0.01), initial 2 (``inla.models()``).
``nu`` ∈ {1, 2, 3} (default 1; R-INLA refuses ν = 0 at run time); ``constr=FALSE`` by default;
``cyclic=TRUE`` wraps the offsets around the torus (needs nrow, ncol ≥ 2ν + 3). Nodes as in
``rw2d``: node = irow + (icol − 1)·nrow. ½ log|Q| has no closed form on the finite lattice: the
compiler computes it with a sparse Cholesky.

Example:
    >>> import numpy as np
    >>> m, idx, ids = Matern2DModel.from_term("s", np.arange(1.0, 37.0), {"nrow": 6, "ncol": 6})
    >>> m.n, [h.name for h in m.hyperparameters]
    (36, ['Precision for s', 'Range for s'])
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import jax.numpy as jnp
import numpy as np

from ..engine.pattern import SparsePattern
from ..errors import ModelError
from .base import LatentModel, LinearConstraints
from .constraints import model_constraints, rinla_rankdef
from .hyper import HyperSpec, build_hyperparameters, obsolete_hyper_args
from .registry import register_model
from .rw2d import lattice_index, lattice_size

__all__ = ["Matern2DModel", "MATERN2D_HYPER", "MATERN2D_STENCILS", "matern2d_std_variance"]

#: ``inla.models()$latent$matern2d$hyper``
MATERN2D_HYPER = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "loggamma", (1.0, 0.00005), 4.0),
    HyperSpec("theta2", "range", "log range", "Log range for {label}", "Range for {label}",
              "loggamma", (1.0, 0.01), 2.0),
)

#: S_ν: (min offset, max offset) -> polynomial coefficients in a (constant term first)
MATERN2D_STENCILS = {
    1: {(0, 0): (4, 0, 1), (0, 1): (0, -2), (0, 2): (1,), (1, 1): (2,)},
    2: {(0, 0): (0, 12, 0, 1), (0, 1): (-9, 0, -3), (0, 2): (0, 3), (0, 3): (-1,), (1, 1): (0, 6), (1, 2): (-3,)},
    3: {(0, 0): (36, 0, 24, 0, 1), (0, 1): (0, -36, 0, -4), (0, 2): (16, 0, 6), (0, 3): (0, -4), (0, 4): (1,),
        (1, 1): (24, 0, 12), (1, 2): (0, -12), (1, 3): (4,), (2, 2): (6,)},
}
_N_POWERS = 5


def matern2d_std_variance(kappa, nu: int):
    """σ²(κ) = κ^{−2ν}/(4πν): the marginal variance of the unscaled stencil on the infinite
    lattice (GMRFLib's ``std_variance``); jnp-traceable."""
    return kappa ** (-2.0 * nu) / (4.0 * math.pi * nu)


@register_model("matern2d")
class Matern2DModel(LatentModel):
    """``f(node, model="matern2d", nrow=, ncol=, nu=)``: Q = τ σ²(κ) S_ν(4 + κ²) (module doc)."""

    model_name = "matern2d"
    default_constr: ClassVar[bool] = False

    def __init__(self, label: str, nrow: int, ncol: int, nu: int, hyperparameters, *, cyclic: bool = False,
                 constraints: LinearConstraints | None = None, rinla_rankdef_value: float = 0.0, diagonal: float = 0.0):
        self.label = label
        self.nrow, self.ncol, self.nu, self.cyclic = int(nrow), int(ncol), int(nu), bool(cyclic)
        self.n = self.nrow * self.ncol
        self.hyperparameters = tuple(hyperparameters)
        self.rank_deficiency = 0
        self._constraints = constraints
        self.rinla_rankdef = float(rinla_rankdef_value)
        self.diagonal = float(diagonal)
        self._pattern, self._coef = self._stencil_pattern()
        self._diag = np.zeros(self._pattern.nnz)
        self._diag[self._pattern.diag_index] = 1.0

    def _stencil_pattern(self) -> tuple[SparsePattern, np.ndarray]:
        """Lower-triangular pattern of S_ν on the lattice and the polynomial coefficients (in a)
        of every entry, shape (nnz, 5)."""
        nrow, ncol, reach = self.nrow, self.ncol, self.nu + 1
        stencil = MATERN2D_STENCILS[self.nu]
        node = np.arange(self.n)
        ir, ic = node % nrow, node // nrow
        rows, cols = [], []
        for dr in range(-reach, reach + 1):
            for dc in range(-reach, reach + 1):
                key = (min(abs(dr), abs(dc)), max(abs(dr), abs(dc)))
                if key not in stencil:
                    continue
                jr, jc = ir + dr, ic + dc
                if self.cyclic:
                    jr, jc = jr % nrow, jc % ncol
                    ok = np.ones(self.n, dtype=bool)
                else:
                    ok = (jr >= 0) & (jr < nrow) & (jc >= 0) & (jc < ncol)
                j = jr + nrow * jc
                keep = ok & (j <= node)
                rows.append(node[keep])
                cols.append(j[keep])
        pattern = SparsePattern.from_entries(self.n, np.concatenate(rows), np.concatenate(cols))
        # the offset class of every stored entry (wrap-around distances on the torus)
        dr = np.abs(pattern.rows % nrow - pattern.cols % nrow)
        dc = np.abs(pattern.rows // nrow - pattern.cols // nrow)
        if self.cyclic:
            dr, dc = np.minimum(dr, nrow - dr), np.minimum(dc, ncol - dc)
        coef = np.zeros((pattern.nnz, _N_POWERS))
        for (lo, hi), poly in stencil.items():
            sel = (np.minimum(dr, dc) == lo) & (np.maximum(dr, dc) == hi)
            coef[sel, : len(poly)] = poly
        return pattern, coef

    @classmethod
    def from_term(cls, label, covariate, args: dict[str, Any]):
        where = f'f({label}, model="matern2d")'
        nrow, ncol = lattice_size(args, cls.model_name, label)
        for key in ("scale_model", "Cmatrix", "graph", "season_length", "bvalue"):
            if args.get(key) is not None and args.get(key) is not False:
                raise ModelError(f"{where}: argument {key!r} is not used for model 'matern2d'")
        nu = args.get("nu")
        nu = 1 if nu is None else nu
        if nu not in (1, 2, 3):
            raise ModelError(f"{where}: nu = {nu!r}; the matern2d model is defined for nu = 1, 2 or 3")
        nu = int(nu)
        cyclic = bool(args.get("cyclic") or False)
        if cyclic and min(nrow, ncol) < 2 * nu + 3:
            raise ModelError(f"{where}: cyclic = TRUE needs nrow and ncol of at least 2 * nu + 3 = {2 * nu + 3}, "
                             f"got nrow = {nrow}, ncol = {ncol}")
        index, ids = lattice_index(label, covariate, args.get("values"), nrow, ncol, cls.model_name)
        constr = bool(args.get("constr", False))
        cons = model_constraints(nrow * ncol, constr, args.get("extraconstr"), label)
        n_extra = 0 if cons is None else cons.k - (1 if constr else 0)
        rd = rinla_rankdef(0, constr, n_extra, args.get("rankdef"))
        hyper = build_hyperparameters(MATERN2D_HYPER, label, args.get("hyper"), **obsolete_hyper_args(args), where=where)
        model = cls(label, nrow, ncol, nu, hyper, cyclic=cyclic, constraints=cons, rinla_rankdef_value=rd,
                    diagonal=float(args.get("diagonal") or 0.0))
        return model, index, ids

    def pattern(self) -> SparsePattern:
        return self._pattern

    def precision_values(self, theta):
        """τ σ²(κ) S_ν(a) on the pattern, τ = e^θ₁, κ = √(8ν) e^{−θ₂}, a = 4 + κ²."""
        theta = jnp.asarray(theta, dtype=jnp.float64)
        kappa = math.sqrt(8.0 * self.nu) * jnp.exp(-theta[1])
        a = 4.0 + kappa**2
        powers = jnp.stack([a**k for k in range(_N_POWERS)])
        scale = jnp.exp(theta[0]) * matern2d_std_variance(kappa, self.nu)
        return scale * (jnp.asarray(self._coef) @ powers) + self.diagonal * jnp.asarray(self._diag)

    def constraints(self) -> LinearConstraints | None:
        return self._constraints
