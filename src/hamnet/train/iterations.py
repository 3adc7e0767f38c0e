"""``train.iterations``: a training length in optimiser steps instead of epochs.

The trainer still runs epochs (their batches, checkpoints and resume are keyed by the
epoch): :func:`with_iterations` sets ``train.epochs`` to the fewest epochs that hold the
steps, :func:`cut_epoch` cuts the last epoch's batches at the step count, and
:func:`global_step` is what the method's ``set_progress`` hears (DELU's curve).
"""

from __future__ import annotations

import dataclasses


def steps_per_epoch(num_videos: int, batch_size: int) -> int:
    return -(-num_videos // batch_size)


def with_iterations(config, num_videos: int):
    """``config`` with ``train.epochs`` covering ``train.iterations`` (unchanged if unset)."""
    steps = config.train.iterations
    if steps is None:
        return config
    epochs = -(-steps // steps_per_epoch(num_videos, config.train.batch_size))
    return dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=epochs))


def cut_epoch(config, epoch: int, batches: list) -> list:
    """The epoch's batches, the last epoch's cut so that the run makes exactly
    ``train.iterations`` steps."""
    if config.train.iterations is None:
        return batches
    return batches[: max(0, config.train.iterations - epoch * len(batches))]


def global_step(config, epoch: int, step: int, per_epoch: int) -> tuple[int, int]:
    """(the run's step, the run's steps) at ``step`` of ``epoch``."""
    total = config.train.iterations or config.train.epochs * per_epoch
    return epoch * per_epoch + step, total
