"""CO2-Net and DELU: every loss term and every rule of the official test against values
worked by hand on tiny inputs; the importer on a state dict of the official layout."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hamnet.cli import main
from hamnet.config import make_config
from hamnet.errors import ConfigError
from hamnet.infer.settings import with_inference_overrides
from hamnet.localize.proposals import above_thresholds
from hamnet.methods import make_method
from hamnet.methods.co2net.delu import course_curve, edl_loss, edl_video_logits, uct_guide_loss
from hamnet.methods.co2net.network import (
    Co2Network,
    attention_norm,
    co_activity,
    guide_maps,
    mutual,
    suppressed_cas,
    topk_mil,
)
from hamnet.methods.co2net.rule import (
    oic_proposals,
    oic_score,
    overlaps_ambiguous,
    reference_detections,
    soft_nms,
    video_scores,
)
from hamnet.weights.trained import load_trained

# ---- loss terms -------------------------------------------------------------------


def test_suppressed_cas_subtracts_the_minimum_over_classes():
    cas = torch.tensor([[[2.0, 4.0, 1.0]]])
    out = suppressed_cas(cas, torch.tensor([[0.5]]))
    assert torch.allclose(out, torch.tensor([[[1.5, 2.5, 1.0]]]))  # 0.5 (s - 1) + 1


def test_topk_mil_by_hand():
    cas = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [1.0, 0.0]]])  # T=3, C=1 + background
    labels = torch.tensor([[1.0]])
    # k = 3 // 2 = 1: logits [2, 0]; target [1, 1] / (2 + 1e-4)
    log_norm = math.log(math.exp(2) + 1)
    expected = -(1 / 2.0001) * ((2 - log_norm) + (0 - log_norm))
    assert topk_mil(cas, labels, 1.0, 2) == pytest.approx(expected, rel=1e-6)
    # background 0: target [1, 0] / (1 + 1e-4)
    assert topk_mil(cas, labels, 0.0, 2) == pytest.approx(-(2 - log_norm) / 1.0001, rel=1e-6)


def test_co_activity_by_hand():
    feat = torch.eye(2)[None].repeat(2, 1, 1)  # two identical videos, T=2, D=2
    column = torch.tensor([math.log(3.0), 0.0])  # temporal softmax [0.75, 0.25]
    cas_supp = torch.stack([column, torch.zeros(2)], dim=1)[None].repeat(2, 1, 1)
    # H = [.75, .25], L = [.25, .75] / (T - 1); d(H, H) = 0, d(H, L) = 1 - 0.6 = 0.4;
    # 0.5 relu(0 - 0.4 + 0.5) twice, over 1 shared class
    shared = torch.tensor([[1.0], [1.0]])
    assert co_activity(feat, cas_supp, shared) == pytest.approx(0.1, abs=1e-6)
    assert co_activity(feat, cas_supp, torch.tensor([[1.0], [0.0]])) == 0.0


def _outputs(attn=0.5, v=0.2, f=0.8):
    full = torch.full((1, 2), 1.0)
    return {
        "cas": torch.zeros(1, 2, 2),  # background probability 0.5
        "attn": full * attn,
        "v_atn": full * v,
        "f_atn": full * f,
    }


def test_mutual_norm_and_guide_by_hand():
    out = _outputs()
    assert mutual(out["v_atn"], out["f_atn"]) == pytest.approx(0.36)  # (.8 - .2)², twice x .5
    assert attention_norm(out) == pytest.approx(0.5)  # (.5 + .2 + .8) / 3
    # |1 - a - .5|: 0, .3, .3 -> mean .2 on every snippet
    assert torch.allclose(guide_maps(out), torch.full((1, 2), 0.2))


def test_edl_log_and_mse_by_hand():
    labels = torch.tensor([[1.0, 0.0]])
    # exp evidence 1, α = [2, 2], S = 4, u = .5: g = [.5, 0]; .5 (log 4 - log 2)
    log_loss = edl_loss(torch.zeros(1, 2), labels, mse=False)
    assert log_loss == pytest.approx(0.5 * math.log(2), rel=1e-6)
    # relu evidence [1, 0], α = [2, 1], S = 3: (1 - 2/3)² + (1/3)²
    mse = edl_loss(torch.tensor([[1.0, -1.0]]), labels, mse=True)
    assert mse == pytest.approx(2 / 9, rel=1e-6)


def test_edl_video_logits_average_the_top_attention_snippets_without_background():
    cas = torch.arange(12, dtype=torch.float32).reshape(1, 4, 3)
    attention = torch.tensor([[0.1, 0.9, 0.5, 0.2]])
    logits = edl_video_logits(cas, attention, 2)  # k = 2: snippets 1 and 2
    assert torch.allclose(logits, torch.tensor([[(3 + 6) / 2, (4 + 7) / 2]]))


def test_course_curve_and_its_flat_middle():
    start = course_curve(0, 10, 2, 0.7)  # θ = [-.5, .5], δ = 1
    assert torch.allclose(start, torch.tensor([1 - 0.7 * math.tanh(0.5), 1 + 0.7 * math.tanh(0.5)]))
    assert torch.allclose(course_curve(5, 10, 2, 0.7), torch.ones(2))  # δ = 0
    assert torch.allclose(course_curve(10, 10, 2, 0.7), start.flip(0))  # δ = -1


def test_uct_guide_weighs_by_the_curve_at_the_sorted_indices():
    out = _outputs(attn=0.5, v=0.5, f=0.5)
    out["attn"] = torch.tensor([[0.2, 0.5]])  # guide maps: [.3 + 0 + 0] / 3 = .1, then 0
    curve = torch.tensor([0.5, 1.5])
    certain_first = torch.tensor([[[5.0, 5.0], [0.0, 0.0]]])  # snippet 0 less uncertain
    # order [0, 1] -> weights curve[[0, 1]] = [.5, 1.5]: mean(.5 .1, 1.5 0) = .025
    value = uct_guide_loss(out, certain_first, 1, curve)
    assert value == pytest.approx(0.025, rel=1e-5)
    # order [1, 0] -> weights [1.5, .5]: mean(1.5 .1, 0) = .075
    assert uct_guide_loss(out, certain_first.flip(1), 1, curve) == pytest.approx(0.075, rel=1e-5)


# ---- the reference test rule ------------------------------------------------------


def test_video_scores_softmax_over_classes_and_background_of_top_tenth():
    cas = np.zeros((20, 3), dtype=np.float32)
    cas[:2, 0] = 4.0  # k = 20 // 10 = 2: means [4 (x attention 1), 0, 0]
    scores = video_scores(cas, np.ones(20, dtype=np.float32))
    e = math.exp(4)
    assert np.allclose(scores, [e / (e + 2), 1 / (e + 2)], atol=1e-6)


def test_oic_score_with_integer_truncated_ring():
    wtcam = np.array([[0.0], [1.0], [5.0], [5.0], [5.0], [5.0], [2.0], [0.0]], np.float32)
    segment = np.array([2, 3, 4, 5])
    # ring: int(2 - 1) = 1 .. 1 and 6 .. int(5 + 1) = 6: mean(1, 2) = 1.5
    (found,) = oic_proposals(segment, wtcam, np.array([0.5]), np.array([0]))
    assert found == [[0, pytest.approx(5 - 1.5 + 0.2 * 0.5), 2, 6]]
    # a run of 3 snippets: int(2 - .75) = 1 keeps snippet 1 on the left, int(4 + .75) = 4
    # none on the right (truncation, not rounding): outer mean(1) = 1
    (found,) = oic_proposals(np.array([2, 3, 4]), wtcam, np.array([0.5]), np.array([0]))
    assert found[0][1] == pytest.approx(5 - 1 + 0.1)


def test_a_threshold_passed_only_by_snippet_0_gives_nothing():
    # official get_proposal_oic_2: temp_list.any() is False for the index list [0]
    assert oic_proposals(np.array([0]), np.ones((3, 1)), np.array([1.0]), np.array([0])) == []


def test_gaussian_soft_nms_plus_one_lengths():
    kept = soft_nms([[0, 0.5, 2, 6], [0, 1.0, 0, 4]], sigma=0.3)
    iou = 3 / (5 + 5 - 3)  # lengths 5 and 5 (+1), overlap 4 - 2 + 1
    assert kept[0] == [0, 1.0, 0, 4]
    assert kept[1][1] == pytest.approx(0.5 * math.exp(-(iou**2) / 0.3))


def test_ambiguous_filter_is_any_snippet_overlap_on_rounded_spans():
    spans = [(1.0, 2.0)]  # snippets round(1.5625) = 2 .. round(3.125) = 3 (exclusive)
    assert not overlaps_ambiguous(0, 2, spans, 25 / 16)
    assert overlaps_ambiguous(2, 3, spans, 25 / 16)
    assert overlaps_ambiguous(0, 10, spans, 25 / 16)


def _one_action(classes: int = 1):
    cas = np.zeros((10, classes + 1), dtype=np.float32)
    cas[3:6, :classes] = 4.0
    attention = np.full(10, 0.05, dtype=np.float32)
    attention[3:6] = 0.95
    return cas, attention


def test_reference_detections_by_hand():
    cas, attention = _one_action()
    (det,) = reference_detections(cas, attention, thresholds=np.array([0.5]))
    score = video_scores(cas, attention)[0]
    # inner mean(4 x .95); the ring (snippet int(3 - .75) = 2 only) holds 0
    assert det[0] == 0 and (det[2], det[3]) == (3.0, 6.0)
    assert det[1] == pytest.approx(4 * 0.95 + 0.2 * score, rel=1e-6)
    # the same segments for every kept class
    cas, attention = _one_action(classes=2)
    found = reference_detections(cas, attention, thresholds=np.array([0.5]), class_thresh=0.1)
    assert [(d[0], d[2], d[3]) for d in found] == [(0, 3.0, 6.0), (1, 3.0, 6.0)]
    # the Ambiguous filter (2-3 s: snippets 3, 4); DELU drops detections of one snippet
    assert reference_detections(cas, attention, thresholds=[0.5], ambiguous=[(2.0, 3.0)]) == []
    attention[4:6] = 0.05
    assert len(reference_detections(cas, attention, thresholds=[0.5])) == 2  # [3, 4)
    assert reference_detections(cas, attention, thresholds=[0.5], min_snippets=1) == []


@pytest.mark.parametrize("method", ["co2net", "delu"])
def test_rules_reference_is_the_official_rule_and_shared_the_common_one(method):
    """Behind Method.detections: rules=reference gives the official rule in seconds (the
    Ambiguous spans of settings filter it), rules=shared hamnet's common localization."""
    import dataclasses

    from hamnet.infer.settings import inference_settings
    from hamnet.methods.base import shared_detections

    settings = inference_settings(make_config("demo", method=method))
    cas, attention = _one_action()
    output = settings.method.video_output("v", {"cas": cas, "attn": attention})
    found = settings.method.detections(output, ["a"], settings)
    assert found and {(d.start, d.end) for d in found} == {(3 * 0.64, 6 * 0.64)}
    best = 4 * 0.95 + 0.2 * video_scores(cas, attention)[0]
    assert max(d.score for d in found) == pytest.approx(best, rel=1e-6)
    ambiguous = dataclasses.replace(settings, ambiguous={"v": [(2.0, 3.0)]})
    assert settings.method.detections(output, ["a"], ambiguous) == []
    shared = dataclasses.replace(settings, rules="shared")
    expected = shared_detections(output, ["a"], shared)
    assert expected and settings.method.detections(output, ["a"], shared) == expected


def test_no_class_above_the_threshold_keeps_the_best_one():
    cas, attention = _one_action(classes=2)
    found = reference_detections(cas, attention, thresholds=[0.5], class_thresh=0.99)
    assert [d[0] for d in found] == [0]


def test_a_snippet_at_a_thresholds_float32_rounding_is_above_it_only_under_numpy_2():
    """numpy 1 compares float32 attention with the threshold cast to float32 (the official
    pinned numpy); numpy 2 compares in float64: float32(0.5210526...) = 0.52105266 is
    above 0.5210526... in float64 and equal to it in float32."""
    threshold = np.linspace(0.1, 0.9, 20)[10]
    attention = np.array([0.9, np.float32(threshold), 0.9], dtype=np.float32)
    assert float(attention[1]) > threshold
    for numpy_rules, expected in ((1, [0, 2]), (2, [0, 1, 2])):
        (mask,) = above_thresholds(attention, [threshold], numpy1=numpy_rules == 1)
        assert np.flatnonzero(mask).tolist() == expected


def test_oic_score_sums_in_float64_under_numpy_1_and_in_float32_under_numpy_2():
    inner, outer, score = np.float32(0.7), np.float32(0.3), np.float32(0.45)
    one = oic_score(inner, outer, score, 0.2, numpy_rules=1)
    assert one.dtype == np.float64 and one == np.float64(inner - outer) + 0.2 * np.float64(score)
    two = oic_score(inner, outer, score, 0.2, numpy_rules=2)
    assert two.dtype == np.float32 and two == np.float32(inner - outer) + np.float32(0.2) * score
    assert one != two
    # an empty ring: the official ``outer_score = 0`` (a Python int)
    assert oic_score(inner, 0, score, 0.2, numpy_rules=1) == np.float64(inner) + 0.2 * np.float64(
        score
    )


@pytest.mark.parametrize("numpy_rules", [1, 2])
def test_reference_rule_equals_the_official_code_under_numpy_1_and_numpy_2(numpy_rules):
    """The video of 1,392 probed whose official DELU detections differ between numpy
    1.26.4 and 2.4.6 (tools/reference/record_delu_numpy_rules.py): hamnet's rule gives
    each numpy's official detections bit for bit, in order, whatever numpy runs here."""
    path = Path(__file__).parent / "fixtures" / "delu_official_numpy_rules.npz"
    with np.load(path) as fixture:
        cas, attention = fixture["cas"], fixture["attention"]
        official = {n: fixture[f"numpy{n}"].tolist() for n in (1, 2)}
    assert official[1] != official[2]
    found = reference_detections(
        cas,
        attention,
        thresholds=np.linspace(0.1, 0.9, 20),
        ambiguous=[(15.7, 18.4)],  # video_test_0000405's line of Ambiguous_test.txt
        min_snippets=1,
        numpy_rules=numpy_rules,
    )
    assert [list(d) for d in found] == official[numpy_rules]


def test_numpy_rules_is_a_test_time_option_of_one_or_two():
    config = make_config("demo", method="delu", overrides=["method_options.numpy_rules=2"])
    assert make_method(config).options.numpy_rules == 2
    assert make_config("demo", method="co2net").method_options["numpy_rules"] == 1
    with pytest.raises(ConfigError, match="numpy_rules=3"):
        make_config("demo", method="co2net", overrides=["method_options.numpy_rules=3"])
    changed = with_inference_overrides(config, ["method_options.numpy_rules=1"])
    assert changed.method_options["numpy_rules"] == 1
    # a checkpoint saved before the option existed
    older = {k: v for k, v in config.method_options.items() if k != "numpy_rules"}
    older = dataclasses.replace(config, method_options=older)
    changed = with_inference_overrides(older, ["method_options.numpy_rules=2"])
    assert changed.method_options["numpy_rules"] == 2
    assert with_inference_overrides(older, []).method_options["numpy_rules"] == 1
    with pytest.raises(ConfigError, match="method_options.numpy_rules"):
        with_inference_overrides(config, ["method_options.alpha1=0.1"])


# ---- presets and importer ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "preset", "values"),
    [
        ("co2net", "thumos14", (5e-5, 1e-3, 5000, 500, 7, 10)),
        ("co2net", "activitynet12", (3e-5, 5e-4, 22000, 60, 5, 10)),
        ("delu", "thumos14", (5e-5, 1e-3, 5000, 320, 7, 20)),
        ("delu", "activitynet12", (3e-5, 5e-4, 22000, 60, 5, 20)),
    ],
)
def test_presets_hold_the_official_scripts_values(method, preset, values):
    c = make_config(preset, method=method)
    got = (c.train.lr, c.train.weight_decay, c.train.iterations, c.data.num_segments)
    got += (c.loss.topk_ratio_inv, len(c.localize.thresholds))
    assert got == values and c.train.batch_size == 10 and c.model.dropout == 0.7
    assert c.train.select_on == "none" and c.eval.protocol == "anet"
    pool, short = c.method_options["pool_kernel"], c.method_options["short_video"]
    assert (pool, short) == ((13, 10) if preset == "activitynet12" else (0, 0))


def _official_state(width: int, classes: int, attention: int) -> dict:
    """The official CO2-Net / DELU layout, written out here (not taken from hamnet)."""
    half, shapes = width // 2, {}
    for m in ("vAttn", "fAttn"):
        shapes[f"{m}.bit_wise_attn.0"] = (half, half, 3)
        shapes[f"{m}.channel_conv.0"] = (half, half, 3)
        shapes[f"{m}.attention.0"] = (attention, half, 3)
        shapes[f"{m}.attention.3"] = (attention, attention, 3)
        shapes[f"{m}.attention.5"] = (1, attention, 1)
    shapes["feat_encoder.0"] = (2048, width, 3)  # embed_dim hard-coded to 2048
    shapes["fusion.0"] = (width, width, 1)
    shapes["classifier.1"] = (width, width, 3)
    shapes["classifier.4"] = (classes + 1, width, 1)
    generator = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in shapes.items():
        state[f"{name}.weight"] = torch.randn(shape, generator=generator) * 0.05
        state[f"{name}.bias"] = torch.randn(shape[0], generator=generator) * 0.05
    return state


@pytest.mark.parametrize("method", ["co2net", "delu"])
def test_import_of_an_official_state_dict(method, tmp_path, capsys):
    state = _official_state(width=64, classes=20, attention=16)
    torch.save(state, tmp_path / "best_model.pkl")
    out = tmp_path / "imported.pt"
    argv = ["import-checkpoint", "--method", method, str(tmp_path / "best_model.pkl"), str(out)]
    assert main([*argv, "--preset", "thumos14"]) == 0
    capsys.readouterr()
    trained = load_trained(out)
    assert trained.config.method == method and trained.config.data.feature_dim == 64
    assert trained.config.model.attention_dim == 16 and len(trained.classes) == 20
    # what `hamnet test` reads to say it is no unfinished hamnet run
    assert trained.imported_from == str(tmp_path / "best_model.pkl")
    weights = trained.model.state_dict()
    assert set(weights) == {k for k in state if not k.startswith("feat_encoder.")}
    assert all(torch.equal(weights[k], state[k]) for k in weights)


def test_import_refuses_a_state_dict_of_another_layout(tmp_path, capsys):
    state = _official_state(width=64, classes=20, attention=16)
    state["vAttn.attention.0.weight"] = torch.zeros(16, 30, 3)
    torch.save(state, tmp_path / "bad.pkl")
    argv = ["import-checkpoint", "--method", "co2net", str(tmp_path / "bad.pkl")]
    assert main([*argv, str(tmp_path / "o.pt"), "--preset", "thumos14"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the RGB half should be 32" in err[0]


def test_delu_curve_follows_the_trainers_iterations(tiny_root, tiny_overrides, tmp_path):
    from hamnet.train.trainer import train

    config = make_config("demo", "all", [*tiny_overrides, "train.iterations=3"], method="delu")
    seen = []
    method_type = type(make_method(config))
    original = method_type.set_progress

    def record(self, iteration, total):
        seen.append((iteration, total))
        original(self, iteration, total)

    method_type.set_progress = record
    try:
        result = train(config, tiny_root, tmp_path / "run", progress=False)
    finally:
        method_type.set_progress = original
    assert seen == [(0, 3), (1, 3), (2, 3)]
    assert result.epochs >= 1


# ---- parity with the official code ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "thresholds", "min_snippets"),
    [("co2net_official_seed0_video2", 10, 0), ("delu_official_seed0_video2", 20, 1)],
)
def test_reference_rule_gives_the_official_detections_of_official_outputs(
    name, thresholds, min_snippets
):
    """Outputs and detections of the official test (fixtures from official CPU runs):
    every detection, in order, with its score; the Ambiguous filter removes as many."""
    fixture = json.loads((Path(__file__).parent / "fixtures" / f"{name}.json").read_text())
    cas = np.asarray(fixture["cas"], dtype=np.float32)
    attention = np.asarray(fixture["attn"], dtype=np.float32)
    assert np.allclose(video_scores(cas, attention), fixture["video_scores"], atol=1e-6)
    grid = np.linspace(0.1, 0.9, thresholds)
    found = reference_detections(
        cas, attention, thresholds=grid, ambiguous=fixture["ambiguous"], min_snippets=min_snippets
    )
    official = fixture["detections"]
    assert [(c, s, e) for c, _, s, e in found] == [(c, s, e) for c, s, e, _ in official]
    assert np.allclose([d[1] for d in found], [d[3] for d in official], atol=1e-5)
    # the official filter counts before DELU's length rule
    every = reference_detections(cas, attention, thresholds=grid)
    kept = reference_detections(cas, attention, thresholds=grid, ambiguous=fixture["ambiguous"])
    assert len(every) - len(kept) == fixture["ambiguous_removed"]


def test_seeded_network_has_the_official_initial_weights():
    """torch.manual_seed(0) then the network: the official CO2(2048, 20) after
    setup_seed(0), tensor for tensor (the unused feat_encoder drawn in its place)."""
    path = Path(__file__).parent / "fixtures" / "co2net_official_seed0_init.json"
    official = json.loads(path.read_text())["parameters"]
    torch.manual_seed(0)
    own = Co2Network(2048, 20).state_dict()
    assert set(own) == {k for k in official if not k.startswith("feat_encoder.")}
    for key, value in own.items():
        expected = official[key]
        assert list(value.shape) == expected["shape"], key
        flat = value.reshape(-1)
        assert (flat[0].item(), flat[-1].item()) == (expected["first"], expected["last"]), key
        assert value.double().sum().item() == pytest.approx(expected["sum"], rel=1e-9, abs=1e-9)


def test_delu_terms_equal_the_official_criterion_on_its_batch():
    """The official DELU criterion's terms on one batch of its outputs, at four iterations
    (fixture from an official CPU run). The co-activity term needs the 2048-wide fused
    features, too large to keep here: the total is checked without it."""
    path = Path(__file__).parent / "fixtures" / "delu_official_loss_batch.json"
    fixture = json.loads(path.read_text())
    outputs = {k: torch.tensor(fixture[k]) for k in ("cas", "attn", "v_atn", "f_atn")}
    labels = torch.tensor(fixture["labels"])
    method = make_method(make_config("thumos14", method="delu"))
    names = {"mil_base": "mil_orig", "mil_supp": "mil_supp", "mutual": "mutual"}
    names.update(norm="norm", guide="guide", edl="edl", uct_guide="uct_guide")
    for iteration, official in fixture["by_itr"].items():
        method.set_progress(int(iteration), fixture["weights"]["max_iter"])
        curve = course_curve(int(iteration), 5000, outputs["cas"].shape[1], 0.7)
        assert torch.allclose(curve, torch.tensor(official["curve"]), atol=1e-6)
        terms = method.terms(outputs, labels)
        weights = method.weights()
        total = official["total_official_criterion"] - official["contrastive"]
        ours = 0.0
        for term, key in names.items():
            value = float(terms[term]())
            assert value == pytest.approx(official[key], rel=1e-5, abs=1e-6), (iteration, term)
            ours += weights[term] * value
        assert ours == pytest.approx(total, rel=1e-5)


@pytest.mark.parametrize("method", ["co2net", "delu"])
def test_class_paired_sampler_puts_three_distinct_sharing_pairs_first(method):
    from hamnet.data.class_pairs import class_paired_epoch

    pairs = make_method(make_config("demo", method=method)).class_pairs()
    assert (pairs.pairs, pairs.distinct) == (3, True)
    labels = np.zeros((12, 4), dtype=np.float32)
    labels[np.arange(12), np.arange(12) % 4] = 1  # three videos per class
    labels[0, 3] = 1
    batches = [b for e in range(25) for b in class_paired_epoch(labels, 10, 3, 0, e, True)]
    assert len(batches) == 50 and all(len(b) == 10 for b in batches)
    for batch in batches:
        for i in (0, 2, 4):
            assert batch[i] != batch[i + 1] and (labels[batch[i]] * labels[batch[i + 1]]).any()


def test_distinct_pairs_draw_as_the_official_load_data():
    """wsad_dataset.py load_data on a RandomState: classes, then each pair without
    replacement, then the rest; classes with one video are never drawn."""
    from hamnet.data.class_pairs import class_paired_batch

    class_videos = [[0, 1, 2], [3], [4, 5]]
    rng = np.random.RandomState(5)
    classes = rng.choice(2, size=3)  # the two classes that can give a pair
    usable = [class_videos[0], class_videos[2]]
    expected = []
    for c in classes:
        expected += [usable[c][i] for i in rng.choice(len(usable[c]), size=2, replace=False)]
    expected += rng.choice(6, size=4).tolist()
    assert class_paired_batch(class_videos, 6, 10, 3, np.random.RandomState(5), True) == expected
    with pytest.raises(ConfigError, match="at least 2 training video"):
        class_paired_batch([[0], [1]], 2, 6, 3, np.random.RandomState(0), True)
    with pytest.raises(ConfigError, match="batch_size 4"):
        make_config("demo", "all", ["train.batch_size=4"], method="co2net")


def test_ground_truth_on_the_snippet_grid_rounds_as_the_official_evaluator():
    from hamnet.data.annotations import AnnotationSet, Segment, Video
    from hamnet.evaluate.snippet_grid import ground_truth_on_snippet_grid

    video = Video("v", "test", 10.0, ("a",), (Segment(1.0, 2.0, "a"), Segment(0.8, 1.2, "a")))
    snapped = ground_truth_on_snippet_grid(AnnotationSet(["a"], [video]), 0.64)
    # round(1.5625) = 2, round(3.125) = 3; round(1.25) = 1, round(1.875) = 2
    ends = [(s.start, s.end) for s in snapped.videos[0].segments]
    assert ends == [(2 * 0.64, 3 * 0.64), (1 * 0.64, 2 * 0.64)]
    assert video.segments[0].start == 1.0  # the input is not changed
    assert make_config("thumos14", method="co2net").eval.snippet_grid_gt is False


def test_iterations_resume_equals_a_straight_run(tiny_root, tiny_overrides, tmp_path):
    """train.iterations cuts the last epoch; a run resumed from an earlier length ends
    with the same weights as one straight run."""
    from hamnet.data.layout import open_dataset
    from hamnet.train.iterations import steps_per_epoch
    from hamnet.train.trainer import train
    from hamnet.weights.checkpoint import load_checkpoint

    base = make_config("demo", "all", tiny_overrides, method="co2net")
    annotations, _, _ = open_dataset(tiny_root)
    per_epoch = steps_per_epoch(
        len(annotations.subset(base.data.train_subset)), base.train.batch_size
    )
    total = 2 * per_epoch + 1  # the third epoch runs one step

    def config(steps):
        return make_config(
            "demo", "all", [*tiny_overrides, f"train.iterations={steps}"], method="co2net"
        )

    straight = train(config(total), tiny_root, tmp_path / "straight", progress=False)
    assert straight.epochs == 3
    train(config(per_epoch), tiny_root, tmp_path / "split", progress=False)
    train(config(total), tiny_root, tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "straight/last.pt")["model"]
    b = load_checkpoint(tmp_path / "split/last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_snippet_grid_matches_in_whole_snippets():
    """(0, 3) against (1, 4) snippets is a tIoU of exactly 0.5, as the official evaluator
    counts it; the same segments in seconds give 0.4999999999999999 and missed the hit."""
    from hamnet.data.annotations import AnnotationSet, Segment, Video
    from hamnet.evaluate.detection_map import evaluate_detections
    from hamnet.evaluate.snippet_grid import in_snippet_units
    from hamnet.localize.detections import Detection

    ss = 0.64
    gt = AnnotationSet(["a"], [Video("v", "test", 10.0, ("a",), (Segment(0.0, 3 * ss, "a"),))])
    found = [Detection("v", "a", 0.9, 1 * ss, 4 * ss)]

    def mean_ap(truth, detections, unit):
        result = evaluate_detections(
            truth, detections, tiou=[0.5], subset="test", snippet_seconds=unit
        )
        return result

    assert mean_ap(gt, found, ss).mAP[0] == 0.0  # in seconds the hit is lost
    truth, counted = in_snippet_units(gt, found, ss)
    assert (counted[0].start, counted[0].end) == (1.0, 4.0)
    assert [(s.start, s.end) for s in truth.videos[0].segments] == [(0.0, 3.0)]
    assert mean_ap(truth, counted, 1.0).mAP[0] == 1.0


# ---- what the official test scores: every test video, and its classification score -----


def test_classification_score_is_the_official_line_with_its_unsqueezed_length():
    """test.py ranks softmax(mean(topk(logits, ceil(len(features) / 8)))) where
    ``features`` is already [1, T, D]: k = 1, the per-class maximum over time; bit for
    bit (the same torch calls)."""
    from hamnet.methods.co2net.rule import classification_scores

    rng = np.random.default_rng(5)
    logits = rng.normal(size=(40, 5)).astype(np.float32)
    features = torch.zeros(1, 40, 8)  # as test.py holds them at that line
    k = int(np.ceil(len(features) / 8))
    official = torch.softmax(torch.topk(torch.from_numpy(logits), k=k, dim=0)[0].mean(0), 0)
    assert k == 1
    np.testing.assert_array_equal(classification_scores(logits), official.numpy()[:-1])
    by_hand = np.exp(logits.max(0)) / np.exp(logits.max(0)).sum()
    np.testing.assert_allclose(classification_scores(logits), by_hand[:-1], rtol=1e-6)
    # not the detection score (top T // 10 of cas x attention)
    half = np.full(40, 0.5, np.float32)
    assert not np.allclose(classification_scores(logits), video_scores(logits, half))


@pytest.mark.parametrize("method", ["co2net", "delu"])
def test_reference_test_scores_unlabelled_videos_and_ranks_the_official_score(
    method, tiny_root, tiny_overrides, monkeypatch
):
    """An empty ``labels_all`` (THUMOS14's video_test_0000270) is tested under
    rules=reference, as test.py tests every video of testidx; rules=shared skips it.
    Classification mAP ranks the official score under reference, the video score under
    shared."""
    import dataclasses

    from hamnet.data.layout import open_dataset
    from hamnet.infer import inference
    from hamnet.infer.settings import inference_settings

    annotations, store, _ = open_dataset(tiny_root)
    blank = [v.name for v in annotations.subset("test") if v.labels][-1]  # not the first
    videos = [
        dataclasses.replace(v, labels=()) if v.name == blank else v for v in annotations.videos
    ]
    annotations = dataclasses.replace(annotations, videos=videos)
    config = make_config("demo", method=method, overrides=tiny_overrides)
    torch.manual_seed(0)
    settings = inference_settings(config)
    network = settings.method.build_network(annotations.num_classes)
    ranked = []
    monkeypatch.setattr(
        inference, "classification_map", lambda scores, labels: ranked.append(scores) or 0.0
    )
    runs = {}
    for rules in ("reference", "shared"):
        chosen = dataclasses.replace(settings, rules=rules)
        runs[rules] = inference.evaluate_model(
            network, annotations, store, subset="test", device=torch.device("cpu"), settings=chosen
        )
    tested = len(annotations.subset("test"))
    assert runs["reference"].num_videos == tested and runs["shared"].num_videos == tested - 1
    assert any(d.video == blank for d in runs["reference"].detections)
    assert not any(d.video == blank for d in runs["shared"].detections)
    first = store.read(annotations.subset("test")[0].name)
    outputs = inference.forward_video(network, first, torch.device("cpu"), "fp32", settings.method)
    output = settings.method.video_output("v", outputs)
    np.testing.assert_allclose(ranked[0][0], output.classification_scores, rtol=1e-6)
    np.testing.assert_allclose(ranked[1][0], output.video_scores, rtol=1e-6)


def test_short_videos_are_left_out_of_the_reference_test_classification_included(
    tiny_root, tiny_overrides, monkeypatch
):
    """wsad_dataset.py:268-280 drops videos of at most ``short_video`` snippets from the
    test: no detections and no classification score under rules=reference."""
    import dataclasses

    from hamnet.data.layout import open_dataset
    from hamnet.infer import inference
    from hamnet.infer.settings import inference_settings

    annotations, store, _ = open_dataset(tiny_root)
    lengths = {v.name: store.length(v.name) for v in annotations.subset("test")}
    cut = sorted(lengths.values())[len(lengths) // 2]
    config = make_config(
        "demo", method="co2net", overrides=[*tiny_overrides, f"method_options.short_video={cut}"]
    )
    torch.manual_seed(0)
    settings = inference_settings(config)
    network = settings.method.build_network(annotations.num_classes)
    rows = []
    monkeypatch.setattr(
        inference, "classification_map", lambda s, labels: rows.append(len(labels)) or 0.0
    )
    kept = [name for name, n in lengths.items() if n > cut]
    cpu = torch.device("cpu")
    found = inference.evaluate_model(
        network, annotations, store, subset="test", device=cpu, settings=settings
    )
    assert found.num_videos == len(kept) == rows[0] < len(lengths)
    assert {d.video for d in found.detections} <= set(kept)
    shared = dataclasses.replace(settings, rules="shared")
    every = inference.evaluate_model(
        network, annotations, store, subset="test", device=cpu, settings=shared
    )
    assert every.num_videos == len(lengths) == rows[1]
