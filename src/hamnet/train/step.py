"""One epoch of optimizer steps: the global batches, this rank's share, the loss terms.

Loss values stay on the device during an epoch and are read once at its end
(:func:`read_losses`, which also stops at a non-finite loss)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from hamnet.data.class_pairs import class_paired_epoch
from hamnet.data.dataset import VideoDataset, collate_videos, numbered_draws
from hamnet.errors import DataError
from hamnet.methods.base import StepContext, TrainItem
from hamnet.precision import autocast
from hamnet.train import distributed as dist_utils
from hamnet.train import iterations, preflight
from hamnet.train.session import Session


def global_batches(num_videos: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The shuffled global batches of one epoch, the same on every rank."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(num_videos).tolist()
    return [order[i : i + batch_size] for i in range(0, num_videos, batch_size)]


def epoch_batches(session: Session, epoch: int) -> list[list]:
    """The epoch's global batches: an owning method's own (of TrainItem), else its
    class-paired ones (of VideoDraw: a video drawn twice samples its snippets twice),
    else shuffled (of row indices); TrainItems for an owning method."""
    train, method = session.config.train, session.method
    labels = session.train_set.labels
    if method.owns_training_data:
        own = method.epoch_batches(labels, epoch, train.seed, train.batch_size)
        if own is not None:
            return own
    pairs = method.class_pairs()
    if pairs is None:
        batches = global_batches(len(session.train_set), train.batch_size, train.seed, epoch)
    else:
        rest = drawable_at_random(session.train_set, pairs, train.batch_size)
        batches = class_paired_epoch(
            labels, train.batch_size, pairs.pairs, train.seed, epoch, pairs.distinct, rest
        )
    if method.owns_training_data:
        return [[TrainItem(index) for index in batch] for batch in batches]
    return batches if pairs is None else numbered_draws(batches)


def drawable_at_random(train_set: VideoDataset, pairs, batch_size: int) -> list[int] | None:
    """The training rows the random part of a class-paired batch draws from: the videos
    of more than ``pairs.short_video`` snippets (None: every video, ``short_video`` 0)."""
    short = pairs.short_video
    if short <= 0:
        return None
    store = train_set.store
    rows = [i for i, v in enumerate(train_set.videos) if store.length(v.name) > short]
    if not rows and batch_size > 2 * pairs.pairs:
        raise DataError(
            f"{store.path}: every training video has at most {short} snippets, so "
            f"method_options.short_video={short} leaves the class-paired batches no "
            "video to draw at random"
        )
    return rows


def stamped(batches: list[list], first_step: int) -> list[list]:
    """An owning method's items with the global step of their batch."""
    return [
        [dataclasses.replace(item, step=first_step + number) for item in batch]
        if batch and isinstance(batch[0], TrainItem)
        else batch
        for number, batch in enumerate(batches)
    ]


def train_epoch(session: Session, epoch: int, progress: bool) -> dict[str, float]:
    config, info = session.config, session.dist
    session.model.train()
    batches = epoch_batches(session, epoch)
    per_epoch = len(batches)
    batches = iterations.cut_epoch(config, epoch, batches)
    batches = stamped(batches, iterations.global_step(config, epoch, 0, per_epoch)[0])
    shares = [dist_utils.shard(indices, info) for indices in batches]
    bar = tqdm(
        zip(batches, shares, _epoch_batches(session, epoch, shares), strict=True),
        total=len(batches),
        desc=f"epoch {epoch + 1}/{config.train.epochs}",
        unit="batch",
        disable=not (progress and info.is_main),
        leave=False,
    )
    totals = EpochLosses()
    for step, (indices, share, batch) in enumerate(bar):
        at = iterations.global_step(config, epoch, step, per_epoch)
        session.method.set_progress(*at)
        terms = train_step(session, batch, len(share), len(indices), at)
        totals.add(terms, len(batches), [getattr(item, "index", item) for item in share])
    losses = read_losses(totals, epoch + 1, session.train_set)
    session.tensorboard.steps_losses(totals.names, totals.step_values)
    return {f"loss_{k}": round(dist_utils.all_reduce_mean(v, info), 6) for k, v in losses.items()}


@dataclass
class EpochLosses:
    """Running epoch means of the loss terms, kept on the device (no host sync per step),
    and each step's total (to name the batch of a non-finite loss once it is read).

    float64, divided per step as the per-step float reads once were: the epoch means
    are the same numbers to the last bit.
    """

    names: list[str] = field(default_factory=list)
    running: torch.Tensor | None = None
    step_totals: list[torch.Tensor] = field(default_factory=list)
    step_items: list[list[int]] = field(default_factory=list)
    step_values: list[torch.Tensor] = field(default_factory=list)  # for TensorBoard

    def add(self, terms: dict[str, torch.Tensor], num_batches: int, items: list[int]) -> None:
        values = torch.stack([value.detach().float() for value in terms.values()]).double()
        step = values / num_batches
        self.names = list(terms)
        self.running = step if self.running is None else self.running + step
        self.step_totals.append(terms["total"].detach())
        self.step_items.append(items)
        self.step_values.append(values)


def read_losses(totals: EpochLosses, epoch: int, dataset: VideoDataset) -> dict[str, float]:
    """The one place where loss values come to the host (once per epoch); a non-finite
    loss stops the run here, naming the first batch that had one."""
    if totals.running is None:
        return {}
    means = dict(zip(totals.names, totals.running.tolist(), strict=True))
    if not math.isfinite(means["total"]):
        steps = torch.stack(totals.step_totals).tolist()
        first = next(i for i, value in enumerate(steps) if not math.isfinite(value))
        names = [dataset.videos[i].name for i in totals.step_items[first]]
        preflight.check_finite_loss(steps[first], epoch, names)
    return means


def _epoch_batches(session: Session, epoch: int, shares: list[list[int]]) -> Iterator:
    """This rank's batches of the epoch, on the device: ``features``, ``labels``, ``mask``."""
    if session.resident is not None:
        return session.resident.epoch_batches(epoch, shares)
    session.train_set.set_epoch(epoch)
    non_blocking = session.device.type == "cuda"
    return (batch.to(session.device, non_blocking) for batch in loader(session, shares))


def loader(session: Session, shares: list[list[int]]) -> DataLoader:
    """This rank's shares of the global batches, read by ``train.num_workers`` processes."""
    return DataLoader(
        session.train_set,
        batch_sampler=shares,
        collate_fn=collate_videos,
        num_workers=session.config.train.num_workers,
        pin_memory=session.device.type == "cuda",
        # its own generator: creating the iterator draws a seed, which must not advance
        # the global RNG that dropout uses (results then do not depend on the loader)
        generator=torch.Generator().manual_seed(session.config.train.seed),
    )


def train_step(
    session: Session, batch, share_size: int, global_size: int, at: tuple[int, int] = (0, 0)
) -> dict:
    """One optimizer step on this rank's share (``batch``) of a global batch, taken by
    the method (``Method.train_step``; the default is forward, losses, backward, step).
    ``at``: (the run's step, the run's steps)."""
    # DDP averages gradients over ranks; weight by this rank's share of the global batch
    # so that uneven shards still give the gradient of the global mean.
    share = share_size * session.dist.world_size / global_size
    device, precision = session.device, session.config.train.precision
    context = StepContext(
        session.model, session.optimizer, share, *at, autocast=lambda: autocast(device, precision)
    )
    return session.method.train_step(batch, context)
