"""The plain dataset layout: ``gt.json`` + ``features/<video>.npy`` (+ ``dataset.json``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hamnet.cli import main
from hamnet.data.layout import convert_dataset_npy, find_dataset, open_dataset
from hamnet.errors import DataError
from hamnet.weights.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def plain_root(tmp_path_factory, tiny_root):
    return convert_dataset_npy(tiny_root, tmp_path_factory.mktemp("plain") / "root", progress=False)


def _set(overrides):
    return [arg for item in overrides for arg in ("--set", item)]


def test_convert_writes_gt_json_npy_features_and_dataset_json(plain_root, tiny_root):
    released, store, _ = open_dataset(tiny_root)
    gt = json.loads((plain_root / "gt.json").read_text())
    first = released.videos[0]
    entry = gt["database"][first.name]
    assert entry["subset"] == first.subset and entry["duration"] == first.duration
    assert [a["label"] for a in entry["annotations"]] == [s.label for s in first.segments]
    for video in released.videos:
        array = np.load(plain_root / "features" / f"{video.name}.npy", allow_pickle=False)
        assert array.dtype == np.float32 and np.array_equal(array, store.read(video.name))
    info = json.loads((plain_root / "dataset.json").read_text())
    assert info == {"name": "Synthetic", "feature_dim": 16, "snippet_seconds": 0.64}
    files = find_dataset(plain_root)
    assert files.layout == "plain" and files.name == "Synthetic"
    annotations, _, _ = open_dataset(plain_root, name="Synthetic", snippet_seconds=0.64)
    assert annotations.classes == released.classes
    assert [v.name for v in annotations.videos] == [v.name for v in released.videos]


def test_cli_convert_format_npy(tiny_root, tmp_path, capsys):
    out = tmp_path / "plain"
    assert main(["convert", "--data", str(tiny_root), "--out", str(out), "--format", "npy"]) == 0
    assert (out / "gt.json").is_file() and len(list((out / "features").glob("*.npy"))) == 24
    assert main(["convert", "--data", str(tiny_root), "--out", str(out), "--format", "npy"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_train_test_eval_end_to_end_on_a_plain_root(
    plain_root, tiny_root, tiny_overrides, tmp_path, capsys
):
    """The same data in both layouts trains to the same weights; test and eval agree."""
    for name, root in (("plain", plain_root), ("released", tiny_root)):
        argv = ["train", "--preset", "demo", "--data", root, "--run-dir", tmp_path / name]
        assert main([str(a) for a in argv + _set(tiny_overrides)]) == 0
    plain_weights = load_checkpoint(tmp_path / "plain/last.pt")["model"]
    released_weights = load_checkpoint(tmp_path / "released/last.pt")["model"]
    assert all(torch.equal(plain_weights[k], released_weights[k]) for k in plain_weights)
    detections, result = tmp_path / "det.json", tmp_path / "result.json"
    argv = ["test", "--checkpoint", tmp_path / "plain/last.pt", "--data", plain_root]
    argv += ["--out", detections, "--json", result]
    assert main([str(a) for a in argv]) == 0
    tested = json.loads(result.read_text())
    scored = tmp_path / "eval.json"
    argv = ["eval", "--gt", plain_root / "gt.json", "--pred", detections, "--subset", "test"]
    argv += ["--json", scored]
    assert main([str(a) for a in argv]) == 0
    evaluated = json.loads(scored.read_text())
    assert evaluated["mAP"] == pytest.approx(tested["mAP"])
    assert tested["average_mAP"] > 0.0
    capsys.readouterr()


def test_users_own_root_without_class_list_or_dataset_json(tmp_path):
    root = tmp_path / "own"
    (root / "features").mkdir(parents=True)
    database = {
        "a": {
            "subset": "train",
            "duration": 6.4,
            "annotations": [{"segment": [1.0, 2.0], "label": "jump"}],
        },
        "b": {
            "subset": "train",
            "duration": 3.2,
            "annotations": [{"segment": [0.0, 1.0], "label": "clap"}],
        },
    }
    (root / "gt.json").write_text(json.dumps({"database": database}))
    for name, length in (("a", 10), ("b", 5)):
        np.save(root / "features" / f"{name}.npy", np.ones((length, 8), dtype=np.float32))
    annotations, store, files = open_dataset(root, feature_dim=8, name="Anything")
    assert annotations.classes == ["clap", "jump"]  # sorted labels: no class-list given
    assert store.dim == 8 and store.length("a") == 10 and files.name is None


def test_name_and_stride_mismatches_are_one_clear_error(plain_root, tiny_root):
    with pytest.raises(
        DataError, match="dataset 'Synthetic' but the config names 'Thumos14reduced'"
    ):
        open_dataset(plain_root, name="Thumos14reduced")
    with pytest.raises(DataError, match="Synthetic-Annotations: this is dataset 'Synthetic'"):
        open_dataset(tiny_root, name="ActivityNet1.2")
    with pytest.raises(DataError, match="one snippet per 0.64 s but the config says 1.0 s"):
        open_dataset(plain_root, snippet_seconds=1.0)


def test_train_refuses_data_of_another_dataset(plain_root, tiny_overrides, tmp_path, capsys):
    argv = ["train", "--preset", "thumos14", "--data", plain_root, "--run-dir", tmp_path / "r"]
    argv += _set([*tiny_overrides, "data.name=Thumos14reduced"])
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config names 'Thumos14reduced'" in err[0]


def test_malformed_dataset_json_is_named(plain_root, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(plain_root, copy)
    (copy / "dataset.json").write_text(json.dumps({"feature_dim": -3}))
    with pytest.raises(DataError, match="dataset.json: 'feature_dim' must be a positive integer"):
        open_dataset(copy)
