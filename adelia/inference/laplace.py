"""The Laplace approximation of π(θ | y) and its exact gradient (DESIGN.md §2, §3).

For hyperparameters θ, with x* the (constrained) mode of π(x | y, θ),

    log π(θ | y) ≈ log π(θ) + log π(x* | θ) + Σ_i log π(y_i | η*_i, θ) − log π_G(x* | y, θ)

(Tierney & Kadane 1986; Rue, Martino & Chopin 2009, eq. 3), where π_G is the Gaussian
approximation with precision Q_c = Q(θ) + Aᵀ D A, D = diag(−∂² log π(y | η*)). Written out,
with n latent nodes, k hard constraints C x = e (S = C Q_c⁻¹ Cᵀ):

    f(θ) = log π(θ)
         + Σ_k [½ log|Q_k|* − ½ (n_k − r_k) log 2π] − ½ (x* − μ)ᵀ Q (x* − μ)      prior of x
         + Σ_i log π(y_i | η*_i)                                                 likelihood
         − ½ log|Q_c| + ½ (n − k) log 2π − ½ log|S|                              −log π_G(x* | C x = e)
         + (constant terms of the constrained densities, see ``constraint_constant``)

The quadratic term of π_G vanishes at its mode; under constraints it cancels against the
density of C x under π_G (conditioning by kriging). Proper components that carry
constraints contribute −log π(C_k x_k = e_k) to the prior side.

Gradient. x*(θ) is found by Newton's method (each step one solve with Q_c; a single, exact
step for a quadratic log-likelihood), never differentiated through:
:func:`LaplaceApproximation.mode` has a custom VJP from the implicit function theorem. At
the optimum ∇ₓ g(x*, θ) − Cᵀλ = 0, C x* = e with g(x, θ) = log π(y | x, θ) + log π(x | θ);
differentiating,

    θ̄ = vᵀ ∂_θ ∇ₓ g(x*, θ),      v = Q_c⁻¹ x̄ corrected onto C v = 0 (kriging),

one extra (constrained) solve with the factorised Q_c. log|Q_c| and the solves carry the
kernels' structured VJPs, so ∇f costs about one objective evaluation whatever dim θ is.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.graph import LatentGraph, ThetaLayout
from ..engine.solver import make_solver
from ..errors import ModelError
from .constraints import constrained_solve, constraint_variance_correction, log_det_CCt, log_det_spd
from .observations import ObservationModel

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class NewtonOptions:
    """Inner optimisation settings: stop when max|Δx| ≤ tol·(1 + max|x|)."""

    max_iter: int = 100
    tol: float = 1e-10
    max_halvings: int = 30


@dataclass(frozen=True)
class NewtonStatus:
    """What the inner optimisation did at one θ (arrays, batched under vmap)."""

    iterations: jax.Array
    converged: jax.Array
    finite: jax.Array


jax.tree_util.register_pytree_node(
    NewtonStatus,
    lambda s: ((s.iterations, s.converged, s.finite), None),
    lambda _, c: NewtonStatus(*c),
)


@dataclass(frozen=True)
class GaussianApproximation:
    """π_G(x | y, θ) at one θ: the constrained mode (= mean), Q_c's values on the posterior
    pattern, diag of the constrained covariance, and the constraint pieces."""

    mode: jax.Array
    precision_values: jax.Array
    variance: jax.Array
    selected_inverse: jax.Array
    W: jax.Array | None
    S: jax.Array | None
    status: NewtonStatus


jax.tree_util.register_pytree_node(
    GaussianApproximation,
    lambda g: ((g.mode, g.precision_values, g.variance, g.selected_inverse, g.W, g.S, g.status), None),
    lambda _, c: GaussianApproximation(*c),
)


def _rinla_log_normaliser(model, theta):
    """½ log|Q_k(θ)| − ½ (n_k − r_k) log 2π in R-INLA's convention: for intrinsic models
    ½(n − r) log τ *without* the generalised determinant ½ log|R|* of the structure matrix
    (R-INLA's ``extra()``; verified on the reference fits). None: no closed form."""
    own = getattr(model, "rinla_log_normaliser", None)
    if own is not None:
        return own(theta)
    ln = model.log_normaliser(theta)
    if ln is not None and model.rank_deficiency > 0:
        ln = ln - model.structure_log_det_constant
    return ln


class LaplaceApproximation:
    """The Laplace objective of a compiled model; all methods are pure functions of the full
    θ vector (and a warm-start x0), jit- and vmap-able.

    Args:
        graph: the compiled latent structure.
        observations: responses, families, offsets.
        layout: the full hyperparameter vector (likelihoods first, then components).
        newton: inner optimisation settings.
        constraint_measure: include ½ Σ log|C_k C_kᵀ| for intrinsic components whose constraints
            remove their null space (the density of x on {C x = e} in orthonormal coordinates).
    """

    def __init__(
        self,
        graph: LatentGraph,
        observations: ObservationModel,
        layout: ThetaLayout,
        newton: NewtonOptions = NewtonOptions(),
        constraint_measure: bool = True,
    ):
        self.graph = graph
        self.obs = observations
        self.layout = layout
        self.newton = newton
        C = graph.constraints
        self.C = None if C is None else np.asarray(C.C)
        self.e = None if C is None else np.asarray(C.e)
        self.k = 0 if C is None else C.k
        self._classify_constraints(constraint_measure)
        self.mode = jax.custom_vjp(self._mode_impl)
        self.mode.defvjp(self._mode_fwd, self._mode_bwd)

    # --- set-up --------------------------------------------------------------------------------
    def _classify_constraints(self, constraint_measure: bool) -> None:
        """Per component: how its constraints enter the prior side (see module docstring)."""
        self.proper_constrained = []  # (component index, C_k, e_k, solver)
        const = 0.0
        for i, comp in enumerate(self.graph.components):
            cons = comp.model.constraints()
            if cons is None or cons.k == 0:
                continue
            r = comp.model.rank_deficiency
            if r == 0:
                solver = self.graph.component_solvers.get(i) or make_solver(comp.model.pattern(), "auto")
                self.proper_constrained.append((i, cons.C, cons.e, solver))
            elif cons.k <= r:
                if constraint_measure:
                    const += 0.5 * log_det_CCt(cons.C)
            else:
                raise ModelError(
                    f"f({comp.label}, model=\"{comp.model.model_name}\"): {cons.k} constraints on an intrinsic model of "
                    f"rank deficiency {r} (constraints beyond its null space) are not supported"
                )
        self.constraint_constant = const

    # --- pieces ----------------------------------------------------------------------------------
    def _log_joint(self, x, theta, qv, av):
        """g(x, θ) = log π(y | x, θ) − ½ (x − μ)ᵀ Q (x − μ): the part of log π(x, y | θ) that
        depends on x."""
        g = self.graph
        eta = g.predictor(av, x) + jnp.asarray(self.obs.offset)
        r = x - jnp.asarray(g.prior_mean)
        return self.obs.log_likelihood(eta, theta) - 0.5 * jnp.dot(r, g.prior_matvec(qv, r))

    def _curvature(self, x, theta, qv, av, clamp: bool = True):
        """(η, d1, D, Q_c values) at x with D = −∂² log π(y | η); ``clamp`` sets D = max(D, 0)
        so that non-log-concave families keep Q_c positive definite (the Newton steps and
        π_G); the implicit-function VJP needs the true Hessian (``clamp=False``)."""
        g = self.graph
        eta = g.predictor(av, x) + jnp.asarray(self.obs.offset)
        d1, d2 = self.obs.derivatives(eta, theta)
        D = jnp.maximum(-d2, 0.0) if clamp else -d2
        return eta, d1, D, g.posterior_values(qv, av, D)

    def _newton_step(self, x, theta, qv, av):
        """The full Newton step from x: the constrained maximiser of the quadratic expansion."""
        g = self.graph
        eta, d1, D, qcv = self._curvature(x, theta, qv, av)
        off = jnp.asarray(self.obs.offset)
        b = g.prior_matvec(qv, jnp.asarray(g.prior_mean)) + g.predictor_transpose(av, d1 + D * (eta - off))
        x_new, _, _ = constrained_solve(g.solver, qcv, b, self.C, self.e)
        return x_new

    def _newton(self, theta, x0):
        opts = self.newton
        g = self.graph
        qv = g.prior_values(theta)
        av = g.a_values(theta)
        obj = lambda x: self._log_joint(x, theta, qv, av)

        def halve(x, x_new, f_old, require_ascent):
            """Step from x towards x_new, halving until the objective is finite and (when
            ``require_ascent``) not below f_old."""

            def cond(s):
                _, f_try, h = s
                worse = require_ascent & (f_try < f_old - 1e-12 * (1.0 + jnp.abs(f_old)))
                return (worse | ~jnp.isfinite(f_try)) & (h < opts.max_halvings)

            def body(s):
                step, _, h = s
                step = 0.5 * step
                return step, obj(x + step), h + 1

            step0 = x_new - x
            step, f_new, _ = jax.lax.while_loop(cond, body, (step0, obj(x_new), 0))
            return x + step, f_new

        # A quadratic log-likelihood makes g(·, θ) quadratic: the first Newton step is exact
        # (a second would only repeat the solve with the same factor).
        one_step = self.obs.quadratic

        def cond(state):
            it, x, f, delta, _ = state
            more = (it < opts.max_iter) & (delta > opts.tol * (1.0 + jnp.max(jnp.abs(x)))) & jnp.isfinite(delta)
            return (more & (it < 1)) if one_step else more

        def body(state):
            it, x, f, _, _ = state
            x_new = self._newton_step(x, theta, qv, av)
            # an infeasible x0 (C x0 ≠ e) has no comparable objective: its first step need only
            # reach a finite value; every other step must not decrease the objective
            x_next, f_next = halve(x, x_new, f, (it > 0) | feasible0)
            delta = jnp.max(jnp.abs(x_next - x))
            return it + 1, x_next, f_next, delta, f

        x0 = jnp.asarray(x0, dtype=jnp.float64)
        if self.C is None:
            feasible0 = jnp.asarray(True)
        else:
            feasible0 = jnp.max(jnp.abs(jnp.asarray(self.C) @ x0 - jnp.asarray(self.e))) <= 1e-8
        init = (0, x0, obj(x0), jnp.asarray(1e300), jnp.asarray(-jnp.inf))
        it, x, f, delta, _ = jax.lax.while_loop(cond, body, init)
        finite = jnp.all(jnp.isfinite(x))
        converged = delta <= opts.tol * (1.0 + jnp.max(jnp.abs(x)))
        if one_step:
            converged = converged | (it >= 1)
        status = NewtonStatus(it, converged, finite)
        return x, status

    # --- the mode with its implicit-function VJP ---------------------------------------------------
    def _mode_impl(self, theta, x0):
        return self._newton(theta, x0)[0]

    def _mode_fwd(self, theta, x0):
        x = self._newton(theta, x0)[0]
        return x, (theta, x)

    def _mode_bwd(self, res, x_bar):
        theta, x = res
        g = self.graph
        qv = g.prior_values(theta)
        av = g.a_values(theta)
        _, _, _, qcv = self._curvature(x, theta, qv, av, clamp=False)
        # v = H⁻¹ x̄ (H = −∇²ₓ g, the true Hessian) projected onto C v = 0; θ̄ = vᵀ ∂_θ ∇ₓ g(x*, θ)
        v, _, _ = constrained_solve(g.solver, qcv, x_bar, self.C, None)

        def grad_x(th):
            return jax.grad(self._log_joint, argnums=0)(x, th, g.prior_values(th), g.a_values(th))

        _, pull = jax.vjp(grad_x, theta)
        (theta_bar,) = pull(v)
        return theta_bar, jnp.zeros_like(x)

    # --- the objective ------------------------------------------------------------------------------
    def log_prior_theta(self, theta):
        """Σ log π(θ_j) over the free hyperparameters (internal scale, Jacobians included)."""
        total = jnp.asarray(0.0)
        for j, h in enumerate(self.layout.hyperparameters):
            if not h.fixed:
                # a joint prior (mvnorm on ar's pacf1, ...) sits on the first θ of its block
                # and reads the block's d consecutive values, fixed members included, as
                # R-INLA's PRIOR_EVAL does; the other members carry prior "none"
                dim = int(getattr(h.prior, "dimension", 1) or 1)
                total = total + h.prior.log_density(theta[j] if dim == 1 else theta[j : j + dim])
        return total

    def log_prior_normaliser(self, theta):
        """Σ_k ½ log|Q_k(θ)|* − ½ (n_k − r_k) log 2π, plus the fixed effects' proper priors."""
        g = self.graph
        total = jnp.asarray(0.0)
        for i, (comp, th) in enumerate(zip(g.components, g.component_thetas(theta))):
            ln = _rinla_log_normaliser(comp.model, th)
            if ln is None:
                solver = g.component_solvers[i]
                ln = 0.5 * solver.logdet(comp.model.precision_values(th)) - 0.5 * comp.model.n * LOG_2PI
            total = total + ln
        prec = np.asarray(g.fixed.prior_prec, dtype=float)
        proper = prec > 0
        total = total + 0.5 * float(np.sum(np.log(prec[proper]))) - 0.5 * int(proper.sum()) * LOG_2PI
        return total

    def _constrained_prior_terms(self, theta):
        """−log π(C_k x_k = e_k | θ) for proper components that carry constraints."""
        g = self.graph
        total = jnp.asarray(0.0)
        ths = g.component_thetas(theta)
        for i, Ck, ek, solver in self.proper_constrained:
            qk = g.components[i].model.precision_values(ths[i])
            Wk = solver.solve(qk, jnp.asarray(Ck.T))
            Sk = jnp.asarray(Ck) @ Wk
            kk = Ck.shape[0]
            quad = jnp.dot(jnp.asarray(ek), jnp.linalg.solve(Sk, jnp.asarray(ek)))
            total = total + 0.5 * kk * LOG_2PI + 0.5 * log_det_spd(Sk) + 0.5 * quad
        return total

    def log_posterior(self, theta, x0=None):
        """f(θ): the unnormalised log π(θ | y) (full θ vector), differentiable in θ."""
        return self.log_posterior_and_mode(theta, x0)[0]

    def _objective_at(self, theta, x):
        g = self.graph
        qv = g.prior_values(theta)
        av = g.a_values(theta)
        eta, _, _, qcv = self._curvature(x, theta, qv, av)
        r = x - jnp.asarray(g.prior_mean)
        quad = jnp.dot(r, g.prior_matvec(qv, r))
        ll = self.obs.log_likelihood(eta, theta)
        logdet_c = g.solver.logdet(qcv)
        value = (
            self.log_prior_theta(theta)
            + self.log_prior_normaliser(theta)
            - 0.5 * quad
            + ll
            - 0.5 * logdet_c
            + 0.5 * (g.n_latent - self.k) * LOG_2PI
            + self._constrained_prior_terms(theta)
            + self.constraint_constant
        )
        if self.C is not None:
            W = g.solver.solve(qcv, jnp.asarray(self.C.T))
            S = jnp.asarray(self.C) @ W
            value = value - 0.5 * log_det_spd(S)
        return value

    def log_posterior_and_mode(self, theta, x0=None):
        """(f(θ), x*(θ)) — the mode is returned for warm starts (not differentiated)."""
        g = self.graph
        if x0 is None:
            x0 = jnp.zeros(g.n_latent)
        x = self.mode(theta, jax.lax.stop_gradient(x0))
        return self._objective_at(theta, x), jax.lax.stop_gradient(x)

    # --- the Gaussian approximation at θ (forward only) ------------------------------------------------
    def gaussian_approximation(self, theta, x0=None) -> GaussianApproximation:
        """π_G(x | y, θ): mode, Q_c values, constrained marginal variances, selected inverse."""
        g = self.graph
        if x0 is None:
            x0 = jnp.zeros(g.n_latent)
        x, status = self._newton(theta, x0)
        qv = g.prior_values(theta)
        av = g.a_values(theta)
        _, _, _, qcv = self._curvature(x, theta, qv, av)
        sel = g.solver.selected_inverse(qcv)
        var = sel[jnp.asarray(g.posterior_pattern.diag_index)]
        W = S = None
        if self.C is not None:
            W = g.solver.solve(qcv, jnp.asarray(self.C.T))
            S = jnp.asarray(self.C) @ W
            var = var - constraint_variance_correction(W, S)
        return GaussianApproximation(x, qcv, var, sel, W, S, status)
