"""Timing shared by the benchmark scripts (they import it as `bench.timing`: each puts the checkout's root
on sys.path): the wall-clock seconds of repeated calls, after warm-up calls that are not timed (tracing,
kernel selection, caches)."""
from __future__ import annotations

import time
from typing import Callable, List


def call_times(fn: Callable[[], object], repeats: int, warmup: int = 1) -> List[float]:
    """Seconds of each of `repeats` calls of `fn()`, after `warmup` untimed ones. `fn` must block until
    its work is done (e.g. call .numpy() on what a tf.function returns)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times
