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
            "the shared folder with the real annotations (../shared) is not beside the checkout; set HAMNET_SHARED"
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
