"""The safe expression language of computed tags.

A computed tag is defined by a small arithmetic/logic expression over other tags::

    ({plant1/mains/meter1/power_total} + {plant1/mains/meter2/power_total}) * 0.001
    if({plant1/tank1/level} > 95, 1, 0)
    {plant1/pump1/running} and not {plant1/pump1/fault}

The text is tokenized and parsed here by hand (precedence climbing) and compiled into a
tree of closures, so re-evaluating it when an input changes costs a few microseconds.
Nothing is ever handed to ``eval``/``exec``/``compile`` or to Python's ``ast``: the only
names that exist are the operators, literals and functions listed below.

API
---
``compile_expression(text) -> Expression``
    Parses and checks ``text``; raises :class:`ExpressionError` (a ``ValueError``) on any
    problem. ``str(error)`` reads ``"at 12: unknown function 'foo' (known: abs, avg, ...)"``;
    ``error.position`` is the 0-based character offset and ``error.reason`` the text after it.
    Arbitrary input text never raises anything else.

``Expression`` (frozen dataclass, compared and hashed by ``text`` and ``inputs``)
    ``text``    -- the source text, unchanged.
    ``inputs``  -- ``frozenset`` of the tag paths it references.
    ``evaluate(lookup)`` -- computes the value. ``lookup(path)`` returns the input's current
    value as ``float``/``int``/``bool``, or ``None`` when it has none (a ``KeyError`` from
    ``lookup`` is treated the same). Returns ``float`` for arithmetic, ``bool`` for
    comparisons and logic. Raises :class:`EvalError` (an ``ArithmeticError``) for a missing or
    non-numeric/non-finite input (``"input {path} has no value"``), division by zero, a math
    domain error (``sqrt``/``ln``/``log10`` of a bad argument, a negative number to a
    fractional power) and any overflow or non-finite result (``inf``/``nan`` never escape).
    ``error.path`` names the input for input errors, ``error.position`` the operator or
    function (else ``None``). ``lookup`` is only called for inputs on the evaluated path.
    Expressions pickle by re-compiling their text.

Language
--------
Tag references
    ``{seg/seg/...}``: one or more segments of ``a-z 0-9 _ -`` separated by ``/``; no
    spaces, lower case only. A bare reference passes the input through: a ``bool`` input
    stays ``bool``, numbers become ``float``.
Literals
    ``12``, ``0.5``, ``.5``, ``1e3``, ``2.5E-3`` (always ``float``), ``true``, ``false``.
Operators, loosest first
    ===========================  =========================================================
    ``or``                       left associative, short-circuit, result ``bool``
    ``and``                      left associative, short-circuit, result ``bool``
    ``not x``                    result ``bool``; must be parenthesized when it is the
                                 operand of a tighter operator (``1 + (not x)``)
    ``== != < <= > >=``          NON-associative: ``a < b < c`` is an error, write
                                 ``a < b and b < c``; result ``bool``; ``==`` is exact
    ``+ -``                      left associative
    ``* / %``                    left associative; ``%`` takes the sign of the divisor
    unary ``- +``                ``-2^2`` is ``-(2^2)`` = -4
    ``^``                        power, right associative: ``2^3^2`` = ``2^(3^2)`` = 512;
                                 its right operand may carry a sign: ``2^-1`` = 0.5
    ===========================  =========================================================

    Parentheses group. Booleans count as 1/0 in arithmetic; any non-zero number is true
    in ``and``/``or``/``not``/``if``. Whitespace (space, tab, newline) is free between tokens.
Functions (names are lower case)
    ``if(cond, a, b)`` -- only the chosen branch is evaluated; ``bool`` when both branches
    are ``bool``, ``float`` when either is a number expression.
    ``abs(x)``, ``min(x, ...)``, ``max(x, ...)``, ``sum(x, ...)``, ``avg(x, ...)`` (one or
    more arguments), ``round(x[, digits])`` (half to even, like Python; ``digits`` must be
    whole and may be negative), ``floor(x)``, ``ceil(x)``, ``sqrt(x)``, ``exp(x)``,
    ``ln(x)``, ``log10(x)``, ``clamp(x, lo, hi)`` (``lo > hi`` is an :class:`EvalError`),
    ``sin(x)``, ``cos(x)`` (radians). All return ``float``. None keeps state between
    evaluations.
Limits
    text at most 1000 characters; nesting depth at most 64, where each parenthesis, function
    call, prefix operator (``-``, ``+``, ``not``) and right operand of ``^`` opens a level;
    at most 200 tag references (occurrences, repeated paths count each time).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NoReturn

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_REFERENCES",
    "EvalError",
    "Expression",
    "ExpressionError",
    "compile_expression",
]

MAX_LENGTH = 1000
MAX_DEPTH = 64
MAX_REFERENCES = 200

Value = float | bool
Lookup = Callable[[str], float | bool | None]
_Fn = Callable[[Lookup], Value]


class ExpressionError(ValueError):
    """The expression text is invalid; ``position`` is the 0-based offset of the problem."""

    def __init__(self, reason: str, position: int) -> None:
        super().__init__(f"at {position}: {reason}")
        self.reason = reason
        self.position = position

    def __reduce__(self):  # keep both attributes across pickling
        return (type(self), (self.reason, self.position))


class EvalError(ArithmeticError):
    """Evaluation failed: missing or bad input, division by zero, domain error, overflow."""

    def __init__(self, message: str, position: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.position = position
        self.path = path

    def __reduce__(self):
        return (type(self), (self.args[0], self.position, self.path))


# --------------------------------------------------------------------------- tokenizer

_NUM, _TAG, _NAME, _OP, _END = "number", "tag", "name", "op", "end"
_DIGITS = frozenset("0123456789")
_PATH_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | _DIGITS
_SPACE = frozenset(" \t\r\n")
_TWO_CHAR_OPS = frozenset(("==", "!=", "<=", ">="))
_ONE_CHAR_OPS = frozenset("+-*/%^(),<>")
_HINTS = {
    "=": " (use '==' to compare)",
    "!": " (use 'not', or '!=' to compare)",
    "&": " (use 'and')",
    "|": " (use 'or')",
    "'": " (there are no strings)",
    '"': " (there are no strings)",
    "}": " (no tag reference is open)",
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    value: object  # float for numbers, str otherwise
    pos: int

    def describe(self) -> str:
        if self.kind == _END:
            return "end of expression"
        if self.kind == _TAG:
            return f"tag reference {{{self.value}}}"
        if self.kind == _NUM:
            return f"number {self.value:g}"
        return f"'{self.value}'"


def _tokens(text: str) -> Iterator[_Token]:
    """Yield tokens lazily, so errors come out in left-to-right order."""
    n = len(text)
    i = 0
    while True:
        while i < n and text[i] in _SPACE:
            i += 1
        if i >= n:
            yield _Token(_END, None, n)
            return
        c = text[i]
        start = i
        if c == "{":
            i = _scan_tag(text, i)
            yield _Token(_TAG, text[start + 1 : i - 1], start)
        elif c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            i, value = _scan_number(text, i)
            yield _Token(_NUM, value, start)
        elif c in _NAME_START:
            while i < n and text[i] in _NAME_CHARS:
                i += 1
            yield _Token(_NAME, text[start:i], start)
        elif text[i : i + 2] in _TWO_CHAR_OPS:
            i += 2
            yield _Token(_OP, text[start:i], start)
        elif text[i : i + 2] == "**":
            raise ExpressionError("'**' is not an operator (use '^' for power)", i)
        elif c in _ONE_CHAR_OPS:
            i += 1
            yield _Token(_OP, c, start)
        else:
            raise ExpressionError(f"unexpected character {c!r}{_HINTS.get(c, '')}", i)


def _scan_tag(text: str, i: int) -> int:
    """Check the tag reference starting at ``text[i] == '{'``; return the index after '}'."""
    n = len(text)
    j = i + 1
    segment_start = j
    while True:
        if j >= n:
            raise ExpressionError("tag reference is not closed with '}'", i)
        c = text[j]
        if c in _PATH_CHARS:
            j += 1
        elif c == "/" or c == "}":
            if j == segment_start:
                raise ExpressionError("empty tag path" if c == "}" and j == i + 1 else "empty segment in tag path", j)
            j += 1
            if c == "}":
                return j
            segment_start = j
        else:
            hint = " (tag paths are lower case)" if "A" <= c <= "Z" else ""
            raise ExpressionError(
                f"invalid character {c!r} in tag path (allowed: a-z 0-9 _ - and '/' between segments){hint}", j
            )


def _scan_number(text: str, i: int) -> tuple[int, float]:
    n = len(text)
    start = i
    while i < n and text[i] in _DIGITS:
        i += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j >= n or text[j] not in _DIGITS:
            raise ExpressionError("malformed number: the exponent has no digits", i)
        i = j
        while i < n and text[i] in _DIGITS:
            i += 1
    if i < n and (text[i] in _NAME_CHARS or text[i] == "."):
        raise ExpressionError(f"malformed number: unexpected {text[i]!r}", i)
    value = float(text[start:i])
    if value == math.inf:
        raise ExpressionError("number too large", start)
    return i, value


# --------------------------------------------------------------------------- compiled nodes

_NUMK, _BOOLK, _ANYK = "number", "bool", "any"  # static result kinds


class _Node:
    """A compiled subexpression: ``fn(lookup)`` computes it; constants carry their value."""

    __slots__ = ("fn", "kind", "is_const", "value")

    def __init__(self, fn: _Fn, kind: str, is_const: bool = False, value: Value = 0.0) -> None:
        self.fn = fn
        self.kind = kind
        self.is_const = is_const
        self.value = value


def _const(value: Value) -> _Node:
    def f(lookup: Lookup) -> Value:
        return value

    return _Node(f, _BOOLK if value.__class__ is bool else _NUMK, True, value)


def _no_lookup(path: str) -> None:  # pragma: no cover - constants never look anything up
    raise AssertionError(path)


def _folded(node: _Node, *children: _Node) -> _Node:
    """Evaluate an all-constant node once now; keep it dynamic if that raises (so errors stay run-time)."""
    if all(c.is_const for c in children):
        try:
            value = node.fn(_no_lookup)
        except EvalError:
            return node
        return _const(float(value) if node.kind == _NUMK else value)
    return node


def _as_number(node: _Node) -> _Fn:
    """``node.fn``, or a wrapper turning its bool result into a float."""
    if node.kind == _NUMK:
        return node.fn
    fn = node.fn

    def f(lookup: Lookup) -> float:
        return float(fn(lookup))

    return f


def _overflow(op: str, pos: int) -> EvalError:
    return EvalError(f"overflow in {op!r} (at {pos})", pos)


def _tag(path: str) -> _Node:
    def f(lookup: Lookup) -> Value:
        try:
            v = lookup(path)
        except KeyError:
            v = None
        cls = v.__class__
        if cls is float:
            if v - v == 0.0:  # finite
                return v
        elif cls is bool:
            return v
        elif v is None:
            raise EvalError(f"input {path} has no value", path=path)
        elif isinstance(v, int | float):  # int, numpy scalars, ...
            try:
                v = float(v)
            except OverflowError:
                raise EvalError(f"input {path} is too large", path=path) from None
            if v - v == 0.0:
                return v
        else:
            raise EvalError(f"input {path} is not a number (got {cls.__name__})", path=path)
        raise EvalError(f"input {path} is not a finite number ({v!r})", path=path)

    return _Node(f, _ANYK)


def _binary_arith(op: str, pos: int, left: _Node, right: _Node) -> _Node:
    # Float op float is float; bool op float is float; only bool op bool needs a coercion.
    a = left.fn if right.kind == _NUMK else _as_number(left)
    b = right.fn

    if op == "+":

        def f(lookup: Lookup) -> float:
            v = a(lookup) + b(lookup)
            if v - v == 0.0:
                return v
            raise _overflow(op, pos)

    elif op == "-":

        def f(lookup: Lookup) -> float:
            v = a(lookup) - b(lookup)
            if v - v == 0.0:
                return v
            raise _overflow(op, pos)

    elif op == "*":

        def f(lookup: Lookup) -> float:
            v = a(lookup) * b(lookup)
            if v - v == 0.0:
                return v
            raise _overflow(op, pos)

    elif op == "/":

        def f(lookup: Lookup) -> float:
            n = a(lookup)
            d = b(lookup)
            if not d:
                raise EvalError(f"division by zero (at {pos})", pos)
            v = n / d
            if v - v == 0.0:
                return v
            raise _overflow(op, pos)

    elif op == "%":

        def f(lookup: Lookup) -> float:
            n = a(lookup)
            d = b(lookup)
            if not d:
                raise EvalError(f"modulo by zero (at {pos})", pos)
            return n % d  # finite operands give a finite result

    else:  # "^"

        def f(lookup: Lookup) -> float:
            x = a(lookup)
            y = b(lookup)
            try:
                v = x**y  # float power: overflow raises at once, no big integers
            except OverflowError:
                raise _overflow(op, pos) from None
            except ZeroDivisionError:
                raise EvalError(f"zero raised to a negative power (at {pos})", pos) from None
            if v.__class__ is float and v - v == 0.0:
                return v
            if v.__class__ is complex:
                raise EvalError(f"negative number raised to a fractional power (at {pos})", pos)
            raise _overflow(op, pos)  # pragma: no cover - pow raises before returning inf

    return _folded(_Node(f, _NUMK), left, right)


def _compare(op: str, left: _Node, right: _Node) -> _Node:
    a, b = left.fn, right.fn
    if op == "==":
        f = lambda x: a(x) == b(x)  # noqa: E731
    elif op == "!=":
        f = lambda x: a(x) != b(x)  # noqa: E731
    elif op == "<":
        f = lambda x: a(x) < b(x)  # noqa: E731
    elif op == "<=":
        f = lambda x: a(x) <= b(x)  # noqa: E731
    elif op == ">":
        f = lambda x: a(x) > b(x)  # noqa: E731
    else:
        f = lambda x: a(x) >= b(x)  # noqa: E731
    return _folded(_Node(f, _BOOLK), left, right)


def _logic(op: str, left: _Node, right: _Node) -> _Node:
    a, b = left.fn, right.fn
    if op == "and":
        f = lambda x: True if a(x) and b(x) else False  # noqa: E731
    else:
        f = lambda x: True if a(x) or b(x) else False  # noqa: E731
    return _folded(_Node(f, _BOOLK), left, right)


def _not(operand: _Node) -> _Node:
    a = operand.fn
    return _folded(_Node(lambda x: not a(x), _BOOLK), operand)


def _negate(operand: _Node) -> _Node:
    a = _as_number(operand)
    return _folded(_Node(lambda x: -a(x), _NUMK), operand)


def _if(cond: _Node, then: _Node, other: _Node) -> _Node:
    c = cond.fn
    if then.kind == other.kind == _BOOLK:
        kind, t, o = _BOOLK, then.fn, other.fn
    elif _NUMK in (then.kind, other.kind):
        kind, t, o = _NUMK, _as_number(then), _as_number(other)
    else:
        kind, t, o = _ANYK, then.fn, other.fn
    return _folded(_Node(lambda x: t(x) if c(x) else o(x), kind), cond, then, other)


# ---- functions: name -> (min args, max args or None, builder(pos, arg fns) -> fn)


def _fn_abs(pos: int, a: _Fn) -> _Fn:
    return lambda x: abs(a(x))


def _fn_minmax(pick: Callable) -> Callable[..., _Fn]:
    def build(pos: int, *args: _Fn) -> _Fn:
        if len(args) == 1:
            return args[0]
        if len(args) == 2:
            a, b = args
            return lambda x: pick(a(x), b(x))
        return lambda x: pick([g(x) for g in args])

    return build


def _fn_sum(pos: int, *args: _Fn) -> _Fn:
    def f(lookup: Lookup) -> float:
        v = sum([g(lookup) for g in args])
        if v - v == 0.0:
            return v
        raise EvalError(f"overflow in sum() (at {pos})", pos)

    return f


def _fn_avg(pos: int, *args: _Fn) -> _Fn:
    n = float(len(args))

    def f(lookup: Lookup) -> float:
        v = sum([g(lookup) for g in args]) / n
        if v - v == 0.0:
            return v
        raise EvalError(f"overflow in avg() (at {pos})", pos)

    return f


def _fn_round(pos: int, a: _Fn, d: _Fn | None = None) -> _Fn:
    if d is None:
        return lambda x: float(round(a(x)))

    def f(lookup: Lookup) -> float:
        v = a(lookup)
        digits = d(lookup)
        if digits % 1:
            raise EvalError(f"round(): digits must be a whole number, not {digits!r} (at {pos})", pos)
        try:
            return round(v, int(digits))
        except OverflowError:
            raise EvalError(f"overflow in round() (at {pos})", pos) from None

    return f


def _fn_floor(pos: int, a: _Fn) -> _Fn:
    floor = math.floor
    return lambda x: float(floor(a(x)))


def _fn_ceil(pos: int, a: _Fn) -> _Fn:
    ceil = math.ceil
    return lambda x: float(ceil(a(x)))


def _fn_sqrt(pos: int, a: _Fn) -> _Fn:
    sqrt = math.sqrt

    def f(lookup: Lookup) -> float:
        v = a(lookup)
        if v < 0:
            raise EvalError(f"sqrt() of negative number {v!r} (at {pos})", pos)
        return sqrt(v)

    return f


def _fn_exp(pos: int, a: _Fn) -> _Fn:
    exp = math.exp

    def f(lookup: Lookup) -> float:
        try:
            return exp(a(lookup))
        except OverflowError:
            raise EvalError(f"overflow in exp() (at {pos})", pos) from None

    return f


def _fn_log(name: str, log: Callable[[float], float]) -> Callable[..., _Fn]:
    def build(pos: int, a: _Fn) -> _Fn:
        def f(lookup: Lookup) -> float:
            v = a(lookup)
            if v <= 0:
                raise EvalError(f"{name}() of non-positive number {v!r} (at {pos})", pos)
            return log(v)

        return f

    return build


def _fn_clamp(pos: int, a: _Fn, lo: _Fn, hi: _Fn) -> _Fn:
    def f(lookup: Lookup) -> float:
        v, low, high = a(lookup), lo(lookup), hi(lookup)
        if low > high:
            raise EvalError(f"clamp(): lo {low!r} is greater than hi {high!r} (at {pos})", pos)
        return low if v < low else high if v > high else v

    return f


def _fn_trig(fn: Callable[[float], float]) -> Callable[..., _Fn]:
    def build(pos: int, a: _Fn) -> _Fn:
        return lambda x: fn(a(x))

    return build


_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., _Fn]]] = {
    "abs": (1, 1, _fn_abs),
    "min": (1, None, _fn_minmax(min)),
    "max": (1, None, _fn_minmax(max)),
    "sum": (1, None, _fn_sum),
    "avg": (1, None, _fn_avg),
    "round": (1, 2, _fn_round),
    "floor": (1, 1, _fn_floor),
    "ceil": (1, 1, _fn_ceil),
    "sqrt": (1, 1, _fn_sqrt),
    "exp": (1, 1, _fn_exp),
    "ln": (1, 1, _fn_log("ln", math.log)),
    "log10": (1, 1, _fn_log("log10", math.log10)),
    "clamp": (3, 3, _fn_clamp),
    "sin": (1, 1, _fn_trig(math.sin)),
    "cos": (1, 1, _fn_trig(math.cos)),
}
_KNOWN = ", ".join(sorted([*_FUNCTIONS, "if"]))


def _arity_text(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"at least {lo} argument" + ("s" if lo != 1 else "")
    if lo == hi:
        return f"exactly {lo} argument" + ("s" if lo != 1 else "")
    return f"{lo} or {hi} arguments" if hi == lo + 1 else f"{lo} to {hi} arguments"


# --------------------------------------------------------------------------- parser

# Binding powers (higher binds tighter); an infix loop stops at an operator whose power is
# below the caller's minimum. Left-associative operands are parsed at power + 1.
_OR, _AND, _NOT, _CMP, _ADD, _MUL, _UNARY, _POW = 1, 2, 3, 4, 5, 6, 7, 8
_INFIX = {"or": _OR, "and": _AND, "+": _ADD, "-": _ADD, "*": _MUL, "/": _MUL, "%": _MUL, "^": _POW}
_INFIX.update(dict.fromkeys(("==", "!=", "<", "<=", ">", ">="), _CMP))
_KEYWORDS = frozenset(("and", "or", "not", "true", "false", "if"))


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.tok = next(self.tokens)
        self.depth = 0
        self.references = 0
        self.inputs: set[str] = set()

    def advance(self) -> _Token:
        tok = self.tok
        self.tok = next(self.tokens)
        return tok

    def fail(self, reason: str, pos: int | None = None) -> NoReturn:
        raise ExpressionError(reason, self.tok.pos if pos is None else pos)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail(f"expression nested too deeply (limit {MAX_DEPTH} levels)", pos)

    def infix_op(self) -> str | None:
        tok = self.tok
        if tok.kind == _OP or (tok.kind == _NAME and tok.value in ("and", "or")):
            op = tok.value
            return op if op in _INFIX else None
        return None

    def parse(self) -> _Node:
        node = self.expression(0)
        tok = self.tok
        if tok.kind != _END:
            if tok.kind == _OP and tok.value == ")":
                self.fail("unmatched ')'")
            self.fail(f"unexpected {tok.describe()} after a complete expression (missing operator?)")
        return node

    def expression(self, min_power: int) -> _Node:
        left = self.prefix(min_power)
        previous_cmp: _Token | None = None
        while True:
            op = self.infix_op()
            if op is None:
                return left
            power = _INFIX[op]
            if power < min_power:
                return left
            tok = self.advance()
            if power == _CMP:
                if previous_cmp is not None:
                    self.fail(
                        f"comparisons do not chain: write 'a {previous_cmp.value} b and b {op} c' instead", tok.pos
                    )
                previous_cmp = tok
                left = _compare(op, left, self.expression(power + 1))
            elif power == _POW:  # right associative: the operand may hold another '^'
                self.enter(tok.pos)
                left = _binary_arith(op, tok.pos, left, self.expression(_POW))
                self.depth -= 1
            elif power <= _AND:
                left = _logic(op, left, self.expression(power + 1))
            else:
                left = _binary_arith(op, tok.pos, left, self.expression(power + 1))

    def prefix(self, min_power: int) -> _Node:
        tok = self.tok
        if tok.kind == _NUM:
            self.advance()
            return _const(tok.value)
        if tok.kind == _TAG:
            self.advance()
            self.references += 1
            if self.references > MAX_REFERENCES:
                self.fail(f"too many tag references (limit {MAX_REFERENCES})", tok.pos)
            self.inputs.add(tok.value)
            return _tag(tok.value)
        if tok.kind == _OP:
            if tok.value == "(":
                self.advance()
                self.enter(tok.pos)
                node = self.expression(0)
                if self.tok.kind != _OP or self.tok.value != ")":
                    self.fail(f"expected ')' to close the '(' at {tok.pos}, found {self.tok.describe()}")
                self.advance()
                self.depth -= 1
                return node
            if tok.value in ("-", "+"):
                self.advance()
                self.enter(tok.pos)
                operand = self.expression(_UNARY + 1)
                self.depth -= 1
                if tok.value == "-":
                    return _negate(operand)
                return (
                    operand
                    if operand.kind == _NUMK
                    else _Node(_as_number(operand), _NUMK, operand.is_const, float(operand.value))
                )
        if tok.kind == _NAME:
            name = tok.value
            if name == "true" or name == "false":
                self.advance()
                return _const(name == "true")
            if name == "not":
                if min_power > _NOT:
                    self.fail("'not' must be put in parentheses here")
                self.advance()
                self.enter(tok.pos)
                operand = self.expression(_NOT)
                self.depth -= 1
                return _not(operand)
            if name not in ("and", "or"):
                self.advance()
                if self.tok.kind == _OP and self.tok.value == "(":
                    return self.call(tok)
                if name == "if" or name in _FUNCTIONS:
                    self.fail(f"function '{name}' must be called with '(...)'", tok.pos)
                self.fail(f"unknown name '{name}' (tag references go in braces: {{plant/area/tag}})", tok.pos)
        self.fail(f"expected an expression, found {tok.describe()}")

    def call(self, name_tok: _Token) -> _Node:
        name = name_tok.value
        if name != "if" and name not in _FUNCTIONS:
            self.fail(f"unknown function '{name}' (known: {_KNOWN})", name_tok.pos)
        open_tok = self.advance()  # "("
        self.enter(name_tok.pos)
        args: list[_Node] = []
        if not (self.tok.kind == _OP and self.tok.value == ")"):
            while True:
                args.append(self.expression(0))
                if self.tok.kind == _OP and self.tok.value == ",":
                    self.advance()
                    continue
                if self.tok.kind == _OP and self.tok.value == ")":
                    break
                self.fail(
                    f"expected ',' or ')' in the call to {name}() opened at {open_tok.pos}, found {self.tok.describe()}"
                )
        self.advance()  # ")"
        self.depth -= 1
        if name == "if":
            if len(args) != 3:
                self.fail(f"if() takes exactly 3 arguments (cond, then, else), got {len(args)}", name_tok.pos)
            return _if(*args)
        lo, hi, build = _FUNCTIONS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            self.fail(f"{name}() takes {_arity_text(lo, hi)}, got {len(args)}", name_tok.pos)
        node = _Node(build(name_tok.pos, *[_as_number(a) for a in args]), _NUMK)
        return _folded(node, *args)


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True)
class Expression:
    """A compiled expression; build it with :func:`compile_expression`."""

    text: str
    inputs: frozenset[str]
    _fn: _Fn = field(repr=False, compare=False)

    def evaluate(self, lookup: Lookup) -> Value:
        """Compute the value, reading inputs through ``lookup(path)``; see the module docstring."""
        try:
            return self._fn(lookup)
        except (OverflowError, ZeroDivisionError) as e:  # pragma: no cover - every node checks first
            raise EvalError(f"arithmetic error: {e}") from e

    def __reduce__(self):
        return (compile_expression, (self.text,))


def compile_expression(text: str) -> Expression:
    """Parse and compile ``text``; raises :class:`ExpressionError` naming the position."""
    if not isinstance(text, str):
        raise TypeError(f"expression text must be str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long (limit {MAX_LENGTH})", MAX_LENGTH)
    if not text.strip(" \t\r\n"):
        raise ExpressionError("empty expression", 0)
    parser = _Parser(text)
    node = parser.parse()
    return Expression(text=text, inputs=frozenset(parser.inputs), _fn=node.fn)
