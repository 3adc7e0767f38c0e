"""TensorBoard curves: what the trainer logs, and the setting's three values."""

from __future__ import annotations

import importlib.util
import math

import pytest

from hamnet.errors import MissingDependencyError
from hamnet.train import tensorboard as tensorboard_log
from hamnet.train.tensorboard import TrainingLog, open_training_log


class FakeWriter:
    def __init__(self):
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, name, value, step):
        self.scalars.append((name, value, step))

    def flush(self):
        pass


class FakeOptimizer:
    param_groups = [{"lr": 0.001}]


def test_steps_and_epochs_are_logged_with_their_indices():
    writer = FakeWriter()
    log = TrainingLog(writer, steps_per_epoch=2, start_epoch=3)  # a resumed run
    log.step_losses({"total": 1.5, "bcl": 0.5})
    log.step_losses({"total": 1.0, "bcl": 0.25})
    record = {"seconds": 2.0, "average_mAP": 0.4, "mAP": [0.5, 0.3], "tiou": [0.3, 0.5]}
    record["classification_mAP"] = 0.9
    log.end_epoch(record, 4, FakeOptimizer())
    assert writer.scalars[:4] == [
        ("loss/total", 1.5, 6),
        ("loss/bcl", 0.5, 6),
        ("loss/total", 1.0, 7),
        ("loss/bcl", 0.25, 7),
    ]
    per_epoch = {name: (value, step) for name, value, step in writer.scalars[4:]}
    assert per_epoch == {
        "train/lr": (0.001, 4),
        "train/epoch_seconds": (2.0, 4),
        "eval/average_mAP": (0.4, 4),
        "eval/classification_mAP": (0.9, 4),
        "eval/mAP@0.3": (0.5, 4),
        "eval/mAP@0.5": (0.3, 4),
    }


def test_epochs_without_evaluation_log_no_map():
    writer = FakeWriter()
    TrainingLog(writer).end_epoch({"seconds": 1.0, "average_mAP": math.nan}, 1, FakeOptimizer())
    assert {name for name, _, _ in writer.scalars} == {"train/lr", "train/epoch_seconds"}


def test_required_but_missing_package_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(tensorboard_log.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match=r"hamnet\[tensorboard\]"):
        open_training_log(True, tmp_path, is_main=True, steps_per_epoch=1, start_epoch=0)
    # the default (None) quietly logs nothing without the package
    log = open_training_log(None, tmp_path, is_main=True, steps_per_epoch=1, start_epoch=0)
    assert log.writer is None and not (tmp_path / "tensorboard").exists()


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None, reason="the tensorboard extra is not installed"
)
def test_training_writes_event_files(tiny_root, tiny_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from hamnet.train.trainer import train

    config = tiny_config("all", "train.epochs=2", "train.eval_every=1")
    train(config, tiny_root, tmp_path / "run", progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/total", "loss/bcl", "train/lr", "train/epoch_seconds"} <= tags
    assert {"eval/average_mAP", "eval/classification_mAP", "eval/mAP@0.5"} <= tags
    steps = [event.step for event in events.Scalars("loss/total")]
    per_epoch = len(steps) // 2
    assert steps == list(range(2 * per_epoch)) and per_epoch >= 1
    assert [event.step for event in events.Scalars("eval/average_mAP")] == [1, 2]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_tensorboard_false_writes_nothing(tiny_root, tiny_config, tmp_path):
    from hamnet.train.trainer import train

    train(tiny_config("all", "train.epochs=1", "train.tensorboard=false"), tiny_root, tmp_path)
    assert not (tmp_path / "tensorboard").exists()
