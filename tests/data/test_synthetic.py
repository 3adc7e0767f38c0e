"""The synthetic dataset: layout, determinism, likeness to a real file, and difficulty."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hamnet.data.dataset import VideoDataset, collate_videos
from hamnet.data.layout import open_dataset
from hamnet.data.released import load_released_annotations
from hamnet.data.synthetic import _make_world, make_synthetic, num_snippets, video_features
from hamnet.errors import DataError


def snippet_truth(annotations, video, length: int, label: str | None = None) -> np.ndarray:
    """Bool [T]: snippets inside a segment (of ``label``, if given)."""
    truth = np.zeros(length, dtype=bool)
    for seg in video.segments:
        if label is None or seg.label == label:
            first = int(seg.start * 25 / 16)
            truth[first : max(first + 1, int(seg.end * 25 / 16))] = True
    return truth


def auc(score: np.ndarray, truth: np.ndarray) -> float:
    ranks = np.empty(len(score))
    ranks[np.argsort(score, kind="stable")] = np.arange(len(score))
    pos, neg = truth.sum(), (~truth).sum()
    return float((ranks[truth].sum() - pos * (pos - 1) / 2) / (pos * neg))


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory):
    root = make_synthetic(
        tmp_path_factory.mktemp("medium"),
        num_videos=80,
        feature_dim=32,
        progress=False,
        write_released=False,
    )
    annotations, store, _ = open_dataset(root)
    return annotations, store


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    def build(out: Path) -> dict[str, bytes]:
        make_synthetic(out, num_videos=6, feature_dim=8, seed=7, progress=False)
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    first, second = build(tmp_path / "a"), build(tmp_path / "b")
    assert first == second and "Synthetic-I3D-JOINTFeatures.npy" in first
    assert "Synthetic-packed/features.bin" in first and "Synthetic-gt.json" in first
    other = make_synthetic(tmp_path / "c", num_videos=6, feature_dim=8, seed=8, progress=False)
    assert (other / "Synthetic-packed/features.bin").read_bytes() != first[
        "Synthetic-packed/features.bin"
    ]


def test_regenerating_replaces_only_synthetic_data(tmp_path: Path) -> None:
    make_synthetic(tmp_path, num_videos=4, feature_dim=8, seed=1, progress=False)
    again = make_synthetic(
        tmp_path, num_videos=6, feature_dim=8, seed=2, progress=False, write_released=False
    )
    assert len(open_dataset(again)[1]) == 6
    assert not (tmp_path / "Synthetic-I3D-JOINTFeatures.npy").exists()  # no stale file
    index = tmp_path / "Synthetic-packed" / "index.json"
    index.write_text(index.read_text().replace("hamnet.data.synthetic", "extractor"))
    with pytest.raises(DataError, match="Synthetic-packed: holds features not made by"):
        make_synthetic(tmp_path, num_videos=4, feature_dim=8, progress=False)


def test_from_scratch_layout(medium) -> None:
    annotations, store = medium
    assert annotations.num_classes == 8 and len(annotations.videos) == 80
    assert len(annotations.subset("test")) == 40 and store.dim == 32
    assert sum(len(v.labels) > 1 for v in annotations.videos) >= 10  # multi-class videos
    for video in annotations.videos:
        assert 30 <= video.duration <= 90
        assert store.length(video.name) == num_snippets(video.duration)
    assert num_snippets(0.5) == 1 and num_snippets(169.794) == 265


def test_like_a_real_file(thumos_annotations_dir: Path, tmp_path: Path) -> None:
    root = make_synthetic(
        tmp_path,
        like=thumos_annotations_dir,
        max_videos=3,
        feature_dim=8,
        progress=False,
        write_released=False,
    )
    annotations, store, files = open_dataset(root)
    real = load_released_annotations(thumos_annotations_dir)
    assert (
        files.name == "Thumos14reduced"
        and not (root / f"{files.name}-I3D-JOINTFeatures.npy").exists()
    )
    assert annotations.classes == real.classes
    assert [len(annotations.subset(s)) for s in ("validation", "test")] == [3, 3]
    for video in annotations.videos:
        assert video == real.video(video.name)
        assert store.length(video.name) == int(video.duration * 25 / 16)
    assert np.load(files.annotations_dir / "duration.npy").shape == (6, 1)


def test_released_file_with_equal_lengths(tmp_path: Path) -> None:
    root = make_synthetic(
        tmp_path, num_videos=3, duration_range=(10.0, 10.0), feature_dim=4, progress=False
    )
    raw = np.load(root / "Synthetic-I3D-JOINTFeatures.npy", allow_pickle=True)
    assert raw.dtype == object and raw.shape == (3,) and raw[0].shape == (15, 4)


def test_segments_past_the_end_are_clipped() -> None:
    world = _make_world(3, 8, 0)
    rng = np.random.default_rng(0)
    features = video_features(world, 10, [1], [(4.0, 99.0, 1), (50.0, 60.0, 2)], rng)
    assert features.shape == (10, 8) and np.isfinite(features).all()


def test_snippet_probe_is_better_than_chance_but_imperfect(medium) -> None:
    annotations, store = medium
    split = {}
    for subset in ("validation", "test"):
        videos = annotations.subset(subset)
        x = np.concatenate([store.read(v.name) for v in videos])
        y = np.concatenate([snippet_truth(annotations, v, store.length(v.name)) for v in videos])
        split[subset] = (np.c_[x, np.ones(len(x))], y)
    (x_train, y_train), (x_test, y_test) = split["validation"], split["test"]
    weights = np.linalg.lstsq(x_train, np.where(y_train, 1.0, -1.0), rcond=None)[0]
    predicted = x_test @ weights > 0
    balanced = 0.5 * (predicted[y_test].mean() + (~predicted[~y_test]).mean())
    assert 0.65 < balanced < 0.95, balanced


def test_background_carries_scene_context(medium) -> None:
    """A classifier that sees only background snippets still names the video's class."""
    annotations, store = medium
    rows = {}
    for subset in ("validation", "test"):
        single = [v for v in annotations.subset(subset) if len(v.labels) == 1]
        means = []
        for v in single:
            features = store.read(v.name)
            means.append(features[~snippet_truth(annotations, v, len(features))].mean(0))
        labels = [annotations.class_index(v.labels[0]) for v in single]
        rows[subset] = (np.array(means), np.array(labels))
    (x_train, y_train), (x_test, y_test) = rows["validation"], rows["test"]
    centroids = np.stack([x_train[y_train == c].mean(0) for c in range(8)])
    distances = ((x_test[:, None, :] - centroids[None]) ** 2).sum(-1)
    accuracy = (distances.argmin(1) == y_test).mean()
    assert accuracy > 0.5, accuracy  # chance: 1/8


def test_weak_supervision_can_localize(medium) -> None:
    """Top-k MIL on video labels only: its class activation finds the actions."""
    annotations, store = medium
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny network: threads only add overhead on a busy CPU
    try:
        score = _train_and_score_mil(annotations, store)
    finally:
        torch.set_num_threads(threads)
    # chance is 0.5; the scene context, present in the background too, keeps it modest
    assert score > 0.6


def _train_and_score_mil(annotations, store) -> float:
    torch.manual_seed(0)
    data = VideoDataset(annotations, store, "validation", num_segments=64)
    conv = nn.Sequential(nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(), nn.Conv1d(32, 9, 1))
    optimizer = torch.optim.Adam(conv.parameters(), lr=3e-3)
    for epoch in range(25):
        data.set_epoch(epoch)
        for start in range(0, len(data), 10):
            batch = collate_videos([data[i] for i in range(start, min(start + 10, len(data)))])
            cas = conv(batch.features.transpose(1, 2))
            scores = cas.topk(8, dim=2).values.mean(2)
            target = torch.cat([batch.labels, torch.ones(len(batch.labels), 1)], 1)
            target = target / target.sum(1, keepdim=True)
            loss = -(target * torch.log_softmax(scores, 1)).sum(1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    scores, truth = [], []
    with torch.no_grad():
        for video in annotations.subset("test"):
            features = torch.from_numpy(store.read(video.name)).T[None]
            cas = conv(features)[0]
            for label in video.labels:
                scores.append(cas[annotations.class_index(label)].numpy())
                truth.append(snippet_truth(annotations, video, features.shape[2], label))
    return auc(np.concatenate(scores), np.concatenate(truth))
