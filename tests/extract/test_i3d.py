"""The I3D network: published endpoint shapes, weight-file layout, loading errors."""

from __future__ import annotations

import pytest
import torch

from hamnet.errors import CheckpointError
from hamnet.extract.i3d import (
    ENDPOINTS,
    InceptionI3d,
    load_i3d,
    random_i3d_state_dict,
    same_padding,
    write_random_i3d_weights,
)

# Carreira & Zisserman 2017, Fig. 3 / the TensorFlow release, for a 16x224x224 clip:
# (channels, time, height, width) after each endpoint.
PUBLISHED_SHAPES = {
    "Conv3d_1a_7x7": (64, 8, 112, 112),
    "MaxPool3d_2a_3x3": (64, 8, 56, 56),
    "Conv3d_2b_1x1": (64, 8, 56, 56),
    "Conv3d_2c_3x3": (192, 8, 56, 56),
    "MaxPool3d_3a_3x3": (192, 8, 28, 28),
    "Mixed_3b": (256, 8, 28, 28),
    "Mixed_3c": (480, 8, 28, 28),
    "MaxPool3d_4a_3x3": (480, 4, 14, 14),
    "Mixed_4b": (512, 4, 14, 14),
    "Mixed_4c": (512, 4, 14, 14),
    "Mixed_4d": (512, 4, 14, 14),
    "Mixed_4e": (528, 4, 14, 14),
    "Mixed_4f": (832, 4, 14, 14),
    "MaxPool3d_5a_2x2": (832, 2, 7, 7),
    "Mixed_5b": (832, 2, 7, 7),
    "Mixed_5c": (1024, 2, 7, 7),
}


@pytest.fixture(scope="module")
def rgb_weights(tmp_path_factory):
    return write_random_i3d_weights(tmp_path_factory.mktemp("w") / "rgb.pt", 3, seed=1)


def test_same_padding_hand_worked():
    # 224 -> 112 with a 7-wide window, stride 2: (111 * 2 + 7) - 224 = 5 -> 2 before, 3 after
    assert same_padding(224, 7, 2) == (2, 3)
    assert same_padding(56, 3, 2) == (0, 1)  # 27 * 2 + 3 - 56 = 1
    assert same_padding(8, 3, 1) == (1, 1)
    assert same_padding(4, 2, 2) == (0, 0)
    assert same_padding(7, 3, 2) == (1, 1)  # odd size: out 4, 3 * 2 + 3 - 7 = 2


def test_every_endpoint_shape_matches_the_published_architecture():
    model = InceptionI3d(3).eval()
    with torch.no_grad():
        outputs = model.endpoints(torch.zeros(1, 3, 16, 224, 224))
    assert list(outputs) == list(ENDPOINTS)
    assert {k: tuple(v.shape[1:]) for k, v in outputs.items()} == PUBLISHED_SHAPES


def test_published_key_layout_and_parameter_count():
    state = random_i3d_state_dict(3)
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Conv3d_1a_7x7.bn.running_mean",
        "Mixed_3b.b1b.conv3d.weight",
        "Mixed_5c.b3b.bn.bias",
        "logits.conv3d.bias",
    ):
        assert key in state
    assert not any(k.endswith("num_batches_tracked") for k in state)
    assert tuple(state["Conv3d_1a_7x7.conv3d.weight"].shape) == (64, 3, 7, 7, 7)
    assert tuple(state["Mixed_3b.b1b.conv3d.weight"].shape) == (128, 96, 3, 3, 3)
    assert tuple(state["logits.conv3d.weight"].shape) == (400, 1024, 1, 1, 1)
    assert "Mixed_3b.b3a.weight" not in state  # the pooling branch has no parameters
    backbone = sum(v.numel() for k, v in state.items() if "running" not in k)
    head = 400 * 1024 + 400
    assert 12.2e6 < backbone - head < 12.4e6  # I3D: about 12.3M parameters (two-stream: x2)


def test_weight_file_loads_and_forward_is_deterministic(rgb_weights):
    first, second = load_i3d(rgb_weights, 3), load_i3d(rgb_weights, 3)
    assert not first.training
    clip = torch.rand(1, 3, 16, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        a, b, c = first(clip), first(clip), second(clip)
    assert a.shape == (1, 1024)
    assert torch.equal(a, b) and torch.equal(a, c)
    state = torch.load(rgb_weights, weights_only=True)
    loaded = first.state_dict()
    assert torch.equal(loaded["Mixed_4d.b2b.bn.running_var"], state["Mixed_4d.b2b.bn.running_var"])


def test_legacy_serialization_and_dataparallel_prefix_load(tmp_path):
    state = random_i3d_state_dict(2, seed=3)
    prefixed = {f"module.{k}": v for k, v in state.items()}
    path = tmp_path / "flow_old.pt"
    torch.save(prefixed, path, _use_new_zipfile_serialization=False)
    model = load_i3d(path, 2)
    assert torch.equal(model.state_dict()["logits.conv3d.bias"], state["logits.conv3d.bias"])


def _save(tmp_path, state):
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    return path


def test_wrong_layouts_name_the_first_mismatched_key(tmp_path):
    state = random_i3d_state_dict(3)
    missing = {k: v for k, v in state.items() if k != "Mixed_4c.b1a.conv3d.weight"}
    with pytest.raises(CheckpointError, match=r"'Mixed_4c\.b1a\.conv3d\.weight' is missing"):
        load_i3d(_save(tmp_path, missing), 3)
    shaped = dict(state, **{"Mixed_3c.b0.bn.weight": torch.zeros(7)})
    with pytest.raises(CheckpointError, match=r"'Mixed_3c\.b0\.bn\.weight' has shape \(7,\)"):
        load_i3d(_save(tmp_path, shaped), 3)
    extra = dict(state, **{"fc.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="unexpected key 'fc.weight'"):
        load_i3d(_save(tmp_path, extra), 3)


def test_swapped_missing_and_foreign_files_are_clear_errors(tmp_path, rgb_weights):
    with pytest.raises(CheckpointError, match="flow stream needs 2"):
        load_i3d(rgb_weights, 2)
    with pytest.raises(CheckpointError, match="not found"):
        load_i3d(tmp_path / "absent.pt", 3)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_i3d(tmp_path / "junk.pt", 3)
    with pytest.raises(CheckpointError, match="not a state dict"):
        load_i3d(_save(tmp_path, {"a": 1}), 3)


def test_maxpool_padding_never_wins_over_negative_values():
    from hamnet.extract.i3d import MaxPool3dSame

    pool = MaxPool3dSame((1, 3, 3), (1, 2, 2))
    x = -torch.ones(1, 1, 1, 4, 4)
    assert torch.equal(pool(x), -torch.ones(1, 1, 1, 2, 2))  # zero padding would give 0
