"""Small planar-geometry kernels shared by the mesh builder, the FEM and the projector.

All functions are vectorised numpy on (k, 2) coordinate arrays; no state.
"""

from __future__ import annotations

import numpy as np


def cross2(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """z-component of the cross product of 2-D vectors (broadcasting over leading axes)."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def signed_areas(loc: np.ndarray, tv: np.ndarray) -> np.ndarray:
    """Signed triangle areas, positive for counter-clockwise vertex order. Shape (m,)."""
    a, b, c = loc[tv[:, 0]], loc[tv[:, 1]], loc[tv[:, 2]]
    return 0.5 * cross2(b - a, c - a)


def edge_lengths(loc: np.ndarray, tv: np.ndarray) -> np.ndarray:
    """Lengths of the three edges of each triangle; column k is the edge opposite vertex k."""
    p = loc[tv]  # (m, 3, 2)
    e0 = p[:, 2] - p[:, 1]
    e1 = p[:, 0] - p[:, 2]
    e2 = p[:, 1] - p[:, 0]
    return np.sqrt(np.stack([(e0**2).sum(1), (e1**2).sum(1), (e2**2).sum(1)], axis=1))


def triangle_angles(loc: np.ndarray, tv: np.ndarray) -> np.ndarray:
    """Interior angles in degrees; column k is the angle at vertex k. Shape (m, 3)."""
    ell = edge_lengths(loc, tv)
    a, b, c = ell[:, 0], ell[:, 1], ell[:, 2]
    # law of cosines, clipped against rounding
    ang0 = np.arccos(np.clip((b**2 + c**2 - a**2) / (2 * b * c), -1.0, 1.0))
    ang1 = np.arccos(np.clip((a**2 + c**2 - b**2) / (2 * a * c), -1.0, 1.0))
    ang2 = np.pi - ang0 - ang1
    return np.degrees(np.stack([ang0, ang1, ang2], axis=1))


def circumcircles(loc: np.ndarray, tv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circumcentres (m, 2) and circumradii (m,) of the triangles.

    Computed relative to the first vertex for accuracy:
    c = a + [|v|² (w⊥) − |w|² (v⊥)] / (2 v×w) with v = b − a, w = c − a.
    """
    a, b, c = loc[tv[:, 0]], loc[tv[:, 1]], loc[tv[:, 2]]
    v = b - a
    w = c - a
    d = 2.0 * cross2(v, w)
    vv = (v**2).sum(1)
    ww = (w**2).sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ux = (w[:, 1] * vv - v[:, 1] * ww) / d
        uy = (v[:, 0] * ww - w[:, 0] * vv) / d
    centre = a + np.stack([ux, uy], axis=1)
    radius = np.sqrt(ux**2 + uy**2)
    return centre, radius


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Even-odd (crossing number) test: which points lie inside the closed polygon.

    Args:
        points: (k, 2).
        polygon: (v, 2) vertices in order (the closing edge is implied).
    Returns:
        bool (k,). Points exactly on an edge may go either way.
    """
    points = np.atleast_2d(points)
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    p0 = polygon
    p1 = np.roll(polygon, -1, axis=0)
    x0, y0, x1, y1 = p0[:, 0], p0[:, 1], p1[:, 0], p1[:, 1]
    straddles = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    crossings = straddles & (x < x_cross)
    return (crossings.sum(axis=1) % 2) == 1


def polygon_area(polygon: np.ndarray) -> float:
    """Signed area of a closed polygon (shoelace), positive when counter-clockwise."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def convex_enclosure(points: np.ndarray, sides: int, margin: float) -> np.ndarray:
    """fmesher's planar convex enclosure (``MeshC::CETplane``): a ``sides``-gon around the points.

    The polygon's edges have fixed inward normals n_i = (−sin θ_i, cos θ_i), θ_i = 2πi/sides;
    each edge is pushed against the point set (d_i = min_v n_i·s_v) and then moved outwards
    by ``margin``. A negative margin is relative: margin = −margin × (largest width of the
    point set over opposite edge pairs). Vertex j is the intersection of edges j−1 and j.

    Returns the (sides, 2) vertices, counter-clockwise.
    """
    sides = max(int(sides), 3)
    th = 2.0 * np.pi * np.arange(sides) / sides
    normals = np.stack([-np.sin(th), np.cos(th)], axis=1)
    d = (points @ normals.T).min(axis=0)
    if margin < 0.0:
        half = sides // 2
        widths = [-d[i] - d[(i + half) % sides] for i in range(half)]
        if sides % 2:
            widths += [-d[i] - d[(i + half + 1) % sides] for i in range(half)]
        margin = -max(0.0, max(widths)) * margin
    d = d - margin
    verts = np.empty((sides, 2))
    for i in range(sides):
        j = (i + 1) % sides
        n01 = normals[i] @ normals[j]
        den = 1.0 - n01 * n01
        a0 = (d[i] - d[j] * n01) / den
        a1 = (d[j] - d[i] * n01) / den
        verts[j] = a0 * normals[i] + a1 * normals[j]
    return verts


def diameter(points: np.ndarray) -> float:
    """Approximate diameter of a point set: the bounding-box diagonal (0 for < 2 points)."""
    if len(points) < 2:
        return 0.0
    span = points.max(axis=0) - points.min(axis=0)
    return float(np.sqrt((span**2).sum()))
