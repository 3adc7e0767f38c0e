"""Snippet stride: how many seconds one feature snippet covers.

The released I3D features take one snippet per 16 frames at 25 fps (0.64 s); other
feature sets (ActivityNet-1.3, HACS, users' own) have other strides, set in
``data.snippet_seconds``. Localization turns snippet indices into seconds with it and the
``wtalc`` protocol turns seconds into snippet indices with its inverse.
"""

from __future__ import annotations

from fractions import Fraction

RELEASED_SNIPPET_SECONDS = 16 / 25


def snippets_per_second(snippet_seconds: float) -> float:
    """The inverse stride, exact for strides that are ratios of small integers (0.64 -> 25/16).

    ``1 / 0.64`` in floating point is not 1.5625; strides are frame counts over frame
    rates, so the nearest small fraction is inverted instead.
    """
    if not snippet_seconds > 0:
        raise ValueError(f"snippet_seconds must be positive, got {snippet_seconds!r}")
    return float(1 / Fraction(float(snippet_seconds)).limit_denominator(1_000_000))
