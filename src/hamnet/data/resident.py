"""Features held as tensors on the training device: loaded once, sampled by gathering.

``data.placement`` chooses between this and streaming from the store (``VideoDataset``):
``device`` always loads, ``stream`` never does, ``auto`` loads on a GPU when the features
fit in its free memory with a margin and streams on the CPU (where the store's memmap is
already memory, and streaming is the path the documented numbers come from).

The snippet indices of (seed, epoch, video, draw) are those of :class:`VideoDataset` (the
same numpy RNG, computed on the host for a whole epoch at once: [items, n] integers); the features
are gathered on the device, so a resident batch equals the streamed one bit for bit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hamnet.data.dataset import VideoDataset, draw_of
from hamnet.data.features import FeatureStore

log = logging.getLogger(__name__)

# What auto leaves free on a GPU besides the features: the model, Adam state, activations
# of a training batch and of a padded inference batch, other jobs' contexts.
GPU_MARGIN_BYTES = 4 * 2**30
GPU_MARGIN_FRACTION = 0.2


@dataclass
class ResidentBatch:
    """One training batch on the device: ``features [B, n, D]`` float32, ``labels [B, C]``,
    ``mask [B, n]`` (all True: every training item has exactly n rows)."""

    features: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor


class ResidentFeatures:
    """The features of some videos in one ``[N_rows, D]`` device tensor, plus offsets."""

    def __init__(
        self, store: FeatureStore, names: list[str], device: torch.device, dtype: torch.dtype
    ):
        self.names = list(dict.fromkeys(names))
        self.device = device
        lengths = [store.length(name) for name in self.names]
        offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
        self.offset = {name: int(offsets[i]) for i, name in enumerate(self.names)}
        self.length = dict(zip(self.names, lengths, strict=True))
        self.rows = torch.empty(int(offsets[-1]), store.dim, dtype=dtype, device=device)
        for name in self.names:
            # read() checks shape and finiteness and upcasts; one copy per video, once
            start = self.offset[name]
            self.rows[start : start + self.length[name]] = torch.from_numpy(store.read(name))

    @property
    def nbytes(self) -> int:
        return self.rows.numel() * self.rows.element_size()

    def video(self, name: str) -> torch.Tensor:
        """Float32 ``[T, D]`` features of one video (a view when stored in float32)."""
        start = self.offset[name]
        return self.rows[start : start + self.length[name]].float()


class ResidentTrainSet:
    """The training subset of ``dataset`` sampled on the device, epoch by epoch."""

    def __init__(self, dataset: VideoDataset, features: ResidentFeatures):
        self.dataset = dataset
        self.features = features
        self.labels = torch.from_numpy(dataset.labels).to(features.device)
        self.starts = np.array([features.offset[v.name] for v in dataset.videos], np.int64)

    def epoch_rows(self, epoch: int) -> np.ndarray:
        """``[N, n]`` rows of ``features.rows`` that epoch ``epoch`` samples, video by video:
        exactly the indices the streaming dataset draws for (seed, epoch, index)."""
        return self.drawn_rows(epoch, list(range(len(self.dataset))))

    def drawn_rows(self, epoch: int, items: list) -> np.ndarray:
        """``[len(items), n]`` rows of ``features.rows`` for dataset items (row indices
        or VideoDraws) of epoch ``epoch``: a repeated video's later draws sample afresh."""
        self.dataset.set_epoch(epoch)
        rows = np.empty((len(items), self.dataset.num_segments), dtype=np.int64)
        for row, item in enumerate(map(draw_of, items)):
            length = self.features.length[self.dataset.videos[item.index].name]
            local = self.dataset.sample_indices(length, item.index, item.draw)
            rows[row] = self.starts[item.index] + local
        return rows

    def epoch_batches(self, epoch: int, batches: list[list]) -> Iterator[ResidentBatch]:
        """The epoch's batches of dataset items (``batches``), gathered on the device.

        The epoch's indices, already in batch order, go to the device in one small copy;
        each batch is then a slice and a gather: no host copy, no host sync.
        """
        items = [item for indices in batches for item in indices]
        order = np.asarray([draw_of(item).index for item in items], dtype=np.int64)
        device = self.features.device
        rows = torch.from_numpy(self.drawn_rows(epoch, items)).to(device)
        labels = self.labels.index_select(0, torch.from_numpy(order).to(device))
        start = 0
        for indices in batches:
            stop = start + len(indices)
            picked = rows[start:stop]
            features = self.features.rows[picked].float()
            mask = torch.ones(picked.shape, dtype=torch.bool, device=device)
            yield ResidentBatch(features, labels[start:stop], mask)
            start = stop


def resident_dtype(store: FeatureStore, choice: str) -> torch.dtype:
    """``auto``: float16 when the store holds float16 (upcasting later is exact), else
    float32; an explicit choice wins (float16 from float32 data rounds the features)."""
    if choice == "auto":
        stored = getattr(store, "dtype", np.dtype(np.float32))
        return torch.float16 if np.dtype(stored) == np.float16 else torch.float32
    return torch.float16 if choice == "float16" else torch.float32


def resident_bytes(store: FeatureStore, names: list[str], dtype: torch.dtype) -> int:
    rows = sum(store.length(name) for name in dict.fromkeys(names))
    return rows * store.dim * torch.tensor([], dtype=dtype).element_size()


def choose_placement(placement: str, device: torch.device, needed: int) -> str:
    """``device`` or ``stream`` for a run needing ``needed`` bytes of resident features."""
    if placement != "auto":
        return placement
    if device.type != "cuda":
        return "stream"  # the bit-identical documented path; the CPU gains nothing
    free, total = torch.cuda.mem_get_info(device)
    margin = max(GPU_MARGIN_BYTES, int(GPU_MARGIN_FRACTION * total))
    return "device" if needed + margin <= free else "stream"


@dataclass
class Plan:
    """Where a run's features go: ``mode`` device or stream, in ``dtype`` (``nbytes``)."""

    mode: str
    dtype: torch.dtype
    nbytes: int
    message: str


def plan_placement(
    placement: str, dtype_choice: str, store: FeatureStore, names: list[str], device: torch.device
) -> Plan:
    """Decide the placement; under auto/auto a GPU too small for float32 features takes
    them in float16 (rounded: the log line says so) before falling back to streaming."""
    dtype = resident_dtype(store, dtype_choice)
    needed = resident_bytes(store, names, dtype)
    mode = choose_placement(placement, device, needed)
    rounded = False
    if mode == "stream" and placement == dtype_choice == "auto" and dtype == torch.float32:
        half = resident_bytes(store, names, torch.float16)
        if choose_placement("auto", device, half) == "device":
            mode, dtype, needed, rounded = "device", torch.float16, half, True
    return Plan(mode, dtype, needed, _describe(mode, placement, device, needed, dtype, rounded))


def _describe(
    mode: str,
    requested: str,
    device: torch.device,
    needed: int,
    dtype: torch.dtype,
    rounded: bool,
) -> str:
    size = f"{needed / 2**30:.2f} GiB"
    if mode == "device":
        kind = str(dtype).removeprefix("torch.")
        note = "; rounded to float16 to fit, numbers differ slightly" if rounded else ""
        return (
            f"data placement: device (features held on {device} in {kind}, {size}; "
            f"data.placement={requested}{note})"
        )
    why = "requested" if requested == "stream" else f"auto on {device.type}"
    return f"data placement: stream (features read from the store per batch; {why}; {size})"
