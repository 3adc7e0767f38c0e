"""Cost of feature extraction per minute of 25 fps video, stage by stage, on this machine.

Stages, measured separately on THUMOS14-like input (320x240 source, resized to 341x256,
224x224 crops): decoding (PyAV + resampling + bilinear resize), optical flow (TV-L1 and
DIS, per frame pair at 341x256), and the I3D network (RGB and flow streams, fp32 and
bf16, batches of 16x224x224 snippets). One minute of 25 fps video is 1500 frames, 1500
flow pairs and 93.75 snippets per stream. The totals are extrapolated to THUMOS14 (412
videos, durations from the shared annotations). Random network weights: the cost of a
forward pass does not depend on the values.

    python benchmarks/bench_extract.py [--seconds 20] [--tvl1-pairs 6] [--batch 4] [--repeats 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hamnet.extract.flow import FlowEstimator
from hamnet.extract.i3d import InceptionI3d
from hamnet.extract.snippets import encode
from hamnet.extract.video import iter_frames

# the synthetic test videos are a test helper (tests/extract/testvideo.py)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "extract"))
from testvideo import make_test_video  # noqa: E402

FRAMES_PER_MINUTE = 25 * 60
SNIPPETS_PER_MINUTE = FRAMES_PER_MINUTE / 16
DURATIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "thumos14" / "duration.npy"
THUMOS14_SECONDS = 87754.35  # sum of duration.npy, used when the shared folder is absent


def timed(fn, repeats: int = 1) -> float:
    """Best wall time of ``repeats`` calls (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_decode(seconds: float, folder: Path, repeats: int) -> tuple[float, list[np.ndarray]]:
    """Seconds per minute of video for decode + resample + resize (H.264, 320x240, 25 fps)."""
    frames = int(seconds * 25)
    video = make_test_video(folder / "v.mp4", frames=frames, size=(240, 320), codec="libx264")
    elapsed = timed(lambda: list(iter_frames(video, 25.0, 256)), repeats)
    decoded = list(iter_frames(video, 25.0, 256))
    assert len(decoded) == frames
    return elapsed / frames * FRAMES_PER_MINUTE, decoded


def bench_flow(method: str, frames: list[np.ndarray], pairs: int) -> float:
    """Seconds per minute of video for one flow field per frame (341x256 frames).

    Each pair is timed on its own and the fastest is kept: on a shared machine the
    minimum is the best estimate of the uncontended cost.
    """
    estimator = FlowEstimator(method)
    grays = [estimator.gray(f) for f in frames[: pairs + 1]]
    estimator(grays[0], grays[1])  # warm-up: buffers and pyramids are allocated once
    times = [
        timed(lambda a=a, b=b: estimator(a, b)) for a, b in zip(grays[:-1], grays[1:], strict=True)
    ]
    return min(times) * FRAMES_PER_MINUTE


def bench_networks(batch: int, rounds: int) -> dict[str, float]:
    """Seconds per minute of video for each I3D stream and precision.

    The four configurations are timed in turns, ``rounds`` times, keeping each one's
    fastest batch, so that load from other processes hits them alike.
    """
    configs = [(s, c, p) for s, c in (("rgb", 3), ("flow", 2)) for p in ("fp32", "bf16")]
    models = {c: InceptionI3d(c).eval() for _, c, _ in configs}
    clips = {c: torch.rand(batch, c, 16, 224, 224) * 2 - 1 for _, c, _ in configs}
    best = {f"I3D {s} {p}": float("inf") for s, _, p in configs}
    for round_index in range(rounds + 1):  # round 0 warms up and is not kept
        for stream, channels, precision in configs:
            elapsed = timed(lambda c=channels, p=precision: encode(models[c], clips[c], "cpu", p))
            key = f"I3D {stream} {precision}"
            if round_index:
                best[key] = min(best[key], elapsed)
    return {key: value / batch * SNIPPETS_PER_MINUTE for key, value in best.items()}


def cv2_threads(count: int) -> int:
    """Set OpenCV's thread count; returns the previous one."""
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    return previous


def thumos_minutes() -> float:
    if DURATIONS.is_file():
        return float(np.load(DURATIONS, allow_pickle=False).astype(float).sum()) / 60
    return THUMOS14_SECONDS / 60


def report(stages: dict[str, float]) -> None:
    minutes = thumos_minutes()
    print(f"\nTHUMOS14: 412 videos, {minutes:.0f} minutes ({minutes / 60:.1f} h) of video")
    net = stages["I3D rgb fp32"] + stages["I3D flow fp32"]
    net16 = stages["I3D rgb bf16"] + stages["I3D flow bf16"]
    for label, flow, network in (
        ("tvl1 + fp32 (the standard)", stages["flow tvl1"], net),
        ("tvl1 + bf16", stages["flow tvl1"], net16),
        ("dis + fp32", stages["flow dis"], net),
        ("dis + bf16", stages["flow dis"], net16),
    ):
        per_minute = stages["decode"] + flow + network
        print(
            f"  {label:28s} {per_minute:8.1f} s per video minute "
            f"({per_minute / 60:6.2f}x real time) -> THUMOS14 {per_minute * minutes / 3600:7.1f} h"
        )
    standard = stages["decode"] + stages["flow tvl1"] + net
    print(f"  share of TV-L1 in the standard recipe: {stages['flow tvl1'] / standard:.0%}")
    core_hours = stages["flow tvl1 1-thread"] * minutes / 3600
    print(f"  TV-L1 alone, single-threaded: {core_hours:.0f} core-hours for THUMOS14")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="decoded video length")
    parser.add_argument("--tvl1-pairs", type=int, default=6)
    parser.add_argument("--dis-pairs", type=int, default=100)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=4, help="timing rounds (fastest kept)")
    args = parser.parse_args()
    print(
        f"CPU threads: torch {torch.get_num_threads()}, cores {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f} (other work on the machine inflates times)"
    )
    stages: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stages["decode"], frames = bench_decode(args.seconds, Path(tmp), args.repeats)
    stages["flow tvl1"] = bench_flow("tvl1", frames, args.tvl1_pairs)
    stages["flow dis"] = bench_flow("dis", frames, min(args.dis_pairs, len(frames) - 1))
    threads = cv2_threads(1)  # per-core cost, for machines with many cores
    stages["flow tvl1 1-thread"] = bench_flow("tvl1", frames, args.tvl1_pairs)
    cv2_threads(threads)
    stages.update(bench_networks(args.batch, args.repeats))
    print(f"{'stage':18s} {'s per minute of 25 fps video':>30s} {'x real time':>12s}")
    for name, value in stages.items():
        print(f"{name:18s} {value:30.1f} {value / 60:12.2f}")
    print(
        f"TV-L1 / DIS: {stages['flow tvl1'] / stages['flow dis']:.0f}x; "
        f"I3D fp32 / bf16 (rgb): {stages['I3D rgb fp32'] / stages['I3D rgb bf16']:.2f}x"
    )
    report(stages)


if __name__ == "__main__":
    main()
