"""``hamnet import-checkpoint``: the authors' released checkpoints as hamnet checkpoints."""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

from hamnet.config import make_config
from hamnet.data.annotations import load_gt_json
from hamnet.data.layout import find_dataset
from hamnet.data.released import load_released_annotations
from hamnet.engine.checkpoint import save_checkpoint
from hamnet.engine.model_io import build_model
from hamnet.errors import CheckpointError
from hamnet.model.authors_weights import (
    infer_model_shape,
    load_authors_state_dict,
    read_authors_checkpoint,
)

log = logging.getLogger(__name__)


def preset_classes(preset: str) -> list[str]:
    """The class list of a benchmark, in the order of its released ``classlist.npy``."""
    text = resources.files("hamnet.data").joinpath("classlists.json").read_text()
    return json.loads(text)[preset]


def import_authors_checkpoint(
    original: Path, out: Path, *, preset: str = "thumos14", classes_from: Path | None = None
) -> Path:
    """Map the authors' weights onto our network and save a complete hamnet checkpoint."""
    state = read_authors_checkpoint(original)
    shape = infer_model_shape(state)
    if classes_from is not None:
        files = find_dataset(classes_from)
        if files.annotations_dir is None:
            classes = load_gt_json(files.gt_json).classes
        else:
            classes = load_released_annotations(files.annotations_dir).classes
    else:
        classes = preset_classes(preset)
    if len(classes) != shape["num_classes"]:
        raise CheckpointError(
            f"{original}: has {shape['num_classes']} classes, the {preset} class list "
            f"{len(classes)}; pass --data with the matching dataset"
        )
    config = make_config(
        preset,
        "all",
        [
            f"data.feature_dim={shape['feature_dim']}",
            f"model.hidden_dim={shape['hidden_dim']}",
            f"model.attention_dim={shape['attention_dim']}",
        ],
    )
    model = build_model(config, len(classes))
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
