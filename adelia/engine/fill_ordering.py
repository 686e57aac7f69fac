"""Fill-reducing ordering for the sparse Cholesky backend: AMD, or METIS nested dissection.

The supernodal factorisation (:mod:`adelia.engine.supernodal`) factorises P Q Pᵀ with
a permutation P chosen to keep the factor sparse. The default is SuiteSparse's AMD
(Amestoy, Davis & Duff, "An approximate minimum degree ordering algorithm", SIAM J.
Matrix Anal. Appl. 17, 1996; "Algorithm 837: AMD", ACM TOMS 30, 2004) — the ordering
CHOLMOD itself uses when METIS is absent. The ``sparsax`` wheel bundles it
(``sparsax.libs/libamd-*.so``), and calling ``amd_l_order`` directly costs milliseconds.
Where that library cannot be found (another sparsax build or platform), the ordering
is read off a CHOLMOD factorisation through sparsax's numpy entry points instead:
same AMD, but it pays for one numeric factorisation of a diagonally dominant matrix
on the pattern.

For large patterns (n >= 5000) and when the optional ``pymetis`` package is installed,
METIS's multilevel nested dissection (Karypis & Kumar, SIAM J. Sci. Comput. 20, 1998) is
tried as well and kept when its factorisation needs fewer flops (counted from the
elimination tree: Σ_j |L_{*,j}|²), as CHOLMOD does when built with METIS. On meshes and
space-time products that is typical: measured on a 32×32 lattice ⊗ 20-step AR(1)
(n = 20 481) 2.4× fewer flops and 2.3× faster factorisation and selected inversion; on
a 300×300 grid 1.35×; on the smaller patterns of benchmarks/selinv.py no gain, hence
the threshold (nested dissection costs about 10 ms per 2500 nodes).

Convention: ``perm[i]`` is the original index at factor position i, so
``Q[perm][:, perm] = L Lᵀ``.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading

import numpy as np

from ..errors import NumericalError
from .pattern import SparsePattern
from .supernodal_symbolic import cholesky_flops

_AMD_OK, _AMD_OK_BUT_JUMBLED = 0, 1


def _load_amd():
    """``amd_l_order`` from the SuiteSparse copy inside the sparsax wheel, or None."""
    try:
        import sparsax
    except ImportError:  # pragma: no cover - sparsax is a dependency
        return None
    libs = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(sparsax.__file__))), "sparsax.libs")
    for path in sorted(glob.glob(os.path.join(libs, "libamd*.so*"))):
        try:
            order = ctypes.CDLL(path).amd_l_order
        except (OSError, AttributeError):  # pragma: no cover - depends on the wheel
            continue
        order.restype = ctypes.c_int64
        order.argtypes = [ctypes.c_int64] + [ctypes.c_void_p] * 5
        return order
    return None  # pragma: no cover - depends on the wheel


_AMD_ORDER = _load_amd()
_SPARSAX_LOCK = threading.Lock()  # sparsax's CHOLMOD holds a global mutex without releasing the GIL


def amd_ordering(pattern: SparsePattern) -> np.ndarray | None:
    """AMD on the pattern of Q (``perm[i]`` = original index at position i); None when
    SuiteSparse's AMD library is not available."""
    if _AMD_ORDER is None:  # pragma: no cover - depends on the wheel
        return None
    ap, ai = _symmetric_adjacency(pattern)  # both triangles, no diagonal, sorted columns
    perm = np.empty(pattern.n, dtype=np.int64)
    status = _AMD_ORDER(pattern.n, ap.ctypes.data, ai.ctypes.data, perm.ctypes.data, None, None)
    if status not in (_AMD_OK, _AMD_OK_BUT_JUMBLED):  # pragma: no cover - only out of memory
        return None
    return perm


def cholmod_ordering(pattern: SparsePattern) -> np.ndarray:
    """CHOLMOD's ordering (AMD, postordered) read off one factorisation through sparsax.

    The ordering depends on the pattern only; the values are diagonally dominant."""
    import sparsax
    import sparsax_cpp

    off = pattern.rows != pattern.cols
    values = np.where(off, -1.0, 1.0)
    degree = np.bincount(pattern.rows[off], minlength=pattern.n) + np.bincount(pattern.cols[off], minlength=pattern.n)
    values[pattern.diag_index] = degree + 1.0
    # sparsax reads the upper triangle: our lower entry (r, c) is its (c, r).
    ai = np.ascontiguousarray(pattern.cols, dtype=np.int32)
    aj = np.ascontiguousarray(pattern.rows, dtype=np.int32)
    ramp = np.arange(pattern.n, dtype=np.float64)
    with _SPARSAX_LOCK:
        try:
            sparsax_cpp.logdet_np(ai, aj, values, pattern.n)
            # (P b)_i = b_perm[i]: apply P to 0..n-1.
            permuted = sparsax_cpp.solve_np(ai, aj, values, ramp, sparsax.MODE_P)
        except RuntimeError as error:  # pragma: no cover - SPD by construction
            raise NumericalError(f"CHOLMOD could not order a {pattern.n}x{pattern.n} pattern: {error}") from error
    return np.rint(np.asarray(permuted)).astype(np.int64)


def _symmetric_adjacency(pattern: SparsePattern) -> tuple[np.ndarray, np.ndarray]:
    """Compressed adjacency (both triangles, no diagonal, sorted): (pointers, indices)."""
    off = pattern.rows != pattern.cols
    r = np.concatenate([pattern.rows[off], pattern.cols[off]])
    c = np.concatenate([pattern.cols[off], pattern.rows[off]])
    order = np.lexsort((r, c))
    pointers = np.zeros(pattern.n + 1, dtype=np.int64)
    np.cumsum(np.bincount(c, minlength=pattern.n), out=pointers[1:])
    return pointers, np.ascontiguousarray(r[order], dtype=np.int64)


def metis_ordering(pattern: SparsePattern) -> np.ndarray | None:
    """METIS nested dissection of the pattern's graph; None without ``pymetis``."""
    try:
        import pymetis
    except ImportError:
        return None
    pointers, indices = _symmetric_adjacency(pattern)
    if hasattr(pymetis, "CSRAdjacency"):  # pymetis >= 2025.2
        perm, _ = pymetis.nested_dissection(adjacency=pymetis.CSRAdjacency(pointers, indices))
    else:  # pragma: no cover - older pymetis
        perm, _ = pymetis.nested_dissection(xadj=pointers, adjncy=indices)
    return np.asarray(perm, dtype=np.int64)  # perm[i]: vertex at position i (METIS's "perm")


_METIS_MIN_N = 5000


def fill_reducing_ordering(pattern: SparsePattern) -> np.ndarray:
    """A fill-reducing ordering of ``pattern``: AMD (CHOLMOD's ordering as a fallback), or
    METIS nested dissection where available, large and cheaper (module docstring).

    Example:
        >>> import numpy as np
        >>> from adelia.engine.pattern import SparsePattern
        >>> arrow = SparsePattern.from_entries(4, [1, 2, 3], [0, 0, 0])  # hub 0
        >>> int(fill_reducing_ordering(arrow)[-1])  # the hub is eliminated last: no fill
        0
    """
    perm = amd_ordering(pattern)
    if perm is None:
        perm = cholmod_ordering(pattern)
    if pattern.n >= _METIS_MIN_N:
        dissection = metis_ordering(pattern)
        if dissection is not None:
            flops, nnz = cholesky_flops(pattern, perm)
            # Counting costs O(nnz(L)): give up on a dissection that fills much more than AMD.
            if cholesky_flops(pattern, dissection, max_nnz=2 * nnz)[0] < 0.9 * flops:
                perm = dissection
    return perm
