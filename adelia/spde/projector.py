"""Projector matrices from mesh nodes to locations (``inla.spde.make.A``) and SPDE index
vectors (``inla.spde.make.index``).

Row i of A holds the barycentric coordinates of location i in the triangle containing it,
so (A x)_i is the piecewise-linear field at location i. Space-time and replicated fields
use R-INLA's layout: column = node + n·(group − 1) + n·n_group·(repl − 1) (1-based group
and replicate, time/group-major blocks of ``mesh.n`` nodes).
"""

from __future__ import annotations


import numpy as np
import scipy.sparse as sp

from ..errors import DataError
from ..user_warnings import warn
from ._geometry import cross2


def locate(mesh, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangle containing each point and its barycentric coordinates.

    Point location by a uniform bucket grid over the triangles' bounding boxes; each
    candidate triangle is tested exactly. A point on a shared edge gets any of the
    triangles (the weights agree).

    Returns:
        (tri, bary): tri (k,) triangle index or −1 outside the mesh; bary (k, 3) weights of
        the triangle's vertices (zero rows outside).

    Example:
        >>> from adelia.spde import Mesh
        >>> m = Mesh(np.array([[0., 0.], [1., 0.], [0., 1.], [1., 1.]]), np.array([[0, 1, 2], [1, 3, 2]]))
        >>> tri, bary = locate(m, np.array([[0.25, 0.25], [0.9, 0.9], [2.0, 2.0]]))
        >>> tri   # the last point is outside the mesh
        array([ 0,  1, -1])
        >>> bary
        array([[0.5 , 0.25, 0.25],
               [0.1 , 0.8 , 0.1 ],
               [0.  , 0.  , 0.  ]])
    """
    pts = np.asarray(points, dtype=float)
    loc, tv = mesh.loc, mesh.tv
    k = len(pts)
    tri_out = np.full(k, -1, dtype=np.int64)
    bary_out = np.zeros((k, 3))
    if k == 0:
        return tri_out, bary_out
    corners = loc[tv]  # (m, 3, 2)
    lo_t = corners.min(axis=1)
    hi_t = corners.max(axis=1)
    lo = loc.min(axis=0)
    hi = loc.max(axis=0)
    span = np.maximum(hi - lo, 1e-300)
    m = len(tv)
    n_side = max(1, int(np.sqrt(m)))
    cell = span / n_side
    nx = ny = n_side
    tol = 1e-12 * float(span.max())

    def cell_of(xy):
        ij = np.floor((xy - lo) / cell).astype(np.int64)
        return np.clip(ij, 0, [nx - 1, ny - 1])

    # register each triangle in every cell its (slightly padded) bounding box overlaps
    c_lo = cell_of(lo_t - tol)
    c_hi = cell_of(hi_t + tol)
    wx = c_hi[:, 0] - c_lo[:, 0] + 1
    wy = c_hi[:, 1] - c_lo[:, 1] + 1
    counts = wx * wy
    t_rep = np.repeat(np.arange(m), counts)
    offs = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cx = c_lo[t_rep, 0] + offs % wx[t_rep]
    cy = c_lo[t_rep, 1] + offs // wx[t_rep]
    cid = cx * ny + cy
    order = np.argsort(cid, kind="stable")
    cell_tris = t_rep[order]
    starts = np.searchsorted(cid[order], np.arange(nx * ny + 1))

    inbox = np.all((pts >= lo - tol) & (pts <= hi + tol), axis=1)
    q = np.flatnonzero(inbox)
    if q.size == 0:
        return tri_out, bary_out
    qc = cell_of(pts[q])
    qid = qc[:, 0] * ny + qc[:, 1]
    n_cand = starts[qid + 1] - starts[qid]
    pt_rep = np.repeat(q, n_cand)
    pos = np.arange(n_cand.sum()) - np.repeat(np.cumsum(n_cand) - n_cand, n_cand)
    cand = cell_tris[np.repeat(starts[qid], n_cand) + pos]
    a = corners[cand, 0]
    b = corners[cand, 1]
    c = corners[cand, 2]
    p = pts[pt_rep]
    det = cross2(b - a, c - a)
    w0 = cross2(b - p, c - p) / det
    w1 = cross2(c - p, a - p) / det
    w2 = cross2(a - p, b - p) / det
    w = np.stack([w0, w1, w2], axis=1)
    score = w.min(axis=1)  # ≥ 0 inside; pick the most interior candidate per point
    best = np.full(k, -np.inf)
    np.maximum.at(best, pt_rep, score)
    is_best = score == best[pt_rep]
    # first best candidate per point
    first = np.zeros(len(pt_rep), dtype=bool)
    idx_best = np.flatnonzero(is_best)
    _, first_pos = np.unique(pt_rep[idx_best], return_index=True)
    first[idx_best[first_pos]] = True
    inside = first & (score >= -1e-12)
    pts_in = pt_rep[inside]
    tri_out[pts_in] = cand[inside]
    wb = w[inside]
    # rounding: clip tiny negatives (points on edges) and exact-zero tiny weights, renormalise
    wb[np.abs(wb) < 1e-13] = 0.0
    wb = np.clip(wb, 0.0, None)
    wb /= wb.sum(axis=1, keepdims=True)
    bary_out[pts_in] = wb
    return tri_out, bary_out


def _index_vector(values, n_rows: int, name: str, n_max: int | None):
    if values is None:
        return np.zeros(n_rows, dtype=np.int64), 1
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 1 and n_rows != 1:
        v = np.full(n_rows, v[0])
    if v.size != n_rows:
        raise DataError(f"make_A: {name} has length {v.size} but there are {n_rows} locations")
    if not np.all(np.isfinite(v)) or np.any(v != np.round(v)) or np.any(v < 1):
        bad = np.flatnonzero(~np.isfinite(v) | (v != np.round(v)) | (v < 1))
        raise DataError(f"make_A: {name} must hold 1-based integers; rows {bad[:10].tolist()} do not")
    v = v.astype(np.int64)
    n_level = int(v.max()) if n_max is None else int(n_max)
    if v.max() > n_level:
        raise DataError(f"make_A: {name} has value {int(v.max())} > n_{name} = {n_level}")
    return v - 1, n_level


def make_A(mesh, loc=None, group=None, n_group=None, repl=None, n_repl=None, weights=None) -> sp.csr_matrix:
    """Projector matrix (R-INLA's ``inla.spde.make.A``).

    Args:
        mesh: the :class:`Mesh`.
        loc: (k, 2) locations (a third column is ignored). None: the identity on the nodes
            (A = I_n, with group/repl applied per node).
        group: 1-based group (e.g. time) index per location; column block ``group − 1``.
        n_group: number of groups (default max(group)).
        repl: 1-based replicate index per location.
        n_repl: number of replicates (default max(repl)).
        weights: optional per-row scaling.

    Returns:
        scipy CSR matrix of shape (k, mesh.n · n_group · n_repl); column of node j in group
        g, replicate r (1-based) is j + n·(g − 1) + n·n_group·(r − 1) (1-based j as well).
        Locations outside the mesh give zero rows and a warning naming how many (fmesher
        gives zero rows too).

    Example:
        >>> import numpy as np
        >>> from adelia.spde import Mesh, make_A
        >>> m = Mesh(np.array([[0., 0.], [1., 0.], [0., 1.]]), np.array([[0, 1, 2]]))
        >>> make_A(m, np.array([[0.25, 0.25]])).toarray()
        array([[0.5 , 0.25, 0.25]])
    """
    n = mesh.n
    if loc is None:
        rows = np.arange(n)
        cols = np.arange(n)
        vals = np.ones(n)
        k = n
    else:
        pts = np.asarray(loc, dtype=float)
        if pts.ndim == 1 and pts.size in (2, 3):
            pts = pts[None, :]
        if pts.ndim != 2 or pts.shape[1] not in (2, 3):
            raise DataError(f"make_A: loc must be an (k, 2) array of coordinates, got shape {pts.shape}")
        pts = pts[:, :2]
        if not np.all(np.isfinite(pts)):
            bad = np.flatnonzero(~np.isfinite(pts).all(axis=1))
            raise DataError(f"make_A: loc has non-finite coordinates in rows {bad[:10].tolist()}")
        k = len(pts)
        tri, bary = locate(mesh, pts)
        outside = tri < 0
        if outside.any():
            warn(
                f"make_A: {int(outside.sum())} of {k} location(s) lie outside the mesh "
                f"(first rows {np.flatnonzero(outside)[:5].tolist()}); their rows of A are zero",
                UserWarning
            )
        inside = np.flatnonzero(~outside)
        rows = np.repeat(inside, 3)
        cols = mesh.tv[tri[inside]].ravel()
        vals = bary[inside].ravel()
    g, ng = _index_vector(group, k, "group", n_group)
    r, nr = _index_vector(repl, k, "repl", n_repl)
    cols = cols + n * g[rows] + n * ng * r[rows]
    if weights is not None:
        w = np.asarray(weights, dtype=float).ravel()
        if w.size == 1:
            w = np.full(k, w[0])
        if w.size != k:
            raise DataError(f"make_A: weights has length {w.size} but there are {k} locations")
        vals = vals * w[rows]
    A = sp.coo_matrix((vals, (rows, cols)), shape=(k, n * ng * nr)).tocsr()
    A.sum_duplicates()
    A.eliminate_zeros()
    A.sort_indices()
    return A


def make_index(name: str, n_spde: int, n_group: int = 1, n_repl: int = 1) -> dict:
    """Index vectors of an SPDE effect (R-INLA's ``inla.spde.make.index``), 1-based.

    Returns:
        ``{name: node, name + ".group": group, name + ".repl": replicate}``, each of length
        n_spde·n_group·n_repl, node fastest, then group, then replicate (matching
        :func:`make_A`'s column layout).

    Example:
        >>> make_index("s", 2, n_group=2)["s.group"]
        array([1, 1, 2, 2])
    """
    n_spde, n_group, n_repl = int(n_spde), int(n_group), int(n_repl)
    if min(n_spde, n_group, n_repl) < 1:
        raise DataError(f"make_index: sizes must be >= 1, got n_spde={n_spde}, n_group={n_group}, n_repl={n_repl}")
    node = np.tile(np.arange(1, n_spde + 1), n_group * n_repl)
    grp = np.tile(np.repeat(np.arange(1, n_group + 1), n_spde), n_repl)
    rep = np.repeat(np.arange(1, n_repl + 1), n_spde * n_group)
    return {name: node, f"{name}.group": grp, f"{name}.repl": rep}
