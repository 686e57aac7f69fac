"""Small data sets shipped with adelia: ``adelia.datasets.load("Seeds")``."""

from __future__ import annotations

from importlib import resources

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
    with resources.files("adelia.data").joinpath(_FILES[name]).open("r") as fh:
        return pd.read_csv(fh)
