"""An iid model with 10⁵ groups fits on the sparse backend without any dense n×n matrix."""

import numpy as np
import pandas as pd

import adelia
from adelia.engine.sparse import SparseSolver


def test_iid_with_1e5_groups_uses_sparse_kernels():
    rng = np.random.default_rng(1)
    ng = 100_000
    g = np.repeat(np.arange(1, ng + 1), 2)
    u = 0.5 * rng.normal(size=ng)
    y = rng.poisson(np.exp(0.2 + u[g - 1]))
    df = pd.DataFrame({"y": y, "g": g})
    model = adelia.compile("y ~ 1 + f(g, model='iid')", df, family="poisson")
    assert isinstance(model.graph.solver, SparseSolver)
    assert model.graph.n_latent == ng + 1
    # the AD gradient runs on the sparse kernels and agrees with central differences
    theta = np.array([1.0])
    ad = model.grad_log_posterior(theta)
    h = 1e-4
    fd = (model.log_posterior(theta + h) - model.log_posterior(theta - h)) / (2 * h)
    np.testing.assert_allclose(ad, fd, rtol=1e-5)
