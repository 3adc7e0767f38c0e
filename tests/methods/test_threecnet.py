"""3C-Net: its loss terms and rules by hand, and the official code's outputs, detections,
losses and one training iteration recorded on the seeded case of
:func:`reference_cases.threecnet_case` (fixtures/threecnet_official_*.json: the code of
github:naraysa/3c-net @ 8b1d4a9 run on the CPU; how: docs/methods.md)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_cases as cases  # noqa: E402

from hamnet.config import make_config
from hamnet.data.dataset import Batch
from hamnet.methods import make_method
from hamnet.methods.base import StepContext, TrainItem
from hamnet.methods.threecnet import (
    attention_within,
    center_loss,
    count_loss,
    mil_loss,
    threecnet_rule,
)

FIXTURES = Path(__file__).parent / "fixtures"
SNIPPET = 16 / 25

# ---- by hand ----------------------------------------------------------------------


def test_mil_loss_by_hand_skips_short_and_unlabelled_videos():
    logits = torch.zeros(3, 16, 2)
    logits[0, :2, 0] = 4.0  # k = ceil(16 / 8) = 2: pooled [4, 0]
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    loss = mil_loss(logits, np.array([16, 16, 4]), labels, min_length=5)
    assert loss.item() == pytest.approx(-math.log(math.exp(4) / (math.exp(4) + 1)), rel=1e-5)
    assert math.isnan(mil_loss(logits, np.array([4, 4, 4]), labels, 5).item())


def test_center_loss_multiplies_each_distance_by_the_class_index():
    """center_loss.py:42-44: ``value *= labels`` with the class index: class 0 adds 0."""
    features = torch.zeros(2, 4, 2)
    features[0] = torch.tensor([1.0, 0.0])
    features[1] = torch.tensor([0.0, 3.0])
    logits = torch.zeros(2, 4, 3)  # uniform attention: every snippet kept
    labels = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    centers = torch.zeros(3, 2)
    loss = center_loss(features, logits, labels, np.array([4, 4]), centers, True)
    # distances 1 (class 2) and 9 (class 0): (2 * 1 + 0 * 9) / 2, divided by the 2 features
    assert loss.item() == pytest.approx(0.5, rel=1e-6)


def test_center_loss_before_the_threshold_uses_single_label_videos_only():
    features = torch.ones(1, 4, 2)
    logits = torch.zeros(1, 4, 3)
    labels = torch.tensor([[0.0, 1.0, 1.0]])
    early = center_loss(features, logits, labels, np.array([4]), torch.zeros(3, 2), True)
    late = center_loss(features, logits, labels, np.array([4]), torch.zeros(3, 2), False)
    assert early.item() == 0.0
    assert late.item() == pytest.approx((1 * 2 + 2 * 2) / 2 / 2, rel=1e-6)


def test_count_loss_by_hand():
    feat = torch.zeros(1, 5, 3)
    feat[0, :, 0] = 0.5  # predicted count 2.5 of class 0, true 2
    feat[0, :, 2] = -0.2  # absent class: |-1.0|
    counts = torch.tensor([[2.0, 0.0, 0.0]])
    loss = count_loss(feat, counts, np.array([5]), 0.001)
    assert loss.item() == pytest.approx(0.5 / 2 + 0.001 * 1.0, rel=1e-6)
    # a count not below the length is not a present class: only the negative term
    loss = count_loss(feat, torch.tensor([[5.0, 0.0, 0.0]]), np.array([5]), 0.001)
    assert loss.item() == pytest.approx(0.001 * (2.5 + 1.0), rel=1e-6)


def test_attention_is_a_softmax_over_the_real_rows_only():
    tcam = torch.tensor([[[0.0], [0.0], [5.0]]])
    weights = attention_within(tcam, torch.tensor([2]))
    assert weights[0, :, 0].tolist() == [0.5, 0.5, 5.0]


def test_rule_by_hand_thumos_and_activitynet():
    cas = np.zeros((16, 2), dtype=np.float32)
    cas[2:6, 0] = 3.0  # class score: mean of top 2 = 3
    cas[9, 0] = 3.0  # a one-snippet run: dropped
    cas[:, 1] = 0.5  # below half the best class score: not kept on THUMOS14
    found = threecnet_rule("v", cas, ["a", "b"], SNIPPET, activitynet=False)
    assert [(d.label, d.start, d.end) for d in found] == [("a", 2 * SNIPPET, 6 * SNIPPET)]
    assert found[0].score == pytest.approx(6.0)
    found = threecnet_rule("v", cas, ["a", "b"], SNIPPET, activitynet=True)
    assert {d.label for d in found} == {"a", "b"}  # kept above 0; runs above 0


def test_crops_alternate_and_batches_are_a_function_of_seed_and_epoch(tiny_config):
    method = make_method(tiny_config("all", "method=3cnet"))
    crop, long = method.options.crop, method.options.count_crop
    assert [method.crop_length(step) for step in range(4)] == [crop, crop, long, crop]
    labels = np.ones((10, 2))
    first = method.epoch_batches(labels, 3, 0, 4)
    assert first == method.epoch_batches(labels, 3, 0, 4) != method.epoch_batches(labels, 4, 0, 4)
    assert len(first) == 3 and all(len(batch) == 4 for batch in first)
    tags = [item.tag for batch in first for item in batch]
    assert len(set(tags)) == len(tags)  # one crop draw per drawn item
    rows = method.training_rows(100, TrainItem(0), np.random.default_rng(0), 2)
    assert len(rows) == min(100, long)


# ---- against the official code -------------------------------------------------------


def _fixture(kind: str) -> dict:
    return json.loads((FIXTURES / f"threecnet_official_{kind}.json").read_text())


def _method_and_network(classes: int):
    preset = "activitynet12" if classes == 100 else "thumos14"
    config = make_config(preset, "all", ["data.feature_dim=2048"], method="3cnet")
    method = make_method(config)
    case = cases.threecnet_case(classes=classes)
    network = method.build_network(classes)
    network.load_state_dict(
        cases.as_tensors(cases.threecnet_to_hamnet(case["weights"], case["centers"]))
    )
    return method, network, case


def _outputs(method, network, feat):
    network.eval()
    with torch.no_grad():
        named = network(torch.from_numpy(feat)[None], None)
    return method.video_output("v", {k: v[0].numpy() for k, v in named.items()})


@pytest.mark.parametrize(("classes", "kind"), [(6, "thumos"), (100, "anet")])
def test_outputs_scores_and_detections_equal_the_official_code(classes, kind):
    recorded = _fixture(kind)
    method, network, case = _method_and_network(classes)
    official = sorted(tuple(row) for row in recorded["proposals"])
    evaluated = {row[0] for row in official}
    ours = []
    for index, (feat, video) in enumerate(zip(case["videos"], recorded["videos"], strict=True)):
        output = _outputs(method, network, feat)
        if "tcam" in video:
            np.testing.assert_allclose(output.cas, np.array(video["tcam"]), rtol=1e-4, atol=1e-5)
        else:
            assert output.cas.sum(dtype=np.float64) == pytest.approx(video["tcam_sum"], rel=1e-5)
            assert output.cas.max() == pytest.approx(video["tcam_max"], rel=1e-5)
        np.testing.assert_allclose(output.classification_scores, video["classification"], rtol=1e-5)
        for d in threecnet_rule("v", output.cas, case["classes"], SNIPPET, kind == "anet"):
            c = case["classes"].index(d.label)
            if c in evaluated:
                ours.append((c, index, round(d.start / SNIPPET), round(d.end / SNIPPET), d.score))
    ours.sort()
    assert len(ours) == len(official) > 20
    for mine, theirs in zip(ours, official, strict=True):
        assert mine[:4] == tuple(int(v) for v in theirs[:4])
        assert mine[4] == pytest.approx(theirs[4], rel=1e-4)


@pytest.mark.parametrize(("classes", "kind"), [(6, "thumos"), (100, "anet")])
def test_losses_and_one_iteration_equal_the_official_code(classes, kind):
    """Iteration 2: classification, center and counting losses; then the official
    train() step (Adam on the model only if the total is > 0, the centers' SGD on
    their gradient divided by the center weight) from the same weights and dropout."""
    recorded = _fixture(kind)
    method, network, case = _method_and_network(classes)
    network.train()
    batch = torch.from_numpy(case["batch"])
    labels, counts = torch.from_numpy(case["labels"]), torch.from_numpy(case["counts"])
    torch.manual_seed(7)
    outputs = network(batch, None)
    outputs["centers"] = (network.centers_f, network.centers_r)
    terms = method.step_losses(outputs, labels, counts, 2)
    losses = recorded["losses"]
    assert terms["cls"].item() == pytest.approx(sum(losses["cls"]), rel=1e-5)
    assert terms["center"].item() == pytest.approx(sum(losses["center"]), rel=1e-5)
    assert terms["count"].item() == pytest.approx(losses["count"], rel=1e-5)

    method, network, case = _method_and_network(classes)
    network.train()
    before = {k: v.detach().clone() for k, v in network.state_dict().items()}
    mask = torch.ones(batch.shape[:2], dtype=torch.bool)
    rows = Batch(batch, mask, labels, ["v"] * 6, [], [{"count": c} for c in counts])
    optimizer = method.make_optimizer(network)
    torch.manual_seed(7)
    method.train_step(rows, StepContext(network, optimizer, 1.0, 2, 10))
    for name, value in network.state_dict().items():
        delta = (value - before[name]).double()
        expected = recorded["step"][name]
        assert delta.abs().sum().item() == pytest.approx(expected["abs"], rel=1e-4, abs=1e-9), name
        assert delta.sum().item() == pytest.approx(expected["sum"], rel=1e-3, abs=1e-6), name


def test_import_of_an_official_state_dict_gives_the_same_network(tmp_path, capsys):
    """main.py saves ``model.state_dict()``: imported, it gives the official T-CAS (the
    centers, not saved by the official code, are zero)."""
    from hamnet.cli import main
    from hamnet.weights.trained import load_trained

    case = cases.threecnet_case(classes=20)
    original = tmp_path / "3cnet.pkl"
    torch.save(cases.as_tensors(case["weights"]), original)
    out = tmp_path / "imported.pt"
    assert main(["import-checkpoint", "--method", "3cnet", str(original), str(out)]) == 0
    trained = load_trained(out)
    assert trained.config.method == "3cnet" and trained.config.preset == "thumos14"
    method, network, _ = _method_and_network(20)
    feat = torch.from_numpy(case["videos"][0])[None]
    trained.model.eval(), network.eval()
    with torch.no_grad():
        assert torch.equal(trained.model(feat)["cas"], network(feat)["cas"])
    assert not trained.model.centers_f.any()


def test_import_refuses_another_methods_checkpoint_and_a_wrong_width(tmp_path, capsys):
    from hamnet.cli import main

    other = tmp_path / "co2.pkl"
    torch.save({"fusion.0.weight": torch.zeros(2048, 2048, 1)}, other)
    code = main(["import-checkpoint", "--method", "3cnet", str(other), str(tmp_path / "a.pt")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "not a 3C-Net state_dict" in err[0]
    weights = cases.as_tensors(cases.threecnet_case(classes=20)["weights"])
    weights["fc1_f.weight"] = weights["fc1_f.weight"][:, :1000]
    torch.save(weights, tmp_path / "narrow.pkl")
    code = main(
        [
            "import-checkpoint",
            "--method",
            "3cnet",
            str(tmp_path / "narrow.pkl"),
            str(tmp_path / "b.pt"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "fc1_f.weight has shape" in err[0]
    assert not (tmp_path / "a.pt").exists() and not (tmp_path / "b.pt").exists()


@pytest.mark.parametrize(("classes", "kind"), [(6, "thumos"), (100, "anet")])
def test_a_seed_gives_the_official_initial_weights(classes, kind):
    """torch.manual_seed(1), then Model(2048, C) and the two CenterLoss centers, as
    main.py:18-46 makes them (on the CPU: on a GPU the official code draws from CUDA's
    generator, which no CPU run reproduces)."""
    recorded = _fixture(kind)["initial_seed1"]
    preset = "activitynet12" if classes == 100 else "thumos14"
    config = make_config(preset, "all", ["data.feature_dim=2048"], method="3cnet")
    torch.manual_seed(1)
    network = make_method(config).build_network(classes)
    state = network.state_dict()
    assert set(state) == set(recorded)
    for name, value in state.items():
        flat = value.double().flatten()
        assert flat.sum().item() == pytest.approx(recorded[name]["sum"], rel=1e-6, abs=1e-6), name
        assert (
            flat[0].item() == recorded[name]["first"] and flat[-1].item() == recorded[name]["last"]
        )
