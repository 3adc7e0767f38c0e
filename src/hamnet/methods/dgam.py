"""DGAM (Shi, Dai, Mu, Wang, CVPR 2020): weakly-supervised action localization by
generative attention modeling.

Two streams (RGB: the first half of each feature, flow: the second), each an attention
head (Linear-ReLU-Linear-sigmoid) and a linear classifier over C classes + background,
and beside each a conditional VAE that generates the stream's features from its
attention. Training alternates, per stream in blocks of epochs: a VAE phase (the VAE
alone learns to reconstruct features given the frozen attention) and a model phase (the
attention network learns from the foreground / background classification losses, the
self-guided loss, and the frozen VAE's reconstruction of the features from the
attention). Every rule follows the official code
(github:bfshi/DGAM-Weakly-Supervised-Action-Localization @ 752bd45), listed with
file:line in docs/methods.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hamnet.errors import ConfigError
from hamnet.localize.detections import Detection
from hamnet.localize.nms import nms
from hamnet.localize.reference_rules import (
    runs_of_positions,
    uniform_sample_indices,
    upsample_linear,
)
from hamnet.methods.base import (
    Method,
    OptimizerSet,
    StepContext,
    TrainItem,
    VideoOutput,
    softmax,
)

LOSS_TERMS = ("fg", "bg", "guide", "recon", "mse", "kld")
STREAMS = ("rgb", "flow")
VAE_PHASE, MODEL_PHASE = 0, 1

# config.py:104-118 (Adam lr 1e-3, betas (0.8, 0.999), no weight decay, batch 32, 6000
# epochs per stream in blocks of 10), dataset.py:53 (400 training snippets),
# get_detection_performance.py:17 (THUMOS14 mAP at tIoU 0.1:0.9)
PRESETS: dict[str, dict] = {
    "*": {"train": {"lr": 1e-3, "weight_decay": 0.0, "batch_size": 32}},
    "thumos14": {
        "data": {"num_segments": 400},
        "train": {"epochs": 12000},
        "eval": {"tiou": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]},
    },
    "activitynet12": {
        "data": {"num_segments": 400},
        "train": {"epochs": 12000},
        "method_options": {
            "fg_weight_flow": 0.3,
            "bg_weight": 1.0,
            "recon_weight_rgb": 0.1,
            "recon_weight_flow": 0.1,
            "recon_ramp": 0,
            "test_min_snippets": 2,
            "test_max_snippets": 200,
            "ratio_rgb": 0.5,
            "ratio_flow": 0.5,
            "threshold_rgb": 0.01,
            "threshold_flow": 0.01,
            "smooth_sigma": 25.0,
        },
    },
    "demo": {"method_options": {"stream_epochs": 2, "ramp_epochs": 4}},
}


@dataclass
class DgamOptions:
    """Defaults are the official THUMOS14 values (docs/methods.md)."""

    attention_dim: int = 256  # ATT_IM_DIM (model.py:15)
    latent_dim: int = 128  # latent_size (model.py:73)
    stream_epochs: int = 10  # TEST_EVERY_EPOCH: epochs of one stream before the other
    ramp_epochs: int = 300  # min(epoch, 300) / 300 (function.py:76, 155)
    vae_weight: float = 10.0  # function.py:76
    kld_weight: float = 0.1  # loss.py:79
    fg_weight_rgb: float = 1.0
    fg_weight_flow: float = 1.0
    bg_weight: float = 0.03
    guide_weight: float = 0.1
    recon_weight_rgb: float = 0.5
    recon_weight_flow: float = 0.3
    recon_ramp: int = 1  # 1: recon weighted by the ramp (THUMOS14), 0: not (ActivityNet)
    guide_sigma: float = 1.0  # gaussian_filter1d of the guidance (loss.py:47)
    # test (config.py:131-143, dataset.py:55, function.py:194-420)
    test_min_snippets: int = 50
    test_max_snippets: int = 400
    scale: int = 20
    class_threshold: float = 0.1
    ratio_rgb: float = 0.35  # FRAME_SCORE_RATIO_*: own stream's share of the score
    ratio_flow: float = 0.65
    threshold_rgb: float = 0.03  # TEMPSEG_LIST_THR_*
    threshold_flow: float = 0.08
    smooth_sigma: float = 0.0  # ActivityNet: gaussian_filter1d(sigma 25) before the threshold
    outer_weight: float = 0.3
    nms_iou: float = 0.5


# ---- the networks (model.py) -----------------------------------------------------------


class ClassifierHead(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, num_classes + 1)


class AttentionHead(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        """[..., D] -> [...] in (0, 1)."""
        return torch.sigmoid(self.fc2(F.relu(self.fc1(x))))[..., 0]


class StreamModel(nn.Module):
    """WSAL_Model: a classifier over C + 1 (background last) and an attention head."""

    def __init__(self, dim: int, num_classes: int, hidden: int) -> None:
        super().__init__()
        self.clf_head = ClassifierHead(dim, num_classes)
        self.att_head = AttentionHead(dim, hidden)

    def classify(self, x: Tensor) -> Tensor:
        return self.clf_head.fc1(x)


class Mlp3(nn.Module):
    """Three Linear layers with ReLU between (CEncoder / CDecoder)."""

    def __init__(self, width_in: int, width: int, width_out: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width_in, width)
        self.fc2 = nn.Linear(width, width)
        self.fc3 = nn.Linear(width, width_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class ConditionalVAE(nn.Module):
    """Features given attention: encoder (x, a) -> mean, log-variance; decoder (z, a) -> x;
    the prior of z is N(a, I)."""

    def __init__(self, dim: int, latent: int) -> None:
        super().__init__()
        self.latent = latent
        self.cencoder = Mlp3(dim + 1, latent, 2 * latent)
        self.cdecoder = Mlp3(latent + 1, latent, dim)

    def decode(self, z: Tensor, attention: Tensor) -> Tensor:
        return self.cdecoder(torch.cat([z, attention[..., None]], dim=-1))

    def reconstruct(self, x: Tensor, attention: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """mode 'forward' (model.py:128-137): mean, log-variance, decoding of a posterior draw."""
        encoded = self.cencoder(torch.cat([x, attention[..., None]], dim=-1))
        mean, log_var = encoded[..., : self.latent], encoded[..., self.latent :]
        eps = torch.randn(mean.shape, device=mean.device)
        return mean, log_var, self.decode(mean + eps * torch.exp(0.5 * log_var), attention)

    def generate(self, attention: Tensor) -> Tensor:
        """mode 'inference' (model.py:138-143): decoding of z ~ N(attention, I)."""
        noise = torch.randn((*attention.shape, self.latent), device=attention.device)
        return self.decode(noise + attention[..., None], attention)


class DgamNetwork(nn.Module):
    """The official four models in their creation order (train_all.py:67-88): RGB model,
    flow model, RGB VAE, flow VAE (a seed gives the official CPU weights)."""

    def __init__(self, feature_dim: int, num_classes: int, options: DgamOptions) -> None:
        super().__init__()
        half = feature_dim // 2
        self.rgb = StreamModel(half, num_classes, options.attention_dim)
        self.flow = StreamModel(half, num_classes, options.attention_dim)
        self.cvae_rgb = ConditionalVAE(half, options.latent_dim)
        self.cvae_flow = ConditionalVAE(half, options.latent_dim)

    def stream(self, name: str) -> tuple[StreamModel, ConditionalVAE]:
        return getattr(self, name), getattr(self, f"cvae_{name}")

    def forward(self, x: Tensor, mask: Tensor | None = None) -> dict[str, Tensor]:
        """Per stream: attention [B, T], T-CAS without bias (test.py's tCAM) and the
        classifier's logits [B, T, C + 1]; training mode adds what ``losses`` reads."""
        outputs = {}
        for name, part in zip(STREAMS, stream_features(x), strict=True):
            model, cvae = self.stream(name)
            attention = model.att_head(part)
            weight = model.clf_head.fc1.weight
            outputs[f"attention_{name}"] = attention
            outputs[f"tcam_{name}"] = part @ weight.t()
            outputs[f"logits_{name}"] = model.classify(part)
            if self.training:
                outputs.update(training_outputs(name, model, cvae, part, attention, mask))
        return outputs


def training_outputs(name, model, cvae, x, attention, mask) -> dict[str, Tensor]:
    """What :meth:`DgamMethod.losses` reads: the features, the pooled logits [B, C + 1],
    the VAE's mean, log-variance and reconstruction, and its generation from attention."""
    foreground, background = pooled_features(x, attention, valid_weights(x, mask))
    mean, log_var, recon = cvae.reconstruct(x, attention.detach())
    return {
        f"features_{name}": x,
        f"fg_logits_{name}": model.classify(foreground),
        f"bg_logits_{name}": model.classify(background),
        f"vae_{name}": torch.cat([mean, log_var, recon], dim=-1),
        f"generated_{name}": cvae.generate(attention),
    }


def stream_features(x: Tensor) -> tuple[Tensor, Tensor]:
    """RGB = the first half of each feature, flow = the second."""
    half = x.shape[-1] // 2
    return x[..., :half], x[..., half:]


# ---- losses (loss.py, function.py:64-167) ---------------------------------------------


def with_background(labels: Tensor) -> Tensor:
    """The labels with a zero background column (dataset.py:51)."""
    return torch.cat([labels.float(), labels.new_zeros(labels.shape[0], 1).float()], dim=1)


def valid_weights(x: Tensor, mask: Tensor | None) -> Tensor:
    """[B, T, 1]: 1 on real rows (every row of the official fixed-length batches)."""
    if mask is None:
        return x.new_ones(*x.shape[:2], 1)
    return mask.to(x.device, x.dtype)[..., None]


def foreground_loss(logits: Tensor, target: Tensor) -> Tensor:
    """loss_fg: cross-entropy against the labels normalised to sum 1, batch mean."""
    probability = target / target.sum(dim=1, keepdim=True)
    return -(probability * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def background_loss(logits: Tensor) -> Tensor:
    """loss_bg: cross-entropy against the background class (the last), batch mean."""
    return -F.log_softmax(logits, dim=1)[:, -1].mean()


def pooled_features(x: Tensor, attention: Tensor, valid: Tensor) -> tuple[Tensor, Tensor]:
    """function.py:130-131: attention-weighted (+1 in the denominator) and
    (1 - attention)-weighted (+1e-6) means over time."""
    a = attention[..., None] * valid
    b = (1 - attention[..., None]) * valid
    foreground = (x * a).sum(dim=1) / (a.sum(dim=1) + 1)
    background = (x * b).sum(dim=1) / (b.sum(dim=1) + 1e-6)
    return foreground, background


def gaussian_taps(sigma: float) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d's kernel (truncate 4)."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 / sigma**2 * x**2)
    return taps / taps.sum()


def smooth_time(values: np.ndarray, sigma: float) -> np.ndarray:
    """gaussian_filter1d along axis 0, mode 'reflect' (numpy's 'symmetric')."""
    taps = gaussian_taps(sigma)
    radius = len(taps) // 2
    pad = [(radius, radius)] + [(0, 0)] * (values.ndim - 1)
    padded = np.pad(np.asarray(values, dtype=np.float64), pad, mode="symmetric")
    length = values.shape[0]
    return sum(w * padded[k : k + length] for k, w in enumerate(taps))


def smooth_time_torch(values: Tensor, sigma: float) -> Tensor:
    """[B, T, K] smoothed along T as :func:`smooth_time`."""
    taps = gaussian_taps(sigma)
    radius, length = len(taps) // 2, values.shape[1]
    index = np.pad(np.arange(length), radius, mode="symmetric")
    padded = values[:, torch.from_numpy(index).to(values.device)]
    out = torch.zeros_like(values)
    for k, w in enumerate(taps.tolist()):
        out = out + w * padded[:, k : k + length]
    return out


def guide_loss(
    x: Tensor, target: Tensor, attention: Tensor, weight: Tensor, valid: Tensor, sigma: float
) -> Tensor:
    """loss_guide: the softmax of the bias-free T-CAS ``x W^T`` (detached)."""
    return guide_from_tcam((x @ weight.t()).detach(), target, attention, valid, sigma)


def guide_from_tcam(tcam: Tensor, target: Tensor, attention: Tensor, valid, sigma) -> Tensor:
    """loss_guide (loss.py:37-57): the softmax over classes of the T-CAS, smoothed over
    time; mean of |a - its max over the video's classes| + |a - (1 - background)|."""
    with torch.no_grad():
        smoothed = smooth_time_torch(torch.softmax(tcam, dim=2), sigma)
        foreground = (smoothed * target[:, None, :]).max(dim=2)[0]
        background = 1 - smoothed[..., -1]
    gaps = (attention - foreground).abs() + (attention - background).abs()
    return (gaps * valid[..., 0]).sum() / valid.sum()


def squared_error(recon: Tensor, x: Tensor, valid: Tensor) -> Tensor:
    """Mean over rows and features of (x - recon)^2."""
    return ((x - recon).pow(2) * valid).sum() / (valid.sum() * x.shape[-1])


def kl_to_attention(mean: Tensor, log_var: Tensor, attention: Tensor, valid: Tensor) -> Tensor:
    """loss_cvae's KL of N(mean, var) to N(attention, I), mean over rows and latents."""
    shifted = mean - attention[..., None]
    terms = 1 + log_var - shifted.pow(2) - log_var.exp()
    return -0.5 * (terms * valid).sum() / (valid.sum() * mean.shape[-1])


# ---- the test rule (function.py:194-420, utils.py) -------------------------------------


@dataclass
class StreamScores:
    """One stream of one video at test, on its uniformly sampled snippets."""

    attention: np.ndarray  # [N] float32
    tcam: np.ndarray  # [N, C] float32, no bias, background dropped
    probabilities: np.ndarray  # [C]: softmax over C + 1 of the pooled logits, background dropped


def predicted_classes(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    """function.py:237-240: classes above the threshold if any is above 0.1, else the best."""
    if probabilities.max() > 0.1:
        return np.flatnonzero(probabilities > threshold)
    return np.array([int(np.argmax(probabilities))])


def stream_proposals(
    own: StreamScores,
    other: StreamScores,
    classes: np.ndarray,
    ratio: float,
    threshold: float,
    options: DgamOptions,
    seconds_per_point: float,
) -> dict[int, list[tuple[float, float, float]]]:
    """get_wtCAM, interpolation, get_tempseg_list, get_temp_proposal of one stream:
    {class: [(score, start, end)]}."""
    attention = own.attention[:, None]
    weighted = attention * expit32(own.tcam)
    other_weighted = attention * expit32(other.tcam)
    score = attention * (ratio * weighted + (1 - ratio) * other_weighted)
    signal = upsample_linear(weighted[:, classes], options.scale)
    score = upsample_linear(score[:, classes], options.scale)
    fine_attention = upsample_linear(own.attention[:, None], options.scale)[:, 0]
    found = {}
    for column, label in enumerate(classes.tolist()):
        selector = 0.8 * signal[:, column] + 0.2 * fine_attention * fine_attention
        if options.smooth_sigma > 0:
            selector = smooth_time(selector, options.smooth_sigma)
        runs = runs_of_positions(selector > threshold)
        values = score[:, column]
        found[label] = [
            (
                outer_inner_score(values, s, e, options.outer_weight),
                s * seconds_per_point,
                (e + 1) * seconds_per_point,
            )
            for s, e in runs.tolist()
        ]
    return found


def expit32(values: np.ndarray) -> np.ndarray:
    """scipy.special.expit on float32 (float32 out)."""
    values = np.asarray(values, dtype=np.float32)
    return (np.float32(1) / (np.float32(1) + np.exp(-values))).astype(np.float32)


def outer_inner_score(values: np.ndarray, s: int, e: int, weight: float) -> float:
    """utils.py:230-243: the run's mean minus ``weight`` x (left + right outer means),
    each outer part size // 4 + 1 points, cut at the ends (an absent side counts 0)."""
    size, length = e - s + 1, values.shape[0]
    left = float(np.mean(values[max(0, s - size // 4 - 1) : s])) if s > 0 else 0.0
    right = 0.0
    if e < length - 1:
        right = float(np.mean(values[e + 1 : min(length, e + 1 + size // 4 + 1)]))
    return float(np.mean(values[s : e + 1])) - weight * (left + right)


def fuse_streams(
    rgb: dict[int, list], flow: dict[int, list], iou: float
) -> dict[int, list[tuple[float, float, float]]]:
    """integrated_prop: per class predicted by both streams, the union of their distinct
    proposals through hard NMS; a class of one stream keeps its proposals."""
    fused = {}
    for label in sorted(set(rgb) | set(flow)):
        if label in rgb and label in flow:
            rows = np.array(sorted(set(rgb[label]) | set(flow[label])), dtype=np.float64)
            rows = rows.reshape(-1, 3)
            order = np.argsort(-rows[:, 0], kind="stable")
            rows = rows[order]
            kept = nms(rows[:, 1:].astype(np.float32), rows[:, 0].astype(np.float32), iou)
            fused[label] = [tuple(rows[k]) for k in kept]
        else:
            fused[label] = (rgb if label in rgb else flow)[label]
    return fused


def dgam_rule(
    video: str,
    rgb: StreamScores,
    flow: StreamScores,
    classes: list[str],
    length: int,
    snippet_seconds: float,
    options: DgamOptions,
) -> list[Detection]:
    """test_final of the two streams: each stream's classes (a stream whose only class
    is class 0 gives none: ``prediction.any()``), its proposals scored with the other
    stream's T-CAS, fused per class by NMS when both streams have proposals."""
    points = options.scale * rgb.attention.shape[0]
    seconds_per_point = snippet_seconds * length / points
    found = []
    for own, other, ratio, threshold in (
        (rgb, flow, options.ratio_rgb, options.threshold_rgb),
        (flow, rgb, options.ratio_flow, options.threshold_flow),
    ):
        predicted = predicted_classes(own.probabilities, options.class_threshold)
        if not predicted.any():
            found.append(None)
            continue
        args = (ratio, threshold, options, seconds_per_point)
        found.append(stream_proposals(own, other, predicted, *args))
    if found[0] is not None and found[1] is not None:
        proposals = fuse_streams(found[0], found[1], options.nms_iou)
    else:
        proposals = found[0] or found[1] or {}
    return [
        Detection(video, classes[label], float(score), float(start), float(end))
        for label, rows in proposals.items()
        for score, start, end in rows
    ]


def stream_scores(outputs: dict[str, np.ndarray], name: str, rows: np.ndarray) -> StreamScores:
    """A stream's test inputs on the sampled ``rows``: pooled logits
    Σ a·logits / Σ a (function.py:225-228: the classifier of the attention-weighted
    mean feature)."""
    attention = outputs[f"attention_{name}"][rows].astype(np.float32)
    logits = outputs[f"logits_{name}"][rows].astype(np.float64)
    pooled = (attention[:, None] * logits).sum(axis=0) / attention.sum(dtype=np.float64)
    tcam = outputs[f"tcam_{name}"][rows, :-1].astype(np.float32)
    return StreamScores(attention, tcam, softmax(pooled)[:-1])


# ---- sampling (dataset.py, utils.py:103-136, train_all.py:120-135) ---------------------


def random_perturb(length: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """utils.py random_perturb: one index drawn in each of ``count`` equal bins."""
    if count == length:
        return np.arange(count)
    starts = (np.arange(count) * length / count).astype(np.int64)
    rows = np.empty(count, dtype=np.int64)
    rows[:-1] = rng.integers(starts[:-1], starts[1:] + 1)
    last = int(starts[-1])
    rows[-1] = rng.integers(last, length) if last < length - 1 else last
    return rows


def encode_tag(block: int, stream: int, phase: int) -> int:
    return (block * 2 + stream) * 2 + phase


def decode_tag(tag: int) -> tuple[int, int, int]:
    """(block, stream, phase) of a training item."""
    return tag // 4, (tag // 2) % 2, tag % 2


class DgamMethod(Method):
    name = "dgam"
    label = "DGAM"
    loss_terms = LOSS_TERMS
    options_type = DgamOptions
    owns_training_data = True

    def __init__(self, config) -> None:
        super().__init__(config)
        self.seed = config.train.seed

    def build_network(self, num_classes: int) -> DgamNetwork:
        return DgamNetwork(self.config.data.feature_dim, num_classes, self.options)

    def make_optimizer(self, network: DgamNetwork) -> OptimizerSet:
        """One Adam per model and per VAE (train_all.py:91-94; utils.py:53-58)."""
        lr, decay = self.config.train.lr, self.config.train.weight_decay
        parts = {
            "rgb": network.rgb,
            "flow": network.flow,
            "cvae_rgb": network.cvae_rgb,
            "cvae_flow": network.cvae_flow,
        }
        return OptimizerSet(**{k: dgam_adam(m.parameters(), lr, decay) for k, m in parts.items()})

    # ---- sampling ----

    def epoch_batches(self, labels, epoch, seed, batch_size):
        """Epoch ``e`` trains stream ``(e // stream_epochs) % 2`` (RGB first) of block
        ``e // (2 stream_epochs)``; the block's batches (a shuffle, the last partial
        batch dropped) are fixed for its epochs (train_all.py's ``list(train_loader)``);
        each epoch runs them in a new order for the VAE phase, then in another for the
        model phase."""
        self.seed = seed
        count, span = labels.shape[0], self.options.stream_epochs
        if count < batch_size:
            raise ConfigError(
                f"train.batch_size {batch_size} exceeds the {count} training videos "
                "(DGAM drops the last partial batch: no batch would be left)"
            )
        block, stream = epoch // (2 * span), (epoch // span) % 2
        order = np.random.default_rng([seed, block, stream, 5]).permutation(count)
        batches = order[: count // batch_size * batch_size].reshape(-1, batch_size)
        epoch_batches = []
        for phase in (VAE_PHASE, MODEL_PHASE):
            shuffle = np.random.default_rng([seed, epoch, 11 + phase]).permutation(len(batches))
            tag = encode_tag(block, stream, phase)
            epoch_batches += [[TrainItem(int(v), tag) for v in batches[i]] for i in shuffle]
        return epoch_batches

    def training_rows(self, length, item, rng, step):
        """``data.num_segments`` rows by random perturbation, drawn once per block and
        stream (the official samples are drawn once per ``train()`` call)."""
        block, stream, _ = decode_tag(item.tag)
        draw = np.random.default_rng([self.seed, block, stream, item.index, 9])
        return random_perturb(length, self.config.data.num_segments, draw)

    # ---- losses and the step ----

    def ramp(self, block: int) -> float:
        """min(epoch, 300) / 300 with the official epoch counter of the block."""
        epoch = block * self.options.stream_epochs
        return min(epoch, self.options.ramp_epochs) / self.options.ramp_epochs

    def model_weights(self, stream: str, ramp: float) -> dict[str, float]:
        o = self.options
        recon = getattr(o, f"recon_weight_{stream}") * (ramp if o.recon_ramp else 1.0)
        fg = getattr(o, f"fg_weight_{stream}")
        return {"fg": fg, "bg": o.bg_weight, "guide": o.guide_weight, "recon": recon}

    def vae_weights(self, ramp: float) -> dict[str, float]:
        scale = self.options.vae_weight * ramp
        return {"mse": scale, "kld": scale * self.options.kld_weight}

    def model_terms(self, model, cvae, x, labels, valid) -> dict[str, Tensor]:
        """function.py:126-151: the model phase's four terms on one stream."""
        attention = model.att_head(x)
        foreground, background = pooled_features(x, attention, valid)
        target = with_background(labels).to(x.device)
        weight = model.clf_head.fc1.weight.detach()
        sigma = self.options.guide_sigma
        return {
            "fg": foreground_loss(model.classify(foreground), target),
            "bg": background_loss(model.classify(background)),
            "guide": guide_loss(x, target, attention, weight, valid, sigma),
            "recon": squared_error(cvae.generate(attention), x, valid),
        }

    def vae_terms(self, model, cvae, x, valid) -> dict[str, Tensor]:
        """function.py:64-75 and loss_cvae: squared error and KL of one stream."""
        with torch.no_grad():
            attention = model.att_head(x)
        mean, log_var, recon = cvae.reconstruct(x, attention)
        return {
            "mse": squared_error(recon, x, valid),
            "kld": kl_to_attention(mean, log_var, attention, valid),
        }

    def step_terms(self, network, features, labels, mask, tag):
        """The terms of the step of ``tag`` (every term named; the other phase's zero),
        the weighted total, and the optimizer it steps."""
        block, stream_index, phase = decode_tag(tag)
        stream = STREAMS[stream_index]
        model, cvae = network.stream(stream)
        x = stream_features(features)[stream_index]
        valid = valid_weights(x, mask)
        ramp = self.ramp(block)
        if phase == VAE_PHASE:
            terms = self.vae_terms(model, cvae, x, valid)
            weights, optimizer = self.vae_weights(ramp), f"cvae_{stream}"
        else:
            with frozen(cvae):
                terms = self.model_terms(model, cvae, x, labels, valid)
            weights, optimizer = self.model_weights(stream, ramp), stream
        zero = x.new_zeros(())
        enabled = [k for k in LOSS_TERMS if k in self.config.loss.losses]
        total = sum((weights[k] * terms[k] for k in enabled if k in terms), zero)
        return {k: terms.get(k, zero) for k in enabled}, total, optimizer

    def train_step(self, batch, context: StepContext) -> dict[str, Tensor]:
        network = context.network
        if hasattr(network, "module"):
            raise ConfigError("dgam trains in one process (its phases step one model at a time)")
        tags = {item.tag for item in batch.items}
        if len(tags) != 1:
            raise ConfigError(f"dgam: a batch mixes phases {sorted(tags)}")
        terms, total, name = self.step_terms(
            network, batch.features, batch.labels, batch.mask, tags.pop()
        )
        optimizer = context.optimizer[name]
        optimizer.zero_grad(set_to_none=True)
        if total.requires_grad:  # none of this phase's terms enabled: nothing to step
            (total * context.scale).backward()
            optimizer.step()
        terms["total"] = total
        return {k: v.detach() for k, v in terms.items()}

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        """Both phases of both streams at full ramp, from the training-mode outputs
        (the trainer steps the phases apart: ``train_step``)."""
        latent = self.options.latent_dim
        target = with_background(labels).to(outputs["logits_rgb"].device)
        sums: dict[str, Tensor] = {}
        total = target.new_zeros(())
        for name in STREAMS:
            x, attention = outputs[f"features_{name}"], outputs[f"attention_{name}"]
            valid = valid_weights(x, mask)
            vae = outputs[f"vae_{name}"]
            mean, log_var = vae[..., :latent], vae[..., latent : 2 * latent]
            tcam = outputs[f"tcam_{name}"].detach()
            terms = {
                "fg": foreground_loss(outputs[f"fg_logits_{name}"], target),
                "bg": background_loss(outputs[f"bg_logits_{name}"]),
                "guide": guide_from_tcam(tcam, target, attention, valid, self.options.guide_sigma),
                "recon": squared_error(outputs[f"generated_{name}"], x, valid),
                "mse": squared_error(vae[..., 2 * latent :], x, valid),
                "kld": kl_to_attention(mean, log_var, attention.detach(), valid),
            }
            weights = {**self.model_weights(name, 1.0), **self.vae_weights(1.0)}
            for key in self.config.loss.losses:
                sums[key] = sums.get(key, 0.0) + terms[key]
                total = total + weights[key] * terms[key]
        out = {k: sums[k] for k in LOSS_TERMS if k in sums}
        out["total"] = total
        return out

    # ---- test ----

    def localization_source(self) -> str:
        return "attention"

    def test_rows(self, length: int) -> np.ndarray:
        """dataset.py:55 (ActivityNet :107): uniform sampling to the length clipped to
        [test_min_snippets, test_max_snippets] (short videos repeat snippets)."""
        o = self.options
        count = min(max(length, o.test_min_snippets), o.test_max_snippets)
        return uniform_sample_indices(length, count)

    def reference_detections(self, output: VideoOutput, classes: list[str], settings) -> list:
        rgb, flow = (
            StreamScores(
                output.extras[f"attention_{s}"],
                output.extras[f"tcam_{s}"],
                output.extras[f"probabilities_{s}"],
            )
            for s in STREAMS
        )
        return dgam_rule(
            output.name, rgb, flow, classes, output.length, settings.snippet_seconds, self.options
        )

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        """The reference rule's inputs on the sampled rows (``extras``); for the shared
        rule and the figures, the full-length mean of the two streams' attention and
        logits, video scores the mean of their class probabilities."""
        length = outputs["attention_rgb"].shape[0]
        rows = self.test_rows(length)
        extras = {}
        for stream in STREAMS:
            scores = stream_scores(outputs, stream, rows)
            extras[f"attention_{stream}"] = scores.attention
            extras[f"tcam_{stream}"] = scores.tcam
            extras[f"probabilities_{stream}"] = scores.probabilities
        attention = 0.5 * (outputs["attention_rgb"] + outputs["attention_flow"])
        cas = 0.5 * (outputs["logits_rgb"] + outputs["logits_flow"])
        video_scores = 0.5 * (extras["probabilities_rgb"] + extras["probabilities_flow"])
        return VideoOutput(
            name,
            cas,
            attention,
            attention,
            video_scores,
            self.localization_source(),
            attended=cas * attention[:, None],
            extras=extras,
        )


class frozen:
    """requires_grad off on a module's parameters inside the block (function.py:107-110)."""

    def __init__(self, module: nn.Module) -> None:
        self.parameters = list(module.parameters())

    def __enter__(self) -> None:
        for p in self.parameters:
            p.requires_grad_(False)

    def __exit__(self, *exc) -> None:
        for p in self.parameters:
            p.requires_grad_(True)


def dgam_adam(parameters, lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam with betas (0.8, 0.999) (config.py:111); fused where this torch has it."""
    parameters = list(parameters)
    kwargs = {"lr": lr, "betas": (0.8, 0.999), "weight_decay": weight_decay}
    try:
        return torch.optim.Adam(parameters, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(parameters, **kwargs)
