"""Dataset roots: annotations plus one kind of feature storage.

A root holds, for dataset name ``Name``, the annotations, as the released
``<Name>-Annotations/`` folder or (a converted root, which holds no pickle) only
``<Name>-gt.json``, and one of (in order of preference) ``<Name>-packed/`` (packed
store), ``<Name>-I3D-JOINTFeatures.npy`` (released pickled array, read with the
restricted unpickler) or ``<Name>-features/`` (one ``<video>.npy`` per video).
A plain root (:mod:`hamnet.data.plain`) holds ``gt.json`` and ``features/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from hamnet.argcheck import check_snippet_seconds
from hamnet.data import plain
from hamnet.data.annotations import AnnotationSet, load_gt_json, save_gt_json
from hamnet.data.features import (
    INDEX_FILE,
    FeatureStore,
    PackedFeatureStore,
    check_store,
    convert_to_packed,
    open_feature_store,
    verify_packed,
)
from hamnet.data.released import load_released_annotations
from hamnet.errors import DataError
from hamnet.timing import RELEASED_SNIPPET_SECONDS

log = logging.getLogger(__name__)

ANNOTATIONS_SUFFIX = "-Annotations"
GT_SUFFIX = "-gt.json"
FEATURE_LAYOUTS = (("packed", "{}-packed"), ("released", "{}-I3D-JOINTFeatures.npy"))
FEATURE_LAYOUTS += (("npy", "{}-features"),)


@dataclass
class DatasetFiles:
    name: str | None  # None: a plain root that declares no name
    root: Path
    annotations_dir: Path | None  # None: a converted or plain root, annotations in gt_json
    features_path: Path | None
    features_kind: str | None  # "packed", "released", "npy" or None
    gt_json: Path | None
    info: plain.PlainInfo = plain.PlainInfo()

    @property
    def layout(self) -> str:
        """``released``, ``converted`` (``<Name>-gt.json``) or ``plain`` (``gt.json``)."""
        if self.annotations_dir is not None:
            return "released"
        return (
            "plain"
            if self.gt_json is not None and self.gt_json.name == plain.GT_FILE
            else "converted"
        )


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
        converted = _converted_root(root)
        if converted is not None:
            return converted
        raise DataError(
            f"{root}: no '<Name>{ANNOTATIONS_SUFFIX}' folder or '<Name>{GT_SUFFIX}' here; a "
            f"dataset root holds <Name>{ANNOTATIONS_SUFFIX}/ (or, converted, <Name>{GT_SUFFIX}) "
            f"and <Name>-packed/ or <Name>-I3D-JOINTFeatures.npy, or {plain.GT_FILE} and "
            f"{plain.FEATURES_DIR}/"
        )
    if len(folders) > 1:
        listed = ", ".join(p.name for p in folders)
        raise DataError(f"{root}: several annotation folders ({listed}); point to one dataset")
    name = folders[0].name[: -len(ANNOTATIONS_SUFFIX)]
    kind, features = _features_of(root, name)
    gt_json = root / f"{name}-gt.json"
    return DatasetFiles(
        name, root, folders[0], features, kind, gt_json if gt_json.is_file() else None
    )


def _features_of(root: Path, name: str) -> tuple[str | None, Path | None]:
    for kind, pattern in FEATURE_LAYOUTS:
        candidate = root / pattern.format(name)
        if candidate.exists():
            return kind, candidate
    return None, None


def _converted_root(root: Path) -> DatasetFiles | None:
    """A root written by ``hamnet convert``: ``<Name>-gt.json`` + ``<Name>-packed/``."""
    found = sorted(p for p in root.glob(f"*{GT_SUFFIX}") if p.is_file())
    if len(found) != 1:
        return None
    name = found[0].name[: -len(GT_SUFFIX)]
    kind, features = _features_of(root, name)
    return DatasetFiles(name, root, None, features, kind, found[0])


def load_annotations(files: DatasetFiles) -> AnnotationSet:
    """The root's annotations: the released folder, else the converted root's GT JSON."""
    if files.annotations_dir is None:
        return load_gt_json(files.gt_json)
    annotations = load_released_annotations(files.annotations_dir)
    if files.gt_json is not None:  # both: eval reads the JSON, train and test the folder
        check_same_annotations(files, annotations, load_gt_json(files.gt_json))
    return annotations


def check_same_annotations(files: DatasetFiles, folder: AnnotationSet, gt: AnnotationSet) -> None:
    """DataError naming the first difference between a root's two annotation sources."""
    where = f"{files.annotations_dir} and {files.gt_json} disagree"
    if folder.classes != gt.classes:
        raise DataError(
            f"{where}: class lists differ ({folder.classes[:3]} ... vs {gt.classes[:3]} ...)"
        )
    ours, theirs = {v.name: v for v in folder.videos}, {v.name: v for v in gt.videos}
    only = sorted(set(ours) ^ set(theirs))
    if only:
        raise DataError(
            f"{where}: {len(only)} video(s) in only one of them ({', '.join(only[:3])} ...)"
        )
    for name, video in ours.items():
        other = theirs[name]
        for field in ("subset", "duration", "labels", "segments"):
            if getattr(video, field) != getattr(other, field):
                raise DataError(f"{where}: video {name!r} has another {field}")


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
    annotations = load_annotations(files)
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
    if files.annotations_dir is not None:
        where = files.annotations_dir
    else:
        where = files.root / plain.INFO_FILE if files.layout == "plain" else files.gt_json
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
    """Write ``out`` = ``<Name>-packed/`` + ``<Name>-gt.json``: a root with no pickle in it.

    The GT JSON holds everything the annotation folder held (subsets, durations,
    video-level labels, segments, class list, ambiguous spans), so the released
    ``.npy`` files are not copied. ``allow_pickle`` is accepted and ignored.
    """
    annotations, store, files = open_dataset(root)
    if files.layout == "plain":
        raise DataError(f"{files.root}: already a plain dataset; convert a released-layout root")
    out = Path(out)
    packed_dir = out / f"{files.name}-packed"
    if packed_dir.exists():
        raise DataError(f"{packed_dir}: already exists; choose another output folder")
    names = [video.name for video in annotations.videos]
    packed = convert_to_packed(store, packed_dir, dtype=dtype, names=names, progress=progress)
    if verify:
        verify_packed(store, packed)
    save_gt_json(annotations, out / f"{files.name}{GT_SUFFIX}")
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
    check_snippet_seconds(snippet_seconds)
    annotations, store, files = open_dataset(root, allow_pickle=allow_pickle)
    return plain.write_plain_dataset(
        annotations,
        store,
        out,
        name=files.name,
        snippet_seconds=snippet_seconds,
        progress=progress,
    )


def check_dataset(root: Path, progress: bool = True) -> str:
    """Read everything in a dataset root (annotations, every video's features, stored
    checksums) and say what was verified; DataError at the first problem."""
    annotations, store, files = open_dataset(root)
    names = [video.name for video in annotations.videos]
    read, verified = check_store(store, progress=progress)
    subsets = sorted({video.subset for video in annotations.videos})
    lines = [
        f"{files.root}: dataset {files.name!r}, {len(names)} annotated videos in subsets "
        f"{subsets}, {annotations.num_classes} classes: annotations OK",
        f"features ({files.features_kind}, {store.path}): {read} videos read, shapes and "
        f"values OK (finite, width {store.dim})",
    ]
    if isinstance(store, PackedFeatureStore) and verified == read:
        lines.append(f"checksums: all {verified} verified")
    elif verified:
        lines.append(f"checksums: {verified} of {read} verified; the others have none stored")
    else:
        lines.append(
            "checksums: no checksums to verify (the store predates them, or the layout has "
            "none); values were still checked"
        )
    return "\n".join(lines)
