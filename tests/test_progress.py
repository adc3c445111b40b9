"""Progress: plain lines for logs, a throttled live line for terminals, ETA arithmetic; a fake clock, no sleeps."""
import io
import math

import pytest

from kerascnn.runtime.progress import Progress, format_duration, track


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_eta_and_rate_arithmetic():
    clock = Clock()
    p = Progress(100, stream=io.StringIO(), clock=clock)
    clock.t += 5.0
    p.update(10)
    assert p.rate() == pytest.approx(2.0)  # 10 steps in 5 s
    assert p.eta() == pytest.approx(45.0)  # 90 left at 2 steps/s
    clock.t += 15.0
    p.update(30)
    assert p.eta() == pytest.approx(60 * 20 / 40)
    assert "ETA 30s" in p.format() and "2.00 step/s" in p.format()
    assert math.isnan(Progress(None, stream=io.StringIO(), clock=clock).eta())  # no total, no ETA
    assert "ETA ?" in Progress(10, stream=io.StringIO(), clock=clock).format()  # nothing done yet


def test_format_duration():
    assert [format_duration(s) for s in (0, 12.4, 125, 3725)] == ["0s", "12s", "2m05s", "1h02m"]


def test_plain_lines_every_tenth_and_final():
    clock, out = Clock(), io.StringIO()
    with Progress(50, "style", stream=out, clock=clock) as p:
        for step in range(50):
            clock.t += 0.5
            p.update(loss=1.0 / (step + 1))
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    # Every 5 steps (10% of 50) up to 45, then the final line, which has the total time, no ETA.
    assert [line.split()[1] for line in lines] == [f"{n}/50" for n in range(5, 50, 5)] + ["50/50"]
    assert lines[0] == "style: 5/50 (10%) 2s, 2.00 step/s, ETA 22s, loss=0.2"
    assert lines[-1] == "style: 50/50 (100%) 25s in all, 2.00 step/s, loss=0.02"


def test_plain_lines_by_time_and_by_every():
    clock, out = Clock(), io.StringIO()
    p = Progress(1000, stream=out, clock=clock)  # 10% is 100 steps; 10 s come first
    for _ in range(30):
        clock.t += 1.0
        p.update()
    assert [line.split()[0] for line in out.getvalue().splitlines()] == ["10/1000", "20/1000", "30/1000"]
    out = io.StringIO()
    p = Progress(None, stream=out, every=3, unit="octave", clock=clock)
    for _ in range(7):
        clock.t += 20.0  # a chosen `every` is by count only, however slow
        p.update()
    p.close()
    lines = out.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["3", "6", "7"]
    assert "20.00 s/octave" in lines[-1]


def test_live_line_redraws_in_place_at_most_ten_times_a_second():
    clock, out = Clock(), Tty()
    p = Progress(1000, "dream", stream=out, clock=clock)
    for _ in range(1000):
        clock.t += 0.001  # 1 s in all
        p.update(loss=0.5)
    p.close()
    text = out.getvalue()
    assert text.count("\n") == 1, "one line, redrawn in place"
    frames = [f for f in text.split("\r") if "dream" in f]
    assert 9 <= len(frames) <= 13  # ~10 redraws and the final one
    last = frames[-1]
    assert "1000/1000" in last and "100%" in last and "0:00:01" in last and "loss=0.5" in last


def test_live_line_without_a_total_counts_steps():
    clock, out = Clock(), Tty()
    with Progress(None, "octaves", stream=out, clock=clock, unit="octave") as p:
        for _ in range(3):
            clock.t += 1
            p.update(msg="x")
    last = [f for f in out.getvalue().split("\r") if "octaves" in f][-1]
    assert "3 octaves" in last and "msg=x" in last and "%" not in last


def test_disable_and_track():
    out = io.StringIO()
    with Progress(10, stream=Tty(), disable=True) as p:
        p.update(10)
    assert p.n == 10
    assert list(track(range(4), desc="items", stream=out)) == [0, 1, 2, 3]
    assert out.getvalue().splitlines()[-1].startswith("items: 4/4 (100%)")
    out = io.StringIO()
    assert list(track((i for i in range(3)), stream=out)) == [0, 1, 2]  # no len(): no total
    assert out.getvalue().startswith("3 steps ")


def test_bad_arguments():
    with pytest.raises(ValueError, match="total"):
        Progress(-1)
    with pytest.raises(ValueError, match="every"):
        Progress(10, every=0)
