"""FuSTAL's student: parity with the official Student-Training code (github:fqhank/FuSTAL
@ 3037b4e, run on the CPU by tools/reference/record_student.py on the seeded case of
student_case.py; fixtures/student_official.*), its rules by hand, its input checks."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import student_case as sc  # noqa: E402

from hamnet.config import make_config
from hamnet.data.annotations import AnnotationSet, Segment, Video
from hamnet.data.dataset import Batch
from hamnet.errors import DataError
from hamnet.localize.pseudo_labels import PseudoLabelRules
from hamnet.methods import make_method
from hamnet.methods.base import StepContext, TrainItem
from hamnet.methods.student import losses as L
from hamnet.methods.student import pseudo
from hamnet.methods.student.method import warmup_cosine_lrs
from hamnet.methods.student.network import (
    StudentNetwork,
    TriDetNet,
    TriDetShape,
    level_points,
    pad_inputs,
    reference_key,
)

FIXTURES = Path(__file__).parent / "fixtures"
HEADS = {"cls_head": "cls", "start_head": "start", "end_head": "end", "reg_head": "offsets"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine two threads of these tiny convs wait
    on each other far longer than they compute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def official():
    meta = json.loads((FIXTURES / "student_official.json").read_text())
    blob = np.load(FIXTURES / "student_official.npz")["values"]
    recorded = {
        key: blob[start : start + int(np.prod(shape))].reshape(shape)
        for key, (start, shape) in meta["index"].items()
    }
    return recorded, meta


def perturbed(net: TriDetNet, keys: list[str]) -> TriDetNet:
    """The official weights of the fixtures: the seed's initial ones + the offsets."""
    state = net.state_dict()
    with torch.no_grad():
        for i, key in enumerate(keys):
            value = state[reference_key(key)]
            value.add_(torch.from_numpy(sc.perturbation(i, tuple(value.shape))))
    return net


def batch_inputs():
    videos = sc.case()["videos"]
    longest = max(len(v["feats"]) for v in videos)
    feats = torch.zeros(len(videos), longest, sc.SHAPE["input_dim"])
    mask = torch.zeros(len(videos), longest, dtype=torch.bool)
    for b, v in enumerate(videos):
        feats[b, : len(v["feats"])] = torch.from_numpy(v["feats"])
        mask[b, : len(v["feats"])] = True
    labels = torch.from_numpy(np.stack([v["video"] for v in videos]))
    return videos, feats, mask, labels


def worst_gap(out: dict, recorded: dict, prefix: str) -> float:
    gap = 0.0
    for ref_name, name in HEADS.items():
        for level, value in enumerate(out[name]):
            flat = value.permute(0, 2, 1).detach().double().reshape(-1).numpy()
            got = flat[sc.sample_positions(flat.size)]
            gap = max(
                gap, float(np.abs(got - recorded[f"{prefix}/{ref_name}/{level}/values"]).max())
            )
            total = recorded[f"{prefix}/{ref_name}/{level}/sum"]
            assert flat.sum() == pytest.approx(total[0], rel=1e-5, abs=1e-3)
    return gap


# ---- parity with the official code ----------------------------------------------------


def test_initial_weights_are_the_official_ones_from_the_same_seed(official):
    recorded, meta = official
    torch.manual_seed(sc.SEED)
    state = TriDetNet(TriDetShape(**sc.SHAPE)).state_dict()
    assert sorted(reference_key(k) for k in meta["keys"]) == sorted(state)
    for key in meta["keys"]:
        value = state[reference_key(key)].double()
        got = [value.sum().item(), (value**2).sum().item()]
        np.testing.assert_allclose(got, recorded[f"init/{key}"], rtol=0, atol=1e-9)


def test_outputs_of_every_level_equal_the_official_network(official):
    recorded, meta = official
    shape = TriDetShape(**sc.SHAPE)
    torch.manual_seed(sc.SEED)
    net = perturbed(TriDetNet(shape), meta["keys"]).eval()
    videos, feats, mask, _ = batch_inputs()
    with torch.no_grad():
        for i, v in enumerate(videos):
            one = torch.from_numpy(v["feats"])[None]
            x, m = pad_inputs(one, torch.ones(one.shape[:2], dtype=torch.bool), shape, False)
            assert worst_gap(net(x, m), recorded, f"eval/{i}") < 1e-5
    net.train()
    torch.manual_seed(5)  # input noise, drop path: the official draws in the same order
    x, m = pad_inputs(feats, mask, shape, True)
    assert worst_gap(net(x, m), recorded, "train") < 1e-5


def test_label_assignment_equals_the_official_targets(official):
    recorded, _ = official
    shape = TriDetShape(**sc.SHAPE)
    points = torch.cat([p[: 320 // 2**i] for i, p in enumerate(level_points(shape))])
    for b, v in enumerate(sc.case()["videos"]):
        cls_t, reg_t = L.assign_targets(
            points, torch.from_numpy(v["segments"]), torch.from_numpy(v["labels"]), 20
        )
        assert np.array_equal(
            torch.nonzero(cls_t).numpy(), recorded[f"targets/{b}/positives"].astype(np.int64)
        )
        got = reg_t[cls_t.sum(-1) > 0].double().numpy()
        np.testing.assert_allclose(got, recorded[f"targets/{b}/offsets"], rtol=0, atol=1e-6)


class Draws:
    """Stands in for the generator: ``integers(low, high)`` gives the next given value
    (the official ``random.randint(low, high - 1)`` draw)."""

    def __init__(self, values):
        self.values = list(values)

    def integers(self, low, high):
        value = self.values.pop(0)
        assert low <= value < high
        return value


def test_training_crop_equals_the_official_truncate_feats(official):
    _, meta = official
    for (length, max_len, crop, draws, segments), ref in zip(sc.CROPS, meta["crops"], strict=True):
        segments = np.asarray(segments, dtype=np.float32)
        window = pseudo.crop_window(length, segments, max_len, 0.5, crop, Draws(draws))
        assert list(window) == ref["window"]
        got, labels = pseudo.cropped_targets(
            segments, np.arange(len(segments)), *window, length, 0.5
        )
        assert got.tolist() == ref["segments"] and labels.tolist() == ref["labels"]


def student_method(**options):
    values = {k: sc.SHAPE[k] for k in ("max_seq_len", "embd_dim", "sgp_mlp_dim", "head_dim")}
    values.update(k=sc.SHAPE["k"], distill_after=0)
    values.update(options)
    overrides = [f"method_options.{k}={v}" for k, v in values.items()]
    overrides += [f"data.feature_dim={sc.SHAPE['input_dim']}", f"train.lr={sc.LR}"]
    overrides += [f"train.weight_decay={sc.WEIGHT_DECAY}"]
    return make_method(make_config("demo", method="student", overrides=overrides))


def official_network(method, keys) -> StudentNetwork:
    torch.manual_seed(sc.SEED)
    net = method.build_network(sc.SHAPE["num_classes"])
    perturbed(net.student, keys)
    net.ema.load_state_dict(net.student.state_dict())
    return net


def test_every_loss_term_equals_the_official_batch(official):
    _, meta = official
    method = student_method()
    net = official_network(method, meta["keys"]).train()
    videos, feats, mask, labels = batch_inputs()
    torch.manual_seed(5)
    out = net(feats, mask)
    segments = [torch.from_numpy(v["segments"]) for v in videos]
    classes = [torch.from_numpy(v["labels"]) for v in videos]
    terms = method.step_losses(net, out, segments, classes, labels)
    ref = meta["losses"]
    assert terms["cls"].item() == pytest.approx(ref["cls_loss"], rel=1e-6)
    assert terms["reg"].item() == pytest.approx(ref["reg_loss"], rel=1e-6)
    assert terms["total"].item() == pytest.approx(ref["final_loss"], rel=1e-6)
    assert float(net.loss_norm) == pytest.approx(meta["loss_normalizer"], rel=1e-12)


def test_three_adamw_clip_schedule_ema_steps_equal_the_official_ones(official):
    recorded, meta = official
    method = student_method(warmup_epochs=1)
    method.steps_per_epoch = sc.WARMUP_STEPS
    net = official_network(method, meta["keys"]).train()
    optimizer = method.make_optimizer(net)
    videos, feats, mask, labels = batch_inputs()
    targets = [
        {"segments": torch.from_numpy(v["segments"]), "labels": torch.from_numpy(v["labels"])}
        for v in videos
    ]
    batch = Batch(feats, mask, labels, ["a", "b"], [TrainItem(0), TrainItem(1)], targets)
    before = {k: v.clone() for k, v in net.student.state_dict().items()}
    lrs = []
    for step in range(sc.STEPS):
        torch.manual_seed(100 + step)
        lrs.append(method.learning_rate(int(net.updates)))
        terms = method.train_step(batch, StepContext(net, optimizer, 1.0, step, sc.STEPS))
        assert terms["total"].item() == pytest.approx(
            meta["step_losses"][step]["final_loss"], rel=1e-5
        )
        assert float(net.loss_norm) == pytest.approx(meta["normalizers"][step], rel=1e-12)
    assert lrs == pytest.approx(meta["lrs"], rel=1e-15)
    after, ema = net.student.state_dict(), net.ema.state_dict()
    worst = 0.0
    for key in meta["keys"]:
        ours = reference_key(key)
        start = before[ours].reshape(-1).numpy()
        at = sc.sample_positions(start.size)
        # float32 steps of each weight (other sum orders), plus 1e-8: 1e-4 of a step of
        # lr 1e-4, where another CPU's reduction order (AVX2 against AVX-512) moves a
        # tiny weight's gradient and Adam rescales it (3.7e-9 seen on an AMD EPYC)
        ulp = np.spacing(np.abs(start[at]))
        for name, state in (("step", after), ("ema", ema)):
            delta = (state[ours] - before[ours]).double().reshape(-1).numpy()[at]
            gap = np.abs(delta - recorded[f"{name}/{key}/values"])
            assert (gap <= 4 * ulp + 1e-8).all(), (key, name)
            worst = max(worst, float(gap.max()))
    # changes of ~1e-4 (lr x Adam's unit steps), equal up to 3 float32 steps of a weight
    # (1.4e-6 on the boundary heads' biases of -4.6, whose tiny gradients Adam rescales)
    assert worst < 2e-6


# ---- rules by hand ----------------------------------------------------------------


def test_schedule_with_the_yaml_infinite_epochs_is_a_warmup_then_constant():
    lrs = warmup_cosine_lrs(1e-4, 8, 4, math.inf, 1e-8)
    assert lrs[:4] == pytest.approx([0.0, 1e-4 / 3, 2e-4 / 3, 1e-4], rel=1e-12)
    assert lrs[4:] == pytest.approx([1e-4] * 4, rel=1e-12)
    finite = warmup_cosine_lrs(1.0, 7, 2, 6, 0.0)  # cosine over steps 2..6
    assert finite[2] == 1.0 and finite[4] == pytest.approx(0.5, abs=1e-12)


def test_pseudo_filter_keeps_overlapping_confident_segments():
    video = pseudo.PseudoVideo(
        np.array([[0.0, 10.0], [2.0, 8.0], [50.0, 60.0]], dtype=np.float32),
        np.array([1, 1, 2]),
        np.array([0.9, 0.3, 0.9], dtype=np.float32),
    )
    # hull overlaps: (0-10, 2-8) = 6 / 10; the third overlaps nothing
    kept = pseudo.filter_pseudo(video, PseudoLabelRules(min_score=0.4, min_overlap_sum=0.2))
    assert kept.segments.tolist() == [[0.0, 10.0]]


def test_a_file_that_records_its_selection_is_not_selected_again(tmp_path):
    """hamnet pseudo-label / --pseudo-labels apply FuSTAL's selection and record its
    rules; a lone segment (no overlap: dropped by the selection) then stays."""
    rows = [{"segment": [1.0, 6.0], "label": "A", "score": 0.9}]
    path = tmp_path / "selected.json"
    path.write_text(json.dumps({"database": {"v1": {"annotations": rows}},
                                "provenance": {"rules": {"name": "FuSTAL"}}}))  # fmt: skip
    method = student_method()
    method.bind_inputs({"pseudo_labels": path}, annotations())
    assert method.pseudo["v1"].segments.tolist() == [[1.0, 6.0]]
    method.bind_inputs({"pseudo_labels": write(tmp_path, {"v1": {"annotations": rows}})},
                       annotations())  # fmt: skip
    assert method.pseudo["v1"].segments.shape == (0, 2)


def test_grid_round_trip_is_the_snippet_centre():
    rate = 25 / 16
    grid = pseudo.to_grid(np.array([0.32, 6.4]), rate)
    np.testing.assert_allclose(grid, [0.0, 9.5], atol=1e-6)
    np.testing.assert_allclose(pseudo.to_seconds(grid, rate), [0.32, 6.4], atol=1e-6)


def test_crop_keeps_segments_over_half_inside_and_shifts_them():
    segments = np.array([[10.0, 20.0], [95.0, 120.0]], dtype=np.float32)
    labels = np.array([3, 4])
    got, lab = pseudo.cropped_targets(segments, labels, 5, 100, 200, 0.5)
    assert got.tolist() == [[5.0, 15.0]] and lab.tolist() == [3]
    rng = np.random.default_rng(0)
    start, end = pseudo.crop_window(200, segments, 64, 0.5, (0.9, 1.0), rng)
    assert end - start == 64


# ---- input checks --------------------------------------------------------------------


def annotations() -> AnnotationSet:
    videos = [
        Video("v1", "validation", 30.0, ("A",), (Segment(1.0, 5.0, "A"),)),
        Video("v2", "test", 30.0, ("B",), (Segment(2.0, 9.0, "B"),)),
    ]
    return AnnotationSet(["A", "B"], videos)


def write(tmp_path, database) -> Path:
    path = tmp_path / "pseudo_labels.json"
    path.write_text(json.dumps({"database": database}))
    return path


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"v9": {"annotations": []}}, "a video the dataset does not have"),
        ({"v1": {"annotations": [{"segment": [1, 2], "label": "Z"}]}}, "not a class"),
        ({"v1": {"annotations": [{"segment": [1, 40], "label": "A"}]}}, "ends after the video"),
        ({"v1": {"annotations": [{"segment": [5, 2], "label": "A"}]}}, "not a span"),
    ],
)
def test_bad_pseudo_labels_are_refused_naming_the_file(tmp_path, entry, problem):
    path = write(tmp_path, entry)
    method = student_method()
    with pytest.raises(DataError, match=problem) as error:
        method.bind_inputs({"pseudo_labels": path}, annotations())
    assert str(path) in str(error.value)


def bound_method(tmp_path, **options):
    database = {
        name: {"annotations": [{"segment": [1.0, 6.0], "label": "A", "score": 0.9}] * 2}
        for name in ("v1", "v3", "v4", "v5")
    }
    videos = [Video(f"v{i}", "validation", 30.0, ("A",)) for i in range(1, 6)]
    method = student_method(**options)
    method.bind_inputs(
        {"pseudo_labels": write(tmp_path, database)}, AnnotationSet(["A", "B"], videos)
    )
    return method


def test_epoch_batches_shuffle_the_videos_with_pseudo_labels(tmp_path):
    method = bound_method(tmp_path)
    batches = method.epoch_batches(np.ones((5, 2)), 0, 0, 3)
    assert [len(b) for b in batches] == [3, 1] and method.steps_per_epoch == 2
    assert sorted(item.index for b in batches for item in b) == [0, 2, 3, 4]  # v2 has none
    again = method.epoch_batches(np.ones((5, 2)), 0, 0, 3)
    assert [[i.index for i in b] for b in batches] == [[i.index for i in b] for b in again]


def test_a_video_without_ema_detections_skips_the_batch_and_ends_distillation(tmp_path):
    """train_one_epoch: no EMA detection in a batch -> no step (and no EMA update), and the
    epoch's later batches train on the teacher's pseudo labels."""
    small = {"max_seq_len": 64, "embd_dim": 16, "sgp_mlp_dim": 16, "head_dim": 16}
    method = bound_method(tmp_path, distill_after=1, **small)
    method.steps_per_epoch = 2
    torch.manual_seed(0)
    net = method.build_network(2).train()
    optimizer = method.make_optimizer(net)
    empty = {"segments": np.zeros((0, 2)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
    method.detect = lambda outputs, duration: empty
    target = {
        "segments": torch.tensor([[2.0, 9.0]]),
        "labels": torch.tensor([0]),
        "duration": torch.tensor([30.0], dtype=torch.float64),
    }
    batch = Batch(torch.randn(1, 40, 64), torch.ones(1, 40, dtype=torch.bool),
                  torch.tensor([[1.0, 0.0]]), ["v1"], [TrainItem(0)], [target])  # fmt: skip
    ema = {k: v.clone() for k, v in net.ema.state_dict().items()}
    terms = method.train_step(batch, StepContext(net, optimizer, 1.0, 2, 4))  # epoch 1
    assert terms["total"].item() == 0.0 and int(net.updates) == 0
    assert all(torch.equal(v, net.ema.state_dict()[k]) for k, v in ema.items())
    terms = method.train_step(batch, StepContext(net, optimizer, 1.0, 3, 4))
    assert terms["total"].item() > 0 and int(net.updates) == 1


# ---- end to end ----------------------------------------------------------------------


def _pseudo_from_truth(root: Path, run: Path) -> Path:
    """A teacher's pseudo labels: the synthetic ground truth, jittered, scored 0.9."""
    from hamnet.data.layout import open_dataset
    from hamnet.localize.pseudo_labels import PSEUDO_VERSION

    annotations = open_dataset(root)[0]
    rng = np.random.default_rng(0)
    database = {}
    for video in annotations.subset("validation"):
        rows = []
        for seg in video.segments:
            for _ in range(2):  # two overlapping copies: the hull-overlap filter keeps them
                start = max(0.0, seg.start + rng.normal(0, 0.3))
                end = min(video.duration, max(start + 0.5, seg.end + rng.normal(0, 0.3)))
                rows.append({"segment": [start, end], "label": seg.label, "score": 0.9})
        database[video.name] = {"subset": video.subset, "duration": video.duration,
                                "annotations": rows}  # fmt: skip
    path = run.parent / f"{run.name}-pseudo.json"  # no selection rules: the student's own
    path.write_text(json.dumps({"pseudo_labels": PSEUDO_VERSION, "database": database}))
    return path


def _train_argv(root: Path, run: Path, epochs: int, *extra: str) -> list[str]:
    sets = ["data.feature_dim=16", "train.batch_size=4", f"train.epochs={epochs}"]
    small = {"max_seq_len": 64, "embd_dim": 16, "sgp_mlp_dim": 16, "head_dim": 16}
    sets += [f"method_options.{k}={v}" for k, v in small.items()]
    argv = ["train", "--preset", "demo", "--method", "fustal", "--data", str(root)]
    argv += ["--run-dir", str(run)]
    return [*argv, *(a for s in sets for a in ("--set", s)), *extra]


def test_trains_checkpoints_resumes_and_tests_end_to_end(tiny_root, tmp_path, capsys):
    """Three demo epochs (the last on the EMA's own detections) straight, and as two
    epochs resumed to three: the same weights, EMA and normaliser; the checkpoint tests."""
    from hamnet.cli import main
    from hamnet.infer.tester import evaluate_checkpoint
    from hamnet.weights.checkpoint import load_checkpoint

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    labels = _pseudo_from_truth(tiny_root, straight)
    assert main(_train_argv(tiny_root, straight, 3, "--pseudo-labels", str(labels))) == 0
    assert main(_train_argv(tiny_root, resumed, 2, "--pseudo-labels", str(labels))) == 0
    assert main(_train_argv(tiny_root, resumed, 3, "--resume")) == 0
    capsys.readouterr()
    a = load_checkpoint(straight / "last.pt")
    b = load_checkpoint(resumed / "last.pt")
    assert a["epoch"] == b["epoch"] == 3
    assert int(a["model"]["updates"]) > 0 and float(a["model"]["loss_norm"]) != 100.0
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    evaluation = evaluate_checkpoint(straight / "last.pt", tiny_root, tmp_path / "det.json",
                                     progress=False)  # fmt: skip
    assert evaluation.detections and evaluation.result.average_mAP >= 0


def test_the_optional_pseudo_label_rules_are_student_options(tmp_path):
    """A file without a recorded selection is selected with the method's pseudo_*
    options: merge_box's merge (and CoLA's NMS) when set, off by default."""
    rows = [
        {"segment": [1.0, 6.0], "label": "A", "score": 0.9},
        {"segment": [2.0, 7.0], "label": "A", "score": 0.8},
    ]
    path = write(tmp_path, {"v1": {"annotations": rows}})
    plain = student_method()
    plain.bind_inputs({"pseudo_labels": path}, annotations())
    assert plain.pseudo["v1"].segments.tolist() == [[1.0, 6.0], [2.0, 7.0]]
    merged = student_method(pseudo_merge_iou=0.1)
    merged.bind_inputs({"pseudo_labels": path}, annotations())
    assert merged.pseudo["v1"].segments.tolist() == [[1.0, 7.0]]
    assert merged.pseudo["v1"].scores.tolist() == pytest.approx([0.9])
    nms = student_method(pseudo_nms_iou=0.5, pseudo_min_overlap=0.0)
    nms.bind_inputs({"pseudo_labels": path}, annotations())  # IoU (4 + 1) / (6 + 6 - 5) >= 0.5
    assert nms.pseudo["v1"].segments.tolist() == [[1.0, 6.0]]


def test_student_trains_in_one_cpu_thread_and_gives_the_threads_back(
    tiny_root, tmp_path, capsys, monkeypatch
):
    """Every student preset sets train.cpu_threads=1 (issue 23: a demo step at 2 threads
    waits on the shared cores); the steps see one thread, the process gets its 2 back,
    and --set train.cpu_threads=0 keeps torch's own count."""
    from hamnet.cli import main
    from hamnet.methods.student.method import StudentMethod

    for preset in ("demo", "thumos14", "activitynet12"):
        assert make_config(preset, "all", [], method="student").train.cpu_threads == 1
    seen = []
    step = StudentMethod.train_step

    def counting_step(self, batch, context):
        seen.append(torch.get_num_threads())
        return step(self, batch, context)

    monkeypatch.setattr(StudentMethod, "train_step", counting_step)
    labels = _pseudo_from_truth(tiny_root, tmp_path / "one")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        argv = _train_argv(tiny_root, tmp_path / "one", 1, "--pseudo-labels", str(labels))
        assert main(argv) == 0
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
        seen.clear()
        argv = _train_argv(tiny_root, tmp_path / "two", 1, "--pseudo-labels", str(labels))
        assert main([*argv, "--set", "train.cpu_threads=0"]) == 0
        assert seen and set(seen) == {2} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()
