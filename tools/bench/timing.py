"""Timing through ``torch.utils.benchmark.Timer``."""
from typing import Callable

import torch
from torch.utils.benchmark import Timer


def median_time(fn: Callable[[], object], min_run_time: float) -> float:
    """Median seconds per call of ``fn()``.

    ``Timer.blocked_autorange`` warms up (one block), picks the calls per
    block, synchronises the accelerator around each block and runs blocks
    for at least ``min_run_time`` seconds, with torch's current number of
    intra-op threads (``Timer`` would default to 1).
    """
    timer = Timer(stmt='fn()', globals=dict(fn=fn),
                  num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=min_run_time).median
