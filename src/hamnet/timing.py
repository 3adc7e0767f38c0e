"""Snippet stride: how many seconds one feature snippet covers.

The released I3D features take one snippet per 16 frames at 25 fps (0.64 s); other
feature sets (ActivityNet-1.3, HACS, users' own) have other strides, set in
``data.snippet_seconds``. Localization turns snippet indices into seconds with it and the
``wtalc`` protocol turns seconds into snippet indices with its inverse.
"""

from __future__ import annotations

RELEASED_SNIPPET_SECONDS = 16 / 25
# A stride below a millisecond (1,000 fps) or above a minute makes a degenerate grid: the
# inverse stride is no small fraction, or whole videos fall into one snippet.
SNIPPET_SECONDS_RANGE = (1e-3, 60.0)


def snippet_seconds_problem(value) -> str | None:
    """Why ``value`` is no usable snippet stride (None: it is one)."""
    low, high = SNIPPET_SECONDS_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be a number of seconds, got {type(value).__name__} {value!r}"
    if not low <= value <= high:  # NaN fails too
        return f"must lie in [{low:g}, {high:g}] seconds (a degenerate snippet grid), got {value!r}"
    return None


def snippets_per_second(snippet_seconds: float) -> float:
    """The inverse stride, exact for strides that are ratios of small integers (0.64 -> 25/16).

    ``1 / 0.64`` in floating point is not 1.5625; strides are frame counts over frame
    rates, so the nearest small fraction is inverted instead.
    """
    problem = snippet_seconds_problem(snippet_seconds)
    if problem:
        raise ValueError(f"snippet_seconds {problem}")
    from fractions import Fraction  # here: every command imports this module, few need it

    return float(1 / Fraction(float(snippet_seconds)).limit_denominator(1_000_000))
