"""The fault cases of issue 25 and their neighbours: a tIoU outside (0, 1], a degenerate
snippet grid, an array header promising more than its file holds. Each is one line on
stderr, exit status 2, nothing written."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from hamnet.cli import main

CLASSES = ("BaseballPitch", "HighJump")


def one_line_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("hamnet: error: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture
def golden(shared_dir) -> tuple[Path, Path]:
    """The golden evaluation case's ground truth and detections."""
    folder = shared_dir / "fixtures" / "eval"
    return folder / "thumos40_gt.json", folder / "thumos40_pred.json"


@pytest.fixture
def saved_video(tmp_path) -> Path:
    """A valid ``--save-cas`` file of 30 snippets."""
    rng = np.random.default_rng(0)
    cas = rng.normal(size=(30, len(CLASSES) + 1)).astype(np.float32)
    path = tmp_path / "video_test_0000004.npz"
    np.savez_compressed(
        path,
        cas=cas,
        attention=np.full(30, 0.5, np.float32),
        actionness=np.full(30, 0.5, np.float32),
        video_scores=np.array([0.9, 0.1], np.float32),
        classes=np.array(CLASSES),
        snippet_seconds=np.array(0.64),
        source=np.array("attention"),
    )
    return path


def crafted_npz(path: Path, compression: int, entries: int = 2_000_000_000) -> Path:
    """An .npz whose ``cas`` header claims ``entries`` floats and holds 16 bytes."""
    header = io.BytesIO()
    fields = {"descr": "<f4", "fortran_order": False, "shape": (entries,)}
    np.lib.format.write_array_header_1_0(header, fields)
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr("cas.npy", header.getvalue() + b"\0" * 16)
    return path


@pytest.mark.parametrize("tiou", ["2", "0", "-0.5", "nan", "1.0001"])
def test_plot_video_refuses_a_tiou_outside_the_unit_interval(capsys, saved_video, tmp_path, tiou):
    out = tmp_path / "v.png"
    err = one_line_error(
        capsys, "plot", "video", "--npz", saved_video, "--tiou", tiou, "--out", out
    )
    assert "tiou" in err and "(0, 1]" in err
    assert not out.exists()


def test_plot_video_accepts_a_tiou_of_one(capsys, saved_video, tmp_path):
    out = tmp_path / "v.png"
    assert main(["plot", "video", "--npz", str(saved_video), "--tiou", "1", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("tiou", ["2", "0:1.5:0.5", "0.5,1.2", "-0.1"])
def test_eval_and_analyze_refuse_a_tiou_outside_the_unit_interval(capsys, golden, tmp_path, tiou):
    gt, pred = golden
    err = one_line_error(capsys, "eval", "--gt", gt, "--pred", pred, "--tiou", tiou)
    assert "tIoU" in err
    out = tmp_path / "analysis"
    err = one_line_error(
        capsys, "analyze", "--gt", gt, "--pred", pred, "--tiou", tiou, "--out", out
    )
    assert "tIoU" in err and not out.exists()


@pytest.mark.parametrize("seconds", ["1e-9", "0", "-0.64", "nan", "inf", "1e300"])
@pytest.mark.parametrize("protocol", ["wtalc", "anet"])
def test_eval_refuses_a_degenerate_snippet_grid(capsys, golden, seconds, protocol):
    gt, pred = golden
    args = ["eval", "--gt", gt, "--pred", pred, "--protocol", protocol]
    err = one_line_error(capsys, *args, "--snippet-seconds", seconds)
    assert "snippet_seconds" in err


def test_the_released_stride_still_evaluates(capsys, golden):
    gt, pred = golden
    args = ["eval", "--gt", gt, "--pred", pred, "--protocol", "wtalc"]
    assert main([str(a) for a in args] + ["--snippet-seconds", "0.64"]) == 0
    assert "mAP" in capsys.readouterr().out


def test_a_config_with_a_degenerate_stride_is_refused(capsys):
    err = one_line_error(capsys, "config", "--preset", "demo", "--set", "data.snippet_seconds=1e-9")
    assert "data.snippet_seconds" in err


def test_convert_refuses_a_degenerate_stride(capsys, tmp_path):
    err = one_line_error(
        capsys, "convert", "--data", tmp_path, "--out", tmp_path / "o", "--format", "npy",
        "--snippet-seconds", "1e-9",
    )  # fmt: skip
    assert "snippet_seconds" in err or "1e-09" in err


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_plot_video_refuses_an_npz_header_promising_too_much(capsys, tmp_path, compression):
    npz = crafted_npz(tmp_path / "video_x.npz", compression)
    err = one_line_error(capsys, "plot", "video", "--npz", npz, "--out", tmp_path / "v.png")
    assert str(npz) in err and "2000000000" in err


def test_a_zip_member_declaring_an_impossible_size_is_refused(tmp_path):
    """The zip directory's own size claim is checked too (before numpy allocates)."""
    from hamnet.data.safe_npy import load_npz
    from hamnet.errors import DataError

    path = crafted_npz(tmp_path / "v.npz", zipfile.ZIP_STORED, entries=4)
    data = bytearray(path.read_bytes())
    directory = data.rfind(b"PK\x01\x02")
    data[directory + 24 : directory + 28] = (1 << 31).to_bytes(4, "little")  # file size
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="v.npz"):
        load_npz(path)


def test_released_npy_with_a_lying_header_is_refused(tmp_path):
    """The other reader of array headers: released annotation / feature ``.npy`` files."""
    from hamnet.data.safe_npy import load_npy
    from hamnet.errors import DataError

    header = io.BytesIO()
    fields = {"descr": "<f4", "fortran_order": False, "shape": (2_000_000_000,)}
    np.lib.format.write_array_header_1_0(header, fields)
    path = tmp_path / "duration.npy"
    path.write_bytes(header.getvalue() + b"\0" * 16)
    with pytest.raises(DataError, match="promises shape"):
        load_npy(path)
