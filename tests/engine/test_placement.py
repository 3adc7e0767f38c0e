"""Device-resident features (data.placement=device) against streaming from the store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hamnet.config import make_config
from hamnet.data import resident
from hamnet.data.dataset import VideoDataset, collate_videos, numbered_draws
from hamnet.data.layout import open_dataset
from hamnet.data.resident import ResidentFeatures, ResidentTrainSet, choose_placement
from hamnet.errors import ConfigError
from hamnet.infer.inference import detect, infer_resident, infer_videos, length_batches
from hamnet.infer.settings import inference_settings
from hamnet.train.step import global_batches
from hamnet.train.trainer import train
from hamnet.weights.checkpoint import load_checkpoint
from hamnet.weights.trained import build_model

CPU = torch.device("cpu")


def _train_set(root, sampling="random", seed=5):
    annotations, store, _ = open_dataset(root)
    dataset = VideoDataset(
        annotations, store, "validation", num_segments=32, sampling=sampling, seed=seed
    )
    return annotations, store, dataset


@pytest.mark.parametrize("sampling", ["random", "uniform"])
def test_resident_indices_are_the_streaming_indices(tiny_root, sampling):
    _, store, dataset = _train_set(tiny_root, sampling)
    features = ResidentFeatures(store, [v.name for v in dataset.videos], CPU, torch.float32)
    resident_set = ResidentTrainSet(dataset, features)
    for epoch in (0, 1, 7):
        rows = resident_set.epoch_rows(epoch)
        dataset.set_epoch(epoch)
        for index, video in enumerate(dataset.videos):
            expected = dataset.sample_indices(store.length(video.name), index)
            assert np.array_equal(rows[index] - features.offset[video.name], expected)
    # different epochs draw different samples (random perturbation)
    if sampling == "random":
        assert not np.array_equal(resident_set.epoch_rows(0), resident_set.epoch_rows(1))


def test_resident_batches_equal_collated_streamed_batches(tiny_root):
    _, store, dataset = _train_set(tiny_root)
    features = ResidentFeatures(store, [v.name for v in dataset.videos], CPU, torch.float32)
    resident_set = ResidentTrainSet(dataset, features)
    epoch = 3
    batches = global_batches(len(dataset), 5, 0, epoch)
    gathered = list(resident_set.epoch_batches(epoch, batches))
    dataset.set_epoch(epoch)
    assert len(gathered) == len(batches) == 3
    for indices, batch in zip(batches, gathered, strict=True):
        streamed = collate_videos([dataset[i] for i in indices])
        assert torch.equal(batch.features, streamed.features)
        assert torch.equal(batch.labels, streamed.labels)
        assert torch.equal(batch.mask, streamed.mask)


def test_resident_repeated_draws_equal_streamed_ones(tiny_root):
    """A class-paired epoch draws videos again: every draw gathers what streaming reads."""
    _, store, dataset = _train_set(tiny_root)
    features = ResidentFeatures(store, [v.name for v in dataset.videos], CPU, torch.float32)
    resident_set = ResidentTrainSet(dataset, features)
    lengths = [store.length(v.name) for v in dataset.videos]
    long = int(np.argmax(lengths))  # longer than the 32 rows drawn: draws can differ
    assert lengths[long] > 32
    batches = numbered_draws([[long, 1, long, 2], [1, 1, long, 3]])
    gathered = list(resident_set.epoch_batches(4, batches))
    dataset.set_epoch(4)
    for items, batch in zip(batches, gathered, strict=True):
        streamed = collate_videos([dataset[item] for item in items])
        assert torch.equal(batch.features, streamed.features)
        assert torch.equal(batch.labels, streamed.labels)
    assert not torch.equal(gathered[0].features[0], gathered[0].features[2])


def test_float16_store_is_held_in_float16_and_read_back_exactly(tiny_root, tmp_path):
    from hamnet.data.features import convert_to_packed

    _, store, dataset = _train_set(tiny_root)
    packed = convert_to_packed(store, tmp_path / "half", dtype="float16")
    dtype = resident.resident_dtype(packed, "auto")
    assert dtype == torch.float16 and resident.resident_dtype(store, "auto") == torch.float32
    names = [v.name for v in dataset.videos]
    features = ResidentFeatures(packed, names, CPU, dtype)
    assert features.nbytes == resident.resident_bytes(packed, names, dtype)
    for name in names[:5]:
        assert torch.equal(features.video(name), torch.from_numpy(packed.read(name)))


def test_auto_streams_on_the_cpu_and_an_explicit_choice_wins():
    assert choose_placement("auto", CPU, 10) == "stream"
    assert choose_placement("device", CPU, 10**15) == "device"
    assert choose_placement("stream", CPU, 0) == "stream"
    with pytest.raises(ConfigError, match="data.placement"):
        make_config("demo", "all", ["data.placement=gpu"])


def test_auto_on_a_gpu_loads_only_what_fits(monkeypatch):
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (40 * gib, 140 * gib))
    gpu = torch.device("cuda", 0)
    # margin: max(4 GiB, 20 % of 140 GiB = 28 GiB)
    assert choose_placement("auto", gpu, 11 * gib) == "device"
    assert choose_placement("auto", gpu, 13 * gib) == "stream"


def test_plan_rounds_to_float16_only_when_auto_and_float32_does_not_fit(tiny_root, monkeypatch):
    _, store, dataset = _train_set(tiny_root)
    names = [v.name for v in dataset.videos]
    full = resident.resident_bytes(store, names, torch.float32)
    gpu = torch.device("cuda", 0)
    margin = resident.GPU_MARGIN_BYTES
    # room for the float16 copy only (the 20 % margin of a tiny "GPU" is below 4 GiB)
    room = (margin + full // 2 + 1, margin + full // 2 + 1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: room)
    plan = resident.plan_placement("auto", "auto", store, names, gpu)
    assert (plan.mode, plan.dtype, plan.nbytes) == ("device", torch.float16, full // 2)
    assert "rounded to float16" in plan.message
    # asked for float32: no rounding, streaming instead
    plan = resident.plan_placement("auto", "float32", store, names, gpu)
    assert (plan.mode, plan.dtype) == ("stream", torch.float32)
    assert plan.message.startswith("data placement: stream")
    # room for float32: held exactly
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (margin + full, 10**9))
    plan = resident.plan_placement("auto", "auto", store, names, gpu)
    assert (plan.mode, plan.dtype) == ("device", torch.float32) and "rounded" not in plan.message
    assert resident.plan_placement("auto", "auto", store, names, CPU).mode == "stream"


def _losses(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_device_placement_on_the_cpu_equals_streaming(tiny_root, tiny_config, tmp_path, caplog):
    caplog.set_level("INFO")
    extra = ["train.epochs=3", "train.eval_every=2"]
    train(tiny_config("all", *extra), tiny_root, tmp_path / "stream", progress=False)
    assert "data placement: stream" in caplog.text
    caplog.clear()
    config = tiny_config("all", *extra, "data.placement=device")
    train(config, tiny_root, tmp_path / "device", progress=False)
    assert "data placement: device" in caplog.text
    streamed, held = _losses(tmp_path / "stream"), _losses(tmp_path / "device")
    for a, b in zip(streamed, held, strict=True):
        a.pop("seconds"), b.pop("seconds")
        assert a == b  # every loss term, every mAP, bit for bit
    assert "average_mAP" in held[1] and "average_mAP" in held[2]
    first = load_checkpoint(tmp_path / "stream/last.pt")["model"]
    second = load_checkpoint(tmp_path / "device/last.pt")["model"]
    assert all(torch.equal(first[key], second[key]) for key in first)
    timing = json.loads((tmp_path / "device/timing.json").read_text())
    assert timing["placement"] == "device" and timing["checkpoint_writes"] >= 1


def test_length_batches_respect_the_budget_and_cover_every_video():
    lengths = [5, 40, 7, 40, 100, 3, 9]
    groups = length_batches(lengths, 90)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        longest = max(lengths[i] for i in group)
        assert len(group) == 1 or len(group) * longest <= 90
    assert groups[0] == [4]  # the longest alone (over budget)
    assert length_batches(lengths, 1) == [[4], [1], [3], [6], [2], [0], [5]]


def test_batched_inference_matches_per_video_inference(tiny_root, tiny_config):
    annotations, store, _ = open_dataset(tiny_root)
    config = tiny_config()
    torch.manual_seed(1)
    model = build_model(config, annotations.num_classes)
    names = [v.name for v in annotations.subset("test") if v.labels]
    features = ResidentFeatures(store, names, CPU, torch.float32)
    settings = inference_settings(config)
    alone = list(infer_videos(model, store, names, device=CPU, settings=settings))
    padded = list(infer_resident(model, features, names, max_snippets=10**6, settings=settings))
    one_by_one = list(infer_resident(model, features, names, settings=settings))  # CPU default
    for a, b, c in zip(alone, padded, one_by_one, strict=True):
        assert a.name == b.name == c.name
        assert np.allclose(a.cas, b.cas, atol=1e-5, rtol=1e-5)
        assert np.allclose(a.attention, b.attention, atol=1e-6, rtol=1e-5)
        assert np.array_equal(a.cas, c.cas) and np.array_equal(a.attention, c.attention)
        # the same detections: same classes and segments, scores within float tolerance
        first = detect(a, annotations.classes, settings)
        second = detect(b, annotations.classes, settings)
        assert [(d.label, d.start, d.end) for d in first] == [
            (d.label, d.start, d.end) for d in second
        ]
        assert np.allclose([d.score for d in first], [d.score for d in second], atol=1e-5)
