"""Linear combinations (``adelia.make_lincomb(s)``, ``lincomb=``; adelia.inference.lincomb).

Oracles:
* dense algebra at every design point: Σ_k = Q_c(θ_k)⁻¹ by ``numpy.linalg.inv``, conditioned on
  C x = 0 by the textbook formula Σ − Σ Cᵀ (C Σ Cᵀ)⁻¹ C Σ, the combination vectors written out by
  hand (fixed effects, rw1 nodes, a copy term scaled by its estimated β, Predictor rows through
  A(θ)), mixed over the design with R-INLA's weights;
* the linear predictor's own marginal (a combination on one Predictor row is that row);
* joint posterior samples (``posterior_sample``) within Monte Carlo error;
* R-INLA's reference fit lincomb_seeds (also run in test_rinla_reference.py), and its printed
  summary.txt for the "Linear combinations (derived):" block;
* classic mode: the simplified-Laplace means x*_i + σ_i γ₁_i by dense algebra, and the Laplace
  densities' means by quadrature of their pdf.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from conftest import shared_path

import adelia
from adelia.errors import ModelError
from adelia.inference import lincomb as lcmod
from adelia.inference.design import prune_probabilities
from adelia.inference.summaries import Mixture


# --------------------------------------------------------------------------------------------
# make_lincomb / make_lincombs: R-INLA's semantics
# --------------------------------------------------------------------------------------------


def test_make_lincomb_skips_na_and_keeps_scalars():
    lc = adelia.make_lincomb({"(Intercept)": 1}, x1=-2.5, plate=[np.nan, None, 3.0, float("nan"), -1])
    terms = {e: (p, w) for e, p, w in lc.terms}
    assert terms["(Intercept)"][0] is None and terms["(Intercept)"][1].tolist() == [1.0]
    assert terms["x1"][1].tolist() == [-2.5]
    assert terms["plate"][0].tolist() == [2, 4] and terms["plate"][1].tolist() == [3.0, -1.0]
    assert repr(lc) == "<LinComb: (Intercept)=1, x1=-2.5, plate=[3:3, 5:-1]>"


def test_make_lincombs_one_per_row_named_as_rinla():
    lcs = adelia.make_lincombs(**{"(Intercept)": np.ones(3)}, plate=np.array([[1, np.nan], [np.nan, 2], [np.nan, np.nan]]))
    assert list(lcs) == ["lc1", "lc2", "lc3"]
    assert [e for e, _, _ in lcs["lc3"].terms] == ["(Intercept)"]  # an all-NA row of a matrix adds nothing
    p, w = lcs["lc2"].terms[1][1:]
    assert p.tolist() == [1] and w.tolist() == [2.0]
    # R-INLA's inla.num: zero-padded to the width of n
    assert list(adelia.make_lincombs(x1=np.arange(12.0)))[:2] == ["lc01", "lc02"]


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: adelia.make_lincomb(), ["at least one effect"]),
        (lambda: adelia.make_lincomb(x1=np.nan), ["x1", "NA"]),
        (lambda: adelia.make_lincomb(x1="a"), ["x1", "numbers"]),
        (lambda: adelia.make_lincomb(plate=np.ones((2, 2))), ["plate", "make_lincombs"]),
        (lambda: adelia.make_lincombs(x1=np.ones(3), x2=np.ones(4)), ["x2", "4 rows", "3"]),
        (lambda: adelia.make_lincombs(x1=np.array([1.0, np.nan])), ["combination 2", "no entries"]),
    ],
)
def test_bad_lincomb_arguments_are_named(call, words):
    with pytest.raises(ModelError) as err:
        call()
    for w in words:
        assert w in str(err.value)


@pytest.fixture(scope="module")
def seeds():
    return adelia.datasets.load("Seeds")


def _compile_seeds(seeds, lincomb):
    return adelia.compile("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n", lincomb=lincomb)


def test_unknown_effect_names_the_valid_ones(seeds):
    with pytest.raises(ModelError) as err:
        _compile_seeds(seeds, {"mine": adelia.make_lincomb(x3=1, x1=1)})
    msg = str(err.value)
    assert "'mine'" in msg and '"x3"' in msg
    for name in ("(Intercept)", "x1", "x2", "plate", "Predictor"):
        assert name in msg


def test_vector_beyond_the_term_is_named(seeds):
    with pytest.raises(ModelError) as err:
        _compile_seeds(seeds, [adelia.make_lincomb(plate=np.ones(22))])
    msg = str(err.value)
    assert "'lc1'" in msg and "'plate' has 21 nodes" in msg and "position 22" in msg
    with pytest.raises(ModelError, match="fixed effect 'x1' has one coefficient"):
        _compile_seeds(seeds, [adelia.make_lincomb(x1=[np.nan, 1.0])])
    with pytest.raises(ModelError, match="unique"):
        _compile_seeds(seeds, [adelia.make_lincomb(x1=1), adelia.make_lincomb(x2=1)] + [adelia.make_lincombs(lc1=[1.0])["lc1"]])


def test_names_by_position_and_resolution(seeds):
    m = _compile_seeds(seeds, [adelia.make_lincomb(x1=1), adelia.make_lincomb(plate=[np.nan, 2.0], x1=1, x2=-1)])
    d = m.lincombs
    assert d.names == ("lc1", "lc2")
    L = d.latent[0].toarray()
    g = m.graph
    x1, x2, plate = g.block("x1").start, g.block("x2").start, g.block("plate").start
    want = np.zeros((2, g.n_latent))
    want[0, x1] = 1
    want[1, [plate + 1, x1, x2]] = [2, 1, -1]
    np.testing.assert_array_equal(L, want)
    assert d.obs is None and d.rows is None


# --------------------------------------------------------------------------------------------
# the computation against dense algebra at each design point
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gaussian_fit():
    """y ~ 1 + x + f(t, rw1) + f(t2, copy="t", β estimated), offset: constraints (rw1 sum to
    zero), a θ-dependent copy scaling and a Predictor with an offset all enter."""
    rng = np.random.default_rng(3)
    n, m = 60, 12
    t = rng.integers(1, m + 1, n)
    t2 = np.clip(t + 1, 1, m)
    x = rng.normal(size=n)
    f = np.cumsum(rng.normal(scale=0.3, size=m))
    off = rng.normal(scale=0.2, size=n)
    y = 0.5 + 0.8 * x + f[t - 1] + 0.6 * f[t2 - 1] + off + rng.normal(scale=0.3, size=n)
    df = pd.DataFrame({"y": y, "x": x, "t": t, "t2": t2, "off": off})
    pred = np.full(n, np.nan)
    pred[[2, 7]] = [1.0, -1.0]
    lincomb = {
        "beta_sum": adelia.make_lincomb({"(Intercept)": 1}, x=2),
        "contrast": adelia.make_lincomb(t=[-1, np.nan, np.nan, np.nan, 1]),
        "copy_node": adelia.make_lincomb(t2=[np.nan, np.nan, 1.0], x=0.5),
        "pred_diff": adelia.make_lincomb(Predictor=pred),
        "pred_row3": adelia.make_lincomb(Predictor=np.r_[np.nan, np.nan, 1.0]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla(
            "y ~ 1 + x + f(t, model='rw1') + f(t2, copy='t', hyper=list(beta=list(fixed=FALSE)))",
            df, offset="off", lincomb=lincomb, control_predictor={"compute": True},
            control_inla={"lincomb.derived.correlation.matrix": True},
        )
    return res


def _oracle_vectors(res, k):
    """The combination vectors a_j(θ_k) (rows) and constants c_j, written out by hand."""
    m, g = res.model, res.model.graph
    th = res.posterior.points.theta_full[k]
    n = g.n_latent
    t, i0, xs = g.block("t").start, g.block("(Intercept)").start, g.block("x").start
    beta = th[g.copies[0].theta_index]
    A = g.a_matrix(th).toarray()
    off = np.asarray(m.observations.offset)
    a = np.zeros((5, n))
    c = np.zeros(5)
    a[0, [i0, xs]] = [1, 2]
    a[1, [t, t + 4]] = [-1, 1]
    a[2, t + 2] = beta  # a copy is β × its source's nodes
    a[2, xs] = 0.5
    a[3] = A[2] - A[7]
    c[3] = off[2] - off[7]
    a[4] = A[2]
    c[4] = off[2]
    return a, c


def test_per_point_moments_and_covariance_equal_dense_algebra(gaussian_fit):
    res = gaussian_fit
    post, g = res.posterior, res.model.graph
    lc = post.lincomb
    assert lc.names == ("beta_sum", "contrast", "copy_node", "pred_diff", "pred_row3")
    Cc = np.asarray(g.constraints.C)
    p_cov = prune_probabilities(post.probabilities, 0.999)
    np.testing.assert_array_equal(lc.points, np.flatnonzero(p_cov > 0))
    cov = np.zeros((5, 5))
    assert res.model.layout.hyperparameters[0].internal_name == "Log precision for the Gaussian observations"
    for j, k in enumerate(lc.points):
        th = post.points.theta_full[k]
        # Q_c = Q(θ) + Aᵀ τ A (Gaussian observations, unit weights), dense
        Q = np.asarray(g.prior_matvec(g.prior_values(jnp.asarray(th)), jnp.eye(g.n_latent)))
        A = g.a_matrix(th).toarray()
        S = np.linalg.inv(Q + np.exp(th[0]) * A.T @ A)
        S = S - S @ Cc.T @ np.linalg.solve(Cc @ S @ Cc.T, Cc @ S)  # conditioned on C x = 0
        a, c = _oracle_vectors(res, k)
        np.testing.assert_allclose(lc.mean[j], a @ post.points.mean[k] + c, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(lc.var[j], np.diag(a @ S @ a.T), rtol=1e-8, atol=1e-13)
        cov += p_cov[k] * (a @ S @ a.T)
    np.testing.assert_allclose(lc.covariance, cov, rtol=1e-8, atol=1e-13)
    corr = res.misc["lincomb.derived.correlation.matrix"]
    assert list(corr.index) == list(lc.names) and list(corr.columns) == list(lc.names)
    np.testing.assert_allclose(corr.to_numpy(), cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov))), rtol=1e-8)
    np.testing.assert_allclose(res.misc["lincomb.derived.covariance.matrix"].to_numpy(), cov, rtol=1e-8, atol=1e-13)


def test_summary_is_the_mixture_over_the_design(gaussian_fit):
    res = gaussian_fit
    lc = res.posterior.lincomb
    w = prune_probabilities(res.posterior.probabilities, 0.975)[lc.points]
    keep = w > 0
    oracle = Mixture(w[keep], lc.mean[keep], np.sqrt(lc.var[keep])).summary(res.quantiles)
    table = res.summary_lincomb_derived
    assert list(table.index) == list(lc.names)
    assert list(table.columns) == ["ID", "mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode", "kld"]
    assert table["ID"].tolist() == [1, 2, 3, 4, 5]
    for col in ("mean", "sd", "0.025quant", "0.5quant", "0.975quant", "mode"):
        np.testing.assert_allclose(table[col].to_numpy(), oracle[col], rtol=1e-9, atol=1e-12)
    # exact-mixture mean: Σ_k w_k a_k'μ̃_k
    np.testing.assert_allclose(Mixture(w[keep], lc.mean[keep], np.sqrt(lc.var[keep])).mean(), (w[keep, None] * lc.mean[keep]).sum(0), rtol=1e-12)
    marg = res.marginals_lincomb_derived
    assert list(marg) == list(lc.names)
    xs, ys = marg["contrast"]["x"].to_numpy(), marg["contrast"].to_numpy()
    assert np.all(np.diff(xs) > 0) and np.all(ys >= 0)
    assert abs(np.trapezoid(ys, xs) - 1) < 0.02


def test_a_predictor_row_is_the_linear_predictor(gaussian_fit):
    res = gaussian_fit
    lp = res.summary_linear_predictor.iloc[2]
    row = res.summary_lincomb_derived.loc["pred_row3"]
    for col in ("mean", "sd", "0.025quant", "0.5quant", "0.975quant"):
        assert row[col] == pytest.approx(lp[col], rel=1e-7, abs=1e-9)


def test_blocked_solves_equal_one_solve(gaussian_fit, monkeypatch):
    res = gaussian_fit
    model, post = res.model, res.posterior
    monkeypatch.setattr(lcmod, "BLOCK_NUMBERS", 2 * model.graph.n_latent)  # blocks of 2 combinations
    monkeypatch.setattr(model, "_lincomb_fn", None)
    blocked = lcmod.lincomb_posterior(model, post.points, post.probabilities)
    monkeypatch.setattr(model, "_lincomb_fn", None)
    model.controls["control_inla"]["lincomb.derived.correlation.matrix"] = False
    try:
        diag_only = lcmod.lincomb_posterior(model, post.points, post.probabilities)
    finally:
        model.controls["control_inla"]["lincomb.derived.correlation.matrix"] = True
    np.testing.assert_allclose(blocked.covariance, post.lincomb.covariance, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(diag_only.var, post.lincomb.var, rtol=1e-10, atol=1e-14)
    assert diag_only.covariance is None


def test_no_lincomb_no_tables(gaussian_fit):
    res = adelia.InlaResult(gaussian_fit.model, dataclasses.replace(gaussian_fit.posterior, lincomb=None))
    assert res.summary_lincomb_derived is None and res.marginals_lincomb_derived is None
    assert res.misc["lincomb.derived.correlation.matrix"] is None


# --------------------------------------------------------------------------------------------
# against joint posterior samples (Monte Carlo) and R-INLA
# --------------------------------------------------------------------------------------------


def _seeds_lincombs():
    return {
        "lc1": adelia.make_lincomb({"(Intercept)": 1}, x1=1),
        "lc2": adelia.make_lincomb(x1=1, x2=-1),
        "lc3": adelia.make_lincomb({"(Intercept)": 1}, plate=[np.nan, np.nan, 1]),
    }


def test_lincombs_equal_the_functional_of_posterior_samples(seeds):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n", lincomb=_seeds_lincombs())
    n = 6000
    s = res.posterior_sample(n, seed=11)
    draws = {
        "lc1": s["(Intercept)"].to_numpy() + s["x1"].to_numpy(),
        "lc2": s["x1"].to_numpy() - s["x2"].to_numpy(),
        "lc3": s["(Intercept)"].to_numpy() + s["plate"].sel(plate_ID=3).to_numpy(),
    }
    lc = res.posterior.lincomb
    # the samples' mixture (all design points, probabilities as posterior_sample draws them)
    p = res.posterior.probabilities[lc.points]
    p = p / p.sum()
    exact = Mixture(p, lc.mean, np.sqrt(lc.var))
    table = res.summary_lincomb_derived
    for j, name in enumerate(lc.names):
        d = draws[name]
        sd = d.std()
        se_mean, se_sd = sd / np.sqrt(n), sd / np.sqrt(2 * n) * 1.5  # 1.5: heavier tails than Gaussian
        assert abs(d.mean() - exact.mean()[j]) < 4 * se_mean, name
        assert abs(sd - exact.sd()[j]) < 4 * se_sd, name
    # where the θ-mixture is nearly Gaussian (the fixed effects) R-INLA's summary (0.975-pruned,
    # spline-corrected) is the samples' too; lc3's heavy left tail is cut by that summary
    for name in ("lc1", "lc2"):
        d = draws[name]
        assert abs(d.mean() - table.loc[name, "mean"]) < 4 * d.std() / np.sqrt(n) + 0.01 * d.std(), name
        assert abs(d.std() / table.loc[name, "sd"] - 1) < 0.03, name


def test_lincomb_seeds_matches_rinla():
    d = shared_path("reference", "rinla", "lincomb_seeds")
    ref = json.loads((d / "results.json").read_text())
    df = pd.read_csv(d / "data.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("r ~ x1 + x2 + f(plate, model=\"iid\")", df, family="binomial", Ntrials="n", lincomb=_seeds_lincombs(),
                          control_inla={"lincomb.derived.correlation.matrix": True})
    lc = ref["summary_lincomb_derived"]
    table = res.summary_lincomb_derived
    assert list(table.index) == lc["name"] and table["ID"].tolist() == lc["ID"]
    assert list(table.columns) == [c for c in lc if c != "name"]
    for i, name in enumerate(lc["name"]):
        assert abs(table.loc[name, "mean"] - lc["mean"][i]) < 0.05 * lc["sd"][i], name
        assert abs(table.loc[name, "sd"] / lc["sd"][i] - 1) < 0.05, name
        for q in ("0.025quant", "0.5quant", "0.975quant"):
            assert abs(table.loc[name, q] - lc[q][i]) < 0.05 * lc["sd"][i], (name, q)
    names = ref["lincomb_derived_matrix_names"]
    corr = res.misc["lincomb.derived.correlation.matrix"].loc[names, names].to_numpy()
    np.testing.assert_allclose(corr, np.array(ref["lincomb_derived_correlation_matrix"]), atol=0.005)
    cov = res.misc["lincomb.derived.covariance.matrix"].loc[names, names].to_numpy()
    np.testing.assert_allclose(cov, np.array(ref["lincomb_derived_covariance_matrix"]), rtol=0.01)


def test_printed_summary_has_rinla_lincomb_block():
    """print(res.summary()): R-INLA's "Linear combinations (derived):" block (header, rows, ID)
    after the fixed effects, its numbers those of R-INLA's own printed summary of lincomb_seeds
    within the reference tolerance (plus the printed rounding)."""
    d = shared_path("reference", "rinla", "lincomb_seeds")
    rlines = (d / "summary.txt").read_text().splitlines()
    df = pd.read_csv(d / "data.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("r ~ x1 + x2 + f(plate, model=\"iid\")", df, family="binomial", Ntrials="n", lincomb=_seeds_lincombs())
    lines = str(res.summary()).splitlines()
    head = "Linear combinations (derived):"
    assert lines.index("Fixed effects:") < lines.index(head) < lines.index("Random effects:")

    def block(ls):
        i = ls.index(head)
        return ls[i + 1 : ls.index("", i)]

    ours, ref = block(lines), block(rlines)
    assert ours[0] == ref[0]  # "    ID   mean    sd 0.025quant 0.5quant 0.975quant   mode kld"
    assert len(ours) == len(ref)
    for a, b in zip(ours[1:], ref[1:]):
        va, vb = a.split(), b.split()
        assert va[:2] == vb[:2]  # name, ID
        x, y = np.array(va[2:], float), np.array(vb[2:], float)
        sd = y[1]
        np.testing.assert_allclose(x[[0, 2, 3, 4, 5]], y[[0, 2, 3, 4, 5]], atol=0.05 * sd + 0.0015)
        assert abs(x[1] / sd - 1) < 0.05 + 0.0015 / sd


def test_lincomb_derived_only_is_disabled_as_in_rinla(seeds):
    # R-INLA (>= 20.08.02) stops on control.inla$lincomb.derived.only whatever its value
    for value in (False, True, "FALSE"):
        with pytest.raises(adelia.errors.ControlError) as err:
            adelia.compile("r ~ x1 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n",
                           lincomb=_seeds_lincombs(), control_inla={"lincomb_derived_only": value})
        msg = str(err.value)
        assert "lincomb.derived.only" in msg and "disabled" in msg and "summary_lincomb_derived" in msg


def test_classic_mode_centres_at_simplified_laplace_means(seeds):
    """inla_mode="classic": per design point the combination's mean is a'·(the nodes'
    simplified-Laplace means) (R-INLA's COMPUTE_LINDENS improved mean), its variance the
    Gaussian a'Σa. Oracle: the SLA mean x*_i + σ_i γ₁_i by dense algebra,
    γ₁_i = ½ Σ_o d³_o b_oi (v_o − b_oi²), b_oi = Cov(η_o, x_i)/σ_i, v_o = Var(η_o),
    d³ = −n p(1−p)(1−2p) for the binomial logit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n",
                          lincomb=_seeds_lincombs(), inla_mode="classic")
    post, g = res.posterior, res.model.graph
    lc = post.lincomb
    n = g.n_latent
    i0, i1, i2, p0 = (g.block(b).start for b in ("(Intercept)", "x1", "x2", "plate"))
    a = np.zeros((3, n))
    a[0, [i0, i1]] = 1
    a[1, [i1, i2]] = [1, -1]
    a[2, [i0, p0 + 2]] = 1
    y, ntr = seeds["r"].to_numpy(float), seeds["n"].to_numpy(float)
    shifts = []
    for j, k in enumerate(lc.points):
        th = post.points.theta_full[k]
        xs = post.points.mode[k]
        Q = np.asarray(g.prior_matvec(g.prior_values(jnp.asarray(th)), jnp.eye(n)))
        A = g.a_matrix(th).toarray()
        p = 1 / (1 + np.exp(-(A @ xs)))
        S = np.linalg.inv(Q + A.T @ np.diag(ntr * p * (1 - p)) @ A)
        sig = np.sqrt(np.diag(S))
        v = np.diag(A @ S @ A.T)
        b = (A @ S) / sig  # (n_obs, n)
        d3 = -ntr * p * (1 - p) * (1 - 2 * p)
        gamma1 = 0.5 * np.einsum("o,oi->i", d3, b * (v[:, None] - b**2))
        sla_mean = xs + sig * gamma1
        np.testing.assert_allclose(lc.mean[j], a @ sla_mean, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(lc.var[j], np.diag(a @ S @ a.T), rtol=1e-6)
        shifts.append(np.abs(a @ (sla_mean - post.points.mean[k])))
    assert np.max(shifts) > 1e-3  # the SLA centre is not the Gaussian one


@pytest.mark.slow
def test_classic_laplace_centres_at_the_laplace_densities_means(seeds):
    """strategy="laplace" (classic): a point's combination on one node is centred at the mean of
    that node's spline-corrected Laplace density at θ_k — oracle: the density's mean by
    trapezoidal quadrature of its pdf (one-component mixture), ±10 sd."""
    from adelia.inference.latent_strategies import LaplaceMixture

    lcs = {"b1": adelia.make_lincomb(x1=1), "u3": adelia.make_lincomb(plate=[None, None, 1])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n", lincomb=lcs,
                          inla_mode="classic", control_inla={"strategy": "laplace"})
    post, g = res.posterior, res.model.graph
    lc, lat = post.lincomb, post.latent
    assert isinstance(lat, LaplaceMixture) and lat.weights.size == lc.points.size
    nodes = (g.block("x1").start, g.block("plate").start + 2)
    shifts = []
    for k in (0, lc.points.size // 2):
        w = np.zeros(lat.weights.size)
        w[k] = 1.0
        one = LaplaceMixture(Mixture(w, lat.base.loc, lat.base.scale, lat.base.shape), lat.corrected, lat.grid, lat.correction)
        for col, i in enumerate(nodes):
            loc, sc = lat.base.loc[k, i], lat.base.scale[k, i]
            xs = np.linspace(loc - 10 * sc, loc + 10 * sc, 4001)
            X = np.zeros((xs.size, lat.n))
            X[:, i] = xs
            dens = one.pdf(X)[:, i]
            oracle = np.trapezoid(xs * dens, xs) / np.trapezoid(dens, xs)
            assert lc.mean[k, col] == pytest.approx(oracle, abs=1e-6 * sc)
            shifts.append(abs(lc.mean[k, col] - post.points.mean[lc.points[k], i]))
    assert max(shifts) > 1e-3  # not the Gaussian centre
