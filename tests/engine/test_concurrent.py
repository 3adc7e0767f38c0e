"""Concurrent trainings (one process each) give exactly the results of running them alone."""

from __future__ import annotations

import json

import pytest
import torch

from hamnet import cli
from hamnet.config import make_config
from hamnet.errors import HamnetError
from hamnet.experiments import concurrent
from hamnet.experiments.ablation import ablate
from hamnet.experiments.concurrent import TrainJob, default_concurrency, run_trainings
from hamnet.experiments.seeds import train_seeds
from hamnet.weights.checkpoint import load_checkpoint


def _weights(run_dir):
    return load_checkpoint(run_dir / "last.pt")["model"]


def test_concurrent_seeds_equal_sequential_seeds(tiny_root, tiny_config, tmp_path):
    config = tiny_config("all", "train.epochs=3")
    alone = train_seeds(config, tiny_root, tmp_path / "alone", [0, 1, 2], jobs=1, progress=False)
    together = train_seeds(config, tiny_root, tmp_path / "together", [0, 1, 2], jobs=3)
    assert together.mAP == alone.mAP and together.average == alone.average
    assert together.average_std == alone.average_std
    for seed in (0, 1, 2):
        first, second = tmp_path / f"alone/seed{seed}", tmp_path / f"together/seed{seed}"
        a, b = _weights(first), _weights(second)
        assert all(torch.equal(a[key], b[key]) for key in a)
        assert (second / "train.log").is_file() and not (first / "train.log").exists()
        rows = [json.loads(x) for x in (second / "metrics.jsonl").read_text().splitlines()]
        assert [row["epoch"] for row in rows] == [1, 2, 3]
    # different seeds really are different runs
    assert not torch.equal(
        _weights(tmp_path / "alone/seed0")["classifier.0.weight"],
        _weights(tmp_path / "alone/seed1")["classifier.0.weight"],
    )


def test_concurrent_ablation_rows_equal_sequential_rows(tiny_root, tiny_config, tmp_path):
    config = tiny_config("all")
    rows = ["bcl", "all"]
    alone = ablate(
        config, tiny_root, tmp_path / "alone", [0], variants=rows, jobs=1, progress=False
    )
    together = ablate(config, tiny_root, tmp_path / "together", [0], variants=rows, jobs=2)
    assert [r.label for r in together] == rows
    assert [(r.mAP, r.average) for r in together] == [(r.mAP, r.average) for r in alone]
    assert (tmp_path / "together/ablation.md").read_text().replace("together", "alone") == (
        tmp_path / "alone/ablation.md"
    ).read_text()


def test_a_failing_run_is_one_error_naming_its_folder(tiny_root, tiny_config, tmp_path):
    good = TrainJob(tiny_config(), tiny_root, tmp_path / "good")
    bad = TrainJob(tiny_config(), tmp_path / "no-such-data", tmp_path / "bad")
    with pytest.raises(HamnetError, match=r"bad: training failed \(exit status 2\)"):
        run_trainings([good, bad], 2, progress=False)


def test_cli_jobs_flag(tiny_root, tiny_overrides, tmp_path, capsys):
    sets = [arg for item in tiny_overrides for arg in ("--set", item)]
    argv = ["train", "--preset", "demo", "--data", str(tiny_root), "--seeds", "0,1"]
    assert cli.main([*argv, "--run-dir", str(tmp_path / "run"), "--jobs", "2", *sets]) == 0
    assert "seeds: 0, 1" in capsys.readouterr().out
    assert (tmp_path / "run/seed1/train.log").is_file()
    with pytest.raises(SystemExit):
        cli.main([*argv, "--run-dir", str(tmp_path / "x"), "--jobs", "0", *sets])


def test_default_concurrency_is_one_on_the_cpu_and_what_fits_on_a_gpu(tiny_root, monkeypatch):
    config = make_config("demo", "all", ["train.device=cpu"])
    jobs = [TrainJob(config, tiny_root, tiny_root / f"r{i}") for i in range(5)]
    assert default_concurrency(jobs) == 1
    gib = 2**30
    gpu_config = make_config("demo", "all", ["train.device=cuda:0"])
    gpu_jobs = [TrainJob(gpu_config, tiny_root, tiny_root / f"r{i}") for i in range(5)]
    # no GPU here: the device choice and its memory are stood in for
    monkeypatch.setattr(concurrent, "pick_device", lambda name: torch.device("cuda", 0))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (7 * gib, 8 * gib))
    monkeypatch.setattr(concurrent, "estimate_run_bytes", lambda config, root: gib)
    assert default_concurrency(gpu_jobs) == 3  # (7 - 4 reserved) GiB / 1 GiB
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (100 * gib, 140 * gib))
    assert default_concurrency(gpu_jobs) == 5  # never more than the runs
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert default_concurrency(gpu_jobs) == 1  # torchrun: one training at a time


def test_run_memory_estimate_counts_resident_features(tiny_root):
    stream = make_config("demo", "all", ["data.feature_dim=16", "data.placement=stream"])
    held = make_config("demo", "all", ["data.feature_dim=16", "data.placement=device"])
    difference = concurrent.estimate_run_bytes(held, tiny_root) - concurrent.estimate_run_bytes(
        stream, tiny_root
    )
    from hamnet.data.layout import open_dataset

    _, store, _ = open_dataset(tiny_root)
    assert difference == 4 * 16 * sum(store.length(name) for name in store.names)
