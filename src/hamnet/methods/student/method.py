"""FuSTAL's student (Student-Training/ of github:fqhank/FuSTAL @ 3037b4e): a TriDet
detector trained fully supervised on a teacher's pseudo labels (``RUN/inputs/
pseudo_labels.json``), with FuSTAL's video-level ActionLoss beside TriDet's focal and
DIoU losses, AdamW (decay / no-decay groups) under a per-step linear warm-up + cosine
schedule, gradient clipping, an EMA copy that is tested, and from epoch 62 (1-based)
the EMA's own detections as the targets. Every rule: docs/methods.md, "FuSTAL student".
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from hamnet.errors import ConfigError, DataError
from hamnet.localize.detections import Detection
from hamnet.localize.pseudo_labels import PseudoLabelRules
from hamnet.methods.base import Method, StepContext, TrainItem, VideoOutput, enabled_terms
from hamnet.methods.student import losses as L
from hamnet.methods.student import pseudo
from hamnet.methods.student.network import StudentNetwork, TriDetShape
from hamnet.timing import snippets_per_second

LOSS_TERMS = ("cls", "reg", "action")

# configs/thumos_i3d.yaml: lr 1e-4, weight decay 0.05, batch 8; 101 epochs (0..100:
# train_one_epoch exits at epoch 101)
PRESETS: dict[str, dict] = {
    "*": {
        # cpu_threads 1: a demo step is many small ops; on a shared CPU a second thread
        # makes each wait (0.35 s vs 5-6 s a batch at load ~6 on 2 cores, docs/benchmarks.md)
        "train": {
            "lr": 1e-4,
            "weight_decay": 0.05,
            "batch_size": 8,
            "epochs": 101,
            "cpu_threads": 1,
        },
    },
    "thumos14": {},
    "activitynet12": {},  # FuSTAL ships THUMOS14 only: its values (docs/methods.md)
    "demo": {
        "train": {"epochs": 4, "batch_size": 4, "lr": 1e-3},
        "method_options": {
            "max_seq_len": 128,
            "embd_dim": 32,
            "sgp_mlp_dim": 48,
            "head_dim": 32,
            "distill_after": 2,
            "warmup_epochs": 1,
        },
    },  # fmt: skip
}


# the network's defaults (TriDetShape: config.py + configs/thumos_i3d.yaml), stated once
NETWORK = TriDetShape(input_dim=0, num_classes=0)
FUSTAL_RULES = PseudoLabelRules()  # the pseudo-label selection (hamnet pseudo-label's too)


@dataclass
class StudentOptions:
    # network: TriDetShape's defaults
    max_seq_len: int = NETWORK.max_seq_len
    embd_dim: int = NETWORK.embd_dim
    embd_kernel_size: int = NETWORK.embd_kernel_size
    sgp_mlp_dim: int = NETWORK.sgp_mlp_dim
    sgp_win_size: int = NETWORK.sgp_win_size
    k: float = NETWORK.k
    init_conv_vars: float = NETWORK.init_conv_vars
    head_dim: int = NETWORK.head_dim
    head_kernel_size: int = NETWORK.head_kernel_size
    boundary_kernel_size: int = NETWORK.boundary_kernel_size
    head_num_layers: int = NETWORK.head_num_layers
    num_bins: int = NETWORK.num_bins
    cls_prior_prob: float = NETWORK.cls_prior_prob
    droppath: float = NETWORK.droppath
    input_noise: float = NETWORK.input_noise
    max_buffer_len_factor: float = NETWORK.max_buffer_len_factor
    # losses
    center_sample_radius: float = 1.5
    iou_weight_power: float = 0.2
    init_loss_norm: float = 100.0
    action_dropout: float = 0.7
    # data: truncate_feats, the pseudo-label filter of thumos14.py get_data
    trunc_thresh: float = 0.5
    crop_low: float = 0.9
    crop_high: float = 1.0
    pseudo_min_overlap: float = FUSTAL_RULES.min_overlap_sum
    pseudo_min_score: float = FUSTAL_RULES.min_score
    pseudo_nms_iou: float = FUSTAL_RULES.nms_iou  # CoLA's per-class NMS first; 0: off
    pseudo_merge_iou: float = FUSTAL_RULES.merge_iou  # merge_box after; 0: off
    # optimisation
    clip_grad_l2norm: float = 1.0
    warmup_epochs: int = 1
    schedule_epochs: float = 0.0  # cosine epochs after warm-up; 0: the yaml's +inf
    eta_min: float = 1e-8
    ema_decay: float = 0.999
    # epochs (1-based) after which the EMA's detections are the targets; 0: never
    distill_after: int = 61
    distill_score: float = 0.4
    # test (configs/thumos_i3d.yaml test_cfg over config.py defaults)
    pre_nms_thresh: float = 0.001
    pre_nms_topk: int = 2000
    iou_threshold: float = 0.1
    min_score: float = 0.001
    max_seg_num: int = 2000
    nms_sigma: float = 0.5
    duration_thresh: float = 0.05
    multiclass_nms: int = 1
    voting_thresh: float = 0.7


def shape_of(options: StudentOptions, input_dim: int, num_classes: int) -> TriDetShape:
    names = {f.name for f in dataclasses.fields(TriDetShape)}
    values = {k: v for k, v in dataclasses.asdict(options).items() if k in names}
    return TriDetShape(input_dim=input_dim, num_classes=num_classes, **values)


def warmup_cosine_lrs(base: float, steps: int, warmup: int, total: float, eta_min: float):
    """lr_schedulers.py LinearWarmupCosineAnnealingLR's chainable form for optimizer
    steps 0..steps-1 (step 0 at the warm-up start 0; ``total``: warm-up + cosine steps,
    inf for the yaml's epochs ~ 1e39, where the cosine factor is exactly 1)."""
    lr, out = 0.0, []
    for s in range(steps):
        if s == 0:
            lr = 0.0
        elif s < warmup:
            lr = lr + base / (warmup - 1)
        elif s == warmup:
            lr = base
        elif math.isfinite(total) and (s - 1 - total) % (2 * (total - warmup)) == 0:
            lr = lr + (base - eta_min) * (1 - math.cos(math.pi / (total - warmup))) / 2
        else:
            span = total - warmup
            now = 1 + math.cos(math.pi * (s - warmup) / span) if math.isfinite(span) else 2.0
            before = 1 + math.cos(math.pi * (s - warmup - 1) / span) if math.isfinite(span) else 2.0
            lr = now / before * (lr - eta_min) + eta_min
        out.append(lr)
    return out


def param_groups(net: nn.Module, weight_decay: float) -> list[dict]:
    """train_utils.py make_optimizer: conv / linear weights decay; biases, norms' weights
    and the scale parameters do not; each group sorted by name."""
    decay, no_decay = {}, {}
    for module_name, module in net.named_modules():
        for name, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            is_weight = name == "weight" and isinstance(module, (nn.Conv1d, nn.Linear))
            (decay if is_weight else no_decay)[full] = param
    return [
        {"params": [decay[k] for k in sorted(decay)], "weight_decay": weight_decay},
        {"params": [no_decay[k] for k in sorted(no_decay)], "weight_decay": 0.0},
    ]


def level_outputs(out: dict, b: int) -> dict[str, Tensor]:
    """One video's per-level outputs as flat named tensors with a batch axis of 1."""
    named = {}
    for key in ("cls", "start", "end", "offsets", "mask"):
        for level, value in enumerate(out[key]):
            named[f"{key}_{level}"] = value[b : b + 1]
    return named


class StudentMethod(Method):
    name = "student"
    label = "FuSTAL student"
    loss_terms = LOSS_TERMS
    options_type = StudentOptions
    owns_training_data = True
    stage_input = "pseudo_labels"

    def __init__(self, config) -> None:
        super().__init__(config)
        o = self.options
        if o.max_seq_len % 32:
            raise ConfigError(
                f"method_options.max_seq_len must be a multiple of 32, got {o.max_seq_len}"
            )
        self.rate = snippets_per_second(config.data.snippet_seconds)
        self.pseudo: dict[str, pseudo.PseudoVideo] = {}
        self.durations: dict[str, float] = {}
        self.train_names: list[str] = []
        self.steps_per_epoch = 1
        self.fallback_epoch = -1  # the epoch whose distillation fell back (see train_step)
        self._lrs: list[float] = []

    # ---- inputs ----

    def bind_inputs(self, inputs, annotations) -> None:
        path = inputs["pseudo_labels"]
        found, selected = pseudo.read_pseudo_labels(path, annotations)
        self.pseudo = found  # FuSTAL's selection made already (the file's rules) or here:
        if not selected:
            # the same pseudo_* keys the stage's file was selected with (stages.py)
            rules = PseudoLabelRules.from_options(dataclasses.asdict(self.options))
            self.pseudo = {
                name: pseudo.filter_pseudo(video, rules) for name, video in found.items()
            }
        self.durations = {video.name: float(video.duration) for video in annotations.videos}
        self.train_names = [v.name for v in annotations.subset(self.config.data.train_subset)]
        labelled = {v.name: bool(v.labels) for v in annotations.videos}
        unlabelled = [n for n in self.train_names if n in self.pseudo and not labelled[n]]
        if unlabelled:
            raise DataError(
                f"{path}: training video {unlabelled[0]!r} has pseudo labels but no video-level "
                "label (FuSTAL's ActionLoss needs one)"
            )
        if not any(n in self.pseudo for n in self.train_names):
            raise DataError(
                f"{path}: no pseudo labels for any video of {self.config.data.train_subset!r}"
            )

    def build_network(self, num_classes: int) -> StudentNetwork:
        shape = shape_of(self.options, self.config.data.feature_dim, num_classes)
        return StudentNetwork(shape, self.options.init_loss_norm)

    # ---- training data ----

    def epoch_batches(self, labels, epoch, seed, batch_size):
        """train.py's CoLA loader: the videos with pseudo labels shuffled each epoch,
        batches of ``batch_size``, the last one partial."""
        rows = [i for i, n in enumerate(self.train_names) if n in self.pseudo]
        order = np.random.default_rng([seed, epoch, 23]).permutation(rows)
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        self.steps_per_epoch = max(1, len(batches))
        return [[TrainItem(int(i)) for i in batch] for batch in batches]

    def _grid_targets(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        video = self.pseudo[name]
        return pseudo.to_grid(video.segments, self.rate), video.labels

    def training_rows(self, length, item, rng, step):
        o = self.options
        segments, _ = self._grid_targets(self.train_names[item.index])
        start, end = pseudo.crop_window(
            length, segments, o.max_seq_len, o.trunc_thresh, (o.crop_low, o.crop_high), rng
        )
        return np.arange(start, end)

    def video_targets(self, video, rows, length, item):
        segments, labels = self._grid_targets(video.name)
        start, end = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        segments, labels = pseudo.cropped_targets(
            segments, labels, start, end, length, self.options.trunc_thresh
        )
        return {
            "segments": segments.astype(np.float32).reshape(-1, 2),
            "labels": labels.astype(np.int64),
            "duration": np.array([self.durations[video.name]], dtype=np.float64),
        }

    # ---- optimisation ----

    def make_optimizer(self, network: StudentNetwork) -> torch.optim.AdamW:
        groups = param_groups(network.student, self.config.train.weight_decay)
        return torch.optim.AdamW(groups, lr=self.config.train.lr)

    def learning_rate(self, update: int) -> float:
        """The rate of the ``update``-th optimizer step (0-based)."""
        if update >= len(self._lrs):
            o, per = self.options, self.steps_per_epoch
            warmup = o.warmup_epochs * per
            total = (o.schedule_epochs + o.warmup_epochs) * per if o.schedule_epochs else math.inf
            self._lrs = warmup_cosine_lrs(
                self.config.train.lr, max(2 * update + 1, 64), warmup, total, o.eta_min
            )
        return self._lrs[update]

    def step_losses(self, net: StudentNetwork, out: dict, segments, labels, video_labels):
        """meta_archs.py forward (training): the detection losses with the normaliser
        update (kept in ``net.loss_norm``), plus FuSTAL's ActionLoss."""
        o = self.options
        points = torch.cat(out["points"])
        num_classes = out["cls"][0].shape[-1]
        targets = [
            L.assign_targets(points, s, lab, num_classes, o.center_sample_radius)
            for s, lab in zip(segments, labels, strict=True)
        ]
        terms, normaliser = L.detection_losses(
            out, [t[0] for t in targets], [t[1] for t in targets], float(net.loss_norm),
            o.num_bins, o.iou_weight_power,
        )  # fmt: skip
        net.loss_norm.fill_(normaliser)

        def action() -> Tensor:
            return L.action_loss(out["cls"][0], out["mask"][0], video_labels, o.action_dropout)

        parts = {
            "cls": lambda: terms["cls_loss"],
            "reg": lambda: terms["reg_loss"],
            "action": action,
        }
        weights = dict.fromkeys(LOSS_TERMS, 1.0)
        zero = out["cls"][0].new_zeros(())
        return enabled_terms(parts, weights, LOSS_TERMS, self.config.loss.losses, zero)

    def train_step(self, batch, context: StepContext) -> dict[str, Tensor]:
        net: StudentNetwork = getattr(context.network, "module", context.network)
        device = batch.features.device
        segments = [row["segments"].to(device).float() for row in batch.targets]
        labels = [row["labels"].to(device).long() for row in batch.targets]
        epoch = context.step // self.steps_per_epoch
        if self._distilling(epoch):
            found = self.ema_targets(net, batch)
            if found is None:  # a video without EMA detections: the batch is skipped
                self.fallback_epoch = epoch
                zero = batch.features.new_zeros(())
                return {**dict.fromkeys(self.config.loss.losses, zero), "total": zero}
            segments, labels = found
        with context.autocast():
            out = context.network(batch.features, batch.mask)
        terms = self.step_losses(net, out, segments, labels, batch.labels.float())
        context.optimizer.zero_grad(set_to_none=True)
        (terms["total"] * context.scale).backward()
        if self.options.clip_grad_l2norm > 0:
            nn.utils.clip_grad_norm_(net.student.parameters(), self.options.clip_grad_l2norm)
        lr = self.learning_rate(int(net.updates))
        for group in context.optimizer.param_groups:
            group["lr"] = lr
        context.optimizer.step()
        net.updates += 1
        net.update_ema(self.options.ema_decay)
        return {key: value.detach() for key, value in terms.items()}

    def _distilling(self, epoch: int) -> bool:
        after = self.options.distill_after
        return 0 < after <= epoch and self.fallback_epoch != epoch

    @torch.no_grad()
    def ema_targets(self, net: StudentNetwork, batch):
        """train_utils.py train_one_epoch, epochs > 60: each video's EMA detections (test
        rule, seconds clipped to the video) with score > ``distill_score`` (none: the
        best one) as its targets, back on the grid (negatives 0); None when a video has
        no detection at all."""
        segments, labels = [], []
        for b, row in enumerate(batch.targets):
            length = int(batch.mask[b].sum())
            features = batch.features[b : b + 1, :length]
            mask = torch.ones((1, length), dtype=torch.bool, device=features.device)
            out = net(features, mask, use_ema=True)
            found = self.detect(level_outputs(out, 0), float(row["duration"][0]))
            if len(found["scores"]) == 0:
                return None
            keep = found["scores"] > self.options.distill_score
            if not keep.any():
                keep[np.argmax(found["scores"])] = True
            grid = np.maximum(pseudo.to_grid(found["segments"][keep], self.rate), 0)
            segments.append(torch.from_numpy(grid).to(features.device))
            labels.append(torch.from_numpy(found["labels"][keep]).to(features.device))
        return segments, labels

    # ---- test ----

    def forward(self, network, features, mask):
        raise NotImplementedError("the student's outputs come from forward_test / train_step")

    def losses(self, outputs, labels, mask):
        raise NotImplementedError("the student's losses need its targets: see step_losses")

    def forward_test(self, network, features, targets):
        """The EMA model's heads on one video (every level, batch axis 1)."""
        net = getattr(network, "module", network)
        mask = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        out = net(features, mask, use_ema=True)
        named = level_outputs(out, 0)
        named["length"] = torch.tensor([features.shape[1]], device=features.device)
        return named

    def localization_source(self) -> str:
        return "detector"

    def detect(self, outputs: dict[str, np.ndarray | Tensor], duration: float) -> dict:
        """One video's detections in seconds (the reference's inference_single_video,
        NMS and conversion: :mod:`hamnet.methods.student.postprocess`)."""
        from hamnet.methods.student.postprocess import detect_video

        levels = {key: torch.as_tensor(value) for key, value in outputs.items()}
        return detect_video(levels, self.options, self.rate, duration)

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        """Per snippet the level-0 class probabilities (figures); the video score is
        the ActionLoss's (softmax of the top n // 5 mean logits); the detections ride in
        ``extras``."""
        length = int(outputs["length"]) if "length" in outputs else outputs["mask_0"].shape[0]
        logits = np.asarray(outputs["cls_0"], dtype=np.float64)[:length]
        cas = 1.0 / (1.0 + np.exp(-logits))
        top_k = max(1, length // 5)
        top = np.sort(logits, axis=0)[::-1][:top_k].mean(axis=0)
        video = np.exp(top - top.max())
        found = self.detect(
            {key: value[None] for key, value in outputs.items() if key != "length"},
            self.durations.get(name, length / self.rate),
        )
        return VideoOutput(
            name, cas.astype(np.float32), cas.max(axis=1), cas.max(axis=1),
            video / video.sum(), self.localization_source(),
            extras={key: np.asarray(found[key]) for key in ("segments", "scores", "labels")},
        )  # fmt: skip

    def reference_detections(self, output: VideoOutput, classes, settings) -> list:
        e = output.extras
        return [
            Detection(output.name, classes[int(c)], float(s), float(a), float(b))
            for (a, b), s, c in zip(e["segments"], e["scores"], e["labels"], strict=True)
        ]

    def detections(self, output: VideoOutput, classes, settings) -> list:
        return self.reference_detections(output, classes, settings)
