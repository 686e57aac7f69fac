"""One-dimensional meshes (R-INLA's ``inla.mesh.1d`` / fmesher's ``fm_mesh_1d``), degree 1.

Used as the temporal mesh of space-time models: knots t_1 < ... < t_n with piecewise
linear basis functions; :func:`adelia.spde.fem` gives its c0 (lumped), c1, g1, g2, ....
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError


class Mesh1D:
    """Knots of a degree-1, non-cyclic 1-D mesh.

    Args:
        loc: strictly increasing knot locations (at least 2).

    Example:
        >>> Mesh1D([1, 2, 3, 4]).n
        4
    """

    def __init__(self, loc):
        loc = np.asarray(loc, dtype=float).ravel()
        if loc.size < 2:
            raise DataError(f"Mesh1D: need at least 2 knots, got {loc.size}")
        if not np.all(np.isfinite(loc)):
            raise DataError("Mesh1D: knots must be finite")
        if np.any(np.diff(loc) <= 0):
            raise DataError("Mesh1D: knots must be strictly increasing")
        self._loc = loc
        self._loc.setflags(write=False)

    @property
    def loc(self) -> np.ndarray:
        return self._loc

    @property
    def n(self) -> int:
        return int(self._loc.size)

    @property
    def is_regular(self) -> bool:
        h = np.diff(self._loc)
        return bool(np.allclose(h, h[0], rtol=1e-10, atol=0.0))

    def __repr__(self) -> str:
        return f"Mesh1D(n={self.n}, interval=[{self._loc[0]:.4g}, {self._loc[-1]:.4g}])"


def mesh_1d(loc) -> Mesh1D:
    """A 1-D mesh with the given knots (``fm_mesh_1d(loc)``, degree 1, free boundaries).

    Example:
        >>> mesh_1d(np.arange(1, 11)).n
        10
    """
    return Mesh1D(loc)
