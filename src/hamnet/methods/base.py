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
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from hamnet.errors import ConfigError


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

    def __post_init__(self) -> None:
        if self.attended is None:
            self.attended = self.cas * self.actionness[:, None]

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
        coerced[key] = float(value) if known[key].type in (float, "float") else value
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
