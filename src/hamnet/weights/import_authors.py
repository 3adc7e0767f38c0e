"""``hamnet import-checkpoint``: the authors' released checkpoints (HAM-Net; CO2-Net and
DELU official saved models) as hamnet checkpoints."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

import torch

from hamnet.config import make_config
from hamnet.data.layout import find_dataset, load_annotations
from hamnet.errors import CheckpointError, ConfigError
from hamnet.weights.authors_cmcs import cmcs_overrides, cmcs_shape, load_cmcs, read_cmcs
from hamnet.weights.authors_co2net import OFFICIAL_METHODS, load_official, official_shape
from hamnet.weights.authors_dgam import dgam_shape, load_dgam, read_dgam_pair, stream_files
from hamnet.weights.authors_hamnet import (
    infer_model_shape,
    load_authors_state_dict,
    read_authors_checkpoint,
)
from hamnet.weights.authors_threecnet import load_threecnet, threecnet_shape
from hamnet.weights.checkpoint import save_checkpoint
from hamnet.weights.trained import build_model

log = logging.getLogger(__name__)

# whose checkpoints import: the HAM-Net release, an official CO2-Net / DELU / 3C-Net model,
# DGAM's two stream files, CMCS's three stream files
IMPORTABLE = ("hamnet", *OFFICIAL_METHODS, "3cnet", "dgam", "cmcs")


def preset_classes(preset: str) -> list[str]:
    """The class list of a benchmark, in the order of its released ``classlist.npy``."""
    text = resources.files("hamnet.data").joinpath("classlists.json").read_text()
    return json.loads(text)[preset]


def preset_for_classes(count: int) -> str | None:
    """The benchmark preset whose class list has ``count`` classes (None: no such preset)."""
    text = resources.files("hamnet.data").joinpath("classlists.json").read_text()
    matches = [name for name, classes in json.loads(text).items() if len(classes) == count]
    return matches[0] if len(matches) == 1 else None


def choose_preset(original: Path, count: int, preset: str | None, data: Path | None) -> str:
    """The preset of the checkpoint: given, or inferred from its class count; a preset
    that contradicts the class count is refused (its config would not fit the data)."""
    inferred = preset_for_classes(count)
    if preset is None:
        if inferred is None:
            raise CheckpointError(
                f"{original}: has {count} classes, which matches no preset's class list; "
                "pass --preset (thumos14 or activitynet12) and --data with its dataset"
            )
        log.info("%s: %d classes: preset %s", original, count, inferred)
        return inferred
    expected = len(preset_classes(preset))
    if expected != count and data is None:
        hint = f"--preset {inferred}" if inferred else "--data with the matching dataset"
        raise CheckpointError(
            f"{original}: has {count} classes, the {preset} class list {expected}; pass {hint}"
        )
    if expected != count and inferred is not None:
        raise CheckpointError(
            f"{original}: has {count} classes, the {preset} preset {expected}; its settings "
            f"(smoothing, top-k, tIoU) would contradict the data: pass --preset {inferred}"
        )
    return preset


def _classes(original: Path, preset: str, classes_from: Path | None, count: int) -> list[str]:
    if classes_from is not None:
        classes = load_annotations(find_dataset(classes_from)).classes
    else:
        classes = preset_classes(preset)
    if len(classes) != count:
        raise CheckpointError(
            f"{original}: has {count} classes, the data at {classes_from} "
            f"{len(classes)}; pass --data with the matching dataset"
        )
    return list(classes)


def import_authors_checkpoint(
    original: Path,
    out: Path,
    *,
    preset: str | None = None,
    classes_from: Path | None = None,
    method: str = "hamnet",
) -> Path:
    """Map the authors' weights onto our network and save a complete hamnet checkpoint.

    ``preset`` None: inferred from the class count (20: thumos14, 100: activitynet12).
    ``method``: hamnet (the HAM-Net release), co2net or delu (their official saved models).
    """
    if method not in IMPORTABLE:
        raise ConfigError(f"import-checkpoint --method: one of {', '.join(IMPORTABLE)}")
    from hamnet.io import input_files, refuse_overwriting_inputs

    files = stream_files(original) if method == "dgam" else {"model": original}
    refuse_overwriting_inputs([out], [*files.values(), *input_files(classes_from)])
    if method == "dgam":  # two files, one per stream
        state = read_dgam_pair(files)
        shape = dgam_shape(state, files)
    else:
        state = read_cmcs(original) if method == "cmcs" else read_authors_checkpoint(original)
        shape = _shape(method, state, original)
    preset = choose_preset(original, shape["num_classes"], preset, classes_from)
    classes = _classes(original, preset, classes_from, shape["num_classes"])
    config = make_config(preset, "all", _width_overrides(method, shape), method=method)
    model = _built(config, len(classes), seeded=method == "dgam")
    if method == "dgam":
        load_dgam(model, state, files)
    elif method == "3cnet":
        load_threecnet(model, state, original)
    elif method == "cmcs":
        load_cmcs(model, state, original)
    elif method in OFFICIAL_METHODS:
        load_official(model, state, original)
    else:
        load_authors_state_dict(state, model)
    save_checkpoint(
        out,
        {
            "model": model.state_dict(),
            "config": config.to_dict(),
            "classes": list(classes),
            "epoch": 0,
            "imported_from": str(original),
        },
    )
    return out


def _built(config, num_classes: int, seeded: bool):
    """The network; ``seeded``: from ``train.seed`` without moving the global RNG
    (DGAM's VAEs, which its files do not hold, are then the same on every import)."""
    if not seeded:
        return build_model(config, num_classes)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        return build_model(config, num_classes)


def _shape(method: str, state: dict, original: Path) -> dict[str, int]:
    if method == "3cnet":
        return threecnet_shape(state, original)
    if method == "cmcs":
        return cmcs_shape(state, original)
    if method in OFFICIAL_METHODS:
        return official_shape(state, original)
    return infer_model_shape(state)


def _width_overrides(method: str, shape: dict[str, int]) -> list[str]:
    """The config values the checkpoint's shapes fix."""
    if method == "cmcs":
        return cmcs_overrides(shape)
    widths = [f"data.feature_dim={shape['feature_dim']}"]
    if method == "3cnet":
        return [*widths, f"method_options.activitynet={shape['activitynet']}"]
    if method == "dgam":
        return [*widths, f"method_options.attention_dim={shape['attention_dim']}"]
    widths.append(f"model.attention_dim={shape['attention_dim']}")
    if method not in OFFICIAL_METHODS:
        widths.append(f"model.hidden_dim={shape['hidden_dim']}")
    return widths
