"""Matérn SPDE models: precision vs closed forms and R-INLA's spde2 construction, PC priors,
marginal variance/correlation, log-normaliser, f() binding."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import scipy.sparse.linalg as spl
from conftest import shared_path
from scipy.integrate import quad
from scipy.special import kv
from spde_helpers import CASE, grid_mesh, reference_mesh

from adelia.errors import DataError, ModelError
from adelia.models.registry import make_prior
from adelia.spde import PCRange, PCSigma, fem, mesh_2d, spde2_matern, spde2_pcmatern


@pytest.fixture(scope="module")
def mesh():
    return mesh_2d(np.random.default_rng(7).random((25, 2)), max_edge=(0.2, 0.5))


def _tau_kappa(r, s):
    kappa = math.sqrt(8.0) / r
    tau = 1.0 / (s * kappa * math.sqrt(4 * math.pi))
    return tau, kappa


def test_pcmatern_precision_is_tau2_kappa_polynomial(mesh):
    spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1.0, 0.01))
    model = spde.latent_model("s")
    r, s = 0.37, 1.9
    Q = model.precision(jnp.log(jnp.array([r, s])))
    f = fem(mesh)
    tau, kappa = _tau_kappa(r, s)
    expected = tau**2 * (kappa**4 * f["c0"] + 2 * kappa**2 * f["g1"] + f["g2"])
    assert abs(Q - expected).max() < 1e-12 * abs(expected).max()
    dense = model.precision_dense(jnp.log(jnp.array([r, s])))
    np.testing.assert_allclose(np.asarray(dense), expected.toarray(), rtol=0, atol=1e-12 * abs(expected).max())
    assert [h.internal_name for h in model.hyperparameters] == ["log(Range) for s", "log(Stdev) for s"]
    assert [h.name for h in model.hyperparameters] == ["Range for s", "Stdev for s"]
    np.testing.assert_allclose(model.initial_theta(), [math.log(0.3) + 1, math.log(1.0) - 1])
    assert float(model.hyperparameters[0].to_user(jnp.log(r))) == pytest.approx(r)


def test_matches_rinla_param_inla_on_reference():
    case = shared_path(*CASE)
    spec = json.loads((case / "spec.json").read_text())["spde"]["spde_param_inla"]
    mesh = reference_mesh(case)
    spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1.0, 0.01))
    for name in ("B0", "B1", "B2"):
        np.testing.assert_allclose(getattr(spde, name)[0], spec[name]["row"], rtol=1e-12, atol=1e-14)
    M = [scipy.io.mmread(str(case / f"spde_M{i}.mtx")).tocsr() for i in range(3)]
    for k, mine in enumerate((spde.M0, spde.M1, spde.M2)):
        assert abs(mine - M[k]).max() <= 1e-10 * abs(M[k]).max()
    theta = np.array([-1.0798801497797, 0.479854113779673])  # R-INLA's posterior mode
    th = np.r_[1.0, theta]
    d0 = np.exp(np.dot(spec["B0"]["row"], th))
    d1 = np.exp(np.dot(spec["B1"]["row"], th))
    d2 = np.dot(spec["B2"]["row"], th)
    Q_r = d0 * d0 * (d1 * d1 * M[0] + d2 * d1 * (M[1] + M[1].T) + M[2])
    Q = spde.precision(jnp.asarray(theta))
    assert abs(Q - Q_r).max() < 1e-12 * abs(Q_r).max()
    # R-INLA's pcmatern prior parameters (priors_used: lambda1, lambda2, d)
    pri = next(p for p in json.loads((case / "spec.json").read_text())["priors_used_all"] if p["prior"] == "pcmatern")
    m = spde.latent_model("s")
    assert m.hyperparameters[0].prior.lam == pytest.approx(pri["param"][0], rel=1e-5)
    assert m.hyperparameters[1].prior.lam == pytest.approx(pri["param"][1], rel=1e-5)


def test_pc_priors_are_normalised_with_the_requested_tails():
    pr = PCRange(0.3, 0.05)
    ps = PCSigma(2.0, 0.01)
    dens_r = lambda t: math.exp(float(pr.log_density(t)))
    dens_s = lambda t: math.exp(float(ps.log_density(t)))
    assert quad(dens_r, -30, 30, limit=200)[0] == pytest.approx(1.0, abs=1e-8)
    assert quad(dens_s, -60, 10, limit=200)[0] == pytest.approx(1.0, abs=1e-8)
    assert quad(dens_r, -30, math.log(0.3), limit=200)[0] == pytest.approx(0.05, abs=1e-8)
    assert quad(dens_s, math.log(2.0), 10, limit=200)[0] == pytest.approx(0.01, abs=1e-8)
    # d = 1 (temporal range of space-time models)
    pt = PCRange(5.0, 0.5, d=1.0)
    assert quad(lambda t: math.exp(float(pt.log_density(t))), -40, math.log(5.0), limit=200)[0] == pytest.approx(0.5, abs=1e-8)
    # the registry builds the same priors
    p2 = make_prior("pc.range", (0.3, 0.05), d=2.0)
    assert float(p2.log_density(0.1)) == pytest.approx(float(pr.log_density(0.1)))
    assert float(make_prior("pc.sigma", (2.0, 0.01)).log_density(0.2)) == pytest.approx(float(ps.log_density(0.2)))


def test_marginal_variance_and_range_correlation_on_fine_mesh():
    """Stationary Matérn ν = 1: var = σ², corr(range) = √8·K₁(√8) ≈ 0.1397. Tolerances: FEM with
    h = range/16 on a domain 5 ranges wide, centre node: variance within 6%, correlation ±0.01."""
    mesh = grid_mesh(2.0, 0.05)
    r, s = 0.8, 1.3
    spde = spde2_pcmatern(mesh, prior_range=(1.0, 0.5), prior_sigma=(1.0, 0.5))
    Q = spde.precision(jnp.log(jnp.array([r, s]))).tocsc()
    centre = int(np.argmin((mesh.loc**2).sum(1)))
    e = np.zeros(mesh.n)
    e[centre] = 1.0
    cov = spl.spsolve(Q, e)
    assert cov[centre] / s**2 == pytest.approx(1.0, abs=0.06)
    target = math.sqrt(8) * kv(1, math.sqrt(8))
    for direction in ([r, 0.0], [0.0, r], [-r, 0.0]):
        j = int(np.argmin(((mesh.loc - direction) ** 2).sum(1)))
        assert cov[j] / cov[centre] == pytest.approx(target, abs=0.01)


def test_log_normaliser_closed_form_matches_dense_and_grad(mesh):
    model = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1.0, 0.01)).latent_model("s")
    theta = jnp.array([-0.8, 0.3])
    Q = np.asarray(model.precision_dense(theta))
    expected = 0.5 * np.linalg.slogdet(Q)[1] - 0.5 * mesh.n * math.log(2 * math.pi)
    got = model.log_normaliser(theta)
    assert got is not None
    assert float(got) == pytest.approx(expected, rel=1e-11)
    g = jax.grad(model.log_normaliser)(theta)
    eps = 1e-5
    for k in range(2):
        dp = np.array(theta).copy()
        dm = dp.copy()
        dp[k] += eps
        dm[k] -= eps
        fd = (0.5 * np.linalg.slogdet(np.asarray(model.precision_dense(dp)))[1]
              - 0.5 * np.linalg.slogdet(np.asarray(model.precision_dense(dm)))[1]) / (2 * eps)
        assert float(g[k]) == pytest.approx(fd, rel=1e-6)
    vals = jax.jit(model.precision_values)(theta)
    ref = np.asarray(model.precision_values(theta))
    np.testing.assert_allclose(np.asarray(vals), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())


@pytest.mark.parametrize("alpha", [1.0, 1.5])
def test_other_alphas_closed_form_and_spd(mesh, alpha):
    model = spde2_matern(mesh, alpha=alpha).latent_model("s")
    theta = jnp.asarray(model.initial_theta())
    Q = np.asarray(model.precision_dense(theta))
    assert np.allclose(Q, Q.T) and np.linalg.eigvalsh(Q).min() > 0
    ln = model.log_normaliser(theta)
    assert ln is not None
    assert float(ln) == pytest.approx(0.5 * np.linalg.slogdet(Q)[1] - 0.5 * mesh.n * math.log(2 * math.pi), rel=1e-10)


def test_spde2_matern_default_parametrisation_and_prior(mesh):
    spde = spde2_matern(mesh)
    model = spde.latent_model("field")
    mu = model.initial_theta()
    # θ = (log τ, log κ) at the prior mean: nominal range 20% of the mesh extent, variance 1
    extent = np.ptp(mesh.loc, axis=0).max()
    tau, kappa = math.exp(mu[0]), math.exp(mu[1])
    assert math.sqrt(8) / kappa == pytest.approx(0.2 * extent, rel=1e-12)
    assert 1.0 / (4 * math.pi * kappa**2 * tau**2) == pytest.approx(1.0, rel=1e-12)
    f = fem(mesh)
    Q = spde.precision(jnp.asarray(mu))
    expected = tau**2 * (kappa**4 * f["c0"] + 2 * kappa**2 * f["g1"] + f["g2"])
    assert abs(Q - expected).max() < 1e-12 * abs(expected).max()
    h = model.hyperparameters
    assert [x.internal_name for x in h] == ["Theta1 for field", "Theta2 for field"]
    lp = float(h[0].prior.log_density(mu[0] + 1.0))
    assert lp == pytest.approx(0.5 * math.log(0.1 / (2 * math.pi)) - 0.05)


def test_constraints_and_from_term(mesh):
    spde = spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1.0, 0.01), constr=True)
    model, index, ids = spde.from_term("s", np.array([1.0, np.nan, float(mesh.n)]), {"constr": True})
    C = model.constraints()
    assert C.k == 2
    np.testing.assert_allclose(C.C[0], np.asarray(fem(mesh)["c1"].sum(axis=0)).ravel())
    assert C.C[0].sum() == pytest.approx(mesh.area)
    np.testing.assert_allclose(C.C[1], 1.0)
    np.testing.assert_array_equal(index, [0, -1, mesh.n - 1])
    np.testing.assert_array_equal(ids, np.arange(mesh.n))  # R-INLA numbers SPDE nodes from 0
    with pytest.raises(DataError, match="1-based node numbers"):
        spde.from_term("s", np.array([0.0]), {})
    with pytest.raises(DataError, match="1-based node numbers"):
        spde.from_term("s", np.array([1.5]), {})
    with pytest.raises(ModelError, match="unsupported argument"):
        spde.from_term("s", np.array([1.0]), {"scale_model": True})
    with pytest.raises(ModelError, match="unknown hyperparameter"):
        spde.from_term("s", np.array([1.0]), {"hyper": {"theta3": {"initial": 1}}})


def test_fixed_parameters_and_hyper_overrides(mesh):
    spde = spde2_pcmatern(mesh, prior_range=(0.4, None), prior_sigma=(1.0, 0.01))
    h = spde.latent_model("s").hyperparameters
    assert h[0].fixed and h[0].initial == pytest.approx(math.log(0.4))
    assert not h[1].fixed
    m = spde.latent_model("s", {"hyper": {"theta2": {"initial": 0.25, "fixed": True}}})
    assert m.hyperparameters[1].fixed and m.hyperparameters[1].initial == 0.25
    m = spde.latent_model("s", {"hyper": {"theta1": {"prior": "pcmatern", "param": [0.2, 3.0, 2]}}})
    assert m.hyperparameters[0].prior.lam == pytest.approx(0.2)
    assert m.hyperparameters[1].prior.lam == pytest.approx(3.0)
    with pytest.raises(ModelError, match="prior_range"):
        spde2_pcmatern(mesh, prior_range=(0.3, 1.5), prior_sigma=(1.0, 0.01))


def test_non_stationary_basis_uses_per_node_phis(mesh):
    """A B matrix with per-node rows (R-INLA's non-stationary spde2): Q = D0(D1 M0 D1 + D1 M1 + M1ᵀD1 + M2)D0."""
    n = mesh.n
    x = mesh.loc[:, 0]
    B_tau = np.c_[np.zeros(n), np.ones(n), np.zeros(n), 0.3 * x]
    B_kappa = np.c_[np.zeros(n), np.zeros(n), np.ones(n), np.zeros(n)]
    spde = spde2_matern(mesh, B_tau=B_tau, B_kappa=B_kappa, theta_prior_mean=[0.0, 1.0, 0.5])
    model = spde.latent_model("s")
    theta = np.array([0.2, 1.1, -0.4])
    f = fem(mesh)
    D0 = sp.diags(np.exp(B_tau @ np.r_[1, theta]))
    D1 = sp.diags(np.exp(2 * B_kappa @ np.r_[1, theta]))
    expected = D0 @ (D1 @ f["c0"] @ D1 + D1 @ f["g1"] + f["g1"] @ D1 + f["g2"]) @ D0
    Q = model.precision(jnp.asarray(theta))
    assert abs(Q - expected).max() < 1e-12 * abs(expected).max()
    assert model.log_normaliser(jnp.asarray(theta)) is None  # no closed form: the compiler factorises
