"""The tables of several runs: markdown (the paper's shape) and CSV, and a row read
back from a result JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from hamnet.experiments.seeds import TRAINED_ON_TEST_TAG, RunSummary
from hamnet.io import atomic_write_text, input_files, parse_json, refuse_overwriting_inputs


def summary_from_result(path: Path, label: str | None = None) -> RunSummary:
    """One row from a result JSON written by ``hamnet test --json`` or ``hamnet eval --json``."""
    from hamnet.viz.outputs import load_result_json

    tiou, values, protocol = load_result_json(path)
    average = sum(values) / len(values)
    record = _result_record(path)
    selected_on = _selected_on(record)
    on_test = record.get("trained_on_test") is True
    label = label or _run_name(path, record)
    status = run_status(record.get("epochs"))
    if status:
        label = f"{label} ({status})"
    if selected_on == "test":
        label = f"{label} [selected on test]"
    if on_test:
        label = f"{label} {TRAINED_ON_TEST_TAG}"
    row = RunSummary(label, protocol, tiou, values, average, 0.0, [], [path.parent])
    rules = record.get("rules", "")
    return dataclasses.replace(
        row,
        selected_on=selected_on,
        trained_on_test=on_test,
        rules=rules if isinstance(rules, str) else "",
    )


def _result_record(path: Path) -> dict:
    try:
        record = parse_json(path.read_bytes(), str(path), ValueError)
    except (OSError, ValueError, RecursionError):
        return {}
    return record if isinstance(record, dict) else {}


def _run_name(path: Path, record: dict) -> str:
    """A row's default name: the run folder of the tested checkpoint (not ``result``)."""
    checkpoint = record.get("checkpoint")
    if isinstance(checkpoint, str) and checkpoint:
        tested = Path(checkpoint)
        return (
            tested.parent.name
            if tested.name == "last.pt"
            else f"{tested.parent.name}/{tested.name}"
        )
    return f"{path.parent.name}/{path.stem}"


def run_status(epochs) -> str | None:
    """'24 of 60 epochs, unfinished' for a checkpoint short of its run's epochs."""
    if not isinstance(epochs, dict):
        return None
    trained, planned = epochs.get("trained"), epochs.get("planned")
    if not (isinstance(trained, int) and isinstance(planned, int)) or trained >= planned:
        return None
    return f"{trained} of {planned} epochs, unfinished"


def _selected_on(record: dict) -> str:
    """How the result's checkpoint was chosen, as ``hamnet test --json`` records it."""
    found = record.get("selected_on", "none")
    from hamnet.train.selection import NOTES

    return found if isinstance(found, str) and found in NOTES else "none"


def format_cell(mean: float, std: float, several: bool) -> str:
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if several else f"{100 * mean:.1f}"


def markdown_table(rows: list[RunSummary], title: str) -> str:
    """The paper's table shape: mAP (%) at each tIoU, then the true average."""
    tiou = rows[0].tiou
    several = any(len(r.seeds) > 1 for r in rows)
    head = ["method"] + [f"{t:g}" for t in tiou] + ["AVG"]
    rules = {r.rules for r in rows}
    shared_rules = f", rules={rules.pop()}" if len(rules) == 1 and "" not in rules else ""
    lines = [
        f"### {title} — protocol `{rows[0].protocol}`{shared_rules}, mAP (%) at tIoU",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for row in rows:
        cells = [f"{100 * v:.1f}" for v in row.mAP]
        average = format_cell(row.average, row.average_std, several)
        label = row.label if shared_rules or not row.rules else f"{row.label} (rules={row.rules})"
        lines.append("| " + " | ".join([label, *cells, average]) + " |")
    lines += _selection_lines(rows)
    seeds = sorted({s for r in rows for s in r.seeds})
    if seeds:
        lines += ["", f"seeds: {', '.join(map(str, seeds))} (AVG: mean ± sample std over seeds)"]
    else:
        lines += ["", "AVG: the mean of the mAP values of the row"]
    return "\n".join(lines) + "\n"


def _selection_lines(rows: list[RunSummary]) -> list[str]:
    """How each row's model was chosen, when any row was selected on some split."""
    from hamnet.train.selection import NOTES

    lines = []
    if any(r.trained_on_test for r in rows):
        named = ", ".join(r.label for r in rows if r.trained_on_test)
        lines += ["", f"trained on the test subset (not test results): {named}"]
    notes = [f"{r.label}: {NOTES[r.selected_on]}" for r in rows if r.selected_on != "none"]
    if notes:
        lines += ["", "model selection: " + "; ".join(notes)]
    return lines


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


def write_tables(
    rows: list[RunSummary], stem: Path, title: str, notes: list[str] | None = None
) -> tuple[Path, Path]:
    """``stem``.md (the table, then ``notes``: e.g. a second stage's input) and .csv."""
    md, table_csv = stem.with_suffix(".md"), stem.with_suffix(".csv")
    run_files = input_files(*{d for row in rows for d in row.run_dirs}, depth=1)
    inputs = [p for p in run_files if p.suffix in (".json", ".jsonl", ".pt", ".yaml", ".npz")]
    refuse_overwriting_inputs([md, table_csv], inputs)
    extra = "".join(f"\n{line}\n" for line in notes or [])
    atomic_write_text(md, markdown_table(rows, title) + extra)
    atomic_write_text(table_csv, csv_table(rows))
    return md, table_csv
