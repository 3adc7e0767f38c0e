"""The rules every config section checks its values by (one place): types against the
field annotations, counts, fractions, finite numbers, and short values in error lines.

:mod:`hamnet.config` reads YAML through :func:`coerce`; each section's ``__post_init__``
(also :class:`~hamnet.methods.hamnet.losses.LossConfig`, which lives with its losses)
calls :func:`check_types` and the range checks, so objects built in Python are held to
the same rules as files."""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import fields
from typing import Any, get_args, get_origin, get_type_hints

from hamnet.errors import ConfigError

# numpy's seed range; counts (epochs, sizes, widths) beyond 2**31 - 1 are typing errors
MAX_SEED = 2**32 - 1
MAX_COUNT = 2**31 - 1


def check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def check_count(value: int, key: str, minimum: int = 1) -> None:
    check(value >= minimum, f"{key} must be >= {minimum}, got {show(value)}")
    check(value <= MAX_COUNT, f"{key} must be at most {MAX_COUNT}, got {show(value)}")


def check_unit(value: float, key: str) -> None:
    check(0.0 <= value <= 1.0, f"{key} must be in [0, 1], got {value}")


def check_finite(section: Any, prefix: str) -> None:
    """Last check of a section: no float field is inf or NaN (ranges catch most first)."""
    for item in fields(section):
        value = getattr(section, item.name)
        if isinstance(value, float):
            check(finite(value), f"{prefix}.{item.name} must be a finite number, got {value}")


def check_types(section: Any, prefix: str) -> None:
    """Each field against its annotation, also for objects built in Python (no YAML):
    bools are not numbers, ints become floats where floats are expected. The same rules
    as :func:`coerce`, which reads YAML."""
    hints = get_type_hints(type(section))
    for item in fields(section):
        hint = hints[item.name]
        if dataclasses.is_dataclass(hint):
            continue
        key = f"{prefix}.{item.name}" if prefix else item.name
        setattr(section, item.name, coerce(getattr(section, item.name), hint, key))


def finite(value: float) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float's range
        return False


def show(value: Any) -> str:
    """A value for an error line: short, and safe for values nested thousands deep."""
    try:
        text = repr(value)
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply"
    except ValueError:  # an int of more digits than Python prints
        return f"an integer of more than {sys.get_int_max_str_digits()} digits"
    return text if len(text) <= 80 else text[:77] + "..."


def coerce(value: Any, hint: Any, key: str) -> Any:
    """Check a value against its annotation; ints are accepted where floats are."""
    if get_origin(hint) is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"config key {key!r} must be a mapping of names, got {show(value)}")
        _, value_type = get_args(hint)
        return {k: coerce(v, value_type, f"{key}.{k}") for k, v in value.items()}
    options = get_args(hint) if get_origin(hint) is not list else ()
    if value is None and type(None) in options:
        return None
    base = next((o for o in options if o is not type(None)), hint)
    if get_origin(base) is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} must be a list, got {show(value)}")
        (item_type,) = get_args(base)
        return [coerce(v, item_type, key) for v in value]
    if base is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if not finite(value) and isinstance(value, int):
            raise ConfigError(f"config key {key!r}: {show(value)} is too large for a number")
        return float(value)
    if base is int and isinstance(value, bool):
        raise ConfigError(f"config key {key!r} must be int, got {show(value)}")
    if not isinstance(value, base):
        raise ConfigError(f"config key {key!r} must be {base.__name__}, got {show(value)}")
    return value
