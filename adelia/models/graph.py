"""Neighbourhood graphs for the areal models (besag, bym, bym2), as R-INLA reads them.

A :class:`Graph` is an undirected simple graph on nodes 0..n-1 (R-INLA's node ``i`` is our
``i - 1``), held as host data: the sorted neighbour list of every node, and its connected
components. :func:`as_graph` accepts everything R-INLA's ``inla.read.graph`` accepts that has a
Python counterpart:

* a path to a graph file in R-INLA's text format (or R-INLA's binary format, as
  ``inla.write.graph`` writes it): first the number of nodes ``n``, then for each node
  ``i nnbs nbr_1 ... nbr_nnbs``; whitespace and line breaks are free, ``#`` starts a comment,
  nodes are numbered 1..n (or 0..n-1: a node numbered 0 makes R-INLA read the whole file as
  0-based, and so do we);
* the same definition given as a string (``"3 1 1 2 2 1 1 3 0"``);
* an adjacency matrix (dense or scipy sparse; every nonzero off-diagonal entry is an edge,
  the values and the diagonal are ignored, as in R-INLA);
* an edge list: a sequence of (i, j) pairs of 1-based node numbers (an ``m x 2`` array);
* a :class:`Graph`.

The graph must be symmetric (i lists j iff j lists i); an asymmetric graph, a node listed
twice, a wrong node count, a self-loop or a neighbour out of range raises
:class:`~adelia.errors.ModelError` naming the nodes (1-based, as the user numbers them).

Connected components follow R-INLA's ``inla.add.graph.cc``: numbered in the order of their
smallest node, each listing its nodes in increasing order.

Example:
    >>> g = as_graph("4  1 1 2  2 2 1 3  3 1 2  4 0")
    >>> g.n, g.nnbs.tolist(), g.n_components
    (4, [1, 2, 1, 0], 2)
    >>> [c.tolist() for c in g.component_nodes]
    [[0, 1, 2], [3]]
"""

from __future__ import annotations

import gzip
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ..errors import ModelError

__all__ = ["Graph", "as_graph", "read_graph", "write_graph"]

#: First integer of R-INLA's binary graph files (``inla.graph.binary.file.magic()``).
_BINARY_MAGIC = -1


def _fmt_nodes(nodes, limit: int = 10) -> str:
    """1-based node numbers for messages, shortened when there are many."""
    nodes = [int(v) for v in nodes]
    text = ", ".join(str(v) for v in nodes[:limit])
    return text + (f", ... ({len(nodes)} in all)" if len(nodes) > limit else "")


@dataclass(frozen=True, eq=False)
class Graph:
    """An undirected graph on nodes 0..n-1 (host data, static).

    Attributes:
        n: number of nodes.
        indptr, indices: the neighbour lists in CSR form: the neighbours of node ``i`` are
            ``indices[indptr[i]:indptr[i + 1]]`` (0-based, sorted, no self-loops).
        source: where the graph came from (a file name, "matrix", ...), for messages.

    Build one with :func:`as_graph` or the ``from_*`` constructors; they validate.
    """

    n: int
    indptr: np.ndarray
    indices: np.ndarray
    source: str = field(default="graph", compare=False)

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_neighbours(cls, neighbours, n: int | None = None, *, source: str = "graph") -> "Graph":
        """From 0-based neighbour lists (``neighbours[i]`` = the neighbours of node i).

        Validates symmetry, self-loops, duplicates and range; messages use 1-based numbers.
        """
        nbs = [np.asarray(list(v) if not isinstance(v, np.ndarray) else v, dtype=np.int64).ravel() for v in neighbours]
        n = len(nbs) if n is None else int(n)
        if len(nbs) != n:
            raise ModelError(f"{source}: expected neighbour lists for {n} nodes, got {len(nbs)}")
        counts = np.array([v.size for v in nbs], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(counts)])
        indices = np.concatenate(nbs) if n else np.zeros(0, np.int64)
        rows = np.repeat(np.arange(n, dtype=np.int64), counts)
        bad = (indices < 0) | (indices >= n)
        if np.any(bad):
            k = int(np.flatnonzero(bad)[0])
            raise ModelError(
                f"{source}: node {rows[k] + 1} lists neighbour {indices[k] + 1}, outside the nodes 1..{n}"
            )
        loops = indices == rows
        if np.any(loops):
            raise ModelError(f"{source}: node(s) {_fmt_nodes(rows[loops] + 1)} list themselves as neighbours")
        key = rows * max(n, 1) + indices
        order = np.argsort(key, kind="stable")
        skey = key[order]
        dup = np.flatnonzero(np.diff(skey) == 0)
        if dup.size:
            k = order[dup[0]]
            raise ModelError(f"{source}: node {rows[k] + 1} lists neighbour {indices[k] + 1} more than once")
        # i lists j  <=>  j lists i
        rkey = indices * max(n, 1) + rows
        missing = ~np.isin(rkey, key)
        if np.any(missing):
            pairs = [f"{rows[k] + 1} lists {indices[k] + 1} but {indices[k] + 1} does not list {rows[k] + 1}"
                     for k in np.flatnonzero(missing)[:5]]
            more = int(missing.sum()) - len(pairs)
            raise ModelError(
                f"{source}: the graph is not symmetric: " + "; ".join(pairs)
                + (f"; and {more} more" if more > 0 else "")
            )
        # sort each row
        indices = indices[order]
        return cls(n, indptr, indices, source)

    @classmethod
    def from_matrix(cls, matrix, *, source: str = "matrix") -> "Graph":
        """From a square adjacency (or precision) matrix: nonzero off-diagonal entries are edges."""
        m = sp.coo_matrix(matrix)
        if m.shape[0] != m.shape[1]:
            raise ModelError(f"{source}: a graph needs a square matrix, got shape {m.shape}")
        n = m.shape[0]
        keep = (m.data != 0) & (m.row != m.col)
        a = sp.csr_matrix((np.ones(int(keep.sum())), (m.row[keep], m.col[keep])), shape=(n, n))
        a.sum_duplicates()
        a.sort_indices()
        one_way = (a - a.T).tocoo()
        one_way = (one_way.row[one_way.data > 0], one_way.col[one_way.data > 0])
        if one_way[0].size:
            i, j = one_way
            first = np.lexsort((j, i))
            pairs = [f"({i[k] + 1}, {j[k] + 1}) is nonzero but ({j[k] + 1}, {i[k] + 1}) is zero" for k in first[:5]]
            more = i.size - len(pairs)
            raise ModelError(
                f"{source}: the adjacency matrix is not symmetric: " + "; ".join(pairs)
                + (f"; and {more} more" if more > 0 else "")
            )
        return cls(n, a.indptr.astype(np.int64), a.indices.astype(np.int64), source)

    @classmethod
    def from_edges(cls, edges, n: int | None = None, *, source: str = "edge list") -> "Graph":
        """From undirected edges given as 1-based (i, j) pairs (an m x 2 array or a list of pairs).

        ``n`` defaults to the largest node number; give it when the last nodes are isolated.
        """
        e = np.asarray(edges)
        if e.size == 0:
            e = e.reshape(0, 2)
        if e.ndim != 2 or e.shape[1] != 2:
            raise ModelError(f"{source}: an edge list must be pairs (i, j), got an array of shape {e.shape}")
        if not np.all(np.isfinite(e.astype(float))) or np.any(e != np.round(e)):
            raise ModelError(f"{source}: edge node numbers must be whole numbers")
        e = e.astype(np.int64)
        top = int(e.max()) if e.size else 0
        n = top if n is None else int(n)
        bad = (e < 1) | (e > n)
        if np.any(bad):
            k = int(np.flatnonzero(bad.any(axis=1))[0])
            raise ModelError(f"{source}: edge ({e[k, 0]}, {e[k, 1]}) refers to a node outside 1..{n}")
        loops = e[:, 0] == e[:, 1]
        if np.any(loops):
            raise ModelError(f"{source}: self-loop(s) at node(s) {_fmt_nodes(np.unique(e[loops, 0]))}")
        i, j = e[:, 0] - 1, e[:, 1] - 1
        a = sp.csr_matrix((np.ones(2 * len(i)), (np.concatenate([i, j]), np.concatenate([j, i]))), shape=(n, n))
        a.sum_duplicates()
        a.sort_indices()
        return cls(n, a.indptr.astype(np.int64), a.indices.astype(np.int64), source)

    # -- queries ---------------------------------------------------------------------------
    @cached_property
    def nnbs(self) -> np.ndarray:
        """Number of neighbours of each node, shape (n,)."""
        return np.diff(self.indptr)

    def neighbours(self, i: int) -> np.ndarray:
        """0-based neighbours of 0-based node ``i``."""
        return self.indices[self.indptr[i]:self.indptr[i + 1]]

    @property
    def n_edges(self) -> int:
        return int(self.indices.size // 2)

    @cached_property
    def adjacency(self) -> sp.csr_matrix:
        """The 0/1 adjacency matrix W (symmetric, zero diagonal)."""
        return sp.csr_matrix((np.ones(self.indices.size), self.indices, self.indptr), shape=(self.n, self.n))

    @cached_property
    def laplacian(self) -> sp.csr_matrix:
        """The graph Laplacian R = D - W: ``R[i, i]`` = number of neighbours, ``R[i, j] = -1``
        for neighbours. This is the besag structure matrix (Besag, York & Mollié 1991)."""
        return (sp.diags(self.nnbs.astype(float)) - self.adjacency).tocsr()

    @cached_property
    def _components(self) -> tuple[int, np.ndarray]:
        if self.n == 0:
            return 0, np.zeros(0, np.int64)
        k, labels = connected_components(self.adjacency, directed=False)
        # number the components by their smallest node, as R-INLA does
        first = np.full(k, self.n, dtype=np.int64)
        np.minimum.at(first, labels, np.arange(self.n))
        rank = np.empty(k, np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(k)
        return int(k), rank[labels]

    @property
    def n_components(self) -> int:
        """Number of connected components (isolated nodes count as components of size 1)."""
        return self._components[0]

    @property
    def component_id(self) -> np.ndarray:
        """0-based component of each node, components numbered by their smallest node."""
        return self._components[1]

    @cached_property
    def component_nodes(self) -> tuple[np.ndarray, ...]:
        """Nodes (0-based, increasing) of each component, in component order."""
        k, lab = self._components
        order = np.argsort(lab, kind="stable")
        cuts = np.cumsum(np.bincount(lab, minlength=k))[:-1]
        return tuple(np.split(order, cuts))

    @cached_property
    def component_sizes(self) -> np.ndarray:
        return np.array([c.size for c in self.component_nodes], dtype=np.int64)

    @property
    def n_singletons(self) -> int:
        """R-INLA's ``cc.n1``: components of size 1 (isolated nodes, "islands")."""
        return int(np.sum(self.component_sizes == 1))

    @property
    def n_proper_components(self) -> int:
        """R-INLA's ``cc.n2``: components of size >= 2."""
        return int(np.sum(self.component_sizes >= 2))

    def __repr__(self) -> str:
        return (f"Graph(n={self.n}, edges={self.n_edges}, components={self.n_components}, "
                f"singletons={self.n_singletons}, source={self.source!r})")

    def to_text(self) -> str:
        """R-INLA's text format, 1-based (what ``inla.write.graph(mode="ascii")`` writes)."""
        lines = [str(self.n)]
        for i in range(self.n):
            nb = self.neighbours(i) + 1
            lines.append(" ".join(str(v) for v in [i + 1, nb.size, *nb.tolist()]))
        return "\n".join(lines) + "\n"


# -- the text and binary formats ----------------------------------------------------------------
def _parse_tokens(tokens: np.ndarray, source: str) -> Graph:
    """Parse R-INLA's graph definition from its integer tokens (``inla.read.graph``)."""
    if tokens.size == 0:
        raise ModelError(f"{source}: the graph definition is empty")
    n = int(tokens[0])
    if n < 1:
        raise ModelError(f"{source}: the first number must be the number of nodes (>= 1), got {n}")
    # every node record has at least 2 numbers (node, count): check the claimed node count against
    # what is there before allocating anything of size n (a 30-byte file may claim 10⁹ nodes)
    if 2 * n > tokens.size - 1:
        raise ModelError(
            f"{source}: the header says {n} nodes but the file holds only {tokens.size - 1} number(s) after it, "
            f"room for at most {(tokens.size - 1) // 2} node record(s) (each node needs 'node count neighbours...'); "
            "the node count in the first line is wrong or the file is truncated"
        )
    # a node numbered 0 anywhere in the node records means a 0-based graph; find out by a dry run
    for offset in (0, 1):
        res = _parse_records(tokens, n, offset, source)
        if res is not None:
            return res
    raise AssertionError("unreachable")  # pragma: no cover


def _parse_records(tokens: np.ndarray, n: int, offset: int, source: str) -> Graph | None:
    nbs: list[np.ndarray | None] = [None] * n
    k = 1
    for rec in range(n):
        if k >= tokens.size:
            raise ModelError(
                f"{source}: the header says {n} nodes but the file ends after {rec} node record(s)"
            )
        node = int(tokens[k]) + offset
        if node == 0 and offset == 0:
            return None  # zero-based graph: R-INLA re-reads with offset 1
        if not 1 <= node <= n:
            raise ModelError(
                f"{source}: node record {rec + 1} is for node {int(tokens[k])}, outside 1..{n} "
                f"(the first number of the file is the node count, {n})"
            )
        if k + 1 >= tokens.size:
            raise ModelError(f"{source}: node {node} has no neighbour count")
        m = int(tokens[k + 1])
        if m < 0:
            raise ModelError(f"{source}: node {node} has a negative neighbour count {m}")
        if k + 2 + m > tokens.size:
            raise ModelError(
                f"{source}: node {node} says it has {m} neighbours but the file ends after "
                f"{tokens.size - k - 2}"
            )
        if nbs[node - 1] is not None:
            raise ModelError(f"{source}: node {node} is described twice")
        nbs[node - 1] = tokens[k + 2:k + 2 + m].astype(np.int64) + offset - 1
        k += 2 + m
    if k != tokens.size:
        raise ModelError(
            f"{source}: {tokens.size - k} number(s) left over after the {n} node records; "
            f"the node count in the first line ({n}) may be wrong"
        )
    missing = [i + 1 for i, v in enumerate(nbs) if v is None]
    if missing:  # pragma: no cover - n records for n distinct nodes cannot miss one
        raise ModelError(f"{source}: node(s) {_fmt_nodes(missing)} have no record")
    return Graph.from_neighbours(nbs, n, source=source)


_TOKEN = re.compile(r"[^\s]+")


def _tokens_from_text(text: str, source: str) -> np.ndarray:
    text = re.sub(r"#[^\n]*", " ", text)
    toks = _TOKEN.findall(text)
    try:
        vals = [int(t) for t in toks]
    except ValueError:
        # name the line, never echo the content (the path may point at any file)
        line = next(k for k, ln in enumerate(text.splitlines(), 1)
                    if any(not re.fullmatch(r"[+-]?\d+", t) for t in _TOKEN.findall(ln)))
        raise ModelError(
            f"{source}: line {line} is not part of an R-INLA graph (a graph file holds whole numbers only: "
            "the node count, then 'node count neighbours...' for each node)"
        ) from None
    return np.array(vals, dtype=np.int64)


def _read_binary(raw: bytes) -> np.ndarray | None:
    """Tokens of an R-INLA binary graph file (int32, possibly gzipped), or None if not binary."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except OSError:
            return None
    if len(raw) < 8 or len(raw) % 4:
        return None
    ints = np.frombuffer(raw, dtype="<i4")
    if ints[0] != _BINARY_MAGIC:
        return None
    return ints[1:].astype(np.int64)


def read_graph(path: str | os.PathLike) -> Graph:
    """Read an R-INLA graph file (text or binary).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "g.graph")
        >>> _ = open(p, "w").write("3\\n1 1 2\\n2 2 1 3\\n3 1 2\\n")
        >>> read_graph(p).nnbs.tolist()
        [1, 2, 1]
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"graph file {str(path)!r} does not exist")
    raw = path.read_bytes()
    tokens = _read_binary(raw)
    if tokens is None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"graph file {str(path)!r} is neither R-INLA's text nor its binary graph format") from None
        tokens = _tokens_from_text(text, f"graph file {path.name!r}")
    return _parse_tokens(tokens, f"graph file {path.name!r}")


def write_graph(graph: Graph, path: str | os.PathLike) -> Path:
    """Write ``graph`` in R-INLA's text format (1-based); returns the path."""
    path = Path(path)
    path.write_text(graph.to_text())
    return path


def as_graph(obj: Any, *, name: str = "graph") -> Graph:
    """Resolve any accepted graph description to a :class:`Graph` (see the module docstring).

    Args:
        obj: a Graph, a file path (str or PathLike), a graph definition string, a dense or sparse
            adjacency matrix, or an edge list of 1-based pairs.
        name: how to call the argument in error messages (e.g. ``"graph of f(region, model='besag')"``).

    Example:
        >>> as_graph([(1, 2), (2, 3)]).nnbs.tolist()
        [1, 2, 1]
        >>> as_graph(np.array([[0, 1], [1, 0]])).n_edges
        1
    """
    if isinstance(obj, Graph):
        return obj
    if obj is None:
        raise ModelError(f"{name}: a graph is required (a graph file, an adjacency matrix or an edge list)")
    if isinstance(obj, os.PathLike):
        return read_graph(obj)
    if isinstance(obj, str):
        if os.path.exists(obj):
            return read_graph(obj)
        if "\n" in obj or re.match(r"\s*[+-]?\d+\s+[+-]?\d", obj):  # a definition, not a file name
            return _parse_tokens(_tokens_from_text(obj, name), name)
        raise ModelError(f"{name}: graph file {obj!r} does not exist")
    if sp.issparse(obj):
        return Graph.from_matrix(obj, source=name)
    arr = obj
    if not isinstance(arr, np.ndarray):
        try:
            arr = np.asarray(obj)
        except Exception:  # noqa: BLE001 - report below
            arr = None
    if isinstance(arr, np.ndarray) and arr.dtype != object and arr.ndim == 2:
        if arr.shape[0] == arr.shape[1] and not _looks_like_edge_list(obj, arr):
            return Graph.from_matrix(arr, source=name)
        if arr.shape[1] == 2:
            return Graph.from_edges(arr, source=name)
    if isinstance(arr, np.ndarray) and arr.size == 0 and arr.ndim in (1, 2):
        raise ModelError(f"{name}: the graph description is empty")
    raise ModelError(
        f"{name}: cannot make a graph from a {type(obj).__name__}; give a graph file (R-INLA format), "
        "a square adjacency matrix (numpy or scipy.sparse), an edge list of 1-based (i, j) pairs, or a Graph"
    )


def _looks_like_edge_list(obj, arr: np.ndarray) -> bool:
    """A 2 x 2 input given as a Python list of pairs is an edge list, not a matrix."""
    return arr.shape == (2, 2) and isinstance(obj, (list, tuple)) and all(isinstance(p, tuple) for p in obj)
