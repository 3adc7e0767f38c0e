"""Corrupt and hostile dataset files: one-line errors through the CLI, never silent.

Per-video checksums in the packed index (verified by ``hamnet check``, ``convert --verify``
and on each video's first read), offsets against the file size, path-like video names.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from hamnet.cli import main
from hamnet.data.annotations import load_gt_json, save_gt_json
from hamnet.data.features import PackedFeatureStore
from hamnet.data.layout import open_dataset
from hamnet.errors import DataError


def copy_root(tiny_root: Path, tmp_path: Path, *drop: str) -> Path:
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root, ignore=shutil.ignore_patterns(*drop))
    return root


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str, *fragments: str) -> str:
    lines = [line for line in err.strip().splitlines() if not line.startswith("INFO")]
    assert len(lines) == 1, err
    assert lines[0].startswith("hamnet: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def edit_index(root: Path, change) -> None:
    path = root / "Synthetic-packed" / "index.json"
    index = json.loads(path.read_text())
    change(index)
    path.write_text(json.dumps(index))


def test_check_clean_root(tiny_root, capsys) -> None:
    code, out, _ = run_cli(capsys, "check", tiny_root, "--quiet")
    assert code == 0
    assert "24 annotated videos" in out and "checksums: all 24 verified" in out


def test_flipped_bit_in_features(tiny_root, tmp_path, capsys) -> None:
    root = copy_root(tiny_root, tmp_path)
    store = PackedFeatureStore(root / "Synthetic-packed")
    offset, _ = store._videos["video_00005"]
    data = root / "Synthetic-packed" / "features.bin"
    raw = bytearray(data.read_bytes())
    raw[offset * 16 * 4 + 7] ^= 0x01  # one bit of one float
    data.write_bytes(bytes(raw))
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, "features.bin", "'video_00005'", "checksum mismatch")
    _, store, _ = open_dataset(root)
    with pytest.raises(DataError, match="video_00005.*checksum mismatch"):
        store.read("video_00005")
    store.read("video_00004")  # the others are fine


def test_zeroed_features(tiny_root, tmp_path, capsys) -> None:
    root = copy_root(tiny_root, tmp_path)
    data = root / "Synthetic-packed" / "features.bin"
    data.write_bytes(bytes(data.stat().st_size))
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, "checksum mismatch")


def test_edited_offset_to_another_video(tiny_root, tmp_path, capsys) -> None:
    root = copy_root(tiny_root, tmp_path)

    def swap(index):  # two videos trade places: no overlap, sizes fit, data wrong
        a, b = index["videos"][0], index["videos"][1]
        a["offset"], b["offset"] = b["offset"], a["offset"]
        a["length"], b["length"] = b["length"], a["length"]

    edit_index(root, swap)
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, "checksum mismatch")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda ix: ix["videos"][3].update(offset=-5), "negative offset or length (-5,"),
        (lambda ix: ix["videos"][3].update(length=-1), "negative offset or length"),
        (lambda ix: ix["videos"][3].update(offset=ix["videos"][2]["offset"] + 1), "overlap"),
        (lambda ix: ix["videos"][-1].update(offset=10**9), "truncated"),
        (lambda ix: ix["videos"][3].update(offset="12"), "offset is not an integer"),
        (lambda ix: ix["videos"][3].update(name="../../x"), "path separator"),
        (lambda ix: ix["videos"][3].update(sha256=5), "malformed sha256"),
        (lambda ix: ix["videos"].append(dict(ix["videos"][0])), "listed twice"),
    ],
)
def test_bad_index_is_one_line(tiny_root, tmp_path, capsys, change, message) -> None:
    root = copy_root(tiny_root, tmp_path)
    edit_index(root, change)
    config = ["--preset", "demo", "--set", "data.feature_dim=16"]
    code, _, err = run_cli(capsys, "train", "--data", root, "--run-dir", tmp_path / "r", *config)
    assert code == 2
    one_error_line(err, "index.json", message)
    assert not (tmp_path / "r" / "last.pt").exists()


def test_store_without_checksums_is_accepted(tiny_root, tmp_path, capsys) -> None:
    """Stores written before checksums existed still open; check says so."""
    root = copy_root(tiny_root, tmp_path)
    edit_index(root, lambda ix: [video.pop("sha256") for video in ix["videos"]])
    code, out, _ = run_cli(capsys, "check", root, "--quiet")
    assert code == 0 and "no checksums to verify" in out


def test_convert_verify_stores_checksums(tiny_root, tmp_path, capsys) -> None:
    root = copy_root(tiny_root, tmp_path, "Synthetic-packed")
    code, out, _ = run_cli(capsys, "convert", "--data", root, "--out", tmp_path / "o", "--verify")
    assert code == 0 and "checksums stored" in out
    index = json.loads((tmp_path / "o" / "Synthetic-packed" / "index.json").read_text())
    assert all(len(video["sha256"]) == 64 for video in index["videos"])
    code, out, _ = run_cli(capsys, "check", tmp_path / "o", "--quiet")
    assert code == 0 and "checksums: all 24 verified" in out


@pytest.mark.parametrize("name", ["../../x", "/abs/x", "a/b", "..", "", "a\x00b"])
def test_path_like_video_names_refused(tiny_root, tmp_path, capsys, name) -> None:
    """In the released annotations and in a converted root's GT JSON alike."""
    root = copy_root(tiny_root, tmp_path)
    names_path = root / "Synthetic-Annotations" / "videoname.npy"
    names = np.load(names_path)
    names[2] = name.encode()
    np.save(names_path, names)
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, repr(name), "video name")
    converted = tmp_path / "converted"
    shutil.copytree(tiny_root, converted, ignore=shutil.ignore_patterns("*-Annotations", "*.npy"))
    gt = load_gt_json(converted / "Synthetic-gt.json")
    raw = json.loads((converted / "Synthetic-gt.json").read_text())
    raw["database"][name] = raw["database"].pop(gt.videos[2].name)
    (converted / "Synthetic-gt.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match="video name"):
        open_dataset(converted)


def test_save_cas_cannot_escape_with_a_crafted_name(
    tiny_root, tmp_path, capsys, tiny_overrides
) -> None:
    """The original fault: a name like ../../x made ``test --save-cas`` write outside."""
    from hamnet.config import make_config
    from hamnet.train.trainer import train

    overrides = [*tiny_overrides, "train.epochs=1"]
    train(make_config("demo", "all", overrides), tiny_root, tmp_path / "run", progress=False)
    root = copy_root(tiny_root, tmp_path)
    names_path = root / "Synthetic-Annotations" / "videoname.npy"
    names = np.load(names_path)
    names[-1] = b"../../esc"
    np.save(names_path, names)
    code, _, err = run_cli(
        capsys, "test", "--checkpoint", tmp_path / "run" / "last.pt", "--data", root,
        "--out", tmp_path / "d.json", "--save-cas", tmp_path / "cas" / "deep",
    )  # fmt: skip
    assert code == 2
    one_error_line(err, "'../../esc'", "path separator")
    assert not list(tmp_path.rglob("esc*"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda raw, v: raw.update(ambiguous={v: [[1.0]]}), "'ambiguous' of video"),
        (lambda raw, v: raw.update(ambiguous={v: 5}), "'ambiguous' of video"),
        (lambda raw, v: raw.update(ambiguous=[1, 2]), "'ambiguous' must map"),
        (lambda raw, v: raw.update(ambiguous={v: [["a", "b"]]}), "'ambiguous' of video"),
        (lambda raw, v: raw["database"][v].update(labels=5), "field 'labels'"),
        (lambda raw, v: raw["database"][v].update(labels=[1, 2]), "field 'labels'"),
        (lambda raw, v: raw["database"][v].update(annotations=7), "malformed field"),
        (lambda raw, v: raw["database"][v].update(duration="long"), "malformed field"),
        (lambda raw, v: raw.update({"class-list": [1, 2]}), "'class-list'"),
    ],
)
def test_malformed_gt_json_is_one_line(tiny_root, tmp_path, capsys, edit, message) -> None:
    gt_path = tmp_path / "gt.json"
    raw = json.loads((tiny_root / "Synthetic-gt.json").read_text())
    edit(raw, next(iter(raw["database"])))
    gt_path.write_text(json.dumps(raw))
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"version": "x", "results": {}}))
    code, _, err = run_cli(capsys, "eval", "--gt", gt_path, "--pred", pred, "--subset", "test")
    assert code == 2
    one_error_line(err, str(gt_path), message)


def test_binary_ambiguous_file(tiny_root, tmp_path, capsys) -> None:
    (tmp_path / "amb.txt").write_bytes(bytes(range(256)) * 4)
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps({"version": "x", "results": {}}))
    code, _, err = run_cli(
        capsys, "eval", "--gt", tiny_root / "Synthetic-gt.json", "--pred", pred,
        "--subset", "test", "--protocol", "thumos14", "--ambiguous", tmp_path / "amb.txt",
    )  # fmt: skip
    assert code == 2
    one_error_line(err, "amb.txt", "not a text file")
    root = copy_root(tiny_root, tmp_path)  # the same file inside an annotation folder
    shutil.copy(tmp_path / "amb.txt", root / "Synthetic-Annotations" / "Ambiguous_test.txt")
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, "Ambiguous_test.txt", "not a text file")


def test_gt_round_trip_keeps_official_fields(tiny_root, tmp_path) -> None:
    gt = load_gt_json(tiny_root / "Synthetic-gt.json")
    save_gt_json(gt, tmp_path / "again.json")
    raw = json.loads((tmp_path / "again.json").read_text())
    assert raw["version"] and raw["database"] and raw["class-list"] == gt.classes
    assert [node["nodeName"] for node in raw["taxonomy"][1:]] == gt.classes


def _huge_header(path: Path) -> None:
    with open(path, "wb") as handle:
        header = {"descr": "<f8", "fortran_order": False, "shape": (10**12,)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(bytes(64))


def _first_segment(value):
    def edit(path: Path) -> None:
        segments = np.load(path, allow_pickle=True)
        spans = list(segments[0])
        spans[0] = value
        segments[0] = spans
        np.save(path, segments, allow_pickle=True)

    return edit


def _released_entry(value):
    def edit(path: Path) -> None:
        arrays = np.load(path, allow_pickle=True)
        arrays[3] = value
        np.save(path, arrays, allow_pickle=True)

    return edit


@pytest.mark.parametrize(
    "target, edit, message",
    [
        ("Synthetic-Annotations/duration.npy", _huge_header, "the header promises shape"),
        ("Synthetic-Annotations/labels.npy", lambda p: p.write_bytes(b""), "not a readable"),
        ("Synthetic-Annotations/segments.npy", _first_segment([5.0, 1.0]), "end < start"),
        ("Synthetic-Annotations/segments.npy", _first_segment([np.nan, 1.0]), "not finite"),
        ("Synthetic-Annotations/segments.npy", _first_segment(["a", "b"]), "not a [start, end]"),
        ("Synthetic-Annotations/segments.npy", _first_segment([1.0, 2, 3]), "not a [start, end]"),
        ("Synthetic-packed/index.json", lambda p: p.write_text("[" * 50000), "nested too deeply"),
        ("Synthetic-packed/index.json", lambda p: p.write_bytes(b"\x87\xff"), "malformed JSON"),
        ("Synthetic-I3D-JOINTFeatures.npy", _released_entry("hello"), "not a 2-D array"),
        ("Synthetic-I3D-JOINTFeatures.npy", _released_entry(np.full((3, 16), np.nan)), "NaN"),
        (
            "Synthetic-I3D-JOINTFeatures.npy",
            lambda p: os.truncate(p, 5000),
            "pickle data was truncated",
        ),
    ],
)
def test_corrupt_files_are_one_line(tiny_root, tmp_path, capsys, target, edit, message) -> None:
    drop = ("Synthetic-packed",) if target.startswith("Synthetic-I3D") else ()
    root = copy_root(tiny_root, tmp_path, *drop)
    edit(root / target)
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, Path(target).name if "Annotations/" not in target else "", message)


def test_non_utf8_video_name(tiny_root, tmp_path, capsys) -> None:
    root = copy_root(tiny_root, tmp_path)
    names_path = root / "Synthetic-Annotations" / "videoname.npy"
    names = np.load(names_path)
    names[1] = b"\xff\xfe"
    np.save(names_path, names)
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, "Synthetic-Annotations", "malformed annotation entry", "utf-8")


def test_features_bin_is_a_folder(tiny_root, tmp_path, capsys) -> None:
    root = copy_root(tiny_root, tmp_path)
    (root / "Synthetic-packed" / "features.bin").unlink()
    (root / "Synthetic-packed" / "features.bin").mkdir()
    code, _, err = run_cli(capsys, "check", root, "--quiet")
    assert code == 2
    one_error_line(err, "Synthetic-packed", "not a packed feature store")
