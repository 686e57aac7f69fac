"""``InlaResult``: INLA's output under R-INLA's names, as pandas and xarray objects.

Attribute names are R-INLA's with ``.`` -> ``_`` (``res.summary_fixed``); the dotted names
work too through mapping access (``res["summary.fixed"]``). Tables have R-INLA's row and
column names ("(Intercept)", "0.025quant", "Precision for plate", ...), so code and
comparisons written against R-INLA output carry over.

Documented difference from R-INLA: fitted values of rows with a missing response use the
family's link like every other row (R-INLA uses the identity unless
``control.predictor=list(link=1)``, a frequent source of wrong predictions); pass
``control_predictor={"link": ...}`` to choose another family's link for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from typing import Any

import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr

from .inference.latent_strategies import scale_components, select_nodes
from .inference.summaries import Mixture, kld_gaussian_vs
from .inference.run import Posterior

_GH_X, _GH_W = np.polynomial.hermite_e.hermegauss(31)
_GH_W = _GH_W / _GH_W.sum()


def _quantile_columns(quantiles) -> list[str]:
    return [f"{q:g}quant" for q in quantiles]


def _table(summary: dict[str, np.ndarray], quantiles, index, kld=None) -> pd.DataFrame:
    cols = ["mean", "sd", *_quantile_columns(quantiles), "mode"]
    df = pd.DataFrame({c: np.asarray(summary[c], dtype=float) for c in cols}, index=index)
    if kld is not None:
        df["kld"] = np.asarray(kld, dtype=float)
    return df


class InlaResult(Mapping):
    """The result of :func:`adelia.inla` (R-INLA's ``inla`` object).

    Its elements are attributes with R-INLA's names, ``.`` written ``_``
    (``res.summary_fixed``), or items under R-INLA's own names (``res["summary.fixed"]``).

    Example:
        The fit that the examples of the methods and properties below use:

        >>> seeds = adelia.datasets.load("Seeds")
        >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial",
        ...                   Ntrials="n", control_predictor={"compute": True},
        ...                   control_compute={"dic": True, "waic": True, "cpo": True, "po": True},
        ...                   lincomb={"x1_minus_x2": adelia.make_lincomb(x1=1, x2=-1)})
        >>> round(float(res["summary.fixed"].loc["x2", "mean"]), 3)   # R: res$summary.fixed
        1.066
        >>> len(res)   # the R-INLA elements, as names(res) lists them
        21
    """

    _R_NAMES = (
        "summary.fixed", "summary.random", "summary.hyperpar", "internal.summary.hyperpar",
        "marginals.fixed", "marginals.random", "marginals.hyperpar", "internal.marginals.hyperpar",
        "summary.linear.predictor", "summary.fitted.values", "summary.lincomb.derived", "marginals.lincomb.derived",
        "mlik", "dic", "waic", "cpo", "po",
        "mode", "cpu.used", "misc", "diagnostics",
    )

    def __init__(self, model, posterior: Posterior, quantiles=(0.025, 0.5, 0.975), cpu_used: dict | None = None):
        self.model = model
        self.posterior = posterior
        self.quantiles = tuple(float(q) for q in quantiles)
        self._cpu = cpu_used or {}

    # --- Mapping interface (R's res$summary.fixed as res["summary.fixed"]) -----------------------------
    def __getitem__(self, key: str):
        attr = str(key).replace(".", "_")
        if str(key) not in self._R_NAMES and attr.replace("_", ".") not in self._R_NAMES:
            raise KeyError(f'{key!r} is not an element of the result; elements are {", ".join(self._R_NAMES)}')
        return getattr(self, attr)

    def __iter__(self):
        return iter(self._R_NAMES)

    def __len__(self) -> int:
        return len(self._R_NAMES)

    # --- latent marginals ------------------------------------------------------------------------------
    def _block_mixture(self, start: int, size: int) -> Mixture:
        """The latent marginals of x[start:start+size] (Gaussian, skew-normal or Laplace mixture)."""
        return select_nodes(self.posterior.latent, slice(start, start + size))

    def _summary_table(self, mix, index) -> pd.DataFrame:
        """R-INLA's summary table of a mixture; its kld is the combined density's
        (:mod:`adelia.inference.combined`, step 6) where the summary has one."""
        s = mix.summary(self.quantiles)
        return _table(s, self.quantiles, index, s["kld"] if "kld" in s else self._kld(mix))

    def _kld(self, mix: Mixture) -> np.ndarray:
        """Symmetric KL divergence between the marginal and the Gaussian with its moments."""
        if mix.loc.shape[0] == 1:
            return np.zeros(mix.n)
        gauss = Mixture(np.ones(1), mix.mean()[None, :], mix.sd()[None, :])
        return kld_gaussian_vs(mix, gauss)

    @cached_property
    def summary_fixed(self) -> pd.DataFrame:
        """Posterior summaries of the fixed effects (rows named as R-INLA names them).

        Example:
            >>> res.summary_fixed[["mean", "sd"]].round(2)
                         mean    sd
            (Intercept) -0.43  0.12
            x1          -0.28  0.16
            x2           1.07  0.15
        """
        g = self.model.graph
        fixed = [b for b in g.blocks if b.kind == "fixed"]
        if not fixed:
            return _table({c: np.zeros(0) for c in ["mean", "sd", *_quantile_columns(self.quantiles), "mode"]}, self.quantiles, [], np.zeros(0))
        start = fixed[0].start
        mix = self._block_mixture(start, len(fixed))
        return self._summary_table(mix, [b.label for b in fixed])

    def _component_mixture(self, label: str) -> tuple[Mixture, np.ndarray]:
        g = self.model.graph
        for comp in g.components:
            if comp.label == label:
                b = g.block(label)
                return self._block_mixture(b.start, b.size), comp.ids
        for cp in g.copies:
            if cp.label == label:
                b = g.block(cp.source)
                base = self._block_mixture(b.start, b.size)
                if cp.theta_index is None:
                    beta = np.full(base.loc.shape[0], cp.beta)
                else:
                    beta = self.posterior.points.theta_full[self._latent_point_index(), cp.theta_index]
                return scale_components(base, beta), cp.ids
        raise KeyError(label)

    def _latent_point_index(self) -> np.ndarray:
        """Design points kept in the latent mixture (pruned weights > 0)."""
        from .inference.design import prune_probabilities

        return np.flatnonzero(prune_probabilities(self.posterior.probabilities, 0.999) > 0)

    @cached_property
    def summary_random(self) -> dict[str, pd.DataFrame]:
        """Per f() term: ID, mean, sd, quantiles, mode, kld for every node (R-INLA's layout:
        bym/bym2 total effect first, then the structured part; group/replicate major).

        Example:
            >>> plate = res.summary_random["plate"]
            >>> plate.shape, list(plate.columns[:3])
            ((21, 8), ['ID', 'mean', 'sd'])
        """
        out = {}
        labels = [c.label for c in self.model.graph.components] + [c.label for c in self.model.graph.copies]
        for label in labels:
            mix, ids = self._component_mixture(label)
            df = self._summary_table(mix, None)
            df.insert(0, "ID", np.asarray(ids))
            out[label] = df
        return out

    # --- hyperparameters -------------------------------------------------------------------------------------
    @cached_property
    def internal_summary_hyperpar(self) -> pd.DataFrame:
        """Summaries of the hyperparameters on R-INLA's internal scale ("Log precision for ...").

        Example:
            >>> res.internal_summary_hyperpar.index.tolist()
            ['Log precision for plate']
        """
        hs = self.model.hyperparameters
        rows = [m.summary(self.quantiles) for m in self.posterior.hyper]
        cols = ["mean", "sd", *_quantile_columns(self.quantiles), "mode"]
        return pd.DataFrame([{c: r[c] for c in cols} for r in rows], index=[h.internal_name for h in hs], columns=cols)

    @cached_property
    def summary_hyperpar(self) -> pd.DataFrame:
        """Summaries of the hyperparameters on the user scale ("Precision for ...").

        Example:
            >>> res.summary_hyperpar.columns.tolist()
            ['mean', 'sd', '0.025quant', '0.5quant', '0.975quant', 'mode']
        """
        hs = self.model.hyperparameters
        rows = [m.user_summary(h.to_user, self.quantiles) for m, h in zip(self.posterior.hyper, hs)]
        cols = ["mean", "sd", *_quantile_columns(self.quantiles), "mode"]
        return pd.DataFrame([{c: r[c] for c in cols} for r in rows], index=[h.name for h in hs], columns=cols)

    # --- marginals as xarray --------------------------------------------------------------------------------
    @cached_property
    def marginals_fixed(self) -> dict[str, xr.DataArray]:
        """Posterior density of each fixed effect: an xarray DataArray over coordinate ``x``.

        Example:
            >>> m = res.marginals_fixed["x1"]   # R: res$marginals.fixed$x1
            >>> round(float(adelia.marginals.qmarginal(0.5, m)), 2)
            -0.28
        """
        g = self.model.graph
        out = {}
        for b in g.blocks:
            if b.kind == "fixed":
                mix = self._block_mixture(b.start, 1)
                x, y = mix.marginal_grid()
                out[b.label] = xr.DataArray(y[:, 0], coords={"x": x[:, 0]}, dims="x", name=b.label)
        return out

    @cached_property
    def marginals_random(self) -> dict[str, xr.Dataset]:
        """Per f() term: a Dataset with ``x`` and ``density`` over (ID, point).

        Example:
            >>> node3 = res.marginals_random["plate"].sel(ID=3)   # the marginal of plate 3
            >>> float(adelia.marginals.emarginal(lambda x: x, (node3.x, node3.density))) < 0.1
            True
        """
        out = {}
        labels = [c.label for c in self.model.graph.components] + [c.label for c in self.model.graph.copies]
        for label in labels:
            mix, ids = self._component_mixture(label)
            x, y = mix.marginal_grid()
            out[label] = xr.Dataset(
                {"x": (("ID", "point"), x.T), "density": (("ID", "point"), y.T)},
                coords={"ID": np.asarray(ids), "point": np.arange(x.shape[0])},
            )
        return out

    @cached_property
    def internal_marginals_hyperpar(self) -> dict[str, xr.DataArray]:
        """Posterior density of each hyperparameter on R-INLA's internal scale ("Log precision
        for ..."): an xarray DataArray over ``x``.

        Example:
            >>> m = res.internal_marginals_hyperpar["Log precision for plate"]
            >>> m.dims, bool((m >= 0).all())
            (('x',), True)
        """
        return {
            h.internal_name: xr.DataArray(m.density, coords={"x": m.x}, dims="x", name=h.internal_name)
            for h, m in zip(self.model.hyperparameters, self.posterior.hyper)
        }

    @cached_property
    def marginals_hyperpar(self) -> dict[str, xr.DataArray]:
        """Posterior density of each hyperparameter on the user scale ("Precision for ..."),
        transformed from the internal scale: an xarray DataArray over ``x``.

        Example:
            >>> m = res.marginals_hyperpar["Precision for plate"]
            >>> bool(float(m.x.min()) > 0)   # a precision
            True
        """
        out = {}
        for h, m in zip(self.model.hyperparameters, self.posterior.hyper):
            x, y = m.transformed(h.to_user)
            out[h.name] = xr.DataArray(y, coords={"x": x}, dims="x", name=h.name)
        return out

    # --- predictor and fitted values --------------------------------------------------------------------------
    def _predictor_names(self, prefix: str = "") -> list[str]:
        """R-INLA's row names: "Predictor.01", ...; with a stack A matrix "APredictor.001" for
        the observations followed by "Predictor.001" for the formula's own rows."""
        n = self.model.observations.n_obs
        if self.model.graph.effect_map is None:
            width = len(str(n))
            return [f"{prefix}Predictor.{i:0{width}d}" for i in range(1, n + 1)]
        m = self.model.n_rows
        width = len(str(max(n, m)))
        return [f"{prefix}APredictor.{i:0{width}d}" for i in range(1, n + 1)] + [
            f"{prefix}Predictor.{i:0{width}d}" for i in range(1, m + 1)
        ]

    @cached_property
    def summary_linear_predictor(self) -> pd.DataFrame | None:
        """Summaries of η_i (rows "Predictor.01", ...); needs control_predictor compute=True
        (or missing responses, whose predictions are always computed).

        Example:
            >>> res.summary_linear_predictor.index[:2].tolist()
            ['Predictor.01', 'Predictor.02']
        """
        if not self._predictor_wanted():
            return None
        mix = self.posterior.predictor
        return self._summary_table(mix, self._predictor_names())

    def _predictor_wanted(self) -> bool:
        cp = self.model.controls["control_predictor"]
        return bool(cp.get("compute")) or not bool(np.all(self.model.observations.observed))

    @cached_property
    def summary_fitted_values(self) -> pd.DataFrame | None:
        """Summaries of the inverse link of η_i (rows "fitted.Predictor.01", ...).

        Example:
            >>> fitted = res.summary_fitted_values   # binomial: the probabilities
            >>> bool(((fitted["mean"] > 0) & (fitted["mean"] < 1)).all())
            True
        """
        if not self._predictor_wanted():
            return None
        mix = self.posterior.predictor
        obs = self.model.observations
        link_choice = self.model.controls["control_predictor"].get("link")
        fam_of = obs.family_of.copy()
        if link_choice is not None:
            lk = np.asarray(link_choice, dtype=float).ravel()
            lk = np.broadcast_to(lk, (obs.n_obs,)) if lk.size in (1, obs.n_obs) else None
            if lk is None:
                raise ValueError("control_predictor link must be one family number or one per observation")
            miss = ~obs.observed
            fam_of[miss] = np.where(np.isnan(lk[miss]), fam_of[miss], lk[miss] - 1).astype(int)
        n_total = mix.n
        if n_total > obs.n_obs:  # the formula's own rows take the first family's link (R-INLA)
            fam_of = np.concatenate([fam_of, np.zeros(n_total - obs.n_obs, dtype=fam_of.dtype)])
        out = {c: np.zeros(n_total) for c in ["mean", "sd", *_quantile_columns(self.quantiles), "mode"]}
        theta_mode = self.model.layout.expand_host(self.posterior.theta_mode)
        for k, fb in enumerate(obs.families):
            rows = np.flatnonzero(fam_of == k)
            if rows.size == 0:
                continue
            sub = Mixture(mix.weights, mix.loc[:, rows], mix.scale[:, rows])
            inv = lambda e: np.asarray(fb.likelihood.fitted(jnp.asarray(e), jnp.asarray(fb.theta(jnp.asarray(theta_mode))), {}))
            s = _transformed_summary(sub, inv, self.quantiles)
            for c in out:
                out[c][rows] = s[c]
        return _table(out, self.quantiles, self._predictor_names("fitted."))

    # --- linear combinations (lincomb=) ------------------------------------------------------------------------
    @cached_property
    def summary_lincomb_derived(self) -> pd.DataFrame | None:
        """Summaries of the linear combinations given as ``lincomb=`` (R-INLA's
        ``summary.lincomb.derived``): rows named as the combinations ("lc1", ... when unnamed),
        columns ID, mean, sd, quantiles, mode, kld; None without lincombs. Each is the mixture
        over the design of the Gaussians N(a'μ̃_k, a'Σ_k a) (:mod:`adelia.inference.lincomb`).

        Example:
            >>> round(float(res.summary_lincomb_derived.loc["x1_minus_x2", "mean"]), 2)
            -1.34
        """
        lc = self.posterior.lincomb
        if lc is None:
            return None
        mix = lc.marginals
        df = self._summary_table(mix, list(lc.names))
        df.insert(0, "ID", np.arange(1, len(lc.names) + 1))
        return df

    @cached_property
    def marginals_lincomb_derived(self) -> dict[str, xr.DataArray] | None:
        """Posterior density of each linear combination: an xarray DataArray over ``x``.

        Example:
            >>> m = res.marginals_lincomb_derived["x1_minus_x2"]
            >>> round(float(adelia.marginals.emarginal(lambda x: x, m)), 2)
            -1.34
        """
        lc = self.posterior.lincomb
        if lc is None:
            return None
        x, y = lc.marginals.marginal_grid()
        return {nm: xr.DataArray(y[:, j], coords={"x": x[:, j]}, dims="x", name=nm) for j, nm in enumerate(lc.names)}

    def _lincomb_matrix(self, which: str) -> pd.DataFrame | None:
        lc = self.posterior.lincomb
        if lc is None or lc.covariance is None:
            return None
        m = lc.covariance if which == "covariance" else lc.correlation
        return pd.DataFrame(m, index=list(lc.names), columns=list(lc.names))

    # --- scalars ----------------------------------------------------------------------------------------------
    @property
    def mlik(self) -> pd.Series:
        """log marginal likelihood: integration and Gaussian estimates (R-INLA's rows).

        Example:
            >>> res.mlik.round(1)
            log marginal-likelihood (integration)   -74.7
            log marginal-likelihood (Gaussian)      -73.8
            dtype: float64
        """
        return pd.Series(
            [self.posterior.mlik_integration, self.posterior.mlik_gaussian],
            index=["log marginal-likelihood (integration)", "log marginal-likelihood (Gaussian)"],
        )

    @property
    def dic(self):
        """The deviance information criterion (R-INLA's ``res$dic``; ``control_compute={"dic":
        True}``, else None): a dict with ``dic``, ``p.eff``, ``mean.deviance``, the saturated
        versions and the per-observation ``local.dic``; see :mod:`adelia.inference.criteria`.

        Example:
            >>> round(res.dic["dic"], 1), round(res.dic["p.eff"], 1)
            (121.1, 3.3)
        """
        return self.posterior.criteria.get("dic")

    @property
    def waic(self):
        """The Watanabe-Akaike information criterion (R-INLA's ``res$waic``;
        ``control_compute={"waic": True}``, else None): a dict with ``waic``, ``p.eff`` and the
        per-observation ``local.waic``, ``local.p.eff``.

        Example:
            >>> round(res.waic["waic"], 1)
            125.8
        """
        return self.posterior.criteria.get("waic")

    @property
    def cpo(self):
        """Leave-one-out predictive measures (R-INLA's ``res$cpo``; ``control_compute={"cpo":
        True}``, else None): a dict with per-observation ``cpo``, ``pit`` and ``failure``.

        Example:
            >>> res.cpo["cpo"].shape, sorted(res.cpo)
            ((21,), ['cpo', 'failure', 'pit'])
        """
        return self.posterior.criteria.get("cpo")

    @property
    def po(self):
        """The posterior predictive density of each observation (R-INLA's ``res$po``;
        ``control_compute={"po": True}``, else None): a dict with ``po``.

        Example:
            >>> res.po["po"].shape
            (21,)
        """
        return self.posterior.criteria.get("po")

    @property
    def mode(self) -> dict[str, Any]:
        """θ at the mode (internal scale, R-INLA's names), its log posterior and the latent mode.

        Example:
            >>> res.mode["theta_tags"], res.mode["theta"].shape, res.mode["x"].shape
            (['Log precision for plate'], (1,), (24,))
        """
        return {
            "theta": self.posterior.theta_mode.copy(),
            "theta_tags": self.model.theta_names,
            "log_posterior_mode": self.posterior.log_post_mode,
            "x": self.posterior.x_mode.copy(),
            "mode_status": 0 if self.posterior.mode.converged else 1,
        }

    @property
    def cpu_used(self) -> pd.Series:
        """Seconds spent (R-INLA's ``res$cpu.used``): Pre (compiling the model), Running
        (the inference), Post and Total.

        Example:
            >>> res.cpu_used.index.tolist()
            ['Pre', 'Running', 'Post', 'Total']
        """
        t = dict(self._cpu)
        t.setdefault("Running", self.posterior.timings.get("total", float("nan")))
        t.setdefault("Pre", 0.0)
        t.setdefault("Post", 0.0)
        t["Total"] = t["Pre"] + t["Running"] + t["Post"]
        return pd.Series({k: t[k] for k in ("Pre", "Running", "Post", "Total")})

    @property
    def misc(self) -> dict[str, Any]:
        """R-INLA's ``res$misc``: the covariance of θ at the mode on the internal scale
        (``cov_intern``), the skewness corrections of the integration design
        (``stdev_corr_positive``/``negative``), the number of objective evaluations (``nfunc``),
        the integration points (``configs``: θ, their weights, latent means and variances) and
        the warnings of the fit.

        Example:
            >>> res.misc["cov_intern"].shape
            (1, 1)
        """
        p = self.posterior
        return {
            "cov_intern": p.axes.covariance() if p.axes.dim else np.zeros((0, 0)),
            "stdev_corr_positive": p.stdev_corr_pos,
            "stdev_corr_negative": p.stdev_corr_neg,
            "log_posterior_mode": p.log_post_mode,
            "nfunc": p.n_evaluations,
            "configs": {
                "theta": p.points.theta,
                "log_posterior": p.points.log_post + p.design.log_weights,
                "log_posterior_orig": p.points.log_post,
                "prob": p.probabilities,
                "mean": p.points.mode,
                "improved_mean": p.points.mean,
                "Qinv_diag": p.points.var,
            },
            "warnings": list(p.warnings),
            # R-INLA's misc$lincomb.derived.{correlation,covariance}.matrix (control_inla
            # lincomb.derived.correlation.matrix=True): rows and columns named as the combinations
            "lincomb.derived.correlation.matrix": self._lincomb_matrix("correlation"),
            "lincomb.derived.covariance.matrix": self._lincomb_matrix("covariance"),
        }

    @property
    def diagnostics(self) -> dict[str, Any]:
        """Convergence and numerical health: mode search, Hessian, inner Newton iterations.

        Example:
            >>> res.diagnostics["mode_converged"]
            True
        """
        p = self.posterior
        return {
            "mode_converged": p.mode.converged,
            "mode_message": p.mode.message,
            "mode_iterations": p.mode.iterations,
            "gradient_norm_at_mode": float(np.max(np.abs(p.mode.gradient))) if p.mode.gradient.size else 0.0,
            "hessian_eigenvalues": p.axes.eigenvalues.copy(),
            "hessian_repaired": bool(p.axes.repaired),
            "newton_iterations": p.points.newton_iterations.copy(),
            "newton_converged": p.points.newton_converged.astype(bool).copy(),
            "vb_iterations": p.points.vb_iterations.copy(),
            "vb_aborted": (np.zeros(len(p.points.vb_iterations), bool) if p.points.vb_aborted is None
                           else p.points.vb_aborted.copy()),
            "warnings": list(p.warnings),
            "timings": dict(p.timings),
            # int.strategy "nuts": the chain over θ (R-hat, ESS, divergences; adelia.inference.nuts_theta)
            **({"nuts": p.nuts.diagnostics()} if getattr(p, "nuts", None) is not None else {}),
        }

    # --- presentation ---------------------------------------------------------------------------------------------
    def summary(self) -> "InlaSummary":
        """An R-INLA-like summary; ``print(res.summary())``.

        Example:
            >>> print(res.summary())
            Time used:
            ...
            Fixed effects:
                          mean    sd 0.025quant 0.5quant 0.975quant   mode kld
            (Intercept) -0.428 0.120     -0.660   -0.429     -0.191 -0.429   0
            ...
        """
        from .printing import InlaSummary

        return InlaSummary(self)

    def plot(self, which=("fixed", "hyperpar", "random"), show: bool = False) -> dict:
        """Figures of the posterior (R-INLA's ``plot(result)``): densities of the fixed effects
        and hyperparameters, mean and 95% band of each f() term (and of the linear predictor
        with ``which=(..., "predictor")``). Returns a dict group -> matplotlib Figure; see
        :mod:`adelia.plotting`.

        Example:
            >>> figs = res.plot()
            >>> sorted(figs)
            ['fixed', 'hyperpar', 'random']
            >>> figs["fixed"].savefig("fixed.png")   # doctest: +SKIP
        """
        from .plotting import plot_result

        return plot_result(self, which=which, show=show)

    # --- sampling ------------------------------------------------------------------------------------------------
    def posterior_sample(self, n: int = 1000, seed=0, intern: bool = False, use_improved_mean: bool = True) -> xr.Dataset:
        """Joint posterior samples (R-INLA's ``inla.posterior.sample``) as an xarray Dataset over
        ``sample``: fixed effects, f() terms, ``Predictor`` and hyperparameters by R-INLA's
        names; see :func:`adelia.inference.sampling.posterior_sample`.

        Example:
            >>> s = res.posterior_sample(100, seed=1)
            >>> s["x1"].shape, s["plate"].shape, s["Predictor"].shape
            ((100,), (100, 21), (100, 21))
            >>> bool(abs(s["x2"].mean() - 1.07) < 0.1)
            True
        """
        from .inference.sampling import posterior_sample

        return posterior_sample(self, n, seed=seed, intern=intern, use_improved_mean=use_improved_mean)

    def hyperpar_sample(self, n: int = 1000, seed=0, intern: bool = False, improve_marginals: bool = False) -> pd.DataFrame:
        """Samples of the hyperparameters (R-INLA's ``inla.hyperpar.sample``), one row per draw;
        see :func:`adelia.inference.sampling.hyperpar_sample`.

        Example:
            >>> res.hyperpar_sample(200, seed=1).shape   # one column per hyperparameter
            (200, 1)
        """
        from .inference.sampling import hyperpar_sample

        return hyperpar_sample(self, n, seed=seed, intern=intern, improve_marginals=improve_marginals)

    def predict(self, new_data, expr=None, n_samples: int = 1000, seed=0, quantiles=None, offset=None):
        """The posterior at new rows (inlabru's ``predict``; no NA-response refit or stack):
        ``summary_linear_predictor``, ``summary_fitted_values``, ``samples`` and, with ``expr``,
        ``summary_expr``; see :func:`adelia.predict.predict`.

        Example:
            >>> p = res.predict(pd.DataFrame({"x1": [0, 1], "x2": [1, 1], "plate": [3, 99]}), n_samples=200)
            >>> p.summary_fitted_values.shape   # plate 99 is new: its effect is drawn from the iid prior
            (2, 6)
        """
        from .predict import predict

        return predict(self, new_data, expr=expr, n_samples=n_samples, seed=seed, quantiles=quantiles, offset=offset)

    def to_arviz(self, n: int = 1000, seed=0, log_likelihood: bool = True, predictor: bool = False):
        """ArviZ data from ``n`` joint posterior samples (one chain): ``InferenceData`` for
        arviz < 1, ``xarray.DataTree`` for arviz ≥ 1. Needs ``pip install adelia[arviz]``; see
        :func:`adelia.inference.sampling.to_inference_data`.

        Example:
            >>> idata = res.to_arviz(500)   # needs arviz (optional)  # doctest: +SKIP
            >>> az.summary(idata)   # doctest: +SKIP
        """
        from .inference.sampling import to_inference_data

        return to_inference_data(self, n, seed=seed, log_likelihood=log_likelihood, predictor=predictor)

    def __repr__(self) -> str:
        return f"<InlaResult {self.model.spec.formula!r}: {len(self.model.theta_names)} hyperparameters, {self.model.graph.n_latent} latent nodes>"


def _transformed_summary(mix: Mixture, inv_link, quantiles, method: str = "combined") -> dict[str, np.ndarray]:
    """Summaries of g⁻¹(η) for a per-node mixture of Gaussians in η (g⁻¹ monotone).

    ``method="combined"`` (the default, R-INLA's ``inla_integrate_func``): mean and sd of g⁻¹
    over the combined density of η (the spline-corrected Gaussian R-INLA reports for η), the
    mode of the transformed density, g⁻¹ of η's combined quantiles; see
    :func:`adelia.inference.combined.combined_transformed_summary`. ``method="exact"``: over the
    exact mixture (Gauss–Hermite per component, the mixture's quantiles)."""
    if method == "combined":
        from .inference.combined import combined_transformed_summary

        return combined_transformed_summary(mix, inv_link, quantiles)
    pts = mix.loc[:, None, :] + mix.scale[:, None, :] * _GH_X[None, :, None]  # (K, Q, n)
    vals = inv_link(pts)
    m1 = np.einsum("k,q,kqn->n", mix.weights, _GH_W, vals)
    m2 = np.einsum("k,q,kqn->n", mix.weights, _GH_W, vals**2)
    out = {"mean": m1, "sd": np.sqrt(np.maximum(m2 - m1**2, 0.0))}
    inc = inv_link(np.array([0.0, 1.0]))
    increasing = inc[1] >= inc[0]
    for q in quantiles:
        out[f"{q:g}quant"] = inv_link(mix.quantile(q if increasing else 1.0 - q))
    # mode of the transformed density: p_y(g⁻¹(η)) = p_η(η) / |dg⁻¹/dη| on a grid in η
    mu, sd = mix.mean(), mix.sd()
    grid = mu + sd * np.linspace(-5, 5, 201)[:, None]
    y = inv_link(grid)
    dy = np.gradient(y, axis=0) / np.gradient(grid, axis=0)
    dens = mix.pdf(grid) / np.maximum(np.abs(dy), 1e-300)
    out["mode"] = y[np.argmax(dens, axis=0), np.arange(mix.n)]
    return out
