"""Resampling a video of T snippets to exactly n (reference §5).

With bin starts b_i = floor(i * T / n): "random perturbation" draws index i < n-1
uniformly from b_i..b_{i+1} inclusive (b_i when they are equal) and the last index from
b_{n-1}..T-1; uniform sampling takes b_i. Both are the identity when T == n, and repeat
snippets when T < n.
"""

from __future__ import annotations

import numpy as np


def _bin_starts(T: int, n: int) -> np.ndarray:
    """b_0..b_n (b_n = T), int64 [n + 1]."""
    if T < 1 or n < 1:
        raise ValueError(f"cannot resample {T} snippets to {n}: both must be >= 1")
    return (np.arange(n + 1, dtype=np.int64) * T) // n


def uniform_indices(T: int, n: int) -> np.ndarray:
    """Indices b_i, int64 [n]."""
    return _bin_starts(T, n)[:n]


def random_perturb_indices(T: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Random-perturbation indices, int64 [n], non-decreasing, in [0, T)."""
    if n == T:
        return np.arange(n, dtype=np.int64)
    starts = _bin_starts(T, n)
    indices = np.empty(n, dtype=np.int64)
    # integers(lo, lo + 1) is always lo: the "b_i == b_{i+1}" case needs no branch.
    indices[: n - 1] = rng.integers(starts[: n - 1], starts[1:n] + 1)
    last = int(starts[n - 1])
    indices[n - 1] = rng.integers(last, T) if last < T - 1 else last
    return indices
