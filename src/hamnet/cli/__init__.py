"""The ``hamnet`` command: the only code that reads argv. Each command's parser stands
beside its handler in one module per group (data, training, inference, evaluation,
figures, weights, setup); a handler turns the arguments into one call.

Expected failures (:class:`hamnet.errors.HamnetError`) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from hamnet import __version__
from hamnet.cli import data, evaluation, figures, inference, setup, training, weights
from hamnet.errors import HamnetError, TrainingInterrupted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hamnet",
        description="Weakly-supervised temporal action localization with HAM-Net.",
    )
    parser.add_argument("--version", action="version", version=f"hamnet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    setup.add_demo_parser(sub)
    setup.add_config_parser(sub)
    data.add_synth_parser(sub)
    data.add_convert_parser(sub)
    data.add_check_parser(sub)
    training.add_train_parser(sub)
    inference.add_test_parser(sub)
    inference.add_predict_parser(sub)
    inference.add_pseudo_label_parser(sub)
    training.add_ablate_parser(sub)
    weights.add_import_checkpoint_parser(sub)
    evaluation.add_eval_parser(sub)
    evaluation.add_convert_detections_parser(sub)
    figures.add_plot_parser(sub)
    evaluation.add_analyze_parser(sub)
    evaluation.add_report_parser(sub)
    evaluation.add_table_parser(sub)
    weights.add_extract_parser(sub)
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
        hint = "rerun it to continue" if args.command == "demo" else "rerun training with --resume"
        print(f"hamnet: interrupted ({hint})", file=sys.stderr)
        return 130
