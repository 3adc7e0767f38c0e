"""Shared fixtures: where the real annotation files are, and small synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path | None:
    """``$HAMNET_SHARED``, else ``../shared`` beside the checkout (as laid out in CI)."""
    candidate = os.environ.get("HAMNET_SHARED")
    path = Path(candidate) if candidate else REPO.parent / "shared"
    return path if (path / "data").is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if path is None:
        pytest.skip(
            "the shared folder with the real annotations (../shared) is not beside the "
            "checkout; set HAMNET_SHARED"
        )
    return path


@pytest.fixture(scope="session")
def thumos_annotations_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "thumos14"


@pytest.fixture(scope="session")
def anet_annotations_dir(shared_dir: Path) -> Path:
    return shared_dir / "data" / "activitynet12"


@pytest.fixture(scope="session")
def eval_fixtures_dir(shared_dir: Path) -> Path:
    return shared_dir / "fixtures" / "eval"


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """A tiny synthetic dataset root (4 classes, 24 videos, width 16) shared by many tests."""
    from hamnet.data.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("tiny")
    return make_synthetic(
        out,
        num_classes=4,
        num_videos=24,
        duration_range=(20.0, 40.0),
        feature_dim=16,
        seed=3,
        progress=False,
    )


TINY_OVERRIDES = [
    "data.feature_dim=16",
    "data.num_segments=32",
    "model.hidden_dim=16",
    "model.attention_dim=8",
    "train.batch_size=6",
    "train.epochs=2",
    "train.lr=0.001",
]


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    return list(TINY_OVERRIDES)


@pytest.fixture
def tiny_config():
    """Build a demo config sized for ``tiny_root``: ``tiny_config(variant, *overrides)``."""
    from hamnet.config import make_config

    def build(variant: str = "all", *overrides: str):
        return make_config("demo", variant, [*TINY_OVERRIDES, *overrides])

    return build


@pytest.fixture
def cli_line(capsys):
    """``cli_line(*argv)``: run the CLI; its exit code and its one stderr line (INFO and
    WARNING lines aside). Fails when it printed more than one."""
    from hamnet.cli import main

    def run(*argv) -> tuple[int, str]:
        code = main([str(a) for a in argv])
        _, err = capsys.readouterr()
        lines = [x for x in err.strip().splitlines() if not x.startswith(("INFO", "WARN"))]
        assert len(lines) == 1, err
        return code, lines[0]

    return run
