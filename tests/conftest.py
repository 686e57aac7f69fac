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


def shared_path(*parts: str) -> Path:
    """A path under ../shared, skipping the test with a clear reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs the shared reference material at {p} (../shared is absent)")
    return p


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)
