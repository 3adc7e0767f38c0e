"""FuSTAL student's test-time rule: the Trident decode, the candidates, batched NMS (hard,
Gaussian soft, per class or agnostic with voting), seconds and the EMA targets, by hand;
parity with the official code (github:fqhank/FuSTAL@3037b4e with its C++ NMS built)
recorded on the seeded cases of student_post_cases.py (fixtures/student_post_official.npz,
tools/reference/record_student_post.py); invariants on random inputs."""

from __future__ import annotations

import math
import sys
import types
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
import student_post_cases as cases  # noqa: E402

from hamnet.errors import ConfigError
from hamnet.methods.student.decode import (
    boundary_neighbours,
    decode_batch,
    decode_video_level,
)
from hamnet.methods.student.postprocess import (
    InferenceSettings,
    VideoDetections,
    batched_nms,
    candidates,
    detect_video,
    ema_targets,
    hard_nms_indices,
    seg_voting,
    settings_from,
    soft_nms,
    to_detections,
    to_seconds,
    video_detections,
)

FIXTURE = Path(__file__).parent / "fixtures" / "student_post_official.npz"


def _dets(segments, scores, labels) -> VideoDetections:
    return VideoDetections(
        torch.tensor(segments, dtype=torch.float32),
        torch.tensor(scores, dtype=torch.float32),
        torch.tensor(labels, dtype=torch.long),
    )


# ---- decode by hand ---------------------------------------------------------------


def test_neighbours_read_backwards_for_start_and_forwards_for_end_with_zero_padding():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    start = boundary_neighbours(logits, 2, "start")
    end = boundary_neighbours(logits, 2, "end")
    assert start.tolist() == [[[0, 0, 1], [0, 1, 2], [1, 2, 3]]]
    assert end.tolist() == [[[1, 2, 3], [2, 3, 0], [3, 0, 0]]]
    with pytest.raises(ValueError):
        boundary_neighbours(logits, 2, "middle")


def test_decode_is_the_expected_distance_of_the_softmax():
    # one bin (distances 0 or 1), one class, two points; centre logits added per point
    offsets = torch.tensor([[0.0, 0.0, 0.0, math.log(3.0)], [0.0, 0.0, 0.0, 0.0]])
    start = torch.tensor([[0.0, 0.0]])
    end = torch.tensor([[0.0, 0.0]])
    got = decode_video_level(offsets, start, end, 1)
    # start of point 0: [pad 0, own 0] + [0, 0] -> 1/2 at distance 1; end of point 0:
    # [own 0 + 0, next 0 + log 3] -> 3/4 at distance 1; point 1: halves
    assert torch.allclose(got, torch.tensor([[[0.5, 0.75], [0.5, 0.5]]]))


def test_training_layout_equals_the_test_layout_per_video_and_level():
    gen = torch.Generator().manual_seed(0)
    lengths, bins, classes = (6, 3), 2, 4
    offsets = [torch.randn(2, t, 2 * (bins + 1), generator=gen) for t in lengths]
    start = [torch.randn(2, classes, t, generator=gen) for t in lengths]
    end = [torch.randn(2, classes, t, generator=gen) for t in lengths]
    batch = decode_batch(offsets, start, end, bins)
    assert batch.shape == (2, 9, classes, 2)
    for video in range(2):
        levels = [
            decode_video_level(o[video], s[video], e[video], bins).permute(1, 0, 2)
            for o, s, e in zip(offsets, start, end, strict=True)
        ]
        assert torch.allclose(batch[video], torch.cat(levels), atol=1e-6)


# ---- NMS by hand ------------------------------------------------------------------

THREE = torch.tensor([[0.0, 10.0], [5.0, 10.0], [20.0, 30.0]])  # IoU(0, 1) = 0.5


def test_hard_nms_suppresses_at_iou_at_least_the_threshold():
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert hard_nms_indices(THREE, scores, 0.4).tolist() == [0, 2]
    # the +1e-6 on each length puts IoU(0, 1) just under 0.5
    assert hard_nms_indices(THREE, scores, 0.5).tolist() == [0, 1, 2]
    assert hard_nms_indices(THREE, torch.tensor([0.1, 0.8, 0.7]), 0.4).tolist() == [1, 2]


def test_soft_nms_gaussian_decay_by_hand():
    dets, kept = soft_nms(THREE, torch.tensor([0.9, 0.8, 0.7]), sigma=0.5, min_score=0.001)
    assert kept.tolist() == [0, 2, 1]
    decayed = 0.8 * math.exp(-(0.5**2) / 0.5)  # 0.4852
    assert dets[:, 2].tolist() == pytest.approx([0.9, 0.7, decayed], rel=1e-6)
    assert dets[:, :2].tolist() == [[0, 10], [20, 30], [5, 10]]


def test_soft_nms_drops_below_min_score_and_fills_the_gap_from_the_end():
    segs = torch.tensor([[0.0, 10.0], [0.0, 10.0], [50.0, 60.0], [0.0, 9.0], [70.0, 80.0]])
    scores = torch.tensor([0.9, 0.5, 0.4, 0.3, 0.2])
    # after picking 0: 1 -> 0.5 e^-2 = 0.068 and 3 -> 0.3 e^(-0.81 / 0.5) = 0.059 fall
    # under 0.1; 4 (the last) moves into 1's place, 2 stays: kept 0, 2, 4
    dets, kept = soft_nms(segs, scores, sigma=0.5, min_score=0.1)
    assert kept.tolist() == [0, 2, 4]
    assert dets[:, 2].tolist() == pytest.approx([0.9, 0.4, 0.2])


def test_batched_multiclass_keeps_overlaps_of_other_classes_and_sorts_by_score():
    setting = InferenceSettings(nms_method="hard", iou_threshold=0.4)
    out = batched_nms(THREE, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([3, 1, 3]), setting)
    assert out.labels.tolist() == [3, 1, 3]
    assert out.scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    agnostic = replace(setting, multiclass_nms=False, voting_thresh=0.0)
    out = batched_nms(THREE, torch.tensor([0.9, 0.8, 0.7]), torch.tensor([3, 1, 3]), agnostic)
    assert out.labels.tolist() == [3, 3]


def test_voting_averages_the_overlapping_inputs_by_score():
    kept = torch.tensor([[0.0, 10.0]])
    refined = seg_voting(kept, THREE, torch.tensor([0.6, 0.2, 0.9]), 0.5)
    # inputs 0 (IoU 1) and 1 (IoU 0.5) vote 3 : 1
    assert refined.flatten().tolist() == pytest.approx([1.25, 10.0])


def test_hard_nms_drops_scores_at_or_below_min_score_first():
    setting = InferenceSettings(nms_method="hard", min_score=0.5, iou_threshold=0.4)
    out = batched_nms(THREE, torch.tensor([0.5, 0.8, 0.7]), torch.tensor([0, 0, 0]), setting)
    assert out.scores.tolist() == pytest.approx([0.8, 0.7])


def test_no_candidates_give_empty_outputs():
    out = batched_nms(torch.zeros(0, 2), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert out.segments.shape == (0, 2) and len(out) == 0


# ---- seconds and EMA targets by hand ------------------------------------------------


def test_seconds_use_stride_and_half_the_window_and_clamp_to_the_duration():
    found = _dets([[-10.0, 3.0], [10.0, 100.0]], [0.5, 0.4], [0, 1])
    out = to_seconds(found, fps=30.0, duration=10.0, feat_stride=4, num_frames=16)
    # (-10 * 4 + 8) / 30 < 0 -> 0; (3 * 4 + 8) / 30 = 2/3; 48 / 30; 408 / 30 -> 10
    assert out.segments.flatten().tolist() == pytest.approx([0.0, 2 / 3, 1.6, 10.0])


def test_detections_are_named_by_class_index_in_the_rule_order():
    found = _dets([[0.5, 1.5], [2.0, 3.0]], [0.75, 0.5], [1, 0])
    dets = to_detections(found, "video_test_0000004", ["Billiards", "CliffDiving"])
    assert [(d.label, d.score, d.start, d.end) for d in dets] == [
        ("CliffDiving", 0.75, 0.5, 1.5),
        ("Billiards", 0.5, 2.0, 3.0),
    ]
    assert {d.video for d in dets} == {"video_test_0000004"}


def test_ema_targets_keep_scores_above_0_4_back_on_the_grid():
    found = _dets([[0.1, 2.0], [3.0, 4.0], [5.0, 6.0]], [0.9, 0.41, 0.4], [2, 5, 7])
    out = ema_targets(found, fps=25.0)
    # (0.1 * 25 - 8) / 4 = -1.375 -> 0; (2 * 25 - 8) / 4 = 10.5
    assert out.segments.flatten().tolist() == pytest.approx([0.0, 10.5, 16.75, 23.0])
    assert out.labels.tolist() == [2, 5]


def test_ema_targets_fall_back_to_the_best_and_give_none_without_detections():
    found = _dets([[1.0, 2.0], [3.0, 4.0]], [0.2, 0.3], [2, 5])
    assert ema_targets(found, fps=25.0).labels.tolist() == [5]
    assert ema_targets(_dets(np.zeros((0, 2)), [], []), fps=25.0) is None


def test_settings_defaults_and_refusals():
    default = InferenceSettings()
    assert (default.pre_nms_topk, default.max_seg_num, default.min_score) == (2000, 2000, 0.001)
    assert (default.nms_method, default.multiclass_nms, default.voting_thresh) == (
        "soft",
        True,
        0.7,
    )
    assert InferenceSettings.library_defaults().max_seg_num == 1000
    with pytest.raises(ConfigError, match="nms_method"):
        InferenceSettings(nms_method="linear")
    with pytest.raises(ConfigError, match="max_seg_num"):
        InferenceSettings(max_seg_num=0)


# ---- parity with the official code --------------------------------------------------


def _hamnet_case(name: str) -> tuple[int, VideoDetections]:
    seed, overrides = cases.CASES[name]
    setting = replace(InferenceSettings(), **overrides)
    head = cases.head_outputs(seed)
    args = (
        head["points"],
        head["masks"],
        head["cls"],
        head["offsets"],
        head["start"],
        head["end"],
        setting,
    )
    count = len(candidates(*args))
    meta = cases.META
    found = to_seconds(
        video_detections(*args),
        meta["fps"],
        meta["duration"],
        meta["feat_stride"],
        meta["feat_num_frames"],
    )
    return count, found


def _matched(a: VideoDetections, b: dict, seconds=1e-4, relative=1e-4) -> bool:
    """Every detection of ``a`` has one of ``b`` with its label, its segment within
    ``seconds`` and its score within ``relative``."""
    for seg, score, label in zip(
        a.segments.numpy(), a.scores.numpy(), a.labels.numpy(), strict=True
    ):
        near = (
            (b["labels"] == label)
            & (np.abs(b["segments"] - seg).max(1) <= seconds)
            & (np.abs(b["scores"] - score) <= relative * np.abs(b["scores"]))
        )
        if not near.any():
            return False
    return True


@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_detections_equal_the_official_code(name):
    with np.load(FIXTURE) as data:
        ref = {k: data[f"{name}/{k}"] for k in ("segments", "scores", "labels", "candidates")}
    count, found = _hamnet_case(name)
    assert count == int(ref["candidates"])
    assert len(found) == len(ref["scores"])
    assert _matched(found, ref)
    back = _dets(ref["segments"], ref["scores"], ref["labels"])
    assert _matched(back, {k: v.numpy() for k, v in vars(found).items()})
    # in the official order too
    assert found.labels.tolist() == ref["labels"].tolist()


# ---- invariants -------------------------------------------------------------------


@st.composite
def _segments(draw):
    n = draw(st.integers(1, 40))
    starts = draw(st.lists(st.floats(-20, 100), min_size=n, max_size=n))
    lengths = draw(st.lists(st.floats(0.1, 60), min_size=n, max_size=n))
    scores = draw(st.lists(st.floats(0.0011, 1.0), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    segs = torch.tensor([[s, s + w] for s, w in zip(starts, lengths, strict=True)])
    return segs, torch.tensor(scores), torch.tensor(labels)


@settings(max_examples=60, deadline=None)
@given(_segments(), st.sampled_from(["soft", "hard"]), st.booleans(), st.integers(1, 30))
def test_outputs_sorted_capped_and_within_the_video(data, method, multiclass, cap):
    segs, scores, labels = data
    setting = InferenceSettings(nms_method=method, multiclass_nms=multiclass, max_seg_num=cap)
    out = batched_nms(segs, scores, labels, setting)
    assert len(out) <= min(cap, len(scores))
    assert torch.all(out.scores[:-1] >= out.scores[1:])
    assert torch.all(out.scores <= scores.max())
    sec = to_seconds(out, fps=30.0, duration=5.0, feat_stride=4, num_frames=16)
    assert torch.all((sec.segments >= 0) & (sec.segments <= 5.0))


@settings(max_examples=40, deadline=None)
@given(_segments())
def test_hard_nms_keeps_no_pair_above_the_threshold(data):
    segs, scores, _ = data
    kept = segs[hard_nms_indices(segs, scores, 0.3)]
    left = torch.maximum(kept[:, None, 0], kept[None, :, 0])
    right = torch.minimum(kept[:, None, 1], kept[None, :, 1])
    inter = (right - left).clamp(min=0)
    lengths = kept[:, 1] - kept[:, 0] + 1e-6
    iou = inter / (lengths[:, None] + lengths[None, :] - inter)
    iou.fill_diagonal_(0)
    assert torch.all(iou < 0.3 + 1e-6)


# ---- the method's entry point ------------------------------------------------------


def test_detect_video_reads_the_methods_layout_and_its_options():
    head = cases.head_outputs(0)
    levels = {}
    for level in range(len(cases.LEVEL_LENGTHS)):
        levels[f"cls_{level}"] = head["cls"][level][None]
        levels[f"start_{level}"] = head["start"][level].T[None]  # [1, T, C]
        levels[f"end_{level}"] = head["end"][level].T[None]
        levels[f"offsets_{level}"] = head["offsets"][level][None]
        levels[f"mask_{level}"] = head["masks"][level][None]
    options = types.SimpleNamespace(max_seg_num=100, multiclass_nms=0, crop_low=0.9)
    got = detect_video(levels, options, rate=25 / 16, duration=20.0)
    setting = replace(InferenceSettings(), max_seg_num=100, multiclass_nms=False)
    assert settings_from(options) == setting
    want = to_seconds(
        video_detections(
            *(head[k] for k in ("points", "masks", "cls", "offsets", "start", "end")), setting
        ),
        fps=25 / 16,
        duration=20.0,
        feat_stride=1,
        num_frames=1,
    )
    assert np.array_equal(got["segments"], want.segments.numpy())
    assert np.array_equal(got["labels"], want.labels.numpy())
    assert np.array_equal(got["scores"], want.scores.numpy())
