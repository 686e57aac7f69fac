"""Non-convex hulls of point sets (R-INLA's ``inla.nonconvex.hull``, fmesher's
``fm_nonconvex_hull_inla`` / ``fm_nonconvex_hull(method="fm")``).

The hull is a morphological *closing* of the points' ``convex``-neighbourhood:

    H = erosion_c(dilation_{a+c}(X)),   a = convex, c = concave,

with discs as structuring elements, i.e. H = {p : dist(p, ℝ² ∖ D) ≥ c} where
D = {p : dist(p, X) ≤ a + c} (Gonzalez & Woods 1992; fmesher's identity "dilation(a) then
closing(c) = dilation(a + c) then erosion(c)"). Every point has a disc of radius ``convex``
around it inside H; H has no re-entrant bend sharper than radius ``concave``; H lies within
``convex + concave`` of the points. ``concave = 0`` gives the plain union of discs.

As fmesher, on a ``resolution`` grid spanning the points' bounding box ± (a + c):

1. z₁ = distance from each grid node to the nearest point; the contour z₁ = a + c is ∂D;
2. z₂ = distance from each grid node to the nearest of {grid nodes outside D} ∪ {vertices
   of ∂D}; the contour z₂ = c is ∂H;
3. the contour is simplified (fmesher's ellipse variant of Ramer–Douglas–Peucker) with
   tolerance ``eps`` (default: an eighth of the grid step).

Differences from fmesher, neither in meaning: the grid gets two extra nodes on every side
(same step) so that the contour of D, which touches fmesher's grid edge, is always closed;
contours come from marching squares (``contourpy``, R: ``contourLines``).

Not supported (say so, do not guess): a hull in several pieces or with holes raises an error
(``mesh_2d`` takes one polygon without holes); ``crs`` and ``sf``/``sp`` inputs.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from ..errors import DataError
from ..user_warnings import warn
from ._geometry import points_in_polygon, polygon_area

__all__ = ["nonconvex_hull"]

#: extra grid nodes on every side of fmesher's grid, so that every contour is closed
_PAD = 2


def _as_loc(loc) -> np.ndarray:
    try:
        arr = np.asarray(loc, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"nonconvex_hull: loc must be an (n, 2) array of coordinates ({exc})") from None
    if arr.ndim == 1 and arr.size in (2, 3):
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] not in (2, 3):
        raise DataError(f"nonconvex_hull: loc must be an (n, 2) array of coordinates, got shape {arr.shape}")
    if arr.shape[0] < 1:
        raise DataError("nonconvex_hull: loc has no points; give at least one")
    arr = arr[:, :2]
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise DataError(f"nonconvex_hull: loc has non-finite coordinates in rows {bad[:10].tolist()}")
    return arr


def _as_resolution(resolution) -> np.ndarray:
    res = np.atleast_1d(np.asarray(resolution))
    if res.size == 1:
        res = np.repeat(res, 2)
    if res.size != 2 or not np.all(np.isfinite(res.astype(float))) or np.any(res != np.round(res)):
        raise DataError(f"nonconvex_hull: resolution must be one or two whole numbers ≥ 3, got {resolution!r}")
    res = res.astype(np.int64)
    if np.any(res < 3):
        raise DataError(f"nonconvex_hull: resolution must be at least 3 grid nodes per axis, got {res.tolist()}")
    return res


def _as_radius(value, name: str, diam: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DataError(f"nonconvex_hull: {name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise DataError(f"nonconvex_hull: {name} must be finite, got {v}")
    # R-INLA: a negative value is a fraction of the points' extent max(width, height)
    return -v * diam if v < 0 else v


def nonconvex_hull(loc, convex: float = -0.15, concave: float | None = None, resolution=40,
                   eps: float | None = None) -> np.ndarray:
    """Non-convex hull of a point set (R-INLA's ``inla.nonconvex.hull``; fmesher's
    ``fm_nonconvex_hull_inla``), for use as a ``mesh_2d`` boundary.

    The closing H = erosion_c(dilation_{a+c}(X)) of the points X by discs (a = ``convex``,
    c = ``concave``): each point has a disc of radius a inside H, re-entrant bends of ∂H have
    radius ≥ c, and H lies within a + c of the points (within a where it does not bridge a
    concavity). Computed on a ``resolution`` grid from distance fields and contours, as
    fmesher does (see the module docstring).

    Args:
        loc: (n, 2) point coordinates (a third column is ignored).
        convex: extension radius a; negative: a fraction of the points' extent
            max(x-width, y-width) (R-INLA's default −0.15).
        concave: minimal re-entrant curvature radius c (default: ``convex``, as given, then
            scaled the same way); 0 gives the plain union of discs.
        resolution: grid nodes per axis (one value or (nx, ny)), at least 3; a warning names
            the resolution needed when the grid step exceeds min(a, c), as fmesher does.
        eps: simplification tolerance of the boundary (default: an eighth of the smallest
            grid step; 0: no simplification).

    Returns:
        (m, 2) vertices of the hull polygon, counter-clockwise; the closing edge from the last
        vertex back to the first is implied (the first vertex is not repeated). Pass it as
        ``mesh_2d(boundary=hull)`` or, for two layers, ``boundary=(inner_hull, outer_hull)``.

    Raises:
        DataError: non-finite or missing points, a bad resolution/radius, or a hull that falls
            apart into several pieces or has holes (``mesh_2d`` takes one simple polygon:
            increase ``convex`` or ``concave``).

    Example:
        >>> import numpy as np
        >>> from adelia.spde import mesh_2d, nonconvex_hull
        >>> pts = np.random.default_rng(1).random((60, 2))
        >>> hull = nonconvex_hull(pts, convex=0.1)
        >>> mesh = mesh_2d(pts, boundary=hull, max_edge=0.1)
        >>> bool((mesh.idx_loc >= 0).all())
        True
    """
    x = _as_loc(loc)
    res = _as_resolution(resolution)
    lim_lo, lim_hi = x.min(axis=0), x.max(axis=0)
    diam = float(np.max(lim_hi - lim_lo))
    a = _as_radius(convex, "convex", diam)
    c = _as_radius(convex if concave is None else concave, "concave", diam)
    if not a > 0:
        what = "the points coincide, so a relative (negative) convex is 0" if diam == 0 and float(convex) < 0 else f"convex = {convex}"
        raise DataError(f"nonconvex_hull: the extension radius must be positive ({what}); give convex > 0")
    if eps is not None:
        eps = float(eps)
        if not (math.isfinite(eps) and eps >= 0):
            raise DataError(f"nonconvex_hull: eps must be a non-negative number or None, got {eps}")

    ext = a + c
    domain = (lim_hi - lim_lo) + 2 * ext
    step = domain / (res - 1)
    radius_min = min(a, c) if c > 0 else a
    if np.max(step) > radius_min:
        needed = np.ceil(domain / radius_min + 1).astype(int)
        warn(
            f"nonconvex_hull: resolution {res.tolist()} is too small for convex={a:g}, concave={c:g}; "
            f"resolution ≥ {needed.tolist()} is required for more accurate results"
        )
    ax = [lim_lo[k] - ext + step[k] * np.arange(-_PAD, res[k] + _PAD) for k in range(2)]
    gx, gy = np.meshgrid(ax[0], ax[1])  # (ny, nx), contourpy's layout
    grid = np.column_stack([gx.ravel(), gy.ravel()])

    z1 = cKDTree(x).query(grid)[0].reshape(gx.shape)
    if c == 0:
        ring = _single_ring(ax, z1, a, inside_is_low=True)
    else:
        # ∂D, not simplified (fmesher: eps = 0 at this stage)
        dilation = _contour_lines(ax, z1, ext)
        outside = grid[z1.ravel() > ext]
        support = np.concatenate([outside, *[ln for ln in dilation]]) if dilation else outside
        z2 = cKDTree(support).query(grid)[0].reshape(gx.shape)
        ring = _single_ring(ax, z2, c, inside_is_low=False)

    if eps is None:
        eps = float(np.min(step)) / 8.0
    if eps > 0:
        ring = _simplify_closed(ring, eps)
    if polygon_area(ring) < 0:
        ring = ring[::-1].copy()
    outside_pts = ~points_in_polygon(x, ring)
    if outside_pts.any():
        warn(
            f"nonconvex_hull: {int(outside_pts.sum())} point(s) fall outside the hull at this resolution "
            f"({res.tolist()}); increase resolution"
        )
    return ring


def _contour_lines(ax, z: np.ndarray, level: float) -> list[np.ndarray]:
    import contourpy

    gen = contourpy.contour_generator(ax[0], ax[1], z, line_type=contourpy.LineType.Separate)
    return [np.asarray(ln, dtype=float) for ln in gen.lines(level) if len(ln) >= 2]


def _single_ring(ax, z: np.ndarray, level: float, inside_is_low: bool) -> np.ndarray:
    """The one closed contour z = level bounding the set {z ≤ level} (inside_is_low) or
    {z ≥ level}; an error naming the topology when there is not exactly one."""
    lines = _contour_lines(ax, z, level)
    rings = []
    for ln in lines:
        if not np.allclose(ln[0], ln[-1], rtol=0, atol=1e-12):
            # cannot happen on the padded grid; refuse rather than close it by guessing
            raise DataError("nonconvex_hull: the hull's boundary is not a closed curve; increase resolution")
        ln = ln[:-1]
        if len(ln) >= 3:
            rings.append(ln)
    if not rings:
        raise DataError("nonconvex_hull: the hull is empty at this resolution; increase resolution or convex")
    if len(rings) > 1:
        # nesting depth says which rings are outer boundaries and which are holes
        depth = [sum(bool(points_in_polygon(r[:1], o)[0]) for j, o in enumerate(rings) if j != i) for i, r in enumerate(rings)]
        n_pieces = sum(1 for d in depth if d % 2 == 0)
        n_holes = len(rings) - n_pieces
        raise DataError(
            f"nonconvex_hull: the hull has {n_pieces} separate piece(s) and {n_holes} hole(s); mesh_2d takes one "
            "polygon without holes: increase convex (the extension) or concave (to bridge gaps)"
        )
    return rings[0]


def _simplify_closed(ring: np.ndarray, eps: float) -> np.ndarray:
    """fmesher's ``fm_simplify_helper`` on a closed ring: recursive splitting (Ramer–Douglas–
    Peucker) where a vertex is dropped when it lies inside the ellipse with half-axes
    (|PQ|/2, eps') around the chord PQ, eps' = min(eps, |PQ|/2): nearly straight runs are joined."""
    loc = np.concatenate([ring, ring[:1]])  # closed: first vertex repeated at the end
    n = len(loc)
    keep = np.zeros(n, dtype=bool)
    keep[0] = keep[-1] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j - i < 2:
            continue
        inner = loc[i + 1 : j]
        chord = loc[j] - loc[i]
        length = float(np.hypot(*chord))
        if length <= 1e-12:
            # end point = start point (the whole closed curve): split at the farthest vertex
            split = i + 1 + int(np.argmax(((inner - loc[i]) ** 2).sum(axis=1)))
        else:
            mid = 0.5 * (loc[i] + loc[j])
            u = chord / length
            rel = inner - mid
            epsi = min(eps, length / 2)
            along = np.abs(rel @ u) / (length / 2) * epsi
            across = np.abs(rel @ np.array([-u[1], u[0]]))
            dist = np.hypot(along, across)
            k = int(np.argmax(dist))
            if dist[k] < epsi:
                continue  # flat run: drop the inner vertices
            split = i + 1 + k
        keep[split] = True
        stack.append((i, split))
        stack.append((split, j))
    out = loc[keep][:-1]
    if len(out) < 3:  # a tiny hull simplified to a segment: keep the unsimplified ring
        return ring
    return out
