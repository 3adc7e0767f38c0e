"""Typed configuration: dataset presets, YAML round trip, ``--set`` overrides, checks.

Presets hold the values of ``docs/hamnet-reference.md`` §5; a dataset's differences are
data here, not separate code paths. What belongs to one method lives with it
(:mod:`hamnet.methods`): its values per preset (``PRESETS``), its ablation rows
(``Method.variants``) and the ``loss`` section's type (HAM-Net's
:class:`~hamnet.methods.hamnet.losses.LossConfig`, which every method's config carries).
The trainer and the commands turn this object into plain arguments for the code below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

import numpy as np
import yaml

from hamnet.config_checks import (
    MAX_COUNT,
    MAX_SEED,
    check,
    check_count,
    check_finite,
    check_types,
    check_unit,
    coerce,
    finite,
    show,
)
from hamnet.errors import ConfigError
from hamnet.evaluate.protocols import PROTOCOLS
from hamnet.io import atomic_write_text, parse_yaml
from hamnet.methods import (
    METHODS,
    canonical_method,
    method_class,
    method_label,
    method_presets,
)
from hamnet.methods.hamnet.losses import LossConfig
from hamnet.precision import PRECISIONS
from hamnet.timing import RELEASED_SNIPPET_SECONDS, snippet_seconds_problem

PLACEMENTS = ("auto", "device", "stream")
SELECT_ON = ("none", "heldout", "test")


@dataclass
class DataConfig:
    name: str = "Thumos14reduced"
    feature_dim: int = 2048
    num_segments: int = 500
    snippet_seconds: float = RELEASED_SNIPPET_SECONDS  # 16 frames at 25 fps
    train_subset: str = "validation"
    test_subset: str = "test"
    sampling: str = "random"  # "random" (reference perturbation) or "uniform"
    # accepted for old configs, no effect: released files are read with a restricted
    # unpickler that cannot run code (hamnet.data.safe_npy)
    allow_pickle: bool = False
    # where training and test features live: "device" (loaded once as tensors on the
    # training device), "stream" (read from the store per batch), "auto" (device on a GPU
    # when they fit in its free memory, stream on the CPU; see hamnet.data.resident)
    placement: str = "auto"
    resident_dtype: str = "auto"  # auto (the store's own: exact), float32, float16

    def __post_init__(self) -> None:
        check_types(self, "data")
        check_count(self.feature_dim, "data.feature_dim")
        check_count(self.num_segments, "data.num_segments")
        stride_problem = snippet_seconds_problem(self.snippet_seconds)
        check(stride_problem is None, f"data.snippet_seconds {stride_problem}")
        check(bool(self.train_subset), "data.train_subset must name a subset")
        check(bool(self.test_subset), "data.test_subset must name a subset")
        check(self.sampling in ("random", "uniform"), "data.sampling: random or uniform")
        check(self.placement in PLACEMENTS, f"data.placement must be one of {PLACEMENTS}")
        check(
            self.resident_dtype in ("auto", "float32", "float16"),
            "data.resident_dtype: auto, float32 or float16",
        )
        check_finite(self, "data")


@dataclass
class ModelConfig:
    hidden_dim: int | None = None  # None: equal to the feature width, as in the paper
    attention_dim: int = 512
    dropout: float = 0.7
    smoothing: bool = False  # ActivityNet: AvgPool1d after both branches

    def __post_init__(self) -> None:
        check_types(self, "model")
        check(0.0 <= self.dropout < 1.0, "model.dropout must be in [0, 1)")
        check_count(self.attention_dim, "model.attention_dim")
        check(
            self.hidden_dim is None or 0 < self.hidden_dim <= MAX_COUNT,
            "model.hidden_dim must be positive (or null: the feature width)",
        )


@dataclass
class TrainConfig:
    epochs: int = 100
    batch_size: int = 20
    lr: float = 1e-5
    weight_decay: float = 1e-3
    seed: int = 0
    precision: str = "fp32"
    device: str = "auto"  # auto, cpu, cuda, cuda:1 ...
    eval_every: int = 0  # evaluate every N epochs (0: only the final test evaluation)
    num_workers: int = 0
    # write last.pt every N epochs; 0: adaptive, as often as keeps checkpoint writing
    # under 5 % of the run's wall time. last.pt is always written at the end and when the
    # run is interrupted (SIGINT, SIGTERM).
    checkpoint_every: int = 0
    tensorboard: bool | None = None  # None: log when the tensorboard package is installed
    # which split picks best.pt: none (last.pt is the model), heldout or test (flagged)
    select_on: str = "none"
    heldout_fraction: float = 0.1  # share of the training videos kept out with select_on=heldout
    # train on data.test_subset itself: refused unless set; such results are labelled
    allow_test_subset: bool = False
    # optimiser steps; when set it replaces epochs (the trainer runs just enough epochs and
    # stops the last one after this many steps; DELU's curve runs over it)
    iterations: int | None = None
    # torch's intra-op CPU threads in the run (training, its tests, `hamnet test`); 0: torch's
    # default (one per core). A method of many tiny ops sets 1 in its preset: on a busy
    # machine each op of a multi-threaded run waits for a descheduled thread.
    cpu_threads: int = 0

    def __post_init__(self) -> None:
        check_types(self, "train")
        check_count(self.epochs, "train.epochs")
        if self.iterations is not None:
            check_count(self.iterations, "train.iterations (or null: train.epochs)")
        check_count(self.batch_size, "train.batch_size")
        check(
            0 <= self.seed <= MAX_SEED,
            f"train.seed must be in [0, {MAX_SEED}], got {show(self.seed)}",
        )
        for key in ("checkpoint_every", "num_workers", "eval_every", "cpu_threads"):
            check_count(getattr(self, key), f"train.{key}", minimum=0)
        check(self.precision in PRECISIONS, f"train.precision must be one of {PRECISIONS}")
        check(finite(self.lr) and self.lr > 0, f"train.lr must be a positive number, got {self.lr}")
        check(
            finite(self.weight_decay) and self.weight_decay >= 0,
            f"train.weight_decay must be a number >= 0, got {self.weight_decay}",
        )
        check(self.select_on in SELECT_ON, f"train.select_on must be one of {list(SELECT_ON)}")
        check(
            finite(self.heldout_fraction) and 0 < self.heldout_fraction < 1,
            "train.heldout_fraction must be in (0, 1)",
        )
        check(
            self.select_on == "none" or self.eval_every > 0,
            f"train.select_on={self.select_on} needs train.eval_every > 0 (how often to "
            "evaluate the candidates)",
        )


@dataclass
class LocalizeConfig:
    class_thresh: float = 0.2
    # numpy.linspace(0.1, 0.9, 10), the exact floats of the reference
    thresholds: list[float] = field(
        default_factory=lambda: [float(x) for x in np.linspace(0.1, 0.9, 10)]
    )
    outer_ratio: float = 0.25
    video_score_weight: float = 0.2
    nms: str = "soft"  # soft, hard, none
    sigma: float = 0.3
    nms_iou: float = 0.5
    max_detections: int | None = None
    reference_quirks: bool = True
    source: str = "auto"  # auto, attention, foreground
    # reference: each method's own reference-code rule (hamnet.localize.reference_rules;
    # HAM-Net's is the shared one); shared: the common localization for every method
    rules: str = "reference"

    def __post_init__(self) -> None:
        check_types(self, "localize")
        check_unit(self.class_thresh, "localize.class_thresh")
        check(len(self.thresholds) > 0, "localize.thresholds must hold at least one threshold")
        for value in self.thresholds:
            check_unit(value, "localize.thresholds values")
        check(self.outer_ratio >= 0, f"localize.outer_ratio must be >= 0, got {self.outer_ratio}")
        check_unit(self.video_score_weight, "localize.video_score_weight")
        check(0 < self.nms_iou <= 1, f"localize.nms_iou must be in (0, 1], got {self.nms_iou}")
        if self.max_detections is not None:
            check_count(self.max_detections, "localize.max_detections (or null: no limit)")
        check(self.rules in ("reference", "shared"), "localize.rules: reference or shared")
        check(self.nms in ("soft", "hard", "none"), "localize.nms: soft, hard or none")
        check(
            self.source in ("auto", "attention", "foreground"),
            "localize.source: auto, attention or foreground",
        )
        check(
            finite(self.sigma) and self.sigma > 0,
            f"localize.sigma must be a positive number (soft-NMS divides by it), got {self.sigma}",
        )
        check_finite(self, "localize")


@dataclass
class EvalConfig:
    protocol: str = "anet"
    tiou: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    # round the ground truth to the snippet grid first, as CO2-Net's / DELU's evaluator does
    snippet_grid_gt: bool = False

    def __post_init__(self) -> None:
        check_types(self, "eval")
        check(self.protocol in PROTOCOLS, f"eval.protocol must be one of {PROTOCOLS}")
        check(len(self.tiou) > 0, "eval.tiou must hold at least one threshold")
        check(len(self.tiou) <= 100, "eval.tiou: at most 100 thresholds")
        check(all(0 < t <= 1 for t in self.tiou), "eval.tiou values must be in (0, 1]")
        check(len(set(self.tiou)) == len(self.tiou), f"eval.tiou lists a value twice: {self.tiou}")


@dataclass
class Config:
    preset: str = "thumos14"
    variant: str = "all"
    method: str = "hamnet"  # a name of hamnet.methods.METHODS; old configs have none
    method_options: dict[str, float] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    localize: LocalizeConfig = field(default_factory=LocalizeConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        check_types(self, "")
        for section, kind in _SECTIONS.items():
            check(
                isinstance(getattr(self, section), kind),
                f"config section {section!r} must be a {kind.__name__}",
            )
        for key, value in self.method_options.items():
            check(
                finite(value) and value >= 0,
                f"method_options.{key} must be a finite number >= 0, got {value}",
            )
        check(
            self.data.train_subset != self.data.test_subset or self.train.allow_test_subset,
            f"data.train_subset and data.test_subset are both {self.data.test_subset!r}: the "
            "test numbers would be measured on the training videos; set "
            "train.allow_test_subset=true to do so anyway (results are then labelled)",
        )
        self.method = canonical_method(self.method)
        method_class(self.method).check(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "train": TrainConfig,
    "localize": LocalizeConfig,
    "eval": EvalConfig,
}


def config_differences(first: Config, second: Config) -> list[str]:
    """``key: A -> B`` for each dotted key whose value differs, in field order."""
    a, b = _flat(first.to_dict()), _flat(second.to_dict())
    return [f"{key}: {show(a.get(key))} -> {show(b.get(key))}" for key in a if a[key] != b.get(key)]


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "method_options":
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def checked_config(config: Any) -> Config:
    """``config`` validated again (the Python API: fields may have been set after it was
    built); ConfigError for anything that is not a valid Config."""
    if not isinstance(config, Config):
        raise ConfigError(f"expected a hamnet.config.Config, got {type(config).__name__}")
    return config_from_dict(config.to_dict())


ANET_TIOU = [round(0.5 + 0.05 * i, 2) for i in range(10)]

PRESETS: dict[str, dict[str, Any]] = {
    "thumos14": {},
    "activitynet12": {
        "data": {
            "name": "ActivityNet1.2",
            "num_segments": 80,
            "train_subset": "training",
            "test_subset": "validation",
        },
        "model": {"dropout": 0.5, "smoothing": True},
        "loss": {
            "lm_1": 0.25,
            "lm_2": 2.0,
            "alpha": 0.5,
            "beta": 0.1,
            "drop_prob": 0.5,
            "topk_ratio_inv": 20,
        },
        "train": {"epochs": 20},
        "eval": {"tiou": ANET_TIOU},
    },
    # The embedded default: small synthetic data (see hamnet.data.synthetic), minutes on a CPU.
    "demo": {
        "data": {"name": "Synthetic", "feature_dim": 64, "num_segments": 100},
        "model": {"hidden_dim": 64, "attention_dim": 32},
        "train": {"epochs": 30, "batch_size": 10, "lr": 1e-3, "weight_decay": 1e-4},
        "loss": {"topk_ratio_inv": 8},
    },
}


def make_config(
    preset: str = "thumos14",
    variant: str = "all",
    overrides: list[str] | None = None,
    method: str | None = None,
) -> Config:
    """A preset, the method's values for it, an ablation variant, then ``key=value``
    overrides (dotted keys). The method is ``method``, else a ``method=NAME`` override,
    else HAM-Net."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r} (known: {', '.join(PRESETS)})")
    name = canonical_method(method or _method_override(overrides or []) or "hamnet")
    rows = method_class(name).ablation_rows()
    if variant not in rows:
        raise ConfigError(_variant_problem(name, variant, rows))
    tree = _deep_merge(Config().to_dict(), PRESETS[preset])
    for part in ("*", preset):
        tree = _deep_merge(tree, method_presets(name).get(part, {}))
    tree["preset"], tree["variant"], tree["method"] = preset, variant, name
    tree["loss"]["losses"] = list(rows[variant])
    # every option of the method can be set with --set method_options.KEY=VALUE
    defaults = dataclasses.asdict(method_class(name).options_type())
    tree["method_options"] = {**defaults, **tree["method_options"]}
    for item in overrides or []:
        _apply_override(tree, item)
    return config_from_dict(tree)


def _variant_problem(method: str, variant: str, rows: dict) -> str:
    """Why ``variant`` is not a row of ``method``: another method's row, or unknown."""
    owner = next((m for m in METHODS if variant in method_class(m).ablation_rows()), None)
    if owner is None:
        return f"unknown variant {variant!r} (known for {method!r}: {', '.join(rows)})"
    return (
        f"variant {variant!r} is a {method_label(owner)} ablation row; method {method!r} has "
        f"only {', '.join(rows)} (choose its losses with --set loss.losses=[...])"
    )


def _method_override(overrides: list[str]) -> str | None:
    """The last ``method=NAME`` among the overrides (it chooses the method's presets)."""
    found = None
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and key.strip() == "method":
            found = str(_parse_value(value, f"--set method={show(value)}"))
    return found


def with_overrides(config: Config, overrides: list[str]) -> Config:
    """``config`` with ``key=value`` overrides applied (dotted keys, YAML values)."""
    tree = config.to_dict()
    for item in overrides:
        _apply_override(tree, item)
    return config_from_dict(tree)


def config_from_dict(tree: dict[str, Any]) -> Config:
    return _build(Config, tree, "")


def load_config(path: str | Path) -> Config:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"
        ) from None
    tree = parse_yaml(text, str(path), ConfigError)
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: not a mapping of config sections")
    try:
        return config_from_dict(tree)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def save_config(config: Config, path: str | Path) -> None:
    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _apply_override(tree: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected key=value, e.g. train.epochs=5")
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"--set {item!r}: unknown config key {key!r}")
        node = node[part]
    if leaf not in node or isinstance(node[leaf], dict):
        raise ConfigError(f"--set {item!r}: unknown config key {key!r}")
    node[leaf] = _parse_value(text, f"--set {key.strip()}={show(text)}")


def _parse_value(text: str, where: str = "--set") -> Any:
    """YAML, except that ``1e-5`` is a number (YAML 1.1 reads it as a string)."""
    value = parse_yaml(text, where, ConfigError)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _build(cls: type, tree: Any, prefix: str) -> Any:
    if not isinstance(tree, dict):
        raise ConfigError(f"config section {prefix.rstrip('.') or 'root'!r} must be a mapping")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(tree) - known)
    if unknown:
        raise ConfigError(f"unknown config key {prefix + unknown[0]!r}")
    values = {}
    for name, value in tree.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, f"{prefix}{name}.")
        else:
            values[name] = coerce(value, hint, prefix + name)
    return cls(**values)
