"""The training engine: run folder, exact resume, checkpoints, localization source."""

from __future__ import annotations

import json

import pytest
import torch

from hamnet.errors import CheckpointError
from hamnet.train.step import global_batches
from hamnet.train.trainer import train
from hamnet.weights.checkpoint import load_checkpoint
from hamnet.weights.trained import load_trained, localization_source


def _weights(path):
    return load_checkpoint(path)["model"]


def _losses(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss_total"] for line in lines]


def test_run_folder_holds_config_metrics_and_checkpoints(tiny_root, tiny_config, tmp_path):
    result = train(tiny_config(), tiny_root, tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} >= {
        "config.yaml",
        "run.json",
        "metrics.jsonl",
        "metrics.csv",
        "last.pt",
    }
    assert not (run / "best.pt").exists()  # select_on=none: last.pt is the model
    assert result.final["selected_on"] == "none" and result.final["model"] == "last.pt"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1, 2]
    assert set(rows[0]) >= {"loss_total", "loss_bcl", "loss_sal", "loss_guide", "seconds"}
    assert 0.0 <= rows[-1]["average_mAP"] <= 1.0
    assert rows[-1]["protocol"] == "anet"
    assert result.final["epoch"] == 2
    assert (run / "metrics.csv").read_text().splitlines()[0].startswith("epoch,")
    record = load_checkpoint(run / "last.pt")
    assert record["epoch"] == 2 and record["hamnet_version"]
    assert set(record) >= {"model", "optimizer", "rng", "config", "classes"}


def test_resume_after_two_epochs_equals_four_epochs(tiny_root, tiny_config, tmp_path):
    train(tiny_config("all", "train.epochs=4"), tiny_root, tmp_path / "straight", progress=False)
    train(tiny_config("all", "train.epochs=2"), tiny_root, tmp_path / "split", progress=False)
    train(
        tiny_config("all", "train.epochs=4"),
        tiny_root,
        tmp_path / "split",
        resume=True,
        progress=False,
    )
    straight, split = _weights(tmp_path / "straight/last.pt"), _weights(tmp_path / "split/last.pt")
    for key in straight:
        assert torch.equal(straight[key], split[key]), key
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "split")


def test_loader_workers_change_nothing(tiny_root, tiny_config, tmp_path):
    train(tiny_config(), tiny_root, tmp_path / "w0", progress=False)
    train(tiny_config("all", "train.num_workers=2"), tiny_root, tmp_path / "w2", progress=False)
    plain, workers = _weights(tmp_path / "w0/last.pt"), _weights(tmp_path / "w2/last.pt")
    assert all(torch.equal(plain[key], workers[key]) for key in plain)


def test_resume_refuses_another_config(tiny_root, tiny_config, tmp_path):
    train(tiny_config(), tiny_root, tmp_path / "run", progress=False)
    with pytest.raises(CheckpointError, match="another config"):
        train(
            tiny_config("all", "train.lr=0.5"),
            tiny_root,
            tmp_path / "run",
            resume=True,
            progress=False,
        )


def test_training_never_overwrites_a_run(tiny_root, tiny_config, tmp_path):
    train(tiny_config("all", "train.epochs=1"), tiny_root, tmp_path / "run", progress=False)
    before = (tmp_path / "run/last.pt").read_bytes()
    with pytest.raises(CheckpointError, match="already holds a run.*--resume"):
        train(tiny_config("all", "train.epochs=1"), tiny_root, tmp_path / "run", progress=False)
    assert (tmp_path / "run/last.pt").read_bytes() == before


def test_resume_without_checkpoint_is_a_clear_error(tiny_root, tiny_config, tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(tiny_config(), tiny_root, tmp_path / "empty", resume=True, progress=False)


def test_truncated_checkpoint_is_a_clear_error(tiny_root, tiny_config, tmp_path):
    train(tiny_config("all", "train.epochs=1"), tiny_root, tmp_path / "run", progress=False)
    data = (tmp_path / "run/last.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt: truncated or corrupt"):
        load_trained(tmp_path / "cut.pt")


def test_global_batches_cover_every_video_once_and_depend_on_epoch():
    first, second = global_batches(23, 5, seed=0, epoch=0), global_batches(23, 5, seed=0, epoch=1)
    assert sorted(i for batch in first for i in batch) == list(range(23))
    assert [len(b) for b in first] == [5, 5, 5, 5, 3]
    assert first != second
    assert first == global_batches(23, 5, seed=0, epoch=0)


@pytest.mark.parametrize(
    ("variant", "source"),
    [
        ("all", "attention"),
        ("bcl", "foreground"),
        ("bcl+hal", "foreground"),
        ("bcl+sal", "attention"),
    ],
)
def test_rows_without_attention_loss_localize_with_foreground(tiny_config, variant, source):
    assert localization_source(tiny_config(variant)) == source
    assert localization_source(tiny_config(variant, "localize.source=attention")) == "attention"


def test_bf16_training_runs_and_records_precision(tiny_root, tiny_config, tmp_path):
    train(
        tiny_config("all", "train.precision=bf16", "train.epochs=1"),
        tiny_root,
        tmp_path / "bf16",
        progress=False,
    )
    trained = load_trained(tmp_path / "bf16/last.pt")
    assert trained.config.train.precision == "bf16"
    assert all(torch.isfinite(p).all() for p in trained.model.parameters())


def test_loss_config_fields_are_the_loss_function_arguments():
    import dataclasses
    import inspect

    from hamnet.methods.hamnet.losses import LossConfig, hamnet_losses

    keyword_only = [
        name
        for name, p in inspect.signature(hamnet_losses).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    assert sorted(keyword_only) == sorted(f.name for f in dataclasses.fields(LossConfig))


def test_data_loading_leaves_the_global_rng_alone(tiny_root, tiny_config, tmp_path):
    # dropout draws from the global RNG: loading batches must not shift its stream
    from hamnet.train.distributed import DistInfo
    from hamnet.train.session import open_session
    from hamnet.train.step import loader

    session = open_session(tiny_config(), tiny_root, tmp_path, torch.device("cpu"), DistInfo())
    before = torch.get_rng_state()
    batches = list(loader(session, global_batches(len(session.train_set), 6, 0, 0)))
    assert len(batches) == 2 and torch.equal(torch.get_rng_state(), before)
