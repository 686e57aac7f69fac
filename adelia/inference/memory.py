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

Per device (:func:`check_device_memory`, run by :func:`check_fit_memory`): the BTA and dense
backends' kernels run on a device (an accelerator, or the CPU's host devices), whose memory
is its own: the estimate per device counts the factor, the selected inverse and Q_c's values
for each θ point the device runs at once, the time blocks' share of the factor when they are
split over devices (:func:`bta_factor_numbers`), and the replicated data. A fit that exceeds a
device's memory (``control_inla["device.memory"]``, ``$ADELIA_DEVICE_MEMORY``, the
accelerator's ``bytes_limit`` or the host's available memory) raises
:class:`DeviceMemoryError` naming the estimate, that memory and the smallest ``devices=`` that
would fit — not an XLA out-of-memory error mid-fit. The same estimate chooses how a BTA fit
splits k devices into groups for θ points × time partitions (:func:`fit_split`): the fastest
split by a time model among those that fit a device's memory.

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
    solver, the fit needs it next anyway) for the sparse backend; n² for the dense one; the
    blocks of the BTA layout for the BTA one; else a fill guess from nnz."""
    kernels = getattr(solver, "_kernels", None)
    if kernels is not None and hasattr(kernels, "cholesky"):
        return int(kernels.cholesky.structure.factor_size)
    if type(solver).__name__ == "DenseSolver":
        return n * n
    if getattr(solver, "block_structure", None) is not None:
        bs = solver.block_structure
        return bta_factor_numbers(bs.n_blocks, bs.block_size, bs.arrow_size)
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
    naming the estimate and the available memory when the fit cannot fit; then the same per
    device (:func:`check_device_memory`). Skipped when the available memory is unknown, with
    ``control_inla={"memory.check": False}`` or when the environment variable
    ``ADELIA_SKIP_MEMORY_CHECK`` is set."""
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
    if wanted and not os.environ.get(SKIP_ENV):
        check_device_memory(model, verbose=verbose)
    return est


# ------------------------------------------------------------------------------------------
# per device: the kernels of the BTA and dense backends run on the device (an accelerator, or
# the CPU's host devices); control_inla["device.memory"]
# ------------------------------------------------------------------------------------------

#: a user-stated memory per device (bytes or "2GB"), when control_inla["device.memory"] is None
DEVICE_MEMORY_ENV = "ADELIA_DEVICE_MEMORY"
#: the most devices the error's suggestion looks at
MAX_DEVICES = 1024

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class DeviceMemoryError(MemoryError):
    """A fit whose estimated peak memory per device exceeds a device's memory (raised before any
    numeric work, instead of an XLA out-of-memory error hours later)."""


def parse_bytes(value, what: str = "control_inla: device.memory") -> int:
    """A memory size in bytes: a positive number of bytes, or a string with a unit —
    ``"2GB"``/``"500 MB"`` (powers of 1000), ``"1.5GiB"``/``"16G"`` (powers of 1024).

    Raises:
        ControlError: naming ``what``, the value and the valid forms.

    Example:
        >>> parse_bytes("2GB"), parse_bytes("1 GiB"), parse_bytes(4096)
        (2000000000, 1073741824, 4096)
    """
    import re

    from ..errors import ControlError

    number, unit = None, ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if m and m.group(2).lower() in _UNITS:
            number, unit = float(m.group(1)), m.group(2).lower()
    if number is None or not number > 0 or number == float("inf"):
        raise ControlError(
            f"{what} = {value!r} is not valid; it must be a positive number of bytes or a size with a unit, "
            f'e.g. "2GB", "500MB" (powers of 1000) or "1.5GiB", "16G" (powers of 1024).'
        )
    return int(number * _UNITS[unit])


def bta_factor_numbers(n_blocks: int, block_size: int, arrow_size: int, partitions: int = 1) -> int:
    """float64 numbers of one BTA Cholesky factor held by one device: n_b diagonal and n_b
    sub-diagonal b × b blocks, n_b arrow blocks a × b and the a × a tip,

        n_b (b² + b² + a b) + a²;

    with the time blocks split over P devices (:mod:`adelia.engine.bta_distributed`) a device
    holds its m = ⌈n_b/P⌉ − 2 interior blocks, each with its fill block towards the partition's
    first block (a (2b + a) × b panel and L_i), and the reduced system of the 2P boundary
    blocks factorised on every device:

        (m − 2)(3b² + a b)  +  2P (2b² + a b) + a².

    Example:
        >>> bta_factor_numbers(10, 3, 1)
        211
    """
    n_b, b, a, P = int(n_blocks), int(block_size), int(arrow_size), max(1, int(partitions))
    per_block = 2 * b * b + a * b
    if P == 1:
        return n_b * per_block + a * a
    m = -(-n_b // P)
    return max(m - 2, 0) * (3 * b * b + a * b) + 2 * P * per_block + a * a


def bta_partition_numbers(n_blocks: int, block_size: int, arrow_size: int, partitions: int) -> tuple[int, int]:
    """(Q_c's blocks, its selected inverse): float64 numbers one device holds over P time
    partitions. Each device assembles only its m = ⌈n_b/P⌉ blocks from Q_c's values
    (:func:`adelia.engine.bta_distributed.logdet_and_solve_values`), m (2b² + a b) + a², and
    keeps the selected inverse of its blocks plus the reduced system's, m (2b² + a b) + a² +
    2P (2b² + a b); on one device both are the whole n_b (2b² + a b) + a².

    Example:
        >>> bta_partition_numbers(10, 3, 1, 1) == (211, 211)
        True
    """
    n_b, b, a, P = int(n_blocks), int(block_size), int(arrow_size), max(1, int(partitions))
    per_block = 2 * b * b + a * b
    if P == 1:
        return (n_b * per_block + a * a,) * 2
    own = -(-n_b // P) * per_block + a * a
    return own, own + 2 * P * per_block


def _batch_size(model) -> int:
    """The largest batch of θ points a fit evaluates at once: the integration design, the
    Hessian's stencil (2d² objective values or 2d gradients, :func:`.run.hessian_method`) or a
    finite-difference gradient (2d + 1)."""
    from .run import hessian_method

    ci = model.controls["control_inla"]
    d = int(model.free.size)
    if d == 0:
        return 1
    method = ci.get("hessian.method", "auto")
    if method == "auto":
        method = hessian_method(d, int(model.graph.n_latent))
    stencil = 2 * d * d if method == "values" else 2 * d
    fd = 2 * d + 1 if ci.get("gradient") == "fd" else 1
    return max(_design_size(d, str(ci.get("int.strategy", "auto"))), stencil, fd)


def _fit_mesh(model) -> tuple[int, int]:
    """(groups of devices for θ points, time partitions) of the fit: the BTA solver's split
    (:func:`fit_split`, set when the model is compiled), else the devices of the batches."""
    from ..engine.batching import POINTS_AXIS, points_mesh

    solver = model.graph.solver
    if getattr(solver, "mesh", None) is not None and hasattr(solver, "split"):
        return solver.split
    mesh = points_mesh(model.controls["control_inla"].get("devices"))
    if mesh is None:
        return 1, 1
    shape = dict(mesh.shape)
    return int(shape.get(POINTS_AXIS, 1)), int(shape.get("time", 1))


#: the evaluations of a mode search per free hyperparameter, for the split's time model
#: (:func:`fit_split`): R-INLA's BFGS typically takes 5–15 gradient steps per θ dimension
MODE_SEARCH_EVALUATIONS = 10


def fit_split(model) -> tuple[int, int]:
    """(p, t): how a fit with the BTA solver on k = ``control_inla["devices"]`` devices splits
    them into p groups for θ points × t time partitions (a 2-D mesh, :func:`adelia.engine.
    bta_partition.split_mesh`): :func:`adelia.engine.bta_partition.choose_split` with the
    model's n_b time blocks, its largest batch of θ points K (design, Hessian stencil, FD
    gradient), S = :data:`MODE_SEARCH_EVALUATIONS` · d sequential evaluations of the mode
    search, and the splits whose per-device estimate (:func:`estimate_device_memory`) fits a
    device's memory (:func:`device_memory`: ``control_inla["device.memory"]``, ...; host
    devices share the host's memory, so p·t of them have 1/(p·t) of it each). A user's mesh
    (``devices`` a ``jax.sharding.Mesh``) and the other solvers keep their devices: the
    solver's current split.

    Example:
        >>> fit_split(model)  # doctest: +SKIP
        (2, 2)
    """
    from jax.sharding import Mesh

    from ..engine.batching import points_mesh
    from ..engine.bta_partition import choose_split

    solver = model.graph.solver
    devices = getattr(solver, "devices", None)
    bs = getattr(solver, "block_structure", None)
    current = getattr(solver, "split", (1, 1))
    if devices is None or bs is None or isinstance(devices, Mesh):
        return current
    points = points_mesh(devices)
    if points is None:
        return 1, 1
    k = int(points.devices.size)
    limit, source = device_memory(model)
    shared = source == "available host memory"

    def memory_of(p: int, t: int) -> float:
        est = estimate_device_memory(model, p, t)
        return est.total * (p * t if shared else 1)

    d = int(model.free.size)
    return choose_split(k, int(bs.n_blocks), batch=_batch_size(model), sequential=MODE_SEARCH_EVALUATIONS * d,
                        memory_of=memory_of, memory=limit)


def estimate_device_memory(model, points_devices: int | None = None, time_partitions: int | None = None,
                           at_once: int | None = None) -> MemoryEstimate | None:
    """The peak memory per device of ``model``'s fit on ``points_devices`` devices for the
    batches of θ points × ``time_partitions`` devices for the BTA kernels (default: the fit's
    ``control_inla["devices"]``); None for the sparse backend (CHOLMOD runs on the host:
    :func:`estimate_fit_memory` covers it).

    Terms (bytes; F the numbers of one factor, :func:`bta_factor_numbers` — n² for the dense
    backend —, F_P a device's share of it over P time partitions, B the points a device runs at
    once: a batch of K points vmapped on an accelerator padded to a compiled program's rows
    (:func:`adelia.engine.batching.bucket_size`: K ≤ B < 2K on one device, ⌈K/k⌉ ≤ B <
    2⌈K/k⌉ over k devices), one per host device on the CPU, adelia's host threads on one CPU
    device):

    - ``factor``: 8 B F_P;
    - ``selected inverse``: 8 B Σ_P (the marginal variances and the logdet's cotangent; over P
      time partitions a device keeps its blocks' and the reduced system's,
      :func:`bta_partition_numbers`, and returns Σ on Q_c's pattern only);
    - ``precision``: 8 B Q_P, Q_c's blocks (and so its cotangent's): a device assembles only
      its partition's from Q_c's values (:func:`bta_partition_numbers`);
    - ``workspace``: 8 B · 16 (n + n_obs), the vectors of a Newton iteration and its gradient;
    - ``points``: 8 B (3n + 2 n_pred), a point's mode, mean, variances and predictor moments;
    - ``programs``: the data the compiled programs receive, replicated on every device (as in
      :func:`estimate_fit_memory`).

    Not measured on a GPU yet (no accelerator was at hand): the terms count the arrays the
    kernels hold, not XLA's temporaries.

    Example:
        >>> estimate_device_memory(model, 1, 1).describe()  # doctest: +SKIP
        'fit memory estimate 3.1 GB (selected inverse 1.2, ...)'
    """
    from ..engine.batching import bucket_size, on_host
    from ..engine.host_cores import host_workers

    g = model.graph
    solver = g.solver
    bs = getattr(solver, "block_structure", None)
    dense = type(solver).__name__ == "DenseSolver"
    if bs is None and not dense:
        return None
    if points_devices is None or time_partitions is None:
        k_points, P = _fit_mesh(model)
        points_devices = k_points if points_devices is None else points_devices
        time_partitions = P if time_partitions is None else time_partitions
    k, P = max(1, int(points_devices)), max(1, int(time_partitions))
    n = int(g.n_latent)
    n_obs = int(model.observations.n_obs)
    n_pred = n_obs + (int(g.effect_map.n_rows) if getattr(g, "effect_map", None) is not None else 0)
    nnz = int(g.posterior_pattern.nnz)
    K = _batch_size(model)
    if at_once is not None:
        at_once = max(1, int(at_once))
    elif on_host():
        at_once = min(host_workers(), K) if k * P == 1 else 1
    else:
        # a vmapped batch is padded to a compiled program's rows (batching.bucket_size: < 2K),
        # run in chunks of the rows that fit a device when that is fewer (points_at_once)
        at_once = bucket_size(K) if k == 1 else bucket_size(-(-K // k), 1)
        if getattr(model, "_points_at_once", None):
            at_once = min(at_once, int(model._points_at_once))
    if dense:
        P = 1
        full = local = n * n
    else:
        P = max(1, min(P, bs.n_blocks // 2))  # n_b < 2P: fewer partitions (bta_distributed)
        local = bta_factor_numbers(bs.n_blocks, bs.block_size, bs.arrow_size, P)
        own, sigma = bta_partition_numbers(bs.n_blocks, bs.block_size, bs.arrow_size, P)
    if dense:
        own = sigma = full
    terms = {
        "factor": at_once * _F8 * local,
        "selected inverse": at_once * _F8 * sigma,
        "precision": at_once * _F8 * own,
        "workspace": at_once * _F8 * 16 * (n + n_obs),
        "points": at_once * _F8 * (3 * n + 2 * n_pred),
        "programs": 1.5 * _F8 * (20 * (n + n_obs) + 4 * nnz),
    }
    sizes = {"n_latent": n, "batch": K, "points at once": at_once, "devices": k * P, "θ-point groups": k,
             "time partitions": P}
    if bs is not None:
        sizes.update({"blocks": bs.n_blocks, "block size": bs.block_size, "arrow": bs.arrow_size})
    return MemoryEstimate({name: float(v) for name, v in terms.items()}, sizes)


def points_at_once(model) -> int | None:
    """The θ points one accelerator holds at once in a batch (a vmapped program's rows): the
    most rows B whose per-device estimate (:func:`estimate_device_memory` with B points at
    once) fits the device's memory (:func:`device_memory`); None when the whole padded batch
    fits, on the CPU (host threads, one point per thread) and for the sparse backend. At
    least 1: when one point does not fit either, the memory check names the devices that
    would (:func:`check_device_memory`). A fit then runs its larger batches (integration
    design, Hessian stencil) as consecutive chunks of B points
    (:class:`adelia.engine.batching.VmappedPoints`): one point's factor of a 10⁶-latent
    space-time model fills a good part of a GPU, and the design's points need not be held
    together."""
    from ..engine.batching import on_host, points_mesh

    if on_host() or points_mesh(getattr(model, "_points_devices", None)) is not None:
        return None  # host threads; a batch sharded over devices: ShardedPoints (not chunked)
    saved, model._points_at_once = getattr(model, "_points_at_once", None), None
    try:
        whole = estimate_device_memory(model)
    finally:
        model._points_at_once = saved
    limit, _ = device_memory(model)
    if whole is None or limit is None or whole.total <= limit:
        return None
    rows = int(whole.sizes["points at once"])
    per_point = (whole.total - whole.terms["programs"]) / rows
    return int(max(1, min(rows - 1, (limit - whole.terms["programs"]) // per_point)))


def device_memory(model) -> tuple[int | None, str]:
    """(bytes of memory of one device, where the figure comes from): ``control_inla["device.memory"]``,
    else ``$ADELIA_DEVICE_MEMORY``, else the accelerator's ``memory_stats()["bytes_limit"]``,
    else (the CPU: host devices share the host's memory) :func:`available_memory`."""
    import jax

    stated = model.controls["control_inla"].get("device.memory")
    if stated is not None:
        return parse_bytes(stated), "control_inla['device.memory']"
    if os.environ.get(DEVICE_MEMORY_ENV):
        return parse_bytes(os.environ[DEVICE_MEMORY_ENV], f"${DEVICE_MEMORY_ENV}"), f"${DEVICE_MEMORY_ENV}"
    device = jax.local_devices()[0]
    if device.platform != "cpu":
        try:
            stats = device.memory_stats() or {}
        except Exception:  # a backend without memory statistics
            stats = {}
        if stats.get("bytes_limit"):
            return int(stats["bytes_limit"]), f"{device} bytes_limit"
    return available_memory(), "available host memory"


def _splits(devices: int, n_blocks: int | None):
    """(devices for points, time partitions) with their product ``devices``."""
    for P in range(1, devices + 1):
        if devices % P == 0 and (P == 1 or (n_blocks is not None and 2 * P <= n_blocks)):
            yield devices // P, P


def smallest_fitting_devices(model, memory: float, shared: bool = False):
    """The smallest number of devices k (≤ :data:`MAX_DEVICES`) on which the fit's per-device
    estimate fits ``memory``, with its split (points devices, time partitions) and estimate;
    None when none does. ``shared``: the devices share ``memory`` (host devices of the CPU),
    so k devices have memory/k each."""
    bs = getattr(model.graph.solver, "block_structure", None)
    n_blocks = None if bs is None else int(bs.n_blocks)
    for k in range(1, MAX_DEVICES + 1):
        budget = memory / k if shared else memory
        best = None
        for p, P in _splits(k, n_blocks):
            est = estimate_device_memory(model, p, P)
            if est is not None and (best is None or est.total < best[2].total):
                best = (p, P, est)
        if best is not None and best[2].total <= budget:
            return k, best
    return None


def check_device_memory(model, verbose: bool = False) -> MemoryEstimate | None:
    """Estimate the fit's peak memory per device (:func:`estimate_device_memory`; printed when
    ``verbose``) and raise :class:`DeviceMemoryError` naming the estimate, the device's memory
    and the smallest ``devices=`` that would fit (or that none would) when it exceeds a
    device's memory (:func:`device_memory`). Called by :func:`check_fit_memory`, under the
    same switches."""
    import jax

    est = estimate_device_memory(model)
    if est is None:
        return None
    limit, source = device_memory(model)
    if verbose:
        have = "unknown" if limit is None else f"{limit / 1e9:.3g} GB"
        print(f"per device: {est.describe()}; device memory {have} ({source})", flush=True)
    if limit is None:
        return est
    shared = source == "available host memory"  # the CPU's host devices share the host's memory
    used = int(est.sizes["devices"])
    budget = limit / used if shared else limit
    if est.total <= budget:
        return est
    fits = smallest_fitting_devices(model, limit, shared)
    have = len(jax.devices())
    if fits is None:
        advice = (f"no number of devices up to {MAX_DEVICES} would fit it: reduce the model (fewer latent nodes "
                  f"or time blocks, int_strategy='eb' for fewer design points)")
    else:
        k, (p, P, need) = fits
        split = f" ({p} for θ points × {P} time partitions)" if P > 1 else ""
        advice = (f"devices={k}{split} would fit it (about {need.total / 1e9:.3g} GB per device; "
                  f"{have} device(s) here): control_inla={{'devices': {k}}}")
    raise DeviceMemoryError(
        f"this fit needs about {est.total / 1e9:.3g} GB per device on {used} device(s) but a device has "
        f"{budget / 1e9:.3g} GB ({source}{'; shared by the host devices' if shared and used > 1 else ''}) "
        f"({est.describe()}); {advice}. control_inla={{'memory.check': False}} runs anyway."
    )


__all__ = [
    "DeviceMemoryError",
    "MemoryEstimate",
    "available_memory",
    "bta_factor_numbers",
    "check_device_memory",
    "points_at_once",
    "check_fit_memory",
    "device_memory",
    "estimate_device_memory",
    "estimate_fit_memory",
    "fit_split",
    "parse_bytes",
    "smallest_fitting_devices",
]
