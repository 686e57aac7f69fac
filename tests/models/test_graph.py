"""Graph input for the areal models: R-INLA's file format, matrices, edge lists, validation."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import shared_path
from scipy.sparse.csgraph import connected_components

from adelia.errors import ModelError
from adelia.models.graph import Graph, as_graph, read_graph, write_graph

# 6 nodes, 3 components: {1,2,3} (a triangle), {4,5} (an edge), {6} (an island)
SMALL_TEXT = """6
1 2 2 3
2 2 1 3
3 2 1 2
4 1 5
5 1 4
6 0
"""
SMALL_EDGES = [(1, 2), (1, 3), (2, 3), (4, 5)]


def _dense_adjacency(edges, n):
    W = np.zeros((n, n))
    for i, j in edges:
        W[i - 1, j - 1] = W[j - 1, i - 1] = 1
    return W


def test_text_format_gives_the_adjacency_of_the_edges():
    g = as_graph(SMALL_TEXT)
    assert g.n == 6 and g.n_edges == 4
    np.testing.assert_array_equal(g.adjacency.toarray(), _dense_adjacency(SMALL_EDGES, 6))
    np.testing.assert_array_equal(g.nnbs, [2, 2, 2, 1, 1, 0])
    L = g.laplacian.toarray()
    np.testing.assert_array_equal(L, np.diag(_dense_adjacency(SMALL_EDGES, 6).sum(1)) - _dense_adjacency(SMALL_EDGES, 6))


def test_all_inputs_agree(tmp_path):
    ref = as_graph(SMALL_TEXT).adjacency.toarray()
    W = _dense_adjacency(SMALL_EDGES, 6)
    p = tmp_path / "small.graph"
    p.write_text("# a comment line\n6 1 2 2 3   2 2 1 3\n3 2 1 2 # trailing comment\n4 1 5 5 1 4 6 0\n")
    zero_based = "6\n0 2 1 2\n1 2 0 2\n2 2 0 1\n3 1 4\n4 1 3\n5 0\n"
    for obj in [str(p), p, W, sp.csr_matrix(W), 3.0 * W + np.eye(6), zero_based]:
        np.testing.assert_array_equal(as_graph(obj).adjacency.toarray(), ref)
    for edges in [SMALL_EDGES, np.array(SMALL_EDGES)]:
        np.testing.assert_array_equal(Graph.from_edges(edges, n=6).adjacency.toarray(), ref)
        # without n, an edge list ends at its largest node (the island 6 is not in it)
        np.testing.assert_array_equal(as_graph(edges).adjacency.toarray(), ref[:5, :5])
    assert as_graph(as_graph(SMALL_TEXT)).n == 6


def test_binary_format_and_write_roundtrip(tmp_path):
    g = as_graph(SMALL_TEXT)
    # R-INLA's binary graph: int32 magic -1, n, then i nnbs nbrs..., gzip-compressed
    ints = [-1, g.n]
    for i in range(g.n):
        nb = (g.neighbours(i) + 1).tolist()
        ints += [i + 1, len(nb), *nb]
    p = tmp_path / "small.bin"
    p.write_bytes(gzip.compress(np.array(ints, dtype="<i4").tobytes()))
    np.testing.assert_array_equal(read_graph(p).adjacency.toarray(), g.adjacency.toarray())
    q = write_graph(g, tmp_path / "out.graph")
    np.testing.assert_array_equal(read_graph(q).adjacency.toarray(), g.adjacency.toarray())


def test_connected_components_in_rinla_order():
    # components {1,5}, {2}, {3,4}: numbered by their smallest node
    g = Graph.from_edges([(3, 4), (1, 5)], n=5)
    assert g.n_components == 3
    assert [c.tolist() for c in g.component_nodes] == [[0, 4], [1], [2, 3]]
    np.testing.assert_array_equal(g.component_id, [0, 1, 2, 2, 0])
    assert (g.n_singletons, g.n_proper_components) == (1, 2)


def test_scotland_and_germany_graph_files():
    for name, n in [("scotland.graph", 56), ("germany.graph", 544)]:
        g = read_graph(shared_path("datasets", name))
        assert g.n == n
        W = g.adjacency
        assert (W != W.T).nnz == 0 and W.diagonal().sum() == 0
        k, _ = connected_components(W, directed=False)
        assert g.n_components == k == 1
        # the file's own neighbour counts
        lines = [ln.split() for ln in open(shared_path("datasets", name)).read().splitlines()[1:] if ln.strip()]
        counts = {int(ln[0]): int(ln[1]) for ln in lines}
        np.testing.assert_array_equal(g.nnbs, [counts[i + 1] for i in range(n)])


def test_scotland_bugs_graph_has_three_islands():
    g = read_graph(shared_path("datasets", "scotland_bugs.graph"))
    assert g.n == 56 and g.n_components == 4 and g.n_singletons == 3
    islands = [int(c[0]) + 1 for c in g.component_nodes if c.size == 1]
    assert islands == sorted(int(i) + 1 for i in np.flatnonzero(g.nnbs == 0))


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("3\n1 1 2\n2 0\n3 0\n", "1 lists 2 but 2 does not list 1"),  # asymmetric
        ("4\n1 1 2\n2 1 1\n3 0\n", "header says 4 nodes"),  # too few records
        ("2\n1 1 2\n2 1 1\n3 0\n", "left over"),  # more records than the header says
        ("3\n1 1 4\n2 0\n3 0\n", "outside the nodes 1..3"),  # neighbour out of range
        ("3\n1 1 1\n2 0\n3 0\n", "list themselves"),  # self-loop
        ("3\n1 2 2 2\n2 1 1\n3 0\n", "more than once"),  # duplicate neighbour
        ("3\n1 1 2\n1 1 2\n3 0\n", "described twice"),  # duplicate record
        ("3\n1 1 2\n2 x 1\n3 0\n", "whole numbers"),
    ],
)
def test_bad_graph_text_names_the_problem(text, fragment):
    with pytest.raises(ModelError, match=fragment):
        as_graph(text)


def test_asymmetric_matrix_names_the_nodes():
    W = _dense_adjacency(SMALL_EDGES, 6)
    W[5, 3] = 1  # 6 -> 4 only
    with pytest.raises(ModelError, match=r"\(6, 4\) is nonzero but \(4, 6\) is zero"):
        as_graph(W)
    with pytest.raises(ModelError, match="square"):
        as_graph(sp.csr_matrix(np.ones((3, 4))))


def test_other_bad_inputs(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        as_graph(str(tmp_path / "nope.graph"))
    with pytest.raises(ModelError, match="required"):
        as_graph(None, name="graph of f(region, model='besag')")
    with pytest.raises(ModelError, match="self-loop"):
        Graph.from_edges([(1, 1)])
    with pytest.raises(ModelError, match="outside 1..2"):
        Graph.from_edges([(1, 3)], n=2)
    with pytest.raises(ModelError, match="cannot make a graph"):
        as_graph({"a": 1})
