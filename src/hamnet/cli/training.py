"""Training commands: one run (or seeds) and the ablation tables."""

from __future__ import annotations

import argparse
from pathlib import Path

from hamnet.cli.common import (
    add_config_options,
    add_jobs_option,
    add_pickle_option,
    as_path,
    as_paths,
    config_from_args,
    parse_seeds,
)
from hamnet.errors import ConfigError
from hamnet.methods import METHODS


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a method (default HAM-Net) on a dataset root")
    add_config_options(p)
    p.add_argument("--data", required=True, help="dataset root (released layout or converted)")
    p.add_argument("--run-dir", help="run folder (default: ./runs/<preset>-<variant>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's last.pt")
    p.add_argument("--seeds", help="e.g. 0,1,2: one run per seed, mean ± std reported")
    p.add_argument(
        "--proposals",
        action="append",
        metavar="RUN|FILE",
        help="a second stage (pmil): a trained run folder (its checkpoint is tested on the "
        "training and test subsets) or a detections / P-MIL proposals JSON (repeatable)",
    )
    p.add_argument(
        "--pseudo-labels",
        metavar="FILE|RUN",
        help="a second stage (student): a pseudo-label file (hamnet pseudo-label), a "
        "detections file or a trained run (FuSTAL's selection on the training subset)",
    )
    p.add_argument(
        "--teacher",
        metavar="METHOD|RUN",
        help="a second stage: train this method first in RUN_DIR/teacher (or use this run "
        "folder) and take its detections as the input",
    )
    add_jobs_option(p)
    add_pickle_option(p)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from hamnet.experiments.ablation import method_label
    from hamnet.experiments.seeds import train_seeds
    from hamnet.experiments.stages import prepare_stage_input, stage_notes
    from hamnet.experiments.tables import write_tables
    from hamnet.train.distributed import is_main_process

    config = config_from_args(args)
    seeds = parse_seeds(args.seeds) or [config.train.seed]
    name = f"{config.preset}-{config.variant}"
    if config.method != "hamnet":
        name = f"{config.preset}-{config.method}"
    run_dir = as_path(args.run_dir) or Path.cwd().resolve() / "runs" / name
    labels = [args.pseudo_labels] if args.pseudo_labels else []
    sources = as_paths([*(args.proposals or []), *labels])
    prepare_stage_input(config, as_path(args.data), run_dir, sources, args.teacher)
    summary = train_seeds(
        config,
        as_path(args.data),
        run_dir,
        seeds,
        label=method_label(config),
        resume=args.resume,
        jobs=args.jobs,
    )
    if not is_main_process():
        return 0
    md, _ = write_tables(
        [summary], run_dir / "results", title=f"{config.preset}", notes=stage_notes(run_dir)
    )
    print(md.read_text(), end="")
    print(f"run folder: {run_dir}")
    return 0


def add_ablate_parser(sub) -> None:
    p = sub.add_parser("ablate", help="train the paper's ablation rows and write the table")
    add_config_options(p)
    p.add_argument("--data", required=True, help="dataset root (released layout or converted)")
    p.add_argument("--out", help="folder (default: ./runs/ablation-<preset>)")
    p.add_argument("--seeds", help="e.g. 0,1,2")
    p.add_argument("--variants", help="comma-separated subset of the rows")
    add_jobs_option(p)
    p.add_argument(
        "--methods",
        help=f"e.g. {','.join(METHODS)}: one row per method (with --preset)",
    )
    add_pickle_option(p)
    p.set_defaults(func=cmd_ablate)


def cmd_ablate(args: argparse.Namespace) -> int:
    from hamnet.experiments.ablation import ablate

    if args.methods:
        return _ablate_methods(args)
    config = config_from_args(args)
    variants = args.variants.split(",") if args.variants else None
    out = as_path(args.out) or Path.cwd().resolve() / "runs" / f"ablation-{config.preset}"
    seeds = parse_seeds(args.seeds) or [config.train.seed]
    ablate(config, as_path(args.data), out, seeds, variants=variants, jobs=args.jobs)
    print((out / "ablation.md").read_text(), end="")
    print(f"tables: {out / 'ablation.md'}, {out / 'ablation.csv'}")
    return 0


def _ablate_methods(args: argparse.Namespace) -> int:
    from hamnet.config import make_config
    from hamnet.experiments.ablation import ablate_methods
    from hamnet.methods import canonical_method

    if args.config or args.variants:
        raise ConfigError(
            "--methods takes --preset (each method's own values), not --config/--variants"
        )

    def config(method: str):
        return make_config(args.preset, "all", list(args.set or []), method=method)

    configs, teachers = {}, {}
    for row in (m.strip() for m in args.methods.split(",") if m.strip()):
        stages = [canonical_method(m) for m in row.split("+")]
        if len(stages) > 2:
            raise ConfigError(f"--methods {row}: one teacher and one second stage at most")
        name = "+".join(stages)
        configs[name] = config(stages[-1])
        if len(stages) == 2:
            teachers[name] = config(stages[0])
    first = next(iter(configs.values()))
    out = as_path(args.out) or Path.cwd().resolve() / "runs" / f"methods-{first.preset}"
    ablate_methods(
        configs,
        as_path(args.data),
        out,
        parse_seeds(args.seeds) or [first.train.seed],
        jobs=args.jobs,
        teachers=teachers,
    )
    print((out / "ablation.md").read_text(), end="")
    print(f"tables: {out / 'ablation.md'}, {out / 'ablation.csv'}")
    return 0
