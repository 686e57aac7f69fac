"""End-to-end recovery of every likelihood family through ``adelia.inla`` (issue 6).

Each test simulates data with numpy (fixed seed, known parameters) from the family in
R-INLA's parametrisation — written out independently of adelia in the simulators below —
fits ``y ~ 1 + x + f(g, model="iid")`` (or ``y ~ 1 + x`` where an iid term would make a
family hyperparameter weakly identified or the fit slow), and checks that every true value
lies inside its 95% posterior interval [0.025quant, 0.975quant]: the fixed effects
(``summary_fixed``), each family hyperparameter on the user scale (``summary_hyperpar``)
and the precision of the iid effect.

A correct implementation misses a 95% interval one time in twenty by chance; the seeds are
fixed, and the sample sizes make posterior sds small enough that a wrong parametrisation
(a precision read as a variance, a size as 1/size, a shape on the wrong scale, a flipped
link) is far outside. The last tests check that data outside a family's support reach the
user as a DataError naming the family, the row and the value.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize as so
import scipy.special as sps
import scipy.stats as st

import adelia
from adelia.errors import DataError
from adelia.likelihoods import make_likelihood

N_GROUPS = 25
PREC_IID = 4.0  # precision of the iid group effect (sd 0.5)
PREC_IID_NAME = "Precision for g"


# ------------------------------------------------------------------------------------------
# design and checks
# ------------------------------------------------------------------------------------------


def design(seed: int, n: int, beta: tuple[float, float], iid: bool = True):
    """(rng, data dict with x and g, linear predictor η = β0 + β1 x [+ u_g])."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    g = np.arange(n) % N_GROUPS
    eta = beta[0] + beta[1] * x
    if iid:
        u = rng.normal(0.0, 1.0 / np.sqrt(PREC_IID), N_GROUPS)
        # centred realisation: the intercept is then β0 itself rather than β0 + ū, whose
        # chance offset (sd 0.1) would dominate the intercept's interval
        eta = eta + (u - u.mean())[g]
    return rng, {"x": x, "g": g}, eta


def assert_covers(res, beta, hyper: dict[str, float], iid: bool = True):
    """Every true value inside its 95% posterior interval; the message lists all misses."""
    rows = [(res.summary_fixed, "(Intercept)", beta[0]), (res.summary_fixed, "x", beta[1])]
    rows += [(res.summary_hyperpar, name, value) for name, value in hyper.items()]
    if iid:
        rows.append((res.summary_hyperpar, PREC_IID_NAME, PREC_IID))
    misses = []
    for table, name, truth in rows:
        assert name in table.index, f"{name!r} is not a row of {list(table.index)}"
        lo, hi = table.loc[name, "0.025quant"], table.loc[name, "0.975quant"]
        assert np.isfinite(lo) and np.isfinite(hi) and lo < hi, (name, lo, hi)
        if not lo <= truth <= hi:
            misses.append(f"{name}: truth {truth:g} outside [{lo:.4g}, {hi:.4g}] (mean {table.loc[name, 'mean']:.4g})")
    expected_hyper = len(hyper) + (1 if iid else 0)
    assert len(res.summary_hyperpar) == expected_hyper, list(res.summary_hyperpar.index)
    assert not misses, "; ".join(misses)


def fit(formula, data, family, **kw):
    return adelia.inla(formula, data, family=family, **kw)


IID_FORMULA = "y ~ 1 + x + f(g, model='iid')"
FIXED_FORMULA = "y ~ 1 + x"


# ------------------------------------------------------------------------------------------
# simulators in R-INLA's parametrisations (numpy only)
# ------------------------------------------------------------------------------------------


def inverse_link(name: str, eta):
    return {
        "logit": sps.expit(eta),
        "probit": sps.ndtr(eta),
        "cloglog": -np.expm1(-np.exp(eta)),  # 1 − exp(−exp(η))
        "loglog": np.exp(-np.exp(-eta)),  # exp(−exp(−η))
    }[name]


def zero_truncated_poisson(rng, mu):
    """Poisson(μ) conditioned on y > 0, by inversion of the truncated cdf."""
    f0 = np.exp(-mu)
    u = f0 + rng.uniform(size=mu.shape) * (1.0 - f0)
    # smallest y with F(y) ≥ u; F(y) = Q(y + 1, μ)
    y = np.ones_like(mu)
    while True:
        below = sps.gammaincc(y + 1.0, mu) < u
        if not below.any():
            return y
        y = y + below


# ------------------------------------------------------------------------------------------
# continuous families
# ------------------------------------------------------------------------------------------


def test_gaussian_recovers():
    beta, prec = (1.0, 0.5), 4.0
    rng, data, eta = design(1, 500, beta)
    data["y"] = eta + rng.normal(size=eta.size) / np.sqrt(prec)
    res = fit(IID_FORMULA, data, "gaussian")
    assert_covers(res, beta, {"Precision for the Gaussian observations": prec})


def test_gaussian_scale_recovers():
    # scale s_i: precision τ s_i
    beta, prec = (1.0, 0.5), 4.0
    rng, data, eta = design(2, 400, beta, iid=False)
    s = rng.choice([0.5, 1.0, 4.0], size=eta.size)
    data["y"] = eta + rng.normal(size=eta.size) / np.sqrt(prec * s)
    data["s"] = s
    res = fit(FIXED_FORMULA, data, "gaussian", scale="s")
    assert_covers(res, beta, {"Precision for the Gaussian observations": prec}, iid=False)


def test_gamma_recovers():
    # mean μ = exp(η), precision φ: shape φ, scale μ/φ
    beta, phi = (0.5, 0.3), 5.0
    rng, data, eta = design(3, 500, beta)
    data["y"] = rng.gamma(phi, np.exp(eta) / phi)
    res = fit(IID_FORMULA, data, "gamma")
    assert_covers(res, beta, {"Precision-parameter for the Gamma observations": phi})


def test_beta_recovers():
    # mean μ = expit(η), precision φ: a = μφ, b = (1 − μ)φ
    beta, phi = (-0.3, 0.6), 10.0
    rng, data, eta = design(4, 500, beta)
    mu = sps.expit(eta)
    data["y"] = rng.beta(mu * phi, (1.0 - mu) * phi)
    res = fit(IID_FORMULA, data, "beta")
    assert_covers(res, beta, {"precision parameter for the beta observations": phi})


def test_student_t_recovers():
    # (y − η)·√(τ ν/(ν − 2)) ~ t_ν: unit-variance t noise scaled by 1/√τ
    beta, prec, dof = (1.0, 0.5), 4.0, 5.0
    rng, data, eta = design(5, 1000, beta, iid=False)
    noise = rng.standard_t(dof, size=eta.size) * np.sqrt((dof - 2.0) / dof)
    data["y"] = eta + noise / np.sqrt(prec)
    res = fit(FIXED_FORMULA, data, "t")
    assert_covers(
        res, beta, {"precision for the student-t observations": prec, "degrees of freedom for student-t": dof}, iid=False
    )


def test_lognormal_recovers():
    beta, prec = (0.2, 0.5), 4.0
    rng, data, eta = design(6, 500, beta)
    data["y"] = np.exp(eta + rng.normal(size=eta.size) / np.sqrt(prec))
    res = fit(IID_FORMULA, data, "lognormal")
    assert_covers(res, beta, {"Precision for the lognormal observations": prec})


def test_exponential_recovers():
    # rate λ = exp(η)
    beta = (0.3, 0.5)
    rng, data, eta = design(7, 500, beta)
    data["y"] = rng.exponential(1.0 / np.exp(eta))
    res = fit(IID_FORMULA, data, "exponential")
    assert_covers(res, beta, {})


def weibull_times(rng, eta, alpha):
    """Variant 0: h(t) = α t^(α−1) exp(η), S(t) = exp(−exp(η) t^α) → T = (E/λ)^(1/α)."""
    return (rng.exponential(size=eta.size) / np.exp(eta)) ** (1.0 / alpha)


def test_weibull_recovers():
    beta, alpha = (0.3, 0.5), 1.5
    rng, data, eta = design(8, 500, beta)
    data["y"] = weibull_times(rng, eta, alpha)
    res = fit(IID_FORMULA, data, "weibull")
    assert_covers(res, beta, {"alpha parameter for weibull": alpha})


# ------------------------------------------------------------------------------------------
# counts
# ------------------------------------------------------------------------------------------


def test_poisson_recovers_with_exposure():
    beta = (0.5, 0.3)
    rng, data, eta = design(9, 500, beta)
    E = rng.uniform(0.5, 2.0, size=eta.size)
    data["y"] = rng.poisson(E * np.exp(eta)).astype(float)
    data["E"] = E
    res = fit(IID_FORMULA, data, "poisson", E="E")
    assert_covers(res, beta, {})


@pytest.mark.parametrize(
    "link,beta,seed",
    [
        ("logit", (-0.5, 0.8), 10),
        ("probit", (-0.3, 0.5), 11),  # AD η-derivatives (logit has closed forms)
        pytest.param("cloglog", (-1.0, 0.5), 12, marks=pytest.mark.slow),
        pytest.param("loglog", (0.3, 0.5), 13, marks=pytest.mark.slow),
    ],
)
def test_binomial_recovers_with_each_link(link, beta, seed):
    rng, data, eta = design(seed, 500, beta)
    n_trials = rng.integers(1, 11, size=eta.size).astype(float)
    data["y"] = rng.binomial(n_trials.astype(int), inverse_link(link, eta)).astype(float)
    data["n"] = n_trials
    res = fit(IID_FORMULA, data, "binomial", Ntrials="n", control_family={"link": link})
    assert_covers(res, beta, {})


def test_nbinomial_recovers():
    # mean μ = E exp(η), size n: Var = μ + μ²/n; numpy's (n, p) with p = n/(n + μ)
    beta, size = (1.0, 0.4), 3.0
    rng, data, eta = design(14, 800, beta)
    mu = np.exp(eta)
    data["y"] = rng.negative_binomial(size, size / (size + mu)).astype(float)
    res = fit(IID_FORMULA, data, "nbinomial")
    assert_covers(res, beta, {"size for the nbinomial observations (1/overdispersion)": size})


def test_betabinomial_recovers():
    # p = expit(η), overdispersion ρ = 1/(a + b + 1): a = p(1 − ρ)/ρ, b = (1 − p)(1 − ρ)/ρ
    beta, rho = (-0.2, 0.5), 0.2
    rng, data, eta = design(15, 500, beta)
    p = sps.expit(eta)
    a, b = p * (1 - rho) / rho, (1 - p) * (1 - rho) / rho
    n_trials = np.full(eta.size, 20.0)
    data["y"] = rng.binomial(20, rng.beta(a, b)).astype(float)
    data["n"] = n_trials
    res = fit(IID_FORMULA, data, "betabinomial", Ntrials="n")
    assert_covers(res, beta, {"overdispersion for the betabinomial observations": rho})


def test_zeroinflatedpoisson0_recovers():
    # type 0 (hurdle): P(0) = p; y > 0 from the zero-truncated Poisson(exp(η))
    beta, p = (0.8, 0.4), 0.3
    rng, data, eta = design(16, 600, beta)
    positive = zero_truncated_poisson(rng, np.exp(eta))
    data["y"] = np.where(rng.uniform(size=eta.size) < p, 0.0, positive)
    res = fit(IID_FORMULA, data, "zeroinflatedpoisson0")
    assert_covers(res, beta, {"zero-probability parameter for zero-inflated poisson_0": p})


def test_zeroinflatedpoisson1_recovers():
    # type 1 (mixture): y = 0 with probability p, else Poisson(exp(η))
    beta, p = (0.8, 0.4), 0.25
    rng, data, eta = design(27, 600, beta)
    counts = rng.poisson(np.exp(eta)).astype(float)
    data["y"] = np.where(rng.uniform(size=eta.size) < p, 0.0, counts)
    res = fit(IID_FORMULA, data, "zeroinflatedpoisson1")
    assert_covers(res, beta, {"zero-probability parameter for zero-inflated poisson_1": p})


def test_zeroinflatednbinomial1_recovers():
    # type 1 mixture of a point mass at 0 (probability p) and NegBinomial(size, mean exp(η))
    beta, size, p = (1.0, 0.4), 3.0, 0.25
    rng, data, eta = design(18, 1000, beta, iid=False)
    mu = np.exp(eta)
    counts = rng.negative_binomial(size, size / (size + mu)).astype(float)
    data["y"] = np.where(rng.uniform(size=eta.size) < p, 0.0, counts)
    res = fit(FIXED_FORMULA, data, "zeroinflatednbinomial1")
    hyper = {
        "size for nbinomial_1 zero-inflated observations": size,
        "zero-probability parameter for zero-inflated nbinomial_1": p,
    }
    assert_covers(res, beta, hyper, iid=False)


# ------------------------------------------------------------------------------------------
# survival families with censoring (response inla.surv(time, event[, time2]))
# ------------------------------------------------------------------------------------------


def right_censor(rng, t, rate):
    """(observed time, event) with independent Exp(rate) censoring."""
    c = rng.exponential(1.0 / rate, size=t.size)
    return np.minimum(t, c), (t <= c).astype(float)


SURV_FORMULA = "inla.surv(time, event) ~ 1 + x + f(g, model='iid')"


def test_exponentialsurv_right_censored_recovers():
    beta = (0.3, 0.5)
    rng, data, eta = design(19, 600, beta)
    t = rng.exponential(1.0 / np.exp(eta))
    data["time"], data["event"] = right_censor(rng, t, 0.5)
    assert 0.2 < 1 - data["event"].mean() < 0.5  # a real share of censored rows
    res = fit(SURV_FORMULA, data, "exponentialsurv")
    assert_covers(res, beta, {})


def test_weibullsurv_right_censored_recovers():
    beta, alpha = (0.3, 0.5), 1.5
    rng, data, eta = design(20, 600, beta)
    t = weibull_times(rng, eta, alpha)
    data["time"], data["event"] = right_censor(rng, t, 0.4)
    assert 0.2 < 1 - data["event"].mean() < 0.5
    res = fit(SURV_FORMULA, data, "weibullsurv")
    assert_covers(res, beta, {"alpha parameter for weibullsurv": alpha})


def mixed_censoring(rng, t, left_at: float, width: float, right_at: float):
    """R-INLA event codes for one data set with all four kinds of rows: t < left_at is left
    censored at left_at (2); t > right_at is right censored at right_at (0); of the rest,
    every other row is interval censored to its inspection interval of length ``width``
    (3, [time, time2]) and the others are observed (1)."""
    n = t.size
    time, time2, event = t.copy(), np.zeros(n), np.ones(n)
    interval = (np.arange(n) % 2 == 0) & (t >= left_at) & (t <= right_at)
    lo = np.floor(t / width) * width
    time[interval], time2[interval], event[interval] = lo[interval], lo[interval] + width, 3.0
    left, right = t < left_at, t > right_at
    time[left], event[left] = left_at, 2.0
    time[right], event[right] = right_at, 0.0
    return time, event, time2


def survival_dist(family: str, eta, hyper: float):
    """scipy.stats distribution of T given η in R-INLA's parametrisation (variant 0 Weibull:
    S(t) = exp(−exp(η) t^α); exponential rate exp(η); log T ~ N(η, 1/τ))."""
    if family == "weibullsurv":
        return st.weibull_min(c=hyper, scale=np.exp(-eta / hyper))
    if family == "exponentialsurv":
        return st.expon(scale=np.exp(-eta))
    return st.lognorm(s=1.0 / np.sqrt(hyper), scale=np.exp(eta))


def censored_mle(family: str, x, time, event, time2):
    """Maximum likelihood (β0, β1[, hyperparameter]) of the censored data with scipy.stats:
    log f (event 1), log S (0), log F (2), log(S(time) − S(time2)) (3)."""

    def nll(p):
        eta = p[0] + p[1] * x
        dist = survival_dist(family, eta, np.exp(p[2]) if p.size > 2 else None)
        with np.errstate(all="ignore"):
            ls1, ls2 = dist.logsf(time), dist.logsf(np.where(event == 3, time2, time))
            ll = np.select(
                [event == 1, event == 0, event == 2],
                [dist.logpdf(time), ls1, dist.logcdf(time)],
                ls1 + np.log(-np.expm1(ls2 - ls1)),
            )
        return -ll.sum() if np.all(np.isfinite(ll)) else np.inf

    start = np.zeros(2 if family == "exponentialsurv" else 3)
    opt = so.minimize(nll, start, method="Nelder-Mead", options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 4000})
    assert opt.success, opt.message
    return opt.x[:2], (np.exp(opt.x[2]) if opt.x.size > 2 else None)


MIXED_CENSORING = [
    ("weibullsurv", "alpha parameter for weibullsurv", 1.5),
    pytest.param("exponentialsurv", None, None, marks=pytest.mark.slow),
    pytest.param("lognormalsurv", "Precision for the lognormalsurv observations", 2.0, marks=pytest.mark.slow),
]


@pytest.mark.parametrize("family,hyper_name,hyper_value", MIXED_CENSORING)
def test_left_right_and_interval_censoring_recover(family, hyper_name, hyper_value):
    beta = (0.3, 0.5)
    rng, data, eta = design(22, 600, beta, iid=False)
    t = survival_dist(family, eta, hyper_value).rvs(random_state=rng)
    q = np.quantile(t, [0.15, 0.85])
    data["time"], data["event"], data["time2"] = mixed_censoring(rng, t, q[0], 0.25 * (q[1] - q[0]), q[1])
    counts = np.bincount(data["event"].astype(int), minlength=4)
    assert counts.min() >= 60, counts  # every kind of row is well represented
    res = fit("inla.surv(time, event, time2) ~ 1 + x", data, family)
    hyper = {} if hyper_name is None else {hyper_name: hyper_value}
    assert_covers(res, beta, hyper, iid=False)
    # a sharper oracle than coverage: the posterior sits on the independent censored MLE
    # (flat/vague priors, n = 600), within half a posterior sd
    beta_mle, hyper_mle = censored_mle(family, data["x"], data["time"], data["event"], data["time2"])
    post = res.summary_fixed.loc[["(Intercept)", "x"]]
    np.testing.assert_array_less(np.abs(post["mean"].to_numpy() - beta_mle), 0.5 * post["sd"].to_numpy())
    if hyper_name is not None:
        row = res.summary_hyperpar.loc[hyper_name]
        assert abs(row["mean"] - hyper_mle) < 0.5 * row["sd"], (row["mean"], hyper_mle, row["sd"])


# ------------------------------------------------------------------------------------------
# bad input reaching the user: DataError naming the family, the row and the value
# ------------------------------------------------------------------------------------------


def _data(y, **extra):
    n = len(y)
    return {"y": np.asarray(y, dtype=float), "x": np.linspace(-1.0, 1.0, n), **extra}


@pytest.mark.parametrize(
    "family,y,kwargs,words",
    [
        ("poisson", [1, 0, 3, -2, 4, 1], {}, ['family "poisson"', "row 4", "y = -2"]),
        ("nbinomial", [1, 0, 3, 2, 4.5, 1], {}, ['family "nbinomial"', "row 5", "y = 4.5"]),
        ("zeroinflatedpoisson1", [0, 0, -1, 2, 4, 1], {}, ['family "zeroinflatedpoisson1"', "row 3", "y = -1"]),
        ("binomial", [1, 0, 3, 2, 1, 1], {"Ntrials": [2, 2, 2, 2, 2, 2]}, ['family "binomial"', "row 3", "y = 3"]),
        ("betabinomial", [1, 0, 1, -1, 1, 1], {"Ntrials": 3}, ['family "betabinomial"', "row 4", "y = -1"]),
        ("beta", [0.2, 0.5, 1.0, 0.3, 0.4, 0.6], {}, ['family "beta"', "row 3", "y = 1"]),
        ("beta", [0.2, -0.1, 0.5, 0.3, 0.4, 0.6], {}, ['family "beta"', "row 2", "y = -0.1"]),
        ("gamma", [1.0, 2.0, 0.5, 0.0, 1.0, 3.0], {}, ['family "gamma"', "row 4", "y = 0"]),
        ("lognormal", [1.0, 2.0, -0.5, 1.0, 1.0, 3.0], {}, ['family "lognormal"', "row 3", "y = -0.5"]),
        ("exponential", [1.0, 2.0, 0.5, 1.0, 1.0, -3.0], {}, ['family "exponential"', "row 6", "y = -3"]),
        ("weibull", [0.0, 2.0, 0.5, 1.0, 1.0, 3.0], {}, ['family "weibull"', "row 1", "y = 0"]),
        ("poisson", [1, 0, 3, 2, 4, 1], {"E": [1, 1, 1, -1, 1, 1]}, ['family "poisson"', "row 4", "E = -1"]),
    ],
)
def test_out_of_support_data_raise_through_inla(family, y, kwargs, words):
    with pytest.raises(DataError) as err:
        adelia.inla(FIXED_FORMULA, _data(y), family=family, **kwargs)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_survival_time_zero_for_an_event_raises_through_inla():
    data = _data([1.0] * 5, time=np.array([1.0, 2.0, 0.0, 1.5, 3.0]), event=np.ones(5))
    with pytest.raises(DataError) as err:
        adelia.inla("inla.surv(time, event) ~ 1 + x", data, family="weibullsurv")
    for w in ['family "weibullsurv"', "row 3", "time = 0"]:
        assert w in str(err.value)


def test_negative_survival_time_raises_through_inla():
    data = _data([1.0] * 5, time=np.array([1.0, 2.0, 1.0, -1.5, 3.0]), event=np.ones(5))
    with pytest.raises(DataError) as err:
        adelia.inla("inla.surv(time, event) ~ 1 + x", data, family="exponentialsurv")
    for w in ["row 4", "time = -1.5"]:
        assert w in str(err.value)


def test_negative_survival_time_error_names_the_family():
    data = _data([1.0] * 5, time=np.array([1.0, 2.0, 1.0, -1.5, 3.0]), event=np.ones(5))
    with pytest.raises(DataError, match='family "exponentialsurv"'):
        adelia.inla("inla.surv(time, event) ~ 1 + x", data, family="exponentialsurv")


def test_validate_names_the_user_row_of_a_subset():
    # the hook model.compile needs: validate(y[rows], data, rows=rows) names the data row
    y = np.array([1.0, np.nan, 2.0, -1.0, np.nan, -3.0])
    rows = np.flatnonzero(~np.isnan(y))
    with pytest.raises(DataError, match=r"row 4: y = -1 .*\(1 more rows like it: 6\)"):
        make_likelihood("poisson").validate(y[rows], {}, rows=rows)
    with pytest.raises(DataError, match="row 3: y = -1"):  # without rows: position in the subset
        make_likelihood("poisson").validate(y[rows], {})
    lik = make_likelihood("weibullsurv")
    with pytest.raises(DataError, match="row 7: time = 0"):
        lik.validate(np.array([1.0, 0.0]), {"event": np.array([1.0, 1.0])}, rows=np.array([2, 6]))
    lik.validate(np.array([1.0, 2.0]), {"event": np.array([1.0, 1.0])})  # the rows do not stick


def test_row_number_counts_missing_responses():
    # data row 5 holds the bad value; rows 3 and 4 are NA (predictions)
    y = [1.0, 2.0, np.nan, np.nan, -1.0, 3.0]
    with pytest.raises(DataError, match="row 5: y = -1"):
        adelia.inla(FIXED_FORMULA, _data(y), family="poisson")
