"""train.cpu_threads: torch's intra-op threads inside a run, given back after it."""

from __future__ import annotations

import pytest
import torch

from hamnet.config import make_config
from hamnet.devices import cpu_threads
from hamnet.errors import ConfigError


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_threads_are_set_inside_and_restored_after(two_threads):
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with cpu_threads(0):
        assert torch.get_num_threads() == 2


def test_threads_are_restored_when_the_run_fails(two_threads):
    with pytest.raises(RuntimeError, match="stop"), cpu_threads(1):
        raise RuntimeError("stop")
    assert torch.get_num_threads() == 2


def test_a_negative_thread_count_is_one_line():
    assert make_config("demo", "all", []).train.cpu_threads == 0
    with pytest.raises(ConfigError, match=r"train.cpu_threads must be >= 0, got -1"):
        make_config("demo", "all", ["train.cpu_threads=-1"])
