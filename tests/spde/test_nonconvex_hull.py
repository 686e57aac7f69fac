"""adelia.spde.nonconvex_hull (R-INLA's inla.nonconvex.hull / fmesher's fm_nonconvex_hull_inla).

Oracles, all computed here independently of the implementation:

* the exact union of discs (concave = 0): every boundary vertex is at distance ``convex`` from
  the nearest point (closed form);
* the exact closing erosion_c(dilation_{a+c}(X)) on a fine raster: a fine distance field to
  the points (cKDTree) and scipy's exact Euclidean distance transform of the dilated set;
  the hull must agree with it in area and in Hausdorff distance up to the coarse grid step;
* point-to-segment distances for the clearance of every point from the boundary;
* scipy's ConvexHull for the non-convexity of C/L-shaped clouds;
* the triangle areas of a mesh built on the hull.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull, cKDTree

import adelia
from adelia.errors import DataError
from adelia.spde import mesh_2d, nonconvex_hull


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _inside(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    from matplotlib.path import Path

    return Path(poly).contains_points(points)


def _dist_to_boundary(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance from each point to the closed polyline (exact point-to-segment distances)."""
    a = poly
    b = np.roll(poly, -1, axis=0)
    ab = b - a
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab).sum(-1) / (ab**2).sum(-1), 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    return np.sqrt(((points[:, None, :] - closest) ** 2).sum(-1)).min(axis=1)


def _tri_areas(tri: np.ndarray) -> np.ndarray:
    u, v = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    return 0.5 * np.abs(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0])


def _densify(poly: np.ndarray, h: float) -> np.ndarray:
    out = []
    for p, q in zip(poly, np.roll(poly, -1, axis=0)):
        k = max(1, int(np.ceil(np.hypot(*(q - p)) / h)))
        out.append(p + np.linspace(0, 1, k, endpoint=False)[:, None] * (q - p))
    return np.concatenate(out)


def _exact_closing(points, a, c, h):
    """Raster of erosion_c(dilation_{a+c}(points)) with pixel size h, and its boundary pixels."""
    lo = points.min(0) - (a + c) - 4 * h
    hi = points.max(0) + (a + c) + 4 * h
    xs = np.arange(lo[0], hi[0], h)
    ys = np.arange(lo[1], hi[1], h)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    d = cKDTree(points).query(grid)[0].reshape(gx.shape)
    dilated = d <= a + c
    # exact distance (in pixels) from each pixel of the dilated set to the nearest pixel outside it
    to_outside = ndimage.distance_transform_edt(dilated) * h
    closing = to_outside >= c if c > 0 else dilated
    boundary = closing & ~ndimage.binary_erosion(closing)
    return grid, closing.ravel(), grid[boundary.ravel()]


def _step(points, a, c, resolution=40):
    ext = a + c
    domain = points.max(0) - points.min(0) + 2 * ext
    return float(np.max(domain / (resolution - 1)))


@pytest.fixture(scope="module")
def cloud():
    return np.random.default_rng(7).random((80, 2))


@pytest.fixture(scope="module")
def c_shape():
    """Points on a regular grid in a C (the unit square minus a notch on the right)."""
    g = np.linspace(0.0, 1.0, 26)
    gx, gy = np.meshgrid(g, g)
    p = np.column_stack([gx.ravel(), gy.ravel()])
    return p[~((p[:, 0] > 0.3) & (p[:, 1] > 0.3) & (p[:, 1] < 0.7))]


def test_points_inside_with_clearance(cloud):
    a = 0.08
    hull = nonconvex_hull(cloud, convex=a)
    assert _inside(cloud, hull).all()
    # each point's a-disc lies in the hull, up to the grid's interpolation error
    clearance = _dist_to_boundary(cloud, hull)
    assert clearance.min() >= a - 0.5 * _step(cloud, a, a)


def test_union_of_discs_is_exact(cloud):
    """concave = 0: ∂H = {p : dist(p, X) = a}; the vertices lie on it up to the grid error."""
    a = 0.2  # large enough for the exact union to have no holes (a = 0.15 leaves a tiny one)
    hull = nonconvex_hull(cloud, convex=a, concave=0.0, eps=0)
    d = cKDTree(cloud).query(hull)[0]
    step = _step(cloud, a, 0.0)
    # linear interpolation of the distance field is exact to rounding except across the
    # ridges where two discs meet (the kinks of the boundary)
    assert np.median(np.abs(d - a)) < 0.02 * step
    assert np.abs(d - a).max() < 0.3 * step
    # and against the exact raster, both ways (Hausdorff)
    h = step / 10
    grid, inside, bnd = _exact_closing(cloud, a, 0.0, h)
    dense = _densify(hull, h)
    # raster pixels add up to h·√2/2 to the kink error above
    assert cKDTree(bnd).query(dense)[0].max() < 0.5 * step
    assert cKDTree(dense).query(bnd)[0].max() < 0.5 * step


@pytest.mark.parametrize("a, c", [(0.05, 0.15), (0.1, 0.1)])
def test_closing_against_exact_raster(c_shape, a, c):
    hull = nonconvex_hull(c_shape, convex=a, concave=c)
    step = _step(c_shape, a, c)
    h = step / 8
    grid, inside_exact, bnd = _exact_closing(c_shape, a, c, h)
    inside = _inside(grid, hull)
    sym_diff = np.sum(inside != inside_exact) * h * h
    assert sym_diff < 0.02 * _area(hull)
    dense = _densify(hull, h)
    hausdorff = max(cKDTree(bnd).query(dense)[0].max(), cKDTree(dense).query(bnd)[0].max())
    assert hausdorff < step
    # the hull lies within a + c of the points everywhere
    assert cKDTree(c_shape).query(hull)[0].max() <= a + c + 0.25 * step


def test_concave_cloud_gives_nonconvex_hull(c_shape):
    a = 0.05
    hull = nonconvex_hull(c_shape, convex=a, concave=0.05)
    area = _area(hull)
    assert area < 0.85 * ConvexHull(hull).volume
    assert area < ConvexHull(c_shape).volume  # even below the points' own convex hull
    # the notch (0.3 + a, 1) × (0.3 + a, 0.7 − a) is outside
    notch = np.array([[0.7, 0.5], [0.95, 0.5], [0.5, 0.45]])
    assert not _inside(notch, hull).any()
    # a large concave radius bridges the notch (closing fills gaps narrower than 2c)
    filled = nonconvex_hull(c_shape, convex=a, concave=0.5, resolution=60)
    assert _inside(np.array([[0.7, 0.5]]), filled).all()


def test_orientation_and_ring(cloud):
    hull = nonconvex_hull(cloud, convex=0.1)
    assert hull.ndim == 2 and hull.shape[1] == 2 and len(hull) >= 3
    assert _area(hull) > 0  # counter-clockwise
    assert not np.allclose(hull[0], hull[-1])  # closing edge implied, first vertex not repeated
    # a simple polygon: no two non-adjacent edges cross
    p, q = hull, np.roll(hull, -1, axis=0)
    m = len(hull)

    def orient(a, b, c):
        return np.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))

    i, j = np.triu_indices(m, 2)
    keep = ~((i == 0) & (j == m - 1))
    i, j = i[keep], j[keep]
    crosses = (orient(p[i], q[i], p[j]) != orient(p[i], q[i], q[j])) & (orient(p[j], q[j], p[i]) != orient(p[j], q[j], q[i]))
    assert not crosses.any()


def test_simplification(cloud):
    raw = nonconvex_hull(cloud, convex=0.1, eps=0)
    simple = nonconvex_hull(cloud, convex=0.1, eps=0.01)
    assert len(simple) < len(raw)
    # every dropped vertex is within eps of the simplified boundary
    assert _dist_to_boundary(raw, simple).max() <= 0.01 + 1e-12


def test_negative_values_are_fractions_of_the_extent(cloud):
    scaled = cloud * np.array([3.0, 1.0])  # extent = max(width, height) = the x-width
    extent = float(np.max(scaled.max(0) - scaled.min(0)))
    rel = nonconvex_hull(scaled, convex=-0.05, concave=-0.1)
    ab = nonconvex_hull(scaled, convex=0.05 * extent, concave=0.1 * extent)
    np.testing.assert_allclose(rel, ab)
    # concave defaults to convex (as given, then scaled)
    np.testing.assert_allclose(nonconvex_hull(scaled, convex=-0.1), nonconvex_hull(scaled, convex=-0.1, concave=-0.1))
    # R-INLA's default convex = -0.15
    np.testing.assert_allclose(nonconvex_hull(scaled), nonconvex_hull(scaled, convex=0.15 * extent))


def test_single_point_is_a_disc():
    hull = nonconvex_hull(np.array([[2.0, -1.0]]), convex=1.0, resolution=80)
    assert _area(hull) == pytest.approx(np.pi, rel=0.02)
    np.testing.assert_allclose(np.hypot(hull[:, 0] - 2.0, hull[:, 1] + 1.0), 1.0, atol=0.01)


def test_mesh_on_hull(c_shape):
    hull = nonconvex_hull(c_shape, convex=0.05)
    mesh = mesh_2d(c_shape, boundary=hull, max_edge=0.08, cutoff=0.01)
    assert (mesh.idx_loc >= 0).all()
    tri = mesh.loc[mesh.tv][:, :, :2]
    areas = _tri_areas(tri)
    # the triangles tile the hull polygon exactly (its vertices are mesh nodes)
    assert areas.sum() == pytest.approx(_area(hull), rel=1e-9)
    centroids = tri.mean(axis=1)
    assert _inside(centroids, hull).all()


def test_mesh_on_two_hulls(c_shape):
    """R: boundary = list(inla.nonconvex.hull(loc, 0.05), inla.nonconvex.hull(loc, 0.3))."""
    inner = nonconvex_hull(c_shape, 0.05)
    outer = nonconvex_hull(c_shape, 0.3)
    mesh = mesh_2d(c_shape, boundary=[inner, outer], max_edge=(0.08, 0.3), cutoff=0.01)
    assert (mesh.idx_loc >= 0).all()
    tri = mesh.loc[mesh.tv][:, :, :2]
    areas = _tri_areas(tri)
    assert areas.sum() == pytest.approx(_area(outer), rel=1e-9)
    assert len(mesh.segm_int) >= len(inner)  # the inner hull is kept as interior constraint
    # the inner layer is refined to its own max_edge
    centroids = tri.mean(axis=1)
    in_inner = _inside(centroids, inner)
    edges = np.linalg.norm(tri - np.roll(tri, 1, axis=1), axis=2).max(axis=1)
    assert edges[in_inner].max() <= 0.08 + 1e-9
    assert edges.max() <= 0.3 + 1e-9


def test_exported():
    assert adelia.spde.nonconvex_hull is nonconvex_hull
    assert "nonconvex_hull" in adelia.spde.__all__


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(loc=np.array([[0.0, 0.0], [np.nan, 1.0]])), "non-finite"),
        (dict(loc=np.array([[0.0, np.inf]])), "non-finite"),
        (dict(loc=np.zeros((0, 2))), "no points"),
        (dict(loc=np.zeros((5, 4))), r"\(n, 2\)"),
        (dict(loc=np.random.default_rng(0).random((5, 2)), resolution=2), "at least 3"),
        (dict(loc=np.random.default_rng(0).random((5, 2)), resolution=(40, 40, 40)), "resolution"),
        (dict(loc=np.random.default_rng(0).random((5, 2)), resolution=10.5), "resolution"),
        (dict(loc=np.random.default_rng(0).random((5, 2)), convex=0.0), "convex"),
        (dict(loc=np.random.default_rng(0).random((5, 2)), convex=np.nan), "convex"),
        (dict(loc=np.random.default_rng(0).random((5, 2)), convex=0.1, concave=np.inf), "concave"),
        (dict(loc=np.random.default_rng(0).random((5, 2)), convex=0.1, eps=-1.0), "eps"),
        (dict(loc=np.array([[1.0, 1.0], [1.0, 1.0]])), "coincide"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(DataError, match=match):
        nonconvex_hull(**kwargs)


def test_pieces_and_holes_are_refused():
    two_clusters = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    with pytest.raises(DataError, match="2 separate piece"):
        nonconvex_hull(two_clusters, convex=0.2, concave=0.2, resolution=200)
    t = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    ring = np.column_stack([np.cos(t), np.sin(t)])
    with pytest.raises(DataError, match="1 hole"):
        nonconvex_hull(ring, convex=0.1, concave=0.1, resolution=100)


def test_coarse_resolution_warns(cloud):
    with pytest.warns(UserWarning, match="resolution"):
        hull = nonconvex_hull(np.array([[0.0, 0.0]]), convex=1.0, resolution=4)
    assert _inside(np.array([[0.0, 0.0]]), hull).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nonconvex_hull(cloud, convex=0.1)
