"""Distributed BTA kernels (time blocks partitioned over a mesh axis) against the
single-device kernels of :mod:`adelia.engine.bta` and dense algebra.

Oracles: ``bta.logdet`` / ``bta.solve`` / ``bta.selected_inverse`` and their ``jax.grad``
(values and gradients to 1e-10 relative); for ``sample``, whose factor is the permuted one
(so the same noise z gives a different draw), the linear map z ↦ x is built column by column
(x for z = the unit vectors, the matrix A) and checked exactly: A Aᵀ = Q⁻¹ (dense inverse),
i.e. Cov x = Q⁻¹ for z ~ N(0, I); the gradient of the factor-free functional
tr(W A Aᵀ) = tr(W Q⁻¹) equals the single-device one.

Several partitions need several devices: those checks run in one subprocess with four CPU
devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``), which prints the worst
relative error per check; the parent asserts. The main process (one device) checks the
one-partition path, the partition plan and the errors.
"""

from __future__ import annotations

import os
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh

import adelia  # noqa: F401  (float64)
from adelia.engine import bta
from adelia.engine import bta_distributed as bd
from adelia.engine.bta_partition import partition_plan, time_mesh

from test_bta import random_bta, rel_err
from test_devices import run_on_four_devices

TOL = 1e-10


def one_device_mesh():
    return Mesh(np.array(jax.devices()[:1]), ("time",))


@pytest.mark.parametrize(
    ("n_blocks", "partitions", "expected"),
    [(8, 4, (4, 2, 0, 0)), (9, 4, (4, 3, 1, 2)), (10, 3, (3, 4, 1, 1)), (5, 1, (1, 5, 0, 0)), (1, 1, (1, 2, 0, 1))],
)
def test_partition_plan_pads_both_ends(n_blocks, partitions, expected):
    plan = partition_plan(n_blocks, partitions)
    assert (plan.partitions, plan.per_partition, plan.pad_front, plan.pad_back) == expected
    assert plan.padded_blocks == plan.n_blocks + plan.pad_front + plan.pad_back


def test_too_few_blocks_fall_back_to_fewer_partitions_with_a_warning():
    with pytest.warns(UserWarning, match="5 time blocks cannot give 4 partitions.*using 2 partition"):
        plan = partition_plan(5, 4)
    assert (plan.partitions, plan.per_partition) == (2, 3)


def test_time_mesh_only_for_several_devices():
    assert time_mesh(None, 10) is None
    assert time_mesh(1, 10) is None
    assert time_mesh(one_device_mesh(), 10) is None


def test_bad_mesh_axis_is_named():
    Q = random_bta(np.random.default_rng(0), 3, 2, 1)
    with pytest.raises(ValueError, match=r"axis 'space' is not an axis of the mesh; its axes are \('time',\)"):
        bd.logdet(Q, one_device_mesh(), axis="space")
    with pytest.raises(TypeError, match="must be a jax.sharding.Mesh"):
        bd.logdet(Q, [jax.devices()[0]])


@pytest.mark.parametrize("shape", [(5, 3, 2), (3, 2, 0), (1, 2, 1), (2, 1, 1)])
def test_one_partition_equals_bta(shape):
    """One device: the partition's first and last blocks form the reduced system, the rest is
    its interior; values and gradients equal bta's."""
    rng = np.random.default_rng(1)
    Q = random_bta(rng, *shape)
    r, c = rng.normal(size=(Q.n,)), rng.normal(size=(Q.n,))
    mesh = one_device_mesh()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_b = 1: one partition of one block and one padding block
        assert abs(float(bd.logdet(Q, mesh) - bta.logdet(Q))) <= TOL * abs(float(bta.logdet(Q)))
        assert rel_err(jax.grad(bd.logdet)(Q, mesh), jax.grad(bta.logdet)(Q)) <= TOL
        assert rel_err(bd.solve(Q, r, mesh), bta.solve(Q, r)) <= TOL
        assert rel_err(bd.selected_inverse(Q, mesh), bta.selected_inverse(Q)) <= TOL

        def quad(solve, q, r):
            return jnp.vdot(r, solve(q, r)) + jnp.vdot(c, solve(q, r))

        want = jax.grad(lambda q, r: quad(bta.solve, q, r), argnums=(0, 1))(Q, r)
        got = jax.grad(lambda q, r: quad(lambda q, r: bd.solve(q, r, mesh), q, r), argnums=(0, 1))(Q, r)
        assert rel_err(got, want) <= TOL


def test_not_positive_definite_and_non_finite_follow_bta():
    Q = random_bta(np.random.default_rng(2), 4, 2, 1)
    bad = bta.BTAMatrix(Q.diag.at[2].set(-jnp.eye(2)), Q.lower, Q.arrow, Q.tip)
    mesh = one_device_mesh()
    assert float(bd.logdet(bad, mesh)) == -np.inf
    assert not bool(bd.is_positive_definite_factor(bd.cholesky(bad, mesh)))
    assert bool(bd.is_positive_definite_factor(bd.cholesky(Q, mesh)))
    nan = bta.BTAMatrix(Q.diag.at[0, 0, 0].set(np.nan), Q.lower, Q.arrow, Q.tip)
    assert np.isnan(float(bd.logdet(nan, mesh)))


FOUR_DEVICE_SCRIPT = """  # .format(cases=...): braces of the script doubled
import warnings
import jax.numpy as jnp
from jax.sharding import Mesh
from adelia.engine import bta, bta_distributed as bd
from test_bta import random_bta, rel_err

rng = np.random.default_rng(7)
worst = {{}}
def record(name, err):
    worst[name] = max(worst.get(name, 0.0), float(err))

def grad_pair(f_single, f_dist, *args, argnums=0):
    return jax.grad(f_dist, argnums=argnums)(*args), jax.grad(f_single, argnums=argnums)(*args)

# (partitions, (n_b, b, a)): even and uneven partitions, a = 0 and a > 0, interiors of 0..3 blocks
CASES = {cases}
for parts, shape in CASES:
    mesh = Mesh(np.array(jax.devices()[:parts]), ("time",))
    Q = random_bta(rng, *shape)
    n = Q.n
    r, c = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    w = random_bta(rng, *shape)  # weights for scalar functionals of BTA-pattern outputs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        L = bd.cholesky(Q, mesh)
        fallback = any("cannot give" in str(x.message) for x in caught)
    if shape[0] < 2 * parts:
        assert fallback, (parts, shape)
    warnings.simplefilter("ignore")
    ld = bta.logdet(Q)
    record("logdet", abs(bd.logdet(Q, mesh) - ld) / abs(ld))
    record("logdet", abs(bd.logdet_from_factor(L) - ld) / abs(ld))
    record("logdet_grad", rel_err(*grad_pair(bta.logdet, lambda q: bd.logdet(q, mesh), Q)))
    record("solve", rel_err(bd.solve(Q, r, mesh), bta.solve(Q, r)))
    record("solve", rel_err(bd.solve(Q, r[:, 0], mesh), bta.solve(Q, r[:, 0])))
    record("solve", rel_err(bd.solve_from_factor(L, r), bta.solve(Q, r)))
    quad = lambda solve: (lambda q, r: jnp.vdot(r, solve(q, r)) + jnp.vdot(c, solve(q, r)))
    record("solve_grad", rel_err(*grad_pair(quad(bta.solve), quad(lambda q, r: bd.solve(q, r, mesh)), Q, r, argnums=(0, 1))))
    joint = lambda f, wt: (lambda q, r: wt * f(q, r)[0] + jnp.sum(f(q, r)[1] * r))
    for wt in (0.7, 0.0):  # 0.0: the log-determinant's cotangent is a symbolic zero
        record("logdet_and_solve_grad", rel_err(*grad_pair(
            joint(bta.logdet_and_solve, wt), joint(lambda q, r: bd.logdet_and_solve(q, r, mesh), wt), Q, r, argnums=(0, 1))))
    only_logdet = lambda f: (lambda q: f(q, r)[0])
    record("logdet_and_solve_grad", rel_err(*grad_pair(only_logdet(bta.logdet_and_solve),
                                                       only_logdet(lambda q, r: bd.logdet_and_solve(q, r, mesh)), Q)))
    s_bta = bta.selected_inverse(Q)
    record("selected_inverse", rel_err(bd.selected_inverse(Q, mesh), s_bta))
    weigh = lambda f: (lambda q: sum(jnp.sum(x * y) for x, y in zip(jax.tree.leaves(f(q)), jax.tree.leaves(w))))
    record("selected_inverse_grad", rel_err(*grad_pair(weigh(bta.selected_inverse), weigh(lambda q: bd.selected_inverse(q, mesh)), Q)))
    # sample: the map z -> x as a matrix A (columns: x for unit vectors z); A Aᵀ = Q⁻¹ exactly
    eye = jnp.eye(n)
    A = bd.sample_from_noise(L, eye)
    q_inv = np.linalg.inv(np.asarray(Q.to_dense()))
    record("sample_cov", rel_err(A @ A.T, q_inv))
    key = jax.random.key(3)
    z = jax.random.normal(key, (n, 4))
    record("sample_cov", rel_err(bd.sample(Q, key, mesh, n_samples=4), (A @ z).T))
    wd = np.asarray(w.to_dense())
    cov_fun = lambda noise: (lambda q: jnp.sum(wd * (lambda a: a @ a.T)(noise(q))))
    record("sample_grad", rel_err(*grad_pair(cov_fun(lambda q: bta.sample_from_noise(bta.cholesky(q), eye)),
                                             cov_fun(lambda q: bd.sample_from_noise(bd.cholesky(q, mesh), eye)), Q)))
    # under jit with the mesh closed over: no host round trip, one trace
    jitted = jax.jit(lambda q, r: bd.logdet_and_solve(q, r, mesh))
    got = jitted(Q, r)
    record("jit", max(abs(got[0] - ld) / abs(ld), rel_err(got[1], bta.solve(Q, r))))
for name, err in sorted(worst.items()):
    print(name, err)
"""


EXPECTED = {"logdet", "logdet_grad", "solve", "solve_grad", "logdet_and_solve_grad", "selected_inverse",
            "selected_inverse_grad", "sample_cov", "sample_grad", "jit"}


def check_on_four_devices(cases):
    here = os.path.dirname(os.path.abspath(__file__))
    script = f"import sys; sys.path.insert(0, {here!r})\n" + FOUR_DEVICE_SCRIPT.format(cases=cases)
    out = run_on_four_devices(script, timeout=600)
    errs = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}
    assert set(errs) == EXPECTED, out
    assert all(err <= TOL for err in errs.values()), out


def test_three_and_four_partitions_equal_bta_on_four_devices():
    """P = 3 (a = 0, uneven: 7 blocks) and P = 4 (a = 3, uneven: 9 blocks, padding at both
    ends): logdet, solve, logdet_and_solve, selected inverse and their gradients equal bta's;
    the sample's covariance map equals Q⁻¹ and its gradient the single-device one; to 1e-10."""
    check_on_four_devices([(3, (7, 2, 0)), (4, (9, 2, 3))])


@pytest.mark.slow
def test_one_to_four_partitions_equal_bta_on_four_devices():
    """The same checks for P = 1..4, even and uneven partitions, a = 0 and a > 0, interiors
    of 0..2 blocks, the n_b < 2P fallback (5 blocks on 4 devices) and n_b = 1."""
    check_on_four_devices([(1, (5, 3, 2)), (2, (5, 3, 2)), (2, (6, 2, 0)), (3, (9, 2, 2)), (4, (8, 3, 0)),
                           (4, (13, 2, 1)), (4, (5, 2, 1)), (4, (1, 2, 1))])


# --- the BTA solver with control_inla={"solver": "bta", "devices": 4} -------------------------------

# a DEMF space-time model (compile, fit as functions of control_inla's other keys) and the
# table comparison, for the 4-device scripts here and in test_mesh_2d
DEMF_PROBLEM = """
import warnings
warnings.simplefilter("ignore")
from jax.sharding import Mesh

def demf_problem(n_times, n_per_time, seed):
    rng = np.random.default_rng(seed)
    mesh = adelia.spde.mesh_2d(rng.random((15, 2)), max_edge=(0.35, 0.7), offset=(0.15, 0.3), cutoff=0.08)
    st = adelia.spde.spacetime_demf(mesh, n_times, prior_range_s=(0.3, 0.5), prior_range_t=(2.0, 0.5),
                                    prior_sigma=(2.0, 0.05))
    loc = rng.random((n_per_time * n_times, 2))
    t = np.repeat(np.arange(1, n_times + 1), n_per_time)
    A = adelia.spde.make_A(mesh, loc, group=t, n_group=n_times)
    y = 1.0 + A @ (0.5 * rng.standard_normal(mesh.n * n_times)) + 0.2 * rng.standard_normal(t.size)
    stk = adelia.spde.stack(data={"y": y}, A=[A, 1], effects=[{"st": np.arange(1, mesh.n * n_times + 1)},
                            {"b0": np.ones(y.size)}], tag="est")
    kw = dict(data=adelia.spde.stack_data(stk), control_predictor={"A": adelia.spde.stack_A(stk)},
              context={"demf": st}, family="gaussian")
    formula = "y ~ 0 + b0 + f(st, model=demf)"
    return (lambda **ci: adelia.compile(formula, control_inla=dict(solver="bta", **ci), **kw),
            lambda **ci: adelia.inla(formula, control_inla=dict(solver="bta", **ci), **kw))

def relative(a, b):
    # max |a - b| relative to each column's scale max |a| (a near-zero entry, e.g. the median
    # of a centred effect, is compared on the scale of its column, not on its own)
    a, b = np.asarray(a, float), np.asarray(b, float)
    a, b = (x.reshape(x.shape[0], -1) if x.ndim else x.reshape(1, 1) for x in (a, b))
    scale = np.maximum(np.max(np.abs(a), axis=0), 1e-300)
    return float(np.max(np.abs(a - b) / scale))

"""

FIT_SCRIPT = """
sys.path.insert(0, {spde!r})
from test_coregional import simulate

# 12 time blocks on 4 devices: 3 blocks per partition (one interior block each)
compile_demf, fit_demf = demf_problem(12, 10, 7)
coreg, theta_coreg, _ = simulate(2, "demf", n_times=12, n_per_time=8, seed=3) if "coregional" in {names} else (0, 0, 0)
cases = [("demf", compile_demf, fit_demf, None),
         ("coregional", lambda **ci: coreg.compile(control_inla=dict(solver="bta", **ci)),
          lambda **ci: coreg.fit(control_inla=dict(solver="bta", **ci)), theta_coreg)]
for name, compile, fit, theta in cases:
    if name not in {names}:
        continue
    # all four devices on time partitions, as a "time" mesh (devices=4 picks its own split: test_mesh_2d)
    line = Mesh(np.array(jax.devices()), ("time",))
    one, four = compile(), compile(devices=line)
    assert one.graph.solver.mesh is None and four.graph.solver.mesh.shape["time"] == 4, four.graph.solver
    theta = one.theta0 if theta is None else theta
    thetas = theta + np.linspace(-0.3, 0.3, 3)[:, None]
    print(name + "_objective", max(relative(one.log_posterior_batch(thetas), four.log_posterior_batch(thetas)),
                                   relative(one.grad_batch(thetas), four.grad_batch(thetas))))
    if {fits}:
        for suffix, ci in (("", {{}}), ("_axes", {{"use.directions": False}})):
            fits = [fit(**ci), fit(devices=line, **ci)]
            worst = max(relative(*(r[table] for r in fits)) for table in
                        ["summary.fixed", "summary.hyperpar", "internal.summary.hyperpar", "mlik"])
            for key in fits[0].summary_random:
                worst = max(worst, relative(*(r.summary_random[key].select_dtypes("number") for r in fits)))
            print(name + "_fit" + suffix, worst)
            print(name + "_mode" + suffix, max(relative(*(r.mode["theta"] for r in fits)),
                                               relative(*(r.mode["x"] for r in fits))))
"""


def run_fit_script(names, fits: bool) -> dict:
    here = os.path.dirname(os.path.abspath(__file__))
    spde = os.path.join(os.path.dirname(here), "spde")
    script = "import sys\n" + DEMF_PROBLEM + FIT_SCRIPT.format(spde=spde, fits=fits, names=names)
    out = run_on_four_devices(script, timeout=2400)
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


def test_bta_solver_objective_on_four_time_partitions_equals_one_device():
    """A DEMF space-time model (12 time blocks: 4 partitions of 3) compiled with devices=4
    puts its BTA solver on a 4-device "time" mesh; the Laplace objective and its gradient at
    three θ equal the one-device model's to 1e-10 (the 2-variate coregional model: below, slow)."""
    errs = run_fit_script(["demf"], fits=False)
    assert set(errs) == {"demf_objective"}, errs
    assert all(err <= TOL for err in errs.values()), errs


@pytest.mark.slow
def test_bta_fits_on_four_time_partitions_equal_one_device():
    """Whole fits (DEMF space-time; 2-variate coregional, 9 θ) with control_inla={"solver":
    "bta", "devices": <4 devices on the "time" axis>} against the devices=1 fits: the mode (θ
    and x) to 1e-9; every summary table and mlik to 1e-8 (relative to each column's scale), with
    R-INLA's default Hessian along the mode search's directions and along the axes
    (use.directions=FALSE).

    The default needed one change to get there: the two factorisations round differently
    (objective and gradient agree to ~1e-12), and the mode search's last polishing steps are
    ~1e-6 long, so their directions carried that rounding at ~1e-6 into the Hessian's frame
    (tables 2.5e-6 apart). Steps shorter than R-INLA's tolerance.x (0.001) stay out of the
    frame now (optimize.find_mode): coregional tables 3.7e-9, mode 2.7e-11 (measured on 4 host
    devices)."""
    errs = run_fit_script(["demf", "coregional"], fits=True)
    names = {f"{m}_{k}{s}" for m in ("demf", "coregional") for k in ("objective", "fit", "mode") for s in ("", "_axes")}
    names -= {"demf_objective_axes", "coregional_objective_axes"}
    assert set(errs) == names, errs
    for m in ("demf", "coregional"):
        assert errs[f"{m}_objective"] <= TOL and errs[f"{m}_mode"] <= 1e-9 and errs[f"{m}_mode_axes"] <= 1e-9, errs
        assert errs[f"{m}_fit_axes"] <= 1e-8 and errs[f"{m}_fit"] <= 1e-8, errs
