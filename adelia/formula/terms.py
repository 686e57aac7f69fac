"""R's formula algebra: which terms a fixed-effects formula has, and how factors are coded.

A term is a set of variables (``x1``, ``I(x1 * x2)``, ``as.factor(g)``); ``a:b`` is the
term {a, b}. This module follows R's ``terms.formula`` (``src/library/stats/src/model.c``):

* ``a + b`` appends, ``a - b`` removes, ``a:b`` forms all pairwise unions,
  ``a*b = a + b + a:b``, ``a/b = a + (all of a):b``, ``a %in% b = a:(all of b)``,
  ``(a + b)^n`` all products up to order n; ``1``/``0`` (and ``-1``/``-0``) set the intercept;
  repeated terms are dropped.
* Variables are identified by R's deparsed text (so ``I(x1*x2)`` and ``I(x1 * x2)`` are
  one variable) and numbered by first appearance; a term's label lists its variables in
  that order joined by ``:``.
* Terms are sorted by order (main effects, then two-way interactions, ...), stably.
* R-INLA first expands the whole formula, then rebuilds ``y ~ <term labels> + 1`` and
  expands that again for ``model.matrix`` (``inla.interpret.formula``); variables are
  therefore renumbered by their first appearance in the sorted term labels.
  ``y ~ a:b + b`` gives the terms ``b`` and ``b:a`` in R-INLA (``a:b`` in plain R).

:func:`term_codes` is R's ``TermCode`` heuristic (Chambers & Hastie 1992, *Statistical
Models in S*, p. 38): a factor in a term is coded by contrasts when the term without it
is empty or contained in an earlier term, otherwise by indicator columns for all levels;
without an intercept the first factor of the first term holding a factor gets all levels
(R's ``modelmatrix``).

Example:
    >>> t = expand_terms(parse_r("1 + a*b"))
    >>> [t.label(k) for k in range(len(t.terms))], t.intercept
    (['a', 'b', 'a:b'], True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import FormulaError
from .allowed import nesting_guard
from .rsyntax import BinOp, Name, Node, Num, Paren, UnaryOp, deparse, located, parse_r

Term = frozenset  # of variable indices

#: formula operators; everything else is a variable
_FORMULA_OPS = {"+", "-", ":", "*", "/", "^", "%in%"}


@dataclass(frozen=True)
class Terms:
    """The expanded fixed-effects formula.

    Attributes:
        variables: the variables' syntax trees, in R's variable order.
        labels: their deparsed text (R's variable names).
        terms: each term as a sorted tuple of variable indices, in R's term order.
        intercept: whether the model has an intercept.
    """

    variables: tuple[Node, ...]
    labels: tuple[str, ...]
    terms: tuple[tuple[int, ...], ...]
    intercept: bool

    def label(self, k: int) -> str:
        """R's label of term ``k`` (``"x1:x2"``)."""
        return ":".join(self.labels[i] for i in self.terms[k])


class _Encoder:
    """R's EncodeVars on our syntax tree."""

    def __init__(self, source: str):
        self.source = source
        self.variables: list[Node] = []
        self.labels: list[str] = []
        self.index: dict[str, int] = {}
        self.intercept = True
        self.parity = True  # flipped on the right of '-' (R's parity)

    def var(self, node: Node) -> int:
        label = deparse(node)
        if label not in self.index:
            self.index[label] = len(self.variables)
            self.variables.append(node)
            self.labels.append(label)
        return self.index[label]

    def encode(self, node: Node) -> list[Term]:
        if isinstance(node, Num) and node.value in (0, 1):
            # 1 adds the intercept and 0 removes it; the other way round under '-'
            self.intercept = (node.value == 1) == self.parity
            return []
        if isinstance(node, Paren):
            return self.encode(node.inner)
        if isinstance(node, UnaryOp) and node.op == "-":
            return self.delete([], node.operand)
        if isinstance(node, UnaryOp) and node.op == "+":
            return self.encode(node.operand)
        if isinstance(node, BinOp) and node.op in ("+", "-"):
            return self.sum_chain(node)
        if isinstance(node, BinOp) and node.op in _FORMULA_OPS:
            op = node.op
            if op == "-":
                return self.delete(self.encode(node.left), node.right)
            left = self.encode(node.left)
            if op == "^":
                return self.power(left, node)
            right = self.encode(node.right)
            if op == "+":
                return _trim(left + right)
            if op == ":":
                return _interact(left, right)
            if op == "*":
                return _trim(left + right + _interact(left, right))
            if op == "/":
                all_left = frozenset().union(*left) if left else frozenset()
                return _trim(left + [all_left | t for t in right])
            if op == "%in%":
                all_right = frozenset().union(*right) if right else frozenset()
                return _trim([t | all_right for t in left])
        if isinstance(node, Num):
            raise FormulaError(located(
                f"the number {node.text} cannot be a term of the fixed effects (only 1 or 0 for "
                "the intercept); wrap arithmetic in I(...)", self.source, node.start))
        if isinstance(node, Name) and node.id == ".":
            raise FormulaError(located("'.' (all other columns) is not supported in adelia "
                                       "formulas; list the covariates", self.source, node.start))
        return [frozenset({self.var(node)})]

    def sum_chain(self, node: BinOp) -> list[Term]:
        """``a + b - c + ...`` folded left to right, without recursing down the chain: a
        formula of thousands of terms is a left-leaning tree that deep."""
        chain: list[tuple[str, Node]] = []
        first: Node = node
        while isinstance(first, BinOp) and first.op in ("+", "-"):
            chain.append((first.op, first.right))
            first = first.left
        terms = self.encode(first)
        for op, right in reversed(chain):
            terms = _trim(terms + self.encode(right)) if op == "+" else self.delete(terms, right)
        return terms

    def delete(self, left: list[Term], right_node: Node) -> list[Term]:
        self.parity = not self.parity
        right = self.encode(right_node)
        self.parity = not self.parity
        return [t for t in left if t not in set(right)]

    def power(self, left: list[Term], node: BinOp) -> list[Term]:
        exponent = node.right
        if isinstance(exponent, Paren):
            exponent = exponent.inner
        if not (isinstance(exponent, Num) and float(exponent.value).is_integer() and exponent.value >= 1):
            raise FormulaError(located(
                "the power of terms (a + b)^n needs a whole number n >= 1; for the power of a "
                "number write I(x^2)", self.source, node.right.start))
        result = left
        for _ in range(min(int(exponent.value), len(self.variables) + 1) - 1):
            # beyond the number of variables the products cannot grow: (a + b)^1e9 = (a + b)^2
            result = _trim([lt | rt for lt in left for rt in result])
        return result


def _trim(terms: list[Term]) -> list[Term]:
    """R's TrimRepeats: drop empty and repeated terms, keep the first occurrence."""
    out: list[Term] = []
    seen: set[Term] = set()
    for t in terms:
        if t and t not in seen:
            seen.add(t)
            out.append(t)
    return out


def _interact(left: list[Term], right: list[Term]) -> list[Term]:
    return _trim([lt | rt for lt in left for rt in right])


def expand_terms(node: Node, source: str | None = None) -> Terms:
    """Expand the right-hand side of a fixed-effects formula as R-INLA does.

    Args:
        node: the parsed right-hand side (e.g. of ``"1 + x1 * x2"``).
        source: the text ``node`` was parsed from, for error messages.

    Example:
        >>> t = expand_terms(parse_r("0 + (a + b + c)^2"))
        >>> [t.label(k) for k in range(len(t.terms))]
        ['a', 'b', 'c', 'a:b', 'a:c', 'b:c']
    """
    enc = _Encoder(source if source is not None else deparse(node))
    found = enc.encode(node)
    ordered = _by_order(found)
    # R-INLA's second pass: variables renumbered by first appearance in the term labels
    new_index: dict[int, int] = {}
    for t in ordered:
        for v in sorted(t):
            new_index.setdefault(v, len(new_index))
    old = sorted(new_index, key=new_index.get)
    terms = tuple(tuple(sorted(new_index[v] for v in t)) for t in ordered)
    return Terms(variables=tuple(enc.variables[v] for v in old),
                 labels=tuple(enc.labels[v] for v in old),
                 terms=_sort_terms(terms), intercept=enc.intercept)


def _by_order(terms: list[Term]) -> list[Term]:
    return sorted(terms, key=len)  # stable: formula order within an order


def _sort_terms(terms: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    return tuple(sorted(terms, key=len))


def term_codes(terms: Terms, is_factor: Callable[[int], bool]) -> list[dict[int, int]]:
    """R's coding of each variable in each term: 1 = contrasts, 2 = all levels.

    Args:
        terms: the expanded formula.
        is_factor: whether variable ``i`` is a factor (or logical) in the data.

    Returns:
        One dict per term, variable index -> 1 or 2 (numeric variables get 1; it is unused).

    Example:
        >>> t = expand_terms(parse_r("1 + a:b"))
        >>> term_codes(t, lambda i: True)   # neither a nor b is a main effect: all levels
        [{0: 2, 1: 2}]
    """
    codes: list[dict[int, int]] = []
    sets = [frozenset(t) for t in terms.terms]
    for k, term in enumerate(sets):
        code: dict[int, int] = {}
        for v in terms.terms[k]:
            rest = term - {v}
            if not rest or any(rest <= earlier for earlier in sets[:k]):
                code[v] = 1
            else:
                code[v] = 2
        codes.append(code)
    if not terms.intercept:
        for k, term in enumerate(terms.terms):
            hit = next((v for v in term if is_factor(v)), None)
            if hit is not None:
                codes[k][hit] = 2
                break
    return codes


def parse_fixed(fixed: str) -> Terms:
    """:func:`expand_terms` of a fixed-part text such as ``"1 + x1 + I(x1*x2)"``."""
    with nesting_guard(fixed):
        return expand_terms(parse_r(fixed), fixed)
