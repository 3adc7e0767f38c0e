"""What every WTAL method provides: its network, named outputs, loss terms, video outputs.

Training, inference and experiments (checkpoints, resume, DDP, test, predict, ablate,
plots) speak only this interface, so a method is one module plus one line in
:mod:`hamnet.methods` (or a :func:`hamnet.methods.register_method` call).

- ``build_network(num_classes)``: an ``nn.Module`` taking ``(features [B, T, D], mask)``.
- ``forward(network, features, mask)``: the network's outputs by name (tensors whose
  first two axes are [B, T], or [B] for per-video values).
- ``losses(outputs, labels, mask)``: each enabled loss term (scalar) and ``"total"``,
  the weighted sum training back-propagates.
- ``video_output(name, outputs)``: one video's outputs (numpy, batch axis removed) as a
  :class:`VideoOutput`: what localization thresholds and how the video is scored.

A method whose reference code trains otherwise owns that too (each hook's default is the
house's own behaviour, so a method overrides only what its code does differently):

- its training data (``owns_training_data``): the epoch's batches of :class:`TrainItem`
  (``epoch_batches``), the rows fed of each video (``training_rows``), per-item targets
  beyond the video labels (``video_targets``: counts, proposals, pseudo ground truth);
- its optimisation: ``make_optimizer`` (several optimizers: :class:`OptimizerSet`) and
  ``train_step`` (one optimizer step on a batch, e.g. alternating phases);
- its test inputs: ``forward_test`` with the video's ``video_targets`` (P-MIL's
  proposals);
- a second stage (``stage_input``): the file a teacher's detections become (proposals,
  pseudo labels), given to the method by ``bind_inputs`` (:mod:`hamnet.train.stages`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from hamnet.errors import ConfigError
from hamnet.localize.proposals import localize_video


@dataclass(frozen=True)
class ClassPairs:
    """Class-paired batches: ``pairs`` pairs of videos sharing a class first in each
    batch, then videos drawn from all. ``distinct``: the two videos of a pair differ
    (CO2-Net's and DELU's draw; W-TALC's may draw one video twice). ``short_video``:
    videos of at most that many snippets are left out of the draws from all, the pairs
    may still draw them (CO2-Net's and DELU's ActivityNet filter; 0: none left out)."""

    pairs: int
    distinct: bool = False
    short_video: int = 0


@dataclass(frozen=True)
class TrainItem:
    """One item of a training batch: the video's row in the training set, a tag the
    method gives it (CMCS: which label of a multi-label video; DGAM: the phase), and the
    global step of its batch (set by the trainer: 3C-Net's crop length alternates)."""

    index: int
    tag: int = 0
    step: int = 0


@dataclass
class StepContext:
    """What :meth:`Method.train_step` works with: the (possibly DDP-wrapped) network, the
    method's optimizer, ``scale`` (this rank's share of the global batch: multiply the
    loss before ``backward``), the global step and the run's steps, and ``autocast`` (a
    callable giving the precision context for forward passes)."""

    network: nn.Module
    optimizer: Any
    scale: float
    step: int
    total: int
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


class OptimizerSet:
    """Several named optimizers acting as one for checkpoints and logs (3C-Net's centres,
    DGAM's two models and two VAEs): ``state_dict`` holds each by name, ``param_groups``
    chains theirs (the first is the main one, whose learning rate TensorBoard logs)."""

    def __init__(self, **optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    def __getitem__(self, name: str) -> torch.optim.Optimizer:
        return self.optimizers[name]

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers.values() for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.step()

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.optimizers):
            raise KeyError(f"optimizers {sorted(state)} saved, {sorted(self.optimizers)} here")
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state[name])


def adam(parameters, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam; the fused kernel where this torch has it (3-5x faster steps on the CPU)."""
    parameters = list(parameters)
    try:
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError):  # torch < 2.4 has no fused Adam on the CPU
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)


@dataclass
class VideoOutput:
    """One video's outputs in the terms localization and the figures use.

    ``cas``: the raw T-CAS [T, C] or [T, C+1] (last column background when C+1);
    ``attention`` [T]: the method's class-agnostic weight (figures); ``actionness`` [T]:
    the class-agnostic signal localization thresholds unless ``class_actionness``
    [T, C] gives one per class; ``attended`` [T, C or C+1]: the per-class scores the
    outer-inner contrast averages; ``video_scores`` [C].
    """

    name: str
    cas: np.ndarray
    attention: np.ndarray
    actionness: np.ndarray
    video_scores: np.ndarray
    source: str
    attended: np.ndarray | None = None
    class_actionness: np.ndarray | None = None
    # snippets of the video before test-time sampling (None: not recorded)
    source_length: int | None = None
    # what else the method's rule reads (P-MIL: proposal scores; a detector: its segments)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    # [C]: the score the reference test ranks for classification mAP, where it is not
    # ``video_scores`` (CO2-Net, DELU); None: ``video_scores``
    classification_scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.attended is None:
            self.attended = self.cas * self.actionness[:, None]

    @property
    def length(self) -> int:
        """Snippets of the video before any test-time sampling."""
        return self.cas.shape[0] if self.source_length is None else self.source_length

    @property
    def localization_signal(self) -> np.ndarray:
        """[T] or [T, C]: what the localization thresholds."""
        return self.actionness if self.class_actionness is None else self.class_actionness


# What the baselines' papers set on ActivityNet-1.2 (docs/methods.md): one dict their
# presets share.
BASELINE_ACTIVITYNET = {
    "model": {"smoothing": False, "dropout": 0.7},
    "loss": {"topk_ratio_inv": 8},
}


@dataclass
class NoOptions:
    """A method without options of its own."""


class Method(ABC):
    """One weakly-supervised temporal action localization method, bound to a config."""

    name: ClassVar[str]
    label: ClassVar[str] = ""  # its name in tables (empty: ``name``)
    loss_terms: ClassVar[tuple[str, ...]]
    # ablation rows (name -> enabled loss terms); None: the one row "all"
    variants: ClassVar[dict[str, list[str]] | None] = None
    options_type: ClassVar[type] = NoOptions
    # options that only shape the test (``hamnet test --set method_options.NAME=...``)
    test_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config) -> None:
        self.config = config
        self.options = parse_options(self.options_type, config.method_options, self.name)

    @classmethod
    def check(cls, config) -> None:
        """ConfigError if ``config`` does not fit this method (loss names, options)."""
        unknown = sorted(set(config.loss.losses) - set(cls.loss_terms))
        if unknown:
            raise ConfigError(
                f"loss.losses: {unknown} are not losses of method {cls.name!r} "
                f"(its losses: {list(cls.loss_terms)})"
            )
        if not config.loss.losses:
            raise ConfigError(f"loss.losses: method {cls.name!r} needs at least one loss")
        parse_options(cls.options_type, config.method_options, cls.name)

    @classmethod
    def ablation_rows(cls) -> dict[str, list[str]]:
        """The method's ablation rows: ``variants``, else ``all`` (every loss term)."""
        return cls.variants or {"all": list(cls.loss_terms)}

    @abstractmethod
    def build_network(self, num_classes: int) -> nn.Module: ...

    def hidden_width(self) -> int:
        """``model.hidden_dim``, or the feature width when unset (as in the papers)."""
        model, data = self.config.model, self.config.data
        return data.feature_dim if model.hidden_dim is None else model.hidden_dim

    def class_pairs(self) -> ClassPairs | None:
        """How this method's training batches pair videos of one class (the trainer
        draws them with :mod:`hamnet.data.class_pairs`), or None for the shuffled
        batches (the default; W-TALC, CO2-Net and DELU pair)."""
        return None

    def forward(self, network: nn.Module, features: Tensor, mask: Tensor | None) -> dict:
        """Named outputs; the networks of new methods return the dict themselves."""
        return network(features, mask)

    @abstractmethod
    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]: ...

    @abstractmethod
    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput: ...

    def localization_source(self) -> str:
        """What ``VideoOutput.actionness`` is, for messages, result files and figures."""
        return "attention"

    # Under ``localize.rules=reference``: whether videos with an empty label list are
    # scored too (the reference code's choice).
    reference_scores_unlabelled: ClassVar[bool] = False

    def reference_tests(self, output: VideoOutput) -> bool:
        """Under ``localize.rules=reference``, whether the reference test scores this
        video at all (detections and classification); its ground truth counts either
        way. Default: every video."""
        return True

    def reference_test_snippets(self) -> int | None:
        """Under ``localize.rules=reference``, the snippets each test video is uniformly
        sampled to before the forward pass (None: full length, the default)."""
        return None

    def detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        """One video's detections under ``settings.rules`` (reference or shared)."""
        if settings.rules == "reference":
            return self.reference_detections(output, classes, settings)
        return shared_detections(output, classes, settings)

    def reference_detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        """The detection rule of this method's reference code; default: the shared one
        (HAM-Net's reference code is the shared localization). ``settings.ambiguous``:
        the dataset's Ambiguous spans per video, for a rule that filters them."""
        return shared_detections(output, classes, settings)

    def before_reference_test(self, ambiguous: dict) -> None:
        """Called once before a test under ``localize.rules=reference`` with the
        dataset's Ambiguous spans; a rule that needs them says when they are missing."""
        return None

    def set_progress(self, step: int, total: int) -> None:
        """The trainer's global step (0-based) before each optimizer step, and the run's
        steps; for a loss that depends on them (DELU's curve). Default: ignored."""
        return None

    # ---- what a method may own beyond its network and losses (defaults: the house's) ----

    # True: the trainer asks the hooks below for the epoch's batches, each video's rows
    # and targets; features then stream from the store (no device-resident sampling) and
    # inference runs video by video with ``forward_test``.
    owns_training_data: ClassVar[bool] = False
    # a second stage's input ("proposals", "pseudo_labels"): a teacher's detections kept
    # as RUN/inputs/<kind>.json (hamnet.experiments.stages), given by ``bind_inputs``
    stage_input: ClassVar[str | None] = None

    def epoch_batches(
        self, labels: np.ndarray, epoch: int, seed: int, batch_size: int
    ) -> list[list[TrainItem]] | None:
        """The epoch's global batches (``labels``: the training videos' multi-hot [N, C]);
        None: the house's (shuffled, or class-paired by ``class_pairs``). Draws must be
        a pure function of (seed, epoch), so that resume and DDP ranks agree."""
        return None

    def training_rows(
        self, length: int, item: TrainItem, rng: np.random.Generator, step: int
    ) -> np.ndarray | None:
        """Rows of a training video of ``length`` snippets to feed (any count: batches
        are padded, ``Batch.mask`` marks real rows); ``rng`` is keyed by (seed, epoch,
        item), ``step`` is the global step of the item's batch. None: the house's
        resampling to ``data.num_segments``."""
        return None

    def video_targets(
        self, video: Any, rows: np.ndarray | None, length: int, item: TrainItem | None
    ) -> dict[str, np.ndarray]:
        """One training video's inputs beyond its labels (``rows``: the rows fed);
        ``video``: its annotation record (name, subset, duration, labels, segments).
        At test a method's inputs come from ``test_inputs``."""
        return {}

    def bind_inputs(self, inputs: dict[str, Path], annotations: Any) -> None:
        """A second stage's input files (``{stage_input: path}``) and the dataset's
        annotations, before training or testing; check them here (DataError naming the
        file). Default: nothing to bind."""
        return None

    def make_optimizer(self, network: nn.Module) -> Any:
        """The optimizer (``zero_grad``, ``step``, ``state_dict``, ``param_groups``);
        default Adam with ``train.lr`` and ``train.weight_decay`` on every parameter."""
        train = self.config.train
        return adam(network.parameters(), train.lr, train.weight_decay)

    def train_step(self, batch: Any, context: StepContext) -> dict[str, Tensor]:
        """One optimizer step on ``batch`` (``features``, ``mask``, ``labels``, ``names``,
        ``items``, ``targets``); returns the loss terms and ``total``, detached."""
        with context.autocast():
            # every house training item has data.num_segments rows: no mask needed
            mask_in = batch.mask if self.owns_training_data else None
            outputs = self.forward(context.network, batch.features, mask_in)
        terms = self.losses(outputs, batch.labels, batch.mask)
        context.optimizer.zero_grad(set_to_none=True)
        (terms["total"] * context.scale).backward()
        context.optimizer.step()
        return {key: value.detach() for key, value in terms.items()}

    def test_inputs(self, name: str) -> dict[str, np.ndarray]:
        """One test video's inputs beyond its features (P-MIL: its proposals), given to
        ``forward_test`` as tensors; default none."""
        return {}

    def forward_test(self, network: nn.Module, features: Tensor, targets: dict) -> dict:
        """Named outputs of one test video (``features [1, T, D]``, ``targets``: its
        ``video_targets`` as tensors on the device)."""
        return self.forward(network, features, None)


def shared_detections(output: VideoOutput, classes: list[str], settings) -> list:
    """The common localization of every method (``localize.rules=shared``)."""
    return localize_video(
        output.name,
        output.attended,
        output.localization_signal,
        output.video_scores,
        classes,
        snippet_seconds=settings.snippet_seconds,
        **settings.localize,
    )


def parse_options(options_type: type, values: dict[str, Any], method: str) -> Any:
    """``method_options`` as the method's options dataclass; unknown keys are errors."""
    known = {f.name: f for f in dataclasses.fields(options_type)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        raise ConfigError(
            f"method_options: {unknown[0]!r} is not an option of method {method!r} "
            f"(its options: {listed})"
        )
    coerced = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"method_options.{key} must be a number, got {value!r}")
        kind = known[key].type
        if kind in (int, "int") and float(value) != int(value):
            raise ConfigError(f"method_options.{key} must be a whole number, got {value!r}")
        coerced[key] = float(value) if kind in (float, "float") else value
        coerced[key] = int(value) if kind in (int, "int") else coerced[key]
    return options_type(**coerced)


def topk_video_scores(cas: np.ndarray, count: int) -> np.ndarray:
    """Per column of ``cas [T, K]``, the mean of its ``count`` largest values (float64)."""
    values = np.asarray(cas, dtype=np.float64)
    return np.sort(values, axis=0)[-count:].mean(axis=0)


def softmax(values: np.ndarray, axis: int = -1) -> np.ndarray:
    shifted = np.exp(values - values.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(values, dtype=np.float64)))


def enabled_terms(
    terms: dict[str, Callable[[], Tensor]],
    weights: dict[str, float],
    order: Iterable[str],
    enabled: Iterable[str],
    zero: Tensor,
) -> dict[str, Tensor]:
    """The enabled loss terms (computed only when enabled, in ``order``) and their
    weighted sum as ``"total"`` (``zero`` when none is enabled)."""
    enabled = set(enabled)
    out = {name: terms[name]() for name in order if name in enabled}
    out["total"] = sum((weights[n] * v for n, v in out.items()), zero)
    return out
