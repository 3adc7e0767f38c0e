"""Decoding, resampling, snippets, value ranges and optical flow on generated videos."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # testvideo, a test helper

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from testvideo import (
    INDEX_BLOCK,
    INDEX_STEP,
    make_test_video,
    synthetic_frames,
)

from hamnet.errors import ConfigError, DataError
from hamnet.extract.flow import FlowEstimator, scale_flow
from hamnet.extract.snippets import flow_clips, iter_snippets, rgb_clips
from hamnet.extract.video import center_crop, iter_frames, resized_shape


def frame_index(image: np.ndarray) -> int:
    """Source frame index (mod 20) read back from the index block of a decoded frame."""
    level = float(image[1 : INDEX_BLOCK - 1, 1 : INDEX_BLOCK - 1].mean())
    return round((level - 10) / INDEX_STEP) % 20


def test_resized_shape_and_center_crop():
    assert resized_shape(240, 320, 256) == (256, 341)  # THUMOS14's 320x240
    assert resized_shape(320, 240, 256) == (341, 256)
    assert resized_shape(720, 1280, 256) == (256, 455)
    image = np.arange(6 * 8).reshape(6, 8)
    assert center_crop(image, 4).tolist() == image[1:5, 2:6].tolist()


@pytest.mark.parametrize(
    ("source_fps", "frames", "expected"),
    [
        (25, 40, list(range(40))),  # same rate: every frame
        (50, 40, list(range(0, 40, 2))),  # double rate: the even frames
        (30, 40, [round(1.2 * k) for k in range(33)]),  # nearest frame to k / 25 s
    ],
)
def test_decoding_resamples_to_25_fps_by_nearest_timestamp(tmp_path, source_fps, frames, expected):
    video = make_test_video(
        tmp_path / "v.mkv", frames=frames, fps=source_fps, size=(64, 80), codec="ffv1"
    )
    decoded = list(iter_frames(video, 25.0, 72))
    assert len(decoded) == len(expected)
    assert decoded[0].shape == (72, 90, 3) and decoded[0].dtype == np.uint8
    assert [frame_index(f) for f in decoded] == [k % 20 for k in expected]


def test_snippet_rows_and_time_mapping(tmp_path):
    """47 frames at 25 fps -> 2 rows; row i holds frames 16 i .. 16 i + 15 (0.64 s each)."""
    video = make_test_video(tmp_path / "v.mkv", frames=47, size=(64, 80), codec="ffv1")
    snippets = list(iter_snippets(iter_frames(video, 25.0, 64), 64, None))
    assert len(snippets) == 47 // 16 == 2
    for snippet in snippets:
        assert snippet.rgb.shape == (16, 64, 64, 3) and snippet.flow is None
    decoded = list(iter_frames(video, 25.0, 64))
    starts = [16 * i / 25.0 for i in range(len(snippets))]
    assert starts == [0.0, 0.64]
    # (the index block lies outside the centre crop, so read it from the full frames)
    for i, snippet in enumerate(snippets):
        assert [frame_index(decoded[16 * i + j]) for j in range(16)] == [
            (16 * i + j) % 20 for j in range(16)
        ]
        for j in range(16):
            assert np.array_equal(snippet.rgb[j], center_crop(decoded[16 * i + j], 64))


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=70))
def test_number_of_rows_is_frames_floor_divided_by_16(frames):
    images = synthetic_frames(frames, 16, 16) if frames else np.zeros((0, 16, 16, 3), np.uint8)
    snippets = list(iter_snippets(iter(images), 16, FlowEstimator("dis")))
    assert len(snippets) == frames // 16
    assert all(s.flow.shape == (16, 16, 16, 2) for s in snippets)


def test_rgb_values_scaled_to_minus_one_one():
    images = synthetic_frames(16, 32, 32)
    images[0, 0, 0] = 0
    images[0, 0, 1] = 255
    (snippet,) = iter_snippets(iter(images), 32, None)
    clips = rgb_clips([snippet, snippet])
    assert clips.shape == (2, 3, 16, 32, 32)
    assert float(clips.min()) == -1.0 and float(clips.max()) == 1.0
    assert float(clips[0, 0, 0, 0, 2]) == pytest.approx(images[0, 0, 2, 0] / 127.5 - 1)


def test_flow_clipped_at_20_pixels_and_scaled():
    flow = np.array([[[-50.0, 50.0], [10.0, -4.0]]], dtype=np.float32)
    scaled = scale_flow(flow)
    assert scaled.dtype == np.float32
    assert np.allclose(scaled, [[[-1.0, 1.0], [0.5, -0.2]]], rtol=0, atol=1e-7)


@pytest.mark.parametrize("method", ["tvl1", "dis"])
def test_flow_recovers_the_direction_of_a_known_translation(tmp_path, method):
    """Texture moving 2 px right and 1 px down per frame (PyAV-encoded, decoded back)."""
    video = make_test_video(tmp_path / "move.mp4", frames=2, size=(64, 64), motion=(2, 1))
    first, second = iter_frames(video, 25.0, 64)
    estimator = FlowEstimator(method)
    flow = estimator(estimator.gray(first), estimator.gray(second))
    interior = flow[12:-12, 12:-12]
    dx, dy = np.median(interior[..., 0]), np.median(interior[..., 1])
    assert dx == pytest.approx(2.0, abs=0.3) and dy == pytest.approx(1.0, abs=0.3)
    back = estimator(estimator.gray(second), estimator.gray(first))  # reversed: left and up
    assert np.median(back[12:-12, 12:-12, 0]) < -1.5 and np.median(back[12:-12, 12:-12, 1]) < -0.5


def test_flow_stack_fields_and_the_last_snippet_boundary():
    """Field k is flow(k -> k + 1); a video of exactly 16 frames repeats field 14."""
    images = synthetic_frames(16, 48, 48, motion=(3, 0))
    (snippet,) = iter_snippets(iter(images), 40, FlowEstimator("dis"))
    clips = flow_clips([snippet])
    assert clips.shape == (1, 2, 16, 40, 40)
    assert float(clips.abs().max()) <= 1.0
    dx = np.median(snippet.flow[:, 8:-8, 8:-8, 0], axis=(1, 2))
    assert np.allclose(dx, 3.0 / 20, atol=0.02)  # scaled: 3 px / 20
    assert np.array_equal(snippet.flow[15], snippet.flow[14])


def test_bad_videos_raise_data_errors(tmp_path):
    full = make_test_video(tmp_path / "full.mkv", frames=60)
    data = full.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.mkv: truncated video"):
        list(iter_frames(tmp_path / "cut.mkv", 25.0, 64))
    (tmp_path / "junk.mp4").write_bytes(b"\x00junk" * 50)
    with pytest.raises(DataError, match="junk.mp4: cannot open"):
        list(iter_frames(tmp_path / "junk.mp4", 25.0, 64))
    (tmp_path / "notes.txt").write_text("no video in here\n")
    with pytest.raises(DataError, match="notes.txt"):
        list(iter_frames(tmp_path / "notes.txt", 25.0, 64))


def test_unknown_flow_method_is_a_config_error():
    with pytest.raises(ConfigError, match="farneback"):
        FlowEstimator("farneback")


def test_missing_extras_name_the_pip_extra(monkeypatch, tmp_path):
    import sys

    from hamnet.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "av", None)  # makes `import av` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'hamnet\[extract\]'"):
        list(iter_frames(tmp_path / "v.mp4", 25.0, 64))
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(MissingDependencyError, match=r"hamnet\[extract\]"):
        FlowEstimator("dis")
