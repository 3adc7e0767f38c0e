"""Feature-store benchmark at ActivityNet-1.2 scale: generate, then read one training epoch.

Builds a synthetic packed store shaped like ActivityNet-1.2 (the real annotation file's
7202 videos and durations when ../shared is present: ~1.3M snippets x 2048 float32 =
10.6 GB), then iterates one epoch of the training subset as training does (VideoDataset,
80 random-perturbation segments, DataLoader batch 128, shuffle) and prints the time,
read throughput (bytes of the videos read / seconds) and peak resident memory.

The store's pages are dropped from the page cache before the epoch (posix_fadvise
DONTNEED), so the first epoch reads from disk ("cold"); `--epochs 2` also times a warm one.

    python benchmarks/bench_feature_store.py                # full scale (~11 GB on disk)
    python benchmarks/bench_feature_store.py --scale 0.02   # a quick run
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from hamnet.data.dataset import VideoDataset, collate_videos
from hamnet.data.layout import open_dataset
from hamnet.data.synthetic import make_synthetic

REPO = Path(__file__).resolve().parents[1]
ANET = Path(os.environ.get("HAMNET_SHARED", REPO.parent / "shared")) / "data" / "activitynet12"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the videos")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", action="store_true", help="keep the generated store")
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--segments", type=int, default=80)
    parser.add_argument("--epochs", type=int, default=1, help="epochs after the cold one: warm")
    return parser.parse_args()


def rss_from_proc(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM in kB from /proc/<pid>/status (0 when the process is gone)."""
    values = {"VmRSS": 0, "VmHWM": 0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in values:
                values[key] = int(rest.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def child_pids() -> list[int]:
    me, pids = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == me:
            pids.append(int(stat.parent.name))
    return pids


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def generate(out: Path, scale: float, dim: int) -> tuple[Path, float]:
    start = time.perf_counter()
    if ANET.is_dir():
        per_subset = None if scale >= 1 else max(1, math.ceil(4819 * scale))
        make_synthetic(
            out,
            like=ANET,
            feature_dim=dim,
            write_released=False,
            max_videos=per_subset,
            name="Bench",
        )
    else:
        make_synthetic(
            out,
            num_classes=100,
            num_videos=max(2, round(7202 * scale)),
            duration_range=(30.0, 200.0),
            feature_dim=dim,
            test_fraction=0.33,
            write_released=False,
            name="Bench",
        )
    return out, time.perf_counter() - start


def drop_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def one_epoch(root: Path, args: argparse.Namespace, epoch: int) -> dict[str, float]:
    annotations, store, _ = open_dataset(root, feature_dim=args.dim)
    subset = annotations.videos[0].subset  # training subset comes first in both layouts
    data = VideoDataset(annotations, store, subset, num_segments=args.segments)
    data.set_epoch(epoch)
    loader = DataLoader(
        data,
        batch_size=args.batch,
        shuffle=True,
        num_workers=args.workers,
        collate_fn=collate_videos,
        generator=torch.Generator().manual_seed(0),
    )
    bytes_read = sum(store.length(v.name) for v in data.videos) * store.dim * store.dtype.itemsize
    if epoch == 0:
        drop_page_cache(store.path / "features.bin")
    peak_sum, batches = 0, 0
    start = time.perf_counter()
    for batch in loader:
        batches += 1
        assert batch.features.shape[1:] == (args.segments, args.dim)
        pids = child_pids()
        total = rss_from_proc()["VmRSS"] + sum(rss_from_proc(p)["VmRSS"] for p in pids)
        peak_sum = max(peak_sum, total)
    seconds = time.perf_counter() - start
    return {
        "videos": len(data),
        "batches": batches,
        "seconds": seconds,
        "gigabytes": bytes_read / 1e9,
        "mb_per_s": bytes_read / 1e6 / seconds,
        "peak_sum_mb": peak_sum / 1024,
    }


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="hamnet-bench-", dir=args.workdir))
    try:
        root, gen_seconds = generate(work / "root", args.scale, args.dim)
        size = sum(p.stat().st_size for p in (root / "Bench-packed").iterdir()) / 1e9
        gen_peak = rss_from_proc()["VmHWM"] / 1024
        print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, {memory_gb():.0f} GB RAM")
        print(
            f"generated {size:.2f} GB in {gen_seconds:.1f} s ({size * 1e3 / gen_seconds:.0f} "
            f"MB/s); peak RSS so far {gen_peak:.0f} MB"
        )
        for number in range(args.epochs):
            epoch = one_epoch(root, args, number)
            print(
                f"epoch {number}: {epoch['videos']} videos, {epoch['batches']} batches of "
                f"{args.batch}, {args.workers} workers, {epoch['seconds']:.1f} s, read "
                f"{epoch['gigabytes']:.2f} GB = {epoch['mb_per_s']:.0f} MB/s "
                f"({'cold' if number == 0 else 'warm'} page cache)"
            )
        self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"peak RSS: main {self_peak:.0f} MB (ru_maxrss; /proc VmHWM "
            f"{rss_from_proc()['VmHWM'] / 1024:.0f} MB), largest worker {child_peak:.0f} MB, "
            f"main+workers sampled sum {epoch['peak_sum_mb']:.0f} MB (target < 2048 MB)"
        )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
