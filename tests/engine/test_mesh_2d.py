"""A fit's devices as a 2-D mesh: p groups for θ points × t time partitions.

Oracles: the one-device computation (every point of a batch is the same Laplace objective
whatever the mesh: the values, gradients and whole fits on a 2 × 2 mesh must equal
devices=1 to rounding), a loop over θ of the same kernels (for their vmap), and the time
model of :func:`adelia.engine.bta_partition.choose_split` worked by hand (the split rule).
Several CPU devices exist only with ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
set before jax is imported, so those checks run in a subprocess.
"""

from __future__ import annotations


import jax
import numpy as np
import pytest

from adelia.engine.bta_partition import choose_split, evaluation_steps, split_mesh
from test_bta_distributed import DEMF_PROBLEM
from test_devices import run_on_four_devices

TOL = 1e-10

# the DEMF space-time model of test_bta_distributed's fit script: 12 time blocks
DEMF = DEMF_PROBLEM + """
compile_demf, fit_demf = demf_problem(12, 10, 7)
grid = Mesh(np.array(jax.devices()).reshape(2, 2), ("points", "time"))
"""


def _errors(out: str) -> dict:
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if len(line.split()) == 2}


# --- the split rule (pure functions, no devices) ---------------------------------------------------


def test_evaluation_steps_count_the_local_chain_and_the_reduced_system():
    assert evaluation_steps(12, 1) == 12
    assert evaluation_steps(12, 2) == 6 + 4
    assert evaluation_steps(10, 4) == 3 + 8  # ⌈10/4⌉ local blocks, then 2·4 reduced blocks


def test_choose_split_by_the_time_model():
    # one device, or too few blocks for 2 partitions: everything to θ points
    assert choose_split(1, 100) == (1, 1)
    assert choose_split(4, 3, batch=25, sequential=40) == (4, 1)
    # a long chain: the sequential mode search favours time partitions
    # (t = 1: (40 + 7)·100 = 4700, t = 2: (40 + 13)·54 = 2862, t = 4: (40 + 25)·33 = 2145)
    assert choose_split(4, 100, batch=25, sequential=40) == (1, 4)
    # a short chain: the reduced system's 2t steps eat the gain (t = 1: 282, t = 2: (40 + 13)·7 = 371)
    assert choose_split(4, 6, batch=25, sequential=40) == (4, 1)
    # the 12-block model of the subprocess tests: t = 1: (40 + 7)·12 = 564, t = 2: (40 + 13)·10 = 530,
    # t = 4: (40 + 25)·11 = 715
    assert choose_split(4, 12, batch=25, sequential=40) == (2, 2)
    # a batch only (no mode search): one round on 4 groups beats 2 (or 8) rounds on partitions
    assert choose_split(4, 12, batch=8) == (4, 1)
    assert choose_split(8, 1000, batch=8) == (8, 1)  # t = 8: 8·(125 + 16) = 1128 > 1000
    # a single evaluation (a solver outside a fit): as many partitions as pay (⌈1000/8⌉ + 16 = 141)
    assert choose_split(8, 1000) == (1, 8)
    # ties go to fewer partitions: 6 devices, n_b = 4 -> t ∈ {1, 2}: t = 1: 1·4 = 4, t = 2: 1·(2 + 4) = 6
    assert choose_split(6, 4, batch=6) == (6, 1)


def test_choose_split_takes_the_fastest_split_that_fits_memory():
    # memory per device falls with t (the factor's share) and with p (fewer points at once)
    need = {(4, 1): 10.0, (2, 2): 6.0, (1, 4): 3.0}
    memory_of = lambda p, t: need[(p, t)]  # noqa: E731
    assert choose_split(4, 100, batch=25, sequential=40, memory_of=memory_of, memory=100.0) == (1, 4)
    assert choose_split(4, 12, batch=25, sequential=40, memory_of=memory_of, memory=100.0) == (2, 2)
    # (2, 2) no longer fits: the fastest of those that do
    assert choose_split(4, 12, batch=25, sequential=40, memory_of=memory_of, memory=5.0) == (1, 4)
    # nothing fits: the least memory (the memory check then names the devices that would fit)
    assert choose_split(4, 12, batch=25, sequential=40, memory_of=memory_of, memory=1.0) == (1, 4)
    # unknown memory: every split fits
    assert choose_split(4, 100, batch=25, sequential=40, memory_of=memory_of, memory=None) == (1, 4)


def test_one_device_has_no_split_mesh():
    assert split_mesh(None, 10) is None if jax.default_backend() == "cpu" else True
    assert split_mesh(1, 10) is None


# --- on four CPU devices ---------------------------------------------------------------------------


def test_objective_and_gradient_batches_on_a_two_by_two_mesh_equal_one_device():
    """The DEMF model on a 2 × 2 mesh (given as a Mesh, and chosen by the rule for devices=4):
    the solver's split, its repr, the batch of θ points sharded over the "points" groups
    (its mesh is the solver's); a stated device memory that only the split of least memory
    fits picks it (fit_split); the objective and gradient batches (3 points: uneven over
    2 groups) and a single evaluation's value and gradient (run on the 2-D mesh replicated
    over "points") equal devices=1 to 1e-10."""
    out = run_on_four_devices(
        DEMF
        + """
import time
clock = time.time()
one = compile_demf()
thetas = one.theta0 + np.linspace(-0.3, 0.3, 3)[:, None]
for devices in (grid, 4):
    two = compile_demf(devices=devices)
    solver = two.graph.solver
    assert solver.split == (2, 2) and solver.mesh.axis_names == ("points", "time"), solver
    assert "devices=2 θ-point group(s) × 2 time partitions" in repr(solver), repr(solver)
    assert two._points_devices is solver.mesh
# a stated device memory that only the split of least memory fits (here not the fastest, 2 × 2)
from adelia.inference import memory
need = {split: memory.estimate_device_memory(two, *split).total for split in ((4, 1), (2, 2), (1, 4))}
smallest = min(need, key=need.get)
assert smallest != (2, 2) and sorted(need.values())[1] > need[smallest] + 1, need
tight = compile_demf(devices=4, **{"device.memory": int(need[smallest]) + 1})
assert memory._fit_mesh(tight) == smallest, (tight.graph.solver, need)
print("objective", relative(one.log_posterior_batch(thetas), two.log_posterior_batch(thetas)))
print("gradient", relative(one.grad_batch(thetas), two.grad_batch(thetas)))
(f1, g1), (f2, g2) = one.value_and_grad(thetas[0]), two.value_and_grad(thetas[0])
print("single", max(relative(f1, f2), relative(g1, g2)))
print("seconds", time.time() - clock)
""",
        timeout=600,
    )
    errs = _errors(out)
    errs.pop("seconds")
    assert set(errs) == {"objective", "gradient", "single"}, out
    assert all(err <= TOL for err in errs.values()), errs


def test_vmap_of_the_distributed_kernels_equals_the_loop():
    """What an accelerator does for a points shard: ``jax.vmap`` over θ of the distributed
    BTA kernels (logdet, its gradient, solve, selected inverse), on a 1-D "time" mesh of 4
    devices, on the 2 × 2 mesh outside a batch, and nested inside a "points" shard
    (ShardedPoints vectorised) — against the loop of single-device bta kernels over θ; and
    the solver's mesh for each split and for a user's meshes (split_mesh)."""
    out = run_on_four_devices(
        """
import jax.numpy as jnp
from jax.sharding import Mesh
from adelia.engine import bta
from adelia.engine.batching import ShardedPoints
from adelia.engine.bta_solver import _Kernels

rng = np.random.default_rng(0)
nb, b, a = 9, 2, 1
D = rng.normal(size=(nb, b, b)); B = 0.3 * rng.normal(size=(nb - 1, b, b)); C = 0.2 * rng.normal(size=(nb, a, b))
r = rng.normal(size=nb * b + a)

def matrix(t):
    diag = jnp.asarray(D @ np.swapaxes(D, 1, 2)) + (5.0 + jnp.exp(t[0])) * jnp.eye(b)
    return bta.BTAMatrix(diag, jnp.asarray(B) * t[1], jnp.asarray(C), (10.0 + t[0]) * jnp.eye(a))

def evaluate(kernels):
    def one(t):
        Q = matrix(t)
        g = jax.grad(lambda s: kernels.logdet(matrix(s)))(t)
        return kernels.logdet(Q), g, kernels.solve(Q, jnp.asarray(r)), kernels.selected_inverse(Q).diag
    return one

thetas = rng.normal(size=(5, 2)) * 0.3
single = evaluate(_Kernels(None))
want = [np.stack([np.asarray(single(jnp.asarray(t))[i]) for t in thetas]) for i in range(4)]

def worst(got):
    return max(float(np.max(np.abs(np.asarray(g) - w)) / np.max(np.abs(w))) for g, w in zip(got, want))

line = Mesh(np.array(jax.devices()), ("time",))
grid = Mesh(np.array(jax.devices()).reshape(2, 2), ("points", "time"))

# the solver's mesh for each split, and a user's meshes
from adelia.engine.bta_partition import split_mesh
from adelia.errors import ControlError
assert split_mesh(4, 12, (4, 1)) is None and split_mesh(4, 12, (1, 4)).axis_names == ("time",)
assert dict(split_mesh(4, 12, (2, 2)).shape) == {"points": 2, "time": 2}
assert split_mesh(grid, 12) is grid and split_mesh(Mesh(np.array(jax.devices()), ("points",)), 12) is None
try:
    split_mesh(grid, 3)
    raise AssertionError("a 2 × 2 mesh for 3 time blocks")
except ControlError as e:
    assert "at most 1 time partitions" in str(e), e
print("vmap_time_mesh", worst(jax.jit(jax.vmap(evaluate(_Kernels(line))))(thetas)))
print("vmap_grid", worst(jax.jit(jax.vmap(evaluate(_Kernels(grid))))(thetas)))
for vectorised in (False, True):
    sharded = ShardedPoints(evaluate(_Kernels(grid)), grid, vectorised=vectorised)
    print("shard_" + ("vmap" if vectorised else "map"), worst(sharded(thetas)))
""",
        timeout=300,
    )
    errs = _errors(out)
    assert set(errs) == {"vmap_time_mesh", "vmap_grid", "shard_vmap", "shard_map"}, out
    assert all(err <= TOL for err in errs.values()), errs


@pytest.mark.slow
def test_a_fit_on_a_two_by_two_mesh_equals_one_device():
    """A whole DEMF fit with control_inla={"solver": "bta", "devices": 4} (the rule's 2 × 2
    mesh for 12 time blocks: test above) against devices=1, R-INLA's default Hessian frame
    (use.directions): every summary table and mlik to 1e-8, the mode (θ and x) to 1e-9."""
    out = run_on_four_devices(
        DEMF
        + """
fits = [fit_demf(), fit_demf(devices=4)]
worst = max(relative(*(r[table] for r in fits)) for table in
            ["summary.fixed", "summary.hyperpar", "internal.summary.hyperpar", "mlik"])
for key in fits[0].summary_random:
    worst = max(worst, relative(*(r.summary_random[key].select_dtypes("number") for r in fits)))
print("fit", worst)
print("mode", max(relative(*(r.mode["theta"] for r in fits)), relative(*(r.mode["x"] for r in fits))))
""",
        timeout=2400,
    )
    errs = _errors(out)
    assert set(errs) == {"fit", "mode"}, out
    assert errs["fit"] <= 1e-8 and errs["mode"] <= 1e-9, errs
