"""``print(res.summary())``: R-INLA's ``summary(inla_result)`` layout.

The text follows R-INLA's ``print.summary.inla`` (``rinla/R/summary.R``) and R's number
formatting, so that output can be compared with R-INLA's line by line:

* "Time used": ``format(cpu.used, digits=3)`` per value;
* "Fixed effects": the table rounded to 3 decimals and printed as R prints a matrix (each
  column with the fewest decimals that show every rounded value);
* "Linear combinations (derived):" / "Linear combinations:": as the fixed effects, ID
  column included;
* "Random effects": the f() terms and their model names ("IID model", "RW2 model", ...);
* "Model hyperparameters": rounded to 3 decimals, then ``format(digits=3, nsmall=2)``;
* DIC and WAIC when computed, "Marginal log-Likelihood" (R prints the Gaussian estimate),
  which of CPO/PIT/PO were computed and whether predictor summaries exist.

Tables wider than 80 characters wrap column-wise as R wraps them. Deliberate differences:
no "Call:" block and no line about R's ``return.marginals.predictor``; adelia's warnings
are appended.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: R-INLA's model names in the "Random effects" block (R-INLA's ``model.random``).
MODEL_NAMES = {
    "iid": "IID model",
    "rw1": "RW1 model",
    "rw2": "RW2 model",
    "ar1": "AR1 model",
    "ar": "AR(p) model",
    "besag": "Besags ICAR model",
    "besagproper": "Proper version of Besags ICAR model",
    "rw2d": "Random walk 2D",
    "bym": "BYM model",
    "bym2": "BYM2 model",
    "seasonal": "Seasonal model",
    "generic0": "Generic0 model",
    "generic": "Generic0 model",
    "generic1": "Generic1 model",
    "linear": "Linear model",
    "spde2": "SPDE2 model",
    "copy": "Copy",
    "iid2d": "IID2D model",
    "iid3d": "IID3D model",
    "iid4d": "IID4D model",
    "iid5d": "IID5D model",
    "z": "Z model",
    "ou": "Ornstein-Uhlenbeck model",
}

LINE_WIDTH = 80


# ----------------------------------------------------------------------------------------------
# R's number formatting
# ----------------------------------------------------------------------------------------------
def _significance(x: float, digits: int) -> tuple[int, int]:
    """(decimal exponent, significant digits needed) of x shown with ``digits`` significant
    digits, trailing zeros dropped (R's ``scientific()`` in format.c)."""
    if x == 0 or not math.isfinite(x):
        return 0, 1
    mantissa, exponent = f"{abs(x):.{digits - 1}e}".split("e")
    sig = mantissa.replace(".", "").rstrip("0")
    return int(exponent), max(len(sig), 1)


def format_column(values, digits: int = 7, nsmall: int = 0) -> list[str]:
    """R's ``format(values, digits=, nsmall=)`` of a numeric vector: a common number of
    decimals (the fewest that show every value to ``digits`` significant digits, at least
    ``nsmall``), or scientific notation when that is narrower (R's ``scipen = 0`` rule).

    Example:
        >>> format_column([-0.428, -0.278, 1.066], digits=7)
        ['-0.428', '-0.278', '1.066']
        >>> format_column([6.269, 0.724], digits=3, nsmall=2)
        ['6.269', '0.724']
    """
    vals = np.asarray(values, dtype=float).ravel() + 0.0  # -0.0 prints as 0
    finite = vals[np.isfinite(vals)]
    if finite.size == 0:
        return ["NaN" if np.isnan(v) else ("Inf" if v > 0 else "-Inf") for v in vals]
    info = [_significance(float(v), digits) for v in finite]
    rgt = max(0, max(sig - kp - 1 for kp, sig in info))
    left = max(max(kp + 1, 1) for kp, _ in info)
    neg = int(np.any(finite < 0))
    fixed_width = neg + left + (rgt + 1 if rgt else 0)
    max_sig = max(sig for _, sig in info)
    exp_width = 4 if max(abs(kp) for kp, _ in info) < 100 else 5
    sci_width = neg + (max_sig + 1 if max_sig > 1 else max_sig) + exp_width
    out = []
    for v in vals:
        if not np.isfinite(v):
            out.append("NaN" if np.isnan(v) else ("Inf" if v > 0 else "-Inf"))
        elif fixed_width > sci_width:
            out.append(f"{v:.{max_sig - 1}e}")
        else:
            out.append(f"{v:.{max(rgt, nsmall)}f}")
    return out


def format_number(x: float, digits: int = 3, nsmall: int = 0) -> str:
    """R's ``format(x, digits=, nsmall=)`` of one number (e.g. ``format(0.0301, digits=3)``)."""
    return format_column([x], digits=digits, nsmall=nsmall)[0]


def format_table(columns: dict[str, list[str]], index: list[str], width: int = LINE_WIDTH) -> str:
    """A table of preformatted cells as R prints a matrix: row names left-aligned, cells and
    headers right-aligned, one space between columns, column blocks wrapped so that every line
    stays shorter than ``width`` (R's printMatrix with ``options(width=80)``)."""
    names = list(columns)
    rw = max((len(str(r)) for r in index), default=0)
    widths = {c: max([len(c)] + [len(s) for s in columns[c]]) for c in names}
    blocks, current, used = [], [], rw
    for c in names:
        if current and used + 1 + widths[c] >= width:  # R: a line stays shorter than the width
            blocks.append(current)
            current, used = [], rw
        current.append(c)
        used += 1 + widths[c]
    if current:
        blocks.append(current)
    lines = []
    for block in blocks:
        lines.append(" " * rw + "".join(" " + c.rjust(widths[c]) for c in block))
        for i, r in enumerate(index):
            lines.append(str(r).ljust(rw) + "".join(" " + columns[c][i].rjust(widths[c]) for c in block))
    return "\n".join(lines)


def _numeric_table(df: pd.DataFrame, digits: int, print_digits: int, nsmall: int) -> str:
    """round(df, digits), then each column formatted as R formats it."""
    cols = {str(c): format_column(np.round(df[c].to_numpy(dtype=float), digits), digits=print_digits, nsmall=nsmall) for c in df.columns}
    return format_table(cols, [str(i) for i in df.index])


# ----------------------------------------------------------------------------------------------
# the blocks of the summary (each a list of lines)
# ----------------------------------------------------------------------------------------------
def time_block(cpu_used: pd.Series, digits: int = 3) -> list[str]:
    """ "Time used:" and ``Pre = ..., Running = ..., Post = ..., Total = ...`` (R's cat layout)."""
    text = ", ".join(f"{k} = {format_number(float(v), digits)}" for k, v in cpu_used.items())
    return ["Time used:", "    " + text + " "]


def fixed_block(summary_fixed: pd.DataFrame | None, digits: int = 3) -> list[str]:
    """ "Fixed effects:": round(table, digits), printed as R prints a numeric matrix."""
    if summary_fixed is None or len(summary_fixed) == 0:
        return []
    return ["Fixed effects:", _numeric_table(summary_fixed, digits, 7, 0), ""]


def lincomb_block(summary_lincomb: pd.DataFrame | None, derived: bool = True, digits: int = 3) -> list[str]:
    """ "Linear combinations (derived):" (``summary_lincomb_derived``), printed after the fixed
    effects: round(table, digits) with its ID column, printed as R prints a numeric matrix
    (R-INLA's ``print.summary.inla``). ``derived=False`` gives the heading R-INLA kept for the
    ``summary.lincomb`` of fits made before ``lincomb.derived.only`` was disabled (20.08.02)."""
    if summary_lincomb is None or len(summary_lincomb) == 0:
        return []
    head = "Linear combinations (derived):" if derived else "Linear combinations:"
    return [head, _numeric_table(summary_lincomb, digits, 7, 0), ""]


def random_block(terms: list[tuple[str, str]]) -> list[str]:
    """ "Random effects:" with (label, model name) per f() term."""
    if not terms:
        return []
    return ["Random effects:", "  Name\t  Model", *[f"    {label} {model}" for label, model in terms], ""]


def hyperpar_block(summary_hyperpar: pd.DataFrame | None, digits: int = 3) -> list[str]:
    """ "Model hyperparameters:": round(table, digits), then format(digits=, nsmall=2)."""
    if summary_hyperpar is None or len(summary_hyperpar) == 0:
        return []
    return ["Model hyperparameters:", _numeric_table(summary_hyperpar, digits, digits, 2), ""]


def criteria_block(dic: dict | None, waic: dict | None, digits: int = 3) -> list[str]:
    """The DIC and WAIC lines (values rounded, then format(digits=, nsmall=2))."""
    fmt = lambda v: format_number(round(float(v), digits), digits, nsmall=2)
    lines = []
    if dic:
        lines.append(f"Deviance Information Criterion (DIC) ...............: {fmt(dic['dic'])}")
        if dic.get("dic.sat") is not None:
            lines.append(f"Deviance Information Criterion (DIC, saturated) ....: {fmt(dic['dic.sat'])}")
        lines += [f"Effective number of parameters .....................: {fmt(dic['p.eff'])}", ""]
    if waic:
        lines += [
            f"Watanabe-Akaike information criterion (WAIC) ...: {fmt(waic['waic'])}",
            f"Effective number of parameters .................: {fmt(waic['p.eff'])}",
            "",
        ]
    return lines


# adelia's own line after R-INLA's "Marginal log-Likelihood:" (kept verbatim, as R prints it):
# it says which of res.mlik's two estimates that line shows.
MLIK_NOTE = "    (the Gaussian-approximation estimate; res.mlik has both)"


def mlik_line(log_mlik_gaussian: float, digits: int = 3) -> str:
    """R prints the second row of ``mlik`` (the Gaussian estimate)."""
    return f"Marginal log-Likelihood:  {format_number(round(float(log_mlik_gaussian), digits), digits, nsmall=2)} "


def model_name(model_name: str) -> str:
    """R-INLA's display name of a latent model ("IID model" for "iid")."""
    return MODEL_NAMES.get(model_name, f"{model_name} model")


class InlaSummary:
    """The printable summary of an :class:`~adelia.results.InlaResult` (``print(res.summary())``).

    Example:
        >>> print(res.summary())      # doctest: +SKIP
        Time used:
            Pre = 0.246, Running = 0.314, Post = 0.0301, Total = 0.591
        Fixed effects:
                      mean    sd 0.025quant 0.5quant 0.975quant   mode kld
        (Intercept) -0.428 0.120     -0.660   -0.429     -0.191 -0.429   0
        ...
    """

    def __init__(self, result, digits: int = 3):
        self.result = result
        self.digits = int(digits)

    def lines(self) -> list[str]:
        r, d = self.result, self.digits
        g = r.model.graph
        terms = [(c.label, model_name(c.model.model_name)) for c in g.components]
        terms += [(c.label, MODEL_NAMES["copy"]) for c in g.copies]
        crit = r.posterior.criteria or {}
        out = time_block(r.cpu_used, d) + fixed_block(r.summary_fixed, d)
        out += lincomb_block(r.summary_lincomb_derived, True, d)
        out += random_block(terms)
        out += hyperpar_block(r.summary_hyperpar, d) + criteria_block(crit.get("dic"), crit.get("waic"), d)
        out.append(mlik_line(r.mlik.iloc[1], d))
        out.append(MLIK_NOTE)
        computed = [name for key, name in (("cpo", "CPO, PIT"), ("po", "PO")) if crit.get(key)]
        if computed:
            out.append(f"{', '.join(computed)} is computed ")
        if r.summary_linear_predictor is not None:
            out.append("Posterior summaries for the linear predictor and the fitted values are computed")
        out += [f"Warning: {w}" for w in r.posterior.warnings]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)
