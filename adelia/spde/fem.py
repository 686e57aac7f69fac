"""Finite element matrices for piecewise-linear bases (fmesher's ``fm_fem``).

For a triangle mesh with P1 hat functions ψ_i (Lindgren, Rue & Lindström 2011, §2.3):

* c1 — consistent mass, (c1)_ij = ∫ ψ_i ψ_j; per triangle of area A: A/12·(1 + δ_ij);
* c0 — lumped mass, the diagonal of the row sums of c1 (A/3 per triangle vertex);
* g1 — stiffness, (g1)_ij = ∫ ∇ψ_i·∇ψ_j; per triangle (e_i·e_j)/(4A) with e_k the edge
  vector opposite vertex k;
* g_k = g1 c0⁻¹ g_{k−1} for k ≥ 2 (g2 = g1 c0⁻¹ g1, g3 = g1 c0⁻¹ g2, ...).

These are the matrices R-INLA's spde2 models use (M0 = c0, M1 = g1, M2 = g2 for α = 2).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from ._geometry import signed_areas


def fem(mesh, order: int = 2) -> dict:
    """FEM matrices of a mesh, named as fmesher names them.

    Args:
        mesh: a :class:`~adelia.spde.Mesh` (2-D, P1) or :class:`~adelia.spde.Mesh1D`.
        order: highest k for which g_k is returned (≥ 1).

    Returns:
        dict with ``c0`` (diagonal, lumped), ``c1``, ``g1``, ..., ``g{order}`` as scipy CSR
        matrices, ``va`` (vertex areas = diag c0) and, for 2-D meshes, ``ta`` (triangle areas).

    Example:
        >>> import numpy as np
        >>> from adelia.spde import Mesh, fem
        >>> m = Mesh(np.array([[0., 0.], [1., 0.], [0., 1.]]), np.array([[0, 1, 2]]))
        >>> float(fem(m)["c0"].sum())
        0.5
    """
    order = int(order)
    if order < 1:
        raise DataError(f"fem: order must be >= 1, got {order}")
    from .mesh1d import Mesh1D

    if isinstance(mesh, Mesh1D):
        c0, c1, g1 = _fem_1d(mesh.loc)
        out = {"c0": c0, "c1": c1, "g1": g1}
    else:
        c0, c1, g1, ta = _fem_2d(mesh.loc, mesh.tv)
        out = {"c0": c0, "c1": c1, "g1": g1, "ta": ta}
    inv_c0 = sp.diags(1.0 / c0.diagonal())
    g_prev = g1
    for k in range(2, order + 1):
        g_k = (g1 @ inv_c0 @ g_prev).tocsr()
        g_k = (0.5 * (g_k + g_k.T)).tocsr()  # exact symmetry despite rounding
        g_k.sort_indices()
        out[f"g{k}"] = g_k
        g_prev = g_k
    out["va"] = np.asarray(c0.diagonal()).copy()
    return out


def _fem_2d(loc: np.ndarray, tv: np.ndarray):
    area = np.abs(signed_areas(loc, tv))
    p = loc[tv]  # (m, 3, 2)
    # edge opposite vertex k, oriented consistently (the sign cancels in e_i·e_j products)
    e = np.stack([p[:, 2] - p[:, 1], p[:, 0] - p[:, 2], p[:, 1] - p[:, 0]], axis=1)  # (m, 3, 2)
    gloc = np.einsum("mid,mjd->mij", e, e) / (4.0 * area)[:, None, None]
    mloc = (area / 12.0)[:, None, None] * (np.ones((3, 3)) + np.eye(3))[None]
    rows = np.repeat(tv, 3, axis=1).ravel()
    cols = np.tile(tv, (1, 3)).ravel()
    n = loc.shape[0]
    c1 = sp.coo_matrix((mloc.ravel(), (rows, cols)), shape=(n, n)).tocsr()
    g1 = sp.coo_matrix((gloc.ravel(), (rows, cols)), shape=(n, n)).tocsr()
    c1.sum_duplicates()
    g1.sum_duplicates()
    c1.sort_indices()
    g1.sort_indices()
    c0 = sp.diags(np.asarray(c1.sum(axis=1)).ravel()).tocsr()
    return c0, c1, g1, area


def _fem_1d(knots: np.ndarray):
    """P1 FEM on a 1-D mesh with knots t_1 < ... < t_n (free boundary)."""
    h = np.diff(knots)
    n = knots.size
    c0d = np.zeros(n)
    c0d[:-1] += h / 2
    c0d[1:] += h / 2
    i = np.arange(n - 1)
    c1 = sp.coo_matrix(
        (np.concatenate([h / 3, h / 3, h / 6, h / 6]), (np.concatenate([i, i + 1, i, i + 1]), np.concatenate([i, i + 1, i + 1, i]))),
        shape=(n, n),
    ).tocsr()
    g1 = sp.coo_matrix(
        (np.concatenate([1 / h, 1 / h, -1 / h, -1 / h]), (np.concatenate([i, i + 1, i, i + 1]), np.concatenate([i, i + 1, i + 1, i]))),
        shape=(n, n),
    ).tocsr()
    c1.sum_duplicates()
    g1.sum_duplicates()
    return sp.diags(c0d).tocsr(), c1, g1
