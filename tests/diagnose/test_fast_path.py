"""The vectorised diagnosis equals straightforward loops (slow_reference.py) on random
small cases with ties: the same matches and error types, the same APs to 1e-12."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hamnet.data.annotations import AnnotationSet, Segment, Video
from hamnet.diagnose import analysis
from hamnet.diagnose.characteristics import BIN_SETS, CHARACTERISTICS, bin_index
from hamnet.diagnose.detection_matching import GroundTruthTable, class_rankings, match_by_class
from hamnet.localize.detections import Detection

from . import slow_reference as slow

CLASSES = ["A", "B", "C"]
THRESHOLDS = np.array([0.1, 0.3, 0.5, 0.7])
# a coarse grid makes equal scores and equal tIoUs common; zero-length spans included
grid = st.integers(0, 20).map(lambda k: 5.0 * k)
span = st.tuples(grid, st.integers(0, 6)).map(lambda p: (p[0], p[0] + 5.0 * p[1]))


@st.composite
def cases(draw):
    videos, detections = [], []
    for v in range(draw(st.integers(1, 4))):
        segs = [
            Segment(*draw(span), draw(st.sampled_from(CLASSES)))
            for _ in range(draw(st.integers(0, 4)))
        ]
        labels = tuple(dict.fromkeys(s.label for s in segs))
        videos.append(Video(f"v{v}", "test", 130.0, labels, tuple(segs)))
    for _ in range(draw(st.integers(0, 25))):
        start, end = draw(span)
        video = f"v{draw(st.integers(0, len(videos)))}"  # the last one has no ground truth
        score = draw(st.sampled_from([0.2, 0.5, 0.5, 0.9]) | st.floats(0, 1))
        detections.append(Detection(video, draw(st.sampled_from(CLASSES)), score, start, end))
    return AnnotationSet(CLASSES, videos), detections


def _table(truth, detections, drop):
    if not any(v.segments for v in truth.videos):
        return None
    return GroundTruthTable.build(truth, detections, None, drop_like_detad=drop)


@settings(max_examples=50, deadline=None)
@given(cases(), st.booleans())
def test_matching_and_error_types_equal_the_loops(case, drop):
    table = _table(*case, drop)
    if table is None:
        return
    assert [r.tolist() for r in class_rankings(table)] == [r.tolist() for r in slow.rankings(table)]
    matched = match_by_class(table, THRESHOLDS)
    assert np.array_equal(matched, slow.match(table, THRESHOLDS))
    everyone = np.arange(table.det_class.size)
    fast = analysis.error_types(table, matched, THRESHOLDS, everyone)
    assert np.array_equal(fast, slow.error_types(table, matched, THRESHOLDS, everyone))


@settings(max_examples=50, deadline=None)
@given(cases())
def test_gains_and_bin_aps_equal_the_compacted_loops(case):
    table = _table(*case, True)
    if table is None or not table.gt_class.size:
        return
    matched = match_by_class(table, THRESHOLDS)
    rankings, npos = class_rankings(table), table.positives()
    limited = [r[: analysis.LIMIT_FACTOR * npos[c]] for c, r in enumerate(rankings)]
    kept = np.concatenate([*limited, np.zeros(0, dtype=np.int64)])
    types = analysis.error_types(table, matched, THRESHOLDS, kept)
    base, gains = analysis._gains_by_removal(table, matched, types, limited, npos)
    for code, name in enumerate(analysis.ERROR_TYPES[1:], start=1):
        per_class = [
            slow.ap_without_type(table, matched, types, r, npos[c], code) if npos[c] else [np.nan]
            for c, r in enumerate(limited)
        ]
        expected = np.nanmean(np.array([np.resize(x, THRESHOLDS.size) for x in per_class]))
        assert gains[name] == pytest.approx(expected - base, abs=1e-12)
    for minimum in (0.05, 0.3):
        fast = analysis._drop_low_precision(table, matched, minimum)
        assert np.array_equal(fast, slow.drop_low_precision(table, matched, minimum))
    nbar, rows = table.average_instances_per_class, analysis._matched_rows(table, matched)
    for c, ranked in enumerate(rankings):
        if npos[c]:
            full = analysis.normalized_ap(matched[ranked] >= 0, npos[c], nbar)
            position, ids = rows[c]
            sparse = analysis.sparse_ap(ids >= 0, np.ones(ids.shape, bool), position, npos[c], nbar)
            assert np.array_equal(sparse, full)  # bit for bit: only exact zeros left out
    for name in CHARACTERISTICS:
        bins = BIN_SETS["activitynet"][name]
        index = bin_index(table.characteristic(name), bins)
        aps, counts = analysis._bin_aps(table, rows, index, len(bins.names), THRESHOLDS.size)
        for c, ranked in enumerate(rankings):
            for b in range(len(bins.names)):
                expected = slow.bin_ap(table, matched, ranked, index == b, c)
                assert counts[c, b] == (
                    0 if expected is None else np.sum((index == b) & (table.gt_class == c))
                )
                if expected is None:
                    assert np.isnan(aps[c, b]).all()
                else:
                    assert np.abs(aps[c, b] - expected).max() <= 1e-12
