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
    teachers: dict[str, Config] | None = None,
) -> list[RunSummary]:
    """Train each method (``configs``: row name -> its config) with the same seeds and
    data; one table ``out_dir/ablation.md`` with one row per method. A row ``A+B``
    (``teachers[row]``: A's config) is the second stage B on the detections of A's run of
    the same seed, ``out_dir/A`` (trained first, with the budget of A's own row)."""
    teachers = teachers or {}
    labels = {
        name: (f"{method_label(teachers[name])} + " if name in teachers else "")
        + method_label(config)
        for name, config in configs.items()
    }
    title = f"Methods ({next(iter(configs.values())).preset})"
    firsts = {name: c for name, c in configs.items() if name not in teachers}
    for name, teacher in teachers.items():
        firsts.setdefault(name.split("+")[0], teacher)
    done = _run_rows(firsts, data_root, out_dir, seeds, progress, jobs)
    seconds = {name: configs[name] for name in teachers}
    done.update(_run_rows(seconds, data_root, out_dir, seeds, progress, jobs, done))
    rows = [
        summarize(labels[name], done[name][1], seeds, [run.run_dir for run in done[name][0]])
        for name in configs
    ]
    if is_main_process():
        notes = [_input_quality(labels[name], done[name][0]) for name in teachers]
        write_tables(rows, out_dir / "ablation", title=title, notes=[n for n in notes if n])
    return rows


def _input_quality(label: str, runs) -> str | None:
    """'A + B: pseudo labels' own mAP ...' over a second stage's seeds (pseudo labels only)."""
    import numpy as np

    from hamnet.io import read_json
    from hamnet.methods import inputs

    averages, subset = [], None
    for run in runs:
        path = inputs.input_path(run.run_dir, "pseudo_labels")
        if not path.is_file():
            return None
        quality = read_json(path, ConfigError).get("quality") or {}
        subsets = sorted(quality)  # one: the training subset
        averages += [quality[name]["average"] for name in subsets]
        subset = ", ".join(subsets)
    if not averages:
        return None
    spread = f" ± {np.std(averages, ddof=1):.1f}" if len(averages) > 1 else ""
    return (
        f"{label}: the pseudo labels' own average mAP against the real labels "
        f"({subset} subset): {np.mean(averages):.1f}{spread}"
    )


def _run_rows(configs, data_root, out_dir, seeds, progress, jobs, firsts=None) -> dict:
    """{row: (its seed jobs, their finals)}; a second stage's jobs get their input from
    the first stage's run of the same seed (``firsts``)."""
    per_row = {
        name: seed_jobs(config, data_root, out_dir / name, seeds, True, announce_fresh=False)
        for name, config in configs.items()
    }
    for name, runs in per_row.items():
        if firsts is not None:
            teacher_runs = firsts[name.split("+")[0]][0]
            for run, teacher in zip(runs, teacher_runs, strict=True):
                _stage_input(run, data_root, teacher.run_dir)
    finals = run_trainings([run for runs in per_row.values() for run in runs], jobs, progress)
    done = {}
    for name, runs in per_row.items():
        done[name], finals = (runs, finals[: len(runs)]), finals[len(runs) :]
    return done


def _stage_input(run, data_root: Path, teacher_dir: Path) -> None:
    from hamnet.experiments.stages import prepare_stage_input
    from hamnet.methods import inputs

    kind = method_class(run.config.method).stage_input
    if not inputs.input_path(run.run_dir, kind).is_file():
        prepare_stage_input(run.config, data_root, run.run_dir, [teacher_dir], progress=False)


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
    done = _run_rows(configs, data_root, out_dir, seeds, progress, jobs)
    rows = [
        summarize(labels[name], finals, seeds, [run.run_dir for run in runs])
        for name, (runs, finals) in done.items()
    ]
    if is_main_process():
        write_tables(rows, out_dir / "ablation", title=title)
    return rows


def method_label(config: Config) -> str:
    """A table row's name: the method, and the HAM-Net ablation row when not all losses."""
    label = registered_label(config.method)
    return label if config.variant == "all" else f"{label} ({config.variant})"
