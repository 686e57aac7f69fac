"""Shared test configuration: float64 on, fixed seeds, paths to ../shared."""

from __future__ import annotations

import os
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


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a clear reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs the shared reference material at {p} (../shared is absent)")
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)
