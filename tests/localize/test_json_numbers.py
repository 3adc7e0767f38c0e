"""Bulk JSON number conversion: bit for bit what ``float`` gives, on every path."""

import decimal
import random
import struct

import numpy as np
import pytest

import hamnet.localize.json_numbers as module
from hamnet.localize.json_numbers import json_floats

# decimals of 19 digits whose long double quotient lies on a float64 midpoint without
# being one: rounding that quotient to float64 gives the wrong neighbour
DOUBLE_ROUNDING = [b"1.913011053237898218", b"1.082372988196647623", b"1.612783105040712317"]


def _bits(values) -> list[int]:
    return np.asarray(values, dtype=np.float64).view(np.uint64).tolist()


def _assert_like_float(texts: list[bytes]) -> None:
    assert _bits(json_floats(texts)) == _bits([float(t) for t in texts])


def _random_doubles(rng: random.Random, count: int) -> list[bytes]:
    """repr of float64 values with random bits (any exponent, both signs)."""
    texts = []
    while len(texts) < count:
        (value,) = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))
        if np.isfinite(value):
            texts.append(repr(value).encode())
    return texts


def _random_decimals(rng: random.Random, count: int, digits: tuple[int, int]) -> list[bytes]:
    """JSON numbers of ``digits`` digits, the dot anywhere (or none), either sign."""
    texts = []
    for _ in range(count):
        body = str(rng.randrange(10 ** rng.randint(*digits)))
        point = rng.randint(0, len(body))
        whole, fraction = body[:point] or "0", body[point:]
        if len(whole) > 1:
            whole = whole.lstrip("0") or "0"
        text = f"{whole}.{fraction}" if fraction else whole
        texts.append((rng.choice(["", "-"]) + text).encode())
    return texts


def test_reprs_of_random_doubles():
    _assert_like_float(_random_doubles(random.Random(0), 20000))


def test_scores_and_times_as_hamnet_writes_them():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.random(20000), rng.uniform(0, 3000, 20000)])
    texts = [repr(float(v)).encode() for v in values]
    assert _bits(json_floats(texts)) == _bits(values)


@pytest.mark.parametrize("digits", [(1, 19), (17, 19), (20, 23)])
def test_decimals_of_any_length(digits):
    _assert_like_float(_random_decimals(random.Random(digits[0]), 20000, digits))


def test_midpoints_and_their_neighbours():
    """Exact halfway cases (ties to even) and the decimals of 17 to 19 digits on both
    sides of random midpoints."""
    texts = [b"9007199254740993", b"9007199254740995", b"0.5", b"2.5", b"0.1"]
    rng = random.Random(2)
    context = decimal.Context(prec=60)
    for _ in range(3000):
        low = rng.uniform(0, 1000)
        mid = context.divide(decimal.Decimal(low) + decimal.Decimal(np.nextafter(low, 2e3)), 2)
        for digits in (17, 18, 19):
            for rounding in (decimal.ROUND_FLOOR, decimal.ROUND_CEILING):
                near = decimal.Context(prec=digits, rounding=rounding).plus(mid)
                texts.append(f"{near:f}".encode())
    _assert_like_float(texts + DOUBLE_ROUNDING)


@pytest.mark.skipif(not module.EXTENDED, reason="no 64-bit long double here")
def test_the_midpoint_check_is_needed():
    """The plain long double quotient, rounded, differs from ``float`` on these texts."""
    for text in DOUBLE_ROUNDING:
        whole, fraction = text.split(b".")
        quotient = np.longdouble(int(whole + fraction)) / module.POWERS_OF_TEN[len(fraction)]
        assert float(quotient.astype(np.float64)) != float(text)
        assert json_floats([text])[0] == float(text)


def test_zeros_exponents_and_long_texts():
    texts = [b"0", b"-0", b"0.0", b"-0.0", b"0.000", b"-5", b"120", b"1e5", b"1E-5"]
    texts += [b"-2.5e+300", b"4.9e-324", b"1.7976931348623157e308", b"18446744073709551615"]
    texts += [b"9999999999999999999", b"99999999999999999999", b"0.1" + b"0" * 30 + b"1"]
    texts += [b"123456789012345678901234", b"-12345678901234567890.1234"]
    _assert_like_float(texts)
    assert np.signbit(json_floats([b"-0", b"-0.0", b"0"])).tolist() == [True, True, False]


NOT_NUMBERS = [b"01", b"-01.5", b"00", b"1.", b".5", b"-.5", b"+1", b"--1", b"-", b"1.2.3"]
NOT_NUMBERS += [b"1e", b"1e+", b"e5", b"1.e5", b"1E5.0", b"1_0", b"0x1", b"Infinity", b"1 "]
NOT_NUMBERS += [b"1-2", b"1" * 30 + b".", b"0" + b"1" * 30]


@pytest.mark.parametrize("extended", [True, False])
def test_texts_outside_json_syntax_give_none(monkeypatch, extended):
    monkeypatch.setattr(module, "EXTENDED", extended and module.EXTENDED)
    good = [b"0", b"-0.5", b"10", b"1e5", b"-2.5E-3", b"1" * 30]
    assert json_floats(good) is not None
    for text in NOT_NUMBERS:
        assert json_floats(good + [text] + good) is None, text


def test_block_seams_and_empty_input(monkeypatch):
    texts = _random_doubles(random.Random(3), 1000) + DOUBLE_ROUNDING * 5
    expected = _bits([float(t) for t in texts])
    monkeypatch.setattr(module, "BLOCK", 7)
    assert _bits(json_floats(texts)) == expected
    assert json_floats([]).shape == (0,) and json_floats([]).dtype == np.float64


def test_without_a_wide_long_double(monkeypatch):
    texts = _random_doubles(random.Random(4), 2000) + DOUBLE_ROUNDING
    monkeypatch.setattr(module, "EXTENDED", False)
    _assert_like_float(texts)
