"""End to end on synthetic features laid on the real THUMOS14 annotations.

All 412 videos (200 train / 212 test), 30 epochs at width 64: HAM-Net must localize far
better than an untrained network and clearly better than the BCL-only row, and bf16 must
stay within one point of fp32. Measured here (CPU, torch 2.13, anet protocol, average
mAP over tIoU 0.1:0.7): seed 0: HAM-Net 15.8, bf16 15.9, BCL only 12.6, untrained 0.0;
seed 1: 16.1, 15.6, 9.5. Fewer test videos make single runs too noisy for a 1-point test.
"""

from __future__ import annotations

import pytest
import torch

from hamnet.config import make_config
from hamnet.data.layout import open_dataset
from hamnet.data.synthetic import make_synthetic
from hamnet.infer.inference import evaluate_model
from hamnet.infer.settings import inference_settings
from hamnet.train.trainer import train
from hamnet.weights.trained import build_model

SETTINGS = ["data.name=Thumos14reduced", "data.num_segments=200", "train.epochs=30"]


@pytest.fixture(scope="module")
def thumos_like(tmp_path_factory, thumos_annotations_dir):
    out = tmp_path_factory.mktemp("thumos_like")
    return make_synthetic(
        out,
        like=thumos_annotations_dir,
        feature_dim=64,
        seed=0,
        progress=False,
        write_released=False,
    )


def _average_map(root, run_dir, variant, *extra):
    result = train(make_config("demo", variant, [*SETTINGS, *extra]), root, run_dir, progress=False)
    assert result.final["protocol"] == "anet" and len(result.final["mAP"]) == 7
    return 100 * result.final["average_mAP"]


def _untrained_map(root):
    config = make_config("demo", "all", SETTINGS)
    annotations, store, _ = open_dataset(root)
    torch.manual_seed(0)
    model = build_model(config, annotations.num_classes)
    evaluation = evaluate_model(
        model,
        annotations,
        store,
        subset="test",
        device=torch.device("cpu"),
        settings=inference_settings(config, protocol="anet"),
    )
    return 100 * evaluation.result.average_mAP


def test_hamnet_beats_untrained_and_bcl_only_and_bf16_matches(thumos_like, tmp_path):
    hamnet = _average_map(thumos_like, tmp_path / "all", "all")
    bcl = _average_map(thumos_like, tmp_path / "bcl", "bcl")
    bf16 = _average_map(thumos_like, tmp_path / "bf16", "all", "train.precision=bf16")
    untrained = _untrained_map(thumos_like)
    assert hamnet > untrained + 5.0, (hamnet, untrained)
    assert hamnet > bcl + 2.0, (hamnet, bcl)
    assert abs(bf16 - hamnet) < 1.0, (bf16, hamnet)
