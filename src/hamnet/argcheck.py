"""Argument checks for the Python API: a wrong type or value is one ConfigError line.

The CLI's values are already typed by argparse; these guard the functions that library
users call directly (``train``, ``test_checkpoint``, ``predict``, ``evaluate_files``), where
``top_k=True`` would otherwise act as 1 and ``snippet_seconds=float("nan")`` would end in
a traceback deep in the evaluator.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from hamnet.errors import ConfigError


def _kind(value: Any) -> str:
    return type(value).__name__


def check_path(value: Any, name: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and not value):
        raise ConfigError(f"{name} must be a path (str or pathlib.Path), got {_kind(value)}")


def check_paths(values: Any, name: str) -> None:
    if isinstance(values, (str, os.PathLike)) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a list of paths, got {_kind(values)}")
    for value in values:
        check_path(value, f"{name} entries")


def check_bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be True or False, got {value!r}")


def check_int(value: Any, name: str, minimum: int, optional: bool = False) -> None:
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {_kind(value)} {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")


def check_number(value: Any, name: str, positive: bool = False, finite: bool = True) -> None:
    """A finite int or float (not a bool); ``positive``: also > 0; ``finite`` False: the
    type only (the caller's own check words the range)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {_kind(value)} {value!r}")
    if not finite:
        return
    try:
        finite = math.isfinite(value)
    except OverflowError:
        finite = False
    if not finite or (positive and not value > 0):
        wanted = "a positive finite number" if positive else "a finite number"
        raise ConfigError(f"{name} must be {wanted}, got {value!r}")


def check_snippet_seconds(value: Any, name: str = "snippet_seconds") -> None:
    from hamnet.timing import snippet_seconds_problem

    problem = snippet_seconds_problem(value)
    if problem:
        raise ConfigError(f"{name} {problem}")


def check_tiou(value: Any, name: str = "tiou") -> None:
    """One tIoU threshold: a number in (0, 1] (a tIoU above 1 matches nothing)."""
    check_number(value, name, finite=False)
    if not 0 < value <= 1:  # NaN fails too
        raise ConfigError(f"{name} must lie in (0, 1], got {value!r}")


def check_text(value: Any, name: str, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a non-empty string, got {value!r}")


def check_numbers(values: Any, name: str, optional: bool = False) -> None:
    if optional and values is None:
        return
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a list of numbers, got {_kind(values)}")
    for value in values:
        check_number(value, f"{name} entries")


def check_overrides(values: Any, name: str = "overrides") -> None:
    if values is None:
        return
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a list of 'key=value' strings, got {_kind(values)}")
    for value in values:
        if not isinstance(value, str):
            raise ConfigError(f"{name} entries must be 'key=value' strings, got {value!r}")
