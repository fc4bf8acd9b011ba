"""A safe arithmetic evaluator: the expressions a person types into a question ("6 * 7",
"(2 + 3) * 4", "12 / 4", "2^10", "-3 - -4", "1.5 * 4"), exactly, as fractions. No I/O.

Never ``eval``: a small recursive-descent parser that knows numbers, ``+ - * / ^``,
parentheses and unary signs, and nothing else, so text from a prompt cannot run code.
Work is bounded too, so a prompt cannot make the simulated fleet spin: the expression's
length (``MAX_EXPRESSION_CHARS``), its nesting (``MAX_NESTING``), exponents
(``MAX_EXPONENT``) and the size of every intermediate value (``MAX_DIGITS``). Anything
outside that, division by zero included, is "not an answerable expression": None.

Grammar (``^`` binds tighter than a unary sign, and to the right, as in maths: -2^2 = -4)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := ("+" | "-") unary | power
    power  := atom ("^" unary)?
    atom   := NUMBER | "(" expr ")"
"""

import re
from fractions import Fraction

MAX_EXPRESSION_CHARS = 200
"""A question's arithmetic is a line, not a program; longer text is refused before parsing."""

MAX_NESTING = 32
"""Parentheses deep enough for any hand-written expression, far from Python's recursion limit."""

MAX_EXPONENT = 64
"""|exponent| allowed in ``^``: 2^64 is as big as a person asks; 10^1000000 would take seconds."""

MAX_DIGITS = 60
"""Decimal digits allowed in any numerator or denominator along the way (checked after every
operation), so a chain of multiplications cannot grow a number without bound either."""

_TOKEN_RE = re.compile(r"\s*(?:(\d+(?:\.\d*)?|\.\d+)|([-+*/^()]))")
_MAX_BITS = int(MAX_DIGITS * 3.33) + 1  # log2(10) ~ 3.32: bits of a MAX_DIGITS-digit number


class NotArithmetic(ValueError):
    """The text is not an expression this evaluator answers (the message says why)."""


def tokenize(text: str) -> list[str]:
    """Numbers and operators; NotArithmetic at the first character that is neither."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise NotArithmetic(f"longer than {MAX_EXPRESSION_CHARS} characters")
    tokens: list[str] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise NotArithmetic(f"unexpected {text[pos:].strip()[:10]!r}")
        tokens.append(m[1] or m[2])
        pos = m.end()
    if not tokens:
        raise NotArithmetic("empty")
    return tokens


def _bounded(value: Fraction) -> Fraction:
    if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
        raise NotArithmetic(f"a value past {MAX_DIGITS} digits")
    return value


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise NotArithmetic("ends too early")
        self.pos += 1
        return token

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            value = _bounded(value + self.term() if self.take() == "+" else value - self.term())
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            if self.take() == "*":
                value = _bounded(value * self.unary())
            else:
                divisor = self.unary()
                if divisor == 0:
                    raise NotArithmetic("division by zero")
                value = _bounded(value / divisor)
        return value

    def unary(self) -> Fraction:
        if self.peek() in ("+", "-"):
            sign = self.take()
            self._enter()
            value = self.unary()
            self.depth -= 1
            return -value if sign == "-" else value
        return self.power()

    def power(self) -> Fraction:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        self._enter()
        exponent = self.unary()
        self.depth -= 1
        if exponent.denominator != 1 or abs(exponent.numerator) > MAX_EXPONENT:
            raise NotArithmetic(f"exponent {exponent} (whole numbers up to {MAX_EXPONENT} only)")
        if base == 0 and exponent < 0:
            raise NotArithmetic("division by zero")
        if max(base.numerator.bit_length(), base.denominator.bit_length()) * abs(exponent.numerator) > 2 * _MAX_BITS:
            raise NotArithmetic(f"a value past {MAX_DIGITS} digits")
        return _bounded(base ** int(exponent))

    def atom(self) -> Fraction:
        token = self.take()
        if token == "(":
            self._enter()
            value = self.expr()
            self.depth -= 1
            if self.take() != ")":
                raise NotArithmetic("unbalanced parentheses")
            return value
        if token[0].isdigit() or token[0] == ".":
            return _bounded(Fraction(token))
        raise NotArithmetic(f"unexpected {token!r}")

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise NotArithmetic(f"nested deeper than {MAX_NESTING}")


def evaluate(text: str) -> Fraction:
    """The exact value of the expression ``text``; NotArithmetic when it is not one (see module)."""
    parser = _Parser(tokenize(text))
    value = parser.expr()
    if parser.peek() is not None:
        raise NotArithmetic(f"unexpected {parser.peek()!r}")
    return value


def is_operation(text: str) -> bool:
    """Whether ``text`` holds at least one binary operation (``-5`` and ``(3)`` do not): a bare
    number in a question ("What is 5?") is not arithmetic to be done."""
    try:
        tokens = tokenize(text)
    except NotArithmetic:
        return False
    for previous, token in zip(tokens, tokens[1:], strict=False):
        operand_before = previous[0].isdigit() or previous[0] == "." or previous == ")"
        if token in "+-*/^" and operand_before:
            return True
    return False


def format_number(value: Fraction) -> str:
    """As the pipeline's number parser writes a number (agents/models/parsing.py): ``"42"`` when
    integral, else the float's repr (``"3.5"``, ``"0.3333333333333333"``)."""
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value))
