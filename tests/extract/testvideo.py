"""Small synthetic videos with known content, written with PyAV (for tests and demos).

A smooth random texture slides by a fixed (dx, dy) pixels per frame, so the true optical
flow is known; a bright square moves across it; and the top-left block's gray level
encodes the frame index (``index_level``), so a decoder's time mapping can be checked.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from hamnet.extract.video import import_av, import_cv2

INDEX_BLOCK = 8  # pixels; the top-left INDEX_BLOCK x INDEX_BLOCK block carries the index
INDEX_STEP = 12  # gray levels per frame (cycles every 20 frames; survives lossy coding)


def index_level(frame_index: int) -> int:
    """Gray level of the index block in source frame ``frame_index``."""
    return 10 + INDEX_STEP * (frame_index % 20)


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth random gray texture [height, width] uint8 (good for optical flow)."""
    cv2 = import_cv2()
    noise = np.random.default_rng(seed).random((height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / max(float(smooth.max() - smooth.min()), 1e-6)
    return (smooth * 200 + 28).astype(np.uint8)


def synthetic_frames(
    frames: int, height: int, width: int, motion: tuple[int, int] = (2, 1), seed: int = 0
) -> np.ndarray:
    """[frames, height, width, 3] uint8: the texture moving by ``motion`` = (dx, dy) per frame."""
    dx, dy = motion
    margin_y, margin_x = abs(dy) * frames + 1, abs(dx) * frames + 1
    big = texture(height + 2 * margin_y, width + 2 * margin_x, seed)
    out = np.empty((frames, height, width, 3), dtype=np.uint8)
    for k in range(frames):
        # content moving right by dx means the window over the texture moves left
        top, left = margin_y - k * dy, margin_x - k * dx
        gray = big[top : top + height, left : left + width].copy()
        side = max(4, min(height, width) // 6)
        x0 = (3 * k) % max(1, width - side)
        gray[height // 2 : height // 2 + side, x0 : x0 + side] = 250
        gray[:INDEX_BLOCK, :INDEX_BLOCK] = index_level(k)
        out[k] = np.repeat(gray[:, :, None], 3, axis=2)
    return out


def write_video(path: Path, frames: np.ndarray, fps: float = 25.0, codec: str = "mpeg4") -> Path:
    """Encode [N, H, W, 3] uint8 RGB frames (H, W even) into ``path`` at ``fps``."""
    av = import_av()
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p" if codec != "ffv1" else "yuv444p"
        if codec == "mpeg4":
            stream.options = {"qscale": "2"}  # near-lossless, keeps the index block exact
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_test_video(
    path: Path,
    frames: int = 40,
    fps: float = 25.0,
    size: tuple[int, int] = (64, 80),
    motion: tuple[int, int] = (2, 1),
    seed: int = 0,
    codec: str = "mpeg4",
) -> Path:
    """Write a synthetic video of ``frames`` frames of ``size`` = (height, width) at ``fps``."""
    return write_video(path, synthetic_frames(frames, *size, motion=motion, seed=seed), fps, codec)
