"""``train.iterations``: a training length in optimiser steps instead of epochs.

The trainer still runs epochs (their shuffling, checkpoints and resume are keyed by the
epoch): :func:`with_iterations` sets ``train.epochs`` to the fewest epochs that hold the
steps, :func:`epoch_batches` cuts the last epoch's batches at the step count, and
:func:`tell_progress` gives a method that asks for it (DELU's curve) the global step.
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


def epoch_batches(config, epoch: int, batches: list) -> list:
    """The epoch's batches, the last epoch's cut so that the run makes exactly
    ``train.iterations`` steps."""
    if config.train.iterations is None:
        return batches
    return batches[: max(0, config.train.iterations - epoch * len(batches))]


def tell_progress(method, config, epoch: int, step: int, per_epoch: int) -> None:
    """``method.set_progress(global step, total steps)`` for methods that have it."""
    hook = getattr(method, "set_progress", None)
    if hook is not None:
        total = config.train.iterations or config.train.epochs * per_epoch
        hook(epoch * per_epoch + step, total)


def method_batches(method, train_set, batch_size: int, seed: int, epoch: int, default):
    """The method's own batches of the epoch where it has a sampler (CO2-Net, DELU:
    ``train_batches``, the class-paired one), else ``default()``."""
    sampler = getattr(method, "train_batches", None)
    if sampler is None:
        return default()
    return sampler(train_set.labels, batch_size, seed, epoch)
