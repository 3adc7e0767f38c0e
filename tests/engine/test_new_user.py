"""Issue 18, the new user's list: what an interrupted demo says, what a table says about
the run behind each row, and the small things a first session trips over."""

from __future__ import annotations

import json

import pytest

from hamnet import cli
from hamnet.errors import RESUME_HINT, TrainingInterrupted
from hamnet.train import checkpointing
from hamnet.train.trainer import train
from hamnet.weights.checkpoint import load_checkpoint

EVERY_2 = ["train.epochs=5", "train.checkpoint_every=2"]


def _rows(run_dir) -> list[int]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def test_interrupt_while_saving_leaves_last_pt_and_metrics_agreeing(
    tiny_root, tiny_config, tmp_path, monkeypatch
):
    """The demo's "last.pt holds epoch 24" next to 25 metrics rows: the signal came while
    last.pt of epoch 25 was being written, after its metrics row."""
    real = checkpointing.save_checkpoint

    def interrupted_at_epoch_4(path, payload):
        if path.name == "last.pt" and payload["epoch"] == 4:
            raise TrainingInterrupted("SIGINT", 2)
        real(path, payload)

    monkeypatch.setattr(checkpointing, "save_checkpoint", interrupted_at_epoch_4)
    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted, match="last.pt holds epoch 3 of 5") as stop:
        train(tiny_config("all", *EVERY_2), tiny_root, run, progress=False)
    assert RESUME_HINT in str(stop.value)
    assert load_checkpoint(run / "last.pt")["epoch"] == 3
    assert _rows(run) == [1, 2, 3]
    monkeypatch.setattr(checkpointing, "save_checkpoint", real)
    train(tiny_config("all", *EVERY_2), tiny_root, run, resume=True, progress=False)
    assert _rows(run) == [1, 2, 3, 4, 5]


def test_interrupted_demo_says_a_plain_rerun_continues(tmp_path, monkeypatch, capsys):
    from hamnet import demo

    def stopped(*args, **kwargs):
        raise TrainingInterrupted(
            f"interrupted by SIGINT (R): last.pt holds epoch 2; {RESUME_HINT}"
        )

    monkeypatch.setattr(demo, "make_synthetic", lambda out, **kwargs: out)
    monkeypatch.setattr(demo, "train_seeds", stopped)
    status = cli.main(["demo", "--quick", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 130
    assert "rerun the same 'hamnet demo' command to continue" in err and "--resume" not in err


def _interrupted_run(tiny_root, tiny_config, run, monkeypatch, at_epoch: int):
    real = checkpointing.save_checkpoint

    def stop(path, payload):
        if path.name == "last.pt" and payload["epoch"] == at_epoch:
            raise TrainingInterrupted("SIGINT", 2)
        real(path, payload)

    with monkeypatch.context() as patch:
        patch.setattr(checkpointing, "save_checkpoint", stop)
        with pytest.raises(TrainingInterrupted):
            train(tiny_config("all", *EVERY_2), tiny_root, run, progress=False)


def test_table_rows_are_named_by_run_and_say_unfinished(
    tiny_root, tiny_config, tmp_path, monkeypatch, capsys
):
    run = tmp_path / "interrupted-run"
    _interrupted_run(tiny_root, tiny_config, run, monkeypatch, at_epoch=4)
    assert not (run / ".lock").exists()  # no lock left behind by a stopped run either
    result = tmp_path / "out" / "result.json"
    argv = ["test", "--checkpoint", run / "last.pt", "--data", tiny_root]
    status = cli.main([*map(str, argv), "--out", str(tmp_path / "d.json"), "--json", str(result)])
    out = capsys.readouterr().out
    assert status == 0 and "run status: 3 of 5 epochs, unfinished" in out
    assert json.loads(result.read_text())["epochs"] == {"trained": 3, "planned": 5}
    assert cli.main(["table", str(result)]) == 0
    table = capsys.readouterr().out
    assert "| interrupted-run (3 of 5 epochs, unfinished) |" in table
    assert "| result |" not in table


def test_finished_run_folder_keeps_no_lock(tiny_root, tiny_config, tmp_path):
    run = tmp_path / "run"
    train(tiny_config(), tiny_root, run, progress=False)
    assert (run / "last.pt").is_file() and not (run / ".lock").exists()


def test_thumos14_protocol_without_ambiguous_file_says_none_given(
    tiny_root, tiny_config, tmp_path, capsys
):
    run = tmp_path / "run"
    train(tiny_config(), tiny_root, run, progress=False)
    detections = tmp_path / "det.json"
    argv = ["test", "--checkpoint", run / "last.pt", "--data", tiny_root, "--out", detections]
    assert cli.main(list(map(str, argv))) == 0
    capsys.readouterr()
    gt = tiny_root / "Synthetic-gt.json"
    argv = ["eval", "--gt", gt, "--pred", detections, "--protocol", "thumos14"]
    assert cli.main(list(map(str, argv))) == 0
    out = capsys.readouterr().out
    assert "ambiguous applied" not in out and "no ambiguous spans given" in out


def test_config_lists_the_variants_and_stays_loadable(tmp_path, capsys):
    from hamnet.config import load_config
    from hamnet.methods.hamnet.method import VARIANTS

    assert cli.main(["config", "--preset", "demo"]) == 0
    out = capsys.readouterr().out
    assert f"# --variant (HAM-Net's ablation rows): {', '.join(VARIANTS)}" in out
    path = tmp_path / "c.yaml"
    path.write_text(out)
    assert load_config(path).preset == "demo"
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    assert "listed at the end of 'hamnet config'" in " ".join(help_text.split())


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    from hamnet.demo import run_demo

    out = tmp_path_factory.mktemp("demo")
    run_demo(out, quick=True, progress=False)
    return out / "quick"


def test_quick_demo_says_smoke_test_and_readme_commands_work(quick_demo, tmp_path, capsys):
    table = (quick_demo / "results.md").read_text()
    assert "smoke test: 4 epochs on 40 videos" in table.splitlines()[0]
    assert not list((quick_demo / "runs").rglob(".lock"))
    gt = quick_demo / "data" / "Synthetic-gt.json"
    # the README's plot command, with ~/hamnet-demo/quick and the video it names
    npz = quick_demo / "runs" / "all" / "test" / "cas" / "video_00001.npz"
    argv = ["plot", "video", "--npz", npz, "--gt", gt, "--pred", quick_demo / "detections.json"]
    assert cli.main([*map(str, argv), "--out", str(tmp_path / "fig.png")]) == 0
    assert (tmp_path / "fig.png").stat().st_size > 0


def test_report_and_analyze_of_a_run_need_nothing_else(quick_demo, tmp_path, monkeypatch):
    from hamnet.infer import tester

    def no_retest(*args, **kwargs):
        raise AssertionError("the test outputs exist; nothing should be tested again")

    monkeypatch.setattr(tester, "evaluate_checkpoint", no_retest)
    run = quick_demo / "runs" / "all"
    assert cli.main(["analyze", str(run), "--out", str(tmp_path / "diag")]) == 0
    diagnosis = json.loads((tmp_path / "diag" / "diagnosis.json").read_text())
    assert diagnosis["tiou"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]  # the run's, not 0.5:0.95
    assert diagnosis["bins"] == "thumos14"
    assert cli.main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0


def test_report_tests_on_the_dataset_run_json_records(tiny_root, tiny_config, tmp_path, capsys):
    run = tmp_path / "run"
    train(tiny_config(), tiny_root, run, progress=False)
    assert cli.main(["report", str(run)]) == 0  # no --data: run.json names the dataset
    assert (run / "test" / "detections.json").is_file() and (run / "report.html").is_file()


def test_test_outputs_are_made_again_after_the_run_was_extended(
    tiny_root, tiny_config, tmp_path, monkeypatch
):
    """RUN/test/ belongs to the checkpoint it was made from: after ``--resume`` with more
    epochs the next analyze/report tests the new last.pt; unchanged, it is reused."""
    from hamnet.diagnose.sources import ensure_test_outputs
    from hamnet.infer import tester
    from hamnet.provenance import file_fingerprint

    run = tmp_path / "run"
    train(tiny_config("all", "train.epochs=1"), tiny_root, run, progress=False)
    first = ensure_test_outputs(run, tiny_root, progress=False)
    assert first.read_info()["checkpoint_sha256"] == file_fingerprint(run / "last.pt")["sha256"]
    before = first.detections.read_bytes()
    train(tiny_config("all", "train.epochs=3"), tiny_root, run, resume=True, progress=False)
    tested = []
    real = tester.evaluate_checkpoint
    monkeypatch.setattr(
        tester, "evaluate_checkpoint", lambda *a, **k: tested.append(a[0]) or real(*a, **k)
    )
    again = ensure_test_outputs(run, tiny_root, progress=False)
    assert tested == [run / "last.pt"]
    assert again.read_info()["checkpoint_sha256"] == file_fingerprint(run / "last.pt")["sha256"]
    assert again.detections.read_bytes() != before
    ensure_test_outputs(run, tiny_root, progress=False)  # made from the current one: reused
    assert tested == [run / "last.pt"]
