"""The losses against hand-worked numbers and an independent numpy reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hamnet.methods.hamnet.losses import (
    LOSS_TERMS,
    guide_loss,
    hamnet_losses,
    loss_weights,
    mil_loss,
    sparsity_loss,
    topk_pool,
)
from hamnet.methods.hamnet.losses import LOSS_TERMS as LOSS_NAMES
from hamnet.methods.hamnet.method import VARIANTS
from hamnet.methods.hamnet.network import HamNet

P, LM1, LM2, ALPHA, BETA, GAMMA, R = 0.2, 1.5, 0.5, 0.8, 0.3, 0.4, 4
HPARAMS = dict(
    lm_1=LM1, lm_2=LM2, alpha=ALPHA, beta=BETA, drop_thres=GAMMA, drop_prob=P, topk_ratio_inv=R
)


def _t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


# ----------------------------------------------------------------------------- hand-worked


def test_topk_pool_takes_mean_of_k_largest_per_class():
    scores = _t([[[1, 5], [4, 2], [3, 3], [0, 1], [2, 4]]])
    # T = 5, r = 2: k = 2; column 0: (4 + 3) / 2, column 1: (5 + 4) / 2
    torch.testing.assert_close(topk_pool(scores, 2), _t([[3.5, 4.5]]))


def test_topk_k_is_at_least_one_and_floors():
    scores = torch.arange(25, dtype=torch.float32).reshape(1, 25, 1)
    torch.testing.assert_close(topk_pool(scores[:, :3], 10), _t([[2.0]]))  # k = max(1, 0)
    torch.testing.assert_close(topk_pool(scores, 10), _t([[23.5]]))  # k = floor(2.5) = 2


def test_topk_k_follows_each_videos_true_length():
    scores = _t(
        [[[1, 5], [4, 2], [3, 3], [0, 1], [2, 4]], [[1, 5], [4, 2], [3, 3], [99, 99], [99, 99]]]
    )
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    # video 1: T' = 3, r = 2 -> k = 1; the padded 99s never enter
    torch.testing.assert_close(topk_pool(scores, 2, mask), _t([[3.5, 4.5], [4.0, 5.0]]))


def test_mil_loss_with_uniform_logits_is_the_normalised_label_mass_times_log3():
    cas = torch.zeros(1, 4, 3)
    labels = _t([[1.0, 0.0]])
    with_bg = mil_loss(cas, labels, 1.0, 2)
    without_bg = mil_loss(cas, labels, 0.0, 2)
    torch.testing.assert_close(with_bg, _t([2 / 2.0001 * math.log(3)]))
    torch.testing.assert_close(without_bg, _t([1 / 1.0001 * math.log(3)]))


def test_mil_loss_hand_example():
    # T = 4, r = 2 -> k = 2; pooled logits: class 0 (3 + 1) / 2 = 2, class 1 0, background 0
    cas = _t([[[3, 0, 0], [1, 0, 0], [-5, 0, 0], [-1, 0, 0]]])
    log_z = math.log(math.e**2 + 2)
    # labels (1, 1) plus background 1: target (1, 1, 1) / 3.0001
    expected = ((log_z - 2) + log_z + log_z) / 3.0001
    torch.testing.assert_close(mil_loss(cas, _t([[1.0, 1.0]]), 1.0, 2), _t([expected]))


def test_mil_loss_rejects_mismatched_label_width():
    with pytest.raises(ValueError, match="3 classes"):
        mil_loss(torch.zeros(1, 4, 3), torch.zeros(1, 3), 1.0, 2)


def test_sparsity_loss_means_the_lowest_fraction():
    a = _t([[0.1, 0.4, 0.7, 0.2]])
    torch.testing.assert_close(sparsity_loss(a), _t([0.35]))
    torch.testing.assert_close(sparsity_loss(a, min_percent=0.5), _t([0.15]))


def test_sparsity_loss_ignores_padding():
    a = _t([[0.1, 0.4, 0.7, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    torch.testing.assert_close(sparsity_loss(a, mask), _t([0.4]))
    torch.testing.assert_close(sparsity_loss(a, mask, 0.5), _t([0.1]))  # floor(1.5) = 1 value


def test_guide_loss_hand_example():
    cas = _t([[[0.0, 0.0], [math.log(3), 0.0], [0.0, 50.0]]])
    a = _t([[0.2, 0.9, 0.3]])
    # background probabilities 0.5 and 0.25: |1 - 0.2 - 0.5| = 0.3, |1 - 0.9 - 0.25| = 0.15
    mask = torch.tensor([[True, True, False]])
    torch.testing.assert_close(guide_loss(cas, a, mask), _t([0.225]))


# ------------------------------------------------------------------ numpy reference


def _np_mil(scores, labels, background, r):
    k = max(1, scores.shape[0] // r)
    pooled = np.sort(scores, axis=0)[::-1][:k].mean(axis=0)
    target = np.append(labels, background)
    target = target / (target.sum() + 1e-4)
    shifted = pooled - pooled.max()
    log_prob = shifted - np.log(np.exp(shifted).sum())
    return -(target * log_prob).sum()


def _np_terms(cas, att, labels, gamma, r):
    """All six terms of one unpadded video, written from the reference text."""
    semi = np.where(att < gamma * att.max(), att, 0.0)
    hard = (semi > 0).astype(np.float64)
    low = cas.min(axis=1, keepdims=True)
    probs = np.exp(cas) / np.exp(cas).sum(axis=1, keepdims=True)
    return {
        "bcl": _np_mil(cas, labels, 1.0, r),
        "sal": _np_mil(att[:, None] * cas, labels, 0.0, r),
        "hal": _np_mil(hard[:, None] * (cas - low) + low, labels, 1.0, r),
        "ssal": _np_mil(semi[:, None] * (cas - low) + low, labels, 0.0, r),
        "sparse": att.mean(),
        "guide": np.abs(1 - att - probs[:, -1]).mean(),
    }


def _batch(lengths, t=23, c=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    cas = torch.randn(len(lengths), t, c + 1, generator=gen) * 2
    att = torch.rand(len(lengths), t, generator=gen)
    labels = (torch.rand(len(lengths), c, generator=gen) > 0.5).float()
    labels[:, 0] = 1.0
    mask = torch.arange(t)[None, :] < torch.tensor(lengths)[:, None]
    return cas, att, labels, mask


def _reference(cas, att, labels, lengths):
    per_video = [
        _np_terms(
            cas[i, :n].double().numpy(), att[i, :n].double().numpy(), labels[i].numpy(), GAMMA, R
        )
        for i, n in enumerate(lengths)
    ]
    return {name: float(np.mean([v[name] for v in per_video])) for name in LOSS_TERMS}


@pytest.mark.parametrize("lengths", [[23, 23, 23], [23, 9, 2]])
def test_every_term_matches_the_numpy_reference(lengths):
    cas, att, labels, mask = _batch(lengths)
    out = hamnet_losses(cas, att, labels, mask, losses=LOSS_TERMS, **HPARAMS)
    expected = _reference(cas, att, labels, lengths)
    for name in LOSS_TERMS:
        assert out[name].item() == pytest.approx(expected[name], rel=1e-5, abs=1e-6), name


_PAIRED = {"bcl": LM1 * (1 - P), "hal": LM1 * P, "sal": LM2 * (1 - P), "ssal": LM2 * P}
EXPECTED_WEIGHTS = {
    "bcl": {"bcl": LM1},
    "bcl+sal": {"bcl": LM1, "sal": LM2},
    "bcl+hal": {"bcl": LM1 * (1 - P), "hal": LM1 * P},
    "bcl+sal+hal+ssal+guide": {**_PAIRED, "guide": BETA},
    "bcl+sal+hal+ssal+sparse": {**_PAIRED, "sparse": ALPHA},
    "all": {**_PAIRED, "sparse": ALPHA, "guide": BETA},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_each_variant_totals_its_weighted_terms(variant):
    cas, att, labels, mask = _batch([23, 17, 5], seed=3)
    out = hamnet_losses(cas, att, labels, mask, losses=VARIANTS[variant], **HPARAMS)
    expected = _reference(cas, att, labels, [23, 17, 5])
    weights = EXPECTED_WEIGHTS[variant]
    assert set(out) == set(weights) | {"total"}
    total = sum(w * expected[name] for name, w in weights.items())
    assert out["total"].item() == pytest.approx(total, rel=1e-5)


def test_partner_weights_split_only_when_both_are_enabled():
    weights = loss_weights(["bcl", "ssal"], lm_1=1, lm_2=2, alpha=0, beta=0, drop_prob=0.3)
    assert weights == {"bcl": 1.0, "ssal": 2.0}


@pytest.mark.parametrize("term, weight", [("sparse", ALPHA), ("guide", BETA)])
def test_disabling_a_regulariser_removes_exactly_its_term(term, weight):
    cas, att, labels, mask = _batch([23, 11])
    full = hamnet_losses(cas, att, labels, mask, losses=LOSS_TERMS, **HPARAMS)
    rest = [name for name in LOSS_TERMS if name != term]
    less = hamnet_losses(cas, att, labels, mask, losses=rest, **HPARAMS)
    assert term not in less
    difference = (full["total"] - less["total"]).item()
    assert difference == pytest.approx(weight * full[term].item(), rel=1e-5)


def test_loss_names_agree_with_the_config():
    assert tuple(LOSS_NAMES) == LOSS_TERMS


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="bogus"):
        loss_weights(["bcl", "bogus"], lm_1=1, lm_2=1, alpha=1, beta=1, drop_prob=0.5)


def test_padded_batch_losses_equal_the_mean_of_videos_alone():
    cas, att, labels, mask = _batch([23, 9, 2], seed=5)
    batched = hamnet_losses(cas, att, labels, mask, losses=LOSS_TERMS, **HPARAMS)
    alone = [
        hamnet_losses(cas[i : i + 1, :n], att[i : i + 1, :n], labels[i : i + 1],
                      losses=LOSS_TERMS, **HPARAMS)
        for i, n in enumerate([23, 9, 2])
    ]  # fmt: skip
    for name in LOSS_TERMS:
        expected = sum(a[name].item() for a in alone) / 3
        assert batched[name].item() == pytest.approx(expected, rel=1e-6), name


# ----------------------------------------------------------------- with the network


def _net():
    torch.manual_seed(0)
    return HamNet(8, 3, hidden_dim=8, attention_dim=4, dropout=0.0)


def _train_batch():
    torch.manual_seed(1)
    return torch.randn(2, 20, 8), _t([[1, 0, 0], [0, 1, 1]])


def test_gradients_reach_both_branches():
    model, (x, labels) = _net(), _train_batch()
    cas, att = model(x)
    hamnet_losses(cas, att, labels, losses=LOSS_TERMS, **HPARAMS)["total"].backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and torch.count_nonzero(param.grad) > 0, name


def test_hard_attention_loss_alone_trains_only_the_classifier():
    """The hard mask is a step function: BCL + HAL send no gradient to the attention branch."""
    model, (x, labels) = _net(), _train_batch()
    cas, att = model(x)
    hamnet_losses(cas, att, labels, losses=["bcl", "hal"], **HPARAMS)["total"].backward()
    assert all(p.grad is None for p in model.attention.parameters())
    assert all(p.grad is not None for p in model.classifier.parameters())


def test_bf16_autocast_losses_are_fp32_and_close_to_fp32():
    model, (x, labels) = _net(), _train_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cas, att = model(x)
        low = hamnet_losses(cas, att, labels, losses=LOSS_TERMS, **HPARAMS)
    assert cas.dtype == torch.bfloat16
    assert all(value.dtype == torch.float32 for value in low.values())
    low["total"].backward()
    full = hamnet_losses(*model(x), labels, losses=LOSS_TERMS, **HPARAMS)
    assert low["total"].item() == pytest.approx(full["total"].item(), rel=0.05)
