"""The left-hand side of a formula when it is a survival object: ``inla.surv(time, event)``.

R-INLA's survival families take their response from ``inla.surv(time, event, time2,
truncation)`` written on the left of ``~``. This module reads that call with the R parser
(:mod:`adelia.formula.rsyntax`) and returns each argument's expression text, to be
evaluated on the data like any other column expression; argument names are checked
against ``inla.surv``'s, so nothing but those four can come out of the text.

Example:
    >>> survival_response("inla.surv(time, event)")
    {'time': 'time', 'event': 'event'}
    >>> survival_response("y") is None
    True
"""

from __future__ import annotations

from ..errors import FormulaError, did_you_mean
from .rsyntax import BinOp, Call, Name, located, parse_r

#: inla.surv's arguments, in R's positional order
SURV_ARGUMENTS = ("time", "event", "time2", "truncation")
_SURV_NAMES = ("inla.surv", "inla_surv")


def _surv_call(node) -> Call | None:
    if not isinstance(node, Call):
        return None
    func = node.func
    if isinstance(func, BinOp) and func.op == "::" and isinstance(func.right, Name):
        func = func.right  # INLA::inla.surv(...)
    return node if isinstance(func, Name) and func.id in _SURV_NAMES else None


def survival_response(response: str | None) -> dict[str, str] | None:
    """The arguments of an ``inla.surv(...)`` response as {name: expression text}, or None
    when the response is not such a call.

    Raises:
        FormulaError: an argument ``inla.surv`` does not have (listing those it has), too many
            unnamed arguments, an argument given twice, or no ``time``.
    """
    if not response:
        return None
    call = _surv_call(parse_r(response))
    if call is None:
        return None
    out: dict[str, str] = {}
    positional = iter(SURV_ARGUMENTS)
    for arg in call.args:
        if arg.name is None:
            name = next((p for p in positional if p not in out), None)
            if name is None:
                raise FormulaError(located(
                    f"inla.surv() takes at most {len(SURV_ARGUMENTS)} arguments "
                    f"({', '.join(SURV_ARGUMENTS)})", response, arg.start))
        else:
            name = arg.name
            if name not in SURV_ARGUMENTS:
                raise FormulaError(located(
                    f'inla.surv() has no argument "{name}".{did_you_mean(name, SURV_ARGUMENTS)} '
                    f"Its arguments: {', '.join(SURV_ARGUMENTS)}", response, arg.start))
        if name in out:
            raise FormulaError(located(f'inla.surv(): the argument "{name}" is given twice',
                                       response, arg.start))
        out[name] = response[arg.value.start:arg.value.end]
    if "time" not in out:
        raise FormulaError(located("inla.surv() needs the event or censoring times as its first "
                                   "argument, e.g. inla.surv(time, event)", response, call.start))
    return out
