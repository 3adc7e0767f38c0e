"""Several runs and their tables: seeds (mean ± std) and the paper's ablation rows."""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path

from hamnet.config import VARIANTS, Config
from hamnet.engine.concurrent import TrainJob, run_trainings
from hamnet.engine.distributed import is_main_process
from hamnet.io import atomic_write_text, input_files, parse_json, refuse_overwriting_inputs

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
    selected_on: str = "none"  # how the reported model was chosen (see engine.selection)


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
    trainings at once (None: what fits, see :mod:`hamnet.engine.concurrent`).

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


def summary_from_result(path: Path, label: str | None = None) -> RunSummary:
    """One row from a result JSON written by ``hamnet test --json`` or ``hamnet eval --json``."""
    from hamnet.viz.outputs import load_result_json

    tiou, values, protocol = load_result_json(path)
    average = sum(values) / len(values)
    selected_on = _selected_on(path)
    label = label or path.stem
    if selected_on == "test":
        label = f"{label} [selected on test]"
    row = RunSummary(label, protocol, tiou, values, average, 0.0, [], [path.parent])
    return dataclasses.replace(row, selected_on=selected_on)


def _selected_on(path: Path) -> str:
    """How the result's checkpoint was chosen, as ``hamnet test --json`` records it."""
    try:
        found = parse_json(path.read_bytes(), str(path), ValueError).get("selected_on", "none")
    except (ValueError, AttributeError, OSError):
        return "none"
    from hamnet.engine.selection import NOTES

    return found if found in NOTES else "none"


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
    ``jobs`` at a time, see :mod:`hamnet.engine.concurrent`); write the table."""
    rows = {}
    for variant in variants or list(VARIANTS):
        losses = list(VARIANTS[variant])
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


METHOD_LABELS = {"hamnet": "HAM-Net", "stpn": "STPN", "w-talc": "W-TALC", "basnet": "BaS-Net"}


def method_label(config: Config) -> str:
    """A table row's name: the method, and the HAM-Net ablation row when not all losses."""
    label = METHOD_LABELS.get(config.method, config.method)
    return label if config.variant == "all" else f"{label} ({config.variant})"


def format_cell(mean: float, std: float, several: bool) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if several else f"{100 * mean:.1f}"


def markdown_table(rows: list[RunSummary], title: str) -> str:
    """The paper's table shape: mAP (%) at each tIoU, then the true average."""
    tiou = rows[0].tiou
    several = any(len(r.seeds) > 1 for r in rows)
    head = ["method"] + [f"{t:g}" for t in tiou] + ["AVG"]
    lines = [
        f"### {title} — protocol `{rows[0].protocol}`, mAP (%) at tIoU",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        cells = [f"{100 * v:.1f}" for v in row.mAP]
        average = format_cell(row.average, row.average_std, several)
        lines.append("| " + " | ".join([row.label, *cells, average]) + " |")
    lines += _selection_lines(rows)
    seeds = sorted({s for r in rows for s in r.seeds})
    if seeds:
        lines += ["", f"seeds: {', '.join(map(str, seeds))} (AVG: mean ± sample std over seeds)"]
    else:
        lines += ["", "AVG: the mean of the mAP values of the row"]
    return "\n".join(lines) + "\n"


def _selection_lines(rows: list[RunSummary]) -> list[str]:
    """How each row's model was chosen, when any row was selected on some split."""
    from hamnet.engine.selection import NOTES

    chosen = sorted({r.selected_on for r in rows if r.selected_on != "none"})
    if not chosen:
        return []
    notes = [f"{r.label}: {NOTES[r.selected_on]}" for r in rows if r.selected_on != "none"]
    return ["", "model selection: " + "; ".join(notes)]


def csv_table(rows: list[RunSummary]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    tiou = rows[0].tiou
    writer.writerow(
        [
            "method",
            "protocol",
            *[f"mAP@{t:g}" for t in tiou],
            "average_mAP",
            "average_mAP_std",
            "seeds",
            "selected_on",
        ]
    )
    for r in rows:
        writer.writerow(
            [
                r.label,
                r.protocol,
                *[f"{v:.6f}" for v in r.mAP],
                f"{r.average:.6f}",
                f"{r.average_std:.6f}",
                " ".join(map(str, r.seeds)),
                r.selected_on,
            ]
        )
    return buffer.getvalue()


def write_tables(rows: list[RunSummary], stem: Path, title: str) -> tuple[Path, Path]:
    md, table_csv = stem.with_suffix(".md"), stem.with_suffix(".csv")
    run_files = input_files(*{d for row in rows for d in row.run_dirs}, depth=1)
    inputs = [p for p in run_files if p.suffix in (".json", ".jsonl", ".pt", ".yaml", ".npz")]
    refuse_overwriting_inputs([md, table_csv], inputs)
    atomic_write_text(md, markdown_table(rows, title))
    atomic_write_text(table_csv, csv_table(rows))
    return md, table_csv
