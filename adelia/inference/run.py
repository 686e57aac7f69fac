"""The INLA algorithm end to end (Rue, Martino & Chopin 2009; R-INLA's compact mode).

1. Mode θ* of log π̃(θ | y) by BFGS on exact AD gradients (:mod:`.optimize`).
2. Hessian at θ* (central differences of AD gradients, step √h as R-INLA), its eigen-axes,
   the skewness scalings σ± from log π̃ at z = ±√2 e_i (:mod:`.design`).
3. The integration design (grid for d ≤ 2, CCD above, or as asked) and, at every design
   point θ_k as one vmapped batch: log π̃(θ_k | y), the Gaussian approximation (mode,
   constrained marginal variances), the VB-corrected mean, the linear predictor's moments.
4. Mixture weights, marginal likelihoods, latent/predictor/hyperparameter marginals, and the
   criteria asked for in ``control_compute``.

The output is a :class:`Posterior` of plain arrays; :class:`adelia.results.InlaResult` turns
it into R-INLA-named tables.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.batching import map_points, on_host
from ..engine.hoisted_jit import hoisted_jit
from ..errors import NumericalError
from ..user_warnings import warn
from . import design as des
from .constraints import constrained_solve, constraint_variance_correction
from .hyperpar import HyperMarginal, hyperparameter_marginals
from .memory import check_fit_memory
from .optimize import ModeResult, find_mode, hessian_from_gradients, hessian_from_values
from .summaries import Mixture
from .sanity import check_fit
from .vb import vb_correct_mean, vb_nodes


#: above this many latent variables an objective evaluation costs enough that the Hessian at
#: the mode is taken from 2d AD gradients rather than R-INLA's 2d² + 1 objective values
HESSIAN_VALUES_MAX_LATENT = 10_000


def hessian_method(d: int, n_latent: int) -> str:
    """``hessian.method = "auto"``: R-INLA's second differences of objective values for small
    models with d ≤ 4 (reproduces R-INLA's Hessian, step √h, to the digit); differences of AD
    gradients otherwise (2d gradients, each about 2–3 objectives, instead of 2d² values: the
    cheaper choice for d ≥ 3 once evaluations dominate the fit)."""
    if d <= 4 and n_latent <= HESSIAN_VALUES_MAX_LATENT:
        return "values"
    return "gradients"


def vb_abandoned_message(model, n_aborted: int, n_points: int) -> str:
    """What to tell the user when the VB mean correction gave up (R-INLA's emergency stop)."""
    cv = model.controls["control_vb"]
    return (
        f"the VB correction of the latent mean was abandoned at {n_aborted} of {n_points} integration point(s): it "
        f"moved a node by {float(cv['emergency']):g} posterior sd or more (control_vb emergency) or met a non-finite "
        f"value, so the Gaussian-approximation mode is used as the mean there (model with {model.graph.n_latent} "
        "latent nodes). To force the correction raise the limit, e.g. control_vb={'emergency': 100}; to silence this, "
        "control_vb={'enable': False}. diagnostics['vb_aborted'] lists the points."
    )


class NewtonWarning(UserWarning):
    """The inner Newton iteration did not converge at some θ (named in the message)."""


@dataclass
class PointResults:
    """Per design point (arrays with a leading axis of size K)."""

    theta: np.ndarray  # (K, d_free)
    theta_full: np.ndarray  # (K, n_theta)
    log_post: np.ndarray  # (K,) log π̃(θ_k | y) without weights
    mode: np.ndarray  # (K, n_latent) x* of π_G
    mean: np.ndarray  # (K, n_latent) VB-corrected mean
    var: np.ndarray  # (K, n_latent) constrained marginal variances
    eta_mean: np.ndarray  # (K, n_obs [+ n_rows]): A η, then the formula's rows with a stack A
    eta_var: np.ndarray  # (K, n_obs [+ n_rows])
    newton_iterations: np.ndarray
    newton_converged: np.ndarray
    vb_iterations: np.ndarray
    vb_aborted: np.ndarray | None = None  # (K,) the VB correction gave up there (x* kept)


@dataclass
class Posterior:
    """Everything INLA computed, as arrays (no names): see :class:`adelia.results.InlaResult`."""

    mode: ModeResult
    theta_mode: np.ndarray  # free, internal
    log_post_mode: float
    hessian: np.ndarray
    axes: des.HessianAxes
    stdev_corr_pos: np.ndarray
    stdev_corr_neg: np.ndarray
    design: des.IntegrationDesign
    points: PointResults
    probabilities: np.ndarray  # (K,) mixture weights (unpruned)
    mlik_integration: float
    mlik_gaussian: float
    latent: Mixture
    predictor: Mixture
    hyper: list[HyperMarginal]
    x_mode: np.ndarray  # latent mode at θ*
    criteria: dict[str, Any] = field(default_factory=dict)
    lincomb: Any = None  # .lincomb.LincombPosterior when the model has lincomb=
    nuts: Any = None  # .nuts_theta.ChainResult for int.strategy "nuts" (the chain over θ)
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    n_evaluations: int = 0


#: above this many bytes the VB correction's covariance columns Σ_{:,S} (n × m) are not formed:
#: each Newton step of the correction uses two products Σ v instead (same step to rounding)
VB_COLUMNS_MAX_BYTES = 64 * 2**20
#: unit columns per solve when Σ_SS is formed from products (bounds the (n, b) blocks in flight)
VB_BLOCK_NUMBERS = 2_000_000


def vb_products(n_latent: int, m: int) -> bool:
    """Whether the VB correction of a model with ``n_latent`` nodes and ``m`` VB nodes uses
    products Σ v instead of the columns Σ_{:,S} (see :data:`VB_COLUMNS_MAX_BYTES`)."""
    return 8 * int(n_latent) * int(m) > VB_COLUMNS_MAX_BYTES


def vb_block_columns(n_latent: int, m: int) -> int:
    """Unit columns per solve when Σ_SS is formed from products (:func:`vb_products`)."""
    return max(1, min(int(m), VB_BLOCK_NUMBERS // max(1, int(n_latent))))


def _point_function(model, use_vb: bool):
    """One design point: θ_free -> everything the marginals need (jit + vmap-able)."""
    lap = model.laplace
    g = model.graph
    lay = model.layout
    cv = model.controls["control_vb"]
    limit = np.atleast_1d(cv["f.enable.limit"])
    nodes = vb_nodes(g, limit=int(limit[0]))
    lap.vb_nodes = nodes
    vb_max_iter, vb_emergency = int(cv["iter.max"]), float(cv["emergency"])
    C = lap.C
    vb_by_products = use_vb and vb_products(g.n_latent, nodes.size)

    def point(theta_free, x0):
        theta = lay.expand(theta_free)
        ga = lap.gaussian_approximation(theta, x0)
        lp = lap._objective_at(theta, ga.mode)
        av = g.a_values(theta)
        eta_var = g.predictor_variance(av, ga.selected_inverse)
        if C is not None:
            AW = g.predictor(av, ga.W)
            eta_var = eta_var - constraint_variance_correction(AW, ga.S)
        eta_var = jnp.maximum(eta_var, 0.0)
        mean = ga.mode
        vb_it = jnp.asarray(0)
        vb_abort = jnp.asarray(False)
        if use_vb and nodes.size and not vb_by_products:
            E = jnp.zeros((g.n_latent, nodes.size)).at[jnp.asarray(nodes), jnp.arange(nodes.size)].set(1.0)
            Sigma_S, _, _ = constrained_solve(g.solver, ga.precision_values, E, C, None)
            mean, vb_it, vb_abort = vb_correct_mean(
                lap, theta, ga.mode, Sigma_S, ga.variance, eta_var, max_iter=vb_max_iter, emergency=vb_emergency
            )
        elif use_vb and nodes.size:
            # large models: products Σ v instead of the n × m columns Σ_{:,S} (and their unit
            # right-hand sides and the solver's copies, ~1.3 GB per thread at n = 10⁶)
            def sigma_matvec(v, qcv=ga.precision_values):
                return constrained_solve(g.solver, qcv, v, C, None)[0]

            mean, vb_it, vb_abort = vb_correct_mean(
                lap, theta, ga.mode, None, ga.variance, eta_var, max_iter=vb_max_iter, emergency=vb_emergency,
                sigma_matvec=sigma_matvec, block=vb_block_columns(g.n_latent, nodes.size),
            )
        eta_mean = g.predictor(av, mean) + jnp.asarray(model.observations.offset)
        if g.effect_map is not None:
            # the formula's own rows (R-INLA's "Predictor" beside "APredictor" = A η)
            ev = g.effect_map.entry_values(g.copy_betas(theta))
            eff_var = g.effect_map.variance(ev, ga.selected_inverse)
            if C is not None:
                eff_var = eff_var - constraint_variance_correction(g.effect_map.apply(ev, ga.W), ga.S)
            eta_mean = jnp.concatenate([eta_mean, g.effect_map.apply(ev, mean) + jnp.asarray(model.effect_offset)])
            eta_var = jnp.concatenate([eta_var, jnp.maximum(eff_var, 0.0)])
        return lp, ga.mode, mean, ga.variance, eta_mean, eta_var, ga.status.iterations, ga.status.converged, vb_abort, vb_it

    return point


def _point_program(model, use_vb: bool):
    """The compiled one-design-point function of ``model`` (made once per model and ``use_vb``)."""
    single = getattr(model, "_point_single", None)
    if single is None or getattr(model, "_point_fn_vb", None) != use_vb:
        single = hoisted_jit(_point_function(model, use_vb), getattr(model, "_const_pool", None))
        model._point_single = single
        # run on host threads (CPU) or vmapped (accelerators; sharded over control_inla["devices"])
        devices = getattr(model, "_points_devices", model.controls["control_inla"].get("devices"))
        model._point_fn = map_points(single, devices, getattr(model, "_const_pool", None))
        model._point_fn_vb = use_vb
    return single


def _precompile_points(model, use_vb: bool, d: int) -> threading.Thread | None:
    """Compile the design-point program on a second thread while the mode is searched.

    Of a small model's fit most time is tracing and compiling its two programs (the
    objective's value and gradient; one design point); XLA compiles without the GIL, so the
    second compiles beside the first and the mode search instead of after them. On the CPU
    only, where points run the single-point program (accelerators vmap a batch, whose
    shape is known only with the design). An error here is left to the point evaluation,
    which meets it again and reports it in the fit's own thread."""
    if not on_host() or d == 0:
        return None
    single = _point_program(model, use_vb)
    if not model._point_fn.threaded:  # several devices: a sharded program of the design's shape
        return None
    theta = np.asarray(model.theta0, dtype=float)
    x0 = jnp.asarray(model._x_warm)

    def compile_points() -> None:
        try:
            single.precompile(theta, x0)
        except Exception:  # noqa: BLE001 — met again, and reported, by the point evaluation
            pass

    thread = threading.Thread(target=compile_points, name="adelia-compile-points", daemon=True)
    thread.start()
    return thread


def _evaluate_points(model, thetas: np.ndarray, x0: np.ndarray, use_vb: bool) -> PointResults:
    _point_program(model, use_vb)
    lp, mode, mean, var, em, ev, nit, conv, vbab, vbit = model._point_fn(thetas, jnp.asarray(x0))
    if mean is not mode and np.array_equal(mean, mode):
        mean = mode  # no VB (or abandoned everywhere): one (K, n) array, not two equal ones
    full = model.layout.expand_host(thetas)
    return PointResults(np.asarray(thetas), full, lp, mode, mean, var, em, ev, nit, conv, vbit, np.asarray(vbab, dtype=bool))


def release_host_memory() -> None:
    """Return the C heap's free pages to the system (glibc ``malloc_trim``; a no-op elsewhere).

    Between the fit's stages the large temporaries of the threads (XLA buffers, the kernels'
    workspaces, 8 MB per vector at 10⁶ nodes) are freed into glibc's per-thread arenas, which
    keep them: without trimming, a later stage on another thread cannot reuse them and the
    resident set grows by their size (measured: ~0.5 GB at 10⁶ latent nodes)."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def run_inla(model, quantiles=(0.025, 0.5, 0.975), verbose: bool = False, progress=None) -> "Posterior":
    """Run INLA on a compiled :class:`adelia.model.Model`."""
    from ..progress import Progress

    ci = model.controls["control_inla"]
    classic = ci["inla.mode"] == "classic"
    cm = model.controls["control_mode"]
    cc = model.controls["control_compute"]
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    prog = progress or Progress(enabled=verbose)
    # the peak memory estimated from the symbolic structure: fail now, not after hours
    check_fit_memory(model, verbose=verbose)
    # A quadratic log-likelihood (Gaussian identity-link families) makes π(x | y, θ) exactly
    # Gaussian: its mean is the mode and the VB mean correction is zero, so it is not run.
    use_vb = (
        not classic
        and bool(ci.get("vb.correction", True))
        and model.controls["control_vb"]["enable"] not in (False, "false", "FALSE")
        and not model.observations.quadratic
    )

    # --- 1. the mode ---------------------------------------------------------------------------------
    theta0 = model.theta0 if cm.get("theta") is None else np.asarray(cm["theta"], dtype=float)
    d = theta0.size
    compiling_points = _precompile_points(model, use_vb, d)
    if cm.get("fixed") or d == 0:
        f0 = model.value_and_grad(theta0)[0] if d else model.log_posterior(theta0)
        mode = ModeResult(theta0, f0, np.zeros(d), True, 0, 1, "fixed by control_mode" if d else "no hyperparameters")
    else:
        if ci["gradient"] == "fd":
            def vg(th):
                return model.log_posterior(th), model.grad_log_posterior(th, method="fd", step=float(ci["h"]))
        else:
            vg = model.value_and_grad
        prog.start("mode search")
        # R-INLA's tolerance.x = 0.2 × tolerance: the shortest step that enters use.directions' frame
        mode = find_mode(vg, theta0, callback=lambda it, th, f: prog.update(f"iteration {it}: log π(θ|y) = {f:.4f}"),
                         frame_min_step=0.2 * float(ci["tolerance"]))
        prog.stop()
    timings["mode"] = time.perf_counter() - t0
    theta_star = mode.theta
    f_star = model.value_and_grad(theta_star)[0] if d else model.log_posterior(theta_star)
    x_warm = np.asarray(model._x_warm)

    # --- 2. Hessian, axes, skewness ------------------------------------------------------------------
    t1 = time.perf_counter()
    if d:
        step = float(np.sqrt(ci["h"]))
        method = ci["hessian.method"]
        if method == "auto":
            method = hessian_method(d, model.graph.n_latent)
        # R-INLA's use.directions (default): differences along the mode search's directions
        dirs = mode.directions if ci["use.directions"] else None
        if method == "values":
            hess = hessian_from_values(model.log_posterior_batch, theta_star, f_star, step=step, directions=dirs)
        else:
            hess = hessian_from_gradients(model.grad_batch, theta_star, step=step, directions=dirs)
        axes = des.hessian_axes(hess.hessian)
        if axes.repaired:
            msg = (f"the Hessian of log π(θ|y) at the mode θ* = {np.round(theta_star, 4).tolist()} is not positive definite "
                   f"(eigenvalues {np.round(hess.eigenvalues, 5).tolist()}); using R-INLA's fallback (diagonal Hessian)")
            warn(msg, UserWarning)
            notes.append(msg)
        sk_pts = des.skewness_points(theta_star, axes)
        sk_vals = model.log_posterior_batch(sk_pts)
        # R-INLA 25.x (compact mode) rescales σ± to σ⁺σ⁻ = 1 (hessian.correct.skewness.only):
        # every reference fit has stdev_corr_positive · stdev_corr_negative = 1
        pos, neg = des.skewness_scalings(sk_vals, f_star, correct_skewness_only=not classic)
        hmat = hess.hessian
    else:
        axes = des.HessianAxes(np.zeros(0), np.zeros((0, 0)), np.zeros((0, 0)))
        pos = neg = np.zeros(0)
        hmat = np.zeros((0, 0))
    timings["hessian"] = time.perf_counter() - t1
    release_host_memory()

    # --- 3. design points ------------------------------------------------------------------------------
    t2 = time.perf_counter()
    strategy = ci["int.strategy"]
    if strategy in ("user", "user.std"):
        raise NotImplementedError('int.strategy "user"/"user.std" (user-given design points) is not available yet')
    if d == 0:
        design = des.IntegrationDesign("eb", np.zeros((1, 0)), np.zeros((1, 0)), np.zeros((1, 0)), np.zeros(1), 1.0)
    elif classic and strategy in ("auto", "grid") and d <= 2:
        prog.start("exploring the grid over θ")
        design, _ = des.adaptive_grid_design(
            theta_star, axes, pos, neg, model.log_posterior_batch, f_star, dz=float(ci["dz"]), diff_logdens=float(ci["diff.logdens"])
        )
        prog.stop()
    elif strategy == "nuts":
        # NUTS over θ (.nuts_theta): the chain's thinned draws are the design points, with
        # equal weights (below); the hyperparameter marginals come from the chain itself
        from .nuts_theta import chain_design, nuts_settings, run_theta_chain

        chain = run_theta_chain(model, theta_star, axes.covariance(), ci.get("nuts"), progress=prog)
        design = chain_design(chain, theta_star, axes, nuts_settings(ci.get("nuts"))["points"])
    else:
        design = des.integration_design(theta_star, axes, pos, neg, strategy=strategy)
    prog.start(f"integration over {design.size} points")
    if compiling_points is not None:
        compiling_points.join()
    pts = _evaluate_points(model, design.theta, x_warm, use_vb)
    prog.stop()
    release_host_memory()
    if d and design.strategy not in ("grid.classic", "nuts") and np.max(pts.log_post) > f_star + 1.0:
        best = design.theta[int(np.argmax(pts.log_post))]
        msg = (
            f"log π(θ|y) at the integration point θ = {np.round(best, 4).tolist()} exceeds its value at the mode found "
            f"(θ* = {np.round(theta_star, 4).tolist()}) by {np.max(pts.log_post) - f_star:.2f}: the posterior of the "
            "hyperparameters has mass away from the mode (a second mode or a flat direction) that the "
            + ("grid may not cover" if design.strategy == "grid.classic" else
               "compact-mode design does not cover; inla_mode='classic' explores the posterior with an adaptive grid")
        )
        warn(msg, UserWarning)
        notes.append(msg)
    bad = ~np.isfinite(pts.log_post)
    if np.any(bad):
        msg = f"log π(θ|y) is not finite at {int(bad.sum())} integration point(s) (e.g. θ = {np.round(design.theta[bad][0], 4).tolist()}); they get weight 0"
        warn(msg, NewtonWarning)
        notes.append(msg)
        pts.log_post = np.where(bad, -np.inf, pts.log_post)
    noconv = ~pts.newton_converged.astype(bool)
    if np.any(noconv & ~bad):
        msg = (f"the inner Newton iteration for the latent mode did not converge at {int((noconv & ~bad).sum())} integration point(s) "
               f"(e.g. θ = {np.round(design.theta[noconv & ~bad][0], 4).tolist()}) after step halving; results there may be inaccurate")
        warn(msg, NewtonWarning)
        notes.append(msg)
    if use_vb and pts.vb_aborted is not None and np.any(pts.vb_aborted & ~bad):
        msg = vb_abandoned_message(model, int(np.sum(pts.vb_aborted & ~bad)), int(np.sum(~bad)))
        warn(msg, UserWarning)
        notes.append(msg)
    timings["integration"] = time.perf_counter() - t2

    # --- 4. weights, mlik, marginals ------------------------------------------------------------------------
    t3 = time.perf_counter()
    corrected = False  # nuts correction "importance" (.nuts_theta.importance_reweight)
    if design.strategy == "nuts":  # draws from π̃(θ | y): equal weights (those with finite π̃)
        probs = np.where(np.isfinite(pts.log_post), 1.0, 0.0)
        probs = probs / probs.sum()
        if nuts_settings(ci.get("nuts"))["correction"] == "importance":
            from .nuts_theta import importance_reweight

            probs, corrected = importance_reweight(model, chain, pts, ci.get("nuts")), True
    else:
        probs = des.mixture_probabilities(design, pts.log_post)
    if d:
        mlik_g = des.log_mlik_gaussian(f_star, axes)
        if design.strategy == "nuts":  # a chain gives no normalising constant: the Gaussian estimate
            mlik_i = mlik_g
        elif design.strategy == "grid.classic":
            lw = pts.log_post + design.log_weights
            top = float(np.max(lw))
            mlik_i = top + float(np.log(np.sum(np.exp(lw - top)))) - 0.5 * float(np.sum(np.log(axes.eigenvalues)))
        else:
            mlik_i = des.log_mlik_integration(design, pts.log_post, f_star, axes, pos, neg)
    else:
        mlik_g = mlik_i = float(pts.log_post[0])
    p_latent = des.prune_probabilities(probs, 0.999)
    p_pred = des.prune_probabilities(probs, 0.975)
    keep = p_latent > 0
    latent_strategy = ci["strategy"]
    if classic and latent_strategy == "auto":
        latent_strategy = "simplified.laplace"  # R-INLA's classic default
    if latent_strategy in ("laplace", "simplified.laplace") and not corrected:  # corrected: the weighted moments
        from .latent_strategies import latent_marginals

        latent = latent_marginals(model, pts, p_latent, latent_strategy)
    else:
        latent = Mixture(p_latent[keep], pts.mean[keep], np.sqrt(np.maximum(pts.var[keep], 0.0)))
    keep2 = p_pred > 0
    predictor = Mixture(p_pred[keep2], pts.eta_mean[keep2], np.sqrt(np.maximum(pts.eta_var[keep2], 1e-300)))
    if design.strategy == "nuts":
        from .nuts_theta import chain_hyper_marginals, exact_mixture

        hyper = chain_hyper_marginals(design.theta, weights=probs) if corrected else chain_hyper_marginals(chain.pooled())
        latent, predictor = exact_mixture(latent), exact_mixture(predictor)
    else:
        hyper = (
            hyperparameter_marginals(theta_star, axes, pos, neg, design.theta, pts.log_post, strategy=design.strategy) if d else []
        )
    lincomb = None
    if getattr(model, "lincombs", None) is not None:  # derived linear combinations (lincomb=)
        from .lincomb import lincomb_posterior

        lincomb = lincomb_posterior(model, pts, probs, latent)
    timings["marginals"] = time.perf_counter() - t3
    check_fit(model, latent.mean(), float(mlik_i), notes)
    centre = int(np.argmax(np.all(design.z == 0, axis=1))) if d else 0
    x_mode = x_warm if design.strategy == "nuts" else pts.mode[centre]  # nuts: x*(θ*) from the mode search

    post = Posterior(
        mode=mode,
        theta_mode=theta_star,
        log_post_mode=f_star,
        hessian=hmat,
        axes=axes,
        stdev_corr_pos=pos,
        stdev_corr_neg=neg,
        design=design,
        points=pts,
        probabilities=probs,
        mlik_integration=float(mlik_i),
        mlik_gaussian=float(mlik_g),
        latent=latent,
        predictor=predictor,
        hyper=hyper,
        x_mode=x_mode,
        timings=timings,
        warnings=notes,
        n_evaluations=mode.n_evaluations + 2 * d + 2 * d + design.size + (chain.n_evaluations if design.strategy == "nuts" else 0),
        lincomb=lincomb,
        nuts=chain if design.strategy == "nuts" else None,
    )
    if cc.get("dic") or cc.get("waic") or cc.get("cpo") or cc.get("po"):
        from .criteria import compute_criteria

        t4 = time.perf_counter()
        post.criteria = compute_criteria(model, post, cc)
        timings["criteria"] = time.perf_counter() - t4
    # the factorisations cached during the fit are not needed by the results (at 10⁶ nodes
    # ~0.15 GB); a later solve (sampling, criteria on demand) factorises again
    release = getattr(model.graph.solver, "release_factors", None)
    if release is not None:
        release()
    release_host_memory()
    timings["total"] = time.perf_counter() - t0
    return post
