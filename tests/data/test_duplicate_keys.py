"""A key given twice in a JSON or YAML input drops data silently in a plain parser; every
input hamnet reads refuses it with the file and the key, and nesting or integers too
large for the parser are one line too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hamnet.cli import main


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    from hamnet.data.synthetic import make_synthetic

    out = tmp_path_factory.mktemp("dup")
    return make_synthetic(out, num_classes=2, num_videos=6, feature_dim=4, seed=2, progress=False)


def _gt(root: Path) -> dict:
    return json.loads((root / "Synthetic-gt.json").read_text())


def _detections(gt: dict) -> tuple[str, list[str]]:
    videos = [name for name, v in gt["database"].items() if v["subset"] == "test"]
    label = gt["class-list"][0]
    entry = f'{{"label": "{label}", "score": 0.9, "segment": [1.0, 5.0]}}'
    body = ", ".join(f'"{v}": [{entry}]' for v in videos)
    return f'{{"version": "x", "results": {{{body}}}, "external_data": {{}}}}', videos


def test_the_files_are_valid_without_the_duplicate(capsys, root, tmp_path):
    text, _ = _detections(_gt(root))
    path = tmp_path / "det.json"
    path.write_text(text)
    assert main(["eval", "--gt", str(root / "Synthetic-gt.json"), "--pred", str(path)]) == 0


def test_detections_with_a_video_twice(cli_line, root, tmp_path):
    text, videos = _detections(_gt(root))
    path = tmp_path / "det.json"
    # the video listed first with detections, then again empty: a plain parser keeps []
    path.write_text(text.replace('}, "external_data"', f', "{videos[0]}": []}}, "external_data"'))
    code, line = cli_line("eval", "--gt", root / "Synthetic-gt.json", "--pred", path)
    assert code == 2
    assert str(path) in line and f"key '{videos[0]}' appears twice" in line


def test_detection_entry_with_a_field_twice(cli_line, root, tmp_path):
    text, _ = _detections(_gt(root))
    path = tmp_path / "det.json"
    path.write_text(text.replace('"score": 0.9,', '"score": 0.9, "score": 0.1,', 1))
    code, line = cli_line("eval", "--gt", root / "Synthetic-gt.json", "--pred", path)
    assert code == 2 and "key 'score' appears twice" in line


def test_ground_truth_with_a_video_twice(cli_line, root, tmp_path):
    raw = (root / "Synthetic-gt.json").read_text()
    name = next(iter(_gt(root)["database"]))
    at = raw.index('"database": {') + len('"database": {')
    gt = tmp_path / "gt.json"
    gt.write_text(raw[:at] + f'"{name}": {{}}, ' + raw[at:])
    text, _ = _detections(_gt(root))
    det = tmp_path / "det.json"
    det.write_text(text)
    code, line = cli_line("eval", "--gt", gt, "--pred", det)
    assert code == 2 and str(gt) in line and f"key '{name}' appears twice" in line


def test_config_with_a_key_twice(cli_line, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epochs: 5\n  lr: 0.1\n  epochs: 50\n")
    code, line = cli_line("config", "--config", path)
    assert code == 2 and str(path) in line and "key 'epochs' appears twice" in line


@pytest.mark.parametrize(
    "text, fragment",
    [("[" * 50000, "nested too deeply"), ("train:\n  epochs: " + "9" * 5000, "malformed YAML")],
)
def test_config_too_deep_or_too_long_is_one_line(cli_line, tmp_path, text, fragment):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    code, line = cli_line("config", "--config", path)
    assert code == 2 and str(path) in line and fragment in line


def test_set_value_with_a_key_twice(cli_line):
    code, line = cli_line("config", "--set", "eval.tiou={a: 1, a: 2}")
    assert code == 2 and "appears twice" in line


def test_packed_index_with_a_field_twice(cli_line, root, tmp_path):
    import shutil

    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    index = copy / "Synthetic-packed" / "index.json"
    index.write_text(index.read_text().replace('"dim": 4,', '"dim": 4, "dim": 3,', 1))
    code, line = cli_line("check", copy)
    assert code == 2 and str(index) in line and "key 'dim' appears twice" in line


def test_run_files_with_a_key_twice(tmp_path):
    from hamnet.errors import CheckpointError, DataError
    from hamnet.report.build import _metrics
    from hamnet.train.runinfo import read_run_info

    (tmp_path / "run.json").write_text('{"format": "a", "format": "b"}')
    with pytest.raises(CheckpointError, match="key 'format' appears twice"):
        read_run_info(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": 2.0}\n{"epoch": 2, "epoch": 3}\n')
    with pytest.raises(DataError, match=r"line 2: key 'epoch' appears twice"):
        _metrics(tmp_path / "metrics.jsonl")
    (tmp_path / "metrics.jsonl").write_text("[" * 100000 + "\n")
    with pytest.raises(DataError, match="nested too deeply"):
        _metrics(tmp_path / "metrics.jsonl")


def test_plain_json_inputs_share_the_loader(tmp_path):
    from hamnet.errors import DataError
    from hamnet.io import read_json

    path = tmp_path / "dataset.json"
    path.write_text('{"a": {"b": 1, "b": 2}}')
    with pytest.raises(DataError, match="key 'b' appears twice"):
        read_json(path, DataError)
    path.write_text("1" * 5000)
    with pytest.raises(DataError, match="malformed JSON"):
        read_json(path, DataError)
