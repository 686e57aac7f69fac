"""The BTA solver on a "time" mesh assembles each partition's blocks on its own device
(:func:`adelia.engine.bta_distributed.logdet_values` and friends): the per-device memory
shrinks with the device count instead of every device holding all n_b dense blocks.

Oracles: the single-device :class:`~adelia.engine.bta_solver.BTASolver` (itself checked
against dense algebra in test_bta.py) — logdet, solve, logdet_and_solve, the selected
inverse on the pattern and the gradients w.r.t. the pattern values and the right-hand side
to 1e-10 relative; ``sample`` against the distributed BTAMatrix path with the same key (the
same permuted factor, so the same draws). Memory: XLA's own per-device accounting of the
compiled program (``compiled.memory_analysis().temp_size_in_bytes``) for the objective and
its gradient, at P = 4 time partitions against P = 1 (the single-device kernels).

Several partitions need several devices: the checks run in one subprocess with four CPU
devices (as test_bta_distributed.py), which prints one number per check; the parent asserts.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from jax.sharding import Mesh

import adelia  # noqa: F401  (float64)
from adelia.engine import bta_distributed as bd
from adelia.engine.pattern import SparsePattern
from adelia.engine.solver import BlockStructure
from adelia.engine.bta_solver import BTASolver

from test_devices import run_on_four_devices

TOL = 1e-10
#: per-device temporaries at P = 4 must be below this fraction of P = 1's. The partitioned
#: scheme's factor holds a fill block per interior block ([M; Y; F] is (2b+a)×b, bta's
#: [M; F] (b+a)×b), so with blocks assembled per device the ratio is ≈ 2/P plus the reduced
#: system (2P blocks, replicated): measured 0.47 at n_b = 64, b = 48; every device holding
#: all n_b blocks (the BTAMatrix path) measured 0.69.
MEMORY_RATIO = 0.6


def demf_like(n_b, b, a, band=2, padding=True, seed=0):
    """A space-time-like precision: banded (sparse) spatial blocks, coupled neighbours in time,
    a dense arrow of a rows; with ``padding`` the last block and the arrow each get a padding
    position (unit diagonal) in the block structure."""
    rng = np.random.default_rng(seed)
    K = sp.diags([np.ones(b)] * (2 * band + 1), list(range(-band, band + 1)), (b, b)).tocsr()
    Kc = K.copy()
    Kc.data = 0.1 * rng.normal(size=Kc.data.size)
    Kc = Kc + Kc.T
    Kt = K.copy()
    Kt.data = 0.2 * rng.normal(size=Kt.data.size)
    D = sp.kron(sp.identity(n_b), Kc) + sp.kron(sp.diags([np.ones(n_b - 1)], [-1]), Kt)
    D = D + sp.kron(sp.diags([np.ones(n_b - 1)], [1]), Kt.T)
    n_pad_b, n_pad_a = (1, 1) if padding and a > 0 else (0, 0)
    nb_real, a_real = n_b * b - n_pad_b, a - n_pad_a
    n = nb_real + a_real
    arrow = 0.05 * rng.normal(size=(a_real, nb_real))
    tip = rng.normal(size=(a_real, a_real))
    blocks = D.tocsr()[:nb_real, :nb_real]
    Q = sp.bmat([[blocks, arrow.T], [arrow, tip + tip.T]]).tocsr() if a_real else blocks
    Q = (Q + (abs(Q).sum(axis=1).max() + 1.0) * sp.identity(n)).tocsr()
    perm = np.concatenate([np.arange(nb_real), -np.ones(n_pad_b, int), nb_real + np.arange(a_real),
                           -np.ones(n_pad_a, int)])
    pattern = SparsePattern.from_scipy(Q)
    return pattern, BlockStructure(perm, n_b, b, a), pattern.values_from_scipy(Q)


SCRIPT = '''
from test_bta_sharded_assembly import demf_like
import warnings
import jax.numpy as jnp
from jax.sharding import Mesh
from adelia.engine import bta_distributed as bd
from adelia.engine.bta_solver import BTASolver

def rel(x, y):
    x, y = np.asarray(x), np.asarray(y)
    return float(np.max(np.abs(x - y)) / np.max(np.abs(y)))

worst = {}
def record(name, err):
    worst[name] = max(worst.get(name, 0.0), float(err))

warnings.simplefilter("ignore")
# (partitions, (n_b, b, a, padding)): even and uneven partitions (padding blocks at both ends),
# a = 0 and a > 0, padding unknowns in a block and in the arrow, interiors of 0 and 1 blocks
for parts, (n_b, b, a, padding) in [(4, (9, 5, 2, True)), (3, (7, 4, 0, False))]:
    pattern, bs, values = demf_like(n_b, b, a, padding=padding)
    values = jnp.asarray(values)
    one = BTASolver(pattern, bs)
    many = BTASolver(pattern, bs, devices=Mesh(np.array(jax.devices()[:parts]), ("time",)))
    rng = np.random.default_rng(parts)
    r, c = jnp.asarray(rng.normal(size=pattern.n)), jnp.asarray(rng.normal(size=pattern.n))
    ld = one.logdet(values)
    record("logdet", abs(many.logdet(values) - ld) / abs(ld))
    record("solve", rel(many.solve(values, r), one.solve(values, r)))
    got, want = many.logdet_and_solve(values, r), one.logdet_and_solve(values, r)
    record("logdet_and_solve", max(abs(got[0] - want[0]) / abs(want[0]), rel(got[1], want[1])))
    record("selected_inverse", rel(many.selected_inverse(values), one.selected_inverse(values)))
    # the Laplace objective's shape: log|Q| and a quadratic form through the solve
    for wt in (0.7, 0.0):  # 0.0: the log-determinant's cotangent is a symbolic zero
        f = lambda s, wt=wt: (lambda v, r: wt * s._logdet_and_solve_impl(v, r)[0] + jnp.vdot(c, s._logdet_and_solve_impl(v, r)[1]))
        g_many = jax.jit(jax.grad(f(many), argnums=(0, 1)))(values, r)
        g_one = jax.jit(jax.grad(f(one), argnums=(0, 1)))(values, r)
        record("grad_values", rel(g_many[0], g_one[0]))
        record("grad_rhs", rel(g_many[1], g_one[1]))
    only_ld = lambda s: (lambda v: s._logdet_and_solve_impl(v, r)[0])
    record("grad_values", rel(jax.grad(only_ld(many))(values), jax.grad(only_ld(one))(values)))
    record("grad_values", rel(jax.grad(many.logdet)(values), jax.grad(one.logdet)(values)))
    quad = lambda s: (lambda v, r: jnp.vdot(c, s.solve(v, r)))
    got, want = jax.grad(quad(many), argnums=(0, 1))(values, r), jax.grad(quad(one), argnums=(0, 1))(values, r)
    record("grad_values", rel(got[0], want[0]))
    record("grad_rhs", rel(got[1], want[1]))
    w = jnp.asarray(rng.normal(size=pattern.nnz))
    weigh = lambda s: (lambda v: jnp.vdot(w, s.selected_inverse(v)))
    record("grad_selected_inverse", rel(jax.grad(weigh(many))(values), jax.grad(weigh(one))(values)))
    # vmap over the values (a batch of θ on one group's devices) equals the loop
    batch = values[None] * jnp.array([[1.0], [1.1]])
    got = jax.vmap(lambda v: jax.grad(f(many), argnums=0)(v, r))(batch)
    record("vmap", max(rel(got[i], jax.grad(f(one), argnums=0)(batch[i], r)) for i in range(2)))
    # sample: the same key gives the draws of the distributed BTAMatrix path (the same factor)
    key = jax.random.key(5)
    mesh = many.mesh
    want = bd.sample(one.bta_matrix(values), key, mesh, n_samples=3)[:, one._from_bta_index]
    record("sample", rel(many.sample(values, key, n_samples=3), want))

# memory: a problem whose blocks dominate (64 blocks of 48: m = 16 per device at P = 4)
pattern, bs, values = demf_like(64, 48, 2, padding=False)
rhs = np.random.default_rng(1).normal(size=pattern.n)
temp = {}
for parts in (1, 4):
    s = BTASolver(pattern, bs, devices=None if parts == 1 else Mesh(np.array(jax.devices()[:parts]), ("time",)))
    objective = lambda v, r, s=s: (lambda ld, x: ld - jnp.vdot(r, x))(*s._logdet_and_solve_impl(v, r))
    compiled = jax.jit(jax.value_and_grad(objective)).lower(values, rhs).compile()
    temp[parts] = compiled.memory_analysis().temp_size_in_bytes
record("memory_ratio", temp[4] / temp[1])
for name, err in sorted(worst.items()):
    print(name, err)
'''


def test_values_path_equals_one_device_and_shrinks_memory_on_four_devices():
    """P = 3 and 4 time partitions (uneven: padding blocks at both ends; with and without
    an arrow; padding unknowns): logdet, solve, logdet_and_solve, selected inverse, the gradients w.r.t. the
    values and the right-hand side (also with a symbolic-zero log-determinant cotangent and
    under vmap) equal the single-device solver's to 1e-10; sampling equals the BTAMatrix
    path's draws; and the compiled objective + gradient needs at P = 4 less than
    ``MEMORY_RATIO`` of P = 1's per-device temporaries."""
    here = os.path.dirname(os.path.abspath(__file__))
    out = run_on_four_devices(f"import sys; sys.path.insert(0, {here!r})\n" + SCRIPT, timeout=600)
    errs = {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}
    ratio = errs.pop("memory_ratio")
    assert set(errs) == {"logdet", "solve", "logdet_and_solve", "selected_inverse", "grad_values", "grad_rhs",
                         "grad_selected_inverse", "vmap", "sample"}, out
    assert all(err <= TOL for err in errs.values()), errs
    assert ratio < MEMORY_RATIO, f"per-device temp at P = 4 is {ratio:.2f} of P = 1's"


def test_values_kernels_on_one_partition_equal_the_solver():
    """One device, one partition (its first and last blocks are the reduced system): the
    values kernels equal the single-device solver's; bad values are named."""
    pattern, bs, values = demf_like(5, 3, 2)
    solver = BTASolver(pattern, bs)
    mesh = Mesh(np.array(jax.devices()[:1]), ("time",))
    scatter = solver._scatter
    r = np.random.default_rng(0).normal(size=solver.block_structure.size)
    ld = float(solver.logdet(values))
    assert abs(float(bd.logdet_values(values, scatter, mesh)) - ld) <= TOL * abs(ld)
    want = solver.to_bta_vector(solver.solve(values, solver.from_bta_vector(jnp.asarray(r))))
    assert np.allclose(bd.solve_values(values, solver.to_bta_vector(solver.from_bta_vector(r)), scatter, mesh), want,
                       rtol=TOL, atol=TOL * float(np.max(np.abs(want))))
    assert np.allclose(bd.selected_inverse_values(values, scatter, mesh), solver.selected_inverse(values), rtol=1e-9)
    g_want = jax.grad(solver.logdet)(jnp.asarray(values))
    g_got = jax.grad(lambda v: bd.logdet_values(v, scatter, mesh))(jnp.asarray(values))
    assert float(np.max(np.abs(g_got - g_want))) <= TOL * float(np.max(np.abs(g_want)))
    with pytest.raises(ValueError, match=r"values must have shape \(nnz,\)"):
        bd.logdet_values(values[:-1], scatter, mesh)
