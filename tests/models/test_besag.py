"""besag: Q = τ R on a graph, against dense constructions from the definition."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import shared_path

from adelia.errors import ModelError
from adelia.models.besag import Besag
from adelia.models.graph import Graph, read_graph
from adelia.models.registry import model_class

# components {1,2,3,4} (a 4-cycle with a chord), {5,6,7} (a path), {8} (an island), {9,10}
EDGES = [(1, 2), (2, 3), (3, 4), (4, 1), (1, 3), (5, 6), (6, 7), (9, 10)]
N = 10
COMPONENTS = [[0, 1, 2, 3], [4, 5, 6], [7], [8, 9]]


def laplacian(edges, n):
    W = np.zeros((n, n))
    for i, j in edges:
        W[i - 1, j - 1] = W[j - 1, i - 1] = 1.0
    return np.diag(W.sum(1)) - W


def scaled_structure(edges, n, components):
    """R-INLA's scaled besag structure from its definition: each component of size >= 2 times
    the geometric mean of the diagonal of its Moore-Penrose inverse; islands get 1."""
    L = laplacian(edges, n)
    R = np.zeros((n, n))
    for nodes in components:
        ix = np.ix_(nodes, nodes)
        if len(nodes) == 1:
            R[ix] = 1.0
            continue
        s = np.exp(np.mean(np.log(np.diag(np.linalg.pinv(L[ix])))))
        R[ix] = s * L[ix]
    return R


def nonzero_eigenvalues(M, tol=1e-9):
    w = np.linalg.eigvalsh(M)
    return w[w > tol * max(1.0, w.max())]


def build(args, covariate=None):
    base = {"graph": Graph.from_edges(EDGES, n=N)}
    base.update(args)
    cov = np.arange(1.0, N + 1) if covariate is None else covariate
    return Besag.from_term("region", cov, base)


def test_registered():
    assert model_class("besag") is Besag


@pytest.mark.parametrize("scale_model", [False, True])
def test_precision_equals_dense_definition(scale_model):
    m, idx, ids = build({"scale_model": scale_model})
    R = scaled_structure(EDGES, N, COMPONENTS) if scale_model else laplacian(EDGES, N)
    for theta in [-1.3, 0.0, 2.2]:
        Q = np.asarray(m.precision_dense(jnp.array([theta])))
        np.testing.assert_allclose(Q, np.exp(theta) * R, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(idx, np.arange(N))
    np.testing.assert_array_equal(ids, np.arange(1, N + 1))


@pytest.mark.parametrize("scale_model", [False, True])
def test_rank_deficiency_is_the_null_space_dimension(scale_model):
    m, _, _ = build({"scale_model": scale_model})
    Q = np.asarray(m.precision_dense(jnp.array([0.7])))
    n_zero = N - nonzero_eigenvalues(Q).size
    assert m.rank_deficiency == n_zero
    # R-INLA: cc.n2 (+ cc.n1 when not scaled): 3 components of size >= 2, 1 island
    assert m.rank_deficiency == (3 if scale_model else 4)


def test_scaled_marginal_variances_have_geometric_mean_one_per_component():
    m, _, _ = build({"scale_model": True})
    R = np.asarray(m.precision_dense(jnp.array([0.0])))
    for nodes in COMPONENTS:
        var = np.diag(np.linalg.pinv(R[np.ix_(nodes, nodes)]))
        assert abs(np.exp(np.mean(np.log(var))) - 1.0) < 1e-8
    g = read_graph(shared_path("datasets", "scotland_bugs.graph"))
    m, _, _ = Besag.from_term("r", np.array([1.0]), {"graph": g, "scale_model": True})
    R = np.asarray(m.precision_dense(jnp.array([0.0])))
    for nodes in g.component_nodes:
        var = np.diag(np.linalg.pinv(R[np.ix_(nodes, nodes)]))
        assert abs(np.exp(np.mean(np.log(var))) - 1.0) < 1e-8


@pytest.mark.parametrize("scale_model", [False, True])
def test_log_normaliser_matches_dense_eigenvalues(scale_model):
    m, _, _ = build({"scale_model": scale_model})
    for theta in [-0.5, 1.7]:
        Q = np.asarray(m.precision_dense(jnp.array([theta])))
        lam = nonzero_eigenvalues(Q)
        expected = 0.5 * np.sum(np.log(lam)) - 0.5 * lam.size * np.log(2 * np.pi)
        assert float(m.log_normaliser(jnp.array([theta]))) == pytest.approx(expected, abs=1e-10)
    R = np.asarray(m.precision_dense(jnp.array([0.0])))
    assert m.structure_log_det_constant == pytest.approx(0.5 * np.sum(np.log(nonzero_eigenvalues(R))), abs=1e-10)
    # d/dθ of the normaliser: (n - r)/2
    g = jax.grad(lambda t: m.log_normaliser(t)[()])(jnp.array([0.3]))
    assert float(g[0]) == pytest.approx(0.5 * (N - m.rank_deficiency))


def test_log_normaliser_on_germany_graph():
    g = read_graph(shared_path("datasets", "germany.graph"))
    m, _, _ = Besag.from_term("region", np.array([1.0]), {"graph": g, "scale_model": True})
    R = np.asarray(m.precision_dense(jnp.array([0.0])))
    assert m.structure_log_det_constant == pytest.approx(0.5 * np.sum(np.log(nonzero_eigenvalues(R))), rel=1e-10)
    var = np.diag(np.linalg.pinv(R))
    assert abs(np.exp(np.mean(np.log(var))) - 1.0) < 1e-8


def test_constraints_follow_rinla():
    # adjust_for_con_comp (default): one sum-to-zero row per component of size >= 2
    m, _, _ = build({})
    C = m.constraints().C
    expected = np.zeros((3, N))
    for r, nodes in enumerate([c for c in COMPONENTS if len(c) >= 2]):
        expected[r, nodes] = 1.0
    np.testing.assert_array_equal(C, expected)
    np.testing.assert_array_equal(m.constraints().e, np.zeros(3))
    # those rows span the null space of the scaled model: Q Cᵀ = 0
    ms, _, _ = build({"scale_model": True})
    Q = np.asarray(ms.precision_dense(jnp.array([0.0])))
    np.testing.assert_allclose(Q @ ms.constraints().C.T, 0.0, atol=1e-12)
    # without the adjustment: one row of ones
    m2, _, _ = build({"adjust_for_con_comp": False})
    np.testing.assert_array_equal(m2.constraints().C, np.ones((1, N)))
    # constr=False: none; extraconstr rows come last
    m3, _, _ = build({"constr": False})
    assert m3.constraints() is None
    A = np.zeros((1, N))
    A[0, 7] = 1.0
    m4, _, _ = build({"extraconstr": {"A": A, "e": [0.5]}})
    np.testing.assert_array_equal(m4.constraints().C, np.vstack([expected, A]))
    np.testing.assert_array_equal(m4.constraints().e, [0, 0, 0, 0.5])
    assert m4.rinla_rankdef == 5.0  # 4 (unscaled) + 1 extra row


def test_connected_graph_has_one_sum_to_zero():
    g = read_graph(shared_path("datasets", "scotland.graph"))
    m, idx, _ = Besag.from_term("Region", np.array([56.0, 1.0]), {"graph": g})
    np.testing.assert_array_equal(m.constraints().C, np.ones((1, 56)))
    assert m.rank_deficiency == 1
    np.testing.assert_array_equal(idx, [55, 0])


def test_scaling_without_component_adjustment_is_refused():
    with pytest.raises(ModelError, match="adjust_for_con_comp"):
        build({"scale_model": True, "adjust_for_con_comp": False})
    # one component of size >= 2 plus islands is fine
    g = Graph.from_edges([(1, 2), (2, 3)], n=4)
    m, _, _ = Besag.from_term("r", np.array([1.0]), {"graph": g, "scale_model": True, "adjust_for_con_comp": False})
    np.testing.assert_array_equal(m.constraints().C, np.ones((1, 4)))


def test_index_and_errors_name_the_term():
    _, idx, _ = build({}, np.array([3.0, np.nan, 10.0]))
    np.testing.assert_array_equal(idx, [2, -1, 9])
    with pytest.raises(ModelError, match=r"f\(region, model='besag'\).*1\.\.10.*found 0, 2\.5, 11"):
        build({}, np.array([1.0, 0.0, 11.0, 2.5]))
    with pytest.raises(ModelError, match="does not match the graph's 10 nodes"):
        build({"n": 9})
    with pytest.raises(ModelError, match="graph"):
        Besag.from_term("region", np.array([1.0]), {})
    # values: the covariate is matched against them
    vals = np.arange(101.0, 111.0)
    _, idx, ids = build({"values": vals}, np.array([105.0, 101.0]))
    np.testing.assert_array_equal(idx, [4, 0])
    np.testing.assert_array_equal(ids, vals)


def test_jit_and_hyperparameters():
    m, _, _ = build({"hyper": {"prec": {"prior": "pc.prec", "param": [1, 0.01], "initial": 2}}})
    (h,) = m.hyperparameters
    assert (h.name, h.internal_name, h.key) == ("Precision for region", "Log precision for region", "prec")
    assert repr(h.prior) == "pc.prec(1, 0.01)" and h.initial == 2.0
    f = jax.jit(m.precision_values)
    np.testing.assert_allclose(f(jnp.array([0.4])), m.precision_values(jnp.array([0.4])), rtol=1e-14)
    (d,) = build({})[0].hyperparameters
    assert repr(d.prior) == "loggamma(1, 5e-05)" and d.initial == 4.0
