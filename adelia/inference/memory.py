"""An estimate of a fit's peak memory from the symbolic structure, checked before the fit.

R-INLA users meet memory exhaustion hours into a run, as a crash (DESIGN.md §9). adelia
estimates, once the model is compiled and before the numeric work starts, how much memory
the fit will add to the process, and raises :class:`MemoryError` with the estimate and the
memory the system has available when it cannot fit.

The estimate is a sum of named terms, in bytes (8 per float64; n latent nodes, n_obs
observations, n_pred = n_obs plus the formula's own rows of a stack, nnz the stored lower
triangle of Q_c, L the supernodal factor's size from the symbolic analysis, K design
points, T host threads running design points at once, m VB nodes):

- ``factors``: 8 L for the factor and 8 L for the selected inverse in flight per thread,
  plus the per-solver factor cache (:mod:`adelia.engine.sparse`, 128 MiB or one factor);
- ``programs``: the device copies of the data arrays the compiled programs (objective,
  gradient, design point) receive as arguments (:mod:`adelia.engine.hoisted_jit`, one copy
  per model, plus each program's own derived arrays), ≈ 1.5 · 8 (20 (n + n_obs) + 4 nnz),
  measured on iid/rw models;
- ``workspace``: the vectors XLA keeps live inside a Newton iteration and its gradient,
  ≈ 8 · 16 (n + n_obs + nnz) per thread;
- ``vb``: the VB mean correction's unit columns and Σ_{:,S} (two n × m arrays per thread);
  above :data:`adelia.inference.run.VB_COLUMNS_MAX_BYTES` the correction uses products Σ v
  on blocks of b columns instead (the block, the solver's permuted copy and result, and the
  callback's copies: five n × b arrays per thread);
- ``points``: the per-point modes, means and variances (3n) and predictor moments (2 n_pred),
  written in place into the stacked arrays (:func:`adelia.engine.batching.threaded_points`);
- ``mixtures``: the latent and predictor marginals' locations and scales (2K (n + n_pred));
- ``compilation``: XLA compiling the programs, ≈ 200 MB whatever the size.

The summaries run over node blocks of bounded size (:mod:`.summaries`) and add no term.
On the models of ``benchmarks/scale_cpu.py`` the estimate is within ±35 % of the measured
growth of the peak resident set size (a test keeps it within a factor 2).

Example:
    >>> est = estimate_fit_memory(model)  # doctest: +SKIP
    >>> print(est.describe())  # doctest: +SKIP
    fit memory estimate 1.21 GB: programs 0.42, points 0.26, ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

#: bytes per float64
_F8 = 8
#: XLA's compilation of the fit's programs (measured: 150–250 MB on the CPU)
COMPILATION_BYTES = 200 * 2**20
#: skip the check (the estimate is still printed with verbose=True) when this variable is set
SKIP_ENV = "ADELIA_SKIP_MEMORY_CHECK"


@dataclass
class MemoryEstimate:
    """The estimated peak memory a fit adds to the process, by term (bytes)."""

    terms: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return float(sum(self.terms.values()))

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in sorted(self.terms.items(), key=lambda kv: -kv[1]))
        sizes = ", ".join(f"{k} = {v}" for k, v in self.sizes.items())
        return f"fit memory estimate {self.total / 1e9:.3g} GB ({parts} GB; {sizes})"


def available_memory() -> int | None:
    """Bytes the system can give this process without swapping: ``MemAvailable`` of
    /proc/meminfo on Linux, else free physical pages × page size; None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _factor_size(solver, n: int, nnz: int) -> int:
    """Numbers in one Cholesky factor of Q_c: the supernodal symbolic analysis (run once per
    solver, the fit needs it next anyway) for the sparse backend; n² for the dense one; else
    a fill guess from nnz."""
    kernels = getattr(solver, "_kernels", None)
    if kernels is not None and hasattr(kernels, "cholesky"):
        return int(kernels.cholesky.structure.factor_size)
    if type(solver).__name__ == "DenseSolver":
        return n * n
    return 10 * nnz


def _design_size(d: int, strategy: str) -> int:
    from .design import standard_design

    if d == 0 or strategy in ("user", "user.std"):
        return 1
    try:
        return int(standard_design(strategy, d).x.shape[0])
    except Exception:  # an unknown strategy fails later with its own message
        return 1 + 2 * d + 2 ** min(d, 10)


def estimate_fit_memory(model, threads: int | None = None) -> MemoryEstimate:
    """The peak memory :func:`adelia.inference.run.run_inla` adds for ``model`` (module docstring).

    Args:
        model: a compiled :class:`adelia.model.Model`.
        threads: design points evaluated at once (default: adelia's host threads).
    """
    from ..engine.host_cores import host_workers
    from .run import vb_block_columns, vb_products
    from .vb import vb_nodes

    g = model.graph
    ci = model.controls["control_inla"]
    n = int(g.n_latent)
    n_obs = int(model.observations.n_obs)
    n_pred = n_obs + (int(g.effect_map.n_rows) if getattr(g, "effect_map", None) is not None else 0)
    nnz = int(g.posterior_pattern.nnz)
    L = _factor_size(g.solver, n, nnz)
    d = int(model.free.size)
    K = _design_size(d, str(ci.get("int.strategy", "auto")))
    T = max(1, min(int(threads or host_workers()), K))
    vb = not model.observations.quadratic and ci.get("inla.mode") != "classic"
    m = int(vb_nodes(g).size) if vb else 0
    cache = max(128 * 2**20, _F8 * (L + nnz))
    terms = {
        "factors": T * 2 * _F8 * L + cache,
        "programs": 1.5 * _F8 * (20 * (n + n_obs) + 4 * nnz),
        "workspace": T * _F8 * 16 * (n + n_obs + nnz),
        "vb": T * _F8 * n * (5 * vb_block_columns(n, m) if vb_products(n, m) else 2 * m) if m else 0,
        "points": K * _F8 * (3 * n + 2 * n_pred),
        "mixtures": 2 * K * _F8 * (n + n_pred),
        "compilation": COMPILATION_BYTES,
    }
    sizes = {"n_latent": n, "n_obs": n_obs, "nnz(Q_c)": nnz, "factor": L, "design points": K, "threads": T}
    return MemoryEstimate({k: float(v) for k, v in terms.items()}, sizes)


def check_fit_memory(model, verbose: bool = False) -> MemoryEstimate:
    """Estimate the fit's memory (printed when ``verbose``) and raise :class:`MemoryError`
    naming the estimate and the available memory when the fit cannot fit. Skipped when the
    available memory is unknown, with ``control_inla={"memory.check": False}`` or when the
    environment variable ``ADELIA_SKIP_MEMORY_CHECK`` is set."""
    est = estimate_fit_memory(model)
    avail = available_memory()
    if verbose:
        have = "unknown" if avail is None else f"{avail / 1e9:.3g} GB"
        print(f"{est.describe()}; available memory {have}", flush=True)
    wanted = bool(getattr(model, "controls", {}).get("control_inla", {}).get("memory.check", True))
    if avail is not None and wanted and not os.environ.get(SKIP_ENV) and est.total > avail:
        raise MemoryError(
            f"this fit needs about {est.total / 1e9:.3g} GB of memory but only {avail / 1e9:.3g} GB is available "
            f"({est.describe()}). Free memory, fit on a larger machine, or reduce the model (fewer latent nodes, "
            f"int_strategy='eb' for fewer design points); control_inla={{'memory.check': False}} runs anyway."
        )
    return est


__all__ = ["MemoryEstimate", "available_memory", "check_fit_memory", "estimate_fit_memory"]
