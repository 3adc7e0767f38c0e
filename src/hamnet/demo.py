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
from hamnet.diagnose.sources import ensure_test_outputs
from hamnet.errors import RESUME_HINT, TrainingInterrupted
from hamnet.experiments.seeds import RunSummary, train_seeds
from hamnet.experiments.tables import markdown_table, write_tables
from hamnet.io import atomic_write_text
from hamnet.localize.detections import load_detections

# (classes, videos, epochs) of the full demo and of the reduced one used in CI
FULL = {"num_classes": 8, "num_videos": 600, "epochs": 60}
QUICK = {"num_classes": 4, "num_videos": 40, "epochs": 4}
QUICK_TITLE = (
    "hamnet demo --quick (synthetic data; smoke test: {epochs} epochs on {num_videos} "
    "videos, its numbers mean nothing, run plain 'hamnet demo' for the demo's table)"
)


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
    try:
        rows = _train_both(out, root, size, progress)
    except TrainingInterrupted as stop:
        raise TrainingInterrupted(str(stop).replace(RESUME_HINT, DEMO_HINT), stop.signum) from None
    title = QUICK_TITLE.format(**size) if quick else "hamnet demo (synthetic data)"
    table, _ = write_tables(rows, out / "results", title=title)
    print("[4/4] figures")
    figures, video = _figures(out, root, rows)
    print()
    print(markdown_table(rows, title))
    seconds = time.perf_counter() - started
    _print_locations(out, table, figures, seconds)
    _print_next_steps(out, root, video)
    return DemoResult(out, rows, table, figures, seconds)


DEMO_HINT = "rerun the same 'hamnet demo' command to continue (it resumes by itself)"


def _train_both(out: Path, root: Path, size: dict, progress: bool) -> list[RunSummary]:
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
    return rows


def _figures(out: Path, root: Path, rows: list[RunSummary]) -> tuple[list[Path], str]:
    from hamnet.data.layout import open_dataset
    from hamnet.viz.outputs import load_cas_npz
    from hamnet.viz.plots import plot_map_vs_tiou, plot_video

    # the run's own test outputs (RUN/test/), which 'hamnet analyze RUN' and 'hamnet report
    # RUN' then reuse instead of testing again
    outputs = ensure_test_outputs(rows[0].run_dirs[0], root, progress=False)
    cas_dir = outputs.cas_dir
    detections = load_detections(outputs.detections)
    atomic_write_text(out / "detections.json", outputs.detections.read_text(encoding="utf-8"))
    annotations, _, _ = open_dataset(root)
    video = max(
        (v for v in annotations.subset("test") if v.segments),
        key=lambda v: len(v.segments),
    )
    found = [d for d in detections if d.video == video.name]
    figures = plot_video(
        load_cas_npz(cas_dir / f"{video.name}.npz"),
        [out / "video.png", out / "video.svg"],
        title=f"{video.name} (HAM-Net)",
        ground_truth=video.segments,
        detections=found,
    )
    runs = {row.label: (row.tiou, row.mAP) for row in rows}
    figures += plot_map_vs_tiou(runs, [out / "map_vs_tiou.png"], protocol=rows[0].protocol)
    return figures, video.name


def _print_next_steps(out: Path, root: Path, video: str) -> None:
    """The README's next commands, with this demo's own paths and drawn video."""
    gt, detections = root / "Synthetic-gt.json", out / "detections.json"
    print("next steps:")
    print(
        f"  hamnet plot video --npz {out / 'runs' / 'all' / 'test' / 'cas' / (video + '.npz')} "
        f"--gt {gt} "
        f"--pred {detections} --out fig.png"
    )
    print(f"  hamnet analyze --gt {gt} --pred {detections} --out {out / 'diagnosis'}")
    print(f"  hamnet report {out / 'runs' / 'all'}")


def _print_locations(out: Path, table: Path, figures: list[Path], seconds: float) -> None:
    print(f"finished in {seconds:.0f} s. Everything is under {out}:")
    print(f"  data (released layout):   {out / 'data'}")
    print(f"  runs (config, metrics, checkpoints): {out / 'runs'}")
    print(f"  table: {table} (and .csv)")
    print(f"  detections: {out / 'detections.json'}")
    for figure in figures:
        print(f"  figure: {figure}")
