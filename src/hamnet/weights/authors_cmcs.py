"""CMCS's released models (models/trained-*-run-0/model-{rgb,flow,both}-N: train.py:326
saves each stream's ``model.state_dict()``) as one hamnet checkpoint: the three files of
one check point become the streams of :class:`hamnet.methods.cmcs.CmcsNetwork`; widths,
branches and classes come from the shapes."""

from __future__ import annotations

import re
from pathlib import Path

from torch import Tensor

from hamnet.errors import CheckpointError
from hamnet.weights.authors_co2net import load_official
from hamnet.weights.authors_hamnet import read_authors_checkpoint

STREAMS = ("rgb", "flow", "both")
_NAME = re.compile(r"^model-(rgb|flow|both)-(\d+)$")


def stream_files(original: Path) -> dict[str, Path]:
    """The three files of one check point: ``original`` is one of them, or the run folder
    holding them (one check point only)."""
    if original.is_dir():
        found = [m for p in sorted(original.iterdir()) if (m := _NAME.match(p.name))]
        steps = sorted({m.group(2) for m in found})
        if len(steps) != 1:
            what = "none" if not steps else f"check points {', '.join(steps)}: name one file"
            raise CheckpointError(f"{original}: model-{{rgb,flow,both}}-N files: {what}")
        folder, step = original, steps[0]
    else:
        match = _NAME.match(original.name)
        if match is None:
            raise CheckpointError(
                f"{original}: not a CMCS model file (model-rgb-N, model-flow-N, model-both-N)"
            )
        folder, step = original.parent, match.group(2)
    files = {s: folder / f"model-{s}-{step}" for s in STREAMS}
    missing = [s for s, path in files.items() if not path.is_file()]
    if missing:
        raise CheckpointError(
            f"{original}: the {missing[0]} stream (model-{missing[0]}-{step}) is missing"
        )
    return files


def read_cmcs(original: Path) -> dict[str, Tensor]:
    """The three state dicts (``torch.load(weights_only=True)``), keys ``<stream>.<name>``."""
    state = {}
    for stream, path in stream_files(original).items():
        for key, value in read_authors_checkpoint(path).items():
            state[f"{stream}.{key}"] = value
    return state


def _weight(state: dict[str, Tensor], key: str, dims: int, path: Path) -> Tensor:
    value = state.get(key)
    if value is None or value.dim() != dims:
        raise CheckpointError(f"{path}: no {dims}-D {key!r}: not a CMCS BackboneNet state_dict")
    return value


def cmcs_shape(state: dict[str, Tensor], path: Path) -> dict[str, int]:
    """``feature_dim`` and the options the shapes fix; rgb and flow read D/2, both D."""
    base = {s: _weight(state, f"{s}.base.base_conv_0.weight", 3, path) for s in STREAMS}
    half = base["rgb"].shape[1]
    if base["flow"].shape[1] != half or base["both"].shape[1] != 2 * half:
        widths = ", ".join(f"{s} {base[s].shape[1]}" for s in STREAMS)
        raise CheckpointError(f"{path}: stream input widths {widths}: expected D/2, D/2, D")
    cls = _weight(state, "rgb.cls_bottoms.0.cls_b0_conv_0.weight", 3, path)
    head = _weight(state, "rgb.cls_heads.0.weight", 2, path)
    att = _weight(state, "rgb.att_bottom.att_conv_0.weight", 3, path)
    branches = len({k.split(".")[2] for k in state if k.startswith("rgb.cls_heads.")})
    return {
        "feature_dim": 2 * half,
        "num_classes": head.shape[0] - 1,  # with_bg: the background column last
        "base_width": base["rgb"].shape[0],
        "cls_width": cls.shape[0],
        "cls_kernel": cls.shape[2],
        "att_width": att.shape[0],
        "branches": branches,
    }


def cmcs_overrides(shape: dict[str, int]) -> list[str]:
    options = ("base_width", "cls_width", "cls_kernel", "att_width", "branches")
    return [f"data.feature_dim={shape['feature_dim']}"] + [
        f"method_options.{name}={shape[name]}" for name in options
    ]


def load_cmcs(network, state: dict[str, Tensor], path: Path) -> None:
    """Every parameter present, every shape equal."""
    load_official(network, state, path)
