"""Dataset roots: finding the files, checking annotations against features, converting."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from hamnet.data.annotations import load_gt_json
from hamnet.data.features import PackedFeatureStore, PackedFeatureWriter
from hamnet.data.layout import convert_dataset, find_dataset, open_dataset
from hamnet.errors import DataError


def copy_without(root: Path, tmp_path: Path, *drop: str) -> Path:
    out = tmp_path / "root"
    shutil.copytree(root, out, ignore=shutil.ignore_patterns(*drop))
    return out


def test_find_dataset(small_root: Path) -> None:
    files = find_dataset(small_root)
    assert files.name == "Synthetic" and files.features_kind == "packed"
    assert files.features_path == small_root / "Synthetic-packed"
    assert files.gt_json == small_root / "Synthetic-gt.json"
    assert find_dataset(files.annotations_dir).root == small_root


def test_find_dataset_errors(small_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no '<Name>-Annotations' folder or '<Name>-gt.json' here"):
        find_dataset(tmp_path)
    (tmp_path / "A-Annotations").mkdir()
    (tmp_path / "B-Annotations").mkdir()
    with pytest.raises(
        DataError, match=r"several annotation folders \(A-Annotations, B-Annotations\)"
    ):
        find_dataset(tmp_path)


def test_open_dataset_prefers_packed(small_root: Path) -> None:
    annotations, store, files = open_dataset(small_root, feature_dim=16)
    assert isinstance(store, PackedFeatureStore) and len(annotations.videos) == 12


def test_wrong_width_names_file_and_widths(small_root: Path) -> None:
    with pytest.raises(
        DataError, match=r"Synthetic-packed: features are 16 wide but 2048 are expected"
    ):
        open_dataset(small_root, feature_dim=2048)


def test_released_only_needs_no_opt_in(small_root: Path, tmp_path: Path) -> None:
    root = copy_without(small_root, tmp_path, "Synthetic-packed")
    _, store, files = open_dataset(root)
    assert files.features_kind == "released" and store.dim == 16
    _, same, _ = open_dataset(root, allow_pickle=True)  # the old opt-in: accepted, no effect
    assert same.names == store.names


def test_no_features(small_root: Path, tmp_path: Path) -> None:
    root = copy_without(small_root, tmp_path, "Synthetic-packed", "*-I3D-JOINTFeatures.npy")
    with pytest.raises(DataError, match="no features found"):
        open_dataset(root)


def rewrite_packed(root: Path, keep, extra: bool = False) -> None:
    source = PackedFeatureStore(root / "Synthetic-packed")
    names = [n for n in source.names if keep(n)]
    arrays = {n: source.read(n) for n in names}
    shutil.rmtree(root / "Synthetic-packed")
    with PackedFeatureWriter(root / "Synthetic-packed", 16) as writer:
        for name in names:
            writer.add(name, arrays[name])
        if extra:
            writer.add("stray_video", np.ones((3, 16), np.float32))


def test_annotated_video_without_features(small_root: Path, tmp_path: Path) -> None:
    root = copy_without(small_root, tmp_path)
    rewrite_packed(root, lambda name: name != "video_00004")
    with pytest.raises(DataError, match=r"no features for video 'video_00004' .*\(1 annotated"):
        open_dataset(root)


def test_features_without_annotation_are_ignored(small_root, tmp_path: Path, caplog) -> None:
    root = copy_without(small_root, tmp_path)
    rewrite_packed(root, lambda name: True, extra=True)
    with caplog.at_level(logging.WARNING):
        annotations, store, _ = open_dataset(root)
    assert "1 video(s) have features but no annotation (e.g. 'stray_video')" in caplog.text
    assert "stray_video" in store and len(annotations.videos) == 12


def test_convert_dataset_from_released_and_npy(small_root: Path, tmp_path: Path) -> None:
    root = copy_without(small_root, tmp_path, "Synthetic-packed", "Synthetic-gt.json")
    out = convert_dataset(root, tmp_path / "out", verify=True, progress=False)
    original = PackedFeatureStore(small_root / "Synthetic-packed")
    converted = PackedFeatureStore(out / "Synthetic-packed")
    assert converted.names == original.names
    assert all(np.array_equal(original.read(n), converted.read(n)) for n in original.names)
    assert len(load_gt_json(out / "Synthetic-gt.json").videos) == 12
    # the converted root holds no pickle at all, and reads back to the same annotations
    assert sorted(p.name for p in out.iterdir()) == ["Synthetic-gt.json", "Synthetic-packed"]
    released, _, _ = open_dataset(root)
    again, store, files = open_dataset(out)
    assert files.annotations_dir is None and files.features_kind == "packed"
    assert again.classes == released.classes and again.videos == released.videos
    assert again.ambiguous == released.ambiguous
    # a root whose features are a folder of per-video npy files
    npy_root = copy_without(
        small_root, tmp_path / "n", "Synthetic-packed", "*-I3D-JOINTFeatures.npy"
    )
    (npy_root / "Synthetic-features").mkdir()
    for name in original.names:
        np.save(npy_root / "Synthetic-features" / f"{name}.npy", original.read(name))
    again = convert_dataset(npy_root, tmp_path / "out2", verify=True, progress=False)
    assert PackedFeatureStore(again / "Synthetic-packed").names == original.names


def test_empty_video_in_a_feature_folder(small_root: Path, tmp_path: Path) -> None:
    root = copy_without(small_root, tmp_path, "Synthetic-packed", "*-I3D-JOINTFeatures.npy")
    (root / "Synthetic-features").mkdir()
    source = PackedFeatureStore(small_root / "Synthetic-packed")
    for name in source.names:
        rows = source.read(name) if name != "video_00007" else np.zeros((0, 16), np.float32)
        np.save(root / "Synthetic-features" / f"{name}.npy", rows)
    with pytest.raises(DataError, match=r"video 'video_00007': empty video \(0 snippets\)"):
        open_dataset(root)
