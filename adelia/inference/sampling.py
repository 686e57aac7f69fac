"""Joint posterior samples (R-INLA's ``inla.posterior.sample``) and hyperparameter samples
(``inla.hyperpar.sample``).

Joint samples. INLA's joint posterior is the mixture

    π(x, θ | y) ≈ Σ_k p_k δ(θ − θ_k) π_G(x | θ_k, y),

p_k the mixture weights of the integration design points θ_k (``posterior.probabilities``,
R-INLA's ``configs$prob``) and π_G the Gaussian approximation at θ_k: mean the VB-corrected
mean (R-INLA's ``use.improved.mean=TRUE``; the mode of π_G with ``use_improved_mean=False``),
precision Q_c(θ_k) = Q(θ_k) + Aᵀ D A at the mode. One draw is

    k ~ Categorical(p),   z = L⁻ᵀ ε  (Q_c = L Lᵀ, ε ~ N(0, I)),   x = μ_k + z,
    x ← x − W S⁻¹ (C x − e),   W = Q_c⁻¹ Cᵀ,  S = C W          (conditioning by kriging)

(Rue & Held 2005, §2.3.3: the correction turns a draw from N(μ, Q_c⁻¹) into a draw from
the same Gaussian conditioned on C x = e, exactly), and η = A(θ_k) x + offset.
Skewness corrections of the latent marginals (R-INLA's ``skew.corr``) are not applied: the
draws are from the Gaussian mixture.

Hyperparameter samples (R-INLA's ``inla.hyperpar.sample``). R-INLA draws from the fitted
"asymmetric Gaussian" in the standardised coordinates z of the Hessian's eigen-axes,
θ = θ* + V Λ^{-1/2} z: independently per axis, z_i = σ⁺_i |ε| with probability
σ⁺_i / (σ⁺_i + σ⁻_i), else −σ⁻_i |ε| (a two-piece normal, σ± the skewness scalings).
With ``improve_marginals=True`` each coordinate is then mapped through its empirical cdf
onto the quantiles of the hyperparameter's own posterior marginal (R-INLA's option of the
same name), which keeps the dependence between coordinates and makes every marginal the
computed one.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from ..errors import DataError


def _rng_and_key(seed) -> tuple[np.random.Generator, int]:
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return rng, int(rng.integers(0, 2**62))


def _gaussian_pieces(model):
    """jit: (θ_full, x0) -> (Q_c values, W, S) of π_G at θ (compiled once per model)."""
    fn = getattr(model, "_sampling_pieces", None)
    if fn is None:
        lap = model.laplace

        def pieces(theta_full, x0):
            ga = lap.gaussian_approximation(theta_full, x0)
            return ga.precision_values, ga.W, ga.S

        fn = jax.jit(pieces)
        model._sampling_pieces = fn
    return fn


def _sampler(model):
    """jit: (Q values, key, n_samples static) -> draws from N(0, Q⁻¹), compiled once per size."""
    fn = getattr(model, "_sampling_draw", None)
    if fn is None:
        fn = jax.jit(model.graph.solver.sample, static_argnames="n_samples")
        model._sampling_draw = fn
    return fn


def _chunk_sizes(m: int, largest: int = 512) -> list[int]:
    """m as a sum of powers of two (≤ ``largest``): a handful of fixed batch shapes, so that the
    sampler compiles a few times per model instead of once per distinct count."""
    sizes = [largest] * (m // largest)
    rest = m % largest
    bit = 1
    while rest:
        if rest & bit:
            sizes.append(bit)
            rest -= bit
        bit <<= 1
    return sizes


def _gaussian_draws(model, values, key, m: int) -> np.ndarray:
    """m draws from N(0, Q⁻¹), shape (m, n), in power-of-two batches."""
    draw = _sampler(model)
    parts = [np.asarray(draw(values, jax.random.fold_in(key, i), n_samples=size)) for i, size in enumerate(_chunk_sizes(m))]
    return np.concatenate(parts, axis=0)


def draw_latent(model, posterior, n: int, seed=0, use_improved_mean: bool = True):
    """Joint draws of (θ config, x, η) from INLA's mixture (see the module docstring).

    Returns:
        (config (n,) int, x (n, n_latent), eta (n, n_obs)): the design point of each draw,
        the latent field (f() components and fixed effects, in the graph's layout) and the
        linear predictor A x + offset.
    """
    n = int(n)
    if n < 1:
        raise DataError(f"the number of samples must be a positive integer, got {n}")
    g = model.graph
    pts = posterior.points
    probs = np.asarray(posterior.probabilities, dtype=float)
    rng, base = _rng_and_key(seed)
    config = rng.choice(probs.size, size=n, p=probs / probs.sum())
    pieces = _gaussian_pieces(model)
    C = None if g.constraints is None else np.asarray(g.constraints.C)
    e = None if g.constraints is None else np.asarray(g.constraints.e)
    offset = np.asarray(model.observations.offset, dtype=float)
    x = np.empty((n, g.n_latent))
    eta = np.empty((n, g.n_obs))
    key0 = jax.random.key(base)
    for k in np.unique(config):
        rows = np.flatnonzero(config == k)
        theta_full = jnp.asarray(pts.theta_full[k])
        qcv, W, S = pieces(theta_full, jnp.asarray(pts.mode[k]))
        z = _gaussian_draws(model, qcv, jax.random.fold_in(key0, int(k)), rows.size)
        mean = pts.mean[k] if use_improved_mean else pts.mode[k]
        xs = np.asarray(mean)[None, :] + z
        if C is not None:
            W, S = np.asarray(W), np.asarray(S)
            xs = xs - (W @ np.linalg.solve(S, C @ xs.T - e[:, None])).T
        x[rows] = xs
        A = g.a_matrix(theta_full)
        eta[rows] = np.asarray(A @ xs.T).T + offset[None, :]
    return config, x, eta


def posterior_sample(result, n: int = 1000, seed=0, intern: bool = False, use_improved_mean: bool = True) -> xr.Dataset:
    """Joint samples from INLA's approximate posterior, as one xarray Dataset over ``sample``.

    Variables (R-INLA's names): one per fixed effect ("(Intercept)", "x1", ...; dims
    ``sample``), one per f() term (dims ``sample``, ``<label>_ID`` with the ID values of
    ``summary_random``), ``Predictor`` (dims ``sample``, ``predictor``, named as the rows of
    ``summary_linear_predictor``) and one per hyperparameter (user-scale names, or internal
    names with ``intern=True``). The coordinate ``config`` is the design point of each draw.

    Args:
        result: an :class:`adelia.results.InlaResult`.
        n: number of draws.
        seed: an int (reproducible; the default 0 too) or a numpy Generator; None: fresh entropy.
        intern: hyperparameters on the internal scale (log precision, ...).
        use_improved_mean: centre the Gaussians at the VB-corrected means (R-INLA's default).

    Example:
        >>> s = res.posterior_sample(500, seed=1)   # res: hyperpar_sample's example
        >>> bool(abs(float(s["x1"].mean()) - res.summary_fixed.loc["x1", "mean"]) < 0.05)
        True
        >>> s["plate"].dims   # one draw of the 21 plate effects per sample
        ('sample', 'plate_ID')
    """
    model, post = result.model, result.posterior
    g = model.graph
    config, x, eta = draw_latent(model, post, n, seed=seed, use_improved_mean=use_improved_mean)
    n = config.size
    data: dict[str, tuple] = {}
    coords: dict[str, object] = {"sample": np.arange(n), "config": ("sample", config)}
    for comp in g.components:
        b = g.block(comp.label)
        dim = f"{comp.label}_ID"
        data[comp.label] = (("sample", dim), x[:, b.start : b.start + b.size])
        coords[dim] = np.asarray(comp.ids)[: b.size]
    theta_full = post.points.theta_full[config]
    for cp in g.copies:
        b = g.block(cp.source)
        beta = np.full(n, cp.beta) if cp.theta_index is None else theta_full[:, cp.theta_index]
        dim = f"{cp.label}_ID"
        data[cp.label] = (("sample", dim), x[:, b.start : b.start + b.size] * beta[:, None])
        coords[dim] = np.asarray(cp.ids)[: b.size]
    for b in g.blocks:
        if b.kind == "fixed":
            data[b.label] = (("sample",), x[:, b.start])
    data["Predictor"] = (("sample", "predictor"), eta)
    coords["predictor"] = result._predictor_names()
    for j, h in zip(model.free, model.hyperparameters):
        t = theta_full[:, j]
        if intern:
            data[h.internal_name] = (("sample",), t)
        else:
            data[h.name] = (("sample",), np.asarray(h.to_user(jnp.asarray(t)), dtype=float))
    return xr.Dataset(data, coords=coords, attrs={"description": "joint posterior samples (adelia posterior_sample)"})


def hyperpar_sample(result, n: int = 1000, seed=0, intern: bool = False, improve_marginals: bool = False) -> pd.DataFrame:
    """Samples of the hyperparameters from the fitted asymmetric Gaussian (R-INLA's
    ``inla.hyperpar.sample``; see the module docstring).

    Args:
        result: an :class:`adelia.results.InlaResult`.
        n: number of draws.
        seed: an int (reproducible; default 0) or a numpy Generator; None: fresh entropy.
        intern: return the internal scale (columns named as ``internal_summary_hyperpar``);
            otherwise the user scale (columns named as ``summary_hyperpar``).
        improve_marginals: map each coordinate onto its computed posterior marginal.

    Returns:
        A DataFrame, one row per draw, one column per free hyperparameter.

    Example:
        >>> seeds = adelia.datasets.load("Seeds")
        >>> res = adelia.inla("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n")
        >>> res.hyperpar_sample(1000, seed=2).columns.tolist()
        ['Precision for plate']
    """
    model, post = result.model, result.posterior
    hs = model.hyperparameters
    n = int(n)
    if n < 1:
        raise DataError(f"the number of samples must be a positive integer, got {n}")
    names = [h.internal_name if intern else h.name for h in hs]
    d = post.theta_mode.size
    if d == 0:
        return pd.DataFrame(index=pd.RangeIndex(n, name="sample"), columns=names, dtype=float)
    rng, _ = _rng_and_key(seed)
    ns = max(n, 300) if improve_marginals else n
    pos = np.asarray(post.stdev_corr_pos, dtype=float)
    neg = np.asarray(post.stdev_corr_neg, dtype=float)
    if pos.size != d:
        pos = neg = np.ones(d)
    z = np.empty((ns, d))
    for i in range(d):
        up = rng.uniform(size=ns) < pos[i] / (pos[i] + neg[i])
        z[:, i] = np.where(up, pos[i], -neg[i]) * np.abs(rng.standard_normal(ns))
    theta = post.axes.z_to_theta(post.theta_mode, z)
    theta = np.atleast_2d(theta).reshape(ns, d)
    if improve_marginals:
        from ..marginals import qmarginal

        for i, m in enumerate(post.hyper):
            u = stats.rankdata(theta[:, i]) / (ns + 1.0)
            theta[:, i] = qmarginal(u, (m.x, m.density))
    theta = theta[:n]
    if not intern:
        theta = np.column_stack([np.asarray(h.to_user(jnp.asarray(theta[:, i])), dtype=float) for i, h in enumerate(hs)])
    return pd.DataFrame(theta, columns=names, index=pd.RangeIndex(n, name="sample"))


def _arviz_name(name: str) -> str:
    """Variable names may not contain "/" in DataTree/netCDF (R-INLA's "I(X/10)"): use the
    division slash U+2215 instead (the R name is kept in the variable's attrs)."""
    return name.replace("/", "\u2215")


def to_inference_data(result, n: int = 1000, seed=0, log_likelihood: bool = True, predictor: bool = False):
    """ArviZ data (``InferenceData`` for arviz < 1, ``xarray.DataTree`` for arviz ≥ 1) from
    joint posterior samples: one chain of ``n`` draws.

    Groups: ``posterior`` (fixed effects, f() terms with their ID dims, hyperparameters on
    the user scale, and ``Predictor`` if ``predictor=True``), ``observed_data`` (the observed
    responses, dim ``observation``) and, with ``log_likelihood=True``, ``log_likelihood``
    (log π(y_i | η_i, θ) per draw and observed row, for ``az.loo`` / ``az.waic``).

    Raises:
        ImportError: arviz is not installed (``pip install adelia[arviz]``).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arviz 0.2x announces its 1.0 refactor
            import arviz as az
    except ImportError as exc:
        raise ImportError("to_arviz() needs the optional dependency arviz: pip install adelia[arviz] (or pip install arviz)") from exc

    model, post = result.model, result.posterior
    samples = posterior_sample(result, n, seed=seed)
    config = samples["config"].values
    keep = [v for v in samples.data_vars if predictor or v != "Predictor"]
    ds = samples[keep].drop_vars("config").rename({"sample": "draw"}).expand_dims(chain=[0])
    ds = ds.assign_coords(draw=np.arange(ds.sizes["draw"]))
    for v in ds.data_vars:
        ds[v].attrs["rinla_name"] = str(v)
    ds = ds.rename({v: _arviz_name(str(v)) for v in set(ds.variables) | set(ds.dims) if "/" in str(v)})
    ds.attrs = {"inference_library": "adelia", "description": "joint posterior samples of the INLA approximation"}

    obs = model.observations
    observed = np.flatnonzero(obs.observed)
    groups = {"posterior": ds}
    groups["observed_data"] = xr.Dataset({"y": (("observation",), np.asarray(model.y, dtype=float)[observed])}, coords={"observation": observed})
    if log_likelihood:
        eta = samples["Predictor"].values
        theta_full = post.points.theta_full[config]
        loglik = getattr(model, "_sampling_loglik", None)
        if loglik is None:
            loglik = model._sampling_loglik = jax.jit(jax.vmap(obs.pointwise_log_likelihood))
        ll = loglik(jnp.asarray(eta), jnp.asarray(theta_full))
        ll = np.asarray(ll)[:, observed]
        groups["log_likelihood"] = xr.Dataset(
            {"y": (("chain", "draw", "observation"), ll[None])}, coords={"chain": [0], "draw": np.arange(ll.shape[0]), "observation": observed}
        )
    major = int(str(az.__version__).split(".")[0])
    if major >= 1:
        return xr.DataTree.from_dict(groups)
    return az.InferenceData(**groups)
