"""Semi-soft / hard attention masks and applying an attention to a T-CAS, on hand-made values."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hamnet.methods.hamnet.attention import (
    apply_attention,
    hard_attention,
    hybrid_attentions,
    semi_soft_attention,
)


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def test_semi_soft_keeps_snippets_below_the_threshold():
    a = _t([[0.1, 0.5, 0.05, 0.9, 0.3]])
    # theta = 0.5 * 0.9 = 0.45: 0.5 and 0.9 are dropped
    semi = semi_soft_attention(a, 0.5)
    torch.testing.assert_close(semi, _t([[0.1, 0.0, 0.05, 0.0, 0.3]]), atol=0, rtol=0)
    torch.testing.assert_close(hard_attention(semi), _t([[1, 0, 1, 0, 1]]), atol=0, rtol=0)


def test_threshold_is_per_video_and_strict():
    a = _t([[0.25, 1.0, 0.125], [0.125, 0.5, 0.0625]])
    # video 0: theta = 0.25, so 0.25 itself is dropped (a < theta); video 1: theta = 0.125
    semi = semi_soft_attention(a, 0.25)
    expected = _t([[0.0, 0.0, 0.125], [0.0, 0.0, 0.0625]])
    torch.testing.assert_close(semi, expected, atol=0, rtol=0)


def test_masked_snippets_are_excluded_from_the_max_and_zeroed():
    a = _t([[0.1, 0.5, 0.05, 0.9, 0.3]])
    mask = torch.tensor([[True, True, True, False, True]])
    # theta = 0.5 * 0.5 = 0.25 (0.9 is padding)
    semi = semi_soft_attention(a, 0.5, mask)
    torch.testing.assert_close(semi, _t([[0.1, 0.0, 0.05, 0.0, 0.0]]), atol=0, rtol=0)
    torch.testing.assert_close(hard_attention(semi), _t([[1, 0, 1, 0, 0]]), atol=0, rtol=0)


def test_apply_without_shift_scales_scores():
    cas = _t([[[2.0, -1.0, 5.0], [1.0, 1.0, -3.0]]])
    out = apply_attention(cas, _t([[0.5, 0.0]]), shift=False)
    torch.testing.assert_close(out, _t([[[1.0, -0.5, 2.5], [0.0, 0.0, 0.0]]]), atol=0, rtol=0)


def test_apply_with_shift_uses_the_minimum_over_classes():
    cas = _t([[[2.0, -1.0, 5.0], [1.0, 1.0, -3.0]]])
    out = apply_attention(cas, _t([[0.5, 0.0]]), shift=True)
    # snippet 0: m = -1, 0.5 * (3, 0, 6) - 1; snippet 1 (weight 0): every class gets m = -3
    torch.testing.assert_close(out, _t([[[0.5, -1.0, 2.0], [-3.0, -3.0, -3.0]]]), atol=0, rtol=0)


def test_at_test_time_all_three_attentions_are_soft():
    a = _t([[0.1, 0.9, 0.5]])
    soft, semi, hard = hybrid_attentions(a, 0.2, training=False)
    for each in (soft, semi, hard):
        torch.testing.assert_close(each, a, atol=0, rtol=0)


def test_in_training_the_three_differ_and_are_fp32():
    a = _t([[0.1, 0.9, 0.5]]).bfloat16()
    soft, semi, hard = hybrid_attentions(a, 0.2, training=True)
    assert soft.dtype == semi.dtype == hard.dtype == torch.float32
    torch.testing.assert_close(semi, torch.tensor([[a[0, 0].float().item(), 0.0, 0.0]]))
    torch.testing.assert_close(hard, _t([[1.0, 0.0, 0.0]]))


def test_semi_soft_gradient_flows_only_through_kept_snippets():
    a = _t([[0.1, 0.9, 0.5]]).requires_grad_()
    semi_soft_attention(a, 0.2).sum().backward()
    torch.testing.assert_close(a.grad, _t([[1.0, 0.0, 0.0]]))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0, width=32), min_size=1, max_size=30),
    st.floats(0.0, 1.0),
)
def test_semi_soft_and_hard_invariants(values, drop_thres):
    a = _t([values])
    semi = semi_soft_attention(a, drop_thres)
    theta = drop_thres * max(values)
    for value, kept in zip(values, semi[0].tolist(), strict=True):
        assert kept == (value if value < torch.tensor(theta, dtype=torch.float32) else 0.0)
    assert bool((hard_attention(semi) == (semi > 0).float()).all())
