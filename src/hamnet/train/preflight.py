"""Checks made before the first training step, and the guard against non-finite losses.

Everything the final evaluation needs is checked at the start, so that a run never
trains for hours and then fails on a misspelled subset or a NaN in a test video.
"""

from __future__ import annotations

import math

from hamnet.errors import DataError, TrainingError

SHOWN = 20  # video names in a non-finite loss message: a whole batch of the presets


def check_before_training(config, annotations, store, *, check_features: bool = True) -> None:
    """DataError (one line) for anything that would make the final evaluation fail."""
    test = config.data.test_subset
    subsets = sorted({video.subset for video in annotations.videos})
    if test not in subsets:
        raise DataError(
            f"{annotations.source}: data.test_subset {test!r} names no subset of this "
            f"dataset (subsets: {subsets})"
        )
    labelled = [video for video in annotations.subset(test) if video.labels]
    if not labelled:
        raise DataError(
            f"{annotations.source}: none of the {len(annotations.subset(test))} videos of "
            f"data.test_subset {test!r} has labels; there is nothing to evaluate on"
        )
    if check_features:
        for video in labelled:  # store.read raises a DataError naming NaN/inf and the video
            store.read(video.name)


def check_finite_loss(value: float, epoch: int, videos: list[str]) -> None:
    """TrainingError at the first non-finite loss, naming the batch's videos.

    Called where the loss is read on the host anyway, so it adds no synchronisation.
    """
    if math.isfinite(value):
        return
    shown = ", ".join(videos[:SHOWN]) + (
        f" and {len(videos) - SHOWN} more" if len(videos) > SHOWN else ""
    )
    raise TrainingError(
        f"epoch {epoch}: the loss is {value} in the batch of videos {shown}; check those "
        "features for huge values or lower train.lr (last.pt keeps the last good epoch)"
    )
