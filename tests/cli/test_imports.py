"""What the evaluation commands import: no torch (a second of a process that only
scores files), no plotting for ``eval``."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from hamnet.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("torch", "matplotlib", "tqdm") if m in sys.modules)
print("loaded:" + ",".join(heavy))
sys.exit(code)
"""


def _loaded(*argv) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, argv)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    line = [x for x in done.stdout.splitlines() if x.startswith("loaded:")][-1]
    return set(filter(None, line.removeprefix("loaded:").split(",")))


@pytest.fixture
def golden(shared_dir):
    folder = shared_dir / "fixtures" / "eval"
    return folder / "thumos40_gt.json", folder / "thumos40_pred.json"


def test_eval_imports_neither_torch_nor_matplotlib(golden, tmp_path):
    gt, pred = golden
    assert _loaded("eval", "--gt", gt, "--pred", pred, "--json", tmp_path / "r.json") == set()


def test_analyze_imports_no_torch(golden, tmp_path):
    gt, pred = golden
    assert "torch" not in _loaded("analyze", "--gt", gt, "--pred", pred, "--out", tmp_path / "a")


def test_convert_detections_imports_no_torch(tmp_path):
    from pathlib import Path

    excerpt = Path(__file__).resolve().parents[1] / "evaluate" / "fixtures"
    pred, gt = excerpt / "pmil_excerpt.json", excerpt / "pmil_excerpt_gt.json"
    args = ["convert-detections", pred, tmp_path / "o.json", "--format", "pmil", "--gt", gt]
    assert "torch" not in _loaded(*args)
