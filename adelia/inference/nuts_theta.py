"""NUTS over the hyperparameters θ on the Laplace approximation log π̃(θ | y) (issue 16, item 3).

``control_inla={"int.strategy": "nuts"}`` replaces INLA's fixed integration design (grid/CCD
around the mode) by a Markov chain over θ: where π(θ | y) is bimodal or far from Gaussian
(Seeds under the default prior: a local mode at log τ ≈ 2.7, the bulk at log τ ≈ 10) the
design misses mass, the chain does not. R-INLA cannot do this; adelia can because every
evaluation of log π̃(θ | y) comes with its exact reverse-mode gradient
(:meth:`adelia.model.Model.value_and_grad`).

Then, as INLA does with its design points:

* hyperparameter marginals: a Gaussian kernel density of the pooled draws on the internal
  scale (:class:`.hyperpar.HyperMarginal`, so the usual transforms and summaries apply);
* latent marginals: the mixture of the Gaussian (or simplified-Laplace) approximations
  π_G(x_i | θ_k, y) over K thinned draws θ_k with equal weights 1/K — the draws are handed
  to :func:`.run.run_inla` as an :class:`.design.IntegrationDesign` (strategy "nuts"):
  π̃(x_i | y) ≈ (1/K) Σ_k π_G(x_i | θ_k, y).

With ``nuts: {"correction": "importance"}`` (adelia's own; :func:`importance_reweight`,
:mod:`.importance`) the thinned draws are reweighted by an importance-sampling estimate of
π(y | θ_k) / π̃(y | θ_k), which removes the Laplace approximation's error from π(θ | y), and
the mixture components take the exact conditional mean and variance of x at θ_k (weighted
draws of x) in place of π_G's.

Why a NumPy sampler on the host, not NumPyro or BlackJAX: the objective is a host-driven
compiled program (:mod:`adelia.engine.hoisted_jit`: data hoisted to arguments, an inner
Newton loop, CHOLMOD through host calls on the CPU). Tracing all of it inside a NumPyro
kernel's jit would compile the whole Laplace approximation again (slowly, and not at all
where the solver is a host callback), for no gain: d = dim θ is small (1–10), so the
sampler's own arithmetic is negligible beside one evaluation of π̃ (a sparse Cholesky and a
selected inversion). A ~200-line textbook sampler calling the already compiled
``value_and_grad`` is simple, needs no optional dependency (CI installs only ``.[test]``),
and treats a failed evaluation (non-finite π̃ at an extreme θ) as a divergence instead of
crashing a traced program.

The sampler is the multinomial No-U-Turn sampler (Hoffman & Gelman 2014, JMLR 15; with
Betancourt 2017's multinomial sampling of the trajectory and the generalised U-turn
criterion, as Stan): leapfrog with a diagonal inverse mass matrix M⁻¹, the tree doubled in
a random direction until the trajectory turns (ρ·M⁻¹p⁻ ≤ 0 or ρ·M⁻¹p⁺ ≤ 0, ρ the summed
momenta), a draw by progressive sampling with weights exp(−H). Warmup: step size by dual
averaging towards ``target_accept`` (Hoffman & Gelman Alg. 5: γ = 0.05, t₀ = 10, κ = 0.75);
M⁻¹ starts as the diagonal of the inverse Hessian at the mode and is re-estimated once from
the draws of the middle of warmup (Stan's windowed adaptation, one window), after which the
step size adaptation restarts. Chains run one after another from the mode jittered by one
Hessian sd. Convergence: split R-hat and the multi-chain effective sample size (Geyer's
initial monotone sequence; Gelman et al. 2013, BDA3 §11.4–11.5; Stan's estimator).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ControlError, NumericalError
from .summaries import Mixture

#: NUTS settings (``control_inla={"int.strategy": "nuts", "nuts": {...}}``) and their defaults
NUTS_DEFAULTS: dict[str, Any] = {
    "chains": 4,  # chains, run one after another
    "draws": 500,  # kept draws per chain
    "warmup": 500,  # warmup iterations per chain (discarded)
    "seed": 0,
    "target.accept": 0.85,  # dual-averaging target of the mean acceptance statistic
    "max.tree.depth": 10,  # at most 2^10 leapfrog steps per draw
    "points": 200,  # thinned draws whose Gaussian approximations are mixed (latent marginals)
    # adelia's own (R-INLA has no such thing): "importance" reweights the thinned draws by an
    # importance-sampling estimate of π(y | θ) / π̃(y | θ) and takes the latent moments from
    # the weighted draws of x (.importance); "none": the Laplace approximation as it is
    "correction": "none",
    "importance.draws": 512,  # draws of x per thinned θ for "correction": "importance"
}

#: the values of the ``correction`` setting
NUTS_CORRECTIONS = ("none", "importance")


def nuts_settings(given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The NUTS settings: :data:`NUTS_DEFAULTS` updated by ``given`` (R's dotted or Python's
    underscored keys), validated.

    Raises:
        ControlError: naming the key and what is valid.

    Example:
        >>> nuts_settings({"draws": 200, "target_accept": 0.9})["target.accept"]
        0.9
    """
    out = dict(NUTS_DEFAULTS)
    if given is None:
        return out
    if not isinstance(given, Mapping):
        raise ControlError(f'control_inla: nuts must be a dict of NUTS settings ({", ".join(NUTS_DEFAULTS)}), got {given!r}')
    for key, value in given.items():
        k = str(key).replace("_", ".")
        if k not in NUTS_DEFAULTS:
            raise ControlError(f'control_inla: nuts: unknown key {key!r}; valid keys: {", ".join(NUTS_DEFAULTS)}')
        if k == "target.accept":
            if not isinstance(value, (int, float)) or not (0.0 < float(value) < 1.0):
                raise ControlError(f"control_inla: nuts: target.accept = {value!r} must be a number strictly between 0 and 1")
            out[k] = float(value)
            continue
        if k == "correction":
            if value not in NUTS_CORRECTIONS:
                valid = ", ".join(map(repr, NUTS_CORRECTIONS))
                raise ControlError(f"control_inla: nuts: correction = {value!r}; valid values: {valid}")
            out[k] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ControlError(f"control_inla: nuts: {k} = {value!r} must be an integer")
        lowest = {"chains": 1, "draws": 1, "warmup": 0, "seed": 0, "max.tree.depth": 1, "points": 1,
                  "importance.draws": 2}[k]
        if value < lowest:
            raise ControlError(f"control_inla: nuts: {k} = {value!r} must be at least {lowest}")
        out[k] = int(value)
    return out


# ---------------------------------------------------------------------------------------------
# the sampler
# ---------------------------------------------------------------------------------------------


@dataclass
class _Tree:
    """A subtree of the NUTS trajectory: its two ends, its proposal and its bookkeeping."""

    theta_minus: np.ndarray
    p_minus: np.ndarray
    grad_minus: np.ndarray
    theta_plus: np.ndarray
    p_plus: np.ndarray
    grad_plus: np.ndarray
    theta_prop: np.ndarray
    lp_prop: float
    grad_prop: np.ndarray
    log_weight: float  # log Σ exp(H₀ − H) over the subtree's states
    rho: np.ndarray  # Σ of the momenta
    stop: bool  # turned or diverged: the subtree is not used
    divergent: bool
    accept_sum: float  # Σ min(1, exp(H₀ − H)), for step-size adaptation
    n_leapfrog: int


class _Hamiltonian:
    """Leapfrog integration of H(θ, p) = −log π(θ) + ½ pᵀM⁻¹p with diagonal M⁻¹."""

    #: a step whose energy error exceeds this is a divergence (Stan's threshold)
    MAX_ENERGY_ERROR = 1000.0

    def __init__(self, value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], inv_mass: np.ndarray):
        self.value_and_grad = value_and_grad
        self.inv_mass = inv_mass
        self.n_evaluations = 0

    def evaluate(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        self.n_evaluations += 1
        try:
            lp, g = self.value_and_grad(theta)
        except (NumericalError, FloatingPointError, np.linalg.LinAlgError):
            return -math.inf, np.zeros_like(theta)
        lp = float(lp)
        g = np.asarray(g, dtype=float)
        if not (np.isfinite(lp) and np.all(np.isfinite(g))):
            return -math.inf, np.zeros_like(theta)
        return lp, g

    def kinetic(self, p: np.ndarray) -> float:
        return 0.5 * float(p @ (self.inv_mass * p))

    def leapfrog(self, theta, p, grad, eps):
        p = p + 0.5 * eps * grad
        theta = theta + eps * self.inv_mass * p
        lp, grad = self.evaluate(theta)
        p = p + 0.5 * eps * grad
        return theta, p, lp, grad

    def turned(self, rho, p_minus, p_plus) -> bool:
        # generalised no-U-turn criterion (Betancourt 2017): the summed momentum ρ points
        # against the velocity M⁻¹p at either end
        return float(rho @ (self.inv_mass * p_minus)) <= 0.0 or float(rho @ (self.inv_mass * p_plus)) <= 0.0


def _build_tree(ham: _Hamiltonian, theta, p, grad, direction: int, depth: int, eps: float, H0: float, rng) -> _Tree:
    """2^depth leapfrog steps from (θ, p) in ``direction``; proposal uniform by exp(H₀ − H)."""
    if depth == 0:
        theta1, p1, lp1, grad1 = ham.leapfrog(theta, p, grad, direction * eps)
        H = -lp1 + ham.kinetic(p1) if np.isfinite(lp1) else math.inf
        delta = H0 - H if np.isfinite(H) else -math.inf
        divergent = not (-delta < ham.MAX_ENERGY_ERROR)
        return _Tree(theta1, p1, grad1, theta1, p1, grad1, theta1, lp1, grad1, delta, p1.copy(), divergent, divergent,
                     min(1.0, math.exp(delta)) if np.isfinite(delta) else 0.0, 1)
    first = _build_tree(ham, theta, p, grad, direction, depth - 1, eps, H0, rng)
    if first.stop:
        return first
    if direction > 0:
        second = _build_tree(ham, first.theta_plus, first.p_plus, first.grad_plus, direction, depth - 1, eps, H0, rng)
    else:
        second = _build_tree(ham, first.theta_minus, first.p_minus, first.grad_minus, direction, depth - 1, eps, H0, rng)
    first.accept_sum += second.accept_sum
    first.n_leapfrog += second.n_leapfrog
    if second.stop:
        first.stop, first.divergent = True, first.divergent or second.divergent
        return first
    log_weight = np.logaddexp(first.log_weight, second.log_weight)
    # uniform progressive sampling within a subtree: keep the second half's proposal with
    # probability w₂ / (w₁ + w₂)
    if math.log(rng.uniform()) < second.log_weight - log_weight:
        first.theta_prop, first.lp_prop, first.grad_prop = second.theta_prop, second.lp_prop, second.grad_prop
    first.log_weight = float(log_weight)
    if direction > 0:
        first.theta_plus, first.p_plus, first.grad_plus = second.theta_plus, second.p_plus, second.grad_plus
    else:
        first.theta_minus, first.p_minus, first.grad_minus = second.theta_minus, second.p_minus, second.grad_minus
    first.rho = first.rho + second.rho
    first.stop = ham.turned(first.rho, first.p_minus, first.p_plus)
    return first


def nuts_step(ham: _Hamiltonian, theta, lp, grad, eps: float, rng, max_depth: int = 10):
    """One NUTS transition from θ. Returns (θ', log π(θ'), ∇, mean acceptance statistic,
    tree depth, divergent, leapfrog steps)."""
    p = rng.standard_normal(theta.size) / np.sqrt(ham.inv_mass)  # p ~ N(0, M)
    H0 = -lp + ham.kinetic(p)
    tree = _Tree(theta, p, grad, theta, p, grad, theta, lp, grad, 0.0, p.copy(), False, False, 0.0, 0)
    depth = 0
    while depth < max_depth:
        direction = 1 if rng.uniform() < 0.5 else -1
        if direction > 0:
            new = _build_tree(ham, tree.theta_plus, tree.p_plus, tree.grad_plus, 1, depth, eps, H0, rng)
        else:
            new = _build_tree(ham, tree.theta_minus, tree.p_minus, tree.grad_minus, -1, depth, eps, H0, rng)
        depth += 1
        tree.accept_sum += new.accept_sum
        tree.n_leapfrog += new.n_leapfrog
        if new.stop:
            tree.divergent = new.divergent
            break
        # biased progressive sampling at the top level (Betancourt 2017, App. A.3.2): move
        # to the new half's proposal with probability min(1, w_new / w_old)
        if math.log(rng.uniform()) < new.log_weight - tree.log_weight:
            tree.theta_prop, tree.lp_prop, tree.grad_prop = new.theta_prop, new.lp_prop, new.grad_prop
        tree.log_weight = float(np.logaddexp(tree.log_weight, new.log_weight))
        if direction > 0:
            tree.theta_plus, tree.p_plus, tree.grad_plus = new.theta_plus, new.p_plus, new.grad_plus
        else:
            tree.theta_minus, tree.p_minus, tree.grad_minus = new.theta_minus, new.p_minus, new.grad_minus
        tree.rho = tree.rho + new.rho
        if ham.turned(tree.rho, tree.p_minus, tree.p_plus):
            break
    accept = tree.accept_sum / max(tree.n_leapfrog, 1)
    return tree.theta_prop, tree.lp_prop, tree.grad_prop, accept, depth, tree.divergent, tree.n_leapfrog


class _DualAveraging:
    """Step-size adaptation (Hoffman & Gelman 2014, Alg. 5; Nesterov's dual averaging)."""

    def __init__(self, eps0: float, target: float, gamma=0.05, t0=10.0, kappa=0.75):
        self.mu = math.log(10.0 * eps0)
        self.target, self.gamma, self.t0, self.kappa = target, gamma, t0, kappa
        self.h_bar, self.log_eps_bar, self.m = 0.0, 0.0, 0

    def update(self, accept: float) -> float:
        self.m += 1
        m = self.m
        self.h_bar += (self.target - accept - self.h_bar) / (m + self.t0)
        log_eps = self.mu - math.sqrt(m) / self.gamma * self.h_bar
        w = m ** (-self.kappa)
        self.log_eps_bar = w * log_eps + (1.0 - w) * self.log_eps_bar
        return math.exp(log_eps)

    @property
    def final(self) -> float:
        return math.exp(self.log_eps_bar)


def _initial_step_size(ham: _Hamiltonian, theta, lp, grad, rng) -> float:
    """Hoffman & Gelman's Alg. 4: double or halve ε until one leapfrog's acceptance crosses ½."""
    eps = 1.0
    p = rng.standard_normal(theta.size) / np.sqrt(ham.inv_mass)
    H0 = -lp + ham.kinetic(p)

    def log_ratio(e):
        _, p1, lp1, _ = ham.leapfrog(theta, p, grad, e)
        return H0 - (-lp1 + ham.kinetic(p1)) if np.isfinite(lp1) else -math.inf

    a = 1.0 if log_ratio(eps) > math.log(0.5) else -1.0
    for _ in range(50):
        r = log_ratio(eps)
        if not (a * r > -a * math.log(2.0)):
            break
        eps *= 2.0**a
    return float(eps)


@dataclass
class ChainResult:
    """Draws of several NUTS chains over θ (internal scale) and their diagnostics.

    Attributes:
        draws: (chains, draws, d) θ after warmup.
        log_post: (chains, draws) log π̃(θ | y) at the draws.
        accept: (chains, draws) mean acceptance statistic per transition.
        tree_depth, n_leapfrog, divergent: (chains, draws) per transition.
        step_size: (chains,) adapted step sizes; inv_mass: (chains, d) adapted diagonal M⁻¹.
        n_evaluations: value-and-gradient evaluations, warmup included.
        seconds: wall time of the chains.
    """

    draws: np.ndarray
    log_post: np.ndarray
    accept: np.ndarray
    tree_depth: np.ndarray
    n_leapfrog: np.ndarray
    divergent: np.ndarray
    step_size: np.ndarray
    inv_mass: np.ndarray
    n_evaluations: int
    seconds: float
    names: list[str] = field(default_factory=list)
    max_tree_depth: int = 10
    #: correction "importance": its diagnostics (:func:`importance_reweight`), else None
    importance: dict[str, Any] | None = None

    @property
    def rhat(self) -> np.ndarray:
        return split_rhat(self.draws)

    @property
    def ess(self) -> np.ndarray:
        return effective_sample_size(self.draws)

    def pooled(self) -> np.ndarray:
        """(chains·draws, d), chain after chain."""
        return self.draws.reshape(-1, self.draws.shape[-1])

    def thinned(self, k: int) -> np.ndarray:
        """About ``k`` draws evenly spaced through every chain (k ≥ chains·draws: all)."""
        pooled = self.pooled()
        if k >= pooled.shape[0]:
            return pooled
        return pooled[np.unique(np.round(np.linspace(0, pooled.shape[0] - 1, k)).astype(int))]

    def diagnostics(self) -> dict[str, Any]:
        """What ``res.diagnostics["nuts"]`` shows: R-hat and ESS per hyperparameter, divergences,
        step sizes, tree depths, evaluations, time per effective sample."""
        ess = self.ess
        return {
            "names": list(self.names),
            "rhat": self.rhat,
            "ess": ess,
            "chains": int(self.draws.shape[0]),
            "draws": int(self.draws.shape[1]),
            "divergent": int(np.sum(self.divergent)),
            "mean_accept": float(np.mean(self.accept)),
            "step_size": self.step_size.copy(),
            "inv_mass": self.inv_mass.copy(),
            "mean_tree_depth": float(np.mean(self.tree_depth)),
            "max_tree_depth_hits": int(np.sum(self.tree_depth >= self.max_tree_depth)),
            "n_evaluations": int(self.n_evaluations),
            "seconds": float(self.seconds),
            "seconds_per_effective_sample": float(self.seconds / max(float(np.min(ess)), 1e-12)) if ess.size else 0.0,
            **({"importance": dict(self.importance)} if self.importance is not None else {}),
        }


def run_chains(
    value_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    init: np.ndarray,
    inv_mass: np.ndarray,
    *,
    chains: int = 4,
    draws: int = 500,
    warmup: int = 500,
    seed: int = 0,
    target_accept: float = 0.85,
    max_tree_depth: int = 10,
    jitter: np.ndarray | None = None,
    names: list[str] | None = None,
    progress=None,
) -> ChainResult:
    """NUTS chains on a log density with its gradient (see the module doc for the algorithm).

    Args:
        value_and_grad: θ (d,) -> (log π(θ), ∇ log π(θ)); a non-finite value or a
            :class:`adelia.errors.NumericalError` counts as log π = −∞ (a divergence).
        init: (d,) the starting point (the mode); chain c starts at init + jitter · N(0, I).
        inv_mass: (d,) initial diagonal inverse mass matrix (≈ posterior variances).
        chains, draws, warmup: chains run one after another, each ``warmup`` + ``draws`` long.
        seed: the chains use independent streams spawned from ``numpy.random.default_rng(seed)``.
        target_accept: dual-averaging target; max_tree_depth: at most 2^depth steps per draw.
        progress: an :class:`adelia.progress.Progress` (or None).

    Example:
        >>> vg = lambda th: (-0.5 * float(th @ th), -th)
        >>> out = run_chains(vg, np.zeros(2), np.ones(2), chains=2, draws=200, warmup=200, seed=1)
        >>> out.draws.shape
        (2, 200, 2)
    """
    init = np.asarray(init, dtype=float).ravel()
    d = init.size
    inv_mass0 = np.asarray(inv_mass, dtype=float).ravel()
    if inv_mass0.shape != (d,) or not np.all(np.isfinite(inv_mass0)) or np.any(inv_mass0 <= 0):
        raise ValueError(f"inv_mass must be {d} positive finite numbers, got {inv_mass0}")
    jitter = np.sqrt(inv_mass0) if jitter is None else np.asarray(jitter, dtype=float)
    streams = np.random.default_rng(seed).spawn(chains)
    out = {k: [] for k in ("draws", "lp", "accept", "depth", "leap", "div", "eps", "minv")}
    n_eval = 0
    t0 = time.perf_counter()
    for c, rng in enumerate(streams):
        ham = _Hamiltonian(value_and_grad, inv_mass0.copy())
        theta, lp, grad = init, -math.inf, np.zeros(d)
        for attempt in range(20):  # a finite starting point near the mode
            theta = init + (jitter * rng.standard_normal(d) if attempt < 19 else 0.0)
            lp, grad = ham.evaluate(theta)
            if np.isfinite(lp):
                break
        if not np.isfinite(lp):
            raise NumericalError(f"NUTS over θ: log π̃(θ|y) is not finite at the starting point θ = {np.round(init, 4).tolist()}")
        eps = _initial_step_size(ham, theta, lp, grad, rng)
        adapt = _DualAveraging(eps, target_accept)
        # Stan's windows, one slow window: fast (15 %), mass-matrix window (75 %), fast (10 %)
        window = (int(0.15 * warmup), int(0.9 * warmup)) if warmup >= 100 else (warmup, warmup)
        window_draws = []
        rec = {k: [] for k in out}
        for it in range(warmup + draws):
            theta, lp, grad, acc, depth, div, nleap = nuts_step(ham, theta, lp, grad, eps, rng, max_tree_depth)
            if it < warmup:
                eps = adapt.update(acc)
                if window[0] <= it < window[1]:
                    window_draws.append(theta)
                if it == window[1] - 1 and len(window_draws) > 10:
                    n = len(window_draws)
                    var = np.var(np.asarray(window_draws), axis=0, ddof=1)
                    # Stan's regularisation towards a small multiple of the identity
                    ham.inv_mass = (n / (n + 5.0)) * var + 1e-3 * (5.0 / (n + 5.0))
                    eps = _initial_step_size(ham, theta, lp, grad, rng)
                    adapt = _DualAveraging(eps, target_accept)
                if it == warmup - 1:
                    eps = adapt.final
            else:
                rec["draws"].append(theta)
                rec["lp"].append(lp)
                rec["accept"].append(acc)
                rec["depth"].append(depth)
                rec["leap"].append(nleap)
                rec["div"].append(div)
            if progress is not None and (it % 10 == 0 or it == warmup + draws - 1):
                phase = "warmup" if it < warmup else "sampling"
                progress.update(f"chain {c + 1}/{chains} {phase} {it + 1}/{warmup + draws}, step {eps:.3g}")
        out["draws"].append(np.asarray(rec["draws"]).reshape(draws, d))
        out["lp"].append(np.asarray(rec["lp"]))
        out["accept"].append(np.asarray(rec["accept"]))
        out["depth"].append(np.asarray(rec["depth"]))
        out["leap"].append(np.asarray(rec["leap"]))
        out["div"].append(np.asarray(rec["div"], dtype=bool))
        out["eps"].append(eps)
        out["minv"].append(ham.inv_mass.copy())
        n_eval += ham.n_evaluations
    return ChainResult(
        np.stack(out["draws"]), np.stack(out["lp"]), np.stack(out["accept"]), np.stack(out["depth"]),
        np.stack(out["leap"]), np.stack(out["div"]), np.asarray(out["eps"]), np.stack(out["minv"]),
        n_eval, time.perf_counter() - t0, list(names or [f"theta[{i}]" for i in range(d)]), max_tree_depth,
    )


# ---------------------------------------------------------------------------------------------
# convergence diagnostics
# ---------------------------------------------------------------------------------------------


def split_rhat(draws: np.ndarray) -> np.ndarray:
    """Split R-hat (BDA3 §11.4) of (chains, draws[, d]) samples: each chain halved, then
    R̂ = √(((N−1)/N · W + B/N) / W), W the mean within-chain variance, B/N the variance of
    the chain means.

    Example:
        >>> x = np.random.default_rng(0).standard_normal((4, 1000))
        >>> bool(abs(split_rhat(x) - 1.0) < 0.01)
        True
    """
    x = np.asarray(draws, dtype=float)
    half = x.shape[1] // 2
    x = np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)
    n = x.shape[1]
    within = np.mean(np.var(x, axis=1, ddof=1), axis=0)
    between = np.var(np.mean(x, axis=1), axis=0, ddof=1)
    return np.sqrt(((n - 1) / n * within + between) / within)


def effective_sample_size(draws: np.ndarray) -> np.ndarray:
    """Multi-chain effective sample size of (chains, draws[, d]) samples (BDA3 §11.5, Stan):
    ρ̂_t = 1 − (W − mean_m γ̂_{t,m}) / var⁺ from the chains' autocovariances γ̂, summed in
    pairs with Geyer's initial positive and monotone sequence; ESS = M·N / (−1 + 2 Σ P̂_k).

    Example:
        >>> x = np.random.default_rng(0).standard_normal((4, 1000))
        >>> bool(3000 < effective_sample_size(x) < 5000)
        True
    """
    x = np.asarray(draws, dtype=float)
    m, n = x.shape[:2]
    xc = x - x.mean(axis=1, keepdims=True)
    # autocovariances by FFT, normalised by n (the biased estimator, as Stan)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    f = np.fft.rfft(xc, n=size, axis=1)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n
    mean_var = np.mean(acov[:, 0] * n / (n - 1.0), axis=0)
    var_plus = mean_var * (n - 1.0) / n
    if m > 1:
        var_plus = var_plus + np.var(np.mean(x, axis=1), axis=0, ddof=1)
    rho = 1.0 - (mean_var - np.mean(acov, axis=0)) / var_plus
    rho[0] = 1.0
    k = (n // 2) * 2
    pairs = rho[0:k:2] + rho[1:k:2]
    # Geyer: stop at the first non-positive pair, and keep the sequence monotone
    positive = np.cumprod(pairs > 0, axis=0).astype(bool)
    pairs = np.where(positive, pairs, 0.0)
    pairs = np.minimum.accumulate(pairs, axis=0)
    tau = -1.0 + 2.0 * np.sum(pairs, axis=0)
    return m * n / np.maximum(tau, 1.0 / np.log10(max(m * n, 10)))


# ---------------------------------------------------------------------------------------------
# hyperparameter marginals and the design from a chain
# ---------------------------------------------------------------------------------------------


def chain_hyper_marginals(draws: np.ndarray, n_grid: int = 401, weights: np.ndarray | None = None):
    """Marginals π(θ_i | y) on the internal scale from pooled draws (n, d): a Gaussian kernel
    density (Scott's bandwidth, from Kish's effective size when ``weights`` are given) on a grid
    reaching four bandwidths past the extreme draws, as :class:`.hyperpar.HyperMarginal`
    (normalised by the trapezoid rule). ``weights``: (n,) importance weights of the draws."""
    from scipy.stats import gaussian_kde

    from .hyperpar import _normalised

    draws = np.asarray(draws, dtype=float)
    if weights is not None:
        keep = np.asarray(weights, dtype=float) > 0
        draws, weights = draws[keep], np.asarray(weights, dtype=float)[keep]
    out = []
    for i in range(draws.shape[1]):
        xi = draws[:, i]
        if np.ptp(xi) == 0.0:  # a stuck chain: a narrow bump rather than a singular KDE
            x = xi[0] + np.linspace(-1e-3, 1e-3, n_grid)
            out.append(_normalised(x, np.exp(-0.5 * ((x - xi[0]) / 2.5e-4) ** 2)))
            continue
        kde = gaussian_kde(xi, weights=weights)
        h = float(np.sqrt(kde.covariance[0, 0]))
        x = np.linspace(xi.min() - 4.0 * h, xi.max() + 4.0 * h, n_grid)
        out.append(_normalised(x, kde(x)))
    return out


def chain_design(chain: ChainResult, theta_star: np.ndarray, axes, n_points: int):
    """The thinned draws as an :class:`.design.IntegrationDesign` (strategy "nuts"): INLA's
    design-point machinery then evaluates the Gaussian approximation at each; the mixture
    weights are equal (run_inla sets them: the draws are already distributed as π̃(θ | y))."""
    from .design import IntegrationDesign

    theta = chain.thinned(n_points)
    z = axes.theta_to_z(theta_star, theta)
    return IntegrationDesign("nuts", z.copy(), z, theta, np.zeros(theta.shape[0]), 1.0)


def equal_probabilities(k: int) -> np.ndarray:
    return np.full(k, 1.0 / k)


#: within-point effective sample size of the importance weights below this fraction of the draws:
#: warn (the Gaussian approximation is a poor proposal there; the estimate is noisy)
IMPORTANCE_ESS_WARN = 0.1


def importance_reweight(model, chain: ChainResult, pts, settings: Mapping | None) -> np.ndarray:
    """Correction "importance" of a NUTS fit (:mod:`.importance`): at each thinned draw θ_k,
    S draws x ~ π_G(x | θ_k, y) estimate c(θ_k) = π(y | θ_k) / π̃(y | θ_k) and the exact
    conditional moments of x and η. The draws θ_k ~ π̃(θ | y) get weights ∝ ĉ(θ_k) (so the
    weighted draws are from π(θ | y), up to Monte Carlo error), and ``pts.mean``/``var``/
    ``eta_mean``/``eta_var`` are replaced by the importance-weighted moments (variances by
    π_G's plus the control-variate shift), so that the latent marginals become the mixture
    Σ_k w_k N(m_k, v_k) with the exact per-θ mean and variance (up to Monte Carlo error)
    instead of π_G's. Records the diagnostics in ``chain.importance`` and returns
    the weights (K,).
    """
    from .importance import importance_correction

    s = nuts_settings(settings)
    t0 = time.perf_counter()
    corr = importance_correction(model, pts.theta_full, pts.mode, n_draws=s["importance.draws"], seed=s["seed"])
    ok = np.isfinite(corr.log_ratio) & np.isfinite(pts.log_post)
    lr = np.where(ok, corr.log_ratio, -np.inf)
    weights = np.where(ok, np.exp(lr - np.max(lr[ok])), 0.0)
    weights /= weights.sum()
    # means: the weighted draws; variances: π_G's plus the control-variate shift (.importance)
    new = {"mean": corr.mean, "eta_mean": corr.eta_mean,
           "var": np.maximum(pts.var + corr.var_shift, 0.0), "eta_var": np.maximum(pts.eta_var + corr.eta_var_shift, 0.0)}
    for name, value in new.items():
        setattr(pts, name, np.where(ok[:, None], value, getattr(pts, name)))
    ess_within = corr.ess
    chain.importance = {
        "draws": int(corr.n_draws),
        "points": int(ok.sum()),
        "log_ratio": corr.log_ratio.copy(),
        "ess_within": ess_within.copy(),
        "min_ess_within": float(np.min(ess_within[ok])) if np.any(ok) else 0.0,
        "ess_points": float(1.0 / np.sum(weights**2)),
        "seconds": time.perf_counter() - t0,
    }
    low = ok & (ess_within < IMPORTANCE_ESS_WARN * corr.n_draws)
    if np.any(low):
        from ..user_warnings import warn

        k = int(np.flatnonzero(low)[np.argmin(ess_within[low])])
        warn(f"NUTS over θ, correction 'importance': the importance weights of the latent field are degenerate at "
             f"{int(low.sum())} of {int(ok.sum())} draws (effective sample size down to {ess_within[k]:.0f} of "
             f"{corr.n_draws} at θ = {np.round(pts.theta[k], 3).tolist()}): the Gaussian approximation is a poor "
             "proposal there and the correction is noisy; raise nuts 'importance.draws' or drop the correction.",
             UserWarning)
    return weights


def run_theta_chain(model, theta_star: np.ndarray, covariance: np.ndarray, settings: Mapping | None, progress=None) -> ChainResult:
    """NUTS over the free θ of ``model`` from its mode θ* with M⁻¹ = diag(Σ), Σ the inverse of
    the negative Hessian at θ* (run by :func:`.run.run_inla` for int.strategy "nuts")."""
    s = nuts_settings(settings)
    var = np.diag(np.asarray(covariance, dtype=float)).copy()
    var = np.where(np.isfinite(var) & (var > 0), var, 1.0)
    if progress is not None:
        progress.start("NUTS over θ")
    try:
        chain = run_chains(
            model.value_and_grad, theta_star, var, chains=s["chains"], draws=s["draws"], warmup=s["warmup"],
            seed=s["seed"], target_accept=s["target.accept"], max_tree_depth=s["max.tree.depth"],
            names=model.theta_names, progress=progress,
        )
    finally:
        if progress is not None:
            progress.stop()
    _warn_if_not_converged(chain, theta_star, var)
    return chain


#: split R-hat above this: the chains disagree (Vehtari et al. 2021 recommend 1.01; 1.05 is lenient)
RHAT_WARN = 1.05


def _warn_if_not_converged(chain: ChainResult, theta_star: np.ndarray, var: np.ndarray) -> None:
    """Warn when split R-hat of a hyperparameter exceeds :data:`RHAT_WARN`, saying how far the draws
    went from the mode in Hessian sds: a chain that wanders tens of sds out usually means a flat,
    improper tail of π̃(θ | y) (Germany bym2: R-INLA's tabulated PC prior of φ is flat beyond
    logit φ = 12, where the likelihood no longer depends on φ), not a short chain."""
    if chain.draws.shape[0] < 2 or chain.draws.shape[1] < 4:
        return
    rhat = chain.rhat
    bad = np.flatnonzero(~(rhat <= RHAT_WARN))
    if bad.size == 0:
        return
    from ..user_warnings import warn

    pooled = chain.pooled()
    far = np.max(np.abs(pooled - theta_star), axis=0) / np.sqrt(var)
    parts = [f"{chain.names[i] if i < len(chain.names) else i}: R-hat {rhat[i]:.2f}, draws reach "
             f"[{pooled[:, i].min():.3g}, {pooled[:, i].max():.3g}] ({far[i]:.0f} Hessian sds from the mode {theta_star[i]:.3g})"
             for i in bad]
    warn("NUTS over θ: the chains have not converged (split R-hat > "
         f"{RHAT_WARN}) for {'; '.join(parts)}. Run longer chains (control_inla={{'nuts': {{'draws': ..., 'warmup': ...}}}}); "
         "draws far from the mode that keep drifting point to a flat (improper) tail of π(θ | y) — check the prior "
         "there — rather than to too few draws.", UserWarning)


def sample_theta(model, n: int = 500, chains: int = 4, seed: int = 0, warmup: int = 500, target_accept: float = 0.85,
                 max_tree_depth: int = 10, verbose: bool = False):
    """NUTS draws of the free hyperparameters θ (internal scale) from log π̃(θ | y).

    The chains start at the mode θ* (BFGS on AD gradients, as a fit) with the diagonal of the
    inverse Hessian there as the initial inverse mass matrix; see the module doc.

    Returns:
        xarray.DataArray of shape (chain, draw, theta), ``theta`` coordinates the internal names
        (``model.theta_names``); ``attrs`` holds ``rhat``, ``ess``, ``divergent``,
        ``step_size``, ``log_posterior`` (chain, draw) and ``mode``.

    Example:
        >>> model = adelia.compile("r ~ x1 + x2 + f(plate, model='iid')", seeds, family="binomial", Ntrials="n")  # doctest: +SKIP
        >>> chain = model.sample_theta(500, chains=4, seed=1)                        # doctest: +SKIP
        >>> chain.attrs["rhat"], chain.sel(theta="Log precision for plate").mean()    # doctest: +SKIP
    """
    import xarray as xr

    from ..progress import Progress
    from .optimize import find_mode, hessian_from_gradients

    s = nuts_settings({"draws": n, "chains": chains, "seed": seed, "warmup": warmup, "target.accept": target_accept,
                       "max.tree.depth": max_tree_depth})
    if model.free.size == 0:
        raise ControlError("sample_theta: the model has no free hyperparameters to sample")
    mode = find_mode(model.value_and_grad, model.theta0)
    hess = hessian_from_gradients(model.grad_batch, mode.theta, step=float(np.sqrt(model.controls["control_inla"]["h"])))
    try:
        cov = np.linalg.inv(hess.hessian)
    except np.linalg.LinAlgError:
        cov = np.eye(mode.theta.size)
    chain = run_theta_chain(model, mode.theta, cov, s, progress=Progress(enabled=verbose))
    return xr.DataArray(
        chain.draws, dims=("chain", "draw", "theta"),
        coords={"chain": np.arange(chain.draws.shape[0]), "draw": np.arange(chain.draws.shape[1]), "theta": model.theta_names},
        name="theta",
        attrs={"rhat": chain.rhat, "ess": chain.ess, "divergent": int(chain.divergent.sum()), "step_size": chain.step_size,
               "log_posterior": chain.log_post, "mode": mode.theta, "n_evaluations": chain.n_evaluations},
    )


class ChainMixture(Mixture):
    """The latent (and predictor) marginals of a NUTS fit: the equal-weight mixture over the
    thinned draws, summarised exactly (``method="exact"``). R-INLA's "combined" summary (a
    spline-corrected Gaussian cut at ±5 mixture sds) is made for design points near one mode;
    over a chain that ranges from log τ ≈ 3 to 14 (Seeds) the components' scales differ by
    100× and that cut drops the tails that carry half the variance."""

    def summary(self, quantiles=(0.025, 0.5, 0.975), method: str = "exact"):
        return super().summary(quantiles, method=method)


def exact_mixture(mixture):
    """``mixture`` as a :class:`ChainMixture` (a Laplace mixture is returned as it is)."""
    if type(mixture) is not Mixture:
        return mixture
    return ChainMixture(mixture.weights, mixture.loc, mixture.scale, mixture.shape)
