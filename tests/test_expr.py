"""The computed-tag expression language: grammar, functions, errors, limits, and fuzzing."""

from __future__ import annotations

import math
import pickle
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadad.tags.expr import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_REFERENCES,
    EvalError,
    Expression,
    ExpressionError,
    compile_expression,
)


def ev(text: str, **values: object) -> float | bool:
    """Evaluate ``text`` with inputs given as keyword arguments (path = name)."""
    return compile_expression(text).evaluate(values.get)


# --------------------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7.0),
        ("(1 + 2) * 3", 9.0),
        ("10 - 4 - 3", 3.0),  # left: (10-4)-3, not 10-(4-3)=9
        ("8 / 4 / 2", 1.0),  # left: not 8/(4/2)=4
        ("7 % 4 % 2", 1.0),  # left: not 7%(4%2) (error)
        ("2 * 3 ^ 2", 18.0),
        ("10 - 2 * 3 ^ 2 / 6", 7.0),
        ("2 ^ 3 ^ 2", 512.0),  # right associative
        ("(2 ^ 3) ^ 2", 64.0),
        ("2 ^ 0.5 ^ 2", 2**0.25),
        ("-2 ^ 2", -4.0),  # ^ binds tighter than unary minus
        ("(-2) ^ 2", 4.0),
        ("2 ^ -1", 0.5),
        ("2 ^ -1 * 4", 2.0),
        ("2^-3^2", 2.0**-9.0),
        ("-3 * 2", -6.0),
        ("-7 % 3", 2.0),  # (-7) % 3, sign of the divisor; -(7 % 3) would be -1
        ("7 % -3", -2.0),
        ("--3", 3.0),
        ("- -3", 3.0),
        ("-+-3", 3.0),
        ("+3", 3.0),
        ("1 - -1", 2.0),
        ("1--1", 2.0),
        ("1e3 + .5", 1000.5),
        ("1.5e-3 * 1E3", 1.5),
        ("2.", 2.0),
        ("007", 7.0),
        ("1 + 2 < 4", True),
        ("1 + 2 == 3", True),
        ("3 != 3.0", False),
        ("1 <= 1 and 2 >= 3", False),
        ("2 * 3 > 5 and 1", True),
        ("true or false and false", True),  # and binds tighter than or
        ("false and true or true", True),
        ("not true or true", True),  # not binds tighter than or
        ("not false and false", False),
        ("not 1 == 2", True),  # comparisons bind tighter than not
        ("not 0 + 1", False),
        ("not not true", True),
        ("(1 < 2) == true", True),
        ("true + true * 2", 3.0),
        ("if(1, 2, 3) + 1", 3.0),
        ("max(1, 2, 3) * 2", 6.0),
        ("((((1))))", 1.0),
        (" \t1\n+\r\n2 ", 3.0),
    ],
)
def test_precedence_and_associativity(text: str, expected: float | bool) -> None:
    result = ev(text)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("3", {}, 3.0),
        ("{a}", {"a": 3}, 3.0),  # int inputs become float
        ("{a}", {"a": True}, True),  # a bare bool input passes through
        ("{a} + {b}", {"a": True, "b": True}, 2.0),
        ("{a} * 2", {"a": False}, 0.0),
        ("true + true", {}, 2.0),
        ("-true", {}, -1.0),
        ("+true", {}, 1.0),
        ("-{a}", {"a": True}, -1.0),
        ("true % true", {}, 0.0),
        ("true ^ true", {}, 1.0),
        ("abs(true)", {}, 1.0),
        ("max(true, false)", {}, 1.0),
        ("1 < 2", {}, True),
        ("{a} and {b}", {"a": 2.0, "b": 3}, True),
        ("{a} or {b}", {"a": 0.0, "b": False}, False),
        ("not {a}", {"a": 0.0}, True),
        ("if(1, true, false)", {}, True),
        ("if({a}, true, false)", {"a": 0}, False),
        ("if(1, true, 2)", {}, 1.0),  # mixed branches -> float
        ("if({a}, {b}, 2)", {"a": 1, "b": True}, 1.0),
        ("if({a}, {b}, {c})", {"a": 1, "b": True, "c": 2.0}, True),
    ],
)
def test_result_types(text: str, values: dict, expected: float | bool) -> None:
    result = ev(text, **values)
    assert result == expected
    assert type(result) is type(expected)


def test_tags_in_arithmetic() -> None:
    e = compile_expression("({plant1/mains/meter1/power_total} + {plant1/mains/meter2/power_total}) * 0.001")
    values = {"plant1/mains/meter1/power_total": 1500, "plant1/mains/meter2/power_total": 500.0}
    assert e.evaluate(values.get) == 2.0
    values["plant1/mains/meter2/power_total"] = 1500
    assert e.evaluate(values.get) == 3.0  # re-evaluation sees the new value


# --------------------------------------------------------------------------- short-circuit


class Recorder:
    def __init__(self, values: dict) -> None:
        self.values = values
        self.calls: list[str] = []

    def __call__(self, path: str) -> object:
        self.calls.append(path)
        return self.values.get(path)


@pytest.mark.parametrize(
    ("text", "a", "expected", "read"),
    [
        ("if({a} > 0, {b}, {missing})", 1, 2.0, ["a", "b"]),
        ("if({a} > 0, {missing}, {b})", 0, 2.0, ["a", "b"]),
        ("if({a}, {b} * 2, sqrt({missing}))", 1, 4.0, ["a", "b"]),
        ("if({a}, 1 / 0, {b})", 0, 2.0, ["a", "b"]),  # the untaken division by zero never runs
        ("{a} and {missing}", 0, False, ["a"]),
        ("{a} or {missing}", 1, True, ["a"]),
        ("{a} > 0 or {missing} and {missing}", 1, True, ["a"]),
    ],
)
def test_short_circuit(text: str, a: float, expected: object, read: list[str]) -> None:
    lookup = Recorder({"a": a, "b": 2.0})
    result = compile_expression(text).evaluate(lookup)
    assert result == expected and type(result) is type(expected)
    assert lookup.calls == read


def test_taken_branch_with_missing_input_fails() -> None:
    with pytest.raises(EvalError, match="input missing has no value"):
        ev("if({a}, {missing}, 0)", a=1)
    with pytest.raises(EvalError, match="input missing has no value"):
        ev("{missing} and false")


# --------------------------------------------------------------------------- functions

FUNCTION_CASES = [
    ("abs", (-2.5,), 2.5),
    ("abs", (3,), 3.0),
    ("min", (3, 1, 2), 1.0),
    ("min", (4,), 4.0),
    ("min", (2, -7), -7.0),
    ("max", (3, 1, 2), 3.0),
    ("max", (-1, -5), -1.0),
    ("max", (9,), 9.0),
    ("sum", (1, 2, 3.5), 6.5),
    ("sum", (7,), 7.0),
    ("avg", (1, 2, 6), 3.0),
    ("avg", (5,), 5.0),
    ("round", (2.5,), 2.0),  # half to even, like Python
    ("round", (3.5,), 4.0),
    ("round", (-2.7,), -3.0),
    ("round", (1.23456, 2), 1.23),
    ("round", (1234, -2), 1200.0),
    ("round", (1.5, 1e300), 1.5),
    ("floor", (-1.5,), -2.0),
    ("floor", (2,), 2.0),
    ("ceil", (-1.5,), -1.0),
    ("ceil", (1.2,), 2.0),
    ("sqrt", (16,), 4.0),
    ("sqrt", (0,), 0.0),
    ("exp", (0,), 1.0),
    ("exp", (1,), math.e),
    ("ln", (1,), 0.0),
    ("ln", (10,), math.log(10)),
    ("log10", (1000,), 3.0),
    ("log10", (0.01,), -2.0),
    ("clamp", (5, 0, 3), 3.0),
    ("clamp", (-1, 0, 3), 0.0),
    ("clamp", (2, 0, 3), 2.0),
    ("clamp", (2, 2, 2), 2.0),
    ("sin", (0,), 0.0),
    ("sin", (1.5,), math.sin(1.5)),
    ("cos", (0,), 1.0),
    ("cos", (2,), math.cos(2)),
    ("if", (1, 10, 20), 10.0),
    ("if", (0, 10, 20), 20.0),
]


@pytest.mark.parametrize(("name", "args", "expected"), FUNCTION_CASES)
def test_function(name: str, args: tuple, expected: float) -> None:
    # Once with literal arguments (folded at compile time), once with tag inputs (run time).
    literal = f"{name}({', '.join(repr(a) for a in args)})"
    refs = ", ".join("{p" + str(i) + "}" for i in range(len(args)))
    tagged = compile_expression(f"{name}({refs})")
    values = {f"p{i}": a for i, a in enumerate(args)}
    for result in (ev(literal), tagged.evaluate(values.get)):
        assert result == expected
        assert type(result) is float


def test_every_function_is_covered() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("nope(1)")
    known = info.value.reason.split("(known: ")[1].rstrip(")").split(", ")
    assert sorted(known) == sorted({name for name, _, _ in FUNCTION_CASES})


# --------------------------------------------------------------------------- run-time errors


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1 / 0", "division by zero (at 2)"),
        ("1 / (2 - 2)", "division by zero"),
        ("1 % 0", "modulo by zero (at 2)"),
        ("sqrt(-4)", "sqrt() of negative number -4.0 (at 0)"),
        ("ln(0)", "ln() of non-positive number"),
        ("log10(-1)", "log10() of non-positive number"),
        ("exp(1000)", "overflow in exp()"),
        ("0 ^ -1", "zero raised to a negative power"),
        ("(-8) ^ (1/3)", "negative number raised to a fractional power"),
        ("10 ^ 10 ^ 10", "overflow in '^' (at 3)"),
        ("1e308 * 10", "overflow in '*'"),
        ("1e308 + 1e308", "overflow in '+'"),
        ("-1e308 - 1e308", "overflow in '-'"),
        ("1e308 / 1e-308", "overflow in '/'"),
        ("sum(1e308, 1e308)", "overflow in sum()"),
        ("avg(1e308, 1e308)", "overflow in avg()"),
        ("clamp(1, 3, 2)", "clamp(): lo 3.0 is greater than hi 2.0"),
        ("round(1.5, 0.5)", "round(): digits must be a whole number"),
        ("round(1.7e308, -308)", "overflow in round()"),
        ("1e308 * 10 > 0", "overflow in '*'"),  # a non-finite value cannot hide behind a comparison
        ("5 % (1e308 * 10)", "overflow in '*'"),
    ],
)
def test_eval_errors(text: str, fragment: str) -> None:
    e = compile_expression(text)  # constant, but errors stay run-time errors
    with pytest.raises(EvalError) as info:
        e.evaluate({}.get)
    assert fragment in str(info.value)
    assert isinstance(info.value, ArithmeticError)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "input x/y has no value"),
        ("12", "input x/y is not a number (got str)"),
        (float("nan"), "input x/y is not a finite number"),
        (float("inf"), "input x/y is not a finite number"),
        (10**400, "input x/y is too large"),
    ],
)
def test_bad_inputs(value: object, fragment: str) -> None:
    with pytest.raises(EvalError) as info:
        compile_expression("{x/y} + 1").evaluate(lambda path: value)
    assert str(info.value) == fragment or fragment in str(info.value)
    assert info.value.path == "x/y"


def test_missing_input_message_and_key_error() -> None:
    with pytest.raises(EvalError) as info:
        compile_expression("{a} + {plant/b}").evaluate({"a": 1.0}.__getitem__)  # KeyError counts as missing
    assert str(info.value) == "input plant/b has no value"
    assert info.value.path == "plant/b"


def test_power_overflow_is_fast() -> None:
    e = compile_expression("10^10^10^10")
    start = time.perf_counter()
    for text in ("10^10^10", "10^10^10^10", "9^9^9", "{a}^{a}^{a}"):
        with pytest.raises(EvalError, match="overflow"):
            compile_expression(text).evaluate({"a": 99}.get)
    with pytest.raises(EvalError):
        e.evaluate({}.get)
    assert time.perf_counter() - start < 0.5


# --------------------------------------------------------------------------- compile errors


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        # tag syntax
        ("{plant1/Mains}", 8, "invalid character 'M' in tag path"),
        ("1 + {a b}", 6, "invalid character ' ' in tag path"),
        ("{a.b}", 2, "invalid character '.' in tag path"),
        ("{a//b}", 3, "empty segment in tag path"),
        ("{a/}", 3, "empty segment in tag path"),
        ("{/a}", 1, "empty segment in tag path"),
        ("{}", 1, "empty tag path"),
        ("2 * {a/b", 4, "tag reference is not closed with '}'"),
        ("1 + }", 4, "unexpected character '}'"),
        # parentheses
        ("(1 + 2", 6, "expected ')' to close the '(' at 0"),
        ("((1)", 4, "expected ')' to close the '(' at 0"),
        ("(1 + 2]", 6, "unexpected character ']'"),
        ("1 + 2)", 5, "unmatched ')'"),
        ("()", 1, "expected an expression, found ')'"),
        ("max(1 2)", 6, "expected ',' or ')' in the call to max() opened at 3"),
        ("max(1,", 6, "expected an expression, found end of expression"),
        # trailing garbage
        ("1 + 2 3", 6, "unexpected number 3 after a complete expression"),
        ("{a} {b}", 4, "unexpected tag reference {b} after a complete expression"),
        ("1 true", 2, "unexpected 'true' after a complete expression"),
        ("1, 2", 1, "unexpected ',' after a complete expression"),
        # empty / incomplete
        ("", 0, "empty expression"),
        ("  \n ", 0, "empty expression"),
        ("1 +", 3, "expected an expression, found end of expression"),
        ("-", 1, "expected an expression, found end of expression"),
        ("and 1", 0, "expected an expression, found 'and'"),
        ("1 * * 2", 4, "expected an expression, found '*'"),
        # names and functions
        (
            "foo(1)",
            0,
            "unknown function 'foo' (known: abs, avg, ceil, clamp, cos, exp, floor, if, ln, log10, max, min, round, sin, sqrt, sum)",
        ),
        ("1 + MAX(1)", 4, "unknown function 'MAX'"),
        ("1 + bar", 4, "unknown name 'bar'"),
        ("True", 0, "unknown name 'True'"),
        ("sqrt", 0, "function 'sqrt' must be called"),
        ("if", 0, "function 'if' must be called"),
        ("max()", 0, "max() takes at least 1 argument, got 0"),
        ("abs(1, 2)", 0, "abs() takes exactly 1 argument, got 2"),
        ("1 + sqrt()", 4, "sqrt() takes exactly 1 argument, got 0"),
        ("round()", 0, "round() takes 1 or 2 arguments, got 0"),
        ("round(1, 2, 3)", 0, "round() takes 1 or 2 arguments, got 3"),
        ("clamp(1, 2)", 0, "clamp() takes exactly 3 arguments, got 2"),
        ("if(1, 2)", 0, "if() takes exactly 3 arguments"),
        ("1 + if(1, 2, 3, 4)", 4, "if() takes exactly 3 arguments (cond, then, else), got 4"),
        # operators
        ("1 < 2 < 3", 6, "comparisons do not chain: write 'a < b and b < c' instead"),
        ("1 == 2 != 3", 7, "comparisons do not chain"),
        ("1 < 2 == true", 6, "comparisons do not chain"),
        ("1 + not 0", 4, "'not' must be put in parentheses here"),
        ("1 = 2", 2, "unexpected character '=' (use '==' to compare)"),
        ("!1", 0, "unexpected character '!'"),
        ("1 ** 2", 2, "'**' is not an operator (use '^' for power)"),
        ("1 && 2", 2, "(use 'and')"),
        ("1 || 2", 2, "(use 'or')"),
        ("1 + é", 4, "unexpected character 'é'"),
        # numbers
        ("1e", 1, "malformed number: the exponent has no digits"),
        ("1e+", 1, "malformed number"),
        ("1.2.3", 3, "malformed number: unexpected '.'"),
        ("12abc", 2, "malformed number: unexpected 'a'"),
        ("0x10", 1, "malformed number"),
        ("1e999", 0, "number too large"),
        ("1_000", 1, "malformed number"),
        ("１", 0, "unexpected character"),  # fullwidth digit
    ],
)
def test_compile_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    err = info.value
    assert fragment in err.reason, err.reason
    assert err.position == position, str(err)
    assert str(err) == f"at {position}: {err.reason}"
    assert isinstance(err, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "__import__",
        "().__class__",
        "().__class__.__bases__[0].__subclasses__()",
        "{a}.x",
        "{a}.__class__",
        "{a}[0]",
        "{a}()",
        "lambda",
        "lambda: 1",
        "lambda x: x",
        "open('/etc/passwd')",
        "eval('1')",
        "exec('1')",
        "globals()",
        "__builtins__",
        "import os",
        "1; 2",
        "1 if 1 else 2",
        "x.y",
        "[1, 2]",
        "f'{1}'",
        "max.__call__(1)",
        "abs(1).real",
        "1 .real",
        "{a} @ {b}",
        "`ls`",
        "$HOME",
        "\\x41",
        "#1",
    ],
)
def test_python_syntax_is_rejected(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(text)


# --------------------------------------------------------------------------- inputs and limits


def test_inputs_collects_paths() -> None:
    e = compile_expression("{a/b} + {a/b} * {c-d/e_f} + if({g}, {h}, 1) + max({i}, sum({j}))")
    assert e.inputs == frozenset({"a/b", "c-d/e_f", "g", "h", "i", "j"})
    assert compile_expression("1 + 2").inputs == frozenset()
    assert e.text == "{a/b} + {a/b} * {c-d/e_f} + if({g}, {h}, 1) + max({i}, sum({j}))"


def test_expression_value_semantics() -> None:
    a, b = compile_expression("{a} + 1"), compile_expression("{a} + 1")
    assert a == b and hash(a) == hash(b) and a != compile_expression("{a}+1")
    assert isinstance(a, Expression)
    copy = pickle.loads(pickle.dumps(a))
    assert copy == a and copy.evaluate({"a": 2}.get) == 3.0
    err = pickle.loads(pickle.dumps(ExpressionError("boom", 7)))
    assert (err.reason, err.position, str(err)) == ("boom", 7, "at 7: boom")


def test_length_limit() -> None:
    ok = "1+" * ((MAX_LENGTH - 1) // 2) + "1"
    assert len(ok) <= MAX_LENGTH and ev(ok) == float(ok.count("1"))
    with pytest.raises(ExpressionError) as info:
        compile_expression(ok + "+1" + " " * MAX_LENGTH)
    assert info.value.position == MAX_LENGTH and "limit 1000" in info.value.reason


@pytest.mark.parametrize(
    ("opener", "closer", "offset"),
    [("(", ")", 0), ("-", "", 0), ("+", "", 0), ("not ", "", 0), ("abs(", ")", 0), ("2^", "", 1), ("if(1,", ",0)", 0)],
)
def test_depth_limit(opener: str, closer: str, offset: int) -> None:
    compile_expression(opener * MAX_DEPTH + "1" + closer * MAX_DEPTH)
    with pytest.raises(ExpressionError) as info:
        compile_expression(opener * (MAX_DEPTH + 1) + "1" + closer * (MAX_DEPTH + 1))
    assert info.value.position == MAX_DEPTH * len(opener) + offset
    assert "nested too deeply (limit 64" in info.value.reason


def test_deepest_expressions_evaluate() -> None:
    # Every precedence level stacked inside each parenthesis: the worst case for stack depth.
    unit = "{a}or{a}and{a}=={a}+{a}*-("
    n = min(MAX_DEPTH // 2, (MAX_LENGTH - 10) // (len(unit) + 1))
    text = unit * n + "1" + ")" * n
    assert ev(text, a=0.0) is False
    assert ev("(" * MAX_DEPTH + "{a}" + ")" * MAX_DEPTH, a=2) == 2.0
    assert ev("-" * MAX_DEPTH + "{a}", a=2) == 2.0
    assert ev("not " * MAX_DEPTH + "{a}", a=2) is True


def test_reference_limit() -> None:
    ok = "+".join(["{a}"] * MAX_REFERENCES)
    assert ev(ok, a=1) == float(MAX_REFERENCES)
    with pytest.raises(ExpressionError) as info:
        compile_expression(ok + "+{b}")
    assert info.value.position == len(ok) + 1
    assert "too many tag references (limit 200)" in info.value.reason


# --------------------------------------------------------------------------- property tests

# Arithmetic trees: ("num", n) | ("var", name) | ("neg", t) | (op, left, right).
_PREC = {"num": 5, "var": 5, "neg": 3, "+": 1, "-": 1, "*": 2, "/": 2, "%": 2, "^": 4}
_VARS = ("v0", "v1", "v2")

trees = st.recursive(
    st.integers(0, 9).map(lambda n: ("num", n)) | st.sampled_from(_VARS).map(lambda v: ("var", v)),
    lambda sub: st.tuples(st.just("neg"), sub) | st.tuples(st.sampled_from(["+", "-", "*", "/", "%", "^"]), sub, sub),
    max_leaves=12,
)


class RefError(Exception):
    pass


def reference(tree: tuple, env: dict[str, int]) -> float:
    """Straight IEEE-float evaluation of the tree, every value checked for finiteness."""
    kind = tree[0]
    if kind == "num":
        return float(tree[1])
    if kind == "var":
        return float(env[tree[1]])
    if kind == "neg":
        return -reference(tree[1], env)
    x, y = reference(tree[1], env), reference(tree[2], env)
    try:
        v = {
            "+": lambda: x + y,
            "-": lambda: x - y,
            "*": lambda: x * y,
            "/": lambda: x / y,
            "%": lambda: x % y,
            "^": lambda: x**y,
        }[kind]()
    except (ZeroDivisionError, OverflowError) as e:
        raise RefError from e
    if isinstance(v, complex) or not math.isfinite(v):
        raise RefError
    return v


def render_minimal(tree: tuple) -> str:
    """Only the parentheses the precedence rules require, no spaces."""
    kind = tree[0]
    if kind == "num":
        return str(tree[1])
    if kind == "var":
        return "{" + tree[1] + "}"

    def sub(child: tuple, paren: bool) -> str:
        text = render_minimal(child)
        return f"({text})" if paren else text

    if kind == "neg":
        return "-" + sub(tree[1], _PREC[tree[1][0]] < 3)
    left, right = tree[1], tree[2]
    if kind == "^":  # right associative; a signed right operand needs no parentheses
        return sub(left, _PREC[left[0]] <= 4) + "^" + sub(right, _PREC[right[0]] < 3)
    p = _PREC[kind]
    return sub(left, _PREC[left[0]] < p) + kind + sub(right, _PREC[right[0]] <= p)


def render_full(tree: tuple) -> str:
    """Every operation parenthesized, spaces around operators."""
    kind = tree[0]
    if kind == "num":
        return str(tree[1])
    if kind == "var":
        return "{" + tree[1] + "}"
    if kind == "neg":
        return f"(-{render_full(tree[1])})"
    return f"({render_full(tree[1])} {kind} {render_full(tree[2])})"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees, env=st.fixed_dictionaries({v: st.integers(-9, 9) for v in _VARS}))
def test_arithmetic_matches_reference(tree: tuple, env: dict[str, int]) -> None:
    try:
        expected: float | None = reference(tree, env)
    except RefError:
        expected = None
    for text in (render_minimal(tree), render_full(tree)):
        e = compile_expression(text)
        if expected is None:
            with pytest.raises(EvalError):
                e.evaluate(env.get)
        else:
            result = e.evaluate(env.get)
            assert type(result) is float
            assert result == expected, (text, result, expected)


_SOUP = [
    *"0123456789.eE+-*/%^(),<>=!{}/_ ab",
    "{a}",
    "{a/b-c}",
    "and",
    "or",
    "not ",
    "true",
    "false",
    "if(",
    "max(",
    "round(",
    "sqrt(",
    "==",
    "<=",
    "1e308",
    "0",
]
_INPUTS = [0.0, -1.0, 2.5, 1e308, -1e308, True, False, None, 7]


def _check_compiles_or_expression_error(text: str) -> None:
    try:
        e = compile_expression(text)
    except ExpressionError as err:
        assert 0 <= err.position <= max(len(text), MAX_LENGTH)
        return
    try:
        result = e.evaluate(lambda path: _INPUTS[len(path) % len(_INPUTS)])
    except EvalError:
        return
    assert type(result) in (float, bool)
    assert result - result == 0  # finite


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_fuzz_arbitrary_text(text: str) -> None:
    _check_compiles_or_expression_error(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_SOUP), max_size=40).map("".join))
def test_fuzz_token_soup(text: str) -> None:
    _check_compiles_or_expression_error(text)
