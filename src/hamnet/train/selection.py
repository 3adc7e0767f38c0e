"""Honest model selection: which split, if any, picks ``best.pt``.

``train.select_on``:

- ``none`` (default): no selection; ``last.pt`` is the model and the final test
  evaluation is the reported number. No ``best.pt`` is written.
- ``heldout``: a deterministic share (``train.heldout_fraction``) of the training videos
  is kept out of training; ``best.pt`` is the epoch with the highest held-out average
  mAP, and the reported test number is that checkpoint's.
- ``test``: ``best.pt`` is picked on the test split. Allowed, but every place the number
  appears says "selected on test": it is an optimistic figure, not a test result.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math

from hamnet.data.annotations import AnnotationSet
from hamnet.errors import DataError

NOTES = {
    "none": "last epoch, no model selection",
    "heldout": "best.pt selected on held-out training videos",
    "test": "best.pt selected on test (optimistic: not a fair test result)",
}


def heldout_subset(train_subset: str) -> str:
    return f"{train_subset}-heldout"


def heldout_names(names: list[str], fraction: float) -> list[str]:
    """A deterministic share of ``names``: the same videos for every seed and machine.

    Videos are ordered by a hash of their name (not by the seed, so seeds are compared on
    one split); at least one video is held out and at least one kept for training.
    """
    if len(names) < 2:
        raise DataError(f"{len(names)} training video(s): too few to hold any out")
    count = min(max(1, math.floor(fraction * len(names) + 0.5)), len(names) - 1)
    ranked = sorted(names, key=lambda n: hashlib.sha256(n.encode()).hexdigest())
    return sorted(ranked[:count])


def split_heldout(annotations: AnnotationSet, train_subset: str, fraction: float) -> tuple:
    """``annotations`` with the held-out training videos moved to their own subset."""
    labelled = [v.name for v in annotations.subset(train_subset) if v.segments]
    held = set(heldout_names(labelled, fraction))
    target = heldout_subset(train_subset)
    videos = [
        dataclasses.replace(v, subset=target) if v.name in held else v for v in annotations.videos
    ]
    split = AnnotationSet(annotations.classes, videos, annotations.ambiguous, annotations.source)
    return split, sorted(held)


def selection_key(select_on: str) -> str | None:
    """The metrics entry that ranks checkpoints (None: no selection)."""
    return {"heldout": "heldout_average_mAP", "test": "average_mAP"}.get(select_on)


def describe(config, heldout: list[str] | None = None) -> dict:
    """The selection of a run, for run.json, best.pt and result tables."""
    select_on = config.train.select_on
    found = {"select_on": select_on, "note": NOTES[select_on]}
    if select_on == "heldout":
        found.update(
            split=heldout_subset(config.data.train_subset),
            heldout_fraction=config.train.heldout_fraction,
            heldout_videos=len(heldout or []),
        )
    elif select_on == "test":
        found["split"] = config.data.test_subset
    return found
