"""The released W-TALC annotation layout: the real files, round trips and bad inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from hamnet.data.annotations import AnnotationSet, Segment, Video, load_gt_json, save_gt_json
from hamnet.data.released import load_released_annotations, save_released_annotations
from hamnet.errors import DataError


def same(a: AnnotationSet, b: AnnotationSet) -> bool:
    return (a.classes, a.videos, a.ambiguous) == (b.classes, b.videos, b.ambiguous)


def test_thumos_counts_and_first_video(thumos_annotations_dir: Path) -> None:
    thumos = load_released_annotations(thumos_annotations_dir)
    assert len(thumos.videos) == 412 and thumos.num_classes == 20
    assert len(thumos.subset("validation")) == 200 and len(thumos.subset("test")) == 212
    first = thumos.videos[0]
    assert first.name == "video_validation_0000051" and first.labels == ("Billiards",)
    spans = [(s.start, s.end, s.label) for s in first.segments]
    assert spans == [
        (67.5, 75.9, "Billiards"),
        (85.9, 90.6, "Billiards"),
        (139.3, 148.2, "Billiards"),
    ]
    assert first.duration == pytest.approx(169.794)


def test_thumos_quirks(thumos_annotations_dir: Path) -> None:
    thumos = load_released_annotations(thumos_annotations_dir)
    unlabelled = [v for v in thumos.videos if not v.labels]
    assert [v.name for v in unlabelled] == ["video_test_0000270"]
    assert len(unlabelled[0].segments) == 29
    assert sum(s.start >= unlabelled[0].duration for s in unlabelled[0].segments) == 22
    # video-level labels are labels_all, even where segment labels say more
    video = thumos.video("video_validation_0000171")
    assert video.labels == ("CricketBowling",)
    assert {s.label for s in video.segments} == {"CricketBowling", "CricketShot"}
    past = sum(s.start >= v.duration for v in thumos.videos for s in v.segments)
    assert past == 30
    assert len(thumos.ambiguous) == 37
    assert sum(len(spans) for spans in thumos.ambiguous.values()) == 99
    assert thumos.ambiguous["video_test_0000278"][:2] == [(0.0, 1.4), (95.7, 97.2)]


def test_activitynet_counts_and_spot_check(anet_annotations_dir: Path) -> None:
    anet = load_released_annotations(anet_annotations_dir)
    assert len(anet.videos) == 7202 and anet.num_classes == 100
    assert len(anet.subset("training")) == 4819 and len(anet.subset("validation")) == 2383
    raw = np.load(anet_annotations_dir / "segments.npy", allow_pickle=True)
    names = np.load(anet_annotations_dir / "videoname.npy")
    for i in (0, 1234, 7201):
        video = anet.video(names[i].decode())
        assert [[s.start, s.end] for s in video.segments] == [list(map(float, x)) for x in raw[i]]
    assert anet.videos[0].labels == ("Dodgeball",)  # labels_all holds str here, not bytes
    past = sum(s.end > v.duration for v in anet.videos for s in v.segments)
    assert past == 185


@pytest.mark.parametrize("duration_2d", [True, False])
def test_released_round_trip(thumos_annotations_dir: Path, tmp_path: Path, duration_2d) -> None:
    thumos = load_released_annotations(thumos_annotations_dir)
    save_released_annotations(thumos, tmp_path, duration_2d=duration_2d)
    again = load_released_annotations(tmp_path)
    assert same(thumos, again)
    assert np.load(tmp_path / "duration.npy").ndim == (2 if duration_2d else 1)
    assert np.load(tmp_path / "videoname.npy").dtype.kind == "S"


@pytest.mark.parametrize("dataset", ["thumos14", "activitynet12"])
def test_gt_json_round_trip(shared_dir: Path, tmp_path: Path, dataset: str) -> None:
    released = load_released_annotations(shared_dir / "data" / dataset)
    save_gt_json(released, tmp_path / "gt.json")
    assert same(released, load_gt_json(tmp_path / "gt.json"))


def test_ambiguous_with_label_column(tmp_path: Path) -> None:
    video = Video("v1", "test", 10.0, ("A",), (Segment(1.0, 2.0, "A"),))
    save_released_annotations(AnnotationSet(["A"], [video]), tmp_path)
    (tmp_path / "Ambiguous_test.txt").write_text("v1 Ambiguous 3.5 4.0\nv1  5 6\n")
    assert load_released_annotations(tmp_path).ambiguous == {"v1": [(3.5, 4.0), (5.0, 6.0)]}
    (tmp_path / "Ambiguous_test.txt").write_text("v1 3.5\n")
    with pytest.raises(DataError, match=r"Ambiguous_test.txt: line 1: expected 'video start end'"):
        load_released_annotations(tmp_path)


def write_one(folder: Path, segment: Segment, labels=("A",)) -> Path:
    video = Video("clip", "test", 10.0, labels, (segment,))
    save_released_annotations(AnnotationSet(["A", "B"], [video]), folder)
    return folder


@pytest.mark.parametrize(
    ("segment", "labels", "message"),
    [
        (Segment(1.0, 2.0, "Z"), ("A",), "segment label 'Z' is not in the class list"),
        (Segment(1.0, 2.0, "A"), ("Q",), "label 'Q' is not in the class list"),
        (Segment(3.0, 2.0, "A"), ("A",), r"segment \[3.0, 2.0\] has end < start"),
        (
            Segment(-1.0, 2.0, "A"),
            ("A",),
            r"segment \[-1.0, 2.0\] has end < start or a negative time",
        ),
    ],
)
def test_bad_annotations(tmp_path: Path, segment, labels, message) -> None:
    write_one(tmp_path, segment, labels)
    with pytest.raises(DataError, match=f"video 'clip': {message}"):
        load_released_annotations(tmp_path)


def test_missing_file_is_named(thumos_annotations_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "X-Annotations"
    shutil.copytree(thumos_annotations_dir, folder)
    (folder / "labels_all.npy").unlink()
    with pytest.raises(DataError, match=r"labels_all\.npy: file not found"):
        load_released_annotations(folder)


def test_length_mismatch_is_named(tmp_path: Path) -> None:
    write_one(tmp_path, Segment(1.0, 2.0, "A"))
    np.save(tmp_path / "subset.npy", np.array([b"test", b"test"]))
    with pytest.raises(DataError, match=r"subset\.npy: 2 entries but videoname\.npy has 1"):
        load_released_annotations(tmp_path)
