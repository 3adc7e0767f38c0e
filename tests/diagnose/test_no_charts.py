"""``AnalysisRequest(charts=False)``: diagnosis.json only, the same numbers, no plotting
library imported (what bench_analyze.py times against DETAD without figures)."""

from __future__ import annotations

import json
import subprocess
import sys

from hamnet.data.annotations import save_gt_json
from hamnet.localize.detections import save_detections

from .test_analysis import ERROR_CASE, ERROR_CASE_GT

PROBE = """
import sys
from pathlib import Path
from hamnet.diagnose.command import AnalysisRequest, analyze
gt, pred, out = map(Path, sys.argv[1:4])
_, written = analyze(AnalysisRequest(out=out, gt=gt, pred=pred, bins="thumos14", charts=False))
print([p.name for p in written], "matplotlib" in sys.modules, "torch" in sys.modules)
"""


def test_without_charts_writes_only_the_json(tmp_path):
    save_gt_json(ERROR_CASE_GT, tmp_path / "gt.json")
    save_detections(tmp_path / "det.json", ERROR_CASE)
    out = tmp_path / "diag"
    args = [tmp_path / "gt.json", tmp_path / "det.json", out]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['diagnosis.json']", "False", "False"]
    assert sorted(p.name for p in out.iterdir()) == ["diagnosis.json"]
    data = json.loads((out / "diagnosis.json").read_text())
    assert data["false_positive"]["counts"]["0.5"]["background"] == 3
