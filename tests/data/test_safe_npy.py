"""The restricted unpickler: released files read, crafted files refused before anything runs."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from hamnet.cli import main
from hamnet.data.layout import open_dataset
from hamnet.data.released import PER_VIDEO_FILES
from hamnet.data.safe_npy import load_npy
from hamnet.errors import DataError


class Payload:
    """Unpickling this runs ``os.system("touch <marker>")``: what a crafted file would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_array(marker: Path, count: int) -> np.ndarray:
    array = np.empty(count, dtype=object)
    for i in range(count):
        array[i] = [Payload(marker)] if i == count - 1 else []
    return array


def test_payload_is_live(tmp_path: Path) -> None:
    """The crafted file really runs its payload under a plain unpickler (so the refusals
    below are not vacuous)."""
    marker = tmp_path / "ran"
    np.save(tmp_path / "x.npy", crafted_array(marker, 2), allow_pickle=True)
    np.load(tmp_path / "x.npy", allow_pickle=True)
    assert marker.exists()


ANNOTATION_KINDS = ["segments", "labels", "labels_all", "videoname", "subset", "classlist"]


@pytest.mark.parametrize("kind", [*ANNOTATION_KINDS, "features"])
def test_crafted_file_refused_through_the_cli(kind, tiny_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root, ignore=shutil.ignore_patterns("Synthetic-packed"))
    marker = tmp_path / "ran"
    if kind == "features":
        target = root / "Synthetic-I3D-JOINTFeatures.npy"
        count = len(np.load(root / "Synthetic-Annotations" / "videoname.npy"))
    else:
        target = root / "Synthetic-Annotations" / f"{kind}.npy"
        count = len(np.load(root / "Synthetic-Annotations" / "videoname.npy"))
        if kind == "classlist":
            count = 4
    np.save(target, crafted_array(marker, count), allow_pickle=True)
    out = tmp_path / "out"
    code = main(["convert", "--data", str(root), "--out", str(out), "--allow-pickle"])
    assert code == 2
    assert not marker.exists(), "the payload ran"
    assert not (out / "Synthetic-packed").exists()
    refused = rf"{target.name}: refusing to unpickle global 'posix.system'"
    with pytest.raises(DataError, match=refused):
        open_dataset(root)
    assert not marker.exists()


def test_refusal_is_one_line_naming_file_and_global(tiny_root, tmp_path, capsys) -> None:
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    marker = tmp_path / "ran"
    target = root / "Synthetic-Annotations" / "segments.npy"
    np.save(target, crafted_array(marker, 24), allow_pickle=True)
    config = ["--preset", "demo", "--set", "data.feature_dim=16", "--set", "train.epochs=1"]
    assert main(["train", "--data", str(root), "--run-dir", str(tmp_path / "run"), *config]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(target) in err[0] and "posix.system" in err[0]
    assert not marker.exists()


def test_other_pickle_tricks_refused(tmp_path: Path) -> None:
    header = tmp_path / "h.npy"
    np.save(header, np.empty(1, dtype=object), allow_pickle=True)
    prefix = header.read_bytes()
    prefix = prefix[: prefix.index(b"\n") + 1]  # the .npy header of an object array
    tricks = {
        "builtins.eval": pickle.dumps(eval),  # a bare dangerous global
        "builtins.getattr": pickle.dumps(getattr),
        "persistent": b"\x80\x02P0\n.",  # a persistent id
    }
    for name, body in tricks.items():
        path = tmp_path / f"{name}.npy"
        path.write_bytes(prefix + body)
        with pytest.raises(DataError, match="refusing"):
            load_npy(path)


@pytest.mark.parametrize("garbage", [b"", b"\x93NUMPY", b"\x93NUMPY\x01\x00", os.urandom(300)])
def test_corrupt_npy_is_one_error(garbage: bytes, tmp_path: Path) -> None:
    path = tmp_path / "segments.npy"
    path.write_bytes(garbage)
    with pytest.raises(DataError, match=r"segments\.npy: not a readable \.npy file"):
        load_npy(path)


def test_truncated_object_array(tiny_root: Path, tmp_path: Path) -> None:
    source = tiny_root / "Synthetic-Annotations" / "segments.npy"
    path = tmp_path / "segments.npy"
    path.write_bytes(source.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"segments\.npy: not a readable \.npy file"):
        load_npy(path)


@pytest.mark.parametrize("kind", PER_VIDEO_FILES)
def test_wrong_entry_types_are_one_error(kind: str, tiny_root: Path, tmp_path: Path) -> None:
    """An annotation file replaced by a numeric array of the right length."""
    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    (root / "Synthetic-gt.json").unlink()  # the folder alone (with it: "disagree")
    path = root / "Synthetic-Annotations" / f"{kind}.npy"
    np.save(path, np.arange(1, 25))
    if kind in ("duration", "subset"):
        open_dataset(root)  # numbers are valid durations and subset names ("0", "1", ...)
        return
    if kind == "videoname":
        with pytest.raises(DataError, match="no features for video '1'"):
            open_dataset(root)
        return
    problem = rf"{kind}\.npy: video 'video_00000': entry .*1.* is not a list"
    with pytest.raises(DataError, match=problem):
        open_dataset(root)


def test_real_files_read_without_pickle_opt_in(thumos_annotations_dir: Path) -> None:
    segments = load_npy(thumos_annotations_dir / "segments.npy")
    reference = np.load(thumos_annotations_dir / "segments.npy", allow_pickle=True)
    assert segments.dtype == object and len(segments) == 412
    assert all(list(a) == list(b) for a, b in zip(segments, reference, strict=True))


def test_train_and_test_on_a_converted_root(tiny_root, tmp_path, tiny_overrides, capsys):
    """A converted root (no pickle, no annotation folder) serves every command."""
    out = tmp_path / "converted"
    assert main(["convert", "--data", str(tiny_root), "--out", str(out)]) == 0
    assert not list(out.rglob("*.npy"))
    sets = [arg for item in [*tiny_overrides, "train.epochs=1"] for arg in ("--set", item)]
    run = tmp_path / "run"
    assert (
        main(["train", "--preset", "demo", "--data", str(out), "--run-dir", str(run), *sets]) == 0
    )
    assert (run / "run.json").is_file() and (run / "last.pt").is_file()
    detections = tmp_path / "det.json"
    code = main(["test", "--checkpoint", str(run / "last.pt"), "--data", str(out),
                 "--out", str(detections)])  # fmt: skip
    assert code == 0 and detections.is_file()
    assert main(["check", str(out), "--quiet"]) == 0
    capsys.readouterr()
