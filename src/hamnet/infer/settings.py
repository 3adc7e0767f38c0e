"""The inference settings of a config, built once and shared by training, test and predict."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hamnet.methods import make_method
from hamnet.methods.base import Method


@dataclass(frozen=True)
class InferenceSettings:
    """How a trained network becomes detections and a score.

    ``method``: the method (its ``video_output`` says what localization thresholds and
    how videos are scored); ``localize``: keyword arguments of
    :func:`hamnet.localize.proposals.localize_video`.
    """

    method: Method
    precision: str
    snippet_seconds: float
    protocol: str
    tiou: list[float]
    localize: dict = field(repr=False)
    rules: str = "reference"  # localize.rules: the method's reference rule, or shared
    snippet_grid_gt: bool = False  # eval.snippet_grid_gt
    # the dataset's Ambiguous spans per video (seconds); None: not known (predict)
    ambiguous: dict | None = field(default=None, repr=False)

    @property
    def source(self) -> str:
        return self.method.localization_source()

    @property
    def test_snippets(self) -> int | None:
        """Snippets each test video is uniformly sampled to (None: full length)."""
        return self.method.reference_test_snippets() if self.rules == "reference" else None


def inference_settings(
    config,
    *,
    protocol: str | None = None,
    tiou: list[float] | None = None,
    method: Method | None = None,
) -> InferenceSettings:
    """The settings of ``config``; ``protocol`` / ``tiou`` replace the config's;
    ``method``: an instance already bound to its inputs (training's own), else a new one."""
    return InferenceSettings(
        method=method or make_method(config),
        precision=config.train.precision,
        snippet_seconds=config.data.snippet_seconds,
        protocol=protocol or config.eval.protocol,
        tiou=list(tiou or config.eval.tiou),
        localize=localize_kwargs(config),
        rules=config.localize.rules,
        snippet_grid_gt=config.eval.snippet_grid_gt,
    )


def localize_kwargs(config) -> dict:
    """The localization settings of a config as plain keyword arguments."""
    cfg = config.localize
    return {
        "class_thresh": cfg.class_thresh,
        "thresholds": np.asarray(cfg.thresholds, dtype=np.float64),
        "outer_ratio": cfg.outer_ratio,
        "video_score_weight": cfg.video_score_weight,
        "nms": cfg.nms,
        "sigma": cfg.sigma,
        "nms_iou": cfg.nms_iou,
        "max_detections": cfg.max_detections,
        "reference_quirks": cfg.reference_quirks,
    }


# what ``hamnet test`` / ``hamnet predict --set`` may change: how outputs become detections
# and how they are scored, never what the network was trained with
INFERENCE_KEYS = ("localize.", "eval.")


def with_inference_overrides(config, overrides: list[str]):
    """``config`` with ``key=value`` overrides of localization / evaluation settings
    and of the method's test-time options (``Method.test_options``)."""
    from hamnet.config import with_overrides
    from hamnet.errors import ConfigError
    from hamnet.methods import method_class

    method = method_class(config.method)
    options = tuple(f"method_options.{o}" for o in method.test_options)
    for item in overrides:
        key = item.partition("=")[0].strip()
        if not (key.startswith(INFERENCE_KEYS) or key in options):
            allowed = [k + "*" for k in INFERENCE_KEYS] + list(options)
            raise ConfigError(
                f"--set {item!r}: only localization and evaluation settings "
                f"({', '.join(allowed)}) can change after training"
            )
    return with_overrides(_with_test_option_defaults(config, method), overrides)


def _with_test_option_defaults(config, method):
    """A checkpoint saved before a test-time option existed gets its default, so that
    ``--set`` can change it."""
    import dataclasses

    defaults = dataclasses.asdict(method.options_type())
    missing = {o: defaults[o] for o in method.test_options if o not in config.method_options}
    if not missing:
        return config
    return dataclasses.replace(config, method_options={**config.method_options, **missing})
