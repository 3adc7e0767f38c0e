"""Extraction over several processes or GPUs (torchrun) and merging the per-rank stores.

Every rank reads the same video list and takes every WORLD_SIZE-th video, writing its own
store ``STORE.rank{r}`` (resumable like any store). After a barrier rank 0 copies the parts
into STORE, skipping names it already holds, so nothing is lost or duplicated even when a
rerun uses a different number of ranks; the parts are removed only after the final commit.
The barrier runs on a gloo group with a long timeout: ranks can finish hours apart.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as tdist

from hamnet.data.features import INDEX_FILE, PackedFeatureStore, PackedFeatureWriter
from hamnet.devices import resolve_device
from hamnet.errors import DataError
from hamnet.extract.store_meta import check_recipe, read_empty, write_empty
from hamnet.extract.video import import_cv2

BARRIER_TIMEOUT = timedelta(days=7)


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: object | None = None
    owns_process_group: bool = False

    @classmethod
    def from_env(cls) -> DistContext:
        """RANK / WORLD_SIZE / LOCAL_RANK as set by torchrun (one process without them)."""
        env = os.environ
        return cls(
            int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))
        )

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def start(self) -> None:
        """Join (or reuse) the process group and make a gloo group for the long barrier."""
        if not tdist.is_initialized():
            tdist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
            self.owns_process_group = True
        else:
            self.group = tdist.new_group(backend="gloo", timeout=BARRIER_TIMEOUT)

    def barrier(self) -> None:
        tdist.barrier(group=self.group)

    def gather(self, obj: object) -> list:
        gathered: list = [None] * self.world_size
        tdist.all_gather_object(gathered, obj, group=self.group)
        return gathered

    def stop(self) -> None:
        if self.owns_process_group and tdist.is_initialized():
            tdist.destroy_process_group()


def share_cpu_threads() -> None:
    """Split the cores among the ranks of this node (OpenCV would take all in each)."""
    ranks_here = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    threads = max(1, (os.cpu_count() or 1) // max(ranks_here, 1))
    cv2 = import_cv2()
    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)


def rank_device(device: str, dist: DistContext) -> str:
    """``cuda`` means this rank's GPU (LOCAL_RANK) under torchrun; one-line errors for
    unknown names, missing CUDA or an index past the last GPU (shared with training)."""
    return str(resolve_device(device, dist.local_rank if dist.enabled else 0))


def part_path(out: Path, rank: int) -> Path:
    return out.with_name(f"{out.name}.rank{rank}")


def all_parts(out: Path) -> list[Path]:
    """Every ``STORE.rank{r}`` beside ``out``, also those left by a run with more ranks."""
    found = [
        p for p in out.parent.glob(f"{out.name}.rank*") if p.name[len(out.name) + 5 :].isdigit()
    ]
    return sorted(found, key=lambda p: int(p.name[len(out.name) + 5 :]))


def shard_names(names: Sequence[str], rank: int, world_size: int) -> list[str]:
    """Every ``world_size``-th name starting at ``rank`` (the same list on every rank)."""
    return list(names)[rank::world_size]


def stored_names(store: Path, recipe: dict) -> set[str]:
    """Videos already in ``store`` (and its zero-snippet list); DataError on another recipe."""
    if not (store / INDEX_FILE).exists():
        return set()
    check_recipe(store, recipe)
    return set(PackedFeatureStore(store).names) | set(read_empty(store))


def merge_stores(parts: Sequence[Path], out: Path) -> list[str]:
    """Copy every video of the packed stores ``parts`` into ``out`` (created or resumed).

    Names already in ``out`` (or met in an earlier part) are skipped; all parts and ``out``
    must share one recipe. Zero-snippet lists are merged too. Returns the names added.
    """
    stores = [PackedFeatureStore(p) for p in parts if (Path(p) / INDEX_FILE).exists()]
    if not stores:
        return []
    first = stores[0]
    for store in stores[1:]:
        if store.recipe != first.recipe or store.dim != first.dim:
            raise DataError(f"{store.path}: recipe differs from {first.path}; cannot merge")
    resume = (Path(out) / INDEX_FILE).exists()
    added: list[str] = []
    with PackedFeatureWriter(out, first.dim, recipe=first.recipe, resume=resume) as writer:
        present = set(writer.names)
        empty = read_empty(out)
        for store in stores:
            for name in store.names:
                if name not in present:
                    writer.add(name, store.read(name))
                    present.add(name)
                    added.append(name)
            writer.commit()
            empty.update({k: v for k, v in read_empty(store.path).items() if k not in present})
    write_empty(out, empty)
    return added


def run_sharded(extractor, named: dict[str, Path], out: Path, dist: DistContext, progress, run):
    """This rank's share into ``STORE.rank{r}``; rank 0 merges all parts and reports all.

    ``run`` is :func:`hamnet.extract.pipeline.extract_into` (passed in to avoid a cycle).
    """
    dist.start()
    share_cpu_threads()
    try:
        recipe = extractor.recipe.as_dict()
        done_before = stored_names(out, recipe)
        mine = {n: named[n] for n in shard_names(list(named), dist.rank, dist.world_size)}
        part = part_path(out, dist.rank)
        desc = f"extract (rank {dist.rank}/{dist.world_size})"
        show = progress and dist.rank == 0
        report = run(extractor, mine, part, progress=show, also_done=done_before, desc=desc)
        reports = dist.gather(report)  # doubles as the barrier: every part is complete
        if dist.rank != 0:
            return report
        parts = all_parts(out)
        merge_stores(parts, out)
        for other in reports[1:]:
            report.merge(other)
        report.store = out
        _remove_parts(parts)
        return report
    finally:
        dist.stop()


def _remove_parts(parts: Sequence[Path], remove: Callable = shutil.rmtree) -> None:
    for part in parts:
        if Path(part).exists():
            remove(part)
