"""Torch dataset over a feature store, and the collate function that pads batches.

Features are read video by video from the store; nothing holds a whole dataset in memory.
Random resampling is a pure function of (seed, epoch, index), so a resumed run redraws the
same samples and DataLoader workers agree with each other. Call ``set_epoch`` before
creating the epoch's iterator (non-persistent workers copy the dataset at that moment).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from hamnet.data.annotations import AnnotationSet
from hamnet.data.features import FeatureStore
from hamnet.data.sampling import random_perturb_indices, uniform_indices
from hamnet.errors import DataError

log = logging.getLogger(__name__)

SAMPLINGS = ("random", "uniform")


class VideoDataset(Dataset):
    """Videos of one subset. Item: ``name``, ``features`` float32 [T', D], ``labels``
    float32 [C] (multi-hot video-level labels), ``length`` = T'.

    ``num_segments`` set: every item has exactly that many rows (training); ``None``:
    the full video (testing).
    """

    def __init__(
        self,
        annotations: AnnotationSet,
        store: FeatureStore,
        subset: str,
        *,
        num_segments: int | None,
        sampling: str = "random",
        seed: int = 0,
        skip_unlabelled: bool = False,
    ):
        if sampling not in SAMPLINGS:
            raise DataError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if num_segments is not None and num_segments < 1:
            raise DataError(f"num_segments must be >= 1, got {num_segments}")
        videos = annotations.subset(subset)
        if skip_unlabelled:
            kept = [video for video in videos if video.labels]
            if len(kept) < len(videos):
                log.info(
                    "%s: skipping %d video(s) of subset %r without labels",
                    annotations.source,
                    len(videos) - len(kept),
                    subset,
                )
            videos = kept
        missing = [video.name for video in videos if video.name not in store]
        if missing:
            raise DataError(
                f"{store.path}: no features for video {missing[0]!r} "
                f"({len(missing)} video(s) of subset {subset!r} lack features)"
            )
        self.videos = videos
        self.store = store
        self.num_segments = num_segments
        self.sampling = sampling
        self.seed = seed
        self.epoch = 0
        self.labels = np.zeros((len(videos), annotations.num_classes), dtype=np.float32)
        for row, video in enumerate(videos):
            self.labels[row] = annotations.label_vector(video)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos)

    def sample_indices(self, length: int, index: int) -> np.ndarray | None:
        """Rows to take from a video of ``length`` snippets (None: all of them)."""
        if self.num_segments is None:
            return None
        if self.sampling == "uniform":
            return uniform_indices(length, self.num_segments)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        return random_perturb_indices(length, self.num_segments, rng)

    def __getitem__(self, index: int) -> dict:
        video = self.videos[index]
        features = self.store.read(video.name)
        rows = self.sample_indices(len(features), index)
        if rows is not None:
            features = features[rows]
        return {
            "name": video.name,
            "features": torch.from_numpy(np.ascontiguousarray(features)),
            "labels": torch.from_numpy(self.labels[index].copy()),
            "length": int(len(features)),
        }


@dataclass
class Batch:
    """``features`` [B, T, D] float32 zero-padded, ``mask`` [B, T] bool (True = real
    snippet; its row sums are the lengths), ``labels`` [B, C] float32, ``names``."""

    features: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    names: list[str]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch on ``device`` (the streaming training path)."""
        return Batch(
            self.features.to(device, non_blocking=non_blocking),
            self.mask.to(device, non_blocking=non_blocking),
            self.labels.to(device, non_blocking=non_blocking),
            self.names,
        )

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return Batch(
            self.features.pin_memory(),
            self.mask.pin_memory(),
            self.labels.pin_memory(),
            self.names,
        )

    def __len__(self) -> int:
        return len(self.names)


def collate_videos(items: list[dict]) -> Batch:
    """Stack items of possibly different lengths, padding with zeros at the end."""
    if not items:
        raise ValueError("collate_videos needs at least one item")
    lengths = torch.tensor([item["length"] for item in items], dtype=torch.long)
    longest = int(lengths.max())
    dim = items[0]["features"].shape[1]
    features = torch.zeros(len(items), longest, dim, dtype=torch.float32)
    for row, item in enumerate(items):
        features[row, : item["length"]] = item["features"]
    mask = torch.arange(longest)[None, :] < lengths[:, None]
    labels = torch.stack([item["labels"] for item in items])
    return Batch(features, mask, labels, [item["name"] for item in items])
