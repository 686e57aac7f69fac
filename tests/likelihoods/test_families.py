"""Observation families: log-densities against scipy.stats, η-derivatives against AD and
finite differences, weights, R-INLA names/defaults, control_family, family priors."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.special as sps
import scipy.stats as st
from conftest import shared_path

from adelia.errors import ControlError, ModelError, PriorError
from adelia.likelihoods import FAMILIES, make_likelihood
from adelia.likelihoods.priors import WEIBULL_ALPHA_SCALE, student_t_kld
from adelia.models.registry import make_prior

N = 7
INV = {
    "logit": sps.expit,
    "probit": st.norm.cdf,
    "cloglog": lambda e: -np.expm1(-np.exp(e)),
    "loglog": lambda e: np.exp(-np.exp(-e)),
    "cauchit": lambda e: 0.5 + np.arctan(e) / np.pi,
}


def _rng(seed):
    return np.random.default_rng(seed)


# --- cases: (family, control, theta, make(rng) -> (y, eta, data), reference(y, eta, theta, data)) ---
def _counts(rng):
    eta = rng.normal(0.3, 0.7, N)
    return rng.poisson(2.5, N).astype(float), eta


def case_gaussian(rng):
    eta = rng.normal(size=N)
    s = rng.uniform(0.5, 2.0, N)
    return rng.normal(size=N), eta, {"scale": s}


def ref_gaussian(y, eta, th, d):
    return st.norm.logpdf(y, eta, 1.0 / np.sqrt(np.exp(th[0]) * d["scale"]))


def case_poisson(rng):
    y, eta = _counts(rng)
    return y, eta, {"E": rng.uniform(0.3, 3.0, N)}


def ref_poisson(y, eta, th, d):
    return st.poisson.logpmf(y, d["E"] * np.exp(eta))


def case_binomial(rng):
    y, eta = _counts(rng)
    return y, eta, {"Ntrials": y + rng.integers(0, 5, N)}


def ref_binomial(link):
    return lambda y, eta, th, d: st.binom.logpmf(y, d["Ntrials"], INV[link](eta))


def case_nbinomial(rng):
    y, eta = _counts(rng)
    return y, eta, {"E": rng.uniform(0.3, 3.0, N), "scale": rng.uniform(0.5, 2.0, N)}


def ref_nbinomial(variant):
    def ref(y, eta, th, d):
        size = np.exp(th[0]) * {0: 1.0, 1: d["E"], 2: d["scale"]}[variant]
        mu = d["E"] * np.exp(eta)
        return st.nbinom.logpmf(y, size, size / (size + mu))

    return ref


def case_positive(rng):
    eta = rng.normal(0.0, 0.5, N)
    return rng.gamma(2.0, 1.0, N), eta, {"scale": rng.uniform(0.5, 2.0, N)}


def ref_gamma(y, eta, th, d):
    phi = np.exp(th[0]) * d["scale"]
    return st.gamma.logpdf(y, a=phi, scale=np.exp(eta) / phi)


def case_beta(rng):
    eta = rng.normal(0.0, 0.8, N)
    return rng.uniform(0.02, 0.98, N), eta, {"scale": rng.uniform(0.5, 2.0, N)}


def ref_beta(link):
    def ref(y, eta, th, d):
        phi = np.exp(th[0]) * d["scale"]
        p = INV[link](eta)
        return st.beta.logpdf(y, p * phi, (1 - p) * phi)

    return ref


def ref_betabinomial(link):
    def ref(y, eta, th, d):
        rho = sps.expit(th[0])
        p = INV[link](eta)
        return st.betabinom.logpmf(y, d["Ntrials"], p * (1 - rho) / rho, (1 - p) * (1 - rho) / rho)

    return ref


def case_zero_inflated(rng):
    y, eta = _counts(rng)
    y[:3] = 0.0
    return y, eta, {"E": rng.uniform(0.3, 3.0, N)}


def ref_zi(count, zi_type):
    def ref(y, eta, th, d):
        mu = d["E"] * np.exp(eta)
        p = sps.expit(th[-1])
        if count == "poisson":
            f, f0 = st.poisson.pmf(y, mu), st.poisson.pmf(0, mu)
        else:
            size = np.exp(th[0])
            f, f0 = st.nbinom.pmf(y, size, size / (size + mu)), st.nbinom.pmf(0, size, size / (size + mu))
        if zi_type == 0:
            return np.where(y == 0, np.log(p), np.log((1 - p) * f / (1 - f0)))
        return np.log(p * (y == 0) + (1 - p) * f)

    return ref


def case_t(rng):
    eta = rng.normal(size=N)
    return rng.standard_t(4, N) + eta, eta, {"scale": rng.uniform(0.5, 2.0, N)}


def ref_t(y, eta, th, d):
    nu = 2 + np.exp(th[1])
    prec = np.exp(th[0]) * d["scale"]
    return st.t.logpdf(y, nu, loc=eta, scale=1.0 / np.sqrt(prec * nu / (nu - 2)))


def ref_lognormal(y, eta, th, d):
    return st.lognorm.logpdf(y, s=1.0 / np.sqrt(np.exp(th[0]) * d["scale"]), scale=np.exp(eta))


def ref_exponential(y, eta, th, d):
    return st.expon.logpdf(y, scale=np.exp(-eta))


def ref_weibull(variant):
    def ref(y, eta, th, d):
        alpha = np.exp(WEIBULL_ALPHA_SCALE * th[0])
        lam = np.exp(eta)
        # variant 0: S = exp(−λ t^α); variant 1: S = exp(−(λ t)^α); scipy: S = exp(−(t/c)^α)
        c = lam ** (-1 / alpha) if variant == 0 else 1.0 / lam
        return st.weibull_min.logpdf(y, alpha, scale=c)

    return ref


CASES = [
    ("gaussian", None, [0.7], case_gaussian, ref_gaussian),
    ("poisson", None, [], case_poisson, ref_poisson),
    *[("binomial", {"link": link}, [], case_binomial, ref_binomial(link)) for link in INV],
    *[("nbinomial", {"variant": v}, [0.8], case_nbinomial, ref_nbinomial(v)) for v in (0, 1, 2)],
    ("gamma", None, [0.4], case_positive, ref_gamma),
    *[("beta", {"link": link}, [1.3], case_beta, ref_beta(link)) for link in INV],
    *[("betabinomial", {"link": link}, [-0.6], case_binomial, ref_betabinomial(link)) for link in ("logit", "probit", "cloglog")],
    ("zeroinflatedpoisson0", None, [-0.5], case_zero_inflated, ref_zi("poisson", 0)),
    ("zeroinflatedpoisson1", None, [-0.5], case_zero_inflated, ref_zi("poisson", 1)),
    ("zeroinflatednbinomial0", None, [1.1, -0.5], case_zero_inflated, ref_zi("nbinomial", 0)),
    ("zeroinflatednbinomial1", None, [1.1, -0.5], case_zero_inflated, ref_zi("nbinomial", 1)),
    ("t", None, [0.3, 1.2], case_t, ref_t),
    ("lognormal", None, [0.6], case_positive, ref_lognormal),
    ("exponential", None, [], case_positive, ref_exponential),
    *[("weibull", {"variant": v}, [2.5], case_positive, ref_weibull(v)) for v in (0, 1)],
]
IDS = [f"{c[0]}-{(c[1] or {}).get('link', '')}{(c[1] or {}).get('variant', '')}" for c in CASES]


def _eval(lik, y, eta, theta, data):
    jd = {k: jnp.asarray(v) for k, v in data.items()}
    return np.asarray(lik.log_density(jnp.asarray(y), jnp.asarray(eta), jnp.asarray(theta, dtype=float), jd))


@pytest.mark.parametrize("family,control,theta,make,ref", CASES, ids=IDS)
def test_log_density_matches_scipy(family, control, theta, make, ref, rng):
    lik = make_likelihood(family, control)
    y, eta, data = make(rng)
    np.testing.assert_allclose(_eval(lik, y, eta, theta, data), ref(y, eta, np.asarray(theta), data), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("family,control,theta,make,ref", CASES, ids=IDS)
def test_eta_derivatives_match_ad_and_finite_differences(family, control, theta, make, ref, rng):
    lik = make_likelihood(family, control)
    y, eta, data = make(rng)
    data = dict(data, weights=rng.uniform(0.5, 1.5, N))
    jd = {k: jnp.asarray(v) for k, v in data.items()}
    th = jnp.asarray(theta, dtype=float)
    d1, d2 = (np.asarray(v) for v in lik.d_log_density(jnp.asarray(y), jnp.asarray(eta), th, jd))

    # independent AD: the log-likelihood is a sum of per-row terms, so its gradient and
    # Hessian diagonal are the elementwise derivatives
    total = lambda e: jnp.sum(lik.log_density(jnp.asarray(y), e, th, jd))  # noqa: E731
    np.testing.assert_allclose(d1, np.asarray(jax.grad(total)(jnp.asarray(eta))), rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(d2, np.diag(np.asarray(jax.hessian(total)(jnp.asarray(eta)))), rtol=1e-8, atol=1e-10)

    # central finite differences of the scipy reference (weights applied by hand)
    h = 1e-4
    f = lambda e: data["weights"] * ref(y, e, np.asarray(theta), data)  # noqa: E731
    fd1 = (f(eta + h) - f(eta - h)) / (2 * h)
    fd2 = (f(eta + h) - 2 * f(eta) + f(eta - h)) / h**2
    np.testing.assert_allclose(d1, fd1, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d2, fd2, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", ["gaussian", "poisson", "binomial", "nbinomial", "weibullsurv"])
def test_weights_multiply_the_log_likelihood(family, rng):
    case = next(c for c in CASES if c[0] == family) if family != "weibullsurv" else None
    if case is None:
        lik, theta = make_likelihood(family), [1.0]
        y, eta, data = rng.gamma(2.0, 1.0, N), rng.normal(size=N), {"event": rng.integers(0, 2, N).astype(float)}
    else:
        lik, theta = make_likelihood(family, case[1]), case[2]
        y, eta, data = case[3](rng)
    w = rng.uniform(0.2, 3.0, N)
    plain = _eval(lik, y, eta, theta, data)
    np.testing.assert_allclose(_eval(lik, y, eta, theta, dict(data, weights=w)), w * plain, rtol=1e-13)


def test_log_density_is_jittable_without_retracing(rng):
    lik = make_likelihood("nbinomial")
    y, eta, data = case_nbinomial(rng)
    jd = {k: jnp.asarray(v) for k, v in data.items()}
    traces = []

    @jax.jit
    def f(e, th):
        traces.append(1)
        return jnp.sum(lik.log_density(jnp.asarray(y), e, th, jd))

    a = f(jnp.asarray(eta), jnp.array([0.5]))
    b = f(jnp.asarray(eta) + 0.1, jnp.array([1.5]))
    assert len(traces) == 1 and np.isfinite(a) and np.isfinite(b)


def test_fitted_is_the_inverse_link_without_E():
    eta = jnp.array([-1.0, 0.0, 2.0])
    lik = make_likelihood("poisson")
    np.testing.assert_allclose(np.asarray(lik.fitted(eta, jnp.zeros(0), {"E": jnp.full(3, 10.0)})), np.exp(eta))
    lik = make_likelihood("binomial", {"link": "probit"})
    np.testing.assert_allclose(np.asarray(lik.fitted(eta, jnp.zeros(0), {})), st.norm.cdf(eta), rtol=1e-14)


# --- R-INLA names and defaults ----------------------------------------------------------------
DEFAULTS = {
    # family: [(internal name, user name, prior, param, initial)]
    "gaussian": [("Log precision for the Gaussian observations", "Precision for the Gaussian observations", "loggamma", (1, 5e-5), 4.0)],
    "nbinomial": [("log size for the nbinomial observations (1/overdispersion)", "size for the nbinomial observations (1/overdispersion)", "pc.mgamma", (7,), np.log(10))],
    "gamma": [("Intern precision-parameter for the Gamma observations", "Precision-parameter for the Gamma observations", "loggamma", (1, 0.01), np.log(100))],
    "beta": [("intern precision-parameter for the beta observations", "precision parameter for the beta observations", "loggamma", (1, 0.1), np.log(10))],
    "betabinomial": [("intern overdispersion for the betabinomial observations", "overdispersion for the betabinomial observations", "normal", (0, 0.4), 0.0)],
    "zeroinflatedpoisson1": [("intern zero-probability parameter for zero-inflated poisson_1", "zero-probability parameter for zero-inflated poisson_1", "normal", (-1, 0.2), -1.0)],
    "t": [
        ("log precision for the student-t observations", "precision for the student-t observations", "loggamma", (1, 5e-5), 0.0),
        ("dof_intern for student-t", "degrees of freedom for student-t", "pc.dof", (15, 0.5), 5.0),
    ],
    "lognormal": [("Log precision for the lognormal observations", "Precision for the lognormal observations", "loggamma", (1, 5e-5), 0.0)],
    "weibullsurv": [("alpha_intern for weibullsurv", "alpha parameter for weibullsurv", "pc.alphaw", (5,), -2.0)],
}


@pytest.mark.parametrize("family", sorted(DEFAULTS))
def test_default_hyperparameters(family):
    hyper = make_likelihood(family).hyperparameters
    assert len(hyper) == len(DEFAULTS[family])
    for h, (iname, name, prior, param, initial) in zip(hyper, DEFAULTS[family]):
        assert (h.internal_name, h.name) == (iname, name)
        assert type(h.prior) is type(make_prior(prior, param))
        np.testing.assert_allclose(h.prior.param, param)
        assert h.initial == pytest.approx(initial) and not h.fixed


def test_families_without_hyperparameters():
    for family in ("poisson", "binomial", "exponential", "exponentialsurv"):
        assert make_likelihood(family).n_theta == 0


@pytest.mark.parametrize("case,family", [("nbinomial_iid", "nbinomial"), ("weibull_surv", "weibullsurv")])
def test_names_and_priors_match_rinla_reference(case, family):
    res = json.loads(shared_path("reference", "rinla", case, "results.json").read_text())
    spec = json.loads(shared_path("reference", "rinla", case, "spec.json").read_text())
    lik = make_likelihood(family)
    h = lik.hyperparameters[0]
    assert h.internal_name == res["internal_summary_hyperpar"]["name"][0]
    assert h.name == res["summary_hyperpar"]["name"][0]
    used = next(p for p in spec["priors_used_all"] if p["section"] == "family" and p["hyper"] == "theta1")
    assert h.prior.name == used["prior"]
    np.testing.assert_allclose(h.prior.param, used["param"])
    # the user-scale transform reproduces R-INLA's summaries from its internal ones
    internal = np.asarray(res["internal_summary_hyperpar"]["0.5quant"][0])
    assert float(h.to_user(internal)) == pytest.approx(res["summary_hyperpar"]["0.5quant"][0], rel=1e-6)


# --- control_family ---------------------------------------------------------------------------
def test_control_family_overrides_prior_initial_fixed():
    lik = make_likelihood(
        "gaussian", {"hyper": {"prec": {"prior": "pc.prec", "param": (1, 0.01), "initial": 2.0, "fixed": True}}}
    )
    h = lik.hyperparameters[0]
    assert h.prior.name == "pc.prec" and tuple(h.prior.param) == (1.0, 0.01)
    assert h.initial == 2.0 and h.fixed
    np.testing.assert_allclose(lik.initial_theta(), [2.0])


def test_control_family_aliases_and_dotted_keys():
    a = make_likelihood("gaussian", {"hyper": {"theta1": {"initial": 1.5}}})
    assert a.hyperparameters[0].initial == 1.5
    b = make_likelihood("nbinomial", {"hyper": {"theta": {"prior": "loggamma", "param": [1, 1]}}})
    assert b.hyperparameters[0].prior.name == "loggamma"
    c = make_likelihood("binomial", {"control.link": {"model": "cloglog"}})
    assert c.link.name == "cloglog"
    d = make_likelihood("t", {"hyper": {"dof": {"fixed": True, "initial": 3.0}, "theta1": {"initial": -1.0}}})
    assert [h.initial for h in d.hyperparameters] == [-1.0, 3.0] and d.hyperparameters[1].fixed
    e = make_likelihood("zeroinflatednbinomial1", {"hyper": {"prob": {"param": (0, 1)}}})
    np.testing.assert_allclose(e.hyperparameters[1].prior.param, (0, 1))
    # a new prior without param takes that prior's own default parameters
    f = make_likelihood("nbinomial", {"hyper": {"size": {"prior": "pc.mgamma"}}})
    assert f.hyperparameters[0].prior.param == (7.0,)
    assert make_likelihood("normal").family == "gaussian"
    assert make_likelihood("Poisson").family == "poisson"


@pytest.mark.parametrize(
    "family,control,words",
    [
        ("gaussian", {"hyperr": {}}, ['"hyperr"', "hyper", "link", "variant"]),
        ("gaussian", {"hyper": {"precision": {}}}, ['"precision"', "prec", "theta1"]),
        ("gaussian", {"hyper": {"prec": {"priro": "loggamma"}}}, ['"priro"', "prior", "param", "initial", "fixed"]),
        ("binomial", {"link": "identity"}, ['"identity"', "logit", "probit", "cloglog"]),
        ("nbinomial", {"variant": 5}, ["variant 5", "0, 1, 2"]),
        ("weibullsurv", {"hyper": {"alpha": {"to.theta": "x"}}}, ['"to_theta"', "initial"]),
    ],
)
def test_control_family_errors_list_valid_choices(family, control, words):
    with pytest.raises(ControlError) as err:
        make_likelihood(family, control)
    for w in words:
        assert w in str(err.value)


def test_unknown_prior_and_family_list_valid_names():
    with pytest.raises(PriorError) as err:
        make_likelihood("nbinomial", {"hyper": {"size": {"prior": "pc.mgama", "param": 7}}})
    assert '"pc.mgama"' in str(err.value) and "pc.mgamma" in str(err.value)
    with pytest.raises(ModelError) as err:
        make_likelihood("poison")
    msg = str(err.value)
    assert '"poison"' in msg and "poisson" in msg and "weibullsurv" in msg and "zeroinflatednbinomial1" in msg
    assert set(FAMILIES) <= set(msg.replace(",", " ").replace(".", " ").split())


# --- family priors ----------------------------------------------------------------------------
def _prior(name, param):
    p = make_prior(name, param)
    f = jax.jit(p.log_density)
    return p, (lambda t: float(f(jnp.float64(t))))


def test_pc_gamma_and_pc_mgamma_against_definition():
    lam = 2.5
    _, lg = _prior("pc.gamma", lam)
    _, lm = _prior("pc.mgamma", lam)

    def r_dgamma(a):  # R's inla.pc.dgamma(x = a, lambda, log = TRUE)
        inv = 1.0 / a
        d = np.sqrt(2 * (np.log(inv) - sps.digamma(inv)))
        return -lam * d - np.log(d) + np.log(lam) - 2 * np.log(a) + np.log(sps.polygamma(1, inv) - a)

    for log_a in (-6.0, -2.0, -0.3, 0.0, 0.7, 2.0):
        assert lg(log_a) == pytest.approx(r_dgamma(np.exp(log_a)) + log_a, rel=1e-9)
        # pc.mgamma on θ = log size is pc.gamma on log a = −θ
        assert lm(-log_a) == pytest.approx(lg(log_a), rel=1e-12)
    # large size: asymptotic branch continuous with the direct one
    assert lm(np.log(1e4) - 1e-9) == pytest.approx(lm(np.log(1e4) + 1e-9), rel=1e-6)
    total, _ = si.quad(lambda t: np.exp(lm(t)), -30, 60, points=[0.0, 5.0, 15.0], limit=400)
    assert total == pytest.approx(1.0, abs=2e-6)


def test_pc_dof_against_quadrature_kld_and_its_tail_probability():
    u, alpha = 15.0, 0.5
    p, lp = _prior("pc.dof", (u, alpha))

    def kld_quad(nu):
        s = np.sqrt((nu - 2) / nu)
        f = lambda x: st.t.pdf(x, nu, scale=s) * (st.t.logpdf(x, nu, scale=s) - st.norm.logpdf(x))  # noqa: E731
        return si.quad(f, -np.inf, np.inf, limit=200)[0]

    for nu in (2.5, 4.0, 9.0, 30.0, 200.0):
        assert float(student_t_kld(nu)) == pytest.approx(kld_quad(nu), rel=1e-7)
    # the density on θ = log(ν − 2) from the quadrature distance and finite differences
    dist = lambda nu: np.sqrt(2 * kld_quad(nu))  # noqa: E731
    lam = -np.log(alpha) / dist(u)
    for theta in (-1.0, 0.5, 2.0, 4.0):
        nu, h = 2 + np.exp(theta), 1e-3 * (2 + np.exp(theta) - 2)
        dd = (dist(nu + h) - dist(nu - h)) / (2 * h)
        assert lp(theta) == pytest.approx(np.log(lam) - lam * dist(nu) + np.log(abs(dd)) + theta, abs=1e-5)
    total, _ = si.quad(lambda t: np.exp(lp(t)), -15, 40, points=[0.0, 2.6, 10.0], limit=400)
    below, _ = si.quad(lambda t: np.exp(lp(t)), -15, np.log(u - 2), limit=400)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert below == pytest.approx(alpha, abs=1e-6)  # P(ν < u) = α


def test_pc_alphaw_is_rinla_value_of_the_published_prior():
    lam = 5.0
    p, lp = _prior("pc.alphaw", lam)

    def dist(log_alpha):  # R's inla.pc.alphaw.cache()$dist
        a = np.exp(log_alpha)
        kld = (sps.gamma((1 + a) / a) * a + a * log_alpha - a * np.euler_gamma + np.euler_gamma - a) / a
        return np.sqrt(2 * kld)

    def r_dalphaw(a):  # R's inla.pc.dalphaw(alpha, lambda, log = TRUE), derivative by finite differences
        la, h = np.log(a), 1e-5
        dd = (dist(la + h) - dist(la - h)) / (2 * h)
        return np.log(0.5) + np.log(lam) - lam * dist(la) + np.log(abs(dd)) - la

    for theta in (-8.0, -2.0, 0.5, 3.0, 9.0):
        a = np.exp(WEIBULL_ALPHA_SCALE * theta)
        expected = r_dalphaw(a) + np.log(WEIBULL_ALPHA_SCALE * a) + p.r_inla_offset
        assert lp(theta) == pytest.approx(expected, abs=1e-7)
    # across the kink at α = 1 the Taylor branch matches the direct one
    assert lp(-0.0101) == pytest.approx(lp(-0.0099), abs=1e-3)
    assert np.isfinite(float(jax.grad(p.log_density)(jnp.float64(0.0))))
    f = lambda t: np.exp(lp(t) - p.r_inla_offset)  # noqa: E731
    total, _ = si.quad(f, -150, 150, points=[0.0], limit=400)
    lower, _ = si.quad(f, -150, 0.0, limit=400)
    assert total == pytest.approx(1.0, abs=1e-6)
    assert lower == pytest.approx(0.5, abs=1e-6)  # half the mass below the base model α = 1


def test_prior_gradients_are_finite_over_a_wide_range():
    for name, param in (("pc.mgamma", 7.0), ("pc.gamma", 1.0), ("pc.dof", (15, 0.5)), ("pc.alphaw", 5.0)):
        p = make_prior(name, param)
        g = jax.vmap(jax.grad(p.log_density))(jnp.linspace(-6.0, 12.0, 37))
        assert np.all(np.isfinite(np.asarray(g))), name
