"""Checkpoint cadence (train.checkpoint_every), SIGINT/SIGTERM, and exact resume."""

from __future__ import annotations

import json
import os
import signal
import time
from types import SimpleNamespace

import pytest
import torch

from hamnet import cli
from hamnet.config import make_config
from hamnet.errors import TrainingInterrupted
from hamnet.train import checkpointing
from hamnet.train import step as training_step
from hamnet.train.trainer import train
from hamnet.weights.checkpoint import load_checkpoint

STEPS_PER_EPOCH = 2  # tiny_root: 12 training videos, batch 6
EVERY_2 = ["train.epochs=5", "train.checkpoint_every=2"]


def _saves(monkeypatch) -> list[tuple[str, int]]:
    """Record (file name, epoch) of every checkpoint the trainer writes."""
    written = []
    real = checkpointing.save_checkpoint

    def recording(path, payload):
        written.append((path.name, payload["epoch"]))
        real(path, payload)

    monkeypatch.setattr(checkpointing, "save_checkpoint", recording)
    return written


def _stop_at_step(monkeypatch, step: int, action) -> None:
    """Run ``action()`` at the start of optimizer step ``step`` (1-based, whole run)."""
    real, calls = training_step.train_step, []

    def counting(*args):
        calls.append(1)
        if len(calls) == step:
            action()
        return real(*args)

    monkeypatch.setattr(training_step, "train_step", counting)


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _assert_same_run(first, second):
    a, b = load_checkpoint(first / "last.pt"), load_checkpoint(second / "last.pt")
    assert a["epoch"] == b["epoch"] == 5
    assert all(torch.equal(a["model"][key], b["model"][key]) for key in a["model"])
    rows_a, rows_b = _rows(first), _rows(second)
    for row in rows_a + rows_b:
        row.pop("seconds")
    assert rows_a == rows_b


def test_cadence_writes_every_n_epochs_and_at_the_end(
    tiny_root, tiny_config, tmp_path, monkeypatch
):
    written = _saves(monkeypatch)
    train(tiny_config("all", *EVERY_2), tiny_root, tmp_path / "run", progress=False)
    assert [epoch for name, epoch in written if name == "last.pt"] == [2, 4, 5]
    # the final evaluation does not write last.pt again (without select_on nothing changes)
    assert [name for name, _ in written] == ["last.pt"] * 3
    timing = json.loads((tmp_path / "run/timing.json").read_text())
    assert timing["checkpoint_writes"] == 3 and 0 <= timing["checkpoint_share"] < 1


def test_crash_after_epoch_3_resumes_from_epoch_2_exactly(tiny_root, tiny_config, tmp_path):
    config = tiny_config("all", *EVERY_2)
    train(config, tiny_root, tmp_path / "straight", progress=False)

    def crash():
        raise RuntimeError("power cut")

    with pytest.MonkeyPatch.context() as patch:
        _stop_at_step(patch, 3 * STEPS_PER_EPOCH + 1, crash)
        with pytest.raises(RuntimeError, match="power cut"):
            train(config, tiny_root, tmp_path / "split", progress=False)
    assert load_checkpoint(tmp_path / "split/last.pt")["epoch"] == 2
    # epoch 3 finished but was not saved; its metrics row may not have been written either
    assert [row["epoch"] for row in _rows(tmp_path / "split")][:2] == [1, 2]
    train(config, tiny_root, tmp_path / "split", resume=True, progress=False)
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_the_last_finished_epoch_and_resume_is_exact(
    tiny_root, tiny_config, tmp_path, signum
):
    config = tiny_config("all", *EVERY_2)
    train(config, tiny_root, tmp_path / "straight", progress=False)
    handler_before = signal.getsignal(signum)
    with pytest.MonkeyPatch.context() as patch:
        # in the middle of epoch 4: epoch 3 is finished but not yet on disk
        _stop_at_step(patch, 3 * STEPS_PER_EPOCH + 2, lambda: os.kill(os.getpid(), signum))
        with pytest.raises(TrainingInterrupted, match="last.pt holds epoch 3") as stop:
            train(config, tiny_root, tmp_path / "split", progress=False)
    assert stop.value.exit_status == 128 + signum
    assert signal.getsignal(signum) is handler_before  # the trainer's handler is gone
    assert load_checkpoint(tmp_path / "split/last.pt")["epoch"] == 3
    train(config, tiny_root, tmp_path / "split", resume=True, progress=False)
    _assert_same_run(tmp_path / "straight", tmp_path / "split")


def test_signal_in_the_first_epoch_saves_nothing(tiny_root, tiny_config, tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        _stop_at_step(patch, 1, lambda: os.kill(os.getpid(), signal.SIGTERM))
        with pytest.raises(TrainingInterrupted, match="nothing saved"):
            train(tiny_config("all", *EVERY_2), tiny_root, tmp_path / "run", progress=False)
    assert not (tmp_path / "run/last.pt").exists()


def test_cli_reports_the_interrupt_in_one_line_and_exits_nonzero(
    tiny_root, tiny_overrides, tmp_path, capsys
):
    sets = [arg for item in [*tiny_overrides, *EVERY_2] for arg in ("--set", item)]
    argv = ["train", "--preset", "demo", "--data", str(tiny_root), "--run-dir", str(tmp_path)]
    with pytest.MonkeyPatch.context() as patch:
        kill = lambda: os.kill(os.getpid(), signal.SIGTERM)  # noqa: E731
        _stop_at_step(patch, 2 * STEPS_PER_EPOCH + 1, kill)
        status = cli.main([*argv, *sets])
    assert status == 128 + signal.SIGTERM
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("hamnet: interrupted by SIGTERM") and "epoch 2" in lines[-1]
    assert cli.main([*argv, *sets, "--resume"]) == 0
    assert load_checkpoint(tmp_path / "last.pt")["epoch"] == 5


def _session(epochs=100, every=0, spent=0.0, writes=0, startup=5.0, per_epoch=0.25, done=10):
    """What checkpoint_due reads, after ``done`` epochs of ``per_epoch`` seconds."""
    now = time.perf_counter()
    loop_started = now - per_epoch * done
    config = make_config(
        "demo", "all", [f"train.epochs={epochs}", f"train.checkpoint_every={every}"]
    )
    return SimpleNamespace(
        config=config,
        checkpoint_seconds=spent,
        checkpoint_writes=writes,
        started=loop_started - startup,
        loop_started=loop_started,
        start_epoch=0,
        net=torch.nn.Linear(1000, 1000),  # 1 M weights: 12 MB with Adam's moments
    )


def test_adaptive_cadence_keeps_writing_under_5_percent_with_room_for_the_last_write(
    monkeypatch,
):
    due = checkpointing.checkpoint_due
    # projected wall: 5 s start-up + 100 epochs x 0.25 s = 30 s; 5 % of it = 1.5 s
    assert due(_session(spent=0.0, writes=0), 10)  # guess: 12 MB at 0.3 GB/s, 0.04 s
    assert due(_session(spent=0.4, writes=1), 10)  # 0.4 + 2 x 0.4 = 1.2 <= 1.5
    assert not due(_session(spent=0.6, writes=1), 10)  # 0.6 + 2 x 0.6 = 1.8 > 1.5
    assert due(_session(spent=0.4, writes=2), 10)  # 0.2 s a write
    assert due(_session(spent=100.0, writes=1), 100)  # the last epoch: always
    # a longer run affords more writes: 5 + 1000 x 0.25 s, 5 % = 12.75 s
    assert due(_session(epochs=1000, spent=3.0, writes=3), 10)
    # the THUMOS14 preset on a GPU: ~340 MB of weights and moments (guessed 1.1 s a write)
    monkeypatch.setattr(checkpointing, "state_bytes", lambda session: 340e6)
    assert not due(_session(spent=0.0, writes=0), 10)


def test_fixed_cadence_ignores_the_clock():
    due = checkpointing.checkpoint_due
    assert due(_session(every=3, spent=100.0, writes=1), 3)
    assert not due(_session(every=3, spent=0.0, writes=0), 4)
    assert due(_session(epochs=5, every=3), 5)
