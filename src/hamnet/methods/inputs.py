"""A second stage's input files in its run folder (``RUN/inputs/<kind>.json``; for the
``seed<N>/`` runs of one command, the parent's).

A method with ``stage_input`` set (proposals, pseudo labels) trains on a file made from a
teacher's detections; that file is kept in the run folder so that a resumed run, a test
and a re-evaluation read the very input the model was trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

from hamnet.errors import DataError
from hamnet.io import atomic_write_text

INPUTS = "inputs"


def input_path(run_dir: Path, kind: str) -> Path:
    return Path(run_dir) / INPUTS / f"{kind}.json"


def write_input(run_dir: Path, kind: str, content: dict) -> Path:
    """Keep a second stage's input in the run folder (atomically)."""
    path = input_path(run_dir, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(content, indent=1, sort_keys=True))
    return path


def bind(method, run_dir: Path, annotations) -> None:
    """Give a second stage its input file from ``run_dir``; other methods get the
    dataset's annotations only."""
    kind = getattr(method, "stage_input", None)
    if kind is None:
        method.bind_inputs({}, annotations)  # the annotations only (class names, counts)
        return
    path = input_path(run_dir, kind)
    shared = input_path(Path(run_dir).parent, kind)  # one input for every seed<N>/ folder
    if not path.is_file() and shared.is_file():
        path = shared
    if not path.is_file():
        raise DataError(
            f"{path}: method {method.name!r} trains on {kind} and this run has none "
            f"(give them with --{kind.replace('_', '-')} or --teacher)"
        )
    method.bind_inputs({kind: path}, annotations)
