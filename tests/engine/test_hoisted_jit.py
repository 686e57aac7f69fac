"""hoisted_jit: programs shared by what they compute, never by accident.

Two functions that trace to the same jaxpr share one compiled program (their data are
arguments); anything the jaxpr's text cannot show by value (a host callback, a Python
scalar baked into the trace) keeps programs apart. Oracle: the same computation in NumPy.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adelia.engine import hoisted_jit as hj
from conftest import backend_compiles


def _weighted_sum(data: np.ndarray, scale):
    return hj.hoisted_jit(lambda x: scale * jnp.sum(jnp.asarray(data) * jnp.sin(x)))


def test_same_structure_shares_one_program_with_each_functions_own_data():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=7), rng.normal(size=7)
    x = rng.normal(size=7)
    fa, fb = _weighted_sum(a, 2.0), _weighted_sum(b, 2.0)
    assert float(fa(x)) == pytest.approx(2.0 * np.sum(a * np.sin(x)), rel=1e-13)
    assert backend_compiles(lambda: fb(x)) == 0  # the program compiled for fa
    assert float(fb(x)) == pytest.approx(2.0 * np.sum(b * np.sin(x)), rel=1e-13)
    (prog_a, _, _), = fa._programs.values()
    (prog_b, _, _), = fb._programs.values()
    assert prog_a is prog_b


def test_a_python_scalar_in_the_trace_keeps_programs_apart():
    data = np.arange(1.0, 6.0)
    x = np.linspace(0.1, 0.5, 5)
    f2, f3 = _weighted_sum(data, 2.0), _weighted_sum(data, 3.0)
    assert float(f2(x)) == pytest.approx(2.0 * np.sum(data * np.sin(x)), rel=1e-13)
    assert float(f3(x)) == pytest.approx(3.0 * np.sum(data * np.sin(x)), rel=1e-13)
    (p2, _, _), = f2._programs.values()
    (p3, _, _), = f3._programs.values()
    assert p2 is not p3


def test_host_callbacks_are_never_shared_between_different_functions():
    x = np.arange(4.0)

    def with_callback(offset: float):
        def host(v):
            return np.asarray(v) + offset

        def f(v):
            return jax.pure_callback(host, jax.ShapeDtypeStruct(v.shape, v.dtype), v) * 2.0

        return hj.hoisted_jit(f)

    f1, f5 = with_callback(1.0), with_callback(5.0)
    np.testing.assert_allclose(np.asarray(f1(x)), 2.0 * (x + 1.0))
    np.testing.assert_allclose(np.asarray(f5(x)), 2.0 * (x + 5.0))
    key1, anchors1 = hj.program_fingerprint(jax.make_jaxpr(f1.fun)(x), jax.tree.structure(0))
    key5, _ = hj.program_fingerprint(jax.make_jaxpr(f5.fun)(x), jax.tree.structure(0))
    assert key1[0] == key5[0]  # the same text ...
    assert key1 != key5  # ... but not the same callback
    assert anchors1  # the callback is kept alive with the key


def test_constants_of_an_inner_jit_are_keyed_by_value():
    # an inner jax.jit closing over a NumPy index map (as BTASolver's methods do) keeps the map
    # as a constant of its sub-jaxpr, a new object at every trace: two models with equal maps
    # share one program, different maps do not
    def model(index: np.ndarray):
        inner = jax.jit(lambda v: v[index] * 3.0)
        return hj.hoisted_jit(lambda x: jnp.sum(inner(x) ** 2))

    x = np.linspace(0.0, 1.0, 6) + 0.123  # values no other test uses
    first, same, other = model(np.array([5, 1, 2])), model(np.array([5, 1, 2])), model(np.array([0, 1, 2]))
    assert float(first(x)) == pytest.approx(9.0 * np.sum(x[[5, 1, 2]] ** 2), rel=1e-14)
    assert backend_compiles(lambda: same(x)) == 0
    assert float(same(x)) == float(first(x))
    assert float(other(x)) == pytest.approx(9.0 * np.sum(x[[0, 1, 2]] ** 2), rel=1e-14)
    (p1, _, _), = first._programs.values()
    (p2, _, _), = same._programs.values()
    (p3, _, _), = other._programs.values()
    assert p1 is p2 and p1 is not p3


def test_weak_types_are_part_of_the_key():
    data = np.ones(3)
    f = _weighted_sum(data, 1.0)
    strong = f(np.zeros(3))
    weak = f(jnp.zeros(3) + 0.0)  # float64, not weak
    assert float(strong) == float(weak) == 0.0
    closed = jax.make_jaxpr(lambda s: s * 2.0)(1.0)  # a weakly typed Python scalar input
    closed_strong = jax.make_jaxpr(lambda s: s * 2.0)(np.float64(1.0))
    assert hj.program_fingerprint(closed, None)[0] != hj.program_fingerprint(closed_strong, None)[0]


def test_precompile_compiles_once_and_the_call_runs_it():
    data = np.arange(1.0, 9.0) ** 2
    f = hj.hoisted_jit(lambda x: jnp.cumsum(jnp.asarray(data) * x) / 7.5)  # a shape no other test uses
    x = np.linspace(0.0, 1.0, 8)
    thread = threading.Thread(target=f.precompile, args=(x,))
    thread.start()
    thread.join()
    assert backend_compiles(lambda: f(x)) == 0
    np.testing.assert_allclose(np.asarray(f(x)), np.cumsum(data * x) / 7.5, rtol=1e-14)


def test_the_shared_table_is_bounded(monkeypatch):
    monkeypatch.setattr(hj, "MAX_SHARED_PROGRAMS", 2)
    monkeypatch.setattr(hj, "_shared_programs", type(hj._shared_programs)())
    fs = [_weighted_sum(np.ones(2), float(k)) for k in range(4)]
    for k, f in enumerate(fs):
        assert float(f(np.full(2, np.pi / 2))) == pytest.approx(2.0 * k)
    assert len(hj._shared_programs) == 2
