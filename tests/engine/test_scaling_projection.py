"""The arithmetic of ``benchmarks/scaling.py --project`` (issue 13: the 4-GPU time projected
from one-device timings).

Oracles: the collectives of :mod:`adelia.engine.bta_distributed` as they appear in the jaxprs
of its kernels over 2 and 4 host devices (operand shapes of every ``all_gather`` and
``psum``), and the reduced system the distributed Cholesky factor holds (its blocks are
exactly the gathered pieces, less the last partition's seam); the ring formulas by hand; the
kernel calls of one gradient counted independently from its jaxpr's kernel names.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_devices import run_on_four_devices  # noqa: E402

SCALING = Path(__file__).resolve().parents[2] / "benchmarks" / "scaling.py"


def load_scaling():
    spec = importlib.util.spec_from_file_location("scaling_benchmark", SCALING)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


scaling = load_scaling()

# In a fresh interpreter with 4 host devices: per kernel and partition count, the element
# counts of the operands of every all_gather / psum in the kernel's jaxpr, and the shapes
# of the reduced system the distributed factor holds.
COLLECTIVES_SCRIPT = """
import json
import jax.numpy as jnp
from jax.sharding import Mesh
from adelia.engine import bta, bta_distributed as bd

def collectives(closed):
    found = {"all_gather": [], "psum": []}
    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            name = eqn.primitive.name
            kind = "all_gather" if name.startswith("all_gather") else "psum" if name.startswith("psum") else None
            if kind:
                found[kind] += [int(v.aval.size) for v in eqn.invars]
            for value in eqn.params.values():
                for sub in value if isinstance(value, (list, tuple)) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(getattr(sub, "jaxpr", None), "eqns"):
                        walk(sub.jaxpr)
    walk(closed.jaxpr)
    return found

out = []
for P, (n_b, b, a, k) in [(2, (7, 3, 2, 1)), (4, (9, 2, 3, 2)), (4, (8, 3, 0, 1))]:
    mesh = Mesh(np.array(jax.devices()[:P]), ("time",))
    Q = bta.BTAMatrix(jnp.broadcast_to(4.0 * jnp.eye(b), (n_b, b, b)), -0.5 * jnp.ones((n_b - 1, b, b)) / b,
                      0.1 * jnp.ones((n_b, a, b)), 3.0 * jnp.eye(a))
    L = jax.eval_shape(lambda Q: bd.cholesky(Q, mesh), Q)
    rhs = jnp.ones((n_b * b + a, k))
    row = {"P": P, "b": b, "a": a, "k": k,
           "reduced": {f: list(getattr(L.reduced, f).shape) for f in ("diag", "lower", "arrow", "tip")},
           "cholesky": collectives(jax.make_jaxpr(lambda Q: bd.cholesky(Q, mesh))(Q)),
           "solve_from_factor": collectives(jax.make_jaxpr(bd.solve_from_factor)(L, rhs)),
           "selected_inverse_from_factor": collectives(jax.make_jaxpr(bd.selected_inverse_from_factor)(L)),
           "logdet_from_factor": collectives(jax.make_jaxpr(bd.logdet_from_factor)(L))}
    out.append(row)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def distributed_collectives():
    return json.loads(run_on_four_devices(COLLECTIVES_SCRIPT, timeout=300).strip().splitlines()[-1])


def test_collective_operands_equal_the_arrays_the_kernels_exchange(distributed_collectives):
    """Every all_gather and psum of the distributed kernels over 2 and 4 devices takes
    exactly the arrays ``collective_operands`` counts from (b, a, k)."""
    for row in distributed_collectives:
        expected = scaling.collective_operands(row["b"], row["a"], row["k"])
        for kernel in scaling.KERNELS:
            for kind in ("all_gather", "psum"):
                assert sorted(row[kernel][kind]) == sorted(expected[kernel][kind]), (row["P"], kernel, kind)


def test_gathered_pieces_are_the_reduced_system(distributed_collectives):
    """P partitions' gathered boundary pieces make up the reduced system's diagonal, lower
    and arrow blocks (the last partition's seam is dropped), the psum its tip."""
    for row in distributed_collectives:
        P, b, a = row["P"], row["b"], row["a"]
        red = row["reduced"]
        assert red["diag"] == [2 * P, b, b] and red["lower"] == [2 * P - 1, b, b] and red["arrow"] == [2 * P, a, b]
        blocks = sum(int(math.prod(red[f])) for f in ("diag", "lower", "arrow"))
        ops = scaling.collective_operands(b, a)["cholesky"]
        assert P * sum(ops["all_gather"]) - b * b == blocks
        assert ops["psum"] == [a * a] == [int(math.prod(red["tip"]))]


def test_exchanged_bytes_by_ring_formulas():
    b, a, k = 10, 3, 1
    for P in (2, 4):
        ex = scaling.exchanged(b, a, P, k)
        gather_f = 4 * b * b + 2 * a * b
        assert ex["cholesky"] == (8 * ((P - 1) * gather_f + 2 * (P - 1) / P * a * a), 7)
        assert ex["solve_from_factor"] == (8 * ((P - 1) * 2 * b * k + 2 * (P - 1) / P * a * k), 2)
        assert ex["selected_inverse_from_factor"] == (0.0, 0)
        assert ex["logdet_from_factor"] == (8 * 2 * (P - 1) / P, 1)
    assert all(v == (0.0, 0) for v in scaling.exchanged(b, a, 1).values())


def test_projection_formula_adds_the_parts():
    calls = {"cholesky": 3, "solve_from_factor": 2, "selected_inverse_from_factor": 1, "logdet_from_factor": 1}
    b, a, P = 50, 2, 4
    ex = scaling.exchanged(b, a, P)
    total_bytes = sum(calls[k] * ex[k][0] for k in scaling.KERNELS)
    collectives = sum(calls[k] * ex[k][1] for k in scaling.KERNELS)
    # 3 factorisations (7 collectives each), 2 solves (2 each), 1 log-det psum
    assert collectives == 3 * 7 + 2 * 2 + 1
    assert total_bytes == pytest.approx(8 * (3 * (3 * (4 * b * b + 2 * a * b) + 1.5 * a * a) + 2 * (3 * 2 * b + 1.5 * a) + 1.5))


def test_gradient_kernel_calls_of_a_gaussian_space_time_model():
    """One AD gradient of a Gaussian DEMF model: the Newton solve (factor + solve), the
    log-determinant (factor; its VJP the selected inverse) and the implicit-function solve
    (factor + solve)."""
    import numpy as np

    build, theta_true, _ = scaling.demf_problem(3, 20)
    model = build({"solver": "bta"})
    calls = scaling.gradient_kernel_calls(model, np.asarray(theta_true) + 0.05)
    assert calls == {"cholesky": 3, "solve_from_factor": 2, "selected_inverse_from_factor": 1, "logdet_from_factor": 1}
