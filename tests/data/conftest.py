"""Tiny synthetic datasets for the data-layer tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hamnet.data.synthetic import make_synthetic


@pytest.fixture(scope="session")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A from-scratch dataset root: 4 classes, 12 videos, D = 16, released file written."""
    out = tmp_path_factory.mktemp("tiny")
    return make_synthetic(
        out,
        num_classes=4,
        num_videos=12,
        duration_range=(8.0, 20.0),
        feature_dim=16,
        seed=3,
        progress=False,
    )
