"""TensorBoard curves of a training run (``train.tensorboard``; the ``tensorboard`` extra).

``train.tensorboard``: None (the default) logs when the ``tensorboard`` package is
installed, True requires it, False never logs. Event files go to ``RUN_DIR/tensorboard``:
every loss term per step (``loss/<term>``), and per epoch the learning rate, the epoch
time and, after an evaluation, average mAP, mAP per tIoU and classification mAP.
"""

from __future__ import annotations

import importlib.util
import logging
import math
from pathlib import Path

from hamnet.errors import MissingDependencyError

log = logging.getLogger(__name__)


class TrainingLog:
    """Writes scalars when enabled; every method does nothing otherwise."""

    def __init__(self, writer=None, steps_per_epoch: int = 1, start_epoch: int = 0) -> None:
        self.writer = writer
        self.steps_per_epoch = steps_per_epoch
        self.step = start_epoch * steps_per_epoch

    def step_losses(self, terms: dict[str, float]) -> None:
        """One optimizer step's loss terms (plain floats)."""
        if self.writer is not None:
            for name, value in terms.items():
                self.writer.add_scalar(f"loss/{name}", float(value), self.step)
        self.step += 1

    def steps_losses(self, names: list[str], step_values: list) -> None:
        """An epoch's per-step loss terms, kept on the device until now: one host read
        per epoch, not one per step."""
        if self.writer is None or not step_values:
            self.step += len(step_values)
            return
        import torch

        for row in torch.stack(step_values).tolist():
            self.step_losses(dict(zip(names, row, strict=True)))

    def end_epoch(self, record: dict, epoch: int, optimizer) -> None:
        """The epoch's record (as metrics.jsonl holds it) and the learning rate."""
        self.step = epoch * self.steps_per_epoch  # in step even if a step was not logged
        if self.writer is None:
            return
        scalars = {"train/lr": optimizer.param_groups[0]["lr"]}
        scalars["train/epoch_seconds"] = record.get("seconds")
        scalars["eval/average_mAP"] = record.get("average_mAP")
        scalars["eval/classification_mAP"] = record.get("classification_mAP")
        scalars["eval/heldout_average_mAP"] = record.get("heldout_average_mAP")  # select_on
        for tiou, value in zip(record.get("tiou") or [], record.get("mAP") or [], strict=False):
            scalars[f"eval/mAP@{tiou:g}"] = value
        for name, value in scalars.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(name, float(value), epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def open_training_log(
    setting: bool | None, run_dir: Path, *, is_main: bool, steps_per_epoch: int, start_epoch: int
) -> TrainingLog:
    """A log writing to ``run_dir/tensorboard`` when ``setting`` asks for it (see module)."""
    installed = importlib.util.find_spec("tensorboard") is not None
    if setting is True and not installed:
        raise MissingDependencyError(
            "train.tensorboard=true needs the tensorboard package: "
            "pip install 'hamnet[tensorboard]'"
        )
    if not is_main or setting is False or not installed:
        return TrainingLog(None, steps_per_epoch, start_epoch)
    from torch.utils.tensorboard import SummaryWriter

    folder = run_dir / "tensorboard"
    log.info("TensorBoard: tensorboard --logdir %s", folder)
    return TrainingLog(SummaryWriter(str(folder)), steps_per_epoch, start_epoch)
