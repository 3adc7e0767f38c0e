"""Old path of :func:`hamnet.train.trainer.train` (documented in the README)."""

from hamnet.train.trainer import TrainResult, train

__all__ = ["TrainResult", "train"]
