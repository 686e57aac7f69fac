"""BLAS/LAPACK calls from numba-compiled code, with numba's on-disk cache kept working.

numba's own ``np.dot``/``np.linalg`` cover only whole contiguous arrays; the supernodal
kernels (:mod:`adelia.engine.supernodal`) need the Fortran interfaces on sub-blocks of
a flat factor array (``dgemm``, ``dsymm``, ``dtrsm``, ``dpotrf``, ``dpotri``). They come
from SciPy's ``scipy.linalg.cython_blas`` / ``cython_lapack`` (the same OpenBLAS numba
itself uses). Each function's address is registered with LLVM under a fixed symbol name
(``llvmlite.binding.add_symbol``) and called as a ``numba.types.ExternalFunction`` of
that name: compiled code refers to the *name*, resolved when it is loaded, so the
functions that call them can be cached across processes
(:func:`~adelia.engine.numba_cache.cached_njit`; a ctypes function pointer would be baked
in as an address and disable caching).

Threads: SciPy's OpenBLAS starts a thread pool for large calls. Our calls are many and
mostly medium-sized, run inside host callbacks next to XLA's own threads, and a busy
machine turns spinning BLAS threads into slowdowns of 10× and more (measured). The
kernels therefore set the thread count of each call site with :func:`blas_threads` to one;
it also keeps their results bit-identical, since OpenBLAS's results depend on its thread
count (the kernels' parallelism is over subtrees instead, :mod:`adelia.engine.supernodal`).
It uses OpenBLAS's per-thread setting ``openblas_set_num_threads_local``
(OpenBLAS >= 0.3.27), which leaves other threads' BLAS calls alone; without that symbol it
does nothing (set ``OPENBLAS_NUM_THREADS=1`` then for reproducible results).

Fortran convention: every argument is a pointer. The wrappers below take Python
scalars, a flat float64 array plus an element offset for every matrix operand, and
column-major leading dimensions; characters are passed as their ASCII codes
(``ord("N")`` = 78 and so on). Callers must not pass zero dimensions (the wrappers skip
the call when the product is empty) and leading dimensions must be >= 1.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os

import llvmlite.binding as _llvm
import numpy as np
from numba import types
from numba.extending import get_cython_function_address

from .numba_cache import cached_njit

_PTR = types.voidptr

_SIGNATURES = {
    # name: (module, number of pointer arguments)
    "dgemm": ("scipy.linalg.cython_blas", 13),
    "dsymm": ("scipy.linalg.cython_blas", 12),
    "dtrsm": ("scipy.linalg.cython_blas", 11),
    "dpotrf": ("scipy.linalg.cython_lapack", 5),
    "dpotri": ("scipy.linalg.cython_lapack", 5),
}


def _bind(name: str):
    module, n_args = _SIGNATURES[name]
    symbol = f"adelia_{name}"
    _llvm.add_symbol(symbol, get_cython_function_address(module, name))
    return types.ExternalFunction(symbol, types.void(*([_PTR] * n_args)))


_dgemm = _bind("dgemm")
_dsymm = _bind("dsymm")
_dtrsm = _bind("dtrsm")
_dpotrf = _bind("dpotrf")
_dpotri = _bind("dpotri")

N, T, L, R = ord("N"), ord("T"), ord("L"), ord("R")


def _load_local_thread_setter():
    """OpenBLAS's ``openblas_set_num_threads_local`` in SciPy's bundled OpenBLAS, or None."""
    import scipy

    root = os.path.dirname(os.path.abspath(scipy.__file__))
    candidates = []
    for folder in (os.path.join(os.path.dirname(root), "scipy.libs"), os.path.join(root, ".dylibs"), root):
        candidates += sorted(glob.glob(os.path.join(folder, "*openblas*")))
    for path in candidates:
        try:
            setter = ctypes.CDLL(path).openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        setter.restype = ctypes.c_int
        setter.argtypes = [ctypes.c_int]
        return setter
    return None


_SET_LOCAL_THREADS = _load_local_thread_setter()


@contextlib.contextmanager
def blas_threads(n: int):
    """Run SciPy's OpenBLAS on ``n`` threads in the calling thread only (see module doc)."""
    if _SET_LOCAL_THREADS is None:
        yield
        return
    previous = _SET_LOCAL_THREADS(int(n))
    try:
        yield
    finally:
        _SET_LOCAL_THREADS(previous)


@cached_njit(nogil=True)
def gemm(transa, transb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """C ← alpha op(A) op(B) + beta C, C m×n, op(A) m×k, op(B) k×n (column-major)."""
    if m == 0 or n == 0:
        return
    chars = np.empty(2, np.uint8)
    chars[0], chars[1] = transa, transb
    ints = np.empty(6, np.int32)
    ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] = m, n, k, lda, ldb, ldc
    scal = np.empty(2, np.float64)
    scal[0], scal[1] = alpha, beta
    _dgemm(
        chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes,
        scal[0:].ctypes, a[a_off:].ctypes, ints[3:].ctypes, b[b_off:].ctypes, ints[4:].ctypes,
        scal[1:].ctypes, c[c_off:].ctypes, ints[5:].ctypes,
    )  # fmt: skip


@cached_njit(nogil=True)
def symm(side, uplo, m, n, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc):
    """C ← alpha A B + beta C (side L) or alpha B A + beta C (side R), A symmetric (its
    ``uplo`` triangle is read), C m×n."""
    if m == 0 or n == 0:
        return
    chars = np.empty(2, np.uint8)
    chars[0], chars[1] = side, uplo
    ints = np.empty(5, np.int32)
    ints[0], ints[1], ints[2], ints[3], ints[4] = m, n, lda, ldb, ldc
    scal = np.empty(2, np.float64)
    scal[0], scal[1] = alpha, beta
    _dsymm(
        chars[0:].ctypes, chars[1:].ctypes, ints[0:].ctypes, ints[1:].ctypes, scal[0:].ctypes,
        a[a_off:].ctypes, ints[2:].ctypes, b[b_off:].ctypes, ints[3:].ctypes, scal[1:].ctypes,
        c[c_off:].ctypes, ints[4:].ctypes,
    )  # fmt: skip


@cached_njit(nogil=True)
def trsm(side, uplo, transa, m, n, alpha, a, a_off, lda, b, b_off, ldb):
    """B ← alpha op(A)⁻¹ B (side L) or alpha B op(A)⁻¹ (side R), A triangular with a
    non-unit diagonal, B m×n."""
    if m == 0 or n == 0:
        return
    chars = np.empty(4, np.uint8)
    chars[0], chars[1], chars[2], chars[3] = side, uplo, transa, N
    ints = np.empty(4, np.int32)
    ints[0], ints[1], ints[2], ints[3] = m, n, lda, ldb
    scal = np.empty(1, np.float64)
    scal[0] = alpha
    _dtrsm(
        chars[0:].ctypes, chars[1:].ctypes, chars[2:].ctypes, chars[3:].ctypes, ints[0:].ctypes,
        ints[1:].ctypes, scal[0:].ctypes, a[a_off:].ctypes, ints[2:].ctypes, b[b_off:].ctypes,
        ints[3:].ctypes,
    )  # fmt: skip


@cached_njit(nogil=True)
def potrf_lower(n, a, a_off, lda):
    """A = L Lᵀ in place (lower triangle); returns LAPACK's info (> 0: not positive definite)."""
    if n == 0:
        return 0
    chars = np.empty(1, np.uint8)
    chars[0] = L
    ints = np.empty(3, np.int32)
    ints[0], ints[1], ints[2] = n, lda, 0
    _dpotrf(chars[0:].ctypes, ints[0:].ctypes, a[a_off:].ctypes, ints[1:].ctypes, ints[2:].ctypes)
    return ints[2]


@cached_njit(nogil=True)
def potri_lower(n, a, a_off, lda):
    """Lower triangle of (L Lᵀ)⁻¹ in place of the Cholesky factor L; returns LAPACK's info."""
    if n == 0:
        return 0
    chars = np.empty(1, np.uint8)
    chars[0] = L
    ints = np.empty(3, np.int32)
    ints[0], ints[1], ints[2] = n, lda, 0
    _dpotri(chars[0:].ctypes, ints[0:].ctypes, a[a_off:].ctypes, ints[1:].ctypes, ints[2:].ctypes)
    return ints[2]
