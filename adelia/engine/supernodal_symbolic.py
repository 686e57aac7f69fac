"""Symbolic analysis for the supernodal Cholesky factor (host side, once per pattern).

Given the lower-triangle pattern of a symmetric matrix Q and a fill-reducing ordering
``perm`` (factor position i holds original index perm[i]), this computes everything the
numeric kernels of :mod:`adelia.engine.supernodal` need, as flat integer arrays:

1. the elimination tree of A = P Q Pᵀ (Liu 1986) and a postordering of it, composed into
   ``perm`` so that every subtree, hence every supernode, is a contiguous column range;
2. column counts of L by row-subtree traversal (the pattern of row k of L is the set of
   nodes on the tree paths from each j with A_kj ≠ 0 up to k; Liu 1986), O(nnz(L));
3. fundamental supernodes (maximal chains j → j+1 = parent(j) where j+1 has the single
   child j and |L_{*,j}| = |L_{*,j+1}| + 1), then relaxed amalgamation with CHOLMOD's
   default rule (merge a supernode into its parent when that is the next one and the
   merged block has few explicit zeros: nrelax = 4/16/48 columns, zrelax = 0.8/0.1/0.05;
   Ashcraft & Grimes 1989; Chen, Davis, Hager & Rajamanickam 2008);
4. the row structure of every supernode (sorted; its own columns first), from row
   subtrees walked over the supernodal tree, and the column-major storage offsets: block
   s is nrow_s × ncol_s at ``lx_ptr[s]`` in one flat array;
5. *update chunks*: the rows of supernode d below its diagonal block split by the
   ancestor supernode t holding them as columns. For chunk c (rows ``chunk_start[c]`` to
   ``chunk_end[c]`` of d, target t) ``rel`` lists, for each row of d from chunk_start[c]
   to the end, its position in t's row structure. These rows are a subset of t's rows
   (the below-diagonal rows of a supernode form a clique of the filled graph), so one
   relative map serves both the factorisation (d updates t's block) and the Takahashi
   recursion (Σ restricted to d's rows is gathered from t's block);
6. ``value_pos``: for each stored entry of Q, its flat index in the factor storage.

References: J. W. H. Liu, "A compact row storage scheme for Cholesky factors using
elimination trees", ACM TOMS 12 (1986); C. Ashcraft & R. Grimes, "The influence of
relaxed supernode partitions on the multifrontal method", ACM TOMS 15 (1989);
Y. Chen, T. A. Davis, W. W. Hager & S. Rajamanickam, "CHOLMOD, supernodal sparse
Cholesky factorization and update/downdate", ACM TOMS 35 (2008).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from .numba_cache import cached_njit

from .pattern import SparsePattern

# CHOLMOD's defaults for relaxed amalgamation (cholmod_defaults).
_NRELAX = (4, 16, 48)
_ZRELAX = (0.8, 0.1, 0.05)


@dataclass(frozen=True, eq=False)
class SupernodalStructure:
    """Static description of the supernodal factor P Q Pᵀ = L Lᵀ (see module docstring).

    Attributes (all int64 numpy arrays unless noted):
        n: dimension. perm: (n,) factor position -> original index.
        super_start: (nsuper+1,) first column of each supernode (then n).
        row_ptr, row_idx: rows of supernode s are row_idx[row_ptr[s]:row_ptr[s+1]].
        lx_ptr: (nsuper+1,) offsets of the column-major blocks in the flat factor.
        chunk_ptr: (nsuper+1,) chunks of supernode d are chunk_ptr[d]:chunk_ptr[d+1].
        chunk_start, chunk_end, chunk_target, chunk_owner, rel_ptr: per chunk.
        rel: relative row positions (see module docstring).
        update_ptr, update_chunk: chunks whose target is s.
        value_pos: (nnz,) flat factor index of each stored entry of Q.
        super_parent: (nsuper,) parent supernode in the supernodal elimination tree (−1
            for a root): the supernode holding the first row below s's diagonal block.
    """

    n: int
    perm: np.ndarray
    super_start: np.ndarray
    row_ptr: np.ndarray
    row_idx: np.ndarray
    lx_ptr: np.ndarray
    chunk_ptr: np.ndarray
    chunk_start: np.ndarray
    chunk_end: np.ndarray
    chunk_target: np.ndarray
    chunk_owner: np.ndarray
    rel_ptr: np.ndarray
    rel: np.ndarray
    update_ptr: np.ndarray
    update_chunk: np.ndarray
    value_pos: np.ndarray
    super_parent: np.ndarray

    @property
    def nsuper(self) -> int:
        return int(self.super_start.size - 1)

    @property
    def factor_size(self) -> int:
        """Number of stored float64 entries of L (dense diagonal blocks included)."""
        return int(self.lx_ptr[-1])

    @property
    def max_rows(self) -> int:
        return int(np.max(np.diff(self.row_ptr))) if self.nsuper else 0


# -- elimination tree, postorder, counts -------------------------------------------------------
def _lower_rows(n, rows, cols, inv):
    """Row-wise strictly-lower pattern of A = P Q Pᵀ: columns j < k of row k (CSR)."""
    a, b = inv[rows], inv[cols]
    off = a != b
    hi, lo = np.maximum(a, b)[off], np.minimum(a, b)[off]
    order = np.lexsort((lo, hi))
    rptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(hi, minlength=n), out=rptr[1:])
    return rptr, np.ascontiguousarray(lo[order])


@cached_njit()
def _etree(n, rptr, rcol):
    """Elimination tree by Liu's algorithm with path compression; parent[root] = -1."""
    parent = np.full(n, -1, np.int64)
    ancestor = np.full(n, -1, np.int64)
    for k in range(n):
        for p in range(rptr[k], rptr[k + 1]):
            r = rcol[p]
            while ancestor[r] != -1 and ancestor[r] != k:
                nxt = ancestor[r]
                ancestor[r] = k
                r = nxt
            if ancestor[r] == -1:
                ancestor[r] = k
                parent[r] = k
    return parent


@cached_njit()
def _postorder(parent):
    """post[i] = node visited i-th in a depth-first postorder (children in index order)."""
    n = parent.size
    head = np.full(n, -1, np.int64)
    nxt = np.full(n, -1, np.int64)
    for j in range(n - 1, -1, -1):  # reverse, so each child list is in increasing order
        p = parent[j]
        if p != -1:
            nxt[j] = head[p]
            head[p] = j
    post = np.empty(n, np.int64)
    stack = np.empty(n, np.int64)
    k = 0
    for root in range(n):
        if parent[root] != -1:
            continue
        top = 0
        stack[0] = root
        while top >= 0:
            node = stack[top]
            child = head[node]
            if child == -1:
                post[k] = node
                k += 1
                top -= 1
            else:
                head[node] = nxt[child]
                top += 1
                stack[top] = child
    return post


@cached_njit()
def _column_counts(n, rptr, rcol, parent, max_total):
    """|L_{*,j}| (diagonal included) by traversing every row subtree once: O(nnz(L)).

    Stops early, returning (counts so far, False), once nnz(L) exceeds ``max_total``."""
    count = np.ones(n, np.int64)
    mark = np.full(n, -1, np.int64)
    total = n
    for k in range(n):
        mark[k] = k
        for p in range(rptr[k], rptr[k + 1]):
            r = rcol[p]
            while mark[r] != k:
                count[r] += 1
                mark[r] = k
                r = parent[r]
                total += 1
        if total > max_total:
            return count, False
    return count, True


# -- supernodes ----------------------------------------------------------------------------
@cached_njit()
def _supernode_map_and_parent(parent, starts):
    """(column → supernode, supernode → parent supernode or −1) for the supernodes whose first
    columns are ``starts`` (with n at the end), from the column elimination tree."""
    nsuper = starts.size - 1
    smap = np.empty(parent.size, np.int64)
    for s in range(nsuper):
        for j in range(starts[s], starts[s + 1]):
            smap[j] = s
    sparent = np.full(nsuper, -1, np.int64)
    for s in range(nsuper):
        p = parent[starts[s + 1] - 1]
        if p != -1:
            sparent[s] = smap[p]
    return smap, sparent


@cached_njit()
def _relaxed_supernodes(parent, count, nrelax0, nrelax1, nrelax2, zrelax0, zrelax1, zrelax2):
    """Fundamental supernodes, then CHOLMOD's relaxed amalgamation.

    Returns (super_start, nrows) for the relaxed supernodes."""
    n = parent.size
    nchild = np.zeros(n, np.int64)
    for j in range(n):
        if parent[j] != -1:
            nchild[parent[j]] += 1
    fstart = np.empty(n + 1, np.int64)
    nf = 0
    for j in range(n):
        new = j == 0 or not (parent[j - 1] == j and count[j - 1] == count[j] + 1 and nchild[j] == 1)
        if new:
            fstart[nf] = j
            nf += 1
    fstart[nf] = n
    fstart = fstart[: nf + 1]
    _, sparent = _supernode_map_and_parent(parent, fstart)
    merged = np.full(nf, -1, np.int64)
    nscol = np.empty(nf, np.int64)
    zeros = np.zeros(nf, np.float64)
    snz = np.empty(nf, np.int64)
    for s in range(nf):
        nscol[s] = fstart[s + 1] - fstart[s]
        snz[s] = count[fstart[s]]
    for s in range(nf - 2, -1, -1):
        if sparent[s] == -1:
            continue
        ss = sparent[s]
        while merged[ss] != -1:
            ss = merged[ss]
        current = ss
        ss = sparent[s]
        while merged[ss] != -1:  # path compression
            nxt = merged[ss]
            merged[ss] = current
            ss = nxt
        if current != s + 1:
            continue
        nscol0, nscol1 = nscol[s], nscol[s + 1]
        ns = nscol0 + nscol1
        totzeros = zeros[s + 1]
        if ns <= nrelax0:
            merge = True
        else:
            newzeros = float(nscol0) * (snz[s + 1] + nscol0 - snz[s])
            if newzeros == 0.0:
                merge = True
            else:
                totsize = ns * (ns + 1) / 2.0 + ns * float(snz[s + 1] - nscol1)
                totzeros += newzeros
                z = totzeros / totsize
                merge = (ns <= nrelax1 and z < zrelax0) or (ns <= nrelax2 and z < zrelax1) or z < zrelax2
        if merge:
            zeros[s] = totzeros
            merged[s + 1] = s
            snz[s] = nscol0 + snz[s + 1]
            nscol[s] += nscol[s + 1]
    nsuper = 0
    for s in range(nf):
        if merged[s] == -1:
            nsuper += 1
    super_start = np.empty(nsuper + 1, np.int64)
    nrows = np.empty(nsuper, np.int64)
    k = 0
    for s in range(nf):
        if merged[s] == -1:
            super_start[k] = fstart[s]
            nrows[k] = snz[s]
            k += 1
    super_start[nsuper] = n
    return super_start, nrows


@cached_njit()
def _supernode_rows(n, rptr, rcol, parent, super_start, nrows):
    """Sorted row structure of every supernode (rows appended in increasing k)."""
    nsuper = super_start.size - 1
    smap, sparent = _supernode_map_and_parent(parent, super_start)
    row_ptr = np.empty(nsuper + 1, np.int64)
    row_ptr[0] = 0
    for s in range(nsuper):
        row_ptr[s + 1] = row_ptr[s] + nrows[s]
    fill = row_ptr[:-1].copy()
    row_idx = np.empty(row_ptr[nsuper], np.int64)
    flag = np.full(nsuper, -1, np.int64)
    for k in range(n):
        sk = smap[k]
        flag[sk] = k
        row_idx[fill[sk]] = k  # k is a column of its own supernode: the dense diagonal block
        fill[sk] += 1
        for p in range(rptr[k], rptr[k + 1]):
            s = smap[rcol[p]]
            while flag[s] != k:
                row_idx[fill[s]] = k
                fill[s] += 1
                flag[s] = k
                s = sparent[s]
    for s in range(nsuper):
        if fill[s] != row_ptr[s + 1]:
            raise RuntimeError("supernodal row count mismatch")
    return smap, row_ptr, row_idx, sparent


@cached_njit()
def _chunks(super_start, smap, row_ptr, row_idx):
    """Update chunks and their relative row maps (module docstring, item 5)."""
    nsuper = super_start.size - 1
    n_chunks = 0
    n_rel = 0
    for d in range(nsuper):
        r0, r1 = row_ptr[d], row_ptr[d + 1]
        last = -1
        for p in range(r0 + super_start[d + 1] - super_start[d], r1):
            t = smap[row_idx[p]]
            if t != last:
                n_chunks += 1
                n_rel += r1 - p
                last = t
    chunk_ptr = np.zeros(nsuper + 1, np.int64)
    chunk_start = np.empty(n_chunks, np.int64)
    chunk_end = np.empty(n_chunks, np.int64)
    chunk_target = np.empty(n_chunks, np.int64)
    chunk_owner = np.empty(n_chunks, np.int64)
    rel_ptr = np.empty(n_chunks + 1, np.int64)
    rel = np.empty(n_rel, np.int64)
    c = 0
    q = 0
    for d in range(nsuper):
        r0, r1 = row_ptr[d], row_ptr[d + 1]
        ncol = super_start[d + 1] - super_start[d]
        p = r0 + ncol
        while p < r1:
            t = smap[row_idx[p]]
            e = p
            while e < r1 and smap[row_idx[e]] == t:
                e += 1
            chunk_start[c] = p - r0
            chunk_end[c] = e - r0
            chunk_target[c] = t
            chunk_owner[c] = d
            rel_ptr[c] = q
            t0, t1 = row_ptr[t], row_ptr[t + 1]
            pos = t0
            for i in range(p, r1):  # merge: rows of d from p on are a subset of t's rows
                while row_idx[pos] != row_idx[i]:
                    pos += 1
                    if pos >= t1:
                        raise RuntimeError("supernodal structure is not closed under fill")
                rel[q] = pos - t0
                q += 1
            c += 1
            p = e
        chunk_ptr[d + 1] = c
    rel_ptr[n_chunks] = q
    update_ptr = np.zeros(nsuper + 1, np.int64)
    for k in range(n_chunks):
        update_ptr[chunk_target[k] + 1] += 1
    for s in range(nsuper):
        update_ptr[s + 1] += update_ptr[s]
    fill = update_ptr[:-1].copy()
    update_chunk = np.empty(n_chunks, np.int64)
    for k in range(n_chunks):
        t = chunk_target[k]
        update_chunk[fill[t]] = k
        fill[t] += 1
    return chunk_ptr, chunk_start, chunk_end, chunk_target, chunk_owner, rel_ptr, rel, update_ptr, update_chunk


def _value_positions(rows, cols, inv, smap, super_start, row_ptr, row_idx, lx_ptr):
    """Flat factor index of each stored entry (row, col) of Q, in the permuted lower triangle."""
    a, b = inv[rows], inv[cols]
    hi, lo = np.maximum(a, b), np.minimum(a, b)
    s = smap[lo]
    n = smap.size
    # (supernode, row) keys increase along row_idx: one search locates hi within s's rows.
    keys = np.repeat(np.arange(row_ptr.size - 1), np.diff(row_ptr)) * n + row_idx
    pos = np.searchsorted(keys, s * n + hi) - row_ptr[s]
    return lx_ptr[s] + (lo - super_start[s]) * (row_ptr[s + 1] - row_ptr[s]) + pos


def cholesky_flops(pattern: SparsePattern, perm: np.ndarray, max_nnz: int | None = None) -> tuple[float, int]:
    """(Σ_j |L_{*,j}|², nnz(L)): the multiply-adds of the Cholesky factorisation under
    ``perm`` (up to lower-order terms) and the factor's size, from the elimination tree
    and column counts only. The count costs O(nnz(L)), so with ``max_nnz`` it stops once
    nnz(L) exceeds that and returns (inf, max_nnz + 1) (a useless ordering stays cheap)."""
    n = pattern.n
    inv = np.empty(n, np.int64)
    inv[np.asarray(perm, dtype=np.int64)] = np.arange(n)
    rptr, rcol = _lower_rows(n, pattern.rows, pattern.cols, inv)
    limit = np.iinfo(np.int64).max if max_nnz is None else int(max_nnz)
    count, complete = _column_counts(n, rptr, rcol, _etree(n, rptr, rcol), limit)
    if not complete:
        return float("inf"), limit + 1
    return float(np.sum(count.astype(np.float64) ** 2)), int(count.sum())


def analyse(pattern: SparsePattern, perm: np.ndarray) -> SupernodalStructure:
    """Supernodal symbolic factorisation of ``pattern`` under the ordering ``perm``.

    ``perm`` (factor position -> original index) is refined by an elimination-tree
    postorder, which leaves the fill unchanged.

    Example:
        >>> import numpy as np
        >>> from adelia.engine.pattern import SparsePattern
        >>> p = SparsePattern.from_entries(3, [1, 2], [0, 0])  # an arrowhead at 0
        >>> s = analyse(p, np.array([1, 2, 0]))  # eliminate the hub last: no fill
        >>> s.nsuper, s.factor_size
        (1, 9)
    """
    n = pattern.n
    rows = np.ascontiguousarray(pattern.rows, dtype=np.int64)
    cols = np.ascontiguousarray(pattern.cols, dtype=np.int64)
    perm = np.asarray(perm, dtype=np.int64)
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError(f"perm must be a permutation of 0..{n - 1}, got shape {perm.shape}")
    inv = np.empty(n, np.int64)
    inv[perm] = np.arange(n)
    rptr, rcol = _lower_rows(n, rows, cols, inv)
    parent = _etree(n, rptr, rcol)
    post = _postorder(parent)
    if not np.array_equal(post, np.arange(n)):
        perm = perm[post]
        inv[perm] = np.arange(n)
        rptr, rcol = _lower_rows(n, rows, cols, inv)
        parent = _etree(n, rptr, rcol)
    count, _ = _column_counts(n, rptr, rcol, parent, np.iinfo(np.int64).max)
    super_start, nrows = _relaxed_supernodes(parent, count, *_NRELAX, *_ZRELAX)
    smap, row_ptr, row_idx, super_parent = _supernode_rows(n, rptr, rcol, parent, super_start, nrows)
    lx_ptr = np.zeros(super_start.size, np.int64)
    np.cumsum(np.diff(super_start) * nrows, out=lx_ptr[1:])
    chunks = _chunks(super_start, smap, row_ptr, row_idx)
    value_pos = _value_positions(rows, cols, inv, smap, super_start, row_ptr, row_idx, lx_ptr)
    return SupernodalStructure(n, perm, super_start, row_ptr, row_idx, lx_ptr, *chunks, value_pos, super_parent)


# -- subtree parallelism ---------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SubtreeSchedule:
    """A split of the supernodal elimination tree for ``len(parts)`` threads.

    Every supernode of ``parts[i]`` (increasing, hence descendants before ancestors) has
    all its descendants in ``parts[i]``, so the parts factorise concurrently (left-looking
    updates read descendants only) and invert concurrently once ``top`` is done (the
    Takahashi recursion reads ancestors only). ``top`` holds the remaining supernodes, the
    ancestors of the parts' subtrees, in increasing order: factorised after the parts and
    inverted before them. ``flops`` are the estimated multiply-adds (top, then each part).
    """

    top: np.ndarray
    parts: tuple[np.ndarray, ...]
    flops: tuple[float, ...]


def supernode_flops(st: SupernodalStructure) -> np.ndarray:
    """Multiply-adds of the left-looking factorisation charged to each supernode (its panel,
    and every descendant's update of it); the selected inverse's are about twice these."""
    ncol = np.diff(st.super_start).astype(np.float64)
    nrow = np.diff(st.row_ptr).astype(np.float64)
    flops = ncol**3 / 6.0 + (nrow - ncol) * ncol**2 / 2.0
    owner = st.chunk_owner
    m1 = (st.chunk_end - st.chunk_start).astype(np.float64)
    m2 = nrow[owner] - st.chunk_start
    np.add.at(flops, st.chunk_target, ncol[owner] * m1 * (m2 - (m1 - 1.0) / 2.0))
    return flops


def subtree_schedule(
    st: SupernodalStructure, n_parts: int, min_flops: float = 0.0, max_expansions: int = 64
) -> SubtreeSchedule | None:
    """Split the tree for ``n_parts`` threads (Geist & Ng 1989's subtree-to-thread mapping):
    starting from the roots, the heaviest subtree is repeatedly replaced by its children
    (its root moving to ``top``) and the subtrees dealt to the parts heaviest first, each to
    the lightest part; the split with the smallest estimated time (top's flops plus the
    heaviest part's) is kept. None when the factorisation costs under ``min_flops``
    multiply-adds or no split beats the sequential one."""
    if n_parts < 2 or st.nsuper < 2:
        return None
    parent = st.super_parent
    flops = supernode_flops(st)
    if flops.sum() < min_flops:
        return None
    subtree = flops.copy()
    for s in range(st.nsuper):  # postorder: children before parents
        if parent[s] >= 0:
            subtree[parent[s]] += subtree[s]
    children: list[list[int]] = [[] for _ in range(st.nsuper)]
    for s in range(st.nsuper):
        if parent[s] >= 0:
            children[parent[s]].append(s)
    total = float(flops.sum())
    front = [int(s) for s in np.flatnonzero(parent < 0)]
    top: list[int] = []
    best, best_time = None, total
    for _ in range(max_expansions):
        front.sort(key=lambda s: -subtree[s])
        loads = [0.0] * n_parts
        owner_of = []
        for s in front:
            i = int(np.argmin(loads))
            loads[i] += subtree[s]
            owner_of.append(i)
        top_flops = float(flops[top].sum()) if top else 0.0
        if top_flops + max(loads) < best_time:
            best_time = top_flops + max(loads)
            best = (list(top), list(front), owner_of, top_flops, list(loads))
        heaviest = front[0]
        if not children[heaviest]:
            break
        front.pop(0)
        top.append(heaviest)
        front.extend(children[heaviest])
    if best is None:
        return None
    top, front, owner_of, top_flops, loads = best
    first = np.empty(st.nsuper, np.int64)  # first supernode of each subtree: subtrees are ranges
    size = np.ones(st.nsuper, np.int64)
    for s in range(st.nsuper):
        if parent[s] >= 0:
            size[parent[s]] += size[s]
    first[:] = np.arange(st.nsuper) - size + 1
    parts = []
    for i in range(n_parts):
        ranges = [np.arange(first[s], s + 1) for s, o in zip(front, owner_of) if o == i]
        parts.append(np.sort(np.concatenate(ranges)) if ranges else np.zeros(0, np.int64))
    return SubtreeSchedule(np.sort(np.asarray(top, np.int64)), tuple(parts), (top_flops, *loads))
