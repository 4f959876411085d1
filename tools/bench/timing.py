"""Timing through ``torch.utils.benchmark.Timer``."""
from typing import Callable

import torch
from torch.utils.benchmark import Timer


def median_time(fn: Callable[[], object], min_run_time: float,
                min_calls: int = 1) -> float:
    """Median seconds per call of ``fn()``.

    ``Timer.blocked_autorange`` warms up (one block), picks the calls per
    block, synchronises the accelerator around each block and runs blocks
    for at least ``min_run_time`` seconds, with torch's current number of
    intra-op threads (``Timer`` would default to 1). With ``min_calls`` >
    1, one call is timed first and the run lasts at least ``min_calls``
    times that, so that a call longer than ``min_run_time`` / 2 still gets
    a median of several samples.
    """
    if min_calls < 1:
        raise ValueError(f'min_calls={min_calls}: expected >= 1')
    timer = Timer(stmt='fn()', globals=dict(fn=fn),
                  num_threads=torch.get_num_threads())
    if min_calls > 1:
        once = timer.timeit(1).median
        min_run_time = max(min_run_time, min_calls * once)
    return timer.blocked_autorange(min_run_time=min_run_time).median
