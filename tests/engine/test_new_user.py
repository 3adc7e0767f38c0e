"""Issue 18, the new user's list: what an interrupted demo says, what a table says about
the run behind each row, and the small things a first session trips over."""

from __future__ import annotations

import json

import pytest

from hamnet import cli
from hamnet.engine import trainer
from hamnet.engine.checkpoint import load_checkpoint
from hamnet.engine.trainer import train
from hamnet.errors import RESUME_HINT, TrainingInterrupted

EVERY_2 = ["train.epochs=5", "train.checkpoint_every=2"]


def _rows(run_dir) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def test_interrupt_while_saving_leaves_last_pt_and_metrics_agreeing(
    tiny_root, tiny_config, tmp_path, monkeypatch
):
    """The demo's "last.pt holds epoch 24" next to 25 metrics rows: the signal came while
    last.pt of epoch 25 was being written, after its metrics row."""
    real = trainer.save_checkpoint

    def interrupted_at_epoch_4(path, payload):
        if path.name == "last.pt" and payload["epoch"] == 4:
            raise TrainingInterrupted("SIGINT", 2)
        real(path, payload)

    monkeypatch.setattr(trainer, "save_checkpoint", interrupted_at_epoch_4)
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="last.pt holds epoch 3 of 5") as stop:
        train(tiny_config("all", *EVERY_2), tiny_root, run, progress=False)
    assert RESUME_HINT in str(stop.value)
    assert load_checkpoint(run / "last.pt")["epoch"] == 3
    assert _rows(run) == [1, 2, 3]
    monkeypatch.setattr(trainer, "save_checkpoint", real)
    train(tiny_config("all", *EVERY_2), tiny_root, run, resume=True, progress=False)
    assert _rows(run) == [1, 2, 3, 4, 5]


def test_interrupted_demo_says_a_plain_rerun_continues(tmp_path, monkeypatch, capsys):
    from hamnet import demo

    def stopped(*args, **kwargs):
        raise TrainingInterrupted(
            f"interrupted by SIGINT (R): last.pt holds epoch 2; {RESUME_HINT}"
        )

    monkeypatch.setattr(demo, "make_synthetic", lambda out, **kwargs: out)
    monkeypatch.setattr(demo, "train_seeds", stopped)
    status = cli.main(["demo", "--quick", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 130
    assert "rerun the same 'hamnet demo' command to continue" in err and "--resume" not in err
