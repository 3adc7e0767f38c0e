"""Issue 18, parts 4 and 5: every config value checked where it is read, the Python API's
argument types, and one line (exit 2, no traceback) for hostile values and files."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import yaml

from hamnet.cli import main
from hamnet.config import Config, LocalizeConfig, TrainConfig, load_config, make_config
from hamnet.errors import ConfigError, HamnetError


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    shown = [line.split("\r")[-1] for line in err.split("\n")]  # what a terminal keeps
    lines = [x for x in shown if x.strip() and not x.startswith(("INFO", "WARNING"))]
    assert len(lines) == 1, err
    assert lines[0].startswith("hamnet: error: ") and "Traceback" not in err, err
    return lines[0]


def train_args(root, run_dir, overrides, *extra) -> list:
    sets = [arg for item in overrides for arg in ("--set", item)]
    return ["train", "--preset", "demo", "--data", root, "--run-dir", run_dir, *sets, *extra]


# values accepted on main that make a result meaningless, and the key each error names
MEANINGLESS = [
    ("localize.class_thresh=1.5", "localize.class_thresh must be in [0, 1]"),
    ("localize.class_thresh=-0.1", "localize.class_thresh must be in [0, 1]"),
    ("localize.thresholds=[]", "localize.thresholds must hold at least one"),
    ("localize.thresholds=[0.2,1.4]", "localize.thresholds values must be in [0, 1]"),
    ("localize.max_detections=-1", "localize.max_detections"),
    ("localize.max_detections=0", "localize.max_detections"),
    ("localize.nms_iou=0", "localize.nms_iou must be in (0, 1]"),
    ("localize.outer_ratio=-1", "localize.outer_ratio must be >= 0"),
    ("localize.outer_ratio=.inf", "localize.outer_ratio must be a finite number"),
    ("localize.video_score_weight=2", "localize.video_score_weight must be in [0, 1]"),
    ("loss.losses=[bcl,sal,bcl]", "loss.losses names ['bcl'] twice"),
    ("loss.lm_1=-1", "loss.lm_1 must be >= 0"),
    ("loss.beta=.inf", "loss.beta must be a finite number"),
    ("loss.drop_prob=1.5", "loss.drop_prob must be in [0, 1]"),
    ("loss.drop_thres=-0.2", "loss.drop_thres must be in [0, 1]"),
    ("loss.min_percent=0", "loss.min_percent must be in (0, 1]"),
    ("loss.topk_ratio_inv=0", "loss.topk_ratio_inv must be >= 1"),
    ("train.seed=-1", "train.seed must be in [0, 4294967295]"),
    ("train.seed=4294967296", "train.seed must be in [0, 4294967295]"),
    ("train.epochs=0", "train.epochs must be >= 1"),
    ("train.epochs=99999999999999999999999", "train.epochs must be at most 2147483647"),
    ("train.batch_size=-4", "train.batch_size must be >= 1"),
    ("train.eval_every=-1", "train.eval_every must be >= 0"),
    ("data.num_segments=0", "data.num_segments must be >= 1"),
    ("data.snippet_seconds=0", "data.snippet_seconds must lie in"),
    ("data.snippet_seconds=-0.64", "data.snippet_seconds must lie in"),
    ("data.snippet_seconds=.nan", "data.snippet_seconds must lie in"),
    ("data.snippet_seconds=.inf", "data.snippet_seconds must lie in"),
    ("data.train_subset=test", "data.train_subset and data.test_subset are both 'test'"),
    ("eval.tiou=[0.5,0.5]", "eval.tiou lists a value twice"),
    ("train.epochs=true", "config key 'train.epochs' must be int"),
    ("localize.max_detections=true", "config key 'localize.max_detections' must be int"),
]


@pytest.mark.parametrize(("override", "message"), MEANINGLESS)
def test_meaningless_values_are_refused(override, message):
    with pytest.raises(ConfigError, match=None) as caught:
        make_config("demo", "all", [override])
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "override", ["method_options.sparsity_weight=-1", "method_options.sparsity_weight=.inf"]
)
def test_method_options_are_checked(override):
    with pytest.raises(ConfigError, match="method_options.sparsity_weight must be a finite"):
        make_config("demo", "all", [override], method="stpn")


def test_values_that_were_fine_stay_fine():
    # the presets and every method's values pass their own validation, unchanged
    for preset in ("thumos14", "activitynet12", "demo"):
        for method in ("hamnet", "stpn", "w-talc", "basnet"):
            config = make_config(preset, "all", method=method)
            assert make_config(preset, "all", method=method) == config
    assert (
        make_config("demo", "all", ["localize.max_detections=null"]).localize.max_detections is None
    )


def test_python_built_sections_are_typed():
    with pytest.raises(ConfigError, match="train.epochs' must be int, got True"):
        TrainConfig(epochs=True)
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        TrainConfig(epochs=-3)
    with pytest.raises(ConfigError, match="train.lr' must be float"):
        TrainConfig(lr="0.1")
    with pytest.raises(ConfigError, match="localize.thresholds"):
        LocalizeConfig(thresholds=[])
    with pytest.raises(ConfigError, match="config section 'train' must be a TrainConfig"):
        Config(train={"epochs": 3})
    assert TrainConfig(lr=1).lr == 1.0 and isinstance(TrainConfig(lr=1).lr, float)


def test_training_on_the_test_subset_is_allowed_when_asked_and_labelled(
    capsys, tiny_root, tiny_overrides, tmp_path
):
    run = tmp_path / "run"
    sets = [*tiny_overrides, "data.train_subset=test"]
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, sets))
    assert code == 2 and "train.allow_test_subset=true" in one_error_line(err)
    assert not run.exists()
    code, out, _ = run_cli(
        capsys, *train_args(tiny_root, run, [*sets, "train.allow_test_subset=true"])
    )
    assert code == 0 and "[trained on test]" in out
    assert "trained on the test subset (not test results)" in out
    assert "[trained on test]" in (run / "results.md").read_text()
    assert "[trained on test]" in (run / "results.csv").read_text()
    info = json.loads((run / "run.json").read_text())
    assert info["result"]["trained_on_test"] is True
    result = tmp_path / "test.json"
    code, out, _ = run_cli(
        capsys, "test", "--checkpoint", run / "last.pt", "--data", tiny_root,
        "--out", tmp_path / "det.json", "--json", result,
    )  # fmt: skip
    assert code == 0 and "not a test result" in out
    assert json.loads(result.read_text())["trained_on_test"] is True
    code, out, _ = run_cli(capsys, "table", result)
    assert code == 0 and "[trained on test]" in out


def test_an_edited_config_yaml_on_resume_is_refused_naming_the_keys(
    capsys, tiny_root, tiny_overrides, tmp_path
):
    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    path = run / "config.yaml"
    tree = yaml.safe_load(path.read_text())
    tree["train"]["lr"] = 0.01
    tree["train"]["epochs"] = 3
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    edited = path.read_text()
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides), "--resume")
    line = one_error_line(err)
    assert code == 2 and "edited since the run last started" in line
    assert "train.epochs: 2 -> 3" in line and "train.lr: 0.001 -> 0.01" in line
    assert path.read_text() == edited  # the user's edit is kept
    # applied when the resume reads that file: the allowed key (epochs) is taken, lr refused
    code, _, err = run_cli(
        capsys, "train", "--config", path, "--data", tiny_root, "--run-dir", run, "--resume"
    )
    assert code == 2 and "train.lr: 0.001 -> 0.01" in one_error_line(err)
    tree["train"]["lr"] = 0.001
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    code, _, err = run_cli(
        capsys, "train", "--config", path, "--data", tiny_root, "--run-dir", run, "--resume"
    )
    assert code == 0, err
    rows = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]


def test_python_api_argument_types(tiny_root, tiny_config, tmp_path):
    from hamnet.evaluate.files import evaluate_files
    from hamnet.infer.predict import predict
    from hamnet.infer.tester import evaluate_checkpoint
    from hamnet.train.trainer import train

    config = tiny_config()
    broken = dataclasses.replace(config)
    broken.train.epochs = -1  # set after the config was built
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        train(broken, tiny_root, tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="expected a hamnet.config.Config"):
        train({"train": {}}, tiny_root, tmp_path / "b")
    with pytest.raises(ConfigError, match="resume must be True or False"):
        train(tiny_config(), tiny_root, tmp_path / "c", resume="yes")
    with pytest.raises(ConfigError, match="data_root must be a path"):
        train(tiny_config(), 3, tmp_path / "d")
    assert not any((tmp_path / n).exists() for n in "abcd")
    ckpt = tmp_path / "none.pt"
    with pytest.raises(ConfigError, match="top_k must be an integer, got bool True"):
        predict(ckpt, [tiny_root], top_k=True)
    with pytest.raises(ConfigError, match="min_score must be a number"):
        predict(ckpt, [tiny_root], min_score="0.1")
    with pytest.raises(ConfigError, match="feature_paths must be a list of paths"):
        predict(ckpt, tiny_root)
    with pytest.raises(ConfigError, match="tiou must be a list of numbers"):
        evaluate_checkpoint(ckpt, tiny_root, tmp_path / "o.json", tiou=0.5)
    with pytest.raises(ConfigError, match="overrides must be a list"):
        evaluate_checkpoint(ckpt, tiny_root, tmp_path / "o.json", overrides="localize.nms=hard")
    gt = tiny_root / "Synthetic-gt.json"
    with pytest.raises(ConfigError, match="snippet_seconds must lie in"):
        evaluate_files(gt, gt, snippet_seconds=math.nan)
    with pytest.raises(ConfigError, match="tiou entries must be a number"):
        evaluate_files(gt, gt, tiou=[True])


# --- no traceback: one line, exit 2 ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("train.epochs=[1", "malformed YAML"),
        ("train.epochs={a: [", "malformed YAML"),
        ("train.epochs=" + "[" * 20000 + "]" * 20000, "nested too deeply"),
        ("train.epochs=" + "9" * 5000, "integer string conversion"),
        ("train.seed=" + "9" * 400, "train.seed must be in"),
        ("train.lr=1" + "0" * 400, "too large for a number"),
        ("localize.thresholds=" + "[" * 500 + "]" * 500, "--set localize.thresholds="),
    ],
)
def test_hostile_set_values_are_one_line(capsys, tiny_root, tmp_path, value, message):
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, [value]))
    line = one_error_line(err)
    assert code == 2 and message in line and len(line) < 400
    assert not run.exists()


def test_deeply_nested_config_file_is_one_line(capsys, tiny_root, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("train:\n  epochs: " + "[" * 50000 + "]" * 50000 + "\n")
    code, _, err = run_cli(
        capsys, "train", "--config", path, "--data", tiny_root, "--run-dir", tmp_path / "r"
    )
    assert code == 2 and "nested too deeply" in one_error_line(err)
    with pytest.raises(HamnetError):
        load_config(path)


def _trained(capsys, tiny_root, tiny_overrides, tmp_path) -> Path:
    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    return run


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[" * 100000 + "]" * 100000, "nested too deeply"),
        ('{"format": 1, "x": ' + "9" * 5000 + "}", "malformed"),
    ],
)
def test_hostile_run_json_on_resume_is_one_line(
    capsys, tiny_root, tiny_overrides, tmp_path, content, message
):
    run = _trained(capsys, tiny_root, tiny_overrides, tmp_path)
    (run / "run.json").write_text(content)
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides), "--resume")
    assert code == 2 and message in one_error_line(err)


@pytest.mark.parametrize(
    "row",
    [
        "[" * 100000 + "]" * 100000,
        '{"epoch": ' + "9" * 5000 + "}",
        '{"epoch": 1e400}',
        "[1, 2]",
        '"text"',
    ],
)
def test_hostile_metrics_rows_are_one_line(capsys, tiny_root, tiny_overrides, tmp_path, row):
    run = _trained(capsys, tiny_root, tiny_overrides, tmp_path)
    path = run / "metrics.jsonl"
    path.write_text(path.read_text() + row + "\n")
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides), "--resume")
    assert code == 2 and "metrics.jsonl" in one_error_line(err)
    code, _, err = run_cli(capsys, "report", run, "--data", tiny_root)
    assert code == 2 and "metrics.jsonl: line 3" in one_error_line(err)


@pytest.mark.parametrize("value", ["0", "-0.64", "nan", "inf"])
def test_snippet_seconds_is_one_line(capsys, tiny_root, tmp_path, value):
    gt = tiny_root / "Synthetic-gt.json"
    detections = tmp_path / "det.json"
    detections.write_text(json.dumps({"results": {}}))
    code, _, err = run_cli(
        capsys, "eval", "--gt", gt, "--pred", detections, "--protocol", "wtalc",
        "--subset", "test", f"--snippet-seconds={value}",
    )  # fmt: skip
    assert code == 2 and "snippet_seconds must lie in" in one_error_line(err)
    out = tmp_path / "plain"
    code, _, err = run_cli(
        capsys, "convert", "--data", tiny_root, "--out", out, "--format", "npy",
        f"--snippet-seconds={value}",
    )  # fmt: skip
    assert code == 2 and "snippet_seconds" in one_error_line(err)
    assert not out.exists()


def test_a_resume_killed_before_its_first_checkpoint_is_not_an_edit(
    capsys, tiny_root, tiny_overrides, tmp_path, monkeypatch
):
    """config.yaml rewritten by a resumed session (epochs 2 -> 4) that died before its
    first last.pt differs from last.pt's config, but nobody edited it."""
    from hamnet.train import trainer

    run = tmp_path / "run"
    assert run_cli(capsys, *train_args(tiny_root, run, tiny_overrides))[0] == 0
    longer = [*tiny_overrides, "train.epochs=4", "train.checkpoint_every=2"]

    def killed(*args, **kwargs):
        raise HamnetError("killed before its first checkpoint")

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "_run_epochs", killed)
        code, _, _ = run_cli(capsys, *train_args(tiny_root, run, longer), "--resume")
    assert code == 2
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 4
    code, _, err = run_cli(capsys, *train_args(tiny_root, run, tiny_overrides), "--resume")
    assert code == 0, err
