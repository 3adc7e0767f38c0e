"""A method added from outside the package: registered here, then trained, tested and
ablated through the CLI with no other file touched."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from hamnet.cli import main
from hamnet.config import make_config
from hamnet.methods import METHODS, method_label, method_presets, register_method
from hamnet.methods.base import Method, VideoOutput, enabled_terms, sigmoid

LOSS_TERMS = ("mil",)
# the shape every method module has: values per dataset preset, "*" for all of them
PRESETS = {"*": {"localize": {"class_thresh": 0.3}}, "demo": {"train": {"lr": 0.01}}}


@dataclass
class ToyOptions:
    topk: int = 4


class ToyNetwork(nn.Module):
    """One linear T-CAS per snippet."""

    def __init__(self, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(feature_dim, num_classes)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        return {"cas": self.classifier(x)}


class ToyMethod(Method):
    name = "toy"
    label = "Toy"
    loss_terms = LOSS_TERMS
    options_type = ToyOptions

    def build_network(self, num_classes: int) -> ToyNetwork:
        return ToyNetwork(self.config.data.feature_dim, num_classes)

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        cas = outputs["cas"].float()
        logits = cas.topk(self.options.topk, dim=1).values.mean(dim=1)
        bce = nn.functional.binary_cross_entropy_with_logits
        terms = {"mil": lambda: bce(logits, labels.float())}
        return enabled_terms(
            terms, {"mil": 1.0}, LOSS_TERMS, self.config.loss.losses, cas.sum() * 0
        )

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        cas = outputs["cas"]
        actionness = sigmoid(cas).max(axis=1).astype(np.float32)
        scores = sigmoid(np.sort(cas, axis=0)[-self.options.topk :].mean(axis=0))
        return VideoOutput(name, cas, actionness, actionness, scores, "attention")


@pytest.fixture
def toy_registered():
    register_method("toy", ToyMethod, aliases=("toy-net",))
    yield
    del METHODS["toy"]
    from hamnet.methods import ALIASES

    ALIASES.pop("toy-net")


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def test_a_registered_method_brings_its_presets_and_label(toy_registered):
    config = make_config("demo", method="toy-net")
    assert config.method == "toy" and config.loss.losses == ["mil"]
    assert config.train.lr == 0.01 and config.localize.class_thresh == 0.3
    assert method_presets("toy") is PRESETS and method_label("toy") == "Toy"
    with pytest.raises(Exception, match="registered already"):
        register_method("toy", ToyMethod)


def test_toy_method_trains_tests_and_ablates_through_the_cli(
    toy_registered, capsys, tiny_root, tiny_overrides, tmp_path
):
    sets = _sets([*tiny_overrides, "train.epochs=3"])
    run = tmp_path / "run"
    argv = ["train", "--preset", "demo", "--method", "toy", "--data", str(tiny_root)]
    assert main([*argv, "--run-dir", str(run), *sets]) == 0
    saved = torch.load(run / "last.pt", weights_only=True)
    assert saved["config"]["method"] == "toy" and set(saved["model"]) == {
        "classifier.weight",
        "classifier.bias",
    }
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and rows[-1]["loss_mil"] < rows[0]["loss_mil"]
    out = tmp_path / "res.json"
    test = ["test", "--checkpoint", str(run / "last.pt"), "--data", str(tiny_root)]
    assert main([*test, "--out", str(tmp_path / "det.json"), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["protocol"] == "anet" and 0.0 <= result["average_mAP"] <= 1.0
    capsys.readouterr()
    ablate = ["ablate", "--preset", "demo", "--methods", "toy,stpn", "--data", str(tiny_root)]
    assert main([*ablate, "--out", str(tmp_path / "abl"), "--jobs", "1", *sets]) == 0
    table = list(csv.DictReader((tmp_path / "abl/ablation.csv").open()))
    assert [r["method"] for r in table] == ["Toy", "STPN"]
