"""``summary()`` says which marginal likelihood it prints, and ``res.mlik`` carries R-INLA's
row names (issue 14)."""

from __future__ import annotations

import adelia
from adelia.printing import MLIK_NOTE, mlik_line

ROWS = ["log marginal-likelihood (integration)", "log marginal-likelihood (Gaussian)"]


def test_mlik_rows_are_rinla_names_and_summary_labels_the_estimate():
    df = adelia.datasets.load("Seeds")
    res = adelia.inla("r ~ x1 + x2", df, family="binomial", Ntrials="n")
    assert list(res.mlik.index) == ROWS
    assert res.mlik.loc["log marginal-likelihood (Gaussian)"] == res.mlik.iloc[1]
    lines = str(res.summary()).splitlines()
    # R-INLA's line, verbatim (the text comparison with summary.txt), then adelia's note
    i = lines.index(mlik_line(res.mlik.iloc[1]))
    assert lines[i + 1] == MLIK_NOTE
    assert "Gaussian" in MLIK_NOTE and "res.mlik" in MLIK_NOTE
