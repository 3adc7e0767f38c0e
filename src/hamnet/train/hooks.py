"""What happens around the epochs of the loop, one small hook per concern (the shape of
detectron2's ``HookBase``): writing the run's state, evaluating, TensorBoard.

The loop calls, in list order: ``after_epoch`` on the writing rank before the epoch's
record is shared (a hook may return it extended, e.g. with evaluations);
``after_shared`` there once every rank has it; ``on_interrupt`` / ``on_failure`` when
SIGINT/SIGTERM or a non-finite loss stops the run.
"""

from __future__ import annotations

from hamnet.errors import TrainingInterrupted
from hamnet.train import checkpointing, evaluation
from hamnet.train.session import Session


class HookBase:
    """A hook that does nothing; subclasses override what they need."""

    def after_epoch(self, session: Session, epoch: int, record: dict) -> dict:
        return record

    def after_shared(self, session: Session, epoch: int, record: dict) -> None:
        pass

    def on_interrupt(self, session: Session, stop: TrainingInterrupted) -> TrainingInterrupted:
        return stop

    def on_failure(self, session: Session) -> None:
        pass


class CheckpointHook(HookBase):
    """last.pt on its cadence, best.pt, the metrics files (:mod:`.checkpointing`); the
    epoch is saved before it is evaluated, so a failing evaluation never loses it."""

    def after_epoch(self, session: Session, epoch: int, record: dict) -> dict:
        checkpointing.write_epoch(session, epoch, record)
        return record

    def after_shared(self, session: Session, epoch: int, record: dict) -> None:
        if evaluation.should_evaluate(session.config, epoch - 1):
            checkpointing.write_epoch(session, epoch, record, replace_last=True)

    def on_interrupt(self, session: Session, stop: TrainingInterrupted) -> TrainingInterrupted:
        return checkpointing.save_interrupted(session, stop)

    def on_failure(self, session: Session) -> None:
        # a non-finite loss: last.pt gets the last good epoch, if the cadence skipped it
        if session.dist.is_main and session.snapshot is not None:
            checkpointing.save_last(session, session.snapshot)


class EvalHook(HookBase):
    """Test (and held-out) evaluations on ``train.eval_every`` and at the last epoch."""

    def after_epoch(self, session: Session, epoch: int, record: dict) -> dict:
        if not evaluation.should_evaluate(session.config, epoch - 1):
            return record
        final = epoch == session.config.train.epochs
        return {**record, **evaluation.evaluations(session, final)}


class TensorBoardHook(HookBase):
    """The epoch's record and learning rate (per-step losses came with the epoch)."""

    def after_shared(self, session: Session, epoch: int, record: dict) -> None:
        session.tensorboard.end_epoch(record, epoch, session.optimizer)


def default_hooks() -> list[HookBase]:
    """The hooks of every run, in the order they act."""
    return [CheckpointHook(), EvalHook(), TensorBoardHook()]
