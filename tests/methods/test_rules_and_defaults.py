"""``localize.rules`` wiring, and the baselines' reference training defaults."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hamnet.config import make_config
from hamnet.data.class_pairs import class_paired_batch, class_paired_epoch, videos_per_class
from hamnet.errors import ConfigError
from hamnet.infer.inference import infer_video
from hamnet.infer.settings import inference_settings
from hamnet.methods import make_method
from hamnet.methods.wtalc import co_activity_loss, paired_co_activity_loss

CPU = torch.device("cpu")


def _with_rules(config, rules: str):
    return dataclasses.replace(config, localize=dataclasses.replace(config.localize, rules=rules))


def test_rules_must_be_reference_or_shared():
    assert make_config("demo").localize.rules == "reference"
    with pytest.raises(ConfigError, match="localize.rules: reference or shared"):
        make_config("demo", overrides=["localize.rules=paper"])


def test_ham_net_detections_are_the_same_under_both_rules():
    config = make_config("demo", overrides=["data.feature_dim=16"])
    torch.manual_seed(0)
    network = make_method(config).build_network(3).eval()
    features = np.random.RandomState(0).randn(90, 16).astype(np.float32)
    found = {}
    for rules in ("reference", "shared"):
        settings = inference_settings(_with_rules(config, rules))
        assert settings.test_snippets is None
        output = infer_video(network, features, "v", CPU, settings)
        found[rules] = settings.method.detections(output, ["a", "b", "c"], settings)
    assert found["reference"] == found["shared"] and found["shared"]


@pytest.mark.parametrize(("method", "snippets"), [("basnet", 750), ("stpn", 400), ("w-talc", None)])
def test_reference_rules_sample_test_videos_as_the_reference_does(method, snippets):
    config = make_config("thumos14", overrides=["data.feature_dim=8"], method=method)
    if method == "basnet":
        config = make_config(
            "thumos14", overrides=["data.feature_dim=8", "model.hidden_dim=8"], method=method
        )
    network = make_method(config).build_network(2).eval()
    features = np.random.RandomState(1).randn(1000, 8).astype(np.float32)
    for rules, expected in (("reference", snippets), ("shared", None)):
        output = infer_video(
            network, features, "v", CPU, inference_settings(_with_rules(config, rules))
        )
        assert output.cas.shape[0] == (expected or 1000) and output.length == 1000


def test_wtalc_fresh_network_is_xavier_with_zero_biases():
    config = make_config("thumos14", overrides=["data.feature_dim=64"], method="w-talc")
    network = make_method(config).build_network(20)
    for name, parameter in network.named_parameters():
        if name.endswith("bias"):
            assert torch.count_nonzero(parameter) == 0, name
        else:
            fan_out, fan_in = parameter.shape
            bound = (6 / (fan_in + fan_out)) ** 0.5
            assert parameter.abs().max() <= bound and parameter.abs().max() > 0.9 * bound
    old = make_config(
        "thumos14",
        overrides=["data.feature_dim=64", "method_options.torch_init=1"],
        method="w-talc",
    )
    biases = [p for n, p in make_method(old).build_network(20).named_parameters() if "bias" in n]
    assert all(torch.count_nonzero(b) > 0 for b in biases)


def test_stpn_cas_has_no_bias_by_default():
    config = make_config("thumos14", overrides=["data.feature_dim=8"], method="stpn")
    network = make_method(config).build_network(3)
    with torch.no_grad():
        network.classifier.bias.fill_(5.0)
        x = torch.randn(1, 4, 8)
        cas = network(x)["cas"]
    assert torch.allclose(cas, x @ network.classifier.weight.T)


def test_class_paired_batch_draws_in_the_references_order():
    class_videos = [[0, 3], [], [1, 2, 5]]
    batch = class_paired_batch(class_videos, 6, 8, 3, np.random.RandomState(4))
    rng, present = np.random.RandomState(4), [[0, 3], [1, 2, 5]]
    expected = []
    for drawn in rng.choice(2, size=3):
        first, second = rng.choice(len(present[drawn]), size=2)
        expected += [present[drawn][first], present[drawn][second]]
    expected += rng.choice(6, size=2).tolist()
    assert batch == expected and len(batch) == 8
    for pair in range(3):
        assert any({batch[2 * pair], batch[2 * pair + 1]} <= set(v) for v in class_videos)


def test_class_paired_epoch_is_as_long_as_a_shuffled_one():
    labels = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 0, 1, 2]]
    assert videos_per_class(labels) == [[0, 4], [1, 5], [2, 6], [3]]
    epoch = class_paired_epoch(labels, 6, 3, seed=0, epoch=2)
    assert len(epoch) == 2 and all(len(b) == 6 for b in epoch)
    assert epoch == class_paired_epoch(labels, 6, 3, seed=0, epoch=2)
    with pytest.raises(ConfigError, match="cannot hold 3 pairs"):
        class_paired_batch(videos_per_class(labels), 7, 5, 3, np.random.RandomState(0))


def test_paired_casl_reads_consecutive_pairs_and_divides_by_shared_classes():
    torch.manual_seed(0)
    cas, embedding = torch.randn(4, 10, 3), torch.randn(4, 10, 5)
    labels = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 0]], dtype=torch.float32)
    # pairs (0, 1) sharing classes 0 and 1; (2, 3) sharing none: the mean over 2 terms
    paired = paired_co_activity_loss(cas, embedding, labels, 0.5, None, 3)
    first_pair = co_activity_loss(cas[:2], embedding[:2], labels[:2], 0.5, None)
    assert paired.item() == pytest.approx(first_pair.item(), rel=1e-6)
    every_pair = co_activity_loss(cas, embedding, labels, 0.5, None)  # (0,1), (0,3), (1,3)
    assert every_pair.item() != pytest.approx(paired.item())
