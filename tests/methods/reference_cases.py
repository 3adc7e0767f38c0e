"""Seeded inputs and weights for the reference-parity fixtures (tests/methods/fixtures).

Each case gives weights in the reference network's own state-dict layout (names and
shapes of its released code) and features, all from ``numpy.random.RandomState(seed)``,
so the fixture's recorded reference outputs can be checked against hamnet anywhere
(the reference codes are not run in CI). ``*_to_hamnet`` maps the names.
"""

from __future__ import annotations

import numpy as np
import torch

SEED = 16


def _normal(rng: np.random.RandomState, shape, scale: float) -> np.ndarray:
    return (rng.randn(*shape) * scale).astype(np.float32)


def _videos(rng, count: int, low: int, high: int, dim: int) -> list[np.ndarray]:
    lengths = rng.randint(low, high, size=count)
    return [(_normal(rng, (n, dim), 0.5) + _normal(rng, (1, dim), 1.0)) for n in lengths]


def wtalc_case(seed: int = SEED) -> dict:
    """W-TALC model.py Model(16, 5): fc, fc1 (unused by forward), classifier; 6 test
    videos; a training batch laid out as released (3 class-sharing pairs first)."""
    rng = np.random.RandomState(seed)
    dim, classes = 16, 5
    weights = {
        "fc.weight": _normal(rng, (dim, dim), 0.4),
        "fc.bias": _normal(rng, (dim,), 0.1),
        "fc1.weight": _normal(rng, (dim, dim), 0.4),
        "fc1.bias": _normal(rng, (dim,), 0.1),
        "classifier.weight": _normal(rng, (classes, dim), 0.6),
        "classifier.bias": _normal(rng, (classes,), 0.1),
    }
    videos = _videos(rng, 6, 12, 140, dim)
    labels = np.zeros((10, classes), dtype=np.float32)
    for pair in range(3):
        shared = rng.randint(classes)
        labels[2 * pair : 2 * pair + 2, shared] = 1
        labels[2 * pair, rng.randint(classes)] = 1
    for row in range(6, 10):
        labels[row, rng.randint(classes)] = 1
    lengths = rng.randint(20, 60, size=10)
    batch = np.zeros((10, 60, dim), dtype=np.float32)
    for row, n in enumerate(lengths):
        batch[row, :n] = _normal(rng, (n, dim), 1.0)
    return {
        "weights": weights,
        "videos": videos,
        "batch": batch,
        "labels": labels,
        "lengths": lengths,
        "classes": [f"class{c}" for c in range(classes)],
    }


def wtalc_to_hamnet(weights: dict) -> dict:
    return {
        "embed.0.weight": weights["fc.weight"],
        "embed.0.bias": weights["fc.bias"],
        "classifier.weight": weights["classifier.weight"],
        "classifier.bias": weights["classifier.bias"],
    }


def basnet_case(seed: int = SEED) -> dict:
    """BaS-Net model.py BaS_Net(8, 20, 750) (hidden 2048 and filter 512 fixed there);
    3 test videos (sampled to 750 at test time); a training batch of 2 x 750."""
    rng = np.random.RandomState(seed)
    dim, classes = 8, 20
    weights = {
        "filter_module.conv_1.0.weight": _normal(rng, (512, dim, 1), 0.3),
        "filter_module.conv_1.0.bias": _normal(rng, (512,), 0.1),
        "filter_module.conv_2.0.weight": _normal(rng, (1, 512, 1), 0.05),
        "filter_module.conv_2.0.bias": _normal(rng, (1,), 0.1),
        "cas_module.conv_1.0.weight": _normal(rng, (2048, dim, 3), 0.2),
        "cas_module.conv_1.0.bias": _normal(rng, (2048,), 0.05),
        "cas_module.conv_2.0.weight": _normal(rng, (2048, 2048, 3), 0.015),
        "cas_module.conv_2.0.bias": _normal(rng, (2048,), 0.05),
        "cas_module.conv_3.0.weight": _normal(rng, (classes + 1, 2048, 1), 0.6),
    }
    videos = _videos(rng, 3, 300, 1400, dim)
    labels = np.zeros((2, classes), dtype=np.float32)
    labels[0, 3] = labels[1, 7] = labels[1, 11] = 1
    batch = _normal(rng, (2, 750, dim), 1.0)
    return {
        "weights": weights,
        "videos": videos,
        "batch": batch,
        "labels": labels,
        "classes": BASNET_CLASSES,
    }


BASNET_MODULES = {
    "filter.0": "filter_module.conv_1.0",
    "filter.2": "filter_module.conv_2.0",
    "classifier.0": "cas_module.conv_1.0",
    "classifier.2": "cas_module.conv_2.0",
    "classifier.5": "cas_module.conv_3.0",
}


def basnet_to_hamnet(weights: dict) -> dict:
    out = {}
    for ours, theirs in BASNET_MODULES.items():
        for kind in ("weight", "bias"):
            if f"{theirs}.{kind}" in weights:
                out[f"{ours}.{kind}"] = weights[f"{theirs}.{kind}"]
    return out


def stpn_case(seed: int = SEED) -> dict:
    """STPN model.py (TensorFlow variables, kernels [in, out]): 1024-wide features,
    20 classes, 2 test videos (sampled to 400), a training batch of 3 x 400."""
    rng = np.random.RandomState(seed)
    dim, classes = 1024, 20
    weights = {
        "Attention/dense/kernel": _normal(rng, (dim, 256), 0.05),
        "Attention/dense/bias": _normal(rng, (256,), 0.1),
        "Attention/dense_1/kernel": _normal(rng, (256, 1), 0.1),
        "Attention/dense_1/bias": np.float32([0.5]),
        "Classification/class_weight/kernel": _normal(rng, (dim, classes), 0.08),
        "Classification/class_weight/bias": _normal(rng, (classes,), 0.5),
    }
    videos = _videos(rng, 2, 100, 400, dim)
    labels = np.zeros((3, classes), dtype=np.float32)
    labels[0, 2] = labels[1, 5] = labels[2, 5] = labels[2, 9] = 1
    batch = _normal(rng, (3, 400, dim), 0.5)
    return {
        "weights": weights,
        "videos": videos,
        "batch": batch,
        "labels": labels,
        "classes": BASNET_CLASSES,
    }


def stpn_to_hamnet(weights: dict) -> dict:
    """TensorFlow kernels are [in, out]; torch Linear weights [out, in]."""
    names = {
        "attention.0": "Attention/dense",
        "attention.2": "Attention/dense_1",
        "classifier": "Classification/class_weight",
    }
    out = {}
    for ours, theirs in names.items():
        out[f"{ours}.weight"] = np.ascontiguousarray(weights[f"{theirs}/kernel"].T)
        out[f"{ours}.bias"] = weights[f"{theirs}/bias"]
    return out


def as_tensors(weights: dict) -> dict:
    return {name: torch.from_numpy(np.ascontiguousarray(value)) for name, value in weights.items()}


# THUMOS14's 20 classes in index order (the class names both references hard-code)
BASNET_CLASSES = [
    "BaseballPitch",
    "BasketballDunk",
    "Billiards",
    "CleanAndJerk",
    "CliffDiving",
    "CricketBowling",
    "CricketShot",
    "Diving",
    "FrisbeeCatch",
    "GolfSwing",
    "HammerThrow",
    "HighJump",
    "JavelinThrow",
    "LongJump",
    "PoleVault",
    "Shotput",
    "SoccerPenalty",
    "TennisSwing",
    "ThrowDiscus",
    "VolleyballSpiking",
]


def threecnet_case(seed: int = SEED, classes: int = 6) -> dict:
    """3C-Net model.py Model(2048, classes) (its forward slices at 1024: the width is
    fixed) and its two CenterLoss centers; 8 test videos; a zero-padded training batch
    of 6 (single- and multi-label videos, instance counts); ``classes=100`` is the
    ActivityNet model (temporal conv)."""
    rng = np.random.RandomState(seed)
    half = 1024
    weights = {}
    for name in ("fc_f", "fc1_f", "fc_r", "fc1_r"):
        weights[f"{name}.weight"] = _normal(rng, (half, half), 0.04)
        weights[f"{name}.bias"] = _normal(rng, (half,), 0.02)
    for name in ("classifier_f", "classifier_r"):
        weights[f"{name}.weight"] = _normal(rng, (classes, half), 0.08)
        weights[f"{name}.bias"] = _normal(rng, (classes,), 0.05)
    if classes == 100:
        weights["conv.weight"] = np.abs(_normal(rng, (classes, 1, 13), 0.3))
    weights["mul_r"] = 1 + _normal(rng, (classes,), 0.1)
    weights["mul_f"] = 1 + _normal(rng, (classes,), 0.1)
    centers = {"f": _normal(rng, (classes, half), 0.5), "r": _normal(rng, (classes, half), 0.5)}
    videos = _videos(rng, 8, 12, 120, 2 * half)
    lengths = rng.randint(8, 40, size=6)
    batch = np.zeros((6, int(lengths.max()), 2 * half), dtype=np.float32)
    for row, n in enumerate(lengths):
        batch[row, :n] = _normal(rng, (n, 2 * half), 0.7)
    labels = np.zeros((6, classes), dtype=np.float32)
    counts = np.zeros((6, classes), dtype=np.float32)
    for row in range(6):
        for c in rng.choice(classes, size=1 + row % 2, replace=False):
            labels[row, c] = 1
            counts[row, c] = 1 + rng.randint(3)
    return {
        "weights": weights,
        "centers": centers,
        "videos": videos,
        "batch": batch,
        "lengths": lengths,
        "labels": labels,
        "counts": counts,
        "classes": [f"class{c}" for c in range(classes)],
    }


def threecnet_to_hamnet(weights: dict, centers: dict) -> dict:
    """The official names are hamnet's; the centers join the network."""
    return {**weights, "centers_f": centers["f"], "centers_r": centers["r"]}


# ---- ActivityNet-1.2-shaped inputs for CO2-Net's and DELU's official ANet code -------

ANET_SEED = 12
ANET_LENGTHS = (7, 10, 11, 26, 45, 64, 97)  # the first two: dropped by the official filter
ANET_EMPTY = 3  # the video with an empty label list


def anet_case(seed: int = ANET_SEED) -> dict:
    """2048-wide features, 100 classes: test videos of ``ANET_LENGTHS`` snippets (each a
    per-video offset plus noise, a class pattern on a span) and a training batch of
    10 x 60 (max_seqlen) laid out as released: 3 class-sharing pairs first."""
    rng = np.random.RandomState(seed)
    dim, classes = 2048, 100
    patterns = _normal(rng, (classes, dim), 1.0)
    videos, labels, spans = [], [], []
    for i, n in enumerate(ANET_LENGTHS):
        x = _normal(rng, (n, dim), 0.5) + _normal(rng, (1, dim), 0.5)
        label = [] if i == ANET_EMPTY else sorted({int(c) for c in rng.randint(classes, size=2)})
        own = []
        for c in label:
            first = rng.randint(n)
            stop = min(n, first + max(1, n // 3))
            x[first:stop] += patterns[c]
            own.append((c, first, stop))
        videos.append(x)
        labels.append(label)
        spans.append(own)
    batch_labels = np.zeros((10, classes), dtype=np.float32)
    for pair in range(3):
        batch_labels[2 * pair : 2 * pair + 2, rng.randint(classes)] = 1
        batch_labels[2 * pair, rng.randint(classes)] = 1
    for row in range(6, 10):
        batch_labels[row, rng.randint(classes)] = 1
    batch = _normal(rng, (10, 60, dim), 0.5) + _normal(rng, (10, 1, dim), 0.5)
    return {
        "videos": videos,
        "labels": labels,
        "spans": spans,  # (class, first, stop) snippets of each pattern
        "patterns": patterns,
        "names": [f"v_anet{i}" for i in range(len(videos))],
        "batch": batch,
        "batch_labels": batch_labels,
        "classes": [f"class{c:03d}" for c in range(classes)],
    }


def pmil_case(seed: int = SEED, classes: int = 5, dim: int = 64) -> dict:
    """P-MIL model.py P_MIL (feature_size ``dim``, roi 12) in its own state-dict layout;
    a training batch of 4 and 5 test videos, each with proposals in snippets (2 decimals,
    as dataset.py rounds them)."""
    rng = np.random.RandomState(seed)
    half, embed = dim // 2, dim // 4
    weights = {}
    for stream in ("v", "f"):
        base = f"prop_{stream}_backbone"
        weights[f"{base}.prop_fusion.0.weight"] = _normal(rng, (half, 3 * half), 0.15)
        weights[f"{base}.prop_fusion.0.bias"] = _normal(rng, (half,), 0.05)
        for head, out in (
            ("prop_classifier", classes + 1),
            ("prop_attention", 1),
            ("prop_completeness", 1),
        ):
            weights[f"{base}.{head}.0.weight"] = _normal(rng, (embed, half, 1), 0.3)
            weights[f"{base}.{head}.0.bias"] = _normal(rng, (embed,), 0.05)
            weights[f"{base}.{head}.2.weight"] = _normal(rng, (out, embed, 1), 0.4)
            weights[f"{base}.{head}.2.bias"] = _normal(rng, (out,), 0.05)

    def proposals(length: int) -> np.ndarray:
        count = rng.randint(3, 40)
        start = rng.uniform(0, length * 0.9, size=count)
        end = np.minimum(start + rng.uniform(1, length * 0.4, size=count), length)
        return np.round(np.stack([start, end], axis=1), 2).astype(np.float32)

    def videos(count):
        feats = _videos(rng, count, 30, 120, dim)
        return feats, [proposals(len(f)) for f in feats]

    train_feats, train_props = videos(4)
    test_feats, test_props = videos(5)
    labels = np.zeros((4, classes), dtype=np.float32)
    for row in range(4):
        labels[row, rng.choice(classes, size=1 + row % 2, replace=False)] = 1
    return {
        "weights": weights,
        "train_features": train_feats,
        "train_proposals": train_props,
        "labels": labels,
        "test_features": test_feats,
        "test_proposals": test_props,
        "classes": [f"class{c}" for c in range(classes)],
    }


# ---- DGAM (github:bfshi/DGAM-Weakly-Supervised-Action-Localization @ 752bd45) ----------

DGAM_HALF = 1024  # config.py FEATURE_DIM: each stream's width is fixed
DGAM_TRAIN_SEGMENTS = 400  # function.py:31: training batches are 400 snippets
DGAM_THUMOS_LENGTHS = (20, 45, 64, 130, 260, 420)
DGAM_ANET_LENGTHS = (1, 5, 37, 150, 260, 90, 180, 320, 600)


def _dgam_stream(rng, classes: int, directions, actionness) -> dict:
    """One WSAL_Model whose classifier and attention read the case's directions, and its
    CVAE at the scale of PyTorch's default init."""
    half, hidden, latent = DGAM_HALF, 256, 128
    clf = np.concatenate([4 * directions, -2 * actionness[None]]) + _normal(
        rng, (classes + 1, half), 0.02
    )
    weights = {
        "clf_head.fc1.weight": clf.astype(np.float32),
        "clf_head.fc1.bias": _normal(rng, (classes + 1,), 0.05),
        "att_head.fc1.weight": (
            actionness[None] * rng.uniform(1.5, 3.5, size=(hidden, 1))
            + _normal(rng, (hidden, half), 0.02)
        ).astype(np.float32),
        "att_head.fc1.bias": (-1 + _normal(rng, (hidden,), 0.3)).astype(np.float32),
        "att_head.fc2.weight": rng.uniform(0.0, 0.02, size=(1, hidden)).astype(np.float32),
        "att_head.fc2.bias": np.array([-2.5], dtype=np.float32),
    }
    layers = {
        "cencoder.fc1": (half + 1, latent),
        "cencoder.fc2": (latent, latent),
        "cencoder.fc3": (latent, 2 * latent),
        "cdecoder.fc1": (latent + 1, latent),
        "cdecoder.fc2": (latent, latent),
        "cdecoder.fc3": (latent, half),
    }
    vae = {}
    for name, (fan_in, fan_out) in layers.items():
        bound = 1 / np.sqrt(fan_in)
        vae[f"{name}.weight"] = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        vae[f"{name}.bias"] = rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)
    return {"model": weights, "cvae": vae}


def _dgam_video(rng, length: int, labels: list[int], directions, actionness) -> np.ndarray:
    """Noise, and in one to three segments per label the class and actionness
    directions at a varying amplitude (the two streams' halves drawn apart)."""
    halves = []
    for _ in range(2):
        x = _normal(rng, (length, DGAM_HALF), 0.05)
        for c in labels:
            for _ in range(1 + rng.randint(3)):
                start = rng.randint(length)
                end = min(length, start + 1 + rng.randint(max(1, length // 4)))
                amplitude = rng.uniform(0.3, 1.6, size=(end - start, 1))
                x[start:end] += (amplitude * 1.5 * (directions[c] + actionness)).astype(np.float32)
        halves.append(x)
    return np.concatenate(halves, axis=1).astype(np.float32)


def dgam_case(seed: int = SEED, classes: int = 20) -> dict:
    """DGAM's four official models (model.py WSAL_Model x2, CVAE x2) with weights that
    read class and actionness directions of the features; test videos of the lengths
    above (THUMOS14; ``classes=100``: ActivityNet's), one of them of class 0 alone; a
    training batch of 3 videos of 400 snippets."""
    rng = np.random.RandomState(seed)
    unit = lambda v: (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)  # noqa: E731
    directions = unit(rng.randn(classes, DGAM_HALF))
    actionness = unit(rng.randn(DGAM_HALF))
    streams = {s: _dgam_stream(rng, classes, directions, actionness) for s in ("rgb", "flow")}
    lengths = DGAM_ANET_LENGTHS if classes == 100 else DGAM_THUMOS_LENGTHS
    video_labels = [[0]] + [
        sorted(rng.choice(classes, size=1 + i % 2, replace=False).tolist())
        for i in range(len(lengths) - 1)
    ]
    videos = [
        _dgam_video(rng, n, lab, directions, actionness)
        for n, lab in zip(lengths, video_labels, strict=True)
    ]
    train_labels = [[1], [2, 5], [7]]
    batch = np.stack(
        [_dgam_video(rng, DGAM_TRAIN_SEGMENTS, lab, directions, actionness) for lab in train_labels]
    )
    labels = np.zeros((3, classes), dtype=np.float32)
    for row, lab in enumerate(train_labels):
        labels[row, lab] = 1
    return {
        "streams": streams,
        "videos": videos,
        "video_labels": video_labels,
        "batch": batch,
        "labels": labels,
        "classes": [f"class{c}" for c in range(classes)],
    }


def dgam_to_hamnet(streams: dict) -> dict:
    """The official models' names under hamnet's ``rgb.`` / ``flow.`` / ``cvae_*.``."""
    out = {}
    for stream, parts in streams.items():
        out.update({f"{stream}.{k}": v for k, v in parts["model"].items()})
        out.update({f"cvae_{stream}.{k}": v for k, v in parts["cvae"].items()})
    return out


# ---- CMCS: three official BackboneNets (rgb, flow, both), THUMOS14's 20 classes + bg ----

CMCS_SEED = 22


def _cmcs_stream(rng, in_width: int, outputs: int) -> dict:
    """One BackboneNet state dict (configs/thumos-I3D.json: 32, 4 x (16, k3), 16);
    scales large enough for peaked softmaxes (classes above the 0.1 threshold)."""
    weights = {
        "base.base_conv_0.weight": _normal(rng, (32, in_width, 1), 0.06),
        "base.base_conv_0.bias": _normal(rng, (32,), 0.1),
    }
    for b in range(4):
        weights[f"cls_bottoms.{b}.cls_b{b}_conv_0.weight"] = _normal(rng, (16, 32, 3), 0.3)
        weights[f"cls_bottoms.{b}.cls_b{b}_conv_0.bias"] = _normal(rng, (16,), 0.1)
    for b in range(4):
        weights[f"cls_heads.{b}.weight"] = _normal(rng, (outputs, 16), 0.9)
        weights[f"cls_heads.{b}.bias"] = _normal(rng, (outputs,), 0.3)
    weights["att_bottom.att_conv_0.weight"] = _normal(rng, (16, 32, 1), 0.4)
    weights["att_bottom.att_conv_0.bias"] = _normal(rng, (16,), 0.1)
    weights["att_head.weight"] = _normal(rng, (1, 16), 0.8)
    weights["att_head.bias"] = _normal(rng, (1,), 0.1)
    return weights


def cmcs_case(seed: int = CMCS_SEED, classes: int = 20) -> dict:
    """Weights of the official rgb / flow (1024 wide) and both (2048) models, 6 test
    videos of 3-60 snippets (features made of a few class-like patterns, so the T-CAS
    has runs), and a training batch of items: (video, label tag) with the multi-label
    video split, and one static-clip item (tag = classes, the background)."""
    rng = np.random.RandomState(seed)
    outputs = classes + 1
    weights = {
        "rgb": _cmcs_stream(rng, 1024, outputs),
        "flow": _cmcs_stream(rng, 1024, outputs),
        "both": _cmcs_stream(rng, 2048, outputs),
    }
    patterns = _normal(rng, (4, 2048), 1.0)
    videos = []
    for length in (3, 9, 17, 28, 41, 60):
        pick = rng.randint(0, 4, size=length)
        pick = np.sort(pick) if length > 20 else pick
        videos.append(patterns[pick] + _normal(rng, (length, 2048), 0.6))
    labels = np.zeros((4, classes), dtype=np.float32)
    labels[0, 3] = labels[1, [5, 11]] = labels[2, 0] = labels[3, 7] = 1
    train = [videos[i] for i in (2, 3, 4, 5)]
    items = [(0, 3), (1, 5), (1, 11), (2, 0), (3, classes)]  # (video, tag)
    static = np.zeros(60, dtype=bool)
    static[[2, 3, 4, 20, 21, 40, 41, 42, 43]] = True
    return {
        "weights": weights,
        "videos": videos,
        "train": train,
        "labels": labels,
        "items": items,
        "static_rows": np.flatnonzero(static),
        "classes": [f"class{c}" for c in range(classes)],
    }


# ---- ActivityNet-1.2-shaped data for CO2-Net's and DELU's training draws ---------------

ANET_DRAWS_SEED = 25
ANET_DRAWS_NAME = "ActivityNet1.2"


def anet_draws_case(seed: int = ANET_DRAWS_SEED) -> dict:
    """100 classes, 260 ``training`` videos (each class in at least two, about a third of
    them of at most 10 snippets) and 12 ``validation`` videos spread among them in file
    order, 4-wide features (the draws read only lengths and labels; column 0 holds the
    video's position in the file, so that a drawn batch of features names its videos)."""
    rng = np.random.RandomState(seed)
    classes, train_count, test_count = 100, 260, 12
    slots = rng.permutation(2 * classes)  # video slots[2c], slots[2c + 1] hold class c
    labels = [[int(np.flatnonzero(slots == i)[0]) // 2] for i in range(2 * classes)]
    for _ in range(train_count - 2 * classes):
        labels.append(sorted({int(c) for c in rng.randint(classes, size=rng.randint(1, 3))}))
    short = rng.rand(train_count) < 0.35
    lengths = np.where(short, rng.randint(1, 11, train_count), rng.randint(11, 200, train_count))
    subsets = ["training"] * train_count + ["validation"] * test_count
    order = rng.permutation(train_count + test_count)
    test_labels = [[int(rng.randint(classes))] for _ in range(test_count)]
    all_labels = [*labels, *test_labels]
    all_lengths = [*lengths.tolist(), *rng.randint(1, 200, test_count).tolist()]
    return {
        "classes": [f"class{c:03d}" for c in range(classes)],
        "names": [f"v_draw{i:03d}" for i in range(len(order))],
        "subsets": [subsets[i] for i in order],
        "labels": [all_labels[i] for i in order],
        "lengths": [int(all_lengths[i]) for i in order],
        "features": [
            _tagged(_normal(rng, (all_lengths[i], 4), 1.0), k) for k, i in enumerate(order)
        ],
    }


def _tagged(features: np.ndarray, position: int) -> np.ndarray:
    """Column 0 set to the video's file position: a batch of features names its videos."""
    features[:, 0] = position
    return features


def write_anet_draws_root(case: dict, root) -> None:
    """The released layout of ``case`` under ``root``: ``ActivityNet1.2-Annotations/``
    (``labels_all`` as ``str`` lists, as ActivityNet-1.2's file is: the official
    classwise_feature_mapping compares them to decoded class names) and the features."""
    from pathlib import Path

    from hamnet.data.annotations import AnnotationSet, Segment, Video
    from hamnet.data.released import save_released_annotations

    root = Path(root)
    folder = root / f"{ANET_DRAWS_NAME}-Annotations"
    folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for name, subset, labels, n in zip(
        case["names"], case["subsets"], case["labels"], case["lengths"], strict=True
    ):
        duration = n * 16 / 25
        names = tuple(case["classes"][c] for c in labels)
        spans = tuple(Segment(0.0, duration / 2, label) for label in names)
        videos.append(Video(name, subset, duration, names, spans))
    save_released_annotations(AnnotationSet(case["classes"], videos), folder)
    text = np.empty(len(videos), dtype=object)
    for i, video in enumerate(videos):
        text[i] = list(video.labels)
    np.save(folder / "labels_all.npy", text, allow_pickle=True)
    features = np.empty(len(videos), dtype=object)
    for i, array in enumerate(case["features"]):
        features[i] = array
    np.save(root / f"{ANET_DRAWS_NAME}-I3D-JOINTFeatures.npy", features, allow_pickle=True)
