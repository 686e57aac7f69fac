"""``print(res.summary())``: R-INLA's ``summary(inla_result)`` layout."""

from __future__ import annotations

import pandas as pd

_MODEL_NAMES = {
    "iid": "IID model", "rw1": "Random walk of order 1", "rw2": "Random walk of order 2",
    "ar1": "AR1 model", "ar": "AR(p) model", "besag": "Besags ICAR model", "bym": "BYM model",
    "bym2": "BYM2 model", "seasonal": "Seasonal model", "generic0": "Generic0 model",
    "generic1": "Generic1 model", "linear": "Linear model", "copy": "Copy",
}


def _fmt(df: pd.DataFrame, digits: int = 3) -> str:
    return df.to_string(float_format=lambda v: f"{v:.{digits}f}" if abs(v) < 1e5 else f"{v:.{digits}g}")


class InlaSummary:
    """The printable summary of an :class:`~adelia.results.InlaResult`."""

    def __init__(self, result, digits: int = 3):
        self.result = result
        self.digits = digits

    def __str__(self) -> str:
        r = self.result
        cpu = r.cpu_used
        lines = ["Time used:", "    " + ", ".join(f"{k} = {v:.3g}" for k, v in cpu.items())]
        if len(r.summary_fixed):
            sf = r.summary_fixed.copy()
            lines += ["Fixed effects:", _fmt(sf, self.digits), ""]
        comps = list(r.model.graph.components) + list(r.model.graph.copies)
        if comps:
            lines.append("Random effects:")
            lines.append("  Name\t  Model")
            for c in r.model.graph.components:
                lines.append(f"    {c.label} {_MODEL_NAMES.get(c.model.model_name, c.model.model_name)}")
            for c in r.model.graph.copies:
                lines.append(f"    {c.label} Copy")
            lines.append("")
        if len(r.summary_hyperpar):
            lines += ["Model hyperparameters:", _fmt(r.summary_hyperpar, self.digits), ""]
        crit = r.posterior.criteria
        if crit.get("dic"):
            d = crit["dic"]
            lines.append(f"Deviance Information Criterion (DIC) ...............: {d['dic']:.2f}")
            lines.append(f"Effective number of parameters .....................: {d['p.eff']:.2f}")
            lines.append("")
        if crit.get("waic"):
            w = crit["waic"]
            lines.append(f"Watanabe-Akaike information criterion (WAIC) ...: {w['waic']:.2f}")
            lines.append(f"Effective number of parameters .................: {w['p.eff']:.2f}")
            lines.append("")
        lines.append(f"Marginal log-Likelihood:  {r.mlik.iloc[1]:.2f} ")
        if r.summary_linear_predictor is not None:
            lines.append("Posterior summaries for the linear predictor and the fitted values are computed")
        for w in r.posterior.warnings:
            lines.append(f"Warning: {w}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
