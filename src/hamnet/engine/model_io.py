"""The boundary between config and network: build a model, load a trained one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from hamnet.config import Config, config_from_dict
from hamnet.engine.checkpoint import load_checkpoint
from hamnet.errors import CheckpointError, ConfigError
from hamnet.model.hamnet import HamNet, smoothing_kernel_for

ATTENTION_LOSSES = {"sal", "ssal", "sparse", "guide"}


def build_model(config: Config, num_classes: int) -> HamNet:
    kernel = smoothing_kernel_for(config.data.num_segments) if config.model.smoothing else 0
    return HamNet(
        config.data.feature_dim,
        num_classes,
        hidden_dim=config.model.hidden_dim,
        attention_dim=config.model.attention_dim,
        dropout=config.model.dropout,
        smoothing_kernel=kernel,
    )


def localization_source(config: Config) -> str:
    """``attention`` unless no loss trains the attention branch (BCL / HAL-only rows).

    L_HAL sees the attention only through a hard threshold, so it sends no gradient there;
    an untrained branch localizes noise, and the classifier's foreground probability
    (1 - background) is used instead.
    """
    if config.localize.source != "auto":
        return config.localize.source
    return "attention" if ATTENTION_LOSSES & set(config.loss.losses) else "foreground"


@dataclass
class TrainedModel:
    model: HamNet
    config: Config
    classes: list[str]
    epoch: int
    path: Path
    selection: dict | None = None  # how best.pt was chosen (None: last.pt, imported)


def load_trained(path: str | Path, device: torch.device | None = None) -> TrainedModel:
    """A model in eval mode with the config and classes it was trained with."""
    path = Path(path)
    record = load_checkpoint(path)
    try:
        config = config_from_dict(record["config"])
    except ConfigError as error:
        raise CheckpointError(f"{path}: its config is not valid here ({error})") from None
    classes = [str(name) for name in record["classes"]]
    model = build_model(config, len(classes))
    try:
        model.load_state_dict(record["model"])
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the network ({first})") from None
    model.eval()
    if device is not None:
        model.to(device)
    selection = record.get("selection") if isinstance(record.get("selection"), dict) else None
    return TrainedModel(model, config, classes, int(record["epoch"]), path, selection)
