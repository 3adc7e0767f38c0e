"""CMCS: its terms and rule by hand, and the official code's outputs, detections, losses,
one Adam update and initial weights recorded on the seeded case of
:func:`reference_cases.cmcs_case` (fixtures/cmcs_official.{json,npz}: the code of
github:Finspire13/CMCS-Temporal-Action-Localization @ d03f480 run on the CPU; how:
tools/reference/record_cmcs.py)."""

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
from hamnet.data.dataset import collate_videos
from hamnet.methods import make_method
from hamnet.methods.base import StepContext, TrainItem
from hamnet.methods.cmcs import (
    STREAMS,
    TEST_STREAMS,
    CmcsOptions,
    CmcsStream,
    cmcs_rule,
    dilate,
    diversity_loss,
    fused_outputs,
    item_targets,
    norm_regularization,
    read_static_clips,
    run_scores,
    stream_terms,
)

FIXTURES = Path(__file__).parent / "fixtures"
SNIPPET = 16 / 25


@pytest.fixture(scope="module")
def recorded():
    arrays = np.load(FIXTURES / "cmcs_official.npz")
    content = json.loads((FIXTURES / "cmcs_official.json").read_text())
    return {key: arrays[key] for key in arrays.files}, content


def _method_and_network():
    config = make_config("thumos14", "all", ["data.feature_dim=2048"], method="cmcs")
    method = make_method(config)
    method.options.round_output = 0  # the official rows are compared unrounded
    network = method.build_network(20)
    case = cases.cmcs_case()
    state = {
        f"{stream}.{key}": torch.from_numpy(value)
        for stream, weights in case["weights"].items()
        for key, value in weights.items()
    }
    network.load_state_dict(state)
    network.eval()
    return method, network, case


def _outputs(network, features) -> dict[str, np.ndarray]:
    with torch.no_grad():
        found = network(torch.from_numpy(features)[None])
    return {key: value[0].numpy() for key, value in found.items()}


# ---- by hand ----------------------------------------------------------------------


def test_dilation_covers_ten_frames_before_and_nine_after():
    """skimage's dilation by a column of 20 ones (the mask of one frame at 30: 20..39)."""
    mask = np.zeros(60, dtype=bool)
    mask[30] = True
    assert np.flatnonzero(dilate(mask, 20)).tolist() == list(range(20, 40))
    mask[:] = False
    mask[[0, 59]] = True
    assert np.flatnonzero(dilate(mask, 20)).tolist() == [*range(10), *range(49, 60)]
    assert np.flatnonzero(dilate(mask, 3)).tolist() == [0, 1, 58, 59]


def test_run_scores_slice_the_context_as_python_does():
    """A run at the start: left min(int(0 - 1), -1) = -1 wraps to an empty slice; a run
    at 2..5 (L 4): left int(2 - 1) = 1 .. 2, right 6 .. 7."""
    metric = np.arange(10, dtype=np.float64)
    options = CmcsOptions()
    first = run_scores(metric, np.array([[0, 3]]), options)[0]
    assert first == pytest.approx(1.5 - 4.0)  # only the right context 4 (int(4 + 1) = 5)
    inner = run_scores(metric, np.array([[2, 5]]), options)[0]
    assert inner == pytest.approx(3.5 - np.mean([1, 6]))
    # 2..9 (L 8): left int(2 - 2) = 0 .. 2; right 10 .. 12 is past the end
    assert run_scores(metric, np.array([[2, 9]]), options)[0] == pytest.approx(5.5 - 0.5)
    # 3..18 (L 16): left int(3 - 4) = -1: metric[-1:3] is empty (a wrapped start is
    # always past the run), so only the right context 19..22 counts
    long = np.arange(30, dtype=np.float64)
    assert run_scores(long, np.array([[3, 18]]), options)[0] == pytest.approx(10.5 - 20.5)


def test_diversity_and_norm_by_hand():
    """Two identical branches: cosine 1 off the diagonal, relu(1 - 0) x 2 pairs / 2 = 1;
    orthogonal one-hot scores give 0. Norm: |mean| deviation of the L1 norms / T."""
    same = torch.zeros(2, 3, 2)
    assert diversity_loss(same).item() == pytest.approx(1.0, abs=1e-5)
    apart = torch.tensor([[[30.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [30.0, 0.0]]])
    # class 0: softmax ~ (1, .5) and (.5, 1): cosine 0.8; class 1: (0, .5), (.5, 0): 0
    assert diversity_loss(apart).item() == pytest.approx(0.4, abs=1e-5)
    branches = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[3.0, 0.0], [-3.0, 0.0]]])
    # L1 / T: branch 0 (1, 0), branch 1 (3, 0): deviations 1, 1, 0, 0
    assert norm_regularization(branches).item() == pytest.approx(0.5)


def test_items_split_multi_label_videos_and_add_static_clips(tmp_path):
    """One item per label weighted 1 / count, one background item per video with valid
    static clips (ratio within 0.05..0.30), every item once per epoch, shuffled."""
    config = make_config("demo", "all", [], method="cmcs")
    method = make_method(config)
    method.num_classes = 3
    masks = {"a": np.r_[np.ones(20), np.zeros(80)], "b": np.ones(10), "c": np.zeros(50)}
    path = tmp_path / "static_clips.npz"
    np.savez(path, **masks)
    method.static_rows = read_static_clips(path, method.options)
    assert list(method.static_rows) == ["a"]  # b: ratio 1, c: 0
    assert method.static_rows["a"].tolist() == [0, 1]  # frames 0 and 16 of 0..19
    method.train_names = ["a", "b", "c"]
    labels = np.array([[1, 0, 1], [0, 1, 0], [0, 0, 0]], dtype=np.float32)
    batches = method.epoch_batches(labels, 0, 0, 3)
    items = sorted((i.index, i.tag) for batch in batches for i in batch)
    assert items == [(0, 0), (0, 2), (0, 3), (1, 1)]
    assert [len(b) for b in batches] == [3, 1]
    assert batches == method.epoch_batches(labels, 0, 0, 3)
    targets = item_targets(
        torch.from_numpy(labels[[0, 0, 1]]), [TrainItem(0, 2), TrainItem(0, 3), TrainItem(1, 1)], 4
    )
    assert targets.tolist() == [[0, 0, 0.5, 0], [0, 0, 0, 1], [0, 1, 0, 0]]
    rows = method.training_rows(100, TrainItem(0, 3), np.random.default_rng(0), 0)
    assert rows.tolist() == [0, 1]
    assert method.training_rows(7, TrainItem(0, 2), np.random.default_rng(0), 0).tolist() == [
        *range(7)
    ]


def test_rule_by_hand():
    """Two snippets, class 0 above 0.1: the metric 1 -> 0 over frames 0..16; above its
    mean 0.5 on frames 0..7, dilated to 0..17 (clipped 0..16): one run 0..17 frames,
    no context, score 1 x mean + 0.25 x video score; seconds x 0.64 / 16."""
    cas = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]], dtype=np.float32)
    found = cmcs_rule("v", cas, np.array([3.0, 0.0, 0.0]), ["a", "b"], SNIPPET, CmcsOptions())
    assert [d.label for d in found] == ["a"]
    probs = torch.softmax(torch.from_numpy(cas), 1).numpy()[:, 0]
    frames = np.interp(np.arange(17), [0, 16], (probs - probs.min()) / (probs - probs.min()).max())
    video = torch.softmax(torch.tensor([3.0, 0.0, 0.0]), 0)[0].item()
    assert found[0].score == pytest.approx(frames.mean() + 0.25 * video, rel=1e-6)
    assert (found[0].start, found[0].end) == (0.0, pytest.approx(17 * SNIPPET / 16))
    assert cmcs_rule("v", cas[:1], np.zeros(3), ["a", "b"], SNIPPET, CmcsOptions()) == []
    rounded = cmcs_rule(
        "v", cas, np.array([3.0, 0.0, 0.0]), ["a", "b"], SNIPPET, CmcsOptions(round_output=1)
    )[0]
    assert (rounded.score, rounded.end) == (round(found[0].score, 4), 0.68)


# ---- against the official code -------------------------------------------------------


def test_a_seed_gives_the_official_initial_weights(recorded):
    """torch.manual_seed(0), then BackboneNet(1024, ...) of configs/thumos-I3D.json; the
    rgb stream is built first, so the whole network from that seed starts with it."""
    init = recorded[1]["init"]
    torch.manual_seed(0)
    stream = CmcsStream(1024, 21, 0.5, CmcsOptions())
    torch.manual_seed(0)
    network = make_method(
        make_config("thumos14", "all", ["data.feature_dim=2048"], method="cmcs")
    ).build_network(20)
    assert set(stream.state_dict()) == set(init)
    for name, value in stream.state_dict().items():
        assert value.double().sum().item() == pytest.approx(init[name]["sum"], abs=1e-5), name
        assert value.flatten()[:5].tolist() == pytest.approx(init[name]["head"], abs=1e-7), name
        assert torch.equal(network.rgb.state_dict()[name], value), name


def test_outputs_equal_the_official_code_alone_and_in_a_padded_batch(recorded):
    arrays = recorded[0]
    _, network, case = _method_and_network()
    padded = collate_videos(
        [
            {
                "name": str(i),
                "features": torch.from_numpy(x),
                "labels": torch.zeros(20),
                "length": len(x),
            }
            for i, x in enumerate(case["videos"])
        ]
    )
    with torch.no_grad():
        batch = network(padded.features, padded.mask)
    for i, x in enumerate(case["videos"]):
        alone = _outputs(network, x)
        for stream in [*STREAMS, "late-fusion"]:
            fused = fused_outputs(alone, stream)
            in_batch = fused_outputs(
                {
                    k: v[i].numpy() if k.endswith("global") else v[i, : len(x)].numpy()
                    for k, v in batch.items()
                },
                stream,
            )
            for key, official in (
                ("cas", "avg_score"),
                ("attention", "weight"),
                ("global", "global_score"),
            ):
                expected = arrays[f"{stream}/{i}/{official}"].reshape(fused[key].shape)
                # atol 3e-5: scores up to ~10 from float32 sums over 1024-wide rows; another
                # CPU's kernels (AMD EPYC, AVX2, against the recording's AVX-512) reach
                # 1.1e-5 on one of 189 values
                for mine in (fused[key], in_batch[key]):
                    np.testing.assert_allclose(mine, expected, rtol=1e-5, atol=3e-5)


def _official_rows(recorded, stream):
    rows = recorded[1]["detections"][stream]
    return [(r[0], f"class{r[3]}", r[1], r[2], r[4]) for r in rows]


@pytest.mark.parametrize("stream", TEST_STREAMS)
def test_detections_equal_the_official_code_both_ways(recorded, stream):
    """detect.py on the official CAS files = hamnet's rule on hamnet's outputs (label,
    segment within 1e-4 s, score within 1e-4 relative), in the official order."""
    method, network, case = _method_and_network()
    method.options.test_stream = TEST_STREAMS.index(stream)
    ours = []
    for i, x in enumerate(case["videos"]):
        output = method.video_output(f"video_{i}", _outputs(network, x))
        ours += cmcs_rule(
            output.name,
            output.cas,
            output.extras["global"],
            case["classes"],
            SNIPPET,
            method.options,
        )
    official = _official_rows(recorded, stream)
    assert len(ours) == len(official) > 0
    for mine, theirs in zip(ours, official, strict=True):
        assert (mine.video, mine.label) == theirs[:2]
        assert mine.start == pytest.approx(theirs[2], abs=1e-4)
        assert mine.end == pytest.approx(theirs[3], abs=1e-4)
        assert mine.score == pytest.approx(theirs[4], rel=1e-4)


def _training_batch(method, case):
    method.num_classes = 20
    method.train_names = ["t0", "t1", "t2", "t3"]
    method.static_rows = {"t3": case["static_rows"]}
    items = [TrainItem(v, tag) for v, tag in case["items"]]
    rows = []
    for item in items:
        x = case["train"][item.index]
        keep = method.training_rows(len(x), item, np.random.default_rng(0), 0)
        rows.append(
            {
                "name": str(item.index),
                "features": torch.from_numpy(x[keep]),
                "labels": torch.from_numpy(case["labels"][item.index]),
                "length": len(keep),
                "item": item,
            }
        )
    return collate_videos(rows)


def test_losses_and_one_update_equal_the_official_code(recorded):
    """train.py's three terms per stream on the items (eval mode), summed as its
    gradient accumulation adds them; one Adam step per stream (lr 1e-4, wd 1e-3)."""
    content = recorded[1]
    method, network, case = _method_and_network()
    batch = _training_batch(method, case)
    targets = item_targets(batch.labels, batch.items, 21)
    with torch.no_grad():
        outputs = network(batch.features, batch.mask)
    lengths = batch.mask.sum(dim=1).tolist()
    for stream in STREAMS:
        terms = stream_terms(outputs, stream, targets, lengths)
        expected = content["losses"][stream]
        assert terms["cls"].item() == pytest.approx(expected["cls"], rel=1e-5)
        assert 0.2 * terms["div"].item() == pytest.approx(expected["div"], rel=1e-4)
        assert 0.2 * terms["norm"].item() == pytest.approx(expected["norm"], rel=1e-5)
    before = {k: v.clone() for k, v in network.state_dict().items()}
    optimizer = method.make_optimizer(network)
    method.train_step(batch, StepContext(network, optimizer, 1.0, 0, 1))
    for name, value in network.state_dict().items():
        stream, key = name.split(".", 1)
        delta = value - before[name]
        expected = content["step"][stream][key]
        assert delta.abs().sum().item() == pytest.approx(expected["l1"], rel=1e-3), name
        assert delta.flatten()[:6].tolist() == pytest.approx(expected["head"], abs=1e-7), name
    assert math.isfinite(sum(before[k].sum().item() for k in before))


# ---- import of the released models, and training in the house ----------------------

RELEASED = FIXTURES / "cmcs_released" / "model-rgb-15000"


def _released_run(folder: Path, step: int = 15000) -> Path:
    """The real released rgb file, a copy of it as the flow stream (the same layout), and
    a both stream of its layout from a seed."""
    folder.mkdir(parents=True, exist_ok=True)
    for stream in ("rgb", "flow"):
        (folder / f"model-{stream}-{step}").write_bytes(RELEASED.read_bytes())
    torch.manual_seed(5)
    torch.save(CmcsStream(2048, 21, 0.5, CmcsOptions()).state_dict(), folder / f"model-both-{step}")
    return folder


@pytest.fixture(scope="module")
def wide_root(tmp_path_factory) -> Path:
    """8 synthetic videos of THUMOS14's 20 classes, 2048-wide features."""
    from hamnet.data.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("cmcs_wide")
    return make_synthetic(
        out,
        num_classes=20,
        num_videos=8,
        duration_range=(20.0, 40.0),
        feature_dim=2048,
        seed=1,
        name="Thumos14reduced",
        progress=False,
    )


def test_import_of_the_released_files_then_test(tmp_path, wide_root, capsys):
    """The three files of one check point (the folder or any one of them) become the
    three streams; the released rgb weights arrive unchanged and `hamnet test` runs."""
    from hamnet.cli import main
    from hamnet.weights.files import read_weight_file
    from hamnet.weights.trained import load_trained

    run = _released_run(tmp_path / "trained-thumos-I3D-run-0")
    out = tmp_path / "cmcs.pt"
    assert main(["import-checkpoint", "--method", "cmcs", str(run), str(out)]) == 0
    trained = load_trained(out)
    assert trained.config.method == "cmcs" and trained.config.preset == "thumos14"
    assert trained.config.data.feature_dim == 2048
    released = read_weight_file(RELEASED)
    for key, value in released.items():
        assert torch.equal(trained.model.rgb.state_dict()[key], value), key
    both = read_weight_file(run / "model-both-15000")
    assert torch.equal(trained.model.both.att_head.weight, both["att_head.weight"])
    again = tmp_path / "again.pt"
    assert (
        main(
            [
                "import-checkpoint",
                "--method",
                "cmcs",
                str(run / "model-both-15000"),
                str(again),
                "--data",
                str(wide_root),
            ]
        )
        == 0
    )
    detections = tmp_path / "det.json"
    args = ["test", "--checkpoint", str(again), "--data", str(wide_root), "--out", str(detections)]
    assert main(args) == 0
    results = json.loads(detections.read_text())["results"]
    assert sum(len(rows) for rows in results.values()) > 0


def test_import_refuses_what_does_not_fit_in_one_line(tmp_path, cli_line):
    run = _released_run(tmp_path / "run")
    (run / "model-both-15000").unlink()
    code, line = cli_line(
        "import-checkpoint", "--method", "cmcs", run / "model-rgb-15000", tmp_path / "a.pt"
    )
    assert code == 2 and "the both stream (model-both-15000) is missing" in line
    torch.save(CmcsStream(1000, 21, 0.5, CmcsOptions()).state_dict(), run / "model-both-15000")
    code, line = cli_line("import-checkpoint", "--method", "cmcs", run, tmp_path / "b.pt")
    assert code == 2 and "stream input widths rgb 1024, flow 1024, both 1000" in line
    torch.save({"fc_f.weight": torch.zeros(4, 4)}, run / "model-flow-15000")
    code, line = cli_line("import-checkpoint", "--method", "cmcs", run, tmp_path / "c.pt")
    assert code == 2 and "not a CMCS BackboneNet state_dict" in line
    torch.save(
        {"base.base_conv_0.weight": torch.zeros(1), "x": Path("p")}, run / "model-flow-15000"
    )
    code, line = cli_line("import-checkpoint", "--method", "cmcs", run, tmp_path / "d.pt")
    assert code == 2 and "model-flow-15000" in line
    code, line = cli_line(
        "import-checkpoint", "--method", "cmcs", RELEASED.parent / "README.md", tmp_path / "e.pt"
    )
    assert code == 2 and "not a CMCS model file" in line
    assert not any((tmp_path / f"{n}.pt").exists() for n in "abcde")


def test_trains_with_static_clips_and_tests_end_to_end(tiny_root, tmp_path):
    """`hamnet train --preset demo --method cmcs` on the tiny dataset with static clips
    for some training videos (their background items join the epoch), then `test`."""
    import shutil

    from hamnet.cli import main
    from hamnet.data.layout import find_dataset, load_annotations

    root = tmp_path / "data"
    shutil.copytree(tiny_root, root)
    annotations = load_annotations(find_dataset(root))
    masks = {}
    for video in annotations.subset("validation")[:4]:
        frames = np.zeros(int(video.duration * 25), dtype=bool)
        frames[: len(frames) // 8] = True
        masks[video.name] = frames
    np.savez(Path(annotations.source) / "static_clips.npz", **masks)
    run = tmp_path / "run"
    args = ["train", "--preset", "demo", "--method", "cmcs", "--data", root, "--run-dir", run]
    for item in ("data.feature_dim=16", "train.epochs=1", "train.batch_size=6"):
        args += ["--set", item]
    assert main([str(a) for a in args]) == 0
    detections = tmp_path / "det.json"
    test = ["test", "--checkpoint", run / "last.pt", "--data", root, "--out", detections]
    assert main([str(a) for a in test]) == 0
    assert json.loads(detections.read_text())["results"]
    config = make_config("demo", "all", ["data.feature_dim=16"], method="cmcs")
    method = make_method(config)
    method.bind_inputs({}, annotations)
    assert sorted(method.static_rows) == sorted(masks)
    labels = np.stack([annotations.label_vector(v) for v in annotations.subset("validation")])
    tags = [item.tag for batch in method.epoch_batches(labels, 0, 0, 6) for item in batch]
    assert tags.count(4) == 4 and len(tags) == int(labels.sum()) + 4


def test_the_released_rgb_model_gives_the_official_detections(recorded):
    """detect.py on the CAS of the released THUMOS14 RGB model (test.py, modality rgb) on
    the seeded videos = hamnet's rule on that model's stream."""
    from hamnet.weights.files import read_weight_file

    method, network, case = _method_and_network()
    network.rgb.load_state_dict(read_weight_file(RELEASED))
    method.options.test_stream = TEST_STREAMS.index("rgb")
    ours = []
    for i, x in enumerate(case["videos"]):
        output = method.video_output(f"video_{i}", _outputs(network, x))
        ours += method.reference_detections(output, case["classes"], _Settings())
    official = recorded[1]["released_rgb_detections"]
    assert len(ours) == len(official) > 0
    for mine, theirs in zip(ours, official, strict=True):
        assert (mine.video, mine.label) == (theirs[0], f"class{theirs[3]}")
        assert (mine.start, mine.end) == (
            pytest.approx(theirs[1], abs=1e-4),
            pytest.approx(theirs[2], abs=1e-4),
        )
        assert mine.score == pytest.approx(theirs[4], rel=1e-4)


class _Settings:
    snippet_seconds = SNIPPET


def test_learning_rate_decays_tenfold_from_the_milestone():
    """MultiStepLR(milestones=[max_step_num // 2]): the update of 0-based step s uses
    lr x 0.1 once s >= the milestone (ActivityNet: 20005 // 2 = 10002)."""
    config = make_config("activitynet12", "all", ["data.feature_dim=32"], method="cmcs")
    method = make_method(config)
    assert method.options.lr_decay_step == 10002 and config.train.lr == 1e-3
    optimizer = method.make_optimizer(method.build_network(3))
    method.set_learning_rate(optimizer, 10001)
    assert {g["lr"] for g in optimizer.param_groups} == {1e-3}
    method.set_learning_rate(optimizer, 10002)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-4] * 3)
    assert sorted(optimizer.optimizers) == ["both", "flow", "rgb"]


def test_a_resumed_run_ends_with_the_weights_of_a_straight_one(tiny_root, tiny_config, tmp_path):
    """Items, dropout and the lr decay (here from step 1 of 0..1: the second epoch) are
    functions of (seed, epoch, step): 1 epoch + resume to 2 = 2 epochs, bit for bit."""
    from hamnet.train.trainer import train

    extra = ("method=cmcs", "method_options.lr_decay_step=1", "train.batch_size=12")
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_config("all", *extra, "train.epochs=2"), tiny_root, straight, progress=False)
    train(tiny_config("all", *extra, "train.epochs=1"), tiny_root, split, progress=False)
    train(
        tiny_config("all", *extra, "train.epochs=2"), tiny_root, split, resume=True, progress=False
    )
    a = torch.load(straight / "last.pt", map_location="cpu", weights_only=True)
    b = torch.load(split / "last.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(a["model"][key], b["model"][key]) for key in a["model"])
    assert set(a["optimizer"]) == {"rgb", "flow", "both"}
    assert a["optimizer"]["rgb"]["param_groups"][0]["lr"] == pytest.approx(1e-4)


# ---- speed (issue 22): the same numbers, fewer threads and copies ----------------------


def test_stream_terms_give_the_bits_of_indexing_each_row():
    """stream_terms reads each item's branches through one unbind; the losses and the
    gradient are those of indexing ``branches[row, :length]`` row by row, bit for bit."""
    generator = torch.Generator().manual_seed(5)
    lengths = [7, 4, 2]
    branches = torch.randn(3, 7, 4, 5, generator=generator, requires_grad=True)
    targets = torch.zeros(3, 5)
    targets[0, 1], targets[1, 2], targets[2, 4] = 0.5, 1.0, 0.25
    outputs = {"rgb_branches": branches, "rgb_global": torch.randn(3, 5, generator=generator)}
    terms = stream_terms(outputs, "rgb", targets, lengths)
    (terms["div"] + terms["norm"]).backward()
    ours = branches.grad.clone()
    branches.grad = None
    div = norm = torch.zeros(())
    for row, length in enumerate(lengths):
        video = branches[row, :length].transpose(0, 1)
        div = div + diversity_loss(video) * targets[row].sum()
        norm = norm + norm_regularization(video) * targets[row].sum()
    (div + norm).backward()
    assert torch.equal(terms["div"], div) and torch.equal(terms["norm"], norm)
    assert torch.equal(ours, branches.grad) and ours[2, 2:].abs().sum() == 0


def test_cmcs_trains_in_one_cpu_thread_and_gives_the_threads_back(
    tiny_root, tiny_config, tmp_path, monkeypatch
):
    """Every CMCS preset sets train.cpu_threads=1 (other methods keep torch's default);
    the run's steps and its test, and a later test of its checkpoint, see one thread,
    and the process has its threads back after each."""
    from hamnet.infer.tester import evaluate_checkpoint
    from hamnet.methods.cmcs import CmcsMethod
    from hamnet.train.trainer import train

    for preset in ("demo", "thumos14", "activitynet12"):
        assert make_config(preset, "all", [], method="cmcs").train.cpu_threads == 1
    assert make_config("demo", "all", [], method="delu").train.cpu_threads == 0
    seen = []
    step = CmcsMethod.train_step

    def counting_step(self, batch, context):
        seen.append(torch.get_num_threads())
        return step(self, batch, context)

    tested = []
    forward_test = CmcsMethod.forward_test

    def counting_test(self, network, features, targets):
        tested.append(torch.get_num_threads())
        return forward_test(self, network, features, targets)

    monkeypatch.setattr(CmcsMethod, "train_step", counting_step)
    monkeypatch.setattr(CmcsMethod, "forward_test", counting_test)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        config = tiny_config("all", "method=cmcs", "train.epochs=1", "train.batch_size=12")
        train(config, tiny_root, tmp_path / "run", progress=False)
        assert seen and set(seen) == {1} and tested and set(tested) == {1}
        assert torch.get_num_threads() == 2
        tested.clear()
        out = tmp_path / "det.json"
        evaluate_checkpoint(tmp_path / "run" / "last.pt", tiny_root, out, progress=False)
        assert tested and set(tested) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
