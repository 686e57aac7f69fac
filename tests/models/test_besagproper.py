"""besagproper and besagproper2: Q(θ) against dense constructions from R-INLA's definitions,
the normalising constant against a dense log-determinant, defaults from ``models.R``, bad input,
and recovery of a simulated truth (besagproper2)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from adelia.errors import ModelError
from adelia.models.besagproper import BesagProper, BesagProper2
from adelia.models.build import build_component
from adelia.models.graph import Graph
from adelia.models.registry import model_class

# a 4-cycle with a chord, a path, an island
EDGES = [(1, 2), (2, 3), (3, 4), (4, 1), (1, 3), (5, 6), (6, 7)]
N = 8


def adjacency(edges, n):
    W = np.zeros((n, n))
    for i, j in edges:
        W[i - 1, j - 1] = W[j - 1, i - 1] = 1.0
    return W


def build(cls, args=None, covariate=None):
    base = {"graph": Graph.from_edges(EDGES, n=N)}
    base.update(args or {})
    return cls.from_term("region", np.arange(1.0, N + 1) if covariate is None else covariate, base)


def test_registered():
    assert model_class("besagproper") is BesagProper
    assert model_class("besagproper2") is BesagProper2


def test_defaults_follow_models_R():
    m, _, _ = build(BesagProper)
    h1, h2 = m.hyperparameters
    assert (h1.internal_name, h1.name, h1.initial, repr(h1.prior)) == \
        ("Log precision for region", "Precision for region", 2.0, "loggamma(1, 0.0005)")
    assert (h2.internal_name, h2.name, h2.initial, repr(h2.prior)) == \
        ("Log diagonal for region", "Diagonal for region", 1.0, "loggamma(1, 1)")
    m2, _, _ = build(BesagProper2)
    g1, g2 = m2.hyperparameters
    assert (g1.name, g1.initial, repr(g1.prior)) == ("Precision for region", 2.0, "loggamma(1, 0.0005)")
    assert (g2.internal_name, g2.name, g2.initial, repr(g2.prior)) == \
        ("Logit lambda for region", "Lambda for region", 3.0, "normal(0, 0.45)")
    assert float(g2.to_user(np.log(0.3 / 0.7))) == pytest.approx(0.3)
    assert m.constraints() is None and m.rank_deficiency == 0


@pytest.mark.parametrize("theta", [(0.0, 0.0), (1.3, -2.0), (-0.7, 1.5)])
def test_besagproper_precision_is_the_definition(theta):
    """Q_ii = τ (n_i + d), Q_ij = −τ for neighbours (``besagproper.pdf``)."""
    m, _, _ = build(BesagProper)
    tau, d = np.exp(theta)
    W = adjacency(EDGES, N)
    expected = np.zeros((N, N))
    for i in range(N):
        for j in range(N):
            if i == j:
                expected[i, j] = tau * (W[i].sum() + d)
            elif W[i, j]:
                expected[i, j] = -tau
    np.testing.assert_allclose(np.asarray(m.precision_dense(theta)), expected, rtol=1e-14, atol=0)
    sign, logdet = np.linalg.slogdet(expected)
    assert sign > 0
    assert float(m.log_normaliser(np.array(theta))) == pytest.approx(0.5 * logdet - 0.5 * N * np.log(2 * np.pi), rel=1e-12)


@pytest.mark.parametrize("theta", [(0.0, 0.0), (0.8, 3.0), (-1.0, -2.5), (0.2, 12.0)])
def test_besagproper2_precision_is_the_definition(theta):
    """Q = τ ((1 − λ) I + λ R), R the (unscaled) besag structure (``besagproper2.pdf``)."""
    m, _, _ = build(BesagProper2)
    tau, lam = np.exp(theta[0]), 1.0 / (1.0 + np.exp(-theta[1]))
    one_minus_lam = 1.0 / (1.0 + np.exp(theta[1]))  # no cancellation when λ -> 1
    W = adjacency(EDGES, N)
    R = np.diag(W.sum(1)) - W
    expected = tau * (one_minus_lam * np.eye(N) + lam * R)
    np.testing.assert_allclose(np.asarray(m.precision_dense(theta)), expected, rtol=1e-12, atol=0)
    sign, logdet = np.linalg.slogdet(expected)
    assert sign > 0
    assert float(m.log_normaliser(np.array(theta))) == pytest.approx(0.5 * logdet - 0.5 * N * np.log(2 * np.pi), rel=1e-10)


def test_constr_and_values():
    comp = build_component(_term("besagproper", constr=True, graph=Graph.from_edges(EDGES, n=N)), np.array([3.0, np.nan, 8.0]))
    cons = comp.model.constraints()
    np.testing.assert_array_equal(cons.C, np.ones((1, N)))
    assert comp.model.diagonal == 1e-4 and comp.model.rinla_rankdef == 1.0
    assert comp.index.tolist() == [2, -1, 7]


def _term(model, **args):
    from adelia.formula.spec import FTerm

    return FTerm("region", model, args=args)


@pytest.mark.parametrize("cls", [BesagProper, BesagProper2])
def test_bad_input(cls):
    with pytest.raises(ModelError, match="graph"):
        cls.from_term("region", np.arange(1.0, 4.0), {})
    with pytest.raises(ModelError, match=r"1\.\.8"):
        build(cls, covariate=np.array([1.0, 9.0]))
    with pytest.raises(ModelError, match="n = 5"):
        build(cls, {"n": 5})
    with pytest.raises(ModelError, match="scale_model"):
        build(cls, {"scale_model": True})


def _grid_edges(k):
    node = lambda r, c: r + k * c + 1  # noqa: E731
    edges = [(node(r, c), node(r + 1, c)) for r in range(k - 1) for c in range(k)]
    edges += [(node(r, c), node(r, c + 1)) for r in range(k) for c in range(k - 1)]
    return edges


def test_besagproper2_recovers_a_simulated_truth():
    """Four replicates of a besagproper2 field (τ = 2, λ = 0.8) on a 10 x 10 grid graph, observed
    with Gaussian noise of known precision: the truth lies inside the 95 % intervals."""
    k, nrep, tau, lam = 10, 4, 2.0, 0.8
    g = Graph.from_edges(_grid_edges(k), n=k * k)
    n = k * k
    W = g.adjacency.toarray()
    Q = tau * ((1 - lam) * np.eye(n) + lam * (np.diag(W.sum(1)) - W))
    rng = np.random.default_rng(2)
    L = np.linalg.cholesky(Q)
    x = np.concatenate([np.linalg.solve(L.T, rng.standard_normal(n)) for _ in range(nrep)])
    y = 1.0 + x + rng.standard_normal(n * nrep) / np.sqrt(50.0)
    df = pd.DataFrame({"y": y, "region": np.tile(np.arange(1, n + 1), nrep), "rep": np.repeat(np.arange(1, nrep + 1), n)})
    import adelia

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla('y ~ 1 + f(region, model="besagproper2", graph=g, replicate=rep)', data=df, family="gaussian",
                          control_family={"hyper": {"prec": {"initial": np.log(50.0), "fixed": True}}},
                          context={"g": g})
    hp = res.summary_hyperpar
    for name, truth in (("Precision for region", tau), ("Lambda for region", lam)):
        lo, hi = hp.loc[name, "0.025quant"], hp.loc[name, "0.975quant"]
        assert lo < truth < hi, (name, lo, truth, hi)
