"""Inputs that do not belong together are refused with the names, not scored silently."""

from __future__ import annotations

import json
import shutil

import numpy as np

from hamnet.cli import main


def test_predict_refuses_one_video_name_from_two_sources(cli_line, tiny_run, tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        np.save(tmp_path / folder / "clip.npy", np.zeros((20, 16), dtype=np.float32))
    first, second = tmp_path / "a" / "clip.npy", tmp_path / "b" / "clip.npy"
    code, line = cli_line(
        "predict", "--checkpoint", tiny_run / "last.pt", "--features", first, second
    )
    assert code == 2 and "'clip'" in line and str(first) in line and str(second) in line
    # each source alone is fine
    assert (
        main(["predict", "--checkpoint", str(tiny_run / "last.pt"), "--features", str(first)]) == 0
    )


def test_ambiguous_file_of_another_dataset_is_refused(cli_line, tiny_root, tmp_path):
    gt = tiny_root / "Synthetic-gt.json"
    database = json.loads(gt.read_text())["database"]
    test_videos = [n for n, v in database.items() if v["subset"] == "test"]
    label = json.loads(gt.read_text())["class-list"][0]
    entries = {n: [{"label": label, "score": 0.5, "segment": [1.0, 4.0]}] for n in test_videos}
    pred = tmp_path / "det.json"
    pred.write_text(json.dumps({"version": "x", "results": entries, "external_data": {}}))
    other = tmp_path / "Ambiguous_test.txt"
    other.write_text("video_test_0000004 1.0 2.0\nvideo_test_0000006 3.0 4.0\n")
    argv = ["eval", "--gt", gt, "--pred", pred, "--protocol", "thumos14", "--ambiguous"]
    code, line = cli_line(*argv, other)
    assert code == 2 and str(other) in line and "video_test_0000004" in line
    assert "names none of the ground truth's videos" in line
    mine = tmp_path / "mine.txt"
    mine.write_text(f"{test_videos[0]} 1.0 2.0\n")
    assert main([str(a) for a in [*argv, mine]]) == 0


def test_check_and_test_refuse_a_gt_json_that_disagrees_with_the_folder(
    capsys, cli_line, tiny_root, tmp_path
):
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    assert main(["check", str(root)]) == 0
    capsys.readouterr()
    gt = root / "Synthetic-gt.json"
    raw = json.loads(gt.read_text())
    name = sorted(raw["database"])[1]
    raw["database"][name]["annotations"] = raw["database"][name]["annotations"][:-1] or [
        {"label": raw["class-list"][0], "segment": [0.0, 1.0]}
    ]
    gt.write_text(json.dumps(raw))
    code, line = cli_line("check", root)
    assert code == 2 and "disagree" in line and repr(name) in line and str(gt) in line
    from hamnet.data.layout import open_dataset
    from hamnet.errors import DataError

    try:
        open_dataset(root)
    except DataError as error:
        assert "disagree" in str(error)
    else:
        raise AssertionError("open_dataset (train, test) accepted the disagreeing root")
