"""No command overwrites one of its own inputs (same file by device and inode, so through
symlinks and hard links too), and nothing but a regular file is replaced: a FIFO or a
character device is written into, a folder or a socket is refused with one line."""

from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest

from hamnet.cli import main


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    _, err = capsys.readouterr()
    lines = [line for line in err.strip().splitlines() if not line.startswith(("INFO", "WARN"))]
    return code, "\n".join(lines)


@pytest.fixture(scope="module")
def tested(tiny_run, tiny_root):
    """The run's detections, from ``hamnet test`` into the run folder."""
    detections = tiny_run / "dets.json"
    assert (
        main(
            [
                "test",
                "--checkpoint",
                str(tiny_run / "last.pt"),
                "--data",
                str(tiny_root),
                "--out",
                str(detections),
            ]
        )
        == 0
    )
    return detections


def _snapshot(path: Path) -> tuple[int, bytes]:
    return os.stat(path).st_ino, path.read_bytes()


def _eval(capsys, tiny_root, detections, out):
    gt = tiny_root / "Synthetic-gt.json"
    return run_cli(capsys, "eval", "--gt", gt, "--pred", detections, "--json", out)


def _links(tmp_path: Path, target: Path) -> list[Path]:
    soft, hard = tmp_path / "soft.json", tmp_path / "hard.json"
    soft.symlink_to(target)
    os.link(target, hard)
    return [target, soft, hard]


def test_eval_refuses_to_write_over_the_gt_or_the_detections(capsys, tiny_root, tested, tmp_path):
    gt = tiny_root / "Synthetic-gt.json"
    for target in (gt, tested):
        before = _snapshot(target)
        folder = tmp_path / target.stem
        folder.mkdir()
        for out in _links(folder, target):
            code, err = _eval(capsys, tiny_root, tested, out)
            assert code == 2, err
            assert err.count("\n") == 0 and "refusing to overwrite an input" in err
            assert str(target) in err
        assert _snapshot(target) == before


def test_test_refuses_its_checkpoint_gt_and_metrics(capsys, tiny_run, tiny_root, tmp_path):
    for target in (
        tiny_run / "last.pt",
        tiny_run / "metrics.jsonl",
        tiny_root / "Synthetic-gt.json",
    ):
        before = _snapshot(target)
        base = ["test", "--checkpoint", tiny_run / "last.pt", "--data", tiny_root]
        for outputs in (["--out", target], ["--out", tmp_path / "d.json", "--json", target]):
            code, err = run_cli(capsys, *base, *outputs)
            assert code == 2 and "refusing to overwrite an input" in err, err
        assert _snapshot(target) == before


def test_predict_refuses_its_features_file(capsys, tiny_run, tmp_path):
    import numpy as np

    features = tmp_path / "video.npy"
    np.save(features, np.zeros((20, 16), dtype=np.float32))
    hard = tmp_path / "hard.npy"
    os.link(features, hard)
    before = _snapshot(features)
    code, err = run_cli(
        capsys,
        "predict",
        "--checkpoint",
        tiny_run / "last.pt",
        "--features",
        features,
        "--out",
        hard,
    )
    assert code == 2 and "refusing to overwrite an input" in err, err
    assert _snapshot(features) == before


def test_report_refuses_the_runs_own_files(capsys, tiny_run, tiny_root):
    for name in ("metrics.jsonl", "config.yaml", "last.pt"):
        before = _snapshot(tiny_run / name)
        code, err = run_cli(
            capsys, "report", tiny_run, "--data", tiny_root, "--out", tiny_run / name
        )
        assert code == 2 and "refusing to overwrite an input" in err, err
        assert _snapshot(tiny_run / name) == before


def test_convert_refuses_an_output_inside_its_source(capsys, tiny_root, tmp_path):
    gt = tiny_root / "Synthetic-gt.json"
    before = _snapshot(gt)
    code, err = run_cli(capsys, "convert", "--data", tiny_root, "--out", tiny_root)
    assert code == 2 and "refusing to overwrite an input" in err, err
    assert _snapshot(gt) == before


def test_a_fifo_is_written_into_not_replaced(capsys, tiny_root, tested, tmp_path):
    fifo = tmp_path / "result.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    code, err = _eval(capsys, tiny_root, tested, fifo)
    reader.join(timeout=20)
    assert received, "nothing arrived through the FIFO"
    assert code == 0, err
    assert fifo.is_fifo()
    assert "average_mAP" in json.loads(received[0])


def test_folders_and_sockets_are_refused(capsys, tiny_root, tested, tmp_path):
    folder = tmp_path / "a-folder"
    folder.mkdir()
    (folder / "keep").write_text("x")
    code, err = _eval(capsys, tiny_root, tested, folder)
    assert code == 2 and "is a folder; refusing to replace it" in err, err
    assert (folder / "keep").read_text() == "x"
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        code, err = _eval(capsys, tiny_root, tested, path)
        assert code == 2 and "is a socket; refusing to replace it" in err, err
        assert path.is_socket()
    finally:
        server.close()


def test_character_devices_are_written_into(tmp_path):
    """A device node of our own (mknod: root only), never /dev/null: older code replaced it."""
    import stat

    from hamnet.io import atomic_write_json

    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    atomic_write_json(node, {"a": 1})
    assert node.is_char_device()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


@pytest.fixture(scope="module")
def cas_and_result(tiny_run, tiny_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("cas")
    argv = ["test", "--checkpoint", tiny_run / "last.pt", "--data", tiny_root]
    argv += ["--out", out / "d.json", "--json", out / "result.json", "--save-cas", out / "cas"]
    assert main([str(a) for a in argv]) == 0
    return next(iter(sorted((out / "cas").glob("*.npz")))), out / "result.json", out / "d.json"


def test_analyze_refuses_its_detections(capsys, tiny_root, cas_and_result, tmp_path):
    _, _, detections = cas_and_result
    folder = tmp_path / "diag"
    folder.mkdir()
    pred = folder / "diagnosis.json"
    pred.write_bytes(detections.read_bytes())
    before = _snapshot(pred)
    gt = tiny_root / "Synthetic-gt.json"
    code, err = run_cli(capsys, "analyze", "--gt", gt, "--pred", pred, "--out", folder)
    assert code == 2 and "refusing to overwrite an input" in err, err
    assert _snapshot(pred) == before


def test_plots_and_table_refuse_their_inputs(capsys, cas_and_result, tmp_path):
    npz, result, _ = cas_and_result
    for argv, target in (
        (["plot", "video", "--npz", npz, "--out", npz], npz),
        (["plot", "map", result, "--out", tmp_path / "hard.json"], result),
        (["table", result, "--out", tmp_path / "t"], result),
    ):
        if argv[0] == "plot" and argv[1] == "map":
            os.link(result, tmp_path / "hard.json")
        if argv[0] == "table":
            (tmp_path / "t.md").symlink_to(result)
        before = _snapshot(target)
        code, err = run_cli(capsys, *argv)
        assert code == 2 and "refusing to overwrite an input" in err, (argv, err)
        assert _snapshot(target) == before


def test_import_checkpoint_refuses_its_original(capsys, tmp_path):
    from hamnet.io import refuse_overwriting_inputs

    original = tmp_path / "authors.pkl"
    original.write_bytes(b"not read")
    with pytest.raises(Exception, match="refusing to overwrite an input"):
        refuse_overwriting_inputs([tmp_path / "." / "authors.pkl"], [original])
    code, err = run_cli(capsys, "import-checkpoint", original, original)
    assert code == 2 and "refusing to overwrite an input" in err, err
    assert original.read_bytes() == b"not read"


def test_synth_refuses_to_write_over_the_folder_it_copies(capsys, tiny_root, tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    folder = root / "Synthetic-Annotations"
    before = {p.name: _snapshot(p) for p in folder.iterdir()}
    code, err = run_cli(capsys, "synth", "--like", folder, "--out", root, "--dim", "4")
    assert code == 2 and "refusing to overwrite an input" in err, err
    assert {p.name: _snapshot(p) for p in folder.iterdir()} == before


def test_train_refuses_a_run_file_that_is_a_data_file(capsys, tiny_root, tiny_overrides, tmp_path):
    import shutil

    root = tmp_path / "root"
    shutil.copytree(tiny_root, root)
    run = tmp_path / "run"
    run.mkdir()
    gt = root / "Synthetic-gt.json"
    os.link(gt, run / "metrics.jsonl")
    before = _snapshot(gt)
    settings = [arg for item in tiny_overrides for arg in ("--set", item)]
    code, err = run_cli(
        capsys, "train", "--preset", "demo", "--data", root, "--run-dir", run, *settings
    )
    assert code == 2 and "refusing to overwrite an input" in err, err
    assert _snapshot(gt) == before


@pytest.mark.parametrize("into", ["pipe", "file"])
def test_json_into_dev_stdout_follows_the_table(tiny_root, tested, tmp_path, into):
    """``--json /dev/stdout``: the result follows the printed table, in a pipe or a file
    the shell redirected to (before: a pipe was 'No such file', a file lost the table)."""
    import subprocess
    import sys

    argv = [
        sys.executable,
        "-m",
        "hamnet.cli",
        "eval",
        "--gt",
        str(tiny_root / "Synthetic-gt.json"),
    ]
    argv += ["--pred", str(tested), "--json", "/dev/stdout"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    if into == "pipe":
        text = subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout
    else:
        with open(tmp_path / "out.txt", "w") as handle:
            subprocess.run(argv, stdout=handle, stderr=subprocess.DEVNULL, env=env, check=True)
        text = (tmp_path / "out.txt").read_text()
    table, _, result = text.partition("\n{")
    assert "mAP" in table
    assert "average_mAP" in json.loads("{" + result)
