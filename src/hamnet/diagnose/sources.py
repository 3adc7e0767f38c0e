"""Where ``hamnet analyze`` and ``hamnet report`` find their inputs.

A run folder's test outputs live in ``RUN_DIR/test/``: ``detections.json``,
``ground_truth.json`` (the dataset's annotations), ``result.json`` (mAP per tIoU) and
``cas/<video>.npz`` (T-CAS and attention). :func:`ensure_test_outputs` makes them once
with ``hamnet test`` on the run's last (else best) checkpoint when they are missing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hamnet.data.annotations import AnnotationSet, load_gt_json, save_gt_json
from hamnet.errors import ConfigError
from hamnet.io import atomic_write_json, read_json
from hamnet.localize.detections import Detection, DetectionColumns, read_detection_columns
from hamnet.provenance import file_fingerprint

TEST_DIR = "test"
log = logging.getLogger(__name__)


@dataclass
class TestOutputs:
    """The files of one evaluated run (paths; ``cas_dir`` may not exist)."""

    folder: Path
    detections: Path
    ground_truth: Path
    result: Path
    cas_dir: Path
    info: Path

    @classmethod
    def of(cls, run_dir: Path) -> TestOutputs:
        folder = run_dir / TEST_DIR
        return cls(
            folder,
            folder / "detections.json",
            folder / "ground_truth.json",
            folder / "result.json",
            folder / "cas",
            folder / "info.json",
        )

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.detections, self.ground_truth, self.result))

    def read_info(self) -> dict:
        return read_json(self.info, ConfigError) if self.info.is_file() else {}


def ensure_test_outputs(
    run_dir: Path, data_root: Path | None, *, device: str = "auto", progress: bool = True
) -> TestOutputs:
    """The run's test outputs, made with ``hamnet test`` when missing or made from another
    checkpoint than the run's final one (a run extended with ``--resume``): ``info.json``
    records the SHA-256 of the checkpoint they come from (needs ``data_root``)."""
    outputs = TestOutputs.of(run_dir)
    # the final model, as the table 'hamnet train' prints
    checkpoint = next((p for p in (run_dir / "last.pt", run_dir / "best.pt") if p.is_file()), None)
    if checkpoint is None:
        if outputs.complete():  # test outputs copied without their run: use them as they are
            return outputs
        raise ConfigError(f"{run_dir}: no best.pt or last.pt here (not a run folder)")
    fingerprint = file_fingerprint(checkpoint)["sha256"]
    if outputs.complete():
        made_from = outputs.read_info().get("checkpoint_sha256")
        if made_from == fingerprint:
            return outputs
        log.info(
            "%s: made from %s, not from the current %s: testing again",
            outputs.folder,
            "an earlier checkpoint" if made_from else "an unrecorded checkpoint",
            checkpoint.name,
        )
    data_root = data_root or recorded_data_root(run_dir)
    if data_root is None:
        raise ConfigError(
            f"{run_dir}: no test outputs in {outputs.folder} yet and run.json names no "
            "dataset that exists; pass --data DATASET_ROOT to make them (runs 'hamnet test' once)"
        )
    from hamnet.data.layout import open_dataset
    from hamnet.infer.tester import evaluate_checkpoint

    evaluation = evaluate_checkpoint(
        checkpoint,
        data_root,
        outputs.detections,
        save_cas=outputs.cas_dir,
        result_json=outputs.result,
        device=device,
        progress=progress,
    )
    annotations, _, _ = open_dataset(data_root)
    save_gt_json(annotations, outputs.ground_truth)
    from hamnet.config import load_config

    config = load_config(run_dir / "config.yaml")
    info = {
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": fingerprint,
        "data": str(data_root),
        "subset": config.data.test_subset,
        "preset": config.preset,
        "protocol": evaluation.result.protocol,
    }
    atomic_write_json(outputs.info, info, indent=1)
    return outputs


def recorded_data_root(run_dir: Path) -> Path | None:
    """The dataset the run was trained on, from its run.json, when that folder exists."""
    from hamnet.train.runinfo import read_run_info

    info = read_run_info(run_dir) or {}
    root = (info.get("data") or {}).get("root") if isinstance(info.get("data"), dict) else None
    if not isinstance(root, str) or not Path(root).is_dir():
        return None
    log.info("%s: testing on %s (the dataset run.json records)", run_dir, root)
    return Path(root)


def guess_subset(
    annotations: AnnotationSet, detections: list[Detection] | DetectionColumns
) -> str | None:
    """The one subset that holds every detected video, else None (all videos)."""
    if isinstance(detections, DetectionColumns):
        names = {detections.videos[v] for v in np.unique(detections.video).tolist()}
    else:
        names = {d.video for d in detections}
    subsets = {v.subset for v in annotations.videos if v.name in names}
    return subsets.pop() if len(subsets) == 1 else None


def load_inputs(gt_path: Path, pred_path: Path) -> tuple[AnnotationSet, DetectionColumns]:
    """Ground truth and detections (as columns) through the project's own readers."""
    annotations = load_gt_json(gt_path)
    return annotations, read_detection_columns(pred_path, classes=annotations.classes)
