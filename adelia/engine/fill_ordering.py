"""Fill-reducing ordering for the sparse Cholesky backend: approximate minimum degree.

The supernodal factorisation (:mod:`adelia.engine.supernodal`) factorises P Q Pᵀ with
a permutation P chosen to keep the factor sparse. We use SuiteSparse's AMD
(Amestoy, Davis & Duff, "An approximate minimum degree ordering algorithm", SIAM J.
Matrix Anal. Appl. 17, 1996; "Algorithm 837: AMD", ACM TOMS 30, 2004) — the ordering
CHOLMOD itself uses when METIS is absent. The ``sparsax`` wheel bundles it
(``sparsax.libs/libamd-*.so``), and calling ``amd_l_order`` directly costs milliseconds.
Where that library cannot be found (another sparsax build or platform), the ordering
is read off a CHOLMOD factorisation through sparsax's numpy entry points instead:
same AMD, but it pays for one numeric factorisation of a diagonally dominant matrix
on the pattern.

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
    n = pattern.n
    off = pattern.rows != pattern.cols
    # Full symmetric pattern without the diagonal, compressed columns with sorted rows.
    r = np.concatenate([pattern.rows[off], pattern.cols[off]])
    c = np.concatenate([pattern.cols[off], pattern.rows[off]])
    order = np.lexsort((r, c))
    ai = np.ascontiguousarray(r[order], dtype=np.int64)
    ap = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(c, minlength=n), out=ap[1:])
    perm = np.empty(n, dtype=np.int64)
    status = _AMD_ORDER(n, ap.ctypes.data, ai.ctypes.data, perm.ctypes.data, None, None)
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


def fill_reducing_ordering(pattern: SparsePattern) -> np.ndarray:
    """A fill-reducing ordering of ``pattern``: AMD, or CHOLMOD's ordering as a fallback.

    Example:
        >>> import numpy as np
        >>> from adelia.engine.pattern import SparsePattern
        >>> arrow = SparsePattern.from_entries(4, [1, 2, 3], [0, 0, 0])  # hub 0
        >>> int(fill_reducing_ordering(arrow)[-1])  # the hub is eliminated last: no fill
        0
    """
    perm = amd_ordering(pattern)
    return cholmod_ordering(pattern) if perm is None else perm
