"""``hamnet demo``: the whole pipeline on embedded synthetic data, in minutes on a CPU.

Makes a small synthetic dataset, trains HAM-Net and the BCL-only baseline with the same
seed and schedule, evaluates both, prints the table, and draws one test video and the
mAP-vs-tIoU curves.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from hamnet.config import make_config
from hamnet.data.synthetic import make_synthetic
from hamnet.experiments.seeds import RunSummary, train_seeds
from hamnet.experiments.tables import markdown_table, write_tables
from hamnet.infer.tester import evaluate_checkpoint

# (classes, videos, epochs) of the full demo and of the reduced one used in CI
FULL = {"num_classes": 8, "num_videos": 600, "epochs": 60}
QUICK = {"num_classes": 4, "num_videos": 40, "epochs": 4}


@dataclass
class DemoResult:
    out: Path
    rows: list[RunSummary]
    table: Path
    figures: list[Path]
    seconds: float


def default_demo_dir() -> Path:
    return Path(os.environ.get("HAMNET_DEMO_DIR", Path.home() / "hamnet-demo")).resolve()


def run_demo(out: Path | None = None, *, quick: bool = False, progress: bool = True) -> DemoResult:
    started = time.perf_counter()
    quick = quick or os.environ.get("HAMNET_DEMO_QUICK") == "1"
    size = QUICK if quick else FULL
    out = out or default_demo_dir()
    if quick:
        out = out / "quick"  # never mixed with a full-size demo's data and runs
    print(f"[1/4] synthetic dataset ({size['num_videos']} videos) -> {out / 'data'}")
    root = make_synthetic(
        out / "data",
        num_classes=size["num_classes"],
        num_videos=size["num_videos"],
        feature_dim=64,
        seed=0,
        progress=progress,
    )
    rows = []
    for step, (variant, label) in enumerate([("all", "HAM-Net"), ("bcl", "BCL only")], 2):
        print(f"[{step}/4] training {label} ({size['epochs']} epochs)")
        config = make_config("demo", variant, [f"train.epochs={size['epochs']}"])
        rows.append(
            # a rerun reuses finished trainings (same data and config) instead of redoing them
            train_seeds(
                config,
                root,
                out / "runs" / variant,
                [0],
                label=label,
                resume=True,
                progress=progress,
                announce_fresh=False,
            )
        )
    table, _ = write_tables(rows, out / "results", title="hamnet demo (synthetic data)")
    print("[4/4] figures")
    figures = _figures(out, root, rows)
    print()
    print(markdown_table(rows, "hamnet demo (synthetic data)"))
    seconds = time.perf_counter() - started
    _print_locations(out, table, figures, seconds)
    return DemoResult(out, rows, table, figures, seconds)


def _figures(out: Path, root: Path, rows: list[RunSummary]) -> list[Path]:
    from hamnet.data.layout import open_dataset
    from hamnet.viz.outputs import load_cas_npz
    from hamnet.viz.plots import plot_map_vs_tiou, plot_video

    cas_dir = out / "cas"
    evaluation = evaluate_checkpoint(
        rows[0].run_dirs[0] / "last.pt",
        root,
        out / "detections.json",
        save_cas=cas_dir,
        progress=False,
    )
    annotations, _, _ = open_dataset(root)
    video = max(
        (v for v in annotations.subset("test") if v.segments),
        key=lambda v: len(v.segments),
    )
    found = [d for d in evaluation.detections if d.video == video.name]
    figures = plot_video(
        load_cas_npz(cas_dir / f"{video.name}.npz"),
        [out / "video.png", out / "video.svg"],
        title=f"{video.name} (HAM-Net)",
        ground_truth=video.segments,
        detections=found,
    )
    runs = {row.label: (row.tiou, row.mAP) for row in rows}
    figures += plot_map_vs_tiou(runs, [out / "map_vs_tiou.png"], protocol=rows[0].protocol)
    return figures


def _print_locations(out: Path, table: Path, figures: list[Path], seconds: float) -> None:
    print(f"finished in {seconds:.0f} s. Everything is under {out}:")
    print(f"  data (released layout):   {out / 'data'}")
    print(f"  runs (config, metrics, checkpoints): {out / 'runs'}")
    print(f"  table: {table} (and .csv)")
    print(f"  detections: {out / 'detections.json'}")
    for figure in figures:
        print(f"  figure: {figure}")
