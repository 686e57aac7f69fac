"""Mesh construction with R-INLA's ``inla.mesh.2d`` semantics (fmesher's ``fm_mesh_2d_inla``).

fmesher builds the mesh in layers:

1. *Inner domain*: the polygon ``boundary[0]`` if given, else a convex enclosure of the
   points (``loc`` and ``loc_domain``): an ``n[0]``-gon (default 8) pushed ``offset[0]``
   outside their convex hull (negative offset: a fraction of the points' width).
2. The inner domain is triangulated through the points and refined until every triangle
   has edges ≤ ``max_edge[0]`` and angles ≥ ``min_angle[0]``.
3. *Outer extension* (when two values are given for max_edge/offset/...): the polygon
   ``boundary[1]`` or an ``n[1]``-gon (default 16) ``offset[1]`` around the inner domain;
   the ring between the two is refined with ``max_edge[1]``/``min_angle[1]``, the inner
   boundary kept as a constraint.

Input points closer than ``cutoff`` are merged into one node (boundary vertices first, then
the points in input order), as fmesher does. Here both layers are refined in one
conforming Delaunay refinement (see :mod:`adelia.spde._refine`), with the inner polygon as
an interior constraint, which gives the same guarantees per layer.

Not supported (say so, do not guess): polygon boundaries with holes or several pieces,
``interior`` constraint lines, ``crs``, spherical meshes, ``quality.spec``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from ..errors import DataError
from ..user_warnings import warn
from ._geometry import convex_enclosure, diameter, points_in_polygon, polygon_area
from ._refine import refine
from .mesh import Mesh


def _as_points(x, what: str) -> np.ndarray:
    if x is None:
        return np.zeros((0, 2))
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 1 and arr.size in (2, 3):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise DataError(f"mesh_2d: {what} must be an (n, 2) array of coordinates, got shape {arr.shape}")
    arr = arr[:, :2]
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise DataError(f"mesh_2d: {what} has non-finite coordinates in rows {bad[:10].tolist()}")
    return arr


def _as_layers(value, name: str, default):
    """R's one-or-two-values arguments as a list."""
    if value is None:
        return None
    arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    if arr.size == 0:
        return None
    if arr.size > 2:
        warn(f"mesh_2d: {name} has {arr.size} values; only the first two (inner, outer) are used")
        arr = arr[:2]
    return [float(v) for v in arr]


def _as_boundaries(boundary) -> list:
    if boundary is None:
        return []
    try:
        arr = np.asarray(boundary, dtype=float)
        if arr.ndim == 2 and arr.shape[1] in (2, 3):
            return [_polygon(arr, "boundary")]
    except (ValueError, TypeError):
        pass
    out = []
    for k, b in enumerate(boundary):
        out.append(None if b is None else _polygon(np.asarray(b, dtype=float), f"boundary[{k}]"))
    if len(out) > 2:
        warn("mesh_2d: more than two boundaries given; only the first two are used")
        out = out[:2]
    return out


def _polygon(arr: np.ndarray, what: str) -> np.ndarray:
    arr = _as_points(arr, what)
    if len(arr) > 1 and np.allclose(arr[0], arr[-1]):
        arr = arr[:-1]  # closed ring given with the first vertex repeated
    if len(arr) < 3:
        raise DataError(f"mesh_2d: {what} needs at least 3 vertices, got {len(arr)}")
    if abs(polygon_area(arr)) <= 0.0:
        raise DataError(f"mesh_2d: {what} has zero area")
    if polygon_area(arr) < 0:
        arr = arr[::-1].copy()
    return arr


def _merge_cutoff(fixed: np.ndarray, points: np.ndarray, cutoff: float):
    """Keep ``fixed`` vertices; add ``points`` in order unless within ``cutoff`` of a kept vertex.

    Returns (kept_points, index) where index[i] is the position of point i's vertex in
    concatenate([fixed, kept_points]).
    """
    n_fixed = len(fixed)
    allp = np.concatenate([fixed, points])
    n = len(allp)
    index = np.arange(n)
    if n == 0:
        return points, index[n_fixed:]
    tree = cKDTree(allp)
    pairs = tree.query_pairs(cutoff, output_type="ndarray")
    kept = np.ones(n, dtype=bool)
    if len(pairs):
        nbrs: dict[int, list[int]] = {}
        for i, j in pairs:
            nbrs.setdefault(int(i), []).append(int(j))
            nbrs.setdefault(int(j), []).append(int(i))
        for i in sorted(nbrs):
            if i < n_fixed:
                continue
            earlier = [j for j in nbrs[i] if j < i and kept[j]]
            if earlier:
                d = np.sqrt(((allp[earlier] - allp[i]) ** 2).sum(1))
                kept[i] = False
                index[i] = earlier[int(np.argmin(d))]
    new_pos = np.cumsum(kept) - 1
    index = new_pos[index]
    return allp[n_fixed:][kept[n_fixed:]], index[n_fixed:]


def mesh_2d(
    loc=None,
    loc_domain=None,
    offset=None,
    n=None,
    boundary=None,
    max_edge=None,
    min_angle=None,
    cutoff: float = 1e-12,
    max_n_strict=None,
    max_n=None,
) -> Mesh:
    """Refined constrained Delaunay mesh (R-INLA's ``inla.mesh.2d`` / ``fm_mesh_2d_inla``).

    Args:
        loc: (k, 2) points that become mesh nodes (merged when closer than ``cutoff``).
        loc_domain: (k, 2) points used only to determine the domain extent.
        offset: one or two extension distances (inner, outer); negative values are
            fractions of the points' width. Default −0.05 (one layer) or (−0.05, −0.15).
        n: number of sides of the automatic enclosures (default 8 inner, 16 outer).
        boundary: a polygon (v, 2) for the inner domain, or a pair (inner, outer) where
            either may be None (automatic enclosure).
        max_edge: one or two maximal edge lengths (inner, outer). Default: no limit.
        min_angle: one or two minimal angles in degrees (default 21; ≤ 21 is guaranteed
            to terminate, somewhat larger usually works).
        cutoff: points at most this far apart become one node.
        max_n_strict: one or two node budgets overriding min_angle and max_edge.
        max_n: one or two node budgets overriding max_edge only.

    Returns:
        a :class:`Mesh` with ``idx_loc`` (0-based node of each ``loc`` row, −1 if outside
        the domain) and the boundary / interior segments.

    Example:
        >>> import numpy as np
        >>> pts = np.random.default_rng(1).random((50, 2))
        >>> m = mesh_2d(pts, max_edge=(0.2, 0.5), cutoff=0.02)
        >>> m.n > 50
        True
    """
    loc = _as_points(loc, "loc")
    loc_domain = _as_points(loc_domain, "loc_domain")
    boundaries = _as_boundaries(boundary)

    max_edge_l = _as_layers(max_edge, "max_edge", None) or [math.nan]
    min_angle_l = _as_layers(min_angle, "min_angle", None) or [21.0]
    n_l = _as_layers(n, "n", None) or [8.0]
    max_n_l = _as_layers(max_n, "max_n", None) or [math.nan]
    max_n_strict_l = _as_layers(max_n_strict, "max_n_strict", None) or [math.nan]
    offset_l = _as_layers(offset, "offset", None)
    if offset_l is None:
        offset_l = [-0.05] if len(boundaries) < 2 else [-0.05, -0.15]
    n_layers = min(2, max(len(boundaries), len(offset_l), len(n_l), len(min_angle_l), len(max_edge_l),
                          len(max_n_l), len(max_n_strict_l)))
    boundaries = boundaries + [None] * (n_layers - len(boundaries))
    if len(min_angle_l) < n_layers:
        min_angle_l = min_angle_l * 2
    if len(max_edge_l) < n_layers:
        max_edge_l = max_edge_l * 2
    if len(max_n_l) < n_layers:
        max_n_l = max_n_l * 2
    if len(max_n_strict_l) < n_layers:
        max_n_strict_l = max_n_strict_l * 2
    if len(offset_l) < n_layers:
        offset_l = offset_l + [-0.15]
    if len(n_l) < n_layers:
        n_l = n_l + [16.0]
    if cutoff is None or not cutoff > 0:
        cutoff = 1e-12
    for k, a in enumerate(min_angle_l):
        if not 0.0 <= a < 60.0:
            raise DataError(f"mesh_2d: min_angle must be in [0, 60) degrees, got {a}")
        if a > 33.0:
            warn(f"mesh_2d: min_angle={a} > 33 degrees may not terminate")
    for k, e in enumerate(max_edge_l):
        if not (math.isnan(e) or e > 0):
            raise DataError(f"mesh_2d: max_edge must be positive, got {e}")

    domain_pts = np.concatenate([loc_domain, loc])
    if boundaries[0] is None:
        if len(domain_pts) == 0:
            raise DataError("mesh_2d: give loc, loc_domain or boundary to define the domain")
        off0 = offset_l[0]
        if diameter(domain_pts) == 0.0 and off0 < 0:
            off0 = 1.0  # R: a single point and a relative offset means offset 1
        # fmesher computes the enclosure from the vertices left after the cutoff merge
        support, _ = _merge_cutoff(np.zeros((0, 2)), domain_pts, float(cutoff))
        inner = convex_enclosure(support, int(n_l[0]), off0)
    else:
        inner = boundaries[0]
    outer = None
    if n_layers == 2:
        if boundaries[1] is None:
            off1 = offset_l[1]
            # fmesher: the enclosure of the second pass's input, rbind(loc, inner-layer nodes),
            # after the cutoff merge; the inner layer's nodes lie inside its boundary polygon
            support, _ = _merge_cutoff(np.zeros((0, 2)), np.concatenate([loc, inner]), float(cutoff))
            if diameter(support) == 0.0 and off1 < 0:
                off1 = 1.0
            outer = convex_enclosure(support, int(n_l[1]), off1)
        else:
            outer = boundaries[1]

    domain = outer if outer is not None else inner
    inner_region = inner if outer is not None else None

    # vertices: outer polygon, inner polygon, then the points (cutoff-merged, inside the domain)
    poly_pts = [domain]
    seg_list = [np.stack([np.arange(len(domain)), np.roll(np.arange(len(domain)), -1)], 1)]
    kind_list = [np.zeros(len(domain), dtype=np.int8)]
    if inner_region is not None:
        off = len(domain)
        seg_list.append(off + np.stack([np.arange(len(inner)), np.roll(np.arange(len(inner)), -1)], 1))
        kind_list.append(np.ones(len(inner), dtype=np.int8))
        poly_pts.append(inner)
    fixed = np.concatenate(poly_pts)
    in_domain = points_in_polygon(loc, domain) if len(loc) else np.zeros(0, dtype=bool)
    kept, idx_kept = _merge_cutoff(fixed, loc[in_domain], float(cutoff))
    points = np.concatenate([fixed, kept])
    idx_loc = np.full(len(loc), -1, dtype=np.int64)
    idx_loc[in_domain] = idx_kept

    me = [math.inf if math.isnan(v) else v for v in max_edge_l]
    if len(me) == 1:
        me = me * 2
    ma = min_angle_l * 2 if len(min_angle_l) == 1 else min_angle_l
    budget = [None if math.isnan(v) else int(v) for v in max_n_l]
    budget_strict = [None if math.isnan(v) else int(v) for v in max_n_strict_l]
    max_n_total = _total_budget(budget)
    max_n_strict_total = _total_budget(budget_strict)

    res = refine(
        points,
        np.concatenate(seg_list),
        np.concatenate(kind_list),
        domain,
        inner_region,
        me,
        ma,
        max_n=max_n_total,
        max_n_strict=max_n_strict_total,
    )
    # drop vertices that belong to no triangle (e.g. outside a non-convex boundary), renumber
    used = np.zeros(len(res.points), dtype=bool)
    used[res.triangles.ravel()] = True
    new_index = np.full(len(res.points), -1, dtype=np.int64)
    new_index[used] = np.arange(int(used.sum()))
    tv = new_index[res.triangles]
    idx_loc = np.where(idx_loc >= 0, new_index[np.maximum(idx_loc, 0)], -1)
    segs = new_index[res.segments]
    keep_seg = (segs >= 0).all(axis=1)
    return Mesh(
        res.points[used],
        tv,
        idx_loc=idx_loc,
        segm_bnd=segs[keep_seg & (res.segment_kind == 0)],
        segm_int=segs[keep_seg & (res.segment_kind == 1)],
    )


def _total_budget(budget):
    """R: the outer layer's max.n counts nodes added on top of the inner layer's."""
    if all(b is None for b in budget):
        return None
    if len(budget) == 1 or budget[1] is None:
        return budget[0]
    return (budget[0] or 0) + budget[1]
