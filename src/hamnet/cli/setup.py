"""The first commands: a demo run, a resolved config."""

from __future__ import annotations

import argparse

from hamnet.cli.common import (
    add_config_options,
    as_path,
    config_from_args,
)


def add_demo_parser(sub) -> None:
    p = sub.add_parser("demo", help="synthetic data -> train -> evaluate -> table and figure")
    p.add_argument("--out", help="output folder (default: ~/hamnet-demo)")
    p.add_argument("--quick", action="store_true", help="a reduced run (CI, smoke tests)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from hamnet.demo import run_demo

    run_demo(as_path(args.out), quick=args.quick)
    return 0


def add_config_parser(sub) -> None:
    p = sub.add_parser("config", help="print a resolved config as YAML")
    add_config_options(p)
    p.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    print(yaml.safe_dump(config_from_args(args).to_dict(), sort_keys=False), end="")
    return 0
