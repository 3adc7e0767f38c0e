"""hamnet under ``localize.rules=reference`` against outputs recorded from the baselines'
reference codes (tests/methods/fixtures/*_reference.json).

The fixtures were recorded by running the released codes (W-TALC and BaS-Net in PyTorch
on CPU, STPN's TensorFlow graph through tf.compat.v1) on the seeded weights and
features of :mod:`reference_cases`; here the same weights go into hamnet's networks.
Every recorded detection must have a hamnet one (same video and class, times and score
equal to float32 rounding) and the other way round; the losses agree to float32.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_cases as cases  # noqa: E402
import torch

from hamnet.config import make_config
from hamnet.infer.inference import infer_video
from hamnet.infer.settings import inference_settings
from hamnet.methods import make_method

FIXTURES = Path(__file__).parent / "fixtures"


def _recorded(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}_reference.json").read_text())


def _network(method_name: str, overrides: list[str], weights: dict, num_classes: int):
    config = make_config("thumos14", "all", overrides, method=method_name)
    method = make_method(config)
    network = method.build_network(num_classes)
    network.load_state_dict(cases.as_tensors(weights))
    network.eval()
    return config, method, network


def _detections(config, method, network, videos, classes) -> list[tuple]:
    settings = inference_settings(config)
    cpu = torch.device("cpu")
    found = []
    for i, features in enumerate(videos):
        output = infer_video(network, features, f"video_{i}", cpu, settings)
        found += [
            (d.video, d.label, d.start, d.end, d.score)
            for d in method.detections(output, classes, settings)
        ]
    return found


def _unmatched(a: list, b: list, time_tol: float = 1e-6, score_tol: float = 1e-5) -> list:
    """Rows of ``a`` without a row of ``b`` equal to float32 rounding."""
    index: dict[tuple, list] = {}
    for row in b:
        index.setdefault((row[0], row[1]), []).append(row)
    missing = []
    for row in a:
        near = [
            r
            for r in index.get((row[0], row[1]), [])
            if abs(r[2] - row[2]) <= time_tol * max(1.0, abs(row[2]))
            and abs(r[3] - row[3]) <= time_tol * max(1.0, abs(row[3]))
            and abs(r[4] - row[4]) <= score_tol
        ]
        if not near:
            missing.append(row)
    return missing


def _assert_same(recorded: list, ours: list) -> None:
    recorded = [tuple(row) for row in recorded]
    assert len(ours) == len(recorded)
    assert _unmatched(recorded, ours) == []
    assert _unmatched(ours, recorded) == []


def test_wtalc_matches_its_reference_code():
    case, recorded = cases.wtalc_case(), _recorded("wtalc")
    weights = cases.wtalc_to_hamnet(case["weights"])
    config, method, network = _network("w-talc", ["data.feature_dim=16"], weights, 5)
    ours = _detections(config, method, network, case["videos"], case["classes"])
    _assert_same(recorded["detections"], ours)
    batch, lengths = torch.from_numpy(case["batch"]), torch.from_numpy(case["lengths"])
    batch = batch[:, : int(lengths.max())]
    mask = torch.arange(batch.shape[1])[None] < lengths[:, None]
    with torch.no_grad():
        outputs = method.forward(network, batch, mask)
        terms = method.losses(outputs, torch.from_numpy(case["labels"]), mask)
    for name in ("mil", "casl", "total"):
        assert terms[name].item() == pytest.approx(recorded["losses"][name], rel=1e-6, abs=1e-7)


def test_basnet_matches_its_reference_code():
    case, recorded = cases.basnet_case(), _recorded("basnet")
    weights = cases.basnet_to_hamnet(case["weights"])
    overrides = ["data.feature_dim=8", "model.hidden_dim=2048"]
    config, method, network = _network("basnet", overrides, weights, 20)
    ours = _detections(config, method, network, case["videos"], case["classes"])
    assert {row[0] for row in recorded["detections"]} == {"video_0", "video_1"}
    _assert_same(recorded["detections"], ours)
    with torch.no_grad():
        outputs = method.forward(network, torch.from_numpy(case["batch"]), None)
        terms = method.losses(outputs, torch.from_numpy(case["labels"]), None)
    for name in ("base", "supp", "norm", "total"):
        assert terms[name].item() == pytest.approx(recorded["losses"][name], rel=1e-5)


def test_stpn_matches_its_reference_code():
    case, recorded = cases.stpn_case(), _recorded("stpn")
    weights = cases.stpn_to_hamnet(case["weights"])
    config, method, network = _network("stpn", ["data.feature_dim=1024"], weights, 20)
    ours = _detections(config, method, network, case["videos"], case["classes"])
    _assert_same(recorded["detections"], ours)
    with torch.no_grad():
        outputs = method.forward(network, torch.from_numpy(case["batch"]), None)
        terms = method.losses(outputs, torch.from_numpy(case["labels"]), None)
    assert terms["total"].item() == pytest.approx(recorded["losses"]["total"], rel=1e-6)


def test_reference_weights_have_the_layout_of_hamnets_networks():
    """last.pt's ``model`` holds the reference network's tensors in its order and shapes."""
    wtalc = cases.wtalc_to_hamnet(cases.wtalc_case()["weights"])
    stpn = cases.stpn_to_hamnet(cases.stpn_case()["weights"])
    for method_name, overrides, mapped, classes in [
        ("w-talc", ["data.feature_dim=16"], wtalc, 5),
        ("stpn", ["data.feature_dim=1024"], stpn, 20),
    ]:
        config = make_config("thumos14", "all", overrides, method=method_name)
        state = make_method(config).build_network(classes).state_dict()
        assert list(state) == list(mapped)
        assert all(tuple(state[k].shape) == np.shape(v) for k, v in mapped.items())
