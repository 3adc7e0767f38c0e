"""Video decoding for feature extraction: PyAV frames resampled to a fixed rate and resized.

Frames are streamed (a THUMOS14 video of 28 minutes is 42k frames; holding them all at
224x224 would take 6 GB), resampled by nearest timestamp as FFmpeg's ``fps`` filter does,
and resized so the shorter side has a fixed length (bilinear).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hamnet.errors import DataError, MissingDependencyError

INSTALL_HINT = "pip install 'hamnet[extract]'"
# A video is called truncated when its frames stop this much before the declared end;
# the slack absorbs containers whose duration counts a longer audio track.
TRUNCATION_SLACK_S = 1.0
TRUNCATION_SLACK_FRACTION = 0.05


def import_av():
    """PyAV, imported on first use so that hamnet runs without the extract extra."""
    try:
        import av
    except ImportError as exc:
        raise MissingDependencyError(
            f"feature extraction needs PyAV to decode videos: {INSTALL_HINT}"
        ) from exc
    return av


def import_cv2():
    """OpenCV, imported on first use (resizing and optical flow)."""
    try:
        import cv2
    except ImportError as exc:
        raise MissingDependencyError(
            f"feature extraction needs OpenCV for resizing and optical flow: {INSTALL_HINT}"
        ) from exc
    return cv2


def resized_shape(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) after scaling so that min(height, width) == short_side."""
    scale = short_side / min(height, width)
    return max(short_side, round(height * scale)), max(short_side, round(width * scale))


def resize_short_side(frame: np.ndarray, short_side: int) -> np.ndarray:
    """Bilinear resize of an [H, W, C] uint8 frame so its shorter side is ``short_side``."""
    cv2 = import_cv2()
    height, width = resized_shape(frame.shape[0], frame.shape[1], short_side)
    if (height, width) == frame.shape[:2]:
        return frame
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_LINEAR)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The central [size, size, ...] window of an [H, W, ...] array (H, W >= size)."""
    top = (image.shape[0] - size) // 2
    left = (image.shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def _timed_frames(container, stream, name: str) -> Iterator[tuple[float, object]]:
    """(seconds since the first frame, av.VideoFrame) for each decoded frame.

    Raises DataError when decoding fails, or when the frames end well before the duration
    the file declares (a truncated download decodes "successfully" but short).
    """
    av = import_av()
    rate = float(stream.average_rate or 25)
    start, seconds, count = None, 0.0, 0
    try:
        for frame in container.decode(stream):
            seconds = frame.time if frame.time is not None else count / rate
            start = seconds if start is None else start
            count += 1
            yield seconds - start, frame
    except av.FFmpegError as exc:
        raise DataError(f"{name}: corrupt or truncated video after {count} frames ({exc})") from exc
    declared = declared_seconds(container, stream)
    if count and declared is not None:
        decoded = seconds - start + 1.0 / rate
        if decoded < declared - max(TRUNCATION_SLACK_S, TRUNCATION_SLACK_FRACTION * declared):
            raise DataError(
                f"{name}: truncated video: frames end at {decoded:.2f} s "
                f"but the file declares {declared:.2f} s"
            )


def declared_seconds(container, stream) -> float | None:
    """The video stream's declared duration (else the container's), or None if unknown."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # av.time_base: microseconds
    return None


def iter_frames(path: Path, fps: float, short_side: int) -> Iterator[np.ndarray]:
    """Decode ``path`` at ``fps`` frames per second, each resized: RGB uint8 [H', W', 3].

    Output frame k shows the source frame nearest to time k / fps (FFmpeg ``fps`` filter
    rounding), so a 50 fps source gives its even frames and a 25 fps source every frame.
    Raises DataError when the file cannot be opened, has no video stream, or breaks off.
    """
    av = import_av()
    name = Path(path).name
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise DataError(f"{name}: cannot open as a video ({exc})") from exc
    with container:
        if not container.streams.video:
            raise DataError(f"{name}: the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from _resample(_timed_frames(container, stream, name), fps, short_side)


def _resample(timed, fps: float, short_side: int) -> Iterator[np.ndarray]:
    """Nearest-timestamp resampling: source frame i covers the time up to halfway to i+1."""
    index = 0  # next output frame
    held, held_time, held_image, gap = None, 0.0, None, 1.0 / fps
    for seconds, frame in timed:
        if held is not None:
            gap = max(seconds - held_time, 1e-6)
            boundary = (held_time + seconds) / 2
            while index / fps < boundary:
                held_image = _image_once(held, held_image, short_side)
                yield held_image
                index += 1
        held, held_time, held_image = frame, seconds, None
    if held is not None:  # the last frame lasts as long as the gap before it
        while index / fps < held_time + gap / 2:
            held_image = _image_once(held, held_image, short_side)
            yield held_image
            index += 1


def _image_once(frame, image: np.ndarray | None, short_side: int) -> np.ndarray:
    """Convert and resize a source frame only once, however often it is repeated."""
    if image is None:
        image = resize_short_side(frame.to_ndarray(format="rgb24"), short_side)
    return image
