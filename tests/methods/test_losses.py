"""Each baseline's loss terms against values worked out by hand (docs/methods.md)."""

from __future__ import annotations

import math

import pytest
import torch

from hamnet.methods.basnet import basnet_losses
from hamnet.methods.stpn import stpn_losses
from hamnet.methods.wtalc import co_activity_loss, mil_loss


def test_stpn_binary_cross_entropy_and_l1_sparsity():
    outputs = {
        "video_logits": torch.tensor([[0.0, math.log(3.0)]]),
        "attention": torch.tensor([[0.5, 0.25, 0.25]]),
    }
    labels = torch.tensor([[0.0, 1.0]])
    out = stpn_losses(outputs, labels, losses=["cls", "sparse"], sparsity_weight=0.1)
    # class 0: -log(1 - sigmoid(0)) = log 2; class 1: -log(sigmoid(log 3)) = log(4/3)
    assert out["cls"].item() == pytest.approx((math.log(2) + math.log(4 / 3)) / 2)
    assert out["sparse"].item() == pytest.approx(1.0)  # L1 over time: 0.5 + 0.25 + 0.25
    assert out["total"].item() == pytest.approx(out["cls"].item() + 0.1 * 1.0)
    only_cls = stpn_losses(outputs, labels, losses=["cls"], sparsity_weight=0.1)
    assert set(only_cls) == {"cls", "total"}
    assert only_cls["total"].item() == pytest.approx(out["cls"].item())


def test_wtalc_mil_takes_the_ceil_k_largest_and_normalised_labels():
    cas = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 0.0]]])
    labels = torch.tensor([[1.0, 1.0]])
    # T = 4: k = ceil(4 / 8) = 1, pooled logits [3, 2]; target [1/2, 1/2]
    expected = math.log(math.exp(3) + math.exp(2)) - 2.5
    assert mil_loss(cas, labels, 8, None).item() == pytest.approx(expected)
    # k = ceil(4 / 3) = 2: pooled [2, 1]; only class 0 labelled
    expected_two = math.log(math.exp(2) + math.exp(1)) - 2.0
    assert mil_loss(cas, torch.tensor([[1.0, 0.0]]), 3, None).item() == pytest.approx(expected_two)
    # padding never enters the pool: a padded copy with a huge padded value is unchanged
    padded = torch.cat([cas, torch.full((1, 2, 2), 50.0)], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    assert mil_loss(padded, labels, 8, mask).item() == pytest.approx(expected)


def _casl(high_low_pairs, margin=0.5):
    """Two videos of T = 2 snippets whose T-CAS puts (almost) all weight on snippet 0, so
    H = embedding of snippet 0 and L = embedding of snippet 1."""
    cas = torch.tensor([[[40.0], [-40.0]], [[40.0], [-40.0]]])
    embedding = torch.tensor(high_low_pairs, dtype=torch.float32)
    labels = torch.ones(2, 1)
    return co_activity_loss(cas, embedding, labels, margin, None).item()


def test_wtalc_co_activity_loss_by_hand():
    # same high features, orthogonal low ones: d(Hm,Hn) = 0, d(Hm,Ln) = d(Lm,Hn) = 1
    assert _casl([[[1, 0], [0, 1]], [[1, 0], [0, 1]]]) == pytest.approx(0.0, abs=1e-6)
    # the pair's high features orthogonal, each equal to the other's low one:
    # d(Hm,Hn) = 1, d(Hm,Ln) = d(Lm,Hn) = 0 -> 0.5 (1 + 0.5) + 0.5 (1 + 0.5) = 1.5
    assert _casl([[[1, 0], [0, 1]], [[0, 1], [1, 0]]]) == pytest.approx(1.5, abs=1e-6)
    # uniform attention (equal T-CAS): H = L = mean feature, so the loss is the margin
    cas = torch.zeros(2, 2, 1)
    embedding = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [3.0, 1.0]]])
    value = co_activity_loss(cas, embedding, torch.ones(2, 1), 0.5, None).item()
    assert value == pytest.approx(0.5, abs=1e-6)


def test_wtalc_co_activity_loss_needs_a_shared_class():
    cas = torch.randn(2, 3, 2)
    embedding = torch.randn(2, 3, 4)
    labels = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert co_activity_loss(cas, embedding, labels, 0.5, None).item() == 0.0


def test_basnet_base_suppression_and_norm_by_hand():
    outputs = {
        "cas_base": torch.tensor([[[0.0, 0.0]]]),  # one snippet, one class + background
        "cas_supp": torch.tensor([[[math.log(3.0), 0.0]]]),
        "foreground": torch.tensor([[0.5]]),
    }
    labels = torch.tensor([[1.0]])
    out = basnet_losses(
        outputs, labels, None, losses=["base", "supp", "norm"], topk_ratio_inv=8, norm_weight=0.1
    )
    # base: scores [1/2, 1/2] against [1, 1] / 2: BCE = log 2 for both entries
    assert out["base"].item() == pytest.approx(math.log(2))
    # suppression: scores [3/4, 1/4] against [1, 0]: -log(3/4) for both entries
    assert out["supp"].item() == pytest.approx(math.log(4 / 3))
    assert out["norm"].item() == pytest.approx(0.5)
    expected = math.log(2) + math.log(4 / 3) + 0.1 * 0.5
    assert out["total"].item() == pytest.approx(expected)
