"""Runs you can trust: devices, run.json, honest model selection, run-side faults.

Each fault goes through the CLI (exit code, one error line, nothing overwritten) where
a user would meet it; a few library-level checks pin the pieces.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from hamnet.cli import main
from hamnet.config import make_config
from hamnet.data.layout import open_dataset
from hamnet.data.released import save_released_annotations
from hamnet.devices import resolve_device
from hamnet.errors import CheckpointError, ConfigError
from hamnet.train.selection import heldout_names
from hamnet.train.trainer import train
from hamnet.weights.checkpoint import load_checkpoint, save_checkpoint


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    shown = [line.split("\r")[-1] for line in err.split("\n")]  # what a terminal keeps
    lines = [x for x in shown if x.strip() and not x.startswith(("INFO", "WARNING"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("hamnet: error: "), err
    assert "Traceback" not in err
    return lines[0]


def train_args(root, run_dir, overrides, *extra) -> list:
    sets = [arg for item in overrides for arg in ("--set", item)]
    return ["train", "--preset", "demo", "--data", root, "--run-dir", run_dir, *sets, *extra]


def variant_root(tiny_root: Path, out: Path, *, videos=None, features=None) -> Path:
    """A copy of ``tiny_root`` with edited annotations and/or features (npy folder)."""
    annotations, store, files = open_dataset(tiny_root)
    if videos is not None:
        annotations = dataclasses.replace(annotations, videos=videos(annotations.videos))
    save_released_annotations(annotations, out / files.annotations_dir.name)
    folder = out / f"{files.name}-features"
    folder.mkdir(parents=True)
    for name in store.names:
        array = store.read(name)
        if features is not None:
            array = features(name, array)
        np.save(folder / f"{name}.npy", array)
    return out


def first_test_video(tiny_root: Path) -> str:
    annotations, _, _ = open_dataset(tiny_root)
    return next(v.name for v in annotations.subset("test") if v.labels)


# --- devices ------------------------------------------------------------------------------


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_device_names_resolve(two_gpus, monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda", rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:1", rank=0) == torch.device("cuda", 1)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == torch.device("cuda", 1)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gpu", "unknown device"),
        ("cuda:x", "unknown device"),
        ("meta", "not supported"),
        ("cuda:2", "CUDA device 2 asked for, but only 2 visible"),
    ],
)
def test_impossible_devices_are_config_errors(two_gpus, name, message):
    with pytest.raises(ConfigError, match=message):
        resolve_device(name)


def test_a_rank_past_the_last_gpu_is_named(two_gpus):
    with pytest.raises(ConfigError, match="CUDA device 3 asked for"):
        resolve_device("cuda", rank=3)


def test_cuda_without_cuda(no_cuda):
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")


def test_extraction_uses_the_same_helper(two_gpus):
    from hamnet.extract.shards import DistContext, rank_device

    assert rank_device("cuda", DistContext(rank=1, world_size=2, local_rank=1)) == "cuda:1"
    with pytest.raises(ConfigError, match="unknown device"):
        rank_device("gpu", DistContext())


@pytest.mark.parametrize("device", ["gpu", "cuda", "cuda:7"])
def test_every_command_gives_one_line_for_a_wrong_device(
    capsys, no_cuda, tiny_root, tiny_overrides, tmp_path, device
):
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, *train_args(tiny_root, run, tiny_overrides), "--set", f"train.device={device}"
    )
    assert code == 2 and device in one_error_line(err)
    assert not (run / "last.pt").exists()
    ckpt = tmp_path / "fake.pt"  # the device is checked before the checkpoint is read
    for argv in (
        ["test", "--checkpoint", ckpt, "--data", tiny_root, "--out", tmp_path / "d.json"],
        ["predict", "--checkpoint", ckpt, "--features", tiny_root],
        ["extract", tmp_path / "video.mp4", "--out", tmp_path / "store"],
    ):
        code, _, err = run_cli(capsys, *argv, "--device", device)
        assert code == 2 and f"device {device!r}" in one_error_line(err)


# --- run.json and the data fingerprint ---------------------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_root, tiny_overrides):
    run = tmp_path_factory.mktemp("finished") / "run"
    train(make_config("demo", "all", tiny_overrides), tiny_root, run, progress=False)
    return run


def test_run_json_records_command_versions_device_data_and_times(finished_run, tiny_root):
    info = json.loads((finished_run / "run.json").read_text())
    assert info["status"] == "finished" and info["device"] == "cpu" and info["device_name"]
    assert {"hamnet", "python", "torch", "numpy", "cuda"} <= set(info["software"])
    assert info["command"] == list(sys.argv)
    assert info["data"]["root"] == str(Path(tiny_root).resolve())
    fingerprint = info["data"]["fingerprint"]
    assert {"videoname.npy", "segments.npy", "classlist.npy"} <= set(fingerprint["annotations"])
    assert fingerprint["features"]["kind"] == "packed"
    assert set(fingerprint["features"]["index"]) >= {"bytes", "sha256"}
    assert set(fingerprint["features"]["data"]) >= {"bytes", "sampled_sha256"}
    session = info["sessions"][0]
    assert session["started"] <= session["ended"] and session["wall_seconds"] > 0
    assert (session["from_epoch"], session["to_epoch"]) == (0, 2)
    assert info["result"]["average_mAP"] == pytest.approx(
        json.loads((finished_run / "metrics.jsonl").read_text().splitlines()[-1])["average_mAP"]
    )
    assert info["selection"]["select_on"] == "none"


def test_resume_on_other_features_stops_with_one_line(capsys, tiny_root, tiny_overrides, tmp_path):
    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    other = variant_root(tiny_root, tmp_path / "other", features=lambda n, a: a * 1.01)
    before = (run / "last.pt").read_bytes()
    more = [*tiny_overrides, "train.epochs=3"]
    code, _, err = run_cli(capsys, *train_args(other, run, more, "--resume"))
    line = one_error_line(err)
    assert code == 2 and "data differ from the run's start" in line and "features" in line
    assert (run / "last.pt").read_bytes() == before
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, more, "--resume"))
    assert code == 0, err


def test_test_json_records_its_inputs(capsys, finished_run, tiny_root, tmp_path):
    out = tmp_path / "result.json"
    code, _, err = run_cli(
        capsys,
        "test",
        "--checkpoint",
        finished_run / "last.pt",
        "--data",
        tiny_root,
        "--out",
        tmp_path / "det.json",
        "--json",
        out,
    )
    assert code == 0, err
    record = json.loads(out.read_text())
    provenance = record["provenance"]
    assert record["selected_on"] == "none"
    assert provenance["checkpoint"]["sha256"] and provenance["checkpoint"]["epoch"] == 2
    assert provenance["data"]["fingerprint"]["annotations"]["videoname.npy"]["sha256"]
    assert {"hamnet", "torch"} <= set(provenance["software"]) and provenance["device"] == "cpu"
    assert provenance["command"][0] and provenance["wall_seconds"] >= 0


# --- model selection ---------------------------------------------------------------------


def test_heldout_split_is_deterministic_and_never_empty():
    names = [f"video_{i:03d}" for i in range(50)]
    held = heldout_names(names, 0.1)
    assert len(held) == 5 and held == heldout_names(list(reversed(names)), 0.1)
    assert len(heldout_names(names[:3], 0.01)) == 1 and len(heldout_names(names[:3], 0.99)) == 2


def test_default_run_selects_nothing_and_writes_no_best(finished_run):
    assert not (finished_run / "best.pt").exists()
    record = load_checkpoint(finished_run / "last.pt")
    assert "selection" not in record


def test_select_on_heldout_keeps_videos_out_and_says_so(
    capsys, tiny_root, tiny_overrides, tmp_path
):
    run = tmp_path / "run"
    sets = [
        *tiny_overrides,
        "train.epochs=3",
        "train.select_on=heldout",
        "train.eval_every=1",
        "train.heldout_fraction=0.25",
    ]
    code, out, err = run_cli(capsys, *train_args(tiny_root, run, sets))
    assert code == 0, err
    assert "selected on held-out training videos" in out
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all("heldout_average_mAP" in row for row in rows)
    assert "average_mAP" not in rows[0] and "average_mAP" in rows[-1]  # test: final only
    best = load_checkpoint(run / "best.pt")
    assert best["selection"]["select_on"] == "heldout"
    assert best["selection"]["split"] == "validation-heldout"
    epoch = best["selection"]["epoch"]
    assert best["selection"]["value"] == max(r["heldout_average_mAP"] for r in rows)
    assert rows[epoch - 1]["heldout_average_mAP"] == best["selection"]["value"]
    info = json.loads((run / "run.json").read_text())
    assert info["selection"]["heldout_videos"] >= 1
    assert info["result"]["selected_on"] == "heldout" and info["result"]["epoch"] == epoch
    # the training set lacks the held-out videos
    from hamnet.train.selection import split_heldout

    annotations, _, _ = open_dataset(tiny_root)
    _, held = split_heldout(annotations, "validation", 0.25)
    assert len(held) == info["selection"]["heldout_videos"]


def test_select_on_test_is_flagged_everywhere(capsys, tiny_root, tiny_overrides, tmp_path):
    run = tmp_path / "run"
    sets = [*tiny_overrides, "train.select_on=test", "train.eval_every=1"]
    code, out, err = run_cli(capsys, *train_args(tiny_root, run, sets))
    assert code == 0, err
    assert "[selected on test]" in out and "selected on test" in (run / "results.md").read_text()
    assert "test" in (run / "results.csv").read_text().splitlines()[1].split(",")[-1]
    best = load_checkpoint(run / "best.pt")
    assert (
        best["selection"]["select_on"] == "test" and "selected on test" in best["selection"]["note"]
    )
    result = tmp_path / "best.json"
    code, out, err = run_cli(
        capsys,
        "test",
        "--checkpoint",
        run / "best.pt",
        "--data",
        tiny_root,
        "--out",
        tmp_path / "det.json",
        "--json",
        result,
    )
    assert code == 0 and json.loads(result.read_text())["selected_on"] == "test"
    assert "model selection: best.pt selected on test" in out
    code, out, _ = run_cli(capsys, "table", result)
    assert "[selected on test]" in out


def test_select_on_needs_an_evaluation_schedule():
    with pytest.raises(ConfigError, match="eval_every"):
        make_config("demo", "all", ["train.select_on=heldout"])


# --- faults of the run folder ------------------------------------------------------------


def test_two_trainings_in_one_folder_the_second_stops(tiny_root, tiny_overrides, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "hamnet.cli",
        *map(str, train_args(tiny_root, run, [*tiny_overrides, "train.epochs=2000"])),
    ]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: (run / "metrics.jsonl").is_file())
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        line = one_error_line(second.stderr)
        assert f"pid {first.pid}" in line and "another hamnet process" in line
        assert first.poll() is None  # the first run goes on, untouched
    finally:
        first.kill()
        first.wait()


def test_kill_9_then_resume_continues_exactly(tiny_root, tiny_overrides, tmp_path):
    sets = [*tiny_overrides, "train.epochs=30"]
    straight = tmp_path / "straight"
    train(make_config("demo", "all", sets), tiny_root, straight, progress=False)
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "hamnet.cli", *map(str, train_args(tiny_root, run, sets))]
    victim = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for(lambda: (run / "last.pt").is_file())
    victim.kill()  # SIGKILL: no handler runs, the lock file and temporaries stay behind
    victim.wait()
    assert (run / ".lock").is_file()
    (run / ".last.pt.k1ll3d_x.tmp").write_bytes(b"half a checkpoint")
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not list(run.glob(".*.tmp"))
    resumed, plain = load_checkpoint(run / "last.pt"), load_checkpoint(straight / "last.pt")
    assert all(torch.equal(resumed["model"][k], plain["model"][k]) for k in plain["model"])
    info = json.loads((run / "run.json").read_text())
    statuses = [s["status"] for s in info["sessions"]]
    assert statuses[-1] == "finished" and statuses[0] in ("killed (no end recorded)", "finished")


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_resume_on_a_missing_folder_says_it_starts_fresh(
    capsys, caplog, tiny_root, tiny_overrides, tmp_path
):
    run = tmp_path / "new"
    code, _, _ = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides, "--resume"))
    assert code == 0 and "nothing to resume (no such folder); starting fresh" in caplog.text
    caplog.clear()
    (run / "last.pt").unlink()  # as if killed in epoch 1
    code, _, _ = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides, "--resume"))
    assert code == 0 and "stopped in epoch 1" in caplog.text and "starting fresh" in caplog.text


def test_flipped_bits_in_last_pt_are_one_line_for_test_and_resume(
    capsys, tiny_root, tiny_overrides, tmp_path
):
    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    data = bytearray((run / "last.pt").read_bytes())
    data[data.find(b"data/0") + 300] ^= 0x08  # inside the first tensor's bytes
    (run / "last.pt").write_bytes(bytes(data))
    code, _, err = run_cli(
        capsys,
        "test",
        "--checkpoint",
        run / "last.pt",
        "--data",
        tiny_root,
        "--out",
        tmp_path / "det.json",
    )
    assert code == 2 and "checksum mismatch" in one_error_line(err)
    assert not (tmp_path / "det.json").exists()
    more = [*tiny_overrides, "train.epochs=3"]
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, more, "--resume"))
    assert code == 2 and "checksum mismatch" in one_error_line(err)
    assert (run / "last.pt").read_bytes() == bytes(data)


def test_checkpoints_without_checksum_still_load(tmp_path):
    from hamnet.weights.checkpoint import CHECKSUM_KEY

    save_checkpoint(
        tmp_path / "new.pt",
        {"model": {"w": torch.ones(2)}, "config": {}, "classes": [], "epoch": 1},
    )
    record = torch.load(tmp_path / "new.pt", weights_only=True)
    assert len(record.pop(CHECKSUM_KEY)) == 64
    torch.save(record, tmp_path / "old.pt")
    assert torch.equal(load_checkpoint(tmp_path / "old.pt")["model"]["w"], torch.ones(2))


def test_every_flipped_byte_is_caught_or_harmless(tmp_path):
    model = torch.nn.Linear(8, 4)
    payload = {"model": model.state_dict(), "config": {"a": 1}, "classes": ["x"], "epoch": 1}
    save_checkpoint(tmp_path / "c.pt", payload)
    original = (tmp_path / "c.pt").read_bytes()
    rng = np.random.default_rng(0)
    for position in rng.choice(len(original), size=150, replace=False):
        data = bytearray(original)
        data[position] ^= 1 << int(rng.integers(8))
        (tmp_path / "f.pt").write_bytes(bytes(data))
        try:
            record = load_checkpoint(tmp_path / "f.pt")
        except CheckpointError:
            continue
        # accepted only when the content is exactly what was saved (zip padding, names)
        assert torch.equal(record["model"]["weight"], payload["model"]["weight"])
        assert torch.equal(record["model"]["bias"], payload["model"]["bias"])


# --- checked before the first epoch --------------------------------------------------------


def _nothing_written(run: Path) -> bool:
    return not run.exists() or not (
        {"last.pt", "metrics.jsonl", "config.yaml"} & {p.name for p in run.iterdir()}
    )


def test_misspelled_test_subset_is_found_at_start(capsys, tiny_root, tiny_overrides, tmp_path):
    run = tmp_path / "run"
    args = train_args(tiny_root, run, [*tiny_overrides, "data.test_subset=tset"])
    code, _, err = run_cli(capsys, *args)
    line = one_error_line(err)
    assert code == 2 and "data.test_subset 'tset'" in line and "'test'" in line
    assert _nothing_written(run)


def test_nan_in_a_test_video_is_found_at_start(capsys, tiny_root, tiny_overrides, tmp_path):
    bad = first_test_video(tiny_root)

    def poison(name, array):
        if name == bad:
            array = array.copy()
            array[3, 2] = np.nan
        return array

    root = variant_root(tiny_root, tmp_path / "nan", features=poison)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(root, run, tiny_overrides))
    line = one_error_line(err)
    assert code == 2 and bad in line and "NaN" in line
    assert _nothing_written(run)


def test_all_unlabelled_test_subset_is_found_at_start(capsys, tiny_root, tiny_overrides, tmp_path):
    def unlabel(videos):
        return [
            dataclasses.replace(v, labels=(), segments=()) if v.subset == "test" else v
            for v in videos
        ]

    root = variant_root(tiny_root, tmp_path / "unlabelled", videos=unlabel)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(root, run, tiny_overrides))
    assert code == 2 and "has labels" in one_error_line(err)
    assert _nothing_written(run)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.tiou=[]", "eval.tiou must hold at least one"),
        ("train.lr=nan", "train.lr must be a positive number"),
        ("train.lr=-1", "train.lr must be a positive number"),
        ("train.num_workers=-1", "train.num_workers must be >= 0"),
        ("model.hidden_dim=0", "model.hidden_dim must be positive"),
        ("localize.sigma=0", "localize.sigma must be a positive number"),
        ("train.select_on=val", "train.select_on must be one of"),
    ],
)
def test_bad_config_values_are_one_line(
    capsys, tiny_root, tiny_overrides, tmp_path, override, message
):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, [*tiny_overrides, override]))
    assert code == 2 and message in one_error_line(err)
    assert not run.exists()


def test_non_utf8_config_is_one_line(capsys, tiny_root, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes(b"train:\n  lr: 0.001 \xff\xfe\n")
    code, _, err = run_cli(
        capsys, "train", "--config", path, "--data", tiny_root, "--run-dir", tmp_path / "r"
    )
    assert code == 2 and "not UTF-8" in one_error_line(err)


def test_last_epoch_is_saved_before_a_failing_final_evaluation(
    tiny_root, tiny_overrides, tmp_path, monkeypatch
):
    from hamnet.errors import DataError
    from hamnet.train import evaluation

    def broken(session, subset=None):
        raise DataError("evaluation failed on purpose")

    run = tmp_path / "run"
    config = make_config("demo", "all", tiny_overrides)
    with monkeypatch.context() as patch:
        patch.setattr(evaluation, "evaluate", broken)
        with pytest.raises(DataError, match="on purpose"):
            train(config, tiny_root, run, progress=False)
    assert load_checkpoint(run / "last.pt")["epoch"] == 2
    assert json.loads((run / "run.json").read_text())["status"].startswith("failed: DataError")
    # --resume only runs the evaluation that did not finish
    result = train(config, tiny_root, run, resume=True, progress=False)
    assert result.final["epoch"] == 2 and 0 <= result.final["average_mAP"] <= 1
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2]


# --- faults during and between runs --------------------------------------------------------


def test_a_huge_feature_value_stops_at_the_first_nonfinite_loss(
    capsys, tiny_root, tiny_overrides, tmp_path
):
    annotations, _, _ = open_dataset(tiny_root)
    bad = annotations.subset("validation")[0].name

    def blow_up(name, array):
        if name == bad:
            array = array.copy()
            array[:, :] = 3e38
        return array

    root = variant_root(tiny_root, tmp_path / "huge", features=blow_up)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(root, run, tiny_overrides))
    line = one_error_line(err)
    assert code == 2 and "epoch 1: the loss is nan" in line and bad in line
    assert not (run / "last.pt").exists()


def test_corrupt_or_truncated_metrics(capsys, caplog, tiny_root, tiny_overrides, tmp_path):
    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    rows = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text(rows[0] + "\n{not json\n")
    more = [*tiny_overrides, "train.epochs=3"]
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, more, "--resume"))
    assert code == 2 and "metrics.jsonl: line 2 is not a metrics row" in one_error_line(err)
    (run / "metrics.jsonl").write_text(rows[1] + "\n")  # epoch 1 lost
    code, _, _ = run_cli(capsys, *train_args(tiny_root, run, more, "--resume"))
    assert code == 0 and "rows of epoch(s) 1 are missing" in caplog.text


def test_resume_on_data_with_another_class_count(capsys, tiny_root, tiny_overrides, tmp_path):
    from hamnet.data.synthetic import make_synthetic

    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    (run / "run.json").unlink()  # an older run: only the class check can tell
    other = make_synthetic(
        tmp_path / "five",
        num_classes=5,
        num_videos=24,
        duration_range=(20.0, 40.0),
        feature_dim=16,
        seed=3,
        progress=False,
    )
    code, _, err = run_cli(capsys, *train_args(other, run, tiny_overrides, "--resume"))
    assert code == 2 and "trained on 4 classes, the data have 5" in one_error_line(err)


def test_os_errors_are_one_line_naming_the_path(
    capsys, tiny_root, tiny_overrides, tmp_path, monkeypatch
):
    import hamnet.io

    real = hamnet.io.atomic_path

    def full_disk(path):
        if Path(path).name == "last.pt":
            raise OSError(28, "No space left on device", str(path))
        return real(path)

    monkeypatch.setattr("hamnet.weights.checkpoint.atomic_path", full_disk)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))
    line = one_error_line(err)
    assert code == 2 and str(run / "last.pt") in line and "No space left on device" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_run_folder_is_one_line(capsys, tiny_root, tiny_overrides, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o500)
    try:
        code, _, err = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))
        assert code == 2 and str(run) in one_error_line(err)
    finally:
        run.chmod(0o700)


# --- other commands ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--top-k", "-1"], "--top-k -1"),
        (["--top-k", "0"], "--top-k 0"),
        (["--min-score", "nan"], "--min-score nan"),
    ],
)
def test_predict_filters_are_validated(capsys, finished_run, tiny_root, option, message):
    code, _, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        finished_run / "last.pt",
        "--features",
        Path(tiny_root) / "Synthetic-packed",
        *option,
    )
    assert code == 2 and message in one_error_line(err)


def _authors_checkpoint(path: Path, num_classes: int) -> Path:
    shapes = {
        "net.classifier.0": (32, 32, 3),
        "net.classifier.2": (32, 32, 3),
        "net.classifier.5": (num_classes + 1, 32, 1),
        "net.attention.0": (8, 32, 3),
        "net.attention.2": (8, 8, 3),
        "net.attention.4": (1, 8, 1),
    }
    state = {}
    for prefix, shape in shapes.items():
        state[f"{prefix}.weight"] = torch.randn(shape)
        state[f"{prefix}.bias"] = torch.randn(shape[0])
    torch.save({"state_dict": state}, path)
    return path


def test_import_infers_the_preset_from_the_class_count(capsys, tmp_path):
    from hamnet.weights.trained import load_trained

    original = _authors_checkpoint(tmp_path / "anet.ckpt", 100)
    code, _, err = run_cli(capsys, "import-checkpoint", original, tmp_path / "anet.pt")
    assert code == 0, err
    trained = load_trained(tmp_path / "anet.pt")
    assert trained.config.preset == "activitynet12" and trained.config.model.smoothing
    assert len(trained.classes) == 100
    code, _, err = run_cli(
        capsys, "import-checkpoint", original, tmp_path / "x.pt", "--preset", "thumos14"
    )
    assert code == 2 and "--preset activitynet12" in one_error_line(err)
    assert not (tmp_path / "x.pt").exists()
    odd = _authors_checkpoint(tmp_path / "odd.ckpt", 7)
    code, _, err = run_cli(capsys, "import-checkpoint", odd, tmp_path / "odd.pt")
    assert code == 2 and "7 classes" in one_error_line(err) and "--preset" in err


def test_resume_may_fix_evaluation_settings(capsys, tiny_root, tiny_overrides, tmp_path):
    # a misspelled test subset is refused at start; the fixed one is welcome on resume
    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    fixed = [*tiny_overrides, "train.epochs=3", "eval.tiou=[0.5]", "data.test_subset=test"]
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, fixed, "--resume"))
    assert code == 0, err
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["epoch"] == 3 and last["tiou"] == [0.5]


def test_converted_roots_are_fingerprinted_by_gt_and_index(
    capsys, tiny_root, tiny_overrides, tmp_path
):
    first, second = tmp_path / "conv", tmp_path / "conv2"
    assert run_cli(capsys, "convert", "--data", tiny_root, "--out", first)[0] == 0
    scaled = variant_root(tiny_root, tmp_path / "scaled", features=lambda n, a: a * 1.01)
    assert run_cli(capsys, "convert", "--data", scaled, "--out", second)[0] == 0
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(first, run, tiny_overrides))
    assert code == 0, err
    fingerprint = json.loads((run / "run.json").read_text())["data"]["fingerprint"]
    assert fingerprint["gt_json"]["sha256"] and fingerprint["features"]["index"]["sha256"]
    more = [*tiny_overrides, "train.epochs=3"]
    code, _, err = run_cli(capsys, *train_args(second, run, more, "--resume"))
    assert code == 2 and "data differ from the run's start" in one_error_line(err)
