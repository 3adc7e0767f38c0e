"""hamnet under ``localize.rules=reference`` against outputs recorded from the baselines'
reference codes (tests/methods/fixtures/*_reference.json).

The fixtures were recorded by running the released codes (W-TALC and BaS-Net in PyTorch
on CPU, STPN's TensorFlow graph through tf.compat.v1) on the seeded weights and
features of :mod:`reference_cases`; here the same weights go into hamnet's networks.
Every recorded detection must have a hamnet one (same video and class, times and score
equal to float32 rounding) and the other way round; the losses agree to float32.

CO2-Net and DELU on ActivityNet-1.2-shaped data (``*_official_anet.json``): the official
ANT_CO2 / DELU_ACT code run on the CPU on ``reference_cases.anet_case``, its network from
``setup_seed(0)`` (hamnet's from ``torch.manual_seed(0)`` has the same weights); the
fixtures hold its outputs, detections and loss terms (docs/methods.md, CO2-Net).
"""

from __future__ import annotations

import base64
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
from hamnet.methods.co2net.network import Co2Network

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


# ---- CO2-Net and DELU on ActivityNet-1.2-shaped data (fixtures from the official codes) --


def _official(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}_official_anet.json").read_text())


def _float32(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4")


def _anet_outputs() -> dict[str, dict[str, np.ndarray]]:
    """The official ANT_CO2 / DELU_ACT outputs of every video of ``anet_case``."""
    recorded = _official("co2net")["outputs"]
    return {
        name: {"cas": _float32(v["cas"]).reshape(v["length"], 101), "attn": _float32(v["attn"])}
        for name, v in recorded.items()
    }


def _seeded_anet_network():
    """The official network's initial weights: setup_seed(0), then ANT_CO2(2048, 100)."""
    torch.manual_seed(0)
    network = Co2Network(2048, 100, pool_kernel=13)
    return network.eval()


def _anet_unmatched(a: list, b: list) -> list:
    """Rows ``(video, class, start s, end s, score)`` of ``a`` without a row of ``b`` of
    the same video and class, times within 1e-4 s and score within 1e-4 relative plus
    1e-7 (an OIC score is a difference of near-equal means: outputs within 2e-6 of the
    official ones move a score near 0 by more than 1e-4 of itself; one thread or two)."""
    missing = []
    for row in a:
        near = [
            r
            for r in b
            if r[:2] == row[:2]
            and abs(r[2] - row[2]) <= 1e-4
            and abs(r[3] - row[3]) <= 1e-4
            and abs(r[4] - row[4]) <= 1e-4 * abs(row[4]) + 1e-7
        ]
        if not near:
            missing.append(row)
    return missing


def _official_rows(name: str, classes: list[str]) -> list[tuple]:
    """The official detections in seconds (test.py hands snippets to its evaluator, which
    rounds the ground truth by 25 / 16: 0.64 s a snippet)."""
    rows = _official(name)["detections"]
    return [(v, classes[c], s * 0.64, e * 0.64, score) for v, c, s, e, score in rows]


def _anet_method(method_name: str, overrides: tuple[str, ...] = ()):
    config = make_config("activitynet12", method=method_name, overrides=list(overrides))
    settings = inference_settings(config)
    return config, settings.method, settings


def test_anet_seeded_network_has_the_official_initial_weights():
    """torch.manual_seed(0) then hamnet's network (pool kernel 13): the official
    ANT_CO2(2048, 100) after setup_seed(0), tensor for tensor (DELU_ACT draws the same)."""
    official = _official("co2net")["init"]
    own = _seeded_anet_network().state_dict()
    assert set(own) == {k for k in official if not k.startswith("feat_encoder.")}
    for key, value in own.items():
        flat = value.reshape(-1)
        assert list(value.shape) == official[key]["shape"], key
        ends = (official[key]["first"], official[key]["last"])
        assert (flat[0].item(), flat[-1].item()) == ends, key
        total = value.double().sum().item()
        assert total == pytest.approx(official[key]["sum"], rel=1e-9, abs=1e-9), key


def test_anet_network_gives_the_official_outputs():
    """The official weights on the seeded videos (7 to 97 snippets, the pool kernel of 13
    wider than the shortest): T-CAS and fused attention to float32 rounding, video by
    video and in one padded batch."""
    network, case, official = _seeded_anet_network(), cases.anet_case(), _anet_outputs()
    assert list(official) == case["names"]
    with torch.no_grad():
        for name, features in zip(case["names"], case["videos"], strict=True):
            out = network(torch.from_numpy(features)[None])
            np.testing.assert_allclose(out["cas"][0], official[name]["cas"], rtol=0, atol=2e-6)
            np.testing.assert_allclose(out["attn"][0], official[name]["attn"], rtol=0, atol=1e-6)
        # one padded batch of all seven (hamnet's batched inference): each video's rows
        lengths = [len(v) for v in case["videos"]]
        batch = torch.zeros(len(lengths), max(lengths), 2048)
        for row, features in enumerate(case["videos"]):
            batch[row, : lengths[row]] = torch.from_numpy(features)
        mask = torch.arange(max(lengths))[None] < torch.tensor(lengths)[:, None]
        out = network(batch, mask)
    for row, name in enumerate(case["names"]):
        n = lengths[row]
        np.testing.assert_allclose(out["cas"][row, :n], official[name]["cas"], rtol=0, atol=2e-6)
        np.testing.assert_allclose(out["attn"][row, :n], official[name]["attn"], rtol=0, atol=1e-6)


@pytest.mark.parametrize(("method_name", "count"), [("co2net", 29), ("delu", 55)])
def test_anet_reference_rule_gives_the_official_detections(method_name, count):
    """The `activitynet12` preset's rule on the official outputs: every official detection
    both ways (CO2-Net 10 thresholds; DELU 20 and its length rule); the two videos of at
    most 10 snippets, which the official AntSampleDataset leaves out of the test, give
    none (``short_video`` 10); without that option they would give some. The video with
    an empty label list is tested (and detected in) as officially."""
    _, method, settings = _anet_method(method_name)
    case = cases.anet_case()
    classes, case_names = case["classes"], case["names"]
    found, by_video = [], {}
    for name, outputs in _anet_outputs().items():
        output = method.video_output(name, outputs)
        rows = [
            (d.video, d.label, d.start, d.end, d.score)
            for d in method.detections(output, classes, settings)
        ]
        by_video[name] = len(rows)
        found += rows
    official = _official_rows(method_name, classes)
    assert len(official) == count and len(found) == count
    assert _anet_unmatched(official, found) == [] and _anet_unmatched(found, official) == []
    assert [row[:4] for row in found] == [row[:4] for row in official]  # the official order
    tested = _official(method_name)["tested"]
    assert tested == [n for n in by_video if n not in ("v_anet0", "v_anet1")]
    assert by_video["v_anet0"] == by_video["v_anet1"] == 0
    assert by_video[case_names[cases.ANET_EMPTY]] > 0  # an empty label list is tested too
    _, unfiltered, settings = _anet_method(method_name, ("method_options.short_video=0",))
    short = unfiltered.video_output("v_anet1", _anet_outputs()["v_anet1"])
    assert unfiltered.detections(short, classes, settings)


@pytest.mark.parametrize("method_name", ["co2net", "delu"])
def test_anet_network_and_rule_end_to_end(method_name):
    """hamnet's seeded network, inference and rule on the seeded videos: the official
    detections of the official run, both ways."""
    _, method, settings = _anet_method(method_name)
    network, case = _seeded_anet_network(), cases.anet_case()
    found = []
    for name, features in zip(case["names"], case["videos"], strict=True):
        output = infer_video(network, features, name, torch.device("cpu"), settings)
        found += [
            (d.video, d.label, d.start, d.end, d.score)
            for d in method.detections(output, case["classes"], settings)
        ]
    official = _official_rows(method_name, case["classes"])
    assert _anet_unmatched(official, found) == [] and _anet_unmatched(found, official) == []


def _anet_batch_terms(method_name: str):
    _, method, _ = _anet_method(method_name)
    case = cases.anet_case()
    with torch.no_grad():
        outputs = method.forward(_seeded_anet_network(), torch.from_numpy(case["batch"]), None)
    return method, outputs, torch.from_numpy(case["batch_labels"])


def test_anet_co2net_terms_equal_the_official_criterion():
    """ANT_CO2.criterion on one batch of 10 x 60 (eval mode: no dropout), its terms
    through the official topkloss / Contrastive: hamnet's to float32 precision."""
    method, outputs, labels = _anet_batch_terms("co2net")
    official = _official("co2net")["loss_batch"]["terms"]
    with torch.no_grad():
        terms = method.losses(outputs, labels, None)
    names = {"mil_base": "mil_orig", "mil_supp": "mil_supp", "coactivity": "contrastive"}
    names.update(mutual="mutual", norm="norm", guide="guide")
    for ours, theirs in names.items():
        assert terms[ours].item() == pytest.approx(official[theirs], rel=1e-5, abs=1e-7), ours
    total = official["total_official_criterion"]
    assert terms["total"].item() == pytest.approx(total, rel=1e-6)


def test_anet_delu_terms_equal_the_official_criterion():
    """DELU_ACT.criterion (relu evidence, mse EDL, rat_atn 5; the curve at iterations 0,
    5500, 11000 and 22000 of 22000) on the same batch: every weighted term of its
    loss_dict and the total."""
    method, outputs, labels = _anet_batch_terms("delu")
    recorded = _official("delu")["loss_batch"]
    names = {"edl": "edl_loss", "uct_guide": "uct_guide_loss", "mil_base": "loss_mil_orig"}
    names.update(mil_supp="loss_mil_supp", coactivity="loss_supp_contrastive")
    names.update(mutual="mutual_loss", norm="norm_loss", guide="guide_loss")
    weights = method.weights()
    for iteration, official in recorded["by_itr"].items():
        method.set_progress(int(iteration), recorded["args"]["max_iter"])
        with torch.no_grad():
            terms = method.losses(outputs, labels, None)
        for ours, theirs in names.items():
            value = weights[ours] * terms[ours].item()
            assert value == pytest.approx(official[theirs], rel=1e-5, abs=1e-7), (iteration, ours)
        assert terms["total"].item() == pytest.approx(official["total_loss"], rel=1e-6)
