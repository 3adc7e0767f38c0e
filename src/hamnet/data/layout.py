"""Dataset roots: the released layout, or the plain one (:mod:`hamnet.data.plain`).

A released-layout root holds, for dataset name ``Name``, ``<Name>-Annotations/`` and one
of (in order of preference) ``<Name>-packed/`` (packed store),
``<Name>-I3D-JOINTFeatures.npy`` (released pickled array; opt-in) or ``<Name>-features/``
(one ``<video>.npy`` per video), and optionally ``<Name>-gt.json``. A plain root holds
``gt.json`` and ``features/``.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from hamnet.data import plain
from hamnet.data.annotations import AnnotationSet, load_gt_json, save_gt_json
from hamnet.data.features import (
    INDEX_FILE,
    PICKLE_HINT,
    FeatureStore,
    convert_to_packed,
    open_feature_store,
    verify_packed,
)
from hamnet.data.released import load_released_annotations
from hamnet.errors import DataError
from hamnet.timing import RELEASED_SNIPPET_SECONDS

log = logging.getLogger(__name__)

ANNOTATIONS_SUFFIX = "-Annotations"
FEATURE_LAYOUTS = (("packed", "{}-packed"), ("released", "{}-I3D-JOINTFeatures.npy"))
FEATURE_LAYOUTS += (("npy", "{}-features"),)


@dataclass
class DatasetFiles:
    name: str | None  # None: a plain root that declares no name
    root: Path
    annotations_dir: Path | None  # None: plain layout (ground truth in gt_json)
    features_path: Path | None
    features_kind: str | None  # "packed", "released", "npy" or None
    gt_json: Path | None
    info: plain.PlainInfo = plain.PlainInfo()

    @property
    def layout(self) -> str:
        return "released" if self.annotations_dir is not None else "plain"


def _find_plain(root: Path) -> DatasetFiles:
    features = root / plain.FEATURES_DIR
    kind = "packed" if (features / INDEX_FILE).is_file() else "npy"
    info = plain.read_info(root)
    return DatasetFiles(info.name, root, None, features, kind, root / plain.GT_FILE, info)


def find_dataset(root: Path) -> DatasetFiles:
    """Locate the files of the dataset in ``root`` (or of the annotation folder ``root``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    if plain.is_plain_root(root):
        return _find_plain(root)
    if root.name.endswith(ANNOTATIONS_SUFFIX) and (root / "videoname.npy").is_file():
        folders = [root]
        root = root.parent
    else:
        folders = sorted(p for p in root.glob(f"*{ANNOTATIONS_SUFFIX}") if p.is_dir())
    if not folders:
        raise DataError(
            f"{root}: no '<Name>{ANNOTATIONS_SUFFIX}' folder here; a dataset root holds "
            f"<Name>{ANNOTATIONS_SUFFIX}/ and <Name>-packed/ or <Name>-I3D-JOINTFeatures.npy, "
            f"or {plain.GT_FILE} and {plain.FEATURES_DIR}/"
        )
    if len(folders) > 1:
        listed = ", ".join(p.name for p in folders)
        raise DataError(f"{root}: several annotation folders ({listed}); point to one dataset")
    name = folders[0].name[: -len(ANNOTATIONS_SUFFIX)]
    kind, features = None, None
    for candidate_kind, pattern in FEATURE_LAYOUTS:
        candidate = root / pattern.format(name)
        if candidate.exists():
            kind, features = candidate_kind, candidate
            break
    gt_json = root / f"{name}-gt.json"
    return DatasetFiles(
        name, root, folders[0], features, kind, gt_json if gt_json.is_file() else None
    )


def open_dataset(
    root: Path,
    *,
    allow_pickle: bool = False,
    feature_dim: int | None = None,
    name: str | None = None,
    snippet_seconds: float | None = None,
) -> tuple[AnnotationSet, FeatureStore, DatasetFiles]:
    """Annotations and features of a dataset root, checked against each other and
    against the config's ``name`` (``data.name``), ``feature_dim`` and ``snippet_seconds``
    where given.

    Every annotated video must have features with at least one snippet; features of
    videos without annotation are logged and ignored.
    """
    files = find_dataset(root)
    check_name(files, name)
    plain.check_info(files.root, files.info, snippet_seconds)
    if files.features_path is None:
        expected = " or ".join(pattern.format(files.name) for _, pattern in FEATURE_LAYOUTS)
        raise DataError(f"{files.root}: no features found (expected {expected})")
    if files.features_kind == "released" and not allow_pickle:
        raise DataError(
            f"{files.features_path}: only the released feature file is here; {PICKLE_HINT}"
        )
    if files.annotations_dir is None:
        annotations = load_gt_json(files.gt_json)
    else:
        annotations = load_released_annotations(files.annotations_dir)
    names = [video.name for video in annotations.videos]
    store = open_feature_store(files.features_path, names=names, allow_pickle=allow_pickle)
    if feature_dim is not None and store.dim != feature_dim:
        raise DataError(
            f"{store.path}: features are {store.dim} wide but {feature_dim} are expected "
            f"(data.feature_dim)"
        )
    check_coverage(annotations, store)
    return annotations, store, files


def check_name(files: DatasetFiles, expected: str | None) -> None:
    """DataError when the data found is another dataset than the config names."""
    if expected is None or files.name is None or files.name == expected:
        return
    where = files.annotations_dir or files.root / plain.INFO_FILE
    raise DataError(
        f"{where}: this is dataset {files.name!r} but the config names {expected!r} "
        f"(data.name); choose the matching preset or set data.name={files.name}"
    )


def check_coverage(annotations: AnnotationSet, store: FeatureStore) -> None:
    """DataError for an annotated video without features or with 0 snippets."""
    missing = [video.name for video in annotations.videos if video.name not in store]
    if missing:
        raise DataError(
            f"{store.path}: no features for video {missing[0]!r} of {annotations.source} "
            f"({len(missing)} annotated video(s) lack features)"
        )
    for video in annotations.videos:
        if store.length(video.name) == 0:
            raise DataError(f"{store.path}: video {video.name!r}: empty video (0 snippets)")
    annotated = {video.name for video in annotations.videos}
    extra = [name for name in store.names if name not in annotated]
    if extra:
        log.warning(
            "%s: %d video(s) have features but no annotation (e.g. %r); ignored",
            store.path,
            len(extra),
            extra[0],
        )


def convert_dataset(
    root: Path,
    out: Path,
    *,
    dtype: str = "float32",
    allow_pickle: bool = False,
    verify: bool = False,
    progress: bool = True,
) -> Path:
    """Write ``out`` = ``<Name>-Annotations/`` (copied), ``<Name>-packed/``, ``<Name>-gt.json``."""
    annotations, store, files = open_dataset(root, allow_pickle=allow_pickle)
    if files.annotations_dir is None:
        raise DataError(f"{files.root}: already a plain dataset; convert a released-layout root")
    out = Path(out)
    packed_dir = out / f"{files.name}-packed"
    if packed_dir.exists():
        raise DataError(f"{packed_dir}: already exists; choose another output folder")
    shutil.copytree(files.annotations_dir, out / files.annotations_dir.name, dirs_exist_ok=True)
    names = [video.name for video in annotations.videos]
    packed = convert_to_packed(store, packed_dir, dtype=dtype, names=names, progress=progress)
    if verify:
        verify_packed(store, packed)
    save_gt_json(annotations, out / f"{files.name}-gt.json")
    return out


def convert_dataset_npy(
    root: Path,
    out: Path,
    *,
    allow_pickle: bool = False,
    snippet_seconds: float = RELEASED_SNIPPET_SECONDS,
    progress: bool = True,
) -> Path:
    """Write the plain layout (``gt.json``, ``features/<video>.npy``, ``dataset.json``);
    ``snippet_seconds``: the stride of the released layout's features, recorded."""
    annotations, store, files = open_dataset(root, allow_pickle=allow_pickle)
    return plain.write_plain_dataset(
        annotations,
        store,
        out,
        name=files.name,
        snippet_seconds=snippet_seconds,
        progress=progress,
    )
