"""extract_videos end to end on generated videos: store contents, resume, bad input, shards."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # testvideo, a test helper

import json

import numpy as np
import pytest
from testvideo import make_test_video

from hamnet.data.features import PackedFeatureStore
from hamnet.errors import CheckpointError, ConfigError, DataError
from hamnet.extract.extractor import FeatureExtractor, Recipe
from hamnet.extract.i3d import InceptionI3d, random_i3d_state_dict, write_random_i3d_weights
from hamnet.extract.pipeline import extract_into, extract_videos, video_names
from hamnet.extract.shards import merge_stores, part_path, shard_names
from hamnet.extract.store_meta import EMPTY_FILE

SMALL = {"short_side": 40, "crop": 32, "flow": "dis", "progress": False}  # fast, not released


def _random_model(channels: int, seed: int) -> InceptionI3d:
    model = InceptionI3d(channels)
    model.load_state_dict(random_i3d_state_dict(channels, seed), strict=False)
    return model.eval()


@pytest.fixture(scope="module")
def models():
    return {"rgb": _random_model(3, 1), "flow": _random_model(2, 2)}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[Path]:
    """Four videos: 2, 0, 3 and 1 snippets (40, 10, 50 and 20 frames at 25 fps)."""
    folder = tmp_path_factory.mktemp("videos")
    lengths = {"walk": 40, "blink": 10, "jump": 50, "wave": 20}
    return [
        make_test_video(folder / f"{name}.mp4", frames=n, seed=i, motion=(i % 3, 1))
        for i, (name, n) in enumerate(lengths.items())
    ]


def _contents(store_dir: Path) -> dict[str, np.ndarray]:
    store = PackedFeatureStore(store_dir)
    return {name: store.read(name) for name in store.names}


def test_store_rows_widths_recipe_and_zero_snippet_videos(tmp_path, models, videos):
    report = extract_videos(videos, tmp_path / "store", models=models, **SMALL)
    assert report.done == ["walk", "jump", "wave"] and report.zero_snippet == {"blink": 10}
    assert report.failed == {} and report.skipped == []
    store = PackedFeatureStore(tmp_path / "store")
    assert store.dim == 2048
    assert {n: store.length(n) for n in store.names} == {"walk": 2, "jump": 3, "wave": 1}
    assert store.recipe["streams"] == ["rgb", "flow"] and store.recipe["flow"] == "dis"
    assert store.recipe["crop"] == 32 and store.recipe["snippet_frames"] == 16
    empty = json.loads((tmp_path / "store" / EMPTY_FILE).read_text())
    assert empty == {"videos": {"blink": 10}}
    walk = store.read("walk")
    assert np.isfinite(walk).all() and not np.array_equal(walk[:, :1024], walk[:, 1024:])


def test_rgb_only_store_matches_the_rgb_half_of_a_two_stream_store(tmp_path, models, videos):
    both = extract_videos(videos[:1], tmp_path / "both", models=models, **SMALL)
    rgb = extract_videos(videos[:1], tmp_path / "rgb", streams=("rgb",), models=models, **SMALL)
    assert both.done == rgb.done == ["walk"]
    two, one = _contents(tmp_path / "both"), _contents(tmp_path / "rgb")
    assert one["walk"].shape == (2, 1024)
    np.testing.assert_allclose(one["walk"], two["walk"][:, :1024], rtol=0, atol=1e-6)


def test_resumed_run_gives_the_same_store_as_an_uninterrupted_one(
    tmp_path, models, videos, monkeypatch
):
    extract_videos(videos, tmp_path / "whole", models=models, **SMALL)
    calls = {"n": 0}
    real_call = FeatureExtractor.__call__

    def dies_on_third_video(self, path):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the run were killed mid-video
        return real_call(self, path)

    monkeypatch.setattr(FeatureExtractor, "__call__", dies_on_third_video)
    with pytest.raises(KeyboardInterrupt):
        extract_videos(videos, tmp_path / "resumed", models=models, **SMALL)
    assert PackedFeatureStore(tmp_path / "resumed").names == ["walk"]
    monkeypatch.setattr(FeatureExtractor, "__call__", real_call)
    report = extract_videos(videos, tmp_path / "resumed", models=models, **SMALL)
    assert report.skipped == ["walk", "blink"] and report.done == ["jump", "wave"]
    whole, resumed = _contents(tmp_path / "whole"), _contents(tmp_path / "resumed")
    assert list(whole) == list(resumed)
    assert all(np.array_equal(whole[n], resumed[n]) for n in whole)
    again = extract_videos(videos, tmp_path / "resumed", models=models, **SMALL)
    assert again.done == [] and len(again.skipped) == 4


def test_another_recipe_is_refused_naming_the_difference(tmp_path, models, videos):
    extract_videos(videos[:1], tmp_path / "store", models=models, **SMALL)
    with pytest.raises(DataError, match=r"another extraction recipe \(flow: store 'dis'"):
        extract_videos(videos[:1], tmp_path / "store", models=models, **dict(SMALL, flow="tvl1"))
    other = {"rgb": _random_model(3, 9), "flow": models["flow"]}
    with pytest.raises(DataError, match="weights"):
        extract_videos(videos[:1], tmp_path / "store", models=other, **SMALL)


def test_bad_videos_are_reported_and_the_rest_extracted(tmp_path, models, videos):
    junk = tmp_path / "broken.mp4"
    junk.write_bytes(b"\x00\x01" * 300)
    report = extract_videos([junk, videos[0]], tmp_path / "store", models=models, **SMALL)
    assert report.done == ["walk"]
    assert list(report.failed) == ["broken"] and "cannot open" in report.failed["broken"]
    assert PackedFeatureStore(tmp_path / "store").names == ["walk"]


def test_input_and_weight_errors(tmp_path, videos):
    other = tmp_path / "walk.mp4"
    other.write_bytes(videos[0].read_bytes())
    with pytest.raises(DataError, match="two videos named 'walk'"):
        video_names([videos[0], other])
    with pytest.raises(DataError, match="video file not found"):
        video_names([tmp_path / "absent.mp4"])
    with pytest.raises(ConfigError, match="--rgb-weights"):
        extract_videos(videos[:1], tmp_path / "s", **SMALL)
    with pytest.raises(ConfigError, match="precision 'fp8'"):
        extract_videos(videos[:1], tmp_path / "s", precision="fp8", **SMALL)
    with pytest.raises(ConfigError, match="streams"):
        extract_videos(videos[:1], tmp_path / "s", streams=("rgb", "depth"), **SMALL)
    rgb = write_random_i3d_weights(tmp_path / "rgb.pt", 3)
    with pytest.raises(ConfigError, match="--flow-weights"):
        extract_videos(videos[:1], tmp_path / "s", rgb_weights=rgb, **SMALL)
    with pytest.raises(CheckpointError, match="flow stream needs 2"):
        extract_videos(videos[:1], tmp_path / "s", rgb_weights=rgb, flow_weights=rgb, **SMALL)
    assert not (tmp_path / "s").exists()  # nothing written before the inputs were checked


def test_weight_files_give_the_same_features_as_the_same_networks_in_memory(tmp_path, videos):
    rgb = write_random_i3d_weights(tmp_path / "rgb.pt", 3, seed=4)
    report = extract_videos(videos[:1], tmp_path / "a", streams=("rgb",), rgb_weights=rgb, **SMALL)
    assert report.done == ["walk"]
    in_memory = {"rgb": _random_model(3, 4)}
    extract_videos(videos[:1], tmp_path / "b", streams=("rgb",), models=in_memory, **SMALL)
    a, b = PackedFeatureStore(tmp_path / "a"), PackedFeatureStore(tmp_path / "b")
    assert a.recipe == b.recipe  # the recipe fingerprints the weights, not the file name
    assert np.array_equal(a.read("walk"), b.read("walk"))


def _recipe_extractor(models) -> FeatureExtractor:
    recipe = Recipe(flow="dis", short_side=40, crop=32, weights={"rgb": "r", "flow": "f"})
    return FeatureExtractor(recipe, models, "cpu", batch_size=2)


def test_two_shards_merge_into_the_single_run_store(tmp_path, models, videos):
    extractor = _recipe_extractor(models)
    named = video_names(videos)
    extract_into(extractor, named, tmp_path / "single", progress=False)
    out = tmp_path / "merged"
    for rank in range(2):
        mine = {n: named[n] for n in shard_names(list(named), rank, 2)}
        extract_into(extractor, mine, part_path(out, rank), progress=False)
    assert shard_names(list(named), 1, 2) == ["blink", "wave"]
    added = merge_stores([part_path(out, 0), part_path(out, 1)], out)
    assert sorted(added) == ["jump", "walk", "wave"]
    single, merged = _contents(tmp_path / "single"), _contents(out)
    assert sorted(single) == sorted(merged)
    assert all(np.array_equal(single[n], merged[n]) for n in single)
    assert json.loads((out / EMPTY_FILE).read_text()) == {"videos": {"blink": 10}}
    assert merge_stores([part_path(out, 0), part_path(out, 1)], out) == []  # no duplicates
    assert len(PackedFeatureStore(out).names) == 3


def test_merge_refuses_parts_of_different_recipes(tmp_path, models, videos):
    named = video_names(videos[:1])
    extract_into(_recipe_extractor(models), named, tmp_path / "p0", progress=False)
    rgb_only = Recipe(streams=("rgb",), short_side=40, crop=32, weights={"rgb": "r"})
    extract_into(
        FeatureExtractor(rgb_only, models, "cpu", 2), named, tmp_path / "p1", progress=False
    )
    with pytest.raises(DataError, match="recipe differs"):
        merge_stores([tmp_path / "p0", tmp_path / "p1"], tmp_path / "out")


WORKER = """
import json, sys
from pathlib import Path
from hamnet.extract.i3d import InceptionI3d, random_i3d_state_dict
from hamnet.extract.pipeline import extract_videos

models = {}
for stream, channels, seed in (("rgb", 3, 1), ("flow", 2, 2)):
    models[stream] = InceptionI3d(channels)
    models[stream].load_state_dict(random_i3d_state_dict(channels, seed), strict=False)
videos = [Path(p) for p in sys.argv[2:]]
report = extract_videos(videos, Path(sys.argv[1]), models=models, short_side=40, crop=32,
                        flow="dis", progress=False)
print(json.dumps({"done": report.done, "zero": report.zero_snippet}))
"""


def test_two_processes_under_a_torchrun_environment(tmp_path, models, videos):
    """Two real ranks (gloo): parts are merged by rank 0 and removed; same as one process."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "store"
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
        command = [sys.executable, "-c", WORKER, str(out), *map(str, videos)]
        procs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True))
    outputs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(outputs[0]["done"]) == ["jump", "walk", "wave"]  # rank 0 reports all
    assert outputs[0]["zero"] == {"blink": 10}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]  # parts removed
    extract_videos(videos, tmp_path / "single", models=models, **SMALL)
    single, merged = _contents(tmp_path / "single"), _contents(out)
    assert sorted(single) == sorted(merged)
    assert all(np.allclose(single[n], merged[n], rtol=0, atol=1e-5) for n in single)
