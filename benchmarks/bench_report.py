"""Size and speed of ``hamnet report`` and ``hamnet analyze`` at ActivityNet-1.2 scale.

The real ActivityNet-1.2 annotations (2383 validation videos, 100 classes) with made-up
test outputs: 100 detections per video (jittered ground truth and random segments),
T-CAS/attention .npz files of the videos' real lengths (16 frames per snippet at 25 fps).
Measures the diagnosis, the page build, the HTML size and, when Chromium and Selenium are
present, the page's load and one video selection in headless Chromium.

    python benchmarks/bench_report.py --annotations ANET12_ANNOTATION_FOLDER [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from hamnet.data.annotations import save_gt_json
from hamnet.data.released import load_released_annotations
from hamnet.diagnose.command import AnalysisRequest, analyze
from hamnet.diagnose.sources import TestOutputs
from hamnet.io import atomic_write_json
from hamnet.localize.detections import Detection, save_detections
from hamnet.report.build import collect, render

SNIPPET = 16 / 25


def make_run(annotations, run: Path, rng: np.random.Generator) -> None:
    outputs = TestOutputs.of(run)
    outputs.cas_dir.mkdir(parents=True)
    videos = [v for v in annotations.videos if v.subset == "validation"]
    detections = []
    classes = annotations.classes
    for video in videos:
        for _ in range(100):
            if video.segments and rng.random() < 0.5:
                seg = video.segments[rng.integers(len(video.segments))]
                shift = rng.normal(0, 0.2 * (seg.end - seg.start) + 0.1, size=2)
                start, end = sorted((max(seg.start + shift[0], 0), max(seg.end + shift[1], 0)))
                label = seg.label if rng.random() < 0.8 else classes[rng.integers(len(classes))]
            else:
                start = rng.uniform(0, video.duration)
                end = min(start + rng.uniform(1, 60), video.duration)
                label = classes[rng.integers(len(classes))]
            detections.append(Detection(video.name, label, float(rng.random()), start, end))
        length = max(int(video.duration / SNIPPET), 1)
        np.savez(
            outputs.cas_dir / f"{video.name}.npz",
            cas=rng.normal(size=(length, len(classes) + 1)).astype(np.float32),
            attention=rng.random(length).astype(np.float32),
            actionness=rng.random(length).astype(np.float32),
            video_scores=rng.random(len(classes)).astype(np.float32),
            classes=np.array(classes),
            snippet_seconds=np.array(SNIPPET),
            source=np.array("attention"),
        )
    save_detections(outputs.detections, detections)
    save_gt_json(annotations, outputs.ground_truth)
    tiou = [round(0.5 + 0.05 * i, 2) for i in range(10)]
    result = {"protocol": "anet", "tiou": tiou, "mAP": [0.3] * 10, "average_mAP": 0.3}
    atomic_write_json(outputs.result, {**result, "per_class": {c: [0.3] * 10 for c in classes}})
    atomic_write_json(outputs.info, {"subset": "validation", "preset": "activitynet12"})


def browse(page: Path) -> dict:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        return {}
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return {}
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        started = time.perf_counter()
        driver.get(page.as_uri())
        loaded = time.perf_counter() - started
        rows = driver.find_elements(By.CSS_SELECTOR, "#video-table tbody tr")
        started = time.perf_counter()
        rows[len(rows) // 2].click()
        driver.find_elements(By.CSS_SELECTOR, "#timeline polyline")
        selected = time.perf_counter() - started
        return {"page_load_s": round(loaded, 2), "select_video_s": round(selected, 3)}
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--annotations", required=True, help="ActivityNet-1.2 annotation folder (released layout)"
    )
    parser.add_argument("--out", help="keep the made-up run here (default: a temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="keep the run already in --out")
    args = parser.parse_args()
    annotations = load_released_annotations(Path(args.annotations))
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp())
    run = root / "run"
    if not (args.reuse and run.is_dir()):
        make_run(annotations, run, np.random.default_rng(args.seed))
    started = time.perf_counter()
    analyze(AnalysisRequest(out=run / "diagnosis", run_dir=run))  # rewritten every time
    analyze_s = time.perf_counter() - started
    started = time.perf_counter()
    page = render(collect(run, TestOutputs.of(run)))
    (run / "report.html").write_text(page, encoding="utf-8")
    report_s = time.perf_counter() - started
    measured = {
        "videos": sum(v.subset == "validation" for v in annotations.videos),
        "analyze_s": round(analyze_s, 1),
        "report_build_s": round(report_s, 1),
        "html_MB": round(len(page.encode()) / 1e6, 2),
        **browse(run / "report.html"),
    }
    print(json.dumps(measured))
    if not args.out:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
