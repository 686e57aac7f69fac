"""The precision-block graph compiler against dense assembly (issue 3 acceptance).

The compiled joint precision Q(θ) and the Laplace precision Q_c = Q + AᵀDA are compared with
matrices assembled densely from each component's own precision, the fixed-effect prior
precisions and the observation matrix built from the data by hand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg as la
import scipy.sparse as sp

import adelia


def _graph_adjacency(n: int) -> sp.csr_matrix:
    rows = list(range(n - 1)) + [0, 3]
    cols = list(range(1, n)) + [4, 7]
    A = sp.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return (A + A.T).tocsr()


def test_joint_precision_of_three_components_and_two_covariates(rng):
    n = 60
    df = pd.DataFrame(
        {
            "y": rng.poisson(2.0, n).astype(float),
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n),
            "g": rng.integers(1, 8, n),
            "t": rng.integers(1, 16, n),
            "r": rng.integers(1, 11, n),
        }
    )
    G = _graph_adjacency(10)
    model = adelia.compile(
        "y ~ 1 + x1 + x2 + f(g, model='iid') + f(t, model='rw2') + f(r, model='besag', graph=G)",
        df, family="poisson", context={"G": G}, control_inla={"solver": "sparse"},
    )
    graph = model.graph
    theta = np.array([0.3, 1.1, -0.4])
    full = np.asarray(model.layout.expand(theta))
    Q = graph.prior_pattern.to_scipy(np.asarray(graph.prior_values(full))).toarray()
    blocks = [np.asarray(c.model.precision_dense(full[ix])) for c, ix in zip(graph.components, graph.component_theta)]
    # independent check of the rw2 and besag blocks from their definitions
    D2 = np.diff(np.eye(graph.components[1].model.n), 2, axis=0)
    np.testing.assert_allclose(blocks[1], np.exp(1.1) * D2.T @ D2 + 1e-4 * np.eye(D2.shape[1]), atol=1e-10)
    L = sp.diags(np.asarray(G.sum(axis=1)).ravel()) - G
    np.testing.assert_allclose(blocks[2], np.exp(-0.4) * L.toarray() + 1e-4 * np.eye(10), atol=1e-10)
    fixed_prec = np.diag([0.0, 0.001, 0.001])
    np.testing.assert_allclose(Q, la.block_diag(*blocks, fixed_prec), atol=1e-12)

    # A from the data by hand: one-hot columns per component, covariate columns
    ng, nt = 7, graph.components[1].model.n
    A = np.zeros((n, graph.n_latent))
    A[np.arange(n), df["g"] - 1] = 1
    A[np.arange(n), ng + df["t"] - 1] = 1
    A[np.arange(n), ng + nt + df["r"] - 1] = 1
    A[:, -3:] = np.c_[np.ones(n), df["x1"], df["x2"]]
    np.testing.assert_allclose(graph.a_matrix().toarray(), A, atol=0)
    D = rng.uniform(0.5, 2.0, n)
    qc = graph.posterior_values(graph.prior_values(full), graph.a_values(full), D)
    Qc = graph.posterior_pattern.to_scipy(np.asarray(qc)).toarray()
    np.testing.assert_allclose(Qc, Q + A.T @ np.diag(D) @ A, atol=1e-10)
    # diag(A Σ Aᵀ) from the selected inverse
    Sigma = np.linalg.inv(Qc)
    sel = Sigma[graph.posterior_pattern.rows, graph.posterior_pattern.cols]
    # Σ has entries ~1e4 along the near-null directions (flat intercept, rw2 trend) that cancel in
    # A Σ Aᵀ: both sides use the same Σ, so agreement is limited only by that cancellation
    np.testing.assert_allclose(graph.predictor_variance(graph.a_values(full), sel), np.diag(A @ Sigma @ A.T), rtol=1e-6)


def test_ar1_group_besag_is_a_kronecker_product_in_bta_blocks(rng):
    ng, nb = 6, 10
    G = _graph_adjacency(nb)
    n = 80
    df = pd.DataFrame({"y": rng.normal(size=n), "r": rng.integers(1, nb + 1, n), "tt": rng.integers(1, ng + 1, n)})
    model = adelia.compile(
        "y ~ 1 + f(r, model='besag', graph=G, group=tt, control.group=list(model='ar1'))",
        df, context={"G": G}, control_inla={"solver": "bta"},
    )
    comp = model.graph.components[0].model
    th = np.array([0.7, 0.9])  # log τ_besag, group ρ internal
    Q = np.asarray(comp.precision_dense(th))
    rho = 2 / (1 + np.exp(-0.9)) - 1
    Qar1 = (np.diag(np.r_[1, np.full(ng - 2, 1 + rho**2), 1]) - rho * (np.eye(ng, k=1) + np.eye(ng, k=-1))) / (1 - rho**2)
    L = (sp.diags(np.asarray(G.sum(axis=1)).ravel()) - G).toarray()
    expected = np.kron(Qar1, np.exp(0.7) * L) + 1e-4 * np.eye(ng * nb)
    np.testing.assert_allclose(Q, expected, atol=1e-10)
    bs = model.graph.block_structure
    assert (bs.n_blocks, bs.block_size, bs.arrow_size) == (ng, nb, 1)
    # the BTA solver agrees with the dense oracle on Q_c
    full = np.asarray(model.layout.expand(model.theta0))
    qc = model.graph.posterior_values(model.graph.prior_values(full), model.graph.a_values(full), np.full(n, 2.0))
    dense = model.graph.posterior_pattern.to_scipy(np.asarray(qc)).toarray()
    np.testing.assert_allclose(float(model.graph.solver.logdet(qc)), np.linalg.slogdet(dense)[1], rtol=1e-10)
