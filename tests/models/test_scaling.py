"""scale.model: geometric mean 1 of the generalised-inverse marginal variances per connected
component (R's inla.scale.model), and R-INLA's model-specific variants (rw, cyclic rw, seasonal)."""

from __future__ import annotations

import numpy as np
import pytest

from adelia.formula.spec import FTerm
from adelia.models.build import build_component
from adelia.models.rw import RW1Model, RW2Model, crw_scale_factor, rw_structure
from adelia.models.scaling import (
    connected_components,
    constrained_marginal_variances,
    generalised_marginal_variances,
    geometric_mean,
    scale_model,
)
from adelia.models.seasonal import SEASONAL_EPS, seasonal_structure


def laplacian(n, edges):
    W = np.zeros((n, n))
    for i, j in edges:
        W[i, j] = W[j, i] = 1.0
    return np.diag(W.sum(1)) - W


def three_component_graph():
    # components {0,1,2,3} (path + chord), {4,5,6} (triangle), {7} (singleton)
    return laplacian(8, [(0, 1), (1, 2), (2, 3), (0, 2), (4, 5), (5, 6), (4, 6)])


def test_connected_components_in_order_of_first_node():
    ncomp, labels = connected_components(three_component_graph())
    assert ncomp == 3 and labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 2]


def test_exact_variances_are_pseudo_inverse_under_sum_to_zero():
    Q = laplacian(5, [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3)])
    v = constrained_marginal_variances(Q, np.ones((1, 5)))
    np.testing.assert_allclose(v, np.diag(np.linalg.pinv(Q)), rtol=1e-12)
    np.testing.assert_allclose(constrained_marginal_variances(Q), v, rtol=1e-10)
    # R-INLA's way, (Q + eps I)^-1 corrected by kriging, agrees to O(eps)
    np.testing.assert_allclose(constrained_marginal_variances(Q, np.ones((1, 5)), eps=1e-9), v, rtol=1e-7)


def test_scale_model_geometric_mean_one_per_component():
    Q = three_component_graph()
    A = np.vstack([np.r_[np.ones(4), np.zeros(4)], np.r_[np.zeros(4), np.ones(3), 0.0]])
    Qs, factors = scale_model(Q, A, eps=0.0)
    v = generalised_marginal_variances(Qs.toarray(), A)
    for idx in ([0, 1, 2, 3], [4, 5, 6]):
        assert geometric_mean(v[idx]) == pytest.approx(1.0, abs=1e-12)
        assert np.ptp(factors[idx]) == 0.0
    assert Qs[7, 7] == 1.0 and np.isnan(factors[7])  # singleton set to 1, as R
    # R's default eps (sqrt(machine eps) * max diag) changes the factor only at O(1e-7)
    _, f_eps = scale_model(Q, A)
    np.testing.assert_allclose(f_eps[:7], factors[:7], rtol=1e-6)


def test_scale_model_without_constraints_uses_null_space():
    Q = laplacian(6, [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)])
    Qs, f = scale_model(Q, None, eps=0.0)
    assert geometric_mean(np.diag(np.linalg.pinv(Qs.toarray()))) == pytest.approx(1.0, abs=1e-12)


def test_rw_scale_is_rinla_voronoi_weighted_geometric_mean():
    s = np.array([0.0, 0.4, 1.0, 1.1, 2.5, 3.0, 4.2])
    for order, cls in ((1, RW1Model), (2, RW2Model)):
        m, _, _ = cls.from_term("t", s, {"scale_model": True})
        R = m.R.toarray()
        ell = np.r_[(s[1] - s[0]) / 2, (s[2:] - s[:-2]) / 2, (s[-1] - s[-2]) / 2]
        A = ell[None] if order == 1 else np.vstack([ell, np.cumsum(ell)])
        v = constrained_marginal_variances(R, A)  # exact; R-INLA adds sqrt(eps) I
        assert geometric_mean(v, weights=ell) == pytest.approx(1.0, abs=1e-6)
        assert m.scale_factor == pytest.approx(crw_scale_factor(s, order))
        np.testing.assert_allclose(R, m.scale_factor * rw_structure(s, order).toarray())


def test_rw1_regular_scale_matches_unweighted_interior_formula():
    # unit spacing: weights 1/2 at the ends, 1 inside; the scaled model has weighted mean 1
    comp = build_component(FTerm("t", "rw1", args={"scale_model": True}), np.arange(1.0, 21.0))
    R = comp.model.R.toarray()
    ell = np.r_[0.5, np.ones(18), 0.5]
    v = constrained_marginal_variances(R, ell[None])
    assert geometric_mean(v, ell) == pytest.approx(1.0, abs=1e-6)


def test_cyclic_rw_scale_plain_geometric_mean():
    comp = build_component(FTerm("t", "rw2", args={"cyclic": True, "scale_model": True}), np.arange(1.0, 13.0))
    R = comp.model.R.toarray()
    assert geometric_mean(np.diag(np.linalg.pinv(R))) == pytest.approx(1.0, abs=1e-6)


def test_seasonal_scale_on_whole_periods():
    n, s = 14, 4
    comp = build_component(FTerm("t", "seasonal", args={"season_length": s, "scale_model": True}), np.arange(1.0, n + 1))
    m = comp.model
    nn = (n // s) * s
    R = m.scale_factor * seasonal_structure(nn, s).toarray()
    t = np.arange(nn) % s
    A = np.vstack([(t == j).astype(float) - (t == s - 1) for j in range(s - 1)])
    # R-INLA's definition (eps = DBL_EPSILON^(3/4) on the diagonal, kriging on A x = 0) ...
    eps = m.scale_factor * SEASONAL_EPS
    assert geometric_mean(constrained_marginal_variances(R, A, eps)) == pytest.approx(1.0, abs=1e-10)
    # ... is the generalised-inverse one up to the eps effect (the seasonal R has tiny eigenvalues)
    assert geometric_mean(np.diag(np.linalg.pinv(R))) == pytest.approx(1.0, abs=1e-4)
    np.testing.assert_allclose(m.R.toarray(), m.scale_factor * seasonal_structure(n, s).toarray())
