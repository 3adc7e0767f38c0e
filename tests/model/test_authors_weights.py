"""Importing checkpoints laid out like the authors' released (Lightning) code."""

from __future__ import annotations

import argparse
from collections import OrderedDict

import pytest
import torch
from torch import nn

from hamnet.errors import CheckpointError
from hamnet.methods.hamnet.network import HamNet
from hamnet.weights.authors_hamnet import (
    infer_model_shape,
    load_authors_state_dict,
    read_authors_checkpoint,
)

D, C, A = 12, 4, 6


class AuthorsNet(nn.Module):
    """The authors' network as their code builds it (hidden width = D, AvgPool at index 6)."""

    def __init__(self, kernel: int | None) -> None:
        super().__init__()
        smooth = [nn.AvgPool1d(kernel, 1, kernel // 2, count_include_pad=True)] if kernel else []
        self.classifier = nn.Sequential(
            nn.Conv1d(D, D, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(D, D, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Dropout(0.7), nn.Conv1d(D, C + 1, 1), *smooth,
        )  # fmt: skip
        self.attention = nn.Sequential(
            nn.Conv1d(D, A, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(A, A, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv1d(A, 1, 1), nn.Sigmoid(), *smooth,
        )  # fmt: skip
        for p in self.parameters():  # nonzero biases too, so a bias mix-up shows
            nn.init.uniform_(p, -0.5, 0.5)

    def forward(self, x):
        h = x.transpose(-1, -2)
        return self.classifier(h).transpose(-1, -2), self.attention(h).transpose(-1, -2)[..., 0]


class LightningSystem(nn.Module):
    def __init__(self, kernel: int | None) -> None:
        super().__init__()
        self.net = AuthorsNet(kernel)


@pytest.mark.parametrize("kernel, segments", [(None, 50), (17, 80)], ids=["thumos", "anet"])
def test_authors_checkpoint_gives_identical_outputs(tmp_path, kernel, segments):
    torch.manual_seed(0)
    system = LightningSystem(kernel).eval()
    path = tmp_path / "epoch=99.ckpt"
    torch.save({"epoch": 99, "global_step": 1000, "state_dict": system.state_dict()}, path)
    state = read_authors_checkpoint(path)
    assert infer_model_shape(state) == {
        "feature_dim": D, "num_classes": C, "hidden_dim": D, "attention_dim": A,
    }  # fmt: skip
    model = HamNet(D, C, attention_dim=A, smoothing_kernel=kernel or 0).eval()
    load_authors_state_dict(state, model)
    x = torch.randn(2, segments, D)
    with torch.no_grad():
        for ours, theirs in zip(model(x), system.net(x), strict=True):
            torch.testing.assert_close(ours, theirs, atol=0, rtol=0)


def test_bare_state_dict_without_net_prefix_is_accepted(tmp_path):
    authors = AuthorsNet(None)
    path = tmp_path / "bare.pt"
    torch.save(OrderedDict(authors.state_dict()), path)
    model = HamNet(D, C, attention_dim=A)
    load_authors_state_dict(read_authors_checkpoint(path), model)
    torch.testing.assert_close(model.attention[4].bias, authors.attention[4].bias)


def _state() -> dict[str, torch.Tensor]:
    return {f"net.{k}": v for k, v in AuthorsNet(None).state_dict().items()}


def test_missing_key_is_named_with_its_shape():
    state = _state()
    del state["net.classifier.5.bias"]
    with pytest.raises(CheckpointError, match=r"missing net\.classifier\.5\.bias .*\[5\]"):
        load_authors_state_dict(state, HamNet(D, C, attention_dim=A), source="ck.ckpt")


def test_unexpected_key_is_named():
    state = {**_state(), "net.classifier.7.weight": torch.zeros(3)}
    with pytest.raises(CheckpointError, match=r"ck\.ckpt: unexpected key net\.classifier\.7"):
        load_authors_state_dict(state, HamNet(D, C, attention_dim=A), source="ck.ckpt")


def test_shape_mismatch_names_both_shapes_and_leaves_the_model_untouched():
    model = HamNet(D, C + 1, attention_dim=A)
    before = model.classifier[0].weight.clone()
    with pytest.raises(
        CheckpointError, match=r"classifier\.5\.weight has shape \[5, 12, 1\] .*\[6, 12, 1\]"
    ):
        load_authors_state_dict(_state(), model)
    torch.testing.assert_close(model.classifier[0].weight, before, atol=0, rtol=0)


def test_infer_model_shape_needs_the_conv_weights():
    state = _state()
    del state["net.attention.0.weight"]
    with pytest.raises(CheckpointError, match=r"missing net\.attention\.0\.weight"):
        infer_model_shape(state)


def test_checkpoint_with_pickled_objects_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "lightning.ckpt"
    torch.save({"state_dict": _state(), "hparams": argparse.Namespace(rat=10)}, path)
    with pytest.raises(CheckpointError) as error:
        read_authors_checkpoint(path)
    message = str(error.value)
    assert str(path) in message and "argparse.Namespace" in message and "state_dict" in message


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "cut.ckpt"
    torch.save({"state_dict": _state()}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"cut\.ckpt: truncated or corrupt"):
        read_authors_checkpoint(path)


def test_garbage_and_missing_files_are_checkpoint_errors(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.ckpt"):
        read_authors_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="not found"):
        read_authors_checkpoint(tmp_path / "absent.ckpt")


def test_checkpoint_without_tensors_is_refused(tmp_path):
    path = tmp_path / "empty.ckpt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="empty.ckpt: no state_dict"):
        read_authors_checkpoint(path)
