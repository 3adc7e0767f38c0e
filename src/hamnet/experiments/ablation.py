"""Rows trained side by side: the paper's ablation rows, or several methods on the same
seeds and data; one table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hamnet.config import Config
from hamnet.errors import ConfigError
from hamnet.experiments.concurrent import run_trainings
from hamnet.experiments.seeds import RunSummary, seed_jobs, summarize
from hamnet.experiments.tables import write_tables
from hamnet.methods import method_class
from hamnet.methods import method_label as registered_label
from hamnet.train.distributed import is_main_process


def ablate(
    config: Config,
    data_root: Path,
    out_dir: Path,
    seeds: list[int],
    *,
    variants: list[str] | None = None,
    progress: bool = True,
    jobs: int | None = None,
) -> list[RunSummary]:
    """Train each ablation row with the same seed(s) and schedule (all rows' trainings
    ``jobs`` at a time, see :mod:`hamnet.experiments.concurrent`); write the table."""
    rows = {}
    known = method_class(config.method).ablation_rows()
    unknown = [v for v in variants or [] if v not in known]
    if unknown:
        raise ConfigError(f"unknown variant {unknown[0]!r} (known: {', '.join(known)})")
    for variant in variants or list(known):
        losses = list(known[variant])
        rows[variant] = dataclasses.replace(
            config, variant=variant, loss=dataclasses.replace(config.loss, losses=losses)
        )
    labels = {variant: variant for variant in rows}
    title = f"Ablation ({config.preset})"
    return _train_rows(rows, labels, data_root, out_dir, seeds, title, progress, jobs)


def ablate_methods(
    configs: dict[str, Config],
    data_root: Path,
    out_dir: Path,
    seeds: list[int],
    *,
    progress: bool = True,
    jobs: int | None = None,
) -> list[RunSummary]:
    """Train each method (``configs``: method name -> its config) with the same seeds and
    data; one table ``out_dir/ablation.md`` with one row per method."""
    labels = {name: method_label(config) for name, config in configs.items()}
    title = f"Methods ({next(iter(configs.values())).preset})"
    return _train_rows(configs, labels, data_root, out_dir, seeds, title, progress, jobs)


def _train_rows(
    configs: dict[str, Config],
    labels: dict[str, str],
    data_root: Path,
    out_dir: Path,
    seeds: list[int],
    title: str,
    progress: bool,
    jobs: int | None,
) -> list[RunSummary]:
    """Every row's trainings (``out_dir/<row>``, resumed when present) ``jobs`` at a time;
    one summary per row and the table ``out_dir/ablation.md``/``.csv``."""
    per_row = [
        seed_jobs(config, data_root, out_dir / name, seeds, True, announce_fresh=False)
        for name, config in configs.items()
    ]
    finals = run_trainings([run for runs in per_row for run in runs], jobs, progress)
    rows = []
    for name, runs in zip(configs, per_row, strict=True):
        row_finals, finals = finals[: len(runs)], finals[len(runs) :]
        rows.append(summarize(labels[name], row_finals, seeds, [run.run_dir for run in runs]))
    if is_main_process():
        write_tables(rows, out_dir / "ablation", title=title)
    return rows


def method_label(config: Config) -> str:
    """A table row's name: the method, and the HAM-Net ablation row when not all losses."""
    label = registered_label(config.method)
    return label if config.variant == "all" else f"{label} ({config.variant})"
