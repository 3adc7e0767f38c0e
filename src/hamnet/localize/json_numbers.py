"""JSON number texts -> float64 in bulk, bit for bit what ``float`` gives, and a check
that each text is a JSON number.

``float`` (CPython's correctly rounded strtod) costs about 0.4 us a number on the 17-digit
texts ``repr`` writes; a detections file at ActivityNet scale holds 715,000 of them. Here
the digits become an integer with array operations, and one long double division by a
power of ten gives the value:

* a text of at most 19 digits (dot and leading minus aside) and no exponent is
  ``m / 10**f`` with ``m < 10**19 < 2**64`` and ``f <= 19``: both exact in a long double
  of 64 mantissa bits (x86's extended format; IEEE quad has more), so the division is one
  correct rounding to 64 bits;
* rounding that to float64 gives the correctly rounded float64 unless the long double
  result lies exactly on a midpoint between two float64 values (rounding is monotonic and
  keeps the midpoints, which 64 bits can hold, in place; only a value rounded onto one
  can land on the wrong side). Those (117 of the 714,900 numbers of ``bench_eval.py``'s
  file) and every text with an exponent, more digits or 24 characters or more go to
  ``float``.

Where the long double is no wider than float64 (or the FPU is set to round it to 53
bits), every value comes from ``float``. The JSON syntax of the plain texts (digits, a
dot, a minus) is checked in the same pass, the others' by a regular expression.
"""

from __future__ import annotations

import re

import numpy as np

WIDTH = 24  # characters compared at once; longer texts (rare: repr needs at most 24) use float
BLOCK = 1 << 14  # texts converted together: their arrays stay in the CPU cache
MAX_DIGITS = 19  # 10**19 < 2**64: the digits fit a uint64 and a 64-bit long double mantissa
_ZERO, _DOT, _MINUS = ord("0"), ord("."), ord("-")


def _has_64_bit_long_double() -> bool:
    one = np.longdouble(1)
    return np.finfo(np.longdouble).nmant >= 63 and one + np.longdouble(2) ** -63 != one


EXTENDED = _has_64_bit_long_double()
JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# 10**0 .. 10**19, exact in a 64-bit mantissa (5**19 < 2**64), built by exact products
POWERS_OF_TEN = np.cumprod(np.array([1] + [10] * MAX_DIGITS, dtype=np.longdouble))


def json_floats(texts: list[bytes]) -> np.ndarray | None:
    """float64 values of JSON number texts, identical to ``[float(t) for t in texts]``,
    or None when a text is not a JSON number (``JSON_NUMBER``)."""
    values = np.empty(len(texts), dtype=np.float64)
    for start in range(0, len(texts), BLOCK):
        block = texts[start : start + BLOCK]
        converted = _block_floats(block)
        if converted is None:
            return None
        values[start : start + len(block)] = converted
    return values


def _block_floats(texts: list[bytes]) -> np.ndarray | None:
    # one row per character position, one column per text: each step below is a vector op
    chars = np.array(texts, dtype=f"S{WIDTH}").view(np.uint8).reshape(len(texts), WIDTH)
    chars = np.ascontiguousarray(chars.T)
    scan = _Scan(chars)
    if not _all_json_numbers(texts, scan):
        return None
    if not EXTENDED:
        return np.fromiter(map(float, texts), dtype=np.float64, count=len(texts))
    slow = ~scan.plain | (scan.digits > MAX_DIGITS)
    fraction = np.minimum(scan.fraction, MAX_DIGITS)  # the slow ones are redone below
    exact = scan.mantissa.astype(np.longdouble) / POWERS_OF_TEN[fraction]
    values = exact.astype(np.float64)
    slow |= _on_a_midpoint(exact, values)
    np.negative(values, out=values, where=scan.negative)
    for i in np.flatnonzero(slow).tolist():
        values[i] = float(texts[i])
    return values


class _Scan:
    """What one pass over the characters [WIDTH, n] finds, per text: its digits read as
    one integer (wrapping past 2**64: such texts have too many digits and are redone),
    the number of digits and of those after the dot, whether it is *plain* (digits, at
    most one dot and a leading minus, shorter than WIDTH) and, if so, whether it is a
    JSON number (a digit first, no leading zero before a digit, a digit after the dot)."""

    def __init__(self, chars: np.ndarray) -> None:
        count = chars.shape[1]
        value = chars - np.uint8(_ZERO)
        is_digit = value < 10
        value *= is_digit  # 0 at every other character
        scale = is_digit.view(np.uint8) * np.uint8(9) + np.uint8(1)  # 10 at a digit, else 1
        self.mantissa = np.zeros(count, dtype=np.uint64)
        self.fraction = np.zeros(count, dtype=np.uint8)
        after_dot, was_dot = np.zeros(count, dtype=bool), np.zeros(count, dtype=bool)
        no_digit_after_dot = np.zeros(count, dtype=bool)
        for row in range(chars.shape[0]):
            self.mantissa *= scale[row]
            self.mantissa += value[row]
            no_digit_after_dot |= was_dot & ~is_digit[row]
            was_dot = chars[row] == _DOT
            after_dot |= was_dot
            self.fraction += is_digit[row] & after_dot
        self.digits = is_digit.view(np.uint8).sum(axis=0, dtype=np.uint8)
        self.negative = chars[0] == _MINUS
        points = (chars == _DOT).view(np.uint8).sum(axis=0, dtype=np.uint8)
        used = (chars != 0).view(np.uint8).sum(axis=0, dtype=np.uint8)
        self.plain = (used == self.digits + points + self.negative) & (points <= 1)
        self.plain &= chars[-1] == 0
        columns = np.arange(count)
        lead = chars[self.negative.view(np.uint8), columns]
        after_lead = chars[self.negative.view(np.uint8) + 1, columns]
        leading_zero = (lead == _ZERO) & (after_lead - np.uint8(_ZERO) < 10)
        self.well_formed = (lead - np.uint8(_ZERO) < 10) & ~leading_zero & ~no_digit_after_dot


def _all_json_numbers(texts: list[bytes], scan: _Scan) -> bool:
    """Plain texts by the scan, the others (exponents, long texts: few) one by one."""
    if not (scan.well_formed | ~scan.plain).all():
        return False
    return all(JSON_NUMBER.fullmatch(texts[i]) for i in np.flatnonzero(~scan.plain).tolist())


def _on_a_midpoint(exact: np.ndarray, rounded: np.ndarray) -> np.ndarray:
    """Whether each non-negative long double may lie on a midpoint between two float64
    values (then rounding it to float64 may differ from rounding the decimal value).

    ``exact - rounded`` is exact (the two are within a factor 2: Sterbenz); a midpoint is
    half a gap from ``rounded``, and the gap below ``rounded`` is the smaller one (half
    the gap above at a power of two), so this flags every midpoint and few others."""
    gap_below = rounded - np.nextafter(rounded, -np.inf)
    return 2 * np.abs(exact - rounded) >= gap_below
