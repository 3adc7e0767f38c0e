"""Speed of proposal generation + soft-NMS over a THUMOS14-test-sized run.

212 videos whose lengths T are the real test durations (``../shared/data/thumos14``
when present, else lengths drawn to match: mean 217 s), 20 classes, smooth random
T-CAS and attention, two predicted classes per video, the reference settings
(10 thresholds, Gaussian soft-NMS with the quirks on). Prints the total time and the
time per video, and the proposal count.

    python benchmarks/bench_proposals.py [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from hamnet.localize.proposals import localize_video

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "thumos14"
NUM_CLASSES = 20


def test_lengths(rng: np.random.Generator) -> np.ndarray:
    """Snippet counts int(d * 25 / 16) of the 212 test videos."""
    if (SHARED / "duration.npy").is_file():
        durations = np.load(SHARED / "duration.npy").reshape(-1)
        subset = np.load(SHARED / "subset.npy")
        durations = durations[subset == b"test"]
    else:
        durations = rng.gamma(2.0, 108.0, 212)
    return (durations * 25 / 16).astype(np.int64)


def smooth_noise(rng: np.random.Generator, length: int, width: int, columns: int) -> np.ndarray:
    """Random walk-free smooth signal [length, columns] in about [0, 1]."""
    kernel = np.hanning(2 * width + 1)
    kernel /= kernel.sum()
    raw = rng.standard_normal((length + 2 * width, columns))
    smooth = np.stack(
        [np.convolve(raw[:, c], kernel, mode="valid") for c in range(columns)], axis=1
    )
    return 1 / (1 + np.exp(-4 * smooth / smooth.std()))


def make_video(rng: np.random.Generator, length: int):
    attention = smooth_noise(rng, length, 12, 1)[:, 0]
    cas = smooth_noise(rng, length, 12, NUM_CLASSES + 1) * 4 - 2
    scores = np.full(NUM_CLASSES, 0.01)
    scores[rng.choice(NUM_CLASSES, 2, replace=False)] = [0.6, 0.3]
    return cas * attention[:, None], attention, scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    lengths = test_lengths(rng)
    videos = [make_video(rng, int(t)) for t in lengths]
    names = [f"class_{c}" for c in range(NUM_CLASSES)]
    for nms in ("soft", "hard", "none"):
        start = time.perf_counter()
        count = 0
        for i, (cas, attention, scores) in enumerate(videos):
            count += len(localize_video(f"v{i}", cas, attention, scores, names, nms=nms))
        elapsed = time.perf_counter() - start
        print(
            f"nms={nms:<4}: {len(videos)} videos (T {lengths.min()}..{lengths.max()}, "
            f"total {lengths.sum()}), {count} detections, {elapsed:.3f} s total, "
            f"{1000 * elapsed / len(videos):.2f} ms per video"
        )


if __name__ == "__main__":
    main()
