"""bym and bym2 (and bym2's "pc" prior of φ) against independent dense constructions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from conftest import shared_path

from adelia.errors import ModelError, PriorError
from adelia.models.besag import Besag
from adelia.models.bym import BYM, BYM2
from adelia.models.graph import Graph, read_graph
from adelia.models.pc_bym_phi import PCBym2Phi, RSplineFMM
from adelia.models.registry import make_prior, model_class

# components {1,2,3,4}, {5,6,7}, island {8}
EDGES = [(1, 2), (2, 3), (3, 4), (4, 1), (1, 3), (5, 6), (6, 7)]
N = 8
COMPONENTS = [[0, 1, 2, 3], [4, 5, 6], [7]]


def laplacian(edges, n):
    W = np.zeros((n, n))
    for i, j in edges:
        W[i - 1, j - 1] = W[j - 1, i - 1] = 1.0
    return np.diag(W.sum(1)) - W


def scaled_structure(edges, n, components):
    L = laplacian(edges, n)
    R = np.zeros((n, n))
    for nodes in components:
        ix = np.ix_(nodes, nodes)
        if len(nodes) == 1:
            R[ix] = 1.0
        else:
            R[ix] = np.exp(np.mean(np.log(np.diag(np.linalg.pinv(L[ix]))))) * L[ix]
    return R


def subspace_basis(C, dim):
    """Orthonormal basis of {x : C x = 0}."""
    return scipy.linalg.null_space(C) if C is not None else np.eye(dim)


def graph():
    return Graph.from_edges(EDGES, n=N)


def test_registered():
    assert model_class("bym") is BYM and model_class("bym2") is BYM2


@pytest.mark.parametrize("scale_model", [False, True])
def test_bym_is_iid_plus_besag(scale_model):
    """x = (v, u) = T (ε, u), T = [[I, I], [0, I]]: Q = T⁻ᵀ blockdiag(τ_iid I, τ_b R) T⁻¹."""
    m, idx, ids = BYM.from_term("region", np.array([1.0, 8.0, np.nan]), {"graph": graph(), "scale_model": scale_model})
    R = scaled_structure(EDGES, N, COMPONENTS) if scale_model else laplacian(EDGES, N)
    Tinv = np.block([[np.eye(N), -np.eye(N)], [np.zeros((N, N)), np.eye(N)]])
    for t1, t2 in [(0.3, -1.1), (2.0, 1.5)]:
        prior = scipy.linalg.block_diag(np.exp(t1) * np.eye(N), np.exp(t2) * R)
        Q = np.asarray(m.precision_dense(jnp.array([t1, t2])))
        np.testing.assert_allclose(Q, Tinv.T @ prior @ Tinv, atol=1e-12)
        # same normalising constant as iid + besag (a volume-preserving reparametrisation)
        besag, _, _ = Besag.from_term("region", np.array([1.0]), {"graph": graph(), "scale_model": scale_model})
        iid = 0.5 * N * (t1 - np.log(2 * np.pi))
        assert float(m.log_normaliser(jnp.array([t1, t2]))) == pytest.approx(iid + float(besag.log_normaliser(jnp.array([t2]))), abs=1e-12)
    np.testing.assert_array_equal(idx, [0, 7, -1])
    np.testing.assert_array_equal(ids, np.arange(1, 2 * N + 1))
    assert m.n == 2 * N and m.rank_deficiency == (2 if scale_model else 3)
    # the constraints act on the structured half, one per component of size >= 2
    C = m.constraints().C
    assert C.shape == (2, 2 * N) and np.all(C[:, :N] == 0)
    np.testing.assert_array_equal(C[:, N:], besag.constraints().C)
    names = [h.name for h in m.hyperparameters]
    assert names == ["Precision for region (iid component)", "Precision for region (spatial component)"]
    assert [h.internal_name for h in m.hyperparameters] == [
        "Log precision for region (idd component)", "Log precision for region (spatial component)"]  # R-INLA's typo
    assert [repr(h.prior) for h in m.hyperparameters] == ["loggamma(1, 0.0005)"] * 2
    assert [h.initial for h in m.hyperparameters] == [4.0, 4.0]


def test_bym_hyper_keys():
    m, _, _ = BYM.from_term("r", np.array([1.0]), {"graph": graph(), "hyper": {
        "prec.unstruct": {"param": [1, 0.01]}, "prec_spatial": {"initial": 2, "fixed": True}}})
    assert repr(m.hyperparameters[0].prior) == "loggamma(1, 0.01)"
    assert m.hyperparameters[1].fixed and m.hyperparameters[1].initial == 2.0


def bym2_covariance(R, tau, phi):
    """Covariance of (v, u) from v = (√(1-φ) ε + √φ u)/√τ, u ~ N(0, R⁺) on the sum-to-zero space."""
    S = np.linalg.pinv(R)
    n = R.shape[0]
    c = np.sqrt(phi / tau)
    return np.block([[((1 - phi) * np.eye(n) + phi * S) / tau, c * S], [c * S, S]])


@pytest.mark.parametrize("edges, n, comps", [(EDGES, N, COMPONENTS), ([(1, 2), (2, 3), (3, 4), (2, 4), (4, 5)], 5, [[0, 1, 2, 3, 4]])])
def test_bym2_precision_is_the_inverse_covariance_on_the_constraint_space(edges, n, comps):
    m, idx, _ = BYM2.from_term("region", np.arange(1.0, n + 1), {"graph": Graph.from_edges(edges, n=n)})
    R = scaled_structure(edges, n, comps)
    C = m.constraints().C
    V = subspace_basis(C, 2 * n)
    for t1, t2 in [(0.5, -1.0), (-1.2, 2.5), (3.0, 0.0)]:
        tau, phi = np.exp(t1), 1 / (1 + np.exp(-t2))
        Q = np.asarray(m.precision_dense(jnp.array([t1, t2])))
        Sigma = bym2_covariance(R, tau, phi)
        # on S = {C x = 0}: Cov = V (VᵀQV)⁻¹ Vᵀ
        np.testing.assert_allclose(V @ np.linalg.inv(V.T @ Q @ V) @ V.T, Sigma, atol=1e-10)
        # the normaliser of the density on S (what log_normaliser returns)
        k = C.shape[0]
        expected = 0.5 * np.linalg.slogdet(V.T @ Q @ V)[1] - 0.5 * (2 * n - k) * np.log(2 * np.pi)
        assert float(m.log_normaliser(jnp.array([t1, t2]))) == pytest.approx(expected, abs=1e-9)
        # ... which differs from the generalised determinant by ½ r log(1 + φ/τ) (documented)
        lam = np.linalg.eigvalsh(Q)
        lam = lam[lam > 1e-9 * lam.max()]
        half_pdet = 0.5 * np.sum(np.log(lam))
        assert half_pdet - 0.5 * np.linalg.slogdet(V.T @ Q @ V)[1] == pytest.approx(0.5 * k * np.log(1 + phi / tau), abs=1e-8)
    np.testing.assert_array_equal(idx, np.arange(n))
    assert m.rank_deficiency == C.shape[0] == len([c for c in comps if len(c) >= 2])


def test_bym2_defaults_and_names():
    m, _, _ = BYM2.from_term("Region", np.array([1.0]), {"graph": graph()})
    t, p = m.hyperparameters
    assert (t.name, t.internal_name, repr(t.prior), t.initial) == ("Precision for Region", "Log precision for Region", "pc.prec(1, 0.01)", 4.0)
    assert (p.name, p.internal_name, repr(p.prior), p.initial) == ("Phi for Region", "Logit phi for Region", "pc(0.5, 0.5)", -3.0)
    assert float(p.to_user(jnp.array(0.0))) == 0.5
    with pytest.raises(ModelError, match="scale_model=True"):
        BYM2.from_term("Region", np.array([1.0]), {"graph": graph(), "scale_model": False})
    with pytest.raises(ModelError, match=r"f\(Region, model='bym2'\).*found 9"):
        BYM2.from_term("Region", np.array([1.0, 9.0]), {"graph": graph()})
    m2, _, _ = BYM2.from_term("Region", np.array([1.0]), {"graph": graph(), "hyper": {"phi": {"param": [0.5, 2 / 3]}}})
    assert repr(m2.hyperparameters[1].prior) == "pc(0.5, 0.666667)"


def test_bym2_gradient_and_jit():
    m, _, _ = BYM2.from_term("Region", np.array([1.0]), {"graph": graph()})
    th = jnp.array([0.4, -0.7])
    np.testing.assert_allclose(jax.jit(m.precision_values)(th), m.precision_values(th), rtol=1e-13)
    g = jax.grad(lambda t: m.log_normaliser(t))(th)
    # ½ n (θ1 + softplus(θ2)): gradient (n/2, n/2 · φ)
    np.testing.assert_allclose(g, [N / 2, N / 2 / (1 + np.exp(0.7))], rtol=1e-12)


# -- the "pc" prior of φ -----------------------------------------------------------------
def test_fmm_spline_reproduces_cubics():
    x = np.sort(np.random.default_rng(1).uniform(0, 5, 9))
    f = lambda u: 1 - 2 * u + 0.5 * u**2 - 0.3 * u**3  # noqa: E731
    s = RSplineFMM.fit(x, f(x))
    u = np.linspace(-1, 6, 15)
    np.testing.assert_allclose(s(u), f(u), atol=1e-10)
    np.testing.assert_allclose(s(u, deriv=1), -2 + u - 0.9 * u**2, atol=1e-9)


class ExactPC:
    """Riebler et al. (2016) from scratch: KLD between N(0, (1-φ)I + φR⁺) and N(0, I), d = √(2KLD),
    π(θ) = λ exp(-λ d) |dd/dθ| (central difference), λ = -log(1-α)/d(u)."""

    def __init__(self, R, u=0.5, alpha=0.5):
        self.S = np.linalg.pinv(R)
        self.n = R.shape[0]
        self.gam_inv = np.linalg.eigvalsh(self.S)  # eigenvalues of R⁺ (0 on the null space)
        self.lam = -np.log(1 - alpha) / self.d(np.log(u / (1 - u)))

    def d(self, t):
        phi = 1 / (1 + np.exp(-t))
        two_kld = self.n * phi * (np.trace(self.S) / self.n - 1) - np.sum(np.log1p(phi * (self.gam_inv - 1)))
        return np.sqrt(two_kld)

    def log_density(self, t, h=1e-5):
        dd = (self.d(t + h) - self.d(t - h)) / (2 * h)
        return np.log(self.lam) - self.lam * self.d(t) + np.log(np.abs(dd))

    def mass(self, a, b):
        """P(a < θ < b): d is increasing in θ and λ d ~ Exp(1)."""
        return np.exp(-self.lam * self.d(a)) - np.exp(-self.lam * self.d(b))


def test_pc_prior_matches_the_exact_pc_prior_and_integrates_to_one():
    prior = make_prior("pc", (0.5, 0.5), graph=graph())
    assert isinstance(prior, PCBym2Phi)
    R = scaled_structure(EDGES, N, COMPONENTS)
    lo, hi = prior.theta_grid[0], prior.theta_grid[-1]
    exact = ExactPC(R)
    thetas = np.linspace(-8, 8, 17)
    ours = np.asarray(jax.jit(prior.log_density)(jnp.asarray(thetas)))
    # R-INLA renormalises its table on [lo, hi]; so does the oracle
    expected = np.array([exact.log_density(t) for t in thetas]) - np.log(exact.mass(lo, hi))
    np.testing.assert_allclose(ours, expected, atol=2e-3)
    # a proper density on the table range, with P(φ < 1/2) as the exact prior says
    x = np.linspace(lo, hi, 200001)
    for alpha in [0.5, 2 / 3]:
        p = make_prior("pc", (0.5, alpha), graph=graph())
        dens = np.exp(np.asarray(p.log_density(jnp.asarray(x))))
        assert np.trapezoid(dens, x) == pytest.approx(1.0, abs=1e-6)
        ex = ExactPC(R, alpha=alpha)
        assert ex.mass(-np.inf, 0.0) == pytest.approx(alpha, abs=1e-6)  # the oracle's calibration
        assert np.trapezoid(dens[x <= 0], x[x <= 0]) == pytest.approx(ex.mass(lo, 0.0) / ex.mass(lo, hi), abs=1e-3)
    # differentiable in θ: AD against a central difference
    g = jax.grad(lambda t: prior.log_density(t))(jnp.array(0.7))
    fd = (prior.log_density(0.7 + 1e-6) - prior.log_density(0.7 - 1e-6)) / 2e-6
    assert float(g) == pytest.approx(float(fd), rel=1e-5)


def _rinla_table(*parts):
    text = open(shared_path(*parts)).read()
    i = text.index("table:")
    v = np.array(text[i + 6 : text.index("]", i)].split(), dtype=float)
    return v[: v.size // 2], v[v.size // 2 :]


@pytest.mark.parametrize("case", [("reference", "rinla", "scotland_bym2"), ("reference", "rinla_perf", "P4_germany_bym2")])
def test_pc_prior_table_matches_rinla(case):
    """R-INLA 25.07 wrote its bym2 φ prior table into priors_used.txt (default param (0.5, 0.5))."""
    x_ref, y_ref = _rinla_table(*case, "priors_used.txt")
    g = read_graph(shared_path(*case, "scotland.graph" if "scotland" in case[-1] else "germany.graph"))
    prior = PCBym2Phi(0.5, 0.5, graph=g)
    np.testing.assert_allclose(prior.theta_grid, x_ref, atol=1e-12)
    err = np.abs(prior.table - y_ref)
    assert err.max() < 1e-4  # the ends, where R's own d(φ) is rounding-limited
    assert err[(x_ref > -10) & (x_ref < 8)].max() < 1e-6  # logit phi in (-10, 8): phi in (5e-5, 0.9997)
    # and the jit-able density interpolates it
    np.testing.assert_allclose(np.asarray(prior.log_density(jnp.asarray(x_ref[::97]))), prior.table[::97], atol=1e-12)


def test_pc_prior_needs_the_graph():
    with pytest.raises(PriorError, match="graph"):
        make_prior("pc", (0.5, 0.5))
    with pytest.raises(PriorError, match="0 < u < 1"):
        make_prior("pc", (1.5, 0.5), graph=graph())
