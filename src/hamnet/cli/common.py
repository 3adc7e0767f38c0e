"""What several commands share: paths, seeds, the config from the options, options."""

from __future__ import annotations

import argparse
from pathlib import Path

from hamnet.errors import ConfigError
from hamnet.methods import METHODS


def as_paths(values: list[str] | None) -> list[Path]:
    return [Path(v).expanduser().resolve() for v in values or []]


def as_path(value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()  # /dev/stdout stays itself: hamnet.io writes into it
    return path if str(path).startswith(("/dev/", "/proc/")) else path.resolve()


def parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: expected integers such as 0,1,2") from None


def config_from_args(args: argparse.Namespace):
    from hamnet.config import load_config, make_config, with_overrides

    overrides = list(args.set or [])
    if getattr(args, "method", None):
        overrides.insert(0, f"method={args.method}")
    if getattr(args, "config", None):
        return with_overrides(load_config(as_path(args.config)), overrides)
    return make_config(args.preset, getattr(args, "variant", "all"), overrides)


def add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="thumos14", help="thumos14, activitynet12 or demo")
    parser.add_argument(
        "--method",
        help=f"one of {', '.join(METHODS)} (default hamnet): the method and its values for "
        "the preset",
    )
    parser.add_argument(
        "--variant",
        default="all",
        help="HAM-Net ablation row, e.g. bcl+sal (listed at the end of 'hamnet config')",
    )
    parser.add_argument("--config", help="a YAML config (e.g. a run's config.yaml)")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.epochs=5 (repeatable)",
    )


def add_jobs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs",
        type=positive_int,
        help="trainings run at once, one process each (default: on a GPU as many as fit "
        "in its memory, on the CPU 1)",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_inference_set(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a localization / evaluation setting, e.g. localize.class_thresh=0.1, "
        "or a method's test-time option (CO2-Net, DELU: method_options.numpy_rules=2)",
    )


def add_pickle_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-pickle",
        action="store_true",
        help="accepted for compatibility; no effect (released files are always read with a "
        "restricted unpickler that cannot run code)",
    )
