"""Delaunay refinement of a planar straight-line graph (Ruppert 1995; Shewchuk 2002).

Input: vertices, constraint segments (an outer boundary polygon and optional interior
polygon), per-region quality requests (max edge length, min angle). Output: a conforming
Delaunay triangulation of the domain in which every triangle meets its region's requests
(except at small input angles between two segments, the standard exemption that fmesher's
``skinnyQuality`` also makes).

Algorithm, on top of scipy's Qhull Delaunay (re-triangulated once per round):

1. *Segment recovery*: a segment whose diametral circle contains a vertex ("encroached")
   is split (midpoint; concentric-shell split next to a sharp input corner); segments
   that are not yet Delaunay edges are split too. An unencroached segment is a Gabriel
   edge, hence an edge of the Delaunay triangulation: the result conforms.
2. *Triangle refinement*: bad triangles (longest edge > max_edge, or circumradius / shortest
   edge > 1/(2 sin θ_min)) propose their circumcentres, or the off-centre when closer
   (Üngör 2004, as fmesher does). A proposal that encroaches a
   segment is discarded and the segment is split instead (Ruppert's rule); one that falls
   outside the domain is discarded. The remaining proposals are thinned to a set with
   pairwise distances ≥ ¾ of their circumradii, so that batch insertion keeps Ruppert's
   spacing guarantee up to a constant, and all are inserted at once.
3. Repeat until no segment is encroached and no triangle is bad.

Triangles are classified (outside the domain, inner region, outer region) per connected
component of the triangle graph cut along the segments: one point-in-polygon test per
component.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, cKDTree

from ._geometry import circumcircles, edge_lengths, points_in_polygon, triangle_angles
from ..user_warnings import warn

_KEY = np.int64(1) << np.int64(32)


def _edge_keys(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    return np.minimum(i, j) * _KEY + np.maximum(i, j)


@dataclass
class RefineResult:
    points: np.ndarray  # (n, 2) all vertices (including ones outside the domain)
    triangles: np.ndarray  # (m, 3) triangles inside the domain
    segments: np.ndarray  # (s, 2) final (split) segments
    segment_kind: np.ndarray  # (s,) 0 = outer boundary, 1 = interior
    converged: bool
    rounds: int


class _Refiner:
    def __init__(self, points, segments, kind, outer, inner, max_edge, min_angle, max_n, max_n_strict):
        self.pts = [np.asarray(points, dtype=float)]
        self.n_pts = len(points)
        self.segs = np.asarray(segments, dtype=np.int64).reshape(-1, 2)
        self.kind = np.asarray(kind, dtype=np.int8)
        self.outer = outer
        self.inner = inner
        self.max_edge = np.asarray(max_edge, dtype=float)
        self.skinny_ratio = 1.0 / (2.0 * np.sin(np.radians(np.asarray(min_angle, dtype=float))))
        self.max_n = max_n
        self.max_n_strict = max_n_strict
        span = np.ptp(self.points(), axis=0)
        self.scale = float(np.hypot(*span)) or 1.0
        self.sharp = self._sharp_vertices()

    # -- vertex storage ------------------------------------------------------------------------
    def points(self) -> np.ndarray:
        if len(self.pts) > 1:
            self.pts = [np.concatenate(self.pts)]
        return self.pts[0]

    def add_points(self, new: np.ndarray) -> np.ndarray:
        idx = np.arange(self.n_pts, self.n_pts + len(new))
        self.pts.append(np.asarray(new, dtype=float).reshape(-1, 2))
        self.n_pts += len(new)
        return idx

    # -- segments -------------------------------------------------------------------------------
    def _sharp_vertices(self) -> set:
        """Input vertices where two segments meet at an angle < 60° (Ruppert's hard case)."""
        p = self.points()
        inc: dict[int, list[int]] = {}
        for s, (a, b) in enumerate(self.segs):
            inc.setdefault(int(a), []).append(int(b))
            inc.setdefault(int(b), []).append(int(a))
        sharp = set()
        for v, nbs in inc.items():
            if len(nbs) < 2:
                continue
            d = p[nbs] - p[v]
            ang = np.arctan2(d[:, 1], d[:, 0])
            diff = np.abs(ang[:, None] - ang[None, :])
            diff = np.minimum(diff, 2 * np.pi - diff)
            np.fill_diagonal(diff, np.inf)
            if diff.min() < np.radians(60.0):
                sharp.add(v)
        return sharp

    def split_segments(self, which: np.ndarray) -> None:
        """Split the segments flagged in ``which`` (bool mask)."""
        if not np.any(which):
            return
        p = self.points()
        segs = self.segs[which]
        a, b = p[segs[:, 0]], p[segs[:, 1]]
        length = np.sqrt(((b - a) ** 2).sum(1))
        frac = np.full(len(segs), 0.5)
        for k, (ia, ib) in enumerate(segs):
            # concentric shells around sharp input corners (Ruppert 1995, §4) keep
            # small-angle corners from splitting each other forever
            for end, sign in ((int(ia), 1.0), (int(ib), -1.0)):
                if end in self.sharp:
                    d = 2.0 ** np.round(np.log2(length[k] / 2.0 / self.scale)) * self.scale
                    f = np.clip(d / length[k], 0.3, 0.7)
                    frac[k] = f if sign > 0 else 1.0 - f
                    break
        mid = a + frac[:, None] * (b - a)
        new = self.add_points(mid)
        keep = self.segs[~which]
        keep_kind = self.kind[~which]
        split_kind = self.kind[which]
        self.segs = np.concatenate([keep, np.stack([segs[:, 0], new], 1), np.stack([new, segs[:, 1]], 1)])
        self.kind = np.concatenate([keep_kind, split_kind, split_kind])

    def encroached(self, tree: cKDTree) -> np.ndarray:
        p = self.points()
        a, b = p[self.segs[:, 0]], p[self.segs[:, 1]]
        mid = 0.5 * (a + b)
        half = 0.5 * np.sqrt(((b - a) ** 2).sum(1))
        counts = tree.query_ball_point(mid, half * (1.0 - 1e-9), return_length=True)
        return np.asarray(counts) > 0

    def split_vertices_on_segments(self) -> None:
        """Split segments at input vertices lying on them (else they encroach forever)."""
        p = self.points()
        tree = cKDTree(p)
        tol = 1e-10 * self.scale
        changed = True
        while changed:
            changed = False
            p = self.points()
            a, b = p[self.segs[:, 0]], p[self.segs[:, 1]]
            mid = 0.5 * (a + b)
            half = 0.5 * np.sqrt(((b - a) ** 2).sum(1))
            cand = tree.query_ball_point(mid, half * (1.0 - 1e-9))
            for s, lst in enumerate(cand):
                if not lst:
                    continue
                ia, ib = self.segs[s]
                q = p[lst]
                ab = b[s] - a[s]
                t = ((q - a[s]) @ ab) / (ab @ ab)
                dist = np.abs(ab[0] * (q[:, 1] - a[s][1]) - ab[1] * (q[:, 0] - a[s][0])) / np.sqrt(ab @ ab)
                on = (dist <= tol) & (t > 0) & (t < 1)
                if np.any(on):
                    v = int(np.asarray(lst)[on][np.argmin(np.abs(t[on] - 0.5))])
                    kind = self.kind[s]
                    self.segs = np.concatenate([np.delete(self.segs, s, axis=0), [[ia, v], [v, ib]]])
                    self.kind = np.concatenate([np.delete(self.kind, s), [kind, kind]])
                    changed = True
                    break

    # -- triangles ------------------------------------------------------------------------------
    def classify(self, tri: Delaunay, seg_keys: np.ndarray):
        """Per triangle: inside the domain, and region (0 inner, 1 outer).

        Qhull may return flat triangles over collinear points of the convex hull (split
        boundary segments); they are outside by definition."""
        simp = tri.simplices
        m = len(simp)
        nb = tri.neighbors
        t_idx = np.repeat(np.arange(m), 3)
        nb_flat = nb.ravel()
        # edge opposite local vertex k joins the other two
        ea = simp[:, [1, 2, 0]].ravel()
        eb = simp[:, [2, 0, 1]].ravel()
        is_seg = np.isin(_edge_keys(ea, eb), seg_keys)
        ok = (nb_flat >= 0) & ~is_seg
        graph = sp.coo_matrix((np.ones(ok.sum()), (t_idx[ok], nb_flat[ok])), shape=(m, m))
        n_comp, label = connected_components(graph, directed=False)
        first = np.full(n_comp, -1)
        first[label[::-1]] = np.arange(m)[::-1]
        p = self.points()
        cent = p[simp[first]].mean(axis=1)
        inside_c = points_in_polygon(cent, self.outer)
        region_c = np.zeros(n_comp, dtype=np.int64)
        if self.inner is not None:
            region_c = (~points_in_polygon(cent, self.inner)).astype(np.int64)
        inside = inside_c[label] & ~self._flat(simp)
        return inside, region_c[label]

    def _flat(self, simp: np.ndarray) -> np.ndarray:
        p = self.points()
        a, b, c = p[simp[:, 0]], p[simp[:, 1]], p[simp[:, 2]]
        area2 = np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
        longest2 = np.maximum.reduce([((b - a) ** 2).sum(1), ((c - b) ** 2).sum(1), ((a - c) ** 2).sum(1)])
        return area2 <= 1e-10 * longest2

    def bad_triangles(self, simp, region, seg_keys, n_now):
        p = self.points()
        ell = edge_lengths(p, simp)
        longest = ell.max(axis=1)
        shortest = ell.min(axis=1)
        _, radius = circumcircles(p, simp)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = radius / shortest
        skinny = ratio > self.skinny_ratio[region] * (1.0 + 1e-9)
        if np.any(skinny):
            # exemption: the smallest angle sits between two constraint segments
            ang = triangle_angles(p, simp[skinny])
            k = ang.argmin(axis=1)
            v = simp[skinny][np.arange(len(k)), k]
            o1 = simp[skinny][np.arange(len(k)), (k + 1) % 3]
            o2 = simp[skinny][np.arange(len(k)), (k + 2) % 3]
            both = np.isin(_edge_keys(v, o1), seg_keys) & np.isin(_edge_keys(v, o2), seg_keys)
            skinny_idx = np.flatnonzero(skinny)
            skinny[skinny_idx[both]] = False
        big = longest > self.max_edge[region] * (1.0 + 1e-9)
        if self.max_n is not None and n_now >= self.max_n:
            big[:] = False  # max.n overrides max.edge only
        bad = skinny | big
        if self.max_n_strict is not None and n_now >= self.max_n_strict:
            bad[:] = False
        return bad

    def steiner_points(self, simp, region):
        """Off-centres (Üngör 2004; fmesher's ``Option_offcenter_steiner``) and their spacing radii.

        For shortest edge pq (midpoint m, length ℓ) and circumcentre c, the point on m→c at
        height h = (ℓ/2)/tan(θ_min/2) makes p, q and it an isosceles triangle with apex
        angle exactly θ_min; it replaces c when closer to m, which saves Steiner points.
        The spacing radius is the circumradius of the triangle it makes with p and q.
        """
        p = self.points()
        centre, radius = circumcircles(p, simp)
        ell = edge_lengths(p, simp)
        k = ell.argmin(axis=1)
        rows = np.arange(len(simp))
        a = p[simp[rows, (k + 1) % 3]]
        b = p[simp[rows, (k + 2) % 3]]
        short = ell[rows, k]
        mid = 0.5 * (a + b)
        theta = np.arcsin(0.5 / self.skinny_ratio[region])  # θ_min from the ratio R/ℓ = 1/(2 sin θ)
        h = 0.5 * short / np.tan(0.5 * theta)
        to_c = centre - mid
        dist = np.sqrt((to_c**2).sum(1))
        use = np.isfinite(dist) & (dist > h) & (theta > 0)
        out = centre.copy()
        rad = radius.copy()
        if np.any(use):
            out[use] = mid[use] + (h[use] / dist[use])[:, None] * to_c[use]
            rad[use] = (0.25 * short[use] ** 2 + h[use] ** 2) / (2.0 * h[use])
        return out, rad

    # -- main loop ------------------------------------------------------------------------------
    def run(self, max_rounds: int = 400) -> RefineResult:
        self.split_vertices_on_segments()
        converged = False
        rounds = 0
        for rounds in range(1, max_rounds + 1):
            # 1. segment recovery
            for _ in range(200):
                p = self.points()
                enc = self.encroached(cKDTree(p))
                if not enc.any():
                    break
                self.split_segments(enc)
            p = self.points()
            tri = Delaunay(p)
            if len(tri.coplanar):
                raise RuntimeError(
                    f"mesh refinement: {len(tri.coplanar)} vertices coincide within Qhull's precision"
                )
            simp = tri.simplices
            edge_keys = np.unique(
                np.concatenate(
                    [_edge_keys(simp[:, 0], simp[:, 1]), _edge_keys(simp[:, 1], simp[:, 2]), _edge_keys(simp[:, 2], simp[:, 0])]
                )
            )
            seg_keys = _edge_keys(self.segs[:, 0], self.segs[:, 1])
            missing = ~np.isin(seg_keys, edge_keys)
            if missing.any():
                # cocircular degeneracy: the segment is Gabriel but Qhull chose the other diagonal
                self.split_segments(missing)
                continue
            seg_keys = np.unique(seg_keys)
            inside, region = self.classify(tri, seg_keys)
            # 2. quality
            cand_tri = np.flatnonzero(inside)
            bad = self.bad_triangles(simp[cand_tri], region[cand_tri], seg_keys, len(p))
            if not bad.any():
                converged = True
                break
            bad_tri = cand_tri[bad]
            centre, radius = self.steiner_points(simp[bad_tri], region[bad_tri])
            # proposals outside the triangulated domain are dropped (they encroach a segment)
            ok = np.isfinite(centre).all(axis=1)
            ok[ok] = points_in_polygon(centre[ok], self.outer)
            # proposals that encroach a segment: split the segment instead
            seg_a, seg_b = p[self.segs[:, 0]], p[self.segs[:, 1]]
            mid = 0.5 * (seg_a + seg_b)
            half = 0.5 * np.sqrt(((seg_b - seg_a) ** 2).sum(1))
            valid_c = np.flatnonzero(np.isfinite(centre).all(axis=1))
            split = np.zeros(len(self.segs), dtype=bool)
            encroaching = np.zeros(len(centre), dtype=bool)
            if valid_c.size:
                ctree = cKDTree(centre[valid_c])
                hits = ctree.query_ball_point(mid, half * (1.0 - 1e-9))
                for s, lst in enumerate(hits):
                    if lst:
                        split[s] = True
                        encroaching[valid_c[lst]] = True
            ok &= ~encroaching
            accepted = self._independent(centre, radius, ok)
            if not accepted.size and not split.any():
                warn(
                    f"mesh refinement stalled after {rounds} rounds with {int(bad.sum())} triangles "
                    "not meeting the max_edge/min_angle requests",
                    RuntimeWarning
                )
                break
            self.split_segments(split)
            self.add_points(centre[accepted])
        p = self.points()
        tri = Delaunay(p)
        simp = tri.simplices
        seg_keys = np.unique(_edge_keys(self.segs[:, 0], self.segs[:, 1]))
        inside, _ = self.classify(tri, seg_keys)
        if not converged:
            warn(
                f"mesh refinement did not converge in {max_rounds} rounds; the mesh may not meet all requests",
                RuntimeWarning
            )
        return RefineResult(p, simp[inside], self.segs, self.kind, converged, rounds)

    @staticmethod
    def _independent(centre, radius, ok) -> np.ndarray:
        """Greedy thinning: accepted proposals are ≥ ¾·max(r_i, r_j) apart (largest r first)."""
        idx = np.flatnonzero(ok)
        if idx.size <= 1:
            return idx
        c = centre[idx]
        r = radius[idx]
        order = np.argsort(-r, kind="stable")
        tree = cKDTree(c)
        nbrs = tree.query_ball_point(c, 0.75 * r)
        taken = np.zeros(idx.size, dtype=bool)
        blocked = np.zeros(idx.size, dtype=bool)
        for i in order:
            if blocked[i]:
                continue
            taken[i] = True
            blocked[nbrs[i]] = True
        # taken i blocks every j with d < ¾ r_i; since i is processed before any j with
        # r_j ≤ r_i, accepted pairs satisfy d ≥ ¾ max(r_i, r_j)
        return idx[taken]


def refine(points, segments, kind, outer, inner, max_edge, min_angle, max_n=None, max_n_strict=None, max_rounds=400) -> RefineResult:
    """Conforming Delaunay refinement; see the module docstring.

    Args:
        points: (k, 2) distinct input vertices.
        segments: (s, 2) vertex pairs (outer polygon edges and interior polygon edges).
        kind: (s,) 0 for outer-boundary segments, 1 for interior ones.
        outer: (v, 2) domain polygon; triangles outside it are discarded.
        inner: (w, 2) polygon of the inner region (region 0) or None (single region).
        max_edge, min_angle: length-2 sequences, (inner, outer) region requests.
        max_n: stop refining for max_edge once this many vertices exist (R's ``max.n``).
        max_n_strict: stop all refinement at this many vertices (R's ``max.n.strict``).
    """
    return _Refiner(points, segments, kind, outer, inner, max_edge, min_angle, max_n, max_n_strict).run(max_rounds)
