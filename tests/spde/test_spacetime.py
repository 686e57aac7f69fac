"""DEMF(1,2,1) space-time model: precision vs a dense Kronecker construction, closed-form
log-determinant, marginal variance under INLAspacetime's parameter mapping, priors, layout."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import quad
from spde_helpers import grid_mesh

from adelia.errors import ModelError
from adelia.spde import demf_gammas, fem, mesh_1d, mesh_2d, spacetime_demf


@pytest.fixture(scope="module")
def small():
    mesh = mesh_2d(np.random.default_rng(0).random((15, 2)), max_edge=(0.3, 0.6))
    return mesh, spacetime_demf(mesh, np.array([0.0, 1.0, 2.5, 3.0, 4.0]), (0.5, 0.5), (2.0, 0.5), (1.0, 0.05))


def _dense_Q(mesh, knots, theta):
    f = fem(mesh, order=3)
    c0, g1, g2, g3 = (f[k].toarray() for k in ("c0", "g1", "g2", "g3"))
    tf = fem(mesh_1d(knots))
    nt = len(knots)
    J0 = tf["c0"].toarray()
    J1 = np.zeros((nt, nt))
    J1[0, 0] = J1[-1, -1] = 0.5
    J2 = tf["g1"].toarray()
    gs, gt, ge = np.exp([float(v) for v in demf_gammas(theta)])
    q1 = gs**2 * c0 + g1
    q2 = gs**4 * c0 + 2 * gs**2 * g1 + g2
    q3 = gs**6 * c0 + 3 * gs**4 * g1 + 3 * gs**2 * g2 + g3
    return ge**2 * (np.kron(J0, q3) + gt * np.kron(J1, q2) + gt**2 * np.kron(J2, q1))


def test_precision_equals_kronecker_construction(small):
    mesh, st = small
    m = st.latent_model("st")
    theta = jnp.log(jnp.array([0.4, 3.0, 1.5]))
    Q = np.asarray(m.precision_dense(theta))
    expected = _dense_Q(mesh, st.tmesh.loc, theta)
    np.testing.assert_allclose(Q, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    assert (m.n_blocks, m.block_size, m.n) == (5, mesh.n, 5 * mesh.n)
    # time-major layout: no entries between non-adjacent time blocks
    p = m.pattern()
    assert np.all(np.abs(p.rows // mesh.n - p.cols // mesh.n) <= 1)
    vals = jax.jit(m.precision_values)(theta)
    ref = np.asarray(m.precision_values(theta))
    np.testing.assert_allclose(np.asarray(vals), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


def test_parameter_mapping_is_inlaspacetimes():
    theta = np.log([0.7, 4.0, 1.3])
    lgs, lgt, lge = (float(v) for v in demf_gammas(jnp.asarray(theta)))
    # γs = √(8νs)/ρs, γt = ρt γs^αs / √(8νt), γe² = Ct C_R / (σ² γt γs^{2α−d}) with νs=1, νt=½, α=2, d=2
    assert math.exp(lgs) == pytest.approx(math.sqrt(8) / 0.7)
    assert math.exp(lgt) == pytest.approx(4.0 * math.exp(lgs) ** 2 / 2.0)
    ct = math.gamma(0.5) / math.gamma(1.0) / math.sqrt(4 * math.pi)
    cr = math.gamma(1.0) / math.gamma(2.0) / (4 * math.pi)
    assert math.exp(2 * lge) == pytest.approx(ct * cr / (1.3**2 * math.exp(lgt) * math.exp(lgs) ** 2))


def test_log_normaliser_closed_form(small):
    mesh, st = small
    m = st.latent_model("st")
    theta = jnp.log(jnp.array([0.4, 3.0, 1.5]))
    Q = _dense_Q(mesh, st.tmesh.loc, theta)
    expected = 0.5 * np.linalg.slogdet(Q)[1] - 0.5 * m.n * math.log(2 * math.pi)
    assert float(m.log_normaliser(theta)) == pytest.approx(expected, rel=1e-11)
    g = jax.grad(m.log_normaliser)(theta)
    eps = 1e-5
    for k in range(3):
        tp = np.array(theta)
        tm = tp.copy()
        tp[k] += eps
        tm[k] -= eps
        fd = 0.5 * (np.linalg.slogdet(_dense_Q(mesh, st.tmesh.loc, tp))[1] - np.linalg.slogdet(_dense_Q(mesh, st.tmesh.loc, tm))[1]) / (2 * eps)
        assert float(g[k]) == pytest.approx(fd, rel=1e-6, abs=1e-6)


def _spectral_variance(mesh, knots, theta, node, t_index):
    """Var(x(node, t)) exactly through the spatial eigenbasis: Q ≅ ⊕_i γe² k_i T_i (see
    DEMF121Model.log_normaliser); the test below first checks it against a dense inverse."""
    f = fem(mesh, order=1)
    c0 = f["c0"].diagonal()
    s = 1 / np.sqrt(c0)
    lam, U = scipy.linalg.eigh(s[:, None] * f["g1"].toarray() * s[None, :])
    tf = fem(mesh_1d(knots))
    nt = len(knots)
    J0 = tf["c0"].diagonal()
    J1 = np.zeros(nt)
    J1[0] = J1[-1] = 0.5
    J2 = tf["g1"].toarray()
    gs, gt, ge = np.exp([float(v) for v in demf_gammas(jnp.asarray(theta))])
    k = gs**2 + lam
    w = (s[node] * U[node]) ** 2
    # T_i = k_i² J0 + γt k_i J1 + γt² J2 is tridiagonal: (T⁻¹)_tt = 1/(f_t + b_t − a_t) from the
    # forward and backward LDLᵀ pivots, vectorised over the eigenmodes i
    a = k[None, :] ** 2 * J0[:, None] + gt * k[None, :] * J1[:, None] + gt**2 * np.diag(J2)[:, None]
    off = gt**2 * np.diag(J2, 1)
    fwd = a.copy()
    for t in range(1, nt):
        fwd[t] = a[t] - off[t - 1] ** 2 / fwd[t - 1]
    bwd = a.copy()
    for t in range(nt - 2, -1, -1):
        bwd[t] = a[t] - off[t] ** 2 / bwd[t + 1]
    tinv = 1.0 / (fwd[t_index] + bwd[t_index] - a[t_index])
    return float(np.sum(w * tinv / (ge**2 * k)))


def test_marginal_variance_near_sigma2_at_the_centre():
    """σ² = 1.69 at the centre of a domain 4 spatial ranges wide, mid-way through 20 temporal ranges.
    Tolerance 3%: FEM with h = range_s/10 in space and h = range_t/16 in time."""
    small_mesh = grid_mesh(1.0, 0.25)
    knots = np.arange(6.0)
    theta = np.log([0.8, 2.0, 1.3])
    Q = _dense_Q(small_mesh, knots, jnp.asarray(theta))
    cov = np.linalg.inv(Q)
    node = 12
    assert _spectral_variance(small_mesh, knots, theta, node, 2) == pytest.approx(cov[2 * small_mesh.n + node, 2 * small_mesh.n + node], rel=1e-10)

    mesh = grid_mesh(2.0, 0.1)
    knots = np.arange(0.0, 60.0 + 1e-9, 0.25)
    theta = np.log([1.0, 4.0, 1.3])
    centre = int(np.argmin((mesh.loc**2).sum(1)))
    var = _spectral_variance(mesh, knots, theta, centre, len(knots) // 2)
    assert var / 1.3**2 == pytest.approx(1.0, abs=0.03)


def test_priors_initial_values_and_fixing(small):
    mesh, st = small
    m = st.latent_model("st")
    h = m.hyperparameters
    assert [x.internal_name for x in h] == ["Theta1 for st", "Theta2 for st", "Theta3 for st"]
    np.testing.assert_allclose(m.initial_theta(), [1.0, 1.0, 0.0])
    # temporal range prior: d = 1 PC prior with P(range_t < 2) = 0.5
    dens = lambda t: math.exp(float(h[1].prior.log_density(t)))
    assert quad(dens, -40, math.log(2.0), limit=200)[0] == pytest.approx(0.5, abs=1e-8)
    assert h[0].prior.d == 2.0 and h[2].prior.lam == pytest.approx(-math.log(0.05))
    fixed = spacetime_demf(mesh, 4, (0.5, 0.5), (2.0, None), (1.0, 0.05)).latent_model("st")
    assert fixed.hyperparameters[1].fixed and fixed.hyperparameters[1].initial == pytest.approx(math.log(2.0))
    assert fixed.hyperparameters[2].internal_name == "Theta2 for st"
    with pytest.raises(ModelError, match="prior_sigma"):
        spacetime_demf(mesh, 4, (0.5, 0.5), (2.0, 0.5), (1.0, 1.5))


def test_constraint_and_from_term(small):
    mesh, st0 = small
    st = spacetime_demf(mesh, 3, (0.5, 0.5), (2.0, 0.5), (1.0, 0.05), constr=True)
    model, index, ids = st.from_term("st", np.array([1.0, mesh.n + 2.0, np.nan]), {})
    C = model.constraints()
    assert C.k == 1 and C.C.shape == (1, 3 * mesh.n)
    assert C.C.sum() == pytest.approx(1.0)
    va = fem(mesh)["va"]
    np.testing.assert_allclose(C.C[0, :mesh.n] / C.C[0, mesh.n:2 * mesh.n], 0.5)  # end time weight h/2
    np.testing.assert_allclose(C.C[0, :mesh.n] / va, C.C[0, 0] / va[0])
    np.testing.assert_array_equal(index, [0, mesh.n + 1, -1])
    assert len(ids) == 3 * mesh.n
