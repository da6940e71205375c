"""Bounded reading of rationals and JSON fields, and writing of rationals of any size.

Every number read from a file or an argument costs time near-linear in its length, and no more
than :data:`MAX_DIGITS` digits per integer are read. Python's own int <-> decimal conversions
are quadratic and refuse more than 4300 digits (``sys.get_int_max_str_digits``); integers of
more than :data:`_SMALL` digits go through python-flint instead (GMP: subquadratic, no limit,
and its conversions to and from Python ints are linear), so that every certificate can be
written and read back whatever its numbers' sizes, without touching the interpreter's limit.

* :func:`parse_certificate`: the certificate grammar, ``[+-]digits`` or ``[+-]digits/digits``
  as a JSON string (or a JSON integer); nothing else (no exponents, decimals, whitespace,
  underscores or Unicode digits).
* :func:`parse_user`: arguments (bounds, API values) also take decimals and scientific notation,
  ``"0.25"``, ``"-1.5e-3"``, with an exponent of at most :data:`MAX_EXPONENT`.
* :func:`text` writes a Fraction exactly (``"p/q"`` or ``"p"``); :func:`show` abbreviates a
  number for a message (``"an integer of about 5,000 digits"``).
* :func:`read_json` parses JSON text with the same bounds (integer literals of at most
  :data:`_SMALL` digits, no NaN or infinities; nesting too deep for the parser is an error, not
  a crash), and :func:`get`, :func:`items`, :func:`integer`, :func:`rationals` and friends
  check one field each. They raise :class:`Malformed` with the field's relative path; callers
  prepend theirs with :meth:`Malformed.under`, so the success path builds no strings and the
  message names the field in full: ``regions[3].facets[0].a[1]``.

>>> parse_certificate("-3/6"), parse_user(" 1.5e-2 "), text(Fraction(10) ** 700)[:5]
(Fraction(-1, 2), Fraction(3, 200), '10000')
>>> show(10 ** 5000)
'an integer of about 5,000 digits'
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

from ._deps import flint

__all__ = ["MAX_DIGITS", "MAX_EXPONENT", "Malformed", "coprime_fraction", "parse_certificate",
           "parse_user", "show", "text"]

#: The most digits any one integer (a numerator or a denominator) may have, in a certificate or an
#: argument. A genuine certificate's numbers come from float64 parameters (at most 1,100 bits
#: each) through products and solutions of linear systems in at most 10 bounded dimensions; even
#: the volumes of deep nets stay orders of magnitude below this.
MAX_DIGITS = 1_000_000

#: The largest decimal exponent ``e`` of ``"1.5e<e>"`` in an argument (floats end near 1e308).
MAX_EXPONENT = 1000

# Python's own conversions below this many digits: fast, and under any limit the interpreter can
# be set to (the least is 640 digits)
_SMALL = 600
_SMALL_BITS = 1990  # 2^1990 < 10^600

_CERT = re.compile(r"([+-]?)([0-9]+)(?:/([0-9]+))?")
_RATIO = re.compile(r"([+-]?)([0-9]+)/([0-9]+)")
_DECIMAL = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?")


class Malformed(ValueError):
    """A value that is not in its grammar or over a limit; ``path`` says where (relative)."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def under(self, prefix: str) -> Malformed:
        """This error, one level further out: ``prefix`` (``".regions"``, ``"[3]"``) prepended."""
        self.path = prefix + self.path
        return self

    def where(self, root: str = "") -> str:
        """``"<path>: <message>"``, the path from ``root`` (leading dots dropped)."""
        path = (root + self.path).lstrip(".")
        return f"{path}: {self.message}" if path else self.message

    def __str__(self) -> str:
        return self.where()


def _coprime_fraction_311(n: int, d: int) -> Fraction:
    """Before Python 3.12: what ``Fraction(n, d, _normalize=False)`` does once its argument checks
    pass (and what 3.12's ``Fraction._from_coprime_ints`` does): set the two slots."""
    f = object.__new__(Fraction)
    f._numerator = n  # type: ignore[attr-defined]
    f._denominator = d  # type: ignore[attr-defined]
    return f


#: ``coprime_fraction(n, d)``: the Fraction ``n / d`` for Python ints ``n`` and ``d > 0`` already
#: in lowest terms (e.g. the ``p``, ``q`` of a python-flint ``fmpq``, which is always canonical),
#: without the gcd of ``Fraction(n, d)``. Never pass anything not known to be coprime, or an fmpz.
coprime_fraction = getattr(Fraction, "_from_coprime_ints", _coprime_fraction_311)


def _digits(s: str) -> int:
    """The non-negative integer written by the ASCII digits ``s`` (at most MAX_DIGITS)."""
    if len(s) <= _SMALL:
        return int(s)
    if len(s) > MAX_DIGITS:
        raise Malformed(f"an integer of {len(s)} digits; the limit is {MAX_DIGITS:,} digits "
                        "(exactrelu._parse.MAX_DIGITS)")
    return int(flint.fmpz(s))


def ratio(n: int, d: int) -> Fraction:
    """``n / d`` in lowest terms (``d > 0``), with flint's subquadratic gcd for large integers."""
    if n.bit_length() <= _SMALL_BITS and d.bit_length() <= _SMALL_BITS:
        g = math.gcd(n, d)
        return coprime_fraction(n // g, d // g)
    fn, fd = flint.fmpz(n), flint.fmpz(d)
    fg = fn.gcd(fd)
    if fg == 1:
        return coprime_fraction(n, d)
    return coprime_fraction(int(fn // fg), int(fd // fg))


def _too_long(s: str) -> str:
    return f"a string of {len(s):,} characters (the limit is {MAX_DIGITS:,} digits per integer)"


def clip(s: str, n: int = 40) -> str:
    """``repr(s)``, shortened to about ``n`` characters for a message."""
    return repr(s) if len(s) <= n else repr(s[:n]) + f"... ({len(s):,} characters)"


def kind(x: Any) -> str:
    """What a JSON value is, for a message: ``"the list [1, 2]"``, ``"a boolean"``."""
    if isinstance(x, bool):
        return f"the boolean {'true' if x else 'false'}"
    if x is None:
        return "null"
    if isinstance(x, str):
        return f"the string {clip(x)}"
    if isinstance(x, int):
        return f"the integer {show(x)}"
    if isinstance(x, float):
        return f"the float {x!r}"
    if isinstance(x, list):
        return f"a list of {len(x):,} item{'s' * (len(x) != 1)}"
    if isinstance(x, dict):
        return f"an object with {len(x):,} key{'s' * (len(x) != 1)}"
    return f"a {type(x).__name__}"


def parse_certificate(s: Any) -> Fraction:
    """A rational as a certificate writes it: ``"p/q"`` or ``"p"`` (a JSON integer also passes).

    >>> parse_certificate("12/8"), parse_certificate(-3)
    (Fraction(3, 2), Fraction(-3, 1))
    >>> try:
    ...     parse_certificate("1e1000000000")
    ... except Malformed as exc:
    ...     print(exc)
    '1e1000000000' is not a rational: write 'p/q' or 'p' (digits, an optional sign, nothing else)
    """
    t = type(s)
    if t is str:
        if len(s) > 2 * MAX_DIGITS + 2:
            raise Malformed(_too_long(s))
        m = _CERT.fullmatch(s)
        if m is None:
            raise Malformed(f"{clip(s)} is not a rational: write 'p/q' or 'p' (digits, an optional "
                            "sign, nothing else)")
        sign, num, den = m.groups()
        n = _digits(num)
        if sign == "-":
            n = -n
        if den is None:
            return coprime_fraction(n, 1)
        d = _digits(den)
        if d == 0:
            raise Malformed(f"{clip(s)} has a zero denominator")
        return ratio(n, d)
    if t is int:
        return coprime_fraction(s, 1)
    raise Malformed(f"expected a rational as a string 'p/q', got {kind(s)}")


def parse_user(s: str) -> Fraction:
    """A rational as a person writes it: ``"1/3"``, ``"-2"``, ``"0.25"``, ``"1.5e-3"``, ``".5"``
    (surrounding whitespace ignored); exponents up to :data:`MAX_EXPONENT` in size.

    >>> parse_user("-1/3"), parse_user("2.5E+2"), parse_user(".5")
    (Fraction(-1, 3), Fraction(250, 1), Fraction(1, 2))
    """
    if len(s) > 2 * MAX_DIGITS + 2:
        raise Malformed(_too_long(s))
    s = s.strip()
    m = _RATIO.fullmatch(s)
    if m is not None:
        sign, num, den = m.groups()
        n, d = _digits(num), _digits(den)
        if d == 0:
            raise Malformed(f"{clip(s)} has a zero denominator")
        return ratio(-n if sign == "-" else n, d)
    m = _DECIMAL.fullmatch(s)
    if m is None or not (m[2] or m[3]):
        raise Malformed(f"{clip(s)} is not a number: write e.g. '1/3', '-2', '0.25' or '1.5e-3'")
    sign, whole, frac, exp = m.groups()
    frac = frac or ""
    e = 0
    if exp is not None:
        body = exp.lstrip("+-").lstrip("0")
        if len(body) > len(str(MAX_EXPONENT)) or int(body or "0") > MAX_EXPONENT:
            raise Malformed(f"{clip(s)} has the exponent {clip(exp, 12)}; exponents may be at most "
                            f"{MAX_EXPONENT} in size (exactrelu._parse.MAX_EXPONENT)")
        e = int(exp)
    n = _digits((whole + frac) or "0")
    if sign == "-":
        n = -n
    e -= len(frac)
    if e >= 0:
        if len(whole + frac) + e > MAX_DIGITS:
            raise Malformed(f"{clip(s)} has more than {MAX_DIGITS:,} digits")
        return coprime_fraction(n * 10 ** e, 1)
    return ratio(n, 10 ** -e)


def _int_text(n: int) -> str:
    return str(n) if n.bit_length() <= _SMALL_BITS else str(flint.fmpz(n))


def text(x: Fraction) -> str:
    """``x`` exactly, as ``"p/q"`` (``"p"`` for an integer), of any size.

    >>> text(Fraction(-3, 4)), text(Fraction(5))
    ('-3/4', '5')
    """
    return ratio_text(x.numerator, x.denominator)


def ratio_text(n: int, d: int) -> str:
    """:func:`text` of ``n / d`` (coprime, ``d > 0``), without making the Fraction."""
    if d == 1:
        return _int_text(n)
    return f"{_int_text(n)}/{_int_text(d)}"


def _size(n: int) -> int:
    """About how many decimal digits ``n`` has (without writing it out)."""
    return max(1, round(abs(n).bit_length() * 0.30102999566398120))


def show(x: Any, limit: int = 60) -> str:
    """``x`` for a message: exact when at most ``limit`` digits long, else its size.

    >>> show(Fraction(1, 3)), show(-10 ** 100), show(Fraction(1, 3 ** 300))
    ('1/3', 'an integer of about 100 digits', 'a rational with a denominator of about 143 digits')
    """
    if isinstance(x, bool) or not isinstance(x, (int, Fraction)):
        return repr(x) if not isinstance(x, str) else clip(x)
    n, d = (x, 1) if isinstance(x, int) else (x.numerator, x.denominator)
    nb, db = abs(n).bit_length(), d.bit_length()
    if nb <= 3.3 * limit and db <= 3.3 * limit:
        return str(n) if d == 1 else f"{n}/{d}"
    if d == 1:
        return f"an integer of about {_size(n):,} digits"
    if nb <= 3.3 * limit:
        return f"a rational with a denominator of about {_size(d):,} digits"
    return f"a rational with a numerator of about {_size(n):,} digits"


def approx(x: Any, digits: int = 4) -> str:
    """``x`` for a message as a decimal of ``digits`` significant digits, with its exact value
    beside it unless the decimal is exact.

    >>> approx(Fraction(-8313851451734411, 9007199254740992)), approx(Fraction(1, 2)), approx(3)
    ('-0.923 (= -8313851451734411/9007199254740992)', '0.5', '3')
    """
    if isinstance(x, bool) or not isinstance(x, (int, Fraction)):
        return show(x)
    try:
        dec = f"{float(x):.{digits}g}"
    except OverflowError:
        return show(x)
    return dec if Fraction(dec) == x else f"{dec} (= {show(x)})"


def integer_text(n: int) -> str:
    """The decimal digits of ``n``, of any size (flint above :data:`_SMALL` digits)."""
    return _int_text(n)


# --------------------------------------------------------------------------------- JSON
#: The most digits of a JSON integer literal (indices and counts; rationals are strings) when the
#: interpreter's own limit is lifted (else that limit, at most 4300 digits, applies).
JSON_INT_DIGITS = _SMALL


def _json_int(s: str) -> int:
    if len(s.lstrip("-")) > JSON_INT_DIGITS:
        raise Malformed(f"a JSON integer of {len(s):,} digits; integers in a certificate have at "
                        f"most {JSON_INT_DIGITS} (write large rationals as strings 'p/q')")
    return int(s)


def _json_constant(s: str) -> Any:
    raise Malformed(f"{s} is not a JSON number (write rationals as strings 'p/q')")


def _json_float(s: str) -> float:
    v = float(s)
    if math.isinf(v):
        raise Malformed(f"the float {clip(s, 20)} is out of range (write rationals as strings "
                        "'p/q')")
    return v


def read_json(text: str) -> Any:
    """``json.loads(text)`` with the bounds above; any failure is :class:`Malformed`.

    >>> read_json('{"a": [1, "2/3"]}')
    {'a': [1, '2/3']}
    >>> try:
    ...     read_json("[" * 100000 + "]" * 100000)
    ... except Malformed as exc:
    ...     print(str(exc)[:35])
    nested too deeply for a certificate
    """
    import json
    import sys

    # json's own int() is much faster than a hook; it is bounded as long as the interpreter's
    # limit on int <-> str is (at most its default, 4300 digits): longer literals raise
    limit = sys.get_int_max_str_digits()
    hook = None if 0 < limit <= 4300 else _json_int
    try:
        return json.loads(text, parse_int=hook, parse_float=_json_float,
                          parse_constant=_json_constant)
    except Malformed:
        raise
    except RecursionError as exc:
        raise Malformed(f"nested too deeply for a certificate (JSON parser: {exc})") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc}") from None
    except (ValueError, MemoryError) as exc:
        if "integer string conversion" in str(exc):  # json's int() over the interpreter's limit
            raise Malformed(f"a JSON integer of more than {limit} digits (integers in a "
                            "certificate are indices and counts; rationals are strings 'p/q')"
                            ) from None
        raise Malformed(f"not JSON: {type(exc).__name__}: {exc}") from None


def obj(x: Any) -> dict:
    """``x`` if it is a JSON object."""
    if type(x) is not dict:
        raise Malformed(f"expected an object, got {kind(x)}")
    return x


def get(d: dict, key: str, default: Any = ...) -> Any:
    """``d[key]`` (``default`` when missing, if given)."""
    try:
        return d[key]
    except KeyError:
        if default is not ...:
            return default
        raise Malformed("missing", "." + key) from None


def items(x: Any, n: int | None = None, most: int | None = None, what: str = "items") -> list:
    """``x`` if it is a JSON list, of exactly ``n`` or at most ``most`` items."""
    if type(x) is not list:
        raise Malformed(f"expected a list, got {kind(x)}")
    if n is not None and len(x) != n:
        raise Malformed(f"expected {n:,} {what}, got {len(x):,}")
    if most is not None and len(x) > most:
        raise Malformed(f"{len(x):,} {what}; the limit is {most:,}")
    return x


def integer(x: Any, lo: int = 0, hi: int | None = None) -> int:
    """``x`` if it is a JSON integer (not a boolean) in ``[lo, hi)``."""
    if type(x) is not int:
        raise Malformed(f"expected an integer, got {kind(x)}")
    if x < lo or (hi is not None and x >= hi):
        bound = (f"at least {lo}" if hi is None else f"in [{lo}, {hi})" if hi > lo
                 else "none (nothing to refer to)")
        raise Malformed(f"{show(x)} is out of range (expected {bound})")
    return x


def integers(x: Any, lo: int = 0, hi: int | None = None, n: int | None = None) -> tuple[int, ...]:
    """``x`` if it is a list of integers in ``[lo, hi)`` (of exactly ``n``)."""
    items(x, n)
    for v in x:
        if type(v) is not int or v < lo or (hi is not None and v >= hi):
            k = next(k for k, v in enumerate(x)
                     if type(v) is not int or v < lo or (hi is not None and v >= hi))
            try:
                integer(x[k], lo, hi)
            except Malformed as exc:
                raise exc.under(f"[{k}]") from None
    return tuple(x)


def rational(x: Any) -> Fraction:
    """``x`` as a certificate writes a rational (:func:`parse_certificate`)."""
    return parse_certificate(x)


def rationals(x: Any, n: int | None = None, what: str = "coordinates") -> tuple[Fraction, ...]:
    """``x`` if it is a list of (exactly ``n``) rationals."""
    items(x, n, what=what)
    parse = parse_certificate
    out = []
    for k, v in enumerate(x):
        try:
            out.append(parse(v))
        except Malformed as exc:
            raise exc.under(f"[{k}]") from None
    return tuple(out)


def string(x: Any, most: int = 1 << 16) -> str:
    """``x`` if it is a JSON string of at most ``most`` characters."""
    if type(x) is not str:
        raise Malformed(f"expected a string, got {kind(x)}")
    if len(x) > most:
        raise Malformed(f"a string of {len(x):,} characters; the limit is {most:,}")
    return x


def boolean(x: Any) -> bool:
    """``x`` if it is a JSON boolean."""
    if type(x) is not bool:
        raise Malformed(f"expected true or false, got {kind(x)}")
    return x


def under(prefix: str, read: Any, *args: Any) -> Any:
    """``read(*args)``, with ``prefix`` prepended to the path of any :class:`Malformed`."""
    try:
        return read(*args)
    except Malformed as exc:
        raise exc.under(prefix) from None
