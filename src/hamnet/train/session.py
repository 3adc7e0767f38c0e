"""What one training run holds while it runs, and how it is opened: data, network,
optimizer, DDP wrapping, feature placement."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from hamnet.config import Config
from hamnet.data import resident as resident_data
from hamnet.data.dataset import VideoDataset
from hamnet.data.layout import open_dataset
from hamnet.errors import DataError
from hamnet.methods import inputs as stage_inputs
from hamnet.methods import make_method
from hamnet.methods.base import Method
from hamnet.train import distributed as dist_utils
from hamnet.train import iterations, selection
from hamnet.train.tensorboard import TrainingLog

log = logging.getLogger(__name__)


@dataclass
class Session:
    """Everything one training run holds while it runs."""

    config: Config
    run_dir: Path
    annotations: object
    store: object
    train_set: VideoDataset
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    dist: dist_utils.DistInfo
    method: Method
    records: list[dict] = field(default_factory=list)
    start_epoch: int = 0
    best: float = float("-inf")
    tensorboard: TrainingLog = field(default_factory=TrainingLog)
    heldout: list[str] = field(default_factory=list)  # videos kept out for select_on=heldout
    placement: str = "stream"
    resident: resident_data.ResidentTrainSet | None = None  # placement "device"
    test_features: resident_data.ResidentFeatures | None = None
    started: float = field(default_factory=time.perf_counter)
    checkpoint_seconds: float = 0.0
    checkpoint_writes: int = 0
    saved_epoch: int = 0  # the epoch last.pt holds
    snapshot: dict | None = None  # the last finished epoch's state when last.pt is older
    metrics_written: float = float("-inf")  # when metrics.jsonl/.csv were last written
    loop_started: float | None = None  # when the first epoch of this process began

    @property
    def net(self) -> torch.nn.Module:
        """The bare network (DDP unwrapped)."""
        return getattr(self.model, "module", self.model)


def open_session(
    config: Config, data_root: Path, run_dir: Path, device: torch.device, info
) -> Session:
    annotations, store, _ = open_dataset(
        data_root,
        feature_dim=config.data.feature_dim,
        name=config.data.name,
        snippet_seconds=config.data.snippet_seconds,
    )
    heldout: list[str] = []
    if config.train.select_on == "heldout":
        annotations, heldout = selection.split_heldout(
            annotations, config.data.train_subset, config.train.heldout_fraction
        )
    train_set = VideoDataset(
        annotations,
        store,
        config.data.train_subset,
        num_segments=config.data.num_segments,
        sampling=config.data.sampling,
        seed=config.train.seed,
    )
    config = iterations.with_iterations(config, len(train_set))
    torch.manual_seed(config.train.seed)
    method = make_method(config)
    stage_inputs.bind(method, run_dir, annotations)
    train_set.use_method(method)
    model = method.build_network(annotations.num_classes).to(device)
    optimizer = method.make_optimizer(model)
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(model, device_ids=ids)
    run_dir.mkdir(parents=True, exist_ok=True)
    session = Session(
        config, run_dir, annotations, store, train_set, model, optimizer, device, info, method
    )
    session.heldout = heldout
    place_features(session)
    return session


def place_features(session: Session) -> None:
    """Load the training and test features onto the device when the placement says so."""
    config, store = session.config, session.store
    if session.method.owns_training_data:
        # its own rows and targets come through the dataset: features stream
        log.info("%s owns its training data: features stream from the store", config.method)
        return
    try:
        test = session.annotations.subset(config.data.test_subset)
    except DataError:
        test = []  # a wrong test subset: the checks before training say so in one line
    test_names = [v.name for v in test if v.labels]
    names = [v.name for v in session.train_set.videos] + test_names
    plan = resident_data.plan_placement(
        config.data.placement, config.data.resident_dtype, store, names, session.device
    )
    if session.dist.is_main:
        log.info(plan.message)
    session.placement = plan.mode
    if plan.mode == "device":
        features = resident_data.ResidentFeatures(store, names, session.device, plan.dtype)
        session.resident = resident_data.ResidentTrainSet(session.train_set, features)
        session.test_features = features
