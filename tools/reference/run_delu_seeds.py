"""Train the official DELU (or CO2-Net) code over several seeds on the CPU; issue 25.

Subcommands:

  data      a small THUMOS14-shaped synthetic root in the released W-TALC layout: from the
            real annotation folder, 3 training (`validation`) videos per class (60) and 30 test
            videos covering every class, then `make_synthetic(like=...)` with 2048-wide
            features (Thumos14reduced-I3D-JOINTFeatures.npy + Thumos14reduced-Annotations/).
  official  copies a checkout (MengyuanChen21/ECCV2022-DELU@a60e46d; with --code co2net
            harlanhong/MM2021-CO2-Net@e879687, a path written but not run yet) to --work,
            patches the copy for the CPU (default tensor type, .cuda(), np.float; wandb and
            tensorboard_logger stubbed), then per seed runs the official setup_seed /
            dataset / model / Adam / train() for --iters iterations and the official test()
            on the final model. Writes --out (and one log per seed): the final average mAP
            (tIoU 0.1:0.9, the official evaluator), the per-tIoU mAPs, each test video's
            largest attention and every iteration's loss dictionary.
  summary   final mAP, mean attention every N iterations and test attention peaks per seed,
            official --out files and hamnet run folders side by side, then each code and
            budget's mean, sample std and range over its seeds (--json: the same as JSON;
            hamnet's per-iteration terms from TensorBoard, else its epoch means).
  replay    hamnet's DELU trained on the official code's own draws, against an official
            seed's logged loss terms, iteration by iteration.
  record-steps  the parity fixture of tests/methods/test_delu_train_steps.py.

The interval tests of main.py are skipped: they consume no random draws (the test loader
walks the test videos in order, the model is in eval mode), so the final model is the one
main.py would train; main.py itself never tests after its last iteration.

  python tools/reference/run_delu_seeds.py data \
      --annotations /tmp/delu-ref/Thumos14reduced-Annotations --out /tmp/delu-seeds-data
  PYTHONPATH=/tmp/delu-seeds-pylib python tools/reference/run_delu_seeds.py official \
      --checkout /tmp/delu-ref --data /tmp/delu-seeds-data --work /tmp/delu-seeds-off \
      --iters 300 --seeds 0,1,2,3,4 --out delu_official_300.json
(pandas, scipy and joblib, which the official code imports, on PYTHONPATH; run with
OMP_NUM_THREADS=1 on a loaded machine: two threads took 39 min for 300 iterations, one 8;
22 min under nice -n 19 at load 8-15, where hamnet's 300 took 13.)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

# scripts/train_thumos.sh (DELU) and run.sh:3 (CO2-Net), less the iteration count,
# the sequence length, the seed and the paths, which the driver sets.
DELU_ARGS = [
    "--model_name",
    "DELU",
    "--alpha_edl",
    "1.3",
    "--alpha_uct_guide",
    "0.4",
    "--amplitude",
    "0.7",
    "--alpha2",
    "0.4",
    "--interval",
    "50",
    "--lr",
    "0.00005",
    "--k",
    "7",
    "--dataset_name",
    "Thumos14reduced",
    "--num_class",
    "20",
    "--use_model",
    "DELU",
    "--dataset",
    "SampleDataset",
    "--weight_decay",
    "0.001",
    "--AWM",
    "BWA_fusion_dropout_feat_v2",
    "--without_wandb",
]
CO2_ARGS = [
    "--lr",
    "0.00005",
    "--k",
    "7",
    "--dataset-name",
    "Thumos14reduced",
    "--num-class",
    "20",
    "--use-model",
    "CO2",
    "--dataset",
    "SampleDataset",
    "--weight_decay",
    "0.001",
    "--model-name",
    "CO2",
    "--AWM",
    "BWA_fusion_dropout_feat_v2",
]
TRAIN_PER_CLASS, TEST_VIDEOS = 3, 30
ALPHA1 = 0.8  # the official loss_dict's norm_loss is alpha1 x the mean attention

STUBS = {
    "wandb.py": "def init(*a, **k):\n    pass\n\n\ndef log(*a, **k):\n    pass\n",
    "tensorboard_logger.py": (
        "class Logger:\n    def __init__(self, *a, **k):\n        pass\n\n"
        "    def log_value(self, *a, **k):\n        pass\n\n\n"
        "def log_value(*a, **k):\n    pass\n"
    ),
}

# Written into the patched copy and run there (its cwd holds the real Ambiguous_test.txt
# under ./Thumos14reduced-Annotations/, which proposal_methods.py opens).
RUNNER = r"""
import json, sys
code = sys.argv.pop(1)  # the official modules parse sys.argv when imported
import numpy as np, torch
import main, options, wsad_dataset, train as train_mod, test as test_mod
import model as model_mod

args = options.parser.parse_args()
main.setup_seed(args.seed)
device = torch.device("cpu")
dataset = getattr(wsad_dataset, args.dataset)(args)
network = getattr(model_mod, args.use_model)
net = network(dataset.feature_size, dataset.num_class, opt=args).to(device)
optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
losses = []
official_criterion = net.criterion

def recording_criterion(*a, **k):
    result = official_criterion(*a, **k)
    terms = result[1] if isinstance(result, tuple) else {"total_loss": result}
    losses.append({name: float(value) for name, value in terms.items()})
    return result

net.criterion = recording_criterion
if code == "co2net":
    import multiprocessing
    logger = main.Logger("./logs/seed")
    for itr in range(args.max_iter):
        train_mod.train(itr, dataset, args, net, optimizer, logger, device)
        print(f"iteration {itr} total {losses[-1]['total_loss']:.6f}", flush=True)
    pool = multiprocessing.Pool(1)
    iou, dmap = test_mod.test(args.max_iter, dataset, args, net, logger, device, pool)
else:
    for itr in range(args.max_iter):
        train_mod.train(itr, dataset, args, net, optimizer, device)
        print(f"iteration {itr} total {losses[-1]['total_loss']:.6f}", flush=True)
    iou, dmap = test_mod.test(args.max_iter, dataset, args, net, device)
peaks = []  # each test video's largest fused attention (eval mode), the final model
net.eval()
with torch.no_grad():
    for i in dataset.testidx:
        video = torch.from_numpy(dataset.features[i]).float()[None]
        out = net(video, is_training=False, seq_len=[video.shape[1]], opt=args)
        peaks.append(float(out["attn"].max()))
print("RESULT " + json.dumps({"seed": args.seed, "iters": args.max_iter,
      "map": [float(x) * 100 for x in dmap], "avg": float(np.mean(dmap)) * 100,
      "attention_peaks": peaks, "losses": losses}))
"""


def make_data(annotations: Path, out: Path, seed: int) -> None:
    """The 60 + 30 video subset of the real annotations, then synthetic features on it."""
    from hamnet.data.annotations import AnnotationSet
    from hamnet.data.released import load_released_annotations, save_released_annotations
    from hamnet.data.synthetic import make_synthetic

    real = load_released_annotations(annotations)
    rng = np.random.default_rng(seed)
    keep = _per_class(real, "validation", TRAIN_PER_CLASS, rng)
    keep |= _covering(real, "test", TEST_VIDEOS, rng)
    videos = [v for v in real.videos if v.name in keep]
    ambiguous = {k: v for k, v in real.ambiguous.items() if k in keep}
    trimmed = out.parent / f"{out.name}-annotations" / "Thumos14reduced-Annotations"
    trimmed.mkdir(parents=True, exist_ok=True)
    subset = AnnotationSet(real.classes, videos, ambiguous, source=str(annotations))
    save_released_annotations(subset, trimmed, duration_2d=True)
    make_synthetic(out, like=trimmed, feature_dim=2048, seed=seed)
    _labels_as_text(out / "Thumos14reduced-Annotations", videos)
    counts = {s: sum(v.subset == s for v in videos) for s in ("validation", "test")}
    print(f"{out}: {counts['validation']} training and {counts['test']} test videos")


def _labels_as_text(folder: Path, videos) -> None:
    """labels.npy, labels_all.npy with str labels, as np.load reads the released (Python 2)
    files: the official code compares them with the decoded class names."""
    lists = {
        "labels": [[s.label for s in v.segments] for v in videos],
        "labels_all": [list(v.labels) for v in videos],
    }
    for name, entries in lists.items():
        array = np.empty(len(entries), dtype=object)
        for i, entry in enumerate(entries):
            array[i] = entry
        np.save(folder / f"{name}.npy", array, allow_pickle=True)


def _per_class(real, subset: str, per_class: int, rng) -> set[str]:
    """``per_class`` distinct videos of ``subset`` naming each class (drawn in order)."""
    chosen: set[str] = set()
    for label in real.classes:
        names = [v.name for v in real.subset(subset) if label in v.labels]
        fresh = [n for n in names if n not in chosen]
        picked = [fresh[i] for i in rng.permutation(len(fresh))[:per_class]]
        chosen.update(picked)
    return chosen


def _covering(real, subset: str, total: int, rng) -> set[str]:
    """One video per class, then random ones up to ``total``."""
    chosen = _per_class(real, subset, 1, rng)
    rest = [v.name for v in real.subset(subset) if v.name not in chosen]
    chosen.update(rest[i] for i in rng.permutation(len(rest))[: total - len(chosen)])
    return chosen


def patch_copy(checkout: Path, work: Path) -> None:
    """A fresh copy of ``checkout`` at ``work`` that runs on the CPU."""
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(checkout, work, ignore=shutil.ignore_patterns(".git"))
    for path in work.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = text.replace("torch.set_default_tensor_type('torch.cuda.FloatTensor')", "")
        text = text.replace(".cuda()", "").replace('torch.device("cuda")', 'torch.device("cpu")')
        text = re.sub(r"np\.float\)", "np.float64)", text)
        path.write_text(text, encoding="utf-8")
    for name, text in STUBS.items():
        (work / name).write_text(text, encoding="utf-8")
    (work / "seed_runner.py").write_text(RUNNER, encoding="utf-8")


def official_argv(code: str, data: Path, iters: int, seqlen: int, seed: int) -> list[str]:
    if code == "co2net":
        return CO2_ARGS + [
            "--path-dataset",
            str(data),
            "--max-iter",
            str(iters),
            "--max-seqlen",
            str(seqlen),
            "--seed",
            str(seed),
        ]
    return DELU_ARGS + [
        "--path_dataset",
        str(data),
        "--max_iter",
        str(iters),
        "--max_seqlen",
        str(seqlen),
        "--seed",
        str(seed),
    ]


def run_seed(work: Path, code: str, argv: list[str], log_path: Path) -> dict:
    """One official training and test; its output goes to ``log_path``."""
    with open(log_path, "w", encoding="utf-8") as log:
        done = subprocess.run(
            [sys.executable, "seed_runner.py", code, *argv],
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    output = log_path.read_text(encoding="utf-8")
    lines = [x for x in output.splitlines() if x.startswith("RESULT ")]
    if done.returncode or not lines:
        sys.exit(f"official run failed ({argv}), see {log_path}:\n{output[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def official_series(result: dict) -> tuple[float, dict[str, list[float]]]:
    """(final average mAP, per-iteration mean attention and total loss) of one official seed."""
    steps = result["losses"]
    attention = [step["norm_loss"] / ALPHA1 for step in steps]
    return result["avg"], {"attention": attention, "total": [s["total_loss"] for s in steps]}


def hamnet_series(run_dir: Path) -> tuple[float, dict[str, list[float]]]:
    """The same of one hamnet run: metrics.jsonl's last record, TensorBoard's per-step terms
    (without TensorBoard: each iteration gets the mean of its epoch, from metrics.jsonl)."""
    records = [json.loads(x) for x in Path(run_dir, "metrics.jsonl").read_text().splitlines()]
    final = 100 * records[-1]["average_mAP"]
    if Path(run_dir, "tensorboard").is_dir():
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(Path(run_dir, "tensorboard")), size_guidance={"scalars": 0})
        events.Reload()
        read = lambda tag: [e.value for e in events.Scalars(f"per_step/loss/{tag}")]  # noqa: E731
        return final, {"attention": read("norm"), "total": read("total")}
    iters = _hamnet_iterations(run_dir)
    epochs = [r for r in records if "loss_total" in r]
    per_epoch = -(-iters // len(epochs))
    spread = lambda key: [epochs[i // per_epoch][key] for i in range(iters)]  # noqa: E731
    return final, {"attention": spread("loss_norm"), "total": spread("loss_total")}


def _hamnet_iterations(run_dir: Path) -> int:
    """train.iterations from the run's config.yaml."""
    text = Path(run_dir, "config.yaml").read_text()
    return int(re.search(r"^\s+iterations:\s*(\d+)", text, re.M).group(1))


def hamnet_peaks(run_dir: Path, data: Path) -> list[float]:
    """Each test video's largest fused attention under the run's last.pt (eval mode)."""
    import torch

    from hamnet.config import config_from_dict
    from hamnet.data.features import PackedFeatureStore
    from hamnet.data.released import load_released_annotations
    from hamnet.methods import make_method

    state = torch.load(Path(run_dir, "last.pt"), map_location="cpu", weights_only=True)
    config = config_from_dict(state["config"])
    annotations = load_released_annotations(data / "Thumos14reduced-Annotations")
    net = make_method(config).build_network(len(state["classes"]))
    net.load_state_dict(state["model"])
    net.eval()
    store = PackedFeatureStore(data / "Thumos14reduced-packed")
    peaks = []
    with torch.no_grad():
        for video in annotations.subset(config.data.test_subset):
            features = torch.from_numpy(np.array(store.read(video.name)))[None]
            peaks.append(float(net(features)["attn"].max()))
    return peaks


def summary(
    official: list[Path], hamnet: list[Path], every: int, data: Path | None, out: Path | None
) -> None:
    """One line per seed: final mAP and the mean attention every ``every`` iterations;
    then the median and largest of the test videos' attention peaks; then each code and
    budget's spread over its seeds. ``out``: the same as JSON."""
    rows = [
        ("official", r["seed"], *official_series(r), r.get("attention_peaks"))
        for f in official
        for r in json.loads(f.read_text())
    ]
    for d in hamnet:
        rows.append(("hamnet", d.name, *hamnet_series(d), data and hamnet_peaks(d, data)))
    records = [_summary_record(*row, every) for row in rows]
    for r in records:
        marks = " ".join(f"{a:.3f}" for a in r["mean_attention"])
        print(
            f"{r['code']:8} {r['iterations']:5} {r['seed']:>6} mAP {r['average_mAP']:6.2f} "
            f"| mean attention {marks}"
        )
        if r["attention_peak_median"] is not None:
            print(
                f"{'':29}| test attention peak median {r['attention_peak_median']:.3f} "
                f"max {r['attention_peak_max']:.3f}"
            )
    spreads = seed_spreads(records)
    for s in spreads:
        print(
            f"{s['code']:8} {s['iterations']:5} seeds {s['seeds']}: "
            f"{s['mean']:.2f} ± {s['std']:.2f} (range {s['min']:.2f}-{s['max']:.2f})"
        )
    if out:
        out.write_text(json.dumps({"runs": records, "spreads": spreads}, indent=1) + "\n")


def _summary_record(code, seed, final, series, peaks, every) -> dict:
    attention = series["attention"]
    return {
        "code": code,
        "seed": str(seed).removeprefix("seed"),
        "iterations": len(attention),  # one logged step per training iteration
        "average_mAP": round(final, 4),
        "mean_attention_every": every,
        "mean_attention": [round(attention[i], 4) for i in range(0, len(attention), every)],
        "attention_peak_median": round(float(np.median(peaks)), 4) if peaks else None,
        "attention_peak_max": round(float(np.max(peaks)), 4) if peaks else None,
    }


def seed_spreads(records: list[dict]) -> list[dict]:
    """Per (code, iterations): the seeds run, mean, sample std (0 for one seed), range."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in records:
        groups.setdefault((r["code"], r["iterations"]), []).append(r)
    spreads = []
    for (code, iters), group in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
        values = np.array([r["average_mAP"] for r in group])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        spreads.append(
            {
                "code": code,
                "iterations": iters,
                "seeds": ",".join(r["seed"] for r in group),
                "mean": round(float(values.mean()), 4),
                "std": round(std, 4),
                "min": float(values.min()),
                "max": float(values.max()),
            }
        )
    return spreads


# the official loss_dict's keys and hamnet's terms (weighted as in the official total)
OFFICIAL_TERMS = {
    "loss_mil_orig": "mil_base",
    "loss_mil_supp": "mil_supp",
    "loss_supp_contrastive": "coactivity",
    "mutual_loss": "mutual",
    "norm_loss": "norm",
    "guide_loss": "guide",
    "edl_loss": "edl",
    "uct_guide_loss": "uct_guide",
    "total_loss": "total",
}


def replay(work: Path, data: Path, official: Path, iters: int) -> None:
    """hamnet's DELU network, terms and optimizer trained on the official code's own draws
    (its SampleDataset.load_data on numpy's global stream, torch's seeded stream for the
    weights and dropout), against the official run's logged terms, iteration by iteration.
    ``work``: a copy patched by ``official`` (for its sampler)."""
    import random

    import torch

    from hamnet.config import make_config
    from hamnet.methods import make_method

    result = json.loads(official.read_text())[0]
    seed, total_iters = result["seed"], result["iters"]
    sys.path.insert(0, str(work))
    import options  # the official modules, from the patched copy
    import wsad_dataset

    args = options.parser.parse_args(official_argv("delu", data, total_iters, 16, seed))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = wsad_dataset.SampleDataset(args)
    overrides = [f"train.iterations={total_iters}", "data.num_segments=16"]
    method = make_method(make_config("thumos14", method="delu", overrides=overrides))
    net = method.build_network(dataset.num_class)
    optimizer = method.make_optimizer(net)
    weights = {**method.weights(), "total": 1.0}
    for itr in range(iters):
        features, labels, _ = dataset.load_data(n_similar=args.num_similar)
        rows = int(np.max(np.sum(np.max(np.abs(features), axis=2) > 0, axis=1)))
        net.train()
        method.set_progress(itr, total_iters)
        outputs = net(torch.from_numpy(features[:, :rows]).float())
        terms = method.losses(outputs, torch.from_numpy(labels).float(), None)
        optimizer.zero_grad()
        terms["total"].backward()
        optimizer.step()
        logged = result["losses"][itr]
        gaps = {
            ours: abs(weights[ours] * float(terms[ours].detach()) - logged[key])
            for key, ours in OFFICIAL_TERMS.items()
        }
        worst = max(gaps, key=gaps.get)
        print(
            f"iteration {itr}: total official {logged['total_loss']:.6f} hamnet "
            f"{float(terms['total'].detach()):.6f}; largest gap {gaps[worst]:.2e} ({worst})",
            flush=True,
        )


STEP_SEED, STEP_ITERS, STEP_SHAPE = 0, 3, (10, 16, 2048)


def step_batch() -> tuple[np.ndarray, np.ndarray]:
    """The recorded training batch: features from ``default_rng(STEP_SEED)``, labels with
    the pairs (0, 1), (2, 3), (4, 5) sharing a class, as the official sampler puts them."""
    rng = np.random.default_rng(STEP_SEED)
    features = rng.standard_normal(STEP_SHAPE).astype(np.float32)
    labels = np.zeros((STEP_SHAPE[0], 20), dtype=np.float32)
    labels[np.arange(10), [3, 3, 7, 7, 12, 12, 0, 5, 9, 19]] = 1
    labels[8, 4] = 1  # one video with two classes
    return features, labels


def record_steps(work: Path, out: Path) -> None:
    """The official DELU's loss_dict over STEP_ITERS training iterations (dropout on, Adam)
    on the fixed batch, from ``setup_seed(STEP_SEED)``: hamnet's parity fixture."""
    import torch

    sys.path.insert(0, str(work))
    sys.argv = ["main.py"]  # the official modules parse sys.argv when imported
    import main as official_main
    import model as official_model
    import options

    args = options.parser.parse_args(official_argv("delu", Path("."), 300, 16, STEP_SEED))
    official_main.setup_seed(STEP_SEED)
    net = official_model.DELU(2048, 20, opt=args)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    features, labels = (torch.from_numpy(a) for a in step_batch())
    steps = []
    for itr in range(STEP_ITERS):
        net.train()
        outputs = net(features, seq_len=np.full(10, 16), is_training=True, itr=itr, opt=args)
        total, terms = net.criterion(
            outputs,
            labels,
            seq_len=np.full(10, 16),
            device="cpu",
            opt=args,
            itr=itr,
            pairs_id=None,
            inputs=features,
        )
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        steps.append({k: float(v) for k, v in terms.items()})
    source = "MengyuanChen21/ECCV2022-DELU@a60e46d, tools/reference/run_delu_seeds.py record-steps"
    fixture = {"source": source, "seed": STEP_SEED, "max_iter": 300, "steps": steps}
    out.write_text(json.dumps(fixture, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {len(steps)} steps, totals {[round(x['total_loss'], 6) for x in steps]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    data = commands.add_parser("data", help="write the synthetic root")
    data.add_argument("--annotations", type=Path, required=True, help="the real folder")
    data.add_argument("--out", type=Path, required=True, help="the root to write")
    data.add_argument("--seed", type=int, default=0, help="subset and feature seed")
    official = commands.add_parser("official", help="train the official code per seed")
    official.add_argument("--checkout", type=Path, required=True, help="the official code")
    official.add_argument("--code", choices=["delu", "co2net"], default="delu")
    official.add_argument("--data", type=Path, required=True, help="the synthetic root")
    official.add_argument("--work", type=Path, required=True, help="patched copy (replaced)")
    official.add_argument("--iters", type=int, default=300, help="--max_iter")
    official.add_argument("--seqlen", type=int, default=16, help="--max_seqlen")
    official.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated")
    official.add_argument("--out", type=Path, required=True, help="JSON of all seeds")
    table = commands.add_parser("summary", help="final mAP and attention curve per seed")
    table.add_argument("--official", type=Path, nargs="*", default=[], help="--out files")
    table.add_argument("--hamnet", type=Path, nargs="*", default=[], help="run folders")
    table.add_argument("--every", type=int, default=25, help="iterations between marks")
    table.add_argument("--data", type=Path, help="the root (hamnet runs' test attention)")
    table.add_argument("--json", type=Path, help="also write the runs and spreads here")
    again = commands.add_parser("replay", help="hamnet trained on the official draws")
    again.add_argument("--work", type=Path, required=True, help="a patched copy")
    again.add_argument("--data", type=Path, required=True, help="the synthetic root")
    again.add_argument("--official", type=Path, required=True, help="one seed's --out")
    again.add_argument("--iters", type=int, default=20, help="iterations to replay")
    steps = commands.add_parser("record-steps", help="the parity fixture of 3 steps")
    steps.add_argument("--work", type=Path, required=True, help="a patched copy")
    steps.add_argument("--out", type=Path, required=True, help="the fixture to write")
    args = parser.parse_args()
    if args.command == "record-steps":
        record_steps(args.work, args.out)
        return
    if args.command == "replay":
        replay(args.work, args.data.resolve(), args.official, args.iters)
        return
    if args.command == "summary":
        summary(args.official, args.hamnet, args.every, args.data, args.json)
        return
    if args.command == "data":
        make_data(args.annotations, args.out, args.seed)
        return
    patch_copy(args.checkout, args.work)
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        argv = official_argv(args.code, args.data.resolve(), args.iters, args.seqlen, seed)
        log_path = args.out.with_name(f"{args.out.stem}_seed{seed}.log")
        results.append(run_seed(args.work, args.code, argv, log_path))
        print(json.dumps({k: results[-1][k] for k in ("seed", "iters", "avg")}), flush=True)
        args.out.write_text(json.dumps(results), encoding="utf-8")


if __name__ == "__main__":
    main()
