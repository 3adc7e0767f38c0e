"""run_delu_seeds.py summary: the per-seed records and each code and budget's spread (issue 25)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

DRIVER = Path(__file__).resolve().parents[2] / "tools" / "reference" / "run_delu_seeds.py"


@pytest.fixture(scope="module")
def driver():
    spec = importlib.util.spec_from_file_location("run_delu_seeds", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _record(code: str, iters: int, seed: str, mAP: float) -> dict:
    return {"code": code, "iterations": iters, "seed": seed, "average_mAP": mAP}


def test_spreads_group_by_code_and_budget(driver):
    records = [
        _record("official", 300, "0", 0.10),
        _record("hamnet", 300, "0", 0.69),
        _record("official", 300, "1", 0.04),
        _record("official", 300, "2", 0.01),
        _record("hamnet", 1000, "0", 2.5),
    ]
    spreads = driver.seed_spreads(records)
    assert [(s["code"], s["iterations"], s["seeds"]) for s in spreads] == [
        ("hamnet", 300, "0"),
        ("official", 300, "0,1,2"),
        ("hamnet", 1000, "0"),
    ]
    official = spreads[1]
    assert official["mean"] == pytest.approx(0.05)
    # sample std of 0.10, 0.04, 0.01: deviations 0.05, -0.01, -0.04 -> sqrt(0.0042 / 2)
    assert official["std"] == pytest.approx(0.0458, abs=1e-4)
    assert (official["min"], official["max"]) == (0.01, 0.10)
    assert spreads[0]["std"] == 0.0  # one seed: no spread


def test_hamnet_series_without_tensorboard_spreads_epoch_means(driver, tmp_path):
    # 8 iterations in 3 epochs of at most 3 batches: iterations 0-2, 3-5, 6-7
    (tmp_path / "config.yaml").write_text("train:\n  seed: 3\n  iterations: 8\n")
    epochs = [
        {"epoch": e + 1, "loss_norm": 0.5 - 0.1 * e, "loss_total": 10.0 - e} for e in range(3)
    ]
    final = {"epoch": 3, "average_mAP": 0.0123}
    lines = [json.dumps(r) for r in epochs[:2] + [{**epochs[2], **final}]]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    mAP, series = driver.hamnet_series(tmp_path)
    assert mAP == pytest.approx(1.23)
    assert series["attention"] == pytest.approx([0.5] * 3 + [0.4] * 3 + [0.3] * 2)
    assert series["total"] == [10.0] * 3 + [9.0] * 3 + [8.0] * 2
    record = driver._summary_record("hamnet", "seed3", mAP, series, [0.2, 0.4, 0.9], 3)
    assert (record["seed"], record["iterations"]) == ("3", 8)
    assert record["mean_attention"] == [0.5, 0.4, 0.3]
    assert (record["attention_peak_median"], record["attention_peak_max"]) == (0.4, 0.9)
