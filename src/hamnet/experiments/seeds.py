"""Several seeds of one run: their trainings (resumed when present) and the mean ± std."""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from hamnet.config import Config
from hamnet.experiments.concurrent import TrainJob, run_trainings
from hamnet.train.distributed import is_main_process

log = logging.getLogger(__name__)


log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """The final evaluation of one run (or the mean and spread over seeds)."""

    label: str
    protocol: str
    tiou: list[float]
    mAP: list[float]  # mean over seeds, fractions
    average: float
    average_std: float
    seeds: list[int]
    run_dirs: list[Path]
    selected_on: str = "none"  # how the reported model was chosen (see hamnet.train.selection)


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def train_seeds(
    config: Config,
    data_root: Path,
    run_dir: Path,
    seeds: list[int],
    *,
    label: str = "HAM-Net",
    resume: bool = False,
    progress: bool = True,
    jobs: int | None = None,
    announce_fresh: bool = True,
) -> RunSummary:
    """Train once per seed (``run_dir/seed<N>`` when several) and summarise; ``jobs``
    trainings at once (None: what fits, see :mod:`hamnet.experiments.concurrent`).

    ``resume``: continue each seed's run where it has a ``last.pt``, else start it fresh
    (said in one line unless ``announce_fresh`` is off: the demo and ablate reuse runs).
    """
    runs = seed_jobs(config, data_root, run_dir, seeds, resume, announce_fresh)
    finals = run_trainings(runs, jobs, progress)
    return summarize(label, finals, seeds, [run.run_dir for run in runs])


def seed_jobs(
    config: Config,
    data_root: Path,
    run_dir: Path,
    seeds: list[int],
    resume: bool,
    announce_fresh: bool = True,
) -> list[TrainJob]:
    """One training per seed, in ``run_dir/seed<N>`` when there are several."""
    runs = []
    for seed in seeds:
        seeded = dataclasses.replace(config, train=dataclasses.replace(config.train, seed=seed))
        folder = run_dir / f"seed{seed}" if len(seeds) > 1 else run_dir
        if resume and not _has_run(folder) and announce_fresh and is_main_process():
            log.warning(
                "%s: nothing to resume (%s); starting fresh",
                folder,
                "no such folder" if not folder.exists() else "no last.pt: stopped in epoch 1",
            )
        runs.append(TrainJob(seeded, data_root, folder, resume and _has_run(folder)))
    return runs


def _has_run(folder: Path) -> bool:
    return (folder / "last.pt").is_file()


def summarize(label: str, finals: list[dict], seeds: list[int], dirs: list[Path]) -> RunSummary:
    tiou = finals[0]["tiou"]
    per_threshold = [mean_std([f["mAP"][i] for f in finals])[0] for i in range(len(tiou))]
    average, spread = mean_std([f["average_mAP"] for f in finals])
    selected_on = finals[0].get("selected_on", "none")
    if selected_on == "test":
        label = f"{label} [selected on test]"
    return RunSummary(
        label, finals[0]["protocol"], tiou, per_threshold, average, spread, seeds, dirs, selected_on
    )
