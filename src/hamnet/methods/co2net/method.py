"""CO2-Net (Hong, Fu, Wu, Lin, ACM MM 2021), equal to its official code (harlanhong/
MM2021-CO2-Net @ e879687): network and terms in :mod:`hamnet.methods.co2net.network`,
the test-time rule (``localize.rules=reference``) in :mod:`hamnet.methods.co2net.rule`,
sources in docs/methods.md.

Total loss (model.py:143-147): ``mil_base + mil_supp + a3 coactivity + a4 mutual +
a1 norm + a2 guide`` (``norm``, ``guide``: means over the fused and the two modality
attentions). ``PRESETS``: the values the official run.sh sets.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from hamnet.errors import ConfigError
from hamnet.localize.detections import Detection
from hamnet.methods.base import ClassPairs, Method, VideoOutput, enabled_terms
from hamnet.methods.co2net.network import Co2Network, co2_terms
from hamnet.methods.co2net.rule import (
    NUMPY_RULES,
    classification_scores,
    reference_detections,
    video_scores,
)

log = logging.getLogger(__name__)

SIMILAR_PAIRS = 3  # n_similar, options.py: pairs of videos sharing a class per batch
LOSS_TERMS = ("mil_base", "mil_supp", "coactivity", "mutual", "norm", "guide")
# numpy.linspace(0.1, 0.9, 10): proposal_methods.py:109
CO2_THRESHOLDS = [float(x) for x in np.linspace(0.1, 0.9, 10)]


@dataclass
class Co2Options:
    alpha1: float = 0.8  # norm
    alpha2: float = 0.8  # guide
    alpha3: float = 1.0  # co-activity
    alpha4: float = 1.0  # mutual
    pool_kernel: int = 0  # ActivityNet: 13 = (max_seqlen // t) // 2 * 2 + 1 with t = 5
    # ActivityNet: 10, the official AntSampleDataset.filter drops videos of at most 10
    # snippets (wsad_dataset.py:268-281); under localize.rules=reference they give no
    # detections (their ground truth still counts, as in the official mAP) and are not
    # drawn at random in training (the class-paired draws still may: see class_pairs)
    short_video: int = 0
    # the numpy whose promotion rules the reference rule's arithmetic follows: 1, as the
    # official requirements.txt pins (numpy 1.21.6), or 2 (the official code run under
    # numpy >= 2); the detections do not depend on the numpy installed (see rule.py)
    numpy_rules: int = 1


def official_presets(thresholds: list[float], options: object) -> dict:
    """CO2-Net's and DELU's common values: batch 10, dropout 0.7, their test rule."""
    anet = {
        "data": {"num_segments": 60},
        "model": {"smoothing": False, "dropout": 0.7},
        "loss": {"topk_ratio_inv": 5},
        "train": {"lr": 3e-5, "weight_decay": 5e-4, "iterations": 22000},
    }
    return {
        "*": {
            "method_options": dataclasses.asdict(options),
            "model": {"attention_dim": 512, "dropout": 0.7},
            "train": {"batch_size": 10},
            "localize": {
                "class_thresh": 0.2,
                "thresholds": thresholds,
                "outer_ratio": 0.25,
                "video_score_weight": 0.2,
                "nms": "soft",
                "sigma": 0.3,
            },
        },
        "thumos14": {
            "data": {"num_segments": 500},
            "loss": {"topk_ratio_inv": 7},
            "train": {"lr": 5e-5, "weight_decay": 1e-3, "iterations": 5000},
        },
        "activitynet12": anet,
        "demo": {"model": {"attention_dim": 32}},
    }


PRESETS = official_presets(CO2_THRESHOLDS, Co2Options())
PRESETS["activitynet12"]["method_options"] = {"pool_kernel": 13, "short_video": 10}


class Co2NetMethod(Method):
    name = "co2net"
    label = "CO2-Net"
    loss_terms = LOSS_TERMS
    options_type = Co2Options
    test_options = ("numpy_rules",)
    min_snippets = 0  # DELU: 1 (test.py:61 keeps t_end - t_start > 1)
    # test.py scores every video of the test subset, labelled or not
    # (wsad_dataset.py:62-69 puts each one in testidx; THUMOS14's video_test_0000270)
    reference_scores_unlabelled = True

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if config.train.batch_size < 2 * SIMILAR_PAIRS:
            raise ConfigError(
                f"train.batch_size {config.train.batch_size}: {cls.label}'s class-paired "
                f"batches hold {SIMILAR_PAIRS} pairs; use at least {2 * SIMILAR_PAIRS}"
            )
        rules = config.method_options.get("numpy_rules", 1)
        if rules not in NUMPY_RULES:
            raise ConfigError(
                f"method_options.numpy_rules={rules!r}: {cls.label}'s reference rule follows "
                "numpy 1's promotion rules (1, the official pinned numpy) or numpy 2's (2)"
            )
        if config.data.feature_dim % 2:
            raise ConfigError(
                f"data.feature_dim={config.data.feature_dim}: method {cls.name!r} splits the "
                "features into RGB and flow halves, so the width must be even"
            )

    def build_network(self, num_classes: int) -> Co2Network:
        config = self.config
        return Co2Network(
            config.data.feature_dim,
            num_classes,
            attention_dim=config.model.attention_dim,
            dropout=config.model.dropout,
            pool_kernel=int(self.options.pool_kernel),
        )

    def weights(self) -> dict[str, float]:
        o = self.options
        return {
            "mil_base": 1.0,
            "mil_supp": 1.0,
            "coactivity": o.alpha3,
            "mutual": o.alpha4,
            "norm": o.alpha1,
            "guide": o.alpha2,
        }

    def terms(self, outputs: dict, labels: Tensor) -> dict:
        return co2_terms(outputs, labels, self.config.loss.topk_ratio_inv)

    def losses(self, outputs: dict, labels: Tensor, mask: Tensor | None) -> dict[str, Tensor]:
        # training items all have data.num_segments rows (the official max_seqlen); the
        # official terms take no mask, nor does hamnet's version of them
        terms = self.terms(outputs, labels)
        zero = outputs["cas"].new_zeros((), dtype=outputs["cas"].float().dtype)
        return enabled_terms(terms, self.weights(), self.loss_terms, self.config.loss.losses, zero)

    def video_output(self, name: str, outputs: dict[str, np.ndarray]) -> VideoOutput:
        cas, attention = outputs["cas"], outputs["attn"].astype(np.float32)
        product = cas.astype(np.float32) * attention[:, None]
        return VideoOutput(
            name,
            cas,
            attention,
            attention,
            video_scores(cas, attention).astype(np.float64),
            self.localization_source(),
            attended=product[:, :-1],
            classification_scores=classification_scores(cas),
        )

    def reference_tests(self, output: VideoOutput) -> bool:
        """ActivityNet: the official test leaves out videos of at most ``short_video``
        snippets (wsad_dataset.py:268-280), for classification too."""
        return output.length > int(self.options.short_video)

    def reference_detections(
        self, output: VideoOutput, classes: list[str], settings
    ) -> list[Detection]:
        """The official test's detections of one video (seconds = snippets x
        ``data.snippet_seconds``), without the detections on the video's Ambiguous spans
        (``settings.ambiguous``; none known: no filter); none for a video of at most
        ``short_video`` snippets (ActivityNet's filter)."""
        cfg, seconds = self.config.localize, settings.snippet_seconds
        if not self.reference_tests(output):
            return []
        spans = (settings.ambiguous or {}).get(output.name, [])
        found = reference_detections(
            output.cas,
            output.attention,
            thresholds=np.asarray(cfg.thresholds, dtype=np.float64),
            class_thresh=cfg.class_thresh,
            outer_ratio=cfg.outer_ratio,
            gamma=cfg.video_score_weight,
            sigma=cfg.sigma,
            ambiguous=list(spans),
            snippets_per_second=25 / 16 if seconds == 0.64 else 1.0 / seconds,
            min_snippets=self.min_snippets,
            numpy_rules=int(self.options.numpy_rules),
        )
        return [
            Detection(output.name, classes[c], score, start * seconds, end * seconds)
            for c, score, start, end in found
        ]

    def class_pairs(self) -> ClassPairs:
        """The official sampler (wsad_dataset.py:81-113): 3 classes drawn with
        replacement, two distinct videos of each first, then videos drawn from all.
        ActivityNet under ``localize.rules=reference``: videos of at most ``short_video``
        snippets are not drawn at random, the pairs may still draw them (AntSampleDataset
        filters ``trainidx`` after ``classwise_feature_mapping``, wsad_dataset.py:261-281;
        its load_data, 301-330, draws the pairs from the per-class lists)."""
        reference = self.config.localize.rules == "reference"
        short = int(self.options.short_video) if reference else 0
        return ClassPairs(SIMILAR_PAIRS, distinct=True, short_video=short)

    def before_reference_test(self, ambiguous: dict) -> None:
        """The official test filters Ambiguous_test.txt's spans on THUMOS14; say so when
        the dataset has none rather than skipping silently."""
        if not ambiguous and self.config.data.name.lower().startswith("thumos"):
            log.warning(
                "%s: the dataset has no Ambiguous_test.txt spans; the official test removes "
                "detections that overlap them, this test cannot",
                self.name,
            )
