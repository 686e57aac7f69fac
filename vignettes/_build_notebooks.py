"""Write the Jupyter vignettes in this folder and execute them, storing their outputs.

    python vignettes/_build_notebooks.py            # every notebook
    python vignettes/_build_notebooks.py quickstart # one of them

The notebooks are the product; this script is how their cells are kept under review as
plain Python. Each notebook runs top to bottom at its default size (``FULL = False``) in well
under a minute on a laptop CPU once adelia's compilation cache is warm.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# ---------------------------------------------------------------------------------------------
QUICKSTART = [
    md("""
# Quickstart: a binomial GLMM on the Seeds data

This notebook fits the model of R-INLA's first example — germination of seeds on 21 plates —
reads its summaries and marginal posteriors, scores it with DIC, WAIC and CPO, compares the
numbers with R-INLA's, and ends with what to try next.

**Data** (Crowder 1978, *Applied Statistics* 27, 34–37; WinBUGS Examples Vol. I "Seeds"):
`r` seeds germinated of `n` on each plate; `x1` seed type (0 = *O. aegyptiaca* 75,
1 = *O. aegyptiaca* 73); `x2` root extract (0 = bean, 1 = cucumber).

**Model**: $r_i \\sim \\text{Binomial}(n_i, p_i)$,
$\\operatorname{logit} p_i = \\beta_0 + \\beta_1 x_{1i} + \\beta_2 x_{2i} + u_{\\text{plate}(i)}$,
$u_j \\sim N(0, \\tau^{-1})$ iid — the plate effect takes up extra-binomial variation.
"""),
    code("""
FULL = False   # True: also fit the model with the x1:x2 interaction (the BUGS version of Seeds)
"""),
    code("""
import warnings
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import adelia
from adelia.marginals import pmarginal, qmarginal, smarginal

%matplotlib inline
seeds = adelia.datasets.load("Seeds")     # R: data(Seeds)
seeds.head()
"""),
    md("""
## Fitting

The formula is R-INLA's, copied verbatim from an R script; the keyword arguments are
`inla()`'s with `.` written as `_` (`Ntrials`, `control_compute`, ...). With R-INLA's default
prior on the plate precision (loggamma(1, 5e-5)) adelia warns that the posterior of the
hyperparameter has mass far from its mode — we come back to that at the end.
"""),
    code("""
res = adelia.inla(
    "r ~ x1 + x2 + f(plate, model='iid')", seeds,
    family="binomial", Ntrials="n",
    control_compute={"dic": True, "waic": True, "cpo": True},
)
print(res.summary())
"""),
    md("""
The tables carry R-INLA's names and columns (`res["summary.fixed"]` works too):
"""),
    code("""
res.summary_fixed
"""),
    code("""
res.summary_random["plate"].head()
"""),
    md("""
## Marginal posteriors

`res.plot()` draws what R's `plot(result)` draws: fixed-effect densities, hyperparameter
densities and the random effects with their 95 % bands. The marginals themselves are xarray
objects (`res.marginals_fixed["x2"]`, coordinate `x`) that the `adelia.marginals` functions
(R's `inla.pmarginal`, `inla.qmarginal`, `inla.smarginal`, ...) accept.
"""),
    code("""
figs = res.plot()
"""),
    code("""
m = res.marginals_fixed["x2"]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(m["x"], m.values)
lo, hi = qmarginal([0.025, 0.975], m)
ax.axvspan(lo, hi, alpha=0.15, label="95% interval")
ax.set_xlabel("x2 (cucumber vs bean, log odds)"); ax.set_ylabel("density"); ax.legend();
print(f"P(beta_x2 > 0 | y) = {1 - pmarginal(0.0, m):.4f}")
print(f"P(beta_x1 < 0 | y) = {pmarginal(0.0, res.marginals_fixed['x1']):.3f}")
"""),
    md("""
The hyperparameter on the internal scale (log precision) shows why the user-scale summary of
the precision is awkward: the mass runs off to large precisions (a plate effect of almost
zero variance).
"""),
    code("""
name = "Log precision for plate"
m = res.internal_marginals_hyperpar[name]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(m["x"], m.values, marker=".")
ax.set_xlabel("log precision of the plate effect"); ax.set_ylabel("density")
res.internal_summary_hyperpar
"""),
    md("""
## Model criteria: DIC, WAIC, CPO

`res.dic`, `res.waic` and `res.cpo` are R-INLA's lists as dicts. The log score
$-\\sum_i \\log \\text{CPO}_i$ is a leave-one-out cross-validation criterion (smaller is better);
PIT values near 0 or 1 flag observations the model finds surprising.
"""),
    code("""
criteria = pd.Series({
    "DIC": res.dic["dic"], "DIC p.eff": res.dic["p.eff"],
    "WAIC": res.waic["waic"], "WAIC p.eff": res.waic["p.eff"],
    "-sum log CPO": -np.sum(np.log(res.cpo["cpo"])),
    "mlik (integration)": res.mlik.iloc[0], "mlik (Gaussian)": res.mlik.iloc[1],
})
print(criteria.round(2).to_string())
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].bar(seeds["plate"], np.log(res.cpo["cpo"]))
axes[0].set_xlabel("plate"); axes[0].set_ylabel("log CPO")
axes[1].hist(res.cpo["pit"], bins=np.linspace(0, 1, 11), edgecolor="w")
axes[1].set_xlabel("PIT"); fig.tight_layout()
"""),
    md("""
## Comparison with R-INLA

R-INLA's numbers for the same call — R-INLA 25.07 (INLA R package 25.7.11, compact mode, the
default priors, one thread),
`inla(r ~ x1 + x2 + f(plate, model="iid"), family="binomial", Ntrials=n, data=Seeds,
control.compute=list(dic=TRUE, waic=TRUE, cpo=TRUE))` — as printed by its `summary()`:

| | mean | sd | 0.025quant | 0.5quant | 0.975quant |
|---|---|---|---|---|---|
| (Intercept) | −0.428 | 0.120 | −0.660 | −0.429 | −0.191 |
| x1 | −0.278 | 0.162 | −0.600 | −0.276 | 0.034 |
| x2 | 1.066 | 0.151 | 0.768 | 1.066 | 1.359 |
| Precision for plate (without dic/waic/cpo) | 14729.83 | 22223.78 | 10.50 | 3076.70 | 7607.30 |

Marginal log-likelihood −74.70 (integration) / −73.76 (Gaussian); DIC 121.03 (p.eff 3.20);
WAIC 125.76 (p.eff 7.11); −Σ log CPO = 63.28.

The fixed effects agree to a few thousandths of a posterior sd. DIC differs in the first
decimal because R-INLA, when DIC/WAIC are requested, shifts the hyperparameter marginal to its
best design point (adelia does not). The precision's quantiles agree but its mean and sd do
not: R-INLA's user-scale moments come from an extrapolated tail — its mean lies above its own
97.5 % quantile. The next section shows what to do about that posterior.
"""),
    code("""
rinla_fixed = pd.DataFrame(
    {"mean R-INLA": [-0.428, -0.278, 1.066], "sd R-INLA": [0.120, 0.162, 0.151]},
    index=["(Intercept)", "x1", "x2"],
)
table = pd.concat([res.summary_fixed[["mean", "sd"]], rinla_fixed], axis=1)
table["(mean - R-INLA) / sd"] = (table["mean"] - table["mean R-INLA"]) / table["sd R-INLA"]
table.round(4)
"""),
    md("""
## What to try next

**A penalised-complexity prior.** The bimodal hyperposterior above comes from the default
loggamma(1, 5e-5) prior, which puts almost no mass on moderate precisions. A PC prior
(Simpson et al. 2017) states what we believe — P(σ > 1) = 0.01 for the plate sd — and gives a
well-behaved posterior. It is written exactly as in R:
"""),
    code("""
res_pc = adelia.inla(
    "r ~ x1 + x2 + f(plate, model='iid', hyper=list(prec=list(prior='pc.prec', param=c(1, 0.01))))",
    seeds, family="binomial", Ntrials="n", control_compute={"dic": True, "waic": True},
)
print(res_pc.summary_hyperpar.round(3).to_string())
m_pc = res_pc.internal_marginals_hyperpar["Log precision for plate"]
m_lg = res.internal_marginals_hyperpar["Log precision for plate"]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(m_lg["x"], m_lg.values, label="loggamma(1, 5e-5) (default)")
ax.plot(m_pc["x"], m_pc.values, label="pc.prec(1, 0.01)")
ax.set_xlabel("log precision of the plate effect"); ax.legend();
"""),
    md("""
**The classic integration.** `inla_mode="classic"` explores the hyperposterior with R-INLA's
classic adaptive grid and follows the second mode instead of stopping at the design of the
first:
"""),
    code("""
res_classic = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial",
                          Ntrials="n", inla_mode="classic")
res_classic.internal_summary_hyperpar.round(3)
"""),
    code("""
if FULL:   # the interaction model of the BUGS example, scored by the same criteria
    res_int = adelia.inla("r ~ x1 * x2 + f(plate, model='iid')", seeds, family="binomial",
                          Ntrials="n", control_compute={"dic": True, "waic": True})
    print(res_int.summary_fixed.round(3).to_string())
    print("DIC", round(res_int.dic["dic"], 2), "WAIC", round(res_int.waic["waic"], 2))
"""),
    md("""
Further: `res.posterior_sample(1000)` draws from the joint posterior (R's
`inla.posterior.sample`), `res.predict(new_data)` predicts new plates, and
[disease_mapping.ipynb](disease_mapping.ipynb) and [time_series.ipynb](time_series.ipynb)
fit structured random effects. The R-INLA → adelia dictionary is
[docs/rinla_to_adelia.md](../docs/rinla_to_adelia.md).
"""),
]

# ---------------------------------------------------------------------------------------------
DISEASE_MAPPING = [
    md("""
# Disease mapping: BYM2 on oral cavity cancer in Germany

Counts $Y_i$ of deaths from oral cavity cancer in the 544 districts of Germany, 1986–1990,
with expected counts $E_i$ from the population and a covariate $x_i$ measuring smoking
consumption (Knorr-Held & Raßer 2000, *Biometrics* 56, 13–21; Rue & Held 2005, ch. 4).

**Model** (Riebler et al. 2016): $Y_i \\sim \\text{Poisson}(E_i \\rho_i)$,
$\\log \\rho_i = \\beta_0 + \\beta_1 x_i + b_i$, with the BYM2 effect
$b_i = \\tau^{-1/2}(\\sqrt{1-\\phi}\\, v_i + \\sqrt{\\phi}\\, u_i)$: $v$ iid, $u$ the scaled
intrinsic CAR (besag) field on the district graph, $\\phi$ the share of spatially structured
variance. $\\rho_i$ is the relative risk of district $i$; $e^{b_i}$ its residual relative risk
after the covariate.
"""),
    code("""
FULL = False   # True: draw 4000 joint posterior samples instead of 500
"""),
    code("""
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import adelia
from adelia import datasets
from adelia.marginals import pmarginal

%matplotlib inline
germany = datasets.load("Germany")     # R: data(Germany)
g = datasets.graph("Germany")          # R: g = system.file("demodata/germany.graph", package="INLA")
print(germany.shape, "districts:", g.n, "connected components:", g.n_components)
germany.head()
"""),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
axes[0].hist(germany["Y"] / germany["E"], bins=40, edgecolor="w")
axes[0].set_xlabel("standardised mortality ratio Y / E")
axes[1].scatter(germany["x"], germany["Y"] / germany["E"], s=6)
axes[1].set_xlabel("smoking covariate x"); axes[1].set_ylabel("Y / E"); fig.tight_layout()
"""),
    md("""
## Fitting

PC priors as recommended for BYM2 (Riebler et al. 2016): P(σ > 1) = 0.01 on the total sd and
P(φ < 0.5) = 0.5 on the mixing parameter. The graph goes in through `context=`, the way R users
pass `graph = g`.
"""),
    code("""
formula = (
    "Y ~ 1 + x + f(region, model='bym2', graph=g, scale.model=TRUE,"
    " hyper=list(prec=list(prior='pc.prec', param=c(1, 0.01)),"
    "            phi=list(prior='pc', param=c(0.5, 0.5))))"
)
res = adelia.inla(formula, germany, family="poisson", E="E", context={"g": g},
                  control_compute={"dic": True, "waic": True, "config": True},
                  control_predictor={"compute": True})
print(res.summary())
"""),
    md("""
Most of the residual variance is spatially structured ($\\phi$ near 0.9). Smoking raises the
risk: exp(100 β₁) is the relative risk for 100 units of the covariate.
"""),
    code("""
from adelia.marginals import qmarginal
b1 = res.marginals_fixed["x"]
print("posterior mean of exp(100 * beta_x):", round(float(np.exp(100 * res.summary_fixed.loc["x", "mean"])), 3))
print("95% interval:", np.round(np.exp(100 * np.asarray(qmarginal([0.025, 0.975], b1))), 3))
figs = res.plot(which=("fixed", "hyperpar"))
"""),
    md("""
## Relative risks and exceedance probabilities

The BYM2 table holds $2n$ rows, R-INLA's layout: rows 1..n are the total effect $b_i$, rows
n+1..2n the structured part $u_i$. The residual relative risk $e^{b_i}$ exceeds 1 with
probability $P(b_i > 0 \\mid y) = 1 - F_{b_i}(0)$ from each district's marginal — R's
`1 - inla.pmarginal(0, res$marginals.random$region[[i]])`.
"""),
    code("""
n = g.n
margs = res.marginals_random["region"]
p_residual = np.array([1 - pmarginal(0.0, margs.isel(ID=i)) for i in range(n)])
total = res.summary_random["region"].iloc[:n]
residual = pd.DataFrame({
    "region": germany["region"],
    "RR median": np.exp(total["0.5quant"].to_numpy()),   # quantiles map through exp exactly
    "RR 2.5%": np.exp(total["0.025quant"].to_numpy()),
    "RR 97.5%": np.exp(total["0.975quant"].to_numpy()),
    "P(RR > 1)": p_residual,
})
residual.sort_values("P(RR > 1)", ascending=False).head(10).round(3)
"""),
    md("""
The relative risk $\\rho_i = \\exp(\\eta_i)$ including the covariate comes from the fitted
values (`summary_fitted_values` is $E[\\rho_i \\mid y]$ with E as the offset); its exceedance
probability $P(\\rho_i > 1 \\mid y) = P(\\eta_i > 0 \\mid y)$ from joint posterior samples of the
linear predictor (R's `inla.posterior.sample`).
"""),
    code("""
n_samples = 4000 if FULL else 500
draws = res.posterior_sample(n_samples, seed=1)
eta = draws["Predictor"].values                      # (sample, district)
rr = pd.DataFrame({
    "region": germany["region"],
    "SMR": germany["Y"] / germany["E"],
    "RR mean": res.summary_fitted_values["mean"].to_numpy(),
    "RR 2.5%": res.summary_fitted_values["0.025quant"].to_numpy(),
    "RR 97.5%": res.summary_fitted_values["0.975quant"].to_numpy(),
    "P(RR > 1)": (eta > 0).mean(axis=0),
})
rr.sort_values("RR mean", ascending=False).head(10).round(3)
"""),
    md("""
## Plots

A choropleth map needs the districts' boundary polygons, which adelia does not ship for
Germany (R-INLA's `germany.graph` has only the adjacency). With boundaries (e.g. a GeoPandas
GeoDataFrame of the 544 districts in the same order) the map is
`gdf.assign(rr=rr["RR mean"]).plot(column="rr")`. Without them, a ranked caterpillar plot shows
every district's relative risk with its 95 % interval, and the exceedance probabilities'
distribution shows how many districts are clearly above or below the national level. Note the
shrinkage: the raw SMR (grey) scatters far more than the posterior relative risks.
"""),
    code("""
order = np.argsort(rr["RR mean"].to_numpy())
rank = np.arange(n)
fig, ax = plt.subplots(figsize=(10, 3.5))
ax.scatter(rank, rr["SMR"].to_numpy()[order], s=3, color="0.6", label="SMR = Y / E")
ax.vlines(rank, rr["RR 2.5%"].to_numpy()[order], rr["RR 97.5%"].to_numpy()[order], color="C0", alpha=0.3)
ax.plot(rank, rr["RR mean"].to_numpy()[order], color="C0", label="posterior mean RR and 95% interval")
ax.axhline(1, color="k", lw=0.8)
ax.set_xlabel("district (ranked by posterior mean relative risk)"); ax.set_ylabel("relative risk")
ax.set_ylim(0, 2.5); ax.legend();
"""),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
bins = np.linspace(0, 1, 21)
axes[0].hist(rr["P(RR > 1)"], bins=bins, edgecolor="w")
axes[0].set_xlabel("P(relative risk > 1 | y)"); axes[0].set_ylabel("districts")
axes[1].hist(residual["P(RR > 1)"], bins=bins, edgecolor="w", color="C1")
axes[1].set_xlabel("P(residual relative risk exp(b) > 1 | y)"); fig.tight_layout()
print("districts with P(RR > 1) > 0.95:", int((rr["P(RR > 1)"] > 0.95).sum()),
      "| < 0.05:", int((rr["P(RR > 1)"] < 0.05).sum()))
"""),
    md("""
## Against R-INLA

R-INLA's reference suite for adelia has no Germany BYM2 fit with these priors; the same model
class on Scotland's lip cancer data (`scotland_bym2`) and a proper besag model on Germany
(`besagproper_germany`) agree with R-INLA 25.07 within the project's tolerances
(`tests/inference/test_rinla_reference.py`). R users can check this notebook with

```r
g <- system.file("demodata/germany.graph", package = "INLA")
inla(Y ~ 1 + x + f(region, model = "bym2", graph = g, scale.model = TRUE,
       hyper = list(prec = list(prior = "pc.prec", param = c(1, 0.01)),
                    phi = list(prior = "pc", param = c(0.5, 0.5)))),
     family = "poisson", E = E, data = Germany)
```

## What to try next

* Compare with `model='besag'` + `model='iid'` (the classic BYM) or `model='bym'` by DIC/WAIC
  (`res.dic["dic"]`, `res.waic["waic"]`): the hyperparameters of BYM2 are the interpretable ones.
* Let the covariate act non-linearly: `f(x, model='rw2')` on `x` rounded into bins (an
  index column with a few dozen distinct values, as R's `inla.group` makes).
* Oral cavity cancer counts of another series are `datasets.load("Oral")` on the same graph.
* Maps: join `rr` to district polygons and draw them with GeoPandas.
"""),
]

# ---------------------------------------------------------------------------------------------
TIME_SERIES = [
    md("""
# Time series: a cyclic trend in Tokyo rainfall and a seasonal model of road casualties

**Tokyo** (Kitagawa 1987, *JASA* 82, 1032–1041; Rue & Held 2005): for each calendar day
`time` = 1..366, the number of the years 1983–1984 in which it rained more than 1 mm in Tokyo
(`y` of `n` = 2; 29 February was observed once). Model:
$y_t \\sim \\text{Binomial}(n_t, p_t)$, $\\operatorname{logit} p_t = \\beta_0 + f(t)$ with $f$ a **cyclic
second-order random walk** — the year wraps around, 31 December is next to 1 January.

**Drivers** (Harvey & Durbin 1986, *JRSS A* 149, 187–227): monthly counts of drivers killed or
seriously injured in Great Britain 1969–1984, with the seat-belt law of February 1983; a
**rw2 trend + seasonal** (period 12) Poisson model, forecasting 12 months with missing `y`.
"""),
    code("""
FULL = False   # True: also compare rw1 (cyclic) and ar1 for Tokyo and fit the Drivers model
"""),
    code("""
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import adelia

%matplotlib inline
tokyo = adelia.datasets.load("Tokyo")     # R: data(Tokyo)
tokyo.head()
"""),
    md("""
## R-INLA's call, and the numbers R-INLA gives for it

R-INLA's Tokyo example drops the intercept: `y ~ -1 + f(time, model="rw2", cyclic=TRUE)`.
R-INLA 25.07 (compact mode, default priors: loggamma(1, 5e-5) on the rw2 precision,
`scale.model=FALSE`), `inla(y ~ -1 + f(time, model="rw2", cyclic=TRUE), family="binomial",
Ntrials=n, data=Tokyo)` prints: log precision for time mean 10.098, sd 0.673; marginal
log-likelihood −423.30 (integration), −423.65 (Gaussian).
"""),
    code("""
res_ref = adelia.inla("y ~ -1 + f(time, model='rw2', cyclic=TRUE)", tokyo,
                      family="binomial", Ntrials="n", control_predictor={"compute": True},
                      control_compute={"dic": True, "waic": True})
rinla = pd.Series({"log precision mean": 10.098, "log precision sd": 0.673,
                   "mlik (integration)": -423.30, "mlik (Gaussian)": -423.65})
ours = pd.Series({"log precision mean": res_ref.internal_summary_hyperpar["mean"].iloc[0],
                  "log precision sd": res_ref.internal_summary_hyperpar["sd"].iloc[0],
                  "mlik (integration)": res_ref.mlik.iloc[0], "mlik (Gaussian)": res_ref.mlik.iloc[1]})
pd.DataFrame({"adelia": ours, "R-INLA": rinla}).round(3)
"""),
    md("""
## A better model: put the intercept back

A cyclic rw2 carries a sum-to-zero constraint by default (`constr=TRUE`, as in R-INLA), so
without an intercept the average log-odds is pinned at 0 — an average rain probability of
0.5, while only about a quarter of the day-years were rainy. With the intercept the level is
free and the log marginal likelihood rises by almost 90:
"""),
    code("""
res = adelia.inla("y ~ 1 + f(time, model='rw2', cyclic=TRUE)", tokyo,
                  family="binomial", Ntrials="n", control_predictor={"compute": True},
                  control_compute={"dic": True, "waic": True})
print(res.summary())
print("observed share of rainy day-years:", round(tokyo["y"].sum() / tokyo["n"].sum(), 3))
"""),
    md("""
## The fitted probability of rain with its 95 % band

`summary_fitted_values` is on the probability scale (the inverse logit of each linear
predictor's marginal), R's `res$summary.fitted.values`.
"""),
    code("""
fv = res.summary_fitted_values
day = tokyo["time"].to_numpy()
fig, ax = plt.subplots(figsize=(10, 3.5))
ax.scatter(day, tokyo["y"] / tokyo["n"], s=6, color="0.5", label="observed y / n")
ax.fill_between(day, fv["0.025quant"], fv["0.975quant"], alpha=0.3, label="95% interval")
ax.plot(day, fv["mean"], label="posterior mean, with intercept")
ax.plot(day, res_ref.summary_fitted_values["mean"], ls="--", color="C3", label="without intercept (R-INLA's call)")
ax.set_xlabel("day of the year"); ax.set_ylabel("P(rain > 1 mm)"); ax.legend(loc="upper right", fontsize="small");
"""),
    md("""
## Other temporal models

`rw1` (cyclic) is rougher; `ar1` with an intercept is stationary and forgets the cycle.
Marginal likelihoods and WAIC compare them (set `FULL = True`; each new model structure is
compiled once, a few seconds).
"""),
    code("""
if FULL:
    rows = {"rw2 cyclic, no intercept": res_ref, "rw2 cyclic": res}
    for label, f in [("rw1 cyclic", "y ~ 1 + f(time, model='rw1', cyclic=TRUE)"),
                     ("ar1", "y ~ 1 + f(time, model='ar1')")]:
        rows[label] = adelia.inla(f, tokyo, family="binomial", Ntrials="n",
                                  control_predictor={"compute": True},
                                  control_compute={"dic": True, "waic": True})
    print(pd.DataFrame({k: {"mlik": r.mlik.iloc[0], "DIC": r.dic["dic"], "WAIC": r.waic["waic"]}
                        for k, r in rows.items()}).T.round(2))
    fig, ax = plt.subplots(figsize=(10, 3))
    for k, r in rows.items():
        ax.plot(day, r.summary_fitted_values["mean"], label=k)
    ax.set_xlabel("day of the year"); ax.legend();
"""),
    md("""
## Seasonal model with a forecast: Drivers

`y ~ belt + f(trend, model="rw2") + f(seasonal, model="seasonal", season.length=12)` with
`y` missing for the last 12 months: the fitted values of those rows are the forecast.
"""),
    code("""
if FULL:
    drivers = adelia.datasets.load("Drivers")
    res_d = adelia.inla("y ~ belt + f(trend, model='rw2') + f(seasonal, model='seasonal', season.length=12)",
                        drivers, family="poisson", control_predictor={"compute": True})
    print(res_d.summary_fixed.round(3).to_string())
    fv_d = res_d.summary_fitted_values
    month = np.arange(1, len(drivers) + 1)
    fig, ax = plt.subplots(figsize=(10, 3.5))
    ax.plot(month, drivers["y"], color="0.4", lw=0.8, label="observed")
    ax.fill_between(month, fv_d["0.025quant"], fv_d["0.975quant"], alpha=0.3)
    ax.plot(month, fv_d["mean"], label="fitted / forecast")
    ax.axvline(170, color="k", lw=0.6, ls="--")   # February 1983: the seat-belt law
    ax.set_xlabel("month since January 1969"); ax.legend();
"""),
    md("""
## What to try next

* Scale the random walk (`scale.model=TRUE`) and give it a PC prior
  (`hyper=list(prec=list(prior='pc.prec', param=c(1, 0.01)))`) so that its precision means the
  same thing for any number of days.
* Replace the Binomial by a Bernoulli per year and add `replicate=` for the two years.
* `res.posterior_sample(1000)` gives joint draws of the whole curve, e.g. for the day of the
  year with the highest rain probability.
"""),
]

NOTEBOOKS = {
    "quickstart": QUICKSTART,
    "disease_mapping": DISEASE_MAPPING,
    "time_series": TIME_SERIES,
}


def build(name: str, execute: bool = True) -> Path:
    nb = new_notebook(cells=NOTEBOOKS[name])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    if execute:
        NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(HERE)}}).execute()
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    for name in sys.argv[1:] or NOTEBOOKS:
        print("wrote", build(name))
