"""Priors against scipy.stats / closed forms (Jacobians included), normalisation by quadrature,
the PC priors' defining tail probabilities, and the hyper= merging rules."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from adelia.errors import ModelError, PriorError
from adelia.models.hyper import HyperSpec, build_hyperparameters, canonical_prior_name, to_rho
from adelia.models.priors import PCMaternPrior
from adelia.models.registry import make_prior
from conftest import shared_path

THETA = np.linspace(-6.0, 6.0, 25) + 0.05  # avoids theta = 0 where |rho|/mu is a 0/0 limit


def ld(prior, theta):
    return np.asarray(prior.log_density(jnp.asarray(theta)))


def integrate(prior, lo, hi, n=400_001):
    x = np.linspace(lo, hi, n)
    return np.trapezoid(np.exp(ld(prior, x) - getattr(prior, "r_inla_offset", 0.0)), x), x


# ---- closed forms -------------------------------------------------------------------------------
def test_loggamma_is_gamma_of_exp_theta_with_jacobian():
    p = make_prior("loggamma", (2.5, 0.3))
    want = stats.gamma(2.5, scale=1 / 0.3).logpdf(np.exp(THETA)) + THETA
    np.testing.assert_allclose(ld(p, THETA), want, rtol=1e-12, atol=1e-12)


def test_gamma_prior_is_on_theta_itself():
    p = make_prior("gamma", (2.0, 1.5))
    x = np.linspace(0.1, 5, 9)
    np.testing.assert_allclose(ld(p, x), stats.gamma(2.0, scale=1 / 1.5).logpdf(x), rtol=1e-12)
    assert ld(p, np.array([-1.0]))[0] == -np.inf


def test_normal_matches_scipy_and_precision_zero_is_flat():
    p = make_prior("normal", (0.3, 0.15))
    np.testing.assert_allclose(ld(p, THETA), stats.norm(0.3, 1 / np.sqrt(0.15)).logpdf(THETA), atol=1e-10)
    np.testing.assert_array_equal(ld(make_prior("gaussian", (1.0, 0.0)), THETA), 0.0)


def test_logtnormal_is_truncated_normal_of_sigma():
    mean, prec = 0.5, 2.0
    p = make_prior("logtnormal", (mean, prec))
    sd = 1 / np.sqrt(prec)
    sigma = np.exp(-THETA / 2)
    want = stats.truncnorm.logpdf(sigma, (0 - mean) / sd, np.inf, loc=mean, scale=sd) + np.log(sigma / 2)
    np.testing.assert_allclose(ld(p, THETA), want, atol=1e-9)


def test_pc_prec_is_exponential_sigma_with_jacobian():
    u, alpha = 0.7, 0.05
    p = make_prior("pc.prec", (u, alpha))
    lam = -np.log(alpha) / u
    sigma = np.exp(-THETA / 2)
    want = stats.expon(scale=1 / lam).logpdf(sigma) + np.log(sigma / 2)
    np.testing.assert_allclose(ld(p, THETA), want, rtol=1e-12, atol=1e-12)


def test_pc_cor0_is_rinla_density_and_two_sided_normalised_version_has_mass_one():
    u, alpha = 0.5, 0.3
    p = make_prior("pc.cor0", (u, alpha))
    lam = -np.log(alpha) / np.sqrt(-np.log(1 - u**2))
    rho = np.tanh(THETA / 2)
    mu = np.sqrt(-np.log1p(-(rho**2)))
    dmu_drho = np.abs(rho) / (mu * (1 - rho**2))
    # R-INLA's C code: no 1/2 for the two signs of rho
    want = np.log(lam) - lam * mu + np.log(dmu_drho) + np.log((1 - rho**2) / 2)
    np.testing.assert_allclose(ld(p, THETA), want, rtol=1e-10, atol=1e-10)
    assert p.r_inla_offset == pytest.approx(np.log(2))
    mass, x = integrate(p, -60, 60)
    assert mass == pytest.approx(1.0, abs=1e-6)
    # P(|rho| > u) = alpha
    cut = 2 * np.arctanh(u)  # |rho| > u  <=>  |theta| > cut
    xs = np.linspace(cut, 60, 400_001)
    tail = 2 * np.trapezoid(np.exp(ld(p, xs) - p.r_inla_offset), xs)
    assert tail == pytest.approx(alpha, abs=1e-7)


def test_pc_cor0_finite_value_and_gradient_at_zero():
    p = make_prior("pc.cor0", (0.5, 0.5))
    v, g = jax.value_and_grad(lambda t: p.log_density(t))(jnp.asarray(0.0))
    lam = -np.log(0.5) / np.sqrt(-np.log(0.75))
    assert float(v) == pytest.approx(np.log(lam) - np.log(2), abs=1e-12)
    assert np.isfinite(float(g))


def test_pc_cor1_normalised_with_tail_probability():
    u, alpha = 0.7, 0.7
    p = make_prior("pc.cor1", (u, alpha))
    lam = p.rate
    assert (1 - np.exp(-lam * np.sqrt(1 - u))) / (1 - np.exp(-lam * np.sqrt(2))) == pytest.approx(alpha, rel=1e-12)
    rho = np.tanh(THETA / 2)
    mu = np.sqrt(1 - rho)
    want = np.log(lam) - lam * mu - np.log(1 - np.exp(-lam * np.sqrt(2))) - np.log(2 * mu) + np.log((1 - rho**2) / 2)
    np.testing.assert_allclose(ld(p, THETA), want, rtol=1e-10, atol=1e-10)
    mass, x = integrate(p, -80, 80)
    assert mass == pytest.approx(1.0, abs=1e-6)
    xs = np.linspace(2 * np.arctanh(u), 80, 400_001)
    assert np.trapezoid(np.exp(ld(p, xs)), xs) == pytest.approx(alpha, abs=1e-7)


def test_pc_cor1_rejects_impossible_tail_probability():
    with pytest.raises(PriorError, match=r"sqrt\(\(1-u\)/2\) < alpha"):
        make_prior("pc.cor1", (0.5, 0.3))


def test_pc_prec_normalised_and_tail_probability():
    u, alpha = 1.0, 0.01
    p = make_prior("pc.prec", (u, alpha))
    mass, x = integrate(p, -40, 400)
    assert mass == pytest.approx(1.0, abs=1e-6)
    xs = np.linspace(-40, -2 * np.log(u), 400_001)  # sigma > u  <=>  theta < -2 log u
    assert np.trapezoid(np.exp(ld(p, xs)), xs) == pytest.approx(alpha, abs=1e-7)


@pytest.mark.parametrize(
    "name,param,lo,hi",
    [("loggamma", (1.0, 1.0), -40, 6), ("normal", (0.0, 0.15), -40, 40), ("logtnormal", (0.0, 1.0), -20, 60),
     ("betacorrelation", (2.0, 3.0), -60, 60), ("logitbeta", (0.5, 0.8), -80, 80)],
)
def test_proper_priors_integrate_to_one(name, param, lo, hi):
    mass, _ = integrate(make_prior(name, param), lo, hi)
    assert mass == pytest.approx(1.0, abs=1e-5)


def test_betacorrelation_is_beta_of_half_rho_plus_half():
    a, b = 2.0, 3.5
    p = make_prior("betacorrelation", (a, b))
    q = expit(THETA)
    want = stats.beta(a, b).logpdf(q) + np.log(q * (1 - q))
    np.testing.assert_allclose(ld(p, THETA), want, rtol=1e-10)


def test_mvnorm_matches_scipy():
    mean = np.array([0.5, -1.0])
    Q = np.array([[2.0, 0.3], [0.3, 1.0]])
    p = make_prior("mvnorm", np.concatenate([mean, Q.ravel(order="F")]))
    x = np.array([0.1, 0.4])
    assert p.dimension == 2
    assert float(p.log_density(x)) == pytest.approx(stats.multivariate_normal(mean, np.linalg.inv(Q)).logpdf(x), abs=1e-12)
    with pytest.raises(PriorError, match="dimension"):
        make_prior("mvnorm", [1.0, 2.0, 3.0])


def test_pcmatern_parts_are_the_range_and_sigma_pc_priors():
    r0, pr, s0, ps, d = 0.3, 0.5, 1.0, 0.01, 2.0
    p = PCMaternPrior.from_quantiles(r0, pr, s0, ps, d)
    # R-INLA's printed parameters for prior.range=c(0.3, 0.5), prior.sigma=c(1, 0.01)
    np.testing.assert_allclose(p.param, (0.207944, 4.605170, 2.0), atol=1e-6)
    th = np.array([np.log(0.4), np.log(0.8)])
    lam1, lam2 = p.param[:2]
    r = np.exp(th[0])
    range_ld = np.log(lam1 * d / 2) - (d / 2 + 1) * np.log(r) - lam1 * r ** (-d / 2) + th[0]
    sigma_ld = stats.expon(scale=1 / lam2).logpdf(np.exp(th[1])) + th[1]
    np.testing.assert_allclose(np.asarray(p.log_density_parts(th)), [range_ld, sigma_ld], rtol=1e-12)
    # the range part integrates to 1 over theta1 and P(range < r0) = pr; the sigma part
    # integrates to 1 and P(sigma > s0) = ps (quadrature)
    x = np.linspace(-30, 30, 200_001)
    parts = np.exp(np.asarray(jax.vmap(p.log_density_parts)(jnp.column_stack([x, x]))))
    np.testing.assert_allclose(np.trapezoid(parts, x, axis=0), [1.0, 1.0], atol=1e-6)
    assert np.trapezoid(parts[:, 0] * (x < np.log(r0)), x) == pytest.approx(pr, abs=1e-3)
    assert np.trapezoid(parts[:, 1] * (x > np.log(s0)), x) == pytest.approx(ps, abs=1e-3)
    xs = np.linspace(-30, np.log(r0), 200_001)
    below = np.trapezoid(np.exp(np.asarray(jax.vmap(p.log_density_parts)(jnp.column_stack([xs, xs])))[:, 0]), xs)
    assert below == pytest.approx(pr, abs=1e-7)


def test_flat_none_and_rinla_logflat():
    for name in ("flat", "uniform", "none"):
        np.testing.assert_array_equal(ld(make_prior(name), THETA), 0.0)
    np.testing.assert_allclose(ld(make_prior("logflat"), THETA), np.exp(THETA))
    np.testing.assert_allclose(ld(make_prior("logiflat"), THETA), np.exp(-THETA))


def test_unknown_prior_and_wrong_parameter_count():
    with pytest.raises(PriorError, match='unknown prior "pcprecc".*pc.prec'):
        canonical_prior_name("pcprecc")
    with pytest.raises(PriorError, match="needs 2 parameters"):
        make_prior("pc.prec", (1.0,))
    with pytest.raises(PriorError, match="0 < alpha < 1"):
        make_prior("pc.prec", (1.0, 1.5))
    assert canonical_prior_name("PC_PREC") == canonical_prior_name("pcprec") == "pc.prec"
    assert canonical_prior_name("pcrange") == "pc.range" and canonical_prior_name("PC_COR0") == "pc.cor0"


# ---- hyper= merging --------------------------------------------------------------------------------
SPECS = (
    HyperSpec("theta1", "prec", "log precision", "Log precision for {label}", "Precision for {label}",
              "loggamma", (1.0, 5e-05), 4.0),
    HyperSpec("theta2", "rho", "logit lag one correlation", "Rho_intern for {label}", "Rho for {label}",
              "normal", (0.0, 0.15), 2.0, False, to_rho),
)


def test_hyper_keys_short_long_thetak_and_case():
    a = build_hyperparameters(SPECS, "t", {"Prec": {"prior": "pc.prec", "param": [1, 0.01]}, "theta2": {"initial": 0.5}})
    b = build_hyperparameters(SPECS, "t", {"LOG_PRECISION": {"prior": "pc.prec", "param": (1, 0.01)},
                                           "logit lag one correlation": {"initial": 0.5}})
    for h in (a, b):
        assert repr(h[0].prior) == "pc.prec(1, 0.01)" and h[1].initial == 0.5
    assert a[0].name == "Precision for t" and a[1].internal_name == "Rho_intern for t"
    assert float(a[1].to_user(jnp.asarray(2.0))) == pytest.approx(2 * np.exp(2) / (1 + np.exp(2)) - 1)


def test_single_hyperparameter_accepts_theta_and_theta1():
    for key in ("theta", "theta1", "prec"):
        (h,) = build_hyperparameters(SPECS[:1], "i", {key: {"fixed": True, "initial": 2.0}})
        assert h.fixed and h.initial == 2.0


def test_changed_prior_keeps_default_parameters_like_rinla():
    (h, _) = build_hyperparameters(SPECS, "t", {"prec": {"prior": "pc.prec"}})
    assert h.prior.param == (1.0, 5e-05)


def test_obsolete_vector_arguments_and_precedence():
    h = build_hyperparameters(SPECS, "t", {"rho": {"initial": 1.5}}, initial=[3.0, 0.1], fixed=[True, False],
                              prior=["pc.prec", None], param=[2.0, 0.1])
    assert (h[0].initial, h[0].fixed, repr(h[0].prior)) == (3.0, True, "pc.prec(2, 0.1)")
    assert h[1].initial == 1.5 and not h[1].fixed
    with pytest.raises(ModelError, match="initial"):
        build_hyperparameters(SPECS, "t", initial=[1.0, 2.0, 3.0])


def test_hyper_errors_list_valid_choices():
    with pytest.raises(ModelError, match=r'unknown hyper key .*"precc".*Valid choices: .*prec.*theta1'):
        build_hyperparameters(SPECS, "t", {"precc": {"initial": 1}})
    with pytest.raises(ModelError, match=r'"prio".*Valid choices: fixed, initial, param, prior'):
        build_hyperparameters(SPECS, "t", {"prec": {"prio": "pc.prec"}})
    with pytest.raises(PriorError, match="unknown prior"):
        build_hyperparameters(SPECS, "t", {"prec": {"prior": "no.such.prior"}})
    with pytest.raises(PriorError, match="needs 2 parameters"):
        build_hyperparameters(SPECS, "t", {"prec": {"prior": "pc.prec", "param": [1, 2, 3]}})


def test_default_priors_match_rinla_reference_ar1():
    spec = json.loads(shared_path("reference", "rinla", "ar1_poisson", "spec.json").read_text())
    from adelia.models.ar import AR1Model

    m, _, _ = AR1Model.from_term("t", np.arange(1.0, 11.0), {})
    used = {e["hyper"]: e for e in spec["priors_used_all"] if e["tag"] == "t"}
    for key, h in (("theta1", m.hyperparameters[0]), ("theta2", m.hyperparameters[1])):
        assert h.prior.name == used[key]["prior"]
        np.testing.assert_allclose(h.prior.param, used[key]["param"])
    res = json.loads(shared_path("reference", "rinla", "ar1_poisson", "results.json").read_text())
    assert [h.internal_name for h in m.hyperparameters[:2]] == res["internal_summary_hyperpar"]["name"]
    assert [h.name for h in m.hyperparameters[:2]] == res["summary_hyperpar"]["name"]
