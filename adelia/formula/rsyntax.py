"""R expressions as a small syntax tree: tokenizer, parser and R's own deparse.

R-INLA formulas are R code. This module reads the subset that formulas and their
arguments use -- names (with dots: ``birth.year``), numbers, strings, calls with named
arguments, R's operators with R's precedence (``?Syntax``) -- plus the Python spellings a
Python user may type inside ``f()`` (``True``, ``None``, ``[1, 2]``, ``{"prec": ...}``,
``(1, 2)``, ``**``). Every node carries its ``start``/``end`` offsets in the text it was
read from, so errors can point at the exact place in the user's formula.

:func:`deparse` writes a node back the way R's ``deparse()`` does, because R (and so
R-INLA) names model-matrix columns by the deparsed expression: spaces around ``+ - * ~``,
comparisons, ``&``/``|`` and ``%op%`` operators, none around ``/ ^ : %% %/% $ @``
(``PP_BINARY`` vs ``PP_BINARY2`` in R's ``src/main/names.c``); ``", "`` between call
arguments and ``" = "`` for named ones; numbers with up to 15 significant digits in
fixed or scientific notation, whichever is shorter (R's ``formatReal``); strings in
double quotes. So ``I(x1*x2)`` becomes ``"I(x1 * x2)"`` and ``I(X/10)`` stays ``"I(X/10)"``.

Example:
    >>> deparse(parse_r("I(exposed*(birth.year^2-22))"))
    'I(exposed * (birth.year^2 - 22))'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Union

from ..errors import FormulaSyntaxError

# ---------------------------------------------------------------------------------------
# syntax tree


@dataclass(frozen=True)
class Num:
    value: Union[int, float]
    text: str
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    integer: bool = False  # R's 1L


@dataclass(frozen=True)
class Str:
    value: str
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Name:
    id: str
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Arg:
    """One call argument: ``value`` or ``name = value``."""

    name: str | None
    value: "Node"
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Call:
    func: "Node"
    args: tuple[Arg, ...]
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)

    @property
    def fname(self) -> str | None:
        """The called function's name when it is a plain name (``log`` in ``log(x)``)."""
        return self.func.id if isinstance(self.func, Name) else None


@dataclass(frozen=True)
class BinOp:
    op: str
    left: "Node"
    right: "Node"
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class UnaryOp:
    op: str
    operand: "Node"
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Paren:
    """R's explicit ``( ... )``: kept, because deparse keeps it."""

    inner: "Node"
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Index:
    """``x[i]`` (R, 1-based) or ``x[[i]]``."""

    obj: "Node"
    args: tuple[Arg, ...]
    double: bool = False
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class PyList:
    items: tuple["Node", ...]
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class PyTuple:
    items: tuple["Node", ...]
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class PyDict:
    items: tuple[tuple["Node", "Node"], ...]
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


Node = Union[Num, Str, Name, Call, BinOp, UnaryOp, Paren, Index, PyList, PyTuple, PyDict]

# ---------------------------------------------------------------------------------------
# tokens


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "str", "name", "op", "end"
    text: str
    start: int
    end: int
    value: Any = None


# longest first, so that "<=" wins over "<"
_OPERATORS = (
    ":::", "::", "<<-", "->>", "<-", "->", "<=", ">=", "==", "!=", "&&", "||", "**", "|>",
    "+", "-", "*", "/", "^", "<", ">", "!", "&", "|", "~", "?", ":", "=", "$", "@",
    "(", ")", "[", "]", "{", "}", ",",
)
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+L?|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "\\": "\\", '"': '"', "'": "'",
            "a": "\a", "b": "\b", "f": "\f", "v": "\v", "`": "`"}


_DIGITS = frozenset("0123456789")  # not str.isdigit: "¹" and "٣" are digits to Python, not to R


def _is_name_start(ch: str) -> bool:
    return ch.isalpha() or ch == "." or ch == "_"


def _is_name_char(ch: str) -> bool:
    return ch.isalnum() or ch in "._"


def tokenize(text: str, source: str | None = None, offset: int = 0) -> list[Token]:
    """Split R (or Python-literal) code into tokens; positions are ``offset`` + index.

    ``source`` is the full text shown in error messages (``text`` may be a slice of it).
    """
    source = text if source is None else source
    tokens: list[Token] = []
    i, n = 0, len(text)

    def fail(msg: str, at: int) -> None:
        raise FormulaSyntaxError(msg, one_line(source), offset + at)

    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "#":  # R comment to the end of the line
            while i < n and text[i] != "\n":
                i += 1
            continue
        start = i
        if ch in _DIGITS or (ch == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            lit = m.group(0)
            i = m.end()
            if i < n and (_is_name_char(text[i]) and text[i] != "."):
                fail(f"unexpected character {text[i]!r} after the number {lit!r}", i)
            integer = lit.endswith("L")
            body = lit[:-1] if integer else lit
            if body.lower().startswith("0x"):
                value: Any = int(body, 16)
                if value >= 2 ** 63:  # a double, as in R (Inf beyond its range)
                    value = float(value) if value.bit_length() <= 1024 else math.inf
            elif re.fullmatch(r"\d+", body) and len(body) <= 18:
                value = int(body)
            else:  # R's numbers are doubles: 1e400 is Inf, 20 digits lose the last ones
                value = float(body)
                if integer and math.isfinite(value) and value == math.floor(value):
                    value = int(value)
            tokens.append(Token("num", lit, offset + start, offset + i, (value, integer)))
            continue
        if _is_name_start(ch):
            while i < n and _is_name_char(text[i]):
                i += 1
            tokens.append(Token("name", text[start:i], offset + start, offset + i, text[start:i]))
            continue
        if ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                fail("unterminated backtick-quoted name", i)
            tokens.append(Token("name", text[start:j + 1], offset + start, offset + j + 1, text[i + 1:j]))
            i = j + 1
            continue
        if ch in "\"'":
            quote, buf = ch, []
            i += 1
            while True:
                if i >= n:
                    fail("unterminated string (missing closing quote)", start)
                c = text[i]
                if c == quote:
                    i += 1
                    break
                if c == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    if nxt in _ESCAPES:
                        buf.append(_ESCAPES[nxt])
                        i += 2
                        continue
                    if nxt in "uU" and re.match(r"[uU]\{?[0-9a-fA-F]{1,8}\}?", text[i + 1:]):
                        m = re.match(r"[uU]\{?([0-9a-fA-F]{1,8})\}?", text[i + 1:])
                        buf.append(chr(int(m.group(1), 16)))
                        i += 1 + m.end()
                        continue
                    buf.append(nxt)
                    i += 2
                    continue
                buf.append(c)
                i += 1
            tokens.append(Token("str", text[start:i], offset + start, offset + i, "".join(buf)))
            continue
        if ch == "%":
            j = text.find("%", i + 1)
            if j < 0:
                fail("unterminated %op% operator", i)
            tokens.append(Token("op", text[i:j + 1], offset + start, offset + j + 1))
            i = j + 1
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("op", op, offset + start, offset + i + len(op)))
                i += len(op)
                break
        else:
            fail(f"unexpected character {ch!r}", i)
    tokens.append(Token("end", "", offset + n, offset + n))
    return tokens


def one_line(text: str) -> str:
    """The text on one line (newlines -> spaces) so that a caret under it lines up."""
    return text.replace("\r", " ").replace("\n", " ").replace("\t", " ")


# ---------------------------------------------------------------------------------------
# parser (precedence climbing with R's table, ?Syntax)

# binary operator -> (left binding power, right binding power)
_BINARY = {
    "~": (10, 11),
    "||": (20, 21), "|": (20, 21),
    "&&": (30, 31), "&": (30, 31),
    "==": (50, 51), "!=": (50, 51), "<": (50, 51), ">": (50, 51), "<=": (50, 51), ">=": (50, 51),
    "+": (60, 61), "-": (60, 61),
    "*": (70, 71), "/": (70, 71),
    "%": (80, 81),  # any %op% and |>
    "|>": (80, 81),
    ":": (90, 91),
    "^": (111, 110), "**": (111, 110),  # right associative, above unary minus
    "$": (120, 121), "@": (120, 121),
    "::": (140, 141), ":::": (140, 141),
}
_PREFIX = {"-": 100, "+": 100, "!": 40, "~": 11}
_POSTFIX_BP = 130


#: how deeply expressions may nest (parentheses, calls, unary operators, right operands):
#: far beyond any formula, well within Python's recursion limit
MAX_NESTING = 100


class _Parser:
    def __init__(self, tokens: list[Token], source: str):
        self.tokens = tokens
        self.pos = 0
        self.source = source
        self.depth = 0

    # -- helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.pos + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        t = self.tokens[self.pos]
        self.pos += 1
        return t

    def fail(self, msg: str, tok: Token | None = None) -> None:
        tok = self.tok if tok is None else tok
        raise FormulaSyntaxError(msg, one_line(self.source), tok.start)

    def expect(self, text: str, opening: Token | None = None) -> Token:
        if self.tok.kind == "op" and self.tok.text == text:
            return self.advance()
        if self.tok.kind == "end" and opening is not None:
            self.fail(f"'{opening.text}' is never closed (expected '{text}')", opening)
        got = "the end of the formula" if self.tok.kind == "end" else repr(self.tok.text)
        self.fail(f"expected '{text}' but found {got}")

    def is_op(self, text: str) -> bool:
        return self.tok.kind == "op" and self.tok.text == text

    # -- grammar
    def expression(self, min_bp: int = 0) -> Node:
        if self.depth >= MAX_NESTING:
            self.fail(f"the expression nests more than {MAX_NESTING} levels deep here")
        self.depth += 1
        try:
            return self._expression(min_bp)
        finally:
            self.depth -= 1

    def _expression(self, min_bp: int) -> Node:
        left = self.prefix()
        while True:
            t = self.tok
            if t.kind != "op":
                if t.kind in ("num", "str", "name"):
                    self.fail(f"unexpected {t.text!r}: is an operator or a comma missing before it?")
                break
            if t.text in ("(", "[") and _POSTFIX_BP >= min_bp:
                left = self.postfix(left)
                continue
            key = "%" if t.text.startswith("%") and len(t.text) > 1 else t.text
            if key not in _BINARY:
                break
            lbp, rbp = _BINARY[key]
            if lbp < min_bp:
                break
            self.advance()
            if self.tok.kind == "end" or (self.tok.kind == "op" and self.tok.text in (")", "]", "}", ",")):
                self.fail(f"missing the right-hand side of '{t.text}'", t)
            right = self.expression(rbp)
            op = "^" if t.text == "**" else t.text
            left = BinOp(op, left, right, _start(left), _end(right))
        return left

    def prefix(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.advance()
            value, integer = t.value
            return Num(value, t.text, t.start, t.end, integer)
        if t.kind == "str":
            self.advance()
            return Str(t.value, t.start, t.end)
        if t.kind == "name":
            self.advance()
            return Name(t.value, t.start, t.end)
        if t.kind == "op":
            if t.text in _PREFIX:
                self.advance()
                if self.tok.kind == "end":
                    self.fail(f"missing an expression after '{t.text}'")
                operand = self.expression(_PREFIX[t.text])
                return UnaryOp(t.text, operand, t.start, _end(operand))
            if t.text == "(":
                return self.parenthesised()
            if t.text == "[":
                self.advance()
                items = self.items("]", t)
                close = self.expect("]", t)
                return PyList(tuple(items), t.start, close.end)
            if t.text == "{":
                return self.pydict()
        if t.kind == "end":
            self.fail("the formula ends where an expression was expected")
        self.fail(f"unexpected {t.text!r}")

    def parenthesised(self) -> Node:
        open_ = self.advance()
        if self.is_op(")"):
            close = self.advance()
            return PyTuple((), open_.start, close.end)
        first = self.expression()
        if self.is_op(","):
            items = [first]
            while self.is_op(","):
                self.advance()
                if self.is_op(")"):
                    break
                items.append(self.expression())
            close = self.expect(")", open_)
            return PyTuple(tuple(items), open_.start, close.end)
        close = self.expect(")", open_)
        return Paren(first, open_.start, close.end)

    def pydict(self) -> Node:
        open_ = self.advance()
        items = []
        while not self.is_op("}"):
            key = self.expression(_BINARY[":"][0] + 1)  # stop at the dict's ':'
            self.expect(":")
            items.append((key, self.expression()))
            if self.is_op(","):
                self.advance()
            elif not self.is_op("}"):
                self.expect("}", open_)
        close = self.advance()
        return PyDict(tuple(items), open_.start, close.end)

    def items(self, closing: str, opening: Token) -> list[Node]:
        out: list[Node] = []
        while not self.is_op(closing):
            if self.tok.kind == "end":
                self.fail(f"'{opening.text}' is never closed (expected '{closing}')", opening)
            out.append(self.expression())
            if self.is_op(","):
                self.advance()
            elif not self.is_op(closing):
                self.expect(closing, opening)
        return out

    def arguments(self, closing: str, opening: Token) -> list[Arg]:
        args: list[Arg] = []
        while not self.is_op(closing):
            t = self.tok
            if t.kind == "end":
                self.fail(f"'{opening.text}' is never closed (expected '{closing}')", opening)
            if self.is_op(","):
                self.fail("empty argument (two commas in a row?)")
            name = None
            if t.kind in ("name", "str") and self.peek().kind == "op" and self.peek().text == "=":
                name = t.value
                self.advance()
                eq = self.advance()
                if self.is_op(",") or self.is_op(closing):
                    self.fail(f"argument '{name}' has no value after '='", eq)
            value = self.expression()
            args.append(Arg(name, value, t.start, _end(value)))
            if self.is_op(","):
                comma = self.advance()
                if self.is_op(closing):
                    self.fail("trailing comma: an argument is missing", comma)
            elif not self.is_op(closing):
                if self.tok.kind == "end":
                    self.fail(f"'{opening.text}' is never closed (expected '{closing}')", opening)
                self.fail(f"expected ',' or '{closing}' but found {self.tok.text!r}")
        return args

    def postfix(self, left: Node) -> Node:
        open_ = self.advance()
        if open_.text == "(":
            args = self.arguments(")", open_)
            close = self.expect(")", open_)
            return Call(left, tuple(args), _start(left), close.end)
        double = self.is_op("[")
        if double:
            self.advance()
        args = self.arguments("]", open_)
        close = self.expect("]", open_)
        if double:
            close = self.expect("]", open_)
        return Index(left, tuple(args), double, _start(left), close.end)


def _start(node: Node) -> int:
    return node.start


def _end(node: Node) -> int:
    return node.end


def parse_r(text: str, *, source: str | None = None, offset: int = 0) -> Node:
    """Parse one R expression (or Python literal) into a syntax tree.

    Args:
        text: the code.
        source: the full text to show in error messages when ``text`` is part of it.
        offset: where ``text`` starts in ``source`` (node positions include it).

    Raises:
        FormulaSyntaxError: with a caret under the offending position of ``source``.

    Example:
        >>> parse_r("c(1, 0.01)").fname
        'c'
    """
    src = text if source is None else source
    tokens = tokenize(text, src, offset)
    p = _Parser(tokens, src)
    if p.tok.kind == "end":
        p.fail("empty expression")
    node = p.expression()
    if p.tok.kind != "end":
        if p.is_op(")") or p.is_op("]") or p.is_op("}"):
            p.fail(f"unmatched '{p.tok.text}'")
        p.fail(f"unexpected {p.tok.text!r}")
    return node


# ---------------------------------------------------------------------------------------
# R's deparse

_SPACED = {"+", "-", "*", "~", "==", "!=", "<", ">", "<=", ">=", "&", "&&", "|", "||",
           "<-", "<<-", "->", "->>", "|>", "="}
_TIGHT = {"/", "^", ":", "%%", "%/%", "$", "@", "::", ":::"}
_SYNTACTIC = re.compile(r"^(?:[A-Za-z]|\.(?![0-9]))[A-Za-z0-9._]*$|^\.$")
_RESERVED = {"if", "else", "repeat", "while", "function", "for", "next", "break", "TRUE",
             "FALSE", "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "in"}


def format_r_number(x: float, digits: int = 15) -> str:
    """A double as R prints it with ``digits`` significant digits (R's ``formatReal``).

    The shortest representation that keeps ``digits`` significant digits, in fixed
    notation unless scientific notation is strictly narrower (``100000`` -> ``"1e+05"``,
    ``123456`` -> ``"123456"``, ``0.0001`` -> ``"1e-04"``, ``0.001`` -> ``"0.001"``).
    This is also R's ``as.character`` of a double, hence factor level names.

    Example:
        >>> format_r_number(100000.0), format_r_number(0.5), format_r_number(22.0)
        ('1e+05', '0.5', '22')
    """
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0:
        return "0"
    mant, exp_s = f"{x:.{digits - 1}e}".split("e")
    exp = int(exp_s)
    if "." in mant:
        mant = mant.rstrip("0").rstrip(".")
    nsig = len(mant.replace("-", "").replace(".", ""))
    sci = f"{mant}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    fixed = f"{x:.{max(0, nsig - 1 - exp)}f}"
    return fixed if len(fixed) <= len(sci) else sci


def quote_r_string(s: str) -> str:
    """A string literal as R deparses it (double quotes, backslash escapes)."""
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{out}"'


def r_name(name: str) -> str:
    """A name as R writes it: as is when syntactic, else in backticks."""
    if _SYNTACTIC.match(name) and name not in _RESERVED:
        return name
    return "`" + name.replace("`", "\\`") + "`"


def deparse(node: Node) -> str:
    """The text R's ``deparse()`` gives for this expression (see module docstring).

    Example:
        >>> deparse(parse_r("I(x1*x2)")), deparse(parse_r("I(X/10)")), deparse(parse_r("log(x,base=2)"))
        ('I(x1 * x2)', 'I(X/10)', 'log(x, base = 2)')
    """
    if isinstance(node, Num):
        if node.integer:
            return f"{int(node.value)}L"
        return format_r_number(node.value)
    if isinstance(node, Str):
        return quote_r_string(node.value)
    if isinstance(node, Name):
        return r_name(node.id)
    if isinstance(node, Paren):
        return "(" + deparse(node.inner) + ")"
    if isinstance(node, UnaryOp):
        return node.op + deparse(node.operand)
    if isinstance(node, BinOp):
        op = node.op
        if op in _TIGHT:
            return f"{deparse(node.left)}{op}{deparse(node.right)}"
        return f"{deparse(node.left)} {op} {deparse(node.right)}"
    if isinstance(node, Call):
        return f"{deparse(node.func)}({_deparse_args(node.args)})"
    if isinstance(node, Index):
        o, c = ("[[", "]]") if node.double else ("[", "]")
        return f"{deparse(node.obj)}{o}{_deparse_args(node.args)}{c}"
    if isinstance(node, PyList):
        return "[" + ", ".join(deparse(i) for i in node.items) + "]"
    if isinstance(node, PyTuple):
        inner = ", ".join(deparse(i) for i in node.items)
        return "(" + inner + ("," if len(node.items) == 1 else "") + ")"
    if isinstance(node, PyDict):
        return "{" + ", ".join(f"{deparse(k)}: {deparse(v)}" for k, v in node.items) + "}"
    raise TypeError(f"cannot deparse {node!r}")


def _deparse_args(args: tuple[Arg, ...]) -> str:
    return ", ".join(deparse(a.value) if a.name is None else f"{r_name(a.name)} = {deparse(a.value)}"
                     for a in args)


def names_in(node: Node) -> list[Name]:
    """Every variable name the expression reads (not called function names), in order."""
    out: list[Name] = []

    def walk(n: Node) -> None:
        if isinstance(n, Name):
            out.append(n)
        elif isinstance(n, Call):
            if not isinstance(n.func, Name):
                walk(n.func)
            for a in n.args:
                walk(a.value)
        elif isinstance(n, BinOp):
            walk(n.left)
            if n.op not in ("$", "@"):
                walk(n.right)
        elif isinstance(n, UnaryOp):
            walk(n.operand)
        elif isinstance(n, Paren):
            walk(n.inner)
        elif isinstance(n, Index):
            walk(n.obj)
            for a in n.args:
                walk(a.value)
        elif isinstance(n, (PyList, PyTuple)):
            for i in n.items:
                walk(i)
        elif isinstance(n, PyDict):
            for k, v in n.items:
                walk(k)
                walk(v)

    walk(node)
    return out


def located(message: str, source: str, position: int) -> str:
    """``message`` followed by the source on one line and a caret under ``position``.

    The same layout as :class:`adelia.errors.FormulaSyntaxError`, for errors that are not
    syntax errors (an unknown name, an invalid argument) but still have a place.
    """
    return f"{message}\n    {one_line(source)}\n    {' ' * position}^"
