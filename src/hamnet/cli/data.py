"""Dataset commands: synthetic data, conversion between layouts, checks."""

from __future__ import annotations

import argparse

from hamnet.cli.common import (
    add_pickle_option,
    as_path,
)
from hamnet.timing import RELEASED_SNIPPET_SECONDS


def add_synth_parser(sub) -> None:
    p = sub.add_parser("synth", help="write a synthetic dataset in the released layout")
    p.add_argument("--out", required=True, help="folder to write the dataset into (created)")
    p.add_argument("--like", help="a real annotation folder to lay the features on")
    p.add_argument("--classes", type=int, default=8, help="number of action classes (default 8)")
    p.add_argument(
        "--videos",
        type=int,
        default=120,
        help="number of videos, split evenly into validation and test (default 120)",
    )
    p.add_argument(
        "--min-duration", type=float, default=30.0, help="shortest video, seconds (default 30)"
    )
    p.add_argument(
        "--max-duration", type=float, default=90.0, help="longest video, seconds (default 90)"
    )
    p.add_argument("--dim", type=int, default=64, help="feature width per snippet (default 64)")
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; the same seed gives the same dataset (default 0)",
    )
    p.add_argument("--max-videos", type=int, help="with --like: at most this many per subset")
    p.add_argument(
        "--no-released", action="store_true", help="skip the pickled released-format feature file"
    )
    p.set_defaults(func=cmd_synth)


def cmd_synth(args: argparse.Namespace) -> int:
    from hamnet.data.synthetic import make_synthetic

    root = make_synthetic(
        as_path(args.out),
        like=as_path(args.like),
        num_classes=args.classes,
        num_videos=args.videos,
        duration_range=(args.min_duration, args.max_duration),
        feature_dim=args.dim,
        seed=args.seed,
        max_videos=args.max_videos,
        write_released=not args.no_released,
    )
    print(f"synthetic dataset written to {root}")
    return 0


def add_convert_parser(sub) -> None:
    p = sub.add_parser("convert", help="released layout -> packed store + ground-truth JSON")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a dataset root in the released layout")
    source.add_argument("--features", help="a feature file or folder to pack")
    p.add_argument(
        "--out",
        required=True,
        help="output dataset root (with --data) or packed store folder (with --features)",
    )
    p.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float16"],
        help="stored feature precision: float32 (exact) or float16 (half the size)",
    )
    p.add_argument(
        "--format",
        default="packed",
        choices=["packed", "npy"],
        help="with --data: packed (released layout + packed store) or npy (the plain "
        "layout: gt.json + features/<video>.npy)",
    )
    p.add_argument(
        "--snippet-seconds",
        type=float,
        default=RELEASED_SNIPPET_SECONDS,
        help="with --format npy: the stride recorded in dataset.json, must be positive "
        "(default 0.64)",
    )
    p.add_argument("--verify", action="store_true", help="re-read and compare every video")
    add_pickle_option(p)
    p.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from hamnet.data.features import convert_to_packed, open_feature_store
    from hamnet.data.layout import convert_dataset
    from hamnet.io import input_files, refuse_overwriting_inputs

    out = as_path(args.out)
    written = [p for p in input_files(out) if not p.is_dir()]  # files it may replace
    refuse_overwriting_inputs(written, input_files(as_path(args.data), as_path(args.features)))
    if args.data and args.format == "npy":
        from hamnet.data.layout import convert_dataset_npy

        root = convert_dataset_npy(
            as_path(args.data),
            out,
            snippet_seconds=args.snippet_seconds,
        )
        print(f"plain dataset (gt.json, features/<video>.npy, dataset.json) written to {root}")
        return 0
    if args.data:
        root = convert_dataset(
            as_path(args.data),
            out,
            dtype=args.dtype,
            verify=args.verify,
        )
        if args.verify:
            print("verified: every video identical to the source, checksums stored")
        print(f"dataset with packed features and ground-truth JSON written to {root}")
        return 0
    store = open_feature_store(as_path(args.features))
    packed = convert_to_packed(store, out, dtype=args.dtype)
    if args.verify:
        from hamnet.data.features import verify_packed

        verify_packed(store, packed)
        print("verified: every video identical")
    print(f"packed store written to {out}")
    return 0


def add_check_parser(sub) -> None:
    p = sub.add_parser("check", help="verify a dataset root: annotations, features, checksums")
    p.add_argument("root", help="a dataset root (released layout or converted)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from hamnet.data.layout import check_dataset

    print(check_dataset(as_path(args.root), progress=not args.quiet))
    return 0
