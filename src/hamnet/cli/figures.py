"""``hamnet plot``: one video's signals, mAP against tIoU."""

from __future__ import annotations

import argparse

from hamnet.cli.common import (
    as_path,
    as_paths,
)
from hamnet.errors import ConfigError


def add_plot_parser(sub) -> None:
    plot = sub.add_parser("plot", help="figures").add_subparsers(dest="figure", required=True)
    p = plot.add_parser("video", help="one video: ground truth, attention, T-CAS, detections")
    p.add_argument("--npz", required=True, help="a file written by 'hamnet test --save-cas'")
    p.add_argument("--gt", help="ground-truth JSON")
    p.add_argument("--pred", help="detections JSON")
    p.add_argument(
        "--min-score",
        type=float,
        default=0.0,
        help="draw only detections scoring at least this (default 0)",
    )
    p.add_argument("--tiou", type=float, default=0.5, help="tIoU for true/false positive marks")
    p.add_argument(
        "--thresholds", help="attention lines: comma list or 'none' (default: localize's)"
    )
    p.add_argument("--out", required=True, nargs="+", help="one or more .png / .svg paths")
    p.set_defaults(func=cmd_plot_video)
    p = plot.add_parser("map", help="mAP against tIoU for one or several result JSONs")
    p.add_argument(
        "results",
        nargs="+",
        help="result JSONs written by 'hamnet test --json' or 'hamnet eval --json'",
    )
    p.add_argument("--labels", help="comma-separated legend names (default: folder/file)")
    p.add_argument("--out", required=True, nargs="+", help="one or more .png / .svg paths")
    p.set_defaults(func=cmd_plot_map)


def cmd_plot_video(args: argparse.Namespace) -> int:
    from hamnet.data.annotations import load_gt_json
    from hamnet.io import refuse_overwriting_inputs
    from hamnet.localize.detections import load_detections
    from hamnet.viz.outputs import load_cas_npz
    from hamnet.viz.plots import plot_video

    refuse_overwriting_inputs(
        as_paths(args.out), [as_path(args.npz), as_path(args.gt), as_path(args.pred)]
    )
    outputs = load_cas_npz(as_path(args.npz))
    name = as_path(args.npz).stem
    truth = []
    if args.gt:
        truth = list(load_gt_json(as_path(args.gt)).video(name).segments)
    found = [d for d in load_detections(as_path(args.pred)) if d.video == name] if args.pred else []
    written = plot_video(
        outputs,
        as_paths(args.out),
        title=name,
        ground_truth=truth,
        detections=found,
        min_score=args.min_score,
        tiou=args.tiou,
        thresholds=_thresholds(args.thresholds),
    )
    print("\n".join(str(p) for p in written))
    return 0


def _thresholds(text: str | None) -> list[float]:
    """``--thresholds``: "none", a comma list, or (default) the localization defaults."""
    from hamnet.config import LocalizeConfig

    if text is None:
        return list(LocalizeConfig().thresholds)
    if text.strip().lower() == "none":
        return []
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--thresholds {text!r}: expected numbers such as 0.3,0.5") from None


def cmd_plot_map(args: argparse.Namespace) -> int:
    from hamnet.io import refuse_overwriting_inputs
    from hamnet.viz.outputs import load_result_json
    from hamnet.viz.plots import plot_map_vs_tiou

    paths = as_paths(args.results)
    refuse_overwriting_inputs(as_paths(args.out), paths)
    labels = args.labels.split(",") if args.labels else [f"{p.parent.name}/{p.stem}" for p in paths]
    if len(labels) != len(paths) or len(set(labels)) != len(labels):
        raise ConfigError(f"--labels must name each of the {len(paths)} result files once")
    runs, protocols = {}, set()
    for path, label in zip(paths, labels, strict=True):
        tiou, values, protocol = load_result_json(path)
        runs[label] = (tiou, values)
        protocols.add(protocol)
    if len(protocols) > 1:
        raise ConfigError(f"results use different protocols {sorted(protocols)}: not comparable")
    written = plot_map_vs_tiou(runs, as_paths(args.out), protocol=protocols.pop())
    print("\n".join(str(p) for p in written))
    return 0
