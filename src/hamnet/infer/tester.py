"""``hamnet test``: a checkpoint on a dataset's test split -> detections and mAP."""

from __future__ import annotations

import time
from pathlib import Path

from hamnet import argcheck
from hamnet.data.layout import open_dataset
from hamnet.devices import cpu_threads, device_record, resolve_device
from hamnet.errors import DataError
from hamnet.infer.inference import Evaluation, evaluate_model
from hamnet.infer.settings import inference_settings, with_inference_overrides
from hamnet.io import atomic_write_json, input_files, refuse_overwriting_inputs
from hamnet.localize.detections import save_detections
from hamnet.methods import inputs as stage_inputs
from hamnet.provenance import (
    command_line,
    data_record,
    file_fingerprint,
    now_iso,
    software_versions,
)
from hamnet.weights.trained import load_trained


def evaluate_checkpoint(
    checkpoint: Path,
    data_root: Path,
    out: Path,
    *,
    save_cas: Path | None = None,
    protocol: str | None = None,
    tiou: list[float] | None = None,
    subset: str | None = None,
    result_json: Path | None = None,
    device: str = "auto",
    overrides: list[str] | None = None,
    progress: bool = True,
) -> Evaluation:
    """``overrides``: ``key=value`` settings (e.g. ``localize.class_thresh=0.1``) replacing
    the checkpoint config's for this test."""
    _check_arguments(checkpoint, data_root, out, save_cas, result_json, protocol, tiou, subset)
    argcheck.check_overrides(overrides)
    started = now_iso(), time.monotonic()
    refuse_overwriting_inputs(
        [out, result_json, save_cas],
        [checkpoint, *input_files(checkpoint.parent, depth=1), *input_files(data_root)],
    )
    torch_device = resolve_device(device)
    trained = load_trained(checkpoint, torch_device)
    config = with_inference_overrides(trained.config, overrides or [])
    annotations, store, _ = open_dataset(
        data_root,
        feature_dim=config.data.feature_dim,
        name=config.data.name,
        snippet_seconds=config.data.snippet_seconds,
    )
    if annotations.classes != trained.classes:
        raise DataError(
            f"{data_root}: its class list differs from the one {checkpoint} was trained with"
        )
    if save_cas is not None:
        save_cas.mkdir(parents=True, exist_ok=True)
    settings = inference_settings(config, protocol=protocol, tiou=tiou)
    # a second stage reads the input it was trained on, kept beside its checkpoint
    stage_inputs.bind(settings.method, checkpoint.parent, annotations)
    # the threads the run tested with (train.cpu_threads), so its numbers repeat here
    with cpu_threads(config.train.cpu_threads):
        evaluation = evaluate_model(
            trained.model,
            annotations,
            store,
            subset=subset or config.data.test_subset,
            device=torch_device,
            settings=settings,
            save_cas_dir=save_cas,
            progress=progress,
        )
    save_detections(out, evaluation.detections)
    evaluation.selected_on = (trained.selection or {}).get("select_on", "none")
    # an imported checkpoint was trained elsewhere: no epochs of a hamnet run to report
    imported = trained.imported_from is not None
    evaluation.epochs = None if imported else (trained.epoch, trained.config.train.epochs)
    evaluation.trained_on_test = trained.config.data.train_subset == (
        subset or config.data.test_subset
    )
    if result_json is not None:
        record = result_record(evaluation, config, checkpoint)
        record.update(
            selected_on=evaluation.selected_on,
            trained_on_test=evaluation.trained_on_test,
            epochs=None
            if imported
            else {"trained": trained.epoch, "planned": trained.config.train.epochs},
            imported_from=trained.imported_from,
            provenance=result_provenance(trained, data_root, torch_device, started),
        )
        atomic_write_json(result_json, record, indent=1)
    return evaluation


def _check_arguments(checkpoint, data_root, out, save_cas, result_json, protocol, tiou, subset):
    for name, value in (("checkpoint", checkpoint), ("data_root", data_root), ("out", out)):
        argcheck.check_path(value, name)
    argcheck.check_path(save_cas, "save_cas", optional=True)
    argcheck.check_path(result_json, "result_json", optional=True)
    argcheck.check_text(protocol, "protocol", optional=True)
    argcheck.check_numbers(tiou, "tiou", optional=True)
    argcheck.check_text(subset, "subset", optional=True)


def result_record(evaluation: Evaluation, config, checkpoint: Path) -> dict:
    record = evaluation.result.to_dict()
    record.update(
        classification_mAP=evaluation.classification_map,
        localization_source=evaluation.source,
        rules=evaluation.rules,
        num_videos=evaluation.num_videos,
        checkpoint=str(checkpoint),
        preset=config.preset,
        variant=config.variant,
        method=config.method,
    )
    return record


def result_provenance(trained, data_root: Path, device, started: tuple[str, float]) -> dict:
    """The inputs of a test result, recorded as a run records its own (see run.json)."""
    checkpoint = {**file_fingerprint(trained.path), "epoch": trained.epoch}
    if trained.selection:
        checkpoint["selection"] = trained.selection
    return {
        "command": command_line(),
        "software": software_versions(),
        **device_record(device),
        "checkpoint": checkpoint,
        "data": data_record(data_root),
        "started": started[0],
        "ended": now_iso(),
        "wall_seconds": round(time.monotonic() - started[1], 3),
    }
