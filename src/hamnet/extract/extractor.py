"""One video in, its snippet features out: decoding, flow and I3D for the chosen streams."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hamnet.errors import ConfigError, DataError
from hamnet.extract.flow import FLOW_BOUND, FLOW_METHODS, FlowEstimator
from hamnet.extract.i3d import FEATURE_DIM, load_i3d
from hamnet.extract.snippets import (
    SNIPPET_FRAMES,
    Snippet,
    encode,
    flow_clips,
    iter_snippets,
    rgb_clips,
)
from hamnet.extract.video import iter_frames
from hamnet.precision import PRECISIONS

STREAMS = ("rgb", "flow")
IN_CHANNELS = {"rgb": 3, "flow": 2}
RECIPE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """Everything that changes the numbers; stored in the feature store's index."""

    streams: tuple[str, ...] = STREAMS
    flow: str = "tvl1"
    precision: str = "fp32"
    fps: float = 25.0
    short_side: int = 256
    crop: int = 224
    weights: dict[str, str] = field(default_factory=dict)  # stream -> fingerprint

    def __post_init__(self):
        if not self.streams or any(s not in STREAMS for s in self.streams):
            raise ConfigError(f"streams {list(self.streams)}: choose from {list(STREAMS)}")
        if len(set(self.streams)) != len(self.streams):
            raise ConfigError(f"streams {list(self.streams)}: a stream is named twice")
        if self.flow not in FLOW_METHODS:
            raise ConfigError(f"flow {self.flow!r}: choose one of {list(FLOW_METHODS)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r}: choose one of {list(PRECISIONS)}")
        if not 0 < self.crop <= self.short_side:
            raise ConfigError(f"crop {self.crop} must be positive and <= short side")

    @property
    def dim(self) -> int:
        return FEATURE_DIM * len(self.streams)

    def as_dict(self) -> dict:
        """JSON-native (lists, not tuples) so it compares equal after a round trip."""
        return {
            "extractor": "i3d-inception-v1",
            "version": RECIPE_VERSION,
            "streams": list(self.streams),
            "flow": self.flow if "flow" in self.streams else None,
            "flow_bound": FLOW_BOUND,
            "precision": self.precision,
            "fps": self.fps,
            "short_side": self.short_side,
            "crop": self.crop,
            "snippet_frames": SNIPPET_FRAMES,
            "pooling": "Mixed_5c mean over time and space",
            "weights": {s: self.weights.get(s) for s in self.streams},
        }


def fingerprint(model: torch.nn.Module) -> str:
    """Short SHA-256 of a network's parameters and buffers (independent of the file name)."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        digest.update(key.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_stream_models(
    streams: tuple[str, ...], weights: dict[str, Path | None]
) -> dict[str, torch.nn.Module]:
    """I3D per stream from its weight file; a missing path is a clear ConfigError."""
    models = {}
    for stream in streams:
        path = weights.get(stream)
        if path is None:
            raise ConfigError(
                f"the {stream} stream needs I3D weights: pass --{stream}-weights PATH "
                f"(e.g. {stream}_imagenet.pt of the PyTorch I3D port; nothing is downloaded)"
            )
        models[stream] = load_i3d(Path(path), IN_CHANNELS[stream])
    return models


class FeatureExtractor:
    """Turns a video file into features [T, 1024 * len(streams)] (streams in recipe order)."""

    def __init__(
        self, recipe: Recipe, models: dict[str, torch.nn.Module], device: str, batch_size: int
    ):
        missing = [s for s in recipe.streams if s not in models]
        if missing:
            raise ConfigError(f"no network given for stream(s) {missing}")
        self.recipe, self.device, self.batch_size = recipe, device, max(1, int(batch_size))
        self.models = {s: models[s].to(device).eval() for s in recipe.streams}
        self.flow = FlowEstimator(recipe.flow) if "flow" in recipe.streams else None
        self.frames_decoded = 0  # of the last video, at the resampled rate

    def __call__(self, path: Path) -> np.ndarray:
        """Features [T, D] float32 of one video; T = 0 for a video shorter than a snippet."""
        self.frames_decoded = 0
        rows = [self._encode_batch(batch) for batch in self._batches(Path(path))]
        if self.frames_decoded == 0:
            raise DataError(f"{Path(path).name}: no video frames could be decoded")
        if not rows:
            return np.zeros((0, self.recipe.dim), dtype=np.float32)
        return np.concatenate(rows, axis=0)

    def _batches(self, path: Path) -> Iterator[list[Snippet]]:
        frames = self._counted(iter_frames(path, self.recipe.fps, self.recipe.short_side))
        batch: list[Snippet] = []
        for snippet in iter_snippets(frames, self.recipe.crop, self.flow):
            batch.append(snippet)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _counted(self, frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        for frame in frames:
            self.frames_decoded += 1
            yield frame

    def _encode_batch(self, batch: list[Snippet]) -> np.ndarray:
        """[B, D]: the streams' 1024-wide features side by side."""
        parts = []
        for stream in self.recipe.streams:
            clips = rgb_clips(batch) if stream == "rgb" else flow_clips(batch)
            parts.append(encode(self.models[stream], clips, self.device, self.recipe.precision))
        return np.concatenate(parts, axis=1)
