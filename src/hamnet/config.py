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
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np
import yaml

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
from hamnet.timing import RELEASED_SNIPPET_SECONDS

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
        _check(self.feature_dim > 0, "data.feature_dim must be positive")
        _check(self.num_segments > 0, "data.num_segments must be positive")
        _check(self.snippet_seconds > 0, "data.snippet_seconds must be positive")
        _check(self.sampling in ("random", "uniform"), "data.sampling: random or uniform")
        _check(self.placement in PLACEMENTS, f"data.placement must be one of {PLACEMENTS}")
        _check(
            self.resident_dtype in ("auto", "float32", "float16"),
            "data.resident_dtype: auto, float32 or float16",
        )


@dataclass
class ModelConfig:
    hidden_dim: int | None = None  # None: equal to the feature width, as in the paper
    attention_dim: int = 512
    dropout: float = 0.7
    smoothing: bool = False  # ActivityNet: AvgPool1d after both branches

    def __post_init__(self) -> None:
        _check(0.0 <= self.dropout < 1.0, "model.dropout must be in [0, 1)")
        _check(self.attention_dim > 0, "model.attention_dim must be positive")
        _check(
            self.hidden_dim is None or self.hidden_dim > 0,
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

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, "train.epochs must be >= 1")
        _check(self.checkpoint_every >= 0, "train.checkpoint_every must be >= 0")
        _check(self.batch_size >= 1, "train.batch_size must be >= 1")
        _check(self.precision in PRECISIONS, f"train.precision must be one of {PRECISIONS}")
        _check(
            _finite(self.lr) and self.lr > 0, f"train.lr must be a positive number, got {self.lr}"
        )
        _check(
            _finite(self.weight_decay) and self.weight_decay >= 0,
            f"train.weight_decay must be a number >= 0, got {self.weight_decay}",
        )
        _check(self.num_workers >= 0, "train.num_workers must be >= 0")
        _check(self.eval_every >= 0, "train.eval_every must be >= 0")
        _check(self.select_on in SELECT_ON, f"train.select_on must be one of {list(SELECT_ON)}")
        _check(
            _finite(self.heldout_fraction) and 0 < self.heldout_fraction < 1,
            "train.heldout_fraction must be in (0, 1)",
        )
        _check(
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

    def __post_init__(self) -> None:
        _check(self.nms in ("soft", "hard", "none"), "localize.nms: soft, hard or none")
        _check(
            self.source in ("auto", "attention", "foreground"),
            "localize.source: auto, attention or foreground",
        )
        _check(
            _finite(self.sigma) and self.sigma > 0,
            f"localize.sigma must be a positive number (soft-NMS divides by it), got {self.sigma}",
        )


@dataclass
class EvalConfig:
    protocol: str = "anet"
    tiou: list[float] = field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])

    def __post_init__(self) -> None:
        _check(self.protocol in PROTOCOLS, f"eval.protocol must be one of {PROTOCOLS}")
        _check(len(self.tiou) > 0, "eval.tiou must hold at least one threshold")
        _check(all(0 < t <= 1 for t in self.tiou), "eval.tiou values must be in (0, 1]")


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
        self.method = canonical_method(self.method)
        method_class(self.method).check(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


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
            found = str(_parse_value(value))
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
    node[leaf] = _parse_value(text)


def _parse_value(text: str) -> Any:
    """YAML, except that ``1e-5`` is a number (YAML 1.1 reads it as a string)."""
    value = parse_yaml(text, f"--set value {text!r:.60}", ConfigError)
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
            values[name] = _coerce(value, hint, prefix + name)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a YAML value against its annotation; ints are accepted where floats are."""
    if get_origin(hint) is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"config key {key!r} must be a mapping of names, got {value!r}")
        _, value_type = get_args(hint)
        return {k: _coerce(v, value_type, f"{key}.{k}") for k, v in value.items()}
    options = get_args(hint) if get_origin(hint) is not list else ()
    if value is None and type(None) in options:
        return None
    base = next((o for o in options if o is not type(None)), hint)
    if get_origin(base) is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {value!r}")
        (item_type,) = get_args(base)
        return [_coerce(v, item_type, key) for v in value]
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if base is int and isinstance(value, bool):
        raise ConfigError(f"config key {key!r} must be int, got {value!r}")
    if not isinstance(value, base):
        raise ConfigError(f"config key {key!r} must be {base.__name__}, got {value!r}")
    return value
