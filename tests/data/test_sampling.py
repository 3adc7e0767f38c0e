"""Resampling to num_segments (reference §5): invariants and hand-worked cases."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hamnet.data.sampling import random_perturb_indices, uniform_indices

sizes = st.integers(min_value=1, max_value=3000)


@settings(max_examples=300, deadline=None)
@given(T=sizes, n=st.integers(min_value=1, max_value=600), seed=st.integers(0, 2**32 - 1))
def test_random_perturbation_invariants(T: int, n: int, seed: int) -> None:
    indices = random_perturb_indices(T, n, np.random.default_rng(seed))
    assert indices.dtype == np.int64 and indices.shape == (n,)
    assert indices.min() >= 0 and indices.max() < T
    assert np.all(np.diff(indices) >= 0)
    starts = (np.arange(n + 1) * T) // n
    assert np.all(indices[: n - 1] >= starts[: n - 1]) and np.all(indices[: n - 1] <= starts[1:n])
    assert starts[n - 1] <= indices[n - 1] <= T - 1
    if n == T:
        assert np.array_equal(indices, np.arange(n))


@settings(max_examples=200, deadline=None)
@given(T=sizes, n=st.integers(min_value=1, max_value=600))
def test_uniform_is_bin_starts(T: int, n: int) -> None:
    indices = uniform_indices(T, n)
    assert indices.tolist() == [i * T // n for i in range(n)]
    if n == T:
        assert indices.tolist() == list(range(n))


def test_hand_worked_case() -> None:
    # T = 10, n = 4: b = [0, 2, 5, 7]; bins {0..2}, {2..5}, {5..7}, last {7..9}.
    assert uniform_indices(10, 4).tolist() == [0, 2, 5, 7]
    seen = np.array([random_perturb_indices(10, 4, np.random.default_rng(s)) for s in range(400)])
    assert [sorted(set(seen[:, i].tolist())) for i in range(4)] == [
        [0, 1, 2],
        [2, 3, 4, 5],
        [5, 6, 7],
        [7, 8, 9],
    ]
    # T = 3 < n = 7 repeats snippets; b = [0, 0, 0, 1, 1, 2, 2]: equal neighbours stay put.
    assert uniform_indices(3, 7).tolist() == [0, 0, 0, 1, 1, 2, 2]
    draws = {tuple(random_perturb_indices(3, 7, np.random.default_rng(s))) for s in range(200)}
    assert all(d[0] == 0 and d[1] == 0 and d[3] == 1 and d[6] == 2 for d in draws)
    assert {d[2] for d in draws} == {0, 1} and {d[4] for d in draws} == {1, 2}
    assert random_perturb_indices(1, 3, np.random.default_rng(0)).tolist() == [0, 0, 0]
