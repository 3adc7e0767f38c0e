"""CO2-Net's and DELU's ActivityNet training draws against the official sampler.

``fixtures/co2net_official_anet_draws.json`` (tools/reference/record_co2net_anet_draws.py):
the official ``AntSampleDataset.load_data`` of both codes, 8 batches on
``reference_cases.anet_draws_case`` from numpy's global stream seeded with hamnet's key
of (seed 0, epoch 0). The official filter drops videos of at most 10 snippets from
``trainidx`` after the per-class lists were built: the random part of a batch never
draws them, the class-paired part may.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_cases as cases  # noqa: E402

from hamnet.config import make_config
from hamnet.data.class_pairs import class_paired_epoch
from hamnet.data.dataset import VideoDataset
from hamnet.data.layout import open_dataset
from hamnet.errors import DataError
from hamnet.methods import make_method
from hamnet.train import step

FIXTURE = Path(__file__).parent / "fixtures" / "co2net_official_anet_draws.json"
PAIRED = 6  # batch positions 0-5: the three class-sharing pairs


@pytest.fixture(scope="module")
def official() -> dict:
    return json.loads(FIXTURE.read_text())


@pytest.fixture(scope="module")
def draws_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("anet_draws")
    cases.write_anet_draws_root(cases.anet_draws_case(), root)
    return root


def session_of(root: Path, method: str, overrides: tuple[str, ...] = ()) -> SimpleNamespace:
    """What ``step.epoch_batches`` reads of a training session."""
    config = make_config("activitynet12", method=method, overrides=list(overrides))
    annotations, store, _ = open_dataset(root)
    train_set = VideoDataset(annotations, store, "training", num_segments=60)
    return SimpleNamespace(config=config, method=make_method(config), train_set=train_set)


def drawn_names(session, count: int) -> list[list[str]]:
    videos = session.train_set.videos
    batches = step.epoch_batches(session, 0)[:count]
    return [[videos[item.index].name for item in batch] for batch in batches]


def lengths_by_name() -> dict[str, int]:
    case = cases.anet_draws_case()
    return dict(zip(case["names"], case["lengths"], strict=True))


@pytest.mark.parametrize("method", ["co2net", "delu"])
def test_training_draws_are_the_official_ones_in_order(method, official, draws_root):
    recorded = official[method]
    session = session_of(draws_root, method)
    assert official["numpy_seed"] == np.random.SeedSequence([0, 0, 7]).generate_state(1).tolist()
    assert drawn_names(session, 8) == recorded["uniform"]["batches"]
    # sampling='random' draws each batch's rows from the same stream after its videos:
    # its first batch is the same, later batches follow another stream
    assert drawn_names(session, 1) == recorded["random"]["batches"][:1]
    rows = step.drawable_at_random(session.train_set, session.method.class_pairs(), 10)
    assert [session.train_set.videos[i].name for i in rows] == recorded["uniform"]["trainidx"]


def test_the_official_draws_keep_short_videos_in_pairs_only(official):
    """What the fixture shows: the 10-snippet videos are in the per-class lists and
    drawn into pairs, never into the random part."""
    lengths = lengths_by_name()
    training = official["co2net"]["uniform"]
    short = {name for name in training["classwise"] if lengths[name] <= 10}
    assert len(short) == 88 and not short & set(training["trainidx"])
    for sampling in ("uniform", "random"):
        batches = official["co2net"][sampling]["batches"]
        assert batches == official["delu"][sampling]["batches"]
        assert not {n for b in batches for n in b[PAIRED:]} & short
        assert {n for b in batches for n in b[:PAIRED]} & short


@pytest.mark.parametrize(
    "overrides", [("method_options.short_video=0",), ("localize.rules=shared",)]
)
def test_without_the_filter_every_video_is_drawn_at_random(overrides, official, draws_root):
    """short_video 0 or the shared rules: the house's draws (the random part from every
    training video), which are not the official ones on these data."""
    session = session_of(draws_root, "co2net", overrides)
    assert session.method.class_pairs().short_video == 0
    labels = session.train_set.labels
    plain = class_paired_epoch(labels, 10, 3, 0, 0, distinct=True)
    drawn = step.epoch_batches(session, 0)
    assert [[item.index for item in batch] for batch in drawn] == plain
    assert drawn_names(session, 8) != official["co2net"]["uniform"]["batches"]


@pytest.mark.parametrize("method", ["co2net", "delu"])
@pytest.mark.parametrize("preset", ["thumos14", "demo"])
def test_other_presets_draw_from_every_video(method, preset):
    config = make_config(preset, method=method)
    assert config.method_options["short_video"] == 0
    assert make_method(config).class_pairs().short_video == 0
    anet = make_config("activitynet12", method=method)
    assert make_method(anet).class_pairs().short_video == 10


def test_only_short_training_videos_is_one_error_naming_the_file(draws_root):
    session = session_of(draws_root, "co2net", ("method_options.short_video=1000",))
    with pytest.raises(DataError) as error:
        step.epoch_batches(session, 0)
    message = str(error.value)
    assert "ActivityNet1.2-I3D-JOINTFeatures.npy" in message and "\n" not in message
    assert "at most 1000 snippets" in message


def test_the_trainer_draws_the_official_batches(official, draws_root, tmp_path, monkeypatch):
    """End to end: ``hamnet train`` on the ActivityNet preset feeds the official videos."""
    from hamnet.train.trainer import train

    seen = []
    original = step.epoch_batches

    def record(session, epoch):
        batches = original(session, epoch)
        videos = session.train_set.videos
        seen.extend([videos[item.index].name for item in batch] for batch in batches)
        return batches

    monkeypatch.setattr(step, "epoch_batches", record)
    overrides = ["data.feature_dim=4", "model.attention_dim=8", "train.iterations=8"]
    config = make_config("activitynet12", method="co2net", overrides=overrides)
    train(config, draws_root, tmp_path / "run", progress=False)
    assert seen[:8] == official["co2net"]["uniform"]["batches"]


def test_a_video_drawn_again_in_an_epoch_is_its_next_draw(draws_root):
    """Each draw of a video samples its own snippets (the official loaders sample at
    every draw): the epoch's items are (video, k-th draw) and never the same twice."""
    session = session_of(draws_root, "co2net", ())
    items = [item for batch in step.epoch_batches(session, 0) for item in batch]
    assert len(set(items)) == len(items)
    for position, item in enumerate(items):
        before = sum(other.index == item.index for other in items[:position])
        assert item.draw == before
    assert any(item.draw > 0 for item in items)
