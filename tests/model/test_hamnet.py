"""The network: layout, initialisation, padding invariance, smoothing, bf16 autocast."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hamnet.methods.hamnet.network import HamNet, smoothing_kernel_for

D, H, A, C = 12, 10, 6, 3


def _model(smoothing: int = 0, dtype: torch.dtype = torch.float32) -> HamNet:
    torch.manual_seed(0)
    model = HamNet(D, C, hidden_dim=H, attention_dim=A, smoothing_kernel=smoothing)
    return model.to(dtype).eval()


def test_smoothing_kernel_matches_reference_formula():
    assert smoothing_kernel_for(80) == 17
    assert smoothing_kernel_for(500) == 101
    assert smoothing_kernel_for(4) == 1


def test_parameter_names_follow_the_authors_layout():
    shapes = {k: list(v.shape) for k, v in _model(smoothing=5).state_dict().items()}
    assert shapes == {
        "classifier.0.weight": [H, D, 3],
        "classifier.0.bias": [H],
        "classifier.2.weight": [H, H, 3],
        "classifier.2.bias": [H],
        "classifier.5.weight": [C + 1, H, 1],
        "classifier.5.bias": [C + 1],
        "attention.0.weight": [A, D, 3],
        "attention.0.bias": [A],
        "attention.2.weight": [A, A, 3],
        "attention.2.bias": [A],
        "attention.4.weight": [1, A, 1],
        "attention.4.bias": [1],
    }


def test_hidden_width_defaults_to_feature_width():
    model = HamNet(7, 2)
    assert model.classifier[0].weight.shape == (7, 7, 3)
    assert model.attention[0].weight.shape == (512, 7, 3)
    assert model.classifier[4].p == 0.7


def test_kaiming_uniform_fan_in_init_and_zero_biases():
    model = HamNet(256, 5, hidden_dim=256, attention_dim=64)
    for layer in [*model.classifier, *model.attention]:
        if not isinstance(layer, nn.Conv1d):
            continue
        fan_in = layer.weight.shape[1] * layer.weight.shape[2]
        bound = math.sqrt(2.0) * math.sqrt(3.0 / fan_in)  # gain sqrt(2) for leaky_relu(a=0)
        assert layer.weight.abs().max() <= bound
        assert layer.weight.abs().max() > 0.9 * bound
        assert torch.count_nonzero(layer.bias) == 0


def test_output_shapes_and_attention_range():
    cas, attention = _model()(torch.randn(2, 9, D))
    assert cas.shape == (2, 9, C + 1) and attention.shape == (2, 9)
    assert cas.is_contiguous() and attention.is_contiguous()
    assert bool(((attention > 0) & (attention < 1)).all())


def test_rejects_features_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"\[B, T, 12\]"):
        _model()(torch.randn(2, 9, D + 1))


@pytest.mark.parametrize("smoothing", [0, 5])
@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
def test_padded_batch_equals_each_video_alone(smoothing, dtype, atol):
    model = _model(smoothing, dtype)
    lengths = [11, 6, 2]
    torch.manual_seed(1)
    x = torch.randn(3, 11, D, dtype=dtype)
    mask = torch.arange(11)[None, :] < torch.tensor(lengths)[:, None]
    x = x.masked_fill(~mask[..., None], 5.0)  # garbage in the padding must not leak
    with torch.no_grad():
        cas, attention = model(x, mask)
        for i, n in enumerate(lengths):
            cas_i, attention_i = model(x[i : i + 1, :n])
            torch.testing.assert_close(cas[i, :n], cas_i[0], atol=atol, rtol=0)
            torch.testing.assert_close(attention[i, :n], attention_i[0], atol=atol, rtol=0)
            assert bool((cas[i, n:] == 0).all()) and bool((attention[i, n:] == 0).all())


def test_full_mask_changes_nothing():
    model = _model(smoothing=3)
    x = torch.randn(2, 8, D)
    with torch.no_grad():
        plain = model(x)
        masked = model(x, torch.ones(2, 8, dtype=torch.bool))
    for a, b in zip(plain, masked, strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_smoothing_is_a_zero_padded_moving_average():
    """With K = 3 the smoothed attention is (a[t-1] + a[t] + a[t+1]) / 3, zeros beyond the ends."""
    model, plain = _model(smoothing=3), _model(smoothing=0)
    x = torch.randn(1, 6, D)
    with torch.no_grad():
        cas, attention = model(x)
        cas0, attention0 = plain(x)
    padded = torch.nn.functional.pad(attention0, (1, 1))
    expected = (padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]) / 3
    torch.testing.assert_close(attention, expected)
    torch.testing.assert_close(cas[0, 0], (cas0[0, 0] + cas0[0, 1]) / 3)


def test_dropout_only_in_training():
    model = HamNet(D, C, hidden_dim=64, attention_dim=A, dropout=0.5)
    x = torch.randn(1, 5, D)
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model(x)[0], model(x)[0], atol=0, rtol=0)
        model.train()
        assert not torch.equal(model(x)[0], model(x)[0])


def test_bf16_autocast_forward_runs_in_bf16():
    model = _model()
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        cas, attention = model(torch.randn(2, 7, D), torch.ones(2, 7, dtype=torch.bool))
    assert cas.dtype == torch.bfloat16 and attention.dtype == torch.bfloat16
    assert bool(torch.isfinite(cas.float()).all())


def test_fp64_model_under_autocast_stays_fp64():
    model = _model(dtype=torch.float64)
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.no_grad():
        cas, attention = model(torch.randn(1, 5, D, dtype=torch.float64))
    assert cas.dtype == torch.float64 and attention.dtype == torch.float64
