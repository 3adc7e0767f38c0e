"""`hamnet extract` on generated videos, then `hamnet predict` on that store (issue: extract)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from hamnet.cli import main

pytest.importorskip("av")
pytest.importorskip("cv2")


def test_extract_then_predict(tmp_path, capsys):
    from hamnet.config import make_config
    from hamnet.data.synthetic import make_synthetic
    from hamnet.extract.i3d import write_random_i3d_weights
    from hamnet.train.trainer import train

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "extract"))
    from testvideo import make_test_video

    videos = [
        make_test_video(tmp_path / f"clip{i}.mp4", frames=36, size=(64, 80), motion=(2, i), seed=i)
        for i in range(3)
    ]
    write_random_i3d_weights(tmp_path / "rgb.pt", 3, seed=0)
    write_random_i3d_weights(tmp_path / "flow.pt", 2, seed=1)
    store = tmp_path / "store"
    code = main(
        [
            "extract",
            *map(str, videos),
            "--out",
            str(store),
            "--flow",
            "dis",
            "--rgb-weights",
            str(tmp_path / "rgb.pt"),
            "--flow-weights",
            str(tmp_path / "flow.pt"),
        ]
    )
    assert code == 0
    index = json.loads((store / "index.json").read_text())
    assert index["dim"] == 2048 and {v["name"]: v["length"] for v in index["videos"]} == {
        "clip0": 2,
        "clip1": 2,
        "clip2": 2,
    }
    # a model trained on (synthetic) features of the same width
    root = make_synthetic(
        tmp_path / "data",
        num_classes=3,
        num_videos=8,
        feature_dim=2048,
        duration_range=(10.0, 20.0),
        progress=False,
        write_released=False,
    )
    config = make_config(
        "demo",
        "all",
        [
            "data.feature_dim=2048",
            "data.num_segments=16",
            "model.hidden_dim=16",
            "model.attention_dim=8",
            "train.epochs=1",
            "train.batch_size=4",
        ],
    )
    train(config, root, tmp_path / "run", progress=False)
    capsys.readouterr()
    code = main(
        [
            "predict",
            "--checkpoint",
            str(tmp_path / "run/last.pt"),
            "--features",
            str(store),
            "--format",
            "csv",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0 and out[0] == "video,label,start,end,score"
    assert {row.split(",")[0] for row in out[1:]} <= {"clip0", "clip1", "clip2"}
