"""Speed of the ActivityNet-protocol evaluator at ActivityNet-1.2 validation scale.

2383 videos, 100 classes, about 1.5 ground-truth segments per video (the real file's
statistics), 100 detections per video (jittered ground truth, random segments of the
video's classes and of other classes), tIoU 0.50:0.05:0.95. Three figures:

1. the whole ``hamnet eval`` process (a subprocess: interpreter start, imports, reading
   and checking both JSON files, evaluating, writing the result JSON), best of
   ``--repeats``, and, with ``--official DIR`` (a checkout of github:activitynet/ActivityNet),
   the official evaluator's whole process on the same files in the same run
   (``Evaluation/eval_detection.py`` converted to Python 3 by lib2to3 in a temporary
   folder, its ``astype(np.float)`` written ``np.float64`` for numpy >= 1.24, run by
   ``--official-python``, which needs pandas and joblib; no blocked-video download),
   both wall and CPU times, their ratios and whether both give the same mAP to 1e-12;
   without it, the ratio to the 84 s measured once at this scale;
2. the vectorised evaluator alone on data in memory;
3. the per-detection loop of the official code (tests/evaluate/loop_reference.py) on a
   subset of videos, against the vectorised evaluator on the same subset.

    python benchmarks/bench_eval.py [--videos 2383] [--loop-videos 150] [--seed 0]
        [--official ACTIVITYNET_CHECKOUT --official-python PYTHON]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hamnet.data.annotations import AnnotationSet, Segment, Video, save_gt_json
from hamnet.evaluate.detection_map import evaluate_detections
from hamnet.localize.detections import Detection, save_detections

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "evaluate"))
from loop_reference import protocol_map  # noqa: E402

TIOU = [round(0.5 + 0.05 * i, 2) for i in range(10)]
OFFICIAL_SECONDS = 84.0  # the official evaluator, whole process, at full scale (see docs)
QUIET_OFFICIAL_SECONDS = 54.6  # the same on a quiet 2-core machine (issue 25)


def synthetic_ground_truth(rng: np.random.Generator, num_videos: int, num_classes: int):
    classes = [f"class_{c:03d}" for c in range(num_classes)]
    videos = []
    for v in range(num_videos):
        duration = float(rng.uniform(30, 240))
        label = classes[rng.integers(num_classes)]
        count = 1 + rng.poisson(0.5)
        segments = []
        for _ in range(count):
            length = duration * rng.uniform(0.05, 0.6)
            start = rng.uniform(0, duration - length)
            segments.append(Segment(round(start, 2), round(start + length, 2), label))
        videos.append(Video(f"v_{v:05d}", "validation", duration, (label,), tuple(segments)))
    return AnnotationSet(classes, videos)


def synthetic_detections(rng, annotations: AnnotationSet, per_video: int) -> list[Detection]:
    detections = []
    for video in annotations.videos:
        for i in range(per_video):
            if i < len(video.segments) * 5:
                seg = video.segments[i % len(video.segments)]
                jitter = rng.normal(0, 0.15 * (seg.end - seg.start), 2)
                start, end, label = seg.start + jitter[0], seg.end + jitter[1], seg.label
            else:
                label = video.labels[0] if rng.random() < 0.7 else rng.choice(annotations.classes)
                start, end = np.sort(rng.uniform(0, video.duration, 2))
            start, end = max(0.0, float(start)), float(max(start, end))
            detections.append(Detection(video.name, str(label), float(rng.random()), start, end))
    return detections


def as_tuples(annotations: AnnotationSet, detections: list[Detection]):
    gt = [(v.name, s.label, s.start, s.end) for v in annotations.videos for s in v.segments]
    dets = [(d.video, d.label, d.score, d.start, d.end) for d in detections]
    return gt, dets


def time_whole_process(gt, dets, repeats: int, cached: bool) -> tuple[float, float, dict]:
    """Best wall time and best CPU time (user + sys, children included) of ``hamnet eval``
    as a subprocess, and the result it wrote. On a shared machine the CPU time is the
    steadier figure.

    ``cached``: compiled bytecode kept between runs (``PYTHONPYCACHEPREFIX``, a temporary
    folder, after one untimed run), as in an installed package; otherwise the environment
    as inherited (with ``PYTHONDONTWRITEBYTECODE=1`` and no ``__pycache__`` beside the
    sources, every run compiles hamnet's 30-odd modules again)."""
    with tempfile.TemporaryDirectory() as folder:
        gt_path, pred_path, out = (Path(folder) / n for n in ("gt.json", "pred.json", "r.json"))
        save_gt_json(gt, gt_path)
        save_detections(pred_path, dets)
        command = [sys.executable, "-m", "hamnet.cli", "eval", "--gt", str(gt_path)]
        command += ["--pred", str(pred_path), "--tiou", "0.5:0.95:0.05", "--json", str(out)]
        env = dict(os.environ)
        if cached:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(folder) / "bytecode")
            subprocess.run(command, check=True, capture_output=True, env=env)
        times, cpu = [], []
        for _ in range(repeats):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        return min(times), min(cpu), json.loads(out.read_text())


OFFICIAL_DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from eval_detection import ANETdetection
tiou = [round(0.5 + 0.05 * i, 2) for i in range(10)]
detection = ANETdetection(sys.argv[2], sys.argv[3], subset="validation",
                          tiou_thresholds=tiou, verbose=False, check_status=False)
detection.evaluate()
print(json.dumps([float(v) for v in detection.mAP]))
"""


def time_official(gt, dets, checkout: Path, python: str) -> tuple[float, float, list[float]]:
    """The official evaluator's whole process (Python 3 by lib2to3) on the same data:
    wall time, CPU time (user + sys, its joblib workers included) and mAP."""
    with tempfile.TemporaryDirectory() as folder:
        code = Path(folder) / "code"
        code.mkdir()
        for name in ("eval_detection.py", "utils.py"):
            (code / name).write_bytes((checkout / "Evaluation" / name).read_bytes())
        subprocess.run(
            [sys.executable, "-m", "lib2to3", "-w", "-n", str(code)],
            check=True,
            capture_output=True,
        )
        _drop_removed_numpy_alias(code / "eval_detection.py")
        gt_path, pred_path = Path(folder) / "gt.json", Path(folder) / "pred.json"
        save_gt_json(gt, gt_path)
        tree = json.loads(gt_path.read_text())
        tree.update(taxonomy=[], version="1.2")  # the fields the official reader requires
        gt_path.write_text(json.dumps(tree))
        save_detections(pred_path, dets)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [python, "-c", OFFICIAL_DRIVER, str(code), str(gt_path), str(pred_path)],
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        return wall, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def _drop_removed_numpy_alias(path: Path) -> None:
    """``np.float`` (the builtin float, i.e. float64 as a dtype) is gone from numpy >= 1.24."""
    path.write_text(path.read_text().replace(".astype(np.float)", ".astype(np.float64)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2383)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--per-video", type=int, default=100)
    parser.add_argument("--loop-videos", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--official", type=Path, help="a checkout of activitynet/ActivityNet")
    parser.add_argument("--official-python", default=sys.executable)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    gt = synthetic_ground_truth(rng, args.videos, args.classes)
    dets = synthetic_detections(rng, gt, args.per_video)
    print(f"{len(gt.videos)} videos, {len(dets)} detections, {len(TIOU)} thresholds")
    load = os.getloadavg()[0]
    whole, cpu, written = time_whole_process(gt, dets, args.repeats, cached=True)
    print(
        f"hamnet eval, whole process: {whole:.3f} s wall, {cpu:.3f} s CPU (best of "
        f"{args.repeats}, bytecode cached; load average {load:.1f} -> {os.getloadavg()[0]:.1f})"
    )
    plain, plain_cpu, _ = time_whole_process(gt, dets, args.repeats, cached=False)
    flag = os.environ.get("PYTHONDONTWRITEBYTECODE") or "unset"
    print(
        f"  the environment as inherited (PYTHONDONTWRITEBYTECODE {flag}): {plain:.3f} s wall, "
        f"{plain_cpu:.3f} s CPU"
    )
    official, source = OFFICIAL_SECONDS, "measured once at this scale"
    if args.official:
        official, official_cpu, official_map = time_official(
            gt, dets, args.official, args.official_python
        )
        gap = float(np.abs(np.array(official_map) - np.array(written["mAP"])).max())
        source = f"this run, same files; largest mAP difference {gap:.1e}"
        print(
            f"official evaluator, whole process: {official:.1f} s wall, {official_cpu:.1f} s "
            f"CPU (load average {os.getloadavg()[0]:.1f} after it) -> {official_cpu / cpu:.0f}x "
            f"faster by CPU time"
        )
    print(f"official evaluator {official:.1f} s ({source}) -> {official / whole:.0f}x by wall time")
    print(
        f"against the official's {QUIET_OFFICIAL_SECONDS} s on a quiet machine (issue 25): "
        f"{QUIET_OFFICIAL_SECONDS / whole:.1f}x by wall time, {QUIET_OFFICIAL_SECONDS / cpu:.1f}x "
        "against this run's CPU time"
    )
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = evaluate_detections(gt, dets, tiou=TIOU, protocol="anet")
        times.append(time.perf_counter() - start)
    print(f"vectorised evaluator, full scale: {min(times):.3f} s (best of 3)")
    print(f"  average mAP {100 * result.average_mAP:.2f}")
    same = np.array_equal(written["mAP"], result.mAP)
    print(f"  whole-process result identical to the in-memory one: {same}")
    small = AnnotationSet(gt.classes, gt.videos[: args.loop_videos])
    names = {v.name for v in small.videos}
    small_dets = [d for d in dets if d.video in names]
    start = time.perf_counter()
    fast = evaluate_detections(small, small_dets, tiou=TIOU, protocol="anet")
    fast_s = time.perf_counter() - start
    start = time.perf_counter()
    slow = protocol_map("anet", *as_tuples(small, small_dets), TIOU)
    loop_s = time.perf_counter() - start
    gap = float(np.abs(np.array(fast.mAP) - slow).max())
    print(f"subset of {len(small.videos)} videos ({len(small_dets)} detections):")
    print(
        f"  per-detection loop {loop_s:.3f} s, vectorised {fast_s:.4f} s, "
        f"ratio {loop_s / fast_s:.0f}x"
    )
    print(f"  max |mAP difference| {gap:.2e}")


if __name__ == "__main__":
    main()
