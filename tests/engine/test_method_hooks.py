"""The hooks a method may own (``hamnet.methods.base``): its epoch's items, each item's
rows and targets, its optimizer and step, and a second stage's input file. A toy method
owning all of them trains end to end; the house's methods are untouched by them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hamnet.errors import DataError
from hamnet.methods import ALIASES, METHODS, register_method
from hamnet.methods import inputs as stage_inputs
from hamnet.methods.base import OptimizerSet, TrainItem, adam
from hamnet.methods.hamnet.method import HamNetMethod
from hamnet.train.trainer import train

SEEN: list[dict] = []


class OwningToy(HamNetMethod):
    """HAM-Net's network and losses on crops whose length alternates with the step, two
    tagged items per video, a count target, two optimizers."""

    name = "owning-toy"
    label = "owning toy"
    owns_training_data = True

    def epoch_batches(self, labels, epoch, seed, batch_size):
        order = np.random.default_rng([seed, epoch]).permutation(labels.shape[0])
        items = [TrainItem(int(i), tag) for i in order for tag in (0, 1)]
        return [items[i : i + batch_size] for i in range(0, len(items), batch_size)]

    def training_rows(self, length, item, rng, step):
        size = min(length, 8 if step % 2 == 0 else 12)
        start = int(rng.integers(0, length - size + 1))
        return np.arange(start, start + size)

    def video_targets(self, video, rows, length, item):
        return {"count": np.array([len(video.segments)], dtype=np.int64)}

    def make_optimizer(self, network):
        train = self.config.train
        params = list(network.parameters())
        return OptimizerSet(
            first=adam(params[:1], train.lr, 0.0), rest=adam(params[1:], train.lr, 0.0)
        )

    def train_step(self, batch, context):
        SEEN.append(
            {
                "rows": int(batch.mask.sum(1).max()),
                "items": list(batch.items),
                "counts": [int(t["count"][0]) for t in batch.targets],
                "step": context.step,
            }
        )
        return super().train_step(batch, context)


class StageToy(HamNetMethod):
    """A second stage: trains only with ``RUN/inputs/proposals.json``."""

    name = "stage-toy"
    label = "stage toy"
    stage_input = "proposals"
    bound: dict = {}

    def bind_inputs(self, inputs, annotations):
        content = json.loads(inputs["proposals"].read_text())
        unknown = set(content) - {v.name for v in annotations.videos}
        if unknown:
            raise DataError(f"{inputs['proposals']}: unknown video {sorted(unknown)[0]!r}")
        StageToy.bound = {"path": inputs["proposals"], "videos": sorted(content)}


@pytest.fixture
def toys():
    register_method("owning-toy", OwningToy)
    register_method("stage-toy", StageToy)
    SEEN.clear()
    yield
    for name in ("owning-toy", "stage-toy"):
        METHODS.pop(name)
        ALIASES.pop(name, None)


def test_an_owning_method_trains_on_its_own_items_rows_and_targets(
    toys, tiny_root, tiny_config, tmp_path
):
    config = tiny_config("all", "method=owning-toy", "train.epochs=2")
    train(config, tiny_root, tmp_path / "run", progress=False)
    assert SEEN, "the method's train_step was never called"
    steps = [seen["step"] for seen in SEEN]
    assert steps == list(range(len(SEEN)))
    assert all(item.step == seen["step"] for seen in SEEN for item in seen["items"])
    # the crop length alternates with the global step (shorter videos give fewer rows)
    assert {seen["rows"] for seen in SEEN[0::2]} == {8}
    assert {seen["rows"] for seen in SEEN[1::2]} == {12}
    assert {item.tag for seen in SEEN for item in seen["items"]} == {0, 1}
    assert all(count >= 1 for seen in SEEN for count in seen["counts"])
    saved = torch.load(tmp_path / "run" / "last.pt", map_location="cpu", weights_only=True)
    assert set(saved["optimizer"]) == {"first", "rest"}


def test_an_owning_method_resumes_to_the_weights_of_a_straight_run(
    toys, tiny_root, tiny_config, tmp_path
):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(tiny_config("all", "method=owning-toy", "train.epochs=2"), tiny_root, straight)
    train(tiny_config("all", "method=owning-toy", "train.epochs=1"), tiny_root, split)
    train(tiny_config("all", "method=owning-toy", "train.epochs=2"), tiny_root, split, resume=True)
    a = torch.load(straight / "last.pt", map_location="cpu", weights_only=True)["model"]
    b = torch.load(split / "last.pt", map_location="cpu", weights_only=True)["model"]
    assert all(torch.equal(a[key], b[key]) for key in a)


def test_a_second_stage_without_its_input_is_one_line_and_trains_nothing(
    toys, tiny_root, tiny_overrides, tmp_path, capsys
):
    from hamnet.cli import main

    run = tmp_path / "run"
    args = ["train", "--preset", "demo", "--method", "stage-toy", "--data", tiny_root]
    args += ["--run-dir", run]
    for item in tiny_overrides:
        args += ["--set", item]
    code = main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "proposals" in err[0] and "inputs" in err[0]
    assert not (run / "last.pt").exists()


def test_a_second_stage_is_given_the_input_of_its_run_folder(
    toys, tiny_root, tiny_config, tmp_path
):
    from hamnet.data.layout import open_dataset

    annotations, _, _ = open_dataset(tiny_root)
    run = tmp_path / "run"
    names = [v.name for v in annotations.videos[:3]]
    written = stage_inputs.write_input(run, "proposals", {name: [] for name in names})
    train(tiny_config("all", "method=stage-toy", "train.epochs=1"), tiny_root, run)
    assert StageToy.bound == {"path": written, "videos": sorted(names)}
    stage_inputs.write_input(run / "bad", "proposals", {"no_such_video": []})
    with pytest.raises(DataError, match="no_such_video"):
        train(tiny_config("all", "method=stage-toy"), tiny_root, run / "bad")
