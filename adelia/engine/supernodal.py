"""Supernodal Cholesky factorisation and selected inversion (numba + BLAS, CPU).

For a sparse symmetric positive definite Q with a fill-reducing ordering P,

    P Q Pᵀ = L Lᵀ,   log|Q| = 2 Σ_j log L_jj,   Q⁻¹ b = Pᵀ L⁻ᵀ L⁻¹ P b,

and the *selected inverse* is Σ = (P Q Pᵀ)⁻¹ = L⁻ᵀ L⁻¹ restricted to the filled pattern
of L + Lᵀ, which contains the pattern of P Q Pᵀ. It follows from Σ L = L⁻ᵀ (upper
triangular, diagonal 1/L_jj): the Takahashi recursion (Takahashi, Fagan & Chen 1973;
Erisman & Tinney 1975; Rue & Martino 2007, §2) computes Σ backwards, column block by
column block, touching only entries inside the filled pattern. In supernodal form
(Lin, Yang, Meza, Lu, Ying & E, "SelInv", ACM TOMS 37, 2011; Amestoy et al. 2012), with
supernode J holding the columns 𝒥 and the rows ℛ below its dense diagonal block,

    L_J = [L₁₁; L₂₁],   U = L₂₁ L₁₁⁻¹,
    Σ_ℛ𝒥 = −Σ_ℛℛ U,                  (Σ_ℛℛ: gathered from the ancestors' blocks)
    Σ_𝒥𝒥 = (L₁₁ L₁₁ᵀ)⁻¹ − Uᵀ Σ_ℛ𝒥,

from the last supernode to the first. ℛ is a clique of the filled graph, so every
entry of Σ_ℛℛ lies inside an ancestor's block; the relative row maps of the symbolic
analysis (:mod:`adelia.engine.supernodal_symbolic`) locate it. Each step is dense BLAS
on blocks (``dtrsm``, ``dsymm``, ``dgemm``, ``dpotri``), so the selected inverse costs
about twice the flops of the factorisation (measured: 1.6-2.2× its time,
benchmarks/selinv.py) instead of the 5-30× of a scalar, column-by-column recursion.

The factorisation is left-looking supernodal (Ng & Peyton 1993; CHOLMOD's
``super_numeric``, Chen et al. 2008): supernode J is assembled from Q, updated by every
descendant D whose rows hit its columns (C = L_D[r:, :] L_D[r:r', :]ᵀ by ``dgemm``,
scattered with the relative map), then ``dpotrf`` on the diagonal block and ``dtrsm``
below it. Blocks too small for a BLAS call to pay off use plain loops.

Parallelism: supernodes in disjoint subtrees of the elimination tree touch disjoint blocks
and read only their own subtree (factorisation) or their ancestors (selected inverse), so a
:class:`~adelia.engine.supernodal_symbolic.SubtreeSchedule` deals the subtrees below a
``top`` set of ancestors to threads, each with its own workspace; ``top`` (the large
separator supernodes near the root) runs on the calling thread. Threads are taken only from
idle cores (:mod:`adelia.engine.host_cores`).

Determinism: the result is bit-identical whatever the number of threads, the split and
the timing. Each supernode undergoes the same operations in the same order however the
tree is split and whichever thread runs it (its descendants' updates in the fixed order
of ``update_ptr``; workspace entries are written before they are read), so the split only
changes *when* a supernode is computed, never *how*. That needs every BLAS/LAPACK call to
run on one thread: OpenBLAS 0.3.30 gives different bits for ``dgemm``, ``dsymm``,
``dtrsm``, ``dpotrf`` and ``dpotri`` on 1, 2, 3 or 4 threads (measured on blocks from
64² to 1000²), so multi-threaded BLAS on ``top`` made the rw2 summaries of a
20 000-observation fit vary by 6e-6 from run to run, with the cores free at each call.

Everything here is host-side numpy/numba: :class:`SupernodalCholesky` takes a
:class:`SparsePattern` and an ordering once, then numeric values per call. The
compiled kernels are cached on disk by numba (:func:`~adelia.engine.numba_cache.cached_njit`)
and release the GIL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from .numba_cache import cached_njit

from . import numba_lapack as la
from .host_cores import claim_cores, kernel_threads, run_concurrently
from .pattern import SparsePattern
from .supernodal_symbolic import SubtreeSchedule, SupernodalStructure, analyse, subtree_schedule

# Below these sizes a BLAS call's overhead exceeds the arithmetic: use plain loops.
_SMALL_UPDATE = 512  # flops of a descendant update (ncol_d · m₁ · m₂)
_SMALL_PANEL = 4  # columns of a supernode factorised / inverted without LAPACK
# Below this many multiply-adds a factorisation runs on one thread (a thread's start-up and
# the scheduling outweigh the gain).
_PARALLEL_FLOPS = 2e7


# -- numeric factorisation -------------------------------------------------------------------
@cached_njit(nogil=True)
def _scatter_values(values, value_pos, lx):
    """The lower triangle of P Q Pᵀ into the (zeroed) factor storage."""
    lx[:] = 0.0
    for e in range(values.size):
        lx[value_pos[e]] = values[e]


@cached_njit(nogil=True)
def _factorise(supers, super_start, row_ptr, lx_ptr, chunk_start, chunk_end, chunk_owner,
               rel_ptr, rel, update_ptr, update_chunk, lx, work):  # fmt: skip
    """Factorise the supernodes ``supers`` (increasing; their descendants done or among
    them) in place in ``lx``; returns -1, or the first supernode whose pivot fails."""
    for q in range(supers.size):
        s = supers[q]
        f = super_start[s]
        ncol = super_start[s + 1] - f
        nrow = row_ptr[s + 1] - row_ptr[s]
        off = lx_ptr[s]
        # Left-looking updates: L_s -= L_d[rs:, :] L_d[rs:re, :]ᵀ for every descendant d.
        for q in range(update_ptr[s], update_ptr[s + 1]):
            c = update_chunk[q]
            d = chunk_owner[c]
            rs, re = chunk_start[c], chunk_end[c]
            nd = row_ptr[d + 1] - row_ptr[d]
            kd = super_start[d + 1] - super_start[d]
            offd = lx_ptr[d]
            m1, m2 = re - rs, nd - rs
            rp = rel_ptr[c]
            if kd * m1 * m2 <= _SMALL_UPDATE:
                for j in range(m1):
                    for i in range(j, m2):
                        work[i] = 0.0
                    for k in range(kd):
                        base = offd + k * nd + rs
                        ljk = lx[base + j]
                        if ljk != 0.0:
                            for i in range(j, m2):
                                work[i] += lx[base + i] * ljk
                    col = off + rel[rp + j] * nrow
                    for i in range(j, m2):
                        lx[col + rel[rp + i]] -= work[i]
            else:
                la.gemm(la.N, la.T, m2, m1, kd, 1.0, lx, offd + rs, nd, lx, offd + rs, nd, 0.0, work, 0, m2)
                for j in range(m1):
                    col = off + rel[rp + j] * nrow
                    wj = j * m2
                    for i in range(j, m2):
                        lx[col + rel[rp + i]] -= work[wj + i]
        # Dense panel: Cholesky of the diagonal block, triangular solve below it.
        if ncol <= _SMALL_PANEL:
            for j in range(ncol):
                cj = off + j * nrow
                for k in range(j):
                    ck = off + k * nrow
                    ljk = lx[ck + j]
                    if ljk != 0.0:
                        for i in range(j, nrow):
                            lx[cj + i] -= lx[ck + i] * ljk
                djj = lx[cj + j]
                if not djj > 0.0:  # also catches NaN
                    return s
                djj = np.sqrt(djj)
                lx[cj + j] = djj
                inv = 1.0 / djj
                for i in range(j + 1, nrow):
                    lx[cj + i] *= inv
        else:
            if la.potrf_lower(ncol, lx, off, nrow) != 0:
                return s
            la.trsm(la.R, la.L, la.T, nrow - ncol, ncol, 1.0, lx, off, nrow, lx, off + ncol, nrow)
    return -1


@cached_njit(nogil=True)
def _logdet(super_start, row_ptr, lx_ptr, lx):
    """2 Σ_j log L_jj."""
    total = 0.0
    for s in range(super_start.size - 1):
        ncol = super_start[s + 1] - super_start[s]
        nrow = row_ptr[s + 1] - row_ptr[s]
        for j in range(ncol):
            total += np.log(lx[lx_ptr[s] + j * nrow + j])
    return 2.0 * total


# -- selected inversion ------------------------------------------------------------------------
@cached_njit(nogil=True)
def _selected_inverse(supers, super_start, row_ptr, lx_ptr, chunk_ptr, chunk_start, chunk_end,
                      chunk_target, rel_ptr, rel, lx, sx, gram, u, s21, tri):  # fmt: skip
    """Σ = L⁻ᵀ L⁻¹ on the blocks of the supernodes ``supers`` into ``sx`` (same layout as
    ``lx``), last to first; their ancestors' blocks must be done or among them.

    Workspace: ``gram`` for Σ_ℛℛ (lower triangle, column-major m×m), ``u`` for
    U = L₂₁ L₁₁⁻¹ and ``s21`` for Σ_ℛ𝒥 (m×ncol each), ``tri`` for
    (L₁₁ L₁₁ᵀ)⁻¹ − Uᵀ Σ_ℛ𝒥 (ncol×ncol)."""
    for q in range(supers.size - 1, -1, -1):
        s = supers[q]
        ncol = super_start[s + 1] - super_start[s]
        nrow = row_ptr[s + 1] - row_ptr[s]
        m = nrow - ncol
        off = lx_ptr[s]
        # tri = (L₁₁ L₁₁ᵀ)⁻¹, lower triangle.
        if ncol <= _SMALL_PANEL:
            # Lower-triangular inverse M = L₁₁⁻¹ column by column, then tri = Mᵀ M.
            for j in range(ncol):
                for i in range(ncol):
                    tri[i + j * ncol] = 0.0
            for j in range(ncol):
                tri[j + j * ncol] = 1.0 / lx[off + j * nrow + j]
                for i in range(j + 1, ncol):
                    acc = 0.0
                    for k in range(j, i):
                        acc += lx[off + k * nrow + i] * tri[k + j * ncol]
                    tri[i + j * ncol] = -acc / lx[off + i * nrow + i]
            for j in range(ncol):
                for i in range(j, ncol):
                    acc = 0.0
                    for k in range(i, ncol):
                        acc += tri[k + i * ncol] * tri[k + j * ncol]
                    tri[i + j * ncol] = acc  # (Mᵀ M)_ij reads column i, j at rows >= i only
        else:
            for j in range(ncol):
                for i in range(j, ncol):
                    tri[i + j * ncol] = lx[off + j * nrow + i]
            la.potri_lower(ncol, tri, 0, ncol)
        if m > 0:
            # U = L₂₁ L₁₁⁻¹.
            for j in range(ncol):
                for i in range(m):
                    u[i + j * m] = lx[off + j * nrow + ncol + i]
            if ncol * ncol * m <= _SMALL_UPDATE:
                # U L₁₁ = L₂₁ column by column from the last: U_j = (L₂₁_j − Σ_{k>j} U_k L_kj) / L_jj.
                for j in range(ncol - 1, -1, -1):
                    inv = 1.0 / lx[off + j * nrow + j]
                    for i in range(m):
                        u[i + j * m] *= inv
                    for k in range(j):
                        ljk = lx[off + k * nrow + j]
                        if ljk != 0.0:
                            for i in range(m):
                                u[i + k * m] -= u[i + j * m] * ljk
            else:
                la.trsm(la.R, la.L, la.N, m, ncol, 1.0, lx, off, nrow, u, 0, m)
            # Σ_ℛℛ from the ancestors' blocks (lower triangle).
            for c in range(chunk_ptr[s], chunk_ptr[s + 1]):
                t = chunk_target[c]
                rs, re, rp = chunk_start[c], chunk_end[c], rel_ptr[c]
                nrow_t = row_ptr[t + 1] - row_ptr[t]
                off_t = lx_ptr[t]
                for j in range(rs, re):
                    src = off_t + rel[rp + j - rs] * nrow_t
                    dst = (j - ncol) * m - ncol
                    for i in range(j, nrow):
                        gram[dst + i] = sx[src + rel[rp + i - rs]]
            # Σ_ℛ𝒥 = −Σ_ℛℛ U;  tri −= Uᵀ Σ_ℛ𝒥.
            if m * m * ncol <= _SMALL_UPDATE:
                for j in range(ncol):
                    for i in range(m):
                        s21[i + j * m] = 0.0
                    for k in range(m):
                        ukj = u[k + j * m]
                        if ukj != 0.0:
                            # Σ_ℛℛ[i, k] for i >= k is gram[i + k m], for i < k gram[k + i m].
                            for i in range(k):
                                s21[i + j * m] -= gram[k + i * m] * ukj
                            for i in range(k, m):
                                s21[i + j * m] -= gram[i + k * m] * ukj
                for j in range(ncol):
                    for i in range(j, ncol):
                        acc = 0.0
                        for k in range(m):
                            acc += u[k + i * m] * s21[k + j * m]
                        tri[i + j * ncol] -= acc
            else:
                la.symm(la.L, la.L, m, ncol, -1.0, gram, 0, m, u, 0, m, 0.0, s21, 0, m)
                la.gemm(la.T, la.N, ncol, ncol, m, -1.0, u, 0, m, s21, 0, m, 1.0, tri, 0, ncol)
            for j in range(ncol):
                for i in range(m):
                    sx[off + j * nrow + ncol + i] = s21[i + j * m]
        for j in range(ncol):
            for i in range(j, ncol):
                sx[off + j * nrow + i] = tri[i + j * ncol]


@cached_njit(nogil=True)
def _gather(sx, value_pos):
    out = np.empty(value_pos.size)
    for e in range(value_pos.size):
        out[e] = sx[value_pos[e]]
    return out


# -- triangular solves -------------------------------------------------------------------------
# The right-hand sides y (n × k, C order) are passed flat: rows f..f+ncol of y are then the
# column-major k × ncol matrix Yᵀ at offset f·k (leading dimension k), so each supernode's
# dense part is one BLAS call on Yᵀ: Y_J ← L₁₁⁻¹ Y_J is Yᵀ_J ← Yᵀ_J L₁₁⁻ᵀ, and the update of the
# rows below, L₂₁ Y_J, is Yᵀ_J L₂₁ᵀ. Below _SMALL_SOLVE entries a supernode uses plain loops.
_SMALL_SOLVE = 256  # nrow · ncol · k


@cached_njit(nogil=True)
def _forward(super_start, row_ptr, row_idx, lx_ptr, lx, y, k_rhs, tmp):
    """y ← L⁻¹ y in place (y flat, n × k_rhs in C order; ``tmp`` holds max rows · k_rhs)."""
    for s in range(super_start.size - 1):
        f = super_start[s]
        ncol = super_start[s + 1] - f
        r0 = row_ptr[s]
        nrow = row_ptr[s + 1] - r0
        m = nrow - ncol
        off = lx_ptr[s]
        if nrow * ncol * k_rhs <= _SMALL_SOLVE:
            for j in range(ncol):
                cj = off + j * nrow
                inv = 1.0 / lx[cj + j]
                yj = (f + j) * k_rhs
                for r in range(k_rhs):
                    y[yj + r] *= inv
                for i in range(j + 1, nrow):
                    lij = lx[cj + i]
                    yi = row_idx[r0 + i] * k_rhs
                    for r in range(k_rhs):
                        y[yi + r] -= lij * y[yj + r]
            continue
        la.trsm(la.R, la.L, la.T, k_rhs, ncol, 1.0, lx, off, nrow, y, f * k_rhs, k_rhs)
        if m > 0:
            la.gemm(la.N, la.T, k_rhs, m, ncol, 1.0, y, f * k_rhs, k_rhs, lx, off + ncol, nrow, 0.0, tmp, 0, k_rhs)
            for i in range(m):
                yi = row_idx[r0 + ncol + i] * k_rhs
                for r in range(k_rhs):
                    y[yi + r] -= tmp[i * k_rhs + r]


@cached_njit(nogil=True)
def _backward(super_start, row_ptr, row_idx, lx_ptr, lx, y, k_rhs, tmp):
    """y ← L⁻ᵀ y in place (layout as :func:`_forward`)."""
    for s in range(super_start.size - 2, -1, -1):
        f = super_start[s]
        ncol = super_start[s + 1] - f
        r0 = row_ptr[s]
        nrow = row_ptr[s + 1] - r0
        m = nrow - ncol
        off = lx_ptr[s]
        if nrow * ncol * k_rhs <= _SMALL_SOLVE:
            for j in range(ncol - 1, -1, -1):
                cj = off + j * nrow
                yj = (f + j) * k_rhs
                for i in range(j + 1, nrow):
                    lij = lx[cj + i]
                    yi = row_idx[r0 + i] * k_rhs
                    for r in range(k_rhs):
                        y[yj + r] -= lij * y[yi + r]
                inv = 1.0 / lx[cj + j]
                for r in range(k_rhs):
                    y[yj + r] *= inv
            continue
        if m > 0:
            # Y_J −= L₂₁ᵀ y_ℛ, i.e. Yᵀ_J −= y_ℛᵀ L₂₁ with y_ℛᵀ gathered into tmp (k × m).
            for i in range(m):
                yi = row_idx[r0 + ncol + i] * k_rhs
                for r in range(k_rhs):
                    tmp[i * k_rhs + r] = y[yi + r]
            la.gemm(la.N, la.N, k_rhs, ncol, m, -1.0, tmp, 0, k_rhs, lx, off + ncol, nrow, 1.0, y, f * k_rhs, k_rhs)
        la.trsm(la.R, la.L, la.N, k_rhs, ncol, 1.0, lx, off, nrow, y, f * k_rhs, k_rhs)


class SupernodalCholesky:
    """Supernodal Cholesky factor and selected inverse on one pattern (host side, numpy).

    Built once per pattern and ordering (symbolic analysis); :meth:`factorise` then
    maps values (the lower triangle of Q on ``pattern``, as everywhere in adelia) to the
    flat factor, from which :meth:`logdet`, :meth:`solve`, :meth:`backward` and
    :meth:`selected_inverse` work. Methods allocate their own workspace, so distinct
    factors may be used from several threads at once.

    Example:
        >>> import numpy as np
        >>> from adelia.engine.pattern import SparsePattern
        >>> p = SparsePattern.from_entries(2, [0, 1, 1], [0, 0, 1])
        >>> chol = SupernodalCholesky(p, np.arange(2))
        >>> factor = chol.factorise(np.array([2.0, 1.0, 2.0]))  # Q = [[2, 1], [1, 2]]
        >>> round(chol.logdet(factor), 12), chol.selected_inverse(factor) * 3  # Q⁻¹ = [[2, -1], [-1, 2]] / 3
        (1.098612288668, array([ 2., -1.,  2.]))
    """

    def __init__(self, pattern: SparsePattern, perm: np.ndarray):
        self.pattern = pattern
        self.structure: SupernodalStructure = analyse(pattern, perm)
        st = self.structure
        self._nnz = pattern.nnz
        # Workspace sizes: the largest update block C (m₂ × m₁) and row count (factorisation);
        # the largest m², m·ncol and ncol² over supernodes, m = rows below the diagonal block
        # (selected inverse).
        m2 = st.row_ptr[st.chunk_owner + 1] - st.row_ptr[st.chunk_owner] - st.chunk_start
        m1 = st.chunk_end - st.chunk_start
        self._work_size = int(max(np.max(m1 * m2, initial=0), st.max_rows, 1))
        ncol = np.diff(st.super_start)
        below = np.diff(st.row_ptr) - ncol
        self._selinv_sizes = tuple(int(max(np.max(x, initial=0), 1)) for x in (below * below, below * ncol, ncol * ncol))
        self._all_supernodes = np.arange(st.nsuper, dtype=np.int64)
        self._schedules: dict[int, SubtreeSchedule | None] = {}

    def schedule(self, threads: int) -> SubtreeSchedule | None:
        """The subtree split for ``threads`` threads (computed once per count), or None when
        the factor is too small or the tree too narrow for threads to pay off."""
        if threads not in self._schedules:
            self._schedules[threads] = subtree_schedule(self.structure, threads, min_flops=_PARALLEL_FLOPS)
        return self._schedules[threads]

    @contextlib.contextmanager
    def _split(self) -> Iterator[tuple[SubtreeSchedule | None, int]]:
        """(subtree split, cores held) for one kernel call: when this factor splits and no
        batch of points keeps the cores busy, the cores claimed and the split for as many of
        them as were free; (None, 1) otherwise, claiming nothing (small factors stay off the
        shared tokens)."""
        threads = kernel_threads()
        if threads < 2 or self.schedule(threads) is None:
            yield None, 1
            return
        with claim_cores(threads) as cores:
            yield (self.schedule(cores) if cores > 1 else None), cores

    @property
    def perm(self) -> np.ndarray:
        """Factor position -> original index: Q[perm][:, perm] = L Lᵀ."""
        return self.structure.perm

    def factorise(self, values: np.ndarray) -> np.ndarray | None:
        """The flat factor L of P Q Pᵀ, or None when Q is not positive definite.

        ``values`` must be finite (a NaN may pass unnoticed through BLAS)."""
        st = self.structure
        values = np.ascontiguousarray(values, dtype=np.float64)
        if values.shape != (self._nnz,):  # the compiled kernels do not check bounds
            raise ValueError(f"factorise: values must have shape ({self._nnz},), got {values.shape}")
        lx = np.empty(st.factor_size)
        _scatter_values(values, st.value_pos, lx)

        def run(supers):
            work = np.empty(self._work_size)
            with la.blas_threads(1):  # one BLAS thread: bit-identical results (module doc)
                return _factorise(
                    supers, st.super_start, st.row_ptr, st.lx_ptr, st.chunk_start, st.chunk_end, st.chunk_owner,
                    st.rel_ptr, st.rel, st.update_ptr, st.update_chunk, lx, work,
                )  # fmt: skip

        with self._split() as (plan, _):
            if plan is None:
                failed = [run(self._all_supernodes)]
            else:
                failed = run_concurrently([lambda p=p: run(p) for p in plan.parts if p.size])
                if max(failed) < 0:
                    failed.append(run(plan.top))
        return None if max(failed) >= 0 else lx


    def _check_factor(self, factor) -> np.ndarray:
        if not isinstance(factor, np.ndarray) or factor.shape != (self.structure.factor_size,):
            raise ValueError("expected a factor returned by this SupernodalCholesky's factorise()")
        return factor

    def logdet(self, factor: np.ndarray) -> float:
        """log|Q| = 2 Σ log L_jj."""
        st = self.structure
        factor = self._check_factor(factor)
        return float(_logdet(st.super_start, st.row_ptr, st.lx_ptr, factor))

    def selected_inverse(self, factor: np.ndarray) -> np.ndarray:
        """Q⁻¹ on the pattern, shape (nnz,), aligned with the values."""
        st = self.structure
        factor = self._check_factor(factor)
        sx = np.empty(st.factor_size)
        gram_size, panel_size, tri_size = self._selinv_sizes

        def run(supers):
            gram, u, s21, tri = np.empty(gram_size), np.empty(panel_size), np.empty(panel_size), np.empty(tri_size)
            with la.blas_threads(1):  # one BLAS thread: bit-identical results (module doc)
                _selected_inverse(
                    supers, st.super_start, st.row_ptr, st.lx_ptr, st.chunk_ptr, st.chunk_start, st.chunk_end,
                    st.chunk_target, st.rel_ptr, st.rel, factor, sx, gram, u, s21, tri,
                )  # fmt: skip

        with self._split() as (plan, _):
            if plan is None:
                run(self._all_supernodes)
            else:
                run(plan.top)
                run_concurrently([lambda p=p: run(p) for p in plan.parts if p.size])
        return _gather(sx, st.value_pos)

    def _check_rhs(self, rhs) -> np.ndarray:
        rhs = np.asarray(rhs, dtype=np.float64)
        if rhs.ndim not in (1, 2) or rhs.shape[0] != self.structure.n:  # no bounds checks when compiled
            raise ValueError(f"rhs must have shape ({self.structure.n},) or ({self.structure.n}, k), got {rhs.shape}")
        return rhs

    def solve(self, factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Q⁻¹ rhs for rhs of shape (n,) or (n, k)."""
        st = self.structure
        factor, rhs = self._check_factor(factor), self._check_rhs(rhs)
        y = np.ascontiguousarray(rhs.reshape(rhs.shape[0], -1)[st.perm])
        k_rhs = y.shape[1]
        tmp = np.empty(max(st.max_rows * k_rhs, 1))
        with la.blas_threads(1):
            _forward(st.super_start, st.row_ptr, st.row_idx, st.lx_ptr, factor, y.reshape(-1), k_rhs, tmp)
            _backward(st.super_start, st.row_ptr, st.row_idx, st.lx_ptr, factor, y.reshape(-1), k_rhs, tmp)
        out = np.empty_like(y)
        out[st.perm] = y
        return out.reshape(rhs.shape)

    def backward(self, factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
        """Pᵀ L⁻ᵀ rhs for rhs of shape (n,) or (n, k): for rhs ~ N(0, I) a draw from N(0, Q⁻¹)."""
        st = self.structure
        factor, rhs = self._check_factor(factor), self._check_rhs(rhs)
        y = np.array(rhs.reshape(rhs.shape[0], -1), order="C")  # a writable copy
        k_rhs = y.shape[1]
        tmp = np.empty(max(st.max_rows * k_rhs, 1))
        with la.blas_threads(1):
            _backward(st.super_start, st.row_ptr, st.row_idx, st.lx_ptr, factor, y.reshape(-1), k_rhs, tmp)
        out = np.empty_like(y)
        out[st.perm] = y
        return out.reshape(rhs.shape)
