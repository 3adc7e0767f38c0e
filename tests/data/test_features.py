"""Feature stores: packed (memmap), npy folder, released pickle (opt-in), conversion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hamnet.data.features import (
    NpyFolderStore,
    PackedFeatureStore,
    PackedFeatureWriter,
    ReleasedFeatureStore,
    convert_to_packed,
    open_feature_store,
    verify_packed,
)
from hamnet.data.layout import find_dataset
from hamnet.data.released import load_released_annotations
from hamnet.errors import DataError


def arrays(dim: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        f"v{i}": rng.standard_normal((n, dim)).astype(np.float32) for i, n in enumerate([4, 1, 7])
    }


def write_packed(path: Path, videos: dict, dtype: str = "float32") -> PackedFeatureStore:
    with PackedFeatureWriter(path, 3, dtype=dtype) as writer:
        for name, array in videos.items():
            writer.add(name, array)
    return PackedFeatureStore(path)


def test_packed_round_trip_and_index(tmp_path: Path) -> None:
    videos = arrays()
    store = write_packed(tmp_path / "p", videos)
    assert store.names == ["v0", "v1", "v2"] and len(store) == 3 and store.dim == 3
    assert "v1" in store and "nope" not in store
    assert [store.length(n) for n in store.names] == [4, 1, 7]
    for name, array in videos.items():
        read = store.read(name)
        assert read.dtype == np.float32 and np.array_equal(read, array)
    index = json.loads((tmp_path / "p" / "index.json").read_text())
    assert index["format"] == "hamnet-packed" and index["version"] == 1
    assert [(v["offset"], v["length"]) for v in index["videos"]] == [(0, 4), (4, 1), (5, 7)]
    assert (tmp_path / "p" / "features.bin").stat().st_size == 12 * 3 * 4


def test_float16_is_upcast(tmp_path: Path) -> None:
    videos = arrays()
    store = write_packed(tmp_path / "p", videos, dtype="float16")
    read = store.read("v2")
    assert read.dtype == np.float32
    assert np.array_equal(read, videos["v2"].astype(np.float16).astype(np.float32))
    assert (tmp_path / "p" / "features.bin").stat().st_size == 12 * 3 * 2


def test_resume_truncates_uncommitted_rows(tmp_path: Path) -> None:
    videos = arrays()
    writer = PackedFeatureWriter(tmp_path / "p", 3, recipe={"fps": 25})
    writer.add("v0", videos["v0"], commit=True)
    writer.add("v1", videos["v1"])  # never committed: a crash happens here
    writer.close()
    assert PackedFeatureStore(tmp_path / "p").names == ["v0"]
    with PackedFeatureWriter(tmp_path / "p", 3, recipe={"fps": 25}, resume=True) as again:
        assert again.names == ["v0"]
        again.add("v2", videos["v2"])
    store = PackedFeatureStore(tmp_path / "p")
    assert store.names == ["v0", "v2"] and np.array_equal(store.read("v2"), videos["v2"])
    assert (tmp_path / "p" / "features.bin").stat().st_size == 11 * 3 * 4


def test_writer_errors(tmp_path: Path) -> None:
    videos = arrays()
    write_packed(tmp_path / "p", videos)
    with pytest.raises(DataError, match="a packed store already exists"):
        PackedFeatureWriter(tmp_path / "p", 3)
    with pytest.raises(DataError, match=r"cannot resume.*\(3, 'float32', None\).*\{'x': 1\}"):
        PackedFeatureWriter(tmp_path / "p", 3, recipe={"x": 1}, resume=True)
    with PackedFeatureWriter(tmp_path / "q", 3) as writer:
        writer.add("a", videos["v0"])
        with pytest.raises(DataError, match="video 'a' is already in the store"):
            writer.add("a", videos["v0"])
        with pytest.raises(
            DataError, match="video 'b': features are 2 wide, the store's width is 3"
        ):
            writer.add("b", np.zeros((2, 2), np.float32))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_named(tmp_path: Path, bad: float) -> None:
    folder = tmp_path / "npy"
    folder.mkdir()
    array = np.zeros((5, 3), np.float32)
    array[3, 1] = bad
    np.save(folder / "clip.npy", array)
    store = NpyFolderStore(folder)
    with pytest.raises(
        DataError, match=r"npy: video 'clip': features contain NaN or inf \(first at snippet 3\)"
    ):
        store.read("clip")


def test_empty_video(tmp_path: Path) -> None:
    folder = tmp_path / "npy"
    folder.mkdir()
    np.save(folder / "a.npy", np.ones((2, 3), np.float32))
    np.save(folder / "empty.npy", np.zeros((0, 3), np.float32))
    store = open_feature_store(folder)
    assert isinstance(store, NpyFolderStore) and store.length("empty") == 0
    with pytest.raises(DataError, match=r"video 'empty': empty video \(0 snippets\)"):
        store.read("empty")


def test_npy_folder_refuses_pickle(tmp_path: Path) -> None:
    folder = tmp_path / "npy"
    folder.mkdir()
    np.save(folder / "a.npy", np.ones((2, 3), np.float32))
    obj = np.empty(1, dtype=object)
    obj[0] = [1]
    np.save(folder / "evil.npy", obj, allow_pickle=True)
    with pytest.raises(
        DataError,
        match=r"evil\.npy: not a plain numeric \.npy array",
    ):
        NpyFolderStore(folder).read("evil")


def test_released_needs_no_opt_in(small_root: Path) -> None:
    files = find_dataset(small_root)
    path = small_root / "Synthetic-I3D-JOINTFeatures.npy"
    names = [v.name for v in load_released_annotations(files.annotations_dir).videos]
    store = open_feature_store(path, names=names)  # restricted unpickler: no opt-in
    assert store.names == names and store.read(names[0]).shape[1] == 16
    with pytest.raises(DataError, match="holds 12 videos but the annotations list 11"):
        ReleasedFeatureStore(path, names[:-1], allow_pickle=True)


def test_released_to_packed_is_identical(small_root: Path, tmp_path: Path) -> None:
    files = find_dataset(small_root)
    names = [v.name for v in load_released_annotations(files.annotations_dir).videos]
    released = open_feature_store(
        small_root / "Synthetic-I3D-JOINTFeatures.npy", names=names, allow_pickle=True
    )
    packed = convert_to_packed(released, tmp_path / "p", progress=False)
    verify_packed(released, packed)
    raw = np.load(small_root / "Synthetic-I3D-JOINTFeatures.npy", allow_pickle=True)
    for name, array in zip(names, raw, strict=True):
        assert packed.read(name).dtype == np.float32
        assert np.array_equal(packed.read(name), array)
    half = convert_to_packed(released, tmp_path / "h", dtype="float16", progress=False)
    verify_packed(released, half)


def test_verify_finds_a_mismatch(tmp_path: Path) -> None:
    videos = arrays()
    packed = write_packed(tmp_path / "p", videos)
    folder = tmp_path / "npy"
    folder.mkdir()
    for name, array in videos.items():
        np.save(folder / f"{name}.npy", array + (name == "v1"))
    with pytest.raises(DataError, match="video 'v1' differs from"):
        verify_packed(NpyFolderStore(folder), packed)


def test_truncated_store_and_missing(tmp_path: Path) -> None:
    write_packed(tmp_path / "p", arrays())
    with open(tmp_path / "p" / "features.bin", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(DataError, match=r"features.bin: truncated \(100 bytes"):
        PackedFeatureStore(tmp_path / "p")
    with pytest.raises(DataError, match="nothing: feature file or folder not found"):
        open_feature_store(tmp_path / "nothing")
