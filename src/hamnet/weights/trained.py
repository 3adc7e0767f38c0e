"""The boundary between config and network: build a model, load a trained one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hamnet.config import Config, config_from_dict
from hamnet.errors import CheckpointError, ConfigError
from hamnet.methods import make_method
from hamnet.weights.checkpoint import load_checkpoint
from hamnet.weights.files import load_weights_strict


def build_model(config: Config, num_classes: int) -> torch.nn.Module:
    """The network of ``config.method`` (HAM-Net unless the config names another)."""
    return make_method(config).build_network(num_classes)


def localization_source(config: Config) -> str:
    """What the method of ``config`` localizes on (HAM-Net: ``attention`` or ``foreground``)."""
    return make_method(config).localization_source()


@dataclass
class TrainedModel:
    model: torch.nn.Module
    config: Config
    classes: list[str]
    epoch: int
    path: Path
    selection: dict | None = None  # how best.pt was chosen (None: last.pt, imported)
    imported_from: str | None = None  # the authors' file of an imported checkpoint


def load_trained(path: str | Path, device: torch.device | None = None) -> TrainedModel:
    """A model in eval mode with the config and classes it was trained with.

    A checkpoint whose config names no method is HAM-Net's (written before methods)."""
    path = Path(path)
    record = load_checkpoint(path)
    try:
        config = config_from_dict(record["config"])
    except ConfigError as error:
        raise CheckpointError(f"{path}: its config is not valid here ({error})") from None
    classes = [str(name) for name in record["classes"]]
    model = build_model(config, len(classes))
    load_weights_strict(model, record["model"], str(path))
    model.eval()
    if device is not None:
        model.to(device)
    selection = record.get("selection") if isinstance(record.get("selection"), dict) else None
    imported = record.get("imported_from")
    imported = imported if isinstance(imported, str) else None
    return TrainedModel(model, config, classes, int(record["epoch"]), path, selection, imported)
