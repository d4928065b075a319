"""The run's own memory: ``RssAnon`` read from a status text, and its peak sampled while
memory is taken and given back."""

from __future__ import annotations

import time

import pytest

from meter_sim.memory import AnonPeak, anon_bytes, read_anon_bytes

STATUS = """Name:\tpython
VmRSS:\t 2079372 kB
RssAnon:\t  427496 kB
RssFile:\t 1651868 kB
"""


def test_the_anonymous_part_of_a_status_text_in_bytes() -> None:
    assert anon_bytes(STATUS) == 427_496 * 1024
    assert anon_bytes("VmRSS:\t 10 kB\n") is None
    assert anon_bytes("RssAnon:\t ten kB\n") is None


@pytest.mark.skipif(read_anon_bytes() is None, reason="the system does not report RssAnon")
def test_the_peak_holds_memory_taken_and_given_back_since_the_start() -> None:
    before = read_anon_bytes()
    assert before is not None
    sampler = AnonPeak(every_s=0.01).start()
    block = bytearray(64 * 2**20)  # 64 MiB, written so that it is resident
    block[::4096] = b"\x01" * len(block[::4096])
    time.sleep(0.2)  # sampled meanwhile, every 10 ms
    del block
    after = read_anon_bytes()
    peak = sampler.stop()
    assert peak is not None and after is not None
    assert peak >= before + 60 * 2**20
    assert after < peak - 60 * 2**20  # given back, while the peak keeps it


def test_a_sampling_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        AnonPeak(every_s=0)
