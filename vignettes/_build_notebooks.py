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
# Disease mapping: BYM2 on oral cavity cancer in Germany and on SIDS in North Carolina

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

R-INLA ships only the adjacency of the German districts, not their boundaries, and no boundary
file with a clear open licence is at hand, so Germany gets no map here (the next section maps
North Carolina, whose county polygons adelia ships). A ranked caterpillar plot shows every
district's relative risk with its 95 % interval, and the exceedance probabilities'
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
## Maps: sudden infant deaths in North Carolina, 1974–78

The classic data set of Cressie (1993, *Statistics for Spatial Data*, pp. 386–389; Cressie &
Chan 1989, *JASA* 84, 393–401) — R users know it as `spdep`'s `nc.sids` or `sf`'s `nc.shp`:
deaths from sudden infant death syndrome `SID74` among `BIR74` live births in the 100
counties, with the share of non-white births as the covariate. adelia ships the county
boundaries (from libpysal's `sids2` example, BSD 3-Clause licence) and the contiguity graph;
the graph built from the polygons' shared edges equals it.

Expected counts by internal standardisation, $E_i = \text{BIR74}_i \cdot \sum \text{SID74} / \sum \text{BIR74}$;
the same BYM2 model with its default PC priors (R-INLA's: prec pc(1, 0.01), φ pc(0.5, 2/3)).
"""),
    code("""
from adelia.plotting import choropleth

nc = datasets.load("NCSIDS")
rings = datasets.polygons("NCSIDS")                 # per county: a list of (lon, lat) rings
g_nc = datasets.graph("NCSIDS")
same = (datasets.graph_from_polygons(rings).adjacency != g_nc.adjacency).nnz == 0
print("counties:", g_nc.n, "| graph from shared boundaries equals the shipped graph:", same)
nc["E"] = nc["BIR74"] * nc["SID74"].sum() / nc["BIR74"].sum()
nc["nw10"] = 10 * nc["NWBIR74"] / nc["BIR74"]         # non-white share of births, in tens of per cent
res_nc = adelia.inla("SID74 ~ 1 + nw10 + f(region, model='bym2', graph=g)", nc, family="poisson",
                     E="E", context={"g": g_nc}, control_predictor={"compute": True})
print(res_nc.summary_fixed.round(3).to_string())
print(res_nc.summary_hyperpar.round(3).to_string())
"""),
    md("""
Each 10 percentage points more non-white births go with about a fifth more SIDS deaths
(`exp(β)` below). The maps: the raw standardised mortality ratio $Y_i/E_i$, the posterior mean
relative risk $E[\rho_i \mid y]$ (`summary_fitted_values`), its exceedance probability
$P(\rho_i > 1 \mid y)$ from joint posterior samples, and the probability that the *residual*
relative risk $e^{b_i}$ exceeds 1 — what is left after the covariate.
"""),
    code("""
print("exp(beta_nw10):", np.round(np.exp(res_nc.summary_fixed.loc["nw10", ["mean", "0.025quant", "0.975quant"]].to_numpy(float)), 3))
eta_nc = res_nc.posterior_sample(n_samples, seed=2)["Predictor"].values
margs_nc = res_nc.marginals_random["region"]
maps = {
    "SMR = Y / E": (nc["SID74"] / nc["E"], "RdBu_r", (0, 2)),
    "posterior mean relative risk": (res_nc.summary_fitted_values["mean"], "RdBu_r", (0, 2)),
    "P(relative risk > 1 | y)": ((eta_nc > 0).mean(axis=0), "PuOr_r", (0, 1)),
    "P(residual RR exp(b) > 1 | y)": ([1 - pmarginal(0.0, margs_nc.isel(ID=i)) for i in range(g_nc.n)], "PuOr_r", (0, 1)),
}
fig, axes = plt.subplots(2, 2, figsize=(13, 5.2))
for ax, (title, (values, cmap, (lo, hi))) in zip(axes.ravel(), maps.items()):
    choropleth(rings, values, ax=ax, cmap=cmap, vmin=lo, vmax=hi, title=title)
fig.tight_layout()
"""),
    md("""
The SMR map is dominated by noise in the small counties (a single death doubles a rate);
the posterior relative risks keep the broad pattern — higher risk in the south-east coastal
plain, lower in the western mountains — and shrink the isolated extremes. Anson county, the outlier of the SIDS literature (15 deaths
where about 3 were expected), stays clearly elevated, and keeps a high residual exceedance
probability after the covariate. Most of the residual variation here is unstructured (φ's
posterior mass lies below 0.5), unlike Germany's.
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
* Maps of any other areal data: `adelia.plotting.choropleth(rings, values)` takes per-area
  lists of (x, y) rings (from a GeoPandas frame: `[[np.asarray(p.exterior.coords)] for p in
  gdf.geometry]`), and `datasets.graph_from_polygons(rings)` builds the graph (R's `poly2nb`).
* North Carolina 1979–84 (`SID79`, `BIR79`): a space-time model with the two periods as
  `group=` of the bym2 term.
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

# ---------------------------------------------------------------------------------------------
GEOSTATISTICS = [
    md("""
# Geostatistics: an SPDE Matérn field on the SPDEtoy data

200 noisy measurements $y_i$ at locations $s_i$ in the unit square, R-INLA's standard SPDE
example (`data(SPDEtoy)`; Lindgren, Rue & Lindström 2011, *JRSS B* 73, 423–498; Krainski et
al. 2018, *Advanced Spatial Modeling with Stochastic Partial Differential Equations Using R and
INLA*, §2.3). Columns: `s1`, `s2` (coordinates) and `y`.

**Model**: $y_i = \\beta_0 + u(s_i) + \\varepsilon_i$, $\\varepsilon_i \\sim N(0, \\tau_\\varepsilon^{-1})$,
with $u$ a Gaussian field of Matérn covariance (smoothness $\\nu = 1$, range $\\rho$ — the
distance at which the correlation is about 0.1 — and marginal sd $\\sigma$). The SPDE approach
represents $u$ on a triangulation by a sparse GMRF (the finite-element solution of
$(\\kappa^2 - \\Delta)\\, u = \\mathcal{W}/\\tau$), which is what makes INLA fast for it.
"""),
    code("""
FULL = False   # True: a finer mesh (max_edge 0.05 inside) and a finer prediction grid
"""),
    code("""
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import adelia
from adelia import spde as S
from adelia.marginals import zmarginal

%matplotlib inline
toy = adelia.datasets.load("SPDEtoy")     # R: data(SPDEtoy)
print(toy.shape)
toy.head()
"""),
    md("""
## The mesh

R: `fm_mesh_2d_inla(loc=cbind(s1, s2), max.edge=c(0.1, 0.3), offset=c(0.1, 0.4), cutoff=0.02)`.
An inner domain a distance 0.1 around the points with edges ≤ 0.1, and an outer extension 0.4
further out with coarser edges ≤ 0.3: the SPDE's boundary conditions inflate the variance near
the mesh boundary, and the extension moves that effect away from the data. Points closer than
`cutoff` share a node. The node placement is adelia's own (fmesher's differs in detail; the node
count is typically within a few per cent).
"""),
    code("""
loc = toy[["s1", "s2"]].to_numpy()
max_edge = (0.05, 0.2) if FULL else (0.1, 0.3)
mesh = S.mesh_2d(loc, max_edge=max_edge, offset=(0.1, 0.4), cutoff=0.02)
print(mesh)
fig, ax = plt.subplots(figsize=(5.5, 5.5))
ax.triplot(mesh.loc[:, 0], mesh.loc[:, 1], mesh.tv, lw=0.4, color="0.5")
sc = ax.scatter(toy["s1"], toy["s2"], c=toy["y"], s=14, cmap="viridis", zorder=3)
ax.plot([0, 1, 1, 0, 0], [0, 0, 1, 1, 0], color="k", lw=0.8)
fig.colorbar(sc, ax=ax, shrink=0.7, label="y")
ax.set_aspect("equal"); ax.set_title(f"mesh: {mesh.n} nodes, {mesh.n_triangles} triangles");
"""),
    md("""
## The PC-Matérn prior and the fit

`spde2_pcmatern` is R's `inla.spde2.pcmatern`: penalised-complexity priors (Fuglstad et al.
2019, *JASA* 114, 445–452) with $P(\\rho < 0.3) = 0.5$ and $P(\\sigma > 1) = 0.01$.

R-INLA users build a projector matrix and an `inla.stack`; adelia also accepts the shorter form
in which the field is indexed by the coordinates themselves: `f(cbind(s1, s2), model=spde)`
projects the field to each row's location (the same A matrix, built internally), and
`res.predict` then evaluates it at new coordinates. The term's label is the covariate as written,
`"cbind(s1, s2)"`. (The stack form is in [spde.md](spde.md).)
"""),
    code("""
spde = S.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
res = adelia.inla("y ~ 1 + f(cbind(s1, s2), model=spde)", toy, context={"spde": spde})
print(res.summary())
"""),
    md("""
## Posterior range and standard deviation

`spde_result` is R's `inla.spde2.result`: the field's parameters on the scales of the SPDE
(τ, κ) and of the Matérn covariance (nominal range $\\rho = \\sqrt{8\\nu}/\\kappa$ and variance).
Below, the posteriors of ρ and σ against their PC priors: the data are informative about both,
the posterior of ρ is far narrower than its prior and centred a little above the prior median
0.3, while σ is pulled well beyond the prior's 1 % tail at 1 — the field varies strongly.
"""),
    code("""
label = "cbind(s1, s2)"
r_s = S.spde_result(res, label, spde)       # R: inla.spde2.result(res, "s", spde)
print("range:", zmarginal(r_s["marginals.range.nominal"]["range.nominal.1"]).round(3).to_dict())
print("variance:", zmarginal(r_s["marginals.variance.nominal"]["variance.nominal.1"]).round(3).to_dict())

m_range = res.marginals_hyperpar[f"Range for {label}"]
m_sigma = res.marginals_hyperpar[f"Stdev for {label}"]
# PC priors (d = 2): pi(rho) = lam_r rho^-2 exp(-lam_r / rho), pi(sigma) = lam_s exp(-lam_s sigma)
lam_r, lam_s = -np.log(0.5) * 0.3, -np.log(0.01) / 1.0
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
rho = np.linspace(0.05, 0.9, 300)
axes[0].plot(m_range["x"], m_range.values, label="posterior")
axes[0].plot(rho, lam_r * rho**-2 * np.exp(-lam_r / rho), ls="--", label="PC prior")
axes[0].set_xlabel("range ρ"); axes[0].legend()
sig = np.linspace(0.0, 2.8, 300)
axes[1].plot(m_sigma["x"], m_sigma.values, label="posterior")
axes[1].plot(sig, lam_s * np.exp(-lam_s * sig), ls="--", label="PC prior")
axes[1].set_xlabel("marginal sd σ"); axes[1].legend(); fig.tight_layout()
"""),
    md("""
## Prediction on a grid

`res.predict(grid)` gives the posterior of the linear predictor $\\beta_0 + u(s)$ at new
locations (the projector of each grid point onto the mesh, and the joint posterior of the
intercept and the field, mixed over INLA's hyperparameter design points). The sd map is small
near the observations and grows in the gaps between them.
"""),
    code("""
n_grid = 100 if FULL else 50
g = (np.arange(n_grid) + 0.5) / n_grid
G1, G2 = np.meshgrid(g, g)
grid = pd.DataFrame({"s1": G1.ravel(), "s2": G2.ravel()})
pred = res.predict(grid, n_samples=0).summary_linear_predictor
mean_map = pred["mean"].to_numpy().reshape(n_grid, n_grid)
sd_map = pred["sd"].to_numpy().reshape(n_grid, n_grid)

fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
for ax, z, title, cmap in [(axes[0], mean_map, "posterior mean of β0 + u(s)", "viridis"),
                           (axes[1], sd_map, "posterior sd", "magma")]:
    im = ax.imshow(z, origin="lower", extent=(0, 1, 0, 1), cmap=cmap)
    ax.scatter(toy["s1"], toy["s2"], s=5, c="w" if cmap == "magma" else "k", alpha=0.6)
    fig.colorbar(im, ax=ax, shrink=0.8); ax.set_title(title); ax.set_xlabel("s1"); ax.set_ylabel("s2")
fig.tight_layout()
"""),
    md("""
The field at the mesh nodes is `res.summary_random["cbind(s1, s2)"]` (one row per node), here
drawn straight on the triangulation — the same surface as the grid map, on the whole mesh,
relaxing to the prior mean 0 in the extension:
"""),
    code("""
field = res.summary_random[label]
fig, ax = plt.subplots(figsize=(5.5, 4.5))
tc = ax.tricontourf(mesh.loc[:, 0], mesh.loc[:, 1], mesh.tv, field["mean"].to_numpy(), levels=20, cmap="viridis")
ax.plot([0, 1, 1, 0, 0], [0, 0, 1, 1, 0], color="w", lw=0.8)
fig.colorbar(tc, ax=ax, label="posterior mean of u"); ax.set_aspect("equal");
"""),
    md("""
## Against R-INLA

R-INLA 25.07 (INLA R package 25.7.11, fmesher 0.7.0, compact mode, one thread) on the stack
form of the same model, `y ~ 0 + b0 + f(s, model=spde)`, with fmesher's mesh for the call above
(its own node placement) and the same PC priors, prints:

| | mean | sd | 0.025quant | 0.5quant | 0.975quant |
|---|---|---|---|---|---|
| b0 (intercept) | 9.546 | 0.551 | 8.416 | 9.556 | 10.621 |
| Precision for the Gaussian observations | 3.659 | 0.706 | 2.460 | 3.595 | 5.227 |
| Range for s | 0.349 | 0.063 | 0.243 | 0.343 | 0.491 |
| Stdev for s | 1.636 | 0.197 | 1.288 | 1.623 | 2.060 |

The meshes differ, so agreement to about a tenth of a posterior sd is what to expect here
(on R-INLA's exported mesh, adelia's reference tests `spdetoy_pcmatern` and
`prediction_spdetoy` agree to rounding).
"""),
    code("""
rinla = pd.DataFrame({"mean R-INLA": [9.546, 3.659, 0.349, 1.636], "sd R-INLA": [0.551, 0.706, 0.063, 0.197]},
                     index=["(Intercept)", "Precision for the Gaussian observations",
                            f"Range for {label}", f"Stdev for {label}"])
ours = pd.concat([res.summary_fixed[["mean", "sd"]], res.summary_hyperpar[["mean", "sd"]]])
table = ours.join(rinla)
table["(mean - R-INLA) / sd"] = (table["mean"] - table["mean R-INLA"]) / table["sd R-INLA"]
table.round(3)
"""),
    md("""
## What to try next

* A non-convex domain: `S.nonconvex_hull(loc, convex=0.08)` as the mesh boundary
  ([spde.md](spde.md) §1), and see how the sd map changes outside the data's hull.
* Mesh sensitivity: refit with `max_edge=(0.05, 0.2)` (`FULL = True`) — the posterior of ρ
  and σ should hardly move once the edges are well below the range.
* Exceedance maps: `res.predict(grid, n_samples=1000).samples` gives joint draws on the grid,
  e.g. for $P(\\beta_0 + u(s) > 12 \\mid y)$.
* Covariates: `y ~ 1 + elevation + f(cbind(x, y), model=spde)` on the Paraná rainfall data
  (`adelia.datasets.load("PRprec")`), and space-time fields in [spde.md](spde.md) §3.
"""),
]

# ---------------------------------------------------------------------------------------------
SURVIVAL = [
    md("""
# Survival: Weibull, exponential and Cox models with right censoring

**Kidney** (McGilchrist & Aisbett 1991, *Biometrics* 47, 461–466; BUGS Examples "Kidney"):
times to infection at the catheter insertion point for 38 kidney patients, two times per
patient, some right-censored (`event` = 0: the catheter was removed for another reason).
Covariates: `age`, `sex` (0 = male, 1 = female) and the disease type (dummies `dis1`–`dis3`
for GN, AN and PKD; "other" is the baseline); `ID` is the patient.

**Model** (R-INLA's `family="weibullsurv"`, its default `variant=0`): a proportional-hazards
Weibull model with hazard $h(t \\mid x) = \\alpha\\, t^{\\alpha-1} e^{\\eta}$ and survival
$S(t \\mid x) = \\exp(-e^{\\eta} t^{\\alpha})$, with
$\\eta = \\beta_0 + \\beta_1 \\text{age} + \\beta_2 \\text{sex} + \\sum_k \\gamma_k \\text{dis}_k + v_{\\text{ID}}$
and a patient frailty $v \\sim N(0, \\tau^{-1})$ iid. $\\alpha = 1$ is the exponential model
(constant hazard). A censored time $t$ contributes $\\log S(t)$ to the likelihood, an observed
one $\\log f(t) = \\log h(t) + \\log S(t)$.

**Leuk** (Henderson, Shimakura & Gorst 2002, *JASA* 97, 965–972): survival of 1043 adults with
acute myeloid leukaemia in North West England — here to compare the parametric models' covariate
effects with a semi-parametric Cox model.
"""),
    code("""
FULL = False   # True: 4000 joint posterior samples for the survival bands instead of 500
"""),
    code("""
import warnings
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import adelia

%matplotlib inline
kidney = adelia.datasets.load("Kidney")     # R: data(Kidney)
print(kidney.shape, "patients:", kidney["ID"].nunique(), "| censored:", int((kidney["event"] == 0).sum()))
kidney.head()
"""),
    md("""
## Weibull and exponential fits

The response is written as in R: `inla.surv(time, event)` (in Python also
`adelia.inla_surv(time, event)`). `config=True` keeps what `posterior_sample` needs.
"""),
    code("""
formula = "inla.surv(time, event) ~ age + sex + dis1 + dis2 + dis3 + f(ID, model='iid')"
res_w = adelia.inla(formula, kidney, family="weibullsurv", control_compute={"config": True})
print(res_w.summary())
"""),
    md("""
adelia warns that the mode of θ sits at a kink: the shape α is estimated at 1, exactly the base
model of its PC prior (`pc.alphaw`, Van Niekerk et al. 2021), whose density has a kink there.
The data do not ask for a non-constant hazard. The frailty precision is also very large — with
the covariates in the model, the two times of a patient look nearly independent. So the
exponential model should do about as well:
"""),
    code("""
res_e = adelia.inla(formula, kidney, family="exponentialsurv", control_compute={"config": True})
compare = pd.DataFrame({
    "Weibull mean": res_w.summary_fixed["mean"], "Weibull sd": res_w.summary_fixed["sd"],
    "exponential mean": res_e.summary_fixed["mean"], "exponential sd": res_e.summary_fixed["sd"],
})
print(compare.round(3).to_string())
print("log marginal likelihood (integration): Weibull %.2f, exponential %.2f"
      % (res_w.mlik.iloc[0], res_e.mlik.iloc[0]))
"""),
    md("""
Women have a much lower infection hazard: $e^{\\beta_{\\text{sex}}} \\approx 0.2$, and the
disease types GN, AN and PKD raise it about fourfold against "other".

## Against R-INLA

R-INLA 25.07 (INLA R package 25.7.11, compact mode, default priors, one thread) on the same
call, `inla(inla.surv(time, event) ~ age + sex + dis1 + dis2 + dis3 + f(ID, model="iid"),
family="weibullsurv", data=Kidney)`:

| | mean | sd |
|---|---|---|
| (Intercept) | −5.203 | 0.735 |
| age | 0.002 | 0.011 |
| sex | −1.613 | 0.341 |
| dis1 | 1.386 | 0.577 |
| dis2 | 1.420 | 0.522 |
| dis3 | 1.902 | 0.547 |
| alpha parameter for weibullsurv | 1.01 | 0.024 |

log marginal likelihood −355.63 (integration), −356.79 (Gaussian). The fixed effects agree to
a few hundredths of a posterior sd and the marginal likelihoods to about 0.1 (R-INLA's own
reruns of this model are not bit-reproducible: they differ by up to ~0.05 in the marginal
likelihood).
"""),
    code("""
rinla = pd.DataFrame({"mean R-INLA": [-5.203, 0.002, -1.613, 1.386, 1.420, 1.902],
                      "sd R-INLA": [0.735, 0.011, 0.341, 0.577, 0.522, 0.547]},
                     index=["(Intercept)", "age", "sex", "dis1", "dis2", "dis3"])
table = res_w.summary_fixed[["mean", "sd"]].join(rinla)
table["(mean - R-INLA) / sd"] = (table["mean"] - table["mean R-INLA"]) / table["sd R-INLA"]
print(table.round(3).to_string())
print("mlik adelia:", res_w.mlik.round(2).tolist(), "| R-INLA: [-355.63, -356.79]")
"""),
    md("""
## Survival curves with posterior bands

Joint posterior samples (R's `inla.posterior.sample`) of the fixed effects and α give draws of
the whole curve $S(t \\mid x) = \\exp(-e^{x'\\beta} t^{\\alpha})$ for a chosen patient profile;
their pointwise quantiles are the 95 % bands. Here: a 45-year-old with disease type "other",
male vs female, frailty at its mean 0.
"""),
    code("""
n_samples = 4000 if FULL else 500
draws_w = res_w.posterior_sample(n_samples, seed=1)
draws_e = res_e.posterior_sample(n_samples, seed=1)
t = np.linspace(0, 600, 200)

def survival_draws(draws, profile, alpha):
    eta = draws["(Intercept)"].values + sum(draws[k].values * v for k, v in profile.items())
    return np.exp(-np.exp(eta)[:, None] * t[None, :] ** np.asarray(alpha)[:, None])

alpha_w = draws_w["alpha parameter for weibullsurv"].values
fig, ax = plt.subplots(figsize=(8, 4))
for sex, colour in [(0, "C0"), (1, "C3")]:
    profile = {"age": 45, "sex": sex, "dis1": 0, "dis2": 0, "dis3": 0}
    S_w = survival_draws(draws_w, profile, alpha_w)
    S_e = survival_draws(draws_e, profile, np.ones(n_samples))
    lo, hi = np.quantile(S_w, [0.025, 0.975], axis=0)
    ax.fill_between(t, lo, hi, color=colour, alpha=0.2)
    ax.plot(t, S_w.mean(axis=0), color=colour, label=f"{'female' if sex else 'male'}, Weibull (95% band)")
    ax.plot(t, S_e.mean(axis=0), color=colour, ls="--", label=f"{'female' if sex else 'male'}, exponential")
ax.set_xlabel("days since catheter insertion"); ax.set_ylabel("S(t | x): no infection yet")
ax.set_ylim(0, 1); ax.legend();
"""),
    md("""
**Model check against Kaplan–Meier.** The model's population curve for a group is the average
of $S(t \\mid x_i)$ over its patients (each with its own covariates and frailty — the
`Predictor` draws hold $\\eta_i$); the Kaplan–Meier estimate is the non-parametric curve of the
same group.
"""),
    code("""
def kaplan_meier(time, event):
    times = np.unique(time[event == 1])
    at_risk = np.array([(time >= u).sum() for u in times])
    deaths = np.array([((time == u) & (event == 1)).sum() for u in times])
    return np.r_[0, times], np.r_[1, np.cumprod(1 - deaths / at_risk)]

eta_w = draws_w["Predictor"].values          # (sample, row)
S_pop = np.exp(-np.exp(eta_w)[:, :, None] * t[None, None, :] ** alpha_w[:, None, None]).mean(axis=0)
fig, ax = plt.subplots(figsize=(8, 4))
for sex, colour in [(0, "C0"), (1, "C3")]:
    rows = (kidney["sex"] == sex).to_numpy()
    km_t, km_S = kaplan_meier(kidney["time"].to_numpy()[rows], kidney["event"].to_numpy()[rows])
    ax.step(km_t, km_S, where="post", color=colour, label=f"{'female' if sex else 'male'}: Kaplan-Meier")
    ax.plot(t, S_pop[rows].mean(axis=0), color=colour, ls=":", lw=2, label=f"{'female' if sex else 'male'}: Weibull model")
ax.set_xlim(0, 600); ax.set_xlabel("days"); ax.set_ylabel("S(t)"); ax.legend();
"""),
    md("""
## Leuk: Cox proportional hazards against the parametric models

R-INLA fits `family="coxph"` as a Poisson model on data expanded over a partition of the time
axis, with a piecewise-constant log baseline hazard given an rw1 prior (`control.hazard`:
15 intervals by default). Its covariate effects are log hazard ratios — the same quantities as
the β of the Weibull (variant 0) and exponential models, which are proportional-hazards models
too. Covariates: `sex`, `age` (years), `wbc` (white blood cell count) and `tpi` (Townsend
deprivation index).
"""),
    code("""
leuk = adelia.datasets.load("Leuk")     # R: data(Leuk)
formula_leuk = "inla.surv(time, cens) ~ sex + age + wbc + tpi"
fits = {family: adelia.inla(formula_leuk, leuk, family=family)
        for family in ["coxph", "weibullsurv", "exponentialsurv"]}
print(fits["coxph"].summary())
"""),
    code("""
rinla_cox = pd.Series([0.02906, 0.03329, 0.003375, 0.03415], index=["sex", "age", "wbc", "tpi"])
effects = pd.DataFrame({family: r.summary_fixed["mean"].drop("(Intercept)") for family, r in fits.items()})
effects["coxph, R-INLA"] = rinla_cox
effects["coxph sd"] = fits["coxph"].summary_fixed["sd"].drop("(Intercept)")
print(effects.round(4).to_string())
print("Weibull shape alpha:", fits["weibullsurv"].summary_hyperpar["mean"].round(3).to_dict())
"""),
    md("""
The Cox and Weibull effects agree within about 1.5 posterior sd; the exponential model's
constant hazard is wrong for these data (α ≈ 0.58: the hazard falls with time since
diagnosis), and its coefficients move further. The forest plot below shows the hazard ratio for
a one-standard-deviation change in each covariate. The log hazards at the mean covariate values
show where the models differ: the Cox model's piecewise-constant baseline falls by about
$e^{3}$ over the first eight years, further than a Weibull shape $\\alpha t^{\\alpha-1}$ can follow,
and the constant exponential hazard misses both the early high risk and the long-term survivors.
"""),
    code("""
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
covariates = ["sex", "age", "wbc", "tpi"]
scale = leuk[covariates].std()
for k, (family, r) in enumerate(fits.items()):
    sf = r.summary_fixed.loc[covariates]
    y = np.arange(len(covariates)) + 0.2 * (k - 1)
    axes[0].errorbar(np.exp(sf["mean"] * scale), y, fmt="o", label=family,
                     xerr=[np.exp(sf["mean"] * scale) - np.exp(sf["0.025quant"] * scale),
                           np.exp(sf["0.975quant"] * scale) - np.exp(sf["mean"] * scale)])
axes[0].set_yticks(range(len(covariates)), covariates); axes[0].axvline(1, color="k", lw=0.7)
axes[0].set_xlabel("hazard ratio per sd of the covariate (95% interval)"); axes[0].legend(fontsize="small")

xbar = leuk[covariates].mean()
def linear_at_mean(r):
    sf = r.summary_fixed["mean"]
    return sf["(Intercept)"] + float((sf[covariates] * xbar).sum())
bh = fits["coxph"].summary_random["baseline.hazard"]
cut = bh["ID"].to_numpy()
axes[1].step(cut, linear_at_mean(fits["coxph"]) + bh["mean"].to_numpy(), where="post", label="coxph (rw1, 15 intervals)")
alpha = fits["weibullsurv"].summary_hyperpar["mean"].iloc[0]
tt = np.linspace(20, cut.max(), 300)
axes[1].plot(tt, np.log(alpha) + (alpha - 1) * np.log(tt) + linear_at_mean(fits["weibullsurv"]), label="weibullsurv")
axes[1].axhline(linear_at_mean(fits["exponentialsurv"]), color="C2", label="exponentialsurv")
axes[1].set_xlabel("days since diagnosis"); axes[1].set_ylabel("log hazard at mean covariates"); axes[1].legend(fontsize="small")
fig.tight_layout()
"""),
    md("""
R-INLA 25.07 on `inla(inla.surv(time, cens) ~ sex + age + wbc + tpi, family="coxph",
data=Leuk)` (default `control.hazard`): sex 0.0291 (sd 0.0339), age 0.0333 (0.0021),
wbc 0.00338 (0.00045), tpi 0.0341 (0.0090), log precision of the baseline hazard 7.22 (0.54),
log marginal likelihood −2594.50 (integration) / −2594.87 (Gaussian) — the `coxph, R-INLA`
column above.

## What to try next

* A spatial frailty: Leuk's `district` is a node of `datasets.graph("Leuk")`;
  add `f(district, model='besag', graph=g)` (Henderson et al.'s model) and map the districts.
* A smoother baseline hazard: `control_hazard={"model": "rw2", "n.intervals": 30}`.
* Other survival families: `lognormalsurv`, `loglogisticsurv`, `gammasurv`; compare by
  `control_compute={"waic": True}` or the marginal likelihood.
* Interval-censored or left-truncated data: `inla_surv(time, event, time2=..., truncation=...)`.
"""),
]

# ---------------------------------------------------------------------------------------------
GRADIENTS = [
    md("""
# Gradients: the Laplace objective as a differentiable function

INLA's first stage works on the hyperparameters θ alone, through the Laplace approximation

$$\\log \\tilde\\pi(\\theta \\mid y) = \\log \\pi(\\theta) + \\log \\pi(x^\\star \\mid \\theta) + \\log \\pi(y \\mid x^\\star, \\theta)
- \\tfrac12 \\log \\det Q^\\star(\\theta) + \\text{const},$$

with $x^\\star(\\theta)$ the mode of the latent field and $Q^\\star$ the precision of the Gaussian
approximation at it. R-INLA finds the mode of θ with BFGS on **finite-difference** gradients
(2d evaluations, each a sparse Cholesky factorisation, for d hyperparameters) and takes the
Hessian the same way. adelia writes the objective in JAX, so its gradient comes by
**reverse-mode automatic differentiation** through the inner Newton iteration and the sparse
factorisation — exact to rounding, at the cost of about one or two evaluations whatever d is.

`adelia.compile` returns that objective as a `Model`: `model.log_posterior(theta)`,
`model.grad_log_posterior(theta, method="ad" | "fd")`, and `model.fit()` for the whole INLA run.

**Data** (Harvey & Durbin 1986, *JRSS A* 149, 187–227): monthly numbers of drivers killed or
seriously injured in Great Britain, January 1969 – December 1984; `belt` = 1 after the
seat-belt law of February 1983. **Model**: a structural time series for the log counts,
$\\log y_t = \\beta_0 + \\beta_1 \\text{belt}_t + \\text{trend}_t + \\text{season}_t + \\varepsilon_t$,
with an rw2 trend, a seasonal effect of period 12 and Gaussian noise: d = 3 log precisions.
"""),
    code("""
FULL = False   # True: time each gradient over more repetitions (steadier timings)
"""),
    code("""
import time
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import scipy.optimize
import adelia

%matplotlib inline
drivers = adelia.datasets.load("Drivers")
drivers = drivers[drivers["y"].notna()].copy()
drivers["log_y"] = np.log(drivers["y"])
drivers["t_ar"] = drivers["trend"]      # copies of the time index for the extra terms below
drivers["t_iid"] = drivers["trend"]
print(drivers.shape)
drivers.head()
"""),
    md("""
## The compiled objective

`adelia.compile` takes exactly `adelia.inla`'s arguments. θ is on R-INLA's internal scale (log
precisions), in R-INLA's order: likelihood hyperparameters first, then the f() terms'.
`model.theta0` holds R-INLA's initial values.
"""),
    code("""
formula = ("log_y ~ belt + f(trend, model='rw2')"
           " + f(seasonal, model='seasonal', season.length=12)")
model = adelia.compile(formula, drivers)
print(model)
theta0 = model.theta0
print("theta names:", model.theta_names)
print("theta0:", theta0, " log pi(theta0 | y) =", round(model.log_posterior(theta0), 4))
"""),
    md("""
## AD against finite differences

`method="fd"` is R-INLA's central difference $(f(\\theta + h e_j) - f(\\theta - h e_j)) / 2h$
with its default step $h = 0.005$. The two agree to the difference formula's truncation error
$O(h^2)$, $10^{-6}$–$10^{-4}$ here. At R-INLA's starting point that is a relative error of
$10^{-6}$; at the mode, where the true gradient vanishes, the FD error is larger than the
gradient itself — which limits how precisely a finite-difference optimiser can place the mode:
"""),
    code("""
res = model.fit()
theta_mode = res.mode["theta"]
rows = []
for where, theta in [("theta0", theta0), ("mode", theta_mode)]:
    g_ad = model.grad_log_posterior(theta, method="ad")
    g_fd = model.grad_log_posterior(theta, method="fd")
    for name, a, f in zip(model.theta_names, g_ad, g_fd):
        rows.append({"at": where, "theta": name, "AD": a, "FD (h=0.005)": f, "|AD - FD|": abs(a - f)})
agreement = pd.DataFrame(rows).set_index(["at", "theta"])
print(agreement.to_string(float_format=lambda v: f"{v:.3g}"))
"""),
    md("""
The finite-difference error depends on the step: too large a step and the truncation error
$O(h^2)$ dominates, too small and the rounding of the inner Newton solves ($\\epsilon / h$)
does. AD has neither.
"""),
    code("""
g_ad = model.grad_log_posterior(theta0, method="ad")
steps = np.logspace(-6, -0.5, 12)
errors = [np.max(np.abs(model.grad_log_posterior(theta0, method="fd", step=h) - g_ad)) for h in steps]
fig, ax = plt.subplots(figsize=(5.5, 3.5))
ax.loglog(steps, errors, marker="o")
ax.axvline(0.005, color="k", lw=0.7, ls="--", label="R-INLA's default step")
ax.set_xlabel("finite-difference step h"); ax.set_ylabel("max |FD - AD| over θ"); ax.legend();
"""),
    md("""
## Using the gradient

The objective and its gradient are ordinary Python functions of a NumPy vector, so any
gradient-based optimiser or sampler can use them. SciPy's L-BFGS on $-\\log\\tilde\\pi$ finds the
same mode as adelia's own INLA run:
"""),
    code("""
opt = scipy.optimize.minimize(lambda th: -model.log_posterior(th), theta0, method="L-BFGS-B",
                              jac=lambda th: -model.grad_log_posterior(th, method="ad"))
pd.DataFrame({"L-BFGS with AD gradient": opt.x, "model.fit() mode": theta_mode},
             index=model.theta_names).round(4)
"""),
    code("""
print(res.summary_fixed.round(3).to_string())
print("seat-belt law: posterior mean change in deaths and serious injuries %.1f %%"
      % (100 * (np.exp(res.summary_fixed.loc["belt", "mean"]) - 1)))
"""),
    md("""
## Time per gradient against d

The cost of a finite-difference gradient grows like 2d objective evaluations; that of the AD
gradient stays at a small multiple of one evaluation. Six nested models on the same data, with
d = 1 … 6 hyperparameters (Gaussian noise; + rw2 trend; + seasonal; + an iid term; + an ar1 term
(precision and correlation) instead of the iid one; all of them). Each model is compiled once
(a second or two, cached on disk across sessions); the timings are the best of a few repetitions.
On a two-core laptop the FD batch runs its 2d evaluations in parallel threads, so its line grows
more slowly than 2d evaluations in sequence would.
"""),
    code("""
terms = {"rw2": "f(trend, model='rw2')", "seasonal": "f(seasonal, model='seasonal', season.length=12)",
         "iid": "f(t_iid, model='iid')", "ar1": "f(t_ar, model='ar1')"}
nested = [[], ["rw2"], ["rw2", "seasonal"], ["rw2", "seasonal", "iid"],
          ["rw2", "seasonal", "ar1"], ["rw2", "seasonal", "ar1", "iid"]]
repeats = 20 if FULL else 5

def best_time(fn):
    fn()   # the first call compiles
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    return min(times)

timing = []
for names in nested:
    m = adelia.compile(" + ".join(["log_y ~ belt"] + [terms[k] for k in names]), drivers)
    th = m.theta0
    timing.append({"d": th.size, "model": " + ".join(["gaussian"] + names),
                   "objective (ms)": 1e3 * best_time(lambda: m.log_posterior(th)),
                   "AD gradient (ms)": 1e3 * best_time(lambda: m.grad_log_posterior(th, method="ad")),
                   "FD gradient (ms)": 1e3 * best_time(lambda: m.grad_log_posterior(th, method="fd")),
                   "max |AD - FD|": np.max(np.abs(m.grad_log_posterior(th, method="ad")
                                                  - m.grad_log_posterior(th, method="fd")))})
timing = pd.DataFrame(timing).set_index("d")
print(timing.to_string(float_format=lambda v: f"{v:.3g}"))
fig, ax = plt.subplots(figsize=(6, 3.8))
for col, marker in [("objective (ms)", "s"), ("AD gradient (ms)", "o"), ("FD gradient (ms)", "^")]:
    ax.plot(timing.index, timing[col], marker=marker, label=col.replace(" (ms)", ""))
ax.set_xlabel("number of hyperparameters d"); ax.set_ylabel("time per call (ms)")
ax.set_ylim(bottom=0); ax.legend();
"""),
    md("""
## What to try next

* `model.sample_theta(1000, chains=4)` runs NUTS on $\\log\\tilde\\pi(\\theta \\mid y)$ with this
  exact gradient (`pip install adelia[mcmc]`) — a check of INLA's integration over θ where the
  hyperposterior is skewed.
* `model.log_posterior_batch(thetas)` and `model.grad_batch(thetas)` evaluate a whole design of
  θ points at once (host threads on a CPU, one vectorised call on a GPU).
* Larger models — an SPDE field ([geostatistics.ipynb](geostatistics.ipynb)) or BYM2 on 544
  districts ([disease_mapping.ipynb](disease_mapping.ipynb)) — make each evaluation a larger
  sparse factorisation, and the saving of AD over 2d evaluations matters more.
"""),
]

# ---------------------------------------------------------------------------------------------
SPACETIME = [
    md("""
# Space-time: a separable SPDE ⊗ AR1 field on simulated data

A Gaussian field that evolves in time, observed with noise at scattered places at each of 8
time points. The data are simulated here (fixed seed) from the model itself, so the truth is
known and the posterior can be held against it.

**Model** (Cameletti, Lindgren, Simpson & Rue 2013, *AStA* 97, 109–131; Krainski et al. 2018,
*Advanced Spatial Modeling with Stochastic Partial Differential Equations Using R and INLA*,
§7.1): $y_i = \\beta_0 + u(s_i, t_i) + \\varepsilon_i$, $\\varepsilon_i \\sim N(0, \\tau_\\varepsilon^{-1})$,
with $u(\\cdot, t) = \\rho\\, u(\\cdot, t-1) + \\sqrt{1-\\rho^2}\\,\\omega(\\cdot, t)$ and
$\\omega(\\cdot, t)$ independent Matérn fields (ν = 1, range $r$, marginal sd σ) — a
separable field with precision $Q = Q_{\\text{AR1}}(\\rho) \\otimes Q_{\\text{SPDE}}(r, \\sigma)$.
In R-INLA: `f(s, model=spde, group=s.group, control.group=list(model="ar1"))`;
`adelia.spde.spacetime_separable` is the same model on one space-time index
$\\text{st} = \\text{node} + n_s (t-1)$ (hyperparameters and priors identical).
"""),
    code("""
FULL = False   # True: more observations per time point and a finer mesh
"""),
    code("""
import warnings
import numpy as np
import pandas as pd
import scipy.linalg
import matplotlib.pyplot as plt
import jax.numpy as jnp
import adelia
from adelia import spde as S

%matplotlib inline
rng = np.random.default_rng(1)
n_times, n_per_time = 8, (150 if FULL else 60)
mesh = S.mesh_2d(rng.random((40, 2)), max_edge=(0.1, 0.3) if FULL else (0.2, 0.5), offset=(0.15, 0.3), cutoff=0.05)
print(mesh, "->", mesh.n * n_times, "space-time nodes")
"""),
    md("""
## The model and a draw from it

`spde2_pcmatern` puts PC priors on the spatial range and σ ($P(r < 0.3) = 0.5$,
$P(\\sigma > 1) = 0.05$); the AR1 group keeps R-INLA's default prior, normal(0, 0.15) on
$\\log\\frac{1+\\rho}{1-\\rho}$. The field is drawn from the model's own precision at the true
hyperparameters (internal scale: log range, log σ, $\\log\\frac{1+\\rho}{1-\\rho}$), by a dense
Cholesky factor — fine for ~1200 nodes.
"""),
    code("""
truth = {"range": 0.5, "sigma": 1.0, "rho": 0.7, "prec": 25.0, "b0": 1.0}
spde = S.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1.0, 0.05))
sep = S.spacetime_separable(spde, n_times)          # control_group={"model": "ar1"} by default

theta_field = np.log([truth["range"], truth["sigma"], (1 + truth["rho"]) / (1 - truth["rho"])])
Q = np.asarray(sep.latent_model("st").precision_dense(jnp.asarray(theta_field)))
L = np.linalg.cholesky(Q)
x_true = scipy.linalg.solve_triangular(L.T, rng.standard_normal(Q.shape[0]), lower=False)

loc = rng.random((n_per_time * n_times, 2))               # new places at every time point
time = np.repeat(np.arange(1, n_times + 1), n_per_time)
A = S.make_A(mesh, loc, group=time, n_group=n_times)     # column = node + mesh.n·(time − 1)
y = truth["b0"] + A @ x_true + rng.standard_normal(time.size) / np.sqrt(truth["prec"])
print(f"{y.size} observations, sd(y) = {y.std():.2f}")
"""),
    md("""
## The fit

The stack form, as in R: the projector `A` maps the space-time nodes to the observations,
the intercept is a second effect.
"""),
    code("""
stk = S.stack(data={"y": y}, A=[A, 1],
              effects=[{"st": np.arange(1, mesh.n * n_times + 1)}, {"b0": np.ones(y.size)}], tag="est")
data, A_stack = S.stack_data(stk), S.stack_A(stk)
res = adelia.inla("y ~ 0 + b0 + f(st, model=sep)", data,
                  control_predictor={"A": A_stack}, context={"sep": sep})
print(res.summary())
"""),
    md("""
## Truth against the posterior

Every true value should fall inside its 95 % interval (one seed; the data are not tuned to
the answer):
"""),
    code("""
rows = {"(Intercept) b0": ("b0", truth["b0"]),
        "Precision for the Gaussian observations": ("Precision for the Gaussian observations", truth["prec"]),
        "Range for st": ("Range for st", truth["range"]),
        "Stdev for st": ("Stdev for st", truth["sigma"]),
        "GroupRho for st (AR1 ρ)": ("GroupRho for st", truth["rho"])}
summ = pd.concat([res.summary_fixed, res.summary_hyperpar])
table = pd.DataFrame({"truth": [t for _, t in rows.values()]}, index=list(rows))
for col in ["mean", "sd", "0.025quant", "0.975quant"]:
    table[col] = [summ.loc[name, col] for name, _ in rows.values()]
table["inside 95%"] = (table["0.025quant"] < table["truth"]) & (table["truth"] < table["0.975quant"])
table.round(3)
"""),
    code("""
names = ["Precision for the Gaussian observations", "Range for st", "Stdev for st", "GroupRho for st"]
fig, axes = plt.subplots(1, 4, figsize=(14, 3))
for ax, name, t in zip(axes, names, [truth["prec"], truth["range"], truth["sigma"], truth["rho"]]):
    m = res.marginals_hyperpar[name]
    ax.plot(m["x"], m.values)
    ax.axvline(t, color="k", ls="--", label="truth")
    ax.set_title(name.replace(" for the Gaussian observations", " (noise)"), fontsize=10)
axes[0].legend(); fig.tight_layout()
"""),
    md("""
## The fitted field against the truth

`res.summary_random["st"]` holds one row per space-time node (node fastest, then time).
Below, the true field and its posterior mean at the first and the last time point, on the
triangulation, cropped to the unit square where the data are:
"""),
    code("""
field = res.summary_random["st"]
post_mean = field["mean"].to_numpy().reshape(n_times, mesh.n)
post_sd = field["sd"].to_numpy().reshape(n_times, mesh.n)
x_t = x_true.reshape(n_times, mesh.n)
inside = np.all((mesh.loc[:, :2] >= 0) & (mesh.loc[:, :2] <= 1), axis=1)

shown = [1, n_times]
levels = np.linspace(-3, 3, 25)
fig, axes = plt.subplots(2, 2, figsize=(9, 8.5))
for j, t in enumerate(shown):
    for i, (z, what) in enumerate([(x_t[t - 1], "truth"), (post_mean[t - 1], "posterior mean")]):
        ax = axes[i, j]
        tc = ax.tricontourf(mesh.loc[:, 0], mesh.loc[:, 1], mesh.tv, np.clip(z, -3, 3), levels=levels, cmap="RdBu_r")
        obs = time == t
        ax.scatter(loc[obs, 0], loc[obs, 1], s=4, c="k")
        ax.set_xlim(0, 1); ax.set_ylim(0, 1); ax.set_aspect("equal")
        ax.set_title(f"{what}, t = {t}")
fig.colorbar(tc, ax=axes, shrink=0.6, label="u(s, t)");
"""),
    code("""
err = (post_mean - x_t)[:, inside]
z = err / post_sd[:, inside]
print(f"nodes in the unit square: corr(truth, posterior mean) = {np.corrcoef(x_t[:, inside].ravel(), post_mean[:, inside].ravel())[0, 1]:.3f}, "
      f"RMSE = {np.sqrt(np.mean(err**2)):.3f} (field sd {truth['sigma']})")
print(f"share of true node values inside mean ± 1.96 sd: {np.mean(np.abs(z) < 1.96):.3f}")
"""),
    md("""
## A second model: DEMF(1,2,1)

The same data fitted with INLAspacetime's non-separable diffusion-based model DEMF(1,2,1)
(Lindgren et al. 2024, *Spatial Statistics* 60; `stModel.define(smesh, tmesh, "121", ...)`),
`adelia.spde.spacetime_demf`, with PC priors on the spatial range, the temporal range and σ.
Its θ is (log spatial range, log temporal range, log σ). The model is misspecified here
(the truth is separable), and its time dependence is parametrised differently from an AR1,
so compare what the two share: the spatial range, σ, the noise precision, the fitted field
and the marginal likelihood.
"""),
    code("""
demf = S.spacetime_demf(mesh, n_times, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5), prior_sigma=(1.0, 0.05))
res_demf = adelia.inla("y ~ 0 + b0 + f(st, model=demf)", data,
                       control_predictor={"A": A_stack}, context={"demf": demf})
hd = res_demf.internal_summary_hyperpar
hs = res.summary_hyperpar
comp = pd.DataFrame({
    "truth": [truth["prec"], truth["range"], truth["sigma"], np.nan],
    "separable (mean)": [hs.loc[n, "mean"] for n in names[:3]] + [np.nan],
    "DEMF (median)": [res_demf.summary_hyperpar.loc["Precision for the Gaussian observations", "0.5quant"]]
                     + list(np.exp(hd.loc[["Theta1 for st", "Theta3 for st", "Theta2 for st"], "0.5quant"])),
}, index=["noise precision", "spatial range", "σ", "temporal range (DEMF)"])
comp.loc["log marginal likelihood (integration)"] = [np.nan, res.mlik.iloc[0], res_demf.mlik.iloc[0]]
comp.round(3)
"""),
    code("""
post_demf = res_demf.summary_random["st"]["mean"].to_numpy().reshape(n_times, mesh.n)
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
for ax, t in zip(axes, shown):
    ax.scatter(x_t[t - 1, inside], post_mean[t - 1, inside], s=10, label="separable")
    ax.scatter(x_t[t - 1, inside], post_demf[t - 1, inside], s=10, marker="x", label="DEMF")
    lim = np.abs(x_t[t - 1, inside]).max() * 1.1
    ax.plot([-lim, lim], [-lim, lim], color="k", lw=0.8)
    ax.set_xlabel("true u at mesh nodes"); ax.set_ylabel("posterior mean"); ax.set_title(f"t = {t}")
axes[0].legend(); fig.tight_layout()
for label, pm in [("separable", post_mean), ("DEMF", post_demf)]:
    print(f"{label:9s} RMSE in the unit square: {np.sqrt(np.mean((pm - x_t)[:, inside] ** 2)):.3f}")
"""),
    md("""
## What to try next

* Forecasting: add a stack with `y = NaN` at time `n_times + 1` (build the model with one
  more time point) and read the predictive mean and sd there — the AR1 pulls the forecast
  towards β₀ at rate ρ.
* Other groups: `S.spacetime_separable(spde, n_times, control_group={"model": "rw1"})` or
  `{"model": "exchangeable"}`, or R's own form
  `f(s, model=spde, group=s.group, control.group=list(model="ar1"))` with
  `S.make_index("s", mesh.n, n_group=n_times)` ([spde.md](spde.md) §3).
* More data (`FULL = True`): the posteriors of the range and ρ narrow and the field maps sharpen.
* Several variates sharing space-time fields: `S.coregional(...)` ([spde.md](spde.md) §4).
* On a GPU, `control_inla={"solver": "bta"}` uses the time-block structure of both models
  ([spde.md](spde.md) §5).
"""),
]

# ---------------------------------------------------------------------------------------------
RINLA_TO_ADELIA = [
    md("""
# From R-INLA to adelia: five models side by side

Five models an R-INLA user knows, each as the R code and the adelia code that does the same
thing, and then both sets of numbers. The R-INLA numbers are read at run time from the
project's reference fits (`../shared/reference/rinla/<case>/results.json`: R-INLA 25.07,
compact mode, one thread, `num.threads = "1:1"`); where that folder is absent (a fresh clone)
the comparison cells say so and the adelia fits still run.

The rules of translation (the full dictionary is [docs/rinla_to_adelia.md](../docs/rinla_to_adelia.md)):

| R-INLA | adelia |
|---|---|
| `inla(formula, data = d, family = "poisson", E = E)` | `adelia.inla("formula", d, family="poisson", E="E")` — the formula is a string, copied verbatim; data columns by name |
| `control.compute = list(dic = TRUE)` | `control_compute={"dic": True}` — `.` → `_` in argument names, lists → dicts |
| `graph = g` (an R object) | `graph=g` in the formula and `context={"g": g}` |
| `r$summary.fixed`, `r$mlik` | `res.summary_fixed`, `res.mlik` (also `res["summary.fixed"]`) |
"""),
    code("""
FULL = False   # True: also the Cox proportional-hazards model on the Leuk data (a sixth model)
"""),
    code("""
import json
from pathlib import Path
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import adelia
from adelia import datasets
from adelia import spde as S

%matplotlib inline
# R-INLA's numbers: ../shared/reference/rinla next to the repository (or $ADELIA_RINLA_REFERENCE)
import os
REFERENCE = Path(os.environ.get("ADELIA_RINLA_REFERENCE",
                                Path(adelia.__file__).resolve().parents[2] / "shared" / "reference" / "rinla"))

def rinla(case):
    \"\"\"R-INLA's results.json for a reference case, or None when the reference is absent.\"\"\"
    path = REFERENCE / case / "results.json"
    return json.loads(path.read_text()) if path.exists() else None

def compare(res, case):
    \"\"\"adelia against R-INLA: fixed effects and internal hyperparameters, mean and sd, and the
    log marginal likelihood; differences of means in units of R-INLA's posterior sd.\"\"\"
    ref = rinla(case)
    if ref is None:
        print(f"R-INLA reference for {case!r} not found under {REFERENCE}: comparison skipped")
        return None
    rows = []
    for kind, ours, theirs in [("fixed", res.summary_fixed, ref["summary_fixed"]),
                               ("hyper (internal)", res.internal_summary_hyperpar, ref["internal_summary_hyperpar"])]:
        if not theirs:   # no fixed effects in the model (R-INLA's NULL table)
            continue
        for name, m, sd in zip(theirs["name"], theirs["mean"], theirs["sd"]):
            rows.append({"model": case, "kind": kind, "name": name, "R-INLA mean": m, "adelia mean": ours.loc[name, "mean"],
                         "R-INLA sd": sd, "adelia sd": ours.loc[name, "sd"]})
    table = pd.DataFrame(rows)
    table["Δmean / sd"] = (table["adelia mean"] - table["R-INLA mean"]) / table["R-INLA sd"]
    table["sd ratio"] = table["adelia sd"] / table["R-INLA sd"]
    mlik = {"model": case, "kind": "mlik", "name": "log mlik (integration)",
            "R-INLA mean": ref["mlik"]["integration"], "adelia mean": res.mlik.iloc[0]}
    return pd.concat([table, pd.DataFrame([mlik])], ignore_index=True)

comparisons = []
"""),
    md("""
## 1. A binomial GLMM: Seeds

```r
library(INLA)
data(Seeds)
r <- inla(r ~ x1 + x2 + f(plate, model = "iid"), family = "binomial", Ntrials = n,
          data = Seeds)
summary(r)
```
"""),
    code("""
seeds = datasets.load("Seeds")
res_seeds = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n")
res_seeds.summary_fixed
"""),
    code("""
comparisons.append(compare(res_seeds, "seeds_iid"))
comparisons[-1]
"""),
    md("""
`Ntrials = n` (an R expression evaluated in the data) becomes `Ntrials="n"` (a column name);
a NumPy array works too. adelia warns here that π(θ | y) has mass far from its mode (R-INLA
is silent): the precision's posterior runs off to +∞ under the default loggamma(1, 5e-5)
prior — see [quickstart.ipynb](quickstart.ipynb).

## 2. Disease mapping: BYM2 on Scotland's lip cancer

```r
data(Scotland)
g <- system.file("demodata/scotland.graph", package = "INLA")
r <- inla(Counts ~ 1 + I(X/10) + f(Region, model = "bym2", graph = g),
          family = "poisson", E = E, data = Scotland)
```
"""),
    code("""
scotland = datasets.load("Scotland")
g = datasets.graph("Scotland")             # or the graph file's path: datasets.graph_path("Scotland")
res_scot = adelia.inla("Counts ~ 1 + I(X/10) + f(Region, model='bym2', graph=g)", scotland,
                       family="poisson", E="E", context={"g": g})
res_scot.summary_hyperpar
"""),
    code("""
comparisons.append(compare(res_scot, "scotland_bym2"))
comparisons[-1]
"""),
    md("""
`I(X/10)` is evaluated as in R, and its row is named `I(X/10)` in `summary_fixed`. The bym2
defaults are R-INLA's: `scale.model = TRUE`, PC priors pc.prec(1, 0.01) and pc(0.5, 2/3) on φ.

## 3. A cyclic random walk: Tokyo rainfall

```r
data(Tokyo)
r <- inla(y ~ -1 + f(time, model = "rw2", cyclic = TRUE), family = "binomial",
          Ntrials = n, data = Tokyo, control.predictor = list(compute = TRUE))
plot(Tokyo$time, r$summary.fitted.values$mean)
```
"""),
    code("""
tokyo = datasets.load("Tokyo")
res_tokyo = adelia.inla("y ~ -1 + f(time, model='rw2', cyclic=TRUE)", tokyo, family="binomial",
                        Ntrials="n", control_predictor={"compute": True})
fv = res_tokyo.summary_fitted_values
fig, ax = plt.subplots(figsize=(8, 2.8))
ax.scatter(tokyo["time"], tokyo["y"] / tokyo["n"], s=4, color="0.5")
ax.plot(tokyo["time"], fv["mean"]); ax.fill_between(tokyo["time"], fv["0.025quant"], fv["0.975quant"], alpha=0.3)
ax.set_xlabel("day of the year"); ax.set_ylabel("P(rain)");
"""),
    code("""
comparisons.append(compare(res_tokyo, "tokyo_rw2_cyclic"))
comparisons[-1]
"""),
    md("""
## 4. Geostatistics: an SPDE field with PC priors on SPDEtoy

```r
data(SPDEtoy)
mesh <- fm_mesh_2d_inla(loc = cbind(SPDEtoy$s1, SPDEtoy$s2), max.edge = c(0.1, 0.3),
                        offset = c(0.1, 0.4), cutoff = 0.02)
spde <- inla.spde2.pcmatern(mesh, alpha = 2, prior.range = c(0.3, 0.5), prior.sigma = c(1, 0.01))
A <- inla.spde.make.A(mesh, loc = cbind(SPDEtoy$s1, SPDEtoy$s2))
stk <- inla.stack(data = list(y = SPDEtoy$y), A = list(A, 1),
                  effects = list(s = 1:spde$n.spde, data.frame(b0 = rep(1, 200))), tag = "est")
r <- inla(y ~ 0 + b0 + f(s, model = spde), data = inla.stack.data(stk),
          control.predictor = list(A = inla.stack.A(stk)))
```

adelia has the same stack functions (`S.make_A`, `S.stack`, `S.stack_data`, `S.stack_A`), and
also a shorter spelling without a stack: `f(cbind(s1, s2), model=spde)` builds the projector
from the data's coordinate columns. Meshes from fmesher and from `S.mesh_2d` differ in their node
placement, so for a like-for-like comparison this cell uses R-INLA's own mesh when the
reference folder is there (`loc.csv`, `tv.csv`: `S.Mesh(loc, tv)`).
"""),
    code("""
toy = datasets.load("SPDEtoy")
loc = toy[["s1", "s2"]].to_numpy()
ref_dir = REFERENCE / "spdetoy_pcmatern"
if (ref_dir / "tv.csv").exists():   # fmesher's mesh as R-INLA used it
    mesh = S.Mesh(pd.read_csv(ref_dir / "loc.csv").to_numpy()[:, :2], pd.read_csv(ref_dir / "tv.csv").to_numpy() - 1)
else:
    mesh = S.mesh_2d(loc, max_edge=(0.1, 0.3), offset=(0.1, 0.4), cutoff=0.02)
spde = S.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
A = S.make_A(mesh, loc)
stk = S.stack(data={"y": toy["y"].to_numpy()}, A=[A, 1],
              effects=[{"s": np.arange(1, mesh.n + 1)}, {"b0": np.ones(len(toy))}], tag="est")
res_spde = adelia.inla("y ~ 0 + b0 + f(s, model=spde)", S.stack_data(stk),
                       control_predictor={"A": S.stack_A(stk)}, context={"spde": spde})
print(mesh)
res_spde.summary_hyperpar
"""),
    code("""
comparisons.append(compare(res_spde, "spdetoy_pcmatern"))
comparisons[-1]
"""),
    md("""
## 5. Survival: a Weibull frailty model on the kidney infection data

```r
data(Kidney)
r <- inla(inla.surv(time, event) ~ age + sex + dis1 + dis2 + dis3 + f(ID, model = "iid"),
          family = "weibullsurv", data = Kidney)
```

`inla.surv(time, event)` is written the same way inside the formula string (or as
`adelia.inla_surv(...)` outside it). The Weibull variant is R-INLA's default (`variant = 0`,
$h(t) = \\alpha t^{\\alpha-1} e^{\\eta}$), with the same pc.alphaw prior on α.
"""),
    code("""
kidney = datasets.load("Kidney")
res_weib = adelia.inla("inla.surv(time, event) ~ age + sex + dis1 + dis2 + dis3 + f(ID, model='iid')",
                       kidney, family="weibullsurv")
res_weib.summary_fixed
"""),
    code("""
comparisons.append(compare(res_weib, "weibull_surv"))
comparisons[-1]
"""),
    code("""
if FULL:   # a sixth model: Cox proportional hazards with R-INLA's piecewise-constant baseline
    leuk = datasets.load("Leuk")
    res_cox = adelia.inla("inla.surv(time, cens) ~ sex + age + wbc + tpi", leuk, family="coxph")
    comparisons.append(compare(res_cox, "coxph_leuk"))
    display(comparisons[-1])
"""),
    md("""
## All models: adelia against R-INLA

One row per model: the largest difference of a fixed-effect or hyperparameter posterior mean in
units of R-INLA's posterior sd, the range of the sd ratios, and the difference of the log
marginal likelihoods. The project's acceptance tolerances are 0.05 sd for fixed-effect means and
0.10 for hyperparameter means (`tests/inference/test_rinla_reference.py` checks them on every
commit). The one larger difference is the Weibull model's frailty precision: its posterior is
pressed against large precisions (a frailty variance near zero) and both programs' design
points sit in that flat tail; R-INLA's own reruns of this case differ by up to 0.05 in the log
marginal likelihood (the reference's notes).
"""),
    code("""
done = [c for c in comparisons if c is not None]
if done:
    allc = pd.concat(done, ignore_index=True)
    params = allc[allc["kind"] != "mlik"]
    overview = {}
    for model, t in allc.groupby("model", sort=False):
        z = t.set_index("kind")["Δmean / sd"].abs()
        overview[model] = {
            "max |Δmean| / sd (fixed)": z.get("fixed", pd.Series(dtype=float)).max(),
            "max |Δmean| / sd (hyper)": z.get("hyper (internal)", pd.Series(dtype=float)).max(),
            "sd ratio min": t["sd ratio"].min(), "sd ratio max": t["sd ratio"].max(),
            "Δ log mlik": float(t.loc[t["kind"] == "mlik", "adelia mean"].iloc[0] - t.loc[t["kind"] == "mlik", "R-INLA mean"].iloc[0]),
        }
    overview = pd.DataFrame(overview).T
    display(overview.round(3))
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.scatter(params["Δmean / sd"], params["model"], c=(params["kind"] == "fixed").map({True: "C0", False: "C1"}))
    ax.axvline(0, color="k", lw=0.7)
    for x in (-0.1, 0.1):
        ax.axvline(x, color="0.6", ls="--", lw=0.7)
    ax.set_xlabel("(adelia − R-INLA) posterior mean / R-INLA sd   (blue: fixed, orange: hyperparameters)")
else:
    print("no R-INLA reference found: nothing to compare")
"""),
    md("""
## What to try next

* Any other R-INLA script: [docs/rinla_to_adelia.md](../docs/rinla_to_adelia.md) lists every
  `inla()` and `f()` argument, control key, model, family and prior with its adelia spelling;
  [docs/translation_trial.md](../docs/translation_trial.md) shows three tutorial scripts
  translated with it.
* Predictions without stacks, linear combinations and NUTS over θ:
  [prediction.ipynb](prediction.ipynb).
* The models above in depth: [quickstart.ipynb](quickstart.ipynb),
  [disease_mapping.ipynb](disease_mapping.ipynb), [time_series.ipynb](time_series.ipynb),
  [geostatistics.ipynb](geostatistics.ipynb), [survival.ipynb](survival.ipynb).
"""),
]

# ---------------------------------------------------------------------------------------------
PREDICTION = [
    md("""
# Predictions, linear combinations and NUTS over θ

Three things R-INLA makes hard or cannot do, on the Seeds data of the
[quickstart](quickstart.ipynb) (Crowder 1978) and the SPDE toy data:

* **`res.predict(new_data)`** — the fitted model evaluated at new rows: new covariate values,
  a plate never seen, new locations of an SPDE field; no refit with `NA` responses, no
  `inla.stack` (inlabru's `predict(fit, newdata, ~ expr)` in spirit);
* **`lincomb=`** with `adelia.make_lincomb(s)` — R-INLA's `inla.make.lincomb(s)`: posteriors of
  linear combinations of the latent field (contrasts, sums of effects);
* **`control_inla={"int.strategy": "nuts"}`** — the No-U-Turn sampler over the hyperparameters
  on log π̃(θ | y) with its exact gradient, where INLA's design around the mode misses mass.

The API is in [docs/prediction.md](../docs/prediction.md).
"""),
    code("""
FULL = False   # True: longer NUTS chains (4 x 1000 draws) and 4000 prediction samples
"""),
    code("""
import warnings
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import adelia
from adelia import spde as S

%matplotlib inline
seeds = adelia.datasets.load("Seeds")
n_samples = 4000 if FULL else 1000
formula = "r ~ x1 + x2 + f(plate, model='iid', hyper=list(prec=list(prior='pc.prec', param=c(1, 0.01))))"
"""),
    md("""
## Linear combinations

R:
```r
lc1 <- inla.make.lincomb(x1 = 1, x2 = 1)                       # beta1 + beta2
lc2 <- inla.make.lincomb(plate = c(-1, NA, 1))                  # u3 - u1
lcs <- inla.make.lincombs("(Intercept)" = rep(1, 21), plate = diag(21))   # beta0 + u_i
names(lc1) <- "x1_plus_x2"; names(lc2) <- "plate3_vs_1"
r <- inla(formula, data = Seeds, family = "binomial", Ntrials = n,
          lincomb = c(lc1, lc2, lcs), control.inla = list(lincomb.derived.correlation.matrix = TRUE))
r$summary.lincomb.derived
```

adelia spells `NA` as `None` (or NaN) and names come from the dict keys; `make_lincombs`
names its rows `lc01`, `lc02`, ... as R-INLA does. Each combination's posterior is derived from
the Gaussian approximation at each integration point and mixed over the design, as in R-INLA.
"""),
    code("""
lc = {"x1_plus_x2": adelia.make_lincomb(x1=1, x2=1),
      "plate3_vs_1": adelia.make_lincomb(plate=[-1, None, 1])}
lcs = adelia.make_lincombs(**{"(Intercept)": np.ones(21)}, plate=np.eye(21))   # beta0 + u_i, lc01..lc21
res = adelia.inla(formula, seeds, family="binomial", Ntrials="n", lincomb={**lc, **lcs},
                  control_inla={"lincomb.derived.correlation.matrix": True},
                  control_predictor={"compute": True})
res.summary_lincomb_derived.head(5).round(3)
"""),
    md("""
Check against joint posterior samples (R's `inla.posterior.sample`): the same functional
computed draw by draw has the same mean and sd, within Monte Carlo error. The correlation
matrix of the combinations is in `res.misc`:
"""),
    code("""
draws = res.posterior_sample(n_samples, seed=1)
x1, x2 = draws["x1"].values.ravel(), draws["x2"].values.ravel()
mc = pd.Series({"mean": np.mean(x1 + x2), "sd": np.std(x1 + x2)})
print(pd.DataFrame({"lincomb": res.summary_lincomb_derived.loc["x1_plus_x2", ["mean", "sd"]], "samples": mc}).round(3))
corr = res.misc["lincomb.derived.correlation.matrix"]
fig, ax = plt.subplots(figsize=(4.5, 4))
im = ax.imshow(np.asarray(corr)[2:, 2:], cmap="RdBu_r", vmin=-1, vmax=1)
ax.set_title("correlation of β0 + u_i (lc01..lc21)"); fig.colorbar(im, ax=ax, shrink=0.8);
"""),
    md("""
## Predictions at new covariate values and a new plate

`res.predict(new)` evaluates every term of the fitted model at the new rows. Plate 22 was never
observed: an `iid` term draws its effect from the prior at the sampled precision, so the
prediction carries the plate-to-plate variance (a structured term — rw, ar1, besag — at an
index outside the fitted range raises an error naming the term instead). At a fitted row the
prediction equals `summary_linear_predictor`.
"""),
    code("""
new = pd.DataFrame({"x1": [0, 0, 1, 1, 0], "x2": [0, 1, 0, 1, 1], "plate": [22, 22, 22, 22, 3]})
pred = res.predict(new, n_samples=n_samples, seed=1)
table = pd.concat([new, pred.summary_fitted_values[["mean", "sd", "0.025quant", "0.975quant"]]], axis=1)
table.round(3)
"""),
    code("""
fitted_rows = res.predict(seeds, n_samples=0).summary_linear_predictor
print("max |predict - summary_linear_predictor| at the fitted rows:",
      float(np.abs(fitted_rows["mean"].to_numpy() - res.summary_linear_predictor["mean"].to_numpy()).max()))
print("predictive sd of eta: new plate", round(pred.summary_linear_predictor["sd"].iloc[1], 3),
      "| fitted plate 3 with the same covariates", round(pred.summary_linear_predictor["sd"].iloc[4], 3))
"""),
    md("""
`expr=` gives the posterior of any function of the effects from joint draws — here the
difference in germination probability between cucumber and bean extract for seed type 0 on a
new plate (inlabru's `predict(fit, newdata, ~ plogis(...))`):
"""),
    code("""
def effect_of_extract(e):
    p = 1 / (1 + np.exp(-e["Predictor"]))     # draws x rows
    return p[:, 1] - p[:, 0]

pe = res.predict(new, n_samples=n_samples, seed=2, expr=effect_of_extract)
print(pe.summary_expr.round(3).to_string())
"""),
    md("""
## New locations of an SPDE field

With `f(cbind(s1, s2), model=spde)` the projector is built from the data's coordinate columns,
at fit time and at prediction time, so predicting at new places is `res.predict(grid)`. Joint
draws at the grid give exceedance probabilities (a coarse mesh here, for speed; the full
treatment is [geostatistics.ipynb](geostatistics.ipynb)):
"""),
    code("""
toy = adelia.datasets.load("SPDEtoy")
mesh = S.mesh_2d(toy[["s1", "s2"]].to_numpy(), max_edge=(0.15, 0.4), offset=(0.1, 0.4), cutoff=0.03)
spde = S.spde2_pcmatern(mesh, prior_range=(0.3, 0.5), prior_sigma=(1, 0.01))
fit = adelia.inla("y ~ 1 + f(cbind(s1, s2), model=spde)", toy, context={"spde": spde})
n_grid = 30
g = (np.arange(n_grid) + 0.5) / n_grid
G1, G2 = np.meshgrid(g, g)
p_grid = fit.predict(pd.DataFrame({"s1": G1.ravel(), "s2": G2.ravel()}), n_samples=500, seed=3)
eta = p_grid.samples["Predictor"].values                      # (sample, grid point)
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
for ax, z, title in [(axes[0], p_grid.summary_linear_predictor["mean"], "posterior mean of β0 + u(s)"),
                     (axes[1], (eta > 10).mean(axis=0), "P(β0 + u(s) > 10 | y)")]:
    im = ax.imshow(np.asarray(z).reshape(n_grid, n_grid), origin="lower", extent=(0, 1, 0, 1))
    ax.scatter(toy["s1"], toy["s2"], s=4, c="w", alpha=0.6); ax.set_title(title); fig.colorbar(im, ax=ax, shrink=0.8)
fig.tight_layout()
"""),
    md("""
## NUTS over θ where the design misses mass

Under R-INLA's default loggamma(1, 5e-5) prior on the plate precision, Seeds' π(θ | y) has a
local mode at log τ ≈ 2.7 and its bulk at large log τ (an almost vanishing plate effect); the
compact design sits at the first and adelia warns. NUTS explores the whole posterior with the
exact gradient of log π̃(θ | y); the latent marginals are the mixture of the Gaussian
approximations over thinned draws. Short chains here — check R-hat before using a result.
"""),
    code("""
nuts = {"chains": 4, "draws": 1000, "warmup": 500, "seed": 1} if FULL else {"chains": 2, "draws": 300, "warmup": 300, "seed": 1, "points": 50}
default = "r ~ x1 + x2 + f(plate, model='iid')"
with warnings.catch_warnings():
    warnings.simplefilter("ignore")          # the compact-mode warning shown in the quickstart
    res_ccd = adelia.inla(default, seeds, family="binomial", Ntrials="n")
res_nuts = adelia.inla(default, seeds, family="binomial", Ntrials="n",
                       control_inla={"int.strategy": "nuts", "nuts": nuts})
d = res_nuts.diagnostics["nuts"]
print("R-hat", np.round(d["rhat"], 3), "| ESS", np.round(d["ess"], 0), "| divergences", d["divergent"],
      "| seconds per effective sample", np.round(d["seconds_per_effective_sample"], 4))
pd.DataFrame({"CCD (compact)": res_ccd.internal_summary_hyperpar.iloc[0], "NUTS": res_nuts.internal_summary_hyperpar.iloc[0]}).round(3)
"""),
    code("""
name = "Log precision for plate"
m_ccd, m_nuts = res_ccd.internal_marginals_hyperpar[name], res_nuts.internal_marginals_hyperpar[name]
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(m_ccd["x"], m_ccd.values, label="CCD design (compact)")
axes[0].plot(m_nuts["x"], m_nuts.values, label="NUTS")
axes[0].set_xlabel("log precision of the plate effect"); axes[0].legend()
axes[1].scatter(res_ccd.summary_random["plate"]["sd"], res_nuts.summary_random["plate"]["sd"])
axes[1].set_xlabel("sd of u_plate, CCD"); axes[1].set_ylabel("sd of u_plate, NUTS")
lim = res_ccd.summary_random["plate"]["sd"].max() * 1.1
axes[1].plot([0, lim], [0, lim], color="k", lw=0.7); fig.tight_layout()
"""),
    md("""
The plate effects' posterior sds shrink under NUTS: most of the posterior mass is at large
precisions that the compact design never visits (`tests/inference` checks these sds against a
long NUTS run on the full joint model). For the chain itself:
`adelia.compile(formula, data, ...).sample_theta(1000, chains=4)`.

## What to try next

* `res.predict(new, expr=...)` for any derived quantity: odds ratios, a ranking of plates, the
  spatial mean of a field over a region.
* Contrasts of a structured term: `adelia.make_lincomb(time=w)` with `w` a vector over a rw2's
  nodes (a trend's slope between two dates).
* NUTS on a model whose hyperparameters are identified (`docs/prediction.md`, "When not to").
"""),
]

NOTEBOOKS = {
    "quickstart": QUICKSTART,
    "disease_mapping": DISEASE_MAPPING,
    "time_series": TIME_SERIES,
    "geostatistics": GEOSTATISTICS,
    "survival": SURVIVAL,
    "gradients": GRADIENTS,
    "spacetime": SPACETIME,
    "rinla_to_adelia": RINLA_TO_ADELIA,
    "prediction": PREDICTION,
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
