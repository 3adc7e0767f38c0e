"""What a feature store records besides features: its recipe and its zero-snippet videos.

Shared by the extraction pipeline and the multi-process shards (neither imports the other
for it).
"""

from __future__ import annotations

from pathlib import Path

from hamnet.data.features import INDEX_FILE, PackedFeatureStore
from hamnet.errors import DataError
from hamnet.io import atomic_write_json, parse_json

EMPTY_FILE = "empty_videos.json"

__all__ = ["EMPTY_FILE", "check_recipe", "read_empty", "write_empty"]


def read_empty(store: Path) -> dict[str, int]:
    """The store's zero-snippet videos: name -> frames decoded (empty when none recorded)."""
    path = Path(store) / EMPTY_FILE
    if not path.is_file():
        return {}
    try:
        listing = parse_json(path.read_bytes(), str(path), DataError)
        return {str(k): int(v) for k, v in listing["videos"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: malformed list of zero-snippet videos ({exc!r})") from None


def write_empty(store: Path, empty: dict[str, int]) -> None:
    if empty:
        atomic_write_json(Path(store) / EMPTY_FILE, {"videos": dict(sorted(empty.items()))}, 1)


def check_recipe(store: Path, recipe: dict) -> None:
    """DataError naming the differing fields when ``store`` was made with another recipe."""
    if not (Path(store) / INDEX_FILE).exists():
        return
    found = PackedFeatureStore(store).recipe
    if found == recipe:
        return
    if not isinstance(found, dict):
        raise DataError(f"{store}: the store holds no extraction recipe; write to a new store")
    diffs = [
        f"{key}: store {found.get(key)!r}, this run {recipe.get(key)!r}"
        for key in sorted(set(found) | set(recipe))
        if found.get(key) != recipe.get(key)
    ]
    raise DataError(
        f"{store}: the store belongs to another extraction recipe ({'; '.join(diffs)}); "
        "write to a new store or rerun with the store's settings"
    )
