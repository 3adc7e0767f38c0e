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

# each command's name and the function adding its parser, in the order of the help text
COMMANDS = (
    ("demo", setup.add_demo_parser),
    ("config", setup.add_config_parser),
    ("synth", data.add_synth_parser),
    ("convert", data.add_convert_parser),
    ("check", data.add_check_parser),
    ("train", training.add_train_parser),
    ("test", inference.add_test_parser),
    ("predict", inference.add_predict_parser),
    ("pseudo-label", inference.add_pseudo_label_parser),
    ("ablate", training.add_ablate_parser),
    ("import-checkpoint", weights.add_import_checkpoint_parser),
    ("eval", evaluation.add_eval_parser),
    ("convert-detections", evaluation.add_convert_detections_parser),
    ("plot", figures.add_plot_parser),
    ("analyze", evaluation.add_analyze_parser),
    ("report", evaluation.add_report_parser),
    ("table", evaluation.add_table_parser),
    ("extract", weights.add_extract_parser),
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``command`` one that holds only that command's parser
    (the same arguments, help and errors for it, a tenth of the time to build)."""
    parser = argparse.ArgumentParser(
        prog="hamnet",
        description="Weakly-supervised temporal action localization with HAM-Net.",
    )
    parser.add_argument("--version", action="version", version=f"hamnet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, add_parser in COMMANDS:
        if command is None or name == command:
            add_parser(sub)
    return parser


def named_command(argv: list[str]) -> str | None:
    """The command ``argv`` names (its first word not starting with "-"), None when it
    names none or an unknown one (then the whole parser explains)."""
    word = next((a for a in argv if not a.startswith("-")), None)
    return word if word in dict(COMMANDS) else None


def describe_os_error(error: OSError) -> str:
    """One line: the path(s) and the system's reason, e.g. 'RUN/last.pt: No space left'."""
    reason = error.strerror or str(error) or type(error).__name__
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    if not paths:
        return f"{reason} ({type(error).__name__})"
    return f"{' -> '.join(map(str, paths))}: {reason}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(named_command(argv)).parse_args(argv)
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
