"""A DGAM model pair as the official code saves it (train_all.py:177-183: each stream's
``WSAL_Model.state_dict()``, ``final_rgb_<mAP>.pth`` and ``final_flow_<mAP>.pth``; test.py
loads them as STATE_DICT_RGB / STATE_DICT_FLOW) as one hamnet checkpoint. The CVAEs are
not saved by the official code: they keep the seeded initialisation of the import
(they enter no test output, only further training)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from hamnet.errors import CheckpointError
from hamnet.weights.authors_hamnet import read_authors_checkpoint

STREAM_KEYS = (
    "clf_head.fc1.weight",
    "clf_head.fc1.bias",
    "att_head.fc1.weight",
    "att_head.fc1.bias",
    "att_head.fc2.weight",
    "att_head.fc2.bias",
)


def stream_files(original: Path) -> dict[str, Path]:
    """The RGB and flow files: ``original`` names either (its partner is the same name
    with the last ``rgb`` / ``flow`` swapped), or a folder holding one such pair."""
    if original.is_dir():
        found = sorted(original.glob("*rgb*.pth"))
        if len(found) != 1:
            raise CheckpointError(
                f"{original}: {len(found)} '*rgb*.pth' files in the folder; name the RGB file"
            )
        original = found[0]
    name = original.name
    if "rgb" in name:
        own, other = "rgb", "flow"
    elif "flow" in name:
        own, other = "flow", "rgb"
    else:
        raise CheckpointError(
            f"{original}: a DGAM checkpoint is two files (final_rgb_*.pth, final_flow_*.pth); "
            "name one whose name holds 'rgb' or 'flow'"
        )
    head, _, tail = name.rpartition(own)
    partner = original.with_name(head + other + tail)
    if not partner.is_file():
        raise CheckpointError(f"{original}: its {other} stream {partner.name} is missing")
    return {own: original, other: partner}


def read_dgam_pair(files: dict[str, Path]) -> dict[str, Tensor]:
    """Both streams' state dicts (``module.`` prefixes dropped, as my_load_state_dict
    does) under ``rgb.`` / ``flow.``, each checked to be a WSAL_Model's."""
    state: dict[str, Tensor] = {}
    for stream in ("rgb", "flow"):
        path = files[stream]
        own = {k.replace("module.", ""): v for k, v in read_authors_checkpoint(path).items()}
        extra_keys = set(own) - set(STREAM_KEYS)
        if extra_keys and {k.split(".")[0] for k in extra_keys} == {"cluster_head"}:
            raise CheckpointError(
                f"{path}: a pre-release DGAM model (cluster_head; the repo's history before "
                "2020-03-07): the released model has none and its strict load refuses it too"
            )
        if set(own) != set(STREAM_KEYS):
            extra = sorted(set(own) - set(STREAM_KEYS))[:3]
            missing = sorted(set(STREAM_KEYS) - set(own))[:3]
            raise CheckpointError(
                f"{path}: not a DGAM WSAL_Model state_dict "
                f"(missing: {missing}, unexpected: {extra})"
            )
        state.update({f"{stream}.{k}": v for k, v in own.items()})
    return state


def dgam_shape(state: dict[str, Tensor], files: dict[str, Path]) -> dict[str, int]:
    """``feature_dim`` (both streams' widths), ``num_classes``, ``attention_dim``; the two
    streams must agree, and every tensor must have the shape the first ones imply."""
    shapes = {}
    for stream in ("rgb", "flow"):
        clf, att = state[f"{stream}.clf_head.fc1.weight"], state[f"{stream}.att_head.fc1.weight"]
        if clf.dim() != 2 or att.dim() != 2:
            raise CheckpointError(f"{files[stream]}: clf_head.fc1.weight is not 2-D")
        shapes[stream] = (int(clf.shape[1]), int(clf.shape[0]) - 1, int(att.shape[0]))
    if shapes["rgb"] != shapes["flow"]:
        raise CheckpointError(
            f"{files['flow']}: (width, classes, attention) {shapes['flow']}, "
            f"its RGB stream {files['rgb'].name} {shapes['rgb']}"
        )
    width, classes, hidden = shapes["rgb"]
    return {"feature_dim": 2 * width, "num_classes": classes, "attention_dim": hidden}


def load_dgam(network, state: dict[str, Tensor], files: dict[str, Path]) -> None:
    """Both streams into ``network`` (every shape equal); the VAEs are left as built."""
    own = network.state_dict()
    for key, value in state.items():
        if own[key].shape != value.shape:
            stream, _, name = key.partition(".")
            raise CheckpointError(
                f"{files[stream]}: {name} has shape {list(value.shape)}, the network "
                f"{list(own[key].shape)}"
            )
    network.load_state_dict(state, strict=False)
