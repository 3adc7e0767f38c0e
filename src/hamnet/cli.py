"""The ``hamnet`` command: the only module that reads argv; one function per command.

Expected failures (:class:`hamnet.errors.HamnetError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from hamnet import __version__
from hamnet.errors import ConfigError, HamnetError, TrainingInterrupted
from hamnet.evaluate.inputs import PROTOCOLS
from hamnet.precision import PRECISIONS
from hamnet.timing import RELEASED_SNIPPET_SECONDS


def _paths(values: list[str] | None) -> list[Path]:
    return [Path(v).expanduser().resolve() for v in values or []]


def _path(value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()  # /dev/stdout stays itself: hamnet.io writes into it
    return path if str(path).startswith(("/dev/", "/proc/")) else path.resolve()


def _seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected integers such as 0,1,2") from None


def _config(args: argparse.Namespace):
    from hamnet.config import load_config, make_config, with_overrides

    overrides = list(args.set or [])
    if getattr(args, "method", None):
        overrides.insert(0, f"method={args.method}")
    if getattr(args, "allow_pickle", False):
        overrides.append("data.allow_pickle=true")
    if getattr(args, "config", None):
        return with_overrides(load_config(_path(args.config)), overrides)
    return make_config(args.preset, getattr(args, "variant", "all"), overrides)


# --- commands ---------------------------------------------------------------------------


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    print(yaml.safe_dump(_config(args).to_dict(), sort_keys=False), end="")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from hamnet.data.synthetic import make_synthetic

    root = make_synthetic(
        _path(args.out),
        like=_path(args.like),
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


def cmd_convert(args: argparse.Namespace) -> int:
    from hamnet.data.features import convert_to_packed, open_feature_store
    from hamnet.data.layout import convert_dataset
    from hamnet.io import input_files, refuse_overwriting_inputs

    out = _path(args.out)
    written = [p for p in input_files(out) if not p.is_dir()]  # files it may replace
    refuse_overwriting_inputs(written, input_files(_path(args.data), _path(args.features)))
    if args.data and args.format == "npy":
        from hamnet.data.layout import convert_dataset_npy

        root = convert_dataset_npy(
            _path(args.data),
            out,
            allow_pickle=args.allow_pickle,
            snippet_seconds=args.snippet_seconds,
        )
        print(f"plain dataset (gt.json, features/<video>.npy, dataset.json) written to {root}")
        return 0
    if args.data:
        root = convert_dataset(
            _path(args.data),
            out,
            dtype=args.dtype,
            allow_pickle=args.allow_pickle,
            verify=args.verify,
        )
        if args.verify:
            print("verified: every video identical to the source, checksums stored")
        print(f"dataset with packed features and ground-truth JSON written to {root}")
        return 0
    store = open_feature_store(_path(args.features), allow_pickle=args.allow_pickle)
    packed = convert_to_packed(store, out, dtype=args.dtype)
    if args.verify:
        from hamnet.data.features import verify_packed

        verify_packed(store, packed)
        print("verified: every video identical")
    print(f"packed store written to {out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from hamnet.data.layout import check_dataset

    print(check_dataset(_path(args.root), progress=not args.quiet))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from hamnet.engine.distributed import is_main_process
    from hamnet.engine.experiments import method_label, train_seeds, write_tables

    config = _config(args)
    seeds = _seeds(args.seeds) or [config.train.seed]
    name = f"{config.preset}-{config.variant}"
    if config.method != "hamnet":
        name = f"{config.preset}-{config.method}"
    run_dir = _path(args.run_dir) or Path.cwd().resolve() / "runs" / name
    summary = train_seeds(
        config,
        _path(args.data),
        run_dir,
        seeds,
        label=method_label(config),
        resume=args.resume,
        jobs=args.jobs,
    )
    if not is_main_process():
        return 0
    md, _ = write_tables([summary], run_dir / "results", title=f"{config.preset}")
    print(md.read_text(), end="")
    print(f"run folder: {run_dir}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from hamnet.engine.tester import test_checkpoint
    from hamnet.evaluate.report import format_table, parse_tiou

    evaluation = test_checkpoint(
        _path(args.checkpoint),
        _path(args.data),
        _path(args.out),
        save_cas=_path(args.save_cas),
        protocol=args.protocol,
        tiou=parse_tiou(args.tiou) if args.tiou else None,
        subset=args.subset,
        result_json=_path(args.json),
        device=args.device,
        allow_pickle=args.allow_pickle,
        overrides=args.set,
    )
    print(format_table(evaluation.result, per_class=args.per_class))
    if evaluation.selected_on != "none":
        from hamnet.engine.selection import NOTES

        print(f"model selection: {NOTES[evaluation.selected_on]}")
    print(f"classification mAP: {100 * evaluation.classification_map:.2f}")
    print(f"localization source: {evaluation.source}")
    print(f"detections written to {_path(args.out)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from hamnet.evaluate.report import evaluate_files, format_table, parse_tiou
    from hamnet.io import atomic_write_json, refuse_overwriting_inputs

    refuse_overwriting_inputs(
        [_path(args.json)], [_path(args.gt), _path(args.pred), _path(args.ambiguous)]
    )
    result = evaluate_files(
        _path(args.gt),
        _path(args.pred),
        subset=args.subset,
        tiou=parse_tiou(args.tiou),
        protocol=args.protocol,
        ambiguous_path=_path(args.ambiguous),
        snippet_seconds=args.snippet_seconds,
    )
    print(format_table(result, per_class=args.per_class))
    if args.json:
        try:
            atomic_write_json(_path(args.json), result.to_dict(), indent=1)
        except OSError as error:
            problem = f"{_path(args.json)}: cannot write the result ({error.strerror})"
            raise HamnetError(problem) from None
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from hamnet.engine.predict import predict, write_detections
    from hamnet.io import input_files, refuse_overwriting_inputs

    inputs = [_path(args.checkpoint), *input_files(*_paths(args.features), depth=1)]
    refuse_overwriting_inputs([_path(args.out)], inputs)
    detections = predict(
        _path(args.checkpoint),
        _paths(args.features),
        min_score=args.min_score,
        top_k=args.top_k,
        device=args.device,
        allow_pickle=args.allow_pickle,
        overrides=args.set,
    )
    text = write_detections(detections, _path(args.out), args.format)
    if args.out:
        print(f"{len(detections)} detections written to {_path(args.out)}")
    else:
        print(text, end="")
    return 0


def cmd_plot_video(args: argparse.Namespace) -> int:
    from hamnet.data.annotations import load_gt_json
    from hamnet.io import refuse_overwriting_inputs
    from hamnet.localize.detections import load_detections
    from hamnet.viz.outputs import load_cas_npz
    from hamnet.viz.plots import plot_video

    refuse_overwriting_inputs(_paths(args.out), [_path(args.npz), _path(args.gt), _path(args.pred)])
    outputs = load_cas_npz(_path(args.npz))
    name = _path(args.npz).stem
    truth = []
    if args.gt:
        truth = list(load_gt_json(_path(args.gt)).video(name).segments)
    found = [d for d in load_detections(_path(args.pred)) if d.video == name] if args.pred else []
    written = plot_video(
        outputs,
        _paths(args.out),
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

    paths = _paths(args.results)
    refuse_overwriting_inputs(_paths(args.out), paths)
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
    written = plot_map_vs_tiou(runs, _paths(args.out), protocol=protocols.pop())
    print("\n".join(str(p) for p in written))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from hamnet.diagnose.command import AnalysisRequest, analyze
    from hamnet.evaluate.report import parse_tiou

    request = AnalysisRequest(
        out=_path(args.out),
        run_dir=_path(args.source),
        data=_path(args.data),
        gt=_path(args.gt),
        pred=_path(args.pred),
        subset=args.subset,
        tiou=parse_tiou(args.tiou) if args.tiou else None,
        bins=args.bins,
        device=args.device,
    )
    _, written = analyze(request)
    print("\n".join(str(p) for p in written))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from hamnet.report.build import build_report

    out = build_report(_path(args.run_dir), _path(args.out), data=_path(args.data))
    print(f"report written to {out}")
    return 0


def cmd_table(args: argparse.Namespace) -> int:
    from hamnet.engine.experiments import markdown_table, summary_from_result, write_tables

    paths = _paths(args.results)
    labels = args.labels.split(",") if args.labels else [None] * len(paths)
    if len(labels) != len(paths):
        raise ConfigError(f"--labels names {len(labels)} rows for {len(paths)} result files")
    rows = [summary_from_result(p, label) for p, label in zip(paths, labels, strict=True)]
    if len({(row.protocol, tuple(row.tiou)) for row in rows}) > 1:
        raise ConfigError("the results use different protocols or tIoU thresholds: not comparable")
    if args.out:
        write_tables(rows, _path(args.out), title=args.title)
    print(markdown_table(rows, args.title), end="")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from hamnet.config import VARIANTS
    from hamnet.engine.experiments import ablate

    if args.methods:
        return _ablate_methods(args)
    config = _config(args)
    variants = args.variants.split(",") if args.variants else list(VARIANTS)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant {unknown[0]!r} (known: {', '.join(VARIANTS)})")
    out = _path(args.out) or Path.cwd().resolve() / "runs" / f"ablation-{config.preset}"
    seeds = _seeds(args.seeds) or [config.train.seed]
    ablate(config, _path(args.data), out, seeds, variants=variants, jobs=args.jobs)
    print((out / "ablation.md").read_text(), end="")
    print(f"tables: {out / 'ablation.md'}, {out / 'ablation.csv'}")
    return 0


def _ablate_methods(args: argparse.Namespace) -> int:
    from hamnet.config import make_config
    from hamnet.engine.experiments import ablate_methods
    from hamnet.methods import canonical_method

    if args.config or args.variants:
        raise ConfigError(
            "--methods takes --preset (each method's own values), not --config/--variants"
        )
    names = [canonical_method(m.strip()) for m in args.methods.split(",") if m.strip()]
    configs = {m: make_config(args.preset, "all", list(args.set or []), method=m) for m in names}
    first = next(iter(configs.values()))
    out = _path(args.out) or Path.cwd().resolve() / "runs" / f"methods-{first.preset}"
    ablate_methods(
        configs, _path(args.data), out, _seeds(args.seeds) or [first.train.seed], jobs=args.jobs
    )
    print((out / "ablation.md").read_text(), end="")
    print(f"tables: {out / 'ablation.md'}, {out / 'ablation.csv'}")
    return 0


def cmd_import_checkpoint(args: argparse.Namespace) -> int:
    from hamnet.engine.import_checkpoint import import_authors_checkpoint

    out = import_authors_checkpoint(
        _path(args.original), _path(args.out), preset=args.preset, classes_from=_path(args.data)
    )
    print(f"hamnet checkpoint written to {out}")
    return 0


def cmd_extract(args: argparse.Namespace) -> int:
    from hamnet.extract.pipeline import extract_videos

    report = extract_videos(
        _paths(args.videos),
        _path(args.out),
        streams=tuple(s.strip() for s in args.streams.split(",") if s.strip()),
        device=args.device,
        precision=args.precision,
        flow=args.flow,
        rgb_weights=_path(args.rgb_weights),
        flow_weights=_path(args.flow_weights),
        batch_size=args.batch_size,
    )
    print(report.summary() if hasattr(report, "summary") else report)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from hamnet.demo import run_demo

    run_demo(_path(args.out), quick=args.quick)
    return 0


# --- the parser ---------------------------------------------------------------------------


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="thumos14", help="thumos14, activitynet12 or demo")
    parser.add_argument(
        "--method",
        help="hamnet (default), stpn, w-talc or basnet: the method and its values for the preset",
    )
    parser.add_argument("--variant", default="all", help="ablation row (see 'hamnet config')")
    parser.add_argument("--config", help="a YAML config (e.g. a run's config.yaml)")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.epochs=5 (repeatable)",
    )


def _add_jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=_positive_int,
        help="trainings run at once, one process each (default: on a GPU as many as fit "
        "in its memory, on the CPU 1)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_inference_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a localization / evaluation setting, e.g. localize.class_thresh=0.1",
    )


def _add_pickle_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accepted for compatibility; no effect (released files are always read with a "
        "restricted unpickler that cannot run code)",
    )


def _parser_setup(sub) -> None:
    p = sub.add_parser("demo", help="synthetic data -> train -> evaluate -> table and figure")
    p.add_argument("--out", help="output folder (default: ~/hamnet-demo)")
    p.add_argument("--quick", action="store_true", help="a reduced run (CI, smoke tests)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("config", help="print a resolved config as YAML")
    _add_config_options(p)
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("synth", help="write a synthetic dataset in the released layout")
    p.add_argument("--out", required=True)
    p.add_argument("--like", help="a real annotation folder to lay the features on")
    p.add_argument("--classes", type=int, default=8)
    p.add_argument("--videos", type=int, default=120)
    p.add_argument("--min-duration", type=float, default=30.0)
    p.add_argument("--max-duration", type=float, default=90.0)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-videos", type=int, help="with --like: at most this many per subset")
    p.add_argument(
        "--no-released", action="store_true", help="skip the pickled released-format feature file"
    )
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("convert", help="released layout -> packed store + ground-truth JSON")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a dataset root in the released layout")
    source.add_argument("--features", help="a feature file or folder to pack")
    p.add_argument("--out", required=True)
    p.add_argument("--dtype", default="float32", choices=["float32", "float16"])
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
        help="with --format npy: the stride recorded in dataset.json (default 0.64)",
    )
    p.add_argument("--verify", action="store_true", help="re-read and compare every video")
    _add_pickle_option(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("check", help="verify a dataset root: annotations, features, checksums")
    p.add_argument("root", help="a dataset root (released layout or converted)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_check)


def _parser_models(sub) -> None:
    p = sub.add_parser("train", help="train a method (default HAM-Net) on a dataset root")
    _add_config_options(p)
    p.add_argument("--data", required=True, help="dataset root (released layout or converted)")
    p.add_argument("--run-dir", help="run folder (default: ./runs/<preset>-<variant>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's last.pt")
    p.add_argument("--seeds", help="e.g. 0,1,2: one run per seed, mean ± std reported")
    _add_jobs_option(p)
    _add_pickle_option(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("test", help="evaluate a checkpoint on the test split")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="detections JSON (ActivityNet style)")
    p.add_argument("--save-cas", help="folder for per-video T-CAS / attention .npz files")
    p.add_argument("--protocol", choices=PROTOCOLS)
    p.add_argument("--tiou", help="e.g. 0.1:0.7:0.1 (default: the preset's)")
    _add_inference_set(p)
    p.add_argument("--subset", help="default: the preset's test subset")
    p.add_argument("--json", help="write the result (mAP per tIoU, average) here")
    p.add_argument("--per-class", action="store_true")
    p.add_argument("--device", default="auto")
    _add_pickle_option(p)
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("predict", help="localize actions in new videos' features")
    p.add_argument("--checkpoint", required=True)
    p.add_argument(
        "--features",
        required=True,
        nargs="+",
        help="packed store, folder of .npy files, or single [T, D] .npy files",
    )
    p.add_argument("--out", help="output file (default: standard output)")
    p.add_argument("--format", default="json", choices=["json", "csv"])
    p.add_argument("--min-score", type=float, default=0.0)
    p.add_argument("--top-k", type=int, help="at most K detections per video")
    _add_inference_set(p)
    p.add_argument("--device", default="auto")
    _add_pickle_option(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ablate", help="train the paper's ablation rows and write the table")
    _add_config_options(p)
    p.add_argument("--data", required=True)
    p.add_argument("--out", help="folder (default: ./runs/ablation-<preset>)")
    p.add_argument("--seeds", help="e.g. 0,1,2")
    p.add_argument("--variants", help="comma-separated subset of the rows")
    _add_jobs_option(p)
    p.add_argument(
        "--methods", help="e.g. hamnet,stpn,w-talc,basnet: one row per method (with --preset)"
    )
    _add_pickle_option(p)
    p.set_defaults(func=cmd_ablate)

    p = sub.add_parser("import-checkpoint", help="convert an authors' checkpoint")
    p.add_argument("original", help="checkpoint saved by the authors' released code")
    p.add_argument("out", help="hamnet checkpoint to write")
    p.add_argument(
        "--preset",
        choices=["thumos14", "activitynet12"],
        help="default: inferred from the class count (20: thumos14, 100: activitynet12)",
    )
    p.add_argument("--data", help="dataset root whose class list to record (default: preset's)")
    p.set_defaults(func=cmd_import_checkpoint)


def _parser_tools(sub) -> None:
    p = sub.add_parser("eval", help="score a detections file against ground truth")
    p.add_argument("--gt", required=True)
    p.add_argument("--pred", required=True)
    p.add_argument("--subset")
    p.add_argument("--tiou", default="0.1:0.7:0.1")
    p.add_argument("--protocol", default="anet", choices=PROTOCOLS)
    p.add_argument(
        "--snippet-seconds",
        type=float,
        default=RELEASED_SNIPPET_SECONDS,
        help="feature stride for the wtalc protocol (default 0.64: 16 frames at 25 fps)",
    )
    p.add_argument("--ambiguous", help="THUMOS14 Ambiguous_test.txt (thumos14, wtalc)")
    p.add_argument("--json", help="write the result here")
    p.add_argument("--per-class", action="store_true")
    p.set_defaults(func=cmd_eval)

    plot = sub.add_parser("plot", help="figures").add_subparsers(dest="figure", required=True)
    p = plot.add_parser("video", help="one video: ground truth, attention, T-CAS, detections")
    p.add_argument("--npz", required=True, help="a file written by 'hamnet test --save-cas'")
    p.add_argument("--gt", help="ground-truth JSON")
    p.add_argument("--pred", help="detections JSON")
    p.add_argument("--min-score", type=float, default=0.0)
    p.add_argument("--tiou", type=float, default=0.5, help="tIoU for true/false positive marks")
    p.add_argument(
        "--thresholds", help="attention lines: comma list or 'none' (default: localize's)"
    )
    p.add_argument("--out", required=True, nargs="+", help="one or more .png / .svg paths")
    p.set_defaults(func=cmd_plot_video)
    p = plot.add_parser("map", help="mAP against tIoU for one or several result JSONs")
    p.add_argument("results", nargs="+")
    p.add_argument("--labels", help="comma-separated legend names (default: folder/file)")
    p.add_argument("--out", required=True, nargs="+")
    p.set_defaults(func=cmd_plot_map)

    p = sub.add_parser("analyze", help="DETAD-style diagnosis: error types, misses, sensitivity")
    p.add_argument("source", nargs="?", help="a run folder (its test outputs are used or made)")
    p.add_argument("--gt", help="ground-truth JSON")
    p.add_argument("--pred", help="detections JSON (e.g. written by 'hamnet test --out')")
    p.add_argument("--data", help="dataset root (ground truth; for a run folder: to test it)")
    p.add_argument("--out", required=True, help="folder for diagnosis.json and the charts")
    p.add_argument("--subset", help="default: the run's test subset / the detected videos'")
    p.add_argument("--tiou", help="default: DETAD's (0.5 THUMOS14, 0.5:0.95:0.05 ActivityNet)")
    p.add_argument("--bins", choices=["thumos14", "activitynet"], help="DETAD's bin set")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("report", help="one self-contained HTML page about a run")
    p.add_argument("run_dir", help="a run folder (config.yaml, metrics.jsonl, checkpoints)")
    p.add_argument("--data", help="dataset root, to make the test outputs if missing")
    p.add_argument("--out", help="HTML file (default: RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("table", help="result JSONs as the paper's main table (markdown, CSV)")
    p.add_argument("results", nargs="+", help="files written by 'hamnet test --json'")
    p.add_argument("--labels", help="comma-separated row names (default: file names)")
    p.add_argument("--title", default="Results")
    p.add_argument("--out", help="write OUT.md and OUT.csv")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("extract", help="I3D RGB + flow features from raw videos")
    p.add_argument("videos", nargs="+")
    p.add_argument("--out", required=True, help="packed feature store to write or extend")
    p.add_argument("--streams", default="rgb,flow")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS)
    p.add_argument("--flow", default="tvl1", choices=["tvl1", "dis"])
    p.add_argument("--rgb-weights")
    p.add_argument("--flow-weights")
    p.add_argument("--batch-size", type=int, default=8)
    p.set_defaults(func=cmd_extract)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hamnet",
        description="Weakly-supervised temporal action localization with HAM-Net.",
    )
    parser.add_argument("--version", action="version", version=f"hamnet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _parser_setup(sub)
    _parser_models(sub)
    _parser_tools(sub)
    return parser


def describe_os_error(error: OSError) -> str:
    """One line: the path(s) and the system's reason, e.g. 'RUN/last.pt: No space left'."""
    reason = error.strerror or str(error) or type(error).__name__
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    if not paths:
        return f"{reason} ({type(error).__name__})"
    return f"{' -> '.join(map(str, paths))}: {reason}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    try:
        return args.func(args)
    except HamnetError as error:
        print(f"hamnet: error: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:  # the trainer saved what it could; say what
        print(f"hamnet: {stop}", file=sys.stderr)
        return stop.exit_status
    except OSError as error:  # read-only folder, full disk, permissions: name the path
        print(f"hamnet: error: {describe_os_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hamnet: interrupted (rerun training with --resume to continue)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
