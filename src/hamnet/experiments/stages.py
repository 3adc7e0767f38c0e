"""Two stages in one run folder: a second stage's input (P-MIL's proposals, a student's
pseudo labels) from files, from a trained run, or from a teacher trained first in
``RUN/teacher/``.

A run's proposals are its checkpoint's detections on the training and the test subsets
(what P-MIL's repo ships for CO2-Net); they are written to ``RUN/inputs/`` with where they
came from, before the second stage trains, so that a resumed run, a test and a
re-evaluation read the very input it was trained on.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from hamnet.config import Config, make_config
from hamnet.errors import ConfigError, DataError
from hamnet.io import read_json
from hamnet.methods import METHODS, canonical_method, method_class
from hamnet.methods import inputs as stage_inputs

log = logging.getLogger(__name__)

TEACHER_DIR = "teacher"


def prepare_stage_input(
    config: Config,
    data_root: Path,
    run_dir: Path,
    sources: list[Path],
    teacher: str | None = None,
    progress: bool = True,
) -> Path | None:
    """Write ``RUN/inputs/<kind>.json`` for a second stage from ``sources`` (detection
    files or run folders) or a ``teacher`` (a method name, trained here, or a run
    folder); None when nothing is given (a resumed run keeps its input)."""
    kind = method_class(config.method).stage_input
    if kind is None:
        if sources or teacher:
            raise ConfigError(
                f"--proposals / --teacher: method {config.method!r} is not a second stage"
            )
        return None
    if teacher:
        sources = [*sources, _teacher_run(config, data_root, run_dir, teacher, progress)]
    if not sources:
        return None
    if any(source.is_dir() and source.resolve() == Path(run_dir).resolve() for source in sources):
        raise ConfigError(f"{run_dir}: a run cannot take its own detections as its input")
    if kind == "pseudo_labels":
        return _pseudo_labels_input(config, data_root, run_dir, sources)
    results, provenance = {}, []
    for source in sources:
        found = _run_detections(source, data_root, run_dir) if source.is_dir() else source
        for video, rows in _results(found).items():
            if video in results:
                raise DataError(f"{found}: video {video!r} has proposals in another source too")
            results[video] = rows
        provenance.append({"source": str(source), "detections": str(found)})
    content = {"version": kind, "results": results, "provenance": provenance}
    path = stage_inputs.write_input(run_dir, kind, content)
    log.info("%s: %d videos' %s from %s", path, len(results), kind, ", ".join(map(str, sources)))
    return path


def _results(path: Path) -> dict:
    raw = read_json(path, DataError)
    results = raw.get("results") if isinstance(raw, dict) else None
    if not isinstance(results, dict):
        raise DataError(f"{path}: expected a detections file ({{'results': {{video: [...]}}}})")
    return results


def _teacher_run(config: Config, data_root: Path, run_dir: Path, teacher: str, progress) -> Path:
    """A run folder given as the teacher, or the teacher method trained in RUN/teacher/
    (resumed when it is there) on the same data, seed and dataset settings."""
    candidate = Path(teacher).expanduser()
    if candidate.is_dir():
        return candidate.resolve()
    if teacher.lower() not in METHODS and "/" in teacher:
        raise ConfigError(f"--teacher {teacher}: no such run folder")
    name = canonical_method(teacher)
    if method_class(name).stage_input is not None:
        raise ConfigError(f"--teacher {teacher}: a second stage cannot be the teacher")
    from hamnet.train.trainer import train

    own = make_config(config.preset, method=name)
    teacher_config = dataclasses.replace(
        own, data=config.data, train=dataclasses.replace(own.train, seed=config.train.seed)
    )
    folder = run_dir / TEACHER_DIR
    train(
        teacher_config,
        data_root,
        folder,
        resume=(folder / "last.pt").is_file(),
        progress=progress,
    )
    return folder


def _run_detections(run: Path, data_root: Path, run_dir: Path) -> Path:
    """The run's last (else best) checkpoint tested on its training and test subsets;
    one detections file of both, in RUN/inputs/."""
    from hamnet.infer.tester import evaluate_checkpoint
    from hamnet.localize.detections import load_detections, save_detections
    from hamnet.weights.trained import load_trained

    checkpoint = next((p for p in (run / "last.pt", run / "best.pt") if p.is_file()), None)
    if checkpoint is None:
        raise ConfigError(f"{run}: no last.pt or best.pt (not a trained run folder)")
    subsets = load_trained(checkpoint).config.data
    found = []
    for subset in (subsets.train_subset, subsets.test_subset):
        out = run_dir / stage_inputs.INPUTS / f"{run.name}-{subset}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        evaluate_checkpoint(checkpoint, data_root, out, subset=subset, progress=False)
        found.extend(load_detections(out))
    merged = run_dir / stage_inputs.INPUTS / f"{run.name}-detections.json"
    save_detections(merged, found)
    return merged


def _pseudo_labels_input(config: Config, data_root: Path, run_dir: Path, sources) -> Path:
    """``RUN/inputs/pseudo_labels.json`` from one source: a pseudo-label file (taken as
    it is), a detections file or a run (FuSTAL's selection on the training subset, with
    the method's ``pseudo_*`` options where it sets them)."""
    from hamnet.data.layout import find_dataset, load_annotations
    from hamnet.experiments import pseudo_labels as pl
    from hamnet.localize.pseudo_labels import PseudoLabelRules

    if len(sources) != 1:
        raise ConfigError("pseudo labels come from one source (a run, detections or labels file)")
    source = sources[0]
    train_subset = [config.data.train_subset]
    rules = PseudoLabelRules.from_options(config.method_options)  # the student's pseudo_* keys
    if source.is_dir():
        annotations = load_annotations(find_dataset(data_root))
        found = pl.run_detections(source, data_root, train_subset, run_dir / stage_inputs.INPUTS)
        teacher = {"run": str(source), "method": _run_method(source), "data": str(data_root)}
        document = pl.make_pseudo_labels(found, annotations, train_subset, rules, config, teacher)
    elif pl.is_pseudo_labels(source):
        document = read_json(source, DataError)
        _check_videos(source, document, load_annotations(find_dataset(data_root)))
        _check_test_subset(config, source, document)
    else:
        annotations = load_annotations(find_dataset(data_root))
        teacher = {"file": str(source), "method": "?", "data": str(data_root)}
        document = pl.make_pseudo_labels(source, annotations, train_subset, rules, config, teacher)
    path = stage_inputs.write_input(run_dir, "pseudo_labels", document)
    log.info("%s: pseudo labels of %d videos from %s", path, len(document["database"]), source)
    return path


def _check_videos(source: Path, document: dict, annotations) -> None:
    unknown = sorted(set(document["database"]) - {v.name for v in annotations.videos})
    if unknown:
        raise DataError(
            f"{source}: pseudo labels for {unknown[0]!r}, a video the dataset does not have"
            + (f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else "")
        )


def _check_test_subset(config: Config, source: Path, document: dict) -> None:
    subsets = {entry.get("subset") for entry in document["database"].values()}
    if config.data.test_subset in subsets and not config.train.allow_test_subset:
        raise ConfigError(
            f"{source}: pseudo labels of the test subset {config.data.test_subset!r}; set "
            "train.allow_test_subset=true to train on them (results are then labelled)"
        )


def _run_method(run: Path) -> str:
    from hamnet.experiments.pseudo_labels import checkpoint_of
    from hamnet.weights.trained import load_trained

    return load_trained(checkpoint_of(run)).config.method


def stage_notes(run_dir: Path) -> list[str]:
    """What a run's table says of its second-stage input (pseudo labels: teacher, rules,
    their own mAP); [] when it has none."""
    from hamnet.experiments.pseudo_labels import summary_lines

    path = stage_inputs.input_path(run_dir, "pseudo_labels")
    if not path.is_file():
        return []
    return summary_lines(read_json(path, DataError))
