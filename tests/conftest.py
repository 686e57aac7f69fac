"""Shared test configuration: float64 on, fixed seeds, paths to ../shared."""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import adelia  # noqa: F401  (enables float64 before any test traces)

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
if os.environ.get("ADELIA_SHARED"):
    SHARED = Path(os.environ["ADELIA_SHARED"])


#: reference cases (the second batch of ../shared/reference/rinla) that need a feature adelia
#: does not have yet: tests walking every case mark them strict xfail with this reason, and
#: the entry goes when the feature lands
MISSING_FEATURE = {
}


def reference_case_params(cases, affected=lambda case: True) -> list:
    """``cases`` as pytest parameters, those of :data:`MISSING_FEATURE` (for which
    ``affected(case)`` holds) marked strict xfail naming the missing feature."""
    return [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=f"needs {MISSING_FEATURE[c]}"))
            if c in MISSING_FEATURE and affected(c) else c for c in cases]


def backend_compiles(fn) -> int:
    """Number of XLA compilations (or persistent-cache loads) while running ``fn`` (JAX's
    monitoring events)."""
    import threading

    import jax

    events: list[str] = []
    lock = threading.Lock()

    def listener(event: str, duration: float, **kw) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            with lock:
                events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        fn()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return len(events)


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a clear reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs the shared reference material at {p} (../shared is absent)")
    return p


_RINLA_COMPARE: list = []


def rinla_compare():
    """../shared/tools/rinla_compare.py as a module, loaded once (skips when ../shared is absent)."""
    if not _RINLA_COMPARE:
        spec = importlib.util.spec_from_file_location("rinla_compare", shared_path("tools", "rinla_compare.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _RINLA_COMPARE.append(module)
    return _RINLA_COMPARE[0]


def reference_call(case: str, kind: str = "rinla"):
    """A case of ../shared/reference/<kind>: (rinla_compare, (formula, data, kwargs) of
    adelia's call as an R-INLA user writes it, R-INLA's results, the case's spec)."""
    rc = rinla_compare()
    folder = shared_path("reference", kind, case)
    spec = json.loads((folder / "spec.json").read_text())
    ref = json.loads((folder / "results.json").read_text())
    return rc, rc.build_call(folder, spec), ref, spec


def fit_reference_case(case: str, kind: str = "rinla"):
    """A reference case fitted by adelia: (rinla_compare, the fit, R-INLA's results, spec)."""
    rc, (formula, data, kw), ref, spec = reference_call(case, kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = adelia.inla(formula, data=data, **kw)
    return rc, res, ref, spec


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)
