"""A synthetic dataset in the released layout, from scratch or shaped like a real one.

Features are built so that weak localization is genuinely hard, as with real video:
- temporally correlated noise (white noise plus a moving average of it);
- a scene context per class, present in the whole video (background included) with a
  slowly varying strength, so a classifier can name the video from its background;
- per class an action pattern (a start-phase and an end-phase prototype blended along the
  instance) with per-instance variation, strongest mid-action and weaker at the edges;
- a class-agnostic "something happens" direction in every action, and hard background
  bursts carrying part of it together with part of some class's pattern;
- from scratch, some videos hold two classes.
Everything is a pure function of ``seed``: two runs write the same bytes.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from hamnet.data.annotations import AnnotationSet, Segment, Video, save_gt_json
from hamnet.data.features import INDEX_FILE, PackedFeatureWriter, read_packed_index
from hamnet.data.released import load_released_annotations, save_released_annotations
from hamnet.data.safe_npy import load_npy
from hamnet.errors import DataError
from hamnet.io import atomic_path, input_files, refuse_overwriting_inputs
from hamnet.timing import RELEASED_SNIPPET_SECONDS, snippets_per_second

SNIPPETS_PER_SECOND = snippets_per_second(RELEASED_SNIPPET_SECONDS)
GENERATOR = "hamnet.data.synthetic"
KNOWN_NAMES = {"thumos14": "Thumos14reduced", "activitynet12": "ActivityNet1.2"}
TRAIN_SUBSET, TEST_SUBSET = "validation", "test"  # the demo preset's subsets
# Strengths (projections on unit directions; the noise has unit std per direction).
NOISE_WHITE, NOISE_SMOOTH, SMOOTH_WIDTH = 0.4, 0.5, 5
CONTEXT, ACTIONNESS, PATTERN, VARIATION = 1.0, 2.0, 2.5, 0.6
BURST_ACTIONNESS, BURST_PATTERN = 1.2, 1.2


@dataclass
class _World:
    """Shared directions: patterns [C, 2, D], contexts [C, D], actionness [D]."""

    patterns: np.ndarray
    contexts: np.ndarray
    actionness: np.ndarray


def make_synthetic(
    out: Path,
    *,
    like: Path | None = None,
    num_classes: int = 8,
    num_videos: int = 120,
    duration_range: tuple[float, float] = (30.0, 90.0),
    feature_dim: int = 64,
    seed: int = 0,
    name: str | None = None,
    test_fraction: float = 0.5,
    progress: bool = True,
    write_released: bool = True,
    max_videos: int | None = None,
) -> Path:
    """Write a dataset root at ``out``; returns ``out``.

    ``like``: a real annotation folder whose videos, subsets, classes, durations and
    segments are kept (``max_videos``: a seeded subset of at most that many per subset).
    ``write_released=False`` skips the pickled ``<Name>-I3D-JOINTFeatures.npy``, the only
    output that needs all features in memory; the packed store is written video by video.
    A synthetic dataset already at ``out`` is replaced; any other packed store is an error.
    """
    out = Path(out)
    if like is not None:
        annotations, duration_2d = _like(Path(like), max_videos, seed)
        name = name or _real_name(Path(like))
    else:
        low, high = duration_range
        if not (0 < low <= high) or num_classes < 1 or num_videos < 1:
            raise DataError("make_synthetic: need 0 < duration low <= high, >= 1 class, video")
        annotations = _random_annotations(num_classes, num_videos, (low, high), seed, test_fraction)
        duration_2d, name = False, name or "Synthetic"
    if like is not None:  # e.g. --out the real root: its annotation files would be rewritten
        written = [p for p in input_files(out) if not p.is_dir()]
        refuse_overwriting_inputs(written, input_files(Path(like), depth=1))
    _clear_previous(out, name)
    save_released_annotations(annotations, out / f"{name}-Annotations", duration_2d)
    world = _make_world(annotations.num_classes, feature_dim, seed)
    kept = _write_features(
        annotations, world, out / f"{name}-packed", seed, progress, write_released
    )
    if write_released:
        array = np.empty(len(kept), dtype=object)
        for i, features in enumerate(kept):  # a slice assignment would broadcast equal shapes
            array[i] = features
        with atomic_path(out / f"{name}-I3D-JOINTFeatures.npy") as tmp, open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=True)
    save_gt_json(annotations, out / f"{name}-gt.json")
    return out


def _write_features(annotations, world, path, seed, progress, keep) -> list[np.ndarray]:
    """Generate and append every video's features; returns them if ``keep``."""
    kept = []
    recipe = {"generator": GENERATOR, "seed": seed}
    with PackedFeatureWriter(path, world.actionness.shape[0], recipe=recipe) as writer:
        videos = tqdm(annotations.videos, desc="synthetic features", disable=not progress)
        for i, video in enumerate(videos):
            rng = np.random.default_rng([seed, 3, i])
            classes = [annotations.class_index(x) for x in video.labels]
            spans = [(s.start, s.end, annotations.class_index(s.label)) for s in video.segments]
            features = video_features(world, num_snippets(video.duration), classes, spans, rng)
            writer.add(video.name, features)
            if keep:
                kept.append(features)
    return kept


def _clear_previous(out: Path, name: str) -> None:
    """Remove features this generator wrote before (never a store of real features)."""
    packed = out / f"{name}-packed"
    if not (packed / INDEX_FILE).exists():
        return
    recipe = read_packed_index(packed).get("recipe")
    if not (isinstance(recipe, dict) and recipe.get("generator") == GENERATOR):
        raise DataError(f"{packed}: holds features not made by {GENERATOR}; choose another folder")
    shutil.rmtree(packed)
    (out / f"{name}-I3D-JOINTFeatures.npy").unlink(missing_ok=True)


def num_snippets(duration: float) -> int:
    """T = int(duration * 25 / 16), at least 1."""
    return max(1, int(duration * SNIPPETS_PER_SECOND))


def _unit_rows(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    rows = rng.standard_normal(shape).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def _make_world(num_classes: int, dim: int, seed: int) -> _World:
    rng = np.random.default_rng([seed, 0])
    return _World(
        patterns=_unit_rows(rng, (num_classes, 2, dim)),
        contexts=_unit_rows(rng, (num_classes, dim)),
        actionness=_unit_rows(rng, (dim,)),
    )


def video_features(
    world: _World,
    length: int,
    classes: list[int],
    spans: list[tuple[float, float, int]],
    rng: np.random.Generator,
) -> np.ndarray:
    """Float32 [length, D] features of one video; ``spans`` in seconds (clipped here)."""
    dim = world.actionness.shape[0]
    white = rng.standard_normal((length + SMOOTH_WIDTH - 1, dim), dtype=np.float32)
    summed = np.cumsum(white, axis=0, dtype=np.float32)
    summed = np.concatenate([np.zeros((1, dim), np.float32), summed])
    smooth = (summed[SMOOTH_WIDTH:] - summed[:-SMOOTH_WIDTH]) / math.sqrt(SMOOTH_WIDTH)
    features = NOISE_WHITE * white[SMOOTH_WIDTH - 1 :] + NOISE_SMOOTH * smooth
    features += np.outer(_context_strength(length, rng), _scene(world, classes, rng))
    action = np.zeros(length, dtype=bool)
    for start, end, label in spans:
        first = int(start * SNIPPETS_PER_SECOND)
        stop = min(length, max(first + 1, int(end * SNIPPETS_PER_SECOND)))
        if first < length:
            _add_action(features, world, label, first, stop, rng)
            action[first:stop] = True
    _add_bursts(features, world, action, rng)
    return features


def _scene(world: _World, classes: list[int], rng: np.random.Generator) -> np.ndarray:
    """Scene vector [D]: the classes' contexts plus a video-specific part."""
    own = _unit_rows(rng, (world.actionness.shape[0],)) * 0.5
    if not classes:
        return own
    return CONTEXT * world.contexts[classes].mean(axis=0) + own


def _context_strength(length: int, rng: np.random.Generator) -> np.ndarray:
    """Slowly varying scene strength [T] in about [0.4, 1.6] (camera/scene changes)."""
    knots = rng.uniform(0.4, 1.6, size=length // 40 + 2)
    return np.interp(np.arange(length) / 40.0, np.arange(len(knots)), knots).astype(np.float32)


def _profile(span: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative position [span] in (0, 1) and evidence weight, 1 mid-action, ~0.3 at edges."""
    position = (np.arange(span, dtype=np.float32) + 0.5) / span
    return position, 0.3 + 0.7 * np.sin(np.pi * position)


def _add_action(features, world, label, first, stop, rng) -> None:
    position, weight = _profile(stop - first)
    start_pattern, end_pattern = world.patterns[label]
    variation = _unit_rows(rng, (features.shape[1],)) * VARIATION
    amplitude = rng.uniform(0.8, 1.2)
    pattern = np.outer(1 - position, start_pattern) + np.outer(position, end_pattern)
    evidence = PATTERN * amplitude * (pattern + variation) + ACTIONNESS * world.actionness
    features[first:stop] += weight[:, None] * evidence


def _add_bursts(features, world, action, rng) -> None:
    """Hard background: short bursts partly resembling some class's action."""
    length = len(features)
    for _ in range(rng.poisson(length / 50)):
        span = int(rng.integers(2, 7))
        first = int(rng.integers(0, max(1, length - span)))
        stop = min(length, first + span)
        if action[first:stop].any():
            continue
        _, weight = _profile(stop - first)
        label = int(rng.integers(len(world.patterns)))
        evidence = BURST_ACTIONNESS * world.actionness + BURST_PATTERN * world.patterns[label, 0]
        features[first:stop] += weight[:, None] * evidence


def _random_annotations(num_classes, num_videos, durations, seed, test_fraction):
    rng = np.random.default_rng([seed, 1])
    classes = [f"Action{c:02d}" for c in range(num_classes)]
    test = set(rng.permutation(num_videos)[: round(num_videos * test_fraction)].tolist())
    videos = []
    for i in range(num_videos):
        subset = TEST_SUBSET if i in test else TRAIN_SUBSET
        video_rng = np.random.default_rng([seed, 2, i])
        videos.append(_random_video(f"video_{i:05d}", subset, classes, durations, video_rng))
    return AnnotationSet(classes, videos, source="<synthetic>")


def _random_video(name, subset, classes, durations, rng) -> Video:
    duration = round(float(rng.uniform(*durations)), 2)
    chosen = [int(rng.integers(len(classes)))]
    if len(classes) > 1 and rng.random() < 0.25:
        chosen.append(int((chosen[0] + rng.integers(1, len(classes))) % len(classes)))
    labels = [classes[c] for c in chosen for _ in range(int(rng.integers(1, 4)))]
    rng.shuffle(labels)
    slot = duration / len(labels)
    segments = []
    for k, label in enumerate(labels):
        span = max(min(2.0, slot), float(rng.uniform(0.15, 0.55)) * slot)
        start = k * slot + float(rng.uniform(0, slot - span))
        segments.append(Segment(round(start, 1), round(min(start + span, duration), 1), label))
    ordered = tuple(classes[c] for c in sorted(chosen))
    return Video(name, subset, duration, ordered, tuple(segments))


def _like(folder: Path, max_videos: int | None, seed: int) -> tuple[AnnotationSet, bool]:
    real = load_released_annotations(folder)
    duration_2d = load_npy(folder / "duration.npy").ndim == 2
    if max_videos is None:
        return real, duration_2d
    rng = np.random.default_rng([seed, 4])
    keep: set[str] = set()
    for subset in dict.fromkeys(v.subset for v in real.videos):
        names = [v.name for v in real.videos if v.subset == subset]
        keep.update(names[i] for i in rng.permutation(len(names))[:max_videos])
    videos = [v for v in real.videos if v.name in keep]
    ambiguous = {k: v for k, v in real.ambiguous.items() if k in keep}
    return AnnotationSet(real.classes, videos, ambiguous, source=real.source), duration_2d


def _real_name(folder: Path) -> str:
    if folder.name.endswith("-Annotations"):
        return folder.name[: -len("-Annotations")]
    return KNOWN_NAMES.get(folder.name, folder.name)
