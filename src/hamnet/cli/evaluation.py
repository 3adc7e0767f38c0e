"""Evaluation commands: score a detections file, tables of results, diagnosis, report."""

from __future__ import annotations

import argparse

from hamnet.cli.common import (
    as_path,
    as_paths,
)
from hamnet.errors import ConfigError, HamnetError
from hamnet.evaluate.protocols import PROTOCOLS
from hamnet.timing import RELEASED_SNIPPET_SECONDS


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="score a detections file against ground truth")
    p.add_argument("--gt", required=True, help="ground-truth JSON (e.g. ROOT/<Name>-gt.json)")
    p.add_argument(
        "--pred",
        required=True,
        help="detections JSON (ActivityNet style, e.g. from 'hamnet test --out')",
    )
    p.add_argument(
        "--subset", help="GT subset to score (default: inferred from the detections' videos)"
    )
    p.add_argument(
        "--tiou",
        default="0.1:0.7:0.1",
        help="thresholds: start:stop:step (stop included) or a list, e.g. 0.3,0.5 "
        "(default 0.1:0.7:0.1)",
    )
    p.add_argument(
        "--protocol",
        default="anet",
        choices=PROTOCOLS,
        help=f"evaluation rules: {', '.join(PROTOCOLS)} (default anet)",
    )
    p.add_argument(
        "--snippet-seconds",
        type=float,
        default=RELEASED_SNIPPET_SECONDS,
        help="feature stride for the wtalc protocol, must be positive (default 0.64: 16 "
        "frames at 25 fps)",
    )
    p.add_argument("--ambiguous", help="THUMOS14 Ambiguous_test.txt (thumos14, wtalc)")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--per-class", action="store_true", help="also print AP per class")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from hamnet.evaluate.files import evaluate_files, format_table, parse_tiou
    from hamnet.io import atomic_write_json, refuse_overwriting_inputs

    refuse_overwriting_inputs(
        [as_path(args.json)], [as_path(args.gt), as_path(args.pred), as_path(args.ambiguous)]
    )
    result = evaluate_files(
        as_path(args.gt),
        as_path(args.pred),
        subset=args.subset,
        tiou=parse_tiou(args.tiou),
        protocol=args.protocol,
        ambiguous_path=as_path(args.ambiguous),
        snippet_seconds=args.snippet_seconds,
    )
    print(format_table(result, per_class=args.per_class))
    if args.json:
        try:
            atomic_write_json(as_path(args.json), result.to_dict(), indent=1)
        except OSError as error:
            problem = f"{as_path(args.json)}: cannot write the result ({error.strerror})"
            raise HamnetError(problem) from None
    return 0


def add_convert_detections_parser(sub) -> None:
    p = sub.add_parser(
        "convert-detections", help="another toolkit's detections JSON -> hamnet's detections file"
    )
    p.add_argument("input", help="detections JSON to convert (e.g. P-MIL's proposals/*.json)")
    p.add_argument("output", help="hamnet detections JSON to write (what 'hamnet eval' reads)")
    p.add_argument(
        "--format",
        required=True,
        choices=["pmil"],
        help="pmil: P-MIL's proposal files (seconds, class names, as CO2-Net writes them)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--gt", help="ground-truth JSON whose videos and classes to check against")
    source.add_argument(
        "--data", help="dataset root or annotation folder whose videos and classes to check against"
    )
    p.set_defaults(func=cmd_convert_detections)


def cmd_convert_detections(args: argparse.Namespace) -> int:
    from hamnet.evaluate.convert import convert_detections, load_ground_truth
    from hamnet.io import input_files, refuse_overwriting_inputs

    source, out = as_path(args.input), as_path(args.output)
    refuse_overwriting_inputs([out], [source, *input_files(as_path(args.data), as_path(args.gt))])
    truth = load_ground_truth(data=as_path(args.data), gt=as_path(args.gt))
    done = convert_detections(source, out, truth, fmt=args.format)
    print(
        f"{done.detections} detections in {done.videos} videos ({args.format}, checked against "
        f"{truth.source}) written to {out}"
    )
    return 0


def add_table_parser(sub) -> None:
    p = sub.add_parser("table", help="result JSONs as the paper's main table (markdown, CSV)")
    p.add_argument("results", nargs="+", help="files written by 'hamnet test --json'")
    p.add_argument("--labels", help="comma-separated row names (default: file names)")
    p.add_argument("--title", default="Results", help='heading of the table (default "Results")')
    p.add_argument("--out", help="write OUT.md and OUT.csv")
    p.set_defaults(func=cmd_table)


def cmd_table(args: argparse.Namespace) -> int:
    from hamnet.experiments.tables import markdown_table, summary_from_result, write_tables

    paths = as_paths(args.results)
    labels = args.labels.split(",") if args.labels else [None] * len(paths)
    if len(labels) != len(paths):
        raise ConfigError(f"--labels names {len(labels)} rows for {len(paths)} result files")
    rows = [summary_from_result(p, label) for p, label in zip(paths, labels, strict=True)]
    if len({(row.protocol, tuple(row.tiou)) for row in rows}) > 1:
        raise ConfigError("the results use different protocols or tIoU thresholds: not comparable")
    if args.out:
        write_tables(rows, as_path(args.out), title=args.title)
    print(markdown_table(rows, args.title), end="")
    return 0


def add_analyze_parser(sub) -> None:
    p = sub.add_parser("analyze", help="DETAD-style diagnosis: error types, misses, sensitivity")
    p.add_argument("source", nargs="?", help="a run folder (its test outputs are used or made)")
    p.add_argument("--gt", help="ground-truth JSON")
    p.add_argument("--pred", help="detections JSON (e.g. written by 'hamnet test --out')")
    p.add_argument("--data", help="dataset root (ground truth; for a run folder: to test it)")
    p.add_argument("--out", required=True, help="folder for diagnosis.json and the charts")
    p.add_argument("--subset", help="default: the run's test subset / the detected videos'")
    p.add_argument("--tiou", help="default: DETAD's (0.5 THUMOS14, 0.5:0.95:0.05 ActivityNet)")
    p.add_argument("--bins", choices=["thumos14", "activitynet"], help="DETAD's bin set")
    p.add_argument(
        "--device",
        default="auto",
        help="device for the test run when a run folder has no test outputs yet (default auto)",
    )
    p.set_defaults(func=cmd_analyze)


def cmd_analyze(args: argparse.Namespace) -> int:
    from hamnet.diagnose.command import AnalysisRequest, analyze
    from hamnet.evaluate.files import parse_tiou

    request = AnalysisRequest(
        out=as_path(args.out),
        run_dir=as_path(args.source),
        data=as_path(args.data),
        gt=as_path(args.gt),
        pred=as_path(args.pred),
        subset=args.subset,
        tiou=parse_tiou(args.tiou) if args.tiou else None,
        bins=args.bins,
        device=args.device,
    )
    _, written = analyze(request)
    print("\n".join(str(p) for p in written))
    return 0


def add_report_parser(sub) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page about a run")
    p.add_argument("run_dir", help="a run folder (config.yaml, metrics.jsonl, checkpoints)")
    p.add_argument("--data", help="dataset root, to make the test outputs if missing")
    p.add_argument("--out", help="HTML file (default: RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from hamnet.report.build import build_report

    out = build_report(as_path(args.run_dir), as_path(args.out), data=as_path(args.data))
    print(f"report written to {out}")
    return 0
