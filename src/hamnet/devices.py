"""One place that turns a device string into a torch device, for training, testing,
prediction and extraction alike.

``auto`` takes CUDA when present; a bare ``cuda`` means this process's GPU (``LOCAL_RANK``
under torchrun). Every impossible request is a :class:`ConfigError` with one line:
an unknown name (``gpu``), CUDA asked for where there is none, an index past the last GPU.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from hamnet.errors import ConfigError

SUPPORTED = ("cpu", "cuda")
HINT = "use auto, cpu, cuda or cuda:N"


def local_rank() -> int:
    """This process's rank on its node (0 outside torchrun)."""
    text = os.environ.get("LOCAL_RANK", "0")
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"LOCAL_RANK={text!r} is not an integer") from None


def resolve_device(name: str, rank: int | None = None) -> torch.device:
    """The torch device for ``name``; ``rank`` picks the GPU of a bare ``cuda``."""
    text = str(name).strip()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device {name!r}: unknown device ({HINT})") from None
    if device.type not in SUPPORTED:
        raise ConfigError(f"device {name!r}: not supported by hamnet ({HINT})")
    if device.type == "cpu":
        return torch.device("cpu")
    return _checked_cuda(name, device, local_rank() if rank is None else rank)


def _checked_cuda(name: str, device: torch.device, rank: int) -> torch.device:
    if not torch.cuda.is_available():
        built = torch.version.cuda
        why = f"torch {torch.__version__} is built without CUDA" if not built else "no GPU visible"
        raise ConfigError(f"device {name!r}: CUDA is not available ({why}); use cpu or auto")
    index = rank if device.index is None else device.index
    count = torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"device {name!r}: CUDA device {index} asked for, but only {count} visible "
            f"(cuda:0 to cuda:{count - 1})"
        )
    return torch.device("cuda", index)


def device_name(device: torch.device) -> str:
    """A human-readable name of the hardware (for run.json and result files)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return platform.processor() or platform.machine() or "cpu"


def device_record(device: torch.device) -> dict:
    """What run.json and result JSONs record about the device."""
    return {"device": str(device), "device_name": device_name(device)}


@contextlib.contextmanager
def cpu_threads(count: int) -> Iterator[None]:
    """torch's intra-op CPU threads set to ``count`` inside the block, restored after it
    (another run of the same process keeps its own); 0 leaves them as they are."""
    if count <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
