"""A tiny trained run with its report, shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_root, tiny_overrides) -> Path:
    from hamnet.config import make_config
    from hamnet.train.trainer import train

    run = tmp_path_factory.mktemp("run") / "demo-all"
    config = make_config("demo", "all", [*tiny_overrides, "train.tensorboard=false"])
    train(config, tiny_root, run, progress=False)
    return run


@pytest.fixture(scope="module")
def tiny_report(tiny_run, tiny_root) -> Path:
    from hamnet.cli import main

    assert main(["report", str(tiny_run), "--data", str(tiny_root)]) == 0
    return tiny_run / "report.html"
