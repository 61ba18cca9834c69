"""Durable serials: unique across 20 SIGKILLs of a process that takes them, and across
concurrent takers on both backends."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from grading.store import create_store_engine, migrate
from grading.trace.serials import LineSerials, SerialCounter, peek, reserve

REPO = Path(__file__).resolve().parents[3]

# Takes serials for ever and reports each one only once it is durable (next() returns after the
# commit that moved the counter past it), like a labeller that prints what it was given.
_TAKER = """
import sys
from grading.store import create_store_engine
from grading.trace.serials import SerialCounter
counter = SerialCounter(create_store_engine(sys.argv[1]), "carton:test", block=int(sys.argv[2]))
while True:
    print(counter.next(), flush=True)
"""


def test_serials_stay_unique_across_20_sigkills(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/serials.db"
    engine = create_store_engine(url)
    migrate(engine)
    engine.dispose()
    chance = random.Random(20261202)
    reported: list[int] = []
    for restart in range(20):
        block = 1 if restart % 2 == 0 else 7  # reserved blocks: the unused rest must be skipped
        child = subprocess.Popen(
            [sys.executable, "-c", _TAKER, url, str(block)], stdout=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert child.stdout is not None
        wanted = chance.randint(1, 40)
        for _ in range(wanted):
            line = child.stdout.readline()
            assert line, "the taker stopped by itself"
            reported.append(int(line))
        os.kill(child.pid, signal.SIGKILL)  # mid-loop: maybe inside a commit
        rest, _ = child.communicate(timeout=30)
        reported.extend(int(v) for v in rest.split())  # printed before the kill landed
        assert child.returncode == -signal.SIGKILL
    assert len(reported) > 20
    assert len(reported) == len(set(reported)), "a serial was given out twice"
    engine = create_store_engine(url)
    assert (peek(engine, "carton:test") or 0) > max(reported)
    engine.dispose()


def test_concurrent_takers_never_share_a_value(database_url: str) -> None:
    engine = create_store_engine(database_url)
    migrate(engine)
    got: list[int] = []
    lock = threading.Lock()

    def take(block: int) -> None:
        counter = SerialCounter(engine, "sscc", block=block)
        values = [counter.next() for _ in range(25)]
        with lock:
            got.extend(values)

    threads = [threading.Thread(target=take, args=(b,)) for b in (1, 3, 5, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 100 and len(set(got)) == 100
    assert reserve(engine, "other", 3, first=10) == range(10, 13)
    assert reserve(engine, "other", 2) == range(13, 15)
    engine.dispose()


def test_line_serials_carry_the_line_and_use_its_own_counters(sqlite_url: str) -> None:
    engine = create_store_engine(sqlite_url)
    migrate(engine)
    one, two = LineSerials(engine, "line-1", 1, block=3), LineSerials(engine, "line-2", 2)
    assert [one.carton_serial() for _ in range(3)] == ["line-1.1", "line-1.2", "line-1.3"]
    assert two.carton_serial() == "line-2.1"  # its own counter, its own text: never line-1's
    assert [one.sscc_reference(9), two.sscc_reference(9), two.sscc_reference(9)] == [100000001, 200000001, 200000002]
    assert peek(engine, "carton:line-1") == 4 and peek(engine, "sscc:line-2") == 3
    reserve(engine, "sscc:line-2", 10**8 - 3)  # the counter reaches the end of 8 digits
    with pytest.raises(RuntimeError, match="used up"):
        two.sscc_reference(9)
    longest = LineSerials(engine, "a-twelve-id1", 1)  # the longest id: 7 digits fit in AI (21)'s 20
    reserve(engine, "carton:a-twelve-id1", 10**7 - 2)
    assert longest.carton_serial() == "a-twelve-id1.9999999"
    with pytest.raises(RuntimeError, match="longer than AI"):
        longest.carton_serial()
    engine.dispose()
