"""Class-paired training batches (W-TALC's ``Dataset.load_data``; CO2-Net's and DELU's
``wsad_dataset.py`` ``load_data``, which draws the two videos of a pair distinct).

A batch of ``batch_size`` video indices: first ``n_similar`` pairs, each pair two videos
drawn from the training videos of one randomly drawn class, then ``batch_size -
2 * n_similar`` videos drawn from all training videos. Every draw is with replacement
(a class may come twice, a pair may hold one video twice), in the reference's order of
draws from a ``numpy.random.RandomState``, so the same seed gives the reference's batch:

1. ``rng.choice(num_classes, size=n_similar)``: the classes;
2. per class, ``rng.choice(len(videos of class), size=2)``: the pair (``distinct``:
   ``replace=False``, CO2-Net's and DELU's draw);
3. ``rng.choice(len(rest), size=batch_size - 2 * n_similar)``: the rest, ``rest`` the
   rows the random part may draw (every training video unless told otherwise).

``rest`` is CO2-Net's and DELU's ActivityNet filter: their ``AntSampleDataset.filter``
removes videos of at most 10 snippets from ``trainidx`` after the per-class lists were
built (wsad_dataset.py:261, 267, 276-281), so only the random part loses them.

The pair-wise losses then read pairs (0, 1), (2, 3), ... of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hamnet.errors import ConfigError


def videos_per_class(labels: np.ndarray) -> list[list[int]]:
    """For each class (column of the multi-hot ``labels`` [N, C]), its videos' rows."""
    labels = np.asarray(labels)
    return [np.flatnonzero(labels[:, c] > 0).tolist() for c in range(labels.shape[1])]


def class_paired_batch(
    class_videos: list[list[int]],
    num_videos: int,
    batch_size: int,
    n_similar: int,
    rng: np.random.RandomState,
    distinct: bool = False,
    rest: Sequence[int] | None = None,
) -> list[int]:
    """One batch of video indices (see the module docstring).

    ``class_videos[c]``: the indices of the training videos of class c; ``num_videos``:
    how many training videos there are; the rest of the batch is drawn from ``rest``
    (None: ``range(num_videos)``). Classes that cannot give a pair (no video; one, when
    ``distinct``) are never drawn (the reference's draw would fail on one); with every
    class able to, the draws are the reference's.
    """
    if batch_size < 2 * n_similar:
        raise ConfigError(
            f"a class-paired batch of {batch_size} videos cannot hold {n_similar} pairs"
        )
    fewest = 2 if distinct else 1
    present = [videos for videos in class_videos if len(videos) >= fewest]
    if n_similar > 0 and not present:
        raise ConfigError(
            f"class-paired batches need a class with at least {fewest} training video(s)"
        )
    batch: list[int] = []
    for drawn in rng.choice(len(present), size=n_similar).tolist() if n_similar else []:
        pair = rng.choice(len(present[drawn]), size=2, replace=not distinct)
        first, second = pair.tolist()
        batch += [present[drawn][first], present[drawn][second]]
    rest = range(num_videos) if rest is None else rest
    if not len(rest) and batch_size > 2 * n_similar:
        raise ConfigError("class-paired batches: no training video to draw the rest from")
    batch += [rest[row] for row in rng.choice(len(rest), size=batch_size - 2 * n_similar).tolist()]
    return batch


def class_paired_epoch(
    labels: np.ndarray,
    batch_size: int,
    n_similar: int,
    seed: int,
    epoch: int,
    distinct: bool = False,
    rest: Sequence[int] | None = None,
) -> list[list[int]]:
    """ceil(N / batch_size) class-paired batches for one epoch (an epoch as long as a
    shuffled one, N counting every training video), from a RandomState seeded by
    (seed, epoch), the same on every rank; ``rest``: see :func:`class_paired_batch`."""
    num_videos = len(labels)
    rng = np.random.RandomState(np.random.SeedSequence([seed, epoch, 7]).generate_state(1))
    class_videos = videos_per_class(labels)
    steps = -(-num_videos // batch_size)
    return [
        class_paired_batch(class_videos, num_videos, batch_size, n_similar, rng, distinct, rest)
        for _ in range(steps)
    ]
