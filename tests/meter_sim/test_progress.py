"""``voisin simulate``'s progress line: percent, elapsed, ETA from the rate so far, the
simulated local date of long runs; one line on a terminal, a few plain lines in a log."""

from __future__ import annotations

import io

from meter_sim.run import Progress, clock_text, progress_text, stderr_progress

#: 2019-10-31 23:00 UTC, local midnight of 1 November in Europe/Zurich (CET).
NOV_1 = 1_572_562_800 // 900


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def at(done: int, total: int = 200, *, loop_s: float = 10.0, before: int = 0) -> Progress:
    return Progress(done, total, loop_s + 5.0, 3, 12_345, 1_000_000, slot=NOV_1 + done - 1,
                    slots_before=before, loop_s=loop_s)  # fmt: skip


def test_the_eta_comes_from_the_rate_of_the_slot_loop() -> None:
    p = at(50, loop_s=10.0)  # 5 slots/s over the loop; set-up (5 s) left out
    assert p.slots_per_s == 5.0 and p.percent == 25.0
    assert p.eta_s == 30.0  # 150 slots left
    # A resumed run's rate counts only the slots it settled itself.
    resumed = at(150, loop_s=10.0, before=100)
    assert resumed.slots_per_s == 5.0 and resumed.eta_s == 10.0
    assert at(100, loop_s=10.0, before=100).eta_s is None


def test_durations_read_as_clock_times() -> None:
    assert [clock_text(s) for s in (None, 0, 42, 725, 11_220, 189_000)] == [
        "--", "0s", "42s", "12m05s", "3h07m", "2d04h",
    ]  # fmt: skip


def test_a_long_run_shows_the_simulated_local_date() -> None:
    text = progress_text(at(50, total=35_040), "Europe/Zurich")
    assert text.startswith("  0.1 %  50/35,040 slots  elapsed 15s  ETA ")
    assert "at 2019-11-01" in text and "12.3 kWh local" in text and "1,000,000 gas" in text
    # The slot before is still 31 October in local time (a UTC date would say so too late).
    assert "at 2019-10-31" in progress_text(
        Progress(1, 35_040, 1.0, 0, 0, 0, slot=NOV_1 - 1), "Europe/Zurich"
    )
    # A run within a day has no date to show.
    assert " at " not in progress_text(at(50, total=96), "Europe/Zurich")


def test_on_a_terminal_it_is_one_line_rewritten_in_place() -> None:
    out = Terminal()
    show = stderr_progress(out, tz="Europe/Zurich")
    for done in range(1, 201):
        show(at(done))
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r") == 200
    assert "100.0 %" in text.split("\r")[-1] and "done" in text.split("\r")[-1]


def test_in_a_log_it_writes_a_line_per_step_or_per_half_minute() -> None:
    out, clock = io.StringIO(), Clock()
    show = stderr_progress(out, clock=clock, every_percent=10, every_s=30)
    for done in range(1, 201):
        show(at(done))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # The first slot, each further 10 % (20 slots), and the last: 11 lines for 200 slots.
    assert len(lines) == 11 and lines[-1].startswith("100.0 %")
    # A slow run also says it is alive every 30 s between steps.
    out, clock = io.StringIO(), Clock()
    show = stderr_progress(out, clock=clock, every_percent=50, every_s=30)
    for done in range(1, 11):
        clock.now += 31
        show(at(done, total=1000))
    assert len(out.getvalue().splitlines()) == 10
