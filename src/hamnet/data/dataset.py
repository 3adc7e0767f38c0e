"""Torch dataset over a feature store, and the collate function that pads batches.

Features are read video by video from the store; nothing holds a whole dataset in memory.
Random resampling is a pure function of (seed, epoch, index) -- and of the draw, when an
epoch draws a video more than once (:class:`VideoDraw`) -- so a resumed run redraws the
same samples and DataLoader workers agree with each other. Call ``set_epoch`` before
creating the epoch's iterator (non-persistent workers copy the dataset at that moment).

A method that owns its training data (``Method.owns_training_data``) is asked for the rows
of each item and its targets (counts, proposals, pseudo ground truth); its items are
``hamnet.methods.base.TrainItem`` (``index``, ``tag``, ``step``), read here by attribute
(data never imports a method).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from hamnet.data.annotations import AnnotationSet
from hamnet.data.features import FeatureStore
from hamnet.data.sampling import random_perturb_indices, uniform_indices
from hamnet.errors import DataError

log = logging.getLogger(__name__)

SAMPLINGS = ("random", "uniform")


@dataclass(frozen=True)
class VideoDraw:
    """The ``draw``-th time (0 = first) an epoch draws the training video at row ``index``.

    Class-paired epochs draw videos with replacement, and the reference codes sample a
    video's snippets afresh at every draw; the first draw is keyed as a plain row index
    is, so an epoch that draws each video once samples exactly as before.
    """

    index: int
    draw: int = 0


def numbered_draws(batches: list[list[int]]) -> list[list[VideoDraw]]:
    """``batches`` of row indices as VideoDraws, each numbered by how often the epoch
    drew its video before (in batch order)."""
    seen: dict[int, int] = {}
    numbered = []
    for batch in batches:
        row = []
        for index in batch:
            row.append(VideoDraw(index, seen.get(index, 0)))
            seen[index] = row[-1].draw + 1
        numbered.append(row)
    return numbered


def draw_of(item) -> VideoDraw:
    """A house item (a row index or a VideoDraw) as a VideoDraw."""
    return item if isinstance(item, VideoDraw) else VideoDraw(int(item))


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
        self.method = None  # a method owning its training data (``use_method``)
        self.labels = np.zeros((len(videos), annotations.num_classes), dtype=np.float32)
        for row, video in enumerate(videos):
            self.labels[row] = annotations.label_vector(video)

    def use_method(self, method) -> None:
        """Ask ``method`` for rows and targets when it owns its training data."""
        self.method = method if getattr(method, "owns_training_data", False) else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.videos)

    def sample_indices(self, length: int, index: int, draw: int = 0) -> np.ndarray | None:
        """Rows to take from a video of ``length`` snippets (None: all of them) at the
        ``draw``-th draw of the video in this epoch."""
        if self.num_segments is None:
            return None
        if self.sampling == "uniform":
            return uniform_indices(length, self.num_segments)
        key = [self.seed, self.epoch, index] + ([draw] if draw else [])
        rng = np.random.default_rng(key)
        return random_perturb_indices(length, self.num_segments, rng)

    def owned_rows(self, length: int, item) -> np.ndarray | None:
        """The owning method's rows of ``item`` (None: the house's sampling)."""
        rng = np.random.default_rng([self.seed, self.epoch, item.index, item.tag])
        rows = self.method.training_rows(length, item, rng, item.step)
        if rows is None:
            return self.sample_indices(length, item.index)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.ndim != 1 or (rows.size and (rows.min() < 0 or rows.max() >= length)):
            raise DataError(
                f"{self.method.name}: training rows outside the video "
                f"{self.videos[item.index].name!r} of {length} snippets"
            )
        return rows

    def __getitem__(self, item) -> dict:
        """``item``: a row index or a VideoDraw (the house's sampling), or an owning
        method's TrainItem."""
        drawn = draw_of(item) if self.method is None else None
        index = item.index if drawn is None else drawn.index
        video = self.videos[index]
        features = self.store.read(video.name)
        length = len(features)
        if drawn is not None:
            rows = self.sample_indices(length, index, drawn.draw)
        else:
            rows = self.owned_rows(length, item)
        if rows is not None:
            features = features[rows]
        targets = {}
        if self.method is not None:
            found = self.method.video_targets(video, rows, length, item)
            targets = {key: torch.as_tensor(np.asarray(value)) for key, value in found.items()}
        return {
            "name": video.name,
            "features": torch.from_numpy(np.ascontiguousarray(features)),
            "labels": torch.from_numpy(self.labels[index].copy()),
            "length": int(len(features)),
            "item": item,
            "targets": targets,
        }


@dataclass
class Batch:
    """``features`` [B, T, D] float32 zero-padded, ``mask`` [B, T] bool (True = real
    snippet; its row sums are the lengths), ``labels`` [B, C] float32, ``names``;
    ``items`` (each row's item: its index, or an owning method's TrainItem) and
    ``targets`` (each row's own tensors, unpadded: the owning method's ``video_targets``)."""

    features: torch.Tensor
    mask: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    items: list = field(default_factory=list)
    targets: list[dict[str, torch.Tensor]] = field(default_factory=list)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The batch on ``device`` (the streaming training path)."""
        return self._mapped(lambda tensor: tensor.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return self._mapped(lambda tensor: tensor.pin_memory())

    def _mapped(self, move) -> Batch:
        targets = [{key: move(value) for key, value in row.items()} for row in self.targets]
        return Batch(
            move(self.features), move(self.mask), move(self.labels), self.names, self.items, targets
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
    names = [item["name"] for item in items]
    train_items = [item.get("item", row) for row, item in enumerate(items)]
    targets = [item.get("targets", {}) for item in items]
    return Batch(features, mask, labels, names, train_items, targets)
