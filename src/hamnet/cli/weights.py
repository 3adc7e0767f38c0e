"""Weight-file commands: import the authors' checkpoints, extract I3D features."""

from __future__ import annotations

import argparse

from hamnet.cli.common import (
    as_path,
    as_paths,
)
from hamnet.precision import PRECISIONS


def add_import_checkpoint_parser(sub) -> None:
    p = sub.add_parser("import-checkpoint", help="convert an authors' checkpoint")
    p.add_argument("original", help="checkpoint saved by the authors' released code")
    p.add_argument("out", help="hamnet checkpoint to write")
    p.add_argument(
        "--preset",
        choices=["thumos14", "activitynet12"],
        help="default: inferred from the class count (20: thumos14, 100: activitynet12)",
    )
    p.add_argument("--data", help="dataset root whose class list to record (default: preset's)")
    p.add_argument(
        "--method",
        default="hamnet",
        help="whose checkpoint: hamnet (the HAM-Net release, default), co2net / delu / "
        "3cnet (an official saved model, a .pkl state_dict), dgam (its final_rgb/"
        "final_flow .pth pair: either file or their folder) or cmcs (one of its "
        "model-{rgb,flow,both}-N files or their folder: the three are imported)",
    )
    p.set_defaults(func=cmd_import_checkpoint)


def cmd_import_checkpoint(args: argparse.Namespace) -> int:
    from hamnet.weights.import_authors import import_authors_checkpoint

    out = import_authors_checkpoint(
        as_path(args.original),
        as_path(args.out),
        preset=args.preset,
        classes_from=as_path(args.data),
        method=args.method,
    )
    print(f"hamnet checkpoint written to {out}")
    return 0


def add_extract_parser(sub) -> None:
    p = sub.add_parser("extract", help="I3D RGB + flow features from raw videos")
    p.add_argument("videos", nargs="+", help="video files to extract features from")
    p.add_argument("--out", required=True, help="packed feature store to write or extend")
    p.add_argument(
        "--streams",
        default="rgb,flow",
        help="comma list of rgb, flow (default rgb,flow: the released two-stream features)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="fp32 (default), or a lower precision for speed on a GPU",
    )
    p.add_argument(
        "--flow",
        default="tvl1",
        choices=["tvl1", "dis"],
        help="optical flow: tvl1 (as the released features) or dis (faster)",
    )
    p.add_argument("--rgb-weights", help="I3D RGB weights (.pt), see docs/extract.md")
    p.add_argument("--flow-weights", help="I3D flow weights (.pt), see docs/extract.md")
    p.add_argument(
        "--batch-size", type=int, default=8, help="snippets per forward pass (default 8)"
    )
    p.set_defaults(func=cmd_extract)


def cmd_extract(args: argparse.Namespace) -> int:
    from hamnet.extract.pipeline import extract_videos

    report = extract_videos(
        as_paths(args.videos),
        as_path(args.out),
        streams=tuple(s.strip() for s in args.streams.split(",") if s.strip()),
        device=args.device,
        precision=args.precision,
        flow=args.flow,
        rgb_weights=as_path(args.rgb_weights),
        flow_weights=as_path(args.flow_weights),
        batch_size=args.batch_size,
    )
    print(report.summary() if hasattr(report, "summary") else report)
    return 0
