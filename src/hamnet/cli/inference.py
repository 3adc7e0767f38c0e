"""Inference commands: test a checkpoint on a split, predict on new features."""

from __future__ import annotations

import argparse

from hamnet.cli.common import (
    add_inference_set,
    add_pickle_option,
    as_path,
    as_paths,
)
from hamnet.evaluate.protocols import PROTOCOLS


def add_test_parser(sub) -> None:
    p = sub.add_parser("test", help="evaluate a checkpoint on the test split")
    add_checkpoint_option(p)
    p.add_argument("--data", required=True, help="dataset root (released layout or converted)")
    p.add_argument("--out", required=True, help="detections JSON (ActivityNet style)")
    p.add_argument("--save-cas", help="folder for per-video T-CAS / attention .npz files")
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        help=f"evaluation rules: {', '.join(PROTOCOLS)} (default: the checkpoint's config)",
    )
    p.add_argument("--tiou", help="e.g. 0.1:0.7:0.1 (default: the preset's)")
    add_inference_set(p)
    p.add_argument("--subset", help="default: the preset's test subset")
    p.add_argument("--json", help="write the result (mAP per tIoU, average) here")
    p.add_argument("--per-class", action="store_true", help="also print AP per class")
    add_device_option(p)
    add_pickle_option(p)
    p.set_defaults(func=cmd_test)


def cmd_test(args: argparse.Namespace) -> int:
    from hamnet.evaluate.files import format_table, parse_tiou
    from hamnet.infer.tester import evaluate_checkpoint

    evaluation = evaluate_checkpoint(
        as_path(args.checkpoint),
        as_path(args.data),
        as_path(args.out),
        save_cas=as_path(args.save_cas),
        protocol=args.protocol,
        tiou=parse_tiou(args.tiou) if args.tiou else None,
        subset=args.subset,
        result_json=as_path(args.json),
        device=args.device,
        overrides=args.set,
    )
    print(format_table(evaluation.result, per_class=args.per_class))
    if evaluation.selected_on != "none":
        from hamnet.train.selection import NOTES

        print(f"model selection: {NOTES[evaluation.selected_on]}")
    if evaluation.epochs and evaluation.epochs[0] < evaluation.epochs[1]:
        print(f"run status: {evaluation.epochs[0]} of {evaluation.epochs[1]} epochs, unfinished")
    if evaluation.trained_on_test:
        print("trained on the subset it was tested on: not a test result")
    print(f"classification mAP: {100 * evaluation.classification_map:.2f}")
    print(f"localization source: {evaluation.source}")
    print(f"localization rules: rules={evaluation.rules}")
    print(f"detections written to {as_path(args.out)}")
    return 0


def add_checkpoint_option(parser) -> None:
    parser.add_argument(
        "--checkpoint",
        required=True,
        help="last.pt or best.pt of a run (or an imported checkpoint)",
    )


def add_device_option(parser) -> None:
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")


def add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="localize actions in new videos' features")
    add_checkpoint_option(p)
    p.add_argument(
        "--features",
        required=True,
        nargs="+",
        help="packed store, folder of .npy files, or single [T, D] .npy files",
    )
    p.add_argument("--out", help="output file (default: standard output)")
    p.add_argument(
        "--format",
        default="json",
        choices=["json", "csv"],
        help="json (ActivityNet style) or csv (video,label,start,end,score)",
    )
    p.add_argument(
        "--min-score",
        type=float,
        default=0.0,
        help="drop detections scoring below this (default 0: keep all)",
    )
    p.add_argument("--top-k", type=int, help="at most K detections per video")
    add_inference_set(p)
    add_device_option(p)
    add_pickle_option(p)
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from hamnet.infer.predict import predict, write_detections
    from hamnet.io import input_files, refuse_overwriting_inputs

    inputs = [as_path(args.checkpoint), *input_files(*as_paths(args.features), depth=1)]
    refuse_overwriting_inputs([as_path(args.out)], inputs)
    detections = predict(
        as_path(args.checkpoint),
        as_paths(args.features),
        min_score=args.min_score,
        top_k=args.top_k,
        device=args.device,
        overrides=args.set,
    )
    text = write_detections(detections, as_path(args.out), args.format)
    if args.out:
        print(f"{len(detections)} detections written to {as_path(args.out)}")
    else:
        print(text, end="")
    return 0


def add_pseudo_label_parser(sub) -> None:
    p = sub.add_parser(
        "pseudo-label",
        help="a trained run's detections as pseudo ground truth (FuSTAL's selection)",
    )
    p.add_argument("run", help="a trained run folder (the teacher)")
    p.add_argument("--out", required=True, help="pseudo ground-truth JSON (ActivityNet style)")
    p.add_argument(
        "--subset",
        default="train",
        help="train, test or train,test (the run's subsets), or subset names (default train)",
    )
    p.add_argument("--data", help="dataset root (default: the one the run was trained on)")
    p.add_argument(
        "--min-score", type=float, default=0.4, help="keep a detection above this score (0.4)"
    )
    p.add_argument(
        "--min-overlap-sum",
        type=float,
        default=0.2,
        help="keep a detection whose IoUs with the video's others sum to this (0.2)",
    )
    p.add_argument(
        "--nms-iou",
        type=float,
        default=0.0,
        help="first, CoLA's per-class NMS at this IoU (FuSTAL's generator: 0.5; default 0: off)",
    )
    p.add_argument(
        "--merge-iou",
        type=float,
        default=0.0,
        help="last, FuSTAL's merge_box: the best takes in hull IoU > this (0.1; default 0: off)",
    )
    p.set_defaults(func=cmd_pseudo_label)


def cmd_pseudo_label(args: argparse.Namespace) -> int:
    from hamnet.experiments.pseudo_labels import pseudo_labels_from_run, summary_lines
    from hamnet.io import atomic_write_json, input_files, refuse_overwriting_inputs
    from hamnet.localize.pseudo_labels import PseudoLabelRules

    out = as_path(args.out)
    rules = PseudoLabelRules(
        min_score=args.min_score,
        min_overlap_sum=args.min_overlap_sum,
        nms_iou=args.nms_iou,
        merge_iou=args.merge_iou,
    )
    work = out.with_name(f"{out.stem}-teacher")
    # the teacher's checkpoint, config and data are read: none may be written over
    refuse_overwriting_inputs([out, work], input_files(as_path(args.run), as_path(args.data)))
    subsets = [s for s in args.subset.split(",") if s.strip()]
    document = pseudo_labels_from_run(as_path(args.run), subsets, rules, work, as_path(args.data))
    atomic_write_json(out, document, indent=1)
    print("\n".join(summary_lines(document)))
    print(f"pseudo labels written to {out} (the teacher's detections: {work})")
    return 0
