"""Planar triangle meshes (R-INLA's ``inla.mesh`` / fmesher's ``fm_mesh_2d``).

A :class:`Mesh` is nodes ``loc`` (n, 2) and triangles ``tv`` (m, 3, 0-based). It is built
either by :func:`adelia.spde.mesh_2d` or directly from arrays, e.g. a mesh exported from R
(``mesh$loc``, ``mesh$graph$tv - 1``), so that FEM matrices and projectors match R-INLA's
exactly for the same mesh.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ._geometry import edge_lengths, signed_areas, triangle_angles


class Mesh:
    """A planar triangulation.

    Args:
        loc: (n, 2) node coordinates, or (n, 3) with a constant z column (R-INLA's meshes
            carry z = 0 for planar meshes; it is dropped).
        tv: (m, 3) triangles as 0-based node indices (R's ``mesh$graph$tv - 1``). Either
            orientation is accepted.
        idx_loc: optional (k,) 0-based node of each input location (−1 where the location
            was dropped), as R-INLA's ``mesh$idx$loc``; set by :func:`mesh_2d`.
        segm_bnd: optional (s, 2) node pairs of the boundary constraint segments (for
            plotting).
        segm_int: optional (s, 2) node pairs of the interior constraint segments (for plotting).

    Example:
        >>> import numpy as np
        >>> m = Mesh(np.array([[0., 0.], [1., 0.], [0., 1.], [1., 1.]]), np.array([[0, 1, 2], [1, 3, 2]]))
        >>> m.n, m.area
        (4, 1.0)
    """

    def __init__(self, loc, tv, *, idx_loc=None, segm_bnd=None, segm_int=None):
        loc = np.asarray(loc, dtype=float)
        if loc.ndim != 2 or loc.shape[1] not in (2, 3):
            raise DataError(f"Mesh: loc must have shape (n, 2) or (n, 3), got {loc.shape}")
        if loc.shape[1] == 3:
            z = loc[:, 2]
            scale = max(1.0, float(np.abs(loc[:, :2]).max(initial=0.0)))
            if np.ptp(z) > 1e-12 * scale:
                raise DataError(
                    "Mesh: loc has a non-constant z column; only planar meshes are supported "
                    "(spherical / 3-D manifold meshes are not)."
                )
            loc = loc[:, :2]
        if not np.all(np.isfinite(loc)):
            bad = np.flatnonzero(~np.isfinite(loc).all(axis=1))
            raise DataError(f"Mesh: loc has non-finite coordinates in rows {bad[:10].tolist()}")
        tv_arr = np.asarray(tv)
        if tv_arr.ndim != 2 or tv_arr.shape[1] != 3:
            raise DataError(f"Mesh: tv must have shape (m, 3), got {tv_arr.shape}")
        if not np.all(tv_arr == np.round(tv_arr)):
            raise DataError("Mesh: tv must hold integer node indices")
        tv_arr = tv_arr.astype(np.int64)
        n = loc.shape[0]
        if tv_arr.size and (tv_arr.min() < 0 or tv_arr.max() >= n):
            raise DataError(
                f"Mesh: tv indices must be 0-based in 0..{n - 1}, found range "
                f"{tv_arr.min()}..{tv_arr.max()} (a 1-based tv from R needs `tv - 1`)"
            )
        used = np.zeros(n, dtype=bool)
        used[tv_arr.ravel()] = True
        if not used.all():
            raise DataError(
                f"Mesh: {int((~used).sum())} node(s) belong to no triangle "
                f"(first: {np.flatnonzero(~used)[:10].tolist()}); remove them before building the mesh"
            )
        areas = signed_areas(loc, tv_arr)
        if np.any(areas == 0.0):
            raise DataError(f"Mesh: degenerate (zero-area) triangles {np.flatnonzero(areas == 0)[:10].tolist()}")
        self._loc = loc
        self._loc.setflags(write=False)
        self._tv = tv_arr
        self._tv.setflags(write=False)
        self._signed_areas = areas
        self.idx_loc = None if idx_loc is None else np.asarray(idx_loc, dtype=np.int64)
        self.segm_bnd = None if segm_bnd is None else np.asarray(segm_bnd, dtype=np.int64).reshape(-1, 2)
        self.segm_int = None if segm_int is None else np.asarray(segm_int, dtype=np.int64).reshape(-1, 2)
        self._edges = None

    # -- basic data ------------------------------------------------------------------------
    @property
    def loc(self) -> np.ndarray:
        """(n, 2) node coordinates (read-only)."""
        return self._loc

    @property
    def tv(self) -> np.ndarray:
        """(m, 3) triangles, 0-based node indices (read-only)."""
        return self._tv

    @property
    def n(self) -> int:
        """Number of nodes (R-INLA's ``mesh$n``, the size of an SPDE field on this mesh)."""
        return int(self._loc.shape[0])

    @property
    def n_triangles(self) -> int:
        return int(self._tv.shape[0])

    @property
    def triangle_areas(self) -> np.ndarray:
        """(m,) triangle areas (positive)."""
        return np.abs(self._signed_areas)

    @property
    def area(self) -> float:
        """Total area of the triangulated domain."""
        return float(self.triangle_areas.sum())

    @property
    def edges(self) -> np.ndarray:
        """(e, 2) unique edges as sorted node pairs."""
        if self._edges is None:
            e = np.concatenate([self._tv[:, [0, 1]], self._tv[:, [1, 2]], self._tv[:, [2, 0]]])
            e.sort(axis=1)
            self._edges = np.unique(e, axis=0)
            self._edges.setflags(write=False)
        return self._edges

    @property
    def boundary_edges(self) -> np.ndarray:
        """(b, 2) edges that belong to exactly one triangle (sorted node pairs)."""
        e = np.concatenate([self._tv[:, [0, 1]], self._tv[:, [1, 2]], self._tv[:, [2, 0]]])
        e.sort(axis=1)
        uniq, counts = np.unique(e, axis=0, return_counts=True)
        return uniq[counts == 1]

    def edge_lengths(self) -> np.ndarray:
        """(m, 3) edge lengths per triangle (column k: edge opposite vertex k)."""
        return edge_lengths(self._loc, self._tv)

    def triangle_angles(self) -> np.ndarray:
        """(m, 3) interior angles in degrees."""
        return triangle_angles(self._loc, self._tv)

    # -- display -------------------------------------------------------------------------------
    def plot(self, ax=None, *, show_segments: bool = True, **kwargs):
        """Draw the mesh with matplotlib (edges; boundary/interior segments highlighted).

        Args:
            ax: a matplotlib Axes (a new figure is made when None).
            show_segments: draw the boundary (blue) and interior (red) constraint segments.
            **kwargs: passed to ``Axes.triplot`` (default thin grey lines).
        Returns:
            the Axes.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        style = {"color": "0.5", "linewidth": 0.5}
        style.update(kwargs)
        ax.triplot(self._loc[:, 0], self._loc[:, 1], self._tv, **style)
        if show_segments:
            for seg, colour in ((self.segm_bnd, "tab:blue"), (self.segm_int, "tab:red")):
                if seg is not None and len(seg):
                    xy = self._loc[seg]  # (s, 2, 2)
                    for p in xy:
                        ax.plot(p[:, 0], p[:, 1], color=colour, linewidth=1.2)
        ax.set_aspect("equal")
        return ax

    def __repr__(self) -> str:
        lo = self._loc.min(axis=0)
        hi = self._loc.max(axis=0)
        return (
            f"Mesh(n={self.n}, triangles={self.n_triangles}, "
            f"x=[{lo[0]:.4g}, {hi[0]:.4g}], y=[{lo[1]:.4g}, {hi[1]:.4g}])"
        )
