"""The one registry of evaluation protocols: name -> evaluator, title, diagnosis bins.

Each evaluator maps (index arrays of ground truth and detections, tIoU thresholds,
snippet seconds) to AP ``[T, K]``. ``anet``: the official ActivityNet rules;
``thumos14``: the official THUMOS14 rules with ambiguous spans; ``wtalc``: W-TALC's
``detectionMAP.py`` on snippet index sets (see each module). ``bins`` names the DETAD
bin set a diagnosis uses by default (:mod:`hamnet.diagnose.characteristics`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hamnet.evaluate.inputs import EvalInput
from hamnet.evaluate.protocols import anet, thumos14, wtalc


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    average_precision: Callable[[EvalInput, np.ndarray, float], np.ndarray]
    bins: str


def _ignoring_snippets(evaluator) -> Callable[[EvalInput, np.ndarray, float], np.ndarray]:
    """An evaluator that works in seconds: the snippet length does not enter."""
    return lambda data, thresholds, snippet_seconds: evaluator(data, thresholds)


REGISTRY: dict[str, Protocol] = {
    protocol.name: protocol
    for protocol in (
        Protocol(
            "anet",
            "ActivityNet protocol (official eval_detection.py rules)",
            _ignoring_snippets(anet.average_precision),
            bins="activitynet",
        ),
        Protocol(
            "thumos14",
            "THUMOS14 protocol (official TH14evaldet rules, ambiguous applied)",
            _ignoring_snippets(thumos14.average_precision),
            bins="thumos14",
        ),
        Protocol(
            "wtalc",
            "W-TALC protocol (detectionMAP.py rules)",
            wtalc.average_precision,
            bins="thumos14",
        ),
    )
}
PROTOCOLS = tuple(REGISTRY)


def protocol_title(name: str | None) -> str | None:
    """The protocol's title for tables and reports (an unknown name as it is)."""
    return REGISTRY[name].title if name in REGISTRY else name
