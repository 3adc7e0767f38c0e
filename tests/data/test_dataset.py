"""VideoDataset and collate_videos: shapes, determinism, padding, skipping."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hamnet.data.annotations import AnnotationSet, Video
from hamnet.data.dataset import VideoDataset, VideoDraw, collate_videos, numbered_draws
from hamnet.data.features import PackedFeatureWriter, open_feature_store
from hamnet.data.layout import open_dataset
from hamnet.data.sampling import random_perturb_indices


@pytest.fixture(scope="module")
def tiny(small_root: Path):
    annotations, store, _ = open_dataset(small_root)
    return annotations, store


def test_training_item(tiny) -> None:
    annotations, store = tiny
    data = VideoDataset(annotations, store, "validation", num_segments=9, seed=5)
    item = data[2]
    video = annotations.subset("validation")[2]
    assert item["name"] == video.name and item["length"] == 9
    assert item["features"].shape == (9, 16) and item["features"].dtype == torch.float32
    assert torch.equal(item["labels"], torch.from_numpy(annotations.label_vector(video)))
    full = store.read(video.name)
    rows = random_perturb_indices(len(full), 9, np.random.default_rng([5, 0, 2]))
    assert torch.equal(item["features"], torch.from_numpy(full[rows]))


def test_epochs_are_deterministic(tiny) -> None:
    annotations, store = tiny
    data = VideoDataset(annotations, store, "validation", num_segments=9, seed=5)
    first = data[1]["features"]
    data.set_epoch(1)
    second = data[1]["features"]
    again = VideoDataset(annotations, store, "validation", num_segments=9, seed=5)
    again.set_epoch(1)
    assert torch.equal(again[1]["features"], second) and not torch.equal(first, second)


def test_draws_are_numbered_by_repeat_within_the_epoch() -> None:
    numbered = numbered_draws([[3, 1, 3], [1, 0], [3]])
    assert numbered == [
        [VideoDraw(3, 0), VideoDraw(1, 0), VideoDraw(3, 1)],
        [VideoDraw(1, 1), VideoDraw(0, 0)],
        [VideoDraw(3, 2)],
    ]


def test_a_video_drawn_again_samples_its_snippets_afresh(tiny) -> None:
    """Class-paired epochs draw with replacement; as in the reference codes, each draw of
    a video samples its own rows, and the first draw is the plain index's."""
    annotations, store = tiny
    data = VideoDataset(annotations, store, "validation", num_segments=4, seed=5)
    data.set_epoch(2)
    full = store.read(annotations.subset("validation")[1].name)
    assert len(full) > 4
    draws = [data[VideoDraw(1, k)]["features"] for k in range(4)]
    assert torch.equal(draws[0], data[1]["features"])
    rows = random_perturb_indices(len(full), 4, np.random.default_rng([5, 2, 1, 3]))
    assert torch.equal(draws[3], torch.from_numpy(full[rows]))
    assert len({tuple(d.flatten().tolist()) for d in draws}) > 1


def test_uniform_and_full_length(tiny) -> None:
    annotations, store = tiny
    name = annotations.subset("test")[0].name
    full = VideoDataset(annotations, store, "test", num_segments=None)[0]
    assert full["length"] == store.length(name)
    assert torch.equal(full["features"], torch.from_numpy(store.read(name)))
    uniform = VideoDataset(annotations, store, "test", num_segments=4, sampling="uniform")[0]
    rows = [i * full["length"] // 4 for i in range(4)]
    assert torch.equal(uniform["features"], full["features"][rows])


def test_collate_pads_and_masks(tiny) -> None:
    annotations, store = tiny
    data = VideoDataset(annotations, store, "test", num_segments=None)
    items = [data[0], data[1], data[2]]
    batch = collate_videos(items)
    lengths = [item["length"] for item in items]
    longest = max(lengths)
    assert batch.features.shape == (3, longest, 16)
    assert batch.mask.sum(1).tolist() == lengths and batch.mask.dtype == torch.bool
    for row, item in enumerate(items):
        assert torch.equal(batch.features[row, : item["length"]], item["features"])
        assert batch.features[row, item["length"] :].abs().sum() == 0
    assert batch.names == [item["name"] for item in items] and batch.labels.shape == (3, 4)


def test_workers_agree_with_main_process(tiny) -> None:
    annotations, store = tiny
    data = VideoDataset(annotations, store, "validation", num_segments=7, seed=1)
    data.set_epoch(3)
    loader = DataLoader(data, batch_size=2, num_workers=2, collate_fn=collate_videos)
    from_workers = torch.cat([batch.features for batch in loader])
    in_process = torch.stack([data[i]["features"] for i in range(len(data))])
    assert torch.equal(from_workers, in_process)


def test_skip_unlabelled(tmp_path: Path, caplog) -> None:
    videos = [Video("a", "test", 5.0, ("X",)), Video("b", "test", 5.0, ())]
    annotations = AnnotationSet(["X"], videos)
    with PackedFeatureWriter(tmp_path / "p", 2) as writer:
        writer.add("a", np.ones((3, 2), np.float32))
        writer.add("b", np.ones((2, 2), np.float32))
    store = open_feature_store(tmp_path / "p")
    assert len(VideoDataset(annotations, store, "test", num_segments=None)) == 2
    with caplog.at_level(logging.INFO):
        kept = VideoDataset(annotations, store, "test", num_segments=None, skip_unlabelled=True)
    assert [v.name for v in kept.videos] == ["a"]
    assert "skipping 1 video(s) of subset 'test' without labels" in caplog.text
