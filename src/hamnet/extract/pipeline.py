"""``hamnet extract``: many videos into one packed feature store, resumable and sharded.

Each video is committed to the store on its own (rows flushed, then the index replaced
atomically), so a run killed part-way loses at most the video in progress, and a rerun
skips every committed video. Videos too short for one snippet cannot be stored (the store
holds T > 0 rows per video); they are listed in ``empty_videos.json`` beside the index and
skipped on rerun as well. Under torchrun each rank extracts every WORLD_SIZE-th video into
``STORE.rank{r}``; rank 0 then merges the parts into STORE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from hamnet.data.features import INDEX_FILE, PackedFeatureWriter
from hamnet.errors import DataError, HamnetError
from hamnet.extract import shards
from hamnet.extract.extractor import FeatureExtractor, Recipe, fingerprint, load_stream_models
from hamnet.extract.store_meta import check_recipe, read_empty, write_empty
from hamnet.io import input_files, refuse_overwriting_inputs

log = logging.getLogger(__name__)


@dataclass
class ExtractReport:
    """What one run did. ``zero_snippet``: name -> frames decoded; ``failed``: name -> reason."""

    store: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    zero_snippet: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def merge(self, other: ExtractReport) -> None:
        self.done += other.done
        self.skipped += other.skipped
        self.zero_snippet.update(other.zero_snippet)
        self.failed.update(other.failed)

    def summary(self) -> str:
        return (
            f"{self.store}: {len(self.done)} extracted, {len(self.skipped)} already there, "
            f"{len(self.zero_snippet)} shorter than one snippet, {len(self.failed)} failed"
        )


def video_names(videos: Sequence[Path]) -> dict[str, Path]:
    """name (file stem) -> path; DataError when two files share a stem or one is missing."""
    named: dict[str, Path] = {}
    for video in map(Path, videos):
        if video.stem in named and named[video.stem] != video:
            raise DataError(f"{video} and {named[video.stem]}: two videos named {video.stem!r}")
        if not video.is_file():
            raise DataError(f"{video}: video file not found")
        named[video.stem] = video
    return named


def extract_videos(
    videos: Sequence[Path],
    out: Path,
    *,
    streams: Sequence[str] = ("rgb", "flow"),
    device: str = "cpu",
    precision: str = "fp32",
    flow: str = "tvl1",
    rgb_weights: Path | None = None,
    flow_weights: Path | None = None,
    batch_size: int = 8,
    progress: bool = True,
    models: dict[str, torch.nn.Module] | None = None,
    short_side: int = 256,
    crop: int = 224,
) -> ExtractReport:
    """Extract I3D features of ``videos`` into the packed store ``out``; see module doc.

    ``models`` (stream -> network) replaces the weight files, for tests and for networks
    built in code; ``short_side``/``crop`` other than 256/224 leave the released recipe
    (tests use small frames). Under torchrun, rank 0 returns the merged report.
    """
    dist = shards.DistContext.from_env()
    device = shards.rank_device(device, dist)  # first: a wrong device fails before any work
    named = video_names(videos)
    written = [p for p in input_files(Path(out)) if not p.is_dir()]
    refuse_overwriting_inputs([Path(out), *written], videos)
    settings = Recipe(tuple(streams), flow, precision, short_side=short_side, crop=crop)
    if models is None:
        weights = {"rgb": rgb_weights, "flow": flow_weights}
        models = load_stream_models(settings.streams, weights)
    prints = {s: fingerprint(m) for s, m in models.items() if s in settings.streams}
    recipe = replace(settings, weights=prints)
    extractor = FeatureExtractor(recipe, models, device, batch_size)
    if not dist.enabled:
        return extract_into(extractor, named, Path(out), progress=progress)
    return shards.run_sharded(extractor, named, Path(out), dist, progress, extract_into)


def extract_into(
    extractor: FeatureExtractor,
    named: dict[str, Path],
    store: Path,
    *,
    progress: bool = True,
    also_done: set[str] | frozenset[str] = frozenset(),
    desc: str = "extract",
) -> ExtractReport:
    """Extract the videos not yet in ``store`` (nor in ``also_done``), committing each."""
    recipe = extractor.recipe.as_dict()
    report = ExtractReport(store)
    check_recipe(store, recipe)
    resume = (store / INDEX_FILE).exists()
    with PackedFeatureWriter(store, extractor.recipe.dim, recipe=recipe, resume=resume) as writer:
        empty = read_empty(store)
        finished = set(writer.names) | set(empty) | set(also_done)
        todo = {n: p for n, p in named.items() if n not in finished}
        report.skipped = [n for n in named if n in finished]
        bar = _progress_bar(len(todo), progress, desc)
        for name, path in todo.items():
            _extract_one(extractor, writer, name, path, report, empty)
            _advance(bar)
        bar.close()
    write_empty(store, empty)
    return report


def _extract_one(extractor, writer, name, path, report: ExtractReport, empty: dict) -> None:
    """Extract and commit one video; bad videos are reported, never fatal."""
    try:
        features = extractor(path)
    except HamnetError as exc:
        report.failed[name] = str(exc)
        log.warning("skipping %s", exc)
        return
    if len(features) == 0:
        empty[name] = extractor.frames_decoded
        report.zero_snippet[name] = extractor.frames_decoded
        write_empty(writer.path, empty)
        log.warning("%s: %d frames, shorter than one snippet: 0 snippets", path, empty[name])
        return
    writer.add(name, features, commit=True)
    report.done.append(name)


def _progress_bar(total: int, enabled: bool, desc: str) -> tqdm:
    bar = tqdm(total=total, unit="video", desc=desc, disable=not enabled, dynamic_ncols=True)
    bar.start_time = time.monotonic()
    return bar


def _advance(bar: tqdm) -> None:
    """One more video; the postfix shows the rate in videos per minute (tqdm gives the ETA)."""
    bar.update(1)
    minutes = max(time.monotonic() - bar.start_time, 1e-9) / 60
    bar.set_postfix_str(f"{bar.n / minutes:.1f} videos/min")
