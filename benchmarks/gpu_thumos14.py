"""The THUMOS14 preset end to end on one GPU: synthetic D = 2048 features laid on the real
THUMOS14 annotations, 100 epochs in fp32 and in bf16, then the test split.

Prints and writes (``--out``/gpu_thumos14.json) the wall time of each training, the peak
GPU memory and the average mAP (anet protocol, tIoU 0.1:0.7). The goal for the whole run
is under 2 minutes on an H100.

The device machine receives only the repository, so copy the annotations in first and
carry them (``.device/`` is git-ignored):

    mkdir -p .device && cp -r ../shared/data/thumos14 .device/thumos14
    # run with carry [".device"]:
    python benchmarks/gpu_thumos14.py --annotations .device/thumos14 --out "$OUT"

On the CPU, a smoke run: ``--device cpu --dim 64 --epochs 1 --max-videos 5``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from hamnet.config import make_config
from hamnet.data.synthetic import make_synthetic
from hamnet.engine.trainer import train


def run(args: argparse.Namespace, work: Path) -> dict:
    started = time.perf_counter()
    root = make_synthetic(
        work / "data",
        like=args.annotations,
        feature_dim=args.dim,
        seed=0,
        max_videos=args.max_videos,
        write_released=False,
        progress=False,
    )
    report = {"device": args.device, "synthesis_s": round(time.perf_counter() - started, 1)}
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name()
    for precision in ("fp32", "bf16"):
        overrides = [
            f"train.epochs={args.epochs}",
            f"train.precision={precision}",
            f"train.device={args.device}",
            f"data.feature_dim={args.dim}",
        ]
        if args.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        result = train(
            make_config("thumos14", "all", overrides), root, work / precision, progress=False
        )
        report[precision] = {
            "train_and_test_s": round(time.perf_counter() - started, 1),
            "average_mAP": result.final["average_mAP"],
            "mAP": result.final["mAP"],
            "peak_gpu_memory_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2)
            if args.device.startswith("cuda")
            else None,
        }
        print(precision, json.dumps(report[precision]), flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--max-videos", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report = run(args, Path(tmp))
    print(json.dumps(report, indent=1))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "gpu_thumos14.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
