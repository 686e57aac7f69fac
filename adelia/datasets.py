"""Small data sets shipped with adelia: ``adelia.datasets.load("Seeds")``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

from .errors import DataError, unknown_choice

_FILES = {"Seeds": "seeds.csv"}


def available() -> list[str]:
    """Names of the shipped data sets."""
    return sorted(_FILES)


def load(name: str) -> pd.DataFrame:
    """A shipped data set as a DataFrame.

    Example:
        >>> load("Seeds").shape
        (21, 5)
    """
    if name not in _FILES:
        raise DataError(unknown_choice("data set", name, _FILES))
    return pd.read_csv(_location() / _FILES[name])


def _location() -> Path:
    """The shipped files: the installed package ``adelia.data`` (the repository's
    ``datasets/`` folder), or that folder itself when adelia runs from a source checkout."""
    try:
        return Path(str(resources.files("adelia.data")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[1] / "datasets"
