"""P-MIL: its losses and rules against the official code's, recorded on the seeded case of
:func:`reference_cases.pmil_case` (fixtures/pmil_official.json: github:RenHuan1999/
CVPR2023_P-MIL @ 855e683 run on the CPU; tools/reference/record_pmil.py), its proposals
files refused when they do not belong to the data, and a run end to end."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_cases as cases  # noqa: E402

from hamnet.config import make_config
from hamnet.data.dataset import Batch
from hamnet.errors import DataError
from hamnet.methods import make_method
from hamnet.methods.base import StepContext
from hamnet.methods.pmil import (
    rampup,
    rank_consistency_loss,
    read_proposals,
    roi_align,
    segments_iou,
)

FIXTURES = Path(__file__).parent / "fixtures"
SNIPPET = 16 / 25
OVERRIDES = ["data.feature_dim=64"]


def _recorded() -> dict:
    return json.loads((FIXTURES / "pmil_official.json").read_text())


def _method_and_network(case):
    method = make_method(make_config("thumos14", "all", OVERRIDES, method="pmil"))
    network = method.build_network(len(case["classes"]))
    network.load_state_dict(cases.as_tensors(case["weights"]))
    return method, network


def test_roi_align_of_a_constant_and_of_a_ramp_by_hand():
    """Inside the video a bin of a linear signal is its value at the bin's centre."""
    ramp = torch.arange(40, dtype=torch.float32)[:, None]
    out = roi_align(ramp, torch.tensor([[10.0, 22.0]]), 12)[0, :, 0]
    # extended to [7, 25] + fill (ceil(3) + 1 = 4) - 0.5 -> rows 10.5 .. 28.5 of the padded
    # signal (video row r at padded row r + 4): bin centres 11.25, 12.75, ... minus 4
    expected = 10.5 + (torch.arange(12) + 0.5) * 1.5 - 4
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(
        roi_align(torch.ones(40, 3), torch.tensor([[5.0, 9.0]]), 12), torch.ones(1, 12, 3)
    )


def test_segments_iou_and_rampup_by_hand():
    iou = segments_iou(torch.tensor([[0.0, 4.0]]), torch.tensor([[2.0, 6.0], [5.0, 7.0]]))
    assert torch.allclose(iou, torch.tensor([[2 / 6, 0.0]]), atol=1e-6)
    assert rampup(0, 30) == pytest.approx(np.exp(-5.0)) and rampup(45, 30) == 1.0


def test_irc_of_a_single_proposal_is_the_official_nan_unless_skipped():
    # one proposal: none is above its mean attention, the official mean over none is NaN
    student, teacher = torch.tensor([[[0.3, 0.7]]]), torch.tensor([[[0.1, 0.9]]])
    attention, labels = torch.tensor([[[0.5]]]), torch.tensor([[1.0, 0.0]])
    valid, proposals = torch.tensor([[True]]), [torch.tensor([[2.0, 6.0]])]
    args = (student, teacher, attention, labels, valid, proposals)
    assert torch.isnan(rank_consistency_loss(*args))
    assert float(rank_consistency_loss(*args, skip_empty=True)) == 0.0
    # two proposals, the same class: KL over the overlapping pair, the retained one only
    student = torch.tensor([[[0.0], [1.0]]])
    teacher = torch.tensor([[[1.0], [0.0]]])
    two = [torch.tensor([[0.0, 4.0], [2.0, 6.0]])]
    attention = torch.tensor([[[0.2], [0.8]]])
    loss = rank_consistency_loss(
        student, teacher, attention, torch.tensor([[1.0]]), torch.tensor([[True, True]]), two
    )
    p = torch.softmax(torch.tensor([1.0, 0.0]), 0)
    q = torch.log_softmax(torch.tensor([0.0, 1.0]), 0)
    assert float(loss) == pytest.approx(float((p * (p.log() - q)).sum()), rel=1e-6)


def test_training_videos_with_one_proposal_are_warned_of(tmp_path, annotations, caplog):
    method = make_method(make_config("thumos14", "all", OVERRIDES, method="pmil"))
    rows = [{"segment": [1.0, 2.0], "score": 0.5}]
    path = _write(tmp_path, _every_video(annotations, rows))
    with caplog.at_level("WARNING"):
        method.bind_inputs({"proposals": path}, annotations)
    assert "fewer than 2 proposals" in caplog.text and "irc_skip_empty=1" in caplog.text
    caplog.clear()
    skipping = make_config(
        "thumos14", "all", [*OVERRIDES, "method_options.irc_skip_empty=1"], method="pmil"
    )
    with caplog.at_level("WARNING"):
        make_method(skipping).bind_inputs({"proposals": path}, annotations)
    assert "fewer than 2 proposals" not in caplog.text


def test_outputs_and_detections_equal_the_official_code():
    recorded, case = _recorded(), cases.pmil_case()
    method, network = _method_and_network(case)
    network.eval()
    names = [f"video_test_{i:07d}" for i in range(len(case["test_features"]))]
    spans = [p.astype(np.float64) for p in case["test_proposals"]]
    method.proposals = dict(zip(names, spans, strict=True))
    settings = type("S", (), {"snippet_seconds": SNIPPET, "ambiguous": {}})()
    total = 0
    for name, feat, video in zip(names, case["test_features"], recorded["test"], strict=True):
        with torch.no_grad():
            x = torch.from_numpy(feat)[None]
            outputs = method.forward_test(network, x, method.test_inputs(name))
        for key, value in video["outputs"].items():
            np.testing.assert_allclose(outputs[key][0].numpy(), value, rtol=1e-4, atol=1e-5)
        output = method.video_output(name, {k: v[0].numpy() for k, v in outputs.items()})
        np.testing.assert_allclose(output.video_scores, video["video_score"], rtol=1e-5)
        ours = sorted(
            (
                round(d.start / SNIPPET, 2),
                round(d.end / SNIPPET, 2),
                case["classes"].index(d.label),
                d.score,
            )
            for d in method.reference_detections(output, case["classes"], settings)
        )
        theirs = sorted(tuple(row) for row in video["detections"])
        assert len(ours) == len(theirs)
        for mine, official in zip(ours, theirs, strict=True):
            assert mine[:3] == pytest.approx(official[:3], abs=1e-4)
            assert mine[3] == pytest.approx(official[3], rel=1e-4)
        total += len(theirs)
    assert total > 50


def _train_batch(case):
    feats = case["train_features"]
    longest = max(len(f) for f in feats)
    x = torch.zeros(len(feats), longest, feats[0].shape[1])
    for i, f in enumerate(feats):
        x[i, : len(f)] = torch.from_numpy(f)
    mask = torch.arange(longest)[None, :] < torch.tensor([len(f) for f in feats])[:, None]
    targets = [{"proposals": torch.from_numpy(p)} for p in case["train_proposals"]]
    return Batch(x, mask, torch.from_numpy(case["labels"]), ["v"] * len(feats), [], targets)


def test_losses_and_one_step_equal_the_official_code():
    recorded, case = _recorded(), cases.pmil_case()
    method, network = _method_and_network(case)
    network.train()
    batch = _train_batch(case)
    proposals = [t["proposals"] for t in batch.targets]
    torch.manual_seed(5)
    outputs = network(batch.features, batch.mask.sum(1), proposals)
    terms = method.step_losses(outputs, batch.labels, proposals, 3)
    official = recorded["losses_epoch3"]
    for ours, theirs in (("mil_orig", "loss_prop_mil_orig"), ("mil_supp", "loss_prop_mil_supp")):
        assert terms[ours].item() * getattr(method.options, f"weight_{ours}") == pytest.approx(
            official[theirs], rel=1e-5
        )
    assert terms["irc"].item() * 2 == pytest.approx(official["loss_prop_irc"], rel=1e-4)
    assert terms["comp"].item() * 20 == pytest.approx(official["loss_prop_comp"], rel=1e-4)
    assert terms["total"].item() == pytest.approx(official["loss_total"], rel=1e-5)

    method, network = _method_and_network(case)
    network.train()
    before = {k: v.detach().clone() for k, v in network.state_dict().items()}
    method.steps_per_epoch = 1
    torch.manual_seed(5)
    method.train_step(batch, StepContext(network, method.make_optimizer(network), 1.0, 2, 10))
    for name, value in network.state_dict().items():
        delta = (value - before[name]).double()
        assert delta.abs().sum().item() == pytest.approx(recorded["step"][name]["abs"], rel=1e-3), (
            name
        )


# ---- proposals files that do not belong to the data ---------------------------------


@pytest.fixture
def annotations(tiny_root):
    from hamnet.data.layout import open_dataset

    return open_dataset(tiny_root)[0]


def _write(tmp_path, content) -> Path:
    path = tmp_path / "proposals.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def _without(content: dict, name: str) -> dict:
    del content["results"][name]
    return content


def _every_video(annotations, rows=None):
    return {"results": {v.name: rows if rows is not None else [] for v in annotations.videos}}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c, a: {"results": {}}, "no proposals"),
        (
            lambda c, a: c["results"].update(no_such_video=[]) or c,
            "a video the dataset does not have",
        ),
        (lambda c, a: _without(c, a.videos[0].name), "no proposals for video"),
        (
            lambda c, a: c["results"].update({a.videos[0].name: [{"segment": [5, 1e6]}]}) or c,
            "ends after the video",
        ),
        (
            lambda c, a: c["results"].update({a.videos[0].name: [{"segment": [3, 1]}]}) or c,
            "not a span",
        ),
        (
            lambda c, a: c["results"].update({a.videos[0].name: [{"label": "x"}]}) or c,
            r"without a \[start, end\]",
        ),
        (
            lambda c, a: (
                c["results"].update(
                    {a.videos[0].name: [{"segment": [1, 2], "label": "NoSuchClass"}]}
                )
                or c
            ),
            "'NoSuchClass' is not one of the dataset's classes",
        ),
    ],
)
def test_proposals_that_do_not_belong_to_the_data_are_refused(tmp_path, annotations, edit, message):
    content = edit(_every_video(annotations), annotations)
    path = _write(tmp_path, content)
    with pytest.raises(DataError, match=message) as caught:
        read_proposals(path, annotations, SNIPPET)
    assert str(path) in str(caught.value)


def test_an_empty_or_broken_file_is_refused(tmp_path, annotations):
    for text in ("", "{not json", "[]"):
        with pytest.raises(DataError, match="proposals.json"):
            read_proposals(_write(tmp_path, text), annotations, SNIPPET)


def test_a_video_without_proposals_gets_the_official_zero_span(tmp_path, annotations):
    read = read_proposals(_write(tmp_path, _every_video(annotations)), annotations, SNIPPET)
    assert all(np.array_equal(p, [[0.0, 0.0]]) for p in read.values())
    rows = [{"segment": [1.0, 2.0], "label": annotations.classes[0], "score": 0.5}]
    read = read_proposals(_write(tmp_path, _every_video(annotations, rows)), annotations, SNIPPET)
    assert np.allclose(next(iter(read.values())), [[1.56, 3.12]])  # round(t * 25 / 16, 2)


def test_trains_and_tests_end_to_end_on_a_teachers_detections(tiny_root, tiny_config, tmp_path):
    """A run folder with RUN/inputs/proposals.json (here: the ground truth jittered, as
    a teacher's detections would be) trains, tests, and its checkpoint tests again."""
    from hamnet.data.layout import open_dataset
    from hamnet.infer.tester import evaluate_checkpoint
    from hamnet.methods import inputs as stage_inputs
    from hamnet.train.trainer import train

    annotations = open_dataset(tiny_root)[0]
    rng = np.random.default_rng(0)
    results = {}
    for video in annotations.videos:
        rows = []
        for seg in video.segments:
            for _ in range(3):
                start = max(0.0, seg.start + rng.normal(0, 1.0))
                end = min(video.duration, max(start + 0.5, seg.end + rng.normal(0, 1.0)))
                rows.append({"segment": [start, end], "label": seg.label, "score": 0.5})
        results[video.name] = rows
    run = tmp_path / "run"
    stage_inputs.write_input(run, "proposals", {"results": results})
    result = train(
        tiny_config("all", "method=pmil", "train.epochs=2", "train.batch_size=4"),
        tiny_root,
        run,
        progress=False,
    )
    assert result.final["average_mAP"] >= 0
    evaluation = evaluate_checkpoint(
        run / "last.pt", tiny_root, tmp_path / "det.json", progress=False
    )
    assert evaluation.detections and evaluation.result.average_mAP == pytest.approx(
        result.final["average_mAP"]
    )


def _train_args(tiny_root, run, tiny_overrides, *extra):
    args = ["train", "--preset", "demo", "--method", "pmil", "--data", tiny_root, "--run-dir", run]
    for item in [*tiny_overrides, "train.epochs=1", "train.batch_size=4"]:
        args += ["--set", item]
    return [str(a) for a in [*args, *extra]]


def test_two_stages_in_one_command(tiny_root, tiny_config, tiny_overrides, tmp_path, capsys):
    """--teacher RUN: the run's checkpoint tested on both subsets becomes the proposals
    (with their provenance); --teacher METHOD trains it first in RUN/teacher."""
    from hamnet.cli import main
    from hamnet.train.trainer import train

    teacher = tmp_path / "teacher-run"
    train(tiny_config("all", "method=w-talc", "train.epochs=2"), tiny_root, teacher, progress=False)
    run = tmp_path / "run"
    assert main(_train_args(tiny_root, run, tiny_overrides, "--teacher", teacher)) == 0
    made = json.loads((run / "inputs" / "proposals.json").read_text())
    assert made["provenance"][0]["source"] == str(teacher)
    assert len(made["results"]) == 24 and (run / "last.pt").is_file()
    again = tmp_path / "again"
    proposals = run / "inputs" / "teacher-run-detections.json"
    assert main(_train_args(tiny_root, again, tiny_overrides, "--proposals", proposals)) == 0
    trained = tmp_path / "trained"
    assert main(_train_args(tiny_root, trained, tiny_overrides, "--teacher", "stpn")) == 0
    assert (trained / "teacher" / "last.pt").is_file() and (trained / "last.pt").is_file()
    capsys.readouterr()


def test_a_second_stage_needs_its_input_and_a_first_stage_takes_none(
    tiny_root, tiny_overrides, tmp_path, capsys
):
    from hamnet.cli import main

    code = main(_train_args(tiny_root, tmp_path / "a", tiny_overrides))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "trains on proposals and this run has none" in err[0]
    args = _train_args(tiny_root, tmp_path / "b", tiny_overrides, "--teacher", "pmil")
    assert main(args) == 2
    assert "a second stage cannot be the teacher" in capsys.readouterr().err
    args = ["train", "--preset", "demo", "--data", str(tiny_root), "--proposals", str(tmp_path)]
    assert main([*args, "--run-dir", str(tmp_path / "c")]) == 2
    assert "is not a second stage" in capsys.readouterr().err
    assert not (tmp_path / "a" / "last.pt").exists() and not (tmp_path / "c").exists()
    (tmp_path / "d").mkdir()
    args = _train_args(tiny_root, tmp_path / "d", tiny_overrides, "--proposals", tmp_path / "d")
    assert main(args) == 2
    assert "its own detections" in capsys.readouterr().err
    assert not (tmp_path / "d" / "inputs").exists()


def test_ablate_row_teacher_plus_second_stage(tiny_root, tiny_overrides, tmp_path, capsys):
    """``--methods stpn,stpn+pmil``: P-MIL of seed N on the detections of STPN's own run
    of seed N (trained once, shared with STPN's row)."""
    from hamnet.cli import main

    out = tmp_path / "table"
    args = ["ablate", "--preset", "demo", "--data", tiny_root, "--out", out, "--seeds", "0,1"]
    args += ["--methods", "stpn,stpn+pmil"]
    for item in [*tiny_overrides, "train.epochs=1", "train.batch_size=4"]:
        args += ["--set", item]
    assert main([str(a) for a in args]) == 0
    table = (out / "ablation.md").read_text()
    assert "| STPN |" in table and "| STPN + P-MIL |" in table
    for seed in (0, 1):
        made = json.loads(
            (out / "stpn+pmil" / f"seed{seed}" / "inputs" / "proposals.json").read_text()
        )
        assert made["provenance"][0]["source"] == str(out / "stpn" / f"seed{seed}")
    assert not (out / "stpn+pmil" / "seed0" / "teacher").exists()  # STPN's row is the teacher
    capsys.readouterr()
