"""Pseudo ground truth from a teacher (FuSTAL's selection): the rules on hand-worked
cases, the file ``hamnet eval`` reads, ``hamnet pseudo-label`` on a trained run, and a
second stage given pseudo labels (the test subset refused unless asked for)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hamnet.cli import main
from hamnet.data.annotations import AnnotationSet, Segment, Video, load_gt_json
from hamnet.errors import ConfigError
from hamnet.localize.detections import Detection
from hamnet.localize.pseudo_labels import (
    PseudoLabelRules,
    kept_mask,
    overlap_matrix,
    pseudo_ground_truth,
    select_pseudo_labels,
)
from hamnet.methods import ALIASES, METHODS, register_method
from hamnet.methods.hamnet.method import HamNetMethod


def det(start, end, score, label="A", video="v"):
    return Detection(video, label, score, start, end)


def test_the_overlap_is_the_intersection_over_the_span_of_the_pair():
    segments = np.array([[0.0, 4.0], [2.0, 6.0], [10.0, 11.0]])
    found = overlap_matrix(segments)
    assert found[0, 1] == pytest.approx(2 / 6) and found[1, 0] == pytest.approx(2 / 6)
    assert found[0, 2] == 0 and found[0, 0] == pytest.approx(1.0)
    assert found.dtype == np.float32


def test_a_detection_needs_a_score_above_the_bar_and_dense_neighbours():
    rows = [
        det(0.0, 4.0, 0.9),  # IoU with the next: 2/6 >= 0.2: dense
        det(2.0, 6.0, 0.5, label="B"),  # classes mix in the density (as FuSTAL's code)
        det(0.0, 4.0, 0.4),  # dense, but 0.4 is not above 0.4
        det(20.0, 21.0, 0.99),  # alone: IoU sum 0
    ]
    assert kept_mask(rows, PseudoLabelRules()).tolist() == [True, True, False, False]
    loose = PseudoLabelRules(min_score=0.0, min_overlap_sum=0.0)
    assert kept_mask(rows, loose).tolist() == [True, True, True, True]


def test_the_overlap_sum_counts_every_other_detection_and_the_bar_is_inclusive():
    # each pair overlaps 1/10 = 0.1; two neighbours sum to exactly 0.2 in float32
    rows = [det(0.0, 5.5, 0.9), det(4.5, 10.0, 0.9), det(0.0, 1.0, 0.9)]
    sums = overlap_matrix(np.array([[r.start, r.end] for r in rows]))
    np.fill_diagonal(sums, 0)
    mask = kept_mask(rows, PseudoLabelRules(min_overlap_sum=float(sums.sum(1)[0])))
    assert mask[0] and not mask[2]


def test_bad_rules_are_one_config_error():
    with pytest.raises(ConfigError, match="min_score"):
        PseudoLabelRules(min_score=float("nan"))
    with pytest.raises(ConfigError, match="min_overlap_sum"):
        PseudoLabelRules(min_overlap_sum=-1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 50), st.floats(0.01, 10), st.floats(0, 1), st.sampled_from("AB")),
        max_size=12,
    ),
    st.floats(0, 1),
    st.floats(0, 2),
)
def test_looser_rules_keep_a_superset(rows, score, overlap):
    detections = [det(s, s + length, p, label) for s, length, p, label in rows]
    strict = kept_mask(detections, PseudoLabelRules(score, overlap))
    loose = kept_mask(detections, PseudoLabelRules(score / 2, overlap / 2))
    assert np.all(loose[strict])
    assert len(strict) == len(detections)


def small_annotations():
    videos = [
        Video("v1", "validation", 30.0, ("A",), (Segment(1.0, 5.0, "A"),)),
        Video("v2", "validation", 20.0, ("B",), (Segment(2.0, 9.0, "B"),)),
        Video("t1", "test", 25.0, ("A",), (Segment(3.0, 6.0, "A"),)),
    ]
    return AnnotationSet(["A", "B"], videos)


def test_the_document_is_ground_truth_hamnet_reads_with_scores_and_clipped_segments(tmp_path):
    kept = select_pseudo_labels(
        [
            det(1.0, 5.0, 0.9, video="v1"),
            det(1.5, 5.5, 0.8, video="v1"),
            det(25.0, 40.0, 0.9, video="v2", label="B"),  # alone: dropped
            det(3.0, 6.0, 0.9, video="t1"),
        ],
        PseudoLabelRules(),
    )
    document = pseudo_ground_truth(kept, small_annotations(), ["validation"], {"teacher": "x"})
    assert sorted(document["database"]) == ["v1", "v2"]  # only the subset asked for
    assert document["database"]["v2"]["annotations"] == []
    first = document["database"]["v1"]["annotations"][0]
    assert first == {"segment": [1.0, 5.0], "label": "A", "score": 0.9}
    path = tmp_path / "pl.json"
    path.write_text(json.dumps(document))
    read = load_gt_json(path)
    assert [len(v.segments) for v in read.videos] == [2, 0]
    clipped = pseudo_ground_truth(
        {"v2": [det(15.0, 26.0, 0.9, "B", "v2")]}, small_annotations(), ["validation"], {}
    )
    assert clipped["database"]["v2"]["annotations"][0]["segment"] == [15.0, 20.0]


class PseudoToy(HamNetMethod):
    """A second stage on pseudo labels: records what it was given."""

    name = "pseudo-toy"
    label = "pseudo toy"
    stage_input = "pseudo_labels"
    bound: dict = {}

    def bind_inputs(self, inputs, annotations):
        PseudoToy.bound = load_gt_json(inputs["pseudo_labels"]).videos


@pytest.fixture
def pseudo_toy():
    register_method("pseudo-toy", PseudoToy)
    yield
    METHODS.pop("pseudo-toy")
    ALIASES.pop("pseudo-toy", None)


@pytest.fixture(scope="module")
def teacher_run(tiny_root, tiny_overrides, tmp_path_factory):
    run = tmp_path_factory.mktemp("teacher") / "run"
    sets = [x for o in [*tiny_overrides, "train.epochs=3"] for x in ("--set", o)]
    assert (
        main(["train", "--preset", "demo", "--data", str(tiny_root), "--run-dir", str(run), *sets])
        == 0
    )
    return run


def test_pseudo_label_writes_the_training_subset_with_provenance_and_quality(
    teacher_run, tiny_root, tmp_path, capsys
):
    out = tmp_path / "PL.json"
    code = main(["pseudo-label", str(teacher_run), "--out", str(out), "--min-score", "0"])
    printed = capsys.readouterr().out
    assert code == 0 and "pseudo labels vs the real labels, validation" in printed
    document = json.loads(out.read_text())
    subsets = {entry["subset"] for entry in document["database"].values()}
    assert subsets == {"validation"}
    provenance = document["provenance"]
    assert provenance["teacher"]["method"] == "hamnet" and not provenance["includes_test_subset"]
    assert provenance["rules"] == {"name": "FuSTAL", "min_score": 0.0, "min_overlap_sum": 0.2}
    assert len(provenance["teacher"]["checkpoint_sha256"]) == 64
    assert 0 <= document["quality"]["validation"]["average"] <= 100
    # the file is ground truth for `hamnet eval`; the teacher's own detections score on it
    teacher = out.with_name("PL-teacher") / "run-detections.json"
    assert main(["eval", "--gt", str(out), "--pred", str(teacher), "--subset", "validation"]) == 0


def test_pseudo_label_refuses_to_write_over_its_teachers_files(teacher_run, capsys):
    checkpoint = teacher_run / "last.pt"
    before = checkpoint.read_bytes()
    capsys.readouterr()
    assert main(["pseudo-label", str(teacher_run), "--out", str(checkpoint)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refusing to overwrite an input" in err[0]
    assert checkpoint.read_bytes() == before


def test_pseudo_label_applies_and_records_the_optional_rules(teacher_run, tmp_path, capsys):
    plain, ruled = tmp_path / "plain.json", tmp_path / "ruled.json"
    assert main(["pseudo-label", str(teacher_run), "--out", str(plain), "--min-score", "0"]) == 0
    args = ["--min-score", "0", "--nms-iou", "0.5", "--merge-iou", "0.1"]
    assert main(["pseudo-label", str(teacher_run), "--out", str(ruled), *args]) == 0
    printed = capsys.readouterr().out
    assert "per-class NMS at IoU 0.5" in printed and "merged where hull IoU > 0.1" in printed
    before, after = (json.loads(p.read_text()) for p in (plain, ruled))
    assert after["provenance"]["rules"] == {
        "name": "FuSTAL", "min_score": 0.0, "min_overlap_sum": 0.2, "nms_iou": 0.5,
        "merge_iou": 0.1,
    }  # fmt: skip
    assert 0 < after["provenance"]["kept"] < before["provenance"]["kept"]
    assert after["provenance"]["detections_in"] == before["provenance"]["detections_in"]
    assert 0 <= after["quality"]["validation"]["average"] <= 100


def test_a_second_stage_refuses_test_subset_pseudo_labels_unless_asked(
    pseudo_toy, teacher_run, tiny_root, tiny_overrides, tmp_path, capsys
):
    both = tmp_path / "both.json"
    assert (
        main(["pseudo-label", str(teacher_run), "--out", str(both), "--subset", "train,test"]) == 0
    )
    assert json.loads(both.read_text())["provenance"]["includes_test_subset"]
    sets = [x for o in [*tiny_overrides, "train.epochs=1"] for x in ("--set", o)]
    args = ["train", "--preset", "demo", "--method", "pseudo-toy", "--data", str(tiny_root)]
    capsys.readouterr()
    refused = main([*args, "--run-dir", str(tmp_path / "r1"), "--pseudo-labels", str(both), *sets])
    err = capsys.readouterr().err.strip().splitlines()
    assert refused == 2 and len(err) == 1 and "train.allow_test_subset=true" in err[0]
    assert not (tmp_path / "r1" / "last.pt").exists()
    allowed = [*sets, "--set", "train.allow_test_subset=true"]
    assert (
        main([*args, "--run-dir", str(tmp_path / "r2"), "--pseudo-labels", str(both), *allowed])
        == 0
    )
    assert {v.subset for v in PseudoToy.bound} == {"validation", "test"}


def test_a_second_stage_on_a_teacher_run_gets_its_training_subset_and_a_results_note(
    pseudo_toy, teacher_run, tiny_root, tiny_overrides, tmp_path, capsys
):
    sets = [x for o in [*tiny_overrides, "train.epochs=1"] for x in ("--set", o)]
    run = tmp_path / "student"
    args = ["train", "--preset", "demo", "--method", "pseudo-toy", "--data", str(tiny_root)]
    assert main([*args, "--run-dir", str(run), "--teacher", str(teacher_run), *sets]) == 0
    assert {v.subset for v in PseudoToy.bound} == {"validation"}
    results = (run / "results.md").read_text()
    assert "pseudo labels:" in results and "teacher: hamnet" in results
    assert "pseudo labels vs the real labels, validation" in results
    kept = json.loads((run / "inputs" / "pseudo_labels.json").read_text())
    assert kept["provenance"]["teacher"]["run"] == str(teacher_run.resolve())


def test_a_pseudo_label_file_of_unknown_videos_is_one_line_naming_it(
    pseudo_toy, tiny_root, tiny_overrides, tmp_path, capsys
):
    bad = tmp_path / "bad.json"
    entry = {"subset": "validation", "duration": 10.0, "annotations": []}
    bad.write_text(json.dumps({"database": {"no_such_video": entry}}))
    sets = [x for o in [*tiny_overrides, "train.epochs=1"] for x in ("--set", o)]
    run = tmp_path / "run"
    args = ["train", "--preset", "demo", "--method", "pseudo-toy", "--data", str(tiny_root)]
    code = main([*args, "--run-dir", str(run), "--pseudo-labels", str(bad), *sets])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(bad) in err[0] and "no_such_video" in err[0]
    assert not (run / "last.pt").exists()
