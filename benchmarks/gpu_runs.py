"""Whole-process GPU benchmarks: ``hamnet train`` / ``hamnet ablate`` timed from start to
results written, on synthetic D = 2048 features laid on the real annotations.

Steps, each a subprocess with its own timeout (a step that runs out is killed and
recorded as such; the steps after it still run, and the JSON is rewritten after each):

    synth-thumos14       hamnet synth --like <annotations>/thumos14 --dim 2048 --no-released
    thumos14-fp32        hamnet train --preset thumos14 (100 epochs + test), fp32 (TF32 convs)
    thumos14-bf16        the same in bf16
    torchrun-nccl        torchrun --nproc-per-node 1 -m hamnet.cli train (NCCL start-up), 2 epochs
    synth-activitynet12  hamnet synth --like <annotations>/activitynet12 --dim 2048
    activitynet12        hamnet train --preset activitynet12 (20 epochs + test)
    ablate-thumos14      hamnet ablate --preset thumos14 --seeds 0,1,2 (every row)
    student-thumos14     hamnet ablate --preset thumos14 --methods co2net,co2net+student
                         --seeds 0 (CO2-Net, its pseudo labels, FuSTAL's TriDet student)

Each step reports the whole-process wall time against the issue's target, epochs per
second, GPU utilisation (nvidia-smi sampled every 0.5 s in a thread, when present), peak
GPU memory (torch's allocator peak from the run's timing.json, and nvidia-smi's largest
memory.used), the checkpoint-writing share of the wall time, the data placement and the
average mAP. Results: ``<out>/gpu_runs.json``, plus each step's log under ``<out>/logs``.

    python benchmarks/gpu_runs.py --annotations ../shared/data --out /tmp/gpu-bench
    python benchmarks/gpu_runs.py --annotations ../shared/data --out /tmp/b --tiny  # CPU dry run

``benchmarks/gpu_all.sh`` runs every step; ``gpu_thumos14.py`` and ``gpu_activitynet12.py``
run their dataset's steps.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

STEPS = (
    "synth-thumos14",
    "thumos14-fp32",
    "thumos14-bf16",
    "torchrun-nccl",
    "synth-activitynet12",
    "activitynet12",
    "ablate-thumos14",
    "student-thumos14",
)
TARGETS_S = {"thumos14-fp32": 30, "thumos14-bf16": 20, "activitynet12": 90, "ablate-thumos14": 300}
TIMEOUTS_S = {
    "synth-thumos14": 300,
    "thumos14-fp32": 240,
    "thumos14-bf16": 240,
    "torchrun-nccl": 240,
    "synth-activitynet12": 900,
    "activitynet12": 600,
    "ablate-thumos14": 900,
    "student-thumos14": 1200,
}


@dataclass
class Sizes:
    """Full size (the issue's figures) or ``--tiny`` (a CPU dry run of the same steps)."""

    dim: int = 2048
    max_videos: int | None = None
    thumos_epochs: int = 100
    anet_epochs: int = 20
    seeds: str = "0,1,2"
    extra: list[str] = field(default_factory=list)


TINY = Sizes(
    dim=32,
    max_videos=8,
    thumos_epochs=2,
    anet_epochs=2,
    seeds="0,1,2",
    extra=["data.num_segments=40", "model.attention_dim=16"],
)


class GpuSampler:
    """nvidia-smi utilisation and memory, sampled in a thread while a step runs."""

    def __init__(self, interval_ms: int = 500):
        self.samples: list[tuple[float, float]] = []
        self.command = shutil.which("nvidia-smi")
        self.interval_ms = interval_ms
        self.process: subprocess.Popen | None = None
        self.thread: threading.Thread | None = None

    def __enter__(self) -> GpuSampler:
        if self.command:
            query = "--query-gpu=utilization.gpu,memory.used"
            self.process = subprocess.Popen(
                [self.command, query, "--format=csv,noheader,nounits", f"-lms={self.interval_ms}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            parts = [p.strip() for p in line.split(",")]
            try:
                # first GPU only (the one the run uses unless told otherwise)
                self.samples.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                continue

    def __exit__(self, *exc) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        if self.thread is not None:
            self.thread.join(timeout=10)

    def summary(self) -> dict:
        if not self.command:
            return {"gpu_util": "nvidia-smi not found"}
        if not self.samples:
            return {"gpu_util": "no samples"}
        busy = [s[0] for s in self.samples]
        return {
            "gpu_util_mean_pct": round(sum(busy) / len(busy), 1),
            "gpu_util_max_pct": max(busy),
            "gpu_util_samples": len(busy),
            "nvidia_smi_peak_memory_GiB": round(max(s[1] for s in self.samples) / 1024, 2),
        }


def run_step(argv: list[str], log: Path, timeout: float) -> dict:
    """Run ``argv`` to the end or ``timeout``; wall time and exit status."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(log, "w") as handle, GpuSampler() as sampler:
        child = subprocess.Popen(
            argv, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            status = child.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGTERM)  # trainings save last.pt on SIGTERM
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
            status, timed_out = child.returncode, True
    result = {
        "command": " ".join(argv),
        "wall_s": round(time.perf_counter() - started, 2),
        "exit_status": status,
        "timed_out": timed_out,
        "timeout_s": timeout,
        "log": str(log),
    }
    result.update(sampler.summary())
    if status != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        result["log_tail"] = tail
    return result


def run_figures(run_dirs: list[Path], wall_s: float) -> dict:
    """Epochs, mAP, checkpoint time and GPU memory from the runs' own files."""
    epochs = checkpoint_s = 0.0
    peaks, placements, finals = [], set(), []
    for run_dir in run_dirs:
        metrics = run_dir / "metrics.jsonl"
        if metrics.is_file():
            rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()]
            epochs += len(rows)
            if rows and "average_mAP" in rows[-1]:
                finals.append(rows[-1]["average_mAP"])
        timing = run_dir / "timing.json"
        if timing.is_file():
            record = json.loads(timing.read_text())
            checkpoint_s += record["checkpoint_s"]
            placements.add(record["placement"])
            if "peak_gpu_memory_GiB" in record:
                peaks.append(record["peak_gpu_memory_GiB"])
    figures = {
        "runs": len(run_dirs),
        "epochs_done": int(epochs),
        "epochs_per_s": round(epochs / wall_s, 3) if wall_s else None,
        "checkpoint_s": round(checkpoint_s, 2),
        "checkpoint_share_of_wall": round(checkpoint_s / wall_s, 4) if wall_s else None,
        "placement": sorted(placements),
        "peak_gpu_memory_GiB": max(peaks) if peaks else None,
    }
    if finals:
        figures["average_mAP"] = round(sum(finals) / len(finals), 5)
    return figures


def train_dirs(root: Path) -> list[Path]:
    """Every run folder (one holding config.yaml) under ``root``."""
    return sorted(p.parent for p in root.rglob("config.yaml"))


def step_commands(step: str, args: argparse.Namespace, sizes: Sizes, work: Path):
    """``(argv, folder whose runs to read)`` of one step."""
    hamnet = [sys.executable, "-m", "hamnet.cli"]
    device = [f"train.device={args.device}"]
    common = [f"data.feature_dim={sizes.dim}", *device, *sizes.extra, *args.set]
    if step.startswith("synth-"):
        name = step.removeprefix("synth-")
        argv = [*hamnet, "synth", "--out", str(work / "data" / name)]
        argv += ["--like", str(args.annotations / name), "--dim", str(sizes.dim), "--no-released"]
        if sizes.max_videos:
            argv += ["--max-videos", str(sizes.max_videos)]
        return argv, None
    if step.startswith("thumos14-"):
        precision = step.removeprefix("thumos14-")
        overrides = [f"train.epochs={sizes.thumos_epochs}", f"train.precision={precision}"]
        return _train(hamnet, "thumos14", work, step, [*common, *overrides])
    if step == "torchrun-nccl":
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        torchrun += ["--nproc-per-node", "1", "-m", "hamnet.cli"]
        argv, out = _train(torchrun, "thumos14", work, step, [*common, "train.epochs=2"])
        return argv, out
    if step == "activitynet12":
        overrides = [f"train.epochs={sizes.anet_epochs}"]
        if sizes.extra:  # tiny: ActivityNet's 80 segments and its smoothing need no change
            overrides.append("data.num_segments=20")
        return _train(hamnet, "activitynet12", work, step, [*common, *overrides])
    if step == "ablate-thumos14":
        out = work / "runs" / step
        overrides = [*common, f"train.epochs={sizes.thumos_epochs}"]
        argv = [*hamnet, "ablate", "--preset", "thumos14", "--data", str(work / "data/thumos14")]
        argv += ["--out", str(out), "--seeds", sizes.seeds]
        argv += [arg for item in overrides for arg in ("--set", item)]
        if args.jobs:
            argv += ["--jobs", str(args.jobs)]
        return argv, out
    if step == "student-thumos14":
        out = work / "runs" / step
        preset = "demo" if sizes.extra else "thumos14"  # tiny: the student's CPU-sized preset
        argv = [*hamnet, "ablate", "--preset", preset, "--data", str(work / "data/thumos14")]
        argv += ["--out", str(out), "--seeds", "0", "--methods", "co2net,co2net+student"]
        named = ["data.name=Thumos14reduced"] if sizes.extra else []
        argv += [arg for item in [*common, *named] for arg in ("--set", item)]
        return argv, out
    raise ValueError(step)


def _train(hamnet: list[str], preset: str, work: Path, step: str, overrides: list[str]):
    out = work / "runs" / step
    argv = [*hamnet, "train", "--preset", preset, "--data", str(work / "data" / preset)]
    argv += ["--run-dir", str(out)]
    argv += [arg for item in overrides for arg in ("--set", item)]
    return argv, out


def environment(device: str) -> dict:
    info = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device,
        "python": sys.version.split()[0],
    }
    try:
        import torch

        info["torch"] = torch.__version__
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name()
            info["gpu_memory_GiB"] = round(torch.cuda.mem_get_info()[1] / 2**30, 1)
    except Exception as error:  # the report should still come back
        info["torch"] = f"unavailable: {error}"
    return info


def main(argv: list[str] | None = None, default_steps: tuple[str, ...] = STEPS) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annotations", type=Path, required=True, help="holds thumos14/ ...")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--work", type=Path, help="data and runs (default: <out>/work)")
    parser.add_argument("--steps", default=",".join(default_steps), help="comma-separated")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--jobs", type=int, help="--jobs of the ablate step (default: fits)")
    parser.add_argument("--tiny", action="store_true", help="CPU dry run at tiny sizes")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        help="a config override for every training, e.g. data.placement=device",
    )
    parser.add_argument(
        "--timeout-scale", type=float, default=1.0, help="multiply every step's timeout"
    )
    args = parser.parse_args(argv)
    if args.tiny and args.device == "cuda":
        args.device = "cpu"
    sizes = TINY if args.tiny else Sizes()
    work = args.work or args.out / "work"
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        parser.error(f"unknown step {unknown[0]!r} (known: {', '.join(STEPS)})")
    report = {"environment": environment(args.device), "tiny": args.tiny, "steps": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    for step in steps:
        command, runs = step_commands(step, args, sizes, work)
        if runs is not None and runs.exists():
            shutil.rmtree(runs)  # a fresh run each time: no resume, no refusal
        timeout = TIMEOUTS_S[step] * args.timeout_scale
        result = run_step(command, args.out / "logs" / f"{step}.log", timeout)
        if runs is not None:
            result.update(run_figures(train_dirs(runs), result["wall_s"]))
        if step in TARGETS_S:
            result["target_s"] = TARGETS_S[step]
            result["meets_target"] = result["exit_status"] == 0 and (
                result["wall_s"] <= TARGETS_S[step]
            )
        report["steps"][step] = result
        print(f"{step}: {json.dumps(result)}", flush=True)
        (args.out / "gpu_runs.json").write_text(json.dumps(report, indent=1) + "\n")
    print(summary_table(report), flush=True)
    return report


def summary_table(report: dict) -> str:
    lines = [
        "| step | wall s (target) | epochs/s | GPU util mean % | peak GPU GiB | ckpt share | mAP |",
        "|---|---|---|---|---|---|---|",
    ]
    for step, r in report["steps"].items():
        if step.startswith("synth-"):
            continue
        wall = f"{r['wall_s']}" + (f" ({r['target_s']})" if "target_s" in r else "")
        if r["exit_status"] != 0:
            wall += " TIMED OUT" if r["timed_out"] else f" FAILED ({r['exit_status']})"
        average = r.get("average_mAP")
        cells = [
            step,
            wall,
            r.get("epochs_per_s"),
            r.get("gpu_util_mean_pct", r.get("gpu_util")),
            r.get("peak_gpu_memory_GiB"),
            r.get("checkpoint_share_of_wall"),
            f"{100 * average:.1f}" if average is not None else None,
        ]
        lines.append("| " + " | ".join("—" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
